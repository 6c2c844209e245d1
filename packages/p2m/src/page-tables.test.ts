/**
 * Kept page-table splits. Expected values from Xen (xen/arch/x86/mm/p2m.c, p2m-ept.c, p2m-pt.c):
 * - `ept_set_entry` / `p2m_pt_set_entry` walk down to the written level allocating missing tables
 *   (`ept_next_level`, `p2m_next_level` with read_only = 0), clear entries included, and free an
 *   intermediate table only when a leaf of its own level replaces the entry pointing to it.
 * - `ept_get_entry` / `p2m_pt_get_entry` report, for a hole, the level where the walk met an empty
 *   entry: 0 inside an L1 table, 9 inside an L2 table.
 * - `set_typed_p2m_entry` / `clear_mmio_p2m_entry` return `cur_order + 1` when that order is below the
 *   chunk's, and `map_mmio_regions` retries the chunk at it; `mmio_order` looks only at gfn | mfn and
 *   the count, never at the existing mapping. One call does at most 64 chunks.
 */
import { describe, expect, it } from 'vitest';
import { gfn, mfn } from './frame.js';
import { mapMmio, unmapMmio } from './mmio.js';
import { P2m, type P2mTables } from './p2m.js';

const TABLES: readonly P2mTables[] = ['ept', 'pt'];

describe.each(TABLES)('a 2M region once written in 4K keeps its L1 table (%s)', (tables) => {
  it('a hole there reads as order 0 (ept_get_entry / p2m_pt_get_entry stop in the L1 table)', () => {
    const p2m = new P2m({ tables });
    expect(p2m.lookup(gfn(0x80000)).order).toBe(18);
    expect(mapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005))).toEqual({ ok: true, done: true });
    expect(unmapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005))).toEqual({ ok: true, done: true });
    expect(p2m.extentCount).toBe(0);
    // The 2M region keeps its L1 table; the rest of the 1G region has an L2 table and no L1.
    expect(p2m.lookup(gfn(0x80000)).order).toBe(0);
    expect(p2m.lookup(gfn(0x801ff)).order).toBe(0);
    expect(p2m.lookup(gfn(0x80200)).order).toBe(9);
    expect(p2m.lookup(gfn(0xc0000)).order).toBe(18);
  });

  it('map_mmio_regions then maps that 2M in 4K leaves, 64 a call (set_typed_p2m_entry returns cur_order + 1)', () => {
    const p2m = new P2m({ tables });
    mapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005));
    unmapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005));
    // mmio_order(0x80000 | 0xf0000, 1024) = 9, but get_entry answers 0: retried at 4K; the next 63
    // chunks are misaligned (order 0). 64 chunks: 64 frames.
    expect(mapMmio(p2m, gfn(0x80000), 1024, mfn(0xf0000))).toEqual({ ok: true, done: false, progress: 64 });
    expect([...p2m.extents()]).toEqual([
      { gfn: 0x80000, count: 64, mfn: 0xf0000, type: 'mmio_direct', order: 0 },
    ]);
    // 512 - 64 = 448 more 4K chunks: 7 calls of 64 finish the split region; the 8th call maps the
    // next 2M (no L1 table there) as one 2M leaf and is done.
    const results = [];
    for (let s = 64; s < 1024; ) {
      const rc = mapMmio(p2m, gfn(0x80000 + s), 1024 - s, mfn(0xf0000 + s));
      results.push(rc);
      s = rc.ok && !rc.done ? s + rc.progress : 1024;
    }
    expect(results).toHaveLength(8);
    expect(results[6]).toEqual({ ok: true, done: false, progress: 64 });
    expect(results[7]).toEqual({ ok: true, done: true });
    expect([...p2m.extents()]).toEqual([
      { gfn: 0x80000, count: 512, mfn: 0xf0000, type: 'mmio_direct', order: 0 },
      { gfn: 0x80200, count: 512, mfn: 0xf0200, type: 'mmio_direct', order: 9 },
    ]);
    // unmap_mmio_regions: clear_mmio_p2m_entry finds 4K leaves there (cur_order 0): 4K chunks again.
    expect(unmapMmio(p2m, gfn(0x80000), 1024, mfn(0xf0000))).toEqual({ ok: true, done: false, progress: 64 });
  });

  it('a fresh 2M region is mapped with one 2M leaf (the contrast: no L1 table)', () => {
    const p2m = new P2m({ tables });
    expect(mapMmio(p2m, gfn(0x80000), 512, mfn(0xf0000))).toEqual({ ok: true, done: true });
    expect(p2m.lookup(gfn(0x80000)).order).toBe(9);
  });

  it('a 2M leaf written over the region frees the L1 table (ept_set_entry old_entry / p2m_pt_set_entry intermediate_entry)', () => {
    const p2m = new P2m({ tables });
    mapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005));
    unmapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005));
    expect(p2m.setEntry(gfn(0x80000), 9, mfn(0x100000), 'ram_rw')).toEqual({ ok: true });
    expect(p2m.clearEntry(gfn(0x80000), 9)).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0x80000)).order).toBe(9);
    expect(mapMmio(p2m, gfn(0x80000), 512, mfn(0xf0000))).toEqual({ ok: true, done: true });
    expect(p2m.lookup(gfn(0x80000)).order).toBe(9);
  });

  it('a 1G leaf frees the L2 and L1 tables under it', () => {
    const p2m = new P2m({ tables, superpages1G: true });
    mapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005));
    unmapMmio(p2m, gfn(0x80005), 1, mfn(0xf0005));
    expect(p2m.setEntry(gfn(0x80000), 18, mfn(0x100000), 'ram_rw')).toEqual({ ok: true });
    expect(p2m.clearEntry(gfn(0x80000), 18)).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0x80005)).order).toBe(18);
  });
});

