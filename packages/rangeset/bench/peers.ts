/**
 * The npm peers: the fastest general-purpose ordered structures on npm, each wrapped as a range set
 * with the same verbs as `RangeSet`. The adapters are written to be fast on their library, not to lose:
 *
 * - `sorted-btree` (B+ tree) and `js-sdsl` (red-black tree) are ordered maps, keyed by each range's
 *   END with the START as the value. "The first range that could hold or touch x" is then one
 *   lower-bound search (first end >= x), and consuming from the front of the first range, or trimming a
 *   range's start, is a value update instead of a delete plus an insert.
 * - `@flatten-js/interval-tree` is keyed by the interval itself and answers overlap queries natively.
 *
 * Every structure in the benchmark (these, `RangeSet` itself and the Xen linked list) implements
 * `RangeSetLike`.
 */
import IntervalTree, { type IntervalBase, type Node as IntervalNode } from '@flatten-js/interval-tree';
import { OrderedMap } from 'js-sdsl';
import BTreeImport from 'sorted-btree';
import type { ConsumeResult, ConsumeStep, Errno } from '../src/index.js';

/** An inclusive range `[start, end]`. */
export type Pair = [start: number, end: number];

/** A consume callback, as `RangeSet.consumeRanges` takes it. */
export type ConsumeCallback = (start: number, end: number) => ConsumeStep<Errno>;

/** The verbs the benchmark drives. `RangeSet` satisfies this as it is. */
export interface RangeSetLike {
  addRange(start: number, end: number): unknown;
  removeRange(start: number, end: number): unknown;
  containsRange(start: number, end: number): boolean;
  overlapsRange(start: number, end: number): boolean;
  /**
   * `RangeSet.consumeRanges`: hands the first range to `callback` until the set is empty (`done`),
   * the callback says `restart`, or it says `fail` (then `{ ok: false, code }`); what it consumed is
   * removed from the front of the first range each time.
   */
  consumeRanges(callback: ConsumeCallback): ConsumeResult<Errno>;
  /** The ranges in ascending order. */
  toArray(): Pair[];
}

export const CONSUME_DONE: ConsumeResult<never> = Object.freeze({ ok: true, status: 'done' });
export const CONSUME_RESTART: ConsumeResult<never> = Object.freeze({ ok: true, status: 'restart' });

/** Checks a callback's `consumed` against the range it was given (Xen's ASSERT), cheaply. */
export function checkConsumed(consumed: number, start: number, end: number): void {
  if (!(consumed >= 0 && consumed <= end - start + 1)) {
    throw new RangeError(`consumed ${consumed} is outside 0 … ${end - start + 1} for [${start}, ${end}]`);
  }
}

/**
 * What a consume step asks for after `consumed` was applied, checked as `RangeSet` checks it;
 * undefined means hand over the next range.
 */
export function stepOutcome(step: ConsumeStep<Errno>): ConsumeResult<Errno> | undefined {
  if (step.next === 'restart') return CONSUME_RESTART;
  if (step.next === 'fail') return { ok: false, code: step.code };
  if (step.next !== 'continue') throw new RangeError(`next: ${String(step.next)} is not a consume verdict`);
  if (step.consumed === 0) throw new RangeError("consumed 0 with 'continue' never ends");
  return undefined;
}

const compareNumbers = (a: number, b: number): number => a - b;

// ---- sorted-btree ------------------------------------------------------------------------------

/**
 * sorted-btree is CommonJS with `exports.default = BTree`: Node's ESM loader hands an `import` the
 * whole `module.exports`, a bundler hands it the class. Accept both.
 */
const BTree: typeof BTreeImport =
  'default' in BTreeImport
    ? (BTreeImport as unknown as { default: typeof BTreeImport }).default
    : BTreeImport;

