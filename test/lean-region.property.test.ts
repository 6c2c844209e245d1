/**
 * The scoped check's lean path (packages/vpci/src/invariants.ts, `regionFindsNothing`: one domain's
 * frames, no moved host page, nothing to find there) against its general path (`checkDomains`),
 * over random traces of every kind of line (test/support/lockstep-traces.ts: e820 frames over BARs,
 * MSI-X, withheld pages, hidden and hot-plugged devices, RAM over BAR frames, assignment) and over the
 * replay property's traces, both profiles:
 * - `verify`: every time the lean path answers, the general path runs on the same scope and state
 *   and must find nothing either (the replay stops with an error otherwise), and the replay still
 *   reports what a whole-checked replay reports, line by line;
 * - `on` against `off`: two scoped replays of the same trace, one taking the lean path and one never,
 *   report the same violations after every line.
 * The lean path must be taken in the runs, and on the replay bench's workload (its finishing lines).
 */
import { gfn } from '@vpci/p2m';
import { TraceReplay } from '@vpci/replay';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { header, line, plan, writes } from '../packages/replay/bench/writes-workload.js';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';
import { randomTraces } from './support/random-traces.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

type Lean = 'on' | 'off' | 'verify';

/** A trace line writing `value` to register `reg` of `sbdf` from `vcpu` (the command register 2 bytes, a BAR 4). */
function writeLine(vcpu: string, sbdf: string, reg: number, value: number): string {
  return `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":${reg},"size":${reg === 4 ? 2 : 4},"value":${value}}`;
}

/** A trace line running `vcpu` (its pending work done). */
function runLine(vcpu: string): string {
  return `{"event":"run","vcpu":"${vcpu}"}`;
}

/** Sets how `replay`'s machine takes the lean path (once the machine is made: after the first line). */
function setLean(replay: TraceReplay, lean: Lean): void {
  replay.replayer.machine!.invariantCaches.leanRegions = lean;
}

function leanFound(replay: TraceReplay): number {
  return replay.replayer.machine?.invariantCaches.leanRegionsFound ?? 0;
}

/**
 * Replays `lines` with scoped checks in `verify` mode (from the second line on) and with whole checks,
 * requiring the same violations after every line; `before` is the lean path's count of answers
 * before the last line.
 */
function replayVerified(lines: readonly string[]): { lean: TraceReplay; before: number } {
  const lean = new TraceReplay('t.jsonl');
  const whole = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
  let before = 0;
  for (const [i, text] of lines.entries()) {
    if (i === lines.length - 1) before = leanFound(lean);
    expect(lean.feed(text), `${text}: ${lean.error?.message}`).toBe(true);
    expect(whole.feed(text)).toBe(true);
    if (i === 0) setLean(lean, 'verify');
    expect(json(lean.replayer.violations), `after line ${i + 1}`).toBe(json(whole.replayer.violations));
  }
  return { lean, before };
}

describe('the lean path of a scoped check against the general path, line by line', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: verified against the general path at every answer, and the same as a whole check`, () => {
      let taken = 0;
      fc.assert(
        fc.property(lockstepPlan(80), (plan) => {
          const lean = new TraceReplay('t.jsonl');
          const general = new TraceReplay('t.jsonl');
          const whole = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
          const trace = new LockstepTrace([lean, general, whole]);
          const at = trace.start(plan, profile);
          setLean(lean, 'verify');
          setLean(general, 'off');
          for (const c of plan.choices) {
            const text = trace.lineFor(plan, c, at);
            if (text === undefined) continue;
            const fed = trace.feed(text);
            const found = json(lean.replayer.violations);
            if (
              !fed ||
              found !== json(general.replayer.violations) ||
              found !== json(whole.replayer.violations)
            )
              expect.fail(
                `after line ${trace.lines.length}:\n${trace.lines.join('\n')}\nlean: ${found} ${json(lean.error)}\ngeneral: ${json(general.replayer.violations)} ${json(general.error)}\nwhole: ${json(whole.replayer.violations)} ${json(whole.error)}`,
              );
          }
          expect(leanFound(general)).toBe(0);
          taken += leanFound(lean);
        }),
        runs(150),
      );
      expect(taken).toBeGreaterThan(0);
    });
  }
});

describe('the lean path of a scoped check against the general path, over the replay property traces', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: verified at every answer, and the same violations as the general path after every line`, () => {
      let taken = 0;
      fc.assert(
        fc.property(randomTraces({ profile }), ({ lines }) => {
          const lean = new TraceReplay('t.jsonl');
          const general = new TraceReplay('t.jsonl');
          for (const [i, text] of lines.entries()) {
            const fed = lean.feed(text);
            expect(general.feed(text), `${text}: ${json(lean.error)} ${json(general.error)}`).toBe(fed);
            if (!fed) break;
            if (i === 0 && lean.replayer.machine !== undefined) {
              setLean(lean, 'verify');
              setLean(general, 'off');
            }
            const found = json(lean.replayer.violations);
            if (found !== json(general.replayer.violations))
              expect.fail(
                `after line ${i + 1}:\n${lines.join('\n')}\nlean: ${found}\ngeneral: ${json(general.replayer.violations)}`,
              );
          }
          taken += leanFound(lean);
        }),
        runs(100),
      );
      expect(taken).toBeGreaterThan(0);
    });
  }
});

