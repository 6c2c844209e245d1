import { describe, expect, it } from 'vitest';
import { SEED_002_LAYOUT_1, SEED_002_LAYOUT_2 } from '../../../test/fixtures/seed-layouts.js';
import { compareLayouts, formatMetricsTable, sharedPages, superpageFramesOf } from './layout-metrics.js';
import type { BarPlacement } from './pci-setup.js';

function bar(devfn: number, decodes: bigint, size: bigint, hostAddr?: bigint): BarPlacement {
  return {
    devfn,
    sbdf: '',
    index: 0,
    reg: 0x10,
    kind: 'mem32',
    size,
    prefetchable: false,
    window: 'low',
    addr: decodes,
    decodes,
    hostAddr,
    congruence: undefined,
  };
}

describe('sharedPages', () => {
  it('counts pages holding memory BARs of two or more devices', () => {
    expect(sharedPages([bar(1, 0x1000n, 0x20n), bar(1, 0x1020n, 0x20n)])).toBe(0); // one device
    expect(sharedPages([bar(1, 0x1000n, 0x20n), bar(2, 0x1020n, 0x20n), bar(3, 0x1040n, 0x20n)])).toBe(1);
    expect(sharedPages([bar(1, 0x1000n, 0x1000n), bar(2, 0x2000n, 0x20n)])).toBe(0);
  });
});

describe('superpageFramesOf', () => {
  it('counts the frames a fresh p2m maps in 2 MiB leaves', () => {
    // Costs from Xen's map_mmio_regions: at most 64 chunks a call, each of mmio_order(gfn | mfn, nr).
    const cost = (mapCalls: number, leaves4K: number, leaves2M: number) => ({
      mapCalls,
      unmapCalls: 0,
      leaves4K,
      leaves2M,
      leaves1G: 0,
    });
    // 4 MiB, guest and host both 2 MiB aligned: all of it; 2 chunks of 2 MiB, one call.
    expect(superpageFramesOf(bar(1, 0xe000_0000n, 0x40_0000n, 0x1_0020_0000n))).toEqual({
      frames: 1024,
      superpage: 1024,
      cost: cost(1, 0, 2),
    });
    // Host 4 KiB off the 2 MiB grid: none; 1024 chunks of 4 KiB, 16 calls.
    expect(superpageFramesOf(bar(1, 0xe000_0000n, 0x40_0000n, 0x1_0020_1000n))).toEqual({
      frames: 1024,
      superpage: 0,
      cost: cost(16, 1024, 0),
    });
    // 6 MiB from 1 MiB: the two whole 2 MiB blocks inside it; 256 + 2 + 256 = 514 chunks, 9 calls.
    expect(superpageFramesOf(bar(1, 0xe010_0000n, 0x60_0000n, 0x1_0010_0000n))).toEqual({
      frames: 1536,
      superpage: 1024,
      cost: cost(9, 512, 2),
    });
    expect(superpageFramesOf(bar(1, 0xe000_0000n, 0x1000n))).toBeUndefined();
  });
});

describe('compareLayouts on seed 002', () => {
  const rows = compareLayouts([SEED_002_LAYOUT_1, SEED_002_LAYOUT_2]);
  const row = (layout: string, policy: string) =>
    rows.find((r) => r.layout === layout && r.policy === policy)!;

  it('places everything under every policy', () => {
    for (const r of rows) expect(r.placed).toBe(r.memoryBars);
  });

  it('hvmloader puts the three 32-byte testdev BARs in one page; pageAligned and seabios never', () => {
    expect(row('seed 002 layout 2', 'hvmloader').sharedPages).toBe(1);
    expect(row('seed 002 layout 2', 'pageAligned').sharedPages).toBe(0);
    expect(row('seed 002 layout 2', 'seabios').sharedPages).toBe(0);
  });

  it('congruent keeps every host page offset; seabios does not (layout 1: BAR1, BAR0)', () => {
    expect(row('seed 002 layout 1', 'congruent')).toMatchObject({ offsetKept: 6, withHost: 6 });
    expect(row('seed 002 layout 1', 'seabios')).toMatchObject({ offsetKept: 4, withHost: 6 });
    // Congruent mirrors the host: the testdevs' shared host page is one guest page again.
    expect(row('seed 002 layout 2', 'congruent')).toMatchObject({ offsetKept: 8, sharedPages: 1 });
  });

  it('formats a Markdown table with one row per layout and policy', () => {
    const table = formatMetricsTable(rows).split('\n');
    expect(table).toHaveLength(2 + rows.length);
    // Six BARs of 1, 1, 1, 4, 32 and 256 pages, all under 512 frames (4 KiB chunks, 64 a call):
    // 1 + 1 + 1 + 1 + 1 + 4 calls.
    expect(table[2]).toBe(
      '| seed 002 layout 1 | hvmloader | 6 / 6 | 0 | 6 / 6 | 0 / 295 (0.0 %) | 1.14 MiB of 192 MiB | 9 (295 / 0) |',
    );
  });
});
