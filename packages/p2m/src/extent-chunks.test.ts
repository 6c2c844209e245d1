/**
 * The chunked extent list against a naive model: a plain array of extents sorted by first gfn, changed
 * with `Array.prototype.splice`. Random replacements (pieces inserted, extents removed, both at once,
 * runs removed across several chunks, everything removed) with chunk sizes from 2 up (so chunks are
 * split, merged, emptied and rebuilt within a case) and the default; after each, the walk forwards
 * (`first`/`next`) and backwards (`prev` from `END`) gives the model's extents, and `find` gives the
 * model's last extent starting at or below every start, the frames around it, and values before the
 * first and past the last.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { END, ExtentChunks, NONE, type Pieces } from './extent-chunks.js';

interface Extent {
  start: number;
  count: number;
  mfn: number;
  type: number;
  order: number;
}

const MAX_PIECES = 10;

/** A replacement: where (a share of the list), how many removed, how many pieces put in their place. */
const replacement = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  removed: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 })),
  pieces: fc.integer({ min: 0, max: MAX_PIECES }),
  seed: fc.nat(),
});

/** The `k` extents a replacement puts between `below` and `above` (first gfns), evenly spread. */
function piecesBetween(below: number, above: number, k: number, seed: number): Extent[] {
  const room = above - below - 1;
  const n = Math.min(k, room);
  const out: Extent[] = [];
  for (let p = 0; p < n; p++) {
    const start = below + 1 + Math.floor((room * p) / n);
    out.push({
      start,
      count: 1 + ((seed + p) % 7),
      mfn: seed + p * 3,
      type: (seed + p) % 13,
      order: p % 2 ? 9 : 0,
    });
  }
  return out;
}

function toPieces(extents: readonly Extent[]): Pieces {
  const pieces = {
    start: new Float64Array(MAX_PIECES),
    count: new Float64Array(MAX_PIECES),
    mfn: new Float64Array(MAX_PIECES),
    type: new Uint8Array(MAX_PIECES),
    order: new Uint8Array(MAX_PIECES),
  };
  extents.forEach((e, p) => {
    pieces.start[p] = e.start;
    pieces.count[p] = e.count;
    pieces.mfn[p] = e.mfn;
    pieces.type[p] = e.type;
    pieces.order[p] = e.order;
  });
  return pieces;
}

function read(store: ExtentChunks, p: number): Extent {
  return {
    start: store.start(p),
    count: store.count(p),
    mfn: store.mfn(p),
    type: store.type(p),
    order: store.order(p),
  };
}

/** The position of the model's `i`-th extent, by walking. */
function positionOf(store: ExtentChunks, i: number): number {
  let p = store.first();
  for (let k = 0; k < i; k++) p = store.next(p);
  return p;
}

function expectSame(store: ExtentChunks, model: readonly Extent[]): void {
  expect(store.size).toBe(model.length);
  const forwards: Extent[] = [];
  const positions: number[] = [];
  for (let p = store.first(); p !== END; p = store.next(p)) {
    forwards.push(read(store, p));
    positions.push(p);
  }
  expect(forwards).toEqual(model);
  // Positions grow with the gfn (the p2m compares them).
  for (let i = 1; i < positions.length; i++) expect(positions[i]).toBeGreaterThan(positions[i - 1]!);
  const backwards: number[] = [];
  for (let p = store.prev(END); p !== NONE; p = store.prev(p)) backwards.push(p);
  expect(backwards.reverse()).toEqual(positions);
  const probes = model.flatMap((e) => [e.start - 1, e.start, e.start + 1]);
  probes.push(-1, 0, 2 ** 52);
  for (const v of probes) {
    let expected = -1;
    for (let i = 0; i < model.length && model[i]!.start <= v; i++) expected = i;
    const found = store.find(v);
    expect(found).toBe(expected < 0 ? NONE : positions[expected]);
  }
}

describe('ExtentChunks (the p2m extents in chunks) against a sorted array', () => {
  it('walks and finds as the array after every replacement, chunks split, merged and emptied', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 2, max: 8 }), fc.constant(128)),
        fc.array(replacement, { minLength: 1, maxLength: 120 }),
        (chunkSize, replacements) => {
          const store = new ExtentChunks(chunkSize, MAX_PIECES);
          const model: Extent[] = [];
          for (const { at, removed: wanted, pieces: k, seed } of replacements) {
            const i = Math.min(model.length, Math.floor(at * (model.length + 1)));
            const removed = Math.min(wanted, model.length - i);
            const below = i > 0 ? model[i - 1]!.start : -1;
            const above = i + removed < model.length ? model[i + removed]!.start : below + 2 ** 40;
            const put = piecesBetween(below, above, k, seed);
            const from = i < model.length ? positionOf(store, i) : END;
            store.replace(from, removed, toPieces(put), put.length);
            model.splice(i, removed, ...put);
            expectSame(store, model);
          }
        },
      ),
      runs(150),
    );
  });

  it('holds 3,000 extents in chunks of 4, appended then removed from the middle one by one', () => {
    const store = new ExtentChunks(4, MAX_PIECES);
    const model: Extent[] = [];
    for (let i = 0; i < 3000; i++) {
      const extent = { start: i * 10, count: 5, mfn: i, type: 1, order: 0 };
      store.replace(END, 0, toPieces([extent]), 1);
      model.push(extent);
    }
    expectSame(store, model);
    while (model.length > 0) {
      const i = model.length >> 1;
      store.replace(positionOf(store, i), 1, toPieces([]), 0);
      model.splice(i, 1);
    }
    expectSame(store, model);
    expect(store.first()).toBe(END);
  });

  it('refuses a chunk size it cannot position', () => {
    expect(() => new ExtentChunks(1)).toThrow(/chunkSize/);
    expect(() => new ExtentChunks(257)).toThrow(/chunkSize/);
  });
});
