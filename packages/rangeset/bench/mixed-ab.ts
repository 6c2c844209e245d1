/**
 * Workload (a) for two builds of RangeSet side by side (not a test, not part of `pnpm bench`).
 *
 * Time mode: `node --expose-gc --single-threaded-gc --import tsx bench/mixed-ab.ts <dist A> <dist B>
 * [rounds=8]`. Each `dist` is a built `packages/rangeset/dist` (this worktree's, or a copy of another
 * commit's). Every round, build A's RangeSet, build B's and sorted-btree each replay (a)'s stream once
 * on a fresh set filled with (a)'s fill (untimed), in an order that rotates from round to round, each
 * through its own compiled copy of the benchmark's kernel (`kernels.ts`). Prints each round's CPU
 * times and the same-round ratios sorted-btree / A, sorted-btree / B and B / A (above 1: A faster),
 * with their median, min and max; the final sets and the query answers of all three are checked equal.
 * Beside each time, the minor page faults the run took (first touches of memory the process had not
 * used yet): on a virtual machine each can cost tens of microseconds, charged to the process as CPU
 * time, so a run's time depends on whether the allocator handed it memory freed earlier in the
 * process or fresh pages (DESIGN.md, branch `rs13`).
 *
 * Sliced mode, for a steadier B / A on a loaded host: `node --expose-gc --single-threaded-gc --import
 * tsx bench/mixed-ab.ts --slices=<n> <dist A> <dist B> [rounds=6]`. Every round fills a fresh set of
 * each build, cuts the stream into `n` slices and runs each slice on A's set and on B's back to back
 * (which goes first alternates), so the two runs of a slice share the host's load of that moment;
 * sorted-btree does not run. Prints each round's total CPU times and, over all rounds, the median
 * (min–max) of the slices' B / A and of the rounds' total B / A; the two sets are checked equal after
 * every round.
 *
 * Count mode, for instruction counts that the host's load does not move: `valgrind --tool=cachegrind
 * --cache-sim=no node --predictable --single-threaded --import tsx bench/mixed-ab.ts --count=<ops>
 * <dist | sorted-btree>` warms up as the benchmark does, fills a set with (a)'s fill and replays the
 * first `ops` operations of (a)'s stream. Two runs, `--count=1000000` and `--count=0`, differ by the
 * instructions of the stream alone; divided by 1,000,000, instructions per operation.
 */
import { pathToFileURL } from 'node:url';
import { cpuMs } from '../../../bench/cpu-time.js';
import type { RangeSet as RangeSetClass } from '../src/index.js';
import { addAll, applyOps, privateCopy } from './kernels.js';
import { BTreeRangeSet, type RangeSetLike } from './peers.js';
import { type MixedWorkload, mixedWorkload, type OpStream, streamPrefix } from './workloads.js';

/** (a)'s workload and warm-up, as `rangeset.bench.ts` makes them (default seed, full size). */
const SEED = 0x5eed2024;
const work: MixedWorkload = mixedWorkload(SEED, 100_000, 1_000_000);
const warm: MixedWorkload = mixedWorkload(SEED ^ 0xa5a5a5a5, 10_000, 100_000);

interface Contender {
  readonly name: string;
  readonly make: () => RangeSetLike;
  readonly applyOps: typeof applyOps;
  readonly addAll: typeof addAll;
}

/** A contender from a built dist's RangeSet, or sorted-btree. */
async function contender(which: string): Promise<Contender> {
  let make: () => RangeSetLike;
  if (which === 'sorted-btree') make = () => new BTreeRangeSet();
  else {
    const url = pathToFileURL(`${which.replace(/\/$/, '')}/index.js`).href;
    const { RangeSet } = (await import(url)) as { RangeSet: typeof RangeSetClass };
    make = () => new RangeSet();
  }
  return { name: which, make, applyOps: privateCopy(applyOps), addAll: privateCopy(addAll) };
}

/**
 * Fills a fresh set (untimed), then replays `ops` operations of the stream: CPU ms, the minor page
 * faults taken meanwhile, the answers, the set.
 */
function once(
  c: Contender,
  w: MixedWorkload,
  ops: number,
): { ms: number; faults: number; hits: Float64Array; set: RangeSetLike } {
  const set = c.make();
  c.addAll(set, w.fill.starts, w.fill.ends, w.fill.length);
  const s = streamPrefix(w.stream, ops);
  const hits = new Float64Array(2);
  (globalThis as { gc?: () => void }).gc?.();
  const faults0 = process.resourceUsage().minorPageFault;
  const t0 = cpuMs();
  c.applyOps(set, s.ops, s.starts, s.ends, s.length, hits);
  const ms = cpuMs() - t0;
  return { ms, faults: process.resourceUsage().minorPageFault - faults0, hits, set };
}

function spread(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  const median = s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  return `${median.toFixed(3)} (${s[0]!.toFixed(3)}–${s[s.length - 1]!.toFixed(3)})`;
}

