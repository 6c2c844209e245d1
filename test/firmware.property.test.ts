/**
 * Properties of the firmware placement (packages/firmware), seeded and bounded: random sets
 * of 1–32 devices on bus 0 with BARs from 16 bytes to 16 GiB, ROMs, I/O BARs, with and without MSI-X.
 * Every policy places every BAR that fits, naturally aligned, inside its window, without overlap;
 * `pageAligned` never puts two devices in one page; `seabios` never aligns a memory BAR below 4 KiB;
 * `congruent` keeps every host page offset. Invariants 36–38 (docs/architecture.md) and the
 * MTRR cover against a brute-force model. Bare hardware and a Machine give the same run.
 */
import {
  type BarPlacement,
  guestMtrrState,
  hardwareBus,
  mtrrCover,
  type PciSetupResult,
  PLACEMENT_POLICIES,
  pciSetup,
  placeBars,
} from '@vpci/firmware';
import { bus0Sbdf, pow2 } from '@vpci/fuzz';
import { type DeviceSpec, Machine } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DeviceSet, deviceSet } from './arbitraries/firmware.js';
import { runs } from './support/fast-check-setup.js';

const PAGE = 0x1000n;
/** The largest low hole hvmloader makes: [0x80000000, 0xfc000000). */
const MAX_HOLE = 0xfc00_0000n - 0x8000_0000n;

const memoryBars = (r: PciSetupResult): BarPlacement[] => r.bars.filter((b) => b.kind !== 'io');

/** An upper bound of what any policy needs below 4 GiB: every non-64-bit memory BAR, 4 KiB at least. */
function lowDemandBound(devices: readonly DeviceSpec[]): bigint {
  let sum = 0n;
  for (const d of devices) {
    for (const b of d.bars ?? []) if (b && b.type === 'mem32') sum += b.size < PAGE ? PAGE : b.size;
    if (d.rom) sum += d.rom.size < PAGE ? PAGE : d.rom.size;
  }
  return sum;
}

/** The 64-bit memory BARs' sizes (4 KiB at least), and the largest. */
function highDemandBound(devices: readonly DeviceSpec[]): { sum: bigint; largest: bigint } {
  let sum = 0n;
  let largest = 0n;
  for (const d of devices)
    for (const b of d.bars ?? [])
      if (b && b.type === 'mem64') {
        const size = b.size < PAGE ? PAGE : b.size;
        sum += size;
        if (size > largest) largest = size;
      }
  return { sum, largest };
}

function ioDemand(devices: readonly DeviceSpec[]): bigint {
  let sum = 0n;
  for (const d of devices) for (const b of d.bars ?? []) if (b && b.type === 'io') sum += b.size;
  return sum;
}

function run(set: DeviceSet, policy: (typeof PLACEMENT_POLICIES)[number], extra = {}): PciSetupResult {
  return pciSetup(hardwareBus(set.devices), {
    policy,
    hostAddresses: set.hosts,
    physAddrBits: set.physAddrBits,
    ...extra,
  });
}

