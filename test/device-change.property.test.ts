/**
 * What `DeviceSnapshot.change` says a line changed of a device decides how much the replayer checks
 * after it: nothing for `none` and `busy`, the device's own checks and the sharing check of its host
 * pages for `host` (packages/vpci/DESIGN.md, "Scoped checks"). Held here against the whole-machine
 * check, not against the scoped checks it narrows: over random traces of every kind of line
 * (test/support/lockstep-traces.ts), both profiles, every device of the machine is snapshotted
 * before each config access or `run` line and classified after it, and
 * - when no device changed more than `busy`, the whole check after the line finds nothing it did not
 *   find before it (a device that became busy is only excused more);
 * - when no device changed more than `host`, everything new the whole check finds is found by a
 *   check scoped to those devices and their host pages before and after, with no guest frame;
 *   and nothing new at all when each of them says so (`hostChangeFindsNothing`: its sets empty, no
 *   domain mapping MMIO on its host pages then or now), where the replayer checks nothing.
 * Each kind must come up in the runs, so neither claim holds only because it was never put to the test.
 */

import { TraceReplay } from '@vpci/replay';
import {
  checkInvariants,
  type DeviceChange,
  DeviceSnapshot,
  type FrameRange,
  framesOf,
  type Machine,
  type PciDevice,
  type Violation,
} from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
const RANK: Record<DeviceChange, number> = { none: 0, busy: 1, host: 2, frames: 3 };
const ACCESS = /^\{"event":"(write|read|mmio|run)"/;

/** The violations of `after` that `before` does not hold, as JSON. */
function added(before: readonly Violation[], after: readonly Violation[]): string[] {
  const known = new Set(before.map(json));
  return after.map(json).filter((v) => !known.has(v));
}

describe('DeviceSnapshot.change against the whole check', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: a busy line finds nothing new; a host line's new violations are at its host pages`, () => {
      const seen: Record<DeviceChange | 'quiet' | 'loud', number> = {
        none: 0,
        busy: 0,
        host: 0,
        frames: 0,
        quiet: 0,
        loud: 0,
      };
      fc.assert(
        fc.property(lockstepPlan(60), (plan) => {
          // Every line checked whole: the replay's own checks never run scoped, so the check
          // below starts from caches a whole check left (it rebuilds them from the machine).
          const replay = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
          const trace = new LockstepTrace([replay]);
          const at = trace.start(plan, profile);
          const snapshots = new Map<PciDevice, DeviceSnapshot>();
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line === undefined) continue;
            const machine: Machine = replay.replayer.machine!;
            const devices = machine.devices();
            const owners = devices.map((d) => d.domain);
            for (const device of devices) {
              const snapshot = snapshots.get(device) ?? new DeviceSnapshot();
              snapshots.set(device, snapshot);
              snapshot.take(machine, device);
            }
            const before = checkInvariants(machine);
            if (!trace.feed(line)) return;
            // Ownership or the device list changed: the replayer checks the whole machine then.
            const now = machine.devices();
            if (!ACCESS.test(line) || now.length !== devices.length || now.some((d, i) => d !== devices[i]))
              continue;
            if (now.some((d, i) => d.domain !== owners[i])) continue;
            let most: DeviceChange = 'none';
            const changed: DeviceChange[] = devices.map((d) => snapshots.get(d)!.change(machine));
            for (const change of changed) if (RANK[change] > RANK[most]) most = change;
            seen[most]++;
            if (most === 'frames' || most === 'none') continue;
            const after = checkInvariants(machine);
            const found = added(before, after);
            if (most === 'busy') {
              if (found.length > 0)
                expect.fail(
                  `busy line ${trace.lines.length}:\n${trace.lines.join('\n')}\nnew: ${found.join('\n')}`,
                );
              continue;
            }
            // Where every device that changed says a check can find nothing (its sets empty, no
            // domain mapping MMIO on its host pages), the replayer checks nothing: the whole
            // check must find nothing new either.
            const quiet = devices.every(
              (d, i) => changed[i] !== 'host' || snapshots.get(d)!.hostChangeFindsNothing(machine),
            );
            if (quiet) {
              seen.quiet++;
              if (found.length > 0)
                expect.fail(
                  `host line ${trace.lines.length} said to find nothing:\n${trace.lines.join('\n')}\nnew: ${found.join('\n')}`,
                );
            } else seen.loud++;
            const scope = new Set<PciDevice>();
            const hostFrames: FrameRange[] = [];
            devices.forEach((device, i) => {
              if (changed[i] !== 'host') return;
              scope.add(device);
              snapshots.get(device)!.scopeFrames(machine, undefined, hostFrames);
            });
            // The scoped check after a whole one (which dropped what the scoped checks remember).
            checkInvariants(machine);
            const scoped = new Set(
              checkInvariants(machine, { devices: scope, frames: new Map(), hostFrames }).map(json),
            );
            const missed = found.filter((v) => !scoped.has(v));
            if (missed.length > 0)
              expect.fail(
                `host line ${trace.lines.length}:\n${trace.lines.join('\n')}\nmissed: ${missed.join('\n')}`,
              );
          }
        }),
        runs(120),
      );
      expect(seen.busy, json(seen)).toBeGreaterThan(0);
      expect(seen.host, json(seen)).toBeGreaterThan(0);
      expect(seen.quiet, json(seen)).toBeGreaterThan(0);
      expect(seen.loud, json(seen)).toBeGreaterThan(0);
    });
  }
});

