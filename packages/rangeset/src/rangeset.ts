import { type ChunkedStore, DEFAULT_CHUNK_MAX } from './_internal/chunked-store.js';
import { SMALL_MAX, SmallStore } from './_internal/small-store.js';
import {
  checkCount,
  checkRange,
  checkValue,
  InvalidArgumentError,
  MAX_VALUE,
  RangeSetBusyError,
} from './errors.js';
import { formatRangeSet } from './format.js';
import {
  type ClaimResult,
  CONSUME_DONE,
  CONSUME_RESTART,
  type ConsumeResult,
  type ConsumeStep,
  type Errno,
  NO_MEMORY,
  NO_SPACE,
  OK,
  type Result,
} from './results.js';

/** Options for a new `RangeSet`. */
export interface RangeSetOptions {
  /** Name used by `toString()`; Xen keeps at most 31 characters and prints `(no name)` without one. */
  readonly name?: string;
  /** Print values in lowercase hexadecimal without `0x` (Xen's `RANGESETF_prettyprint_hex`). */
  readonly hex?: boolean;
  /**
   * Ranges per storage chunk (default 256): a tuning knob. Small values make every operation cross
   * chunk boundaries, which the tests use; values from 4 to 65536.
   */
  readonly chunkSize?: number;
}

/**
 * An inclusive range `[start, end]` of values of type `T` (plain numbers by default; a caller may
 * choose a branded number type such as a guest frame, and the set then carries it everywhere).
 */
export type Range<T extends number = number> = [start: T, end: T];

/**
 * A set of non-negative safe integers stored as sorted, disjoint, non-adjacent inclusive ranges:
 * Xen's `struct rangeset`, with the same verbs, over a chunked array store instead of a linked list.
 *
 * Bad arguments throw `InvalidArgumentError` (a `RangeError`) before anything changes. Expected
 * failures (`ENOMEM` past the range limit, `ENOSPC` from `claimRange`, a `consumeRanges` callback's
 * error) are returned as values and also leave the set unchanged, except that `consumeRanges` keeps
 * what the callback consumed before it stopped, as Xen does.
 *
 * `T` is the type of the values (default `number`). It exists only at compile time: every value,
 * callback argument and result carries it, and `in out` makes the set invariant in it, so a set of one
 * branded kind cannot be passed, merged or swapped where another kind (or plain numbers) is expected.
 */
export class RangeSet<in out T extends number = number> implements Iterable<Range<T>> {
  /** Name used by `toString()`. */
  readonly name: string;
  /** Whether `toString()` prints hexadecimal. */
  readonly hex: boolean;
  /** A `SmallStore` until the set first needs more than `SMALL_MAX` ranges, then a `ChunkedStore`. */
  private store: ChunkedStore | SmallStore;
  /** `store` is a `SmallStore` (a field: cheaper to test on every update than `instanceof`). */
  private small = true;
  private maxRanges = Number.POSITIVE_INFINITY;
  /**
   * Bounds of the stored values: every stored value lies in `[lo, hi]` (`lo > hi` when the set was
   * last seen empty). Adds widen them; removes and consumes leave them wider than needed until the set
   * is empty again. Lookups outside them answer without touching the store: most sets are tiny, and
   * vPCI asks every BAR's set about other devices' BARs, which almost never overlap (workload (g)).
   */
  private lo = NO_LOW;
  private hi = NO_HIGH;
  /**
   * Name of the operation whose callback is running (`reportRanges`, `consumeRanges`); the set must not
   * change until it returns. Operations that run no caller code only check it.
   */
  private busy: 'reportRanges' | 'consumeRanges' | undefined;

