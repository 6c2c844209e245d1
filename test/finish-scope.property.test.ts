/**
 * The replay leaves the written device out of a line's check when its vCPU first finishes work
 * pending on another device and the write itself reaches nothing a `DeviceSnapshot` records
 * (`writeReachesDevice` false: a running driver's write, made first thing after a decoding toggle).
 * What finishing the work (Xen's `vpci_process_pending`) changes is then the pending device and the
 * p2m of its domain on its own frames. Held here against the whole-machine check: over random traces
 * of every kind of line (test/support/lockstep-traces.ts), both profiles, at every such write,
 * everything new the whole check finds after the line is found by a check scoped to the pending
 * device alone (its guest frames before and after, in the domain it maps into then and now, and its
 * host pages), as the replayer scopes it. Such writes must come up in the runs.
 */

import { parseTraceLine, TraceReplay } from '@vpci/replay';
import {
  checkInvariants,
  DeviceSnapshot,
  type Domain,
  type FrameRange,
  type Machine,
  mappingDomain,
  type Violation,
  writeReachesDevice,
} from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';
import { reached } from './support/machine.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/** The violations of `after` that `before` does not hold, as JSON. */
function added(before: readonly Violation[], after: readonly Violation[]): string[] {
  const known = new Set(before.map(json));
  return after.map(json).filter((v) => !known.has(v));
}

describe('a write whose vCPU finishes work on another device first, against the whole check', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: what the whole check finds new, a check of the pending device finds`, () => {
      let lines = 0;
      let withViolations = 0;
      fc.assert(
        fc.property(lockstepPlan(60), (plan) => {
          // Every line checked whole, so the scoped check below starts from caches a whole check left.
          const replay = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
          const trace = new LockstepTrace([replay]);
          const at = trace.start(plan, profile);
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line === undefined) continue;
            const machine: Machine = replay.replayer.machine!;
            const event = parseTraceLine(line, replay.lines + 1);
            const vcpu =
              event?.event === 'write' && event.via !== 'ecam' && machine.systemActive
                ? machine.findDomain(event.vcpu.domain)?.vcpus[event.vcpu.vcpu]
                : undefined;
            const pending = vcpu?.pending?.device;
            const target =
              vcpu === undefined || event?.event !== 'write' ? undefined : reached(machine, vcpu, event.sbdf);
            if (
              event?.event !== 'write' ||
              vcpu === undefined ||
              pending === undefined ||
              target === undefined ||
              target === pending ||
              pending.hw.sriov !== undefined ||
              target.hw.sriov !== undefined ||
              typeof event.value !== 'number' ||
              writeReachesDevice(machine, vcpu, target, event.reg, event.size, event.value)
            ) {
              if (!trace.feed(line)) return;
              continue;
            }
            lines++;
            const snapshot = new DeviceSnapshot();
            snapshot.take(machine, pending);
            const before = checkInvariants(machine);
            if (!trace.feed(line)) return;
            const found = added(before, checkInvariants(machine));
            if (found.length > 0) withViolations++;
            const frames = new Map<Domain, FrameRange[]>();
            const framesIn = (domain: Domain | undefined): FrameRange[] | undefined => {
              if (domain === undefined) return undefined;
              if (!frames.has(domain)) frames.set(domain, []);
              return frames.get(domain);
            };
            const hostFrames: FrameRange[] = [];
            snapshot.scopeFrames(
              machine,
              framesIn(snapshot.domain),
              hostFrames,
              framesIn(mappingDomain(machine, pending)),
            );
            // The scoped check after a whole one (which dropped what the scoped checks remember).
            checkInvariants(machine);
            const scoped = new Set(
              checkInvariants(machine, { devices: new Set([pending]), frames, hostFrames }).map(json),
            );
            const missed = found.filter((v) => !scoped.has(v));
            if (missed.length > 0)
              expect.fail(
                `line ${trace.lines.length}:\n${trace.lines.join('\n')}\nmissed: ${missed.join('\n')}`,
              );
          }
        }),
        runs(120),
      );
      expect(lines).toBeGreaterThan(0);
      if (profile === 'xen') expect(withViolations).toBeGreaterThan(0);
    });
  }
});
