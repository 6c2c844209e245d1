/**
 * One of the scale row's two machines replayed alone, for counting under cachegrind (not a test):
 * the machine's set-up lines, then its first two cycles of writes (as the bench's steady window
 * starts), then `lines` more. Every line is made before the replay starts, for `maxLines` whatever
 * `lines` is, so that two runs with different `lines` differ only in the lines fed: their difference
 * in instructions, D1 and LL misses, divided by the difference in `lines`, is the steady cost a line.
 * `build` is a `dist/index.js` of @vpci/replay (this worktree's, or another build copied aside).
 * `valgrind --tool=cachegrind --cache-sim=yes node --predictable --single-threaded --import tsx
 *   bench/scale-cache.ts <build> <64|4096> <lines> [maxLines=40000] [checks=scoped|off]`
 * (At 4,096 devices the set-up and lead alone are 23 G instructions: scale-window.sh counts a window
 * of the same machine without simulating them.)
 */
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import { scaleReplay } from './writes-workload.js';

const [build, devices, lines, maxLines = '40000', checks = 'scoped'] = process.argv.slice(2);
if (build === undefined || (devices !== '64' && devices !== '4096') || lines === undefined)
  throw new Error('usage: scale-cache.ts <dist/index.js> <64|4096> <lines> [maxLines] [checks]');
if (Number(lines) > Number(maxLines)) throw new Error(`lines ${lines} is more than maxLines ${maxLines}`);
const { TraceReplay } = (await import(pathToFileURL(build).href)) as { TraceReplay: typeof Replay };
const { replay, texts, lead } = scaleReplay(
  TraceReplay,
  Number(devices) as 64 | 4096,
  Number(maxLines),
  checks === 'off' ? 'off' : 'scoped',
);
const end = lead + Number(lines);
for (let i = 0; i < end; i++) if (!replay.feed(texts[i]!)) throw new Error(`${replay.error?.message}`);
const report = replay.end();
if (report.status !== 'ok' || report.violations.length > 0) throw new Error(`not clean: ${report.status}`);
console.log(`${devices} devices, ${end} lines after the set-up: clean`);