  constructor(options?: RangeSetOptions) {
    if (options === undefined) {
      // The common case, without an options object to read.
      this.name = '(no name)';
      this.hex = false;
      this.store = new SmallStore(DEFAULT_CHUNK_MAX);
      return;
    }
    if (options.name !== undefined && typeof options.name !== 'string') {
      throw new InvalidArgumentError('options.name', options.name, 'a string');
    }
    this.name = options.name === undefined ? '(no name)' : options.name.slice(0, 31);
    this.hex = options.hex === true;
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_MAX;
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 4 || chunkSize > 65536) {
      throw new InvalidArgumentError('options.chunkSize', chunkSize, 'an integer in 4 … 65536');
    }
    this.store = new SmallStore(chunkSize);
  }

  /**
   * A new set holding every range of `ranges` (each `[start, end]`, in any order). `T` is not inferred
   * from `ranges` (it would be the literal values written there): it is `number` unless given or
   * taken from the type the result is assigned to.
   */
  static from<T extends number = number>(
    ranges: Iterable<readonly [NoInfer<T>, NoInfer<T>]>,
    options: RangeSetOptions = {},
  ): RangeSet<T> {
    const set = new RangeSet<T>(options);
    for (const [start, end] of ranges) set.addRange(start, end);
    return set;
  }

  // ---- queries ---------------------------------------------------------------------------------

  /** Number of stored ranges. */
  get size(): number {
    // A consume callback reading the size: the store may lag behind its own loop.
    if (this.busy === 'consumeRanges') this.store.settle();
    return this.store.count;
  }

  /** The most ranges the set may hold (`Infinity` until `limit` is called). */
  get rangeLimit(): number {
    return this.maxRanges;
  }

  /** True iff the set holds no value. */
  isEmpty(): boolean {
    if (this.busy === 'consumeRanges') this.store.settle();
    return this.store.count === 0;
  }

  /** True iff every value of `[start, end]` is in the set. */
  containsRange(start: T, end: T): boolean {
    checkRange(start, end);
    if (start < this.lo || end > this.hi) return false;
    return this.store.contains(start, end);
  }

  /** True iff at least one value of `[start, end]` is in the set. */
  overlapsRange(start: T, end: T): boolean {
    checkRange(start, end);
    if (end < this.lo || start > this.hi) return false;
    return this.store.overlaps(start, end);
  }

  /** True iff `value` is in the set. */
  containsSingleton(value: T): boolean {
    checkValue('value', value);
    if (value < this.lo || value > this.hi) return false;
    return this.store.contains(value, value);
  }

  /**
   * Calls `callback(s, e)` for each stored range that intersects `[start, end]`, clipped to that
   * window, in ascending order. Stops at the first callback that returns something other than
   * `undefined` and returns that value; returns `undefined` when every call did. The callback must
   * not modify this set.
   */
  reportRanges<R>(start: T, end: T, callback: (start: T, end: T) => R | undefined): R | undefined {
    checkRange(start, end);
    // Reading inside another read (or inside a consume callback) is fine; only changes are refused.
    const outer = this.busy;
    this.busy = outer ?? 'reportRanges';
    try {
      return this.store.visitWindow(start, end, callback as StoredCallback<R | undefined>);
    } finally {
      this.busy = outer;
    }
  }

  /** The ranges in ascending order, as new `[start, end]` pairs. */
  toArray(): Range<T>[] {
    const out: Range<T>[] = [];
    this.store.forEach((s, e) => {
      out.push([s as T, e as T]);
    });
    return out;
  }

  /** Iterates the ranges in ascending order over a snapshot taken when iteration starts. */
  *[Symbol.iterator](): IterableIterator<Range<T>> {
    const flat = this.store.toFlat();
    for (let i = 0; i < flat.length; i += 2) yield [flat[i]! as T, flat[i + 1]! as T];
  }

  /** Xen's print form: the name padded to 10 columns, then `{ 0-1, 5, 8-9 }`; `{ }` when empty. */
  toString(): string {
    return formatRangeSet(this.name, this.toArray(), this.hex);
  }

  // ---- updates ---------------------------------------------------------------------------------

  /** Adds `[start, end]`, merging with the ranges it overlaps or touches. `ENOMEM` past the limit. */
  addRange(start: T, end: T): Result<'ENOMEM'> {
    checkRange(start, end);
    if (this.busy !== undefined) this.checkIdle('addRange');
    // `+ 0` stores -0 (which passes as a safe integer) as 0.
    if (!this.roomy().add(start + 0, end + 0, this.store.count < this.maxRanges)) return NO_MEMORY;
    this.widen(start + 0, end + 0);
    return OK;
  }

  /** Removes `[start, end]`, trimming or splitting ranges. `ENOMEM` when a split would pass the limit. */
  removeRange(start: T, end: T): Result<'ENOMEM'> {
    checkRange(start, end);
    if (this.busy !== undefined) this.checkIdle('removeRange');
    if (!this.roomy().remove(start, end, this.store.count < this.maxRanges)) return NO_MEMORY;
    if (this.store.count === 0) this.unbound();
    return OK;
  }

  /** `addRange(value, value)`. */
  addSingleton(value: T): Result<'ENOMEM'> {
    checkValue('value', value);
    if (this.busy !== undefined) this.checkIdle('addSingleton');
    return this.addRange(value, value);
  }

  /** `removeRange(value, value)`. */
  removeSingleton(value: T): Result<'ENOMEM'> {
    checkValue('value', value);
    if (this.busy !== undefined) this.checkIdle('removeSingleton');
    return this.removeRange(value, value);
  }

  /**
   * Claims the lowest block of `size` consecutive values not in the set (first fit from 0) and adds
   * it. `ENOSPC` when no block fits below `MAX_VALUE`, `ENOMEM` when adding it would pass the limit.
   */
  claimRange(size: number): ClaimResult<T> {
    checkCount('size', size);
    this.checkIdle('claimRange');
    const start = this.store.firstFit(size, MAX_VALUE);
    if (start < 0) return NO_SPACE;
    if (!this.roomy().add(start, start + size - 1, this.store.count < this.maxRanges)) return NO_MEMORY;
    this.widen(start, start + size - 1);
    return { ok: true, start: start as T };
  }

  /** Removes every range. */
  purge(): void {
    this.checkIdle('purge');
    this.store.clear();
    this.unbound();
  }

  /**
   * Sets the most ranges the set may hold. An operation that would leave more ranges than before and
   * more than `maxRanges` fails with `ENOMEM` and changes nothing. Setting a limit below the current
   * size is allowed (as in Xen): the set keeps its ranges and may only shrink or stay the same.
   */
  limit(maxRanges: number): void {
    if (typeof maxRanges !== 'number' || !Number.isSafeInteger(maxRanges) || maxRanges < 0) {
      throw new InvalidArgumentError('maxRanges', maxRanges, 'a safe integer >= 0');
    }
    this.maxRanges = maxRanges;
  }

  /**
   * Exchanges the ranges of two sets. Names, print flags and limits stay with their set objects; the
   * storage, and so its chunk size, travels with the ranges.
   */
  swap(other: RangeSet<T>): void {
    this.checkPeer('other', other);
    // Both sets change, so neither may be busy; checked first, so even swapping a set with itself
    // from its own callback throws.
    this.checkIdle('swap');
    other.checkIdle('swap');
    if (other === this) return;
    const store = this.store;
    const small = this.small;
    const lo = this.lo;
    const hi = this.hi;
    this.store = other.store;
    this.small = other.small;
    this.lo = other.lo;
    this.hi = other.hi;
    other.store = store;
    other.small = small;
    other.lo = lo;
    other.hi = hi;
  }

  /** Adds every range of `other` to this set, all or nothing: `ENOMEM` past the limit. */
  merge(other: RangeSet<T>): Result<'ENOMEM'> {
    this.checkPeer('other', other);
    // Before anything else: a busy set refuses the call even when it would change nothing (itself)
    // or fail (the limit). `other` is only read, so it may be busy.
    this.checkIdle('merge');
    if (other === this) return OK;
    if (this.maxRanges !== Number.POSITIVE_INFINITY) {
      const after = countUnion(this.store.toFlat(), other.store.toFlat());
      if (after > this.store.count && after > this.maxRanges) return NO_MEMORY;
    }
    other.store.forEach((s, e) => {
      this.roomy().add(s, e, true);
      this.widen(s, e);
    });
    return OK;
  }

  /** Removes every range of `other` from this set, all or nothing: `ENOMEM` past the limit. */
  subtract(other: RangeSet<T>): Result<'ENOMEM'> {
    this.checkPeer('other', other);
    // As in `merge`: a busy set refuses first; `other` is only read.
    this.checkIdle('subtract');
    if (other === this) {
      this.store.clear();
      this.unbound();
      return OK;
    }
    if (this.maxRanges !== Number.POSITIVE_INFINITY) {
      const after = countDifference(this.store.toFlat(), other.store.toFlat());
      if (after > this.store.count && after > this.maxRanges) return NO_MEMORY;
    }
    other.store.forEach((s, e) => {
      this.roomy().remove(s, e, true);
    });
    if (this.store.count === 0) this.unbound();
    return OK;
  }

  /**
   * The preemptible iteration (Xen's `rangeset_consume_ranges`). Hands the first range to `callback`
   * until the set is empty or the callback stops; the values it reports consumed are removed each
   * time, the rest stays for the next call. Returns `done` (empty), `restart` (call again to resume)
   * or the callback's failure code. The callback must not modify this set.
   */
  consumeRanges<C extends Errno = never>(callback: (start: T, end: T) => ConsumeStep<C>): ConsumeResult<C> {
    this.checkIdle('consumeRanges');
    this.busy = 'consumeRanges';
    try {
      const stopped = this.store.consume(callback as StoredCallback<ConsumeStep<C>>);
      // The store may lag behind its consume loop until this (the `finally` covers a throw).
      this.store.endConsume();
      if (stopped === undefined) {
        this.unbound();
        return CONSUME_DONE;
      }
      if (this.store.count === 0) this.unbound();
      if (stopped.next === 'fail') return { ok: false, code: stopped.code };
      return CONSUME_RESTART;
    } finally {
      this.store.endConsume();
      this.busy = undefined;
    }
  }

  /** Widens the bounds to take in `[start, end]`, just stored. */
  private widen(start: number, end: number): void {
    if (start < this.lo) this.lo = start;
    if (end > this.hi) this.hi = end;
  }

  /** Resets the bounds of a set found empty. */
  private unbound(): void {
    this.lo = NO_LOW;
    this.hi = NO_HIGH;
  }

  /**
   * The store, first swapped for a `ChunkedStore` with the same ranges when it is a full
   * `SmallStore`: called before every update, which adds at most one range.
   */
  private roomy(): ChunkedStore | SmallStore {
    if (this.small && this.store.count >= SMALL_MAX) {
      this.store = (this.store as SmallStore).promote();
      this.small = false;
    }
    return this.store;
  }

  // ---- guards ----------------------------------------------------------------------------------

  /** Throws `RangeSetBusyError` if one of this set's callbacks is running: the set must not change under it. */
  private checkIdle(operation: string): void {
    if (this.busy !== undefined) throw new RangeSetBusyError(this.name, operation, this.busy);
  }

  private checkPeer(argument: string, other: unknown): asserts other is RangeSet<T> {
    if (!(other instanceof RangeSet)) throw new InvalidArgumentError(argument, other, 'a RangeSet');
  }
}

