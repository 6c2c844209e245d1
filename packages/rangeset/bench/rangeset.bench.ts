/**
 * `pnpm bench` for @vpci/rangeset: RangeSet against the fastest npm ordered structures used as range
 * sets (bench/peers.ts), a flat typed array (the floor for whole-set consumes and tiny sets) and Xen's
 * own linked-list algorithm (bench/xen-linked-list.ts; in C, bench/xen-consume.c, compiled with gcc),
 * on seeded workloads (bench/workloads.ts):
 *
 *   (a) mixed operations on a set pre-filled with 100,000 ranges;
 *   (b) building a set of 1,000,000 ranges inserted in random order, and its memory;
 *   (c) fragmentation: holes punched into [0, 2^32), then consumed to empty 64 values per call;
 *   (d) (a) on clustered keys, for information;
 *   (e) mixed operations aimed at stored ranges, the set held near 100,000 and 1,000,000 ranges;
 *   (f) consuming a whole set of 1,000,000 ranges, a range per callback;
 *   (g) many tiny sets in the pattern of Xen's modify_bars, 10,000 and 100,000 devices.
 *
 * Every structure runs the same number of rounds; a ratio is between two runs of one round, and each
 * figure is the median of the same-run ratios, printed with their min and max.
 *
 * Every structure replays the identical pre-generated stream and must end with the identical set (and
 * the same query answers); any difference aborts with exit code 1. Missing a performance target only
 * prints FAIL. Options: `--seed=<n>` (default fixed), `--quick` (small sizes, for a smoke test),
 * `--only=a,b,c` (a subset of the workloads), `--all-peers` (every npm peer in (c) too), `--wall`
 * (wall-clock times instead of the process's CPU time, see `time`), `--in-process` (every workload in
 * this one process, one after another, as before 2026-12-07).
 *
 * Each workload runs in a child process of its own (`forkEach`), as JMH forks a JVM per benchmark: V8
 * keeps one set of type feedback per function for the whole process, and it decides what to inline
 * into a loop from it, so a workload measured after another one measured the inlining the other one's
 * calls had taught V8. Workload (a)'s queries all reach the store, and after it (g)'s loop over tiny sets
 * inlined the store's query path and no longer had room for the constructor (1.75x at 10,000 devices
 * after (a) in one process, 1.91x in a process of its own; DESIGN.md "Tenth pass"). Every contender of a workload still
 * runs in the same process, the same number of rounds, alternated as before. (g)'s figure in one
 * process after (a) is printed too, as INFO, from (a)'s child.
 *
 * Run: node --expose-gc --single-threaded-gc --import tsx bench/rangeset.bench.ts (`pnpm bench`).
 * `--single-threaded-gc` keeps the collector on the main thread: runs are timed by the process's CPU
 * time, and the concurrent sweeping a forced gc() leaves behind would otherwise be counted in the
 * next run (it made a 2 ms consume read 9-21 ms).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ConsumeStep, type Errno, RangeSet } from '../src/index.js';
import { addAll, applyOps, type OverlappingSets, overlappingEach, privateCopy } from './kernels.js';
import {
  BTreeRangeSet,
  type ConsumeCallback,
  FlatRangeSet,
  IntervalTreeRangeSet,
  type Pair,
  type RangeSetLike,
  SdslRangeSet,
} from './peers.js';
import {
  buildWorkload,
  clusteredMixedWorkload,
  fragmentWorkload,
  type MixedWorkload,
  mixedWorkload,
  type OpStream,
  type RangeList,
  storedMixedWorkload,
  streamPrefix,
  TINY_BARS,
  type TinySetsWorkload,
  tinySetsWorkload,
} from './workloads.js';
import { XenLinkedListRangeSet } from './xen-linked-list.js';

// ---- configuration -----------------------------------------------------------------------------

const argv = process.argv.slice(2);
const seedArg = argv.find((a) => a.startsWith('--seed='));
const SEED = seedArg === undefined ? 0x5eed2024 : Number(seedArg.slice('--seed='.length)) >>> 0;
const QUICK = argv.includes('--quick');
/** `--all-peers`: every npm peer in (c) too (slow: minutes on a loaded host). */
const ALL_PEERS = argv.includes('--all-peers');
/** `--wall`: time runs by the wall clock instead of the process's CPU time. */
const WALL = argv.includes('--wall');
/** `--in-process`: run the selected workloads in this process instead of a child each (`forkEach`). */
const IN_PROCESS = argv.includes('--in-process');
/**
 * `--info=g`: the targets of these workloads are printed as INFO, a figure without a verdict (a child
 * that runs (g) after another workload, for the in-process figure; its verdict comes from its own child).
 */
const INFO =
  argv
    .find((a) => a.startsWith('--info='))
    ?.slice('--info='.length)
    .split(',') ?? [];
/** `--summary-to=<file>`: a child writes its summary lines there, for the parent to print. */
const SUMMARY_TO = argv.find((a) => a.startsWith('--summary-to='))?.slice('--summary-to='.length);
const onlyArg = argv.find((a) => a.startsWith('--only='));
/** Which workloads to run: `--only=a,c` runs (a) and (c). */
const ONLY =
  onlyArg === undefined ? ['a', 'b', 'c', 'd', 'e', 'f', 'g'] : onlyArg.slice('--only='.length).split(',');

const CONFIG = QUICK
  ? {
      fill: 10_000,
      ops: 100_000,
      listOps: 2_000,
      build: 100_000,
      span: 2 ** 24,
      holes: 1_000,
      storedSizes: [10_000, 100_000],
      storedOps: 100_000,
      consume: 100_000,
      devices: [1_000, 10_000],
    }
  : {
      fill: 100_000,
      ops: 1_000_000,
      listOps: 20_000,
      build: 1_000_000,
      span: 2 ** 32,
      holes: 100_000,
      storedSizes: [100_000, 1_000_000],
      storedOps: 1_000_000,
      consume: 1_000_000,
      devices: [10_000, 100_000],
    };
/** Values handed out per consume call before the callback asks for a restart. */
const BUDGET = 64;
/**
 * Timed runs per structure and workload. Every structure runs this many times, in rounds; a ratio is
 * taken between two structures' runs of the same round (same load on the machine), and the figure is
 * the median of those same-run ratios, printed with their min and max.
 */
const RUNS = 5;

const TARGETS = {
  mixedVsPeer: 4,
  storedMixedVsPeer: 4,
  consumeVsFlat: 0.5,
  tinyVsBest: 2,
  mixedVsList: 300,
  buildVsPeer: 2,
  bytesPerRange: 24,
  fragmentVsPeer: 2.5,
};

// ---- the contenders ----------------------------------------------------------------------------

interface Contender {
  readonly name: string;
  readonly make: () => RangeSetLike;
}

const RANGESET: Contender = { name: 'RangeSet', make: () => new RangeSet() };
const PEERS: readonly Contender[] = [
  { name: 'sorted-btree', make: () => new BTreeRangeSet() },
  { name: 'js-sdsl', make: () => new SdslRangeSet() },
  { name: '@flatten-js/interval-tree', make: () => new IntervalTreeRangeSet() },
];
const FAST: readonly Contender[] = [RANGESET, ...PEERS];
const XEN_LIST = 'Xen linked list';