/**
 * `DeviceSnapshot.take` records what a device's guest frames are made of and works them out only
 * when a check asks for them after the line (most lines change nothing a check reads). Held here
 * against `framesOf` at `take` (the frames listed then, eagerly): over random traces of every kind
 * of line, both profiles, every device is snapshotted before each line and its frames asked for
 * after it, whatever it changed; among them lines that moved or resized a BAR in between, so the
 * frames worked out from the recorded address are put to the test, not only the BAR's remembered ones.
 */
/** The frames `ranges` cover, as sorted, disjoint, non-adjacent inclusive ranges. */
function unionOf(ranges: readonly FrameRange[]): FrameRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1] + 1) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

describe('DeviceSnapshot.frames after the line against framesOf at take', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: the guest and host frames the device had at take`, () => {
      let compared = 0;
      let moved = 0;
      fc.assert(
        fc.property(lockstepPlan(60), (plan) => {
          const replay = new TraceReplay('t.jsonl', { invariantChecks: 'off' });
          const trace = new LockstepTrace([replay]);
          const at = trace.start(plan, profile);
          const snapshots = new Map<PciDevice, DeviceSnapshot>();
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line === undefined) continue;
            const machine: Machine = replay.replayer.machine!;
            const devices = machine.devices();
            const expected = devices.map((device) => {
              const snapshot = snapshots.get(device) ?? new DeviceSnapshot();
              snapshots.set(device, snapshot);
              snapshot.take(machine, device);
              const guest: FrameRange[] = [];
              const host: FrameRange[] = [];
              framesOf(device, guest, host, machine);
              const where = device.vpci?.bars.map((bar) => `${bar.guestAddr}+${bar.size}`).join() ?? '';
              return { guest: json(unionOf(guest)), host: json(host), where };
            });
            if (!trace.feed(line)) return;
            devices.forEach((device, i) => {
              const { guest, host } = snapshots.get(device)!.frames();
              const then = expected[i]!;
              const where = device.vpci?.bars.map((bar) => `${bar.guestAddr}+${bar.size}`).join() ?? '';
              if (where !== then.where) moved++;
              compared++;
              // A pending set within its BAR's frames is left out (`guestFramesOf`): the union counts.
              if (json(unionOf(guest)) !== then.guest || json(host) !== then.host)
                expect.fail(
                  `line ${trace.lines.length}, ${device.name}:\n${trace.lines.join('\n')}\nframes at take ${then.guest} ${then.host}, given after ${json(guest)} ${json(host)}`,
                );
            });
          }
        }),
        runs(60),
      );
      expect(moved, `${moved} of ${compared}`).toBeGreaterThan(0);
    });
  }
});
