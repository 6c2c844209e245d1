/**
 * `Machine.configWriteIfInert`, the replay's path for a write that can change nothing an invariant
 * reads (the device and its register handlers looked up once, for the decision and the write),
 * against the naive pair it stands for: `writeMayChangeDevice` (device-snapshot.ts), then
 * `configWrite` (Xen's `vpci_write` dispatch). Two replays of each random trace in lockstep, every
 * line checked whole so the naive one makes every write with `configWrite`: before each CF8 write the
 * fast one's machine is offered the write. It must make it exactly when `writeMayChangeDevice` calls
 * it inert on the naive one's machine, logging the engine events the naive replay logs for the line
 * (the fast replay then skips the line), and the two machines must end alike.
 */
import { parseTraceLine, TraceReplay } from '@vpci/replay';
import { writeMayChangeDevice } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { reached } from './support/machine.js';
import { randomTraces } from './support/random-traces.js';

describe('Machine.configWriteIfInert against writeMayChangeDevice and configWrite', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: makes a write exactly when it is inert, as configWrite makes it`, () => {
      let made = 0;
      let refused = 0;
      fc.assert(
        fc.property(randomTraces({ profile }), ({ text: trace }) => {
          const naive = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
          const fast = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
          for (const text of trace.split('\n')) {
            const event = parseTraceLine(text, naive.lines + 1);
            const a = naive.replayer.machine;
            const b = fast.replayer.machine;
            let taken = false;
            if (event?.event === 'write' && event.via !== 'ecam' && a?.systemActive && b !== undefined) {
              const { domain, vcpu } = event.vcpu;
              const vcpuA = a.findDomain(domain)?.vcpus[vcpu];
              const vcpuB = b.findDomain(domain)?.vcpus[vcpu];
              if (vcpuA !== undefined && vcpuB !== undefined && vcpuA.pending === undefined) {
                const target = reached(a, vcpuA, event.sbdf);
                const inert =
                  target !== undefined &&
                  !writeMayChangeDevice(a, vcpuA, target, event.reg, event.size, event.value);
                taken = b.configWriteIfInert(vcpuB, event.sbdf, event.reg, event.size, event.value);
                expect(taken, text).toBe(inert);
                if (taken) made++;
                else refused++;
              }
            }
            const fed = naive.feed(text);
            if (taken) {
              const logged = naive.replayer.events.filter((e) => e.line === naive.lines).map((e) => e.event);
              expect(b!.events.splice(0), text).toEqual(logged);
              fast.feed('# made by configWriteIfInert'); // a comment: the line numbers stay in step
            } else expect(fast.feed(text), text).toBe(fed);
            if (!fed) break;
          }
          const [left, right] = [naive.end(), fast.end()];
          expect(right.error).toEqual(left.error);
          expect(right.devices).toEqual(left.devices);
          expect(right.domains).toEqual(left.domains);
          expect(right.violations).toEqual(left.violations);
        }),
        runs(120),
      );
      // Both answers were exercised.
      expect(made).toBeGreaterThan(40);
      expect(refused).toBeGreaterThan(40);
    });
  }
});
