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
 * - scale: as many writes of the same workload over 4,096 devices (2,048 in 64 guests), against
 *   scopedShort: the scoped checks and the replay must cost per line what they cost over 64 devices.
 *   Timed from the first write, these are not the same kind of line: over 64 devices 20,000 writes
 *   revisit each device about 70 times, over 4,096 they visit each about once, so nearly every
 *   device's first decoding-on (its first map) falls in the 4,096-device run's timed lines and only
 *   64 in the other's. So the target is judged on steady lines (scaleSteady against scopedSteady):
 *   both runs first make one untimed cycle of the workload (every device visited once), then time
 *   the next SHORT_WRITES writes, where each line is the same kind of work over either machine. The
 *   first-visit ratio is still printed, for what it is.
 *
 * Times are the process's CPU time (the machine is shared: wall time follows the other work on it),
 * over the timed lines only: the set-up lines before and the end of the replay after (final whole
 * check and report, made once per trace) are not counted.
 *
 * Memory is sampled every 100,000 lines of the scoped replay after a GC: it must not grow with the
 * trace. Prints per round, then the median of each same-round ratio with its min and max, and a
 * PASS/FAIL line per target; always exits 0. `BENCH_WRITES`, `BENCH_RUNS` shorten a run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ReplayOptions, TraceReplay } from '@vpci/replay';
import { fileLineSpans } from '../src/file-lines.js';
import { type DevicePlan, guestsFor, header, line, plan, writes } from './writes-workload.js';

/** The target is for the full million; `BENCH_WRITES` shortens the run for profiling. */
const WRITES = Number(process.env.BENCH_WRITES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const DEVICES = 64;
const SCALE_DEVICES = 4096;
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
const large = plan(SCALE_DEVICES);
const dir = mkdtempSync(join(tmpdir(), 'vpci-bench-'));
const files = {
  small: join(dir, 'writes-64.jsonl'),
  short: join(dir, 'writes-64-short.jsonl'),
  large: join(dir, 'writes-4096.jsonl'),
};
writeTrace(files.small, small, WRITES);
writeTrace(files.short, small, SHORT_WRITES);
writeTrace(files.large, large, SHORT_WRITES);

/**
 * Writes of the workload's first cycle over `devices`: up to the first write of the second visit to
 * the first device, so every device has been visited (and its decoding turned on) once.
 */
function firstCycle(devices: readonly DevicePlan[]): number {
  let count = 0;
  let lastVisited = false;
  for (const w of writes(devices, Number.MAX_SAFE_INTEGER)) {
    if (w.device === devices.at(-1)) lastVisited = true;
    else if (lastVisited) return count;
    count++;
  }
  return count;
}
const warmSmall = firstCycle(small);
const warmLarge = firstCycle(large);
const steadyFiles = {
  small: join(dir, 'writes-64-steady.jsonl'),
  large: join(dir, 'writes-4096-steady.jsonl'),
};
writeTrace(steadyFiles.small, small, warmSmall + SHORT_WRITES);
writeTrace(steadyFiles.large, large, warmLarge + SHORT_WRITES);

/**
 * The process's CPU time in milliseconds (user and system, every thread: GC included). The machine is
 * shared, so CPU time, not wall time, is what a contender costs.
 */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

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
  samples: number[];
  report: ReturnType<TraceReplay['end']>;
}

/** Replays `file`; the clock starts after its set-up lines (`setup` of them). */
async function replayFile(file: string, setup: number, options: ReplayOptions): Promise<Replayed> {
  gc?.();
  const replay = new TraceReplay(file, options);
  const samples: number[] = [];
  let t0 = 0;
  let paused = 0;
  for await (const chunk of fileLineSpans(file)) {
    const { text, starts, ends } = chunk;
    for (let i = 0; i < chunk.length; i++) {
      if (!replay.feedSpan(text, starts[i]!, ends[i]!))
        throw new Error(`line ${replay.error?.line}: ${replay.error?.message}`);
      if (replay.lines === setup) t0 = cpuMs();
      else if (replay.lines % 100_000 === 0) {
        const p0 = cpuMs();
        samples.push(heap());
        paused += cpuMs() - p0;
      }
    }
  }
  const ms = cpuMs() - t0 - paused;
  const report = replay.end();
  return { ms, samples, report };
}

