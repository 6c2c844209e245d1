/**
 * The scoped invariant check after a line reports what the whole-machine check reports there, line
 * by line (packages/vpci/DESIGN.md, "Scoped checks": same violations, same lines), over random traces
 * of every kind of line (test/support/lockstep-traces.ts) and over the replay property's traces
 * (test/support/random-traces.ts), both profiles; and under `hardened` none. Each trace is fed to a
 * scoped and a whole replay together, and their violations compared after every line, so a
 * disagreement names the line where it starts (comparing at the end alone lets the last line's
 * whole check report a late violation as if on time).
 */
import { TraceReplay } from '@vpci/replay';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';
import { randomTraces } from './support/random-traces.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

describe('scoped and whole invariant checks, line by line', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: after every line the same violations, first seen at the same lines`, () => {
      fc.assert(
        fc.property(lockstepPlan(80), (plan) => {
          const scoped = new TraceReplay('t.jsonl');
          const whole = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
          const trace = new LockstepTrace([scoped, whole]);
          const at = trace.start(plan, profile);
          const compare = (): void => {
            const found = json(scoped.replayer.violations);
            const expected = json(whole.replayer.violations);
            if (found !== expected)
              expect.fail(
                `after line ${trace.lines.length}:\n${trace.lines.join('\n')}\nscoped: ${found}\nwhole:  ${expected}`,
              );
            if (profile === 'hardened' && whole.replayer.violations.length > 0)
              expect.fail(
                `hardened violated after line ${trace.lines.length}:\n${trace.lines.join('\n')}\n${expected}`,
              );
          };
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line === undefined) continue;
            if (!trace.feed(line)) {
              expect(json(scoped.error)).toBe(json(whole.error));
              return;
            }
            compare();
          }
        }),
        runs(150),
      );
    });
  }
});

describe('scoped and whole invariant checks, line by line, over the replay property traces', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: after every line the same violations`, () => {
      fc.assert(
        fc.property(randomTraces({ profile }), ({ lines }) => {
          const scoped = new TraceReplay('t.jsonl');
          const whole = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
          for (const [i, line] of lines.entries()) {
            const fed = scoped.feed(line);
            expect(whole.feed(line)).toBe(fed);
            if (!fed) return;
            const found = json(scoped.replayer.violations);
            const expected = json(whole.replayer.violations);
            if (found !== expected)
              expect.fail(`after line ${i + 1}:\n${lines.join('\n')}\nscoped: ${found}\nwhole:  ${expected}`);
          }
        }),
        runs(100),
      );
    });
  }
});