/**
 * One small, live instance of every structure for the whole run. Optimized code refers to hidden
 * classes weakly; when the last object of a class dies, V8 drops the class and deoptimizes that
 * code ("weak objects"). Between two timed runs every set of a structure is garbage, so without a
 * keeper each run (after another structure's run and a GC) would start over from deoptimized code,
 * which a long-lived set in a real program never does. In our runs that made RangeSet up to 2x slower
 * in (a). The flat typed array had no keeper until 2026-12-06: every one of its timed runs in (f) and
 * (g) began in the interpreter and recompiled (`--trace-deopt`: "weak objects" after each run), which
 * made it 1.5-2.5x slower in (g) at 10,000 devices (87-117 ms a run against 35-39 ms kept alive) and
 * inflated RangeSet's ratio to it.
 */
const keepers: RangeSetLike[] = [
  ...FAST.map((c) => c.make()),
  new FlatRangeSet(),
  new XenLinkedListRangeSet(),
].map((set) => {
  for (let i = 0; i < 2000; i++) set.addRange(i * 1000, i * 1000 + 99);
  for (let i = 0; i < 1000; i++) set.removeRange(i * 2000 + 10, i * 2000 + 19);
  for (let i = 0; i < 100; i++) {
    set.containsRange(i * 999, i * 999 + 5);
    set.overlapsRange(i * 999, i * 999 + 5);
  }
  // No consumeRanges here: a second callback would make every structure's callback call site
  // polymorphic and keep it from inlining the benchmark's callback.
  return set;
});

// ---- kernels: the timed loops ------------------------------------------------------------------

function removeAll(set: RangeSetLike, starts: Float64Array, ends: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) set.removeRange(starts[i]!, ends[i]!);
}

/** Consumes the set to empty, `consumer.budget` values per call; returns the number of calls. */
function drain(set: RangeSetLike, consumer: BudgetConsumer): number {
  let calls = 0;
  for (;;) {
    consumer.left = consumer.budget;
    calls++;
    const result = set.consumeRanges(consumer.callback);
    if (!result.ok) throw new Error(`consumeRanges failed: ${result.code}`);
    if (result.status === 'done') return calls;
  }
}

/**
 * The consume callback of workload (c): takes min(budget left, range length) values from the first
 * range, then asks for a restart once the budget is spent. It returns one reused step object.
 */
class BudgetConsumer {
  readonly budget: number;
  left = 0;
  /** Values consumed in total, to check against the size of the set. */
  total = 0;
  private readonly step: { consumed: number; next: 'continue' | 'restart' } = {
    consumed: 0,
    next: 'continue',
  };
  readonly callback: ConsumeCallback = (start: number, end: number): ConsumeStep<Errno> => {
    const length = end - start + 1;
    const take = Math.min(length, this.left);
    this.left -= take;
    this.total += take;
    this.step.consumed = take;
    this.step.next = this.left === 0 ? 'restart' : 'continue';
    return this.step;
  };

  constructor(budget: number) {
    this.budget = budget;
  }

  /** Starts counting again (a structure keeps one consumer for all its runs, see `consumers`). */
  reset(): void {
    this.left = 0;
    this.total = 0;
  }
}

/**
 * One consumer per structure, kept for the whole benchmark run, as a program keeps its callback (vPCI
 * has one `map_range`). A consumer made fresh for each run died with the run, and with it the
 * closure that each structure's optimized consume loop had inlined: V8 then dropped that code ("weak
 * objects", as for the keepers above) and every timed run began in the interpreter and recompiled its
 * loop, with the compiler's CPU time counted in the run. In (f) that was most of a run: the flat
 * array took 12-17 ms a run instead of 6, RangeSet 20-30 ms instead of 10. Every structure, and so
 * every figure, is measured the same way.
 */
function consumers<C extends { reset(): void }>(n: number, make: () => C): C[] {
  return Array.from({ length: n }, make);
}

interface Kernels {
  readonly applyOps: typeof applyOps;
  readonly addAll: typeof addAll;
  readonly removeAll: typeof removeAll;
  readonly drain: typeof drain;
  readonly consumeAll: typeof consumeAll;
  readonly modifyBarsAll: typeof modifyBarsAll;
}

function kernels(): Kernels {
  return {
    applyOps: privateCopy(applyOps),
    addAll: privateCopy(addAll),
    removeAll: privateCopy(removeAll),
    drain: privateCopy(drain),
    consumeAll: privateCopy(consumeAll),
    modifyBarsAll: privateCopy(modifyBarsAll),
  };
}

// ---- measuring ---------------------------------------------------------------------------------

const gc: () => void =
  typeof globalThis.gc === 'function'
    ? globalThis.gc
    : () => {
        throw new Error('run with node --expose-gc (the memory figures need global.gc)');
      };

function fullGc(): void {
  gc();
  gc();
}

/**
 * Seconds of CPU time (user + system, every thread of the process: the collector's and the
 * compiler's helpers count too) taken by `fn`, or of wall-clock time with `--wall`. On a host shared
 * by many jobs on 2 cores, the wall clock of a run of a few milliseconds mostly measures the
 * scheduler: one preemption makes a 2 ms run take 35 ms. CPU time counts the work the run did.
 */
