/**
 * One contender of the replay's per-line cost, for counting its executed instructions (not a test):
 * under a shared host's load CPU time swings 3–5× between rounds, an instruction count does not.
 * Makes the bench's workload (writes-workload.ts, 64 devices, `made` writes, always all of them, so
 * the set-up costs the same whatever is fed; with `devices` 4096, the scale row's larger machine,
 * `scaleMachines`), then runs the first `fed` lines through one contender:
 * - `parse`: the compact-line reader alone (`compactLineEnd` over the lines' bytes, blocks of
 *   `CHUNK_BYTES` as `fileLineBlocks` gives them; nothing applied);
 * - `unchecked`: a replay without checks (`TraceReplay.feedLine` over the same blocks, as the CLI);
 * - `scoped`: the same with scoped checks;
 * - `direct`: the same writes made directly on a `Machine` (the bench's baseline).
 * Instructions a line are the difference of two runs' counts over the difference of their `fed`, so
 * start-up and the workload's making cancel:
 * `valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null node --predictable
 * --single-threaded --import tsx bench/line-instructions.ts <contender> <fed> [made=300000] [devices=64]`, once with
 * `fed` 100000 and once 300000 (the `==…== I refs:` line is the count). `line-instructions.sh`
 * runs both and prints the figure.
 */
import type { Machine } from '@vpci/vpci';
import { CompactWrite, compactLineEnd } from '../src/compact-bytes.js';
import { CHUNK_BYTES } from '../src/file-lines.js';
import { TraceReplay } from '../src/run.js';
import { header, lineBlocksOf, plan, scaleMachines, writes } from './writes-workload.js';

const [contender = 'parse', fedText = '100000', madeText = '300000', devicesText = '64'] =
  process.argv.slice(2);
const fed = Number(fedText);
const made = Number(madeText);
if (!(fed <= made) || (devicesText !== '64' && devicesText !== '4096'))
  throw new Error('usage: line-instructions.ts <contender> <fed> [made] [devices: 64 or 4096]');
const planned = devicesText === '64' ? plan(64) : scaleMachines().large;
const workload = [...writes(planned, made)];

/** The writes as blocks of whole lines, each a `Buffer` as `lineBlocks` gives them. */
const blocks = lineBlocksOf(workload, CHUNK_BYTES);

/**
 * Each contender's loop is a function's (a loop in a module's top-level code ran in the baseline
 * compiler's code, its property loads through inline-cache stubs, which counted more than the reader).
 */
function parse(): number {
  const into = new CompactWrite();
  let left = fed;
  let total = 0;
  for (const bytes of blocks)
    for (let at = 0; at < bytes.length && left > 0; left--) {
      at = compactLineEnd(bytes, at, bytes.length, into);
      if (at < 0) throw new Error('a line the reader does not take');
      total = (total + into.value) | 0;
    }
  return total;
}

function replayed(checked: boolean): number {
  const replay = new TraceReplay('count', checked ? {} : { invariantChecks: 'off' });
  for (const text of header(planned)) replay.feed(text);
  let left = fed;
  for (const bytes of blocks)
    for (let at = 0; at < bytes.length && left > 0; left--) {
      at = replay.feedLine(bytes, at, bytes.length);
      if (at < 0) throw new Error(replay.error?.message);
    }
  return replay.lines;
}

function direct(): number {
  const replay = new TraceReplay('setup');
  for (const text of header(planned)) replay.feed(text);
  const m = replay.replayer.machine as Machine;
  for (let i = 0; i < fed; i++) {
    const w = workload[i]!;
    const vcpu = m.vcpu(w.device.owner, 0);
    if (vcpu.pending !== undefined) m.finishPending(vcpu);
    m.configWrite(vcpu, w.device.address, w.reg, w.size, w.value);
  }
  return fed;
}

const check =
  contender === 'parse'
    ? parse()
    : contender === 'unchecked' || contender === 'scoped'
      ? replayed(contender === 'scoped')
      : contender === 'direct'
        ? direct()
        : undefined;
if (check === undefined)
  throw new Error(`contender ${contender}: expected parse, unchecked, scoped or direct`);
console.log(`${contender} ${fed} lines (${check})`);
