/**
 * A p2m's `mmio_direct` extents, found by guest frame and by machine frame, for the invariant checks.
 * A scoped check asks which MMIO mappings meet a few guest frames of one domain, and which mappings
 * of any domain meet the host frames of a moved BAR; walking every extent of every domain after every
 * replayed line was most of a check. Those are asked of the p2m (a search by guest frame, a pass over
 * its numbers by machine frame); the list of every MMIO extent a whole check walks is remembered per
 * p2m until it is next written (its `writes` count moves on every write attempted).
 */
import { gfn, MAX_FRAME, type P2m, type P2mExtent } from '@vpci/p2m';

/** Inclusive frame ranges, sorted by start and not overlapping. */
export type SortedRanges = readonly (readonly [number, number])[];

interface MmioIndex {
  readonly writes: number;
  /** In gfn order (extents never overlap in guest frames). */
  readonly byGfn: readonly P2mExtent[];
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
   * once, in gfn order (the order a whole check meets them in). Asked of the p2m directly, not of
   * the index `mmioExtents` keeps: a scoped check follows a line that often wrote the p2m, and making
   * the index again for a map of thousands of extents cost more than the check.
   */
  mmioExtentsMeeting(p2m: P2m, gfns: SortedRanges, mfns: SortedRanges): P2mExtent[] {
    const found: P2mExtent[] = [];
    for (let r = 0; r < gfns.length; r++) {
      const first = gfns[r]![0];
      const last = Math.min(gfns[r]![1], MAX_FRAME);
      if (first > last) continue;
      for (const extent of p2m.extentsIn(gfn(first), gfn(last)))
        if (extent.type === 'mmio_direct') found.push(extent);
    }
    for (let r = 0; r < mfns.length; r++)
      found.push(...p2m.extentsOfTypeMeetingMfns('mmio_direct', mfns[r]![0], mfns[r]![1]));
    if (found.length < 2) return found;
    // Each extent once (the lists above make a new object per extent found), in gfn order.
    found.sort((a, b) => a.gfn - b.gfn);
    const once: P2mExtent[] = [found[0]!];
    for (let i = 1; i < found.length; i++)
      if (found[i]!.gfn !== once[once.length - 1]!.gfn) once.push(found[i]!);
    return once;
  }

  private indexOf(p2m: P2m): MmioIndex {
    const known = this.indexes.get(p2m);
    if (known !== undefined && known.writes === p2m.writes) return known;
    const index = { writes: p2m.writes, byGfn: p2m.extentsOfType('mmio_direct') };
    this.indexes.set(p2m, index);
    return index;
  }
}
