import { InvalidArgumentError, type MtrrState, mtrrGetType, paddr } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { guestMtrrState, mtrrCover, mtrrLayoutJson } from './mtrr-layout.js';

const MIB = 1n << 20n;
const GIB = 1n << 30n;
const noHigh = { pciHiMemStart: 0n, pciHiMemEnd: 0n };

describe("mtrrCover: hvmloader cacheattr_init's greedy UC cover of each window", () => {
  it.each([
    [
      'default hole',
      0xf000_0000n,
      0xfc00_0000n,
      [
        [0xf000_0000n, 128n * MIB],
        [0xf800_0000n, 64n * MIB],
      ],
    ],
    [
      '16 MiB xenpci excluded',
      0xf000_0000n,
      0xfb00_0000n,
      [
        [0xf000_0000n, 128n * MIB],
        [0xf800_0000n, 32n * MIB],
        [0xfa00_0000n, 16n * MIB],
      ],
    ],
    [
      'hole from 0xe0000000',
      0xe000_0000n,
      0xfc00_0000n,
      [
        [0xe000_0000n, 256n * MIB],
        [0xf000_0000n, 128n * MIB],
        [0xf800_0000n, 64n * MIB],
      ],
    ],
    [
      'hole from 0xc0000000',
      0xc000_0000n,
      0xfc00_0000n,
      [
        [0xc000_0000n, 512n * MIB],
        [0xe000_0000n, 256n * MIB],
        [0xf000_0000n, 128n * MIB],
        [0xf800_0000n, 64n * MIB],
      ],
    ],
    ['high window', 0x2_0000_0000n, 0x4_0000_0000n, [[0x2_0000_0000n, 8n * GIB]]],
  ])('%s', (_name, start, end, blocks) => {
    expect(mtrrCover(start, end, 8)).toEqual({
      blocks: blocks.map(([base, size]) => ({ base, size })),
      coveredTo: end,
    });
  });

  it('stops when the ranges run out: the rest stays uncovered', () => {
    // [0x1000, 0x10000): 0x1000/4K, 0x2000/8K, 0x4000/16K, 0x8000/32K with 4 ranges; with 2, up to 0x4000.
    expect(mtrrCover(0x1000n, 0x10000n, 4).blocks).toHaveLength(4);
    expect(mtrrCover(0x1000n, 0x10000n, 2)).toEqual({
      blocks: [
        { base: 0x1000n, size: 0x1000n },
        { base: 0x2000n, size: 0x2000n },
      ],
      coveredTo: 0x4000n,
    });
  });

  it('covers an empty window with nothing', () => {
    expect(mtrrCover(0n, 0n, 8)).toEqual({ blocks: [], coveredTo: 0n });
    expect(mtrrCover(0xf000_0000n, 0xf000_0000n, 8).blocks).toEqual([]);
  });

  it('refuses windows not on 4 KiB bounds or reversed', () => {
    expect(() => mtrrCover(0x800n, 0x1000n, 8)).toThrow(InvalidArgumentError);
    expect(() => mtrrCover(0x2000n, 0x1000n, 8)).toThrow(InvalidArgumentError);
  });
});

