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
import { DeviceSnapshot } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';
import { randomTraces } from './support/random-traces.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/** What a lockstep trace must reach in the runs: the corners @vpci/fuzz's traces reach too. */
const CORNERS = [
  'set-up failed at boot',
  'set-up failed on hot plug',
  'IOMMU refused a hot plug',
  "IOMMU refused a phantom function's hot plug",
  'read-only write dropped',
  'assignment failed in the IOMMU',
  'plugged back in',
] as const;

/** The corners of `CORNERS` one replayed trace (its `lines`) reached, each once at most. */
function cornersOf(replay: TraceReplay, lines: readonly string[]): Set<string> {
  const found = new Set<string>();
  for (const { event } of replay.replayer.events) {
    if (event.kind === 'vpci-setup-failed')
      found.add(event.hotPlug ? 'set-up failed on hot plug' : 'set-up failed at boot');
    else if (event.kind === 'iommu-add-failed')
      found.add(
        event.sbdf === event.device
          ? 'IOMMU refused a hot plug'
          : "IOMMU refused a phantom function's hot plug",
      );
    else if (event.kind === 'access-dropped' && event.reason === 'read-only')
      found.add('read-only write dropped');
  }
  // A failed assignment's note names the IOMMU fault's code (docs/trace-format.md, `fault`).
  if (replay.replayer.notes.some((n) => /^assign \S+: E(NOMEM|PERM|NODEV)$/.test(n.text)))
    found.add('assignment failed in the IOMMU');
  const plugged = new Set<string>();
  for (const line of lines) {
    const sbdf = /^\{"event":"device","sbdf":"([^"]+)"/.exec(line)?.[1];
    if (sbdf === undefined) continue;
    if (plugged.has(sbdf)) found.add('plugged back in');
    plugged.add(sbdf);
  }
  return found;
}

describe('scoped and whole invariant checks, line by line', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: after every line the same violations, first seen at the same lines`, () => {
      // The lines the replay leaves unchecked because an unmap left the device with nothing mapped
      // (DeviceSnapshot.leftUnmappedFindsNothing) must come up, so their verdicts are put to the test.
      const quiet = vi.spyOn(DeviceSnapshot.prototype, 'leftUnmappedFindsNothing');
      let skipped = 0;
      // The corners the traces must reach (not only be able to): each must come up in the runs.
      const reached = new Map<string, number>(CORNERS.map((corner) => [corner, 0]));
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
          skipped += quiet.mock.results.filter((r) => r.value === true).length;
          quiet.mockClear();
          for (const corner of cornersOf(whole, trace.lines)) reached.set(corner, reached.get(corner)! + 1);
        }),
        runs(150),
      );
      quiet.mockRestore();
      expect(skipped).toBeGreaterThan(0);
      for (const [corner, count] of reached) expect(count, corner).toBeGreaterThan(0);
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

describe('scoped and whole invariant checks, line by line, after a device is hot-plugged', () => {
  const device = (sbdf: string, addr: string, extra = ''): string =>
    `{"event":"device","sbdf":"${sbdf}","bars":[{"type":"mem32","size":"0x100","addr":"${addr}"}]${extra}}`;
  const write = (vcpu: string, sbdf: string, reg: string, value: string): string =>
    `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":"${reg}","size":${reg === '0x04' ? 2 : 4},"value":"${value}"}`;
  /** d1 given 0000:02:00.0, its BAR (host page 0xc0000) at guest 0xe0000000, decoding on. */
  const guestMaps02 = [
    '{"event":"host"}',
    device('0000:02:00.0', '0xc0000000'),
    '{"event":"boot"}',
    '{"event":"domain","id":1}',
    '{"event":"assign","sbdf":"0000:02:00.0","domain":1,"expect":"ok"}',
    write('d1v0', '00:00.0', '0x10', '0xe0000000'),
    write('d1v0', '00:00.0', '0x04', '0x2'),
    '{"event":"run","vcpu":"d1v0","expect":"done"}',
  ];
  // Each plug line is checked scoped when no vCPU has work pending (the replayer's checkPlugged),
  // whole otherwise; the violation it makes must show at that line in both replays.
  const cases: { name: string; lines: string[]; kind?: string; shownLast?: boolean }[] = [
    {
      // pci.c pci_add_device gives the device to dom0 whatever d1 maps of its page: its BAR shares
      // page 0xc0000 with d1's device.
      name: "a BAR in a page a guest maps for another owner's device (pci_add_device)",
      lines: [...guestMaps02, device('0000:03:00.0', '0xc0000800')],
      kind: 'subpage-shared',
    },
    {
      // vpci_init_header maps a BAR decoding at set-up (modify_bars), here over d1's page.
      name: 'decoding on at set-up, its BAR in the page of a guest mapping (vpci_init_header)',
      lines: [...guestMaps02, device('0000:03:00.0', '0xc0000800', ',"command":"0x2"')],
      kind: 'subpage-shared',
    },
    {
      name: 'a hidden device decoding on at set-up (dom_xen)',
      lines: [...guestMaps02, device('0000:03:00.0', '0xc0000800', ',"command":"0x2","hidden":true')],
    },
    {
      name: 'plugged while a vCPU has work pending (a whole check)',
      lines: [
        ...guestMaps02.slice(0, -2),
        write('d1v0', '00:00.0', '0x04', '0x2'),
        device('0000:03:00.0', '0xc0000800'),
        '{"event":"run","vcpu":"d1v0","expect":"done"}',
      ],
      // d1 maps the shared page when its work runs, on the last line.
      kind: 'subpage-shared',
      shownLast: true,
    },
    {
      name: 'a device clear of every mapping',
      lines: [...guestMaps02, device('0000:03:00.0', '0xc0100000', ',"command":"0x2"')],
    },
  ];
  for (const profile of ['xen', 'hardened'] as const)
    for (const { name, lines, kind, shownLast } of cases)
      it(`${profile}: ${name}`, () => {
        const scoped = new TraceReplay('t.jsonl', { profile });
        const whole = new TraceReplay('t.jsonl', { profile, invariantChecks: 'full' });
        for (const [i, line] of lines.entries()) {
          expect(scoped.feed(line), `${line}: ${scoped.error?.message}`).toBe(true);
          expect(whole.feed(line)).toBe(true);
          expect(json(scoped.replayer.violations), `after line ${i + 1}`).toBe(
            json(whole.replayer.violations),
          );
        }
        const plugLine = lines.findIndex((l) => l.includes('"device","sbdf":"0000:03:00.0"')) + 1;
        const shownAt = shownLast === true ? lines.length : plugLine;
        const shown = scoped.replayer.violations
          .filter((v) => v.line === shownAt)
          .map((v) => v.violation.kind);
        if (profile === 'xen' && kind !== undefined) expect(shown).toContain(kind);
        if (profile === 'hardened') expect(scoped.replayer.violations).toEqual([]);
      });
});

