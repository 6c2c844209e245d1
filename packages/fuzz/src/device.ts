/**
 * The engine's devices as generated for machine-level properties (BARs, MSI-X, ROM, decoding,
 * owner) with the host addresses their firmware left, and the addresses devices are given.
 */
import type { BarSpec, DeviceSpec } from '@vpci/vpci';
import fc from 'fast-check';
import { barSizeLog2 } from './bar.js';

const hex2 = (value: number): string => value.toString(16).padStart(2, '0');

/** The host address of device `index` of a generated machine: bus 1, function 0 (`0000:01:<index>.0`). */
export const hostSbdf = (index: number): string => `0000:01:${hex2(index)}.0`;

/** A bus-0 address from a devfn (device << 3 | function), as on hvmloader's bus or a guest's: `00:dd.f`. */
export const bus0Sbdf = (devfn: number): string => `00:${hex2(devfn >> 3)}.${devfn & 7}`;

/** The ROM's slot in an engine device's BARs. */
export const ROM_SLOT = 6;
/** Where the MSI-X capability is in the devices the specs build (the engine's hardware puts it there). */
export const MSIX_CAP = 0x40;

/** One memory BAR of a `DevicePlan`. */
export interface BarPlan {
  /** The BAR's slot, 0, 2 or 4 (a 64-bit BAR takes the next slot too). */
  slot: number;
  /** 32- or 64-bit memory BAR (above 16 MiB the plans make it 64-bit). */
  type: 'mem32' | 'mem64';
  /** log2 of the size in bytes. */
  sizeLog2: number;
}

/** An engine device: its memory BARs, MSI-X, ROM, whether decoding is on, and who owns it. */
export interface DevicePlan {
  /** One to three memory BARs. */
  bars: BarPlan[];
  /** MSI-X in BAR slot `bar`; the PBA right after the table, or at the end of the BAR (`pbaAtEnd`). */
  msix: { bar: number; entries: number; offsetFraction: number; pbaAtEnd: boolean } | undefined;
  /** log2 of the ROM's size, if it has one. */
  rom: number | undefined;
  /** The firmware left memory decoding on: the hardware domain maps it at boot (`apply_map`). */
  decoding: boolean;
  /** Who owns it after set-up: 0 the hardware domain, 1 or 2 a guest. */
  owner: number;
}

/** One engine device: one to three BARs of any size, sometimes MSI-X, a ROM, decoding, an owner. */
export const devicePlan: fc.Arbitrary<DevicePlan> = fc
  .record({
    sizes: fc.array(barSizeLog2, { minLength: 1, maxLength: 3 }),
    msix: fc.option(
      fc.record({
        entries: fc.integer({ min: 1, max: 64 }),
        offsetFraction: fc.double({ min: 0, max: 1, noNaN: true }),
        pbaAtEnd: fc.boolean(),
      }),
      {
        nil: undefined,
      },
    ),
    rom: fc.option(fc.integer({ min: 11, max: 16 }), { nil: undefined, freq: 2 }),
    decoding: fc.oneof(
      { weight: 3, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
    owner: fc.integer({ min: 0, max: 2 }),
  })
  .map(({ sizes, msix, rom, decoding, owner }) => {
    // 64-bit BARs take two slots: slots 0, 2, 4.
    const bars = sizes.map((log2, i) => ({
      slot: 2 * i,
      type: log2 > 24 ? 'mem64' : ('mem32' as 'mem32' | 'mem64'),
      sizeLog2: log2,
    }));
    const fits =
      msix === undefined ? undefined : bars.find((bar) => 2 ** bar.sizeLog2 >= 16 * msix.entries + 8 * 2);
    return {
      bars,
      msix: fits === undefined || msix === undefined ? undefined : { bar: fits.slot, ...msix },
      rom,
      decoding,
      owner,
    };
  });

/**
 * The engine's devices of `plans`, at `hostSbdf(index)`. Host addresses: BARs and ROMs packed by
 * natural alignment, largest first, so small ones share pages. ROMs are 32-bit, in the low window.
 */
export function deviceSpecs(plans: DevicePlan[]): DeviceSpec[] {
  let low = 0xc000_0000n;
  let high = 0x40_0000_0000n;
  const addrs = new Map<string, bigint>();
  const all = plans.flatMap((plan, d) => [
    ...plan.bars.map((bar) => ({ d, slot: bar.slot, log2: bar.sizeLog2, high: bar.type === 'mem64' })),
    ...(plan.rom === undefined ? [] : [{ d, slot: ROM_SLOT, log2: plan.rom, high: false }]),
  ]);
  all.sort((a, b) => b.log2 - a.log2);
  for (const { d, slot, log2, high: isHigh } of all) {
    const size = 1n << BigInt(log2);
    if (isHigh) {
      high = (high + size - 1n) & ~(size - 1n);
      addrs.set(`${d}:${slot}`, high);
      high += size;
    } else {
      low = (low + size - 1n) & ~(size - 1n);
      addrs.set(`${d}:${slot}`, low);
      low += size;
    }
  }
  return plans.map((plan, d) => {
    const bars: BarSpec[] = [];
    for (const bar of plan.bars) {
      bars[bar.slot] = {
        type: bar.type,
        size: 1n << BigInt(bar.sizeLog2),
        addr: addrs.get(`${d}:${bar.slot}`)!,
      };
    }
    const msix = plan.msix;
    let msixSpec: DeviceSpec['msix'];
    if (msix !== undefined) {
      const size = 2 ** plan.bars.find((b) => b.slot === msix.bar)!.sizeLog2;
      const room = Math.min(size, 2 ** 20) - 16 * msix.entries - 8;
      const table = Math.floor((room * msix.offsetFraction) / 8) * 8;
      msixSpec = {
        entries: msix.entries,
        table: { bar: msix.bar, offset: table },
        pba: {
          bar: msix.bar,
          offset: msix.pbaAtEnd ? Math.min(size, 2 ** 20) - 8 : table + 16 * msix.entries,
        },
      };
    }
    return {
      sbdf: hostSbdf(d),
      bars,
      ...(plan.decoding ? { command: 0x0006 } : {}),
      ...(plan.rom === undefined
        ? {}
        : { rom: { size: 1n << BigInt(plan.rom), addr: addrs.get(`${d}:${ROM_SLOT}`)! } }),
      ...(msixSpec ? { msix: msixSpec } : {}),
    };
  });
}

/** The engine's devices: one to four. */
export const devicePlans: fc.Arbitrary<DevicePlan[]> = fc.array(devicePlan, { minLength: 1, maxLength: 4 });

/** The hardware domain's p2m write that fails while it is built (boot), in a quarter of the runs. */
export const bootFault: fc.Arbitrary<number | undefined> = fc.option(fc.integer({ min: 1, max: 6 }), {
  nil: undefined,
  freq: 3,
});
