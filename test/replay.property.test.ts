/**
 * Properties of the replay over random traces (random devices with sub-page BARs packed into shared
 * pages and MSI-X anywhere, guests, config writes of every size at any offset, BAR probes, decoding
 * toggles, preempted work, injected faults, moves between domains):
 * - the scoped invariant check after each line finds exactly the violations, at exactly the lines,
 *   that checking the whole machine after every line finds (both profiles);
 * - replaying is deterministic: the same trace gives the same JSON bytes (invariant 9);
 * - under `hardened` no invariant is ever violated.
 */
import { replayText, reportJson } from '@vpci/replay';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { plans, steps, trace } from './support/random-traces.js';

describe('replay properties', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: scoped invariant checks find what whole checks find, at the same lines`, () => {
      fc.assert(
        fc.property(plans, steps, (p, s) => {
          const text = trace(p, s, profile);
          const scoped = replayText(text, 't.jsonl');
          const full = replayText(text, 't.jsonl', { invariantChecks: 'full' });
          expect(scoped.error).toEqual(full.error);
          // The only bad line these traces can have: an access to a guest's device whose assignment
          // the engine refused (sharing a page with a BAR the hardware domain maps, under hardened);
          // the generator cannot foresee the refusal.
          if (scoped.error !== null) {
            expect(scoped.error.message).toMatch(/is not a device of d\d/);
            expect(scoped.notes.some((n) => /^assign .*: EBUSY$/.test(n.text))).toBe(true);
          }
          expect(scoped.violations).toEqual(full.violations);
          expect(reportJson(scoped)).toBe(reportJson(replayText(text, 't.jsonl')));
          if (profile === 'hardened') expect(scoped.violations).toEqual([]);
        }),
        { numRuns: 300 },
      );
    });
  }
});
