/**
 * A broken precondition: an argument that is not what the operation accepts. Thrown at once, before
 * any state changes, and names the argument, the value received and what was expected.
 *
 * It extends `RangeError`, so `catch (e) { if (e instanceof RangeError) … }` also works.
 */
export class InvalidArgumentError extends RangeError {
  /** The parameter's name as the API spells it, e.g. `start`. */
  readonly argument: string;
  /** The value that was passed. */
  readonly received: unknown;
  /** What the parameter accepts, in words. */
  readonly expected: string;

  constructor(argument: string, received: unknown, expected: string) {
    super(`${argument}: expected ${expected}, got ${describe(received)}`);
    this.name = 'InvalidArgumentError';
    this.argument = argument;
    this.received = received;
    this.expected = expected;
  }
}

/**
 * A set was asked to change while one of its own callbacks runs (`reportRanges`, `consumeRanges`): a
 * broken precondition, thrown before anything changes, so the set is as it was and stays usable.
 * Xen holds the set's lock across the callback, and a change from inside would deadlock.
 */
export class RangeSetBusyError extends Error {
  /** The set's name (as `toString()` prints it). */
  readonly set: string;
  /** The refused call, e.g. `merge`. */
  readonly operation: string;
  /** The operation whose callback was running. */
  readonly callback: 'reportRanges' | 'consumeRanges';

  constructor(set: string, operation: string, callback: 'reportRanges' | 'consumeRanges') {
    super(`RangeSet ${set}: ${operation} called from a ${callback} callback on the same set`);
    this.name = 'RangeSetBusyError';
    this.set = set;
    this.operation = operation;
    this.callback = callback;
  }
}

/** Renders a received value for an error message: numbers and bigints as written, strings quoted. */
function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'object' && value !== null) return Object.prototype.toString.call(value);
  return String(value);
}

/** The largest value a range may hold: Xen's `~0UL` becomes `Number.MAX_SAFE_INTEGER` here. */
export const MAX_VALUE: number = Number.MAX_SAFE_INTEGER;

/** Throws unless `value` is a safe integer in `0 … MAX_VALUE`. */
export function checkValue(argument: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(argument, value, 'a safe integer in 0 … 2^53-1');
  }
}

/**
 * Throws unless `start` and `end` are values with `start <= end` (an inclusive range). The common case
 * is two comparisons, two branches; the detailed checks only run to name what is wrong (`explainRange`,
 * which also accepts the few valid ranges the cheap test sends there). It runs on every query, so it is
 * kept short: V8 inlines it into every caller, within a budget of bytecode per compiled function (the
 * `Number.isInteger` version took 70 bytes, a first version of this form, with `Math.trunc`, 125, and
 * then workload (g)'s loop called `addRange` and the constructor instead of inlining them). Its bounds
 * are literals, which V8 compiles in, where `MAX_VALUE`, an exported binding, is read from its module
 * cell at every call.
 *
 * Branches, not instructions, are what this costs in a loop of queries (workload (g), packages/rangeset
 * DESIGN.md "Tenth pass"), so the five conditions are folded into two comparisons:
 *
 * 1. `end * (end - MAX) <= 0`: `0 <= end <= MAX`. Outside, both factors have one sign (`end` cannot
 *    be both below 0 and above MAX; a difference of doubles is 0 only when they are equal), and the
 *    product of two non-zero doubles of at least 2^-1074 and 1 does not round to 0; NaN and the
 *    infinities fail. (`end * (MAX - end) >= 0` until the eleventh pass: the same answers, as `end -
 *    MAX` is exactly `-(MAX - end)`, in 3 bytes of bytecode more, and V8 counts bytecode against the
 *    inlining budget of every loop it inlines this into.)
 * 2. `a * a + b * b <= start * (end - start)`, with `a`, `b` the distances of `start`, `end` from a
 *    whole number, scaled by 2^600: `x + ROUND - ROUND` (ROUND = 1.5 * 2^52) is `x` rounded to a
 *    whole number for `|x| < 2^51` (the sum lies where doubles are the whole numbers) and is always a
 *    whole number, so the distance is 0 only for a whole `x`; a whole `x` from 2^51 on may fail (the
 *    sum's spacing is 2 there) and goes to `explainRange`, which accepts it.
 *    - Both whole: the left side is 0, and the right side is `>= 0` exactly when `0 <= start <= end`.
 *      Given 1, `start < 0` makes `end - start >= 1` and `start > end` makes `start >= 1`, so one
 *      factor is at most -1 and the product is negative.
 *    - Not both whole: a distance is not 0, so the left side is at least 2^-948 and exceeds a right
 *      side that is negative or 0 (the signs above; a tiny product may round to -0). Otherwise
 *      `0 <= start <= end <= MAX` and the right side is below `start * 2^53`. A value from 0.5 up
 *      that is not whole is at least 2^-53 from a whole number, 2^547 scaled, whose square is +inf;
 *      a `start` in (0, 0.5) squares to `start^2 * 2^1200`, more than `start * 2^53` for every double
 *      `start >= 2^-1074`; an `end` in (0, 0.5) leaves only `start = 0`, a right side of 0.
 *    NaN fails every comparison; an infinite `start` makes the right side -inf or the left side NaN.
 *
 * Unscaled, the square of a difference below 1.5e-154 (a tiny `x` such as 1e-300) would round to 0.
 * The `typeof` tests cost nothing where V8 knows the values are numbers, and keep the arithmetic from
 * converting anything else. Before (ninth pass and earlier) this was four comparisons: `start >= 0`,
 * `start <= end`, `end <= MAX` and the squares against 0.
 */
