/**
 * Hardened (`mapVfBarRanges`): the decoding flags of a physical function's VFs kept per VF BAR array,
 * by VF index, instead of in each VF's objects. A whole-range VF BAR operation (sriov.ts,
 * `queueVfRanges`; pending.ts, `vfDecoding`) covers every VF of the PF's owner at once: it finds the
 * VFs to change and flips their BARs' enabled flags and memory decoding here, in a byte per VF, and the
 * enabled-BAR index (enabled-bars.ts) holds the array's VFs as one array, expanded to VFs only where a
 * search meets it. A VF's `Bar.enabled` and `VpciState.barsMapped` read and write here while its vPCI
 * state is attached (`PackedDecoding`, device.ts), so every other reader sees the same flags.
 *
 * A VF is attached while it is the PF owner's with vPCI state and its enabled BARs sit where the
 * array puts them (`VF BAR i + n × size_i`, page-aligned whole pages); anything else (another domain's
 * VF, one without vPCI state, a BAR elsewhere) keeps its flags in its own objects, and the operations
 * work it VF by VF, as before. The machine tells this module of every change to a VF's owner or vPCI
 * state (`keepVfDecoding`), the index of a VF's BARs that changed (`VfDecoding.keeps`).
 */
import { type Bar, PACKED_MAPPED, type PackedDecoding, type SriovState, type VpciState } from './device.js';
import type { PciDevice } from './domain.js';

/**
 * What the arrays read of the machine: a part of `EngineContext` (named here, as the enabled-BAR index,
 * which this module's arrays are held by, is named there).
 */
interface DecodingContext {
  readonly policy: { readonly mapVfBarRanges: boolean };
  readonly packVfDecoding?: boolean;
  readonly enabledBars?: { renewed(device: PciDevice): void } | undefined;
}

/** `VfDecoding.flags`: the VF's vPCI state is attached (its flags are in `bits`). */
export const VF_ATTACHED = 1;
/** `VfDecoding.flags`: the attached VF has MSI-X state (its table and PBA pages are holes). */
export const VF_MSIX = 2;
/** `VfDecoding.flags`: the attached VF withholds pages (`refuseSubpageSharing`). */
export const VF_WITHHELD = 4;
const ATTACHED = VF_ATTACHED;
const MSIX = VF_MSIX;
const WITHHELD = VF_WITHHELD;
/** `VfDecoding.flags`: the attached VF's BARs are made from the PF's current sizing (`vfInitBars`). */
const CURRENT = 8;
/** The BAR bits of `bits` (slots 0–5). */
const BAR_BITS = 0x3f;

/** Where VF n's BAR of one slot is: guest frames `first + n × per … first + (n + 1) × per - 1`. */
interface SlotLayout {
  readonly first: number;
  readonly per: number;
}

/** The VF BAR arrays' decoding of one PF, by VF index. */
export class VfDecoding implements PackedDecoding {
  /** By VF index: bit `s` (0–5) the VF's BAR in slot `s` enabled, bit 6 its memory decoding. */
  bits = new Uint8Array(0);
  /** By VF index: `ATTACHED`, `MSIX`, `WITHHELD`, `CURRENT`. */
  flags = new Uint8Array(0);
  /** By VF index: the attached VF. */
  readonly devices: (PciDevice | undefined)[] = [];
  /** By VF index: the attached vPCI state. */
  private readonly states: (VpciState | undefined)[] = [];
  /** The PF's VFs not attached (checked one by one where they could count); pruned as they go. */
  readonly loose = new Set<PciDevice>();
  /** How many BAR bits are set, over the attached VFs: their enabled BARs. */
  onBars = 0;
  /** Grows whenever a bit changes. */
  flips = 0;
  /** How many attached VFs have MSI-X state, and how many withhold pages. */
  withMsix = 0;
  withWithheld = 0;
  /** Grows with every VF attached or detached. */
  attachments = 0;
  /** How many VFs are attached, and of those, how many decode memory (`barsMapped`). */
  attachedCount = 0;
  mappedCount = 0;
  /** The highest attached VF index, or -1: with `attachedCount` it tells whether VFs 0 … n are all attached. */
  private top = -1;
  /**
   * How many attached VFs flip alone (`flipsAlone`): with VFs 0 … n - 1 all the attached VFs,
   * `allFlipAlone` is this count's, not a pass over their flags.
   */
  private alone = 0;
  /**
   * The one value of `bits` at VFs 0 … `top`, or -1 when they may differ: VF MSE on or off turns
   * every byte the same way, so `flipAll` fills them at once instead of byte by byte.
   */
  private sameBits = -1;
  /** `wholeCover`'s last answer, with the count and attachments it was made for. */
  private cover: (WholeCover & { readonly count: number; readonly attachments: number }) | undefined;
  private layoutGeneration = -1;
  private layoutBySlot: (SlotLayout | undefined)[] = [];

