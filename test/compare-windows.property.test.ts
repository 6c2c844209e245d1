/**
 * `vpci-replay --compare` looks again, after a line, only at the guest frames some replay's p2m wrote
 * since the domain was last compared (compare.ts `domainSegments`). Held here against the comparison
 * it replaced, kept as the naive model: after every line, every domain's whole extent list in every
 * replay, diffed with the whole list after the line before (`partingSegments` over whole lists). Over
 * random traces of every kind of line (test/support/lockstep-traces.ts: faults, preempted work, RAM
 * over BARs, assignment, hot plug), both profiles, the steps are the same: same lines, domains,
 * frames, mappings before and after, same order. Then a machine of thousands of devices, whose steps
 * follow from the rule sets' texts.
 */
import type { P2mExtent } from '@vpci/p2m';
import {
  CompareReplay,
  type CompareStep,
  compareTargets,
  MAX_COMPARE_STEPS,
  TraceReplay,
} from '@vpci/replay';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { partingSegments } from '../packages/replay/src/compare.js';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';

const hex = (x: number): string => `0x${x.toString(16)}`;

/** One frame range of a step, as text: line, domain, frames, each rule set's mapping after and before. */
function rangeText(
  line: number,
  domain: number,
  gfn: string,
  count: number,
  mapped: readonly (string | null)[],
  before: readonly (string | null)[],
): string {
  const say = (list: readonly (string | null)[]): string => list.map((m) => m ?? '-').join(' ');
  return `line ${line} d${domain} ${gfn}+${count}: ${say(mapped)} (was ${say(before)})`;
}

/** The ranges of the comparison's steps, as `rangeText`. */
function stepTexts(steps: readonly CompareStep[], names: readonly string[]): string[] {
  const at = (m: { mfn: string; type: string } | null | undefined): string | null =>
    m == null ? null : `${m.mfn}/${m.type}`;
  return steps.flatMap((step) =>
    step.ranges.map((r) =>
      rangeText(
        step.line,
        step.domain,
        r.gfn,
        r.count,
        names.map((n) => at(r.mapped[n])),
        names.map((n) => at(r.before[n])),
      ),
    ),
  );
}

/** The naive model: every domain of every replay compared whole after each line. */
class WholeListModel {
  private readonly last = new Map<number, P2mExtent[][]>();
  readonly texts: string[] = [];
  stepsFound = 0;

  constructor(private readonly replays: readonly TraceReplay[]) {}

  afterLine(line: number): void {
    const ids = new Set<number>();
    for (const replay of this.replays)
      for (const d of replay.replayer.machine?.domains() ?? []) if (!d.isPseudo) ids.add(d.id);
    for (const id of [...ids].sort((a, b) => a - b)) {
      const after = this.replays.map((replay) => {
        const domain = replay.replayer.machine?.domains().find((d) => d.id === id);
        return domain === undefined ? [] : [...domain.p2m.extents()];
      });
      const before = this.last.get(id) ?? this.replays.map(() => []);
      this.last.set(id, after);
      const segments = partingSegments(before, after);
      if (segments.length === 0) continue;
      this.stepsFound++;
      const at = (m: { type: string; delta: number } | null, gfn: number): string | null =>
        m === null ? null : `${hex(gfn + m.delta)}/${m.type}`;
      for (const s of segments) {
        this.texts.push(
          rangeText(
            line,
            id,
            hex(s.first),
            s.last - s.first + 1,
            s.after.map((m) => at(m, s.first)),
            s.before.map((m) => at(m, s.first)),
          ),
        );
      }
    }
  }
}

/** A lockstep trace whose every line also goes to a comparison and, after it, to the model. */
class ComparedTrace extends LockstepTrace {
  constructor(
    replays: TraceReplay[],
    private readonly compare: CompareReplay,
    private readonly model: WholeListModel,
  ) {
    super(replays);
  }

  override feed(line: string): boolean {
    const fed = super.feed(line);
    expect(this.compare.feed(line)).toBe(fed);
    if (fed) this.model.afterLine(this.lines.length);
    return fed;
  }
}

