/**
 * A p2m's `mmio_direct` extents, found by guest frame and by machine frame, for the invariant checks.
 * A scoped check asks which MMIO mappings meet a few guest frames of one domain, and which mappings
 * of any domain meet the host frames of a moved BAR; walking every extent of every domain after every
 * replayed line was most of a check. The index is remembered per p2m until it is next written (its
 * `writes` count moves on every write attempted).
 */
import type { P2m, P2mExtent } from '@vpci/p2m';

/** Inclusive frame ranges, sorted by start and not overlapping. */
export type SortedRanges = readonly (readonly [number, number])[];

interface MmioIndex {
  readonly writes: number;
  /** In gfn order (extents never overlap in guest frames). */
  readonly byGfn: readonly P2mExtent[];
  /** In mfn order, with the largest last machine frame of each prefix (machine frames may repeat). */
  readonly byMfn: readonly P2mExtent[];
  readonly reach: readonly number[];
}

/** Each p2m's index, remembered until the p2m is next written; one per machine. */
export class MmioExtentsCache {
  private readonly indexes = new WeakMap<P2m, MmioIndex>();

  /** Every `mmio_direct` extent of `p2m`, in gfn order. */
  mmioExtents(p2m: P2m): readonly P2mExtent[] {
    return this.indexOf(p2m).byGfn;
  }

  /**
   * The `mmio_direct` extents of `p2m` that meet guest frames `gfns` or machine frames `mfns`, each
   * once, in gfn order (the order a whole check meets them in).
   */
  mmioExtentsMeeting(p2m: P2m, gfns: SortedRanges, mfns: SortedRanges): P2mExtent[] {
    const { byGfn, byMfn, reach } = this.indexOf(p2m);
    // Indexed loops, no destructuring (it iterates) and a plain list: this runs for every domain in
    // every scoped check.
    const found: P2mExtent[] = [];
    for (let r = 0; r < gfns.length; r++) {
      const first = gfns[r]![0];
      const last = gfns[r]![1];
      // The first extent ending at or after `first`, then on while they start by `last`.
      for (let i = firstEndingFrom(byGfn, first); i < byGfn.length && byGfn[i]!.gfn <= last; i++) {
        if (!found.includes(byGfn[i]!)) found.push(byGfn[i]!);
      }
    }
    for (let r = 0; r < mfns.length; r++) {
      const first = mfns[r]![0];
      const last = mfns[r]![1];
      // Extents starting by `last`, walked back while some before them still reach `first`.
      for (let i = firstStartingAfter(byMfn, last) - 1; i >= 0 && reach[i]! >= first; i--) {
        const extent = byMfn[i]!;
        if (extent.mfn + extent.count - 1 >= first && !found.includes(extent)) found.push(extent);
      }
    }
    return found.length < 2 ? found : found.sort((a, b) => a.gfn - b.gfn);
  }

  private indexOf(p2m: P2m): MmioIndex {
    const known = this.indexes.get(p2m);
    if (known !== undefined && known.writes === p2m.writes) return known;
    const byGfn = p2m.extentsOfType('mmio_direct');
    const byMfn = [...byGfn].sort((a, b) => a.mfn - b.mfn);
    const reach: number[] = [];
    for (const extent of byMfn) reach.push(Math.max(reach.at(-1) ?? -1, extent.mfn + extent.count - 1));
    const index = { writes: p2m.writes, byGfn, byMfn, reach };
    this.indexes.set(p2m, index);
    return index;
  }
}

/** Index of the first of `byGfn` whose last guest frame is at or after `frame`. */
function firstEndingFrom(byGfn: readonly P2mExtent[], frame: number): number {
  let lo = 0;
  let hi = byGfn.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const extent = byGfn[mid]!;
    if (extent.gfn + extent.count - 1 < frame) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first of `byMfn` starting after machine frame `frame`. */
function firstStartingAfter(byMfn: readonly P2mExtent[], frame: number): number {
  let lo = 0;
  let hi = byMfn.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (byMfn[mid]!.mfn <= frame) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
