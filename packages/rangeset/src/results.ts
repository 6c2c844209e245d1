/**
 * The workspace's one result vocabulary: `Ok`, `Failure`, `Result` and the errno union `Errno`, used by
 * every package (`@vpci/p2m` and `@vpci/vpci` re-export them). It lives here because the rangeset is
 * the lowest package that returns an errno. Expected outcomes are values, not exceptions. Codes keep
 * Xen's errno names so a reader can hold a result against the C (`-ENOMEM` becomes
 * `{ ok: false, code: 'ENOMEM' }`).
 */

/**
 * The errno names an operation in this workspace returns, from Xen's `xen/include/public/errno.h`
 * (its number in brackets):
 * - `EPERM` (1): not permitted (a special p2m entry in the way, a memory type the domain may not pin,
 *   a hidden device);
 * - `ENOENT` (2): no such entry (unpinning a range that is not pinned);
 * - `EIO` (5): Xen's answer for an MMIO entry write on a domain without a p2m;
 * - `ENOMEM` (12): out of memory, or past a limit that stands for it (a rangeset's range limit);
 * - `EBUSY` (16): in use (a pinned range overlapping another, a device another domain owns);
 * - `EEXIST` (17): already there (a register handler, a capability, RAM where a page would go);
 * - `ENODEV` (19): the device lacks what was asked for (an MSI-X table outside its BAR);
 * - `EINVAL` (22): invalid request (an entry that is not what the caller said it was);
 * - `ENOSPC` (28): no room left (no gap for `claimRange`, a full pinned list, no virtual slot);
 * - `ERANGE` (34): out of range (removing registers that straddle a handler);
 * - `EILSEQ` (84): Arm's `p2m_remove_mapping` finding RAM where an MMIO unmap was asked for;
 * - `EOPNOTSUPP` (95): not supported for this domain or device (a domain without a p2m, a header
 *   type vPCI does not emulate);
 * - `EBADF` (9): a broken device (Xen's `assign_device` refuses a device marked `broken`).
 *
 * Each operation's result names the subset it can return (`Result<'ENOMEM'>`); there is no string
 * escape, so a code a caller does not handle is a type error rather than a surprise.
 */
export type Errno =
  | 'EPERM'
  | 'ENOENT'
  | 'EIO'
  | 'ENOMEM'
  | 'EBUSY'
  | 'EEXIST'
  | 'ENODEV'
  | 'EINVAL'
  | 'ENOSPC'
  | 'ERANGE'
  | 'EILSEQ'
  | 'EOPNOTSUPP'
  | 'EBADF';

/** The operation did what was asked. */
export interface Ok {
  /** Always true: tells an `Ok` from a `Failure`. */
  readonly ok: true;
}

/**
 * The operation was refused or failed, for the reason `code` names. Unless its result type says
 * otherwise (a count of what was done), it changed nothing.
 */
export interface Failure<C extends Errno = Errno> {
  /** Always false: tells a `Failure` from an `Ok`. */
  readonly ok: false;
  /** Xen's errno name for what went wrong (`-ENOMEM` is `'ENOMEM'`). */
  readonly code: C;
}

/**
 * Outcome of an operation that may fail with one of the codes `C`; on success it carries the fields
 * `V` (nothing by default), e.g. `Result<'ENOSPC', { readonly start: number }>`. A failure that
 * carries values too is written `Failure<'EBUSY'> & { readonly conflict: … }`.
 */
export type Result<C extends Errno = Errno, V = unknown> = (Ok & V) | Failure<C>;

/**
 * Error codes a rangeset returns itself.
 * - `ENOMEM`: the set's range limit would be exceeded (Xen: no credit left for a new node).
 * - `ENOSPC`: `claimRange` found no gap large enough.
 */
export type RangeSetCode = Extract<Errno, 'ENOMEM' | 'ENOSPC'>;

/** Outcome of `claimRange`: the start of the claimed block, or why nothing was claimed. */
export type ClaimResult<T extends number = number> = Result<RangeSetCode, { readonly start: T }>;

/**
 * What a `consumeRanges` callback did with the range it was handed.
 *
 * `consumed` is how many values from the range's start it processed (0 … range length); they are
 * removed from the set. `next` says what happens next:
 * - `continue`: hand over the (new) first range; needs `consumed > 0` so the loop progresses;
 * - `restart`: stop now, the rest stays for the next call (Xen's `-ERESTART`);
 * - `fail`: stop now with `code` (the rest stays; no clean-up is done, as in Xen).
 */
export type ConsumeStep<C extends Errno = never> =
  | { readonly consumed: number; readonly next: 'continue' | 'restart' }
  | { readonly consumed: number; readonly next: 'fail'; readonly code: C };

/**
 * Outcome of `consumeRanges`: `done` when the set is now empty, `restart` when the callback asked to
 * stop for a restart (call again to resume), or the failure code the callback gave.
 */
export type ConsumeResult<C extends Errno = never> = Result<C, { readonly status: 'done' | 'restart' }>;

/** Shared immutable outcomes, so the hot paths allocate nothing. */
export const OK: Ok = Object.freeze({ ok: true });
export const NO_MEMORY: Failure<'ENOMEM'> = Object.freeze({ ok: false, code: 'ENOMEM' });
export const NO_SPACE: Failure<'ENOSPC'> = Object.freeze({ ok: false, code: 'ENOSPC' });
export const CONSUME_DONE: ConsumeResult<never> = Object.freeze({ ok: true, status: 'done' });
export const CONSUME_RESTART: ConsumeResult<never> = Object.freeze({ ok: true, status: 'restart' });
