/**
 * The checks' share of the replay, two builds side by side in one process (not a test): each build's
 * `TraceReplay` (its `dist/index.js`) replays the bench's workload (writes-workload.ts, 64 devices)
 * with scoped checks and with none, every round, in an order that rotates from round to round; per
 * round and build the share is `1 - unchecked / scoped` as the bench computes it (CPU time over the
 * timed lines, set-up lines excluded, lines held in memory so the figures are the replay's alone).
 * `node --expose-gc --import tsx bench/checks-ab.ts <dist A> <dist B> [writes=200000] [rounds=6]`.
 */
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import { cpuMs } from '../../../bench/cpu-time.js';
import { header, line, plan, writes } from './writes-workload.js';

const [a, b, count = '200000', rounds = '6'] = process.argv.slice(2);
if (a === undefined || b === undefined)
  throw new Error('usage: checks-ab.ts <dist A> <dist B> [writes] [rounds]');
type ReplayClass = typeof Replay;
const builds: [string, ReplayClass][] = [];
for (const dist of [a, b]) {
  const module = (await import(pathToFileURL(dist).href)) as { TraceReplay: ReplayClass };
  builds.push([dist, module.TraceReplay]);
}
const planned = plan(64);
const setup = header(planned);
const lines = [...writes(planned, Number(count))].map(line);
const gc = (globalThis as { gc?: () => void }).gc;
function replay(TraceReplay: ReplayClass, checked: boolean): number {
  gc?.();
  const r = new TraceReplay('ab', checked ? {} : { invariantChecks: 'off' });
  for (const text of setup) r.feed(text);
  const t0 = cpuMs();
  for (const text of lines) if (!r.feed(text)) throw new Error(r.error?.message);
  const ms = cpuMs() - t0;
  const report = r.end();
  if (checked && (report.status !== 'ok' || report.violations.length > 0))
    throw new Error(`not clean: ${report.status}, ${report.violations.length} violations`);
  return ms;
}
const runs: [number, boolean][] = [
  [0, true],
  [0, false],
  [1, true],
  [1, false],
];
const shares: number[][] = [[], []];
const scopedMs: number[][] = [[], []];
const uncheckedMs: number[][] = [[], []];
for (const [which, checked] of runs) replay(builds[which]![1], checked); // warm-up
for (let round = 0; round < Number(rounds); round++) {
  const ms: number[][] = [
    [0, 0],
    [0, 0],
  ];
  for (let k = 0; k < runs.length; k++) {
    const [which, checked] = runs[(k + round) % runs.length]!;
    ms[which]![checked ? 0 : 1] = replay(builds[which]![1], checked);
  }
  const line = ms.map(([scoped, unchecked], i) => {
    shares[i]!.push(1 - unchecked! / scoped!);
    scopedMs[i]!.push(scoped!);
    uncheckedMs[i]!.push(unchecked!);
    return `${i === 0 ? 'A' : 'B'} scoped ${scoped!.toFixed(0)} ms, unchecked ${unchecked!.toFixed(0)} ms, share ${((1 - unchecked! / scoped!) * 100).toFixed(1)} %`;
  });
  console.log(`round ${round + 1}: ${line.join('; ')}`);
}
const median = (v: number[]): number => [...v].sort((x, y) => x - y)[v.length >> 1]!;
// On a loaded host a run is only ever slowed down: the fastest of each contender is the least
// disturbed, so the share of the fastest runs is printed beside the median of the rounds' shares.
for (let i = 0; i < 2; i++) {
  const fastest = (v: number[]): number => Math.min(...v);
  console.log(
    `${i === 0 ? 'A' : 'B'} ${builds[i]![0]}: checks' share median ${(median(shares[i]!) * 100).toFixed(1)} % (min ${(Math.min(...shares[i]!) * 100).toFixed(1)}, max ${(Math.max(...shares[i]!) * 100).toFixed(1)}); fastest runs: scoped ${fastest(scopedMs[i]!).toFixed(0)} ms, unchecked ${fastest(uncheckedMs[i]!).toFixed(0)} ms, share ${((1 - fastest(uncheckedMs[i]!) / fastest(scopedMs[i]!)) * 100).toFixed(1)} %`,
  );
}
