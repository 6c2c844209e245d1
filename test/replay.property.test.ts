/**
 * Properties of the replay over random traces (@vpci/fuzz's `arbTrace`: random devices with sub-page
 * BARs packed into shared pages and MSI-X anywhere, hidden and hot-plugged devices, resizable BARs,
 * e820 entries over BARs, guests with several vCPUs, config writes of every size at any offset by the
 * owner or by dom0 on the hardware, BAR probes and overlaps, decoding toggles, preempted work,
 * injected faults, moves between domains, unplugs):
 * - the scoped invariant check after each line finds exactly the violations, at exactly the lines,
 *   that checking the whole machine after every line finds (both profiles);
 * - replaying is deterministic: the same trace gives the same JSON bytes (invariant 9);
 * - under `hardened` no invariant is ever violated;
 * - a write the register dispatch calls inert (`writeMayChangeDevice`: the replay neither snapshots
 *   nor checks it) leaves everything a `DeviceSnapshot` records of its device as it was;
 * - replaying from bytes (`feedLine`, the CLI's way: compact write lines' keys keep their write
 *   targets) reports what feeding the lines as text reports.
 */
import { parseTraceLine, replayText, reportJson, TraceReplay } from '@vpci/replay';
import { DeviceSnapshot, writeMayChangeDevice } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { reached } from './support/machine.js';
import { randomTraces } from './support/random-traces.js';

describe('replay properties', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: scoped invariant checks find what whole checks find, at the same lines`, () => {
      fc.assert(
        fc.property(randomTraces({ profile }), ({ text }) => {
          const scoped = replayText(text, 't.jsonl');
          const full = replayText(text, 't.jsonl', { invariantChecks: 'full' });
          // The traces are written against the machine as it is line by line: no line is bad.
          expect(scoped.error).toBeNull();
          expect(full.error).toBeNull();
          expect(scoped.violations).toEqual(full.violations);
          expect(reportJson(scoped)).toBe(reportJson(replayText(text, 't.jsonl')));
          if (profile === 'hardened') expect(scoped.violations).toEqual([]);
        }),
        runs(300),
      );
    });
  }

  // Under every rule set: each marks its own command register's writes (`RuleSet.commandMaps`), and
  // cloud-hypervisor's once called a decoding flip inert (it maps nothing, but decoding follows it).
  const inertCases = [
    { profile: 'xen', rules: undefined, runs: 150 },
    { profile: 'hardened', rules: undefined, runs: 150 },
    { profile: 'xen', rules: 'qemu', runs: 50 },
    { profile: 'xen', rules: 'kvm-vfio', runs: 50 },
    { profile: 'xen', rules: 'cloud-hypervisor', runs: 50 },
  ] as const;
  for (const { profile, rules, runs: count } of inertCases) {
    it(`${profile}${rules === undefined ? '' : ` (${rules})`}: a write writeMayChangeDevice calls inert changes nothing a DeviceSnapshot records`, () => {
      let inert = 0;
      fc.assert(
        fc.property(
          randomTraces({ profile, ...(rules === undefined ? {} : { rules }) }),
          ({ text: trace }) => {
            const replay = new TraceReplay('t.jsonl', rules === undefined ? {} : { rules });
            const snapshot = new DeviceSnapshot();
            for (const text of trace.split('\n')) {
              const event = parseTraceLine(text, replay.lines + 1);
              const machine = replay.replayer.machine;
              let taken = false;
              if (event?.event === 'write' && event.via !== 'ecam' && machine?.systemActive) {
                const vcpu = machine.findDomain(event.vcpu.domain)?.vcpus[event.vcpu.vcpu];
                const target = vcpu === undefined ? undefined : reached(machine, vcpu, event.sbdf);
                if (vcpu !== undefined && target !== undefined) {
                  taken = !writeMayChangeDevice(machine, vcpu, target, event.reg, event.size, event.value);
                  if (taken) snapshot.take(machine, target);
                }
              }
              if (!replay.feed(text)) break;
              if (taken) {
                inert++;
                expect(snapshot.unchanged(replay.replayer.machine!), text).toBe(true);
              }
            }
          },
        ),
        runs(count),
      );
      expect(inert).toBeGreaterThan(count / 4); // the inert path was exercised
    });
  }

  // What the CLI does: each compact write line's key keeps the vCPU and device it reached
  // (packages/replay write-target.ts) across the traces' unplugs, moves between domains and VFs.
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: a trace replayed from its bytes, its keys keeping their write targets, reports as fed line by line`, () => {
      fc.assert(
        fc.property(randomTraces({ profile }), ({ text }) => {
          const bytes = Buffer.from(text);
          const replay = new TraceReplay('t.jsonl');
          for (let at = 0; at >= 0 && at < bytes.length; ) at = replay.feedLine(bytes, at, bytes.length);
          expect(reportJson(replay.end())).toBe(reportJson(replayText(text, 't.jsonl')));
        }),
        runs(100),
      );
    });
  }
});