/** The `i`-th of `n` equal slices of `stream` (`n` divides its length). */
function slice(stream: OpStream, i: number, n: number): OpStream {
  const per = stream.length / n;
  const from = i * per;
  return {
    ops: stream.ops.subarray(from, from + per),
    starts: stream.starts.subarray(from, from + per),
    ends: stream.ends.subarray(from, from + per),
    length: per,
  };
}

/**
 * One round of sliced mode: a fresh filled set per contender, then every slice of the stream on each
 * set in turn, the first to go rotating. Per contender, the CPU ms of each slice; throws unless the
 * sets end equal.
 */
function slicedRound(cs: readonly Contender[], w: MixedWorkload, slices: number, round: number): number[][] {
  const sets = cs.map((c) => {
    const set = c.make();
    c.addAll(set, w.fill.starts, w.fill.ends, w.fill.length);
    return set;
  });
  (globalThis as { gc?: () => void }).gc?.();
  const ms: number[][] = cs.map(() => []);
  const hits = new Float64Array(2);
  for (let i = 0; i < slices; i++) {
    const s = slice(w.stream, i, slices);
    for (let j = 0; j < cs.length; j++) {
      const who = (j + i + round) % cs.length;
      const t0 = cpuMs();
      cs[who]!.applyOps(sets[who]!, s.ops, s.starts, s.ends, s.length, hits);
      ms[who]![i] = cpuMs() - t0;
    }
  }
  const lists = sets.map((set) => JSON.stringify(set.toArray()));
  if (lists.some((l) => l !== lists[0])) throw new Error(`round ${round + 1}: the sets differ`);
  return ms;
}

const args = process.argv.slice(2);
const countArg = args.find((a) => a.startsWith('--count='));
const slicesArg = args.find((a) => a.startsWith('--slices='));
const rest = args.filter((a) => a !== countArg && a !== slicesArg);
if (slicesArg !== undefined) {
  const slices = Number(slicesArg.slice('--slices='.length));
  const [a, b, rounds = '6'] = rest;
  if (a === undefined || b === undefined || !(slices >= 1 && work.stream.length % slices === 0))
    throw new Error(
      `usage: mixed-ab.ts --slices=<n dividing ${work.stream.length}> <dist A> <dist B> [rounds]`,
    );
  const cs = [await contender(a), await contender(b)];
  for (const c of cs) once(c, warm, warm.stream.length);
  const sliceRatios: number[] = [];
  const totalRatios: number[] = [];
  for (let r = 0; r < Number(rounds); r++) {
    const [msA, msB] = slicedRound(cs, work, slices, r) as [number[], number[]];
    for (let i = 0; i < slices; i++) sliceRatios.push(msB[i]! / msA[i]!);
    const totalA = msA.reduce((x, y) => x + y, 0);
    const totalB = msB.reduce((x, y) => x + y, 0);
    totalRatios.push(totalB / totalA);
    console.log(`round ${r + 1}: A ${totalA.toFixed(0)} ms, B ${totalB.toFixed(0)} ms`);
  }
  console.log(`B / A, slices: ${spread(sliceRatios)}`);
  console.log(`B / A, round totals: ${spread(totalRatios)}`);
} else if (countArg !== undefined) {
  const c = await contender(rest[0] ?? 'sorted-btree');
  once(c, warm, warm.stream.length);
  const run = once(c, work, Number(countArg.slice('--count='.length)));
  // Only the answers: listing the set would allocate in proportion to its size, which the two runs differ in.
  console.log(`${c.name}: hits ${run.hits[0]} ${run.hits[1]}`);
} else {
  const [a, b, rounds = '8'] = rest;
  if (a === undefined || b === undefined)
    throw new Error(
      'usage: mixed-ab.ts <dist A> <dist B> [rounds] | --slices=<n> <dist A> <dist B> [rounds] | --count=<ops> <dist | sorted-btree>',
    );
  const all = [await contender(a), await contender(b), await contender('sorted-btree')];
  for (const c of all) once(c, warm, warm.stream.length);
  const ms: number[][] = all.map(() => []);
  const faults: number[][] = all.map(() => []);
  let reference: string | undefined;
  for (let r = 0; r < Number(rounds); r++) {
    for (let j = 0; j < all.length; j++) {
      const who = (j + r) % all.length;
      const run = once(all[who]!, work, work.stream.length);
      ms[who]!.push(run.ms);
      faults[who]!.push(run.faults);
      const answer = `${JSON.stringify(run.set.toArray())} ${run.hits[0]} ${run.hits[1]}`;
      reference ??= answer;
      if (answer !== reference)
        throw new Error(`${all[who]!.name} differs from the first run's set or answers`);
    }
    console.log(
      `round ${r + 1}: ` +
        ['A', 'B', 'btree']
          .map((name, who) => `${name} ${ms[who]![r]!.toFixed(0)} ms (${faults[who]![r]} faults)`)
          .join(', '),
    );
  }
  const ratio = (x: number[], y: number[]) => x.map((t, r) => t / y[r]!);
  console.log(`sorted-btree / A: ${spread(ratio(ms[2]!, ms[0]!))}`);
  console.log(`sorted-btree / B: ${spread(ratio(ms[2]!, ms[1]!))}`);
  console.log(`B / A: ${spread(ratio(ms[1]!, ms[0]!))}`);
}
