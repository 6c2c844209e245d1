/**
 * Arm's MMIO mapping, each expectation worked out by hand from Xen's source: mmu/p2m.c
 * `p2m_set_entry` (block order from `mfn | gfn | nr`), `__p2m_set_entry` /
 * `p2m_get_root_pointer` (EINVAL past the root), p2m.c `p2m_remove_mapping` (EILSEQ for RAM) and
 * `setup_virt_paging`'s `pa_range_info` (the root's reach).
 */
import { describe, expect, it } from 'vitest';
import {
  ARM_PA_BITS,
  armBlockOrder,
  armMapMmioRegions,
  armP2mAddressBits,
  armUnmapMmioRegions,
} from './arm-mmio.js';
import { InvalidArgumentError } from './errors.js';
import { gfn, mfn } from './frame.js';
import { P2m } from './p2m.js';

/** The extents as [gfn, count, mfn, order] tuples. */
function extents(p2m: P2m): [number, number, number, number][] {
  return [...p2m.extents()].map((e) => [e.gfn, e.count, e.mfn, e.order]);
}

describe('armBlockOrder (p2m_set_entry: mask = mfn | gfn | nr)', () => {
  it.each([
    // gfn, mfn, nr, order
    [0x40000, 0x80000, 0x40000, 18], // all three 1G-aligned: FIRST_ORDER
    [0x40000, 0x80000, 0x40200, 9], // nr not a 1G multiple: SECOND_ORDER
    [0x40000, 0x80200, 0x40000, 9], // mfn only 2M-aligned
    [0xe0000, 0xfe000, 0x100, 0], // seed 004's BAR0: 256 frames, nr not 2M: THIRD_ORDER
    [0x200, 0x201, 0x200, 0], // mfn not 2M-aligned
    [0x200, undefined, 0x200, 9], // removing: INVALID_MFN is left out of the mask
  ])('gfn %s mfn %s nr %s: order %s', (g, m, nr, order) => {
    expect(armBlockOrder(g, m, nr)).toBe(order);
  });

  it('refuses a count of 0 (the loop never asks) and a non-frame', () => {
    expect(() => armBlockOrder(0, 0, 0)).toThrow(InvalidArgumentError);
    expect(() => armBlockOrder(-1, 0, 1)).toThrow(InvalidArgumentError);
  });
});

describe('armMapMmioRegions (map_mmio_regions → p2m_set_entry, p2m_mmio_direct_dev)', () => {
  it('maps the whole range in one call, no partial progress: 256 4K leaves for a 1 MiB BAR not 2M-sized', () => {
    const p2m = new P2m();
    expect(armMapMmioRegions(p2m, gfn(0xe0000), 0x100, mfn(0xfe000))).toEqual({ ok: true });
    expect(extents(p2m)).toEqual([[0xe0000, 0x100, 0xfe000, 0]]);
    expect(p2m.writes).toBe(0x100);
    expect(p2m.lookup(gfn(0xe0002)).type).toBe('mmio_direct');
  });

  it('a 2M step that reaches a 1G boundary with 1G left goes on in 1G blocks', () => {
    const p2m = new P2m();
    // Step 1: gfn 0x3fe00 is 2M- but not 1G-aligned: 2M. Then gfn 0x40000, mfn 0x80000, nr 0x40000: 1G.
    expect(armMapMmioRegions(p2m, gfn(0x3fe00), 0x40200, mfn(0x7fe00))).toEqual({ ok: true });
    expect(extents(p2m)).toEqual([
      [0x3fe00, 0x200, 0x7fe00, 9],
      [0x40000, 0x40000, 0x80000, 18],
    ]);
    expect(p2m.writes).toBe(2);
  });

  it('a 4K step that reaches a 2M boundary goes on in 2M blocks', () => {
    const p2m = new P2m();
    // mask 0x1ff | 0x1ff | 0x201: 4K; then gfn 0x200, mfn 0x200, nr 0x200: 2M.
    expect(armMapMmioRegions(p2m, gfn(0x1ff), 0x201, mfn(0x1ff))).toEqual({ ok: true });
    expect(extents(p2m)).toEqual([
      [0x1ff, 1, 0x1ff, 0],
      [0x200, 0x200, 0x200, 9],
    ]);
  });

  it('a range 1G-aligned but one 2M block longer stays in 2M blocks all along (nr is in the mask)', () => {
    const p2m = new P2m();
    expect(armMapMmioRegions(p2m, gfn(0x40000), 0x40200, mfn(0x80000))).toEqual({ ok: true });
    expect(extents(p2m)).toEqual([[0x40000, 0x40200, 0x80000, 9]]);
    expect(p2m.writes).toBe(0x201);
  });

  it('replaces RAM without a word (no crash, unlike x86 over a special entry)', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(0x10), 0, mfn(0x500), 'ram_rw');
    expect(armMapMmioRegions(p2m, gfn(0x10), 1, mfn(0xfe000))).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0x10))).toMatchObject({ mfn: 0xfe000, type: 'mmio_direct' });
    expect(p2m.events).toEqual([]);
    expect(p2m.crashed).toBe(false);
  });

  it('past the root (p2m_get_root_pointer: NULL) fails with EINVAL, the blocks before it stay', () => {
    const p2m = new P2m({ addressBits: armP2mAddressBits(40) }); // GFNs below 2^28
    const rc = armMapMmioRegions(p2m, gfn(2 ** 28 - 2), 4, mfn(0x1000));
    expect(rc).toEqual({ ok: false, code: 'EINVAL', written: 2 });
    expect(extents(p2m)).toEqual([[2 ** 28 - 2, 2, 0x1000, 0]]);
  });

  it('a failed table allocation (fault injection) stops at that block with ENOMEM', () => {
    const p2m = new P2m({ failAt: (n) => n === 3 });
    const rc = armMapMmioRegions(p2m, gfn(0x100), 5, mfn(0x900));
    expect(rc).toEqual({ ok: false, code: 'ENOMEM', written: 2 });
    expect(extents(p2m)).toEqual([[0x100, 2, 0x900, 0]]);
  });
});

