import { describe, expect, it } from 'vitest';
import { ChunkedStore } from './chunked-store.js';

/**
 * Where an insert opens its gap inside a chunk (`insertAt`): on the side of the insert with fewer
 * ranges, re-centring the chunk in its slot first when that side has no room left. These sequences
 * drive one chunk of 16 ranges through both re-centrings and the moves around them, at values near 0,
 * 2^51, 2^52 and MAX_VALUE, and compare every step with the sorted list of what was inserted. The
 * chunk's offset in its slot is read (a private field) only to prove that each re-centring happened:
 * a change elsewhere (the first slab's growth, the split rules) could otherwise make the sequence miss
 * it and the test pass without crossing it.
 */

/** The store's private per-chunk arrays, read to prove which path an insert took. */
interface Peek {
  offs: Int32Array;
  lens: Int32Array;
  nChunks: number;
}

function peek(store: ChunkedStore): Peek {
  return store as unknown as Peek;
}

const MAX = Number.MAX_SAFE_INTEGER;

describe('an insert into a chunk whose room is all on one side re-centres it', () => {
  it.each([
    { name: 'near 0', base: 0 },
    { name: 'near 2^51', base: 2 ** 51 - 6_000 },
    { name: 'near 2^52', base: 2 ** 52 - 6_000 },
    { name: 'near MAX_VALUE', base: MAX - 13_002 },
  ])('keeps every range in order through both re-centrings ($name)', ({ base }) => {
    const store = new ChunkedStore(16);
    const model: number[] = [];
    const insert = (x: number): void => {
      expect(store.add(base + x, base + x + 2, true)).toBe(true);
      model.push(x);
      model.sort((a, b) => a - b);
      const expected = new Float64Array(2 * model.length);
      model.forEach((m, i) => {
        expected[2 * i] = base + m;
        expected[2 * i + 1] = base + m + 2;
      });
      expect(store.toFlat()).toEqual(expected);
      expect(store.count).toBe(model.length);
      for (const m of model) {
        expect(store.contains(base + m, base + m + 2)).toBe(true);
        expect(store.overlaps(base + m + 3, base + m + 3)).toBe(false);
      }
    };
    const at = (): { off: number; len: number } => {
      const p = peek(store);
      expect(p.nChunks).toBe(1);
      return { off: p.offs[0]!, len: p.lens[0]! };
    };

    // Eight appends: one chunk at the start of its slot, room (once the first slab has grown to a
    // whole slot) behind it only.
    for (let i = 1; i <= 8; i++) insert(1_000 * i);
    expect(at()).toEqual({ off: 0, len: 8 });
    // An insert at the front: its side has no room, so the chunk moves up by half the free room
    // (here 4 of 8, less the place the new range takes) and the range goes in front of it.
    insert(10);
    expect(at()).toEqual({ off: 3, len: 9 });
    // Appends use the room behind it until none is left.
    for (const x of [9_000, 10_000, 11_000, 12_000]) insert(x);
    expect(at()).toEqual({ off: 3, len: 13 });
    // An insert near the back: no room there now, so the chunk moves down by half the room in front
    // (2 of 3) in the pass that opens the gap.
    insert(11_500);
    expect(at()).toEqual({ off: 1, len: 14 });
    // Near the front again: the room in front is used as before (the ranges before the gap move down).
    insert(500);
    expect(at()).toEqual({ off: 0, len: 15 });
    // One free place, behind: an insert near the front moves the longer side into it.
    insert(5);
    expect(at()).toEqual({ off: 0, len: 16 });
  });

  it('agrees with a sorted list over many inserts and removes in chunks of 8, from either side', () => {
    // Seeded: values in [0, 4000) stepped by 4 so that no two ranges touch; each is inserted or, if
    // stored, removed, which leaves room in front of chunks (removes near the front) and behind them.
    let seed = 0x9e3779b9;
    const next = (m: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return (seed >>> 8) % m;
    };
    for (const base of [0, 2 ** 52 - 8_000, MAX - 4_002]) {
      const store = new ChunkedStore(8);
      const stored = new Set<number>();
      let recentredUp = 0;
      let recentredDown = 0;
      for (let q = 0; q < 4_000; q++) {
        const x = 4 * next(1_000);
        if (stored.has(x)) {
          expect(store.remove(base + x, base + x + 2, true)).toBe(true);
          stored.delete(x);
        } else {
          // Each chunk's offset and length before and after: when one chunk grew by this range and no
          // other changed (no spill, split or merge), its offset tells which way the insert went.
          const p = peek(store);
          const chunks = p.nChunks;
          const offs = Array.from(p.offs.subarray(0, chunks));
          const lens = Array.from(p.lens.subarray(0, chunks));
          expect(store.add(base + x, base + x + 2, true)).toBe(true);
          stored.add(x);
          if (p.nChunks === chunks) {
            const grown = lens.flatMap((len, c) => (p.lens[c] === len ? [] : [c]));
            const c = grown[0]!;
            if (grown.length === 1 && p.lens[c] === lens[c]! + 1) {
              if (p.offs[c]! > offs[c]!) recentredUp++;
              else if (p.offs[c]! < offs[c]! - 1) recentredDown++;
            }
          }
        }
        expect(store.count).toBe(stored.size);
        if (q % 50 === 0 || q > 3_900) {
          const sorted = [...stored].sort((a, b) => a - b);
          const flat = store.toFlat();
          expect(Array.from(flat)).toEqual(sorted.flatMap((m) => [base + m, base + m + 2]));
        }
      }
      // Both directions were crossed, many times.
      expect(recentredUp).toBeGreaterThan(20);
      expect(recentredDown).toBeGreaterThan(20);
    }
  });
});