describe("the lean path on the replay bench's workload", () => {
  it('answers the checks of the lines that finish a map, each verified against the general path', () => {
    const planned = plan(64);
    const replay = new TraceReplay('bench.jsonl');
    const setup = header(planned);
    replay.feed(setup[0]!);
    setLean(replay, 'verify');
    for (const text of setup.slice(1)) expect(replay.feed(text)).toBe(true);
    let finishes = 0;
    for (const w of writes(planned, 20_000)) {
      // A reprogramming (its first write turns decoding off) ends turning decoding on, which leaves a
      // map pending on the device's vCPU, finished by that vCPU's next line.
      if (w.reg === 0x04 && w.value === 0) finishes++;
      expect(replay.feed(line(w)), replay.error?.message).toBe(true);
    }
    const report = replay.end();
    expect(report.violations).toEqual([]);
    // Most of the maps finished are answered by the lean path (with other lines it answers too).
    expect(finishes).toBeGreaterThan(50);
    expect(leanFound(replay)).toBeGreaterThanOrEqual(finishes / 2);
  });
});

/**
 * A page of a guest device's MSI-X table mapped after the device decodes memory (the toolstack's own
 * `XEN_DOMCTL_memory_mapping`, Xen's `set_typed_p2m_entry`, or a RAM page put there: `p2m` lines), in
 * the region of another device's map: Xen's `vpci_make_msix_hole` (msix.c) punches the table's
 * pages only when that device's own BARs are mapped, so the page stays mapped and invariant 3
 * (`msix-mapped`) holds it against the device. The lean path must leave that line to the general
 * path, which finds it again (it was found on the `p2m` line).
 */
describe('the lean path leaves a mapped MSI-X page in the region to the general path', () => {
  const X = '0000:00:00.0';
  const Y = '0000:00:01.0';
  const write = (sbdf: string, reg: number, value: number): string => writeLine('d1v0', sbdf, reg, value);
  const run = runLine('d1v0');
  const trace = (type: string): string[] => [
    '{"event":"host","profile":"xen"}',
    '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":"0x10000","addr":"0xc0000000"}],"msix":{"entries":16,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":2048}}}',
    '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":"0x100000","addr":"0xc0100000"}]}',
    '{"event":"boot"}',
    '{"event":"domain","id":1}',
    '{"event":"assign","sbdf":"0000:01:00.0","domain":1}',
    '{"event":"assign","sbdf":"0000:01:01.0","domain":1}',
    // X's BAR at 0xe0000000, decoding on and its map finished: the table page is a hole.
    write(X, 0x10, 0xe000_0000),
    write(X, 4, 6),
    run,
    `{"event":"p2m","domain":1,"gfn":"0xe0000","mfn":"0xc0000","count":1,"type":"${type}"}`,
    // Y's BAR over X's (a guest may overlap its BARs under xen): its map leaves X's frames as they are.
    write(Y, 0x10, 0xe000_0000),
    write(Y, 4, 6),
    run,
    write(Y, 4, 0),
    run,
    // The map checked: one domain's frames, no host page moved since the last scoped check.
    write(Y, 4, 6),
    run,
  ];
  for (const type of ['mmio_direct', 'ram_rw']) {
    it(`${type} on the table page: verified, and the same violations as a whole check, line by line`, () => {
      const { lean, before } = replayVerified(trace(type));
      expect(lean.replayer.violations.map((v) => v.violation.kind)).toContain('msix-mapped');
      // The last map's check went the general way (the lean path answered earlier lines).
      expect(leanFound(lean)).toBe(before);
      expect(before).toBeGreaterThan(0);
    });
  }
});

/**
 * Condition (4) of the lean path: every window meeting the region lies in it. Here one does not: X's
 * 4 MiB BAR (two 2M leaves, one extent of order 9) meets the region of Y's map, which Y's BAR
 * overlapping X's makes one page inside X's window, and reaches past it. The toolstack mapped one more
 * page right after X's window with X's shift (a `p2m` line: `XEN_DOMCTL_memory_mapping`, 4K): an extent
 * of its own (another order) continuing X's run, outside every BAR, so `unexplained-mapping`. X has
 * work pending (its decoding turned off on d1v1, not yet run): Xen's `modify_decoding` clears
 * `bar->enabled` only when `vpci_process_pending` finishes the unmap, so X's window stays. Y's map
 * (`modify_bars`, header.c) takes out of Y's ranges every enabled BAR of the domain's other devices
 * that overlaps them, so it writes nothing and X's extent stays whole over Y's page. Every other lean
 * condition holds on the region: the extents on and beside it are X's one, `mmio_direct`, shared with
 * no one, held by X's window with its shift; Y's page is mapped. The general path looks at X's whole
 * run (`wholeRuns`) and finds the page past X's window, so the lean path must not answer: without
 * condition (4) `verify` throws on the last line.
 */