describe('armUnmapMmioRegions (p2m_remove_mapping)', () => {
  it('removes whatever the range maps, another MMIO frame or a hole alike', () => {
    const p2m = new P2m();
    armMapMmioRegions(p2m, gfn(0x200), 0x200, mfn(0x400)); // one 2M block
    // Removing 4K from the middle splits the block (p2m_split_superpage), mfn not compared.
    expect(armUnmapMmioRegions(p2m, gfn(0x210), 1, mfn(0xdead))).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0x210)).mfn).toBeUndefined();
    expect(p2m.lookup(gfn(0x211))).toMatchObject({ mfn: 0x411, order: 0 });
    expect(armUnmapMmioRegions(p2m, gfn(0x5000), 3, mfn(0x1))).toEqual({ ok: true });
  });

  it('RAM, grant or foreign entries in the range: EILSEQ, nothing removed (the BAR frames are not mfn_valid)', () => {
    for (const type of ['ram_rw', 'ram_ro', 'grant_map_rw', 'grant_map_ro', 'map_foreign'] as const) {
      const p2m = new P2m();
      armMapMmioRegions(p2m, gfn(0x100), 2, mfn(0x900));
      p2m.setEntry(gfn(0x102), 0, mfn(0x902), type);
      expect(armUnmapMmioRegions(p2m, gfn(0x100), 3, mfn(0x900))).toEqual({
        ok: false,
        code: 'EILSEQ',
        written: 0,
      });
      expect(p2m.mappedFrames).toBe(3);
    }
  });

  it('a 64 GiB BAR maps and unmaps as a few extents, not 16 Mi entries', () => {
    const p2m = new P2m();
    const frames = 2 ** 24; // 64 GiB
    expect(armMapMmioRegions(p2m, gfn(2 ** 26), frames, mfn(2 ** 26))).toEqual({ ok: true });
    expect(extents(p2m)).toEqual([[2 ** 26, frames, 2 ** 26, 18]]);
    expect(armUnmapMmioRegions(p2m, gfn(2 ** 26), frames, mfn(2 ** 26))).toEqual({ ok: true });
    expect(p2m.extentCount).toBe(0);
  });
});

describe('armP2mAddressBits (setup_virt_paging, pa_range_info)', () => {
  it.each([
    [36, 39],
    [40, 40],
    [42, 42],
    [44, 48],
    [48, 48],
    [52, 48],
  ])('PA %s bits: GFNs below 2^(%s - 12)', (pa, bits) => {
    expect(armP2mAddressBits(pa)).toBe(bits);
  });

  it('refuses a size the table does not list', () => {
    expect(ARM_PA_BITS).toEqual([36, 40, 42, 44, 48, 52]);
    expect(() => armP2mAddressBits(39)).toThrow(/on Arm one of 36, 40, 42, 44, 48, 52/);
  });
});

describe("Xen's cost of Arm's MMIO calls (mmioCost: one call per map_mmio_regions, leaves by block order)", () => {
  it('a 4 MiB run, 2M-aligned: one call, two 2M blocks (nr 0x400 then 0x200 keep SECOND_ORDER)', () => {
    const p2m = new P2m();
    expect(armMapMmioRegions(p2m, gfn(0x80000), 0x400, mfn(0x100000)).ok).toBe(true);
    expect(p2m.mmioCost).toEqual({ mapCalls: 1, unmapCalls: 0, leaves4K: 0, leaves2M: 2, leaves1G: 0 });
  });

  it('4 MiB and one page: nr is odd in every pass, so every block is 4K (mask = mfn | gfn | nr)', () => {
    const p2m = new P2m();
    expect(armMapMmioRegions(p2m, gfn(0x80000), 0x401, mfn(0x100000)).ok).toBe(true);
    expect(armUnmapMmioRegions(p2m, gfn(0x80000), 0x401, mfn(0x100000)).ok).toBe(true);
    expect(p2m.mmioCost).toEqual({ mapCalls: 1, unmapCalls: 1, leaves4K: 0x802, leaves2M: 0, leaves1G: 0 });
  });
});