function time(fn: () => void): number {
  if (WALL) {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  }
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/** heapUsed + arrayBuffers after a full collection (RangeSet keeps its ranges in ArrayBuffers). */
function liveBytes(): number {
  fullGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** The timed runs of one structure on one workload. */
interface Measured<T extends { seconds: number }> {
  /** The fastest run. */
  best: T;
  /** The first run (the one whose results are checked). */
  first: T;
  /** Seconds of every run, by round. */
  all: number[];
  /** Every run, by round. */
  runs: T[];
}

/**
 * Times every structure on one workload: `warmUp(i)` for each structure first (untimed), then RUNS
 * rounds in which every structure runs `once(i, round)` once, starting with a different structure
 * each round, so a burst of load from elsewhere on the machine hits every structure alike and no one
 * always runs first. Every structure runs the same number of times.
 */
function rounds<T extends { seconds: number }>(
  names: readonly string[],
  warmUp: (who: number) => void,
  once: (who: number, round: number) => T,
  warmUps = 1,
): Measured<T>[] {
  // Short workloads warm up several times, so that their loops are compiled before the timing
  // starts rather than during it (CPU time would count the compiler's thread).
  for (let w = 0; w < warmUps; w++) for (let who = 0; who < names.length; who++) warmUp(who);
  const runs: T[][] = names.map(() => []);
  for (let round = 0; round < RUNS; round++) {
    for (let j = 0; j < names.length; j++) {
      const who = (j + round) % names.length;
      runs[who]![round] = once(who, round);
    }
  }
  for (let who = 0; who < names.length; who++) {
    console.log(`  ${names[who]}: ${runs[who]!.map((r) => seconds(r.seconds)).join(', ')}`);
  }
  return runs.map((list) => ({
    best: list.reduce((a, b) => (b.seconds < a.seconds ? b : a)),
    first: list[0]!,
    all: list.map((r) => r.seconds),
    runs: list,
  }));
}

/** Median, min and max of a list of same-run ratios. */
interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

function spreadOf(xs: readonly number[]): Spread {
  const sorted = [...xs].sort((a, b) => a - b);
  const m = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

/** `peer[r] / ref[r]` for every round r: how many times faster the reference ran in that round. */
function sameRunRatios(peer: readonly number[], ref: readonly number[]): number[] {
  return peer.map((t, r) => t / ref[r]!);
}

/** Per round, the fastest of `peers` in that round over the reference. */
function bestPeerRatios(peers: readonly (readonly number[])[], ref: readonly number[]): number[] {
  return ref.map((t, r) => Math.min(...peers.map((p) => p[r]!)) / t);
}

function spreadText(x: Spread): string {
  return `${ratio(x.median)} (min ${ratio(x.min)}, max ${ratio(x.max)}, median of ${x.n} same-run ratios)`;
}

// ---- checking ----------------------------------------------------------------------------------

class MismatchError extends Error {}

/** Pairs as one flat `s0, e0, s1, e1, …` array. */
function flatten(pairs: Pair[]): Float64Array {
  const out = new Float64Array(2 * pairs.length);
  for (let i = 0; i < pairs.length; i++) {
    out[2 * i] = pairs[i]![0];
    out[2 * i + 1] = pairs[i]![1];
  }
  return out;
}

function flatOf(list: RangeList): Float64Array {
  const out = new Float64Array(2 * list.length);
  for (let i = 0; i < list.length; i++) {
    out[2 * i] = list.starts[i]!;
    out[2 * i + 1] = list.ends[i]!;
  }
  return out;
}

/** Throws a MismatchError naming the first difference between two flat range lists. */
function assertSameRanges(what: string, name: string, actual: Float64Array, expected: Float64Array): void {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i += 2) {
    if (actual[i] !== expected[i] || actual[i + 1] !== expected[i + 1]) {
      throw new MismatchError(
        `${what}: ${name} differs from the reference at range #${i / 2}: ` +
          `[${actual[i]}, ${actual[i + 1]}] instead of [${expected[i]}, ${expected[i + 1]}]`,
      );
    }
  }
  if (actual.length !== expected.length) {
    throw new MismatchError(
      `${what}: ${name} holds ${actual.length / 2} ranges, the reference ${expected.length / 2}`,
    );
  }
}

function assertEqual(what: string, name: string, actual: number, expected: number): void {
  if (actual !== expected)
    throw new MismatchError(`${what}: ${name} gave ${actual}, the reference ${expected}`);
}

/** Number of values in a flat range list. */
function valueCount(flat: Float64Array): number {
  let n = 0;
  for (let i = 0; i < flat.length; i += 2) n += flat[i + 1]! - flat[i]! + 1;
  return n;
}

// ---- reporting ---------------------------------------------------------------------------------

interface Row {
  name: string;
  cells: string[];
}

function printTable(header: string[], rows: Row[]): void {
  const table = [header, ...rows.map((r) => [r.name, ...r.cells])];
  const widths = header.map((_, c) => Math.max(...table.map((line) => (line[c] ?? '').length)));
  const render = (line: string[]): string =>
    line.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  console.log(`  ${render(header)}`);
  console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const line of table.slice(1)) console.log(`  ${render(line)}`);
}

/**
 * Cells shared by the result tables: operations, runs, best time, rate, and RangeSet's speed-up (the
 * median of the same-run ratios, min–max).
 */
function speedCells(n: number, all: readonly number[], rangeSetAll: readonly number[]): string[] {
  const best = Math.min(...all);
  const x = spreadOf(sameRunRatios(all, rangeSetAll));
  return [
    count(n),
    String(all.length),
    seconds(best),
    rate(n / best),
    `${ratio(x.median)} (${ratio(x.min)}–${ratio(x.max)})`,
  ];
}

function rate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k/s`;
  return `${perSecond.toFixed(1)} /s`;
}

function seconds(s: number): string {
  return s >= 10 ? `${s.toFixed(1)} s` : s >= 0.01 ? `${s.toFixed(3)} s` : `${(s * 1e3).toFixed(2)} ms`;
}

function ratio(x: number): string {
  return x >= 100 ? `${x.toFixed(0)}x` : `${x.toFixed(2)}x`;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

const summary: string[] = [];

function target(label: string, pass: boolean, measured: string): void {
  // Every label starts with its workload, `(g) …`.
  if (INFO.includes(label.slice(1, 2))) {
    summary.push(
      `INFO  ${label}, in one process after ${ONLY.filter((w) => !INFO.includes(w))
        .map((w) => `(${w})`)
        .join(', ')}: measured ${measured}`,
    );
  } else summary.push(`${pass ? 'PASS' : 'FAIL'}  ${label}: measured ${measured}`);
}

function section(title: string): void {
  console.log(`\n== ${title} ${'='.repeat(Math.max(0, 96 - title.length))}`);
}

// ---- (a) mixed ---------------------------------------------------------------------------------

interface MixedRun {
  seconds: number;
  /** [contains answered true, overlaps answered true]. */
  hits: Float64Array;
  /** The final set, from the first run only. */
  flat: Float64Array | undefined;
}

function fillAll(k: Kernels, set: RangeSetLike, fill: RangeList): RangeSetLike {
  k.addAll(set, fill.starts, fill.ends, fill.length);
  return set;
}

/** Fills a fresh set (untimed), then times the stream on it. */
function mixedOnce(
  k: Kernels,
  make: () => RangeSetLike,
  fill: RangeList,
  stream: OpStream,
  keep: boolean,
): MixedRun {
  const set = fillAll(k, make(), fill);
  const hits = new Float64Array(2);
  fullGc();
  const s = time(() => k.applyOps(set, stream.ops, stream.starts, stream.ends, stream.length, hits));
  return { seconds: s, hits, flat: keep ? flatten(set.toArray()) : undefined };
}

/**
 * Times a mixed workload on `structures` (RangeSet first) in rounds, after a warm-up on `warm`, and
 * checks that every structure ends with RangeSet's set and answers.
 */
function runMixed(
  tag: string,
  structures: readonly Contender[],
  work: MixedWorkload,
  warm: MixedWorkload,
): { measured: Measured<MixedRun>[]; ref: Measured<MixedRun> } {
  const ks = structures.map(() => kernels());
  const measured = rounds(
    structures.map((c) => c.name),
    (who) => mixedOnce(ks[who]!, structures[who]!.make, warm.fill, warm.stream, false),
    (who, round) => mixedOnce(ks[who]!, structures[who]!.make, work.fill, work.stream, round === 0),
  );
  const ref = measured[0]!;
  measured.forEach((m, who) => {
    const name = structures[who]!.name;
    assertSameRanges(`${tag} final set`, name, m.first.flat!, ref.first.flat!);
    for (const run of m.runs) {
      assertEqual(`${tag} contains hits`, name, run.hits[0]!, ref.first.hits[0]!);
      assertEqual(`${tag} overlaps hits`, name, run.hits[1]!, ref.first.hits[1]!);
    }
  });
  return { measured, ref };
}

function mixedRows(structures: readonly Contender[], measured: Measured<MixedRun>[], n: number): Row[] {
  return measured.map((m, who) => ({
    name: structures[who]!.name,
    cells: speedCells(n, m.all, measured[0]!.all),
  }));
}

function mixedFinal(run: MixedRun): void {
  console.log(
    `  final set: ${count(run.flat!.length / 2)} ranges, identical in every structure; ` +
      `contains true ${count(run.hits[0]!)}, overlaps true ${count(run.hits[1]!)} (the same in every structure and run)`,
  );
}

function benchMixed(): void {
  const work: MixedWorkload = mixedWorkload(SEED, CONFIG.fill, CONFIG.ops);
  const warm: MixedWorkload = mixedWorkload(SEED ^ 0xa5a5a5a5, CONFIG.fill / 10, CONFIG.ops / 10);
  const n = work.stream.length;
  section(
    `(a) mixed: ${count(n)} ops (40% add, 30% remove, 20% contains, 10% overlaps) on ${count(CONFIG.fill)} ranges`,
  );
  console.log(
    `  ranges of 1-64 values, starts uniform in [0, 2^40); fills and warm-up (${count(warm.stream.length)} ops ` +
      `on a set of ${count(warm.fill.length)}) untimed`,
  );

  const { measured, ref } = runMixed('(a)', FAST, work, warm);
  // The linked list runs a prefix of the stream; a fresh RangeSet runs the same prefix to check it.
  const p = streamPrefix(work.stream, CONFIG.listOps);
  const rsK = kernels();
  const listK = kernels();
  const listOf = (fill: RangeList) => (): RangeSetLike => {
    const flat = flatten(fillAll(kernels(), RANGESET.make(), fill).toArray());
    return XenLinkedListRangeSet.fromSorted(
      flat.filter((_, i) => i % 2 === 0),
      flat.filter((_, i) => i % 2 === 1),
    );
  };
  const noFill: RangeList = { starts: new Float64Array(0), ends: new Float64Array(0), length: 0 };
  mixedOnce(rsK, RANGESET.make, warm.fill, streamPrefix(warm.stream, CONFIG.listOps / 4), false);
  mixedOnce(listK, listOf(warm.fill), noFill, streamPrefix(warm.stream, CONFIG.listOps / 4), false);
  const listRun = mixedOnce(listK, listOf(work.fill), noFill, p, true);
  console.log(`  ${XEN_LIST} (first ${count(p.length)} ops): ${seconds(listRun.seconds)}`);
  // On the prefix RangeSet takes milliseconds: best of 5 runs.
  const rsPrefixRuns = Array.from({ length: 5 }, (_, i) =>
    mixedOnce(rsK, RANGESET.make, work.fill, p, i === 0),
  );
  const rsPrefix = rsPrefixRuns[0]!;
  const rsPrefixSeconds = Math.min(...rsPrefixRuns.map((r) => r.seconds));
  assertSameRanges('(a) final set on the prefix', XEN_LIST, listRun.flat!, rsPrefix.flat!);
  assertEqual('(a) contains hits on the prefix', XEN_LIST, listRun.hits[0]!, rsPrefix.hits[0]!);
  assertEqual('(a) overlaps hits on the prefix', XEN_LIST, listRun.hits[1]!, rsPrefix.hits[1]!);

  const rsRate = n / ref.best.seconds;
  const rows = mixedRows(FAST, measured, n);
  const listRate = p.length / listRun.seconds;
  const rsPrefixRate = p.length / rsPrefixSeconds;
  rows.push({
    name: `${XEN_LIST} (prefix)`,
    cells: [count(p.length), '1', seconds(listRun.seconds), rate(listRate), ratio(rsRate / listRate)],
  });
  rows.push({
    name: 'RangeSet (same prefix)',
    cells: [count(p.length), '5', seconds(rsPrefixSeconds), rate(rsPrefixRate), '-'],
  });
  printTable(['structure', 'ops', 'runs', 'best time', 'ops/s', 'RangeSet speed-up'], rows);
  mixedFinal(ref.first);
  console.log(
    `  ${XEN_LIST}: the first ${count(p.length)} ops only (each op walks the list); its final set and answers ` +
      `equal a fresh RangeSet's on the same prefix. Its speed-up is against RangeSet's full-stream ops/s; ` +
      `against RangeSet on the same prefix it is ${ratio(rsPrefixRate / listRate)}`,
  );

  const vsPeer = spreadOf(
    bestPeerRatios(
      measured.slice(1).map((m) => m.all),
      ref.all,
    ),
  );
  target(
    `(a) mixed: RangeSet >= ${TARGETS.mixedVsPeer}x fastest npm peer`,
    vsPeer.median >= TARGETS.mixedVsPeer,
    spreadText(vsPeer),
  );
  const vsList = rsRate / listRate;
  target(
    `(a) mixed: RangeSet >= ${TARGETS.mixedVsList}x ${XEN_LIST}`,
    vsList >= TARGETS.mixedVsList,
    `${ratio(vsList)} (${rate(rsRate)} vs ${rate(listRate)} on the first ${count(p.length)} ops)`,
  );
}

/**
 * (d) The mixed workload on clustered keys, for information (no target): the same operation mix and
 * sizes as (a), but every start lies in one of 16 windows of 2^22 values, so ranges merge and the
 * interpolation guesses that suit (a) are often wrong.
 */
function benchClustered(): void {
  const work = clusteredMixedWorkload(SEED + 6, CONFIG.fill, CONFIG.ops);
  const warm = clusteredMixedWorkload(SEED + 7, CONFIG.fill / 10, CONFIG.ops / 10);
  section(
    `(d) mixed on clustered keys: ${count(work.stream.length)} ops on ${count(CONFIG.fill)} ranges, for information`,
  );
  console.log(
    '  as (a), but every start lies in one of 16 windows of 2^22 values at random places in [0, 2^40)',
  );
  const structures = FAST.filter((c) => c.name !== '@flatten-js/interval-tree');
  const { measured, ref } = runMixed('(d)', structures, work, warm);
  printTable(
    ['structure', 'ops', 'runs', 'best time', 'ops/s', 'RangeSet speed-up'],
    mixedRows(structures, measured, work.stream.length),
  );
  mixedFinal(ref.first);
}

/**
 * (e) A mixed workload whose removes and lookups hit stored ranges (bench/workloads.ts
 * `storedMixedWorkload`), at two sizes: the set stays near its size while the stream runs.
 */
function benchStoredMixed(): void {
  const structures = FAST.filter((c) => c.name !== '@flatten-js/interval-tree');
  for (const size of CONFIG.storedSizes) {
    const ops = CONFIG.storedOps;
    const work = storedMixedWorkload(SEED + 8 + size, size, ops, new RangeSet());
    const warm = storedMixedWorkload(SEED + 9 + size, size / 10, ops / 10, new RangeSet());
    section(`(e) mixed on stored ranges: ${count(ops)} ops on ${count(size)} ranges`);
    console.log(
      '  30% add (a new range touching none), 40% remove, 20% contains, 10% overlaps; removes and lookups aim at a ' +
        'range drawn from the set as it stands (a remove takes it whole 3 times in 4, else its first or last ' +
        'part), so the set stays near its size; ranges of ' +
        '1-64 values, starts uniform in [0, 2^40); fills and warm-up untimed',
    );
    const { measured, ref } = runMixed('(e)', structures, work, warm);
    printTable(
      ['structure', 'ops', 'runs', 'best time', 'ops/s', 'RangeSet speed-up'],
      mixedRows(structures, measured, ops),
    );
    mixedFinal(ref.first);
    const vsPeer = spreadOf(
      bestPeerRatios(
        measured.slice(1).map((m) => m.all),
        ref.all,
      ),
    );
    target(
      `(e) mixed on stored ranges, ${count(size)} ranges: RangeSet >= ${TARGETS.storedMixedVsPeer}x fastest npm peer`,
      vsPeer.median >= TARGETS.storedMixedVsPeer,
      spreadText(vsPeer),
    );
  }
}

// ---- (b) build ---------------------------------------------------------------------------------

interface BuildRun {
  seconds: number;
  /** Live bytes the built set holds (first run only). */
  bytes: number;
}

function benchBuild(): void {
  const work = buildWorkload(SEED + 1, CONFIG.build);
  const warm = buildWorkload(SEED + 2, CONFIG.build / 10);
  const n = work.shuffled.length;
  const expected = flatOf(work.sorted);
  section(`(b) build: ${count(n)} disjoint, non-adjacent ranges inserted in random order`);
  console.log(
    `  warm-up: ${count(warm.shuffled.length)} other ranges into a fresh set, untimed; memory: delta of ` +
      `heapUsed + arrayBuffers across the first timed build, after global.gc(), the set alive`,
  );
  console.log(
    `  ${XEN_LIST}: skipped (each insert walks the list: ~n^2/4 = ${((n * n) / 4).toExponential(1)} node visits)`,
  );

  const ks = FAST.map(() => kernels());
  const measured = rounds(
    FAST.map((c) => c.name),
    (who) =>
      ks[who]!.addAll(FAST[who]!.make(), warm.shuffled.starts, warm.shuffled.ends, warm.shuffled.length),
    (who, round): BuildRun => {
      const c = FAST[who]!;
      // liveBytes() collects garbage first; later rounds collect without measuring.
      if (round > 0) fullGc();
      const before = round === 0 ? liveBytes() : 0;
      const set = c.make();
      const s = time(() => ks[who]!.addAll(set, work.shuffled.starts, work.shuffled.ends, n));
      if (round > 0) return { seconds: s, bytes: 0 };
      const bytes = liveBytes() - before;
      assertSameRanges('(b) built set', c.name, flatten(set.toArray()), expected);
      return { seconds: s, bytes };
    },
  );
  const results = measured.map((m, who) => ({
    name: FAST[who]!.name,
    run: { seconds: m.best.seconds, bytes: m.first.bytes },
    runs: m.all.length,
  }));
  const rs = results[0]!.run;
  printTable(
    ['structure', 'inserts', 'runs', 'best time', 'inserts/s', 'RangeSet speed-up', 'bytes/range'],
    results.map(({ name, run }, who) => ({
      name,
      cells: [...speedCells(n, measured[who]!.all, measured[0]!.all), (run.bytes / n).toFixed(1)],
    })),
  );
  console.log(`  every structure holds exactly the ${count(n)} generated ranges`);

  const vsPeer = spreadOf(
    bestPeerRatios(
      measured.slice(1).map((m) => m.all),
      measured[0]!.all,
    ),
  );
  target(
    `(b) build: RangeSet >= ${TARGETS.buildVsPeer}x fastest npm peer`,
    vsPeer.median >= TARGETS.buildVsPeer,
    spreadText(vsPeer),
  );
  const perRange = rs.bytes / n;
  target(
    `(b) memory: RangeSet < ${TARGETS.bytesPerRange} bytes/range`,
    perRange < TARGETS.bytesPerRange,
    `${perRange.toFixed(1)} bytes/range (${count(rs.bytes)} bytes for ${count(n)} ranges)`,
  );
}

// ---- (c) fragmentation -------------------------------------------------------------------------

interface FragmentRun {
  seconds: number;
  punch: number;
  consume: number;
  calls: number;
}

function benchFragment(): void {
  const work = fragmentWorkload(SEED + 3, CONFIG.span, CONFIG.holes);
  const warm = fragmentWorkload(SEED + 4, 2 ** 20, CONFIG.holes / 100);
  section(
    `(c) fragmentation: [0, 2^${Math.log2(work.span)}), ${count(work.holes.length)} holes of 1-16 values, ` +
      `then consume to empty, restart every ${BUDGET} values`,
  );
  console.log(`  warm-up on [0, 2^20) with ${count(warm.holes.length)} holes, untimed`);
  console.log(
    `  ${XEN_LIST}: skipped (each hole walks a list that grows to ${count(work.holes.length)} ranges)`,
  );

  // Every structure runs RUNS times; sorted-btree and the interval tree, 3-5x slower than js-sdsl here
  // in every run so far and 20-70 s a run on a loaded host, only with --all-peers.
  const FRAG = ALL_PEERS ? FAST : FAST.filter((c) => c.name === 'RangeSet' || c.name === 'js-sdsl');
  if (!ALL_PEERS)
    console.log(
      '  sorted-btree and @flatten-js/interval-tree: with --all-peers only (3-5x slower than js-sdsl)',
    );
  let reference: Float64Array | undefined;
  let values = 0;
  const ks = FRAG.map(() => kernels());
  const budgeted = consumers(FRAG.length, () => new BudgetConsumer(BUDGET));
  const measured = rounds(
    FRAG.map((c) => c.name),
    (who) => {
      const w = FRAG[who]!.make();
      w.addRange(0, warm.span - 1);
      ks[who]!.removeAll(w, warm.holes.starts, warm.holes.ends, warm.holes.length);
      budgeted[who]!.reset();
      ks[who]!.drain(w, budgeted[who]!);
    },
    (who, round): FragmentRun => {
      const c = FRAG[who]!;
      const k = ks[who]!;
      const set = c.make();
      set.addRange(0, work.span - 1);
      fullGc();
      const punch = time(() => k.removeAll(set, work.holes.starts, work.holes.ends, work.holes.length));
      if (round === 0) {
        const punched = flatten(set.toArray());
        if (reference === undefined) {
          reference = punched;
          values = valueCount(punched);
        } else assertSameRanges('(c) after punching', c.name, punched, reference);
      }
      fullGc();
      const consumer = budgeted[who]!;
      consumer.reset();
      let calls = 0;
      const consume = time(() => {
        calls = k.drain(set, consumer);
      });
      assertEqual('(c) values consumed', c.name, consumer.total, values);
      assertEqual('(c) ranges left after consuming', c.name, set.toArray().length, 0);
      return { seconds: punch + consume, punch, consume, calls };
    },
  );
  const results = measured.map((m, who) => ({ name: FRAG[who]!.name, run: m.best, runs: m.all.length }));

  const rs = results[0]!.run;
  const rsPunch = measured[0]!.runs.map((r) => r.punch);
  const rsConsume = measured[0]!.runs.map((r) => r.consume);
  const holes = work.holes.length;
  printTable(
    [
      'structure',
      'runs',
      'punch',
      'holes/s',
      'consume',
      'calls/s',
      'total',
      'speed-up: punch',
      'consume',
      'total',
    ],
    results.map(({ name, run, runs }, who) => ({
      name,
      cells: [
        String(runs),
        seconds(run.punch),
        rate(holes / run.punch),
        seconds(run.consume),
        rate(run.calls / run.consume),
        seconds(run.seconds),
        ratio(
          spreadOf(
            sameRunRatios(
              measured[who]!.runs.map((r) => r.punch),
              rsPunch,
            ),
          ).median,
        ),
        ratio(
          spreadOf(
            sameRunRatios(
              measured[who]!.runs.map((r) => r.consume),
              rsConsume,
            ),
          ).median,
        ),
        ratio(spreadOf(sameRunRatios(measured[who]!.all, measured[0]!.all)).median),
      ],
    })),
  );
  console.log(
    `  after punching: ${count(reference!.length / 2)} ranges, ${count(values)} values, identical in every ` +
      `structure; ${count(rs.calls)} consume calls each; every structure consumed every value and ended empty`,
  );
  console.log('  times above are of the run with the best total (punch + consume)');
  console.log('  speed-up = peer time / RangeSet time in the same round, median over the rounds');

  const vsPeer = spreadOf(
    bestPeerRatios(
      measured.slice(1).map((m) => m.all),
      measured[0]!.all,
    ),
  );
  target(
    `(c) fragmentation: RangeSet >= ${TARGETS.fragmentVsPeer}x fastest npm peer (total)`,
    vsPeer.median >= TARGETS.fragmentVsPeer,
    spreadText(vsPeer),
  );
}

// ---- (f) consume a whole set ---------------------------------------------------------------------

/**
 * The consume callback of workloads (f) and (g): takes every range whole and says `continue`, as a map
 * of a whole BAR does; counts ranges and values. It returns one reused step object.
 */
class WholeConsumer {
  ranges = 0;
  values = 0;
  /** Starts counting again (see `consumers`). */
  reset(): void {
    this.ranges = 0;
    this.values = 0;
  }
  private readonly step: { consumed: number; next: 'continue' } = { consumed: 0, next: 'continue' };
  readonly callback: ConsumeCallback = (start: number, end: number): ConsumeStep<Errno> => {
    this.ranges++;
    this.values += end - start + 1;
    this.step.consumed = end - start + 1;
    return this.step;
  };
}

/** Consumes the whole set in one call. */
function consumeAll(set: RangeSetLike, consumer: WholeConsumer): void {
  const result = set.consumeRanges(consumer.callback);
  if (!result.ok || result.status !== 'done') throw new Error('consumeRanges did not finish the set');
}

const CONSUMERS: readonly Contender[] = [
  RANGESET,
  { name: 'flat typed array', make: () => new FlatRangeSet() },
  ...PEERS.filter((c) => c.name !== '@flatten-js/interval-tree'),
];

interface ConsumeRun {
  seconds: number;
  ranges: number;
  values: number;
}

/** The C program of (f), compiled once per benchmark run; undefined (with the reason) without gcc. */
function compileXenConsume(): { path: string } | { missing: string } {
  const source = fileURLToPath(new URL('./xen-consume.c', import.meta.url));
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'rangeset-bench-')), 'xen-consume');
  const gcc = spawnSync('gcc', ['-O2', '-o', out, source], { encoding: 'utf8' });
  if (gcc.error !== undefined || gcc.status !== 0) {
    return { missing: `gcc -O2 failed or is not installed (${gcc.error?.message ?? gcc.stderr.trim()})` };
  }
  return { path: out };
}

/**
 * The ranges of `list` in the file format bench/xen-consume.c reads (pairs of little-endian 64-bit
 * unsigned integers), in a temporary file, so that the C program consumes exactly the set the
 * JavaScript structures consume.
 */
function writeRangesFile(list: RangeList): string {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'rangeset-bench-')), 'ranges.bin');
  const pairs = new BigUint64Array(2 * list.length);
  for (let i = 0; i < list.length; i++) {
    pairs[2 * i] = BigInt(list.starts[i]!);
    pairs[2 * i + 1] = BigInt(list.ends[i]!);
  }
  writeFileSync(out, new Uint8Array(pairs.buffer));
  return out;
}

/** One run of the C program on the ranges in `file`: its own timing of the consume, and what it consumed. */
function runXenConsume(binary: string, file: string): ConsumeRun {
  const run = spawnSync(binary, [file, WALL ? 'wall' : 'cpu'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`${binary} failed: ${run.stderr || run.status}`);
  const [secs, ranges, values] = run.stdout.trim().split(' ').map(Number);
  return { seconds: secs!, ranges: ranges!, values: values! };
}

function benchConsume(): void {
  const n = CONFIG.consume;
  const work = buildWorkload(SEED + 10, n);
  const warm = buildWorkload(SEED + 11, n / 10);
  section(`(f) consume a whole set of ${count(n)} ranges, each range taken whole by one callback`);
  console.log(
    '  each run fills a fresh set in ascending order (untimed), then times one consumeRanges call that empties it',
  );
  const ks = CONSUMERS.map(() => kernels());
  const whole = consumers(CONSUMERS.length, () => new WholeConsumer());
  const filled = (who: number, list: RangeList): RangeSetLike => {
    const set = CONSUMERS[who]!.make();
    ks[who]!.addAll(set, list.starts, list.ends, list.length);
    return set;
  };
  const once = (who: number, list: RangeList): ConsumeRun => {
    const set = filled(who, list);
    const consumer = whole[who]!;
    consumer.reset();
    fullGc();
    const secs = time(() => ks[who]!.consumeAll(set, consumer));
    assertEqual('(f) ranges left', CONSUMERS[who]!.name, set.toArray().length, 0);
    return { seconds: secs, ranges: consumer.ranges, values: consumer.values };
  };
  const c = compileXenConsume();
  const rangesFile = 'path' in c ? writeRangesFile(work.sorted) : '';
  // The C program runs in the rounds too, as one more contender, so its figure shares the load.
  const names = [...CONSUMERS.map((x) => x.name), "Xen's list in C (gcc -O2)"];
  const measured = rounds(
    'path' in c ? names : names.slice(0, -1),
    (who) => {
      if (who < CONSUMERS.length) once(who, warm.sorted);
    },
    (who) =>
      who < CONSUMERS.length
        ? once(who, work.sorted)
        : runXenConsume((c as { path: string }).path, rangesFile),
    5,
  );
  const ref = measured[0]!;
  measured.forEach((m, who) => {
    for (const run of m.runs) {
      assertEqual('(f) ranges consumed', names[who]!, run.ranges, n);
      assertEqual('(f) values consumed', names[who]!, run.values, ref.first.values);
    }
  });
  printTable(
    ['structure', 'ranges', 'runs', 'best time', 'ranges/s', 'RangeSet speed-up'],
    measured.map((m, who) => ({ name: names[who]!, cells: speedCells(n, m.all, ref.all) })),
  );
  if ('path' in c) {
    console.log(
      `  ${names.at(-1)}: bench/xen-consume.c, Xen's rangeset_consume_ranges algorithm on a linked list of ` +
        "malloc'd nodes (glibc malloc/free for xmalloc/xfree, no lock), compiled here with gcc -O2 and run once " +
        `per round; its own clock_gettime timing of the consume (${WALL ? 'CLOCK_MONOTONIC' : 'CLOCK_PROCESS_CPUTIME_ID'}), the same ranges (read from a file the benchmark wrote) and the same values consumed`,
    );
  } else console.log(`  Xen's list in C: not measured: ${c.missing}`);
  const vsFlat = spreadOf(sameRunRatios(measured[1]!.all, ref.all));
  target(
    `(f) consume ${count(n)} ranges: RangeSet >= ${TARGETS.consumeVsFlat}x the flat typed array`,
    vsFlat.median >= TARGETS.consumeVsFlat,
    spreadText(vsFlat),
  );
  if ('path' in c) {
    const vsC = spreadOf(sameRunRatios(measured[names.length - 1]!.all, ref.all));
    target(
      `(f) consume ${count(n)} ranges: RangeSet >= 1x Xen's list in C`,
      vsC.median >= 1,
      spreadText(vsC),
    );
  } else summary.push(`SKIP  (f) consume: RangeSet >= 1x Xen's list in C: ${c.missing}`);
}

