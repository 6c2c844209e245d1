/**
 * MTRR state and Xen's `mtrr_get_type` (xen/arch/x86/hvm/mtrr.c), branch by
 * branch. Addresses are bytes (bigint); a block of order o is 2^o pages.
 */
import { describe, expect, it } from 'vitest';
import {
  fixedRangeIndex,
  fixedRangesFrom,
  fixedRangesFromMsrs,
  InvalidArgumentError,
  MtrrState,
  type MtrrType,
  mtrrGetType,
  type Paddr,
  type PageOrder,
  paddr,
  SPLIT,
  type VariableRange,
  variableRange,
  variableRangeFromMsrs,
  variableRangeToMsrs,
} from './index.js';

const KiB = 0x400n;
const MiB = 0x100000n;

/** Fixed bytes with a distinct pattern so each index is recognisable: byte i gets TYPES[i % 5]. */
const TYPES: readonly MtrrType[] = ['UC', 'WC', 'WT', 'WP', 'WB'];
const patterned = Array.from({ length: 88 }, (_, i) => TYPES[i % 5]!);

const range = (base: bigint, size: bigint, type: MtrrType): VariableRange => variableRange(base, size, type);

describe('mtrrGetType: disabled and fixed ranges', () => {
  const fixedOn = new MtrrState({
    enabled: true,
    fixedEnabled: true,
    defaultType: 'WB',
    fixedRanges: patterned,
  });
  const cases: ReadonlyArray<readonly [string, MtrrState, bigint, PageOrder, MtrrType | typeof SPLIT]> = [
    // MTRRs disabled: UC everywhere and at every order, whatever else is set.
    ['disabled, 4K', new MtrrState({ defaultType: 'WB' }), 0x1234_5000n, 0, 'UC'],
    ['disabled, 1G', new MtrrState({ defaultType: 'WB' }), 0n, 18, 'UC'],
    // 64 KiB granules: byte = pa >> 16.
    ['64K granule, byte 0', fixedOn, 0n, 0, patterned[0]!],
    ['64K granule, byte 7 (0x70000)', fixedOn, 0x7ffffn, 0, patterned[7]!],
    // 16 KiB granules: byte 8 + ((pa - 0x80000) >> 14).
    ['16K granule, byte 8 (0x80000)', fixedOn, 0x80000n, 0, patterned[8]!],
    ['16K granule, byte 9 (0x84000)', fixedOn, 0x84000n, 0, patterned[9]!],
    ['16K granule, byte 23 (0xBC000)', fixedOn, 0xbc000n, 0, patterned[23]!],
    // 4 KiB granules: byte 24 + ((pa - 0xC0000) >> 12).
    ['4K granule, byte 24 (0xC0000)', fixedOn, 0xc0000n, 0, patterned[24]!],
    ['4K granule, byte 87 (0xFF000)', fixedOn, 0xfffffn, 0, patterned[87]!],
    // A 2M block at 0 holds the fixed area and is larger than any granule: split. The same when the
    // address itself is above 1 MiB but its 2M block starts at 0.
    ['2M block at 0: split', fixedOn, 0n, 9, SPLIT],
    ['2M block holding 0x100000: split', fixedOn, 0x100000n, 9, SPLIT],
    ['1G block at 0: split', fixedOn, 0x3000_0000n, 18, SPLIT],
    // The next 2M block is above 1 MiB: variable ranges / default.
    ['2M block at 2 MiB: default', fixedOn, 0x200000n, 9, 'WB'],
    // Fixed ranges disabled: below 1 MiB goes to the variable ranges (none: default).
    [
      'fixed disabled: default',
      new MtrrState({ enabled: true, fixedEnabled: false, defaultType: 'WT', fixedRanges: patterned }),
      0xc0000n,
      0,
      'WT',
    ],
    [
      'fixed disabled, 2M at 0: no split',
      new MtrrState({ enabled: true, defaultType: 'WT', fixedRanges: patterned }),
      0n,
      9,
      'WT',
    ],
  ];
  it.each(cases)('%s', (_name, state, address, order, expected) => {
    expect(mtrrGetType(state, paddr(address), order)).toEqual(expected);
  });

  it('fixedRangeIndex gives the byte and its granule order', () => {
    expect(fixedRangeIndex(paddr(0x7ffffn))).toEqual({ index: 7, granuleOrder: 4 });
    expect(fixedRangeIndex(paddr(0x80000n))).toEqual({ index: 8, granuleOrder: 2 });
    expect(fixedRangeIndex(paddr(0xbffffn))).toEqual({ index: 23, granuleOrder: 2 });
    expect(fixedRangeIndex(paddr(0xc0000n))).toEqual({ index: 24, granuleOrder: 0 });
    expect(fixedRangeIndex(paddr(0xfffffn))).toEqual({ index: 87, granuleOrder: 0 });
    expect(fixedRangeIndex(paddr(MiB))).toBeUndefined();
  });

  it('fixedRangesFrom builds hvmloader layout: WB, WC over 0xA0000-0xBFFFF, WB', () => {
    const fixed = fixedRangesFrom((start) => (start >= 0xa0000 && start < 0xc0000 ? 'WC' : 'WB'));
    const state = new MtrrState({ enabled: true, fixedEnabled: true, defaultType: 'WB', fixedRanges: fixed });
    expect(mtrrGetType(state, paddr(0x9f000n), 0)).toBe('WB'); // last page of low RAM
    expect(mtrrGetType(state, paddr(0xa0000n), 0)).toBe('WC'); // VGA window
    expect(mtrrGetType(state, paddr(0xbf000n), 0)).toBe('WC');
    expect(mtrrGetType(state, paddr(0xc0000n), 0)).toBe('WB'); // option ROMs / BIOS
  });
});

