/**
 * The checks' cost of two builds in one process, in turns of `block` lines (not a test): each build's
 * `TraceReplay` (its `dist/index.js`) replays the bench's workload (writes-workload.ts, 64 devices)
 * with scoped checks and with none, the four replays taking the same block of lines in an order that
 * rotates from block to block, each turn's CPU time counted to its replay. Unlike checks-ab.ts (whole
 * replays in turn) all four meet the same load of a shared machine within milliseconds, so the
 * builds' checks (scoped − unchecked) compare even while the host's load swings.
 * `node --expose-gc --import tsx bench/checks-ab-blocks.ts <dist A> <dist B> [writes=200000] [warm-up=50000] [block=1000]`.
 */
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import { cpuMicros } from '../../../bench/cpu-time.js';
import { header, line, plan, writes } from './writes-workload.js';

const [a, b, count = '200000', warm = '50000', block = '1000'] = process.argv.slice(2);
const planned = plan(64);
const setup = header(planned);
const texts = [...writes(planned, Number(warm) + Number(count))].map(line);
type ReplayClass = typeof Replay;
const replays: Replay[] = [];
if (a === undefined || b === undefined)
  throw new Error('usage: checks-ab-blocks.ts <dist A> <dist B> [writes] [warm-up] [block]');
for (const dist of [a, b]) {
  const { TraceReplay } = (await import(pathToFileURL(dist).href)) as { TraceReplay: ReplayClass };
  for (const checked of [true, false]) {
    const r = new TraceReplay('ab', checked ? {} : { invariantChecks: 'off' });
    for (const t of setup) r.feed(t);
    replays.push(r);
  }
}
const time = [0, 0, 0, 0];
const feed = (k: number, from: number, to: number): void => {
  const r = replays[k]!;
  const t0 = cpuMicros();
  for (let i = from; i < to; i++) if (!r.feed(texts[i]!)) throw new Error(r.error?.message);
  time[k]! += cpuMicros() - t0;
};
for (let k = 0; k < 4; k++) feed(k, 0, Number(warm));
time.fill(0);
const step = Number(block);
for (let from = Number(warm), turn = 0; from < texts.length; from += step, turn++) {
  const to = Math.min(texts.length, from + step);
  for (let j = 0; j < 4; j++) feed((j + turn) % 4, from, to);
}
const [as, au, bs, bu] = time.map((t) => t / 1000);
console.log(
  `A scoped ${as!.toFixed(0)} ms unchecked ${au!.toFixed(0)} ms share ${((1 - au! / as!) * 100).toFixed(1)} % checks ${(as! - au!).toFixed(0)} ms`,
);
console.log(
  `B scoped ${bs!.toFixed(0)} ms unchecked ${bu!.toFixed(0)} ms share ${((1 - bu! / bs!) * 100).toFixed(1)} % checks ${(bs! - bu!).toFixed(0)} ms`,
);
