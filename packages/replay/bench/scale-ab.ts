/**
 * The scale row's ratio for two builds side by side in one process (not a test): each build's
 * `TraceReplay` (its `dist/index.js`) replays the scale row's two machines (64 devices, and 4,096
 * repeating them: writes-workload.ts with the larger machine's spacing, lines held in memory); the
 * four replays are fed in blocks of 1,000 lines in turn, as the bench's `scalePair` feeds its two, so
 * that all four share the shared host's load; each line read from its bytes where it stands in one
 * block of the machine's lines (`feedLine`, as the bench's scale row and the CLI feed a file, so that
 * the keys' slots of the byte reader are used). Per round and build: the CPU time of the steady window
 * (after two cycles of the larger machine, the next `cycles`) of the larger machine over the
 * smaller's. The builds' order rotates from round to round. Each round's reports are checked clean,
 * and the two builds' reports compared equal (a difference is printed).
 * `node --expose-gc --import tsx bench/scale-ab.ts <dist A> <dist B> [rounds=6] [cycles=4] [padded]`.
 */
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import { cpuMs } from '../../../bench/cpu-time.js';
import { header, line, scaleMachines, writes } from './writes-workload.js';

const [a, b, rounds = '6', cycles = '4', padded] = process.argv.slice(2);
if (a === undefined || b === undefined) throw new Error('usage: scale-ab.ts <dist A> <dist B> [rounds]');
type ReplayClass = typeof Replay;
const builds: ReplayClass[] = [];
for (const dist of [a, b])
  builds.push(((await import(pathToFileURL(dist).href)) as { TraceReplay: ReplayClass }).TraceReplay);
const BLOCK = 1000;
const { small, large, cycle } = scaleMachines();
const machines = [small, large];
const lead = 2 * cycle;
const total = lead + Number(cycles) * cycle;
const setups = machines.map(header);
// With `padded`, the larger machine's lines visit only its first 64 devices (as scale-padded.ts): what
// grows with the machine apart from what grows with the devices the lines touch.
const blocks = machines.map((planned, k) =>
  Buffer.from(
    [...writes(k === 1 && padded === 'padded' ? planned.slice(0, 64) : planned, total)]
      .map((w) => `${line(w)}\n`)
      .join(''),
  ),
);
const gc = (globalThis as { gc?: () => void }).gc;

/**
 * One round: the four replays (each build's two machines) fed in turn, block by block, so that all
 * four share whatever the shared machine's load did then; each one's steady-window CPU ms, and its
 * report as JSON.
 */
function round(order: readonly number[]): { ms: number[]; reports: string[] } {
  gc?.();
  const runs = order.flatMap((which) =>
    setups.map((setup, k) => {
      const replay = new builds[which]!('scale-ab');
      for (const text of setup) if (!replay.feed(text)) throw new Error(`${replay.error?.message}`);
      return { which, k, replay, ms: 0, next: 0 };
    }),
  );
  for (let at = 0; at < total; at += BLOCK)
    for (const run of runs) {
      const c0 = cpuMs();
      const bytes = blocks[run.k]!;
      for (let i = at; i < Math.min(total, at + BLOCK); i++) {
        run.next = run.replay.feedLine(bytes, run.next, bytes.length);
        if (run.next < 0) throw new Error(`${run.replay.error?.message}`);
      }
      if (at >= lead) run.ms += cpuMs() - c0;
    }
  const ms: number[] = [];
  const reports: string[] = [];
  for (const run of runs) {
    const report = run.replay.end();
    if (report.status !== 'ok' || report.violations.length > 0)
      throw new Error(`not clean: ${report.status}`);
    ms[2 * run.which + run.k] = run.ms;
    reports[2 * run.which + run.k] = JSON.stringify(report);
  }
  return { ms, reports };
}

round([0, 1]); // warm-up
const ratios: number[][] = [[], []];
const smallMs: number[][] = [[], []];
for (let r = 0; r < Number(rounds); r++) {
  const { ms, reports } = round(r % 2 === 0 ? [0, 1] : [1, 0]);
  if (reports[0] !== reports[2] || reports[1] !== reports[3])
    console.log(`round ${r + 1}: the builds' reports differ`);
  const out: string[] = [];
  for (let i = 0; i < 2; i++) {
    const [small, large] = [ms[2 * i]!, ms[2 * i + 1]!];
    ratios[i]!.push(large / small);
    smallMs[i]!.push(small);
    out.push(
      `${i === 0 ? 'A' : 'B'} 64: ${small.toFixed(0)} ms, 4096: ${large.toFixed(0)} ms (${(large / small).toFixed(2)}x)`,
    );
  }
  console.log(`round ${r + 1}: ${out.join('; ')}`);
}
const median = (v: number[]): number => [...v].sort((x, y) => x - y)[v.length >> 1]!;
for (let i = 0; i < 2; i++)
  console.log(
    `${i === 0 ? 'A' : 'B'} ${[a, b][i]}: 4096/64 median ${median(ratios[i]!).toFixed(2)}x (min ${Math.min(...ratios[i]!).toFixed(2)}, max ${Math.max(...ratios[i]!).toFixed(2)}); 64 devices median ${median(smallMs[i]!).toFixed(0)} ms`,
  );
// The rounds' ratios move with the host's load (a loaded host evicts the small machine's state too),
// and both builds' in a round share it: B's ratio over A's in the same round is the steadier figure.
const paired = ratios[1]!.map((ratio, r) => ratio / ratios[0]![r]!);
console.log(
  `B's ratio / A's, same round: median ${median(paired).toFixed(3)} (min ${Math.min(...paired).toFixed(3)}, max ${Math.max(...paired).toFixed(3)})`,
);
