/**
 * The state vPCI keeps for a PCI function (`struct vpci`): its handlers, the header's BAR slots and
 * command state, MSI-X. The function itself, with its owner, is a `PciDevice` (domain.ts).
 */
import type { Gfn, Mfn, Paddr } from '@vpci/p2m';
import type { RangeSet } from '@vpci/rangeset';
import { RegisterTable } from './registers.js';
import type { Sbdf } from './sbdf.js';
import { ENABLED_FLAG, EVERY_PART, NO_PART, READ_BY, stateChanged } from './state-generation.js';

/**
 * Kind of a BAR slot (Xen's `VPCI_BAR_*`).
 * - `empty`: unimplemented; `io`: I/O space (never mapped); `mem32`: 32-bit memory;
 * - `mem64lo` / `mem64hi`: the low slot (which holds the state) and high slot of a 64-bit BAR;
 * - `rom`: the expansion ROM (slot 6 of an endpoint, slot 2 of a bridge).
 */
export type BarType = 'empty' | 'io' | 'mem32' | 'mem64lo' | 'mem64hi' | 'rom';

/**
 * What a BAR tells of its changes (an index of BARs made from their fields).
 * @internal
 */
export interface BarWatcher {
  barChanged(): void;
}

/**
 * Where the decoding flags of a PF's VFs are kept together, by VF index (sriov-decoding.ts,
 * `VfDecoding`): a VF's `Bar.enabled` and `VpciState.barsMapped` read and write there while its vPCI
 * state is attached, so that a whole-range VF BAR operation flips an array, not thousands of objects.
 * @internal
 */
export interface PackedDecoding {
  /** By VF index: bit `s` (0–5) the VF's BAR in slot `s` enabled, bit 6 its memory decoding. */
  readonly bits: Uint8Array;
  /** Grows whenever a bit changes: part of every attached BAR's `changes`. */
  readonly flips: number;
  /** Sets or clears `mask` of VF `n`'s bits, counting the change. */
  setBits(n: number, mask: number, on: boolean): void;
  /** VF `n`'s MSI-X state or withheld pages were set or dropped (`VpciState`'s setters). */
  noted(n: number, what: 'msix' | 'withheld', present: boolean): void;
}

/** `PackedDecoding.bits`: the VF's memory decoding (`VpciState.barsMapped`). */
export const PACKED_MAPPED = 1 << 6;

/**
 * One BAR slot (Xen's `struct vpci_bar`). Addresses are byte addresses (`Paddr`) and sizes bytes; the
 * host address gives machine frames (`Mfn`), the guest address guest frames (`Gfn`), and the only
 * ways between the two are `hostFrameOf` and `guestFrameOf`, through this BAR's shift.
 */
export class Bar {
  /** Slot number: 0–5 for BARs, the ROM slot for the ROM. */
  readonly index: number;
  /** Prefetchable memory (the BAR register's bit 3). */
  prefetchable = false;
  /** Guest frames still to map or unmap (exists for memory BARs and the ROM). */
  mem: RangeSet<Gfn> | undefined;
  /** Resizable BAR: supported sizes as Xen stores them (bit n: 2^(n+20) bytes). */
  resizableSizes = 0n;
  /**
   * An I/O BAR decodes its ports at `addr`: kept by a rule set that decodes I/O BARs
   * (`RuleSet.ioBarWrite`, QEMU's); never under Xen's, which hands the hardware domain its ports.
   */
  portsDecoded = false;
  /**
   * How many times the BAR's type, addresses, size, enabled flag or half-written flag were set. Only
   * ever grows, so what was made from some BARs holds while their counts add up to the same sum
   * (`VpciState.barChanges`): the invariant checks and the replayer ask about every BAR of a domain
   * after every step, where comparing the fields themselves (bigints) cost more than the checks.
   */
  get changes(): number {
    return this.count + (this.packed === undefined ? 0 : this.packed.flips);
  }

  set changes(value: number) {
    this.count = value - (this.packed === undefined ? 0 : this.packed.flips);
  }

