/**
 * x86 (p2m-ept.c and p2m-pt.c, which agree here): which intermediate page tables of a p2m exist: the L1 tables (one per 2M region split into 4K
 * entries) and the L2 tables (one per 1G region split into 2M entries). The extents of a `P2m` say
 * what is mapped; these say how a walk over a hole ends, which is what `get_entry` reports as the
 * order of a hole, and so whether `set_typed_p2m_entry` / `clear_mmio_p2m_entry` retry a chunk at a
 * smaller order.
 *
 * Xen frees an intermediate table only when a leaf of that table's own size replaces the entry that
 * points to it (`ept_set_entry` frees `old_entry`, `p2m_pt_set_entry` its `intermediate_entry`).
 * Clearing the 4K entries of an L1 table leaves the table, so a 2M region once written in 4K keeps
 * answering order 0 for its holes; both p2m-ept.c and p2m-pt.c behave so.
 */
import { RangeSet } from '@vpci/rangeset';
import type { PageOrder } from './errors.js';

const ORDER_2M = 9;
const ORDER_1G = 18;
/**
 * Frames of a 2M region, of a 1G region, and 2M regions in a 1G one, as literals: `2 ** ORDER_2M`
 * with a named operand is a call to `Math.pow` at run time (V8 folds `**` of literals only), 100 ns
 * or more each, and `written` runs for every p2m write (it took 7–10 % of a decoding toggle).
 */
const FRAMES_2M = 512;
const FRAMES_1G = 262_144;
const REGIONS_2M_PER_1G = 512;

/**
 * Slots of `TableRegions`' cache of ranges known to be in its set: a prime, so that regions spread
 * evenly (BARs placed a power of two apart would otherwise share a few slots).
 */
const KNOWN_SLOTS = 127;

/**
 * Where region `first`'s cached range sits in `TableRegions`' slot arrays. The modulo is taken of the
 * low 32 bits (`>>> 0`), an integer one: of a float it is a C call (`fmod`). Any region maps to one
 * slot, which is all the caches need (each compares the range it holds).
 */
function slotOf(first: number): number {
  return 2 * ((first >>> 0) % KNOWN_SLOTS);
}

/**
 * The regions that have a table of one level, with what is known to be in the set without a search:
 * a run of regions (empty when lo > hi), which a sequential fill or drain in 4K writes stays inside,
 * and a small cache of ranges last added or found, one per slot (`slotOf`): a BAR mapped
 * and unmapped again and again writes the same few regions each time, which would otherwise be a
 * search of the set per write (the set holds a range per BAR's regions, a store past two). Any
 * removal that takes something out empties both. Likewise, per slot, a range last found to hold no
 * region (`absent`), which any growth of the set empties. The caches are a fixed size: memory stays
 * O(extents).
 */
class TableRegions {
  readonly set: RangeSet;
  private lo = 1;
  private hi = 0;
  /** `[first, last]` per slot, known to be in the set; NaN (every comparison false) when empty. */
  private readonly known = new Float64Array(2 * KNOWN_SLOTS).fill(Number.NaN);
  /**
   * `[first, last]` per slot, known to have no region in the set (a removal that found nothing: a 2M
   * write over regions without L1 tables, every time a 2M-aligned BAR is mapped or unmapped); emptied
   * whenever the set grows.
   */
  private readonly absent = new Float64Array(2 * KNOWN_SLOTS).fill(Number.NaN);
  /** Whether `absent` holds anything (so that an add need not empty it again). */
  private absentKept = false;

  constructor(name: string) {
    this.set = new RangeSet({ name });
  }

  /** Whether every region of `[first, last]` is in the set. */
  has(first: number, last: number): boolean {
    if (first >= this.lo && last <= this.hi) return true;
    const slot = slotOf(first);
    if (first >= this.known[slot]! && last <= this.known[slot + 1]!) return true;
    if (!this.set.containsRange(first, last)) return false;
    this.remember(first, last);
    return true;
  }

