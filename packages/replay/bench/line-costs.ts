/**
 * Where the scoped checks' time goes, line by line (not a test): the bench's workload replayed twice
 * in one process, line for line, with scoped checks and with none (`invariantChecks: 'off'`), each
 * line's CPU time taken on both, so the difference is what checking that line cost. Lines are grouped
 * by kind: the write's place in its device's visit (a reprogramming's ten writes or a running
 * driver's four), whose device (the hardware domain's or a guest's), and whether its vCPU first
 * finished pending work. Prints per kind the lines, their mean cost either way and the checks' share
 * of the whole difference, heaviest first.
 * `node --import tsx bench/line-costs.ts [devices=64] [writes=200000] [warm-up writes=50000]`.
 */
import { cpuMicros as now } from '../../../bench/cpu-time.js';
import { prng } from '../../../bench/prng.js';
import { lineKinds } from './line-kinds.js';
import { feedBothTimed, type LineTimes, line, plan, scopedAndUnchecked, writes } from './writes-workload.js';

const [devices = '64', count = '200000', warm = '50000'] = process.argv.slice(2);
const planned = plan(Number(devices));
const replays = scopedAndUnchecked(planned);
const { scoped } = replays;

/** CPU µs the scoped replay spent in each of these replayer steps during the current line. */
const STEPS = ['snapshotTouched', 'checkScoped', 'record'] as const;
const inStep: Record<string, number> = {};
const proto = Object.getPrototypeOf(scoped.replayer) as Record<string, (...args: unknown[]) => unknown>;
for (const step of STEPS) {
  const original = proto[step]!;
  inStep[step] = 0;
  proto[step] = function (this: unknown, ...args: unknown[]) {
    const t0 = now();
    try {
      return original.apply(this, args);
    } finally {
      inStep[step]! += now() - t0;
    }
  };
}

interface Kind {
  steps: Record<string, number>;
  lines: number;
  scoped: number;
  unchecked: number;
  worst: number;
}
const kinds = new Map<string, Kind>();
const goesFirst = prng(0x0dd);
const times: LineTimes = { scoped: 0, unchecked: 0 };
const all = [...writes(planned, Number(warm) + Number(count))];
const lineKind = lineKinds(all);

let total = 0;
for (let i = 0; i < all.length; i++) {
  const w = all[i]!;
  const kind = lineKind[i]!;
  const text = line(w);
  for (const step of STEPS) inStep[step] = 0;
  feedBothTimed(replays, text, goesFirst, now, times);
  const a = times.scoped;
  const b = times.unchecked;
  if (i < Number(warm)) continue;
  const k = kinds.get(kind) ?? {
    lines: 0,
    scoped: 0,
    unchecked: 0,
    worst: 0,
    steps: {} as Record<string, number>,
  };
  kinds.set(kind, k);
  k.lines++;
  k.scoped += a;
  k.unchecked += b;
  k.worst = Math.max(k.worst, a - b);
  for (const step of STEPS) k.steps[step] = (k.steps[step] ?? 0) + inStep[step]!;
  total += a - b;
}
let scopedAll = 0;
let uncheckedAll = 0;
for (const k of kinds.values()) {
  scopedAll += k.scoped;
  uncheckedAll += k.unchecked;
}
console.log(
  `${count} lines (after ${warm}): scoped ${(scopedAll / 1000).toFixed(0)} ms, unchecked ${(uncheckedAll / 1000).toFixed(0)} ms, checks' share ${((1 - uncheckedAll / scopedAll) * 100).toFixed(1)} %`,
);
console.log(
  `kind                          lines   scoped µs  unchecked µs  diff µs  worst µs  share of diff  ${STEPS.join(' ')} (µs)`,
);
for (const [name, k] of [...kinds].sort(
  (x, y) => y[1].scoped - y[1].unchecked - (x[1].scoped - x[1].unchecked),
))
  console.log(
    `${name.padEnd(28)} ${String(k.lines).padStart(7)} ${(k.scoped / k.lines).toFixed(2).padStart(10)} ${(k.unchecked / k.lines).toFixed(2).padStart(12)} ${((k.scoped - k.unchecked) / k.lines).toFixed(2).padStart(8)} ${k.worst.toFixed(0).padStart(9)} ${(((k.scoped - k.unchecked) / total) * 100).toFixed(1).padStart(8)} %  ${STEPS.map((step) => ((k.steps[step] ?? 0) / k.lines).toFixed(1)).join(' ')}`,
  );
