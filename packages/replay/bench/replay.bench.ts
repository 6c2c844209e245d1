/**
 * Replay benchmark: a seeded trace of 1,000,000 config-space writes over 64 devices (32 the hardware
 * domain's, 32 passed through to four guests), written to a temporary file and replayed the way the
 * CLI does (streamed a chunk of lines at a time, parsed, checked, applied, invariants checked whenever the state
 * moved). The workload visits the devices in turn: one visit in 16 reprograms the device (decoding
 * off, BAR sizing with all-ones, BAR placement, guests at their own addresses, MSI-X enable, decoding
 * on: 10 writes, two of which map or unmap), the others are a running driver's 4 writes (INTx disable,
 * MSI-X mask, status RW1C, interrupt line). About one write in 70 maps or unmaps.
 *
 * Baseline, in the same run: the same writes made directly on a Machine (no parsing, no invariant
 * checks). The ratio is what the replay layer costs. Memory is sampled every 100,000 lines after a
 * GC: it must not grow with the trace. Prints PASS/FAIL against the targets; always exits 0.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TraceReplay } from '@vpci/replay';
import { prng } from '../../../bench/prng.js';
import { fileLineChunks } from '../src/file-lines.js';

/** `BENCH_WRITES` shortens the run for profiling; the target is for the full million. */
const WRITES = Number(process.env.BENCH_WRITES ?? 1_000_000);
const DEVICES = 64;
const GUESTS = 4;
/** Chance that a visit to a device reprograms it (two decoding toggles) rather than driving it. */
const REPROGRAM = 1 / 16;

