/**
 * `heldByWindows` against a naive model: every frame of the range looked for, one by one, in a window
 * of the shift asked about. Windows listed in any order (the one-pass answer and the frame-order
 * one), and thousands of touching windows listed in falling frame order.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import type { Window } from './bar-windows.js';
import { heldByWindows } from './window-cover.js';

/** A window of the fields `heldByWindows` reads (the device and BAR are not). */
function window(first: number, last: number, shift: number): Window {
  return { first, last, shift } as Window;
}

function heldFrameByFrame(windows: readonly Window[], first: number, last: number, shift: number): boolean {
  for (let frame = first; frame <= last; frame++)
    if (!windows.some((w) => w.shift === shift && w.first <= frame && frame <= w.last)) return false;
  return true;
}

const frame = fc.integer({ min: 0, max: 60 });
const windows = fc.array(
  fc
    .tuple(frame, fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 1 }))
    .map(([first, length, shift]) => window(first, first + length, shift)),
  { maxLength: 24, size: 'max' },
);

describe('heldByWindows', () => {
  it('answers as a look at every frame does, whatever order the windows come in', () => {
    fc.assert(
      fc.property(
        windows,
        fc.nat(),
        frame,
        frame,
        fc.integer({ min: 0, max: 1 }),
        (list, cut, a, b, shift) => {
          const count = list.length === 0 ? 0 : cut % (list.length + 1);
          const [first, last] = a <= b ? [a, b] : [b, a];
          expect(heldByWindows(list, count, first, last, shift)).toBe(
            heldFrameByFrame(list.slice(0, count), first, last, shift),
          );
        },
      ),
      runs(500),
    );
  });

  it('holds a range over thousands of touching windows listed in falling frame order', () => {
    const list: Window[] = [];
    for (let i = 5_000; i > 0; i--) list.push(window(4 * i, 4 * i + 3, 7));
    expect(heldByWindows(list, list.length, 4, 20_003, 7)).toBe(true);
    expect(heldByWindows(list, list.length, 4, 20_004, 7)).toBe(false);
    expect(heldByWindows(list, list.length, 4, 20_003, 8)).toBe(false);
    // A gap: one window of the middle left out.
    const gap = list.filter((w) => w.first !== 10_000);
    expect(heldByWindows(gap, gap.length, 4, 20_003, 7)).toBe(false);
    expect(heldByWindows(gap, gap.length, 10_004, 20_003, 7)).toBe(true);
  });
});
