/**
 * `heldByWindows`: whether enabled BARs' windows with one guest → machine shift hold every frame of a
 * range (the checks' question for an MMIO extent, and for a page a BAR needs mapped).
 */
import type { Window } from './bar-windows.js';
import { sortSmall } from './small-sort.js';

/**
 * Whether the first `count` of `windows` with guest → machine `shift` hold all of `[first, last]`.
 * The usual case (one BAR, or the hardware domain's neighbouring BARs merged into one extent, listed
 * in frame order) is answered by one pass over the list without building one. Windows listed out of
 * frame order are then taken in frame order: a pass in list order moves on by one window when they
 * come in falling order, which made this quadratic in the windows and a check of thousands of
 * touching BARs enabled one by one cubic over the trace.
 */
export function heldByWindows(
  windows: readonly Window[],
  count: number,
  first: number,
  last: number,
  shift: number,
): boolean {
  let from = first;
  for (let i = 0; i < count; i++) {
    const w = windows[i]!;
    if (w.shift === shift && w.first <= from && from <= w.last) from = w.last + 1;
  }
  if (from > last) return true;
  // What is left, from `from` on: the windows meeting it, in frame order, each continuing the last.
  const meeting = meetingScratch;
  let found = 0;
  for (let i = 0; i < count; i++) {
    const w = windows[i]!;
    if (w.shift === shift && w.last >= from && w.first <= last) meeting[found++] = w;
  }
  sortSmall(meeting, byFirst, found);
  for (let i = 0; i < found && meeting[i]!.first <= from; i++) {
    from = Math.max(from, meeting[i]!.last + 1);
    if (from > last) return true;
  }
  return false;
}

/**
 * The windows one question found, refilled from the start and never emptied (`length = 0` gives an
 * array's store up). What it holds past the last question's count is stale and never read.
 */
const meetingScratch: Window[] = [];

const byFirst = (a: Window, b: Window): number => a.first - b.first;
