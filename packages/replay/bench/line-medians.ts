/**
 * The checks' typical cost per kind of line (not a test): as line-costs.ts, the bench's workload
 * replayed twice in one process line for line, with scoped checks and with none, but each line timed
 * by the high-resolution clock without wrapping any step, and per kind the median of the lines'
 * differences given beside their mean. On a shared host a line now and then waits for the CPU or
 * meets a collection; the median leaves those out (what a line of that kind costs when it runs),
 * the mean keeps them (collections the checks' allocations bring are their cost too).
 * With `dist`, another build's replay package (its `dist/index.js`) replays instead of this one.
 * `node --import tsx bench/line-medians.ts [devices=64] [writes=200000] [warm-up writes=50000] [dist]`.
 */

import { pathToFileURL } from 'node:url';
import type { TraceReplay } from '@vpci/replay';
import { prng } from '../../../bench/prng.js';
import { lineKinds } from './line-kinds.js';
import {
  feedBothTimed,
  header,
  type LineTimes,
  line,
  plan,
  scopedAndUnchecked,
  writes,
} from './writes-workload.js';

const [devices = '64', count = '200000', warm = '50000', dist] = process.argv.slice(2);
const planned = plan(Number(devices));
const replays = dist === undefined ? scopedAndUnchecked(planned) : await fromBuild(dist, header(planned));

/** `scopedAndUnchecked` of the replay package built at `dist`. */
async function fromBuild(
  dist: string,
  setup: readonly string[],
): Promise<{ scoped: TraceReplay; unchecked: TraceReplay }> {
  const build = (await import(pathToFileURL(dist).href)) as { TraceReplay: typeof TraceReplay };
  const scoped = new build.TraceReplay('scoped');
  const unchecked = new build.TraceReplay('unchecked', { invariantChecks: 'off' });
  for (const text of setup) {
    scoped.feed(text);
    unchecked.feed(text);
  }
  return { scoped, unchecked };
}
const goesFirst = prng(0x0dd);
const times: LineTimes = { scoped: 0, unchecked: 0 };
const all = [...writes(planned, Number(warm) + Number(count))];
const lineKind = lineKinds(all);
const diffs = new Map<string, { scoped: number[]; unchecked: number[] }>();
const now = (): number => Number(process.hrtime.bigint());
for (let i = 0; i < all.length; i++) {
  const text = line(all[i]!);
  feedBothTimed(replays, text, goesFirst, now, times);
  const a = times.scoped;
  const b = times.unchecked;
  if (i < Number(warm)) continue;
  const kind = lineKind[i]!;
  const d = diffs.get(kind) ?? { scoped: [], unchecked: [] };
  d.scoped.push(a);
  d.unchecked.push(b);
  diffs.set(kind, d);
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s[s.length >> 1]!;
};
const mean = (xs: number[]): number => xs.reduce((x, y) => x + y, 0) / xs.length;
const rows = [...diffs].map(([kind, d]) => {
  const medianDiff = median(d.scoped) - median(d.unchecked);
  return { kind, lines: d.scoped.length, medianDiff, meanDiff: mean(d.scoped) - mean(d.unchecked), d };
});
rows.sort((x, y) => y.medianDiff * y.lines - x.medianDiff * x.lines);
const total = rows.reduce((s, r) => s + r.medianDiff * r.lines, 0);
console.log(
  'kind                          lines  median scoped  median unchecked  median diff µs  mean diff µs  share of median diffs',
);
for (const r of rows)
  console.log(
    `${r.kind.padEnd(28)} ${String(r.lines).padStart(6)}  ${(median(r.d.scoped) / 1000).toFixed(2).padStart(13)}  ${(median(r.d.unchecked) / 1000).toFixed(2).padStart(16)}  ${(r.medianDiff / 1000).toFixed(2).padStart(14)}  ${(r.meanDiff / 1000).toFixed(2).padStart(12)}  ${((100 * r.medianDiff * r.lines) / total).toFixed(1).padStart(6)} %`,
  );