export function checkRange(start: unknown, end: unknown): void {
  // 9007199254740991 = Number.MAX_SAFE_INTEGER; 6755399441055744 = 1.5 * 2^52; 4.149515568880993e180 = 2^600.
  if (typeof start === 'number' && typeof end === 'number' && end * (end - 9007199254740991) <= 0) {
    const a = (start - (start + 6755399441055744 - 6755399441055744)) * 4.149515568880993e180;
    const b = (end - (end + 6755399441055744 - 6755399441055744)) * 4.149515568880993e180;
    if (a * a + b * b <= start * (end - start)) return;
  }
  explainRange(start, end);
}

/** The detailed check behind `checkRange`: throws the error that names what is wrong, if anything is. */
function explainRange(start: unknown, end: unknown): void {
  checkValue('start', start);
  checkValue('end', end);
  if (start > end) {
    throw new InvalidArgumentError('end', end, `a value >= start (${start})`);
  }
}

/**
 * Checks a `consumeRanges` step for the range `[start, end]` and throws `rejectStep`'s error when it
 * is not one: a whole number of frames consumed, at most the range, and `continue` only after some.
 */
export function checkStep(step: { consumed: number; next: string }, start: number, end: number): void {
  const consumed = step.consumed;
  const next = step.next;
  if (
    !(
      Number.isInteger(consumed) &&
      consumed >= 0 &&
      consumed <= end - start + 1 &&
      (next === 'continue' ? consumed > 0 : next === 'restart' || next === 'fail')
    )
  ) {
    rejectStep(step, start, end);
  }
}

/**
 * Throws the error that names what is wrong with a `consumeRanges` step for the range `[start, end]`
 * (the caller has found that something is).
 */
export function rejectStep(step: { consumed: unknown; next: unknown }, start: number, end: number): never {
  const length = end - start + 1;
  const { consumed, next } = step;
  if (typeof consumed !== 'number' || !Number.isInteger(consumed) || consumed < 0 || consumed > length) {
    throw new InvalidArgumentError(
      'consumed',
      consumed,
      `an integer in 0 … ${length} for [${start}, ${end}]`,
    );
  }
  if (next !== 'continue' && next !== 'restart' && next !== 'fail') {
    throw new InvalidArgumentError('next', next, "'continue', 'restart' or 'fail'");
  }
  throw new InvalidArgumentError('consumed', consumed, "at least 1 with 'continue', or the loop never ends");
}

/** Throws unless `value` is a safe integer of at least 1. */
export function checkCount(argument: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(argument, value, 'a safe integer >= 1');
  }
}
