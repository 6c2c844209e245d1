import { describe, expect, it } from 'vitest';
import { type AllocationInput, allocate, highWindowEnd } from './allocate.js';
import type { PlacementUnit } from './policy.js';
import type { ScannedBar } from './scan.js';

function unit(devfn: number, size: bigint, extra: Partial<PlacementUnit> = {}): PlacementUnit {
  const bar: ScannedBar = {
    devfn,
    index: 0,
    reg: 0x10,
    kind: 'mem32',
    size,
    memory: true,
    is64: false,
    prefetchable: false,
    original: 0,
    originalUpper: 0,
    seq: 0,
  };
  return {
    members: [{ bar, offset: 0n }],
    size,
    align: size,
    room: size,
    memory: true,
    is64: false,
    target: undefined,
    owner: devfn,
    ...extra,
  };
}

const input = (units: PlacementUnit[], extra: Partial<AllocationInput> = {}): AllocationInput => ({
  units,
  mmioTotal: units.reduce((s, u) => s + u.room, 0n),
  bar64Relocate: false,
  low: { base: 0xf000_0000n, max: 0xfc00_0000n },
  high: { base: 0x1_0000_0000n, max: 1n << 36n },
  io: { base: 0xc000n, max: 0x10000n },
  reserved: [],
  method: 'bump',
  pageOwnership: false,
  ...extra,
});

const addrs = (a: ReturnType<typeof allocate>): (bigint | undefined)[] => a.placements.map((p) => p.addr);

describe('allocate: bump (hvmloader)', () => {
  it('packs descending sizes from the hole start; small BARs of different devices share a page', () => {
    const a = allocate(input([unit(1, 0x1000n), unit(2, 0x20n), unit(3, 0x20n)]));
    expect(addrs(a)).toEqual([0xf000_0000n, 0xf000_1000n, 0xf000_1020n]);
  });

  it('pageAligned: a unit never starts in the last page of another device', () => {
    const a = allocate(
      input([unit(1, 0x1000n), unit(2, 0x20n), unit(2, 0x20n), unit(3, 0x20n)], { pageOwnership: true }),
    );
    expect(addrs(a)).toEqual([0xf000_0000n, 0xf000_1000n, 0xf000_1020n, 0xf000_2000n]);
  });

  it('sends a 64-bit unit high when the rest does not fit low, and rounds the window end', () => {
    const a = allocate(
      input([unit(1, 256n << 20n, { is64: true }), unit(2, 128n << 20n)], {
        bar64Relocate: true,
        high: { base: 0x1_1000_0000n, max: 1n << 36n },
      }),
    );
    expect(a.placements.map((p) => [p.window, p.addr])).toEqual([
      ['high', 0x1_1000_0000n],
      ['low', 0xf000_0000n],
    ]);
    expect([a.pciHiMemStart, a.pciHiMemEnd]).toEqual([0x1_1000_0000n, 0x1_2000_0000n]);
  });

  it('says "no space" for a unit past the window, and goes on with the next', () => {
    const a = allocate(input([unit(1, 128n << 20n), unit(2, 128n << 20n), unit(3, 64n << 20n)]));
    expect(addrs(a)).toEqual([0xf000_0000n, undefined, 0xf800_0000n]);
    expect(a.log).toEqual(['pci dev 00:2 bar 10 size 008000000: no space for resource!']);
  });

  it('steps over reserved regions, lowest ending first', () => {
    const reserved = [
      { addr: 0xf000_2000n, size: 0x1000n },
      { addr: 0xf000_0000n, size: 0x1000n },
    ];
    const a = allocate(input([unit(1, 0x1000n), unit(2, 0x1000n), unit(3, 0x1000n)], { reserved }));
    expect(addrs(a)).toEqual([0xf000_1000n, 0xf000_3000n, 0xf000_4000n]);
  });

  it('places I/O units in the I/O window', () => {
    const a = allocate(input([unit(1, 0x100n, { memory: false }), unit(2, 0x40n, { memory: false })]));
    expect(a.placements.map((p) => [p.window, p.addr])).toEqual([
      ['io', 0xc000n],
      ['io', 0xc100n],
    ]);
  });
});

describe('allocate: firstFit (congruent)', () => {
  it('puts a unit at its 2 MiB target in the lowest gap that holds it', () => {
    const a = allocate(
      input(
        [
          unit(1, 0x10_0000n, { target: 0x10_0000n }),
          unit(2, 0x10_0000n, { target: 0x10_0000n }),
          unit(3, 0x1000n),
        ],
        {
          method: 'firstFit',
        },
      ),
    );
    // Both 1 MiB units want offset 1 MiB in a 2 MiB block: the second takes the next block; the
    // 4 KiB one fills the first gap.
    expect(addrs(a)).toEqual([0xf010_0000n, 0xf030_0000n, 0xf000_0000n]);
  });

  it('falls back to the lowest aligned gap when no gap has the target', () => {
    const a = allocate(
      input([unit(1, 0x1000n, { target: 0x1f_f000n })], {
        method: 'firstFit',
        low: { base: 0xf000_0000n, max: 0xf010_0000n },
      }),
    );
    expect(addrs(a)).toEqual([0xf000_0000n]);
  });

  it('keeps reserved regions out', () => {
    const a = allocate(
      input([unit(1, 0x1000n)], { method: 'firstFit', reserved: [{ addr: 0xf000_0000n, size: 0x1000n }] }),
    );
    expect(addrs(a)).toEqual([0xf000_1000n]);
  });
});

describe('highWindowEnd', () => {
  it.each([
    [0n, 0n, 0n],
    [0x2_0000_0000n, 0x4_0000_0000n, 0x4_0000_0000n],
    [0x1_4000_0000n, 0x1_6000_0000n, 0x1_8000_0000n],
    [0x1_0000_0000n, 0x1_0000_1000n, 0x2_0000_0000n],
  ])('start %s used to %s ends at %s', (start, used, end) => {
    expect(highWindowEnd(start, used)).toBe(end);
  });
});