  /**
   * How many times the BAR's type, host address or size were set: all that its host frames
   * (`hostFrames`) and whether the sharing checks list it (`mappable`, `size`) are made of. Only ever
   * grows, as `changes` does, but stays put when only the enabled flag, the guest address or the
   * half-written flag is set (every map or unmap finishing, a guest moving its BAR): the host pages
   * worked out for a device (host-pages.ts, `VpciState.barHostChanges`) are kept across those.
   */
  get hostChanges(): number {
    return this.hostCount;
  }
  /**
   * Told of every change counted in `changes` (the engine's index of enabled BARs, `EnabledBarIndex`).
   * @internal
   */
  watcher: BarWatcher | undefined;
  /**
   * Told of every change counted in `hostChanges` (the machine's index of the devices' BARs by host
   * frame, `HostBarIndex`): a second listener, as `watcher` is the enabled-BAR index's.
   * @internal
   */
  hostWatcher: BarWatcher | undefined;

  private kind: BarType = 'empty';
  /**
   * Whether `kind` is a memory BAR or the ROM (`mappable`), set with it: the checks ask every BAR of
   * a device on every line they look at it, where the getter's three compares of the type's string
   * were not inlined (a CPU profile of replay's bench/bar-line-pieces.ts).
   */
  private memory = false;
  private hostAddr = 0n as Paddr;
  private guestAddress = 0n as Paddr;
  private bytes = 0n;
  private mapped = false;
  private half = false;
  private count = 0;
  private hostCount = 0;
  /** A VF's BAR while its vPCI state is attached to its PF's `PackedDecoding` (slots 0–5 only). */
  private packed: PackedDecoding | undefined;
  private packedAt = 0;
  /** The frame ranges of `guestAddr` and `addr`, made on first use and dropped by a change. */
  private guestCache: readonly [Gfn, Gfn] | undefined;
  private hostCache: readonly [Mfn, Mfn] | undefined;

  constructor(index: number) {
    this.index = index;
  }

  /**
   * A memory BAR or ROM as a device's registers decode it (`decodedBars`): its type, size and
   * address (host and guest alike) set at once, counted as setting each through its setter counts
   * (four changes), the half-written flag worked out once from them all. The sharing checks decode
   * a device's registers again after every line that wrote one, where the setters' three passes over
   * the half-written flag (bigint arithmetic) cost more than the decoding.
   * @internal
   */
  static decoded(index: number, type: BarType, size: bigint, addr: Paddr): Bar {
    const bar = new Bar(index);
    bar.kind = type;
    bar.memory = isMemory(type);
    bar.bytes = size;
    bar.hostAddr = addr;
    bar.guestAddress = addr;
    bar.half = halfHoldsProbe(bar);
    bar.count = 4;
    bar.hostCount = 3;
    // Read by the host pages only (`hostBarFrames`): the vPCI state holds no decoded BAR.
    stateChanged(READ_BY.hostPages);
    return bar;
  }

  /** Kind of the slot; setting it marks the BAR changed. */
  get type(): BarType {
    return this.kind;
  }

  set type(value: BarType) {
    this.kind = value;
    this.memory = isMemory(value);
    this.half = halfHoldsProbe(this);
    this.hostChanged();
    this.changed();
  }

  /** Host (machine) address. */
  get addr(): Paddr {
    return this.hostAddr;
  }

  set addr(value: Paddr) {
    this.hostAddr = value;
    this.hostCache = undefined;
    this.hostChanged();
    // Read by the host pages, and while the BAR is enabled by its window's shift too
    // (state-generation.ts): the hardware domain's BAR placements with decoding off keep the rest.
    this.changed(this.enabled ? READ_BY.hostPages | READ_BY.windows : READ_BY.hostPages);
  }

  /** Address the owning domain sees; equal to `addr` for the hardware domain. */
  get guestAddr(): Paddr {
    return this.guestAddress;
  }

  set guestAddr(value: Paddr) {
    this.guestAddress = value;
    this.guestCache = undefined;
    this.half = halfHoldsProbe(this);
    // Not enabled, the BAR's guest frames are read by a whole check only as work in flight, which it
    // compares as they are (state-generation.ts): a guest's BAR placements then keep its answer.
    // Enabled, by its window and the BAR loop's probe test. The host pages never read it.
    this.changed(this.enabled ? READ_BY.windows | READ_BY.rest : NO_PART);
  }

