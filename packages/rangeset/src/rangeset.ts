import { ChunkedStore, DEFAULT_CHUNK_MAX } from './_internal/chunked-store.js';
import {
  checkCount,
  checkRange,
  checkStep,
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
  // Every field is declared here and written by the constructor only (`declare`: no field
  // initializers). Initializers are a function of their own, which V8 inlines beside the constructor
  // where sets are made, and fields declared without a value are defined twice (as `undefined` by the
  // initializer, then by the constructor): 173 bytes of bytecode against the caller's inlining budget
  // instead of about 100 (workload (g)'s loop then called the constructor through V8's generic
  // construct stub).

  /** Name used by `toString()`. */
  declare readonly name: string;
  /** Whether `toString()` prints hexadecimal. */
  declare readonly hex: boolean;
  /**
   * How many ranges the set holds in its own fields `s0, e0, s1, e1` (0, 1 or 2), or
   * `IN_STORE` while `store` holds them. Most sets are tiny: vPCI keeps one per BAR, holding one
   * range, two with the MSI-X table's page cut out. Held in fields, such a set is one object: no store
   * object, no array, nothing else to allocate or collect, and every verb is a few comparisons on
   * fields. An update that needs a third range moves the ranges into the store; the set moves back
   * into its fields when the store is found empty (a consume, removes, `purge`).
   */
  declare private inline: number;
  /**
   * The set's ranges in its fields, laid out so that a query is one or two comparisons whatever the
   * set holds: `[s0, e1]` always covers every value of the set, and a query outside it answers at once
   * (vPCI asks every BAR's set about other devices' BARs, which almost never overlap).
   *
   * - Two ranges: `[s0, e0]` and `[s1, e1]`.
   * - One range: held twice, as `[s0, e0]` and as `[s1, e1]`, so no test needs the count.
   * - None: `s0 = s1 = +inf`, `e0 = e1 = -inf`, the empty interval, which every query falls outside.
   * - In the store: `[s0, e1]` bounds the stored values (adds widen it, removes and consumes leave it
   *   wider than needed; two more fields would make every set larger for a store most never use), and
   *   `e0 = +inf`, `s1 = -inf`, so the "between the two ranges" test never answers for the store.
   *
   * Every change goes through `holdNone`, `holdOne`, `holdTwo` or `toStore`, or keeps the layout
   * itself. The fields start as infinities, heap numbers, so V8 gives them its double representation
   * in the first set made and every set keeps one hidden class. Started as 0 (a small integer), the
   * first value past 2^31 changed the representation, deprecated the class of the sets made before,
   * and V8 dropped the optimized code of every method each time the last set of the new class died
   * ("weak objects" in `--trace-deopt`).
   */
  declare private s0: number;
  declare private e0: number;
  declare private s1: number;
  declare private e1: number;
  /**
   * The chunked store: made when the set first needs more than two ranges, and kept, empty,
   * while the set is back in its fields, so a set that grows and shrinks again allocates it once.
   */
  declare private store: ChunkedStore | undefined;
  /** Ranges per chunk of the store (it travels with the ranges in `swap`). */
  declare private chunkSize: number;
  declare private maxRanges: number;
  /**
   * Name of the operation whose callback is running (`reportRanges`, `consumeRanges`); the set must not
   * change until it returns. Operations that run no caller code only check it.
   */
  declare private busy: number;

  constructor(options?: RangeSetOptions) {
    // Without options (the common case) the defaults, a constant; the options are checked in a
    // function of their own, which keeps the constructor small enough for V8 to inline where sets are
    // made. Every set writes its fields in this order, so all share one hidden class.
    const checked = options === undefined ? DEFAULT_OPTIONS : checkOptions(options);
    this.name = checked.name;
    this.hex = checked.hex;
    this.inline = 0;
    this.s0 = Infinity;
    this.e0 = -Infinity;
    this.s1 = Infinity;
    this.e1 = -Infinity;
    this.store = undefined;
    this.chunkSize = checked.chunkSize;
    this.maxRanges = Infinity;
    // `IDLE`, as a literal (5 bytes of bytecode fewer than reading the module's constant; see `addRange`).
    this.busy = 0;
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
    const n = this.inline;
    if (n !== IN_STORE) return n;
    const store = this.store!;
    // A consume callback reading the size: the store may lag behind its own loop.
    if (this.busy === CONSUMING) store.settle();
    return store.count;
  }

  /** The most ranges the set may hold (`Infinity` until `limit` is called). */
  get rangeLimit(): number {
    return this.maxRanges;
  }

  /** True iff the set holds no value. */
  isEmpty(): boolean {
    return this.size === 0;
  }

  /** True iff every value of `[start, end]` is in the set. */
  containsRange(start: T, end: T): boolean {
    checkRangeHere(start, end);
    return this.covers(start, end);
  }

  /** True iff at least one value of `[start, end]` is in the set. */
  overlapsRange(start: T, end: T): boolean {
    checkRangeHere(start, end);
    // Outside [s0, e1], which holds every value of the set in each representation (see `s0`): `end <
    // s0 || start > e1` as one branch. With `start <= end` (checked) and `s0 <= e1` (a set holding a
    // value), exactly one factor is negative when the query lies wholly before or wholly after
    // [s0, e1], and neither when they meet (the differences of safe integers are exact, so the
    // product's sign is). An empty set's factors are both -inf: it goes on, to the gap test below,
    // which answers false for it. One branch where two were: workload (g)'s loop of queries against
    // other devices' BARs is bound by its branches (its argument check is one branch for the same reason).
    if ((end - this.s0) * (this.e1 - start) < 0) return false;
    // In the fields (`inline` 0, 1 or 2; `IN_STORE` is -1): true unless in the gap between two ranges
    // (one range is also the second, so it has none; an empty set's `e0`, `s1` are -inf, +inf). As one
    // expression, and `>= 0`, to keep the bytecode short (V8 inlines this into the caller's loops
    // within a budget of bytecode).
    if (this.inline >= 0) return start <= this.e0 || end >= this.s1;
    // Handed over in `STORED_QUERY`, not as arguments: see there (through a local: each read of a
    // module constant is 6 bytes of bytecode, see DESIGN.md, eleventh pass).
    const query = STORED_QUERY;
    query[0] = start;
    query[1] = end;
    // `=== true`: the caller then branches on a comparison, not on the call's result, a value of any
    // type as far as V8 knows, which it tested against the true and false objects (see DESIGN.md).
    return this.overlapsStored() === true;
  }

  /**
   * Which of `sets` hold a value of `[start, end]`: bit `i` of the result is set iff `sets[i]` does,
   * as `RangeSet`'s `overlapsRange` answers (0 when none does; a subclass's override of
   * `overlapsRange` is not called). Xen's `modify_bars` asks each of a device's BAR sets about every
   * enabled BAR of the other devices it meets (vPCI's `modifyBars`, benchmark workload (g)); here the
   * range is checked once for all of them, not once per set. Changes nothing.
   *
   * Throws `InvalidArgumentError` for a bad range (as `overlapsRange` does), for more than 31 sets
   * (`sets`), or for an element that is not a `RangeSet` (`sets[i]`, the first such).
   */
  static overlappingSets<T extends number>(sets: readonly RangeSet<T>[], start: T, end: T): number {
    checkRangeHere(start, end);
    let found = 0;
    // The loop for sets in their fields, which almost every call meets: every path that is not that
    // (a bad element, a set in its store) leaves it, by a throw or a return, and none comes back into
    // it, so V8 keeps the loop's values in registers across iterations (its counter was spilled to the
    // stack, every iteration, while the store's call joined the loop: DESIGN.md, twelfth pass).
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i]!;
      // `!isRangeSet(set)`, written out: the call, inlined, costs V8's inlining budget of (g)'s loop
      // the bytes that kept the constructor out of it (DESIGN.md, eleventh pass).
      if (i > 30 || set == null || (set as Branded)[BRAND] !== true) throw setsError(sets);
      // `overlapsRange`'s answer, written out here rather than shared (see DESIGN.md, eleventh pass).
      if ((end - set.s0) * (set.e1 - start) >= 0) {
        if (set.inline < 0) {
          // A set in its store, within its bounds: every set is asked again out of line, the query
          // handed over in `STORED_QUERY` (see there; through a local: each read of a module constant
          // is 6 bytes of bytecode, DESIGN.md, eleventh pass), written only here.
          const query = STORED_QUERY;
          query[0] = start;
          query[1] = end;
          return set.overlappingStored(sets);
        }
        if (start <= set.e0 || end >= set.s1) found |= 1 << i;
      }
    }
    return found;
  }

  /**
   * `overlappingSets` of `STORED_QUERY` (checked) once one of `sets` was found in its store with the
   * query inside its bounds: every set asked again, from the first, each in its fields or its store.
   * An instance method (of that set) only because the call is then shorter in the caller's bytecode.
   */
  private overlappingStored(sets: readonly RangeSet<T>[]): number {
    const start = STORED_QUERY[0]!;
    const end = STORED_QUERY[1]!;
    let found = 0;
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i]!;
      if (i > 30 || !isRangeSet(set)) throw setsError(sets);
      if (
        (end - set.s0) * (set.e1 - start) >= 0 &&
        (set.inline >= 0 ? start <= set.e0 || end >= set.s1 : set.overlapsStored())
      ) {
        found |= 1 << i;
      }
    }
    return found;
  }

  /** True iff `value` is in the set. */
  containsSingleton(value: T): boolean {
    checkValue('value', value);
    return this.covers(value, value);
  }

  /**
   * Calls `callback(s, e)` for each stored range that intersects `[start, end]`, clipped to that
   * window, in ascending order. Stops at the first callback that returns something other than
   * `undefined` and returns that value; returns `undefined` when every call did. The callback must
   * not modify this set.
   */
  reportRanges<R>(start: T, end: T, callback: (start: T, end: T) => R | undefined): R | undefined {
    checkRangeHere(start, end);
    // Reading inside another read (or inside a consume callback) is fine; only changes are refused.
    const outer = this.busy;
    this.busy = outer === IDLE ? REPORTING : outer;
    try {
      const visit = callback as StoredCallback<R | undefined>;
      const n = this.inline;
      if (n === IN_STORE) return this.store!.visitWindow(start, end, visit);
      if (n > 0 && this.e0 >= start && this.s0 <= end) {
        const stop = visit(Math.max(this.s0, start), Math.min(this.e0, end));
        if (stop !== undefined) return stop;
      }
      if (n > 1 && this.e1 >= start && this.s1 <= end)
        return visit(Math.max(this.s1, start), Math.min(this.e1, end));
      return undefined;
    } finally {
      this.busy = outer;
    }
  }

  /** The ranges in ascending order, as new `[start, end]` pairs. */
  toArray(): Range<T>[] {
    const out: Range<T>[] = [];
    this.forEachRange((s, e) => {
      out.push([s as T, e as T]);
    });
    return out;
  }

  /** Iterates the ranges in ascending order over a snapshot taken when iteration starts. */
  *[Symbol.iterator](): IterableIterator<Range<T>> {
    const flat = this.toFlat();
    for (let i = 0; i < flat.length; i += 2) yield [flat[i]! as T, flat[i + 1]! as T];
  }

  /** Xen's print form: the name padded to 10 columns, then `{ 0-1, 5, 8-9 }`; `{ }` when empty. */
  toString(): string {
    return formatRangeSet(this.name, this.toArray(), this.hex);
  }

  // ---- updates ---------------------------------------------------------------------------------

  /** Adds `[start, end]`, merging with the ranges it overlaps or touches. `ENOMEM` past the limit. */
  addRange(start: T, end: T): Result<'ENOMEM'> {
    checkRangeHere(start, end);
    // `IDLE` is 0, written as a literal: 5 bytes of bytecode fewer than reading the module's constant,
    // which V8 counts against the inlining budget of (g)'s loop (DESIGN.md, eleventh pass).
    if (this.busy !== 0) this.checkIdle('addRange');
    // `+ 0` stores -0 (which passes as a safe integer) as 0.
    const s = start + 0;
    const e = end + 0;
    if (this.inline === 0 && this.maxRanges > 0) {
      // An empty set filled (vPCI fills each BAR's empty set), here so that V8 inlines it.
      this.holdOne(s, e);
      return OK;
    }
    return this.insert(s, e, this.maxRanges) ? OK : NO_MEMORY;
  }

  /** Removes `[start, end]`, trimming or splitting ranges. `ENOMEM` when a split would pass the limit. */
  removeRange(start: T, end: T): Result<'ENOMEM'> {
    checkRangeHere(start, end);
    if (this.busy !== IDLE) this.checkIdle('removeRange');
    return this.erase(start, end, this.maxRanges) ? OK : NO_MEMORY;
  }

  /** `addRange(value, value)`. */
  addSingleton(value: T): Result<'ENOMEM'> {
    checkValue('value', value);
    if (this.busy !== IDLE) this.checkIdle('addSingleton');
    return this.addRange(value, value);
  }

  /** `removeRange(value, value)`. */
  removeSingleton(value: T): Result<'ENOMEM'> {
    checkValue('value', value);
    if (this.busy !== IDLE) this.checkIdle('removeSingleton');
    return this.removeRange(value, value);
  }

  /**
   * Claims the lowest block of `size` consecutive values not in the set (first fit from 0) and adds
   * it. `ENOSPC` when no block fits below `MAX_VALUE`, `ENOMEM` when adding it would pass the limit.
   */
  claimRange(size: number): ClaimResult<T> {
    checkCount('size', size);
    this.checkIdle('claimRange');
    const start = this.firstFit(size);
    if (start < 0) return NO_SPACE;
    if (!this.insert(start, start + size - 1, this.maxRanges)) return NO_MEMORY;
    return { ok: true, start: start as T };
  }

  /** Removes every range. */
  purge(): void {
    this.checkIdle('purge');
    this.store?.clear();
    this.emptied();
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
    const { inline, s0, e0, s1, e1, store, chunkSize } = this;
    this.inline = other.inline;
    this.s0 = other.s0;
    this.e0 = other.e0;
    this.s1 = other.s1;
    this.e1 = other.e1;
    this.store = other.store;
    this.chunkSize = other.chunkSize;
    other.inline = inline;
    other.s0 = s0;
    other.e0 = e0;
    other.s1 = s1;
    other.e1 = e1;
    other.store = store;
    other.chunkSize = chunkSize;
  }

  /** Adds every range of `other` to this set, all or nothing: `ENOMEM` past the limit. */
  merge(other: RangeSet<T>): Result<'ENOMEM'> {
    this.checkPeer('other', other);
    // Before anything else: a busy set refuses the call even when it would change nothing (itself)
    // or fail (the limit). `other` is only read, so it may be busy.
    this.checkIdle('merge');
    if (other === this) return OK;
    if (this.maxRanges !== Number.POSITIVE_INFINITY) {
      const after = countUnion(this.toFlat(), other.toFlat());
      if (after > this.size && after > this.maxRanges) return NO_MEMORY;
    }
    other.forEachRange((s, e) => {
      this.insert(s, e, Number.POSITIVE_INFINITY);
    });
    return OK;
  }

  /** Removes every range of `other` from this set, all or nothing: `ENOMEM` past the limit. */
  subtract(other: RangeSet<T>): Result<'ENOMEM'> {
    this.checkPeer('other', other);
    // As in `merge`: a busy set refuses first; `other` is only read.
    this.checkIdle('subtract');
    if (other === this) {
      this.store?.clear();
      this.emptied();
      return OK;
    }
    if (this.maxRanges !== Number.POSITIVE_INFINITY) {
      const after = countDifference(this.toFlat(), other.toFlat());
      if (after > this.size && after > this.maxRanges) return NO_MEMORY;
    }
    other.forEachRange((s, e) => {
      this.erase(s, e, Number.POSITIVE_INFINITY);
    });
    return OK;
  }

  /**
   * The preemptible iteration (Xen's `rangeset_consume_ranges`). Hands the first range to `callback`
   * until the set is empty or the callback stops; the values it reports consumed are removed each
   * time, the rest stays for the next call. Returns `done` (empty), `restart` (call again to resume)
   * or the callback's failure code. The callback must not modify this set.
   */
  consumeRanges<C extends Errno = never>(callback: (start: T, end: T) => ConsumeStep<C>): ConsumeResult<C> {
    // Two cases, each in a method of its own that the other never calls: V8 inlines a callee into
    // its caller only within what is left of the caller's inlining budget, counting what the
    // callee's own optimized code has inlined. A budgeted consumer of a stored set (vPCI's map loop,
    // workload (c)) gets `consumeFirst`, its callback and the store's steps; a loop over tiny sets
    // (workload (g)) gets `consumeFields`, which no stored set reaches, so it stays small even after
    // a stored set's consume made the store's path hot (before, `consumeFields` also led to the
    // store's loop, and after workload (c) the tiny sets' loop called it instead of inlining it).
    if (this.inline !== IN_STORE && this.busy === IDLE) return this.consumeFields(callback);
    return this.consumeFirst(callback);
  }

  /**
   * The common call of a budgeted consumer (vPCI's map loop, workload (c)): the store holds the
   * ranges, the callback takes part of the first one and asks for a restart. That is done here, on
   * the first range the store holds in two fields (`firstStart`, `firstEnd`), one write and no loop,
   * kept short so that V8 inlines it and the callback into the caller's loop; every other step goes
   * out of line (`consumedOther`), as does a set that is busy or lags (`consumeStored`).
   */
  private consumeFirst<C extends Errno>(callback: (start: T, end: T) => ConsumeStep<C>): ConsumeResult<C> {
    // A busy set is refused in `consumeStored` (before it reads the store, which a set in its fields
    // may not have).
    if (this.busy !== IDLE || !this.store!.holdsFirst()) {
      return this.consumeStored(callback as StoredCallback<ConsumeStep<C>>);
    }
    const store = this.store!;
    const start = store.firstStart;
    const end = store.firstEnd;
    let step: ConsumeStep<C>;
    this.busy = CONSUMING;
    try {
      step = callback(start as T, end as T);
    } catch (error) {
      // A `catch` rather than a `finally`: V8 saves and restores the pending message around a
      // `finally` on every call, and a `catch` costs nothing until something is thrown.
      this.busy = IDLE;
      throw error;
    }
    this.busy = IDLE;
    const consumed = step.consumed;
    const next = step.next;
    // The common step, tested first and in full: part of the range taken, then a restart. Every
    // other step goes out of line, where `checkStep` tests it before it is applied (R4).
    if (next === 'restart' && Number.isInteger(consumed) && consumed >= 0 && consumed < end - start + 1) {
      store.consumedPart(start + consumed);
      return RESTARTED;
    }
    return this.consumedOther(step, callback as StoredCallback<ConsumeStep<C>>);
  }

  /**
   * `consumeFirst` after a step other than a part of the range and a restart: the range used up,
   * `continue`, `fail`, or a bad step (thrown here, the set as it was). Out of line: a budgeted
   * consumer takes it once a range.
   */
  private consumedOther<C extends Errno>(
    step: ConsumeStep<C>,
    callback: StoredCallback<ConsumeStep<C>>,
  ): ConsumeResult<C> {
    const store = this.store!;
    // The range the step was for: the held fields, unchanged by the step (a callback that read the
    // set only wrote the start back, see `ChunkedStore.firstStart`).
    const start = store.firstStart;
    const end = store.firstEnd;
    const consumed = step.consumed;
    const next = step.next;
    checkStepHere(step, start, end);
    if (consumed !== end - start + 1) {
      store.consumedPart(start + consumed);
    } else this.usedFirst();
    if (next === 'continue') {
      // The first range used up may have been the last: the set is then back in its fields, empty.
      return this.inline === IN_STORE ? this.consumeStored(callback) : CONSUME_DONE;
    }
    return next === 'restart' ? RESTARTED : stoppedBy(step);
  }

  /**
   * `consumeRanges` of an idle set that holds its ranges in its fields (they stay there: a consume
   * only removes values).
   */
  private consumeFields<C extends Errno>(callback: (start: T, end: T) => ConsumeStep<C>): ConsumeResult<C> {
    this.busy = CONSUMING;
    try {
      // The fields change only after each step is checked, so a callback reading the set sees it
      // exactly as it is, and a throw (the callback's or the check's) keeps what was consumed before.
      while (this.inline > 0) {
        const start = this.s0;
        const end = this.e0;
        const step = callback(start as T, end as T);
        const consumed = step.consumed;
        const next = step.next;
        checkStep(step, start, end);
        if (consumed === end - start + 1) {
          if (this.inline === 2) this.holdOne(this.s1, this.e1);
          else this.holdNone();
        } else if (consumed > 0) {
          this.s0 = start + consumed;
          // One range is also held as the second (see `s0`).
          if (this.inline === 1) this.s1 = this.s0;
        }
        if (next !== 'continue') return stoppedBy(step);
      }
      return CONSUME_DONE;
    } finally {
      this.busy = IDLE;
    }
  }

  // ---- the two representations -------------------------------------------------------------------

  /**
   * `overlapsRange` of `STORED_QUERY` while the store holds the ranges (out of line: the inline case
   * is the hot one).
   */
  private overlapsStored(): boolean {
    return this.store!.overlaps(STORED_QUERY[0]!, STORED_QUERY[1]!);
  }

  /** `containsRange` after the argument check. */
  private covers(start: number, end: number): boolean {
    // Outside [s0, e1], which holds every value of the set (see `s0`).
    if (start < this.s0 || end > this.e1) return false;
    if (this.inline === IN_STORE) return this.store!.contains(start, end);
    // Inside [s0, e1]: held if inside the first range or the second (one range is both).
    return end <= this.e0 || start >= this.s1;
  }

  /**
   * Adds `[s, e]` (checked). Returns false, changing nothing, when that needs one more range and the
   * set already holds `limit` or more.
   */
  private insert(s: number, e: number, limit: number): boolean {
    const n = this.inline;
    if (n === 0) {
      if (limit < 1) return false;
      this.holdOne(s, e);
      return true;
    }
    if (n === 1) {
      const s0 = this.s0;
      const e0 = this.e0;
      if (s > e0 + 1) {
        if (limit < 2) return false;
        this.holdTwo(s0, e0, s, e);
      } else if (e + 1 < s0) {
        if (limit < 2) return false;
        this.holdTwo(s, e, s0, e0);
      } else this.holdOne(Math.min(s, s0), Math.max(e, e0));
      return true;
    }
    if (n === 2) {
      // Overlaps or touches the first range, the second, or both (then all three become one).
      const first = s <= this.e0 + 1 && e + 1 >= this.s0;
      const second = s <= this.e1 + 1 && e + 1 >= this.s1;
      if (first) {
        if (second) this.holdOne(Math.min(s, this.s0), Math.max(e, this.e1));
        else {
          if (s < this.s0) this.s0 = s;
          if (e > this.e0) this.e0 = e;
        }
        return true;
      }
      if (second) {
        if (s < this.s1) this.s1 = s;
        if (e > this.e1) this.e1 = e;
        return true;
      }
      if (limit < 3) return false;
      this.toStore();
    }
    const store = this.store!;
    if (!store.add(s, e, store.count < limit)) return false;
    if (s < this.s0) this.s0 = s;
    if (e > this.e1) this.e1 = e;
    return true;
  }

  /**
   * Removes `[s, e]` (checked). Returns false, changing nothing, when a range must split in two and
   * the set already holds `limit` or more.
   */
  private erase(s: number, e: number, limit: number): boolean {
    const n = this.inline;
    if (n !== IN_STORE) {
      // Outside [s0, e1] (an empty set included): nothing to remove.
      if (e < this.s0 || s > this.e1) return true;
      const s0 = this.s0;
      const e0 = this.e0;
      const s1 = this.s1;
      const e1 = this.e1;
      if (n === 1) {
        const keepLeft = s0 < s;
        const keepRight = e0 > e;
        if (keepLeft && keepRight) {
          // A split of the one range.
          if (limit < 2) return false;
          this.holdTwo(s0, s - 1, e + 1, e0);
        } else if (keepLeft) this.holdOne(s0, s - 1);
        else if (keepRight) this.holdOne(e + 1, e0);
        else this.holdNone();
        return true;
      }
      const first = s <= e0;
      const second = e >= s1;
      if (first && second) {
        // From inside (or before) the first range to inside (or past) the second: no split.
        const keepLeft = s0 < s;
        const keepRight = e1 > e;
        if (keepLeft && keepRight) this.holdTwo(s0, s - 1, e + 1, e1);
        else if (keepLeft) this.holdOne(s0, s - 1);
        else if (keepRight) this.holdOne(e + 1, e1);
        else this.holdNone();
        return true;
      }
      if (first) {
        const keepLeft = s0 < s;
        const keepRight = e0 > e;
        if (!keepLeft || !keepRight) {
          if (keepLeft) this.e0 = s - 1;
          else if (keepRight) this.s0 = e + 1;
          else this.holdOne(s1, e1);
          return true;
        }
      } else if (second) {
        const keepLeft = s1 < s;
        const keepRight = e1 > e;
        if (!keepLeft || !keepRight) {
          if (keepLeft) this.e1 = s - 1;
          else if (keepRight) this.s1 = e + 1;
          else this.holdOne(s0, e0);
          return true;
        }
      } else return true;
      // A split of one of two ranges: three ranges, more than the fields hold.
      if (limit < 3) return false;
      this.toStore();
    }
    const store = this.store!;
    if (!store.remove(s, e, store.count < limit)) return false;
    if (store.count === 0) this.emptied();
    return true;
  }

  /** The first step of `consumeRanges` used up the first stored range (out of line: the rare case). */
  private usedFirst(): void {
    const store = this.store!;
    store.consumedFirst();
    if (store.count === 0) this.emptied();
  }

  /** `consumeRanges` while the store holds the ranges, or refused while the set is busy. */
  private consumeStored<C extends Errno>(callback: StoredCallback<ConsumeStep<C>>): ConsumeResult<C> {
    this.checkIdle('consumeRanges');
    const store = this.store!;
    this.busy = CONSUMING;
    try {
      const stopped = store.consume(callback);
      // The store may lag behind its consume loop until this (the `finally` covers a throw).
      store.endConsume();
      if (store.count === 0) this.emptied();
      return stopped === undefined ? CONSUME_DONE : stoppedBy(stopped);
    } finally {
      store.endConsume();
      this.busy = IDLE;
    }
  }

  /**
   * Moves the ranges from the fields into the store (made the first time), before an update that
   * needs more ranges than the fields hold.
   */
  private toStore(): void {
    const n = this.inline;
    let store = this.store;
    if (store === undefined) {
      store = new ChunkedStore(this.chunkSize);
      this.store = store;
    }
    if (n > 0) store.add(this.s0, this.e0, true);
    if (n > 1) store.add(this.s1, this.e1, true);
    // The bounds `s0`, `e1` start as the ranges' own (one range is also the second, and an empty
    // set's are the empty interval [+inf, -inf]); `e0` and `s1` make the gap test fail (see `s0`).
    this.e0 = Infinity;
    this.s1 = -Infinity;
    this.inline = IN_STORE;
  }

  /** The set was found empty: it holds its (no) ranges in its fields again; an empty store is kept. */
  private emptied(): void {
    this.holdNone();
  }

  /** The set holds no range, in its fields. */
  private holdNone(): void {
    // `Infinity`, a global V8 compiles in: 3 bytes of bytecode where `Number.POSITIVE_INFINITY` takes 7.
    this.inline = 0;
    this.s0 = Infinity;
    this.e0 = -Infinity;
    this.s1 = Infinity;
    this.e1 = -Infinity;
  }

  /** The set holds the one range `[s, e]`, in its fields (as the first and the second, see `s0`). */
  private holdOne(s: number, e: number): void {
    this.inline = 1;
    this.s0 = s;
    this.e0 = e;
    this.s1 = s;
    this.e1 = e;
  }

  /** The set holds `[a, b]` and `[c, d]` (`b + 1 < c`), in its fields. */
  private holdTwo(a: number, b: number, c: number, d: number): void {
    this.inline = 2;
    this.s0 = a;
    this.e0 = b;
    this.s1 = c;
    this.e1 = d;
  }

  /** Calls `visit(s, e)` for every range in ascending order. */
  private forEachRange(visit: (start: number, end: number) => void): void {
    const n = this.inline;
    if (n === IN_STORE) {
      this.store!.forEach(visit);
      return;
    }
    if (n > 0) visit(this.s0, this.e0);
    if (n > 1) visit(this.s1, this.e1);
  }

  /** The ranges as one flat array `s0, e0, s1, e1, …` (a snapshot). */
  private toFlat(): Float64Array {
    const n = this.inline;
    if (n === IN_STORE) return this.store!.toFlat();
    const out = new Float64Array(2 * n);
    if (n > 0) {
      out[0] = this.s0;
      out[1] = this.e0;
    }
    if (n > 1) {
      out[2] = this.s1;
      out[3] = this.e1;
    }
    return out;
  }

  /** Lowest `start` such that `[start, start + size - 1]` holds no stored value and ends <= MAX_VALUE; -1 if none. */
  private firstFit(size: number): number {
    const n = this.inline;
    if (n === IN_STORE) return this.store!.firstFit(size, MAX_VALUE);
    let start = 0;
    if (n > 0) {
      if (this.s0 - start >= size) return start;
      start = this.e0 + 1;
    }
    if (n > 1) {
      if (this.s1 - start >= size) return start;
      start = this.e1 + 1;
    }
    return MAX_VALUE - start + 1 >= size ? start : -1;
  }

  // ---- guards ----------------------------------------------------------------------------------

  /** Throws `RangeSetBusyError` if one of this set's callbacks is running: the set must not change under it. */
  private checkIdle(operation: string): void {
    if (this.busy !== IDLE) throw new RangeSetBusyError(this.name, operation, BUSY_NAMES[this.busy]!);
  }

  private checkPeer(argument: string, other: unknown): asserts other is RangeSet<T> {
    if (!(other instanceof RangeSet)) throw new InvalidArgumentError(argument, other, 'a RangeSet');
  }
}

