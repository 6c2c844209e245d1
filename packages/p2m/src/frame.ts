/**
 * Frame numbers and byte addresses as distinct types, as Xen's `typesafe.h` makes `gfn_t` and `mfn_t`
 * incompatible: a `Gfn` (guest frame), an `Mfn` (machine frame) and a `Paddr` (byte address) cannot be
 * passed for one another without a named conversion. They are plain numbers and bigints at run time
 * (the brand is a compile-time fiction, so storing and comparing them costs nothing); the only ways to
 * make one are the validating constructors and helpers below.
 */
import { checkFrame, checkU64, InvalidArgumentError, MAX_FRAME } from './errors.js';

/** A guest frame number: an integer in `0 … 2^52 - 1` (inclusive), made by `gfn()`. */
export type Gfn = number & { readonly __brand: 'Gfn' };

/** A machine (host) frame number: an integer in `0 … 2^52 - 1` (inclusive), made by `mfn()`. */
export type Mfn = number & { readonly __brand: 'Mfn' };

/** A byte address: a bigint in `0n … 2^64 - 1` (inclusive), made by `paddr()`. */
export type Paddr = bigint & { readonly __brand: 'Paddr' };

/** log2 of the page size: a frame number is a byte address shifted right by 12. */
export const PAGE_SHIFT = 12;

/** Bytes in a 4 KiB page (a frame). */
export const PAGE_SIZE = 4096;

/**
 * `value` as a guest frame. Throws `InvalidArgumentError` naming `argument` (default `gfn`) unless it
 * is an integer in `0 … 2^52 - 1` (inclusive).
 */
export function gfn(value: number, argument = 'gfn'): Gfn {
  checkFrame(argument, value);
  return value as Gfn;
}

/**
 * `value` as a machine frame. Throws `InvalidArgumentError` naming `argument` (default `mfn`) unless it
 * is an integer in `0 … 2^52 - 1` (inclusive).
 */
export function mfn(value: number, argument = 'mfn'): Mfn {
  checkFrame(argument, value);
  return value as Mfn;
}

/**
 * `value` as a byte address. Throws `InvalidArgumentError` naming `argument` (default `addr`) unless it
 * is a bigint in `0n … 2^64 - 1` (inclusive).
 */
export function paddr(value: bigint, argument = 'addr'): Paddr {
  checkU64(argument, value);
  return value as Paddr;
}

/**
 * The guest frame `delta` frames after `frame` (before it for a negative delta). Throws
 * `InvalidArgumentError` unless `frame` is a frame and the result is a frame in `0 … 2^52 - 1`.
 */
export function gfnAdd(frame: Gfn, delta: number): Gfn {
  return add('gfn', frame, delta) as Gfn;
}

/**
 * The machine frame `delta` frames after `frame` (before it for a negative delta). Throws
 * `InvalidArgumentError` unless `frame` is a frame and the result is a frame in `0 … 2^52 - 1`.
 */
export function mfnAdd(frame: Mfn, delta: number): Mfn {
  return add('mfn', frame, delta) as Mfn;
}

function add(kind: 'gfn' | 'mfn', frame: number, delta: number): number {
  checkFrame(kind, frame);
  // The delta is tested before adding: a bigint would make `+` throw a TypeError, and a fraction
  // can round away (2^52 - 1 + 0.25 is 2^52 - 1 in doubles).
  const sum = Number.isInteger(delta) ? frame + delta : Number.NaN;
  // An integer sum in 0 … 2^52-1 is exact (the delta it implies is below 2^53 in magnitude).
  if (!Number.isInteger(sum) || sum < 0 || sum > MAX_FRAME) {
    throw new InvalidArgumentError(
      'delta',
      delta,
      `an integer keeping ${kind} ${frame} + delta in 0 … 2^52-1`,
    );
  }
  return sum;
}

/** The guest frame holding byte `addr` (Xen's `PFN_DOWN`: `addr >> 12`); always in `0 … 2^52 - 1`. */
export function gfnOfAddress(addr: Paddr): Gfn {
  checkU64('addr', addr);
  return Number(addr >> 12n) as Gfn;
}

/** The machine frame holding byte `addr` (Xen's `PFN_DOWN`: `addr >> 12`); always in `0 … 2^52 - 1`. */
export function mfnOfAddress(addr: Paddr): Mfn {
  checkU64('addr', addr);
  return Number(addr >> 12n) as Mfn;
}

/** The offset of byte `addr` in its page: `addr & 0xfff`, in `0 … 4095`. */
export function pageOffset(addr: Paddr): number {
  checkU64('addr', addr);
  return Number(addr & 0xfffn);
}

/**
 * The address of the first byte of `frame` (Xen's `pfn_to_paddr`: `frame << 12`), in
 * `0n … 2^64 - 4096` (inclusive). Throws `InvalidArgumentError` for a value that is not a frame.
 */
export function frameAddress(frame: Gfn | Mfn): Paddr {
  checkFrame('frame', frame);
  return (BigInt(frame) << 12n) as Paddr;
}
