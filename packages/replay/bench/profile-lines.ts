/**
 * Profiles the timed lines of one bench contender (not the set-up lines, not the end of the replay):
 * `node --import tsx bench/profile-lines.ts <devices> <writes> <scoped|full|off> <out.cpuprofile>`.
 * The profile is the V8 CPU profile `node --cpu-prof` writes, taken through `node:inspector` from the
 * first line after the set-up to the last line, so the set-up's whole checks do not drown it.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { TraceReplay } from '@vpci/replay';
import { header, line, plan, writes } from './writes-workload.js';

const [devices = '4096', count = '20000', checks = 'scoped', out = 'lines.cpuprofile'] =
  process.argv.slice(2);
const planned = plan(Number(devices));
const replay = new TraceReplay('profile', {
  invariantChecks: checks === 'full' || checks === 'off' ? checks : 'scoped',
});
for (const text of header(planned)) replay.feed(text);
const lines = [...writes(planned, Number(count))].map(line);
const session = new Session();
session.connect();
await session.post('Profiler.enable');
// Every 100 µs, not V8's default 1 ms: a checked line costs tens of µs.
await session.post('Profiler.setSamplingInterval', { interval: 100 });
await session.post('Profiler.start');
const t0 = process.cpuUsage();
for (const text of lines) if (!replay.feed(text)) throw new Error(replay.error?.message);
const { user, system } = process.cpuUsage(t0);
const { profile } = await session.post('Profiler.stop');
writeFileSync(out, JSON.stringify(profile));
console.log(`${devices} devices, ${count} lines, ${checks}: ${((user + system) / 1000).toFixed(0)} ms CPU`);
