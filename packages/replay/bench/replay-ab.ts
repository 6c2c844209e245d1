/**
 * The replay's own cost against the engine's, two builds side by side in one process (not a test):
 * each build (a directory holding `node_modules/@vpci/<name>/{package.json,dist}` for rangeset,
 * p2m, vpci and replay, and links to replay's `cli-progress` and `picocolors`: a copy of a
 * worktree's builds, so that each build's replay imports its own engine) replays the bench's workload
 * (writes-workload.ts, 64 devices) from its bytes as the CLI feeds them (`feedLine` over blocks of
 * `CHUNK_BYTES`), with scoped checks and with none, and makes the same writes directly on its own
 * `Machine` (the bench's `direct`). Every round runs each of the six once, in an order that rotates
 * from round to round; the timed lines are the writes only (set-up lines excluded), in CPU time.
 * Prints per round and build the three times, then per figure the median with min and max over the
 * rounds of the same-round ratios: replay/direct (`direct / scoped`, the bench's target ratio), the
 * replay layer's own cost per line (`(unchecked - direct) / writes`), and B against A for each
 * contender. Both builds' reports must be clean and equal (the same replay, whatever the build).
 * `node --expose-gc bench/replay-ab.ts <build A> <build B> [writes=200000] [rounds=6]` (with
 * `--import tsx`).
 */
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import type { Machine } from '@vpci/vpci';
import { cpuMs } from '../../../bench/cpu-time.js';
import { header, lineBlocksOf, plan, writes } from './writes-workload.js';

const [a, b, count = '200000', rounds = '6'] = process.argv.slice(2);
if (a === undefined || b === undefined)
  throw new Error('usage: replay-ab.ts <build A> <build B> [writes] [rounds]');
type ReplayClass = typeof Replay;
interface Build {
  root: string;
  TraceReplay: ReplayClass;
  reportJson: (report: ReturnType<Replay['end']>) => string;
}
const builds: Build[] = [];
for (const root of [a, b]) {
  const module = (await import(pathToFileURL(`${root}/node_modules/@vpci/replay/dist/index.js`).href)) as {
    TraceReplay: ReplayClass;
    reportJson: Build['reportJson'];
  };
  builds.push({ root, TraceReplay: module.TraceReplay, reportJson: module.reportJson });
}
const planned = plan(64);
const setup = header(planned);
const workload = [...writes(planned, Number(count))];
/** The writes as the file's bytes, cut into blocks of whole lines as `fileLineBlocks` gives them. */
const blocks = lineBlocksOf(workload, 1 << 18);
const gc = (globalThis as { gc?: () => void }).gc;
const reports: string[] = [];

function replay(build: Build, checked: boolean): number {
  gc?.();
  const r = new build.TraceReplay('ab', checked ? {} : { invariantChecks: 'off' });
  for (const text of setup) r.feed(text);
  const t0 = cpuMs();
  for (const bytes of blocks)
    for (let at = 0; at < bytes.length; ) {
      at = r.feedLine(bytes, at, bytes.length);
      if (at < 0) throw new Error(r.error?.message);
    }
  const ms = cpuMs() - t0;
  const report = r.end();
  if (checked && (report.status !== 'ok' || report.violations.length > 0))
    throw new Error(`not clean: ${report.status}, ${report.violations.length} violations`);
  reports.push(`${checked}:${build.reportJson(report)}`);
  return ms;
}

function direct(build: Build): number {
  gc?.();
  const r = new build.TraceReplay('setup');
  for (const text of setup) r.feed(text);
  const m = r.replayer.machine as Machine;
  const t0 = cpuMs();
  for (const w of workload) {
    const vcpu = m.vcpu(w.device.owner, 0);
    if (vcpu.pending !== undefined) m.finishPending(vcpu);
    m.configWrite(vcpu, w.device.address, w.reg, w.size, w.value);
  }
  return cpuMs() - t0;
}

type Contender = 'direct' | 'unchecked' | 'scoped';
const contenders: Contender[] = ['direct', 'unchecked', 'scoped'];
const run = (build: Build, c: Contender): number =>
  c === 'direct' ? direct(build) : replay(build, c === 'scoped');
const order: [number, Contender][] = [];
for (const c of contenders) for (let i = 0; i < 2; i++) order.push([i, c]);
for (const [i, c] of order) run(builds[i]!, c); // warm-up
const figures = new Map<string, number[]>();
const add = (name: string, value: number): void => {
  const list = figures.get(name) ?? [];
  list.push(value);
  figures.set(name, list);
};
const perLine = (ms: number): number => (ms * 1000) / workload.length;
for (let round = 0; round < Number(rounds); round++) {
  const ms: Record<Contender, number>[] = [
    { direct: 0, unchecked: 0, scoped: 0 },
    { direct: 0, unchecked: 0, scoped: 0 },
  ];
  for (let k = 0; k < order.length; k++) {
    const [i, c] = order[(k + round) % order.length]!;
    ms[i]![c] = run(builds[i]!, c);
  }
  console.log(
    `round ${round + 1}: ${ms.map((m, i) => `${'AB'[i]} direct ${m.direct.toFixed(0)} ms, unchecked ${m.unchecked.toFixed(0)} ms, scoped ${m.scoped.toFixed(0)} ms`).join('; ')}`,
  );
  for (let i = 0; i < 2; i++) {
    const m = ms[i]!;
    const who = 'AB'[i]!;
    add(`${who} replay/direct (scoped)`, m.direct / m.scoped);
    add(`${who} unchecked/direct`, m.direct / m.unchecked);
    add(`${who} scoped k writes/s`, workload.length / m.scoped);
    add(`${who} engine µs/line (direct)`, perLine(m.direct));
    add(`${who} replay layer µs/line (unchecked - direct)`, perLine(m.unchecked - m.direct));
    add(`${who} checks µs/line (scoped - unchecked)`, perLine(m.scoped - m.unchecked));
  }
  for (const c of contenders) add(`B/A time, ${c}`, ms[1]![c] / ms[0]![c]);
}
const sorted = (v: number[]): number[] => [...v].sort((x, y) => x - y);
for (const [name, values] of figures) {
  const s = sorted(values);
  console.log(
    `${name.padEnd(44)} median ${s[s.length >> 1]!.toFixed(3)} (min ${s[0]!.toFixed(3)}, max ${s.at(-1)!.toFixed(3)})`,
  );
}
const distinct = new Set(reports.map((r) => r.replace(/"trace":"[^"]*",?/, '')));
console.log(
  `reports: ${distinct.size === 2 ? 'the same from both builds' : `DIFFER (${distinct.size} distinct)`}`,
);
console.log(`A ${builds[0]!.root}, B ${builds[1]!.root}`);