describe('--compare over the frames written, against whole extent lists compared after every line', () => {
  const targets = compareTargets('xen,hardened,qemu,kvm-vfio');
  const names = targets.map((t) => t.name);
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: the same steps, in the same order`, () => {
      let withSteps = 0;
      fc.assert(
        fc.property(lockstepPlan(60), (plan) => {
          const replays = targets.map((t) => new TraceReplay('t.jsonl', t.options));
          const model = new WholeListModel(replays);
          const compare = new CompareReplay('t.jsonl', targets);
          const trace = new ComparedTrace(replays, compare, model);
          const at = trace.start(plan, profile);
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line !== undefined && !trace.feed(line)) break;
          }
          const ended = replays.map((r) => r.end());
          if (ended.every((r) => r.error === null)) model.afterLine(trace.lines.length);
          const { compare: result } = compare.end();
          expect(stepTexts(result.steps, names)).toEqual(model.texts);
          expect(result.stepsFound).toBe(model.stepsFound);
          if (model.stepsFound > 0) withSteps++;
        }),
        runs(60),
      );
      // The rule sets must part in the runs, or the property says nothing.
      expect(withSteps).toBeGreaterThan(10);
    });
  }
});

describe('--compare on thousands of devices', () => {
  it('finds each deferred unmap and map of xen against cloud-hypervisor keeping its slots mapped', () => {
    // n devices of two 4 KiB BARs decoding at boot, device i at 0xe0000000 − i × 32 KiB (falling
    // frame order, one extent each in the hardware domain), each turned off then on. cloud-hypervisor
    // maps a device's BARs as memory slots when the device is added and keeps them whatever the
    // command register says (docs/rule-sets.md); xen defers the unmap and the map to the vCPU
    // (`defer_map`), which does the work on its next line: at device i's on write xen unmaps i (they
    // part), at the next line it maps i back (they meet; the last device's at the end of the trace).
    const n = 3000;
    const h2 = (x: number): string => x.toString(16).padStart(2, '0');
    const sbdf = (i: number): string => `0000:${h2(1 + (i >> 8))}:${h2((i >> 3) & 31)}.${i & 7}`;
    const frame = (i: number): number => (0xe000_0000 - i * 0x8000) / 0x1000;
    const lines = ['{"event":"host","profile":"xen"}'];
    for (let i = 0; i < n; i++) {
      const bars = [0, 1].map(
        (b) => `{"type":"mem32","size":"0x1000","addr":"${hex((frame(i) + b) * 0x1000)}"}`,
      );
      lines.push(`{"event":"device","sbdf":"${sbdf(i)}","bars":[${bars.join(',')}],"command":"0x0006"}`);
    }
    lines.push('{"event":"boot"}');
    const boot = lines.length;
    const write = (i: number, value: number): string =>
      `{"event":"write","vcpu":"d0v0","sbdf":"${sbdf(i)}","reg":4,"size":2,"value":${value}}`;
    for (let i = 0; i < n; i++) lines.push(write(i, 0), write(i, 6));
    const compare = new CompareReplay('falling.jsonl', compareTargets('xen,cloud-hypervisor'));
    for (const line of lines) expect(compare.feed(line)).toBe(true);
    const { compare: result } = compare.end();

    const mapped = (i: number): string => `${hex(frame(i))}/mmio_direct`;
    const expected: string[] = [];
    for (let i = 0; i < n; i++) {
      const on = boot + 2 + 2 * i;
      const gfn = hex(frame(i));
      expected.push(rangeText(on, 0, gfn, 2, [null, mapped(i)], [mapped(i), mapped(i)]));
      expected.push(
        rangeText(Math.min(on + 1, lines.length), 0, gfn, 2, [mapped(i), mapped(i)], [null, mapped(i)]),
      );
    }
    expect(result.stepsFound).toBe(2 * n);
    // The steps listed are the first MAX_COMPARE_STEPS.
    expect(result.steps.length).toBe(MAX_COMPARE_STEPS);
    expect(stepTexts(result.steps, ['xen', 'cloud-hypervisor'])).toEqual(
      expected.slice(0, MAX_COMPARE_STEPS),
    );
  });
});
