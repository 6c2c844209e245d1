/**
 * Profiles the timed lines of one bench contender (not the set-up lines, not the end of the replay):
 * `node --import tsx bench/profile-lines.ts <devices> <writes> <scoped|full|off> <out.cpuprofile>`.
 * The profile is the V8 CPU profile `node --cpu-prof` writes, taken through `node:inspector` from the
 * first line after the set-up to the last line, so the set-up's whole checks do not drown it. The
 * lines are read as the CLI and the bench read them: from a file, a chunk of bytes at a time
 * (`fileLineBlocks`, `TraceReplay.feedLine`), so the reader is in the profile.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceReplay } from '@vpci/replay';
import { fileLineBlocks } from '../src/file-lines.js';
import { header, line, plan, writes } from './writes-workload.js';

const [devices = '4096', count = '20000', checks = 'scoped', out = 'lines.cpuprofile'] =
  process.argv.slice(2);
const planned = plan(Number(devices));
const replay = new TraceReplay('profile', {
  invariantChecks: checks === 'full' || checks === 'off' ? checks : 'scoped',
});
const setup = header(planned);
const dir = mkdtempSync(join(tmpdir(), 'vpci-profile-'));
const file = join(dir, 'trace.jsonl');
writeFileSync(file, `${[...setup, ...[...writes(planned, Number(count))].map(line)].join('\n')}\n`);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
// Every 100 µs, not V8's default 1 ms: a checked line costs tens of µs.
await session.post('Profiler.setSamplingInterval', { interval: 100 });
let t0: NodeJS.CpuUsage | undefined;
for await (const { bytes, from, to } of fileLineBlocks(file)) {
  for (let at = from; at < to; ) {
    at = replay.feedLine(bytes, at, to);
    if (at < 0) throw new Error(replay.error?.message);
    if (replay.lines === setup.length) {
      await session.post('Profiler.start');
      t0 = process.cpuUsage();
    }
  }
}
const { user, system } = process.cpuUsage(t0);
const { profile } = await session.post('Profiler.stop');
writeFileSync(out, JSON.stringify(profile));
rmSync(dir, { recursive: true });
console.log(`${devices} devices, ${count} lines, ${checks}: ${((user + system) / 1000).toFixed(0)} ms CPU`);
