/**
 * Generators for the firmware's property tests (test/firmware.property.test.ts): BAR slots for
 * hvmloader's placement, the devices on a guest's bus 0, and the host addresses of their BARs. The
 * engine's and the traces' generators are @vpci/fuzz's.
 */
import type { HostBarAddress } from '@vpci/firmware';
import { bus0Sbdf, pow2 } from '@vpci/fuzz';
import type { BarSpec, DeviceSpec } from '@vpci/vpci';
import fc from 'fast-check';

/**
 * One BAR slot's contents for the firmware's placement, its address not set yet (a 64-bit BAR also
 * takes the next slot). Two profiles: mostly registers (small BARs, the common case),
 * or apertures (`large`), which overflow the low hole and, with a 36-bit guest, the high window.
 */
export function firmwareBar(large: boolean): fc.Arbitrary<BarSpec> {
  return fc.oneof(
    {
      weight: 3,
      arbitrary: pow2(large ? 22 : 4, large ? 28 : 16).map((size) => ({ type: 'mem32' as const, size })),
    },
    { weight: 1, arbitrary: pow2(20, 28).map((size) => ({ type: 'mem32' as const, size })) },
    {
      weight: 3,
      arbitrary: pow2(large ? 24 : 4, 34).map((size) => ({
        type: 'mem64' as const,
        size,
        prefetchable: true,
      })),
    },
    { weight: 2, arbitrary: pow2(2, 8).map((size) => ({ type: 'io' as const, size })) },
  );
}

/** A device on hvmloader's bus 0, before its slots are laid out (`intoSlots`). */
export interface FirmwareDevicePlan {
  bars: BarSpec[];
  rom: bigint | undefined;
  msix: boolean;
}

export function firmwareDevicePlan(large: boolean): fc.Arbitrary<FirmwareDevicePlan> {
  return fc.record({
    bars: fc.array(firmwareBar(large), { minLength: 1, maxLength: 6, size: 'max' }),
    rom: fc.option(pow2(11, 20), { nil: undefined }),
    msix: fc.boolean(),
  });
}

/** Lays BARs into slots (a 64-bit one takes two), drops what does not fit in six. */
export function intoSlots(bars: readonly BarSpec[]): (BarSpec | null)[] {
  const out: (BarSpec | null)[] = [];
  for (const bar of bars) {
    if (bar.type === 'mem64') {
      if (out.length > 4) continue;
      out.push(bar, null);
    } else if (out.length < 6) out.push(bar);
  }
  return out;
}

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
