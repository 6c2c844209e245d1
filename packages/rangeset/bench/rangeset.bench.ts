/**
 * `pnpm bench` for @vpci/rangeset: RangeSet against the fastest npm ordered structures used as range
 * sets (bench/peers.ts) and against Xen's own linked-list algorithm (bench/xen-linked-list.ts), on
 * three seeded workloads (bench/workloads.ts):
 *
 *   (a) mixed operations on a set pre-filled with 100,000 ranges;
 *   (b) building a set of 1,000,000 ranges inserted in random order, and its memory;
 *   (c) fragmentation: holes punched into [0, 2^32), then consumed to empty 64 values per call.
 *
 * Every structure replays the identical pre-generated stream and must end with the identical set (and
 * the same query answers); any difference aborts with exit code 1. Missing a performance target only
 * prints FAIL. Options: `--seed=<n>` (default fixed), `--quick` (small sizes, for a smoke test),
 * `--only=a,b,c` (a subset of the workloads).
 *
 * Run: node --expose-gc --import tsx bench/rangeset.bench.ts
 */
import os from 'node:os';
import { type ConsumeStep, type Errno, RangeSet } from '../src/index.js';
import {
  BTreeRangeSet,
  type ConsumeCallback,
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
  streamPrefix,
} from './workloads.js';
import { XenLinkedListRangeSet } from './xen-linked-list.js';

// ---- configuration -----------------------------------------------------------------------------

const argv = process.argv.slice(2);
const seedArg = argv.find((a) => a.startsWith('--seed='));
const SEED = seedArg === undefined ? 0x5eed2024 : Number(seedArg.slice('--seed='.length)) >>> 0;
const QUICK = argv.includes('--quick');
const onlyArg = argv.find((a) => a.startsWith('--only='));
/** Which workloads to run: `--only=a,c` runs (a) and (c). */
const ONLY = onlyArg === undefined ? ['a', 'b', 'c', 'd'] : onlyArg.slice('--only='.length).split(',');

const CONFIG = QUICK
  ? { fill: 10_000, ops: 100_000, listOps: 2_000, build: 100_000, span: 2 ** 24, holes: 1_000 }
  : { fill: 100_000, ops: 1_000_000, listOps: 20_000, build: 1_000_000, span: 2 ** 32, holes: 100_000 };
/** Values handed out per consume call before the callback asks for a restart. */
const BUDGET = 64;
/** Timed runs per structure and workload; the fastest counts. */
const MAX_RUNS = 5;
/** A structure whose first run takes longer than this (seconds) runs only once. */
const SINGLE_RUN_ABOVE = 5;

