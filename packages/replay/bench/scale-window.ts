/**
 * One of the scale row's two machines replayed alone, stopping for `callgrind_control` (not a test;
 * run by scale-window.sh). After the set-up and the lead (scale-cache.ts), `skip` more lines, then
 * `warm` more, then `window` more; after each of the three parts it stops: it writes
 * `<dir>/stop.<pid>.<n>` (n = 0, 1, 2) and waits until `<dir>/go.<pid>.<n>` exists (sleeping 20 ms at
 * a time, so the wait adds few instructions to what callgrind counts).
 * `node --predictable --single-threaded bench/scale-window.ts <build> <64|4096> <skip> <warm> <window> <dir>`
 */
import { existsSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import { scaleReplay } from './writes-workload.js';

const [build, devices, skip, warm, window, dir] = process.argv.slice(2);
if (build === undefined || (devices !== '64' && devices !== '4096') || dir === undefined)
  throw new Error('usage: scale-window.ts <dist/index.js> <64|4096> <skip> <warm> <window> <dir>');
const { TraceReplay } = (await import(pathToFileURL(build).href)) as { TraceReplay: typeof Replay };
const parts = [Number(skip), Number(warm), Number(window)];
const { replay, texts, lead } = scaleReplay(
  TraceReplay,
  Number(devices) as 64 | 4096,
  parts[0]! + parts[1]! + parts[2]!,
);
// Fed as the bench's scale row and the CLI feed a file: one block of the lines' bytes, each line read
// where it stands (`feedLine`, where a compact write line's key keeps its write target).
const bytes = Buffer.from(texts.map((text) => `${text}\n`).join(''));
const nap = new Int32Array(new SharedArrayBuffer(4));
let fed = 0;
let at = 0;
let end = lead;
for (let n = 0; n < parts.length; n++) {
  end += parts[n]!;
  for (; fed < end; fed++) {
    at = replay.feedLine(bytes, at, bytes.length);
    if (at < 0) throw new Error(`${replay.error?.message}`);
  }
  writeFileSync(`${dir}/stop.${process.pid}.${n}`, '');
  while (!existsSync(`${dir}/go.${process.pid}.${n}`)) Atomics.wait(nap, 0, 0, 20);
}
console.log(`${devices} devices, ${fed} lines after the set-up`);
