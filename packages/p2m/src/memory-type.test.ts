/**
 * Encodings of the memory types (SDM; Xen's `X86_MT_*`): UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7;
 * 2 and 3 reserved; UC- valid in PAT only.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeMtrrType,
  decodePatType,
  encodeMemoryType,
  InvalidArgumentError,
  isMemoryType,
  isMtrrType,
  MEMORY_TYPES,
  type MemoryType,
  MTRR_TYPES,
} from './index.js';

describe('encode / decode', () => {
  const table: ReadonlyArray<readonly [MemoryType, number, boolean]> = [
    // type, encoding, valid in an MTRR
    ['UC', 0, true],
    ['WC', 1, true],
    ['WT', 4, true],
    ['WP', 5, true],
    ['WB', 6, true],
    ['UC-', 7, false],
  ];

  it.each(table)('%s ↔ %i (MTRR: %s)', (type, code, inMtrr) => {
    expect(encodeMemoryType(type)).toBe(code);
    expect(decodePatType(code)).toBe(type);
    expect(isMemoryType(type)).toBe(true);
    expect(isMtrrType(type)).toBe(inMtrr);
    if (inMtrr) expect(decodeMtrrType(code)).toBe(type);
  });

  it('lists the types in encoding order', () => {
    expect(MEMORY_TYPES).toEqual(['UC', 'WC', 'WT', 'WP', 'WB', 'UC-']);
    expect(MTRR_TYPES).toEqual(['UC', 'WC', 'WT', 'WP', 'WB']);
  });
});

describe('validation', () => {
  it.each([
    // reserved encodings, out of range, not integers
    [2],
    [3],
    [8],
    [255],
    [-1],
    [1.5],
  ])('decodePatType(%s) throws, naming the argument', (code) => {
    expect(() => decodePatType(code, 'pat[2]')).toThrow(InvalidArgumentError);
    expect(() => decodePatType(code, 'pat[2]')).toThrow(`pat[2]: expected a PAT memory type encoding`);
  });

  it.each([[2], [3], [7], [8]])(
    'decodeMtrrType(%s) throws: not an MTRR type (7 is UC-, PAT only)',
    (code) => {
      expect(() => decodeMtrrType(code, 'physBase')).toThrow(
        `physBase: expected an MTRR memory type encoding: 0, 1, 4, 5 or 6, got ${code}`,
      );
    },
  );

  it('encodeMemoryType refuses a name that is not a memory type', () => {
    const err = (() => {
      try {
        encodeMemoryType('UC+' as MemoryType);
      } catch (e) {
        return e as InvalidArgumentError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toMatchObject({ argument: 'type', received: 'UC+' });
  });

  it('type guards refuse other values', () => {
    expect(isMemoryType('toString')).toBe(false); // not fooled by Object.prototype
    expect(isMemoryType(0)).toBe(false);
    expect(isMtrrType('UC-')).toBe(false);
  });
});