/** The bounds of an empty set: every value is below `lo` or above `hi`. */
const NO_LOW = MAX_VALUE + 1;
const NO_HIGH = -1;

/**
 * A callback as the store calls it, with plain numbers. A `RangeSet<T>` hands its callbacks to the
 * store under this type: the store holds only values that came in through the set's `T` parameters
 * (or, for `claimRange`, a value the caller then receives as `T`), so each is a `T` going out.
 */
type StoredCallback<R> = (start: number, end: number) => R;

/** Number of ranges in the union of two canonical flat range lists. */
function countUnion(a: Float64Array, b: Float64Array): number {
  let i = 0;
  let j = 0;
  let count = 0;
  let end = -2;
  while (i < a.length || j < b.length) {
    let s: number;
    let e: number;
    if (j >= b.length || (i < a.length && a[i]! <= b[j]!)) {
      s = a[i]!;
      e = a[i + 1]!;
      i += 2;
    } else {
      s = b[j]!;
      e = b[j + 1]!;
      j += 2;
    }
    if (s > end + 1) {
      count++;
      end = e;
    } else if (e > end) end = e;
  }
  return count;
}

/** Number of ranges in `a` minus `b`, for canonical flat range lists. */
function countDifference(a: Float64Array, b: Float64Array): number {
  let count = 0;
  let j = 0;
  for (let i = 0; i < a.length; i += 2) {
    let s = a[i]!;
    const e = a[i + 1]!;
    while (j < b.length && b[j + 1]! < s) j += 2;
    // Walk the holes b punches in [s, e]; each piece left of a hole is one range.
    let k = j;
    while (k < b.length && b[k]! <= e) {
      if (b[k]! > s) count++;
      s = b[k + 1]! + 1;
      if (s > e) break;
      k += 2;
    }
    if (s <= e) count++;
  }
  return count;
}
