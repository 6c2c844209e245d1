/**
 * Machine generators for the property tests: the devices a machine has (and, for the engine, a boot
 * fault), or for the firmware a guest's bus 0 with the host addresses of its BARs.
 */
import type { HostBarAddress } from '@vpci/firmware';
import type { DeviceSpec } from '@vpci/vpci';
import fc from 'fast-check';
import { bus0Sbdf, devicePlan, firmwareDevicePlan, intoSlots, traceDevicePlan } from './device.js';

/** The engine's devices: one to four. */
export const devicePlans = fc.array(devicePlan, { minLength: 1, maxLength: 4 });

/** The hardware domain's p2m write that fails while it is built (boot), in a quarter of the runs. */
export const bootFault = fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined, freq: 3 });

/** A replayed trace's devices: one to four. */
export const traceDevicePlans = fc.array(traceDevicePlan, { minLength: 1, maxLength: 4 });

/** Devices on a guest's bus 0 for hvmloader to place, with the host addresses of their memory BARs. */
export interface DeviceSet {
  devices: DeviceSpec[];
  hosts: HostBarAddress[];
  /** The guest's physical address width: 36 bits (64 GiB) runs out of high window sometimes. */
  physAddrBits: number;
}

/**
 * 1–32 devices at distinct devfns, and host addresses for their memory BARs: packed at random gaps in a
 * host window, each aligned to its size, never overlapping (as a host's firmware leaves them).
 */
export const deviceSet: fc.Arbitrary<DeviceSet> = fc
  .boolean()
  .chain((large) =>
    fc.record({
      devfns: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 32, size: 'max' }),
      devices: fc.array(firmwareDevicePlan(large), { minLength: 32, maxLength: 32 }),
      gaps: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 256, maxLength: 256 }),
      physAddrBits: fc.constantFrom(36, 39, 46),
    }),
  )
  .map(({ devfns, devices, gaps, physAddrBits }) => {
    const specs: DeviceSpec[] = [];
    const memory: { devfn: number; index: number; size: bigint }[] = [];
    devfns.forEach((devfn, d) => {
      const g = devices[d]!;
      const bars = intoSlots(g.bars);
      const first = bars.findIndex((b) => b !== null && b.type !== 'io');
      specs.push({
        sbdf: bus0Sbdf(devfn),
        vendorId: 0x1af4,
        deviceId: 0x1000 + d,
        bars,
        ...(g.rom === undefined ? {} : { rom: { size: g.rom } }),
        ...(g.msix && first >= 0
          ? { msix: { entries: 4, table: { bar: first, offset: 0 }, pba: { bar: first, offset: 0x40 } } }
          : {}),
      });
      bars.forEach((b, index) => {
        if (b !== null && b.type !== 'io') memory.push({ devfn, index, size: b.size });
      });
      if (g.rom !== undefined) memory.push({ devfn, index: 6, size: g.rom });
    });
    // Host placement: largest first from 0x100_0000_0000, skipping `gap` sizes now and then.
    memory.sort((a, b) => (a.size === b.size ? 0 : a.size > b.size ? -1 : 1));
    let cursor = 0x100_0000_0000n;
    const hosts = memory.map((m, i) => {
      cursor = ((cursor + BigInt(gaps[i % 256]!) * m.size + m.size - 1n) / m.size) * m.size;
      const addr = cursor;
      cursor += m.size;
      return { devfn: m.devfn, index: m.index, addr };
    });
    return { devices: specs, hosts, physAddrBits };
  });
