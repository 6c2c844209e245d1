/**
 * A device for the replay, rebuilt from what the log showed of it (`LoggedDevice`): its initial
 * config space and its BAR and ROM sizes. Bytes the log never showed are filled, in this order, from
 * a config-space dump (`lspci -xxx`, `--image`: any byte) and from QEMU's monitor output (`info pci`:
 * ids, header type, BAR types and sizes; `info mtree`: the MSI-X table and PBA), and otherwise stay
 * unknown, each one that matters said so:
 *
 * - ids unknown: the device reads as 0000:0000;
 * - header type unknown: only BAR0–1, which both layouts share, are rebuilt, and no ROM (a bridge's
 *   window registers are never taken for BARs);
 * - a BAR's size unknown: the BAR is left out;
 * - the MSI-X table (or the entry count) unknown: the capability is taken out of the list, so no hole
 *   is invented; the PBA unknown: it is put with the table, so it makes no hole of its own.
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_TYPE,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS1,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
} from '@vpci/vpci';
import type { LoggedDevice } from './qemu-device.js';
import type { MonitorDevice, QemuMonitor } from './qemu-monitor.js';

/** Where a byte the log did not show came from. */
export type FillSource = 'image' | 'monitor';

/** The rebuilt device. */
export interface RebuiltDevice {
  /** The initial config space (256 or 4096 bytes). */
  readonly image: Uint8Array;
  /** BAR sizes by slot (a 64-bit BAR's in its low slot; null: left out) and the ROM's. */
  readonly sizes: { readonly bars: (bigint | null)[]; readonly rom: bigint | undefined };
  readonly headerType: 0 | 1 | null;
  /** What was filled from where. */
  readonly filled: { readonly what: string; readonly from: FillSource }[];
  /** What matters and stays unknown, and what the replay does about it. */
  readonly unknown: { readonly what: string; readonly effect: string }[];
}

/** What else there is to rebuild a device from. */
export interface RebuildSources {
  /** A config-space dump of it. */
  readonly image?: Uint8Array;
  /** Its `info pci` entry. */
  readonly monitor?: MonitorDevice;
  /** The `info mtree` MSI-X subregions. */
  readonly mtree?: Pick<QemuMonitor, 'msixTables' | 'msixPbas'>;
  /** Where QEMU had each BAR mapped when the log began (a BAR whose first decision is an unmap). */
  readonly mappedAtStart?: ReadonlyMap<number, bigint>;
  /** BAR numbers (6: the ROM) QEMU made a mapping decision for. */
  readonly decided?: ReadonlySet<number>;
}