  /** Size in bytes (0 for an empty slot); setting it marks the BAR changed. */
  get size(): bigint {
    return this.bytes;
  }

  set size(value: bigint) {
    this.bytes = value;
    this.guestCache = undefined;
    this.hostCache = undefined;
    this.half = halfHoldsProbe(this);
    this.hostChanged();
    this.changed();
  }

  /** The BAR is mapped in the owner's p2m (Xen: "enabled"). */
  get enabled(): boolean {
    const packed = this.packed;
    return packed === undefined ? this.mapped : (packed.bits[this.packedAt]! & (1 << this.index)) !== 0;
  }

  set enabled(value: boolean) {
    this.setMapped(value);
    this.changed(ENABLED_FLAG);
  }

  /**
   * The flag kept in `packed` at VF `n`'s bits from now on (its value moved there by the caller), or,
   * `packed` undefined, kept here again with the value it had there. `changes` keeps growing across.
   * @internal
   */
  pack(packed: PackedDecoding | undefined, n: number): void {
    const old = this.packed;
    if (old !== undefined) {
      this.mapped = (old.bits[this.packedAt]! & (1 << this.index)) !== 0;
      this.count += old.flips;
    }
    this.packed = packed;
    this.packedAt = n;
    if (packed !== undefined) this.count -= packed.flips;
    this.changed(ENABLED_FLAG);
  }

  /** The `PackedDecoding` this BAR's flag is kept in, if any. @internal */
  get packedIn(): PackedDecoding | undefined {
    return this.packed;
  }

  private setMapped(value: boolean): void {
    if (this.packed === undefined) this.mapped = value;
    else this.packed.setBits(this.packedAt, 1 << this.index, value);
  }

  /**
   * Sets `enabled` and counts the change as the setter does, but leaves the state count
   * (`stateChanged`) and the watcher's index to the caller, who tells each once for many BARs
   * (`EnabledBarIndex.decodingFlipped`): a whole-range VF BAR operation flips thousands of VFs' BARs
   * (pending.ts, `vfFlags`).
   * @internal
   */
  setEnabledUntold(value: boolean): void {
    this.setMapped(value);
    this.count++;
  }

  /**
   * A half-written 64-bit BAR: one half of its (guest) address holds the sizing probe (every
   * address bit of that half above the size set) and the other does not, as between the writes of
   * a sizing or of its restore. Worked out again whenever the address, size or type is set; a BAR
   * rewritten one half at a time from one address to another never is. Invariant 8 and
   * `refuseProbeAddress` count it as a probe address.
   */
  get halfWritten(): boolean {
    return this.half;
  }

  set halfWritten(value: boolean) {
    this.half = value;
    this.changed(READ_BY.rest);
  }

  /**
   * Guest frames `[first, last]` the BAR touches (`frameRange` of `guestAddr`). The same object until
   * the address or size is next set. `last` passes 2^52 - 1 only for a BAR at a sizing probe near
   * 2^64 (Xen's frame arithmetic wraps there); no such frame is ever mapped.
   */
  guestFrames(): readonly [Gfn, Gfn] {
    this.guestCache ??= guestFrameRange(this.guestAddress, this.bytes);
    return this.guestCache;
  }

  /** Host frames `[first, last]` the BAR touches (`frameRange` of `addr`), remembered likewise. */
  hostFrames(): readonly [Mfn, Mfn] {
    this.hostCache ??= hostFrameRange(this.hostAddr, this.bytes);
    return this.hostCache;
  }

  /**
   * The machine frame this BAR maps guest frame `frame` to (Xen's `map_range`:
   * `PFN_DOWN(addr) + (frame - PFN_DOWN(guest_addr))`). A plain number: a guest address moved while
   * work was pending (F2) can put it outside `0 … 2^52 - 1`, where Xen's unsigned arithmetic wraps.
   */
  hostFrameOf(frame: Gfn): number {
    return this.hostFrames()[0] + (frame - this.guestFrames()[0]);
  }

