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
 *   threw away the optimised code that held on to the previous replay's objects (`--trace-deopt`:
 *   "weak objects") and optimised again (the replay package's shape keeper, branch `recompile`, now
 *   keeps those objects' maps alive, but the new machine's first lines still warm up); a window that starts a few hundred lines into one replay and
 *   tens of thousands into the other (as an earlier version of this bench did, after one untimed
 *   cycle each: 4,096 devices came out three times cheaper per line than 64) times that in one run
 *   only. Both runs now skip the same lines, enough for that to be over.
 * The contenders' code is `replay-contenders.ts`. Each round, each contender runs in a child process
 * of its own (`replay-contender-child.ts`, started with this process's `node` options: the loader,
 * `--expose-gc`), as JMH forks a JVM per benchmark and the rangeset bench a process per workload:
 * V8 keeps one set of type feedback per function for the whole process, so a contender run after
 * others ran the code they taught V8 (10-25 % either way, and direct's calls ran twice as fast after
 * a scoped replay: DESIGN.md "Benchmark figures"), and a CLI replay runs one kind alone. In its
 * child every contender alike makes untimed warm-up passes of its own work for at least
 * `BENCH_WARMUP_MS` (2,000) ms of CPU time and at least two passes (`warmupPasses`: two or three of
 * the million-line replays, four or five of direct, five to ten of the 20,000-line ones; one of
 * scale), then the timed pass, and sends that
 * pass's figures (times, windows, heap samples, the report's status and violation count) back as JSON
 * on stdout. A contender whose ratio to another is a target (direct and the unchecked replay against
 * the scoped one, full against scopedShort: `RATIO_PARTNERS`) warms up with the other's passes and
 * its own in turn, each side for as long and as many passes as alone (a budget shared by the two
 * left the scoped side one warm-up pass where alone it had two, and its second pass costs 1.3-1.5
 * times its later ones: DESIGN.md, branch pair2), and times a pass of the other right after its own,
 * and the ratio compares those two: each alone in a child of its own, the two sides ran through code
 * compiled from different feedback (the unchecked replay alone no faster than the scoped one alone). The trace files are written once, by this process, and the children read them; a child
 * that fails or sends no JSON stops the bench with an error naming its contender. `--in-process` runs every contender in this process instead,
 * as before 2026-12-07 (after an untimed warm-up of full, scopedShort and scale, not of the three
 * million-line contenders).
 * Times are the process's CPU time (the machine is shared: wall time follows the other work on it),
 * over the timed lines only: the set-up lines before and the end of the replay after (final whole
 * check and report, made once per trace) are not counted. The whole bench took one to three minutes
 * in one process and four to eight forked beside five other sessions' work (2026-12-07, load 15-21).
 *
 * Memory is sampled every 100,000 lines of the scoped replay after a GC: it must not grow with the
 * trace. Prints per round, then the median of each same-round ratio with its min and max, and a
 * PASS/FAIL line per target; exits 0 whatever the verdicts (1 if a child process fails).
 * `BENCH_WRITES`, `BENCH_RUNS` shorten a run; `BENCH_ONLY=scale` runs the scale contender alone (its
 * figures and verdict only: about a minute a round), for work on the scale target;
 * `BENCH_SCALE_CHECKS=off` replays both scale machines without checks (`invariantChecks: 'off'`), to
 * see how much of the ratio is the engine's and the replay layer's rather than the checks' (a
 * diagnostic: no verdict is printed for it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CONTENDERS,
  DEVICES,
  type Measured,
  type Name,
  type Replayed,
  runContender,
  SCALE_CHECKS,
  SHORT_WRITES,
  STEADY_LEAD,
  STEADY_LINES,
  scaleLarge,
  scaleSmall,
  WARMUP_MS,
  WRITES,
  writeTraces,
} from './replay-contenders.js';
import { guestsFor, type Write, writes } from './writes-workload.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** `scale`: the scale contender alone. */
const SCALE_ONLY = process.env.BENCH_ONLY === 'scale';
/** `--in-process`: every contender in this process, as before 2026-12-07 (`runForked`). */
const IN_PROCESS = process.argv.slice(2).includes('--in-process');

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(2)} MiB`;
const kps = (writes: number, ms: number): string => `${(writes / ms).toFixed(0)} k writes/s`;
const verdict = (ok: boolean, what: string): void => console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);

const dir = mkdtempSync(join(tmpdir(), 'vpci-bench-'));
const files = writeTraces(dir, SCALE_ONLY);
const SCALE_DEVICES = scaleLarge.length;

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

const CHILD = fileURLToPath(new URL('./replay-contender-child.ts', import.meta.url));
/**
 * Runs contender `name` in a child process of its own (`replay-contender-child.ts`: its warm-up
 * passes, then the timed one), started as this process was (`execArgv`: the loader, `--expose-gc`), and
 * returns the figures it prints; throws, naming the contender, if the child fails or prints no JSON.
 */
function runForked(name: Name): Measured {
  const child = spawnSync(process.execPath, [...process.execArgv, CHILD, name, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (child.status !== 0)
    throw new Error(
      `the child process of contender ${name} failed: ${child.error?.message ?? (child.signal === null ? `exit ${child.status}` : `killed by ${child.signal}`)}`,
    );
  try {
    return JSON.parse(child.stdout) as Measured;
  } catch {
    throw new Error(
      `the child process of contender ${name} printed no figures as JSON: ${JSON.stringify(child.stdout.slice(0, 200))}`,
    );
  }
}

const contenders = CONTENDERS.filter((name) => !SCALE_ONLY || name === 'scale');
const run = async (name: Name): Promise<Measured> =>
  IN_PROCESS ? { outcome: await runContender(name, files) } : runForked(name);

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
console.log(
  IN_PROCESS
    ? '  process: every contender in this one process (--in-process), after a warm-up of full, scopedShort and scale'
    : `  process: each contender in a child process of its own each round, untimed passes of its work for ${WARMUP_MS} ms of CPU time and at least two (scale one) then the timed one; direct, unchecked and full timed beside a pass of their ratio's other side (scoped, scoped, scopedShort) in their children, each side warmed up so`,
);
try {
  // In one process, a warm-up, not counted: every contender's code but the longest three's compiled
  // by the optimiser before the first round. Forked, every child makes its contender's warm-up passes.
  if (IN_PROCESS)
    for (const name of contenders)
      if (name !== 'direct' && name !== 'scoped' && name !== 'unchecked') await run(name);
  for (let round = 0; round < RUNS; round++) {
    const ms = {} as Record<Name, number>;
    /** Forked: the ratio partners' passes timed beside each contender's own in its child. */
    const partnerMs = {} as Partial<Record<Name, number>>;
    const windows = {} as Record<'scaleSmall' | 'scaleLarge', Replayed['windows']>;
    for (let k = 0; k < contenders.length; k++) {
      const name = contenders[(k + round) % contenders.length]!;
      const measured = await run(name);
      const { outcome } = measured;
      if (measured.partnerMs !== undefined) partnerMs[name] = measured.partnerMs;
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
          if (replayed.status !== 'ok' || replayed.violations > 0)
            unclean.push(`${what}: status ${replayed.status}, ${replayed.violations} violations`);
        continue;
      }
      ms[name] = outcome.ms;
      if (name !== 'unchecked' && (outcome.status !== 'ok' || outcome.violations > 0))
        unclean.push(`${name}: status ${outcome.status}, ${outcome.violations} violations`);
      if (name === 'scoped') {
        console.log(`  heap every 100k lines: ${outcome.samples.map(mib).join(', ')}`);
        if (outcome.samples.length >= 3) growths.push(outcome.samples.at(-1)! - outcome.samples[1]!);
      }
    }
    if (!SCALE_ONLY) {
      rates.push(WRITES / ms.scoped);
      ratios.vsDirect.push(ms.direct / (partnerMs.direct ?? ms.scoped));
      ratios.checks.push(1 - ms.unchecked / (partnerMs.unchecked ?? ms.scoped));
      ratios.full.push(ms.full / (partnerMs.full ?? ms.scopedShort));
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
} finally {
  rmSync(dir, { recursive: true });
}

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
  // The scoped replay does all of the unchecked one's work and its checks besides: a round where the
  // unchecked replay took as long or longer measured how V8 compiled each process's code that time, not
  // the checks (seen forked, 2026-12-07: an unchecked pass alone in its process runs 1.0-2.2 M writes/s
  // from pass to pass; packages/replay DESIGN.md, "Benchmark figures").
  const unmeasured = ratios.checks.filter((share) => share <= 0).length;
  verdict(
    median(ratios.checks) <= 0.2 && unmeasured === 0,
    `checks' share ${(median(ratios.checks) * 100).toFixed(0)} % <= 20 %` +
      (unmeasured === 0
        ? ''
        : ` (not a measurement: in ${unmeasured} of ${ratios.checks.length} rounds the unchecked replay took as long as the scoped one or longer)`),
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
