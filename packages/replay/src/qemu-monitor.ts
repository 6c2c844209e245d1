/**
 * QEMU's monitor output (HMP), as `vpci-replay --qemu-monitor FILE` takes it: `info pci` (each
 * function's ids, whether it is a PCI-to-PCI bridge and its windows, each BAR's type, size and the
 * address QEMU maps it at, all-ones when it does not) and `info mtree` (the `msix-table` and `msix-pba`
 * subregions QEMU places in the BARs). Either or both, in any order, with or without the `(qemu)`
 * prompt lines; everything else in the file is skipped. It describes the machine at the moment the
 * commands ran, normally the end of the log.
 */
import { formatSbdf, makeSbdf } from '@vpci/vpci';

/** A BAR as `info pci` lists it. Index 6 is the expansion ROM. */
export interface MonitorBar {
  /** BAR slot, 0–5; 6 for the expansion ROM. */
  readonly index: number;
  /** I/O, 32-bit or 64-bit memory. */
  readonly kind: 'io' | 'mem32' | 'mem64';
  /** A prefetchable memory BAR. */
  readonly prefetchable: boolean;
  /** Where QEMU maps it; null when it does not (QEMU prints all-ones). */
  readonly addr: bigint | null;
  /** Size in bytes. */
  readonly size: bigint;
}

/** A bridge window as `info pci` lists it: `[base, limit]`, disabled when the limit is below the base. */
export interface MonitorWindow {
  /** First address of the window. */
  readonly base: bigint;
  /** Last address of the window. */
  readonly limit: bigint;
}

/** A function as `info pci` lists it. */
export interface MonitorDevice {
  /** The function's address, `ssss:bb:dd.f`. */
  readonly sbdf: string;
  /** Vendor ID. */
  readonly vendorId: number;
  /** Device ID. */
  readonly deviceId: number;
  /** Its bus numbers and windows, for a PCI-to-PCI bridge (header type 1). */
  readonly bridge: {
    readonly secondary: number;
    readonly subordinate: number;
    readonly io: MonitorWindow | null;
    readonly memory: MonitorWindow | null;
    readonly prefetchable: MonitorWindow | null;
  } | null;
  /** Its BARs (and ROM) as `info pci` lists them. */
  readonly bars: readonly MonitorBar[];
}

/** What the monitor output says. */
export interface QemuMonitor {
  /** The functions `info pci` lists, by address. */
  readonly devices: ReadonlyMap<string, MonitorDevice>;
  /** `[first, last]` bus addresses of each `msix-table` subregion in `info mtree` (duplicates merged). */
  readonly msixTables: readonly (readonly [bigint, bigint])[];
  /** `[first, last]` bus addresses of each `msix-pba` subregion in `info mtree` (duplicates merged). */
  readonly msixPbas: readonly (readonly [bigint, bigint])[];
}

const ALL_ONES_64 = (1n << 64n) - 1n;
const DEVICE = /^\s*Bus\s+(\d+), device\s+(\d+), function (\d+):/;
const IDS = /PCI device ([0-9a-f]{4}):([0-9a-f]{4})\s*$/;
const BAR =
  /^\s*BAR(\d+): (?:(I\/O)|(32|64) bit (prefetchable )?memory) at (0x[0-9a-f]+) \[(0x[0-9a-f]+)\]\./;
const WINDOW = /^\s*(IO|memory|prefetchable memory) range \[(0x[0-9a-f]+), (0x[0-9a-f]+)\]/;
const BUS_NUMBER = /^\s*(secondary|subordinate) bus (\d+)\./;
const MTREE = /^\s*([0-9a-f]{16})-([0-9a-f]{16}) \(prio -?\d+, [^)]*\): (msix-table|msix-pba)\s*$/;