  constructor(
    readonly context: DecodingContext,
    readonly pf: PciDevice,
    private readonly sriov: SriovState,
  ) {}

  setBits(n: number, mask: number, on: boolean): void {
    const was = this.bits[n]!;
    const now = on ? was | mask : was & ~mask;
    if (now === was) return;
    this.bits[n] = now;
    this.sameBits = -1;
    this.onBars += popcount(now & BAR_BITS) - popcount(was & BAR_BITS);
    this.mappedCount += ((now & PACKED_MAPPED) - (was & PACKED_MAPPED)) / PACKED_MAPPED;
    this.flips++;
  }

  /**
   * When VFs 0 … n - 1 are all the attached VFs and all in the same decoding, `map` or not, n;
   * else -1 (a whole-range operation then picks its VFs one byte at a time).
   */
  uniform(map: boolean): number {
    const n = this.attachedCount;
    if (n === 0 || this.top !== n - 1) return -1;
    return this.mappedCount === (map ? n : 0) ? n : -1;
  }

  /**
   * VFs 0 … `count` - 1, all attached, with BARs of the current sizing and no MSI-X, flipped as
   * `flipVf` flips each (one pass over their bytes).
   */
  flipAll(count: number, mask: number, map: boolean): void {
    const bits = this.bits;
    const whole = count === this.top + 1;
    if (whole && this.sameBits >= 0) {
      // Every byte the same before, so after: one fill, the counts from one byte's change.
      const was = this.sameBits;
      const now = flipped(was, mask, map);
      bits.fill(now, 0, count);
      this.onBars += count * (POPCOUNT[now & BAR_BITS]! - POPCOUNT[was & BAR_BITS]!);
      this.mappedCount += (count * ((now & PACKED_MAPPED) - (was & PACKED_MAPPED))) / PACKED_MAPPED;
      this.sameBits = now;
      this.flips++;
      return;
    }
    let on = this.onBars;
    let mapped = this.mappedCount;
    const first = count === 0 ? -1 : flipped(bits[0]!, mask, map);
    let same = whole;
    for (let n = 0; n < count; n++) {
      const was = bits[n]!;
      const now = flipped(was, mask, map);
      bits[n] = now;
      same &&= now === first;
      on += POPCOUNT[now & BAR_BITS]! - POPCOUNT[was & BAR_BITS]!;
      mapped += ((now & PACKED_MAPPED) - (was & PACKED_MAPPED)) / PACKED_MAPPED;
    }
    this.onBars = on;
    this.mappedCount = mapped;
    this.sameBits = same ? first : -1;
    this.flips++;
  }

