/**
 * SR-IOV benchmark (not a test; issue 18's speed target): a PF with 1,024 VFs, each with a pair of
 * 64 KiB VF BARs (two 64-bit slots: 64 MiB per slot over all VFs), and a plain device with two
 * 64 MiB BARs at the same alignment: the same 32,768 frames. The hardware domain turns VF Memory
 * Space Enable on and off (the `hardened` profile: `mapVfBarRanges`, one deferred operation over each
 * slot's whole range) and, in the same round, the plain device's memory decoding on and off; each
 * write's deferred work runs to the end, 20 on/off pairs per sample after a warm-up. Rounds alternate
 * which goes first; the figures are medians of the mean CPU time per write, and the frames mapped (or unmapped) per second. Target: VF MSE on and off each within
 * 2× the plain map and unmap of the same size. For comparison, `xen` (the series' v1: one
 * `vpci_modify_bars` per VF, each overwriting the last) is timed once: it maps only the last call's VF
 * (VF 0: the loop walks `vf_list` newest first).
 * Prints PASS/FAIL lines; always exits 0. `BENCH_RUNS` sets the rounds (default 9).
 */
// The built engine (as the replayer uses it), not its sources through tsx.
import { Machine, type Profile } from '@vpci/vpci';

const RUNS = Number(process.env.BENCH_RUNS ?? 9);
/** On/off pairs per sample. */
const CYCLES = 20;
const VFS = 1024;
const VF_BAR = 0x1_0000n; // 64 KiB
const FRAMES = (2 * VFS * Number(VF_BAR)) / 4096;
const PF = '0000:40:00.0';
const PLAIN = '0000:50:00.0'; // past the VFs' buses 0x40–0x44
const SRIOV_CTRL = 0x108;
const VFE = 0x1;
const MSE = 0x8;

const verdict = (ok: boolean, what: string): void => console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** The machine, booted, with the PF's VFs enabled (VF MSE off) and the plain device not decoding. */
function machine(profile: Profile): Machine {
  const m = new Machine({ profile });
  m.addDevice({
    sbdf: PF,
    sriov: {
      totalVfs: VFS,
      numVfs: VFS,
      firstVfOffset: 1,
      vfStride: 1,
      vfBars: [
        { type: 'mem64', size: VF_BAR, addr: 0x80_0000_0000n },
        null,
        { type: 'mem64', size: VF_BAR, addr: 0x80_0400_0000n },
        null,
      ],
    },
  });
  m.addDevice({
    sbdf: PLAIN,
    bars: [
      { type: 'mem64', size: BigInt(VFS) * VF_BAR, addr: 0x90_0000_0000n },
      null,
      { type: 'mem64', size: BigInt(VFS) * VF_BAR, addr: 0x90_0400_0000n },
      null,
    ],
  });
  m.boot();
  m.configWrite(m.hardwareDomain.vcpus[0]!, PF, SRIOV_CTRL, 2, VFE);
  return m;
}

/** CPU milliseconds of one write and its deferred work to the end. */
function timed(m: Machine, sbdf: string, reg: number, value: number): number {
  const v = m.hardwareDomain.vcpus[0]!;
  const t0 = cpuMs();
  m.configWrite(v, sbdf, reg, 2, value);
  m.finishPending(v);
  return cpuMs() - t0;
}

/** Frames dom0 maps in [first, first + count). */
function mappedFrames(m: Machine, first: number, count: number): number {
  let n = 0;
  for (const e of m.hardwareDomain.p2m.extents()) {
    if (e.type !== 'mmio_direct') continue;
    const s = Math.max(first, e.gfn);
    const end = Math.min(first + count, e.gfn + e.count);
    if (end > s) n += end - s;
  }
  return n;
}

