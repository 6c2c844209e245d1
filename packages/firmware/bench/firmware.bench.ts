/**
 * Firmware placement benchmark (not a test). Part 1: random device sets whose memory BARs are all
 * 2 MiB or more, at random (naturally aligned, disjoint) host addresses; each set is placed by
 * hvmloader's policy (the baseline) and by `congruent`, and every placed BAR is mapped guest → host on
 * a fresh p2m with `mapMmio`: the share of frames in order-9 (2 MiB) extents. PASS if congruent's
 * share is at least 95 %. Part 2: the same for BARs under 4 KiB: the share whose host page offset the
 * placement keeps (vPCI refuses to map the others). Part 3: the policy comparison table over seed
 * 002's layouts and the QEMU fixtures' devices (for the README). Seeded: the same numbers every run.
 *
 *   pnpm build && node --import tsx packages/firmware/bench/firmware.bench.ts
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  compareLayouts,
  formatMetricsTable,
  type HostBarAddress,
  hardwareBus,
  layoutFromInfoPci,
  type PlacementPolicyName,
  pciSetup,
} from '@vpci/firmware';
import type { BarSpec, DeviceSpec } from '@vpci/vpci';
import { prng } from '../../../bench/prng.js';
import { SEED_002_LAYOUT_1, SEED_002_LAYOUT_2 } from '../../../test/fixtures/seed-layouts.js';
import { superpageFramesOf } from '../src/layout-metrics.js';

const SETS = Number(process.env.BENCH_SETS ?? 200);
const MIB = 1n << 20n;
const GIB = 1n << 30n;

interface RandomSet {
  devices: DeviceSpec[];
  hosts: HostBarAddress[];
}

/**
 * 1–32 devices with 1–3 memory BARs each, sizes drawn from `sizes`, at random host addresses in a
 * 1 TiB host window (disjoint, aligned to their size); the guest sees them at 0 (after reset).
 */
function randomSet(random: () => number, sizes: readonly bigint[]): RandomSet {
  const count = 1 + Math.floor(random() * 32);
  const devices: DeviceSpec[] = [];
  const hosts: HostBarAddress[] = [];
  const taken: [bigint, bigint][] = [];
  const hostBase = 0x100_0000_0000n;
  const hostWindow = 1n << 40n;
  for (let d = 0; d < count; d++) {
    const bars: (BarSpec | null)[] = [];
    const n = 1 + Math.floor(random() * 3);
    for (let b = 0; b < n && bars.length < 5; b++) {
      const size = sizes[Math.floor(random() * sizes.length)]!;
      const type = size > 256n * MIB ? 'mem64' : random() < 0.5 ? 'mem32' : 'mem64';
      let addr: bigint;
      do {
        addr = hostBase + BigInt(Math.floor(random() * Number(hostWindow / size))) * size;
      } while (taken.some(([s, e]) => addr < e && s < addr + size));
      taken.push([addr, addr + size]);
      hosts.push({ devfn: d << 3, index: bars.length, addr });
      bars.push({ type, size, prefetchable: type === 'mem64' });
      if (type === 'mem64') bars.push(null);
    }
    devices.push({
      sbdf: `00:${d.toString(16).padStart(2, '0')}.0`,
      vendorId: 0x1af4,
      deviceId: 0x1000 + d,
      bars,
    });
  }
  return { devices, hosts };
}

interface Tally {
  bars: number;
  placed: number;
  frames: number;
  superpage: number;
  offsetKept: number;
  ms: number;
}

function place(set: RandomSet, policy: PlacementPolicyName, tally: Tally): void {
  const start = performance.now();
  const result = pciSetup(hardwareBus(set.devices), { policy, hostAddresses: set.hosts, physAddrBits: 46 });
  tally.ms += performance.now() - start;
  for (const bar of result.bars) {
    if (bar.kind === 'io') continue;
    tally.bars++;
    if (bar.decodes === undefined) continue;
    tally.placed++;
    if (bar.congruence !== 'none') tally.offsetKept++;
    const counted = superpageFramesOf(bar);
    if (counted === undefined) continue;
    tally.frames += counted.frames;
    tally.superpage += counted.superpage;
  }
}

const empty = (): Tally => ({ bars: 0, placed: 0, frames: 0, superpage: 0, offsetKept: 0, ms: 0 });
const pct = (part: number, whole: number): string =>
  whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(2)} %`;

function run(
  label: string,
  sizes: readonly bigint[],
  seed: number,
): Record<'hvmloader' | 'congruent', Tally> {
  const random = prng(seed);
  const tallies = { hvmloader: empty(), congruent: empty() };
  for (let i = 0; i < SETS; i++) {
    const set = randomSet(random, sizes);
    place(set, 'hvmloader', tallies.hvmloader);
    place(set, 'congruent', tallies.congruent);
  }
  console.log(`\n${label} (${SETS} random sets, seed ${seed})`);
  console.log(
    '| policy | BARs placed | frames in 2 MiB leaves | page offset kept | placement time per set |',
  );
  console.log('|---|---|---|---|---|');
  for (const [policy, t] of Object.entries(tallies)) {
    console.log(
      `| ${policy} | ${t.placed} / ${t.bars} | ${t.superpage} / ${t.frames} (${pct(t.superpage, t.frames)}) | ${pct(t.offsetKept, t.placed)} | ${(t.ms / SETS).toFixed(2)} ms |`,
    );
  }
  return tallies;
}

const large = [2n * MIB, 4n * MIB, 8n * MIB, 16n * MIB, 64n * MIB, 256n * MIB, 1n * GIB, 4n * GIB, 16n * GIB];
const part1 = run('Part 1: BARs of 2 MiB to 16 GiB', large, 20261121);
const share = part1.congruent.superpage / part1.congruent.frames;
console.log(
  `${share >= 0.95 ? 'PASS' : 'FAIL'} congruent maps ${pct(part1.congruent.superpage, part1.congruent.frames)} of frames with 2 MiB pages (target >= 95 %; hvmloader ${pct(part1.hvmloader.superpage, part1.hvmloader.frames)})`,
);

run('Part 2: BARs of 16 B to 2 KiB', [0x10n, 0x20n, 0x80n, 0x100n, 0x400n, 0x800n], 20261122);

const root = fileURLToPath(new URL('../../../', import.meta.url));
const fixtures = `${root}test/fixtures/qemu/`;
const qemu = readdirSync(fixtures)
  .filter((f) => f.endsWith('.info-pci.txt'))
  .sort()
  .map((f) =>
    layoutFromInfoPci(`QEMU ${f.replace('.info-pci.txt', '')}`, readFileSync(fixtures + f, 'utf8')),
  );
console.log('\nPart 3: policies compared (hvmloader defaults: 36-bit guest, 4 GiB of RAM, no xenpci)\n');
console.log(formatMetricsTable(compareLayouts([SEED_002_LAYOUT_1, SEED_002_LAYOUT_2, ...qemu])));
