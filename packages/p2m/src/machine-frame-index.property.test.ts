/**
 * `P2m.extentsOfTypeMeetingMfns` against a naive recomputation: a filter over every extent
 * (`extents()`) with the question's own test (`mfn <= last && first <= mfn + count - 1`). The p2m
 * answers from an index by machine frame made the first time a type is asked about and kept up to
 * date by every write after (extents split to a smaller order, joined with a neighbour, cut, cleared,
 * replaced by another type); the random commands ask at random points between random writes, so
 * the index is made early and late, from small maps and from larger ones, under both of Xen's table
 * implementations (EPT splits a 1G leaf straight to 4K, p2m-pt one level per step) and with the
 * batched run writes the MMIO loops use.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { MAX_FRAME, type PageOrder } from './errors.js';
import { gfn, mfn } from './frame.js';
import { P2m, type P2mExtent, type P2mTables } from './p2m.js';
import type { P2mType } from './p2m-type.js';

const ORDERS: readonly PageOrder[] = [0, 9, 18];
/** Types written: MMIO most often, and others whose writes split and replace it. */
const written = fc.constantFrom<P2mType>(
  'mmio_direct',
  'mmio_direct',
  'mmio_direct',
  'ram_rw',
  'grant_map_rw',
);
/** Types asked about: those written, and one never written (its index stays empty). */
const asked = fc.constantFrom<P2mType>('mmio_direct', 'mmio_direct', 'ram_rw', 'grant_map_rw', 'ram_ro');

/**
 * A leaf of an order, aligned: guest frames in the first two 1G blocks, so 4K and 2M writes land in
 * 1G leaves and in each other; machine frames from a few bases, so the mappings of different guest
 * frames share machine frames.
 */
const leaf = fc
  .record({
    order: fc.constantFrom(...ORDERS),
    gfnLeaf: fc.oneof(fc.nat(3), fc.nat(1024)),
    mfnBase: fc.constantFrom(0, 2 ** 18, 2 ** 19, 2 ** 40),
    mfnLeaf: fc.nat(3),
  })
  .map(({ order, gfnLeaf, mfnBase, mfnLeaf }) => ({
    order,
    gfn: (gfnLeaf * 2 ** order) % 2 ** 19,
    mfn: mfnBase + mfnLeaf * 2 ** order,
  }));

/** A question's machine frames: near where the writes put them, past the last frame, or inverted. */
const question = fc
  .record({
    type: asked,
    first: fc.oneof(
      fc.constantFrom(0, 2 ** 18, 2 ** 19, 2 ** 40, MAX_FRAME),
      fc.integer({ min: -8, max: 2 ** 19 + 4096 }),
    ),
    span: fc.oneof(fc.integer({ min: -3, max: 600 }), fc.constantFrom(2 ** 18, 2 ** 41, 2 ** 53)),
  })
  .map(({ type, first, span }) => ({ kind: 'ask' as const, type, first, last: first + span }));

const command = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: leaf, type: written }),
  fc.record({ kind: fc.constant('clear' as const), at: leaf }),
  // A batched run of leaves (`writeRun`, as map_mmio_regions' loop writes), mapping or clearing.
  fc.record({
    kind: fc.constant('run' as const),
    at: leaf,
    leaves: fc.integer({ min: 1, max: 4 }),
    type: written,
    clear: fc.boolean(),
  }),
  question,
  // A question about the machine frames of an extent the map holds now, or frames next to them.
  fc.record({
    kind: fc.constant('near' as const),
    type: asked,
    pick: fc.nat(),
    from: fc.integer({ min: -2, max: 2 }),
    to: fc.integer({ min: -2, max: 2 }),
  }),
);

/** The extents of `type` meeting `[first, last]` by machine frame, from a walk over every extent. */
function naive(map: P2m, type: P2mType, first: number, last: number): P2mExtent[] {
  return [...map.extents()].filter((e) => e.type === type && e.mfn <= last && first <= e.mfn + e.count - 1);
}

