import { gfn, mfn, P2m } from '@vpci/p2m';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MmioExtentsCache, type SortedRanges, wholeRuns } from './mmio-extents.js';

/** Sorted, non-overlapping ranges over frames 0 … 255. */
const ranges = fc
  .uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 8 })
  .map((points) => points.sort((a, b) => a - b))
  .map((points): SortedRanges => {
    const out: [number, number][] = [];
    for (let i = 0; i + 1 < points.length; i += 2) out.push([points[i]!, points[i + 1]!]);
    return out;
  });

/** A p2m from 4K writes: MMIO at any machine frame (so machine frames repeat), RAM, holes. */
const p2m = fc
  .array(
    fc.record({
      gfn: fc.integer({ min: 0, max: 255 }),
      count: fc.integer({ min: 1, max: 48 }),
      mfn: fc.integer({ min: 0, max: 63 }), // few machine frames: mappings of them overlap
      kind: fc.constantFrom('mmio_direct', 'ram_rw', 'hole'),
    }),
    { maxLength: 20 },
  )
  .map((writes) => {
    const map = new P2m();
    for (const w of writes) {
      for (let k = 0; k < w.count; k++) {
        if (w.kind === 'hole') map.clearEntry(gfn(w.gfn + k), 0);
        else map.setEntry(gfn(w.gfn + k), 0, mfn(w.mfn + k), w.kind);
      }
    }
    return map;
  });

const meets = (list: SortedRanges, first: number, last: number): boolean =>
  list.some(([s, e]) => s <= last && first <= e);

describe('mmioExtentsMeeting', () => {
  it('finds exactly the mmio_direct extents on the guest or machine frames, in gfn order', () => {
    const cache = new MmioExtentsCache();
    fc.assert(
      fc.property(p2m, ranges, ranges, (map, gfns, mfns) => {
        const expected = [...map.extents()].filter(
          (e) =>
            e.type === 'mmio_direct' &&
            (meets(gfns, e.gfn, e.gfn + e.count - 1) || meets(mfns, e.mfn, e.mfn + e.count - 1)),
        );
        // The first question makes the p2m's index by machine frame; the next searches it.
        for (let ask = 0; ask < 2; ask++) expect(cache.mmioExtentsMeeting(map, gfns, mfns)).toEqual(expected);
      }),
    );
  });

  it('finds a long mapping that an MMIO extent starting after it does not reach', () => {
    const cache = new MmioExtentsCache();
    const map = new P2m();
    for (let k = 0; k < 32; k++) map.setEntry(gfn(k), 0, mfn(100 + k), 'mmio_direct'); // mfn 100 … 131
    map.setEntry(gfn(64), 0, mfn(110), 'mmio_direct'); // starts later in mfn, ends before 120
    // The index made by the first question, then the index as the write below leaves it.
    expect(cache.mmioExtentsMeeting(map, [], [[120, 125]]).map((e) => e.gfn)).toEqual([0]);
    map.setEntry(gfn(80), 0, mfn(111), 'mmio_direct');
    expect(cache.mmioExtentsMeeting(map, [], [[120, 125]]).map((e) => e.gfn)).toEqual([0]);
  });

  it('is brought up to date after the p2m is written', () => {
    const cache = new MmioExtentsCache();
    const map = new P2m();
    map.setEntry(gfn(10), 0, mfn(100), 'mmio_direct');
    expect(cache.mmioExtents(map).map((e) => e.gfn)).toEqual([10]);
    map.setEntry(gfn(20), 0, mfn(50), 'mmio_direct');
    expect(cache.mmioExtentsMeeting(map, [], [[50, 50]]).map((e) => e.gfn)).toEqual([20]);
    map.clearEntry(gfn(10), 0);
    expect(cache.mmioExtents(map).map((e) => e.gfn)).toEqual([20]);
  });
});

describe('wholeRuns', () => {
  it('adds every mmio_direct extent continuing a given one in guest and machine frames, in gfn order', () => {
    // Two 2 MiB MMIO leaves at gfn 0 and 512, one extent until the 4K writes shatter the first (as
    // Xen's p2m_set_entry splits a superpage): then extents that still make one run.
    fc.assert(
      fc.property(p2m, fc.array(fc.nat(), { maxLength: 4 }), (map, picks) => {
        const leaves = new P2m();
        leaves.setEntry(gfn(0), 9, mfn(4096), 'mmio_direct');
        leaves.setEntry(gfn(512), 9, mfn(4608), 'mmio_direct');
        for (const e of map.extents())
          for (let k = 0; k < e.count; k++) leaves.setEntry(gfn(e.gfn + k), 0, mfn(e.mfn + k), e.type);
        const mmio = [...leaves.extents()].filter((e) => e.type === 'mmio_direct');
        const chosen = [...new Set(picks.map((i) => i % Math.max(1, mmio.length)))]
          .sort((a, b) => a - b)
          .flatMap((i) => (mmio[i] === undefined ? [] : [mmio[i]]));
        // The runs by a walk over every extent, then those holding a chosen one.
        const runs: (typeof mmio)[] = [];
        for (const e of mmio) {
          const run = runs.at(-1);
          const prev = run?.at(-1);
          if (prev !== undefined && prev.gfn + prev.count === e.gfn && prev.mfn + prev.count === e.mfn)
            run!.push(e);
          else runs.push([e]);
        }
        const expected = runs.filter((run) => run.some((e) => chosen.some((c) => c.gfn === e.gfn))).flat();
        expect(wholeRuns(leaves, chosen)).toEqual(expected);
      }),
    );
  });

  it('given the frames searched (every MMIO extent there listed), the same runs as by searching', () => {
    // The list answers for a frame beside an extent only where that frame was searched; a run
    // reaching past the searched frames is still followed by searches of the p2m.
    fc.assert(
      fc.property(p2m, ranges, (map, searched) => {
        const leaves = new P2m();
        leaves.setEntry(gfn(0), 9, mfn(4096), 'mmio_direct');
        leaves.setEntry(gfn(512), 9, mfn(4608), 'mmio_direct');
        for (const e of map.extents())
          for (let k = 0; k < e.count; k++) leaves.setEntry(gfn(e.gfn + k), 0, mfn(e.mfn + k), e.type);
        const mmio = [...leaves.extents()].filter((e) => e.type === 'mmio_direct');
        const found = mmio.filter((e) => searched.some(([s, l]) => e.gfn <= l && s <= e.gfn + e.count - 1));
        expect(wholeRuns(leaves, found, searched)).toEqual(wholeRuns(leaves, found));
      }),
    );
  });
});
