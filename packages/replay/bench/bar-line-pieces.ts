/**
 * The pieces of a hardware-domain BAR line's checks in a loop over one device (not a test), for
 * counting their instructions: the bench's workload (64 devices) replayed 30,000 lines, then a
 * hardware-domain device's decoding turned off and its unmap finished, then `iterations` writes
 * alternating the sizing probe and the placement of its BAR 2's low half, each with one contender:
 * - `engine`: the write alone (`Machine.configWrite`);
 * - `pages`: and the device's host pages worked out again after it (`hostPagesOf`);
 * - `take`: and a snapshot taken after that (`DeviceSnapshot.take`);
 * - `check`: a snapshot taken, the write, `change` and `hostChangeFindsNothing` (the line's checks);
 * - `again`: the same with the snapshot kept from the last `change` (`takeAgain`, as the replayer does).
 * The difference of two runs' counts over the difference of their iterations leaves the set-up out:
 * `valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null node --predictable
 * --single-threaded bar-line-pieces.mjs <contender> <iterations> [dist root]`, bundled first as
 * line-instructions.sh does (`npx esbuild bench/bar-line-pieces.ts --bundle --platform=node
 * --format=esm --external:cli-progress --external:picocolors --outfile=bench/bar-line-pieces.mjs`),
 * with 20000 and 60000 iterations. With a `dist root` (a directory holding `replay/dist` and
 * `node_modules/@vpci/vpci/dist`, another build's), that build runs.
 */
import type { TraceReplay as Replay } from '@vpci/replay';
import type { DeviceSnapshot as Snapshot } from '@vpci/vpci';
import { header, line, plan, writes } from './writes-workload.js';

const [contender = 'check', iterationsText = '20000', root] = process.argv.slice(2);
const { TraceReplay } = (await import(
  root === undefined ? '@vpci/replay' : `${root}/replay/dist/index.js`
)) as {
  TraceReplay: typeof Replay;
};
const { DeviceSnapshot } = (await import(
  root === undefined ? '@vpci/vpci' : `${root}/node_modules/@vpci/vpci/dist/index.js`
)) as { DeviceSnapshot: typeof Snapshot };

const planned = plan(64);
const replay = new TraceReplay('pieces');
for (const text of header(planned)) replay.feed(text);
for (const w of writes(planned, 30000)) replay.feed(line(w));
const plannedDevice = planned.find((p) => p.owner === 0)!;
replay.feed(line({ device: plannedDevice, reg: 0x04, size: 2, value: 0 })); // decoding off
replay.feed(line({ device: plannedDevice, reg: 0x18, size: 4, value: 0xffff_ffff })); // the unmap finishes first
const machine = replay.replayer.machine!;
const device = machine.findDevice(plannedDevice.sbdf)!;
const vcpu = machine.hardwareDomain.vcpus[Number(plannedDevice.vcpu.split('v')[1])]!;
const pages = machine.invariantCaches.hostPages;
const snapshot = new DeviceSnapshot();
snapshot.take(machine, device);
const values = [0xffff_ffff, Number(plannedDevice.bar2 & 0xffff_ffffn)];
const write = (value: number): void => machine.configWrite(vcpu, plannedDevice.sbdf, 0x18, 4, value);
const check = (): void => {
  if (snapshot.change(machine) !== 'host' || !snapshot.hostChangeFindsNothing(machine))
    throw new Error('not a quiet host line');
};
const contenders: Record<string, (value: number) => void> = {
  engine: write,
  pages: (value) => {
    write(value);
    pages.hostPagesOf(device);
  },
  take: (value) => {
    write(value);
    pages.hostPagesOf(device);
    snapshot.take(machine, device);
  },
  check: (value) => {
    snapshot.take(machine, device);
    write(value);
    check();
  },
  again: (value) => {
    if (!snapshot.takeAgain(machine)) throw new Error('not kept');
    write(value);
    check();
  },
};
const run = contenders[contender];
if (run === undefined) throw new Error(`usage: bar-line-pieces.ts <${Object.keys(contenders).join('|')}> …`);
// `takeAgain` keeps what the last `change` recorded of the whole device.
if (contender === 'again') snapshot.change(machine);
for (let i = 0, n = Number(iterationsText); i < n; i++) run(values[i & 1]!);