describe('every policy on random device sets', () => {
  it.each(PLACEMENT_POLICIES)(
    '%s: aligned, inside its window, no overlap, nothing that fits left out',
    (policy) => {
      fc.assert(
        fc.property(deviceSet, (set) => {
          const r = run(set, policy);
          const highBase =
            BigInt(r.ram.highMemPgend) << 12n > 1n << 32n ? BigInt(r.ram.highMemPgend) << 12n : 1n << 32n;
          const spans: [bigint, bigint, string][] = [];
          for (const bar of r.bars) {
            if (bar.decodes === undefined) continue;
            const a = bar.decodes;
            expect(a % bar.size, `${bar.sbdf} BAR${bar.index} aligned`).toBe(0n);
            if (bar.window === 'low') {
              expect(a >= r.pciMemStart && a + bar.size <= r.pciMemEnd).toBe(true);
            } else if (bar.window === 'high') {
              expect(a >= highBase && a + bar.size <= 1n << BigInt(set.physAddrBits)).toBe(true);
              expect(a >= r.pciHiMemStart && a + bar.size <= r.pciHiMemEnd).toBe(true);
            } else if (bar.window === 'io') {
              expect(a >= 0xc000n && a + bar.size <= 0x10000n).toBe(true);
            }
            spans.push([a + (bar.window === 'io' ? 1n << 60n : 0n), bar.size, `${bar.sbdf}/${bar.index}`]);
          }
          spans.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
          for (let i = 1; i < spans.length; i++) {
            const [prev, size, name] = spans[i - 1]!;
            expect(prev + size <= spans[i]![0], `${name} overlaps ${spans[i]![2]}`).toBe(true);
          }
          // Everything placed when it fits: what must stay below 4 GiB fits the largest hole, and every
          // 64-bit BAR fits the high window from its first aligned start (descending powers of two pack).
          const lost = r.bars.filter((b) => b.decodes === undefined);
          const high = highDemandBound(set.devices);
          const align = high.largest === 0n ? 1n : high.largest;
          const highStart = ((highBase + align - 1n) / align) * align;
          if (
            lowDemandBound(set.devices) + 64n * PAGE <= MAX_HOLE &&
            highStart + high.sum <= 1n << BigInt(set.physAddrBits)
          )
            expect(lost.filter((b) => b.kind !== 'io').map((b) => `${b.sbdf}/${b.index}`)).toEqual([]);
          if (ioDemand(set.devices) <= 0x4000n) expect(lost.filter((b) => b.kind === 'io')).toEqual([]);
        }),
        runs(60),
      );
    },
  );

  it('pageAligned never puts BARs of two devices in one page', () => {
    fc.assert(
      fc.property(deviceSet, (set) => {
        const owner = new Map<bigint, number>();
        for (const bar of memoryBars(run(set, 'pageAligned'))) {
          if (bar.decodes === undefined) continue;
          // BARs never overlap (the property above), so only a BAR's first and last page can be shared.
          for (const page of new Set([bar.decodes / PAGE, (bar.decodes + bar.size - 1n) / PAGE])) {
            const other = owner.get(page);
            expect(other === undefined || other === bar.devfn, `page ${page.toString(16)}`).toBe(true);
            owner.set(page, bar.devfn);
          }
        }
      }),
      runs(60),
    );
  });

  it('seabios never aligns a memory BAR below 4 KiB, nor lets two share a page', () => {
    fc.assert(
      fc.property(deviceSet, (set) => {
        const pages = new Set<bigint>();
        for (const bar of memoryBars(run(set, 'seabios'))) {
          if (bar.decodes === undefined) continue;
          expect(bar.decodes % (bar.size < PAGE ? PAGE : bar.size)).toBe(0n);
          if (bar.size < PAGE) {
            expect(pages.has(bar.decodes / PAGE)).toBe(false);
            pages.add(bar.decodes / PAGE);
          }
        }
      }),
      runs(60),
    );
  });

  it('congruent keeps every host page offset, and 2 MiB congruence under its superpage plan', () => {
    fc.assert(
      fc.property(deviceSet, (set) => {
        const r = run(set, 'congruent');
        for (const bar of memoryBars(r)) {
          if (bar.decodes === undefined) continue;
          expect(bar.hostAddr).toBeDefined();
          expect(bar.congruence, `${bar.sbdf}/${bar.index}`).not.toBe('none');
          if (bar.size >= 1n << 21n) expect(bar.congruence).toBe('superpage'); // natural alignment
        }
      }),
      runs(60),
    );
  });
});

