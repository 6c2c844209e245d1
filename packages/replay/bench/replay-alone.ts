/**
 * One kind of replay alone in its process (not a test): the bench's workload (writes-workload.ts, 64
 * devices) written to a file and replayed as the CLI feeds it (`feedLine` over the file's blocks),
 * `passes` times in a row, each a fresh `TraceReplay`, with scoped checks (`s`) or none (`u`), from
 * the replay package built at `dist` (its `dist/index.js`). Prints each pass's rate over the timed
 * lines (the writes; CPU time). The replay bench runs every contender in one process, where V8's
 * type feedback from one (the whole checks, the 4,096-device machine) shapes the code the others run;
 * a CLI replay runs one kind alone, which this measures. Run each kind and build in a process of its
 * own, alternating, and compare the passes after the first (packages/replay DESIGN.md, "Benchmark
 * figures": the contenders in one process).
 * `node --expose-gc --import tsx bench/replay-alone.ts <dist/index.js> <passes, e.g. ss or uu> [writes=1000000]`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TraceReplay } from '@vpci/replay';
import { cpuMs } from '../../../bench/cpu-time.js';
import { fileLineBlocks } from '../src/file-lines.js';
import { header, line, plan, writes } from './writes-workload.js';

const [dist, passes = 'ss', count = '1000000'] = process.argv.slice(2);
if (dist === undefined || !/^[su]+$/.test(passes))
  throw new Error(
    'usage: replay-alone.ts <dist/index.js> <passes: s (scoped) and u (unchecked), e.g. ss> [writes]',
  );
const build = (await import(pathToFileURL(dist).href)) as { TraceReplay: typeof TraceReplay };
const planned = plan(64);
const setup = header(planned);
const dir = mkdtempSync(join(tmpdir(), 'replay-alone-'));
const file = join(dir, 'writes.jsonl');
writeFileSync(file, `${[...setup, ...Array.from(writes(planned, Number(count)), line)].join('\n')}\n`);
const rates: string[] = [];
for (const pass of passes) {
  globalThis.gc?.();
  const replay = new build.TraceReplay(file, pass === 's' ? {} : { invariantChecks: 'off' });
  let t0 = 0;
  for await (const { bytes, from, to } of fileLineBlocks(file))
    for (let at = from; at < to; ) {
      at = replay.feedLine(bytes, at, to);
      if (at < 0) throw new Error(`line ${replay.error?.line}: ${replay.error?.message}`);
      if (replay.lines === setup.length) t0 = cpuMs();
    }
  rates.push(`${pass} ${(Number(count) / (cpuMs() - t0)).toFixed(0)} k writes/s`);
  replay.end();
}
rmSync(dir, { recursive: true });
console.log(rates.join(', '));