/**
 * `checkRange`, as a constant of this module: V8 reads a function imported from another module from
 * its module cell, and checks it, at every call, and compiles a constant of this module in. It is on
 * the path of every query (with the rewritten `checkRange`, 12-15 % of workload (g)).
 */
const checkRangeHere = checkRange;

/**
 * Marks `RangeSet.prototype` (a property of the prototype, not of each set), so that whether a value is
 * a RangeSet is a property read: see `isRangeSet`.
 */
const BRAND = Symbol('RangeSet');
Object.defineProperty(RangeSet.prototype, BRAND, { value: true });

/** A value that may be a RangeSet, as `isRangeSet` reads it. */
interface Branded {
  readonly [BRAND]?: unknown;
}

/**
 * Whether `value` is a RangeSet: whether `RangeSet.prototype` is on its prototype chain, as
 * `instanceof RangeSet` says, read as a property of the prototype. Once V8 has seen only sets here,
 * it compiles that read to the check of the object's hidden class that reading the set's fields makes
 * anyway; `instanceof` in `overlappingSets` was a call to V8's generic instanceof for every set (the
 * class is not a constant there), and (g)'s kernel ran 49 ms instead of 11 at 10,000 devices.
 */
function isRangeSet(value: unknown): value is RangeSet<number> {
  return value != null && (value as Branded)[BRAND] === true;
}

