/**
 * Items on inclusive frame intervals `[first, last]`, found by the intervals they meet. The p2m keeps
 * one of its MMIO extents by machine frame (`P2m.extentsOfTypeMeetingMfns`); vPCI's invariant checks
 * keep one per domain (enabled BAR windows and MSI-X pages by guest frame) and one per machine
 * (devices' host pages by machine frame), so that a check after a line that touched one device looks
 * at the few items near that device instead of at every device of the machine.
 *
 * Intervals may overlap and differ in length by many orders of magnitude (a 4 KiB BAR beside a 1 TiB
 * one), so one list sorted by start does not bound a search on its left. The items are kept in span
 * classes instead, one sorted list each, class k holding the spans of `[2^k, 2^(k+1))` frames: in
 * class k an interval meeting `[first, last]` starts in `[first - span + 1, last]` for the class's
 * longest span, a binary search then a walk over what meets or nearly meets. Changes are a binary
 * search and a splice (the lists hold a few thousand items at most; a splice of that is a memmove).
 */

interface Entry<T> {
  readonly first: number;
  readonly last: number;
  readonly item: T;
}

interface SpanClass<T> {
  /** Sorted by `first`. */
  readonly entries: Entry<T>[];
  /**
   * At least the longest span (`last - first + 1`) of the entries: it only grows until the class
   * empties, which is all a search needs (a bound, not the exact figure).
   */
  longest: number;
  /** At least the largest `last` of the entries, likewise: a search past it skips the class. */
  reach: number;
}

/** Items on intervals, by the intervals they meet; each (interval, item) pair is held once. */
export class IntervalIndex<T> {
  private readonly classes: (SpanClass<T> | undefined)[] = [];
  /**
   * Items on an inverted interval (`first > last`: a BAR of size 0 at a page boundary), unsorted. A
   * walk over every item tests `item.first <= last && first <= item.last`, which such an item can
   * pass; these are tested the same way so that a search finds what the walk finds.
   */
  private readonly inverted: Entry<T>[] = [];
  private count = 0;

  /** How many items are held. */
  get size(): number {
    return this.count;
  }

  /** Adds `item` on `[first, last]` (integers). */
  add(first: number, last: number, item: T): void {
    if (first > last) {
      this.inverted.push({ first, last, item });
      this.count++;
      return;
    }
    const span = last - first + 1;
    const k = spanClassOf(span);
    let spanClass = this.classes[k];
    if (spanClass === undefined) {
      spanClass = { entries: [], longest: 0, reach: Number.NEGATIVE_INFINITY };
      this.classes[k] = spanClass;
    }
    const { entries } = spanClass;
    entries.splice(firstStartingAfter(entries, first), 0, { first, last, item });
    if (span > spanClass.longest) spanClass.longest = span;
    if (last > spanClass.reach) spanClass.reach = last;
    this.count++;
  }

  /** Removes `item` added on `[first, last]`; false when it is not held there. */
  remove(first: number, last: number, item: T): boolean {
    if (first > last) {
      const i = this.inverted.findIndex(
        (entry) => entry.item === item && entry.first === first && entry.last === last,
      );
      if (i < 0) return false;
      this.inverted.splice(i, 1);
      this.count--;
      return true;
    }
    const spanClass = this.classes[spanClassOf(last - first + 1)];
    if (spanClass === undefined) return false;
    const { entries } = spanClass;
    for (let i = firstStartingFrom(entries, first); i < entries.length && entries[i]!.first === first; i++) {
      const entry = entries[i]!;
      if (entry.item !== item || entry.last !== last) continue;
      entries.splice(i, 1);
      if (entries.length === 0) {
        spanClass.longest = 0;
        spanClass.reach = Number.NEGATIVE_INFINITY;
      }
      this.count--;
      return true;
    }
    return false;
  }

  /**
   * Appends to `out` every item whose interval meets `[first, last]`, each once, in no particular
   * order (the callers put them in the order they report in).
   */
  meeting(first: number, last: number, out: T[]): T[] {
    for (const entry of this.inverted) if (entry.first <= last && first <= entry.last) out.push(entry.item);
    for (let k = 0; k < this.classes.length; k++) {
      const spanClass = this.classes[k];
      // A class whose intervals all start after the search or end before it is passed by.
      if (spanClass === undefined || spanClass.reach < first) continue;
      const { entries } = spanClass;
      if (entries.length === 0 || entries[0]!.first > last) continue;
      for (
        let i = firstStartingFrom(entries, first - spanClass.longest + 1);
        i < entries.length && entries[i]!.first <= last;
        i++
      ) {
        if (entries[i]!.last >= first) out.push(entries[i]!.item);
      }
    }
    return out;
  }

  /** Every item held, in no particular order. */
  all(): T[] {
    const out: T[] = this.inverted.map((entry) => entry.item);
    for (const spanClass of this.classes) for (const entry of spanClass?.entries ?? []) out.push(entry.item);
    return out;
  }
}

/**
 * The class of a span of `span` frames: the position of its highest set bit (frames go up to 2^52,
 * past 32-bit integer arithmetic, hence the division for the high part).
 */
function spanClassOf(span: number): number {
  if (span < 2 ** 32) return 31 - Math.clz32(span);
  return 32 + (31 - Math.clz32(Math.floor(span / 2 ** 32)));
}

/** Index of the first entry starting at or after `frame`. */
function firstStartingFrom<T>(entries: readonly Entry<T>[], frame: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.first < frame) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first entry starting after `frame`. */
function firstStartingAfter<T>(entries: readonly Entry<T>[], frame: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.first <= frame) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
