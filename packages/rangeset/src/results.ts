/**
 * Expected outcomes are values, not exceptions. Codes keep Xen's errno names so a reader can hold a
 * result against the C (`-ENOMEM` becomes `{ ok: false, code: 'ENOMEM' }`).
 */

/** The operation did what was asked. */
export interface Ok {
  /** Always true: tells an `Ok` from a `Failure`. */
  readonly ok: true;
}

/** The operation was refused or failed and changed nothing, for the reason `code` names. */
export interface Failure<C extends string> {
  /** Always false: tells a `Failure` from an `Ok`. */
  readonly ok: false;
  /** Xen's errno name for what went wrong (`-ENOMEM` is `'ENOMEM'`). */
  readonly code: C;
}

/** Outcome of an operation that may fail with one of the codes `C`. */
export type Result<C extends string> = Ok | Failure<C>;

/**
 * Error codes a rangeset returns itself.
 * - `ENOMEM`: the set's range limit would be exceeded (Xen: no credit left for a new node).
 * - `ENOSPC`: `claimRange` found no gap large enough.
 */
export type RangeSetCode = 'ENOMEM' | 'ENOSPC';

/** Outcome of `claimRange`: the start of the claimed block, or why nothing was claimed. */
export type ClaimResult = { readonly ok: true; readonly start: number } | Failure<'ENOMEM' | 'ENOSPC'>;

/**
 * What a `consumeRanges` callback did with the range it was handed.
 *
 * `consumed` is how many values from the range's start it processed (0 … range length); they are
 * removed from the set. `next` says what happens next:
 * - `continue`: hand over the (new) first range; needs `consumed > 0` so the loop progresses;
 * - `restart`: stop now, the rest stays for the next call (Xen's `-ERESTART`);
 * - `fail`: stop now with `code` (the rest stays; no clean-up is done, as in Xen).
 */
export type ConsumeStep<C extends string = never> =
  | { readonly consumed: number; readonly next: 'continue' | 'restart' }
  | { readonly consumed: number; readonly next: 'fail'; readonly code: C };

/**
 * Outcome of `consumeRanges`: `done` when the set is now empty, `restart` when the callback asked to
 * stop for a restart (call again to resume), or the failure code the callback gave.
 */
export type ConsumeResult<C extends string = never> =
  | { readonly ok: true; readonly status: 'done' | 'restart' }
  | Failure<C>;

/** Shared immutable outcomes, so the hot paths allocate nothing. */
export const OK: Ok = Object.freeze({ ok: true });
export const NO_MEMORY: Failure<'ENOMEM'> = Object.freeze({ ok: false, code: 'ENOMEM' });
export const NO_SPACE: Failure<'ENOSPC'> = Object.freeze({ ok: false, code: 'ENOSPC' });
export const CONSUME_DONE: ConsumeResult<never> = Object.freeze({ ok: true, status: 'done' });
export const CONSUME_RESTART: ConsumeResult<never> = Object.freeze({ ok: true, status: 'restart' });
