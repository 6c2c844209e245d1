/**
 * hvmloader's phase 2: how large the low MMIO hole is (`pci_setup` after the scan). A fixed
 * `platform/mmio_hole_size` wins if it is small enough; otherwise the hole's start halves from
 * 0xF000_0000 (doubling the hole) until the MMIO fits, 2 GiB is reached, or (without memory
 * relocation) RAM would be in the way; RMRRs in the hole pull its start down to the end of low RAM.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { GB4, HVM_BELOW_4G_MMIO_START } from './constants.js';

/** A region of the guest's memory map (an E820_RESERVED entry, e.g. an RMRR): `size` bytes at `addr`. */
export interface MemoryRegion {
  /** Start address in bytes. */
  readonly addr: bigint;
  /** Length in bytes. */
  readonly size: bigint;
}

/** What the hole is sized from. */
export interface LowHoleInput {
  /** `mmio_total`: memory BARs and ROMs the low hole should hold (64-bit BARs over 1 GiB excluded). */
  readonly mmioTotal: bigint;
  /** A 64-bit BAR over 1 GiB was seen (`bar64_relocate` after the scan). */
  readonly bar64Relocate: boolean;
  /** `pci_mem_end` (0xFC00_0000, or lower after the xenpci special case). */
  readonly pciMemEnd: bigint;
  /** `platform/mmio_hole_size` in bytes; 0n: not set. */
  readonly mmioHoleSize: bigint;
  /** `hvmloader/allow-memory-relocate`. */
  readonly allowMemoryRelocate: boolean;
  /** `hvm_info->low_mem_pgend`: one past the last page of RAM below 4 GiB. */
  readonly lowMemPgend: number;
  /** E820_RESERVED regions of the guest memory map. */
  readonly reserved: readonly MemoryRegion[];
}

/** The sized hole. */
export interface LowHole {
  /** `pci_mem_start`. */
  readonly pciMemStart: bigint;
  /** `bar64_relocate`: some 64-bit BARs will be placed above 4 GiB. */
  readonly bar64Relocate: boolean;
  /** hvmloader's messages, in its words. */
  readonly log: readonly string[];
}

/** Xen's `check_overlap`: `[start, start+size)` meets `[rstart, rstart+rsize)`. */
export function checkOverlap(start: bigint, size: bigint, rstart: bigint, rsize: bigint): boolean {
  return start + size > rstart && start < rstart + rsize;
}

/** Sizes the low MMIO hole as hvmloader does; see the module comment. */
export function sizeLowHole(input: LowHoleInput): LowHole {
  const { mmioTotal, pciMemEnd, mmioHoleSize, allowMemoryRelocate, lowMemPgend, reserved } = input;
  if (typeof mmioHoleSize !== 'bigint' || mmioHoleSize < 0n)
    throw new InvalidArgumentError('mmioHoleSize', mmioHoleSize, 'a byte count (bigint >= 0n)');
  if (!Number.isInteger(lowMemPgend) || lowMemPgend < 0 || lowMemPgend > 0x100000)
    throw new InvalidArgumentError('lowMemPgend', lowMemPgend, 'a page number in 0 … 0x100000 (4 GiB)');
  const log: string[] = [];
  let pciMemStart = HVM_BELOW_4G_MMIO_START;
  const lowRamEnd = BigInt(lowMemPgend) << 12n;
  if (mmioHoleSize !== 0n) {
    // Unsigned 64-bit in hvmloader: a hole over 4 GiB wraps to a huge value and is ignored too.
    const maxRamBelow4g = (GB4 - mmioHoleSize) & ((1n << 64n) - 1n);
    if (maxRamBelow4g > HVM_BELOW_4G_MMIO_START) {
      log.push(
        `max_ram_below_4g=0x${hex(maxRamBelow4g)} too big for mmio_hole_size=0x${hex(mmioHoleSize)} has been ignored.`,
      );
    } else {
      pciMemStart = maxRamBelow4g;
      log.push(
        `pci_mem_start=0x${hex(pciMemStart)} (was 0xf0000000) for mmio_hole_size=0x${hex(mmioHoleSize)}`,
      );
    }
  } else {
    // `pci_mem_start << 1` is 32-bit: 0x8000_0000 << 1 is 0, which stops the loop at a 2 GiB hole.
    const next = (start: bigint): bigint => (start << 1n) & 0xffff_ffffn;
    while (
      mmioTotal > pciMemEnd - pciMemStart &&
      next(pciMemStart) !== 0n &&
      (allowMemoryRelocate || next(pciMemStart) >> 12n >= BigInt(lowMemPgend))
    ) {
      pciMemStart = next(pciMemStart);
    }
    // Best effort for RMRRs: start the hole right after low RAM so none of the hole is RAM to move.
    if (
      pciMemStart > lowRamEnd &&
      reserved.some((r) => checkOverlap(pciMemStart, pciMemEnd - pciMemStart, r.addr, r.size))
    ) {
      pciMemStart = lowRamEnd;
    }
  }
  let bar64Relocate = input.bar64Relocate;
  if (mmioTotal > pciMemEnd - pciMemStart || bar64Relocate) {
    log.push('Low MMIO hole not large enough for all devices, relocating some BARs to 64-bit');
    bar64Relocate = true;
  }
  return { pciMemStart, bar64Relocate, log };
}

function hex(value: bigint): string {
  return value.toString(16);
}
