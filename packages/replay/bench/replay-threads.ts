/**
 * Where a replay bench pass's CPU time goes, by thread (not a test; Linux only): the bench's direct,
 * unchecked and scoped contenders (replay-contenders.ts: 64 devices, each pass a fresh replay made
 * after a GC, the writes from the file's bytes or, for direct, made on the set-up's `Machine`) in one
 * process, in an order that alternates from round to round, after two untimed rounds. Per pass:
 * the process's CPU time (`process.cpuUsage`, the bench's clock: every thread's), the main thread's
 * (`/proc/<pid>/task/<pid>/schedstat`) and the difference, V8's other threads (concurrent
 * compilation, GC helpers). Prints per contender the medians with min and max over the rounds, and
 * per round the ratios unchecked / direct and direct / scoped (the bench's replay / direct).
 * `--keep` keeps every pass's replay to the end of the process: the control in which no pass's
 * objects die before the next pass's are made (DESIGN.md, "Benchmark figures", branch `gap2`).
 * `node --expose-gc --import tsx bench/replay-threads.ts <dist/index.js> [writes=200000] [rounds=4] [--keep]`
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import type { Machine } from '@vpci/vpci';
import { cpuMs } from '../../../bench/cpu-time.js';
import { CHUNK_BYTES } from '../src/file-lines.js';
import { header, lineBlocksOf, plan, writes } from './writes-workload.js';

const args = process.argv.slice(2);
const keep = args.includes('--keep');
const [dist, count = '200000', rounds = '4'] = args.filter((a) => a !== '--keep');
if (dist === undefined)
  throw new Error('usage: replay-threads.ts <dist/index.js> [writes] [rounds] [--keep]');
const { TraceReplay } = (await import(pathToFileURL(dist).href)) as { TraceReplay: typeof Replay };
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc: each pass starts after a GC, as the bench');

const planned = plan(64);
const setup = header(planned);
const workload = [...writes(planned, Number(count))];
/** The writes as the file's bytes, in blocks of whole lines as `fileLineBlocks` gives them. */
const blocks = lineBlocksOf(workload, CHUNK_BYTES);

/** The main thread's CPU time in ms (the kernel's scheduler statistics, nanoseconds). */
function mainThreadMs(): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8');
  return Number(stat.split(' ')[0]) / 1e6;
}

interface Pass {
  process: number;
  main: number;
}
const kept: Replay[] = [];

/** A fresh replay after a GC (as the bench's `replayFile` and `direct`), its set-up lines fed. */
function fresh(options: ConstructorParameters<typeof Replay>[1]): Replay {
  gc?.();
  const replay = new TraceReplay('threads', options);
  if (keep) kept.push(replay);
  for (const text of setup) replay.feed(text);
  return replay;
}

function timed(work: () => void): Pass {
  const p0 = cpuMs();
  const m0 = mainThreadMs();
  work();
  return { main: mainThreadMs() - m0, process: cpuMs() - p0 };
}

function replayed(checked: boolean): Pass {
  const replay = fresh(checked ? {} : { invariantChecks: 'off' });
  return timed(() => {
    for (const bytes of blocks)
      for (let at = 0; at < bytes.length; ) {
        at = replay.feedLine(bytes, at, bytes.length);
        if (at < 0) throw new Error(replay.error?.message);
      }
  });
}

function direct(): Pass {
  const m = fresh(undefined).replayer.machine as Machine;
  return timed(() => {
    for (const w of workload) {
      const vcpu = m.vcpu(w.device.owner, 0);
      if (vcpu.pending !== undefined) m.finishPending(vcpu);
      m.configWrite(vcpu, w.device.address, w.reg, w.size, w.value);
    }
  });
}

const contenders = { direct, unchecked: () => replayed(false), scoped: () => replayed(true) };
type Name = keyof typeof contenders;
const names = Object.keys(contenders) as Name[];
for (let round = 0; round < 2; round++) for (const name of names) contenders[name]();
const passes = new Map<Name, Pass[]>(names.map((name) => [name, []]));
for (let round = 0; round < Number(rounds); round++)
  for (const name of round % 2 === 0 ? names : [...names].reverse())
    passes.get(name)!.push(contenders[name]());

const spread = (values: number[], digits = 0): string => {
  const s = [...values].sort((x, y) => x - y);
  return `${s[s.length >> 1]!.toFixed(digits)} (${s[0]!.toFixed(digits)}–${s.at(-1)!.toFixed(digits)})`;
};
console.log(
  `${workload.length} writes, ${rounds} rounds${keep ? ', every replay kept' : ''}; CPU ms a pass:`,
);
for (const [name, list] of passes)
  console.log(
    `${name.padEnd(10)} process ${spread(list.map((p) => p.process))}, main thread ${spread(list.map((p) => p.main))}, other threads ${spread(list.map((p) => p.process - p.main))}`,
  );
const ratio = (a: Name, b: Name, of: (p: Pass) => number): string =>
  spread(
    passes.get(a)!.map((p, i) => of(p) / of(passes.get(b)![i]!)),
    3,
  );
for (const [label, of] of [
  ['process', (p: Pass) => p.process],
  ['main thread', (p: Pass) => p.main],
] as const)
  console.log(
    `${label}: unchecked / direct ${ratio('unchecked', 'direct', of)}, direct / scoped ${ratio('direct', 'scoped', of)}`,
  );