describe('the lean path leaves a region whose window reaches out of it to the general path', () => {
  const X = '0000:00:00.0';
  const Y = '0000:00:01.0';
  const run = runLine('d1v0');
  const lines = [
    '{"event":"host","profile":"xen"}',
    '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":"0x400000","addr":"0xc0000000"}]}',
    '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xc1000000"}]}',
    '{"event":"boot"}',
    '{"event":"domain","id":1,"vcpus":2}',
    '{"event":"assign","sbdf":"0000:01:00.0","domain":1}',
    '{"event":"assign","sbdf":"0000:01:01.0","domain":1}',
    // X's BAR at 0xe0000000, decoding on and its map finished.
    writeLine('d1v0', X, 0x10, 0xe000_0000),
    writeLine('d1v0', X, 4, 6),
    run,
    // The page after X's window, with X's shift: one extent more in X's run.
    '{"event":"p2m","domain":1,"gfn":"0xe0400","mfn":"0xc0400","count":1,"type":"mmio_direct"}',
    // X's decoding off on d1v1: its unmap pending there for the rest of the trace.
    writeLine('d1v1', X, 4, 0),
    // Y's BAR one page inside X's window, mapped, unmapped (its host page checked), mapped again.
    writeLine('d1v0', Y, 0x10, 0xe000_5000),
    writeLine('d1v0', Y, 4, 6),
    run,
    writeLine('d1v0', Y, 4, 0),
    run,
    writeLine('d1v0', Y, 4, 6),
    run,
  ];
  it('verified, and the same violations as a whole check, line by line; the last map goes the general way', () => {
    const { lean, before } = replayVerified(lines);
    const machine = lean.replayer.machine!;
    // The case as built: X's run of two extents, X still with work pending, the unexplained page.
    expect(
      machine
        .domain(1)
        .p2m.extentsIn(gfn(0xe0000), gfn(0xe0400))
        .map((e) => [e.gfn, e.count]),
    ).toEqual([
      [0xe0000, 0x400],
      [0xe0400, 1],
    ]);
    expect(machine.pendingVcpus.firstOn(machine.findDevice('0000:01:00.0')!)).toBeDefined();
    expect(lean.replayer.violations.map((v) => v.violation.kind)).toEqual(['unexplained-mapping']);
    expect(leanFound(lean)).toBe(before);
  });
});

/**
 * Condition (2) of the lean path answered per window (packages/vpci/src/unshared-windows.ts): a BAR
 * whose window's machine frames held no other domain's page keeps that answer only while the
 * machine's index of host pages stands. Guest 1 maps X (01:00.0, host frames 0xc0000–0xc0003) and
 * maps it again (the answer kept); then the hardware domain places its own 01:01.0 on the same host
 * frames (decoding off: its pages move, and that line's check finds guest 1's mapping shared and
 * brings the index up to date). Guest 1's next map of X moves no host page, so the lean path is asked:
 * its answer for X's window must be found again, and sends the check the general way. Kept regardless
 * of the index, `verify` throws on the last line.
 */
describe("the lean path finds a window's machine frames shared after another domain's page moved there", () => {
  const X = '0000:00:00.0';
  const remap = [writeLine('d1v0', X, 4, 0), runLine('d1v0'), writeLine('d1v0', X, 4, 6), runLine('d1v0')];
  const lines = [
    '{"event":"host","profile":"xen"}',
    '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":"0x4000","addr":"0xc0000000"}]}',
    '{"event":"device","sbdf":"0000:01:01.0","command":2,"bars":[{"type":"mem32","size":"0x4000","addr":"0xc1000000"}]}',
    '{"event":"boot"}',
    '{"event":"domain","id":1}',
    '{"event":"assign","sbdf":"0000:01:00.0","domain":1}',
    writeLine('d1v0', X, 0x10, 0xe000_0000),
    writeLine('d1v0', X, 4, 6),
    runLine('d1v0'),
    ...remap,
    // The hardware domain's 01:01.0 off and placed on X's host frames.
    writeLine('d0v0', '0000:01:01.0', 4, 0),
    runLine('d0v0'),
    writeLine('d0v0', '0000:01:01.0', 0x10, 0xc000_0000),
    ...remap,
  ];
  it('verified, and the same violations as a whole check, line by line; the last map goes the general way', () => {
    const { lean, before } = replayVerified(lines);
    expect(lean.replayer.violations.map((v) => v.violation.kind)).toContain('subpage-shared');
    expect(before).toBeGreaterThan(0);
    expect(leanFound(lean)).toBe(before);
  });
});
