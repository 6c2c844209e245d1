/**
 * Pinned cache attributes: guest-frame ranges whose memory type the toolstack has fixed
 * (`XEN_DOMCTL_pin_mem_cacheattr`), looked up as Xen's `hvm_get_mem_pinned_cacheattr`
 * (xen/arch/x86/hvm/mtrr.c).
 */
import { checkFrame, checkOrder, InvalidArgumentError, type PageOrder } from './errors.js';
import { checkMemoryType, type MemoryType } from './memory-type.js';

/** One pinned range: the guest frames `[gfnStart, gfnEnd]` (inclusive) have memory type `type`. */
export interface PinnedRange {
  /** First guest frame of the range. */
  readonly gfnStart: number;
  /** Last guest frame of the range (inclusive), `>= gfnStart`. */
  readonly gfnEnd: number;
  /** The pinned type; any memory type, UC- included (Xen stores UC- in the EPT leaf as UC). */
  readonly type: MemoryType;
}

/**
 * Outcome of a pinned-range lookup for a block of frames.
 * - `full`: a range holds the whole block; its `type` applies (Xen returns the type).
 * - `partial`: a range covers part of the block only; the block must be split (`-EADDRNOTAVAIL`).
 * - `none`: no range touches the block (`-ENXIO`).
 */
export type PinnedLookup =
  | { readonly match: 'full'; readonly type: MemoryType }
  | { readonly match: 'partial'; readonly split: true }
  | { readonly match: 'none' };

const PARTIAL: PinnedLookup = Object.freeze({ match: 'partial', split: true });
const NONE: PinnedLookup = Object.freeze({ match: 'none' });

/**
 * Validates a pinned list and returns a frozen copy: each range well formed, and no two ranges sharing
 * a frame (Xen refuses an overlapping pin with `-EBUSY`, so its list never holds one). Throws naming
 * `ranges[i]` (or its field).
 */
export function checkPinnedRanges(ranges: readonly PinnedRange[]): readonly PinnedRange[] {
  if (!Array.isArray(ranges)) {
    throw new InvalidArgumentError('ranges', ranges, 'an array of { gfnStart, gfnEnd, type }');
  }
  const copy = ranges.map((range, i) => {
    if (typeof range !== 'object' || range === null) {
      throw new InvalidArgumentError(`ranges[${i}]`, range, 'a { gfnStart, gfnEnd, type } object');
    }
    checkFrame(`ranges[${i}].gfnStart`, range.gfnStart);
    checkFrame(`ranges[${i}].gfnEnd`, range.gfnEnd);
    if (range.gfnEnd < range.gfnStart) {
      throw new InvalidArgumentError(
        `ranges[${i}].gfnEnd`,
        range.gfnEnd,
        `a frame >= gfnStart (${range.gfnStart})`,
      );
    }
    checkMemoryType(`ranges[${i}].type`, range.type);
    return Object.freeze({ gfnStart: range.gfnStart, gfnEnd: range.gfnEnd, type: range.type });
  });
  for (let i = 0; i < copy.length; i++) {
    for (let j = 0; j < i; j++) {
      if (copy[j]!.gfnStart <= copy[i]!.gfnEnd && copy[i]!.gfnStart <= copy[j]!.gfnEnd) {
        throw new InvalidArgumentError(
          `ranges[${i}]`,
          `[${copy[i]!.gfnStart}, ${copy[i]!.gfnEnd}]`,
          `a range sharing no frame with ranges[${j}] [${copy[j]!.gfnStart}, ${copy[j]!.gfnEnd}]`,
        );
      }
    }
  }
  return Object.freeze(copy);
}

/**
 * The pinned type of the naturally aligned `2^order`-frame block holding `gfn`. Scans `ranges` in
 * order (Xen's list order: the newest pin first) and stops at the first range that touches the block:
 * it holds the whole block → `full`, it holds part → `partial`. No range touches it → `none`.
 */
export function getPinnedCacheAttr(
  ranges: readonly PinnedRange[],
  gfn: number,
  order: PageOrder,
): PinnedLookup {
  const list = checkPinnedRanges(ranges);
  checkFrame('gfn', gfn);
  checkOrder('order', order);
  const size = 2 ** order;
  const first = gfn - (gfn % size);
  const last = first + size - 1;
  for (const range of list) {
    if (first >= range.gfnStart && last <= range.gfnEnd) return { match: 'full', type: range.type };
    if (first <= range.gfnEnd && last >= range.gfnStart) return PARTIAL;
  }
  return NONE;
}
