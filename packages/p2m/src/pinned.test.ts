/** Pinned cache attributes, as `hvm_get_mem_pinned_cacheattr` (xen-behaviour.md §3.3). */
import { describe, expect, it } from 'vitest';
import {
  checkPinnedRanges,
  getPinnedCacheAttr,
  InvalidArgumentError,
  type PageOrder,
  type PinnedRange,
} from './index.js';

// Frames 0x200-0x3ff WC (a 2M block), 0x1000-0x1001 UC-, 0x40000-0x7ffff WB (a 1G block).
const ranges: PinnedRange[] = [
  { gfnStart: 0x200, gfnEnd: 0x3ff, type: 'WC' },
  { gfnStart: 0x1000, gfnEnd: 0x1001, type: 'UC-' },
  { gfnStart: 0x40000, gfnEnd: 0x7ffff, type: 'WB' },
];

describe('getPinnedCacheAttr', () => {
  it.each([
    // 4K inside a range, at both ends: full.
    [0x200, 0, { match: 'full', type: 'WC' }],
    [0x3ff, 0, { match: 'full', type: 'WC' }],
    [0x1001, 0, { match: 'full', type: 'UC-' }],
    // 2M block [0x200, 0x3ff] exactly the range: full. Any gfn inside names the same block.
    [0x2ab, 9, { match: 'full', type: 'WC' }],
    // 2M block [0x1000, 0x11ff] ⊋ [0x1000, 0x1001]: partial → split.
    [0x1100, 9, { match: 'partial', split: true }],
    // 1G block [0x40000, 0x7ffff] = the WB range; the 1G block at 0 only partly overlaps the WC one.
    [0x50000, 18, { match: 'full', type: 'WB' }],
    [0x0, 18, { match: 'partial', split: true }],
    // Just outside every range: none.
    [0x1ff, 0, { match: 'none' }],
    [0x400, 0, { match: 'none' }],
    [0x80000, 18, { match: 'none' }],
  ] as const)('gfn %i order %i', (gfn, order, expected) => {
    expect(getPinnedCacheAttr(ranges, gfn, order as PageOrder)).toEqual(expected);
  });

  it('an empty list: none', () => {
    expect(getPinnedCacheAttr([], 5, 0)).toEqual({ match: 'none' });
  });

  it('the first range touching the block decides, in list order', () => {
    // The 2M block [0, 0x1ff] touches the first range partly: split, whatever comes after.
    const list: PinnedRange[] = [
      { gfnStart: 0x100, gfnEnd: 0x100, type: 'UC' },
      { gfnStart: 0x1000, gfnEnd: 0x1fff, type: 'WB' },
    ];
    expect(getPinnedCacheAttr(list, 0x10, 9)).toEqual({ match: 'partial', split: true });
    expect(getPinnedCacheAttr(list, 0x1200, 9)).toEqual({ match: 'full', type: 'WB' });
  });
});

describe('validation', () => {
  it.each([
    [
      'end before start',
      [{ gfnStart: 5, gfnEnd: 4, type: 'WB' }],
      'ranges[0].gfnEnd: expected a frame >= gfnStart (5), got 4',
    ],
    [
      'frame ≥ 2^52',
      [{ gfnStart: 0, gfnEnd: 2 ** 52, type: 'WB' }],
      'ranges[0].gfnEnd: expected a frame number',
    ],
    ['bad type', [{ gfnStart: 0, gfnEnd: 1, type: 'XX' }], 'ranges[0].type: expected a memory type'],
    [
      'overlapping ranges (Xen refuses them with EBUSY)',
      [
        { gfnStart: 0, gfnEnd: 9, type: 'WB' },
        { gfnStart: 9, gfnEnd: 12, type: 'UC' },
      ],
      'ranges[1]: expected a range sharing no frame with ranges[0] [0, 9]',
    ],
  ])('throws for %s', (_name, list, message) => {
    expect(() => checkPinnedRanges(list as PinnedRange[])).toThrow(InvalidArgumentError);
    expect(() => checkPinnedRanges(list as PinnedRange[])).toThrow(message);
  });

  it('checks gfn and order', () => {
    expect(() => getPinnedCacheAttr([], -1, 0)).toThrow('gfn: expected a frame number');
    expect(() => getPinnedCacheAttr([], 0, 12 as PageOrder)).toThrow('order: expected a page order');
  });
});
