/**
 * Device layouts to compare placement policies on: seed 002's two real layouts (host addresses as the
 * thread gives them) and layouts read from QEMU's `info pci` (the firmware's placement there taken as
 * the host's). Every device is put on bus 0, where hvmloader looks.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { type BarSpec, type DeviceSpec, formatSbdf, makeSbdf } from '@vpci/vpci';

/** A named set of devices (with host addresses in their BARs). */
export interface DeviceLayout {
  readonly name: string;
  readonly devices: readonly DeviceSpec[];
}

/**
 * Seed 002, example 1: one endpoint whose BAR0–2 (256 B, 512 B, 1 KiB) share one host page, with its
 * MSI-X table and PBA in BAR0 at 0x80 / 0x90.
 */
export const SEED_002_LAYOUT_1: DeviceLayout = Object.freeze<DeviceLayout>({
  name: 'seed 002 layout 1',
  devices: Object.freeze([
    {
      sbdf: '00:01.0',
      vendorId: 0x104c,
      deviceId: 0xb00d,
      bars: [
        { type: 'mem32', size: 0x100n, addr: 0xd192_4600n },
        { type: 'mem32', size: 0x200n, addr: 0xd192_4400n },
        { type: 'mem32', size: 0x400n, addr: 0xd192_4000n },
        { type: 'mem32', size: 0x4000n, addr: 0xd192_0000n },
        { type: 'mem32', size: 0x2_0000n, addr: 0xd190_0000n },
        { type: 'mem32', size: 0x10_0000n, addr: 0xd180_0000n },
      ],
      msix: { entries: 2, table: { bar: 0, offset: 0x80 }, pba: { bar: 0, offset: 0x90 } },
    },
  ]),
});

/**
 * Seed 002, example 2: four pci-testdev functions whose 32-byte 64-bit BARs share one host page
 * (XSA-461's hazard), the last with a 256 MiB BAR instead.
 */
export const SEED_002_LAYOUT_2: DeviceLayout = Object.freeze<DeviceLayout>({
  name: 'seed 002 layout 2',
  devices: Object.freeze(
    [0, 1, 2, 3].map(
      (i): DeviceSpec => ({
        sbdf: `00:0${i + 1}.0`,
        vendorId: 0x1b36,
        deviceId: 0x0005,
        bars: [
          { type: 'mem32', size: 0x1000n, addr: 0xfe80_0000n + BigInt(i) * 0x1000n },
          { type: 'io', size: 0x100n, addr: 0xc000n + BigInt(i) * 0x100n },
          i < 3
            ? { type: 'mem64', size: 0x20n, addr: 0x70_5000_0000n + BigInt(i) * 0x20n, prefetchable: true }
            : { type: 'mem64', size: 0x1000_0000n, addr: 0x70_4000_0000n, prefetchable: true },
        ],
      }),
    ),
  ),
});

/**
 * The functions of QEMU's `info pci` text that have BARs at real addresses, as devices on bus 0 at
 * those (host) addresses: bus 0 functions keep their slot, the others take free slots in order.
 */
export function layoutFromInfoPci(name: string, text: string): DeviceLayout {
  if (typeof text !== 'string') throw new InvalidArgumentError('text', text, "QEMU's `info pci` output");
  interface Found {
    bus: number;
    dev: number;
    fn: number;
    vendorId: number;
    deviceId: number;
    bars: (BarSpec | null)[];
  }
  const found: Found[] = [];
  let current: Found | undefined;
  for (const line of text.split(/\r?\n/)) {
    const head = /^\s*Bus\s+(\d+), device\s+(\d+), function (\d+):/.exec(line);
    if (head !== null) {
      current = {
        bus: Number(head[1]),
        dev: Number(head[2]),
        fn: Number(head[3]),
        vendorId: 0,
        deviceId: 0,
        bars: [],
      };
      found.push(current);
      continue;
    }
    if (current === undefined) continue;
    const ids = /PCI device ([0-9a-f]{4}):([0-9a-f]{4})/.exec(line);
    if (ids !== null && current.vendorId === 0) {
      current.vendorId = Number.parseInt(ids[1]!, 16);
      current.deviceId = Number.parseInt(ids[2]!, 16);
    }
    const bar =
      /^\s*BAR(\d): (?:(I\/O)|(64|32) bit (prefetchable )?memory) at (0x[0-9a-f]+) \[(0x[0-9a-f]+)\]/.exec(
        line,
      );
    if (bar === null) continue;
    const index = Number(bar[1]);
    const addr = BigInt(bar[5]!);
    const size = BigInt(bar[6]!) - addr + 1n;
    if (index > 5 || size <= 0n || (size & (size - 1n)) !== 0n) continue; // not mapped by the firmware
    while (current.bars.length < index) current.bars.push(null);
    current.bars[index] =
      bar[2] !== undefined
        ? { type: 'io', size, addr }
        : { type: bar[3] === '64' ? 'mem64' : 'mem32', size, addr, prefetchable: bar[4] !== undefined };
    if (bar[3] === '64') current.bars.push(null); // its upper half
  }
  const withBars = found.filter((f) => f.bars.some((b) => b !== null));
  const used = new Set(withBars.filter((f) => f.bus === 0).map((f) => f.dev * 8 + f.fn));
  let free = 0;
  const devices = withBars.map((f): DeviceSpec => {
    let devfn = f.dev * 8 + f.fn;
    if (f.bus !== 0) {
      while (used.has(free)) free += 8;
      devfn = free;
      used.add(devfn);
    }
    return {
      sbdf: formatSbdf(makeSbdf(0, 0, devfn >> 3, devfn & 7)),
      vendorId: f.vendorId,
      deviceId: f.deviceId,
      bars: f.bars.slice(0, 6),
    };
  });
  return { name, devices };
}
