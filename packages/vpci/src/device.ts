/**
 * A PCI function as the engine sees it: the physical device, its owner, and the vPCI state Xen keeps
 * for it (`struct vpci`): handlers, the header's BARs and command state, MSI-X.
 */
import type { RangeSet } from '@vpci/rangeset';
import type { Domain } from './domain.js';
import type { PhysicalDevice } from './hardware.js';
import { RegisterTable } from './registers.js';
import { formatSbdf, type Sbdf } from './sbdf.js';

/**
 * Kind of a BAR slot (Xen's `VPCI_BAR_*`).
 * - `empty`: unimplemented; `io`: I/O space (never mapped); `mem32`: 32-bit memory;
 * - `mem64lo` / `mem64hi`: the low slot (which holds the state) and high slot of a 64-bit BAR;
 * - `rom`: the expansion ROM (slot 6 of an endpoint, slot 2 of a bridge).
 */
export type BarType = 'empty' | 'io' | 'mem32' | 'mem64lo' | 'mem64hi' | 'rom';

/** One BAR slot (Xen's `struct vpci_bar`). Addresses and sizes are bytes. */
export class Bar {
  /** Slot number: 0–5 for BARs, the ROM slot for the ROM. */
  readonly index: number;
  type: BarType = 'empty';
  /** Host (machine) address. */
  addr = 0n;
  /** Address the owning domain sees; equal to `addr` for the hardware domain. */
  guestAddr = 0n;
  size = 0n;
  prefetchable = false;
  /** The BAR is mapped in the owner's p2m (Xen: "enabled"). */
  enabled = false;
  /** Guest frames still to map or unmap (exists for memory BARs and the ROM). */
  mem: RangeSet | undefined;
  /** Resizable BAR: supported sizes as Xen stores them (bit n: 2^(n+20) bytes). */
  resizableSizes = 0n;
  /** Hardened bookkeeping: one half of this 64-bit BAR was written since its address was whole. */
  halfWritten = false;

  private guestCache: { addr: bigint; size: bigint; frames: readonly [number, number] } | undefined;
  private hostCache: { addr: bigint; size: bigint; frames: readonly [number, number] } | undefined;

  constructor(index: number) {
    this.index = index;
  }

  /**
   * Guest frames `[first, last]` the BAR touches (`frameRange` of `guestAddr`), remembered until the
   * address or size changes: the invariant checks ask for them after every step.
   */
  guestFrames(): readonly [number, number] {
    const cache = this.guestCache;
    if (cache !== undefined && cache.addr === this.guestAddr && cache.size === this.size) return cache.frames;
    const frames = frameRange(this.guestAddr, this.size);
    this.guestCache = { addr: this.guestAddr, size: this.size, frames };
    return frames;
  }

  /** Host frames `[first, last]` the BAR touches, remembered likewise. */
  hostFrames(): readonly [number, number] {
    const cache = this.hostCache;
    if (cache !== undefined && cache.addr === this.addr && cache.size === this.size) return cache.frames;
    const frames = frameRange(this.addr, this.size);
    this.hostCache = { addr: this.addr, size: this.size, frames };
    return frames;
  }

  /** Memory BARs and the ROM are mapped; I/O and empty slots and 64-bit high halves are not. */
  get mappable(): boolean {
    return this.type === 'mem32' || this.type === 'mem64lo' || this.type === 'rom';
  }
}

/** MSI-X state (Xen's `struct vpci_msix`): the raw Table and PBA Offset/BIR dwords. */
export interface MsixState {
  /** Offset of the capability in config space. */
  readonly capOffset: number;
  /** Raw Table Offset/BIR (index 0) and PBA Offset/BIR (index 1) dwords. */
  readonly tables: readonly [number, number];
  readonly maxEntries: number;
  enabled: boolean;
  masked: boolean;
}

/** Per-device vPCI state (Xen's `struct vpci`). */
export class VpciState {
  readonly registers = new RegisterTable();
  readonly bars: Bar[] = Array.from({ length: 7 }, (_, i) => new Bar(i));
  /** Slot of the expansion ROM: 6 for an endpoint, 2 for a bridge. */
  romSlot = 6;
  /** Guest's view of the command register (guests only). */
  guestCmd = 0;
  /** ROM enable bit as last accepted (does not imply mapped). */
  romEnabled = false;
  /** Memory decoding is on from Xen's point of view. */
  barsMapped = false;
  msix: MsixState | undefined;
  /**
   * Hardened (`refuseSubpageSharing`): guest frames left unmapped when the device last started
   * decoding because their host page also held another domain's BAR.
   */
  withheld: RangeSet | undefined;
  /** Virtual address a guest sees the device at (`0000:00:dd.0`); undefined for the hardware domain. */
  guestSbdf: Sbdf | undefined;
}

/** A PCI function on the host. */
export class PciDevice {
  readonly sbdf: Sbdf;
  /** `ssss:bb:dd.f`. */
  readonly name: string;
  readonly hw: PhysicalDevice;
  /** Owner; undefined until the hardware domain is set up. */
  domain: Domain | undefined;
  /** vPCI state while assigned to a domain with vPCI. */
  vpci: VpciState | undefined;
  /** The BARs the registers decoded after `writes` hardware writes (see `hostBars`). */
  decodedBars: { readonly writes: number; readonly bars: readonly Bar[] } | undefined;

  constructor(hw: PhysicalDevice) {
    this.hw = hw;
    this.sbdf = hw.sbdf;
    this.name = formatSbdf(hw.sbdf);
  }
}

/** Page-granular frame range `[first, last]` (inclusive) of `size` bytes at `addr`. */
export function frameRange(addr: bigint, size: bigint): [number, number] {
  return [Number(addr >> 12n), Number((addr + size - 1n) >> 12n)];
}