  /**
   * VFs 0 … `count` - 1, all attached, as a whole-range operation covers them: made once and handed
   * out again until a VF is attached or detached (every VF MSE write asks; the answer is read only).
   */
  wholeCover(count: number): WholeCover {
    const cover = this.cover;
    if (cover !== undefined && cover.count === count && cover.attachments === this.attachments) return cover;
    const packed = new Uint8Array(this.length);
    packed.fill(1, 0, count);
    const made = {
      vfs: this.devices.slice(0, count) as PciDevice[],
      indexes: Array.from({ length: count }, (_, n) => n),
      packed,
      count,
      attachments: this.attachments,
    };
    this.cover = made;
    return made;
  }

  /** Whether each of VFs 0 … `count` - 1 flips alone (`flipsAlone`). */
  allFlipAlone(count: number): boolean {
    if (this.withMsix !== 0) return false;
    if (count === this.attachedCount && count === this.top + 1) return this.alone === count;
    const flags = this.flags;
    for (let n = 0; n < count; n++)
      if ((flags[n]! & (ATTACHED | CURRENT | MSIX)) !== (ATTACHED | CURRENT)) return false;
    return true;
  }

  noted(n: number, what: 'msix' | 'withheld', present: boolean): void {
    const flag = what === 'msix' ? MSIX : WITHHELD;
    const was = this.flags[n]!;
    const now = present ? was | flag : was & ~flag;
    if (now === was) return;
    this.setFlags(n, now);
    if (flag === MSIX) this.withMsix += present ? 1 : -1;
    else this.withWithheld += present ? 1 : -1;
  }

  /** VF `n`'s BARs were made from the PF's current sizing (`vfInitBars`). */
  madeCurrent(n: number): void {
    if (n < this.flags.length && (this.flags[n]! & ATTACHED) !== 0)
      this.setFlags(n, this.flags[n]! | CURRENT);
  }

  /** The PF's VF BARs were sized anew: no attached VF's BARs are the current sizing's until made again. */
  sizedAnew(): void {
    for (let n = 0; n < this.flags.length; n++) this.setFlags(n, this.flags[n]! & ~CURRENT);
  }

  /** VF `n`'s flags set, the count of VFs that flip alone kept with them. */
  private setFlags(n: number, now: number): void {
    this.alone += Number(flipsAlone(now)) - Number(flipsAlone(this.flags[n]!));
    this.flags[n] = now;
  }

  /** Whether VF `n` is attached, has MSI-X, withholds pages, or has BARs of the current sizing. */
  attached(n: number): boolean {
    return (this.flags[n]! & ATTACHED) !== 0;
  }
  hasMsix(n: number): boolean {
    return (this.flags[n]! & MSIX) !== 0;
  }
  withholds(n: number): boolean {
    return (this.flags[n]! & WITHHELD) !== 0;
  }
  current(n: number): boolean {
    return (this.flags[n]! & CURRENT) !== 0;
  }
  /**
   * Whether VF `n` is attached, with BARs of the current sizing and no MSI-X: a whole-range operation
   * flips it here alone (`flipVf`).
   */
  flipsAlone(n: number): boolean {
    return flipsAlone(this.flags[n]!);
  }

  /** Whether attached VF `n` decodes memory (`barsMapped`). */
  mapped(n: number): boolean {
    return (this.bits[n]! & PACKED_MAPPED) !== 0;
  }

  /**
   * Attached VF `n`'s BARs in `mask` turn on or off and its memory decoding with them: `vfFlags` for a
   * VF whose BARs are the current sizing's (so mappable as the slots are), with no MSI-X holes to make,
   * on x86 (where `pci_check_bar` passes every BAR). Untold: the caller tells the state count once.
   */
  flipVf(n: number, mask: number, map: boolean): void {
    const was = this.bits[n]!;
    const now = flipped(was, mask, map);
    if (now === was) return;
    this.bits[n] = now;
    this.sameBits = -1;
    this.onBars += popcount(now & BAR_BITS) - popcount(was & BAR_BITS);
    this.mappedCount += ((now & PACKED_MAPPED) - (was & PACKED_MAPPED)) / PACKED_MAPPED;
    this.flips++;
  }