describe('guestMtrrState (cacheattr_init)', () => {
  const state = guestMtrrState({ pciMemStart: 0xf000_0000n, pciMemEnd: 0xfc00_0000n, ...noHigh });

  it('enables MTRRs with default WB and the fixed ranges WB except 0xA0000-0xBFFFF WC', () => {
    expect(state).toMatchObject({ enabled: true, fixedEnabled: true, defaultType: 'WB', variableCount: 8 });
    expect(mtrrGetType(state, paddr(0x9f000n), 0)).toBe('WB');
    expect(mtrrGetType(state, paddr(0xa0000n), 0)).toBe('WC');
    expect(mtrrGetType(state, paddr(0xbf000n), 0)).toBe('WC');
    expect(mtrrGetType(state, paddr(0xc0000n), 0)).toBe('WB');
  });

  it('makes the hole UC and leaves [0xfc000000, 4 GiB) and RAM WB', () => {
    expect(mtrrGetType(state, paddr(0xf000_0000n), 0)).toBe('UC');
    expect(mtrrGetType(state, paddr(0xfbff_f000n), 0)).toBe('UC');
    expect(mtrrGetType(state, paddr(0xfc00_0000n), 0)).toBe('WB');
    expect(mtrrGetType(state, paddr(0xfee0_0000n), 0)).toBe('WB');
    expect(mtrrGetType(state, paddr(0x1000_0000n), 0)).toBe('WB');
  });

  it('covers the high window after the low one, within the 8 pairs', () => {
    const both = guestMtrrState({
      pciMemStart: 0xc000_0000n,
      pciMemEnd: 0xfc00_0000n,
      pciHiMemStart: 0x2_0000_0000n,
      pciHiMemEnd: 0x4_0000_0000n,
    });
    expect(both.variableRanges.filter((r) => r.valid)).toHaveLength(5);
    expect(mtrrGetType(both, paddr(0x3_ffff_f000n), 0)).toBe('UC');
    expect(mtrrGetType(both, paddr(0x4_0000_0000n), 0)).toBe('WB');
  });

  it('leaves what 8 pairs cannot cover WB (hvmloader gives up, it does not overlap ranges)', () => {
    // [0xf0001000, 0xfc000000) needs many pairs: its start is only 4 KiB aligned.
    const ragged = guestMtrrState({ pciMemStart: 0xf000_1000n, pciMemEnd: 0xfc00_0000n, ...noHigh });
    expect(ragged.variableRanges.every((r) => r.valid)).toBe(true);
    expect(mtrrGetType(ragged, paddr(0xf000_1000n), 0)).toBe('UC');
    expect(mtrrGetType(ragged, paddr(0xfb00_0000n), 0)).toBe('WB');
  });

  it('without WC support makes the VGA window WB; without fixed ranges leaves them off', () => {
    const noWc = guestMtrrState(
      { pciMemStart: 0xf000_0000n, pciMemEnd: 0xfc00_0000n, ...noHigh },
      { writeCombining: false },
    );
    expect(mtrrGetType(noWc, paddr(0xa0000n), 0)).toBe('WB');
    const noFixed = guestMtrrState(
      { pciMemStart: 0xf000_0000n, pciMemEnd: 0xfc00_0000n, ...noHigh },
      { fixedRanges: false },
    );
    expect(noFixed.fixedEnabled).toBe(false);
    expect(mtrrGetType(noFixed, paddr(0xa0000n), 0)).toBe('WB'); // the variable ranges' default
  });

  it('without MTRR support programs nothing: MTRRs disabled, everything UC', () => {
    const none = guestMtrrState(
      { pciMemStart: 0xf000_0000n, pciMemEnd: 0xfc00_0000n, ...noHigh },
      { mtrrSupported: false },
    );
    expect(none.enabled).toBe(false);
    expect(mtrrGetType(none, paddr(0x1000n), 0)).toBe('UC');
  });

  it('honours a smaller variable count', () => {
    const two = guestMtrrState(
      { pciMemStart: 0xc000_0000n, pciMemEnd: 0xfc00_0000n, ...noHigh },
      { variableCount: 2 },
    );
    expect(two.variableRanges.map((r) => r.base)).toEqual([0xc000_0000n, 0xe000_0000n]);
    expect(mtrrGetType(two, paddr(0xf000_0000n), 0)).toBe('WB');
  });
});

describe('mtrrLayoutJson', () => {
  it('gives the trace format: valid ranges with sizes, one fixed type when uniform', () => {
    const json = mtrrLayoutJson(
      guestMtrrState(
        { pciMemStart: 0xf000_0000n, pciMemEnd: 0xfc00_0000n, ...noHigh },
        { writeCombining: false },
      ),
    );
    expect(json).toEqual({
      enabled: true,
      fixedEnabled: true,
      defaultType: 'WB',
      fixed: 'WB',
      variable: [
        { base: '0xf0000000', size: '0x8000000', type: 'UC' },
        { base: '0xf8000000', size: '0x4000000', type: 'UC' },
      ],
    });
  });

  it('lists all 88 fixed types when they differ', () => {
    const json = mtrrLayoutJson(
      guestMtrrState({ pciMemStart: 0xf000_0000n, pciMemEnd: 0xfc00_0000n, ...noHigh }),
    );
    expect(Array.isArray(json.fixed) && json.fixed.length).toBe(88);
  });

  it('refuses something that is not an MtrrState', () => {
    expect(() => mtrrLayoutJson({} as MtrrState)).toThrow(InvalidArgumentError);
  });
});