describe('invariants 36–38 (docs/architecture.md)', () => {
  it('36: low BARs are aligned, disjoint, inside the hole and clear of every reserved region', () => {
    const reservedArb = fc
      .uniqueArray(fc.integer({ min: 0, max: 0xbfff }), { minLength: 1, maxLength: 6 })
      .map((pages) =>
        pages
          .sort((a, b) => a - b)
          .map((p) => ({ addr: 0xf000_0000n + BigInt(p) * PAGE, size: PAGE * BigInt(1 + (p % 3)) }))
          .filter((r, i, all) => i === 0 || all[i - 1]!.addr + all[i - 1]!.size <= r.addr),
      );
    fc.assert(
      fc.property(deviceSet, reservedArb, fc.constantFrom(...PLACEMENT_POLICIES), (set, reserved, policy) => {
        const r = run(set, policy, { reserved });
        for (const bar of r.bars) {
          if (bar.window !== 'low' || bar.decodes === undefined) continue;
          for (const region of reserved) {
            const clear = bar.decodes + bar.size <= region.addr || region.addr + region.size <= bar.decodes;
            expect(clear, `${bar.sbdf}/${bar.index} at ${bar.decodes.toString(16)}`).toBe(true);
          }
        }
      }),
      runs(60),
    );
  });

  it('37: the UC ranges are disjoint aligned powers of two covering the window exactly (model check)', () => {
    const window = fc
      .tuple(fc.integer({ min: 1, max: 2 ** 28 }), fc.integer({ min: 0, max: 2 ** 28 }))
      .map(([s, n]) => [BigInt(s) * PAGE, BigInt(s + n) * PAGE] as const);
    fc.assert(
      fc.property(window, fc.integer({ min: 1, max: 8 }), ([start, end], budget) => {
        const { blocks, coveredTo } = mtrrCover(start, end, budget);
        let at = start;
        for (const { base, size } of blocks) {
          expect(base).toBe(at); // contiguous, hence disjoint
          expect(size & (size - 1n)).toBe(0n);
          expect(size >= PAGE && base % size === 0n).toBe(true);
          at = base + size;
        }
        expect(coveredTo).toBe(at);
        // Model: the fewest aligned blocks tiling [start, end) is what greedy takes; when they fit the
        // budget the window is covered exactly, else the budget is used up.
        let need = 0;
        for (let b = start; b < end; need++) {
          let size = PAGE;
          while (b % (size * 2n) === 0n && b + size * 2n <= end) size *= 2n;
          b += size;
        }
        if (need <= budget) expect([coveredTo, blocks.length]).toEqual([end, need]);
        else expect(blocks.length).toBe(budget);
      }),
    );
  });

  it('38: a fitting 32-bit xenpci BAR ends at 0xfc000000 and no UC range meets it', () => {
    fc.assert(
      fc.property(deviceSet, pow2(12, 26), fc.constantFrom(...PLACEMENT_POLICIES), (set, size, policy) => {
        const taken = new Set(set.devices.map((d) => String(d.sbdf)));
        const free = [...Array(256).keys()].find((f) => !taken.has(bus0Sbdf(f)));
        if (free === undefined) return;
        const xenpci: DeviceSpec = {
          sbdf: bus0Sbdf(free),
          vendorId: 0x5853,
          deviceId: 0x0001,
          bars: [
            { type: 'io', size: 0x100n },
            { type: 'mem32', size, prefetchable: true },
          ],
        };
        const r = run({ ...set, devices: [...set.devices, xenpci] }, policy, { xenpciBarUc: false });
        const bar = r.bars.find((b) => b.devfn === free && b.index === 1)!;
        expect(bar).toMatchObject({ window: 'xenpci', addr: 0xfc00_0000n - size });
        expect(r.pciMemEnd).toBe(bar.addr);
        for (const range of guestMtrrState(r, { physAddrBits: set.physAddrBits }).variableRanges) {
          if (!range.valid) continue;
          const rangeEnd = range.base + (range.mask & -range.mask);
          expect(rangeEnd <= bar.addr! || range.base >= bar.addr! + size).toBe(true);
        }
      }),
      runs(40),
    );
  });
});

describe('a Machine and bare hardware', () => {
  it('give the same placement and the same accesses (dom0 playing the firmware)', () => {
    const small = deviceSet.filter((s) => s.devices.length <= 6);
    fc.assert(
      fc.property(small, fc.constantFrom(...PLACEMENT_POLICIES), (set, policy) => {
        const machine = new Machine();
        for (const spec of set.devices) machine.addDevice(spec);
        machine.boot();
        const options = { policy, hostAddresses: set.hosts, physAddrBits: set.physAddrBits };
        const onMachine = placeBars(machine, machine.hardwareDomain.vcpus[0]!, options);
        const bare = pciSetup(hardwareBus(set.devices), options);
        expect(onMachine.bars).toEqual(bare.bars);
        const strip = (r: PciSetupResult) => r.accesses.map((a) => [a.op, a.devfn, a.reg, a.size, a.value]);
        expect(strip(onMachine)).toEqual(strip(bare));
      }),
      runs(15),
    );
  });
});
