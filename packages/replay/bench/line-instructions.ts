/**
 * A fixed run of the bench's workload for counting executed instructions (not a test): the set-up
 * lines and the first `lines` of 300,000 writes over 64 devices fed to one `TraceReplay` (this
 * build's, or the `dist/index.js` of another build's replay package) with scoped checks or none.
 * Every run makes all 300,000 lines' texts, so two runs' counts differ by the feeding alone: run it
 * under cachegrind with two counts and divide the difference by the lines between (the replay
 * DESIGN.md, "Benchmark figures"). With `inert` > 0, the running driver's writes among the last
 * 20,000 lines fed (interrupt line, MSI-X mask, status: lines the inert-write shortcut takes) are fed
 * again that many times after them.
 * Count it bundled, not through tsx: under tsx the count of the same run varied by hundreds of
 * millions on a loaded host (its loader works beside the main thread), swamping a window's
 * difference. Bundled into a build's replay package directory, `@vpci/replay` is that build:
 * `esbuild bench/line-instructions.ts --bundle --platform=node --format=esm --external:@vpci/*
 *  --outfile=<build>/packages/replay/li.mjs`, then in that directory
 * `valgrind --tool=cachegrind --cache-sim=no node --predictable --single-threaded li.mjs
 *  <scoped|off> <lines> [inert=0] [dist]`.
 */
import { pathToFileURL } from 'node:url';
import { TraceReplay as ThisBuild } from '@vpci/replay';
import { header, line, plan, writes } from './writes-workload.js';

const [checks = 'scoped', lines = '100000', inert = '0', dist] = process.argv.slice(2);
if (checks !== 'scoped' && checks !== 'off') throw new Error(`checks: expected scoped or off, got ${checks}`);
const TraceReplay: typeof ThisBuild =
  dist === undefined
    ? ThisBuild
    : ((await import(pathToFileURL(dist).href)) as { TraceReplay: typeof ThisBuild }).TraceReplay;
const planned = plan(64);
const all = [...writes(planned, 300_000)];
const texts = all.map(line);
const count = Number(lines);
const passes = Number(inert);
if (!(Number.isInteger(count) && count >= 20_000 && count <= texts.length))
  throw new Error(`lines: expected an integer 20000…${texts.length}, got ${lines}`);
if (!(Number.isInteger(passes) && passes >= 0))
  throw new Error(`inert: expected an integer ≥ 0, got ${inert}`);
// A running driver's writes: MSI-X mask (0x42), status (0x06), interrupt line (0x3c).
const again: string[] = [];
for (let i = count - 20_000; i < count; i++)
  if ([0x42, 0x06, 0x3c].includes(all[i]!.reg)) again.push(texts[i]!);
const replay = new TraceReplay('instructions', checks === 'off' ? { invariantChecks: 'off' } : {});
for (const text of header(planned)) replay.feed(text);
const feed = (text: string): void => {
  if (!replay.feed(text)) throw new Error(replay.error?.message);
};
for (let i = 0; i < count; i++) feed(texts[i]!);
for (let p = 0; p < passes; p++) for (const text of again) feed(text);
console.log(
  `${checks} ${count} lines, ${passes * again.length} inert lines again, applied ${replay.replayer.applied}`,
);