describe('mtrrGetType: variable ranges', () => {
  const make = (defaultType: MtrrType, ...variableRanges: VariableRange[]): MtrrState =>
    new MtrrState({ enabled: true, defaultType, variableRanges });

  // hvmloader's default PCI hole cover: F000_0000/128M and F800_0000/64M, UC, default WB.
  const hole = make('WB', range(0xf000_0000n, 128n * MiB, 'UC'), range(0xf800_0000n, 64n * MiB, 'UC'));
  // Nested ranges: a WB 1 GiB range with a UC / WT / WC 4 KiB range inside at 0xC000_0000.
  const nested = (inner: MtrrType, outer: MtrrType = 'WB', innerFirst = false): MtrrState => {
    const a = range(0xc000_0000n, 0x4000_0000n, outer);
    const b = range(0xc000_0000n, 4n * KiB, inner);
    return innerFirst ? make('UC', b, a) : make('UC', a, b);
  };

  const cases: ReadonlyArray<readonly [string, MtrrState, bigint, PageOrder, MtrrType | typeof SPLIT]> = [
    // No range matches: the default type.
    ['no match → default', hole, 0x8000_0000n, 0, 'WB'],
    ['no match, 2M → default', hole, 0x8000_0000n, 9, 'WB'],
    // [0xFC00_0000, 4 GiB) is not covered: default WB.
    ['just past the hole → default', hole, 0xfc00_0000n, 0, 'WB'],
    // One match (no overlaps: order 0 takes the first match at once).
    ['one match, 4K', hole, 0xf000_0000n, 0, 'UC'],
    ['last page of the second range', hole, 0xfbff_f000n, 0, 'UC'],
    ['one match, 2M', hole, 0xfb00_0000n, 9, 'UC'],
    // Two overlapping ranges of one type: that type, at every order.
    ['overlap, same type, 4K', nested('WB'), 0xc000_0000n, 0, 'WB'],
    ['overlap, same type, 2M', nested('WB'), 0xc000_0000n, 9, 'WB'],
    // Conflicting overlap on a superpage: split.
    ['conflict, 2M → split', nested('UC'), 0xc000_0000n, 9, SPLIT],
    ['conflict, 1G → split', nested('WT'), 0xc000_0000n, 18, SPLIT],
    // Conflicting overlap on a 4K page: any UC → UC (in either order).
    ['4K {WB, UC} → UC', nested('UC'), 0xc000_0000n, 0, 'UC'],
    ['4K {UC, WB} → UC', nested('UC', 'WB', true), 0xc000_0000n, 0, 'UC'],
    // {WT, WB} → WT, whichever comes last.
    ['4K {WB, WT} → WT', nested('WT'), 0xc000_0000n, 0, 'WT'],
    ['4K {WT, WB} → WT', nested('WT', 'WB', true), 0xc000_0000n, 0, 'WT'],
    // Anything else is undefined: Xen gives the last matching pair's type.
    ['4K {WB, WC} → last (WC)', nested('WC'), 0xc000_0000n, 0, 'WC'],
    ['4K {WC, WB} → last (WB)', nested('WC', 'WB', true), 0xc000_0000n, 0, 'WB'],
    ['4K {WP, WT} → last (WP)', nested('WP', 'WT'), 0xc000_0000n, 0, 'WP'],
    // The overlapped state also decides pages that only one range covers: that one's type.
    ['overlapped state, page in outer only', nested('UC'), 0xc000_1000n, 0, 'WB'],
  ];
  it.each(cases)('%s', (_name, state, address, order, expected) => {
    expect(mtrrGetType(state, paddr(address), order)).toEqual(expected);
  });

  it('three types {WT, WB, WC} on a 4K page: no UC, not exactly {WT, WB} → the last', () => {
    const state = make(
      'UC',
      range(0xc000_0000n, 0x4000_0000n, 'WT'),
      range(0xc000_0000n, 2n * MiB, 'WB'),
      range(0xc000_0000n, 4n * KiB, 'WC'),
    );
    expect(mtrrGetType(state, paddr(0xc000_0000n), 0)).toBe('WC');
  });

  it('ranges that are not valid match nothing', () => {
    const state = make('WB', { ...range(0xf000_0000n, 128n * MiB, 'UC'), valid: false });
    expect(mtrrGetType(state, paddr(0xf000_0000n), 0)).toBe('WB');
  });

  it('QUIRK: a range smaller than the block counts for the whole block', () => {
    // Default WB, one UC 4K range at 0xF000_0000.
    const state = make('WB', range(0xf000_0000n, 4n * KiB, 'UC'));
    expect(mtrrGetType(state, paddr(0xf000_0000n), 0)).toBe('UC'); // the page itself
    expect(mtrrGetType(state, paddr(0xf000_1000n), 0)).toBe('WB'); // its neighbour: default
    // The 2M and 1G blocks around it: UC, though all but one page are WB at order 0.
    expect(mtrrGetType(state, paddr(0xf000_1000n), 9)).toBe('UC');
    expect(mtrrGetType(state, paddr(0xc000_0000n), 18)).toBe('UC');
  });

  it("computes Xen's overlapped flag", () => {
    expect(hole.overlapped).toBe(false); // adjacent, not overlapping
    expect(nested('UC').overlapped).toBe(true);
    expect(make('WB').overlapped).toBe(false);
  });
});