// ---- (g) many tiny sets ------------------------------------------------------------------------------

/**
 * Xen's `modify_bars` (xen/drivers/vpci/header.c) on every device of `w`, twice (memory decoding on,
 * then off), each device's 6 BAR sets made new (`vpci_init_header` allocates them): add each BAR's
 * frames; remove a later BAR's frames from the earlier BARs that overlap them (Step B's per-device
 * check); remove the MSI-X table's frame from its BAR; for each BAR of 4 other devices, against each
 * of this device's BARs: `rangeset_overlaps_range`, and `rangeset_remove_range` on a hit (Step C);
 * then consume every set to empty (`apply_map`). Counts overlaps in `hits[0]`. Step C's queries go
 * through `overlapping`, one call per other BAR for the six sets: `RangeSet.overlappingSets` for
 * RangeSet (the range checked once, as vPCI's `modifyBars` asks since the eleventh pass), each set's
 * `overlapsRange` in turn for the peers (`overlappingEach`), the same questions either way.
 *
 * The other devices' BARs are read from `w.checkStart`/`w.checkEnd`, laid out in the order this loop
 * reads them (see `TinySetsWorkload`), not through `w.neighbours` at random devices. Read at random,
 * at 100,000 devices each neighbour was a cache miss in the workload's own arrays (9.6 MB), which the
 * 36 dependent set calls after it kept the processor from overlapping: a structure whose methods do
 * nothing took 100-130 ms there, RangeSet 340-450 ms and the flat array 460-600 ms, so most of what
 * (g) measured at 100,000 devices was the harness, the same for every structure. Laid out in order
 * (streamed by the prefetcher, as Xen walks its device list), the same operations on the same values
 * in the same order cost what 10,000 devices cost, ten times over. The answers are unchanged.
 */
