/**
 * The checks' share of the scoped replay, same run (not a test): the bench's workload replayed with
 * scoped checks and with none (`invariantChecks: 'off'`) in one process, in turns of `block` lines,
 * each turn's CPU time counted to its replay, so both meet the same load of a shared machine within
 * moments. Unlike line-costs.ts it reads the clock once per turn, not twice per line, so the clock's
 * own cost does not dilute the share. Prints the share `1 - unchecked / scoped` and both rates.
 * `node --import tsx bench/share-blocks.ts [devices=64] [writes=300000] [warm-up writes=50000] [block=1000]`.
 */
import type { TraceReplay } from '@vpci/replay';
import { cpuMicros } from '../../../bench/cpu-time.js';
import { line, plan, scopedAndUnchecked, writes } from './writes-workload.js';

const [devices = '64', count = '300000', warm = '50000', block = '1000'] = process.argv.slice(2);
const planned = plan(Number(devices));
const { scoped, unchecked } = scopedAndUnchecked(planned);
const texts = [...writes(planned, Number(warm) + Number(count))].map(line);
const feed = (replay: TraceReplay, from: number, to: number): number => {
  const t0 = cpuMicros();
  for (let i = from; i < to; i++) if (!replay.feed(texts[i]!)) throw new Error(replay.error?.message);
  return cpuMicros() - t0;
};
feed(scoped, 0, Number(warm));
feed(unchecked, 0, Number(warm));
let s = 0;
let u = 0;
const step = Number(block);
for (let from = Number(warm), turn = 0; from < texts.length; from += step, turn++) {
  const to = Math.min(texts.length, from + step);
  // Which replay goes first alternates, so neither always follows the other's garbage.
  if (turn % 2 === 0) {
    s += feed(scoped, from, to);
    u += feed(unchecked, from, to);
  } else {
    u += feed(unchecked, from, to);
    s += feed(scoped, from, to);
  }
}
const n = Number(count);
console.log(
  `${n} lines after ${warm}: scoped ${(s / 1000).toFixed(0)} ms (${(n / (s / 1000)).toFixed(0)} k writes/s), unchecked ${(u / 1000).toFixed(0)} ms (${(n / (u / 1000)).toFixed(0)} k writes/s), checks' share ${((1 - u / s) * 100).toFixed(1)} %`,
);