describe('MtrrState: construction, copies and validation', () => {
  it("defaults to Xen's reset state: disabled, UC, 8 invalid pairs, 52 bits", () => {
    const state = new MtrrState();
    expect(state).toMatchObject({ enabled: false, fixedEnabled: false, defaultType: 'UC', physAddrBits: 52 });
    expect(state.variableRanges).toHaveLength(8);
    expect(state.variableRanges.every((r) => !r.valid)).toBe(true);
    expect(state.fixedRanges).toHaveLength(88);
    expect(Object.isFrozen(state)).toBe(true);
  });

  it('with… methods return changed copies and leave the original alone', () => {
    const a = new MtrrState({ enabled: true, defaultType: 'WB' });
    const b = a.withVariableRange(3, range(0xf000_0000n, 128n * MiB, 'UC'));
    const c = b
      .withDefType({ defaultType: 'WT' })
      .withFixedRange(87, 'WP')
      .withDefType({ fixedEnabled: true });
    expect(mtrrGetType(a, paddr(0xf000_0000n), 0)).toBe('WB');
    expect(mtrrGetType(b, paddr(0xf000_0000n), 0)).toBe('UC');
    expect(mtrrGetType(c, paddr(0x1000_0000n), 0)).toBe('WT');
    expect(mtrrGetType(c, paddr(0xff000n), 0)).toBe('WP');
    expect(mtrrGetType(b.withVariableRange(3, null), paddr(0xf000_0000n), 0)).toBe('WB');
  });

  const bad: ReadonlyArray<readonly [string, () => unknown, string]> = [
    // A valid mask with a hole in it: 0xF_FFFF_F000 with bit 20 cleared.
    [
      'non-contiguous mask',
      () =>
        new MtrrState({
          variableRanges: [{ base: 0n, mask: 0xf_ffef_f000n, type: 'UC', valid: true }],
          physAddrBits: 36,
        }),
      'variableRanges[0].mask: expected a contiguous mask',
    ],
    // Bits above a 36-bit width, in the mask and in the base.
    [
      'mask beyond the width',
      () =>
        new MtrrState({
          variableRanges: [{ base: 0n, mask: 0xff_ffff_f000n, type: 'UC', valid: true }],
          physAddrBits: 36,
        }),
      'variableRanges[0].mask: expected a mask of address bits 12 … 35 only',
    ],
    [
      'base beyond the width',
      () =>
        new MtrrState({
          variableRanges: [{ base: 1n << 36n, mask: 0xf_f000_0000n, type: 'UC', valid: true }],
          physAddrBits: 36,
        }),
      'variableRanges[0].base: expected a 4 KiB aligned address below 2^36',
    ],
    [
      'base not 4K aligned',
      () => new MtrrState({ variableRanges: [{ base: 0x800n, mask: 0n, type: 'UC', valid: false }] }),
      'variableRanges[0].base',
    ],
    [
      'UC- default type',
      () => new MtrrState({ defaultType: 'UC-' as MtrrType }),
      'defaultType: expected an MTRR type',
    ],
    [
      'UC- fixed byte',
      () => new MtrrState({ fixedRanges: patterned.map((t, i) => (i === 3 ? ('UC-' as MtrrType) : t)) }),
      'fixedRanges[3]: expected an MTRR type',
    ],
    [
      '87 fixed bytes',
      () => new MtrrState({ fixedRanges: patterned.slice(1) }),
      'fixedRanges: expected an array of 88',
    ],
    [
      'more pairs than VCNT',
      () =>
        new MtrrState({ variableCount: 1, variableRanges: [range(0n, MiB, 'WB'), range(MiB, MiB, 'WB')] }),
      'variableRanges: expected an array of at most variableCount (1)',
    ],
    [
      'width 53',
      () => new MtrrState({ physAddrBits: 53 }),
      'physAddrBits: expected an integer in 32 … 52, got 53',
    ],
    ['VCNT 41', () => new MtrrState({ variableCount: 41 }), 'variableCount: expected an integer in 1 … 40'],
    [
      'order 1',
      () => mtrrGetType(new MtrrState(), paddr(0n), 1 as PageOrder),
      'order: expected a page order: 0 (4K), 9 (2M) or 18 (1G), got 1',
    ],
    [
      'negative address',
      () => mtrrGetType(new MtrrState(), -1n as Paddr, 0),
      'address: expected a bigint in 0n … 2^64-1, got -1n',
    ],
    [
      'number address',
      () => mtrrGetType(new MtrrState(), 4096 as unknown as Paddr, 0),
      'address: expected a bigint',
    ],
    ['not a state', () => mtrrGetType({} as MtrrState, paddr(0n), 0), 'state: expected an MtrrState'],
    [
      'fixed index 88',
      () => new MtrrState().withFixedRange(88, 'WB'),
      'index: expected an integer in 0 … 87, got 88',
    ],
    [
      'variable index 8',
      () => new MtrrState().withVariableRange(8, null),
      'index: expected an integer in 0 … 7, got 8',
    ],
    [
      'range size not a power of two',
      () => variableRange(0n, 3n * MiB, 'UC'),
      'size: expected a power of two',
    ],
    [
      'range base not a multiple of size',
      () => variableRange(MiB, 2n * MiB, 'UC'),
      'base: expected a multiple of the size',
    ],
  ];
  it.each(bad)('throws for %s, naming the argument', (_name, call, message) => {
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(message);
  });

  it('variableRange builds the mask hvmloader writes (~(size-1) cut to the width)', () => {
    expect(variableRange(0xf000_0000n, 128n * MiB, 'UC', 36)).toEqual({
      base: 0xf000_0000n,
      mask: 0xf_f800_0000n,
      type: 'UC',
      valid: true,
    });
  });
});