/** A range set over `sorted-btree`'s B+ tree: key = end, value = start. */
export class BTreeRangeSet implements RangeSetLike {
  private readonly tree: BTreeImport<number, number>;
  /** Reused by every lookup, so lookups allocate nothing: `[end, start]`. */
  private readonly pair: [number, number] = [0, 0];

  /**
   * `maxNodeSize` is the B+ tree's branching factor. The library's default is 32; 64 to 256 ran
   * somewhat faster on these workloads (and use less memory), so the benchmark uses 128.
   */
  constructor(maxNodeSize = 128) {
    this.tree = new BTree<number, number>(undefined, compareNumbers, maxNodeSize);
  }

  /** Loads `[end, start]` of the first range ending at or after v into `pair`; false if none. */
  private firstEndingFrom(v: number): boolean {
    return this.tree.getPairOrNextHigher(v, this.pair) !== undefined;
  }

  containsRange(start: number, end: number): boolean {
    return this.firstEndingFrom(start) && this.pair[1] <= start && this.pair[0] >= end;
  }

  overlapsRange(start: number, end: number): boolean {
    return this.firstEndingFrom(start) && this.pair[1] <= end;
  }

  addRange(start: number, end: number): void {
    const tree = this.tree;
    const pair = this.pair;
    // The first range that touches [start, end] is the first ending at or after start - 1.
    if (!this.firstEndingFrom(start - 1) || pair[1] > end + 1) {
      tree.set(end, start);
      return;
    }
    let newStart = Math.min(pair[1], start);
    const firstEnd = pair[0];
    // Walk the touching ranges; the last one that ends at or after `end` keeps its key.
    let e = pair[0];
    let s = pair[1];
    for (;;) {
      if (e >= end) {
        // [s, e] is the last touching range and the merged range ends at e: drop the ones before it
        // and move its start down.
        if (e !== firstEnd) tree.deleteRange(firstEnd, e, false);
        if (s !== newStart) tree.set(e, newStart);
        return;
      }
      if (tree.nextHigherPair(e, pair) === undefined || pair[1] > end + 1) break;
      e = pair[0];
      s = pair[1];
      if (s < newStart) newStart = s;
    }
    // Every touching range ended before `end`: replace them all by [newStart, end].
    tree.deleteRange(firstEnd, e, true);
    tree.set(end, newStart);
  }

  removeRange(start: number, end: number): void {
    const tree = this.tree;
    const pair = this.pair;
    if (!this.firstEndingFrom(start) || pair[1] > end) return;
    let s = pair[1];
    let e = pair[0];
    if (s < start) {
      if (e > end) {
        // Split [s, e] into [s, start - 1] and [end + 1, e].
        tree.set(e, end + 1);
        tree.set(start - 1, s);
        return;
      }
      // Trim the end: the key changes.
      tree.delete(e);
      tree.set(start - 1, s);
      if (tree.nextHigherPair(e, pair) === undefined || pair[1] > end) return;
      s = pair[1];
      e = pair[0];
    }
    // [s, e] starts inside [start, end]; delete every range that ends inside, trim the last one's start.
    const firstEnd = e;
    let lastEnd = -1;
    for (;;) {
      if (e > end) {
        tree.set(e, end + 1);
        break;
      }
      lastEnd = e;
      if (tree.nextHigherPair(e, pair) === undefined || pair[1] > end) break;
      s = pair[1];
      e = pair[0];
    }
    if (lastEnd >= 0) tree.deleteRange(firstEnd, lastEnd, true);
  }

  consumeRanges(callback: ConsumeCallback): ConsumeResult<Errno> {
    const tree = this.tree;
    const pair = this.pair;
    while (tree.nextHigherPair(undefined, pair) !== undefined) {
      const end = pair[0];
      const start = pair[1];
      const step = callback(start, end);
      const consumed = step.consumed;
      checkConsumed(consumed, start, end);
      if (start + consumed > end) tree.delete(end);
      else if (consumed > 0) tree.set(end, start + consumed);
      const outcome = stepOutcome(step);
      if (outcome !== undefined) return outcome;
    }
    return CONSUME_DONE;
  }

