/**
 * The whole-machine invariant check gives each piece of its last answer again while the counts of
 * the changes to what that piece reads stand still (packages/vpci/src/state-generation.ts; on the
 * BARs' sets, while their own count stands too), and its frames in flight are the same. After every
 * line of random
 * traces of every kind (test/support/lockstep-traces.ts) and of the replay property's traces
 * (test/support/random-traces.ts), both profiles, the answer a whole check gives (reused or not) is
 * the one a check with nothing remembered gives. The replays run without checks of their own, so
 * the answer a check reuses is the one made before the line was applied: a change the count misses
 * shows as a stale answer here.
 */
import { TraceReplay } from '@vpci/replay';
import { checkInvariants, type Machine } from '@vpci/vpci';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';
import { randomTraces } from './support/random-traces.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/**
 * Whole checks that reused their last answer and that worked it out, over every run of a property;
 * of those that worked it out, those that kept the domains' parts but the shared pages' (`parts`),
 * those that kept the host pages' list (`hostPages`), those that kept the domains' windows and MSI-X
 * pages (`layouts`); of those that kept the domains' parts, those with some vCPU's work pending
 * (`partsBusy`); and those that kept the BARs' answer.
 */
const tally = { reused: 0, fresh: 0, parts: 0, partsBusy: 0, hostPages: 0, layouts: 0, bars: 0 };

/** Whether some vCPU has work pending (the frames in flight are then compared as they are). */
function busy(machine: Machine): boolean {
  return machine.domains().some((domain) => domain.vcpus.some((vcpu) => vcpu.pending !== undefined));
}

/** A whole check (which may reuse the last one's answer) against one with nothing remembered. */
function compareWithFresh(machine: Machine, where: () => string): void {
  const caches = machine.invariantCaches;
  const before = caches.lastWhole;
  const bars = caches.lastWholeBars;
  const answer = checkInvariants(machine);
  if (before !== undefined && caches.lastWhole === before) tally.reused++;
  else {
    tally.fresh++;
    if (before !== undefined && caches.lastWhole?.mappings === before.mappings) tally.parts++;
    if (before !== undefined && caches.lastWhole?.mappings === before.mappings && busy(machine))
      tally.partsBusy++;
    if (before !== undefined && caches.lastWhole?.hostPages === before.hostPages) tally.hostPages++;
    if (before !== undefined && caches.lastWhole?.layouts === before.layouts) tally.layouts++;
  }
  if (bars !== undefined && caches.lastWholeBars === bars) tally.bars++;
  // Forgotten, every part: the domains' answer with its parts and host pages, and the BARs'.
  caches.lastWhole = undefined;
  caches.lastWholeBars = undefined;
  const fresh = checkInvariants(machine);
  const found = json(answer);
  const expected = json(fresh);
  if (found !== expected) expect.fail(`${where()}\nreused: ${found}\nfresh:  ${expected}`);
}

describe('a whole check reused while nothing changed equals a fresh one, line by line', () => {
  // Reuse must happen (lines that change nothing a check reads are common) and so must fresh work.
  afterAll(() => {
    expect(tally.reused).toBeGreaterThan(0);
    expect(tally.fresh).toBeGreaterThan(0);
    expect(tally.parts).toBeGreaterThan(0);
    expect(tally.hostPages).toBeGreaterThan(0);
    expect(tally.layouts).toBeGreaterThan(0);
    expect(tally.partsBusy).toBeGreaterThan(0);
    expect(tally.bars).toBeGreaterThan(0);
  });

  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: lockstep traces of every kind of line`, () => {
      fc.assert(
        fc.property(lockstepPlan(60), (plan) => {
          const replay = new TraceReplay('t.jsonl', { invariantChecks: 'off' });
          const trace = new LockstepTrace([replay]);
          const at = trace.start(plan, profile);
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line === undefined) continue;
            if (!trace.feed(line)) return;
            compareWithFresh(
              replay.replayer.machine!,
              () => `after line ${trace.lines.length}:\n${trace.lines.join('\n')}`,
            );
          }
        }),
        runs(60),
      );
    });

    it(`${profile}: the replay property's traces`, () => {
      fc.assert(
        fc.property(randomTraces({ profile }), ({ lines }) => {
          const replay = new TraceReplay('t.jsonl', { invariantChecks: 'off' });
          for (const [i, line] of lines.entries()) {
            if (!replay.feed(line)) return;
            const machine = replay.replayer.machine;
            if (machine !== undefined)
              compareWithFresh(machine, () => `after line ${i + 1}:\n${lines.join('\n')}`);
          }
        }),
        runs(60),
      );
    });
  }
});
