/**
 * The x86 memory types and their encodings, as the PAT MSR, the MTRR MSRs and the EPT memory-type field
 * hold them (Intel SDM Vol. 3A, "Memory Cache Control"; Xen's `X86_MT_*`).
 */
import { InvalidArgumentError } from './errors.js';

/**
 * A memory type.
 * - `UC`: uncacheable, strongly ordered. Encoding 0.
 * - `WC`: write-combining: uncached, writes may be buffered and merged. Encoding 1.
 * - `WT`: write-through: reads cached, writes go to memory too. Encoding 4.
 * - `WP`: write-protect: reads cached, writes go to memory and invalidate. Encoding 5.
 * - `WB`: write-back, fully cached. Encoding 6.
 * - `UC-`: "UC minus": uncacheable unless the MTRR says WC. Encoding 7; exists in PAT only.
 */
export type MemoryType = 'UC' | 'WC' | 'WT' | 'WP' | 'WB' | 'UC-';

/** A type an MTRR (or an EPT leaf's memory type) can hold: every memory type except `UC-`. */
export type MtrrType = Exclude<MemoryType, 'UC-'>;

/** Every memory type, in encoding order. */
export const MEMORY_TYPES: readonly MemoryType[] = Object.freeze([
  'UC',
  'WC',
  'WT',
  'WP',
  'WB',
  'UC-',
] as const);

/** Every MTRR type, in encoding order. */
export const MTRR_TYPES: readonly MtrrType[] = Object.freeze(['UC', 'WC', 'WT', 'WP', 'WB'] as const);

const CODES: Readonly<Record<MemoryType, number>> = Object.freeze({
  UC: 0,
  WC: 1,
  WT: 4,
  WP: 5,
  WB: 6,
  'UC-': 7,
});

/** Index: encoding → type; 2, 3 and everything above 7 are reserved. */
const BY_CODE: ReadonlyArray<MemoryType | undefined> = Object.freeze([
  'UC',
  'WC',
  undefined,
  undefined,
  'WT',
  'WP',
  'WB',
  'UC-',
]);

/** True if `value` is one of the six memory-type names. */
export function isMemoryType(value: unknown): value is MemoryType {
  return typeof value === 'string' && Object.hasOwn(CODES, value);
}

/** True if `value` is a memory type an MTRR may hold (any but `UC-`). */
export function isMtrrType(value: unknown): value is MtrrType {
  return isMemoryType(value) && value !== 'UC-';
}

/** Throws unless `value` is a memory type (PAT-valid). */
export function checkMemoryType(argument: string, value: unknown): asserts value is MemoryType {
  if (!isMemoryType(value)) {
    throw new InvalidArgumentError(argument, value, "a memory type: 'UC', 'WC', 'WT', 'WP', 'WB' or 'UC-'");
  }
}

/** Throws unless `value` is an MTRR type (`UC-` is refused: MTRRs cannot hold it). */
export function checkMtrrType(argument: string, value: unknown): asserts value is MtrrType {
  if (!isMtrrType(value)) {
    throw new InvalidArgumentError(argument, value, "an MTRR type: 'UC', 'WC', 'WT', 'WP' or 'WB'");
  }
}

/** The encoding of a memory type (UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7). */
export function encodeMemoryType(type: MemoryType): number {
  checkMemoryType('type', type);
  return CODES[type];
}

/**
 * The memory type a PAT entry byte encodes. Throws, naming `argument`, for the reserved encodings 2
 * and 3 and anything outside 0 … 7.
 */
export function decodePatType(code: number, argument = 'code'): MemoryType {
  const type = Number.isInteger(code) && code >= 0 ? BY_CODE[code] : undefined;
  if (type === undefined) {
    throw new InvalidArgumentError(argument, code, 'a PAT memory type encoding: 0, 1, 4, 5, 6 or 7');
  }
  return type;
}

/**
 * The memory type an MTRR type byte encodes. Throws, naming `argument`, for anything but 0, 1, 4, 5, 6
 * (7, UC-, is valid in PAT only; Xen's `valid_mtrr_type` refuses it too).
 */
export function decodeMtrrType(code: number, argument = 'code'): MtrrType {
  const type = Number.isInteger(code) && code >= 0 ? BY_CODE[code] : undefined;
  if (type === undefined || type === 'UC-') {
    throw new InvalidArgumentError(argument, code, 'an MTRR memory type encoding: 0, 1, 4, 5 or 6');
  }
  return type;
}
