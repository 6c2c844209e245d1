/**
 * The interval index against a naive model: a plain list of (interval, item) pairs filtered with the
 * walk's own test (`first <= last && first' <= last'`), after random additions and removals of
 * intervals of every span class (single frames up to 2^52), inverted intervals (a size-0 BAR at a page
 * boundary) included, and of items added again on an interval already held or beside it (equal starts
 * that fill a chunk and run over into the next). The chunk size is drawn small as well as the
 * default, so that chunks are split, merged and emptied within a case.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../../test/support/fast-check-setup.js';
import { IntervalIndex } from './interval-index.js';

/** An interval near a few anchors (so they meet often), of a span from one frame to 2^52. */
const interval = fc
  .record({
    anchor: fc.constantFrom(0, 0x1000, 0xc0000, 2 ** 40, 2 ** 52 - 1),
    offset: fc.integer({ min: -64, max: 64 }),
    spanBits: fc.integer({ min: 0, max: 52 }),
    jitter: fc.integer({ min: 0, max: 3 }),
    inverted: fc.boolean(),
  })
  .map(({ anchor, offset, spanBits, jitter, inverted }): [number, number] => {
    const first = Math.max(0, anchor + offset);
    if (inverted) return [first, first - 1 - jitter];
    return [first, first + Math.max(0, 2 ** spanBits - 1 - jitter)];
  });

const operation = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), at: interval }),
  // Another item on a held item's interval, or one starting there and ending up to 3 frames off.
  fc.record({
    kind: fc.constant('again' as const),
    pick: fc.nat(),
    stretch: fc.integer({ min: -3, max: 3 }),
  }),
  fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('query' as const), at: interval }),
);

interface Held {
  readonly first: number;
  readonly last: number;
  readonly id: number;
}

