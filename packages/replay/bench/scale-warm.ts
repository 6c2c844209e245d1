/**
 * What the replay benchmark's first-lines scale ratio (`replay.bench.ts`: 4,096 devices / 64, per
 * line, over the first 20,000 writes; the target is judged on steady lines since) is made of (not a
 * test). Timed from the first write, 20,000 writes over 64 devices revisit each
 * device about 70 times but over 4,096 visit each about once: nearly every device's first
 * decoding-on (its first map: `modify_bars`, the p2m writes, the MSI-X holes, a check of the mapped
 * region) falls in the 4,096-device run's timed lines, and only 64 in the other's. This replays the
 * same workload with scoped checks as the bench does, in one process (JIT warmed first), and times
 * the first 20,000 writes ("cold", the bench's first-lines window) and the next 20,000 ("warm":
 * every device has been visited; the bench's steady window goes further: the same kinds of lines one
 * by one on BARs of the same sizes, after V8 has re-optimised for the run). Prints per round the CPU time
 * and p2m writes of each, then the median same-round ratios.
 * `node --expose-gc --import tsx bench/scale-warm.ts [rounds]`.
 */
import { TraceReplay } from '@vpci/replay';
import { header, line, plan, writes } from './writes-workload.js';

const LINES = 20_000;
const ROUNDS = Number(process.argv[2] ?? 2);
const gc = (globalThis as { gc?: () => void }).gc;

interface Timed {
  ms: number;
  p2mWrites: number;
}

/** CPU milliseconds and p2m writes of the first `LINES` writes over `devices`, and of the next `LINES`. */
function run(devices: number): { cold: Timed; warm: Timed } {
  const planned = plan(devices);
  const replay = new TraceReplay('scale-warm');
  for (const text of header(planned)) replay.feed(text);
  const lines = [...writes(planned, 2 * LINES)].map(line);
  const machine = replay.replayer.machine!;
  const p2mWrites = (): number => machine.domains().reduce((sum, d) => sum + d.p2m.writes, 0);
  const timed = (from: number): Timed => {
    gc?.();
    const before = p2mWrites();
    const t0 = process.cpuUsage();
    for (const text of lines.slice(from, from + LINES))
      if (!replay.feed(text)) throw new Error(`line ${replay.error?.line}: ${replay.error?.message}`);
    const { user, system } = process.cpuUsage(t0);
    return { ms: (user + system) / 1000, p2mWrites: p2mWrites() - before };
  };
  const cold = timed(0);
  return { cold, warm: timed(LINES) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const spread = (xs: number[]): string =>
  `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
const show = (r: Timed): string => `${r.ms.toFixed(0)} ms (${r.p2mWrites.toLocaleString('en')} p2m writes)`;
run(64); // JIT warm-up
const cold: number[] = [];
const warm: number[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const small = run(64);
  const large = run(4096);
  cold.push(large.cold.ms / small.cold.ms);
  warm.push(large.warm.ms / small.warm.ms);
  console.log(
    `round ${round}: first ${LINES} writes: 64 ${show(small.cold)}, 4096 ${show(large.cold)}; next ${LINES}: 64 ${show(small.warm)}, 4096 ${show(large.warm)}`,
  );
}
console.log(`4096 / 64 per line, first ${LINES} writes (the bench's): ${spread(cold)}`);
console.log(`4096 / 64 per line, the next ${LINES} (every device visited): ${spread(warm)}`);
