/**
 * Top self time per kind of line (not a test): the bench's workload replayed under the V8 CPU profiler
 * (a sample asked for every 50 µs; a loaded machine gives fewer, so each sample counts for the time
 * it stood for), each sample given to the line it fell in by its time, so a kind of line
 * (line-costs.ts names them) gets a profile of its own, restricted to the functions below one step
 * (default `checkScoped`; `feedLine` for the whole of each line's replay). The lines are fed from
 * their bytes as the CLI feeds them (`feedLine` over one block), with scoped checks or, with
 * `checks=off`, none.
 * `node --import tsx bench/profile-kinds.ts [devices=64] [writes=200000] [step=checkScoped] [top=12] [checks=scoped]`.
 */
import { Session } from 'node:inspector/promises';
import { TraceReplay } from '@vpci/replay';
import { lineKinds } from './line-kinds.js';
import { header, line, plan, writes } from './writes-workload.js';

const [devices = '64', count = '200000', step = 'checkScoped', top = '12', checks = 'scoped'] =
  process.argv.slice(2);
const planned = plan(Number(devices));
const replay = new TraceReplay('profile', checks === 'off' ? { invariantChecks: 'off' } : {});
for (const text of header(planned)) replay.feed(text);
const all = [...writes(planned, Number(count))];
const kinds = lineKinds(all);
const texts = all.map(line);
const bytes = new TextEncoder().encode(`${texts.join('\n')}\n`);
const starts = new Float64Array(all.length + 1);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 50 });
await session.post('Profiler.start');
for (let i = 0, at = 0; i < texts.length; i++) {
  starts[i] = Number(process.hrtime.bigint()) / 1000;
  at = replay.feedLine(bytes, at, bytes.length);
  if (at < 0) throw new Error(replay.error?.message);
}
starts[texts.length] = Number(process.hrtime.bigint()) / 1000;
const { profile } = await session.post('Profiler.stop');

const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const name = (id: number): string => {
  const frame = byId.get(id)!.callFrame;
  return `${frame.functionName || '(anonymous)'}:${frame.lineNumber}`;
};
/** Per kind: its lines, and the µs of samples under the step, in all and per function. */
const perKind = new Map<string, { lines: number; samples: number; self: Map<string, number> }>();
for (const kind of kinds) {
  const k = perKind.get(kind) ?? { lines: 0, samples: 0, self: new Map() };
  k.lines++;
  perKind.set(kind, k);
}
let t = profile.startTime;
let at = 0;
let inStep = 0;
const samples = profile.samples ?? [];
for (let s = 0; s < samples.length; s++) {
  const stood = profile.timeDeltas![s]!;
  t += stood;
  while (at < texts.length && starts[at + 1]! <= t) at++;
  if (at >= texts.length || t < starts[0]!) continue;
  const id = samples[s]!;
  let under = false;
  for (let x: number | undefined = id; x !== undefined; x = parent.get(x))
    if (byId.get(x)!.callFrame.functionName === step) under = true;
  if (!under) continue;
  inStep += stood;
  const k = perKind.get(kinds[at]!)!;
  k.samples += stood;
  k.self.set(name(id), (k.self.get(name(id)) ?? 0) + stood);
}
console.log(`${count} lines, ${(inStep / 1000).toFixed(0)} ms of samples under ${step}`);
for (const [kind, k] of [...perKind].sort((a, b) => b[1].samples - a[1].samples)) {
  if (k.samples === 0) continue;
  console.log(
    `${kind}: ${k.lines} lines, ${(k.samples / k.lines).toFixed(2)} µs per line (${((k.samples / inStep) * 100).toFixed(1)} %)`,
  );
  const sorted = [...k.self].sort((a, b) => b[1] - a[1]).slice(0, Number(top));
  console.log(`   ${sorted.map(([f, n]) => `${f} ${(n / k.lines).toFixed(2)}`).join(', ')}`);
}
