/**
 * What one kind of line allocates, and where (not a test): the bench's workload (writes-workload.ts)
 * replayed with scoped checks under V8's sampling heap profiler (a sample every 16 bytes, objects
 * freed since counted too), each line of the kind asked for (line-kinds.ts names them; a part of the
 * name is enough, `+finish` for every line that finishes pending work) replayed through a function
 * of its own name, `ofTheKind`, so that a sample's stack tells whether it was taken on such a line.
 * Prints the bytes a line of the kind allocated, then the functions by bytes allocated in them
 * (self) and under them (inclusive), per line. Unlike time, this does not move with the host's load:
 * the same build gives the same figures run after run (within the sampling's spread).
 * `node --import tsx bench/line-allocations.ts [kind=cmd-keep +finish] [writes=60000] [warm-up=20000] [top=20] [dist]`
 * (`dist`: another build's `packages/replay/dist/index.js`, to compare two builds).
 */
import { Session } from 'node:inspector/promises';
import { pathToFileURL } from 'node:url';
import type { TraceReplay as Replay } from '@vpci/replay';
import { lineKinds } from './line-kinds.js';
import { header, line, plan, writes } from './writes-workload.js';

const [kind = 'cmd-keep +finish', count = '60000', warm = '20000', top = '20', dist] = process.argv.slice(2);
const { TraceReplay } = (await import(dist === undefined ? '@vpci/replay' : pathToFileURL(dist).href)) as {
  TraceReplay: typeof Replay;
};
const planned = plan(64);
const replay = new TraceReplay('allocations');
for (const text of header(planned)) replay.feed(text);
const all = [...writes(planned, Number(count))];
const kinds = lineKinds(all);
const texts = all.map(line);

// The replayer's entry for a line that is not an inert write, renamed for the lines of the kind
// (a private method: this is a measuring tool).
const replayer = replay.replayer as unknown as Record<string, unknown>;
const applyChecked = Object.getPrototypeOf(replayer).applyChecked as (...args: unknown[]) => void;
function ofTheKind(this: unknown, ...args: unknown[]): void {
  applyChecked.apply(this, args);
}

const session = new Session();
session.connect();
let lines = 0;
for (let i = 0; i < texts.length; i++) {
  if (i === Number(warm)) {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 16,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as { samplingInterval: number });
  }
  const chosen = i >= Number(warm) && kinds[i]!.includes(kind);
  if (chosen) {
    lines++;
    replayer.applyChecked = ofTheKind;
  }
  if (!replay.feed(texts[i]!)) throw new Error(replay.error?.message);
  if (chosen) delete replayer.applyChecked;
}
const { profile } = await session.post('HeapProfiler.stopSampling');
session.disconnect();

interface Node {
  callFrame: { functionName: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let total = 0;
/** Adds each sample under `ofTheKind` to its function (self) and to every function on its stack. */
const walk = (node: Node, stack: readonly string[], under: boolean): void => {
  const name = `${node.callFrame.functionName || '(anonymous)'}:${node.callFrame.lineNumber}`;
  const counted = under || node.callFrame.functionName === 'ofTheKind';
  if (counted && node.selfSize > 0) {
    total += node.selfSize;
    self.set(name, (self.get(name) ?? 0) + node.selfSize);
    for (const f of new Set([...stack, name])) inclusive.set(f, (inclusive.get(f) ?? 0) + node.selfSize);
  }
  for (const child of node.children) walk(child, counted ? [...stack, name] : stack, counted);
};
walk(profile.head as Node, [], false);
const listed = (sizes: Map<string, number>): string =>
  [...sizes]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(top))
    .map(([f, bytes]) => `${f} ${(bytes / lines).toFixed(0)}`)
    .join(', ');
console.log(`${kind}: ${lines} lines, ${(total / lines).toFixed(0)} bytes a line`);
console.log(`self: ${listed(self)}`);
console.log(`inclusive: ${listed(inclusive)}`);