function modifyBarsAll(
  make: () => RangeSetLike,
  overlapping: OverlappingSets,
  w: TinySetsWorkload,
  consumer: WholeConsumer,
  hits: Float64Array,
): void {
  const sets: RangeSetLike[] = [];
  const bars = 6;
  const { barStart, barEnd, msixBar, msixFrame, checkFrom, checkStart, checkEnd } = w;
  let overlaps = 0;
  for (let d = 0; d < w.devices; d++) {
    for (let i = 0; i < bars; i++) sets[i] = make();
    for (let cycle = 0; cycle < 2; cycle++) {
      for (let i = 0; i < bars; i++) {
        const s = barStart[bars * d + i]!;
        const e = barEnd[bars * d + i]!;
        sets[i]!.addRange(s, e);
        for (let j = 0; j < i; j++) if (sets[j]!.overlapsRange(s, e)) sets[j]!.removeRange(s, e);
      }
      sets[msixBar[d]!]!.removeRange(msixFrame[d]!, msixFrame[d]!);
      const last = checkFrom[d + 1]!;
      for (let x = checkFrom[d]!; x < last; x++) {
        const s = checkStart[x]!;
        const e = checkEnd[x]!;
        const found = overlapping(sets, s, e);
        if (found === 0) continue;
        for (let i = 0; i < bars; i++) {
          if ((found & (1 << i)) === 0) continue;
          overlaps++;
          sets[i]!.removeRange(s, e);
        }
      }
      for (let i = 0; i < bars; i++) sets[i]!.consumeRanges(consumer.callback);
    }
  }
  hits[0] = overlaps;
}

