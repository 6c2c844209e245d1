/**
 * Maps over existing mappings (branch `remap`): a chunk whose frames already hold the mapping it would
 * write (mmio_direct to the same machine frames, in leaves at least as large) makes Xen's
 * `set_typed_p2m_entry` return 0 without writing; the model does a run of such chunks at once
 * (`sameMappingRun`), in `mapMmio`'s loop and in `mmioCallRun`'s closed-form calls. Here random p2ms
 * built by earlier maps (4K or 2M leaves: `hap_2mb` on and off, EPT and p2m-pt, read-only MMIO, other
 * types in the way) get maps that overlap them wholly or in part, to the same or other machine frames,
 * both ways: batched, and chunk by chunk through a `failAt` hook that never fires (Xen's loop, one
 * `set_mmio_p2m_entry` per chunk). Results, preemption points, events, extents, writes, crash and the
 * counts of calls and leaves by order must agree.
 */
import { RangeSet } from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { gfn, type Mfn, mfn } from './frame.js';
import { type MmioResult, mapMmio, mmioCallRun } from './mmio.js';
import { P2m, type P2mTables } from './p2m.js';
import type { P2mType } from './p2m-type.js';

/** Frames near 0 in 2M blocks, as often as not plus a 4K offset: runs meet each other's leaves. */
const frame = fc
  .tuple(fc.nat(15), fc.oneof(fc.constant(0), fc.nat(511)))
  .map(([block, offset]) => block * 512 + offset);
/** Guest-to-machine distances: a few 2M blocks, sometimes plus a 4K offset (then 4K leaves only). */
const shift = fc
  .tuple(fc.nat(4), fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 511 })))
  .map(([blocks, offset]) => blocks * 512 + offset);
const count = fc.oneof(fc.integer({ min: 1, max: 700 }), fc.integer({ min: 512, max: 5000 }));

type Map = { gfn: number; count: number; shift: number };
const map: fc.Arbitrary<Map> = fc.record({ gfn: frame, count, shift });
type Remap = Map & { budget: number };

interface Case {
  tables: P2mTables;
  superpages2M: boolean;
  maps: Map[];
  others: Array<{ gfn: number; mfn: number; type: P2mType; afterMaps: boolean }>;
  readOnly: Array<{ first: number; last: number; afterMaps: boolean }>;
  remaps: Remap[];
}
const cases: fc.Arbitrary<Case> = fc
  .record({
    tables: fc.constantFrom<P2mTables>('ept', 'pt'),
    superpages2M: fc.boolean(),
    maps: fc.array(map, { minLength: 1, maxLength: 4 }),
    // 4K entries among a map's frames, before the maps or after (splitting its leaves), most to the
    // map's own machine frames: the same mapping but for the type, or all of it (mmio_direct).
    others: fc.array(
      fc.record({
        of: fc.nat(3),
        at: fc.nat(5000),
        type: fc.constantFrom<P2mType>('ram_rw', 'grant_map_rw', 'mmio_direct'),
        sameShift: fc.constantFrom(true, true, false),
        afterMaps: fc.boolean(),
      }),
      { maxLength: 3 },
    ),
    // Read-only MMIO among a map's machine frames, marked before the maps or after (then a 2M leaf
    // already maps it, and a 2M chunk over that leaf is retried at 4K).
    readOnly: fc.array(
      fc.record({ of: fc.nat(3), at: fc.nat(5000), frames: fc.nat(64), afterMaps: fc.boolean() }),
      { maxLength: 2 },
    ),
    // Each remap starts from one of the maps, a little before or inside it, for a random count; most
    // keep its guest-to-machine distance (the same mapping), some take another.
    remaps: fc.array(
      fc.record({
        of: fc.nat(3),
        from: fc.integer({ min: -600, max: 3000 }),
        count,
        sameShift: fc.constantFrom(true, true, true, false),
        shift,
        budget: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 1, max: 4096 })),
      }),
      { minLength: 1, maxLength: 4 },
    ),
  })
  .map((c) => ({
    ...c,
    others: c.others.map((o) => {
      const base = c.maps[o.of % c.maps.length]!;
      const at = base.gfn + o.at;
      return { gfn: at, mfn: at + (o.sameShift ? base.shift : 7), type: o.type, afterMaps: o.afterMaps };
    }),
    readOnly: c.readOnly.map((r) => {
      const base = c.maps[r.of % c.maps.length]!;
      const first = base.gfn + base.shift + r.at;
      return { first, last: first + r.frames, afterMaps: r.afterMaps };
    }),
    remaps: c.remaps.map((r): Remap => {
      const base = c.maps[r.of % c.maps.length]!;
      return {
        gfn: Math.max(0, base.gfn + r.from),
        count: r.count,
        shift: r.sameShift ? base.shift : r.shift,
        budget: r.budget,
      };
    }),
  }));

