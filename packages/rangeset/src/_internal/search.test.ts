import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../../test/support/fast-check-setup.js';
import { lastAtOrBelow, lastAtOrBelowNear } from './search.js';

const MAX = Number.MAX_SAFE_INTEGER;

/** The answer by definition: the last index whose key is <= v. */
function linear(keys: number[], v: number): number {
  let i = 0;
  while (i + 1 < keys.length && keys[i + 1]! <= v) i++;
  return i;
}

/** Keys laid out with a stride, as the chunk store keeps starts interleaved with ends. */
function strided(keys: number[], stride: number): Float64Array {
  const a = new Float64Array(keys.length * stride).fill(-1);
  keys.forEach((k, i) => {
    a[i * stride] = k;
  });
  return a;
}

/** Strictly increasing keys: evenly spread, clustered (tiny and huge gaps mixed) or up against MAX. */
const keys = fc
  .oneof(
    fc.uniqueArray(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 300 }),
    fc.uniqueArray(
      fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 2 ** 40, max: 2 ** 40 + 50 })),
      {
        minLength: 1,
        maxLength: 120,
      },
    ),
    fc.uniqueArray(fc.integer({ min: MAX - 500, max: MAX }), { minLength: 1, maxLength: 100 }),
  )
  .map((ks) => ks.sort((a, b) => a - b));

describe.each([
  ['lastAtOrBelow', lastAtOrBelow],
  ['lastAtOrBelowNear', lastAtOrBelowNear],
])('%s', (_name, search) => {
  it('finds what a linear scan finds, for any keys, value, stride and valid limit', () => {
    fc.assert(
      fc.property(
        keys,
        fc.nat(),
        fc.constantFrom(1, 2),
        fc.nat({ max: 2 ** 20 }),
        (ks, pick, stride, slack) => {
          const first = ks[0]!;
          const last = ks[ks.length - 1]!;
          // Any limit above every key is valid; the store passes the next chunk's first start.
          const limit = Math.min(MAX + 1, last + 1 + slack);
          // Values between the first key and well past the last (add() looks up e + 1 up to 2^53).
          const candidates = [
            first,
            last,
            MAX + 1,
            ...ks.map((k) => Math.min(MAX + 1, k + 1)),
            first + (pick % 1000),
          ];
          const a = strided(ks, stride);
          for (const v of candidates) {
            if (v < first) continue;
            expect(search(a, 0, stride, ks.length, v, first, limit)).toBe(linear(ks, v));
            // The same keys further into a larger buffer, as chunks sit inside a slab.
            const shifted = new Float64Array(a.length + 6).fill(-1);
            shifted.set(a, 6);
            expect(search(shifted, 6, stride, ks.length, v, first, limit)).toBe(linear(ks, v));
          }
        },
      ),
      runs(500),
    );
  });

  it('returns small integers (V8 keeps them as Smis), even for guesses far past the limit', () => {
    const a = strided([5, 9, 20], 2);
    const found = search(a, 0, 2, 3, 2 ** 53, 5, 21);
    expect(found).toBe(2);
    expect(Number.isInteger(found)).toBe(true);
  });

  it('finds the answer at every distance from its guess, inside and outside the window it reads', () => {
    // Keys bunched at one end put the interpolated guess at one end and the answer anywhere: every
    // offset between them, in both directions, is met, including the edges of the window of keys
    // that lastAtOrBelowNear reads around its guess (12 places either side) and the clamping of that
    // window to the run.
    for (const n of [1, 2, 3, 4, 5, 8, 12, 13, 24, 25, 26, 27, 40, 256]) {
      const low = Array.from({ length: n }, (_, i) => (i === n - 1 && n > 1 ? 1_000_000 : i));
      const high = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1_000_000 + i));
      for (const ks of [low, high]) {
        const first = ks[0]!;
        const limit = ks[n - 1]! + 1;
        for (const stride of [1, 2]) {
          const a = strided(ks, stride);
          for (const k of ks) {
            for (const v of [k, k + 1]) {
              expect(search(a, 0, stride, n, v, first, limit)).toBe(linear(ks, v));
            }
          }
        }
      }
    }
  });
});
