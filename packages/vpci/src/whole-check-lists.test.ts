/**
 * `SortedSpans` (the whole check's search by frame) and `sortSmall` against naive models: a walk over
 * every item, and a stable sort by decoration. Listings in any order and of any length, so both the
 * few-item path and the library sort's are met, and a listing in falling frame order (the one an
 * insertion sort made quadratic) gives the same answers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { sortSmall } from './small-sort.js';
import { SortedSpans } from './whole-check-lists.js';

interface Span {
  readonly first: number;
  readonly last: number;
}

/** What a walk over every item finds, in listing order (an inverted span by the same test). */
function walk(items: readonly Span[], first: number, last: number): Span[] {
  return items.filter((item) => item.first <= last && first <= item.last);
}

const frame = fc.integer({ min: 0, max: 300 });
const span = fc.record({ first: frame, last: frame });
/** Spans of every length: most short, some reaching over many others. */
const spans = fc.array(
  fc.oneof(
    span,
    frame.chain((first) =>
      fc.record({ first: fc.constant(first), last: fc.integer({ min: first, max: first + 4 }) }),
    ),
  ),
  { maxLength: 120, size: 'max' },
);

function sortedSpans(items: readonly Span[]): SortedSpans<Span> {
  return new SortedSpans(
    items,
    (item) => item.first,
    (item) => item.last,
  );
}

describe('SortedSpans', () => {
  it('finds what a walk over every item finds, in listing order', () => {
    fc.assert(
      fc.property(spans, frame, frame, (items, a, b) => {
        const index = sortedSpans(items);
        expect(index.meeting(a, b)).toEqual(walk(items, a, b));
        expect(index.meeting(Math.min(a, b), Math.max(a, b))).toEqual(
          walk(items, Math.min(a, b), Math.max(a, b)),
        );
      }),
      runs(300),
    );
  });

  it('answers a listing in falling frame order, thousands of items, as the walk does', () => {
    // Devices are listed by SBDF, their BARs in any frame order: here the worst order for an insertion
    // sort, and searches meeting many items (past the few-item sort) and one.
    const items: Span[] = [];
    for (let i = 20_000; i > 0; i--) items.push({ first: 3 * i, last: 3 * i + (i % 7 === 0 ? 40 : 1) });
    const index = sortedSpans(items);
    for (const [first, last] of [
      [0, 60_100],
      [300, 900],
      [31, 31],
      [59_999, 60_002],
    ] as const)
      expect(index.meeting(first, last)).toEqual(walk(items, first, last));
  });
});

describe('sortSmall', () => {
  /** A stable sort by key: each item decorated with its place. */
  function stableByKey(items: readonly (readonly [number, string])[]): (readonly [number, string])[] {
    return items
      .map((item, place) => ({ item, place }))
      .sort((a, b) => a.item[0] - b.item[0] || a.place - b.place)
      .map(({ item }) => item);
  }
  const keyed = fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.string({ maxLength: 2 })), {
    maxLength: 60,
    size: 'max',
  });

  it('sorts stably, the first n items only when n is given', () => {
    fc.assert(
      fc.property(keyed, fc.nat(), (items, cut) => {
        const n = items.length === 0 ? 0 : cut % (items.length + 1);
        const list = items.slice();
        sortSmall(list, (a, b) => a[0] - b[0], n);
        expect(list).toEqual([...stableByKey(items.slice(0, n)), ...items.slice(n)]);
        expect(sortSmall(items.slice(), (a, b) => a[0] - b[0])).toEqual(stableByKey(items));
      }),
      runs(300),
    );
  });
});
