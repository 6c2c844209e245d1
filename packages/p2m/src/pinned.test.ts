/**
 * Pinned cache attributes: the lookup, as `hvm_get_mem_pinned_cacheattr` (xen/arch/x86/hvm/mtrr.c), and
 * the list as `hvm_set_mem_pinned_cacheattr` keeps it.
 */
import { describe, expect, it } from 'vitest';
import {
  checkPinnedRanges,
  DELETE_MEM_CACHEATTR,
  type EmtDomain,
  epteGetEntryEmt,
  type Gfn,
  getPinnedCacheAttr,
  gfn,
  InvalidArgumentError,
  MAX_FRAME,
  MAX_PINNED_RANGES,
  type MemoryType,
  MtrrState,
  mfn,
  type PageOrder,
  PinnedCacheAttrs,
  type PinnedCacheAttrsOptions,
  type PinnedRange,
  type PinResult,
  type UnpinResult,
} from './index.js';

// Frames 0x200-0x3ff WC (a 2M block), 0x1000-0x1001 UC-, 0x40000-0x7ffff WB (a 1G block).
const ranges: PinnedRange[] = [
  { gfnStart: gfn(0x200), gfnEnd: gfn(0x3ff), type: 'WC' },
  { gfnStart: gfn(0x1000), gfnEnd: gfn(0x1001), type: 'UC-' },
  { gfnStart: gfn(0x40000), gfnEnd: gfn(0x7ffff), type: 'WB' },
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
  ] as const)('gfn %i order %i', (g, order, expected) => {
    expect(getPinnedCacheAttr(ranges, gfn(g), order as PageOrder)).toEqual(expected);
  });

  it('an empty list: none', () => {
    expect(getPinnedCacheAttr([], gfn(5), 0)).toEqual({ match: 'none' });
  });

  it('the first range touching the block decides, in list order', () => {
    // The 2M block [0, 0x1ff] touches the first range partly: split, whatever comes after.
    const list: PinnedRange[] = [
      { gfnStart: gfn(0x100), gfnEnd: gfn(0x100), type: 'UC' },
      { gfnStart: gfn(0x1000), gfnEnd: gfn(0x1fff), type: 'WB' },
    ];
    expect(getPinnedCacheAttr(list, gfn(0x10), 9)).toEqual({ match: 'partial', split: true });
    expect(getPinnedCacheAttr(list, gfn(0x1200), 9)).toEqual({ match: 'full', type: 'WB' });
  });
});

describe('validation', () => {
  it.each([
    [
      'end before start',
      [{ gfnStart: gfn(5), gfnEnd: gfn(4), type: 'WB' }],
      'ranges[0].gfnEnd: expected a frame >= gfnStart (5), got 4',
    ],
    [
      'frame ≥ 2^52',
      [{ gfnStart: gfn(0), gfnEnd: (2 ** 52) as Gfn, type: 'WB' }],
      'ranges[0].gfnEnd: expected a frame number',
    ],
    [
      'bad type',
      [{ gfnStart: gfn(0), gfnEnd: gfn(1), type: 'XX' }],
      'ranges[0].type: expected a memory type',
    ],
    [
      'overlapping ranges (Xen refuses them with EBUSY)',
      [
        { gfnStart: gfn(0), gfnEnd: gfn(9), type: 'WB' },
        { gfnStart: gfn(9), gfnEnd: gfn(12), type: 'UC' },
      ],
      'ranges[1]: expected a range sharing no frame with ranges[0] [0, 9]',
    ],
  ])('throws for %s', (_name, list, message) => {
    expect(() => checkPinnedRanges(list as PinnedRange[])).toThrow(InvalidArgumentError);
    expect(() => checkPinnedRanges(list as PinnedRange[])).toThrow(message);
  });

  it('checks gfn and order', () => {
    expect(() => getPinnedCacheAttr([], -1 as Gfn, 0)).toThrow('gfn: expected a frame number');
    expect(() => getPinnedCacheAttr([], gfn(0), 12 as PageOrder)).toThrow('order: expected a page order');
  });
});

/**
 * `PinnedCacheAttrs`, as Xen's `hvm_set_mem_pinned_cacheattr` (xen/arch/x86/hvm/mtrr.c at c447b7308b13)
 * changes the list, branch by branch. Ranges are written `[start, end] TYPE`, the list newest first.
 */
