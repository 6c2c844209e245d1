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
 * is one cheap test; the detailed checks only run to name what is wrong. It runs on every query, so it
 * is kept short (V8 inlines it into every caller, within a budget of bytecode per compiled function)
 * and its bound is `Number.MAX_SAFE_INTEGER`, which V8 compiles in, where `MAX_VALUE`, an exported
 * binding, is read from its module cell at every call.
 *
 * The two integer tests are one: once both values are known to be >= 0, each one's fractional part
 * `x - Math.trunc(x)` is >= 0, so their sum is 0 exactly when both are whole (NaN and infinities fail
 * the comparisons before it). Written as `<= 0`, it is one comparison and one branch; two
 * `Number.isInteger` calls were two of each, and an `=== 0` two branches (the second for NaN). In
 * workload (g) a quarter of the check's cost (see DESIGN.md). The `typeof` tests cost nothing where V8
 * knows the values are numbers, and keep the comparisons from converting anything else.
 */
export function checkRange(start: unknown, end: unknown): void {
  if (
    typeof start === 'number' &&
    typeof end === 'number' &&
    start >= 0 &&
    start <= end &&
    end <= Number.MAX_SAFE_INTEGER &&
    start - Math.trunc(start) + (end - Math.trunc(end)) <= 0
  ) {
    return;
  }
  explainRange(start, end);
}

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
