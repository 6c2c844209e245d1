/**
 * The machine-wide record of the vCPUs with pending vPCI work (Xen's `v->vpci` with a device set),
 * kept by `Vcpu.pending`'s setter (the only way to set or clear a vCPU's work, so the record cannot
 * drift from the vCPUs): the checks and the toolstack paths ask it rather than walking every vCPU of
 * every domain, which grows with the machine. Both lists are in Xen's order, domain id then vCPU id:
 * the order a walk over `Machine.domains()` and each domain's `vcpus` meets them, so whichever
 * vCPU's work such a walk would finish or report first, the record gives first.
 */
import type { PciDevice, PendingOperation, Vcpu } from './domain.js';

/** Orders vCPUs as a walk over the domains by id, then each domain's vCPUs by id, meets them. */
function before(a: Vcpu, b: Vcpu): boolean {
  return a.domain.id < b.domain.id || (a.domain.id === b.domain.id && a.id < b.id);
}

/** Puts `vcpu` into `list` (ordered, without it) at its place. */
function insert(list: Vcpu[], vcpu: Vcpu): void {
  let at = list.length;
  while (at > 0 && before(vcpu, list[at - 1]!)) at--;
  list.splice(at, 0, vcpu);
}

/** Takes `vcpu` out of `list`, where it is. */
function remove(list: Vcpu[], vcpu: Vcpu): void {
  list.splice(list.indexOf(vcpu), 1);
}

/**
 * The vCPUs of one machine with pending work, in order, and per device the vCPUs whose work is on it
 * (`PendingOperation.device`; a PF's whole-range VF BAR operation is recorded on the PF). Several
 * vCPUs can hold work on one device at once (Xen lets a domain start parallel operations: F2 in
 * docs/xen-gaps.md). Few vCPUs have work pending at a time, so the lists are plain ordered arrays.
 */
export class PendingVcpus {
  private readonly ordered: Vcpu[] = [];
  private readonly byDevice = new Map<PciDevice, Vcpu[]>();

  /**
   * Records that `vcpu`'s work went from `previous` to `next` (either may be undefined). Called by
   * `Vcpu.pending`'s setter only.
   * @internal
   */
  changed(vcpu: Vcpu, previous: PendingOperation | undefined, next: PendingOperation | undefined): void {
    if (previous === undefined && next !== undefined) insert(this.ordered, vcpu);
    else if (previous !== undefined && next === undefined) remove(this.ordered, vcpu);
    if (previous?.device === next?.device) return;
    if (previous !== undefined) {
      const holders = this.byDevice.get(previous.device)!;
      if (holders.length === 1) this.byDevice.delete(previous.device);
      else remove(holders, vcpu);
    }
    if (next !== undefined) {
      const holders = this.byDevice.get(next.device);
      if (holders === undefined) this.byDevice.set(next.device, [vcpu]);
      else insert(holders, vcpu);
    }
  }

  /** How many vCPUs have work pending. */
  get size(): number {
    return this.ordered.length;
  }

  /** The vCPUs with work pending, domain id then vCPU id (the record itself: do not keep it across changes). */
  vcpus(): readonly Vcpu[] {
    return this.ordered;
  }

  /**
   * The first vCPU with work pending that comes after `vcpu` in order (the first of all without
   * one): a walk that finishes work as it goes asks for the next each time, and so meets the vCPUs
   * the finished work left pending, or set pending later in the order, as the walk over the domains
   * would.
   */
  after(vcpu: Vcpu | undefined): Vcpu | undefined {
    if (vcpu === undefined) return this.ordered[0];
    for (const other of this.ordered) if (before(vcpu, other)) return other;
    return undefined;
  }

  /** The vCPUs whose pending work is on `device`, in order (none: an empty list). */
  on(device: PciDevice): readonly Vcpu[] {
    return this.byDevice.get(device) ?? NONE;
  }

  /** The first vCPU, in order, whose pending work is on `device`. */
  firstOn(device: PciDevice): Vcpu | undefined {
    return this.byDevice.get(device)?.[0];
  }
}

const NONE: readonly Vcpu[] = Object.freeze([]);
