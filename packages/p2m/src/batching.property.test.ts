/**
 * The batched paths against the chunk-by-chunk ones: `map_mmio_regions` / `unmap_mmio_regions` do a
 * run of 4K or 2M chunks that need no decision as one write, and `populateRam` a run of frames it
 * would find alike, but only while no fault injection is armed. A p2m with `failAt` set to a hook
 * that never fires therefore takes Xen's one-chunk-at-a-time path with the same outcome. The same
 * random p2m (holes, 4K and 2M leaves of several types, read-only MMIO, a low address width) gets the
 * same random calls both ways; every result, event, extent, write count and crash must agree.
 */
import { RangeSet } from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import type { PageOrder } from './errors.js';
import { gfn, type Mfn, mfn } from './frame.js';
import { mapMmio, unmapMmio } from './mmio.js';
import { P2m, type P2mTables } from './p2m.js';
import type { P2mType } from './p2m-type.js';
import { type PopulatePolicy, populateRam } from './populate.js';

/** 30 address bits: the tables end at frame 2^18, so a run can cross the end. */
const LOW_WIDTH = 30;
const LIMIT = 2 ** (LOW_WIDTH - 12);
/** Frames are drawn near 0 and near the end of the low width: where runs meet leaves and the end. */
const ANCHORS = [0, LIMIT - 4096];
const SPAN = 8192;

const frame = fc
  .tuple(fc.constantFrom(...ANCHORS), fc.nat(SPAN / 512 - 1), fc.oneof(fc.constant(0), fc.nat(511)))
  .map(([anchor, block, offset]) => anchor + block * 512 + offset);
/**
 * The distance from guest to machine frame: a few 2M blocks, as often as not plus a 4K offset (then
 * no 2M chunk). Few values, so leaves, calls and read-only ranges often meet.
 */
const shift = fc
  .tuple(fc.nat(8), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 511 })))
  .map(([blocks, offset]) => blocks * 512 + offset);
const count = fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 512, max: 6000 }));

type Leaf = { gfn: number; order: PageOrder; shift: number; type: P2mType };
const leaf: fc.Arbitrary<Leaf> = fc.record({
  gfn: frame,
  order: fc.constantFrom<PageOrder>(0, 9),
  shift,
  type: fc.constantFrom<P2mType>('mmio_direct', 'mmio_direct', 'ram_rw', 'ram_ro', 'grant_map_rw'),
});

type Call =
  | { kind: 'map' | 'unmap'; gfn: number; count: number; shift: number; calls: number }
  | { kind: 'populate'; gfn: number; count: number; shift: number; policy: PopulatePolicy };
const call: fc.Arbitrary<Call> = fc.oneof(
  fc.record({
    kind: fc.constantFrom<'map' | 'unmap'>('map', 'unmap'),
    gfn: frame,
    count,
    shift,
    calls: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    kind: fc.constant<'populate'>('populate'),
    gfn: frame,
    count,
    shift,
    policy: fc.constantFrom<PopulatePolicy>('report', 'refuseClobber'),
  }),
);

interface Case {
  addressBits: number;
  tables: P2mTables;
  superpages2M: boolean;
  leaves: Leaf[];
  readOnly: Array<[number, number]>;
  calls: Call[];
}
const cases: fc.Arbitrary<Case> = fc.record({
  addressBits: fc.constantFrom(LOW_WIDTH, 64),
  tables: fc.constantFrom<P2mTables>('ept', 'pt'),
  superpages2M: fc.constantFrom(true, true, false),
  leaves: fc.array(leaf, { maxLength: 12 }),
  // Machine frames of read-only MMIO, where the machine frames of the calls are.
  readOnly: fc.array(
    fc.tuple(frame, shift, fc.nat(64)).map(([g, d, n]): [number, number] => [g + d, g + d + n]),
    { maxLength: 3 },
  ),
  // Half the calls take the frames of the call before: an unmap then meets what a map just did.
  calls: fc.array(fc.tuple(call, fc.boolean()), { minLength: 1, maxLength: 8 }).map((list) =>
    list.map(([one, again], k) => {
      const before = list[k - 1]?.[0];
      return again && before !== undefined
        ? { ...one, gfn: before.gfn, count: before.count, shift: before.shift }
        : one;
    }),
  ),
});

/** Builds the case's p2m; `chunkByChunk` arms a fault hook that never fires. */
function build(c: Case, chunkByChunk: boolean): P2m {
  const ro = new RangeSet<Mfn>({ name: 'mmio_ro_ranges' });
  for (const [s, e] of c.readOnly) ro.addRange(mfn(s), mfn(e));
  const p2m = new P2m({
    addressBits: c.addressBits,
    tables: c.tables,
    superpages2M: c.superpages2M,
    mmioRoRanges: ro,
    ...(chunkByChunk ? { failAt: () => false } : {}),
  });
  for (const l of c.leaves) {
    const size = 2 ** l.order;
    const start = l.gfn - (l.gfn % size);
    p2m.setEntry(gfn(start), l.order, mfn(start + l.shift - (l.shift % size)), l.type);
  }
  p2m.events.length = 0;
  return p2m;
}

/** Applies one call, driving a map or unmap for at most `calls` calls; returns every result. */
function apply(p2m: P2m, c: Call): unknown[] {
  const first = c.gfn;
  const firstMfn = c.gfn + c.shift;
  if (c.kind === 'populate')
    return [populateRam(p2m, gfn(first), c.count, mfn(firstMfn), 'ram_rw', c.policy)];
  const results: unknown[] = [];
  const op = c.kind === 'map' ? mapMmio : unmapMmio;
  let done = 0;
  for (let k = 0; k < c.calls; k++) {
    const r = op(p2m, gfn(first + done), c.count - done, mfn(firstMfn + done));
    results.push(r);
    if (!r.ok || r.done) break;
    done += r.progress;
  }
  return results;
}

/** The frames of `[first, first + n - 1]` holding a page, frame by frame (refuseClobber's answer). */
function pagesByFrame(p2m: P2m, first: number, n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let g = first; g < first + n; g++) {
    const e = p2m.lookup(gfn(g));
    const page = e.mfn !== undefined && ['ram_rw', 'ram_ro', 'ram_logdirty'].includes(e.type);
    if (!page) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === g - 1) last[1] = g;
    else out.push([g, g]);
  }
  return out;
}

describe('batched runs agree with the chunk-by-chunk path', () => {
  it('map, unmap and populate: same results, events, extents, writes and crash', () => {
    fc.assert(
      fc.property(cases, (c) => {
        const batched = build(c, false);
        const stepped = build(c, true);
        expect(batched.faultInjection).toBe(false);
        expect(stepped.faultInjection).toBe(true);
        for (const one of c.calls) {
          const clobbered =
            one.kind === 'populate' && one.policy === 'refuseClobber'
              ? pagesByFrame(stepped, one.gfn, Math.min(one.count, 2 ** 52 - one.gfn))
              : [];
          const got = apply(batched, one);
          expect(got).toEqual(apply(stepped, one));
          if (clobbered.length > 0) expect(got).toEqual([{ ok: false, code: 'EEXIST', gfns: clobbered }]);
          expect(batched.events).toEqual(stepped.events);
          expect([...batched.extents()]).toEqual([...stepped.extents()]);
          expect(batched.writes).toBe(stepped.writes);
          expect(batched.crashed).toBe(stepped.crashed);
        }
      }),
      runs(300),
    );
  });
});