  /** Slot `s`'s layout, from the PF's current VF BAR sizing; undefined when not whole pages. */
  layout(s: number): SlotLayout | undefined {
    if (this.layoutGeneration !== this.sriov.generation) {
      this.layoutGeneration = this.sriov.generation;
      this.layoutBySlot = this.sriov.vfBars.map(slotLayout);
    }
    return this.layoutBySlot[s];
  }

  /**
   * Whether attached `vf`'s enabled BARs sit where the array puts them; if not, it is detached (its
   * flags go back into its objects, and the index looks at it again) and false is returned.
   */
  keeps(vf: PciDevice): boolean {
    const vpci = vf.vpci;
    if (vpci === undefined || vpci.packedIn !== this) return false;
    if (atLayout(this, vf.vfIndex, vpci.bars)) return true;
    this.detach(vf.vfIndex);
    this.loose.add(vf);
    this.context.enabledBars?.renewed(vf);
    return false;
  }

  /** `vf` (VF `n`) attached: its flags move here. */
  attach(vf: PciDevice, vpci: VpciState): void {
    const n = vf.vfIndex;
    if (n >= this.bits.length) {
      const size = Math.max(n + 1, 2 * this.bits.length);
      const bits = new Uint8Array(size);
      bits.set(this.bits);
      this.bits = bits;
      const flags = new Uint8Array(size);
      flags.set(this.flags);
      this.flags = flags;
    }
    let bits = vpci.barsMapped ? PACKED_MAPPED : 0;
    for (let s = 0; s < 6; s++) if (vpci.bars[s]!.enabled) bits |= 1 << s;
    this.bits[n] = bits;
    this.sameBits = -1;
    this.setFlags(
      n,
      ATTACHED |
        (vpci.msix !== undefined ? MSIX : 0) |
        (vpci.withheld !== undefined ? WITHHELD : 0) |
        (vpci.vfBarsGeneration === this.sriov.generation ? CURRENT : 0),
    );
    this.devices[n] = vf;
    this.states[n] = vpci;
    this.onBars += popcount(bits & BAR_BITS);
    if (vpci.msix !== undefined) this.withMsix++;
    if (vpci.withheld !== undefined) this.withWithheld++;
    this.attachedCount++;
    this.attachments++;
    if ((bits & PACKED_MAPPED) !== 0) this.mappedCount++;
    if (n > this.top) this.top = n;
    this.flips++;
    vpci.pack(this, n);
  }

  /** Whatever is attached at VF `n` is detached: its flags go back into its objects. */
  detach(n: number): void {
    const vpci = this.states[n];
    if (vpci === undefined) return;
    vpci.pack(undefined, n);
    this.onBars -= popcount(this.bits[n]! & BAR_BITS);
    if ((this.flags[n]! & MSIX) !== 0) this.withMsix--;
    if ((this.flags[n]! & WITHHELD) !== 0) this.withWithheld--;
    this.attachedCount--;
    this.attachments++;
    if ((this.bits[n]! & PACKED_MAPPED) !== 0) this.mappedCount--;
    this.bits[n] = 0;
    this.sameBits = -1;
    this.setFlags(n, 0);
    this.devices[n] = undefined;
    this.states[n] = undefined;
    this.flips++;
    // VFs leave last first: the next below is found at once.
    while (this.top >= 0 && (this.flags[this.top]! & ATTACHED) === 0) this.top--;
  }

  /** The vPCI state attached at VF `n`, if any. */
  stateAt(n: number): VpciState | undefined {
    return this.states[n];
  }

  /** How many VF indexes the array has room for. */
  get length(): number {
    return this.bits.length;
  }
}

/** `VfDecoding.wholeCover`: the VFs, their indexes, and by VF index 1 for each (0 past them). */
export interface WholeCover {
  readonly vfs: readonly PciDevice[];
  readonly indexes: readonly number[];
  readonly packed: Uint8Array;
}

