/**
 * The indexes that keep a line's checks and `modifyBars` from walking every device (packages/replay
 * DESIGN.md, "Benchmark figures"), each against a naive recomputation from the machine as it stands,
 * after every line of random traces of every kind (test/support/lockstep-traces.ts), both profiles:
 * - per domain, the enabled windows and MSI-X pages by guest frame (window-index.ts): the same ones,
 *   in the same order, as a walk over the domain's devices by SBDF finds;
 * - machine-wide, every device's host pages by machine frame with its owner (host-pages.ts);
 * - per domain, the enabled BARs `modifyBars`' overlap walk acts on (enabled-bars.ts): a replay whose
 *   machine has no index walks every device of the domain as Xen's `modify_bars` does with
 *   `for_each_pdev` (xen/drivers/vpci/header.c), and must give the same events, mappings and
 *   violations line by line.
 * - machine-wide, the vCPUs with pending work and per device the vCPUs holding work on it
 *   (pending-vcpus.ts): the same ones, in the same order, as a walk over every domain's vCPUs finds,
 *   after every line of these traces and of the fuzzer's (several vCPUs with work pending at once).
 * The whole-machine checks read none of these indexes, so test/scoped-checks.property.test.ts, which
 * compares them with the scoped checks, tests them too; this names the index that goes wrong.
 */
import { TraceReplay } from '@vpci/replay';
import type { Domain, Machine, PciDevice, Vcpu } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceWindowsCache, type MsixPages, type Window } from '../packages/vpci/src/bar-windows.js';
import { mappingDomain } from '../packages/vpci/src/context.js';
import { effectiveOwner, hostBarFrames } from '../packages/vpci/src/ownership.js';
import { type DomainLayout, walkedLayout } from '../packages/vpci/src/window-index.js';
import { checkEnabledBars } from './support/enabled-bars-walk.js';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';
import { randomTraces } from './support/random-traces.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
const windowText = (w: Window): string => `${w.device.name}/${w.bar.index} ${w.first}-${w.last}+${w.shift}`;
const msixText = (p: MsixPages): string => `${p.device.name}#${p.position} ${p.first}-${p.last}`;

/**
 * Every kept window index against the walk, over the frames of every window and MSI-X page. A device
 * left with no enabled BAR on a line no check followed keeps its windows there until the next check
 * (`DomainWindowIndexes.defer`): it is left out on both sides, and must have no enabled BAR.
 */
function checkWindowIndexes(machine: Machine): void {
  const indexes = machine.invariantCaches.windowIndexes;
  for (const device of machine.devices())
    if (indexes.awaitsUpdate(device))
      expect(device.vpci?.bars.some((bar) => bar.enabled) ?? false, `${device.name} deferred`).toBe(false);
  const current = <T extends { device: PciDevice }>(list: readonly T[]): T[] =>
    list.filter((item) => !indexes.awaitsUpdate(item.device));
  for (const domain of machine.domains()) {
    const kept = indexes.kept(domain);
    if (kept === undefined) continue;
    const devices = machine
      .devices()
      .filter((device) => device.vpci !== undefined && mappingDomain(machine, device) === domain);
    const fresh = new DeviceWindowsCache();
    const walked = walkedLayout(devices.map((device) => fresh.windowsOf(device)));
    const queries: [number, number][] = [[0, 2 ** 53]];
    for (const w of walked.windowsIn(undefined)) queries.push([w.first, w.last], [w.last, w.last + 1]);
    for (const p of walked.msixIn(undefined)) queries.push([p.first, p.last], [p.first - 1, p.first]);
    // First, as the lines that finish a map or unmap ask it: the searches below bring every device
    // the index keeps late up to date (`DomainWindowIndex.replaceLater`), this does not.
    checkOthersMayMeet(machine, domain, devices, walked, queries);
    for (const [first, last] of queries) {
      const where = `d${domain.id} [${first}, ${last}]`;
      expect(current(kept.windowsMeeting(first, last)).map(windowText), where).toEqual(
        current(walked.windowsMeeting(first, last)).map(windowText),
      );
      expect(current(kept.msixMeeting(first, last)).map(msixText), where).toEqual(
        current(walked.msixMeeting(first, last)).map(msixText),
      );
      expect(current(kept.windowsIn([[first, last]])).map(windowText), where).toEqual(
        current(walked.windowsIn([[first, last]])).map(windowText),
      );
    }
  }
}

/**
 * `othersMayMeet` of each device over each of `queries` against the walk's windows and MSI-X pages of
 * the domain's other devices: true wherever one meets them; where none does, false, unless a device
 * awaits its update (`defer`: the index may hold its windows as they were, which only make it say
 * true).
 */