const setupSmall = header(small).length;
const setupLarge = header(large).length;
type Name =
  | 'direct'
  | 'scoped'
  | 'unchecked'
  | 'full'
  | 'scopedShort'
  | 'scale'
  | 'scopedSteady'
  | 'scaleSteady';
const contenders: [Name, () => Promise<Replayed | number>][] = [
  ['direct', async () => direct()],
  ['scoped', () => replayFile(files.small, setupSmall, {})],
  ['unchecked', () => replayFile(files.small, setupSmall, { invariantChecks: 'off' })],
  ['full', () => replayFile(files.short, setupSmall, { invariantChecks: 'full' })],
  ['scopedShort', () => replayFile(files.short, setupSmall, {})],
  ['scale', () => replayFile(files.large, setupLarge, {})],
  ['scopedSteady', () => replayFile(steadyFiles.small, setupSmall + warmSmall, {})],
  ['scaleSteady', () => replayFile(steadyFiles.large, setupLarge + warmLarge, {})],
];

const ratios = {
  vsDirect: [] as number[],
  checks: [] as number[],
  full: [] as number[],
  scale: [] as number[],
  scaleSteady: [] as number[],
};
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
  for (let k = 0; k < contenders.length; k++) {
    const [name, run] = contenders[(k + round) % contenders.length]!;
    const outcome = await run();
    if (typeof outcome === 'number') {
      ms[name] = outcome;
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
  rates.push(WRITES / ms.scoped);
  ratios.vsDirect.push(ms.direct / ms.scoped);
  ratios.checks.push(1 - ms.unchecked / ms.scoped);
  ratios.full.push(ms.full / ms.scopedShort);
  ratios.scale.push(ms.scale / ms.scopedShort);
  ratios.scaleSteady.push(ms.scaleSteady / ms.scopedSteady);
  console.log(
    `  round ${round + 1}: scoped ${kps(WRITES, ms.scoped)}, unchecked ${kps(WRITES, ms.unchecked)}, direct ${kps(WRITES, ms.direct)}; ` +
      `${SHORT_WRITES / 1000}k lines full ${kps(SHORT_WRITES, ms.full)} vs scoped ${kps(SHORT_WRITES, ms.scopedShort)}; ` +
      `${SCALE_DEVICES} devices ${kps(SHORT_WRITES, ms.scale)}; after a visit to every device, ` +
      `${DEVICES} devices ${kps(SHORT_WRITES, ms.scopedSteady)}, ${SCALE_DEVICES} ${kps(SHORT_WRITES, ms.scaleSteady)}`,
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

console.log(`  scoped replay rate, k writes/s: ${spread(rates, 0)}`);
console.log(`  replay / direct Machine (same round): ${spread(ratios.vsDirect)}`);
console.log(`  share of the replay spent on invariant checks: ${spread(ratios.checks)}`);
console.log(`  whole-machine checks / scoped checks, per line: ${spread(ratios.full)}`);
console.log(
  `  per-line cost, ${SCALE_DEVICES} devices / ${DEVICES}, from the first write (first visits in the larger run's lines): ${spread(ratios.scale)}`,
);
console.log(
  `  per-line cost, ${SCALE_DEVICES} devices / ${DEVICES}, after one visit to every device (${warmSmall} and ${warmLarge} untimed writes): ${spread(ratios.scaleSteady)}`,
);
for (const problem of unclean) console.log(`  not clean: ${problem}`);
verdict(median(rates) >= 500, `replay rate ${median(rates).toFixed(0)} k writes/s >= 500 k writes/s`);
verdict(median(ratios.vsDirect) >= 0.6, `replay / direct ${median(ratios.vsDirect).toFixed(2)} >= 0.6`);
verdict(median(ratios.checks) <= 0.2, `checks' share ${(median(ratios.checks) * 100).toFixed(0)} % <= 20 %`);
verdict(median(ratios.full) <= 3, `whole / scoped ${median(ratios.full).toFixed(2)}x <= 3x`);
verdict(
  median(ratios.scaleSteady) <= 1.25,
  `${SCALE_DEVICES} devices per line ${median(ratios.scaleSteady).toFixed(2)}x the cost of ${DEVICES} <= 1.25x (steady lines)`,
);
verdict(unclean.length === 0, 'every checked replay ends clean (status ok, no violations)');
const growth = growths.length === 0 ? 0 : Math.max(...growths);
verdict(growth < 16 * 2 ** 20, `heap growth from 200k to 1M lines ${mib(growth)} < 16 MiB`);
