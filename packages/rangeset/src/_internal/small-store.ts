import { checkStep } from '../errors.js';
import type { ConsumeStep, Errno } from '../results.js';
import { ChunkedStore } from './chunked-store.js';

/**
 * The storage of a set that has never held more than `SMALL_MAX` ranges: the ranges interleaved
 * (`s0, e0, s1, e1, …`, sorted, disjoint, non-adjacent) in one plain array, searched by a linear scan.
 *
 * Most sets are tiny: vPCI keeps one per BAR, and a BAR's set holds one range, two when the MSI-X
 * table's page is cut out of it. A `ChunkedStore` costs a slab and the chunk arrays, typed arrays each
 * with an ArrayBuffer behind it, and making and collecting those was most of the cost of a tiny set (a
 * quarter of the time of workload (g) went to the garbage collector). A plain array of a few numbers
 * is one small allocation on the JavaScript heap.
 *
 * `RangeSet` swaps this store for a `ChunkedStore` holding the same ranges (`promote`) before an
 * update that could take it past `SMALL_MAX` ranges; a set never goes back. The verbs are the
 * `ChunkedStore`'s, with the same contracts.
 */
export class SmallStore {
  /** The chunk size the `ChunkedStore` this store grows into will have. */
  readonly chunkMax: number;
  /** Number of ranges stored. */
  count = 0;
  /**
   * The ranges, interleaved, in the first `2 * count` numbers; the array keeps its length when ranges
   * go (a smaller length would be one more thing to write). Moved by hand: `splice` is a call into the
   * runtime, which cost more than everything else a tiny set does.
   */
  private v: number[] = [];

  constructor(chunkMax: number) {
    this.chunkMax = chunkMax;
  }

  /** A `ChunkedStore` with this store's ranges and chunk size. */
  promote(): ChunkedStore {
    const big = new ChunkedStore(this.chunkMax);
    for (let i = 0; i < 2 * this.count; i += 2) big.add(this.v[i]!, this.v[i + 1]!, true);
    return big;
  }

  /** Index (in numbers) of the first range whose end is >= x; `2 * count` if none. */
  private firstEndingFrom(x: number): number {
    const v = this.v;
    const n = 2 * this.count;
    let i = 0;
    while (i < n && v[i + 1]! < x) i += 2;
    return i;
  }

  /** Opens room for one range at index i (in numbers). */
  private openAt(i: number): void {
    const v = this.v;
    const n = 2 * this.count;
    // Grown in order (writing past the end would leave a hole and make the array holey).
    if (v.length < n + 2) v.push(0, 0);
    for (let k = n + 1; k >= i + 2; k--) v[k] = v[k - 2]!;
    this.count++;
  }

  /** Drops the ranges at indexes [i, j) (in numbers). */
  private closeSpan(i: number, j: number): void {
    const v = this.v;
    const n = 2 * this.count;
    for (let k = j; k < n; k++) v[k - (j - i)] = v[k]!;
    this.count -= (j - i) >> 1;
  }

  /** True iff one stored range covers all of `[s, e]`. */
  contains(s: number, e: number): boolean {
    const i = this.firstEndingFrom(s);
    return i < 2 * this.count && this.v[i]! <= s && this.v[i + 1]! >= e;
  }

  /** True iff some stored range intersects `[s, e]`. */
  overlaps(s: number, e: number): boolean {
    const i = this.firstEndingFrom(s);
    return i < 2 * this.count && this.v[i]! <= e;
  }

  /**
   * Adds `[s, e]`, merging every range it overlaps or touches. Returns false, changing nothing, when
   * that needs one more stored range and `canGrow` is false. The caller promotes a full store first.
   */
  add(s: number, e: number, canGrow: boolean): boolean {
    const v = this.v;
    const n = 2 * this.count;
    // Ranges [i, j) (in numbers) touch [s, e].
    const i = this.firstEndingFrom(s - 1);
    let j = i;
    while (j < n && v[j]! <= e + 1) j += 2;
    if (i === j) {
      if (!canGrow) return false;
      this.openAt(i);
      v[i] = s;
      v[i + 1] = e;
      return true;
    }
    const start = Math.min(s, v[i]!);
    const end = Math.max(e, v[j - 1]!);
    v[i] = start;
    v[i + 1] = end;
    if (j - i > 2) this.closeSpan(i + 2, j);
    return true;
  }

