/**
 * The machine-wide record of the vCPUs with pending vPCI work (Xen's `v->vpci` with a device set),
 * kept by `Vcpu.pending`'s setter (the only way to set or clear a vCPU's work, so the record cannot
 * drift from the vCPUs): the checks and the toolstack paths ask it rather than walking every vCPU of
 * every domain, which grows with the machine. Both lists are in Xen's order, domain id then vCPU id:
 * the order a walk over `Machine.domains()` and each domain's `vcpus` meets them, so whichever
 * vCPU's work such a walk would finish or report first, the record gives first.
 */

/**
 * What the record reads of a vCPU (`Vcpu`, which holds the record through its domain: named here,
 * not imported, as domain.ts imports this module): its id and its domain's, the walk's order.
 */
export interface OrderedVcpu {
  /** Index of the vCPU in its domain. */
  readonly id: number;
  /** The vCPU's domain, by its id. */
  readonly domain: { readonly id: number };
}

/** Orders vCPUs as a walk over the domains by id, then each domain's vCPUs by id, meets them. */
function before(a: OrderedVcpu, b: OrderedVcpu): boolean {
  return a.domain.id < b.domain.id || (a.domain.id === b.domain.id && a.id < b.id);
}

/**
 * Puts `vcpu` into `list` (ordered, without it) at its place. Nearly always the list is empty or the
 * vCPU goes last: a push then (a splice is a generic call that makes an array of what it removed).
 */
function insert<V extends OrderedVcpu>(list: V[], vcpu: V): void {
  let at = list.length;
  while (at > 0 && before(vcpu, list[at - 1]!)) at--;
  if (at === list.length) list.push(vcpu);
  else list.splice(at, 0, vcpu);
}

/** Takes `vcpu` out of `list`, where it is (nearly always the last: a pop then). */
function remove<V>(list: V[], vcpu: V): void {
  if (list[list.length - 1] === vcpu) list.pop();
  else list.splice(list.indexOf(vcpu), 1);
}

/**
 * The vCPUs of one machine with pending work, in order, and per device the vCPUs whose work is on it
 * (`PendingOperation.device`; a PF's whole-range VF BAR operation is recorded on the PF). Several
 * vCPUs can hold work on one device at once (Xen lets a domain start parallel operations: F2 in
 * docs/xen-gaps.md). Few vCPUs have work pending at a time, so the lists are plain ordered arrays.
 * `V` is the machine's `Vcpu`, `D` its `PciDevice`.
 */
export class PendingVcpus<V extends OrderedVcpu, D> {
  private readonly ordered: V[] = [];
  private readonly byDevice = new Map<D, V[]>();
  /**
   * A holders list emptied and out of `byDevice`, kept for the next device that gets work: a decoding
   * toggle makes an operation and finishes it, and each made and dropped a list.
   */
  private spare: V[] | undefined;

  /**
   * Records that `vcpu`'s work moved from device `previous` to device `next` (undefined: no work).
   * Called by `Vcpu.pending`'s setter only.
   * @internal
   */
  changed(vcpu: V, previous: D | undefined, next: D | undefined): void {
    if (previous === undefined && next !== undefined) insert(this.ordered, vcpu);
    else if (previous !== undefined && next === undefined) remove(this.ordered, vcpu);
    if (previous === next) return;
    if (previous !== undefined) {
      const holders = this.byDevice.get(previous)!;
      remove(holders, vcpu);
      if (holders.length === 0) {
        this.byDevice.delete(previous);
        this.spare = holders;
      }
    }
    if (next !== undefined) {
      let holders = this.byDevice.get(next);
      if (holders === undefined) {
        holders = this.spare ?? [];
        this.spare = undefined;
        this.byDevice.set(next, holders);
      }
      insert(holders, vcpu);
    }
  }

  /** How many vCPUs have work pending. */
  get size(): number {
    return this.ordered.length;
  }

  /** The vCPUs with work pending, domain id then vCPU id (the record itself: do not keep it across changes). */
  vcpus(): readonly V[] {
    return this.ordered;
  }

  /**
   * The first vCPU with work pending that comes after `vcpu` in order (the first of all without
   * one): a walk that finishes work as it goes asks for the next each time, and so meets the vCPUs
   * the finished work left pending, or set pending later in the order, as the walk over the domains
   * would.
   */
  after(vcpu: OrderedVcpu | undefined): V | undefined {
    if (vcpu === undefined) return this.ordered[0];
    for (const other of this.ordered) if (before(vcpu, other)) return other;
    return undefined;
  }

  /** The vCPUs whose pending work is on `device`, in order (none: an empty list). */
  on(device: D): readonly V[] {
    return this.byDevice.get(device) ?? NONE;
  }

  /** The first vCPU, in order, whose pending work is on `device`. */
  firstOn(device: D): V | undefined {
    return this.byDevice.get(device)?.[0];
  }
}

const NONE: readonly never[] = Object.freeze([]);
