/**
 * The checks' cost on the lines that finish pending work, for an instruction counter (not a test):
 * the bench's workload (writes-workload.ts) replayed with scoped checks, each `+finish` line
 * (line-kinds.ts: its vCPU first finishes the map or unmap a decoding toggle left) checked as
 * `mode` says, every other line as usual. Run it twice with two counts under
 * `valgrind --tool=cachegrind --cache-sim=no node --predictable --single-threaded` and subtract: the
 * set-up, the tool's own start and the warm-up cancel, and what is left is the steady window's
 * instructions. Modes, each a step more of a finishing line's check than the one before:
 * - `off`: no snapshot and no check on a finishing line (the replay's `invariantChecks: 'off'` for
 *   that line alone);
 * - `snapshot`: the snapshots taken and compared (`snapshotTouched`, `DeviceSnapshot.change`), the
 *   scope not checked;
 * - `scoped`: the whole check, as a replay makes it;
 * - `again`: as `scoped`, then `checkInvariants` once more over the same devices and frames, nothing
 *   changed in between: the check without its upkeep (the window index and host pages already up to
 *   date), so `again − scoped` is what the check itself costs and `scoped − snapshot` less that is
 *   the upkeep and the scope's making;
 * - `take`: as `scoped`, and besides a spare snapshot of the device whose work the line finishes,
 *   taken before it and compared after (`DeviceSnapshot.take` and `change`, nothing else changed):
 *   `take − scoped` is what the replay's own snapshot of it costs;
 * - `none`: every line of the replay unchecked (the checks' cost on all lines, against `scoped`).
 * Prints how many lines and how many finishing lines it replayed. Take the window late (lines 100 k
 * to 200 k): the finishing path's functions run on 3 % of lines and reach the optimising compiler
 * only after 60,000 lines or more, and with `--single-threaded` each compile is counted where it
 * happens (packages/replay DESIGN.md, "Benchmark figures").
 * `node --import tsx bench/finish-cost.ts <mode> [writes=60000] [devices=64]`.
 */
import { TraceReplay } from '@vpci/replay';
import {
  checkInvariants,
  DeviceSnapshot,
  type Domain,
  type Machine,
  type PciDevice,
  type Violation,
} from '@vpci/vpci';
import { lineKinds } from './line-kinds.js';
import { header, line, plan, writes } from './writes-workload.js';

const [mode = 'scoped', count = '60000', devices = '64'] = process.argv.slice(2);
if (!['off', 'snapshot', 'scoped', 'again', 'take', 'none'].includes(mode))
  throw new Error(`mode ${mode}: expected off, snapshot, scoped, again, take or none`);
const planned = plan(Number(devices));
const replay = new TraceReplay('finish-cost', mode === 'none' ? { invariantChecks: 'off' } : {});
for (const text of header(planned)) replay.feed(text);
const all = [...writes(planned, Number(count))];
const kinds = lineKinds(all);
const texts = all.map(line);

// The replayer's options and its scoped check, swapped for the finishing lines (private fields:
// this is a measuring tool, and the replay's own code is what it measures).
const replayer = replay.replayer as unknown as {
  options: { invariantChecks?: string };
  checkScoped(line: number, count: number): void;
  record(line: number, violations: Violation[]): void;
  readonly scopeDevices: Set<PciDevice>;
  readonly scopeFrames: Map<Domain, (readonly [number, number])[]>;
  readonly machine: Machine;
};
const checked = replayer.options;
const unchecked = { ...checked, invariantChecks: 'off' };
const checkScoped = replayer.checkScoped;
const skipCheck = (): void => {};
const spare = new DeviceSnapshot();
const record = replayer.record;
// The scoped check's record, then the same check again (`again`).
const recordAndAgain = function (this: typeof replayer, line: number, violations: Violation[]): void {
  record.call(this, line, violations);
  if (this.scopeDevices.size === 0) return;
  const twice = checkInvariants(this.machine, {
    devices: this.scopeDevices,
    frames: this.scopeFrames,
    hostFrames: [],
  });
  if (twice.length !== violations.length) throw new Error('the check again found otherwise');
};
let finishing = 0;
for (let i = 0; i < texts.length; i++) {
  const finish = kinds[i]!.endsWith('+finish');
  if (finish) {
    finishing++;
    if (mode === 'off') replayer.options = unchecked;
    else if (mode === 'snapshot') replayer.checkScoped = skipCheck;
    else if (mode === 'again') replayer.record = recordAndAgain;
  }
  const pending = finish && mode === 'take' ? pendingDevice(all[i]!.device.vcpu) : undefined;
  if (pending !== undefined) spare.take(replayer.machine, pending);
  if (!replay.feed(texts[i]!)) throw new Error(replay.error?.message);
  if (pending !== undefined) spare.change(replayer.machine);
  if (finish) {
    replayer.options = checked;
    replayer.checkScoped = checkScoped;
    replayer.record = record;
  }
}
/** The device whose work the vCPU named `d<domain>v<vcpu>` has pending. */
function pendingDevice(name: string): PciDevice | undefined {
  const [domain, vcpu] = name.slice(1).split('v').map(Number);
  return replayer.machine.findDomain(domain!)?.vcpus[vcpu!]?.pending?.device;
}
console.log(`${mode}: ${texts.length} lines, ${finishing} finishing`);