/**
 * The `InvalidArgumentError` that names what is wrong with `RangeSet.overlappingSets`'s `sets`, for the
 * caller to throw once it has found something is: more than 31, or the first element that is not a
 * `RangeSet`. Out of line: the query's loop is inlined into its callers within V8's budget of
 * bytecode. Returned, not thrown here, so that the loop's path to it ends in a `throw` V8 can see.
 */
function setsError(sets: readonly unknown[]): InvalidArgumentError {
  if (sets.length > 31) return new InvalidArgumentError('sets', sets, 'at most 31 RangeSets');
  const i = sets.findIndex((set) => !isRangeSet(set));
  return new InvalidArgumentError(`sets[${i}]`, sets[i], 'a RangeSet');
}

/** `checkStep` and `CONSUME_RESTART` as constants of this module, for `consumeRanges` (as above). */
const checkStepHere = checkStep;
const RESTARTED = CONSUME_RESTART;

/**
 * The query `overlapsRange` hands to `overlapsStored`, and `overlappingSets` to `overlappingStored`.
 * As arguments of a call, `start` and `end` must be boxed (a heap number each: they are doubles past
 * 2^31), and V8 boxes a value once, where every use of the box can see it: a caller that also passes the same two values to a call of its own (the
 * benchmark's, and vPCI's, `removeRange` after an `overlapsRange` that hit) then gets them boxed
 * before `overlapsRange` branches on `inline`, on every call, for a branch that almost never runs. In
 * workload (g) at 100,000 devices, where a few dozen sets reach the store, that allocated 32 bytes a
 * query and made RangeSet 1.4-1.7x slower (`--print-opt-code`: the allocation before the branch).
 * Stored in a typed array, they stay doubles and the stores stay on the store's branch.
 */
