/**
 * hvmloader's phase 2b, as data: RAM below 4 GiB that the grown MMIO hole now covers moves above the
 * top of high RAM, at most 0xFFFF pages per `XENMEM_add_to_physmap` (space `gmfn_range`) call, taken
 * from the top of low RAM. The model only computes the moves and the new page ends.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { RELOCATE_CHUNK_PAGES } from './constants.js';

/** One `XENMEM_add_to_physmap` call: `count` pages from guest frame `from` now live from `to`. */
export interface RamMove {
  /** First guest frame of the pages before the move. */
  readonly from: number;
  /** First guest frame of the pages after the move. */
  readonly to: number;
  /** Pages moved. */
  readonly count: number;
}

/** RAM after relocation. */
export interface RamLayout {
  /** `hvm_info->low_mem_pgend` afterwards. */
  readonly lowMemPgend: number;
  /** `hvm_info->high_mem_pgend` afterwards (0: no RAM above 4 GiB). */
  readonly highMemPgend: number;
  /** The calls made, in order. */
  readonly moves: readonly RamMove[];
}

/**
 * Moves the RAM in `[pciMemStart, lowMemPgend << 12)` up, as hvmloader's loop: while the hole starts
 * below the end of low RAM, take `min(that many pages, 0xFFFF)` from the top of low RAM and put them
 * at `high_mem_pgend` (which first becomes 4 GiB if there was no high RAM). No moves if none is needed.
 */
export function relocateRam(pciMemStart: bigint, lowMemPgend: number, highMemPgend: number): RamLayout {
  if (!Number.isInteger(lowMemPgend) || lowMemPgend < 0 || lowMemPgend > 0x100000)
    throw new InvalidArgumentError('lowMemPgend', lowMemPgend, 'a page number in 0 … 0x100000 (4 GiB)');
  if (!Number.isInteger(highMemPgend) || highMemPgend < 0 || highMemPgend > 2 ** 40)
    throw new InvalidArgumentError('highMemPgend', highMemPgend, 'a page number in 0 … 2^40');
  if (typeof pciMemStart !== 'bigint' || pciMemStart < 0n || pciMemStart >= 1n << 32n)
    throw new InvalidArgumentError('pciMemStart', pciMemStart, 'an address below 4 GiB (bigint)');
  const startPfn = Number(pciMemStart >> 12n);
  const moves: RamMove[] = [];
  let low = lowMemPgend;
  let high = highMemPgend;
  while (startPfn < low) {
    const count = Math.min(low - startPfn, RELOCATE_CHUNK_PAGES);
    if (high === 0) high = 0x100000; // 4 GiB: the first page above the 32-bit space
    low -= count;
    moves.push({ from: low, to: high, count });
    high += count;
  }
  return { lowMemPgend: low, highMemPgend: high, moves };
}
