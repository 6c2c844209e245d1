/**
 * A p2m's `mmio_direct` extents, found by guest frame and by machine frame, for the invariant checks.
 * A scoped check asks which MMIO mappings meet a few guest frames of one domain, and which mappings
 * of any domain meet the host frames of a moved BAR; walking every extent of every domain after every
 * replayed line was most of a check. Both are searches of the p2m: by guest frame its extents' own
 * order, by machine frame the index the p2m keeps up to date as it is written
 * (`P2m.extentsOfTypeMeetingMfns`). The list of every MMIO extent a whole check walks is remembered
 * per p2m until it is next written (its `writes` count moves on every write attempted); a whole check
 * uses neither search.
 */
import { gfn, MAX_FRAME, type P2m, type P2mExtent } from '@vpci/p2m';
import { sortSmall } from './small-sort.js';

const byGfn = (a: P2mExtent, b: P2mExtent): number => a.gfn - b.gfn;

/** Inclusive frame ranges, sorted by start and not overlapping. */
export type SortedRanges = readonly (readonly [number, number])[];

interface MmioIndex {
  readonly writes: number;
  /** In gfn order (extents never overlap in guest frames). */
  readonly byGfn: readonly P2mExtent[];
}

/**
 * `extents` (of `p2m`, `mmio_direct`, in gfn order, each once) with every `mmio_direct` extent that
 * continues one of them: next to it in guest frames and following on in machine frames (the same
 * guest → machine shift), on and on, in gfn order, each once. Such a run is where a violation's
 * identity comes from (the checks report an unexplained or shared piece per extent, so where it
 * starts and its count depend on the extent boundaries), and the p2m draws a boundary inside a run
 * away from the frames it wrote: shattering one superpage of two that made one extent leaves the
 * other an extent of its own. A scoped check looks at whole runs, so it names a piece as a whole
 * check does. Walks extent by extent (a search each), never frame by frame; where `searched` (the
 * guest frames `extents` were found on, every MMIO extent there among them) holds the frame beside
 * an extent, the list answers without a search.
 */
export function wholeRuns(p2m: P2m, extents: readonly P2mExtent[], searched?: SortedRanges): P2mExtent[] {
  const out: P2mExtent[] = [];
  const continues = (a: P2mExtent, b: P2mExtent): boolean =>
    b.type === 'mmio_direct' && a.gfn + a.count === b.gfn && a.mfn + a.count === b.mfn;
  for (let i = 0; i < extents.length; i++) {
    const extent = extents[i]!;
    // Already walked as part of the run of an extent before it.
    const last = out[out.length - 1];
    if (last !== undefined && last.gfn + last.count > extent.gfn) continue;
    const before: P2mExtent[] = [];
    // Where the walk is in `extents` while it walks through them (-1 once past them).
    let at = i;
    for (let first = extent; first.gfn > 0; ) {
      const frame = first.gfn - 1;
      let previous: P2mExtent | undefined;
      if (at >= 0 && searched !== undefined && within(searched, frame)) {
        // The frame was searched: an MMIO extent on it is in the list, just before.
        const candidate = extents[at - 1];
        previous =
          candidate !== undefined && candidate.gfn + candidate.count - 1 === frame ? candidate : undefined;
        at = previous === undefined ? -1 : at - 1;
      } else {
        previous = p2m.extentsIn(gfn(frame), gfn(frame))[0];
        at = -1;
      }
      if (previous === undefined || !continues(previous, first)) break;
      // A run reaching back into what is already listed was listed with it.
      if (last !== undefined && previous.gfn <= last.gfn) break;
      before.push(previous);
      first = previous;
    }
    for (let k = before.length - 1; k >= 0; k--) out.push(before[k]!);
    out.push(extent);
    at = i;
    for (let end = extent; end.gfn + end.count - 1 < MAX_FRAME; ) {
      const frame = end.gfn + end.count;
      let next: P2mExtent | undefined;
      if (at >= 0 && searched !== undefined && within(searched, frame)) {
        // Likewise just after.
        const candidate = extents[at + 1];
        next = candidate !== undefined && candidate.gfn === frame ? candidate : undefined;
        at = next === undefined ? -1 : at + 1;
      } else {
        next = p2m.extentsIn(gfn(frame), gfn(frame))[0];
        at = -1;
      }
      if (next === undefined || !continues(end, next)) break;
      out.push(next);
      end = next;
    }
  }
  return out;
}

/** Whether `ranges` (sorted, not overlapping) hold `frame`. */
function within(ranges: SortedRanges, frame: number): boolean {
  for (let i = 0; i < ranges.length; i++) if (ranges[i]![0] <= frame && frame <= ranges[i]![1]) return true;
  return false;
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
   * once, in gfn order (the order a whole check meets them in): searches of the p2m by guest frame
   * and by machine frame, O(log n + found) each.
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
      for (const extent of p2m.extentsOfTypeMeetingMfns('mmio_direct', mfns[r]![0], mfns[r]![1]))
        found.push(extent);
    if (found.length < 2) return found;
    // Each extent once (the lists above make a new object per extent found), in gfn order.
    sortSmall(found, byGfn);
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