  /**
   * The guest frame through which this BAR maps machine frame `frame`, one of its own host frames
   * (`hostFrameOf` backwards; a frame of the BAR lands on one of its guest frames).
   */
  guestFrameOf(frame: Mfn): Gfn {
    return (this.guestFrames()[0] + (frame - this.hostFrames()[0])) as Gfn;
  }

  /** Memory BARs and the ROM are mapped; I/O and empty slots and 64-bit high halves are not. */
  get mappable(): boolean {
    return this.memory;
  }

  /** Counts a change, told to the whole checks' count with the parts that read it (state-generation.ts). */
  /** A change counted in `hostChanges`, told to `hostWatcher`. */
  private hostChanged(): void {
    this.hostCount++;
    this.hostWatcher?.barChanged();
  }

  private changed(readBy = EVERY_PART): void {
    stateChanged(readBy);
    this.count++;
    this.watcher?.barChanged();
  }
}

/** MSI state (Xen's `struct vpci_msi`). */
export interface MsiState {
  /** Offset of the capability in config space (`pdev->msi_pos`). */
  readonly capOffset: number;
  /** Vectors the device supports (`pdev->msi_maxvec`, Multiple Message Capable). */
  readonly maxVectors: number;
  /** The capability holds 64-bit addresses. */
  readonly address64: boolean;
  /** The capability has Mask Bits (per-vector masking). */
  readonly masking: boolean;
  /** Message Address as the domain wrote it (64 bits). */
  address: bigint;
  /** Message Data as the domain wrote it (16 bits). */
  data: number;
  /** Mask Bits as the domain wrote them (32 bits). */
  mask: number;
  /** Vectors enabled (Multiple Message Enable), kept in a 6-bit field as Xen's `vectors : 6`. */
  vectors: number;
  /** MSI is enabled: Xen has enabled it on the device (`vpci_msi_arch_enable`). */
  enabled: boolean;
}

/** One MSI-X table entry as vPCI keeps it (Xen's `struct vpci_msix_entry`). */
export interface MsixEntry {
  /** Message Address as the domain wrote it (64 bits). */
  addr: bigint;
  /** Message Data as the domain wrote it (32 bits). */
  data: number;
  /** The entry's Mask bit (set at reset). */
  masked: boolean;
  /** Address or data written since Xen last set the entry up. */
  updated: boolean;
  /**
   * Xen has a PIRQ bound for the entry (`entry->arch.pirq != INVALID_PIRQ`): its set-up succeeded,
   * which in the model means the address was an x86 MSI address (`vpci_msi_update`).
   */
  bound: boolean;
}

/** Whether a slot of this type is mapped (`Bar.mappable`). */
function isMemory(type: BarType): boolean {
  return type === 'mem32' || type === 'mem64lo' || type === 'rom';
}

/** The BAR slots a VF's packed decoding covers (the VF BAR slots; slot 6, a ROM, never decodes). */
const PCI_SRIOV_SLOTS = 6;

const U32 = 0xffffffffn;

/**
 * The size whose probe masks `halfHoldsProbe` last worked out, and the masks, each half as an unsigned
 * 32-bit number: a machine's BARs come in few sizes, and this runs on every BAR address write (of a
 * sizing and of its restore), where a dozen bigint operations (each a new bigint) were its cost.
 */
let maskedSize = -1n;
let maskLow = 0;
let maskHigh = 0;

/** Whether exactly one half of a 64-bit BAR's guest address holds the sizing probe (`halfWritten`). */
function halfHoldsProbe(bar: Bar): boolean {
  if (bar.type !== 'mem64lo' || bar.size === 0n) return false;
  if (bar.size !== maskedSize) {
    // The address bits above the size (a 64-bit memory BAR's low 4 bits are its type).
    const bits = ~(bar.size - 1n) & ~0xfn & ((1n << 64n) - 1n);
    maskLow = Number(bits & U32);
    maskHigh = Number(bits >> 32n);
    maskedSize = bar.size;
  }
  // A half holds the probe when every mask bit is set in it (none when its mask is empty). `& mask`
  // of numbers keeps the low 32 bits; `>>> 0` reads them unsigned, as the masks are.
  const addr = bar.guestAddr;
  const low = maskLow !== 0 && (Number(addr & U32) & maskLow) >>> 0 === maskLow;
  const high = maskHigh !== 0 && (Number(addr >> 32n) & maskHigh) >>> 0 === maskHigh;
  return low !== high;
}