/**
 * A remove whose start lies in no stored range (`remove`): the first range it could meet is the one
 * after the range the search found, which is either beside it in the same chunk or the first range
 * of the next chunk (or of the first chunk, when the search found none). Each place is driven to a
 * miss (the remove ends before that range) and to a hit on the range's first values, next to a
 * sorted list of the stored values, in chunks of 4 so that every third or fourth range starts a chunk.
 */
describe('a remove that starts between stored ranges', () => {
  it('misses or trims the next range, whether it sits beside the found one, starts the next chunk or the first', () => {
    for (const base of [0, 2 ** 52 - 4_000, MAX - 2_000]) {
      const store = new ChunkedStore(4);
      const model = new Set<number>();
      // Ranges [base + 10i, base + 10i + 4] for i in 0 … 99: gaps of 5 values between them.
      for (let i = 0; i < 100; i++) {
        expect(store.add(base + 10 * i, base + 10 * i + 4, true)).toBe(true);
        for (let v = 10 * i; v <= 10 * i + 4; v++) model.add(v);
      }
      const p = peek(store);
      expect(p.nChunks).toBeGreaterThan(20);
      const check = (): void => {
        const sorted = [...model].sort((a, b) => a - b);
        const runs: number[] = [];
        for (const v of sorted) {
          if (runs.length > 0 && runs[runs.length - 1] === base + v - 1) runs[runs.length - 1] = base + v;
          else runs.push(base + v, base + v);
        }
        expect(Array.from(store.toFlat())).toEqual(runs);
        expect(store.count).toBe(runs.length / 2);
      };
      // Before the first range (the search finds none), then in every gap: a miss that ends just
      // before the next range, then a remove that takes its first value.
      expect(store.remove(base + 0, base + 0, true)).toBe(true);
      model.delete(0);
      check();
      for (let i = 0; i < 99; i++) {
        const gap = base + 10 * i + 5;
        expect(store.remove(gap, gap + 4, true)).toBe(true);
        check();
        expect(store.remove(gap + 1, gap + 5, true)).toBe(true);
        model.delete(10 * (i + 1));
        check();
      }
      // Past the last range: nothing to meet.
      expect(store.remove(base + 995, base + 1_500, true)).toBe(true);
      check();
    }
  });
});