describe('splitting a 1G leaf for a 4K write', () => {
  const build = (tables: P2mTables): P2m => {
    const p2m = new P2m({ tables, superpages1G: true });
    p2m.setEntry(gfn(0x40000), 18, mfn(0x100000), 'ram_rw');
    p2m.setEntry(gfn(0x40205), 0, mfn(0x5), 'ram_rw');
    return p2m;
  };

  it('EPT splits all of it to 4K (ept_split_super_page recurses over every entry down to the target)', () => {
    expect([...build('ept').extents()]).toEqual([
      { gfn: 0x40000, count: 0x205, mfn: 0x100000, type: 'ram_rw', order: 0 },
      { gfn: 0x40205, count: 1, mfn: 0x5, type: 'ram_rw', order: 0 },
      { gfn: 0x40206, count: 0x40000 - 0x206, mfn: 0x100206, type: 'ram_rw', order: 0 },
    ]);
  });

  it('p2m-pt splits it to 2M leaves and only the 2M holding the write to 4K (p2m_next_level, level 2 then 1)', () => {
    expect([...build('pt').extents()]).toEqual([
      { gfn: 0x40000, count: 0x200, mfn: 0x100000, type: 'ram_rw', order: 9 },
      { gfn: 0x40200, count: 5, mfn: 0x100200, type: 'ram_rw', order: 0 },
      { gfn: 0x40205, count: 1, mfn: 0x5, type: 'ram_rw', order: 0 },
      { gfn: 0x40206, count: 0x1fa, mfn: 0x100206, type: 'ram_rw', order: 0 },
      { gfn: 0x40400, count: 0x40000 - 0x400, mfn: 0x100400, type: 'ram_rw', order: 9 },
    ]);
  });

  it('p2m-pt: a 4K write in the middle of a 1G leaf that is itself in the middle of an extent', () => {
    const p2m = new P2m({ tables: 'pt', superpages1G: true });
    p2m.setEntry(gfn(0x40000), 18, mfn(0x100000), 'ram_rw');
    p2m.setEntry(gfn(0x80000), 18, mfn(0x140000), 'ram_rw');
    p2m.setEntry(gfn(0xc0000), 18, mfn(0x180000), 'ram_rw');
    p2m.setEntry(gfn(0x80205), 0, mfn(0x5), 'ram_rw');
    expect([...p2m.extents()]).toEqual([
      { gfn: 0x40000, count: 0x40000, mfn: 0x100000, type: 'ram_rw', order: 18 },
      { gfn: 0x80000, count: 0x200, mfn: 0x140000, type: 'ram_rw', order: 9 },
      { gfn: 0x80200, count: 5, mfn: 0x140200, type: 'ram_rw', order: 0 },
      { gfn: 0x80205, count: 1, mfn: 0x5, type: 'ram_rw', order: 0 },
      { gfn: 0x80206, count: 0x1fa, mfn: 0x140206, type: 'ram_rw', order: 0 },
      { gfn: 0x80400, count: 0x40000 - 0x400, mfn: 0x140400, type: 'ram_rw', order: 9 },
      { gfn: 0xc0000, count: 0x40000, mfn: 0x180000, type: 'ram_rw', order: 18 },
    ]);
  });
});