/** Parses monitor output (see the module comment). */
export function parseQemuMonitor(text: string): QemuMonitor {
  const devices = new Map<string, MonitorDevice>();
  const tables = new Map<string, readonly [bigint, bigint]>();
  const pbas = new Map<string, readonly [bigint, bigint]>();
  type Building = {
    sbdf: string;
    vendorId: number;
    deviceId: number;
    bars: MonitorBar[];
    numbers: Map<string, number>;
    windows: Map<string, MonitorWindow | null>;
  };
  let current: Building | undefined;
  const close = (): void => {
    if (current === undefined) return;
    const bridged = current.numbers.has('secondary');
    devices.set(current.sbdf, {
      sbdf: current.sbdf,
      vendorId: current.vendorId,
      deviceId: current.deviceId,
      bridge: bridged
        ? {
            secondary: current.numbers.get('secondary')!,
            subordinate: current.numbers.get('subordinate') ?? current.numbers.get('secondary')!,
            io: current.windows.get('IO') ?? null,
            memory: current.windows.get('memory') ?? null,
            prefetchable: current.windows.get('prefetchable memory') ?? null,
          }
        : null,
      bars: current.bars,
    });
    current = undefined;
  };
  for (const line of text.split(/\r?\n/)) {
    const mtree = MTREE.exec(line);
    if (mtree !== null) {
      const range = [BigInt(`0x${mtree[1]}`), BigInt(`0x${mtree[2]}`)] as const;
      (mtree[3] === 'msix-table' ? tables : pbas).set(`${range[0]}-${range[1]}`, range);
      continue;
    }
    const device = DEVICE.exec(line);
    if (device !== null) {
      close();
      current = {
        sbdf: formatSbdf(makeSbdf(0, Number(device[1]), Number(device[2]), Number(device[3]))),
        vendorId: -1,
        deviceId: -1,
        bars: [],
        numbers: new Map(),
        windows: new Map(),
      };
      continue;
    }
    if (current === undefined) continue;
    if (/^\S/.test(line)) {
      // Unindented text (a prompt, another command's output) ends the device.
      close();
      continue;
    }
    const ids = IDS.exec(line);
    if (ids !== null && current.vendorId < 0) {
      current.vendorId = Number.parseInt(ids[1]!, 16);
      current.deviceId = Number.parseInt(ids[2]!, 16);
      continue;
    }
    const number = BUS_NUMBER.exec(line);
    if (number !== null) {
      current.numbers.set(number[1]!, Number(number[2]));
      continue;
    }
    const window = WINDOW.exec(line);
    if (window !== null) {
      current.windows.set(window[1]!, { base: BigInt(window[2]!), limit: BigInt(window[3]!) });
      continue;
    }
    const bar = BAR.exec(line);
    if (bar !== null) {
      const addr = BigInt(bar[5]!);
      const unmapped = addr === ALL_ONES_64 || addr === 0xffff_ffffn;
      // QEMU prints `[addr + size - 1]`, wrapping past 2^64 for an unmapped BAR.
      const size = (BigInt(bar[6]!) - addr + 1n) & ALL_ONES_64;
      current.bars.push({
        index: Number(bar[1]),
        kind: bar[2] !== undefined ? 'io' : bar[3] === '64' ? 'mem64' : 'mem32',
        prefetchable: bar[4] !== undefined,
        addr: unmapped ? null : addr,
        size,
      });
    }
  }
  close();
  const byStart = (a: readonly [bigint, bigint], b: readonly [bigint, bigint]): number =>
    a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
  return {
    devices,
    msixTables: [...tables.values()].sort(byStart),
    msixPbas: [...pbas.values()].sort(byStart),
  };
}

/**
 * The BARs QEMU reports mapped in `info pci`: `sbdf → index → address and kind`, for memory and I/O
 * BARs at a real address.
 */
export function parseInfoPci(text: string): Map<string, Map<number, { addr: bigint; kind: 'io' | 'mem' }>> {
  const out = new Map<string, Map<number, { addr: bigint; kind: 'io' | 'mem' }>>();
  for (const [sbdf, device] of parseQemuMonitor(text).devices) {
    const bars = new Map<number, { addr: bigint; kind: 'io' | 'mem' }>();
    for (const bar of device.bars) {
      if (bar.addr !== null) bars.set(bar.index, { addr: bar.addr, kind: bar.kind === 'io' ? 'io' : 'mem' });
    }
    out.set(sbdf, bars);
  }
  return out;
}