/** MSI-X state (Xen's `struct vpci_msix`): the raw Table and PBA Offset/BIR dwords. */
export interface MsixState {
  /** Offset of the capability in config space. */
  readonly capOffset: number;
  /** Raw Table Offset/BIR (index 0) and PBA Offset/BIR (index 1) dwords. */
  readonly tables: readonly [number, number];
  /** Table entries the device implements (Table Size + 1). */
  readonly maxEntries: number;
  /** The MSI-X Enable bit of the message control register. */
  enabled: boolean;
  /** The Function Mask bit of the message control register. */
  masked: boolean;
  /** The table entries vPCI emulates (`maxEntries` of them). */
  readonly entries: MsixEntry[];
  /**
   * How many of `entries` are `updated`, kept by `setEntryUpdated` (msix.ts), the one place that
   * changes the flag: `control_write`'s walk for the entries to set up again on enabling or unmasking
   * can only find some while this is not 0.
   * @internal
   */
  updatedEntries: number;
}

/** What vPCI keeps of a physical function's SR-IOV capability (the series' `struct vpci_sriov`). */
export interface SriovState {
  /** Offset of the SR-IOV extended capability. */
  readonly pos: number;
  /**
   * Each VF BAR slot as `size_vf_bars()` last sized it (VF 0's address, each VF's size, the type);
   * VF n's BAR i is `vfBars[i].addr + n × vfBars[i].size` (`vf_init_bars()`).
   */
  readonly vfBars: Bar[];
  /** NumVFs cached when VF Enable was set (the later series text's `sriov->num_vfs`). */
  numVfs: number;
  /** Counts the sizings that changed a VF BAR (type, address, size): a VF's BARs made from an equal count still hold. */
  generation: number;
}

/** Per-device vPCI state (Xen's `struct vpci`). */
export class VpciState {
  // The fields a running driver's config write reads (the handler table, the decoding flag, the MSI-X
  // state, a guest's command view and address) come first, declared in the order V8 lays them out:
  // over thousands of devices a write meets the state cold, and the fewer cache lines those fields
  // span, the fewer misses (the scale row; `msi`, which only a guest's command write reads, and the rest
  // follow).
  /**
   * The handlers of this device's config space, which `Machine.configRead` / `configWrite` dispatch to.
   *
   * @internal
   */
  readonly registers = new RegisterTable();
  private decoding = false;
  /** A VF's state attached to its PF's `PackedDecoding` (`barsMapped` kept there), at `packedAt`. */
  private packed: PackedDecoding | undefined;
  private msixState: MsixState | undefined;
  /** Guest's view of the command register (guests only). */
  guestCmd = 0;
  /** Virtual address a guest sees the device at (`0000:00:dd.0`); undefined for the hardware domain. */
  guestSbdf: Sbdf | undefined;
  /** The seven slots by index: the BARs and the ROM (at `romSlot`); unimplemented slots are `empty`. */
  readonly bars: Bar[] = Array.from({ length: 7 }, (_, i) => new Bar(i));
  /** Slot of the expansion ROM: 6 for an endpoint, 2 for a bridge. */
  romSlot = 6;
  /** ROM enable bit as last accepted (does not imply mapped). */
  romEnabled = false;
  private withheldPages: RangeSet<Gfn> | undefined;
  private packedAt = 0;

  /** Memory decoding is on from Xen's point of view. */
  get barsMapped(): boolean {
    const packed = this.packed;
    return packed === undefined ? this.decoding : (packed.bits[this.packedAt]! & PACKED_MAPPED) !== 0;
  }

  set barsMapped(value: boolean) {
    stateChanged(READ_BY.rest);
    if (this.packed === undefined) this.decoding = value;
    else this.packed.setBits(this.packedAt, PACKED_MAPPED, value);
  }