function checkOthersMayMeet(
  machine: Machine,
  domain: Domain,
  devices: readonly PciDevice[],
  walked: DomainLayout,
  queries: readonly (readonly [number, number])[],
): void {
  const indexes = machine.invariantCaches.windowIndexes;
  const exact = !machine.devices().some((device) => indexes.awaitsUpdate(device));
  for (const device of devices)
    for (const [first, last] of queries) {
      const others =
        walked.windowsMeeting(first, last).some((w) => w.device !== device) ||
        walked.msixMeeting(first, last).some((p) => p.device !== device);
      const answer = indexes.othersMayMeet(machine, domain, device, first, last);
      const where = `d${domain.id} ${device.name} [${first}, ${last}]`;
      if (others || exact) expect(answer, where).toBe(others);
    }
}

/** The kept host-page index against every device's pages and owner read again. */
function checkHostPageIndex(machine: Machine): void {
  const indexed = machine.invariantCaches.hostPages.indexedPages();
  // None kept, or BARs moved on a line the replay did not check (the next check takes them in).
  if (indexed === undefined || machine.invariantCaches.hostPages.awaitsMoves()) return;
  const found = indexed
    .map((spot) => `${spot.device.name}#${spot.position} ${spot.frames[0]}-${spot.frames[1]} d${spot.owner}`)
    .sort();
  const expected = machine
    .devices()
    .flatMap((device) =>
      hostBarFrames(device).map(
        (frames, position) =>
          `${device.name}#${position} ${frames[0]}-${frames[1]} d${effectiveOwner(machine, device)}`,
      ),
    )
    .sort();
  expect(found).toEqual(expected);
}

/**
 * The record of vCPUs with pending work against the walk over every domain's vCPUs (domain id, then
 * vCPU id), for every device, and from every vCPU the next one with work the walk would meet.
 */
function checkPendingRecord(machine: Machine, where: string): void {
  const record = machine.pendingVcpus;
  const all = machine.domains().flatMap((domain) => domain.vcpus);
  const walk = all.filter((vcpu) => vcpu.pending !== undefined);
  const names = (vcpus: readonly Vcpu[]): string[] => vcpus.map((vcpu) => vcpu.name);
  expect(names(record.vcpus()), where).toEqual(names(walk));
  for (const device of machine.devices())
    expect(names(record.on(device)), `${where}, ${device.name}`).toEqual(
      names(walk.filter((vcpu) => vcpu.pending!.device === device)),
    );
  for (const [at, vcpu] of all.entries())
    expect(record.after(vcpu)?.name, `${where}, after ${vcpu.name}`).toBe(
      all.slice(at + 1).find((other) => other.pending !== undefined)?.name,
    );
}

describe('the check and modifyBars indexes against naive recomputations, line by line', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: windows, MSI-X pages, host pages and modifyBars' enabled BARs`, () => {
      fc.assert(
        fc.property(lockstepPlan(60), (plan) => {
          const indexed = new TraceReplay('t.jsonl');
          const walking = new TraceReplay('t.jsonl');
          const trace = new LockstepTrace([indexed, walking]);
          const at = trace.start(plan, profile);
          // Without the index, modifyBars walks every device of the domain (Xen's for_each_pdev).
          Object.defineProperty(walking.replayer.machine!, 'enabledBars', { value: undefined });
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line === undefined) continue;
            const fed = trace.feed(line);
            const context = `after line ${trace.lines.length}:\n${trace.lines.join('\n')}`;
            expect(json(indexed.error), context).toBe(json(walking.error));
            if (!fed) return;
            const a = indexed.replayer.machine!;
            const b = walking.replayer.machine!;
            expect(json(indexed.replayer.violations), context).toBe(json(walking.replayer.violations));
            expect(json(a.domains().map((d) => [...d.p2m.extents()])), context).toBe(
              json(b.domains().map((d) => [...d.p2m.extents()])),
            );
            checkWindowIndexes(a);
            checkHostPageIndex(a);
            checkEnabledBars(a);
            checkPendingRecord(a, `after line ${trace.lines.length}`);
          }
          expect(json(indexed.end()), 'the reports (events included)').toBe(json(walking.end()));
        }),
        runs(60),
      );
    });
  }
});

describe('the record of vCPUs with pending work against a walk, over the fuzzer traces', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: after every line, the same vCPUs in the same order, and per device`, () => {
      fc.assert(
        fc.property(randomTraces({ profile }), ({ lines }) => {
          const replay = new TraceReplay('t.jsonl');
          for (const [i, line] of lines.entries()) {
            if (!replay.feed(line)) return;
            const machine = replay.replayer.machine;
            if (machine !== undefined)
              checkPendingRecord(machine, `after line ${i + 1}:\n${lines.join('\n')}\n`);
          }
          replay.end();
          checkPendingRecord(replay.replayer.machine!, `at the end:\n${lines.join('\n')}\n`);
        }),
        runs(80),
      );
    });
  }
});