describe('IntervalIndex', () => {
  it('finds exactly the items a walk over every item finds, after any additions and removals', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2, 3, 4, 8, undefined),
        fc.array(operation, { maxLength: 200 }),
        (chunkSize, operations) => {
          const index = new IntervalIndex<Held>(chunkSize);
          const model: Held[] = [];
          let next = 0;
          for (const op of operations) {
            if (op.kind === 'add' || (op.kind === 'again' && model.length > 0)) {
              let [first, last] = op.kind === 'add' ? op.at : [0, 0];
              if (op.kind === 'again') {
                const held = model[op.pick % model.length]!;
                first = held.first;
                last = held.first > held.last ? held.last : Math.max(first, held.last + op.stretch);
              }
              const item = { first, last, id: next++ };
              index.add(item.first, item.last, item);
              model.push(item);
            } else if (op.kind === 'again') {
              continue;
            } else if (op.kind === 'remove') {
              if (model.length === 0) {
                expect(index.remove(0, 0, { first: 0, last: 0, id: -1 })).toBe(false);
                continue;
              }
              const [item] = model.splice(op.pick % model.length, 1);
              expect(index.remove(item!.first, item!.last, item!)).toBe(true);
              // Held once: a second removal finds nothing.
              expect(index.remove(item!.first, item!.last, item!)).toBe(false);
            } else {
              const [first, last] = op.at;
              const found = index.meeting(first, last, []).map((item) => item.id);
              const expected = model
                .filter((item) => item.first <= last && first <= item.last)
                .map((item) => item.id);
              expect(found.sort((a, b) => a - b)).toEqual(expected.sort((a, b) => a - b));
              // Written from place 1 of a list holding older items: the same ones, up to the place returned.
              const stale = { first: 0, last: 0, id: -1 };
              const list = [stale, stale, stale, stale, stale, stale];
              const end = index.collect(first, last, list, 1);
              expect(list[0]).toBe(stale);
              expect(
                list
                  .slice(1, end)
                  .map((item) => item.id)
                  .sort((a, b) => a - b),
              ).toEqual(expected);
            }
            expect(index.size).toBe(model.length);
          }
          expect(
            index
              .all()
              .map((item) => item.id)
              .sort((a, b) => a - b),
          ).toEqual(model.map((item) => item.id));
        },
      ),
      runs(200),
    );
  });

  it("finds one span class's items in a sorted list's order (by start, the earlier added first among equal starts), removals and additions back in place included", () => {
    // Spans of 1 to 3 frames (one class, so the search walks one sorted list) on 12 starts: equal
    // starts are common, and an item is often removed and another added where it was.
    const spot = fc.record({ first: fc.integer({ min: 0, max: 11 }), extra: fc.integer({ min: 0, max: 2 }) });
    const step = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), spot }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(2, 3, 4, 8, undefined),
        fc.array(step, { maxLength: 120 }),
        (chunkSize, steps) => {
          const index = new IntervalIndex<Held>(chunkSize);
          // The model: the held items in the order they were added.
          const model: Held[] = [];
          let next = 0;
          for (const s of steps) {
            if (s.kind === 'add') {
              const item = { first: s.spot.first, last: s.spot.first + s.spot.extra, id: next++ };
              index.add(item.first, item.last, item);
              model.push(item);
            } else if (model.length > 0) {
              const [item] = model.splice(s.pick % model.length, 1);
              index.remove(item!.first, item!.last, item!);
            }
            // A stable sort by start of the order of addition is the sorted list's order.
            const expected = [...model].sort((a, b) => a.first - b.first).map((item) => item.id);
            expect(index.meeting(0, 20, []).map((item) => item.id)).toEqual(expected);
          }
        },
      ),
      runs(200),
    );
  });

  it('holds thousands of items in small chunks: every one found, then every one removed', () => {
    const index = new IntervalIndex<number>(4);
    // Starts in a scrambled order, many equal (i % 500), spans in a few classes.
    const spots = Array.from({ length: 3000 }, (_, i) => {
      const first = ((i * 7919) % 500) * 16;
      return { first, last: first + (i % 3) * 8, id: i };
    });
    for (const spot of spots) index.add(spot.first, spot.last, spot.id);
    expect(index.size).toBe(3000);
    for (const frame of [0, 8, 16, 4000, 7984, 8000]) {
      const expected = spots.filter((s) => s.first <= frame && frame <= s.last).map((s) => s.id);
      expect(index.meeting(frame, frame, []).sort((a, b) => a - b)).toEqual(expected);
    }
    for (const spot of [...spots].reverse()) expect(index.remove(spot.first, spot.last, spot.id)).toBe(true);
    expect(index.size).toBe(0);
    expect(index.all()).toEqual([]);
    expect(index.meeting(0, 2 ** 52, [])).toEqual([]);
  });

  it('refuses a chunk size below 2', () => {
    expect(() => new IntervalIndex(1)).toThrow(/chunkSize: expected an integer of at least 2, got 1/);
  });

  it('finds a long interval that starts far before a short query (its span class bounds the search)', () => {
    const index = new IntervalIndex<string>();
    index.add(0, 2 ** 40, 'long');
    for (let i = 0; i < 100; i++) index.add(2 ** 39 + i * 16, 2 ** 39 + i * 16 + 3, `short ${i}`);
    expect(index.meeting(2 ** 39 + 5, 2 ** 39 + 5, []).sort()).toEqual(['long']);
    expect(index.meeting(2 ** 40 + 1, 2 ** 41, [])).toEqual([]);
  });

  it('finds, in a class of spans a factor 4 apart, the longest reaching a query and none of the short ones ending before it', () => {
    // 4 and 15 frames share a class (4^1 … 4^2 - 1): the walk starts 15 frames before the query,
    // over short entries that end before it.
    const index = new IntervalIndex<string>();
    index.add(1000, 1014, 'long');
    for (let first = 988; first <= 1004; first += 4) index.add(first, first + 3, `short ${first}`);
    expect(index.meeting(1010, 1014, []).sort()).toEqual(['long']);
    expect(index.meeting(1006, 1008, []).sort()).toEqual(['long', 'short 1004']);
    expect(index.meeting(990, 999, []).sort()).toEqual(['short 988', 'short 992', 'short 996']);
    expect(index.meeting(1015, 1020, [])).toEqual([]);
  });
});
