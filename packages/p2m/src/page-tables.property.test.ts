/**
 * `IntermediateTables` answers most questions from what it knows without searching its sets (a run of
 * regions and a cache of ranges by slot). The straightforward path is the rule itself, kept here as a
 * set of region numbers per level: `ept_set_entry` / `p2m_pt_set_entry` allocate the L1 and L2 tables
 * a 4K write walks through, a 2M leaf frees the L1 tables it replaces, a 1G leaf the L2 tables and
 * every L1 under them; `ept_get_entry` / `p2m_pt_get_entry` report a hole at the level where the walk
 * met an empty entry (0 in an L1 table, 9 in an L2 table, else 18). After every write of a random
 * sequence, over few regions so that writes meet, slots collide and removals empty the cache, both
 * must answer alike for every frame's hole order and for the first L1 table from any region.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import type { PageOrder } from './errors.js';
import { IntermediateTables } from './page-tables.js';

/** Regions the writes fall in: 4 1G regions, 2,048 2M regions (32 cache slots' worth, many times). */
const REGIONS_1G = 4;
const FRAMES = REGIONS_1G * 2 ** 18;

const writes = fc.array(
  fc.record({
    order: fc.constantFrom<PageOrder>(0, 0, 9, 9, 18),
    // Where, in leaves of its order, and how many leaves (a run of writes, as `writeRun` makes).
    at: fc.nat({ max: FRAMES - 1 }),
    leaves: fc.integer({ min: 1, max: 700 }),
  }),
  { minLength: 1, maxLength: 60 },
);

describe('IntermediateTables against the tables as sets of region numbers', () => {
  it('holeOrder and firstL1 answer as the sets do after every write (p2m-ept.c, p2m-pt.c)', () => {
    fc.assert(
      fc.property(
        writes,
        fc.array(fc.nat({ max: FRAMES - 1 }), { minLength: 8, maxLength: 8 }),
        (list, probes) => {
          const tables = new IntermediateTables();
          const l1 = new Set<number>();
          const l2 = new Set<number>();
          for (const { order, at, leaves } of list) {
            const size = 2 ** order;
            const gfn = at - (at % size);
            const count = Math.min(leaves, (FRAMES - gfn) / size) * size;
            tables.written(gfn, count, order);
            // Every 2M region the write touches (a 4K run need not start at one).
            for (let r2 = Math.floor(gfn / 512); r2 <= Math.floor((gfn + count - 1) / 512); r2++) {
              const r1 = Math.floor(r2 / 512);
              if (order === 0) {
                l1.add(r2);
                l2.add(r1);
              } else if (order === 9) {
                l1.delete(r2);
                l2.add(r1);
              } else {
                l2.delete(r1);
                l1.delete(r2);
              }
            }
            const naiveOrder = (f: number): PageOrder =>
              l1.has(Math.floor(f / 512)) ? 0 : l2.has(Math.floor(f / 2 ** 18)) ? 9 : 18;
            // The frames written and their neighbours, and the random probes.
            for (const f of [
              gfn,
              gfn + count - 1,
              Math.max(0, gfn - 1),
              Math.min(FRAMES - 1, gfn + count),
              ...probes,
            ])
              expect(tables.holeOrder(f), `frame ${f}`).toBe(naiveOrder(f));
            for (const f of probes) {
              const region = Math.floor(f / 512);
              const end = Math.min(FRAMES / 512, region + 600);
              let first = region;
              while (first < end && !l1.has(first)) first++;
              expect(tables.firstL1(region, end), `firstL1 from ${region}`).toBe(first);
            }
          }
        },
      ),
      runs(60),
    );
  });
});