/**
 * Printed with (g) and in the header: the work the contenders do differs in one respect, which the
 * figures include. RangeSet checks its arguments on every call, as its API promises (each a safe
 * integer, `start <= end`, else an `InvalidArgumentError` naming the argument, the value and what was
 * expected, with the set unchanged); the peers' adapters check no value. In (g), 330 calls a device,
 * the check was about half of RangeSet's own time before it was made cheaper, and is still its largest
 * part (packages/rangeset DESIGN.md).
 */
const ARGUMENT_CHECKS =
  'argument checks: RangeSet checks the values of every call (safe integers, start <= end), as its API ' +
  "requires; the peers' adapters do not (they check only a consume callback's step, as RangeSet does), " +
  'so their times leave that work out';

/** A contender of (g), with the form it answers Step C's query in (see `OverlappingSets`). */
interface TinyContender extends Contender {
  readonly overlapping: OverlappingSets;
}

const TINY: readonly TinyContender[] = [
  { ...RANGESET, overlapping: RangeSet.overlappingSets as OverlappingSets },
  { name: 'flat typed array', make: () => new FlatRangeSet(), overlapping: privateCopy(overlappingEach) },
  { name: 'sorted-btree', make: () => new BTreeRangeSet(), overlapping: privateCopy(overlappingEach) },
];