const t0 = cpuMs();
const m = machine('hardened');
console.log(`set-up: ${VFS} VFs enabled in ${(cpuMs() - t0).toFixed(0)} ms CPU`);
const times = {
  vfOn: [] as number[],
  vfOff: [] as number[],
  plainOn: [] as number[],
  plainOff: [] as number[],
};
const vfFirst = 0x80_0000_0000 / 4096;
/** One sample: `CYCLES` on/off pairs, each timed on its own and summed (single ones are sub-ms). */
function sample(sbdf: string, reg: number, on: number, off: number, check?: () => void): [number, number] {
  let onMs = 0;
  let offMs = 0;
  for (let i = 0; i < CYCLES; i++) {
    onMs += timed(m, sbdf, reg, on);
    check?.();
    offMs += timed(m, sbdf, reg, off);
  }
  return [onMs / CYCLES, offMs / CYCLES];
}
// Warm-up (JIT), untimed.
sample(PF, SRIOV_CTRL, VFE | MSE, VFE);
sample(PLAIN, 0x04, 0x0002, 0x0000);
for (let round = 0; round < RUNS; round++) {
  const vf = (): void => {
    const [on, off] = sample(PF, SRIOV_CTRL, VFE | MSE, VFE, () => {
      if (mappedFrames(m, vfFirst, FRAMES) !== FRAMES) throw new Error('VF MSE on did not map every VF');
    });
    if (mappedFrames(m, vfFirst, FRAMES) !== 0) throw new Error('VF MSE off left frames mapped');
    times.vfOn.push(on);
    times.vfOff.push(off);
  };
  const plain = (): void => {
    const [on, off] = sample(PLAIN, 0x04, 0x0002, 0x0000);
    times.plainOn.push(on);
    times.plainOff.push(off);
  };
  if (round % 2 === 0) {
    vf();
    plain();
  } else {
    plain();
    vf();
  }
}
const rate = (ms: number): string => `${((FRAMES / ms) * 1000).toFixed(0)} frames/s`;
const row = (name: string, xs: number[]): void =>
  console.log(`${name.padEnd(34)} median ${median(xs).toFixed(2)} ms CPU  ${rate(median(xs))}`);
console.log(
  `${FRAMES} frames (${VFS} VFs × 2 × 64 KiB, and 2 × 64 MiB plain), ${RUNS} rounds of ${CYCLES}, hardened`,
);
row('VF MSE on (whole-range map)', times.vfOn);
row('VF MSE off (whole-range unmap)', times.vfOff);
row('plain BARs, decoding on', times.plainOn);
row('plain BARs, decoding off', times.plainOff);
const onRatio = median(times.vfOn) / median(times.plainOn);
const offRatio = median(times.vfOff) / median(times.plainOff);
verdict(onRatio <= 2, `VF MSE on within 2× the plain map of the same size (${onRatio.toFixed(2)}×)`);
verdict(offRatio <= 2, `VF MSE off within 2× the plain unmap of the same size (${offRatio.toFixed(2)}×)`);

// xen, once: v1's loop, 1,024 vpci_modify_bars each overwriting the last. The loop walks the PF's
// vf_list, which pci_add_device builds with list_add (newest first), so the last call, the one that
// survives, is VF 0's.
const x = machine('xen');
const xenMs = timed(x, PF, SRIOV_CTRL, VFE | MSE);
const xenFrames = mappedFrames(x, vfFirst, FRAMES);
const vfFrames = Number(VF_BAR) / 4096;
const slot2First = 0x80_0400_0000 / 4096;
const mappedVfs: number[] = [];
for (let n = 0; n < VFS; n++) {
  const frames =
    mappedFrames(x, vfFirst + n * vfFrames, vfFrames) + mappedFrames(x, slot2First + n * vfFrames, vfFrames);
  if (frames > 0) mappedVfs.push(n);
}
console.log(
  `xen (v1, per-VF loop): ${xenMs.toFixed(2)} ms CPU, ${xenFrames} of ${FRAMES} frames mapped (VF ${mappedVfs.join(', VF ')}'s only: the last call's)`,
);