describe('P2m.extentsOfTypeMeetingMfns (index by machine frame)', () => {
  it('finds what a walk over every extent finds, however the map was written before and after the first question', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<P2mTables>('ept', 'pt'),
        fc.array(command, { maxLength: 40, size: 'max' }),
        (tables, commands) => {
          const map = new P2m({ tables, superpages1G: true });
          for (const c of commands) {
            if (c.kind === 'set') map.setEntry(gfn(c.at.gfn), c.at.order, mfn(c.at.mfn), c.type);
            else if (c.kind === 'clear') map.clearEntry(gfn(c.at.gfn), c.at.order);
            else if (c.kind === 'run') {
              const count = c.leaves * 2 ** c.at.order;
              if (c.at.gfn + count - 1 > MAX_FRAME) continue;
              map.writeRun(gfn(c.at.gfn), count, c.at.order, c.clear ? undefined : mfn(c.at.mfn), c.type);
            } else if (c.kind === 'ask') {
              expect(map.extentsOfTypeMeetingMfns(c.type, c.first, c.last)).toEqual(
                naive(map, c.type, c.first, c.last),
              );
            } else {
              const all = [...map.extents()];
              const near = all[c.pick % Math.max(1, all.length)];
              if (near === undefined) continue;
              const first = near.mfn + c.from;
              const last = near.mfn + near.count - 1 + c.to;
              expect(map.extentsOfTypeMeetingMfns(c.type, first, last)).toEqual(
                naive(map, c.type, first, last),
              );
            }
          }
          // Every extent of each type is held, once, by each of its machine frames (its first and last).
          for (const type of ['mmio_direct', 'ram_rw', 'grant_map_rw'] as const) {
            expect(map.extentsOfTypeMeetingMfns(type, 0, MAX_FRAME)).toEqual(naive(map, type, 0, MAX_FRAME));
            for (const e of naive(map, type, 0, MAX_FRAME))
              for (const frame of [e.mfn, e.mfn + e.count - 1])
                expect(map.extentsOfTypeMeetingMfns(type, frame, frame)).toEqual(
                  naive(map, type, frame, frame),
                );
          }
        },
      ),
      runs(150),
    );
  });

  it('answers as a walk when the questions come between long runs of writes (the index dropped and made again)', () => {
    // Often more index changes between two questions than a map keeps an index through (its extent
    // count and 64 more): each burst writes up to 300 leaves, most of them MMIO on a few guest
    // frames (each write there takes an extent out and puts one in).
    const nearLeaf = fc
      .record({ gfnLeaf: fc.nat(15), mfnLeaf: fc.nat(3) })
      .map(({ gfnLeaf, mfnLeaf }) => ({ order: 0 as PageOrder, gfn: gfnLeaf, mfn: 2 ** 18 + mfnLeaf }));
    const burst = fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant('set' as const), at: fc.oneof(nearLeaf, leaf), type: written }),
        fc.record({ kind: fc.constant('clear' as const), at: fc.oneof(nearLeaf, leaf) }),
      ),
      { minLength: 1, maxLength: 300, size: 'max' },
    );
    fc.assert(
      fc.property(
        fc.constantFrom<P2mTables>('ept', 'pt'),
        fc.array(fc.tuple(burst, question), { minLength: 1, maxLength: 5 }),
        (tables, rounds) => {
          const map = new P2m({ tables, superpages1G: true });
          for (const [writes, ask] of rounds) {
            for (const c of writes)
              if (c.kind === 'set') map.setEntry(gfn(c.at.gfn), c.at.order, mfn(c.at.mfn), c.type);
              else map.clearEntry(gfn(c.at.gfn), c.at.order);
            expect(map.extentsOfTypeMeetingMfns(ask.type, ask.first, ask.last)).toEqual(
              naive(map, ask.type, ask.first, ask.last),
            );
            for (const type of ['mmio_direct', 'ram_rw'] as const)
              expect(map.extentsOfTypeMeetingMfns(type, 0, MAX_FRAME)).toEqual(
                naive(map, type, 0, MAX_FRAME),
              );
          }
        },
      ),
      runs(40),
    );
  });

  it('keeps the index while it is asked about, and drops it when writes go on unasked past the cost of making it again', () => {
    const map = new P2m();
    // 32 one-frame MMIO extents, 2 frames apart (none joins another).
    for (let i = 0; i < 32; i++) map.setEntry(gfn(2 * i), 0, mfn(1000 + 2 * i), 'mmio_direct');
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 1000, 1000)).toHaveLength(1);
    expect(map.machineFrameIndexesMade).toBe(1);
    // A question after every few writes: 2,000 writes, each an index change (the frame's extent
    // taken out, then put back), far more than 32 + 64 in all, never as many between two questions.
    for (let round = 0; round < 500; round++) {
      const at = 2 * (round % 32);
      map.clearEntry(gfn(at), 0);
      map.setEntry(gfn(at), 0, mfn(1000 + at), 'mmio_direct');
      map.clearEntry(gfn(at), 0);
      map.setEntry(gfn(at), 0, mfn(1000 + at), 'mmio_direct');
      expect(map.extentsOfTypeMeetingMfns('mmio_direct', 1000 + at, 1000 + at)).toHaveLength(1);
    }
    expect(map.machineFrameIndexesMade).toBe(1);
    // Unasked, 80 changes keep it (fewer than the map's 31 or 32 extents and 64); 160 drop it, and
    // the next question makes it again, answering as the map is.
    for (let change = 0; change < 80; change += 2) {
      map.clearEntry(gfn(0), 0);
      map.setEntry(gfn(0), 0, mfn(1000), 'mmio_direct');
    }
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 1000, 1000)).toHaveLength(1);
    expect(map.machineFrameIndexesMade).toBe(1);
    for (let change = 0; change < 160; change += 2) {
      map.clearEntry(gfn(0), 0);
      map.setEntry(gfn(0), 0, mfn(1000), 'mmio_direct');
    }
    map.clearEntry(gfn(2), 0);
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 1000, 1004).map((e) => e.gfn)).toEqual([0, 4]);
    expect(map.machineFrameIndexesMade).toBe(2);
  });

  it('holds a mapping by every machine frame it covers, and follows a 2M leaf split by a 4K write (Xen ept_split_super_page)', () => {
    const map = new P2m();
    map.setEntry(gfn(512), 9, mfn(4096), 'mmio_direct'); // mfn 4096 … 4607
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 4600, 4700).map((e) => e.gfn)).toEqual([512]);
    // A 4K write in the middle splits the 2M leaf to 4K leaves: three extents of the index.
    map.setEntry(gfn(600), 0, mfn(9), 'mmio_direct');
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 4600, 4700)).toEqual([
      { gfn: 601, count: 512 - 89, mfn: 4096 + 89, type: 'mmio_direct', order: 0 },
    ]);
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 9, 9).map((e) => e.gfn)).toEqual([600]);
    // gfn 599 keeps mfn 4096 + 87; the machine frame gfn 600 mapped before is mapped by nothing now.
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 4096 + 87, 4096 + 87).map((e) => e.gfn)).toEqual([
      512,
    ]);
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 4096 + 88, 4096 + 88)).toEqual([]);
    // Cleared frames leave the index; an unknown type is an argument error.
    map.clearEntry(gfn(600), 0);
    expect(map.extentsOfTypeMeetingMfns('mmio_direct', 9, 9)).toEqual([]);
    expect(() => map.extentsOfTypeMeetingMfns('mmio' as P2mType, 0, 1)).toThrow(/type/);
  });
});
