/**
 * Where the scale comparison's extra cost per line goes (not a test): the two replays of
 * replay.bench.ts's scale row (64 devices and 4,096, the same kinds of line line by line) fed side by
 * side in one process, blocks of 1,000 lines of one then of the other, as `scalePair` feeds them, with
 * the V8 CPU profiler on (a sample every 100 µs) over the steady window (after the first two cycles of
 * the larger machine, the next `cycles` cycles). Each sample goes to the replay whose block it fell in
 * (by its time), and its CPU time to the function on top of its stack; prints each replay's CPU time and
 * the functions whose self time differs most between the two, scaled to each replay's CPU time.
 * A profile in separate processes was no use on the shared machine: the same run differed 1.6x from
 * one process to the next.
 * With `padded`, the larger replay's lines visit only the first 64 of its devices (as
 * `scale-padded.ts`), so that what grows with the machine shows apart from what grows with the devices
 * the lines touch.
 * `node --import tsx bench/profile-scale.ts [checks=scoped|off] [cycles=4] [top=40] [padded]`.
 */
import { Session } from 'node:inspector/promises';
import { TraceReplay } from '@vpci/replay';
import { cpuMs } from '../../../bench/cpu-time.js';
import { header, line, scaleMachines, writes } from './writes-workload.js';

const [checks = 'scoped', cycles = '4', top = '40', padded] = process.argv.slice(2);
const BLOCK = 1000;
const { small, large, cycle } = scaleMachines();
const machines = [small, large];
const lead = 2 * cycle;
const total = lead + Number(cycles) * cycle;
const runs = machines.map((planned) => {
  const replay = new TraceReplay('profile', { invariantChecks: checks === 'off' ? 'off' : 'scoped' });
  for (const text of header(planned)) replay.feed(text);
  const visited = padded === 'padded' ? planned.slice(0, 64) : planned;
  return { replay, texts: [...writes(visited, total)].map(line), ms: 0 };
});
const feed = (run: (typeof runs)[number], from: number, to: number): void => {
  for (let i = from; i < to; i++)
    if (!run.replay.feed(run.texts[i]!)) throw new Error(`${run.replay.error?.message}`);
};
for (let at = 0; at < lead; at += BLOCK) for (const run of runs) feed(run, at, Math.min(lead, at + BLOCK));

const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 100 });
await session.post('Profiler.start');
/** Per block fed under the profiler: which replay, and its wall-clock span in µs. */
const blocks: { run: number; from: number; to: number }[] = [];
const now = (): number => Number(process.hrtime.bigint()) / 1000;
for (let at = lead; at < total; at += BLOCK) {
  for (let k = 0; k < runs.length; k++) {
    const from = now();
    const c0 = cpuMs();
    feed(runs[k]!, at, Math.min(total, at + BLOCK));
    runs[k]!.ms += cpuMs() - c0;
    blocks.push({ run: k, from, to: now() });
  }
}
const { profile } = await session.post('Profiler.stop');

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = runs.map(() => new Map<string, number>());
const counted = runs.map(() => 0);
let t = profile.startTime;
let b = 0;
const samples = profile.samples ?? [];
for (let s = 0; s < samples.length; s++) {
  t += profile.timeDeltas![s]!;
  while (b < blocks.length && blocks[b]!.to < t) b++;
  if (b >= blocks.length || t < blocks[b]!.from) continue;
  const frame = byId.get(samples[s]!)!.callFrame;
  const name = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-3).join('/')}:${frame.lineNumber + 1}`;
  const k = blocks[b]!.run;
  self[k]!.set(name, (self[k]!.get(name) ?? 0) + 1);
  counted[k]!++;
}
const ms = (k: number, name: string): number => ((self[k]!.get(name) ?? 0) / counted[k]!) * runs[k]!.ms;
console.log(
  `${Number(cycles) * cycle} lines after ${lead}, checks ${checks}${padded === 'padded' ? ', 4096 visiting 64' : ''}: 64 devices ${runs[0]!.ms.toFixed(0)} ms CPU, 4096 ${runs[1]!.ms.toFixed(0)} ms (${(runs[1]!.ms / runs[0]!.ms).toFixed(2)}x); samples ${counted.join(', ')}`,
);
const names = [...new Set([...self[0]!.keys(), ...self[1]!.keys()])];
const rows = names.map((name) => ({ name, small: ms(0, name), large: ms(1, name) }));
rows.sort((x, y) => y.large - y.small - (x.large - x.small));
console.log('    64 ms  4096 ms     diff  function (self time)');
for (const { name, small, large } of rows.slice(0, Number(top)))
  console.log(
    `${small.toFixed(1).padStart(8)} ${large.toFixed(1).padStart(8)} ${(large - small).toFixed(1).padStart(8)}  ${name}`,
  );
