/**
 * The baseline: the algorithm of Xen's `xen/common/rangeset.c`, restated in TypeScript. A rangeset
 * there is a sorted, circular doubly-linked list of `{s, e}` nodes hanging off a list head, and every
 * lookup (`find_range`) walks it from the head, so each operation costs O(ranges). The structure and
 * the case analysis of each operation follow Xen's; the code is written afresh.
 *
 * Left out, as the benchmark never uses them: the per-set range limit (`nr_ranges`, never hit here),
 * locking, names and printing.
 */
import type { ConsumeResult, Errno } from '../src/index.js';
import {
  CONSUME_DONE,
  type ConsumeCallback,
  checkConsumed,
  type Pair,
  type RangeSetLike,
  stepOutcome,
} from './peers.js';

/** One range of the list, or (with `s = e = -1`) the list head. */
class RangeNode {
  s: number;
  e: number;
  prev: RangeNode;
  next: RangeNode;

  constructor(s: number, e: number) {
    this.s = s;
    this.e = e;
    this.prev = this;
    this.next = this;
  }
}

export class XenLinkedListRangeSet implements RangeSetLike {
  /** The list head: `head.next` is the lowest range, `head.prev` the highest; empty when it loops. */
  private readonly head = new RangeNode(-1, -1);

  /**
   * A list of the canonical ranges `[starts[i], ends[i]]` (sorted, disjoint, non-adjacent), linked in
   * one pass: for setting up a large baseline without n inserts that each walk the list.
   */
  static fromSorted(starts: ArrayLike<number>, ends: ArrayLike<number>): XenLinkedListRangeSet {
    const set = new XenLinkedListRangeSet();
    let last = set.head;
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i]!;
      const e = ends[i]!;
      if (!(s <= e) || (i > 0 && s <= last.e + 1)) {
        throw new RangeError(
          `fromSorted: range ${i} [${s}, ${e}] is not canonical after [${last.s}, ${last.e}]`,
        );
      }
      const node = new RangeNode(s, e);
      set.linkAfter(last, node);
      last = node;
    }
    return set;
  }

  // ---- list primitives (Xen's private range functions) -----------------------------------------

  /** The highest range whose start is <= v, walking up from the lowest; null if there is none. */
  private findRange(v: number): RangeNode | null {
    const head = this.head;
    let found: RangeNode | null = null;
    for (let node = head.next; node !== head; node = node.next) {
      if (node.s > v) break;
      found = node;
    }
    return found;
  }

  /** The lowest range, or null when the set is empty. */
  private firstRange(): RangeNode | null {
    const first = this.head.next;
    return first === this.head ? null : first;
  }

  /** The range after `node`, or null when it is the highest. */
  private nextRange(node: RangeNode): RangeNode | null {
    return node.next === this.head ? null : node.next;
  }

  /** Links `node` just after `after`, or first when `after` is null. */
  private linkAfter(after: RangeNode | null, node: RangeNode): void {
    const prev = after ?? this.head;
    node.prev = prev;
    node.next = prev.next;
    prev.next.prev = node;
    prev.next = node;
  }

  /** Unlinks `node` (Xen frees it; here the garbage collector does). */
  private unlink(node: RangeNode): void {
    node.prev.next = node.next;
    node.next.prev = node.prev;
  }

  // ---- the verbs ---------------------------------------------------------------------------------

  addRange(s: number, e: number): void {
    let x = this.findRange(s);
    const y = this.findRange(e);
    if (x === y) {
      // Both ends fall after the same range (or before every range).
      if (x === null || (x.e < s && x.e + 1 !== s)) {
        // Not touching x: a new range goes in after it.
        const node = new RangeNode(s, e);
        this.linkAfter(y, node);
        x = node;
      } else if (x.e < e) {
        x.e = e;
      }
    } else {
      // y is a later range than x, so it exists. Grow the first touched range over the span…
      if (x === null) {
        x = this.firstRange()!;
        x.s = s;
      } else if (x.e < s && x.e + 1 !== s) {
        x = this.nextRange(x)!;
        x.s = s;
      }
      x.e = Math.max(y!.e, e);
      // …and drop every following range it now covers.
      for (let n = this.nextRange(x); n !== null && n.e <= x.e; n = this.nextRange(x)) this.unlink(n);
    }
    // Coalesce with a successor that starts right after.
    const n = this.nextRange(x);
    if (n !== null && x.e + 1 === n.s) {
      x.e = n.e;
      this.unlink(n);
    }
  }

  removeRange(s: number, e: number): void {
    let x = this.findRange(s);
    const y = this.findRange(e);
    if (x === y) {
      if (x === null || x.e < s) return;
      if (x.s < s && x.e > e) {
        // The hole is strictly inside x: split it.
        const tail = new RangeNode(e + 1, x.e);
        x.e = s - 1;
        this.linkAfter(x, tail);
      } else if (x.s === s && x.e <= e) {
        this.unlink(x);
      } else if (x.s === s) {
        x.s = e + 1;
      } else if (x.e <= e) {
        x.e = s - 1;
      }
      return;
    }
    // The hole spans from (before or inside) x up to inside or past y, which exists.
    if (x === null) x = this.firstRange()!;
    if (x.s < s) {
      if (x.e >= s) x.e = s - 1;
      x = this.nextRange(x)!;
    }
    while (x !== y) {
      const dead = x;
      x = this.nextRange(x)!;
      this.unlink(dead);
    }
    x.s = e + 1;
    if (x.s > x.e) this.unlink(x);
  }

  containsRange(s: number, e: number): boolean {
    const x = this.findRange(s);
    return x !== null && x.e >= e;
  }

  overlapsRange(s: number, e: number): boolean {
    const x = this.findRange(e);
    return x !== null && s <= x.e;
  }

  /** Xen's `rangeset_consume_ranges`, with `RangeSet`'s callback protocol. */
  consumeRanges(callback: ConsumeCallback): ConsumeResult<Errno> {
    for (let x = this.firstRange(); x !== null; x = this.firstRange()) {
      const step = callback(x.s, x.e);
      checkConsumed(step.consumed, x.s, x.e);
      x.s += step.consumed;
      if (x.s > x.e) this.unlink(x);
      const outcome = stepOutcome(step);
      if (outcome !== undefined) return outcome;
    }
    return CONSUME_DONE;
  }

  toArray(): Pair[] {
    const out: Pair[] = [];
    for (let node = this.head.next; node !== this.head; node = node.next) out.push([node.s, node.e]);
    return out;
  }
}
