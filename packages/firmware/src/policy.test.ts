import { InvalidArgumentError } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { hvmloaderOrder, mmioDemand, placementUnits, roundUp } from './policy.js';
import type { ScannedBar } from './scan.js';

type BarArgs = [devfn: number, index: number, size: bigint, extra?: Partial<ScannedBar>];

/** Scanned BARs in discovery order (`seq` is the position). */
function scanned(...list: BarArgs[]): ScannedBar[] {
  return list.map(([devfn, index, size, extra], seq) => bar(devfn, index, size, seq, extra));
}

function bar(
  devfn: number,
  index: number,
  size: bigint,
  seq: number,
  extra: Partial<ScannedBar> = {},
): ScannedBar {
  return {
    devfn,
    index,
    reg: index === 6 ? 0x30 : 0x10 + 4 * index,
    kind: 'mem32',
    size,
    memory: true,
    is64: false,
    prefetchable: false,
    original: 0,
    originalUpper: 0,
    seq,
    ...extra,
  };
}

const noHost = (): undefined => undefined;
const ids = (units: ReturnType<typeof placementUnits>): string[] =>
  units.map((u) => u.members.map((m) => `${m.bar.devfn}/${m.bar.index}`).join('+'));

describe('hvmloaderOrder', () => {
  it('sorts by descending size, equal sizes in discovery order (stable)', () => {
    const bars = scanned([1, 0, 0x100n], [2, 0, 0x1000n], [3, 0, 0x100n], [4, 0, 0x1000n]);
    expect(hvmloaderOrder(bars).map((b) => b.devfn)).toEqual([2, 4, 1, 3]);
  });
});

describe('placementUnits', () => {
  const bars = scanned(
    [8, 0, 0x100n],
    [8, 1, 0x2000n],
    [16, 0, 0x80n],
    [16, 1, 0x20n, { is64: true, kind: 'mem64' }],
    [8, 2, 0x40n, { memory: false, kind: 'io' }],
  );

  it('hvmloader: one unit per BAR, its own size', () => {
    const units = placementUnits('hvmloader', bars, noHost);
    expect(ids(units)).toEqual(['8/1', '8/0', '16/0', '8/2', '16/1']);
    expect(units.map((u) => u.size)).toEqual([0x2000n, 0x100n, 0x80n, 0x40n, 0x20n]);
  });

  it('seabios: memory BARs take at least 4 KiB; I/O BARs keep their size', () => {
    const units = placementUnits('seabios', bars, noHost);
    expect(units.map((u) => [ids([u])[0], u.size])).toEqual([
      ['8/1', 0x2000n],
      ['8/0', 0x1000n],
      ['16/0', 0x1000n],
      ['8/2', 0x40n],
      ['16/1', 0x1000n],
    ]);
  });

  it('pageAligned: sub-page BARs last, by device, the last of each group padded to its page', () => {
    const units = placementUnits('pageAligned', bars, noHost);
    expect(ids(units)).toEqual(['8/1', '8/2', '8/0', '16/0', '16/1']);
    expect(units.map((u) => u.room)).toEqual([0x2000n, 0x40n, 0x1000n, 0x80n, 0x1000n - 0x80n]);
  });

  it('congruent: sub-page BARs of one host page form a 4 KiB unit keeping their offsets; 2 MiB targets', () => {
    const hosts = new Map<string, bigint>([
      ['8:0', 0xd192_4600n],
      ['16:0', 0xd192_4080n],
      ['16:1', 0x70_5000_0020n],
      ['8:1', 0xd190_2000n],
    ]);
    const units = placementUnits('congruent', bars, (b) => hosts.get(`${b.devfn}:${b.index}`));
    expect(ids(units)).toEqual(['8/1', '8/0+16/0', '16/1', '8/2']);
    const page = units[1]!;
    expect(page).toMatchObject({ size: 0x1000n, target: 0x12_4000n, owner: undefined, is64: false });
    expect(page.members.map((m) => m.offset)).toEqual([0x600n, 0x80n]);
    expect(units[0]!.target).toBe(0x10_2000n);
    expect(units[2]).toMatchObject({ size: 0x1000n, is64: true, target: 0n, owner: 16 });
    // The page-only plan: same units, no 2 MiB targets.
    expect(
      placementUnits('congruent', bars, (b) => hosts.get(`${b.devfn}:${b.index}`), false).map(
        (u) => u.target,
      ),
    ).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('refuses an unknown policy', () => {
    expect(() => placementUnits('linux' as 'hvmloader', bars, noHost)).toThrow(InvalidArgumentError);
  });
});

describe('mmioDemand', () => {
  it('counts memory units and ROMs; a 64-bit unit over 1 GiB only sets bar64_relocate', () => {
    const units = placementUnits(
      'hvmloader',
      scanned(
        [8, 0, 0x1000n],
        [8, 6, 0x800n, { kind: 'rom', memory: false }], // a ROM counts even with its enable bit set
        [8, 1, 0x100n, { kind: 'io', memory: false }],
        [16, 0, 2n << 30n, { kind: 'mem64', is64: true }],
      ),
      noHost,
    );
    expect(mmioDemand(units)).toEqual({ mmioTotal: 0x1800n, bar64Relocate: true });
  });
});

describe('roundUp', () => {
  it.each([
    [0n, 0x1000n, 0n],
    [1n, 0x1000n, 0x1000n],
    [0x1000n, 0x1000n, 0x1000n],
    [0x1001n, 0x1000n, 0x2000n],
  ])('%s to %s is %s', (value, align, expected) => {
    expect(roundUp(value, align)).toBe(expected);
  });
});