/** Builds the case's p2m with its maps done in full; `chunkByChunk` arms a fault hook that never fires. */
function build(c: Case, chunkByChunk: boolean): P2m {
  const ro = new RangeSet<Mfn>({ name: 'mmio_ro_ranges' });
  const markReadOnly = (afterMaps: boolean): void => {
    for (const r of c.readOnly) if (r.afterMaps === afterMaps) ro.addRange(mfn(r.first), mfn(r.last));
  };
  markReadOnly(false);
  const p2m = new P2m({
    tables: c.tables,
    superpages2M: c.superpages2M,
    mmioRoRanges: ro,
    ...(chunkByChunk ? { failAt: () => false } : {}),
  });
  const writeOthers = (afterMaps: boolean): void => {
    for (const o of c.others) if (o.afterMaps === afterMaps) p2m.setEntry(gfn(o.gfn), 0, mfn(o.mfn), o.type);
  };
  writeOthers(false);
  for (const m of c.maps) drive(p2m, m, Number.POSITIVE_INFINITY, false);
  writeOthers(true);
  markReadOnly(true);
  p2m.events.length = 0;
  return p2m;
}

/**
 * Maps `m` as vPCI's loop does, in rounds that each end once `budget` frames are done (a preemption
 * point) or the map finishes or fails. `closedForm`: each round first asks `mmioCallRun` for the
 * leading whole calls, else makes one `mapMmio` call; otherwise only `mapMmio` calls. Returns every
 * round's end (frames done) and the last result.
 */
function drive(p2m: P2m, m: Map, budget: number, closedForm: boolean): unknown[] {
  const rounds: unknown[] = [];
  let done = 0;
  for (let round = 0; round < 10_000; round++) {
    const start = done;
    let last: MmioResult | undefined;
    while (done - start < budget) {
      const g = gfn(m.gfn + done);
      const f = mfn(m.gfn + m.shift + done);
      const run = closedForm ? mmioCallRun(p2m, true, g, m.count - done, f, budget - (done - start)) : 0;
      if (run > 0) {
        done += run;
        continue;
      }
      last = mapMmio(p2m, g, m.count - done, f);
      if (!last.ok || last.done) break;
      done += last.progress;
    }
    rounds.push(done);
    if (last !== undefined && (!last.ok || last.done)) {
      rounds.push(last);
      return rounds;
    }
  }
  throw new Error('a map did not finish in 10,000 rounds');
}

describe('a map over existing mappings, batched per extent, agrees with the chunk-by-chunk path', () => {
  it('same results, preemption points, events, extents, writes, crash and counts of calls and leaves', () => {
    fc.assert(
      fc.property(cases, fc.boolean(), (c, closedForm) => {
        const batched = build(c, false);
        const stepped = build(c, true);
        expect(batched.faultInjection).toBe(false);
        expect(stepped.faultInjection).toBe(true);
        expect([...batched.extents()]).toEqual([...stepped.extents()]);
        for (const r of c.remaps) {
          expect(drive(batched, r, r.budget, closedForm)).toEqual(drive(stepped, r, r.budget, false));
          expect(batched.events).toEqual(stepped.events);
          expect([...batched.extents()]).toEqual([...stepped.extents()]);
          expect(batched.writes).toBe(stepped.writes);
          expect(batched.crashed).toBe(stepped.crashed);
          expect(batched.mmioCost).toEqual(stepped.mmioCost);
        }
      }),
      runs(200),
    );
  });
});
