/**
 * A map over its own mapping is bounded by extents, not frames (issue 16): remapping a 1 TiB BAR
 * (2^28 frames) that is already mapped takes a handful of p2m steps, while its counts stay Xen's.
 * Xen's figures (xen/arch/x86/mm/p2m.c): `map_mmio_regions` does at most MAP_MMIO_MAX_ITER = 64
 * chunks a call, each of `mmio_order`'s order (4K without 2M pages, 2M for a 2M-aligned run with
 * 512 frames left); `set_typed_p2m_entry` over the same mmio_direct mapping returns 0 and writes
 * nothing. Steps are counted (lookups, run searches, entry writes), not timed.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { gfn, mfn } from './frame.js';
import { mapMmio, mmioCallRun } from './mmio.js';
import { P2m } from './p2m.js';

const TIB_FRAMES = 2 ** 28;
const FIRST = 2 ** 28; // gfn and mfn of the BAR at 1 TiB: 2M-aligned

/** Maps `count` frames as vPCI's loop does with no preemption budget: closed-form calls, then calls. */
function mapAll(p2m: P2m, count: number): void {
  let done = 0;
  for (let steps = 0; done < count; steps++) {
    if (steps > 1000) throw new Error('the map took more than 1000 steps');
    const run = mmioCallRun(p2m, true, gfn(FIRST + done), count - done, mfn(FIRST + done), Infinity);
    if (run > 0) {
      done += run;
      continue;
    }
    const r = mapMmio(p2m, gfn(FIRST + done), count - done, mfn(FIRST + done));
    if (!r.ok) throw new Error(`map failed: ${r.code}`);
    done = r.done ? count : done + r.progress;
  }
}

/** Counts the p2m steps of `work`: per-chunk lookups, run searches and entry writes. */
function countSteps(work: () => void): number {
  const spies = [
    vi.spyOn(P2m.prototype, 'lookup'),
    vi.spyOn(P2m.prototype, 'holeRun'),
    vi.spyOn(P2m.prototype, 'sameMappingRun'),
    vi.spyOn(P2m.prototype, 'setEntry'),
    vi.spyOn(P2m.prototype, 'writeRun'),
  ];
  work();
  return spies.reduce((sum, spy) => sum + spy.mock.calls.length, 0);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('a remap of a 1 TiB BAR over its own mapping', () => {
  for (const superpages2M of [false, true]) {
    const leafFrames = superpages2M ? 512 : 1;
    it(`${superpages2M ? '2M' : '4K'} leaves: a few steps, no write, Xen's calls and leaves counted`, () => {
      const p2m = new P2m({ superpages2M });
      mapAll(p2m, TIB_FRAMES);
      const extents = [...p2m.extents()];
      const writes = p2m.writes;
      const before = { ...p2m.mmioCost };
      const steps = countSteps(() => mapAll(p2m, TIB_FRAMES));
      expect(steps).toBeLessThanOrEqual(8);
      expect(p2m.writes).toBe(writes);
      expect([...p2m.extents()]).toEqual(extents);
      const leaves = TIB_FRAMES / leafFrames;
      expect(p2m.mmioCost).toEqual({
        ...before,
        mapCalls: before.mapCalls + leaves / 64,
        leaves4K: before.leaves4K + (superpages2M ? 0 : leaves),
        leaves2M: before.leaves2M + (superpages2M ? leaves : 0),
      });
    });
  }
});
