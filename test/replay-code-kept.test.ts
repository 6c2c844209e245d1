/**
 * A replay's optimised code outlives the replay: after a replay dies in full GCs with no other replay
 * of the process alive (the bench's passes, a library user's next replay), V8 keeps the
 * code it optimised for the reader (`TraceReplay.feedLine`) and the engine (`Machine.configWrite`)
 * rather than throwing it away with the dead replay's object maps and compiling it again
 * (shape-keeper.ts; DESIGN.md of @vpci/replay, branch `recompile`). V8's optimisation status is
 * asked with `--allow-natives-syntax`, in a child Node process on the built bundle (`pnpm build`
 * first), as vitest's own process neither allows natives syntax nor runs a lone replay.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const testDir = fileURLToPath(new URL('.', import.meta.url));

/**
 * Each replay: a dom0 device whose decoding is turned off and on (an unmap and a map) between driver
 * writes to its interrupt line, 4,000 lines from a Buffer as a file's blocks are read. Two replays
 * warm up; the functions are marked for optimisation, optimised (synchronously, by V8's test hook) in
 * a third, and asked after that one has died in four full GCs (V8 keeps a map optimised code embeds
 * for two more full GCs before it lets it die with its objects).
 */
const script = `
const { TraceReplay } = await import('@vpci/replay');
const setup = [
  '{"event":"host","profile":"xen"}',
  '{"event":"device","sbdf":"0000:02:00.0","bars":[{"type":"mem32","size":"0x4000","addr":"0xe0000000"}]}',
  '{"event":"boot"}',
];
const write = (reg, size, value) =>
  '{"event":"write","vcpu":"d0v0","sbdf":"0000:02:00.0","reg":' + reg + ',"size":' + size + ',"value":' + value + '}';
const lines = [];
for (let i = 0; i < 1000; i++) lines.push(write(4, 2, 0), write(60, 1, i & 15), write(4, 2, 6), write(60, 1, 11));
const bytes = Buffer.from(lines.join('\\n') + '\\n');
function replay() {
  const r = new TraceReplay('kept', { invariantChecks: 'off' });
  for (const text of setup) if (!r.feed(text)) throw new Error(r.error.message);
  for (let at = 0; at < bytes.length; ) {
    at = r.feedLine(bytes, at, bytes.length);
    if (at < 0) throw new Error(r.error.message);
  }
  return r;
}
const machine = Object.getPrototypeOf(replay().replayer.machine);
const hot = { feedLine: TraceReplay.prototype.feedLine, configWrite: machine.configWrite };
replay();
for (const f of Object.values(hot)) %PrepareFunctionForOptimization(f);
replay();
for (const f of Object.values(hot)) %OptimizeFunctionOnNextCall(f);
replay();
const optimised = () => Object.fromEntries(Object.entries(hot).map(([name, f]) => [name, (%GetOptimizationStatus(f) & 16) !== 0]));
const before = optimised();
for (let i = 0; i < 4; i++) gc();
console.log(JSON.stringify({ before, after: optimised() }));
`;

it("keeps the reader's and the engine's optimised code when a replay dies before the next is made", () => {
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--expose-gc', '--input-type=module', '-e', script],
    { cwd: testDir, encoding: 'utf8' },
  );
  const all = { feedLine: true, configWrite: true };
  expect(JSON.parse(out)).toEqual({ before: all, after: all });
});