/** A VF's decoding byte `was` with the BARs of `mask` and memory decoding turned on (`map`) or off. */
function flipped(was: number, mask: number, map: boolean): number {
  return map ? was | mask | PACKED_MAPPED : was & ~mask & ~PACKED_MAPPED;
}

/** Whether a VF with these `flags` is attached, with BARs of the current sizing and no MSI-X. */
function flipsAlone(flags: number): boolean {
  return (flags & (ATTACHED | CURRENT | MSIX)) === (ATTACHED | CURRENT);
}

/** Set bits of each 8-bit value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let v = b; v !== 0; v &= v - 1) n++;
  return n;
});

function popcount(b: number): number {
  return POPCOUNT[b & 0xff]!;
}

/** How many BARs a VF's `bits` say are enabled. */
export function barCount(bits: number): number {
  return POPCOUNT[bits & BAR_BITS]!;
}

/** A slot's layout when each VF's BAR is whole pages from a page boundary. */
function slotLayout(slot: Bar): SlotLayout | undefined {
  if (!slot.mappable || slot.size === 0n || slot.size % 4096n !== 0n || slot.addr % 4096n !== 0n)
    return undefined;
  return { first: Number(slot.addr >> 12n), per: Number(slot.size >> 12n) };
}

/** Whether VF `n`'s enabled BARs (slots 0–5) are at the array's layout. */
function atLayout(decoding: VfDecoding, n: number, bars: readonly Bar[]): boolean {
  for (let s = 0; s < 6; s++) {
    const bar = bars[s]!;
    if (!bar.enabled) continue;
    const at = decoding.layout(s);
    if (at === undefined) return false;
    const frames = bar.guestFrames();
    if (frames[0] !== at.first + n * at.per || frames[1] !== at.first + (n + 1) * at.per - 1) return false;
  }
  return true;
}

const arrays = new WeakMap<SriovState, VfDecoding>();

/** The PF's VF decoding array, if its VFs are kept packed. */
export function vfDecodingOf(pf: PciDevice): VfDecoding | undefined {
  const sriov = pf.vpci?.sriov;
  return sriov === undefined ? undefined : arrays.get(sriov);
}

/**
 * A VF's owner or vPCI state changed, or its PF's (then each of its VFs): attached or detached as it
 * now stands. Called by the machine wherever a device joins or leaves a domain's list or gets a new
 * vPCI state, and after a sizing that changed the PF's VF BARs.
 */
export function keepVfDecoding(context: DecodingContext, device: PciDevice): void {
  if (context.packVfDecoding !== true) return;
  const pf = device.physfn;
  if (pf !== undefined) keepVf(context, pf, device);
  for (const vf of device.virtfns) keepVf(context, device, vf);
}

function keepVf(context: DecodingContext, pf: PciDevice, vf: PciDevice): void {
  const n = vf.vfIndex;
  const sriov = pf.vpci?.sriov;
  const vpci = vf.vpci;
  let want: VfDecoding | undefined;
  if (context.policy.mapVfBarRanges && sriov !== undefined) {
    want = arrays.get(sriov);
    if (want === undefined) {
      want = new VfDecoding(context, pf, sriov);
      arrays.set(sriov, want);
    }
  }
  // Attached elsewhere (a PF's former state's array), or something else attached at `n`.
  const held = vpci?.packedIn;
  if (held !== undefined && held !== want && held instanceof VfDecoding) held.detach(n);
  if (want === undefined) return;
  const member =
    vpci !== undefined &&
    vf.domain !== undefined &&
    vf.domain === pf.domain &&
    vf.physfn === pf &&
    atLayout(want, n, vpci.bars);
  const there = n < want.length ? want.stateAt(n) : undefined;
  if (there !== undefined && (!member || there !== vpci)) want.detach(n);
  if (member && vpci.packedIn !== want) want.attach(vf, vpci);
  if (member) want.loose.delete(vf);
  else want.loose.add(vf);
  context.enabledBars?.renewed(vf);
}
