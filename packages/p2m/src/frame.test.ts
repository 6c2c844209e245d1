/**
 * Frames and byte addresses (`frame.ts`): the validating constructors at their boundaries, the named
 * conversions, and, checked by the compiler, that a Gfn, an Mfn, a Paddr and a plain number cannot
 * stand for one another.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, MAX_FRAME, MAX_U64 } from './errors.js';
import {
  frameAddress,
  type Gfn,
  gfn,
  gfnAdd,
  gfnOfAddress,
  type Mfn,
  mfn,
  mfnAdd,
  mfnOfAddress,
  PAGE_SHIFT,
  PAGE_SIZE,
  type Paddr,
  paddr,
  pageOffset,
} from './frame.js';

const FRAME = 'a frame number, an integer in 0 … 2^52-1';

describe('gfn() and mfn()', () => {
  it.each([
    ['0', 0],
    ['1', 1],
    ['MAX_FRAME = 2^52 - 1', MAX_FRAME],
  ])('accept %s and return it unchanged', (_name, value) => {
    expect(gfn(value)).toBe(value);
    expect(mfn(value)).toBe(value);
  });

  it.each<readonly [string, unknown, string]>([
    ['MAX_FRAME + 1 = 2^52', 2 ** 52, '4503599627370496'],
    ['-1', -1, '-1'],
    ['1.5', 1.5, '1.5'],
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['a numeric string', '5', '"5"'],
    ['a bigint', 5n, '5n'],
    ['undefined', undefined, 'undefined'],
  ])('refuse %s, naming the argument, the value and what was expected', (_name, value, shown) => {
    const asNumber = value as number;
    expect(() => gfn(asNumber)).toThrow(InvalidArgumentError);
    expect(() => gfn(asNumber)).toThrow(`gfn: expected ${FRAME}, got ${shown}`);
    expect(() => mfn(asNumber)).toThrow(`mfn: expected ${FRAME}, got ${shown}`);
    expect(() => gfn(asNumber, 'bar.guestFrame')).toThrow(`bar.guestFrame: expected ${FRAME}, got ${shown}`);
  });

  it('the error carries the argument, the value and the expectation as fields', () => {
    try {
      mfn(-1, 'hostFrame');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error).toMatchObject({ argument: 'hostFrame', received: -1, expected: FRAME });
    }
  });
});

describe('paddr()', () => {
  it.each([
    ['0n', 0n],
    ['2^64 - 1', MAX_U64],
  ])('accepts %s', (_name, value) => {
    expect(paddr(value)).toBe(value);
  });

  it.each<readonly [string, unknown, string]>([
    ['2^64', 1n << 64n, '18446744073709551616n'],
    ['-1n', -1n, '-1n'],
    ['a number', 4096, '4096'],
    ['a string', '0x1000', '"0x1000"'],
  ])('refuses %s, naming the argument (default addr)', (_name, value, shown) => {
    const asBigint = value as bigint;
    expect(() => paddr(asBigint)).toThrow(InvalidArgumentError);
    expect(() => paddr(asBigint)).toThrow(`addr: expected a bigint in 0n … 2^64-1, got ${shown}`);
    expect(() => paddr(asBigint, 'bar.addr')).toThrow(
      `bar.addr: expected a bigint in 0n … 2^64-1, got ${shown}`,
    );
  });
});

describe('gfnAdd() and mfnAdd()', () => {
  it.each([
    // frame, delta, result
    [0, 0, 0],
    [0, 1, 1],
    [10, -10, 0], // down to 0
    [MAX_FRAME - 1, 1, MAX_FRAME], // up to MAX_FRAME
    [MAX_FRAME, -MAX_FRAME, 0],
  ])('%i + %i = %i', (frame, delta, sum) => {
    expect(gfnAdd(gfn(frame), delta)).toBe(sum);
    expect(mfnAdd(mfn(frame), delta)).toBe(sum);
  });

  it.each<readonly [string, number, unknown]>([
    ['past MAX_FRAME', MAX_FRAME, 1],
    ['below 0', 0, -1],
    ['a fractional delta', 3, 1.5],
    ['a fraction that would round away at the top', MAX_FRAME, 0.25],
    ['a NaN delta', 3, Number.NaN],
    ['a huge delta', 0, 2 ** 60],
    ['a bigint delta', 3, 1n],
    ['a string delta', 3, '1'],
  ])('refuse %s, naming delta and the frame', (_name, frame, delta) => {
    const asNumber = delta as number;
    expect(() => gfnAdd(gfn(frame), asNumber)).toThrow(InvalidArgumentError);
    expect(() => gfnAdd(gfn(frame), asNumber)).toThrow(
      `delta: expected an integer keeping gfn ${frame} + delta`,
    );
    expect(() => mfnAdd(mfn(frame), asNumber)).toThrow(
      `delta: expected an integer keeping mfn ${frame} + delta`,
    );
  });

  it('check the frame too (an untyped caller can pass anything)', () => {
    expect(() => gfnAdd(-5 as Gfn, 10)).toThrow(`gfn: expected ${FRAME}, got -5`);
    expect(() => mfnAdd((2 ** 52) as Mfn, -1)).toThrow(`mfn: expected ${FRAME}, got 4503599627370496`);
  });
});

describe('addresses and frames', () => {
  it('PAGE_SHIFT and PAGE_SIZE', () => {
    expect(PAGE_SIZE).toBe(2 ** PAGE_SHIFT);
    expect(PAGE_SHIFT).toBe(12);
  });

  it.each([
    // address, frame (PFN_DOWN), offset in the page
    ['0', 0n, 0, 0],
    ['0xfff', 0xfffn, 0, 0xfff],
    ['0x1000', 0x1000n, 1, 0],
    ['0xfeb0_0123', 0xfeb0_0123n, 0xfeb00, 0x123],
    ['2^64 - 1', MAX_U64, MAX_FRAME, 0xfff], // the last byte is in the last frame
  ])('%s: frame %i, offset %i', (_name, address, frame, offset) => {
    const addr = paddr(address);
    expect(gfnOfAddress(addr)).toBe(frame);
    expect(mfnOfAddress(addr)).toBe(frame);
    expect(pageOffset(addr)).toBe(offset);
  });

  it.each([
    [0, 0n],
    [1, 0x1000n],
    [MAX_FRAME, MAX_U64 - 0xfffn], // 2^64 - 4096: the first byte of the last frame
  ])('frameAddress(%i) = %i', (frame, address) => {
    expect(frameAddress(gfn(frame))).toBe(address);
    expect(frameAddress(mfn(frame))).toBe(address);
    expect(gfnOfAddress(frameAddress(gfn(frame)))).toBe(frame);
  });

  it('the conversions check what an untyped caller passes', () => {
    expect(() => gfnOfAddress(4096 as unknown as Paddr)).toThrow('addr: expected a bigint');
    expect(() => mfnOfAddress(-1n as Paddr)).toThrow('addr: expected a bigint in 0n … 2^64-1, got -1n');
    expect(() => pageOffset((1n << 64n) as Paddr)).toThrow(InvalidArgumentError);
    expect(() => frameAddress(1.5 as Gfn)).toThrow(`frame: expected ${FRAME}, got 1.5`);
  });
});

describe('the types cannot be mixed (checked by the typecheck: an unused @ts-expect-error fails it)', () => {
  it('Gfn, Mfn, Paddr and plain numbers are distinct', () => {
    const g = gfn(1);
    const m = mfn(2);
    const a = paddr(0x3000n);
    // @ts-expect-error an Mfn where a Gfn is expected
    const g1: Gfn = m;
    // @ts-expect-error a Gfn where an Mfn is expected
    const m1: Mfn = g;
    // @ts-expect-error a plain number is not a Gfn without gfn()
    const g2: Gfn = 1;
    // @ts-expect-error a bigint is not a Paddr without paddr()
    const a1: Paddr = 0x3000n;
    const calls = [
      // @ts-expect-error an Mfn where gfnAdd wants a Gfn
      () => gfnAdd(m, 1),
      // @ts-expect-error a frame is not an address: convert with frameAddress()
      () => pageOffset(g),
    ];
    // At run time the brands do not exist: the first call works, the second fails the bigint check.
    expect(calls[0]!()).toBe(3);
    expect(calls[1]!).toThrow('addr: expected a bigint');
    // Arithmetic on a frame gives a plain number, which must be made a frame again.
    // @ts-expect-error g + 1 is a number
    const g3: Gfn = g + 1;
    // Reading a frame as a number is always allowed.
    const n: number = g;
    const big: bigint = a;
    expect([g1, m1, g2, a1, g3, n, big]).toEqual([2, 1, 1, 0x3000n, 2, 1, 0x3000n]);
  });
});
