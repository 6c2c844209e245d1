/**
 * One contender of the replay bench in a process of its own, started by `replay.bench.ts` (not a tool
 * to run by hand): `node --expose-gc --import tsx bench/replay-contender-child.ts <contender> <traces
 * directory>`. Runs the contender untimed, warm-up passes of its own work (V8 optimises its code for
 * this contender's objects and calls and no other's) until they took `BENCH_WARMUP_MS` (2,000) ms of
 * CPU time, at least one, then once more, and writes that pass's figures (`Measured`) as JSON on
 * stdout, the only thing written there. Warmed up for a time, as JMH does, not for a pass: one pass
 * of the 20,000-line contenders (full, scopedShort) leaves their next pass at 1.5-3 times their
 * steady cost, still in V8's tiers below TurboFan (DESIGN.md, "Benchmark figures"). The contenders
 * with a ratio partner (`RATIO_PARTNERS`) warm up and are timed beside the partner's passes, each
 * side for `BENCH_WARMUP_MS` of its own passes, as it would be alone.
 */
import {
  CONTENDERS,
  type Measured,
  type Name,
  RATIO_PARTNERS,
  type Replayed,
  runContender,
  traceFiles,
  WARMUP_MS,
  warmupPasses,
} from './replay-contenders.js';
import { warmUp } from './warm-up.js';

const [name, dir] = process.argv.slice(2);
const isName = (value: string | undefined): value is Name => CONTENDERS.some((c) => c === value);
if (!isName(name) || dir === undefined)
  throw new Error(`usage: replay-contender-child.ts <${CONTENDERS.join('|')}> <traces directory>`);
const files = traceFiles(dir);
// A contender with a ratio partner warms up and is timed beside the partner's passes, each side for
// its own budget (`warmUp`).
const partner = RATIO_PARTNERS[name];
await warmUp(
  partner === undefined ? [name] : [partner, name],
  (side) => runContender(side, files),
  WARMUP_MS,
  warmupPasses,
);
const measured: Measured = { outcome: await runContender(name, files) };
if (partner !== undefined) measured.partnerMs = ((await runContender(partner, files)) as Replayed).ms;
process.stdout.write(JSON.stringify(measured));