describe('PinnedCacheAttrs', () => {
  const noIo: EmtDomain = { iommuEnabled: false, hasIoResources: false, hasPciDevices: false };
  type Spec = readonly [start: number, end: number, type: MemoryType];
  const range = ([start, end, type]: Spec): PinnedRange => ({ gfnStart: gfn(start), gfnEnd: gfn(end), type });

  /** A list holding `specs` in this order (newest first): pinned from the last to the first. */
  function listOf(specs: readonly Spec[], options: PinnedCacheAttrsOptions = {}): PinnedCacheAttrs {
    const attrs = new PinnedCacheAttrs(options);
    for (const spec of [...specs].reverse()) {
      expect(attrs.pin(gfn(spec[0]), gfn(spec[1]), spec[2])).toMatchObject({ ok: true, action: 'added' });
    }
    return attrs;
  }
  const base: Spec[] = [
    [0x100, 0x1ff, 'WB'],
    [0x400, 0x4ff, 'UC'],
  ];

  describe('pin', () => {
    it.each<readonly [string, Spec[], Spec, PinResult, Spec[]]>([
      // A new range goes first (Xen's list_add_rcu puts it at the head).
      [
        'a new range: added, first',
        base,
        [0x200, 0x2ff, 'WT'],
        { ok: true, action: 'added', range: range([0x200, 0x2ff, 'WT']), flush: false },
        [[0x200, 0x2ff, 'WT'], ...base],
      ],
      [
        'into an empty list',
        [],
        [0, 0, 'WB'],
        { ok: true, action: 'added', range: range([0, 0, 'WB']), flush: false },
        [[0, 0, 'WB']],
      ],
      // {0x100-0x1ff} and {0x200-0x2ff} share no frame: adjacent is not overlapping.
      [
        'adjacent on both sides: added',
        base,
        [0x200, 0x3ff, 'WC'],
        { ok: true, action: 'added', range: range([0x200, 0x3ff, 'WC']), flush: true },
        [[0x200, 0x3ff, 'WC'], ...base],
      ],
      // The same bounds: the type changes in place, the range keeps its place in the list.
      [
        'the same bounds: updated in place',
        base,
        [0x400, 0x4ff, 'WP'],
        { ok: true, action: 'updated', range: range([0x400, 0x4ff, 'WP']), previous: 'UC', flush: false },
        [base[0]!, [0x400, 0x4ff, 'WP']],
      ],
      [
        'the same bounds and type: updated, nothing changes',
        base,
        [0x100, 0x1ff, 'WB'],
        { ok: true, action: 'updated', range: range([0x100, 0x1ff, 'WB']), previous: 'WB', flush: false },
        base,
      ],
      // Overlaps: EBUSY naming the first overlapping range in list order; UC still flushes.
      [
        'overlapping the end of a range',
        base,
        [0x1ff, 0x200, 'WB'],
        { ok: false, code: 'EBUSY', conflict: range(base[0]!), flush: false },
        base,
      ],
      [
        'overlapping the start of a range',
        base,
        [0x300, 0x400, 'UC'],
        { ok: false, code: 'EBUSY', conflict: range(base[1]!), flush: true },
        base,
      ],
      [
        'inside a range',
        base,
        [0x180, 0x180, 'WB'],
        { ok: false, code: 'EBUSY', conflict: range(base[0]!), flush: false },
        base,
      ],
      [
        'holding a range',
        base,
        [0x380, 0x500, 'UC-'],
        { ok: false, code: 'EBUSY', conflict: range(base[1]!), flush: true },
        base,
      ],
      [
        'the same start, another end',
        base,
        [0x100, 0x17f, 'WB'],
        { ok: false, code: 'EBUSY', conflict: range(base[0]!), flush: false },
        base,
      ],
      [
        'holding two ranges: the newest is named',
        base,
        [0, 0xfff, 'WB'],
        { ok: false, code: 'EBUSY', conflict: range(base[0]!), flush: false },
        base,
      ],
    ])('%s', (_name, before, [start, end, type], result, after) => {
      const attrs = listOf(before);
      expect(attrs.pin(gfn(start), gfn(end), type)).toEqual(result);
      expect(attrs.ranges).toEqual(after.map(range));
    });

    it.each<readonly [string, number, PinResult]>([
      // The raw `type` of the call: the PAT encodings, anything else Xen refuses.
      ['0 is UC', 0, { ok: true, action: 'added', range: range([1, 1, 'UC']), flush: true }],
      ['1 is WC', 1, { ok: true, action: 'added', range: range([1, 1, 'WC']), flush: true }],
      ['4 is WT', 4, { ok: true, action: 'added', range: range([1, 1, 'WT']), flush: false }],
      ['5 is WP', 5, { ok: true, action: 'added', range: range([1, 1, 'WP']), flush: false }],
      ['6 is WB', 6, { ok: true, action: 'added', range: range([1, 1, 'WB']), flush: false }],
      ['7 is UC-', 7, { ok: true, action: 'added', range: range([1, 1, 'UC-']), flush: true }],
      ['2 is reserved', 2, { ok: false, code: 'EINVAL', reason: 'type', type: 2 }],
      ['3 is reserved', 3, { ok: false, code: 'EINVAL', reason: 'type', type: 3 }],
      ['8 is no type', 8, { ok: false, code: 'EINVAL', reason: 'type', type: 8 }],
      ['2^32 - 2 is no type', 0xffff_fffe, { ok: false, code: 'EINVAL', reason: 'type', type: 0xffff_fffe }],
    ])('raw type %s', (_name, raw, result) => {
      const attrs = new PinnedCacheAttrs();
      expect(attrs.pin(gfn(1), gfn(1), raw)).toEqual(result);
      expect(attrs.ranges).toHaveLength(result.ok ? 1 : 0);
    });

    it('raw DELETE_MEM_CACHEATTR (2^32 - 1) removes the range, as unpin', () => {
      const attrs = listOf(base);
      expect(DELETE_MEM_CACHEATTR).toBe(2 ** 32 - 1);
      expect(attrs.pin(gfn(0x100), gfn(0x1ff), DELETE_MEM_CACHEATTR)).toEqual({
        ok: true,
        action: 'removed',
        range: range(base[0]!),
        flush: true,
      });
      expect(attrs.pin(gfn(0x100), gfn(0x1ff), DELETE_MEM_CACHEATTR)).toMatchObject({ code: 'ENOENT' });
      expect(attrs.ranges).toEqual([range(base[1]!)]);
    });

    it.each<readonly [string, EmtDomain, MemoryType, boolean]>([
      // UC, UC- and WC need cache_flush_permitted or an IOMMU; WB, WT, WP do not.
      ['UC, no IOMMU, no I/O, no device', noIo, 'UC', false],
      ['WC, no IOMMU, no I/O, no device', noIo, 'WC', false],
      ['UC-, no IOMMU, no I/O, no device', noIo, 'UC-', false],
      ['WB, no IOMMU, no I/O, no device', noIo, 'WB', true],
      ['WT, no IOMMU, no I/O, no device', noIo, 'WT', true],
      ['WP, no IOMMU, no I/O, no device', noIo, 'WP', true],
      ['UC with an IOMMU only', { ...noIo, iommuEnabled: true }, 'UC', true],
      ['UC with I/O resources only', { ...noIo, hasIoResources: true }, 'UC', true],
      ['UC with a PCI device only', { ...noIo, hasPciDevices: true }, 'UC', true],
    ])('%s', (_name, domain, type, allowed) => {
      const attrs = new PinnedCacheAttrs({ domain });
      const result = attrs.pin(gfn(5), gfn(6), type);
      if (allowed) expect(result).toMatchObject({ ok: true, action: 'added' });
      else expect(result).toEqual({ ok: false, code: 'EPERM', type });
      expect(attrs.ranges).toHaveLength(allowed ? 1 : 0);
    });

    it('EPERM comes before the list is looked at: even an update of the same bounds is refused', () => {
      const domain = { ...noIo };
      const attrs = new PinnedCacheAttrs({ domain });
      attrs.pin(gfn(5), gfn(6), 'WB');
      expect(attrs.pin(gfn(5), gfn(6), 'UC')).toEqual({ ok: false, code: 'EPERM', type: 'UC' });
      // The domain's facts are read at each call: once it has a device, UC is allowed.
      domain.hasPciDevices = true;
      expect(attrs.pin(gfn(5), gfn(6), 'UC')).toMatchObject({ ok: true, action: 'updated', previous: 'WB' });
    });

    it('64 ranges at most: the 65th is ENOSPC (UC still flushes); an update of one of them is not', () => {
      const attrs = new PinnedCacheAttrs();
      for (let i = 0; i < 63; i++) attrs.pin(gfn(2 * i), gfn(2 * i), 'WB');
      expect(attrs.pin(gfn(200), gfn(200), 'WB')).toMatchObject({ ok: true, action: 'added' }); // the 64th
      expect(MAX_PINNED_RANGES).toBe(64);
      const full = attrs.ranges;
      expect(attrs.pin(gfn(300), gfn(300), 'WB')).toEqual({
        ok: false,
        code: 'ENOSPC',
        limit: 64,
        flush: false,
      });
      expect(attrs.pin(gfn(300), gfn(300), 'UC')).toEqual({
        ok: false,
        code: 'ENOSPC',
        limit: 64,
        flush: true,
      });
      // An overlap is found before the count is looked at.
      expect(attrs.pin(gfn(0), gfn(1), 'WB')).toMatchObject({ ok: false, code: 'EBUSY' });
      expect(attrs.ranges).toBe(full); // failed calls change nothing
      expect(attrs.pin(gfn(0), gfn(0), 'WT')).toMatchObject({ ok: true, action: 'updated', previous: 'WB' });
      expect(attrs.ranges).toHaveLength(64);
    });

    it('a range may end at MAX_FRAME; frames are checked against paddrBits as Xen does', () => {
      expect(new PinnedCacheAttrs().pin(gfn(0), gfn(MAX_FRAME), 'WB')).toMatchObject({ ok: true });
      // Xen shifts the frame numbers by the address width: with 36 bits, frame 2^36 - 1 (an address
      // near 2^48) passes, frame 2^36 does not.
      const attrs = new PinnedCacheAttrs({ paddrBits: 36 });
      expect(attrs.pin(gfn(2 ** 36 - 1), gfn(2 ** 36 - 1), 'WB')).toMatchObject({ ok: true });
      const wide = { ok: false, code: 'EINVAL', reason: 'address-width', paddrBits: 36 };
      expect(attrs.pin(gfn(2 ** 36), gfn(2 ** 36), 'WB')).toEqual(wide);
      expect(attrs.pin(gfn(0), gfn(2 ** 36), 'WB')).toEqual(wide);
      // The width is checked before the type: a bad raw type with a wide frame is address-width.
      expect(attrs.pin(gfn(2 ** 36), gfn(2 ** 36), 2)).toEqual(wide);
      expect(attrs.unpin(gfn(2 ** 36), gfn(2 ** 36))).toEqual(wide);
      expect(attrs.ranges).toHaveLength(1);
    });

    it.each<readonly [string, () => unknown, string]>([
      // Malformed arguments are programming errors: they throw (Xen returns EINVAL for the first).
      [
        'an end before the start',
        () => new PinnedCacheAttrs().pin(gfn(5), gfn(4), 'WB'),
        'gfnEnd: expected a frame >= gfnStart (5), got 4',
      ],
      [
        'a start past 2^52',
        () => new PinnedCacheAttrs().pin((2 ** 52) as Gfn, gfn(4), 'WB'),
        'gfnStart: expected a frame number',
      ],
      [
        'a fractional end',
        () => new PinnedCacheAttrs().pin(gfn(0), 1.5 as Gfn, 'WB'),
        'gfnEnd: expected a frame number',
      ],
      [
        'an unknown type name',
        () => new PinnedCacheAttrs().pin(gfn(0), gfn(0), 'XX' as MemoryType),
        'type: expected a memory type',
      ],
      [
        'a negative raw type',
        () => new PinnedCacheAttrs().pin(gfn(0), gfn(0), -1),
        'type: expected a memory type, or a raw type in 0 … 2^32-1, got -1',
      ],
      [
        'a raw type past 32 bits',
        () => new PinnedCacheAttrs().pin(gfn(0), gfn(0), 2 ** 32),
        'type: expected a memory type, or a raw type',
      ],
      [
        'a fractional raw type',
        () => new PinnedCacheAttrs().pin(gfn(0), gfn(0), 6.5),
        'type: expected a memory type, or a raw type',
      ],
      [
        'unpin: an end before the start',
        () => new PinnedCacheAttrs().unpin(gfn(5), gfn(4)),
        'gfnEnd: expected a frame >= gfnStart (5), got 4',
      ],
      [
        'unpin: a negative start',
        () => new PinnedCacheAttrs().unpin(-1 as Gfn, gfn(4)),
        'gfnStart: expected a frame number',
      ],
      [
        'paddrBits 31',
        () => new PinnedCacheAttrs({ paddrBits: 31 }),
        'paddrBits: expected an integer in 32 … 52, got 31',
      ],
      [
        'paddrBits 53',
        () => new PinnedCacheAttrs({ paddrBits: 53 }),
        'paddrBits: expected an integer in 32 … 52, got 53',
      ],
      [
        'a domain that is not an object',
        () => new PinnedCacheAttrs({ domain: 'dom0' as unknown as EmtDomain }),
        'domain: expected',
      ],
      [
        'a domain flag that is not a boolean',
        () => new PinnedCacheAttrs({ domain: { ...noIo, iommuEnabled: 1 as unknown as boolean } }),
        'domain.iommuEnabled: expected true or false',
      ],
      [
        'options that are not an object',
        () => new PinnedCacheAttrs(null as unknown as PinnedCacheAttrsOptions),
        'options: expected',
      ],
    ])('throws for %s', (_name, call, message) => {
      expect(call).toThrow(InvalidArgumentError);
      expect(call).toThrow(message);
    });
  });

  describe('unpin', () => {
    it.each<readonly [string, Spec, UnpinResult, Spec[]]>([
      // Removing a WB, WP or WT range flushes ("we don't know what the cachability is going to be").
      [
        'a WB range: removed, flush',
        [0x100, 0x1ff, 'WB'],
        { ok: true, action: 'removed', range: range(base[0]!), flush: true },
        [base[1]!],
      ],
      [
        'a UC range: removed, no flush',
        [0x400, 0x4ff, 'UC'],
        { ok: true, action: 'removed', range: range(base[1]!), flush: false },
        [base[0]!],
      ],
      // Only the exact bounds count.
      [
        'part of a range: ENOENT',
        [0x100, 0x17f, 'WB'],
        { ok: false, code: 'ENOENT', gfnStart: gfn(0x100), gfnEnd: gfn(0x17f) },
        base,
      ],
      [
        'more than a range: ENOENT',
        [0x100, 0x200, 'WB'],
        { ok: false, code: 'ENOENT', gfnStart: gfn(0x100), gfnEnd: gfn(0x200) },
        base,
      ],
      [
        'no range there: ENOENT',
        [0x900, 0x900, 'WB'],
        { ok: false, code: 'ENOENT', gfnStart: gfn(0x900), gfnEnd: gfn(0x900) },
        base,
      ],
    ])('%s', (_name, [start, end], result, after) => {
      const attrs = listOf(base);
      expect(attrs.unpin(gfn(start), gfn(end))).toEqual(result);
      expect(attrs.ranges).toEqual(after.map(range));
    });

    it.each<readonly [MemoryType, boolean]>([
      ['WB', true],
      ['WP', true],
      ['WT', true],
      ['UC', false],
      ['UC-', false],
      ['WC', false],
    ])('removing %s: flush %s', (type, flush) => {
      const attrs = listOf([[7, 7, type]]);
      expect(attrs.unpin(gfn(7), gfn(7))).toMatchObject({ ok: true, flush });
      expect(attrs.ranges).toEqual([]);
    });

    it('an empty list: ENOENT', () => {
      expect(new PinnedCacheAttrs().unpin(gfn(0), gfn(0))).toMatchObject({ ok: false, code: 'ENOENT' });
    });

    it('removing from the middle keeps the order of the others', () => {
      const attrs = listOf([
        [1, 1, 'WB'],
        [2, 2, 'WT'],
        [3, 3, 'WP'],
      ]);
      attrs.unpin(gfn(2), gfn(2));
      expect(attrs.ranges).toEqual([range([1, 1, 'WB']), range([3, 3, 'WP'])]);
    });
  });

  describe('the list as an input', () => {
    it('is frozen, and a snapshot: a change makes a new list (as RCU readers keep the old one)', () => {
      const attrs = listOf(base);
      const before = attrs.ranges;
      expect(Object.isFrozen(before)).toBe(true);
      expect(Object.isFrozen(before[0])).toBe(true);
      attrs.pin(gfn(0x900), gfn(0x9ff), 'WT');
      expect(before).toEqual(base.map(range));
      expect(attrs.ranges).not.toBe(before);
      expect(checkPinnedRanges(attrs.ranges)).toEqual(attrs.ranges); // always a valid list
    });

    it('is what epteGetEntryEmt and getPinnedCacheAttr read', () => {
      const attrs = listOf(base);
      expect(attrs.lookup(gfn(0x150), 0)).toEqual({ match: 'full', type: 'WB' });
      expect(attrs.lookup(gfn(0x150), 9)).toEqual({ match: 'partial', split: true });
      expect(getPinnedCacheAttr(attrs.ranges, gfn(0x450), 0)).toEqual({ match: 'full', type: 'UC' });
      const leaf = epteGetEntryEmt({
        domain: { iommuEnabled: true, hasIoResources: false, hasPciDevices: true },
        p2mType: 'ram_rw',
        gfn: gfn(0x450),
        mfn: mfn(0x12345),
        order: 0,
        guestMtrr: undefined,
        hostMtrr: new MtrrState({ enabled: true, defaultType: 'WB' }),
        pinned: attrs.ranges,
      });
      expect(leaf).toEqual({ emt: 'UC', ipat: true, rule: 'pinned' });
    });
  });
});