const gc = (globalThis as { gc?: () => void }).gc;
function heap(): number {
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(2)} MiB`;
const verdict = (ok: boolean, what: string): void => console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);

interface DevicePlan {
  sbdf: string;
  /** The address the owner uses: physical for dom0, virtual for a guest. */
  address: string;
  vcpu: string;
  bar0: number;
  bar0Size: number;
  bar2: bigint;
  bar2Size: bigint;
  owner: number;
}

function plan(): DevicePlan[] {
  const random = prng(0x5eed);
  const devices: DevicePlan[] = [];
  const slots = new Map<number, number>();
  for (let i = 0; i < DEVICES; i++) {
    const bar0Size = 2 ** (12 + Math.floor(random() * 8)); // 4 KiB … 512 KiB
    const bar2Size = 2n ** BigInt(16 + Math.floor(random() * 13)); // 64 KiB … 256 MiB
    const owner = i < DEVICES / 2 ? 0 : 1 + (i % GUESTS);
    const slot = slots.get(owner) ?? 0;
    slots.set(owner, slot + 1);
    const sbdf = `0000:${(1 + (i >> 5)).toString(16).padStart(2, '0')}:${(i & 31).toString(16).padStart(2, '0')}.0`;
    devices.push({
      sbdf,
      address: owner === 0 ? sbdf : `0000:00:${slot.toString(16).padStart(2, '0')}.0`,
      vcpu: `d${owner}v0`,
      bar0: 0xc000_0000 + i * 0x10_0000,
      bar0Size,
      bar2: 0x40_0000_0000n + BigInt(i) * 0x1000_0000n,
      bar2Size,
      owner,
    });
  }
  return devices;
}

/** The set-up lines: host, devices (MSI-X in BAR0), boot, guests, assignment. */
function header(devices: DevicePlan[]): string[] {
  const lines = ['{"event":"host","profile":"xen"}'];
  for (const d of devices) {
    lines.push(
      JSON.stringify({
        event: 'device',
        sbdf: d.sbdf,
        bars: [
          { type: 'mem32', size: `0x${d.bar0Size.toString(16)}`, addr: `0x${d.bar0.toString(16)}` },
          null,
          {
            type: 'mem64',
            size: `0x${d.bar2Size.toString(16)}`,
            addr: `0x${d.bar2.toString(16)}`,
            prefetchable: true,
          },
        ],
        msix: { entries: 16, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x800 } },
      }),
    );
  }
  lines.push('{"event":"boot"}');
  for (let g = 1; g <= GUESTS; g++) lines.push(`{"event":"domain","id":${g}}`);
  for (const d of devices)
    if (d.owner !== 0) lines.push(`{"event":"assign","sbdf":"${d.sbdf}","domain":${d.owner}}`);
  return lines;
}

interface Write {
  device: DevicePlan;
  reg: number;
  size: 1 | 2 | 4;
  value: number;
}

/** The writes, cycle after cycle over the devices, `WRITES` of them. */
function* writes(devices: DevicePlan[]): Generator<Write> {
  const random = prng(0xc0ffee);
  let emitted = 0;
  const emit = (device: DevicePlan, reg: number, size: 1 | 2 | 4, value: number): Write => {
    emitted++;
    return { device, reg, size, value };
  };
  for (let cycle = 0; ; cycle++) {
    for (const d of devices) {
      // Guests move their BARs a little every cycle (same page offset as the host's); dom0 keeps them.
      const shift = d.owner === 0 ? 0 : (cycle % 8) * 0x100_0000;
      const guest0 = d.owner === 0 ? d.bar0 : 0xe000_0000 + (d.bar0 - 0xc000_0000) + shift;
      const guest2 = d.owner === 0 ? d.bar2 : 0x80_0000_0000n + (d.bar2 - 0x40_0000_0000n);
      // Now and then the device is reprogrammed (firmware, a driver reload, a guest moving a BAR):
      // decoding off, BARs sized and placed, MSI-X set up, decoding on. Otherwise its driver makes the
      // config writes of a running device: INTx disable, MSI-X mask, error status (RW1C), interrupt line.
      const cycleWrites: Write[] =
        random() < REPROGRAM
          ? [
              emit(d, 0x04, 2, 0x0000),
              emit(d, 0x10, 4, 0xffff_ffff),
              emit(d, 0x10, 4, guest0 >>> 0),
              emit(d, 0x18, 4, 0xffff_ffff),
              emit(d, 0x1c, 4, 0xffff_ffff),
              emit(d, 0x18, 4, Number(guest2 & 0xffff_ffffn)),
              emit(d, 0x1c, 4, Number(guest2 >> 32n)),
              emit(d, 0x0c, 1, Math.floor(random() * 256)), // cache line size
              emit(d, 0x40 + 2, 2, 0x8000), // MSI-X enable
              emit(d, 0x04, 2, 0x0006),
            ]
          : [
              emit(d, 0x04, 2, random() < 0.5 ? 0x0406 : 0x0006), // INTx disable on or off, decoding kept
              emit(d, 0x40 + 2, 2, random() < 0.5 ? 0xc000 : 0x8000), // MSI-X function mask on or off
              emit(d, 0x06, 2, 0xf900), // clear error bits in the status register (RW1C)
              emit(d, 0x3c, 1, Math.floor(random() * 16)), // interrupt line
            ];
      for (const w of cycleWrites) {
        yield w;
        if (emitted >= WRITES) return;
      }
    }
  }
}

function line(w: Write): string {
  return `{"event":"write","vcpu":"${w.device.vcpu}","sbdf":"${w.device.address}","reg":${w.reg},"size":${w.size},"value":${w.value}}`;
}

/** Writes the trace file (in a function, so the lines are garbage once it is written). */
function writeTrace(file: string): void {
  const parts = header(devices);
  for (const w of writes(devices)) parts.push(line(w));
  writeFileSync(file, `${parts.join('\n')}\n`);
}

const devices = plan();
const dir = mkdtempSync(join(tmpdir(), 'vpci-bench-'));
const file = join(dir, 'writes.jsonl');
writeTrace(file);

// Baseline: the same writes made directly on the machine the set-up lines build.
function direct(): number {
  const setup = new TraceReplay('setup');
  for (const l of header(devices)) setup.feed(l);
  const m = setup.replayer.machine!;
  const t0 = performance.now();
  for (const w of writes(devices)) {
    const vcpu = m.vcpu(w.device.owner, 0);
    if (vcpu.pending !== undefined) m.finishPending(vcpu);
    m.configWrite(vcpu, w.device.address, w.reg, w.size, w.value);
  }
  return performance.now() - t0;
}

async function replayFile(): Promise<{
  ms: number;
  samples: number[];
  report: ReturnType<TraceReplay['end']>;
}> {
  const replay = new TraceReplay('writes.jsonl');
  const samples: number[] = [];
  const t0 = performance.now();
  let paused = 0;
  for await (const chunk of fileLineChunks(file)) {
    for (const text of chunk) {
      if (!replay.feed(text)) throw new Error(`line ${replay.error?.line}: ${replay.error?.message}`);
      if (replay.lines % 100_000 === 0) {
        const p0 = performance.now();
        samples.push(heap());
        paused += performance.now() - p0;
      }
    }
  }
  const report = replay.end();
  return { ms: performance.now() - t0 - paused, samples, report };
}

const directMs = direct();
const { ms, samples, report } = await replayFile();
rmSync(dir, { recursive: true });

const rate = WRITES / (ms / 1000);
const directRate = WRITES / (directMs / 1000);
console.log(
  `replay: ${WRITES.toLocaleString('en')} writes over ${DEVICES} devices (${GUESTS} guests) from a file`,
);
console.log(
  `  replay (parse + apply + invariants): ${(ms / 1000).toFixed(2)} s, ${(rate / 1000).toFixed(0)} k writes/s`,
);
console.log(
  `  baseline, direct Machine calls:      ${(directMs / 1000).toFixed(2)} s, ${(directRate / 1000).toFixed(0)} k writes/s`,
);
console.log(
  `  ratio replay / direct: ${(directMs / ms).toFixed(2)} (the replay layer's cost: ${(ms / directMs).toFixed(2)}x)`,
);
console.log(
  `  report: ${report.events.length} events, ${report.violations.length} violations, ${report.domains.reduce((n, d) => n + d.p2m.length, 0)} extents, status ${report.status}`,
);
console.log(`  heap every 100k lines: ${samples.map(mib).join(', ')}`);
const growth = samples.length >= 3 ? samples.at(-1)! - samples[1]! : 0;
verdict(rate >= 200_000, `replay rate ${(rate / 1000).toFixed(0)} k writes/s >= 200 k writes/s`);
verdict(growth < 16 * 2 ** 20, `heap growth from 200k to 1M lines ${mib(growth)} < 16 MiB`);
