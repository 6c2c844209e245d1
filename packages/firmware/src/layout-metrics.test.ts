import { describe, expect, it } from 'vitest';
import { SEED_002_LAYOUT_1, SEED_002_LAYOUT_2 } from '../../../test/fixtures/seed-layouts.js';
import { compareLayouts, formatMetricsTable, sharedPages, superpageFramesOf } from './layout-metrics.js';
import type { DeviceLayout } from './layouts.js';
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
    // The last column: see the rangeset derivation below.
    expect(table[2]).toBe(
      '| seed 002 layout 1 | hvmloader | 6 / 6 | 0 | 6 / 6 | 0 / 295 (0.0 %) | 1.14 MiB of 192 MiB | 9 (295 / 0) | 6 / 15 / 0 / 3 (3) |',
    );
  });

  /**
   * Xen's rangeset calls when the guest firmware turns decoding on, derived by hand from
   * xen/drivers/vpci/header.c: `modify_bars` (per BAR that changes, in slot order: one
   * `rangeset_add_range`, one `rangeset_remove_range` per lower slot with a non-empty set; no e820
   * here; then per MSI-X structure one removal per non-empty set; then, for every enabled BAR of the
   * guest's other devices, `rangeset_overlaps_range` on all 7 slots and a removal where it overlaps)
   * and `vpci_process_pending` (one `rangeset_consume_ranges` per non-empty set). A guest's sets are
   * slots 0–5 with a memory type (no ROM); a 64-bit BAR's upper slot and I/O BARs have none.
   */
  const ops = (addRange: number, removeRange: number, overlapsRange: number, consumed: number) => ({
    new: 0,
    addRange,
    removeRange,
    overlapsRange,
    consumeRanges: consumed,
    rangesConsumed: consumed,
    purge: 0,
    destroy: 0,
  });

  it('layout 1: the MSI-X removal and the sub-page BARs (modify_bars), and seabios refused at slot 0', () => {
    // hvmloader, pageAligned and congruent place it alike: BAR5 f0000000 (256 frames), BAR4 f0100000,
    // BAR3 f0120000, BAR2 f0124000, BAR1 f0124400, BAR0 f0124600 (the last three in page f0124, host
    // offsets kept). Slots 0–5 each add (6); lower-slot removals 0 + 1 (empties BAR0) + 1 (BAR1 only:
    // BAR0 is empty; empties BAR1) + 1 + 2 + 3 = 8; the MSI-X table (page f0124) from BAR2 (emptied),
    // BAR3, BAR4, BAR5 = 4, the PBA from BAR3–5 = 3: 15 removals. One device: no overlap loop work.
    // BAR3–5 are left, one range each: 3 consume calls using up 3 ranges.
    for (const policy of ['hvmloader', 'pageAligned', 'congruent'])
      expect(row('seed 002 layout 1', policy).xenCost.rangesets).toEqual(ops(6, 15, 0, 3));
    // seabios puts BAR0 at f0126000 (host offset 0x600): slot 0 fails the page-offset check, which
    // comes before its rangeset_add_range, so modify_bars returns -EINVAL having called nothing.
    expect(row('seed 002 layout 1', 'seabios').xenCost.rangesets).toEqual(ops(0, 0, 0, 0));
  });

  it("layout 2: the overlap loop over the guest's devices grows with each device turned on", () => {
    // Four devices, each BAR0 (mem32, own page) and BAR2 (mem64); decoding on in devfn order, each
    // map done before the next. hvmloader and congruent: the BAR2s of devices 0–2 share one page,
    // device 3's 256 MiB BAR2 and the BAR0s have their own.
    // dev0: 2 adds, 1 lower removal (BAR2 from BAR0's set); no enabled BAR elsewhere; 2 consumes.
    // dev1: 2 adds, 1 lower removal; dev0's 2 enabled BARs: 14 overlaps, dev0's BAR2 overlaps dev1's
    // BAR2 (1 removal, empties it); 1 consume (BAR0).
    // dev2: as dev1 with dev1's 2 enabled BARs too: 28 overlaps, 1 overlap removal (dev1's BAR2 finds
    // the set empty already); 1 consume.
    // dev3: 2 adds, 1 lower removal; 3 devices × 2 enabled BARs: 42 overlaps, none overlapping; 2
    // consumes. Total: 8 adds, 6 removals, 84 overlaps, 6 consumes.
    for (const policy of ['hvmloader', 'congruent'])
      expect(row('seed 002 layout 2', policy).xenCost.rangesets).toEqual(ops(8, 6, 84, 6));
    // seabios and pageAligned put the BAR2s of devices 1 and 2 on their own pages, losing the host
    // offsets 0x20 and 0x40: their modify_bars adds BAR0 and fails at BAR2 (no BAR enabled, no
    // consume). dev0 as above (2, 1, 0, 2); dev3 meets only dev0's 2 enabled BARs (2, 1, 14, 2).
    // Total: 2 + 1 + 1 + 2 = 6 adds, 2 removals, 14 overlaps, 4 consumes.
    for (const policy of ['seabios', 'pageAligned'])
      expect(row('seed 002 layout 2', policy).xenCost.rangesets).toEqual(ops(6, 2, 14, 4));
  });

  it('a layout of more than 32 functions does not fit one guest (32 virtual slots): no rangeset counts, "-"', () => {
    const many: DeviceLayout = {
      name: 'many',
      devices: Array.from({ length: 33 }, (_, i) => ({
        sbdf: `00:${(i >> 3).toString(16).padStart(2, '0')}.${i & 7}`,
        bars: [{ type: 'mem32' as const, size: 0x1000n, addr: 0xe000_0000n + BigInt(i) * 0x1000n }],
      })),
    };
    const [first] = compareLayouts([many], {}, ['hvmloader']);
    expect(first!.xenCost.rangesets).toBeUndefined();
    expect(formatMetricsTable([first!]).split('\n')[2]!.endsWith('| - |')).toBe(true);
  });
});