describe('MSR decoding', () => {
  it('round-trips a PHYSBASE/PHYSMASK pair', () => {
    // 128 MiB UC at 0xF000_0000, 36-bit width: PHYSBASE type 0, PHYSMASK valid bit 11.
    const r = variableRangeFromMsrs(0xf000_0000n, 0xf_f800_0800n, 36);
    expect(r).toEqual({ base: 0xf000_0000n, mask: 0xf_f800_0000n, type: 'UC', valid: true });
    expect(variableRangeToMsrs(r)).toEqual({ physBase: 0xf000_0000n, physMask: 0xf_f800_0800n });
    expect(variableRangeFromMsrs(0x6n, 0n)).toEqual({ base: 0n, mask: 0n, type: 'WB', valid: false });
  });

  const bad: ReadonlyArray<readonly [string, () => unknown, string]> = [
    // Type byte 7 (UC-) and 2 (reserved) are not MTRR types.
    [
      'PHYSBASE type UC-',
      () => variableRangeFromMsrs(0xf000_0007n, 0n),
      'physBase: expected an MTRR memory type encoding',
    ],
    [
      'PHYSBASE type 2',
      () => variableRangeFromMsrs(0x2n, 0n),
      'physBase: expected an MTRR memory type encoding',
    ],
    [
      'PHYSBASE reserved bits',
      () => variableRangeFromMsrs(0x100n, 0n),
      'physBase: expected reserved bits 11:8 clear',
    ],
    [
      'PHYSMASK reserved bits',
      () => variableRangeFromMsrs(0n, 0x1n),
      'physMask: expected reserved bits 10:0 clear',
    ],
    [
      'PHYSMASK beyond width',
      () => variableRangeFromMsrs(0n, 0x10_0000_0800n, 36),
      'physMask: expected no address bit',
    ],
    [
      'PHYSBASE beyond width',
      () => variableRangeFromMsrs(0x10_0000_0000n, 0n, 36),
      'physBase: expected no address bit',
    ],
    [
      'PHYSMASK not contiguous',
      () => variableRangeFromMsrs(0n, 0xf_0f00_0800n, 36),
      'physMask: expected a contiguous',
    ],
    [
      'fixed MSR with a UC- byte',
      () => fixedRangesFromMsrs([...Array(10).fill(0n), 0x0700n]),
      'msrs[10]: expected an MTRR',
    ],
    ['10 fixed MSRs', () => fixedRangesFromMsrs(Array(10).fill(0n)), 'msrs: expected an array of 11'],
  ];
  it.each(bad)('throws for %s', (_name, call, message) => {
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(message);
  });

  it('decodes the fixed-range MSRs, lowest byte lowest address', () => {
    const msrs = Array(11).fill(0x0606_0606_0606_0606n) as bigint[];
    msrs[1] = 0x0000_0000_0000_0001n; // MTRRfix16K_80000: byte 8 WC, bytes 9-15 UC
    const types = fixedRangesFromMsrs(msrs);
    expect(types).toHaveLength(88);
    expect(types[7]).toBe('WB');
    expect(types[8]).toBe('WC');
    expect(types[9]).toBe('UC');
    expect(types[16]).toBe('WB');
  });
});
