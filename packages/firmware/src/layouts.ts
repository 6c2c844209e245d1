/**
 * Device layouts to compare placement policies on, read from QEMU's `info pci` (the firmware's
 * placement there taken as the host's). Every device is put on bus 0, where hvmloader looks.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { type BarSpec, type DeviceSpec, formatSbdf, makeSbdf } from '@vpci/vpci';

/** A named set of devices (with host addresses in their BARs). */
export interface DeviceLayout {
  /** The layout's name, as tables print it. */
  readonly name: string;
  /** The devices, with their host addresses in their BARs. */
  readonly devices: readonly DeviceSpec[];
}

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