const STORED_QUERY = new Float64Array(2);

/** `RangeSet.inline` while the store holds the ranges. */
const IN_STORE = -1;

/**
 * `RangeSet.busy`: no callback of the set runs, or the callback of `reportRanges` or `consumeRanges`
 * does. Small integers, not the names: the consume of a budgeted caller writes the field twice per
 * call, and a string there is a pointer V8 guards with a write barrier each time.
 */
const IDLE = 0;
const REPORTING = 1;
const CONSUMING = 2;
/** The name of the running callback's operation, by `busy`, for `RangeSetBusyError`. */
const BUSY_NAMES = [undefined, 'reportRanges', 'consumeRanges'] as const;

/** The result of a consume that a callback's step stopped (`restart` or `fail`). */
function stoppedBy<C extends Errno>(step: ConsumeStep<C>): ConsumeResult<C> {
  return step.next === 'fail' ? { ok: false, code: step.code } : CONSUME_RESTART;
}

/** A set's options, checked, with the defaults filled in. */
interface CheckedOptions {
  readonly name: string;
  readonly hex: boolean;
  readonly chunkSize: number;
}

/** The options of a set made without any. */
const DEFAULT_OPTIONS: CheckedOptions = { name: '(no name)', hex: false, chunkSize: DEFAULT_CHUNK_MAX };

/** `options` checked, with the defaults filled in. */
function checkOptions(options: RangeSetOptions): CheckedOptions {
  if (options.name !== undefined && typeof options.name !== 'string') {
    throw new InvalidArgumentError('options.name', options.name, 'a string');
  }
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_MAX;
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 4 || chunkSize > 65536) {
    throw new InvalidArgumentError('options.chunkSize', chunkSize, 'an integer in 4 … 65536');
  }
  return {
    name: options.name === undefined ? '(no name)' : options.name.slice(0, 31),
    hex: options.hex === true,
    chunkSize,
  };
}

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
