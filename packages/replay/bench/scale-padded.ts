/**
 * Whether the scale row's extra cost per line comes from the machine's size or from the devices the
 * lines touch (not a test). Three replays side by side in one process, blocks of 1,000 lines in turn
 * as `scalePair` feeds them: the bench's 64-device machine, its 4,096-device machine, and the same
 * 4,096-device machine (every device, BAR, mapping and index of it) whose lines visit only its
 * first 64 devices. Same kinds of line, line by line, in all three. If the padded machine costs what
 * the small one does per line, the engine's work grows with what a line touches, and the larger
 * machine's excess is the touched state itself: a line there reaches a device not met for 4,000
 * lines, whose objects the processor's caches no longer hold.
 * `node --expose-gc --import tsx bench/scale-padded.ts [rounds=3]`.
 */
import { TraceReplay } from '@vpci/replay';
import { cpuMs } from '../../../bench/cpu-time.js';
import { header, line, scaleMachines, writes } from './writes-workload.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const BLOCK = 1000;
const { small, large, cycle } = scaleMachines();
const gc = (globalThis as { gc?: () => void }).gc;

function round(): number[] {
  gc?.();
  const runs = [
    { setup: header(small), visited: small },
    { setup: header(large), visited: large },
    { setup: header(large), visited: large.slice(0, 64) },
  ].map(({ setup, visited }) => {
    const replay = new TraceReplay('padded');
    for (const text of setup) if (!replay.feed(text)) throw new Error(`${replay.error?.message}`);
    return { replay, texts: [...writes(visited, 4 * cycle)].map(line), ms: 0 };
  });
  for (let at = 0; at < 4 * cycle; at += BLOCK)
    for (const run of runs) {
      const c0 = cpuMs();
      for (let i = at; i < Math.min(4 * cycle, at + BLOCK); i++)
        if (!run.replay.feed(run.texts[i]!)) throw new Error(`${run.replay.error?.message}`);
      // The steady window: after two cycles of the larger machine, as the bench's.
      if (at >= 2 * cycle) run.ms += cpuMs() - c0;
    }
  for (const run of runs) {
    const report = run.replay.end();
    if (report.status !== 'ok' || report.violations.length > 0)
      throw new Error(`not clean: ${report.status}`);
  }
  return runs.map((run) => run.ms);
}

round(); // warm-up
const large64: number[] = [];
const padded64: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const [s, l, p] = round();
  large64.push(l! / s!);
  padded64.push(p! / s!);
  console.log(
    `round ${r + 1}: 64 devices ${s!.toFixed(0)} ms, 4096 ${l!.toFixed(0)} ms, 4096 visiting 64 ${p!.toFixed(0)} ms`,
  );
}
const median = (xs: number[]): string => [...xs].sort((a, b) => a - b)[xs.length >> 1]!.toFixed(2);
console.log(
  `per line, / 64 devices: 4096 ${median(large64)}x, 4096 visiting 64 of them ${median(padded64)}x (medians of ${ROUNDS})`,
);