interface TinyRun {
  seconds: number;
  ranges: number;
  values: number;
  overlaps: number;
}

function benchTinySets(): void {
  if (TINY_BARS !== 6) throw new Error('modifyBarsAll assumes 6 BARs');
  for (const devices of CONFIG.devices) {
    const work = tinySetsWorkload(SEED + 12 + devices, devices);
    const warm = tinySetsWorkload(SEED + 13 + devices, Math.max(100, devices / 10));
    section(`(g) many tiny sets, the modify_bars pattern: ${count(devices)} devices, 6 BAR sets each, twice`);
    console.log(
      '  per device: 6 new sets; twice (decoding on, off): add each BAR, remove it from earlier BARs it overlaps, ' +
        "remove the MSI-X table frame, overlaps (and remove on a hit) against 4 other devices' 6 BARs each, " +
        'consume every set to empty; BARs of 1-4096 frames in [0, 2^36)',
    );
    console.log(`  ${ARGUMENT_CHECKS}`);
    const ks = TINY.map(() => kernels());
    const whole = consumers(TINY.length, () => new WholeConsumer());
    const once = (who: number, w: TinySetsWorkload): TinyRun => {
      const consumer = whole[who]!;
      consumer.reset();
      const hits = new Float64Array(1);
      fullGc();
      const secs = time(() =>
        ks[who]!.modifyBarsAll(TINY[who]!.make, TINY[who]!.overlapping, w, consumer, hits),
      );
      return { seconds: secs, ranges: consumer.ranges, values: consumer.values, overlaps: hits[0]! };
    };
    // The last warm-up runs the timed workload itself: the small one finds no overlap against other
    // devices' BARs (nor does 10,000 devices), 100,000 devices find a few dozen, and each structure's
    // first hit then deoptimized its kernel, whose recompiling (50-120 ms of compiler CPU time, in
    // the process's CPU time) was counted in its first timed runs.
    const warmUps = TINY.map(() => 0);
    const WARM_UPS = 5;
    const measured = rounds(
      TINY.map((c) => c.name),
      (who) => once(who, ++warmUps[who]! < WARM_UPS ? warm : work),
      (who) => once(who, work),
      WARM_UPS,
    );
    const ref = measured[0]!.first;
    measured.forEach((m, who) => {
      for (const run of m.runs) {
        assertEqual('(g) ranges consumed', TINY[who]!.name, run.ranges, ref.ranges);
        assertEqual('(g) frames consumed', TINY[who]!.name, run.values, ref.values);
        assertEqual('(g) overlaps found', TINY[who]!.name, run.overlaps, ref.overlaps);
      }
    });
    printTable(
      ['structure', 'devices', 'runs', 'best time', 'devices/s', 'RangeSet speed-up'],
      measured.map((m, who) => ({
        name: TINY[who]!.name,
        cells: speedCells(devices, m.all, measured[0]!.all),
      })),
    );
    console.log(
      `  ${count(ref.ranges)} ranges and ${count(ref.values)} frames consumed, ${count(ref.overlaps)} overlaps ` +
        'found, the same in every structure and run',
    );
    const vsBest = spreadOf(
      bestPeerRatios(
        measured.slice(1).map((m) => m.all),
        measured[0]!.all,
      ),
    );
    target(
      `(g) tiny sets, ${count(devices)} devices: RangeSet >= ${TARGETS.tinyVsBest}x the best of sorted-btree and the flat typed array`,
      vsBest.median >= TARGETS.tinyVsBest,
      spreadText(vsBest),
    );
  }
}