  toArray(): Pair[] {
    const out: Pair[] = [];
    this.tree.forEachPair((end, start) => {
      out.push([start, end]);
    });
    return out;
  }
}

// ---- js-sdsl -----------------------------------------------------------------------------------

/**
 * A range set over `js-sdsl`'s OrderedMap (a red-black tree): key = end, value = start. Its iterators
 * expose the pair through `pointer` (a Proxy), and it can change a key in place when the order is
 * kept (`updateKeyByIterator`), which trimming a range's end always does.
 */
export class SdslRangeSet implements RangeSetLike {
  private readonly map = new OrderedMap<number, number>([], compareNumbers);

  containsRange(start: number, end: number): boolean {
    const it = this.map.lowerBound(start);
    if (!it.isAccessible()) return false;
    const p = it.pointer;
    return p[1] <= start && p[0] >= end;
  }

  overlapsRange(start: number, end: number): boolean {
    const it = this.map.lowerBound(start);
    return it.isAccessible() && it.pointer[1] <= end;
  }

  addRange(start: number, end: number): void {
    const map = this.map;
    const it = map.lowerBound(start - 1);
    if (!it.isAccessible()) {
      map.setElement(end, start);
      return;
    }
    let p = it.pointer;
    let s = p[1];
    if (s > end + 1) {
      map.setElement(end, start, it);
      return;
    }
    let newStart = Math.min(s, start);
    for (;;) {
      const e = p[0];
      if (e >= end) {
        // The last touching range; the merged range ends at e, so only its start moves.
        if (s !== newStart) p[1] = newStart;
        return;
      }
      map.eraseElementByIterator(it);
      if (!it.isAccessible()) break;
      p = it.pointer;
      s = p[1];
      if (s > end + 1) break;
      if (s < newStart) newStart = s;
    }
    map.setElement(end, newStart, it.isAccessible() ? it : undefined);
  }

  removeRange(start: number, end: number): void {
    const map = this.map;
    const it = map.lowerBound(start);
    while (it.isAccessible()) {
      const p = it.pointer;
      const s = p[1];
      if (s > end) return;
      const e = p[0];
      if (s < start) {
        if (e > end) {
          // Split: [end + 1, e] keeps the key, [s, start - 1] goes in just before it.
          p[1] = end + 1;
          map.setElement(start - 1, s, it);
          return;
        }
        map.updateKeyByIterator(it, start - 1);
        it.next();
      } else if (e > end) {
        p[1] = end + 1;
        return;
      } else {
        map.eraseElementByIterator(it);
      }
    }
  }

  consumeRanges(callback: ConsumeCallback): ConsumeResult<Errno> {
    const map = this.map;
    while (map.size() > 0) {
      const front = map.front()!;
      const end = front[0];
      const start = front[1];
      const step = callback(start, end);
      const consumed = step.consumed;
      checkConsumed(consumed, start, end);
      if (start + consumed > end) map.eraseElementByKey(end);
      // setElement checks the leftmost node first, so updating the front is O(1).
      else if (consumed > 0) map.setElement(end, start + consumed);
      const outcome = stepOutcome(step);
      if (outcome !== undefined) return outcome;
    }
    return CONSUME_DONE;
  }

  toArray(): Pair[] {
    const out: Pair[] = [];
    this.map.forEach((entry) => {
      out.push([entry[1], entry[0]]);
    });
    return out;
  }
}

// ---- @flatten-js/interval-tree -----------------------------------------------------------------

const keyOf = (_value: number, key: IntervalBase): IntervalBase => key;
const highOf = (_value: number, key: IntervalBase): number => key.high as number;

