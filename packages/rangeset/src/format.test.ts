/**
 * Xen's print form (`rangeset_printk`): the name left-justified in 10 columns, ` {`, then each range as
 * a space and `s` or `s-e`, separated by commas, then ` }`. Decimal, or lowercase hexadecimal without
 * `0x` for a set made with `hex` (Xen's RANGESETF_prettyprint_hex). The expected lines of the domain
 * printer below are what `rangeset_domain_printk` printed in a probe (rangeset.c compiled with Xen's
 * unit-test harness, tools/tests/rangeset/).
 */
import { describe, expect, it } from 'vitest';
import { formatRangeSet, RangeSet } from './index.js';

const MAX = Number.MAX_SAFE_INTEGER;

type Pair = readonly [number, number];

describe('formatRangeSet', () => {
  const cases: ReadonlyArray<{ name: string; ranges: readonly Pair[]; hex: boolean; text: string }> = [
    // Empty: the braces with one space inside.
    { name: 'name', ranges: [], hex: false, text: 'name       { }' },
    { name: '(no name)', ranges: [], hex: false, text: '(no name)  { }' },
    { name: '', ranges: [], hex: false, text: '           { }' },
    // A singleton prints its value once; a range prints s-e.
    { name: 'x', ranges: [[5, 5]], hex: false, text: 'x          { 5 }' },
    { name: 'x', ranges: [[5, 6]], hex: false, text: 'x          { 5-6 }' },
    { name: 'x', ranges: [[0, 0]], hex: false, text: 'x          { 0 }' },
    {
      name: 'x',
      ranges: [
        [0, 1],
        [5, 5],
        [8, 9],
      ],
      hex: false,
      text: 'x          { 0-1, 5, 8-9 }',
    },
    // The domain printer's probe lines.
    {
      name: 'irqs',
      ranges: [
        [1, 1],
        [16, 23],
      ],
      hex: false,
      text: 'irqs       { 1, 16-23 }',
    },
    {
      name: 'iomem',
      ranges: [
        [0xa0, 0xbf],
        [0xfee00, 0xfee00],
      ],
      hex: true,
      text: 'iomem      { a0-bf, fee00 }',
    },
    // Hexadecimal: lowercase, no 0x, no padding.
    { name: 'h', ranges: [[0, 9]], hex: true, text: 'h          { 0-9 }' },
    { name: 'h', ranges: [[10, 15]], hex: true, text: 'h          { a-f }' },
    { name: 'h', ranges: [[0xabcdef, 0xabcdef]], hex: true, text: 'h          { abcdef }' },
    { name: 'h', ranges: [[16, 255]], hex: true, text: 'h          { 10-ff }' },
    // MAX (2^53 - 1) in both radices, with every digit.
    { name: 'max', ranges: [[0, MAX]], hex: false, text: 'max        { 0-9007199254740991 }' },
    { name: 'max', ranges: [[0, MAX]], hex: true, text: 'max        { 0-1fffffffffffff }' },
    { name: 'max', ranges: [[MAX, MAX]], hex: true, text: 'max        { 1fffffffffffff }' },
    // The name column: padded to 10, never cut here, and a longer name pushes the braces right.
    { name: 'abcdefghi', ranges: [[0, 0]], hex: false, text: 'abcdefghi  { 0 }' },
    { name: 'abcdefghij', ranges: [[0, 0]], hex: false, text: 'abcdefghij { 0 }' },
    { name: 'abcdefghijk', ranges: [[0, 0]], hex: false, text: 'abcdefghijk { 0 }' },
  ];

  it.each(cases)('$text', ({ name, ranges, hex, text }) => {
    expect(formatRangeSet(name, ranges, hex)).toBe(text);
  });
});

describe('RangeSet#toString', () => {
  it('prints `(no name)` for a set made without one', () => {
    expect(new RangeSet().toString()).toBe('(no name)  { }');
    expect(new RangeSet().name).toBe('(no name)');
  });

  it('keeps an empty name as given', () => {
    expect(new RangeSet({ name: '' }).toString()).toBe('           { }');
  });

  it.each([
    { length: 30, kept: 30 },
    { length: 31, kept: 31 },
    { length: 32, kept: 31 },
    { length: 100, kept: 31 },
  ])('a name of $length characters keeps $kept (Xen keeps 31)', ({ length, kept }) => {
    const name = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3).slice(0, length);
    const set = RangeSet.from([[1, 2]], { name });
    expect(set.name).toBe(name.slice(0, kept));
    expect(set.toString()).toBe(`${name.slice(0, kept)} { 1-2 }`);
  });

  it('prints decimal by default and hexadecimal with the hex option', () => {
    const ranges: Pair[] = [
      [0xa0, 0xbf],
      [0xfee00, 0xfee00],
    ];
    expect(RangeSet.from(ranges, { name: 'iomem' }).toString()).toBe('iomem      { 160-191, 1043968 }');
    expect(RangeSet.from(ranges, { name: 'iomem', hex: true }).toString()).toBe(
      'iomem      { a0-bf, fee00 }',
    );
    expect(RangeSet.from(ranges, { name: 'iomem', hex: false }).hex).toBe(false);
  });

  it("reproduces the domain printer's probe lines", () => {
    // iomem was created with the hex flag, irqs without, then a set with no name.
    const iomem = RangeSet.from(
      [
        [0xa0, 0xbf],
        [0xfee00, 0xfee00],
      ],
      { name: 'iomem', hex: true },
    );
    const irqs = RangeSet.from(
      [
        [1, 1],
        [16, 23],
      ],
      { name: 'irqs' },
    );
    const unnamed = new RangeSet();
    expect([unnamed, irqs, iomem].map((set) => `    ${set}`)).toEqual([
      '    (no name)  { }',
      '    irqs       { 1, 16-23 }',
      '    iomem      { a0-bf, fee00 }',
    ]);
  });

  it('prints the canonical ranges: touching and overlapping adds show as one range', () => {
    // {0-1} ∪ {2-3} ∪ {3-7} ∪ {9} = {0-7, 9}
    const set = new RangeSet({ name: 'merged' });
    set.addRange(0, 1);
    set.addRange(2, 3);
    set.addRange(3, 7);
    set.addSingleton(9);
    expect(set.toString()).toBe('merged     { 0-7, 9 }');
    set.removeSingleton(4);
    expect(set.toString()).toBe('merged     { 0-3, 5-7, 9 }');
    set.purge();
    expect(set.toString()).toBe('merged     { }');
  });

  it('agrees with formatRangeSet over the set’s ranges, across many chunks', () => {
    const set = new RangeSet({ name: 'many', hex: true, chunkSize: 4 });
    for (let i = 0; i < 50; i++) set.addRange(16 * i, 16 * i + (i % 3));
    expect(set.toString()).toBe(formatRangeSet('many', set.toArray(), true));
    expect(set.toString().startsWith('many       { 0, 10-11, 20-22, 30, ')).toBe(true);
    expect(set.toString().endsWith(', 310-311 }')).toBe(true);
  });

  it('is what String() and template literals use', () => {
    const set = RangeSet.from([[MAX, MAX]], { name: 'top' });
    expect(String(set)).toBe('top        { 9007199254740991 }');
    expect(`${set}`).toBe(set.toString());
  });
});