/**
 * Disagreements the random traces found, each shrunk to its trace: fed to a scoped and a whole replay
 * together, their violations compared after every line, and the violation the whole check finds
 * shown at the line named (`shownAt`, 1-based), under the rule set the host line names.
 */
describe('scoped and whole invariant checks, line by line, on the traces that once parted them', () => {
  const cases: { name: string; lines: string[]; kind?: string; shownAt?: number }[] = [
    {
      // Found by rule-sets.property.test.ts (FC_RUNS=100 FC_SEED=99). cloud-hypervisor maps a
      // device's BARs when it is added (add_vfio_device → map_mmio_regions): 0000:01:00.0's 16-byte
      // BAR widened to its page, 0xc0000, in d0. The hidden (dom_xen) 0000:01:01.0 has its MSI-X table
      // and PBA on that page; dom_xen's devices map into the hardware domain (modify_bars walks
      // `pdev->domain != dom_xen ? pdev->domain : hardware_domain`), so when d0 turns its memory
      // decoding on (line 7: the command register is written through to the device at once,
      // VfioCommon::write_config_register) the page its table is on is mapped while it decodes: the
      // declared hazard 'msix-mapped' (holes cut per BAR, generate_sparse_areas). The command write
      // changes no mapping, and the register dispatch called it inert (cloud-hypervisor's
      // commandMaps: only a queued move), so no check ran until the end of the trace.
      name: "cloud-hypervisor: a hidden device's decoding turned on over another BAR's mapped page",
      lines: [
        '{"event":"host","profile":"xen","hardwareVcpus":1,"rules":"cloud-hypervisor"}',
        '{"event":"boot"}',
        '{"event":"domain","id":1,"vcpus":1}',
        '{"event":"domain","id":2,"vcpus":1}',
        '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":16,"addr":3221225472}]}',
        '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":32,"addr":3221225504}],"msix":{"entries":1,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":16}},"hidden":true}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:01.0","reg":4,"size":2,"value":6}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":4,"size":2,"value":4}',
      ],
      kind: 'msix-mapped',
      shownAt: 7,
    },
  ];
  for (const { name, lines, kind, shownAt } of cases)
    it(name, () => {
      const scoped = new TraceReplay('t.jsonl');
      const whole = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
      for (const [i, line] of lines.entries()) {
        expect(scoped.feed(line), `${line}: ${scoped.error?.message}`).toBe(true);
        expect(whole.feed(line)).toBe(true);
        expect(json(scoped.replayer.violations), `after line ${i + 1}`).toBe(json(whole.replayer.violations));
      }
      if (kind !== undefined)
        expect(whole.replayer.violations.map((v) => [v.line, v.violation.kind])).toContainEqual([
          shownAt,
          kind,
        ]);
    });
});