// ---- main --------------------------------------------------------------------------------------

/** The workloads in the order the bench runs them. */
const WORKLOADS = ['a', 'b', 'c', 'd', 'e', 'f', 'g'] as const;

function printHeader(): void {
  const cpus = os.cpus();
  const load = os.loadavg().map((l) => l.toFixed(2));
  console.log('@vpci/rangeset benchmark');
  console.log(
    `  seed ${SEED} (0x${SEED.toString(16)})${QUICK ? '   QUICK MODE: reduced sizes, targets not meaningful' : ''}`,
  );
  console.log(`  node ${process.version} (V8 ${process.versions.v8}), ${os.platform()} ${os.arch()}`);
  console.log(
    `  ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; load average at start ${load.join(' ')}`,
  );
  console.log(
    `  timing: ${WALL ? 'wall clock (process.hrtime.bigint())' : 'CPU time of the process (process.cpuUsage(), user + system)'}; each structure warms up untimed, then ${RUNS} rounds run every ` +
      `structure once each (a different one first each round) on a fresh set after a global.gc(); a ratio ` +
      `compares two runs of the same round, and a figure is the median of those same-run ratios (min, max); ` +
      `a small set of each structure stays alive ` +
      `throughout, so no structure's optimized code is dropped between runs`,
  );
  console.log(
    IN_PROCESS
      ? `  process: ${ONLY.join(', ')} in this one process`
      : '  process: each workload in a child process of its own, every contender of a workload in that ' +
          "child (V8's type feedback, and so its inlining, is per process); (g) also in one process after " +
          '(a), as INFO',
  );
  console.log(`  ${ARGUMENT_CHECKS}`);
}

/** Runs the selected workloads in this process; returns false on a mismatch between structures. */
function runHere(): boolean {
  try {
    if (ONLY.includes('a')) benchMixed();
    if (ONLY.includes('b')) benchBuild();
    if (ONLY.includes('c')) benchFragment();
    if (ONLY.includes('d')) benchClustered();
    if (ONLY.includes('e')) benchStoredMixed();
    if (ONLY.includes('f')) benchConsume();
    if (ONLY.includes('g')) benchTinySets();
  } catch (error) {
    if (error instanceof MismatchError) {
      console.error(`\nMISMATCH: ${error.message}`);
      return false;
    }
    throw error;
  }
  if (keepers.some((set) => set.toArray().length === 0)) throw new Error('a keeper set was emptied');
  return true;
}

/**
 * Runs each selected workload in a child process of this script (`--in-process --only=<w>`, the other
 * options passed on), one after another, and collects their summary lines; returns false if a child
 * failed (a mismatch between structures, exit code 1). When (g) is selected with (a), (a)'s child runs
 * (g) after it too, for (g)'s in-process figure (INFO, no verdict): (a) is the workload whose calls
 * change what V8 inlines into (g)'s loop (DESIGN.md, "Eighth pass" to "Tenth pass").
 */
function forkEach(): boolean {
  const passOn = argv.filter((a) => !a.startsWith('--only='));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rangeset-bench-'));
  const info: string[] = [];
  for (const w of WORKLOADS.filter((x) => ONLY.includes(x))) {
    const withInfo = w === 'a' && ONLY.includes('g');
    const file = path.join(dir, `summary-${w}.txt`);
    const args = [
      ...process.execArgv,
      process.argv[1]!,
      ...passOn,
      '--in-process',
      `--only=${withInfo ? 'a,g' : w}`,
      ...(withInfo ? ['--info=g'] : []),
      `--summary-to=${file}`,
    ];
    const child = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (child.status !== 0) {
      console.error(
        `\nthe child process of workload (${w}) failed: ${child.error?.message ?? `exit ${child.status}`}`,
      );
      return false;
    }
    for (const line of readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')) {
      (line.startsWith('INFO') ? info : summary).push(line);
    }
  }
  summary.push(...info);
  return true;
}

function main(): void {
  if (SUMMARY_TO === undefined) printHeader();
  else console.log(`\n@vpci/rangeset benchmark, child process: --only=${ONLY.join(',')}`);
  gc();
  const started = process.hrtime.bigint();
  const ok = IN_PROCESS ? runHere() : forkEach();
  if (!ok) process.exit(1);
  if (SUMMARY_TO !== undefined) {
    writeFileSync(SUMMARY_TO, summary.map((line) => `${line}\n`).join(''));
    return;
  }
  section('summary');
  for (const line of summary) console.log(`  ${line}`);
  console.log(`  (ran in ${seconds(Number(process.hrtime.bigint() - started) / 1e9)})`);
}

main();
