/**
 * One contender of the replay bench in a process of its own, started by `replay.bench.ts` (not a tool
 * to run by hand): `node --expose-gc --import tsx bench/replay-contender-child.ts <contender> <traces
 * directory>`. Runs the contender once untimed, a warm-up pass of its own work (V8 optimises its code
 * for this contender's objects and calls and no other's), then once more, and writes that pass's
 * figures (`Outcome`) as JSON on stdout, the only thing written there.
 */
import { CONTENDERS, type Name, runContender, traceFiles } from './replay-contenders.js';

const [name, dir] = process.argv.slice(2);
const isName = (value: string | undefined): value is Name => CONTENDERS.some((c) => c === value);
if (!isName(name) || dir === undefined)
  throw new Error(`usage: replay-contender-child.ts <${CONTENDERS.join('|')}> <traces directory>`);
const files = traceFiles(dir);
await runContender(name, files);
process.stdout.write(JSON.stringify(await runContender(name, files)));