  /**
   * A VF's state: `barsMapped` and BAR slots 0–5's enabled flags kept in `packed` at VF `n`'s bits
   * from now on (their values moved there by the caller), or, `packed` undefined, here again.
   * @internal
   */
  pack(packed: PackedDecoding | undefined, n: number): void {
    const old = this.packed;
    if (old !== undefined) this.decoding = (old.bits[this.packedAt]! & PACKED_MAPPED) !== 0;
    this.packed = packed;
    this.packedAt = n;
    for (let i = 0; i < PCI_SRIOV_SLOTS; i++) this.bars[i]!.pack(packed, n);
    stateChanged(ENABLED_FLAG);
  }

  /** The `PackedDecoding` this state's flags are kept in, if any. @internal */
  get packedIn(): PackedDecoding | undefined {
    return this.packed;
  }

  // Xen staging's vpci.h still says "currently there's no support for SR-IOV" (F5 in
  // docs/xen-gaps.md); the engine follows the posted series instead (`sriov`, docs/sriov.md).
  /** MSI state; undefined when the device has no MSI capability or its set-up failed. */
  msi: MsiState | undefined;
  /** MSI-X state; undefined when the device has no MSI-X capability or its set-up failed. */
  get msix(): MsixState | undefined {
    return this.msixState;
  }

  set msix(value: MsixState | undefined) {
    stateChanged(READ_BY.windows);
    this.msixState = value;
    this.packed?.noted(this.packedAt, 'msix', value !== undefined);
  }

  /**
   * Hardened (`refuseSubpageSharing`): guest frames left unmapped when the device last started
   * decoding because their host page also held another domain's BAR. Whoever changes the set in
   * place tells `stateChanged` (state-generation.ts).
   */
  get withheld(): RangeSet<Gfn> | undefined {
    return this.withheldPages;
  }

  set withheld(value: RangeSet<Gfn> | undefined) {
    stateChanged(READ_BY.rest);
    this.withheldPages = value;
    this.packed?.noted(this.packedAt, 'withheld', value !== undefined);
  }
  /** Xen's `vpci->rebar`: where the resizable BAR capability is and how many BARs it lists. */
  rebar: { readonly offset: number; readonly nbars: number } | undefined;
  /** A VF: the PF's `SriovState.generation` its BARs were last made from (`vfInitBars`), or -1. */
  vfBarsGeneration = -1;
  /** A physical function's SR-IOV state (the series' `struct vpci_sriov`); undefined otherwise. */
  sriov: SriovState | undefined;

  /** The sum of the BARs' change counts (`Bar.changes`): the same while none of them changed. */
  barChanges(): number {
    let sum = 0;
    for (let i = 0; i < this.bars.length; i++) sum += this.bars[i]!.changes;
    return sum;
  }

  /**
   * The sum of the BARs' host change counts (`Bar.hostChanges`): the same while no BAR's type, host
   * address or size was set (the enabled flag and the guest address may have been).
   */
  barHostChanges(): number {
    let sum = 0;
    for (let i = 0; i < this.bars.length; i++) sum += this.bars[i]!.hostChanges;
    return sum;
  }
}

/**
 * `value`, an address read from or written to BAR registers, as a byte address. Made of at most two
 * 32-bit register halves, it is always in `0 … 2^64 - 1`, so it is not checked again.
 */
export function barAddress(value: bigint): Paddr {
  return value as Paddr;
}

/** Page-granular frame range `[first, last]` (inclusive) of `size` bytes at `addr`. */
export function frameRange(addr: bigint, size: bigint): [number, number] {
  return [Number(addr >> 12n), Number((addr + size - 1n) >> 12n)];
}

/** `frameRange` of a guest address: guest frames. */
export function guestFrameRange(guestAddr: bigint, size: bigint): [Gfn, Gfn] {
  return frameRange(guestAddr, size) as [Gfn, Gfn];
}

/** `frameRange` of a host address: machine frames. */
export function hostFrameRange(addr: bigint, size: bigint): [Mfn, Mfn] {
  return frameRange(addr, size) as [Mfn, Mfn];
}
