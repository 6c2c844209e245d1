/**
 * Replay benchmark (not a test): seeded traces of config-space writes (`writes-workload.ts`: 1,000,000
 * writes over 64 devices, 32 the hardware domain's and 32 passed through to four guests), written to
 * temporary files and replayed the way the CLI does (streamed a chunk of lines at a time, parsed,
 * checked, applied, invariants checked whenever the state moved). Contenders, each run once per round,
 * in an order that rotates from round to round, every figure compared within its round:
 *
 * - direct: the same writes made directly on a `Machine` (no parsing, no checks): the baseline;
 * - scoped: the replay as the CLI runs it (scoped invariant checks);
 * - unchecked: the replay with `invariantChecks: 'off'`: what the replay costs without the checks, so
 *   the checks' share of the scoped replay is `1 - unchecked / scoped`;
 * - full and scopedShort: the first `SHORT_WRITES` (20,000) writes with whole-machine checks after
 *   every line, and the same writes with scoped checks;
 * - scale, for the scale target: the same workload over 64 devices and over 4,096 (2,048 in 64
 *   guests), one replay of each side by side in time (after the set-up lines, blocks of 1,000 lines
 *   of one and of the other in turn: the same lines over either machine are replayed within moments
 *   of each other, under the same load of the shared machine, and V8 optimises for both machines'
 *   objects at once), each with two timed windows, compared line for line:
 *   - steady (the target): the lines after the first two visits to every device of the larger
 *     machine (its first two cycles, untimed in both), two more such cycles (about 36,000 lines);
 *   - first: the first SHORT_WRITES lines after the set-up, printed for what it is.
 *   The two machines are planned so that the n-th line over either is the same kind of work: the
 *   workload draws the kind of each device visit (reprogram or driver) in the same order whatever the
 *   device count, and the larger machine repeats the smaller one's 64 devices (their BAR sizes, and
 *   whether the hardware domain or a guest owns each) in blocks, with the same BAR spacing
 *   (`plan`'s `period` and `spacing`). The bench checks that the lines' kinds match one by one and
 *   prints each window's p2m writes (the map work) beside its time.
 *   Why not the first lines: over 64 devices 20,000 lines revisit each device about 70 times, over
 *   4,096 about once, so nearly every device's first map (its first decoding-on) falls in the larger
 *   run's first lines and only 64 in the other's. Why two cycles untimed and not one: the first lines of
 *   every fresh replay also cost several times the steady ones, whatever the machine, because V8
 *   throws away the optimised code that held on to the previous replay's objects (`--trace-deopt`:
 *   "weak objects") and optimises again; a window that starts a few hundred lines into one replay and
 *   tens of thousands into the other (as an earlier version of this bench did, after one untimed
 *   cycle each: 4,096 devices came out three times cheaper per line than 64) times that in one run
 *   only. Both runs now skip the same lines, enough for that to be over.
 * Times are the process's CPU time (the machine is shared: wall time follows the other work on it),
 * over the timed lines only: the set-up lines before and the end of the replay after (final whole
 * check and report, made once per trace) are not counted. The whole bench takes about five minutes
 * on a quiet machine.
 *
 * Memory is sampled every 100,000 lines of the scoped replay after a GC: it must not grow with the
 * trace. Prints per round, then the median of each same-round ratio with its min and max, and a
 * PASS/FAIL line per target; always exits 0. `BENCH_WRITES`, `BENCH_RUNS` shorten a run;
 * `BENCH_ONLY=scale` runs the scale contender alone (its figures and verdict only: about a minute a
 * round), for work on the scale target; `BENCH_SCALE_CHECKS=off` replays both scale machines without
 * checks (`invariantChecks: 'off'`), to see how much of the ratio is the engine's and the replay
 * layer's rather than the checks' (a diagnostic: no verdict is printed for it).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ReplayOptions, TraceReplay } from '@vpci/replay';
import { cpuMs } from '../../../bench/cpu-time.js';
import { type ByteBlock, fileLineBlocks } from '../src/file-lines.js';
import {
  type DevicePlan,
  guestsFor,
  header,
  line,
  plan,
  scaleMachines,
  type Write,
  writes,
} from './writes-workload.js';

/** The target is for the full million; `BENCH_WRITES` shortens the run for profiling. */
const WRITES = Number(process.env.BENCH_WRITES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** `scale`: the scale contender alone. */
const SCALE_ONLY = process.env.BENCH_ONLY === 'scale';
/** The scale replays' checks: scoped (the target's), or `off` for the diagnostic above. */
const scaleChecksSetting = process.env.BENCH_SCALE_CHECKS ?? 'scoped';
if (scaleChecksSetting !== 'scoped' && scaleChecksSetting !== 'off')
  throw new Error(`BENCH_SCALE_CHECKS is ${JSON.stringify(scaleChecksSetting)}: expected 'scoped' or 'off'`);
// Typed as narrowed here: a function reading the module's constant does not see the narrowing.
const SCALE_CHECKS: 'scoped' | 'off' = scaleChecksSetting;
const DEVICES = 64;
/**
 * Whole-machine checks after every line are slow by design, and so is a machine of 4,096 devices
 * today: the short runs replay this many writes, each against the 64-device replay of as many.
 */
const SHORT_WRITES = Math.min(WRITES, Number(process.env.BENCH_SHORT_WRITES ?? 20_000));

const gc = (globalThis as { gc?: () => void }).gc;
function heap(): number {
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(2)} MiB`;
const kps = (writes: number, ms: number): string => `${(writes / ms).toFixed(0)} k writes/s`;
const verdict = (ok: boolean, what: string): void => console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);

/** Writes a trace file (in a function, so the lines are garbage once it is written). */
function writeTrace(file: string, devices: readonly DevicePlan[], count: number): void {
  const parts = header(devices);
  for (const w of writes(devices, count)) parts.push(line(w));
  writeFileSync(file, `${parts.join('\n')}\n`);
}

const small = plan(DEVICES);
const dir = mkdtempSync(join(tmpdir(), 'vpci-bench-'));
const files = {
  small: join(dir, 'writes-64.jsonl'),
  short: join(dir, 'writes-64-short.jsonl'),
  scaleSmall: join(dir, 'writes-64-scale.jsonl'),
  scaleLarge: join(dir, 'writes-4096-scale.jsonl'),
};
if (!SCALE_ONLY) {
  writeTrace(files.small, small, WRITES);
  writeTrace(files.short, small, SHORT_WRITES);
}

// The scale comparison's machines (`scaleMachines`: 64 devices and 4,096 repeating them, line n over
// either the same kind of work) and the larger machine's cycle of lines.
const { small: scaleSmall, large: scaleLarge, cycle } = scaleMachines();
const SCALE_DEVICES = scaleLarge.length;
/** Untimed writes before the steady window, and the window's writes: two cycles each. */
const STEADY_LEAD = 2 * cycle;
const STEADY_LINES = Math.min(2 * cycle, Number(process.env.BENCH_STEADY_WRITES ?? 2 * cycle));
writeTrace(files.scaleSmall, scaleSmall, STEADY_LEAD + STEADY_LINES);
writeTrace(files.scaleLarge, scaleLarge, STEADY_LEAD + STEADY_LINES);

/** What kind of work a write is: register, size, decoding flipped or not, the owner's kind. */
function kindOf(w: Write): string {
  const decoding = w.reg === 0x04 ? (w.value & 2) !== 0 : undefined;
  return `${w.device.owner === 0 ? 'hw' : 'guest'} ${w.reg}/${w.size} ${decoding ?? ''} ${w.reg === 0x10 || w.reg === 0x18 || w.reg === 0x1c ? w.value === 0xffff_ffff : ''}`;
}
/** Whether line n of the two scale traces is the same kind of work, for every n. */
function sameKinds(): boolean {
  const a = [...writes(scaleSmall, STEADY_LEAD + STEADY_LINES)];
  const b = [...writes(scaleLarge, STEADY_LEAD + STEADY_LINES)];
  return a.length === b.length && a.every((w, i) => kindOf(w) === kindOf(b[i]!));
}
const likeForLike = sameKinds();

/**
 * The process's CPU time in milliseconds (user and system, every thread: GC included). The machine is
 * shared, so CPU time, not wall time, is what a contender costs.
 */

/** The same writes made directly on the machine the set-up lines build. */
function direct(): number {
  gc?.();
  const setup = new TraceReplay('setup');
  for (const l of header(small)) setup.feed(l);
  const m = setup.replayer.machine!;
  const t0 = cpuMs();
  for (const w of writes(small, WRITES)) {
    const vcpu = m.vcpu(w.device.owner, 0);
    if (vcpu.pending !== undefined) m.finishPending(vcpu);
    m.configWrite(vcpu, w.device.address, w.reg, w.size, w.value);
  }
  return cpuMs() - t0;
}

interface Replayed {
  /**
   * CPU milliseconds from the first `feed` after the set-up lines to the last line's, less the heap
   * samples: the timed lines only. The end of the replay (every vCPU's pending work finished, the
   * final whole check, the report) is left out: it is made once per trace, and over a short trace
   * of a large machine it would be spread over too few lines to compare per-line costs.
   */
  ms: number;
  /** Per window asked for (`replayFile`'s `windows`): CPU milliseconds and p2m writes. */
  windows: { ms: number; p2mWrites: number }[];
  samples: number[];
  report: ReturnType<TraceReplay['end']>;
}

/**
 * Replays `file`; the clock starts after its set-up lines (`setup` of them). `windows` are line
 * ranges `[from, to)` counted after the set-up, each timed on its own too, with the p2m writes made
 * in it (every domain's).
 */
async function replayFile(
  file: string,
  setup: number,
  options: ReplayOptions,
  windows: readonly (readonly [number, number])[] = [],
): Promise<Replayed> {
  gc?.();
  const replay = new TraceReplay(file, options);
  const samples: number[] = [];
  const timed = windows.map(() => ({ ms: 0, p2mWrites: 0 }));
  const p2mWrites = (): number =>
    replay.replayer.machine!.domains().reduce((sum, domain) => sum + domain.p2m.writes, 0);
  let t0 = 0;
  let paused = 0;
  for await (const { bytes, from, to } of fileLineBlocks(file)) {
    for (let at = from; at < to; ) {
      at = replay.feedLine(bytes, at, to);
      if (at < 0) throw new Error(`line ${replay.error?.line}: ${replay.error?.message}`);
      if (replay.lines === setup) t0 = cpuMs();
      else if (replay.lines % 100_000 === 0) {
        const p0 = cpuMs();
        samples.push(heap());
        paused += cpuMs() - p0;
      }
      for (let w = 0; w < windows.length; w++) {
        const after = replay.lines - setup;
        if (after === windows[w]![0]) {
          timed[w]!.ms -= cpuMs();
          timed[w]!.p2mWrites -= p2mWrites();
        } else if (after === windows[w]![1]) {
          timed[w]!.ms += cpuMs();
          timed[w]!.p2mWrites += p2mWrites();
        }
      }
    }
  }
  const ms = cpuMs() - t0 - paused;
  const report = replay.end();
  return { ms, windows: timed, samples, report };
}

/** A trace file fed to its replay a block of lines at a time, read a chunk at a time. */
class FileFeeder {
  readonly replay: TraceReplay;
  private readonly blocks: AsyncIterator<ByteBlock>;
  private block: ByteBlock | undefined;
  /** Where the next line of `block` starts. */
  private next = 0;

  constructor(file: string, options?: ReplayOptions) {
    this.replay = new TraceReplay(file, options);
    this.blocks = fileLineBlocks(file)[Symbol.asyncIterator]();
  }

  /** Feeds up to `count` lines, calling `after` after each; false at the end of the file. */
  async feed(count: number, after: () => void): Promise<boolean> {
    for (let fed = 0; fed < count; ) {
      if (this.block === undefined || this.next >= this.block.to) {
        const read = await this.blocks.next();
        if (read.done === true) return false;
        this.block = read.value;
        this.next = this.block.from;
        continue;
      }
      const { bytes, to } = this.block;
      this.next = this.replay.feedLine(bytes, this.next, to);
      if (this.next < 0) throw new Error(`line ${this.replay.error?.line}: ${this.replay.error?.message}`);
      fed++;
      after();
    }
    return true;
  }
}

/** Lines each scale replay is fed in turn with the other (`scalePair`). */
const SCALE_BLOCK = 1000;

/**
 * The two scale replays side by side in time: each one's set-up lines (untimed), then blocks of
 * SCALE_BLOCK lines of one and of the other in turn, so that the same lines over either machine are
 * replayed within moments of each other and share whatever the machine's load did then (and V8
 * optimises the code for both machines' objects at once). Each replay's windows (counted after its
 * set-up: `scaleWindows`) are timed and their p2m writes counted as `replayFile` does.
 */
async function scalePair(): Promise<{ small: Replayed; large: Replayed }> {
  gc?.();
  const pair = [
    { file: files.scaleSmall, setup: header(scaleSmall).length },
    { file: files.scaleLarge, setup: header(scaleLarge).length },
  ].map(({ file, setup }) => ({
    feeder: new FileFeeder(file, { invariantChecks: SCALE_CHECKS }),
    setup,
    after: 0,
    timed: scaleWindows.map(() => ({ ms: 0, p2mWrites: 0 })),
  }));
  for (const run of pair) await run.feeder.feed(run.setup, () => {});
  // Each replay's own clock: the CPU time of its blocks only (the other's blocks come in between).
  const ms = [0, 0];
  for (const run of pair) {
    const machine = run.feeder.replay.replayer.machine!;
    for (let w = 0; w < scaleWindows.length; w++)
      if (scaleWindows[w]![0] === 0)
        run.timed[w]!.p2mWrites -= machine.domains().reduce((sum, d) => sum + d.p2m.writes, 0);
  }
  for (let more = true; more; ) {
    more = false;
    for (let k = 0; k < pair.length; k++) {
      const run = pair[k]!;
      const machine = run.feeder.replay.replayer.machine!;
      const p2mWrites = (): number => machine.domains().reduce((sum, d) => sum + d.p2m.writes, 0);
      const b0 = cpuMs();
      const fed = await run.feeder.feed(SCALE_BLOCK, () => {
        run.after++;
        for (let w = 0; w < scaleWindows.length; w++) {
          const [from, to] = scaleWindows[w]!;
          // A window of lines `from + 1 … to` counted after the set-up (one from 0 started above).
          if (run.after === from) {
            run.timed[w]!.ms -= ms[k]! + cpuMs() - b0;
            run.timed[w]!.p2mWrites -= p2mWrites();
          } else if (run.after === to) {
            run.timed[w]!.ms += ms[k]! + cpuMs() - b0;
            run.timed[w]!.p2mWrites += p2mWrites();
          }
        }
      });
      ms[k]! += cpuMs() - b0;
      more ||= fed;
    }
  }
  const [small, large] = pair.map((run, k) => ({
    ms: ms[k]!,
    windows: run.timed,
    samples: [],
    report: run.feeder.replay.end(),
  }));
  return { small: small!, large: large! };
}

const setupSmall = header(small).length;
/** The scale runs' windows, counted after the set-up: the first lines, and the steady ones. */
const scaleWindows = [
  [0, SHORT_WRITES],
  [STEADY_LEAD, STEADY_LEAD + STEADY_LINES],
] as const;
type Name = 'direct' | 'scoped' | 'unchecked' | 'full' | 'scopedShort' | 'scale';
type Outcome = Replayed | number | Awaited<ReturnType<typeof scalePair>>;
const contenders = (
  [
    ['direct', async () => direct()],
    ['scoped', () => replayFile(files.small, setupSmall, {})],
    ['unchecked', () => replayFile(files.small, setupSmall, { invariantChecks: 'off' })],
    ['full', () => replayFile(files.short, setupSmall, { invariantChecks: 'full' })],
    ['scopedShort', () => replayFile(files.short, setupSmall, {})],
    ['scale', () => scalePair()],
  ] as [Name, () => Promise<Outcome>][]
).filter(([name]) => !SCALE_ONLY || name === 'scale');

const ratios = {
  vsDirect: [] as number[],
  checks: [] as number[],
  full: [] as number[],
  scaleFirst: [] as number[],
  scaleSteady: [] as number[],
};
/** Per round, the steady windows' p2m writes over 64 and 4,096 devices. */
const steadyWork: string[] = [];
const rates: number[] = [];
const growths: number[] = [];
const unclean: string[] = [];
console.log(
  `replay: ${WRITES.toLocaleString('en')} writes over ${DEVICES} devices (${guestsFor(DEVICES)} guests; ${SCALE_DEVICES} in the scale run, ${guestsFor(SCALE_DEVICES)} guests) from a file, ${RUNS} rounds`,
);
// Warm-up, not counted: every contender's code compiled by the optimiser before the first round.
for (const [name, run] of contenders)
  if (name !== 'direct' && name !== 'scoped' && name !== 'unchecked') await run();
for (let round = 0; round < RUNS; round++) {
  const ms = {} as Record<Name, number>;
  const windows = {} as Record<'scaleSmall' | 'scaleLarge', Replayed['windows']>;
  for (let k = 0; k < contenders.length; k++) {
    const [name, run] = contenders[(k + round) % contenders.length]!;
    const outcome = await run();
    if (typeof outcome === 'number') {
      ms[name] = outcome;
      continue;
    }
    if ('large' in outcome) {
      windows.scaleSmall = outcome.small.windows;
      windows.scaleLarge = outcome.large.windows;
      for (const [what, replayed] of [
        ['scale (64 devices)', outcome.small],
        ['scale (4096 devices)', outcome.large],
      ] as const)
        if (replayed.report.status !== 'ok' || replayed.report.violations.length > 0)
          unclean.push(
            `${what}: status ${replayed.report.status}, ${replayed.report.violations.length} violations`,
          );
      continue;
    }
    ms[name] = outcome.ms;
    const { report } = outcome;
    if (name !== 'unchecked' && (report.status !== 'ok' || report.violations.length > 0))
      unclean.push(`${name}: status ${report.status}, ${report.violations.length} violations`);
    if (name === 'scoped') {
      console.log(`  heap every 100k lines: ${outcome.samples.map(mib).join(', ')}`);
      if (outcome.samples.length >= 3) growths.push(outcome.samples.at(-1)! - outcome.samples[1]!);
    }
  }
  if (!SCALE_ONLY) {
    rates.push(WRITES / ms.scoped);
    ratios.vsDirect.push(ms.direct / ms.scoped);
    ratios.checks.push(1 - ms.unchecked / ms.scoped);
    ratios.full.push(ms.full / ms.scopedShort);
  }
  const [firstSmall, steadySmall] = windows.scaleSmall;
  const [firstLarge, steadyLarge] = windows.scaleLarge;
  ratios.scaleFirst.push(firstLarge!.ms / firstSmall!.ms);
  ratios.scaleSteady.push(steadyLarge!.ms / steadySmall!.ms);
  steadyWork.push(`${steadySmall!.p2mWrites} and ${steadyLarge!.p2mWrites}`);
  const others = SCALE_ONLY
    ? ''
    : `scoped ${kps(WRITES, ms.scoped)}, unchecked ${kps(WRITES, ms.unchecked)}, direct ${kps(WRITES, ms.direct)}; ` +
      `${SHORT_WRITES / 1000}k lines full ${kps(SHORT_WRITES, ms.full)} vs scoped ${kps(SHORT_WRITES, ms.scopedShort)}; `;
  console.log(
    `  round ${round + 1}: ${others}` +
      `scale, first ${SHORT_WRITES / 1000}k lines: ${DEVICES} devices ${kps(SHORT_WRITES, firstSmall!.ms)} (${firstSmall!.p2mWrites} p2m writes), ` +
      `${SCALE_DEVICES} ${kps(SHORT_WRITES, firstLarge!.ms)} (${firstLarge!.p2mWrites}); ` +
      `steady ${(STEADY_LINES / 1000).toFixed(1)}k lines: ${DEVICES} ${kps(STEADY_LINES, steadySmall!.ms)} (${steadySmall!.p2mWrites}), ` +
      `${SCALE_DEVICES} ${kps(STEADY_LINES, steadyLarge!.ms)} (${steadyLarge!.p2mWrites})`,
  );
}
rmSync(dir, { recursive: true });

/** Median, min and max. */
function spread(values: readonly number[], digits = 2): string {
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1]!;
  return `${median.toFixed(digits)} (min ${sorted[0]!.toFixed(digits)}, max ${sorted.at(-1)!.toFixed(digits)})`;
}
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

if (!SCALE_ONLY) {
  console.log(`  scoped replay rate, k writes/s: ${spread(rates, 0)}`);
  console.log(`  replay / direct Machine (same round): ${spread(ratios.vsDirect)}`);
  console.log(`  share of the replay spent on invariant checks: ${spread(ratios.checks)}`);
  console.log(`  whole-machine checks / scoped checks, per line: ${spread(ratios.full)}`);
}
console.log(
  `  per-line cost, ${SCALE_DEVICES} devices / ${DEVICES}, the first ${SHORT_WRITES} lines (first visits in the larger run's lines): ${spread(ratios.scaleFirst)}`,
);
console.log(
  `  per-line cost, ${SCALE_DEVICES} devices / ${DEVICES}, steady (lines ${STEADY_LEAD} to ${STEADY_LEAD + STEADY_LINES} after the set-up, ` +
    `the same kinds line by line: ${likeForLike ? 'yes' : 'NO'}; p2m writes per round ${steadyWork.join(', ')}): ${spread(ratios.scaleSteady)}`,
);
for (const problem of unclean) console.log(`  not clean: ${problem}`);
if (!SCALE_ONLY) {
  verdict(median(rates) >= 500, `replay rate ${median(rates).toFixed(0)} k writes/s >= 500 k writes/s`);
  verdict(median(ratios.vsDirect) >= 0.6, `replay / direct ${median(ratios.vsDirect).toFixed(2)} >= 0.6`);
  verdict(
    median(ratios.checks) <= 0.2,
    `checks' share ${(median(ratios.checks) * 100).toFixed(0)} % <= 20 %`,
  );
  verdict(median(ratios.full) <= 3, `whole / scoped ${median(ratios.full).toFixed(2)}x <= 3x`);
}
if (SCALE_CHECKS === 'off')
  console.log(
    '  (the scale replays ran with no checks, BENCH_SCALE_CHECKS=off: a diagnostic, not the target)',
  );
else
  verdict(
    likeForLike && median(ratios.scaleSteady) <= 1.25,
    `${SCALE_DEVICES} devices per line ${median(ratios.scaleSteady).toFixed(2)}x the cost of ${DEVICES} <= 1.25x (steady lines, the same kinds line by line)`,
  );
verdict(unclean.length === 0, 'every checked replay ends clean (status ok, no violations)');
if (!SCALE_ONLY) {
  const growth = growths.length === 0 ? 0 : Math.max(...growths);
  verdict(growth < 16 * 2 ** 20, `heap growth from 200k to 1M lines ${mib(growth)} < 16 MiB`);
}
