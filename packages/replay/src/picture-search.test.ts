/**
 * The picture's two searches that keep a map of thousands of BARs at n log n (issue 16): the cover of
 * a band's BAR frames (`frameCover`, `framesCovered`: is a p2m run inside the BARs?) and the rows the
 * address lane files its kept labels by (`overlapsRows`, `addToRows`: does a label collide with one
 * kept before?). Each against the naive model it replaced: every frame looked up in every BAR, every
 * box compared with every box kept.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import {
  addToRows,
  type Box,
  type BoxRows,
  boxesOverlap,
  frameCover,
  framesCovered,
  overlapsRows,
} from './picture.js';

/** Whether each frame of `[first, last]` lies in one of `ranges`, frame by frame. */
function naiveCovered(ranges: readonly (readonly [bigint, bigint])[], first: bigint, last: bigint): boolean {
  for (let f = first; f <= last; f++) if (!ranges.some(([lo, hi]) => lo <= f && f <= hi)) return false;
  return true;
}

const frame = fc.bigInt({ min: 0n, max: 64n });
const range = fc
  .tuple(frame, fc.bigInt({ min: 0n, max: 12n }))
  .map(([lo, n]) => [lo, lo + n] as [bigint, bigint]);

describe('frameCover and framesCovered', () => {
  it('say a run is covered exactly when each of its frames lies in some range', () => {
    fc.assert(
      fc.property(
        fc.array(range, { maxLength: 12 }),
        fc.array(range, { minLength: 1, maxLength: 8 }),
        (bars, asked) => {
          const cover = frameCover(bars);
          for (const [first, last] of asked)
            expect(framesCovered(cover, first, last), `[${first}, ${last}]`).toBe(
              naiveCovered(bars, first, last),
            );
        },
      ),
      runs(300),
    );
  });

  it('join ranges that meet end to start into one cover', () => {
    expect(
      frameCover([
        [5n, 6n],
        [0n, 4n],
        [8n, 9n],
      ]),
    ).toEqual([
      [0n, 6n],
      [8n, 9n],
    ]);
    expect(
      framesCovered(
        frameCover([
          [5n, 6n],
          [0n, 4n],
        ]),
        3n,
        6n,
      ),
    ).toBe(true);
    expect(
      framesCovered(
        frameCover([
          [5n, 6n],
          [8n, 9n],
        ]),
        5n,
        8n,
      ),
    ).toBe(false);
  });
});

describe('overlapsRows and addToRows', () => {
  const coordinate = fc.double({ min: -300, max: 300, noNaN: true });
  const box = fc
    .tuple(
      coordinate,
      coordinate,
      fc.double({ min: 0, max: 40, noNaN: true }),
      fc.double({ min: 0, max: 150, noNaN: true }),
    )
    .map(([x0, y0, w, h]): Box => ({ x0, y0, x1: x0 + w, y1: y0 + h }));

  it('find an overlap exactly when some box kept overlaps (boxesOverlap)', () => {
    fc.assert(
      fc.property(fc.array(box, { maxLength: 30 }), (boxes) => {
        const rows: BoxRows = new Map();
        const kept: Box[] = [];
        for (const b of boxes) {
          const naive = kept.some((k) => boxesOverlap(k, b));
          expect(overlapsRows(rows, b)).toBe(naive);
          if (!naive) {
            addToRows(rows, b);
            kept.push(b);
          }
        }
      }),
      runs(300),
    );
  });
});