const TARGETS = {
  mixedVsPeer: 4,
  mixedVsList: 300,
  buildVsPeer: 2,
  bytesPerRange: 24,
  fragmentVsPeer: 2,
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
 * in (a).
 */
const keepers: RangeSetLike[] = [...FAST.map((c) => c.make()), new XenLinkedListRangeSet()].map((set) => {
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

/** Replays `n` operations of a mixed stream; counts true answers in `hits` ([contains, overlaps]). */
function applyOps(
  set: RangeSetLike,
  ops: Uint8Array,
  starts: Float64Array,
  ends: Float64Array,
  n: number,
  hits: Float64Array,
): void {
  let contains = 0;
  let overlaps = 0;
  for (let i = 0; i < n; i++) {
    const s = starts[i]!;
    const e = ends[i]!;
    switch (ops[i]) {
      case 0:
        set.addRange(s, e);
        break;
      case 1:
        set.removeRange(s, e);
        break;
      case 2:
        if (set.containsRange(s, e)) contains++;
        break;
      default:
        if (set.overlapsRange(s, e)) overlaps++;
    }
  }
  hits[0] = contains;
  hits[1] = overlaps;
}

function addAll(set: RangeSetLike, starts: Float64Array, ends: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) set.addRange(starts[i]!, ends[i]!);
}

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
}

interface Kernels {
  readonly applyOps: typeof applyOps;
  readonly addAll: typeof addAll;
  readonly removeAll: typeof removeAll;
  readonly drain: typeof drain;
}

/**
 * A private copy of `fn`, compiled from its source. V8 keeps type feedback per function literal, so
 * one shared loop would see every structure's class at its call sites, go megamorphic, stop inlining
 * and slow down whoever it runs for; each copy compiled by `new Function` has its own feedback, so
 * each structure runs a monomorphic loop. The kernels use only their arguments and globals. tsx
 * compiles with `keepNames`, which may wrap inner functions in `__name(fn, "name")`: the copy gets a
 * no-op `__name`.
 */
function privateCopy<F extends (...args: never[]) => unknown>(fn: F): F {
  const compile = new Function('__name', `return (${fn.toString()});`) as (
    name: (f: unknown) => unknown,
  ) => F;
  return compile((f) => f);
}

function kernels(): Kernels {
  return {
    applyOps: privateCopy(applyOps),
    addAll: privateCopy(addAll),
    removeAll: privateCopy(removeAll),
    drain: privateCopy(drain),
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

/** Seconds taken by `fn`. */
function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
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
  /** Seconds of every run, in order. */
  all: number[];
}

/**
 * Times every structure on one workload: `warmUp(i)` for each structure first (untimed), then up to
 * MAX_RUNS rounds in which each structure runs `once(i, round)` in turn, so a burst of load from
 * elsewhere on the machine hits every structure alike; the fastest run counts. A structure whose first
 * run took over SINGLE_RUN_ABOVE seconds sits out the later rounds, to keep the benchmark short.
 */
function rounds<T extends { seconds: number }>(
  names: readonly string[],
  warmUp: (who: number) => void,
  once: (who: number, round: number) => T,
): Measured<T>[] {
  for (let who = 0; who < names.length; who++) warmUp(who);
  const out: Measured<T>[] = [];
  for (let round = 0; round < MAX_RUNS; round++) {
    for (let who = 0; who < names.length; who++) {
      const m = out[who];
      if (m !== undefined && m.first.seconds > SINGLE_RUN_ABOVE) continue;
      const run = once(who, round);
      if (m === undefined) out.push({ best: run, first: run, all: [run.seconds] });
      else {
        m.all.push(run.seconds);
        if (run.seconds < m.best.seconds) m.best = run;
      }
    }
  }
  for (let who = 0; who < names.length; who++) {
    console.log(`  ${names[who]}: ${out[who]!.all.map(seconds).join(', ')}`);
  }
  return out;
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

/** Cells shared by the result tables: operations, runs, best time, rate, and RangeSet's speed-up. */
function speedCells(n: number, runs: number, best: number, rangeSetBest: number): string[] {
  return [count(n), String(runs), seconds(best), rate(n / best), ratio(best / rangeSetBest)];
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
  summary.push(`${pass ? 'PASS' : 'FAIL'}  ${label}: measured ${measured}`);
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

  const ks = FAST.map(() => kernels());
  const measured = rounds(
    FAST.map((c) => c.name),
    (who) => mixedOnce(ks[who]!, FAST[who]!.make, warm.fill, warm.stream, false),
    (who, round) => mixedOnce(ks[who]!, FAST[who]!.make, work.fill, work.stream, round === 0),
  );
  const results = measured.map((m, who) => ({
    name: FAST[who]!.name,
    run: { ...m.best, flat: m.first.flat },
    runs: m.all.length,
  }));
  const ref = results[0]!.run;
  for (const { name, run } of results.slice(1)) {
    assertSameRanges('(a) final set', name, run.flat!, ref.flat!);
    assertEqual('(a) contains hits', name, run.hits[0]!, ref.hits[0]!);
    assertEqual('(a) overlaps hits', name, run.hits[1]!, ref.hits[1]!);
  }

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

  const rsRate = n / ref.seconds;
  const rows: Row[] = results.map(({ name, run, runs }) => ({
    name,
    cells: speedCells(n, runs, run.seconds, ref.seconds),
  }));
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
  console.log(
    `  final set: ${count(ref.flat!.length / 2)} ranges, identical in every structure; ` +
      `contains true ${count(ref.hits[0]!)}, overlaps true ${count(ref.hits[1]!)} (the same in every structure)`,
  );
  console.log(
    `  ${XEN_LIST}: the first ${count(p.length)} ops only (each op walks the list); its final set and answers ` +
      `equal a fresh RangeSet's on the same prefix. Its speed-up is against RangeSet's full-stream ops/s; ` +
      `against RangeSet on the same prefix it is ${ratio(rsPrefixRate / listRate)}`,
  );

  const best = bestPeer(results.slice(1).map(({ name, run }) => ({ name, rate: n / run.seconds })));
  const vsPeer = rsRate / best.rate;
  target(
    `(a) mixed: RangeSet >= ${TARGETS.mixedVsPeer}x fastest npm peer`,
    vsPeer >= TARGETS.mixedVsPeer,
    `${ratio(vsPeer)} vs ${best.name} (${rate(rsRate)} vs ${rate(best.rate)})`,
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
  const ks = structures.map(() => kernels());
  const measured = rounds(
    structures.map((c) => c.name),
    (who) => mixedOnce(ks[who]!, structures[who]!.make, warm.fill, warm.stream, false),
    (who, round) => mixedOnce(ks[who]!, structures[who]!.make, work.fill, work.stream, round === 0),
  );
  const ref = measured[0]!;
  measured.slice(1).forEach((m, i) => {
    assertSameRanges('(d) final set', structures[i + 1]!.name, m.first.flat!, ref.first.flat!);
  });
  const n = work.stream.length;
  printTable(
    ['structure', 'ops', 'runs', 'best time', 'ops/s', 'RangeSet speed-up'],
    measured.map((m, who) => ({
      name: structures[who]!.name,
      cells: speedCells(n, m.all.length, m.best.seconds, ref.best.seconds),
    })),
  );
  console.log(`  final set: ${count(ref.first.flat!.length / 2)} ranges, identical in every structure`);
}

function bestPeer(peers: { name: string; rate: number }[]): { name: string; rate: number } {
  return peers.reduce((a, b) => (b.rate > a.rate ? b : a));
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
  const rsRate = n / rs.seconds;
  printTable(
    ['structure', 'inserts', 'runs', 'best time', 'inserts/s', 'RangeSet speed-up', 'bytes/range'],
    results.map(({ name, run, runs }) => ({
      name,
      cells: [...speedCells(n, runs, run.seconds, rs.seconds), (run.bytes / n).toFixed(1)],
    })),
  );
  console.log(`  every structure holds exactly the ${count(n)} generated ranges`);

  const best = bestPeer(results.slice(1).map(({ name, run }) => ({ name, rate: n / run.seconds })));
  const vsPeer = rsRate / best.rate;
  target(
    `(b) build: RangeSet >= ${TARGETS.buildVsPeer}x fastest npm peer`,
    vsPeer >= TARGETS.buildVsPeer,
    `${ratio(vsPeer)} vs ${best.name} (${rate(rsRate)} vs ${rate(best.rate)})`,
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

  let reference: Float64Array | undefined;
  let values = 0;
  const ks = FAST.map(() => kernels());
  const measured = rounds(
    FAST.map((c) => c.name),
    (who) => {
      const w = FAST[who]!.make();
      w.addRange(0, warm.span - 1);
      ks[who]!.removeAll(w, warm.holes.starts, warm.holes.ends, warm.holes.length);
      ks[who]!.drain(w, new BudgetConsumer(BUDGET));
    },
    (who, round): FragmentRun => {
      const c = FAST[who]!;
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
      const consumer = new BudgetConsumer(BUDGET);
      let calls = 0;
      const consume = time(() => {
        calls = k.drain(set, consumer);
      });
      assertEqual('(c) values consumed', c.name, consumer.total, values);
      assertEqual('(c) ranges left after consuming', c.name, set.toArray().length, 0);
      return { seconds: punch + consume, punch, consume, calls };
    },
  );
  const results = measured.map((m, who) => ({ name: FAST[who]!.name, run: m.best, runs: m.all.length }));

  const rs = results[0]!.run;
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
    results.map(({ name, run, runs }) => ({
      name,
      cells: [
        String(runs),
        seconds(run.punch),
        rate(holes / run.punch),
        seconds(run.consume),
        rate(run.calls / run.consume),
        seconds(run.seconds),
        ratio(run.punch / rs.punch),
        ratio(run.consume / rs.consume),
        ratio(run.seconds / rs.seconds),
      ],
    })),
  );
  console.log(
    `  after punching: ${count(reference!.length / 2)} ranges, ${count(values)} values, identical in every ` +
      `structure; ${count(rs.calls)} consume calls each; every structure consumed every value and ended empty`,
  );
  console.log('  times above are punch + consume per run; the best run is the one with the best total');
  console.log('  speed-up = peer time / RangeSet time');

  const best = results.slice(1).reduce((a, b) => (b.run.seconds < a.run.seconds ? b : a));
  const vsPeer = best.run.seconds / rs.seconds;
  target(
    `(c) fragmentation: RangeSet >= ${TARGETS.fragmentVsPeer}x fastest npm peer (total)`,
    vsPeer >= TARGETS.fragmentVsPeer,
    `${ratio(vsPeer)} vs ${best.name} (${seconds(rs.seconds)} vs ${seconds(best.run.seconds)})`,
  );
}

// ---- main --------------------------------------------------------------------------------------

function main(): void {
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
    `  timing: process.hrtime.bigint(); each structure warms up untimed, then up to ${MAX_RUNS} rounds run ` +
      `every structure in turn on a fresh set after a global.gc(); the best run counts (a structure whose ` +
      `first run takes over ${SINGLE_RUN_ABOVE} s runs once); a small set of each structure stays alive ` +
      `throughout, so no structure's optimized code is dropped between runs`,
  );
  gc();
  const started = process.hrtime.bigint();
  try {
    if (ONLY.includes('a')) benchMixed();
    if (ONLY.includes('b')) benchBuild();
    if (ONLY.includes('c')) benchFragment();
    if (ONLY.includes('d')) benchClustered();
  } catch (error) {
    if (error instanceof MismatchError) {
      console.error(`\nMISMATCH: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
  section('summary');
  for (const line of summary) console.log(`  ${line}`);
  if (keepers.some((set) => set.toArray().length === 0)) throw new Error('a keeper set was emptied');
  console.log(`  (ran in ${seconds(Number(process.hrtime.bigint() - started) / 1e9)})`);
}

main();
