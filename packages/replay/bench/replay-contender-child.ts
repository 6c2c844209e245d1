/**
 * One contender of the replay bench in a process of its own, started by `replay.bench.ts` (not a tool
 * to run by hand): `node --expose-gc --import tsx bench/replay-contender-child.ts <contender> <traces
 * directory>`. Runs the contender untimed, warm-up passes of its own work (V8 optimises its code for
 * this contender's objects and calls and no other's) until they took `BENCH_WARMUP_MS` (2,000) ms of
 * CPU time, at least one, then once more, and writes that pass's figures (`Outcome`) as JSON on
 * stdout, the only thing written there. Warmed up for a time, as JMH does, not for a pass: one pass
 * of the 20,000-line contenders (full, scopedShort) leaves their next pass at 1.5-3 times their
 * steady cost, still in V8's tiers below TurboFan (DESIGN.md, "Benchmark figures"). The unchecked
 * contender's child warms up and times a scoped pass beside its own (below).
 */
import { cpuMs } from '../../../bench/cpu-time.js';
import {
  CONTENDERS,
  type Name,
  type Replayed,
  runContender,
  traceFiles,
  WARMUP_MS,
} from './replay-contenders.js';

const [name, dir] = process.argv.slice(2);
const isName = (value: string | undefined): value is Name => CONTENDERS.some((c) => c === value);
if (!isName(name) || dir === undefined)
  throw new Error(`usage: replay-contender-child.ts <${CONTENDERS.join('|')}> <traces directory>`);
const files = traceFiles(dir);
// The unchecked replay shares its child with scoped passes (`Replayed.pairedScopedMs`): alone in a
// process it ran no faster than a scoped replay alone (forked runs of 2026-12-07: checks' shares of
// 1-21 % from the two, against 34-44 % for the same two passes in one process and ~30 % line by line),
// as V8 compiled the code one replay's feedback alone shaped; the checks' share compares the two
// replays through the same compiled code, as `bench/line-medians.ts` does.
const paired = name === 'unchecked' ? (['scoped', 'unchecked'] as const) : ([name] as const);
const warmup = cpuMs();
do for (const each of paired) await runContender(each, files);
while (cpuMs() - warmup < WARMUP_MS);
const timed = await runContender(name, files);
if (name === 'unchecked' && typeof timed === 'object' && 'ms' in timed)
  timed.pairedScopedMs = ((await runContender('scoped', files)) as Replayed).ms;
process.stdout.write(JSON.stringify(timed));