/** Rebuilds `device` (see the module comment). */
export function rebuildDevice(device: LoggedDevice, sources: RebuildSources = {}): RebuiltDevice {
  const length =
    device.extended || sources.image?.length === PCI_CFG_SPACE_EXP_SIZE
      ? PCI_CFG_SPACE_EXP_SIZE
      : PCI_CFG_SPACE_SIZE;
  const bytes = new Int16Array(length).fill(-1);
  // Registers software changes keep only their initial value; read-only ones any read shows.
  for (let reg = 0; reg < length; reg++) bytes[reg] = device.initial[reg]!;
  const readOnly = (reg: number): boolean =>
    !(reg >= PCI_COMMAND && reg < PCI_STATUS) && !(reg >= PCI_BASE_ADDRESS_0 && reg < 0x40);
  for (let reg = 0; reg < length; reg++)
    if (bytes[reg] === -1 && readOnly(reg)) bytes[reg] = device.known(reg);
  // The image stands in for every byte the log never showed (a capability list nobody read, too).
  const fromTheImage = new Uint8Array(length);
  const dump = sources.image ?? new Uint8Array(0);
  for (let reg = 0; reg < Math.min(length, dump.length); reg++) {
    if (bytes[reg] !== -1) continue;
    bytes[reg] = dump[reg]!;
    fromTheImage[reg] = 1;
  }

  const filled: { what: string; from: FillSource }[] = [];
  const unknown: { what: string; effect: string }[] = [];
  const isKnown = (reg: number, size: number): boolean => {
    for (let i = 0; i < size; i++) if (bytes[reg + i]! < 0) return false;
    return true;
  };
  const get = (reg: number, size: number): number => {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + Math.max(0, bytes[reg + i]!);
    return value;
  };
  const set = (reg: number, size: number, value: number): void => {
    for (let i = 0; i < size; i++) bytes[reg + i] = (value >>> (8 * i)) & 0xff;
  };
  /** Whether `[reg, reg + size)` is known (from the log or the image), noting what the image gave. */
  const fromImage = (what: string, reg: number, size: number): boolean => {
    if (fromTheImage.subarray(reg, reg + size).includes(1) && !filled.some((f) => f.what === what))
      filled.push({ what, from: 'image' });
    return isKnown(reg, size);
  };

  // Ids.
  const monitor = sources.monitor;
  if (!fromImage('ids', 0, 4)) {
    if (monitor !== undefined && monitor.vendorId >= 0) {
      set(0, 2, monitor.vendorId);
      set(2, 2, monitor.deviceId);
      filled.push({ what: 'ids', from: 'monitor' });
    } else {
      unknown.push({ what: 'ids', effect: 'read as 0000:0000' });
    }
  }

  // Header type.
  if (!fromImage('header type', PCI_HEADER_TYPE, 1) && monitor !== undefined) {
    set(PCI_HEADER_TYPE, 1, monitor.bridge === null ? 0 : 1);
    filled.push({ what: 'header type', from: 'monitor' });
  }
  const type = isKnown(PCI_HEADER_TYPE, 1) ? bytes[PCI_HEADER_TYPE]! & 0x7f : -1;
  const headerType = type === 0 || type === 1 ? type : null;
  if (headerType === null) {
    unknown.push({ what: 'header type', effect: 'only BAR0–1 are rebuilt, and no ROM' });
    set(PCI_HEADER_TYPE, 1, 0);
  }

  // The command register at the start.
  if (!fromImage('command register', PCI_COMMAND, 2)) {
    unknown.push({ what: 'command register', effect: 'taken as 0 at the start (decoding off)' });
  }
  const decodingAtStart = (get(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) !== 0;

  // BARs.
  const slots = headerType === 0 ? 6 : 2;
  const bars: (bigint | null)[] = [];
  for (let i = 0; i < slots; i++) {
    const reg = PCI_BASE_ADDRESS_0 + 4 * i;
    const listed = monitor?.bars.find((b) => b.index === i);
    // A BAR's type bits are read-only: any read shows them.
    if (!isKnown(reg, 1) && device.known(reg) >= 0) bytes[reg] = device.known(reg) & 0xf;
    if (!isKnown(reg, 1) && listed !== undefined) {
      const flags =
        listed.kind === 'io'
          ? PCI_BASE_ADDRESS_SPACE_IO
          : (listed.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
            (listed.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
      set(reg, 1, flags);
      filled.push({ what: `BAR${i} type`, from: 'monitor' });
    }
    const flags = bytes[reg]!;
    const io = flags >= 0 && (flags & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
    const is64 =
      flags >= 0 && !io && (flags & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
    let size = probedSize(device.probes, reg, io, is64 && i + 1 < slots);
    if (size === undefined && listed !== undefined) {
      size = listed.size;
      filled.push({ what: `BAR${i} size`, from: 'monitor' });
    }
    if (
      size === undefined &&
      monitor === undefined &&
      (sources.decided?.has(i) === true || get(reg, 4) > 0xf)
    ) {
      unknown.push({ what: `BAR${i} size`, effect: 'the BAR is left out' });
    }
    bars.push(size ?? null);
    if (size !== undefined && size !== null) {
      fromImage(`BAR${i} type`, reg, 1);
      startAddress(reg, is64 ? 8 : 4, i);
    }
    if (is64 && size !== undefined) {
      bars.push(null);
      i++;
    }
  }
  while (bars.length > 0 && bars.at(-1) === null) bars.pop();

  // The ROM.
  let rom: bigint | undefined;
  if (headerType !== null) {
    const reg = headerType === 0 ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1;
    const probe = device.probes.get(reg);
    const mask = probe === undefined ? 0n : BigInt((probe & 0xffff_f800) >>> 0);
    if (mask !== 0n) rom = 0x1_0000_0000n - mask;
    const listed = monitor?.bars.find((b) => b.index === 6);
    if (probe === undefined && listed !== undefined) {
      rom = listed.size;
      filled.push({ what: 'ROM size', from: 'monitor' });
    }
    if (rom !== undefined) startAddress(reg, 4, 6);
  }

  msix();
  const image = new Uint8Array(length);
  for (let reg = 0; reg < length; reg++) image[reg] = Math.max(0, bytes[reg]!);
  return { image, sizes: { bars, rom }, headerType, filled, unknown };

  /**
   * A BAR's initial address where no read showed it: from the image, from where QEMU had it mapped
   * when the log began, or, for a BAR the log never wrote, from where `info pci` has it at the end.
   */
  function startAddress(reg: number, size: number, index: number): void {
    if (fromImage(`BAR${index} address`, reg, size)) return;
    const listed = monitor?.bars.find((b) => b.index === index);
    const atStart = sources.mappedAtStart?.get(index);
    let addr = 0n;
    if (atStart !== undefined) {
      addr = atStart;
    } else if (listed?.addr !== undefined && listed.addr !== null && !device.wasWritten(reg, size)) {
      addr = listed.addr;
      filled.push({ what: `BAR${index} address`, from: 'monitor' });
    } else if (decodingAtStart) {
      unknown.push({ what: `BAR${index} address`, effect: 'taken as 0 at the start' });
    }
    // The known type bits of the low byte stay.
    for (let i = 0; i < size; i++) {
      const byte = Number((addr >> BigInt(8 * i)) & 0xffn);
      bytes[reg + i] = i === 0 ? (byte & 0xf0) | Math.max(0, bytes[reg]!) : byte;
    }
  }

  /** The MSI-X capability: its table and PBA registers, filled or, when unknown, kept from inventing holes. */
  function msix(): void {
    if (!isKnown(PCI_STATUS, 1) || (bytes[PCI_STATUS]! & PCI_STATUS_CAP_LIST) === 0) return;
    let link = PCI_CAPABILITY_LIST;
    for (let ttl = 48; ttl > 0; ttl--) {
      if (!isKnown(link, 1)) return;
      const pos = bytes[link]! & ~3;
      if (pos < 0x40 || !isKnown(pos, 1)) return;
      if (bytes[pos] === PCI_CAP_ID_MSIX) {
        msixAt(pos, link);
        return;
      }
      link = pos + PCI_CAP_LIST_NEXT;
    }
  }

  function msixAt(pos: number, link: number): void {
    const control = pos + PCI_MSIX_FLAGS;
    const table = pos + PCI_MSIX_TABLE;
    const pba = pos + PCI_MSIX_PBA;
    fromImage('MSI-X entries', control, 2);
    fromImage('MSI-X table', table, 4);
    fromImage('MSI-X PBA', pba, 4);
    const placed = (ranges: Pick<QemuMonitor, 'msixTables'>['msixTables']) => {
      for (const [first, last] of ranges) {
        for (const bar of monitor?.bars ?? []) {
          if (bar.addr === null || bar.kind === 'io' || bar.index > 5) continue;
          if (first >= bar.addr && last < bar.addr + bar.size) {
            return { register: Number(first - bar.addr) | bar.index, bytes: Number(last - first + 1n) };
          }
        }
      }
      return undefined;
    };
    if (!isKnown(table, 4)) {
      const found = placed(sources.mtree?.msixTables ?? []);
      if (found !== undefined) {
        set(table, 4, found.register);
        filled.push({ what: 'MSI-X table', from: 'monitor' });
        if (!isKnown(control, 2)) {
          set(control, 2, found.bytes / PCI_MSIX_ENTRY_SIZE - 1);
          filled.push({ what: 'MSI-X entries', from: 'monitor' });
        }
      }
    }
    if (!isKnown(table, 4) || !isKnown(control, 1) || !isKnown(control + 1, 1)) {
      const missing = isKnown(table, 4) ? 'entry count' : 'table';
      unknown.push({ what: `MSI-X ${missing}`, effect: 'the capability is left out (no hole is invented)' });
      set(link, 1, Math.max(0, bytes[pos + PCI_CAP_LIST_NEXT]!));
      return;
    }
    // The entry count is read-only; the enable and mask bits are off at reset unless a read said.
    if (device.initial[control + 1]! < 0) set(control, 2, get(control, 2) & PCI_MSIX_FLAGS_QSIZE);
    if (!isKnown(pba, 4)) {
      const found = placed(sources.mtree?.msixPbas ?? []);
      if (found !== undefined) {
        set(pba, 4, found.register);
        filled.push({ what: 'MSI-X PBA', from: 'monitor' });
      } else {
        unknown.push({ what: 'MSI-X PBA', effect: 'put with the table, so it makes no hole of its own' });
        set(pba, 4, get(table, 4));
      }
    }
  }
}

/**
 * A BAR's size from its sizing read-backs: undefined when the log has none, null when it shows no
 * BAR (the read-back is zero).
 */
function probedSize(
  probes: ReadonlyMap<number, number>,
  reg: number,
  io: boolean,
  is64: boolean,
): bigint | null | undefined {
  const probe = probes.get(reg);
  if (probe === undefined) return undefined;
  if (io) {
    const mask = BigInt(((probe & 0xffff_fffc) | 0xffff_0000) >>> 0);
    return mask === 0xffff_ffffn ? null : 0x1_0000_0000n - mask;
  }
  let mask = BigInt((probe & 0xffff_fff0) >>> 0);
  if (is64) {
    const high = probes.get(reg + 4);
    // Without a read-back of the high half, a BAR that sized below 4 GiB has it all-ones.
    mask |= BigInt(high ?? 0xffff_ffff) << 32n;
    return mask === 0n ? null : (1n << 64n) - mask;
  }
  return mask === 0n ? null : 0x1_0000_0000n - mask;
}