  add(first: number, last: number): void {
    if (this.has(first, last)) return;
    this.set.addRange(first, last);
    if (this.absentKept) {
      this.absent.fill(Number.NaN);
      this.absentKept = false;
    }
    this.remember(first, last);
    const touches = first <= this.hi + 1 && last + 1 >= this.lo;
    this.lo = touches ? Math.min(first, this.lo) : first;
    this.hi = touches ? Math.max(last, this.hi) : last;
  }

  remove(first: number, last: number): void {
    const slot = slotOf(first);
    if (first >= this.absent[slot]! && last <= this.absent[slot + 1]!) return;
    if (!this.set.overlapsRange(first, last)) {
      this.absent[slot] = first;
      this.absent[slot + 1] = last;
      this.absentKept = true;
      return;
    }
    this.set.removeRange(first, last);
    this.lo = 1;
    this.hi = 0;
    this.known.fill(Number.NaN);
  }

  private remember(first: number, last: number): void {
    const slot = slotOf(first);
    this.known[slot] = first;
    this.known[slot + 1] = last;
  }
}

/** The intermediate tables of one p2m, by region number (`gfn >> 9` for L1, `gfn >> 18` for L2). */
export class IntermediateTables {
  /** 2M regions (`gfn >> 9`) that have an L1 table: a 4K entry was written there since the last 2M or 1G one. */
  private readonly l1 = new TableRegions('L1 tables');
  /** 1G regions (`gfn >> 18`) that have an L2 table: a 4K or 2M entry was written there since the last 1G one. */
  private readonly l2 = new TableRegions('L2 tables');

  /**
   * Records a write of `count` frames from `gfn` in leaves of `order` (set or clear alike: both walk
   * down to the leaf level, allocating the tables on the way). A 4K write needs the L1 and L2 tables
   * of its regions; a 2M write needs the L2 tables and replaces the L1 tables it covers; a 1G write
   * replaces the L2 (and so L1) tables it covers. `gfn` and `count` are aligned to `order`.
   */
  written(gfn: number, count: number, order: PageOrder): void {
    const last = gfn + count - 1;
    const first2M = Math.floor(gfn / FRAMES_2M);
    const last2M = Math.floor(last / FRAMES_2M);
    const first1G = Math.floor(gfn / FRAMES_1G);
    const last1G = Math.floor(last / FRAMES_1G);
    if (order === 0) {
      this.l1.add(first2M, last2M);
      this.l2.add(first1G, last1G);
    } else if (order === ORDER_2M) {
      this.l1.remove(first2M, last2M);
      this.l2.add(first1G, last1G);
    } else {
      // A 1G leaf frees the L2 table and every L1 table under it.
      this.l2.remove(first1G, last1G);
      this.l1.remove(first1G * REGIONS_2M_PER_1G, (last1G + 1) * REGIONS_2M_PER_1G - 1);
    }
  }

  /**
   * The order `get_entry` reports for a hole at `gfn`: the level where the walk met an empty entry.
   * 0 in a 2M region with an L1 table, 9 in a 1G region with an L2 table, else 18. (Xen gives 27 when
   * the L4 entry is empty too, or, past `max_mapped_pfn`, the largest block above it; no caller asks
   * for more than 2M, so 18 stands for both.)
   */
  holeOrder(gfn: number): PageOrder {
    const region2M = Math.floor(gfn / FRAMES_2M);
    if (this.l1.has(region2M, region2M)) return 0;
    const region1G = Math.floor(gfn / FRAMES_1G);
    if (this.l2.has(region1G, region1G)) return ORDER_2M;
    return ORDER_1G;
  }

  /** The first 2M region number at or after `region` with an L1 table, below `end`, or `end`. */
  firstL1(region: number, end: number): number {
    if (region >= end) return end;
    return this.l1.set.reportRanges(region, end - 1, (start): number => Math.max(start, region)) ?? end;
  }
}
