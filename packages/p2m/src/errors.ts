/**
 * Argument checks shared by the memory-type modules. Broken preconditions throw the workspace's one
 * error class, `InvalidArgumentError` from `@vpci/rangeset`, so a caller catches the same class
 * whichever package threw it.
 */
import { InvalidArgumentError } from '@vpci/rangeset';

export { InvalidArgumentError };

/** The largest frame number (GFN or MFN) the engine accepts: frames are below 2^52. */
export const MAX_FRAME: number = 2 ** 52 - 1;

/** The largest 64-bit register value or byte address: 2^64 - 1. */
export const MAX_U64: bigint = (1n << 64n) - 1n;

/**
 * Size of a page-table leaf as a power of two of 4 KiB pages: 0 = 4 KiB, 9 = 2 MiB, 18 = 1 GiB
 * (Xen's `PAGE_ORDER_4K`, `PAGE_ORDER_2M`, `PAGE_ORDER_1G`).
 */
export type PageOrder = 0 | 9 | 18;

/** The orders a leaf can have, smallest first. */
export const PAGE_ORDERS: readonly PageOrder[] = Object.freeze([0, 9, 18] as const);

/** Throws unless `value` is a frame number: a safe integer in `0 … 2^52 - 1`. */
export function checkFrame(argument: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_FRAME) {
    throw new InvalidArgumentError(argument, value, 'a frame number, an integer in 0 … 2^52-1');
  }
}

/** Throws unless `value` is a page order Xen uses for leaves: 0, 9 or 18. */
export function checkOrder(argument: string, value: unknown): asserts value is PageOrder {
  if (value !== 0 && value !== 9 && value !== 18) {
    throw new InvalidArgumentError(argument, value, 'a page order: 0 (4K), 9 (2M) or 18 (1G)');
  }
}

/** Throws unless `value` is a bigint in `0 … 2^64 - 1` (a byte address or a 64-bit register). */
export function checkU64(argument: string, value: unknown): asserts value is bigint {
  if (typeof value !== 'bigint' || value < 0n || value > MAX_U64) {
    throw new InvalidArgumentError(argument, value, 'a bigint in 0n … 2^64-1');
  }
}

/** Throws unless `value` is a boolean. */
export function checkBoolean(argument: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') {
    throw new InvalidArgumentError(argument, value, 'true or false');
  }
}