  /**
   * Removes `[s, e]`, trimming or splitting the ranges it meets. Returns false, changing nothing, when
   * a range must split in two and `canGrow` is false. The caller promotes a full store first.
   */
  remove(s: number, e: number, canGrow: boolean): boolean {
    const v = this.v;
    const n = 2 * this.count;
    // Ranges [i, j) (in numbers) meet [s, e].
    const i = this.firstEndingFrom(s);
    let j = i;
    while (j < n && v[j]! <= e) j += 2;
    if (i === j) return true;
    const keepLeft = v[i]! < s;
    const keepRight = v[j - 1]! > e;
    if (keepLeft && keepRight && j - i === 2) {
      if (!canGrow) return false;
      this.openAt(i + 2);
      v[i + 3] = v[i + 1]!;
      v[i + 1] = s - 1;
      v[i + 2] = e + 1;
      return true;
    }
    if (keepLeft) v[i + 1] = s - 1;
    if (keepRight) v[j - 2] = e + 1;
    const from = keepLeft ? i + 2 : i;
    const to = keepRight ? j - 2 : j;
    if (to > from) this.closeSpan(from, to);
    return true;
  }

  /** Drops every range. */
  clear(): void {
    this.count = 0;
  }

  /** As `ChunkedStore.settle`; this store's `consume` keeps every field current, so nothing to do. */
  settle(): void {}

  /** As `ChunkedStore.endConsume`; nothing to do here. */
  endConsume(): void {}

  /** As `ChunkedStore.consume`: hands the first range to `take` until a step stops or none is left. */
  consume<S extends ConsumeStep<Errno>>(take: (start: number, end: number) => S): S | undefined {
    const v = this.v;
    while (this.count > 0) {
      const start = v[0]!;
      const end = v[1]!;
      const step = take(start, end);
      const consumed = step.consumed;
      const next = step.next;
      checkStep(step, start, end);
      if (consumed === end - start + 1) this.closeSpan(0, 2);
      else if (consumed > 0) v[0] = start + consumed;
      if (next !== 'continue') return step;
    }
    return undefined;
  }

  /** As `ChunkedStore.visitWindow`: the ranges meeting `[s, e]`, clipped, until `visit` returns a value. */
  visitWindow<R>(s: number, e: number, visit: (start: number, end: number) => R | undefined): R | undefined {
    const v = this.v;
    for (let i = this.firstEndingFrom(s); i < 2 * this.count && v[i]! <= e; i += 2) {
      const stop = visit(Math.max(v[i]!, s), Math.min(v[i + 1]!, e));
      if (stop !== undefined) return stop;
    }
    return undefined;
  }

  /** Calls `visit(s, e)` for every range in ascending order. */
  forEach(visit: (start: number, end: number) => void): void {
    const v = this.v;
    for (let i = 0; i < 2 * this.count; i += 2) visit(v[i]!, v[i + 1]!);
  }

  /** The ranges as one flat array `s0, e0, s1, e1, …` (a snapshot). */
  toFlat(): Float64Array {
    const out = new Float64Array(2 * this.count);
    for (let i = 0; i < out.length; i++) out[i] = this.v[i]!;
    return out;
  }

  /** Lowest `start` such that `[start, start + size - 1]` holds no stored value and ends <= max; -1 if none. */
  firstFit(size: number, max: number): number {
    let start = 0;
    for (let i = 0; i < 2 * this.count; i += 2) {
      if (this.v[i]! - start >= size) return start;
      start = this.v[i + 1]! + 1;
    }
    return max - start + 1 >= size ? start : -1;
  }
}

/** Most ranges a `SmallStore` holds; an update that could need more promotes it first. */
export const SMALL_MAX = 4;