/**
 * A range set over `@flatten-js/interval-tree` (an augmented red-black tree keyed by `[low, high]`).
 * Lookups and merges use its interval search; every stored interval carries the value 0.
 *
 * Consuming from the front moves the first node's `low` up in place instead of removing and
 * re-inserting the node (the library has no update). That is sound: the node stays the minimum (its
 * new low is still below its successor's), so the search order holds; and the augmented `max` of the
 * node and its ancestors keeps an old, lower `low`, which only makes `not_intersect_right_subtree`
 * prune less, never wrongly. Without it, the fragmentation workload's 67M consume calls would each
 * cost a delete and an insert, and this peer alone would take minutes.
 */
export class IntervalTreeRangeSet implements RangeSetLike {
  private readonly tree = new IntervalTree<number>();

  containsRange(start: number, end: number): boolean {
    const hit = this.tree.search([start, start], highOf);
    return hit.length > 0 && hit[0]! >= end;
  }

  overlapsRange(start: number, end: number): boolean {
    return this.tree.intersect_any([start, end]);
  }

  addRange(start: number, end: number): void {
    const tree = this.tree;
    const touching = tree.search([start - 1, end + 1], keyOf);
    const n = touching.length;
    if (n === 0) {
      tree.insert([start, end], 0);
      return;
    }
    const first = touching[0]!;
    const last = touching[n - 1]!;
    const firstLow = first.low as number;
    const lastHigh = last.high as number;
    if (n === 1 && firstLow <= start && lastHigh >= end) return;
    for (let i = 0; i < n; i++) tree.remove(touching[i]!);
    tree.insert([Math.min(firstLow, start), Math.max(lastHigh, end)], 0);
  }

  removeRange(start: number, end: number): void {
    const tree = this.tree;
    const hit = tree.search([start, end], keyOf);
    const n = hit.length;
    if (n === 0) return;
    const firstLow = hit[0]!.low as number;
    const lastHigh = hit[n - 1]!.high as number;
    for (let i = 0; i < n; i++) tree.remove(hit[i]!);
    if (firstLow < start) tree.insert([firstLow, start - 1], 0);
    if (lastHigh > end) tree.insert([end + 1, lastHigh], 0);
  }

  /** The node holding the lowest interval, or undefined when empty. */
  private firstNode(): IntervalNode<number> | undefined {
    const tree = this.tree;
    const root = tree.root;
    if (root === null || root === tree.nil_node) return undefined;
    return tree.local_minimum(root);
  }

  consumeRanges(callback: ConsumeCallback): ConsumeResult<Errno> {
    const tree = this.tree;
    for (let node = this.firstNode(); node !== undefined; node = this.firstNode()) {
      const key = node.item.key!;
      const start = key.low as number;
      const end = key.high as number;
      const step = callback(start, end);
      const consumed = step.consumed;
      checkConsumed(consumed, start, end);
      if (start + consumed > end) tree.tree_delete(node);
      else key.low = start + consumed;
      const outcome = stepOutcome(step);
      if (outcome !== undefined) return outcome;
    }
    return CONSUME_DONE;
  }

  toArray(): Pair[] {
    const out: Pair[] = [];
    this.tree.forEach((key) => {
      out.push([key.low as number, key.high as number]);
    });
    return out;
  }
}

// ---- a flat typed array --------------------------------------------------------------------------

/**
 * The simplest fast range set: every range in one `Float64Array`, interleaved `s0, e0, s1, e1, …`,
 * sorted, from a head index on (consuming the first range moves the head, nothing else), grown by
 * doubling. A lookup is a binary search; an insert or delete moves the tail of the array (a memmove).
 * It starts with room for 4 ranges, so a tiny set costs one small typed array. It is the baseline a
 * whole-set consume and many tiny sets are measured against: nothing can do less work per range.
 */
export class FlatRangeSet implements RangeSetLike {
  private a = new Float64Array(8);
  /** Index (in numbers) of the first range's start, and one past the last range's end. */
  private head = 0;
  private tail = 0;

  /** Index of the first range (in numbers, from `head`) whose end is >= v; `tail` if none. */
  private firstEndingFrom(v: number): number {
    const a = this.a;
    let lo = this.head >> 1;
    let hi = this.tail >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[2 * mid + 1]! < v) lo = mid + 1;
      else hi = mid;
    }
    return 2 * lo;
  }

  containsRange(start: number, end: number): boolean {
    const i = this.firstEndingFrom(start);
    return i < this.tail && this.a[i]! <= start && this.a[i + 1]! >= end;
  }

  overlapsRange(start: number, end: number): boolean {
    const i = this.firstEndingFrom(start);
    return i < this.tail && this.a[i]! <= end;
  }

  /** Replaces the ranges at [i, j) (indices in numbers) by `k` ranges' room; returns the new array. */
  private splice(i: number, j: number, k: number): Float64Array {
    const delta = 2 * k - (j - i);
    if (delta > 0 && this.tail + delta > this.a.length) {
      const grown = new Float64Array(Math.max(2 * this.a.length, this.tail + delta));
      grown.set(this.a.subarray(0, this.tail));
      this.a = grown;
    }
    if (delta !== 0) {
      const a = this.a;
      const tail = this.tail;
      // Short moves (a tiny set's one or two ranges) as a plain loop: `copyWithin` is a call into the
      // runtime that costs more than moving a few numbers, even when it moves none.
      if (tail - j > 16) a.copyWithin(j + delta, j, tail);
      else if (delta > 0) for (let x = tail - 1; x >= j; x--) a[x + delta] = a[x]!;
      else for (let x = j; x < tail; x++) a[x + delta] = a[x]!;
    }
    this.tail += delta;
    return this.a;
  }

  addRange(start: number, end: number): void {
    // Ranges [i, j) touch [start, end]: the first ending at or after start - 1, up to the first
    // starting after end + 1.
    const i = this.firstEndingFrom(start - 1);
    let j = i;
    while (j < this.tail && this.a[j]! <= end + 1) j += 2;
    const s = i < j ? Math.min(start, this.a[i]!) : start;
    const e = i < j ? Math.max(end, this.a[j - 1]!) : end;
    const a = this.splice(i, j, 1);
    a[i] = s;
    a[i + 1] = e;
  }

  removeRange(start: number, end: number): void {
    const i = this.firstEndingFrom(start);
    let j = i;
    while (j < this.tail && this.a[j]! <= end) j += 2;
    if (i === j) return;
    const a0 = this.a;
    const keepLeft = a0[i]! < start;
    const keepRight = a0[j - 1]! > end;
    const left = a0[i]!;
    const right = a0[j - 1]!;
    const a = this.splice(i, j, (keepLeft ? 1 : 0) + (keepRight ? 1 : 0));
    let at = i;
    if (keepLeft) {
      a[at] = left;
      a[at + 1] = start - 1;
      at += 2;
    }
    if (keepRight) {
      a[at] = end + 1;
      a[at + 1] = right;
    }
  }

  consumeRanges(callback: ConsumeCallback): ConsumeResult<Errno> {
    const a = this.a;
    while (this.head < this.tail) {
      const start = a[this.head]!;
      const end = a[this.head + 1]!;
      const step = callback(start, end);
      const consumed = step.consumed;
      checkConsumed(consumed, start, end);
      if (start + consumed > end) this.head += 2;
      else a[this.head] = start + consumed;
      const outcome = stepOutcome(step);
      if (outcome !== undefined) return outcome;
    }
    // Empty: start again at the front of the array.
    this.head = 0;
    this.tail = 0;
    return CONSUME_DONE;
  }

  toArray(): Pair[] {
    const out: Pair[] = [];
    for (let i = this.head; i < this.tail; i += 2) out.push([this.a[i]!, this.a[i + 1]!]);
    return out;
  }
}
