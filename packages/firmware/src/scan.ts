/**
 * hvmloader's phase 1 (`pci_setup`'s scan of bus 0), through a `ConfigBus`: find each function (class,
 * vendor and device ID reads), turn its memory and I/O decoding off, size BARs 0–5 and the ROM by the
 * all-ones protocol (a 64-bit BAR's upper dword too), classify them, and, with
 * `xen-platform-pci-bar-uc` = 0, put the Xen platform device's memory BAR at the top of the low hole.
 * Not modelled (no BAR depends on them): the PCI-ISA IRQ links and INTx lines, the ACPI PM and IDE
 * fix-ups, the IGD OpRegion of a passed-through Intel VGA.
 */
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_VENDOR_ID,
} from '@vpci/vpci';
import type { ConfigBus } from './bus.js';
import { PCI_CLASS_DEVICE, PCI_CLASS_DISPLAY_VGA } from './constants.js';
import { isXenPlatformDevice, xenpciTopOfHole } from './xenpci.js';

/** What a BAR decodes, as hvmloader classifies it. */
export type BarKind = 'io' | 'mem32' | 'mem64' | 'rom';

/** One implemented BAR (or the ROM) found by the scan. */
export interface ScannedBar {
  /** The function on bus 0, as `device << 3 | function`. */
  readonly devfn: number;
  /** 0–5, or 6 for the ROM. */
  readonly index: number;
  /** Config offset of its (low) register: 0x10 + 4·index, or 0x30. */
  readonly reg: number;
  /** I/O, 32- or 64-bit memory, or the ROM. */
  readonly kind: BarKind;
  /** Bytes: the lowest set bit of the size mask read back. */
  readonly size: bigint;
  /**
   * hvmloader's memory test on the value read (`(bar_data & PCI_BASE_ADDRESS_SPACE) == MEMORY`): memory
   * BARs, and the ROM when its enable bit (bit 0) is clear. A ROM with the bit set is placed in I/O
   * space (hvmloader relies on firmware leaving it clear).
   */
  readonly memory: boolean;
  /** A 64-bit memory BAR (its upper dword was sized too). */
  readonly is64: boolean;
  /** Prefetchable memory (bit 3 of the value read). */
  readonly prefetchable: boolean;
  /** The register's value before sizing (restored afterwards). */
  readonly original: number;
  /** The upper dword's value before sizing (64-bit BARs; else 0). */
  readonly originalUpper: number;
  /** Discovery order, from 0: what hvmloader's sort keeps among equal sizes. */
  readonly seq: number;
}

/** A function found on bus 0. */
export interface ScannedDevice {
  /** The function on bus 0, as `device << 3 | function`. */
  readonly devfn: number;
  /** Vendor ID register. */
  readonly vendorId: number;
  /** Device ID register. */
  readonly deviceId: number;
  /** Base class and sub-class (the 16-bit register at 0x0a). */
  readonly classCode: number;
  /** The Xen platform device (5853:0001 or 5853:0002). */
  readonly xenPlatform: boolean;
}

/** A xenpci BAR put at the top of the low hole during the scan. */
export interface XenpciPlacement {
  readonly bar: ScannedBar;
  readonly addr: bigint;
}

/** How the scan runs. */
export interface ScanOptions {
  /** `xen-platform-pci-bar-uc`: false turns the xenpci special case on. */
  readonly xenpciBarUc: boolean;
  /** `pci_mem_start` at scan time (0xF000_0000): the xenpci BAR must fit above it. */
  readonly pciMemStart: bigint;
  /** `pci_mem_end` at scan time (0xFC00_0000). */
  readonly pciMemEnd: bigint;
}

/** What the scan found and did. */
export interface ScanResult {
  readonly devices: readonly ScannedDevice[];
  /** Every BAR for the placement phase, in discovery order (xenpci BARs placed by the scan excluded). */
  readonly bars: readonly ScannedBar[];
  readonly xenpci: readonly XenpciPlacement[];
  /** `pci_mem_end` after the xenpci special case. */
  readonly pciMemEnd: bigint;
  /** The primary VGA function (emulated std/Cirrus VGA, else the first other VGA-class function). */
  readonly vgaDevfn: number | undefined;
  /** Decode bits recorded per devfn so far (bus master for every function, memory for a xenpci BAR). */
  readonly decode: readonly number[];
  /** hvmloader's messages, in its words. */
  readonly log: readonly string[];
}

/** Scans bus 0 as hvmloader's `pci_setup` does; see the module comment. */
export function scanBus(bus: ConfigBus, options: ScanOptions): ScanResult {
  const devices: ScannedDevice[] = [];
  const bars: ScannedBar[] = [];
  const xenpci: XenpciPlacement[] = [];
  const decode = new Array<number>(256).fill(0);
  const log: string[] = [];
  let pciMemEnd = options.pciMemEnd;
  let vga: { devfn: number; emulated: boolean } | undefined;
  let seq = 0;

  for (let devfn = 0; devfn < 256; devfn++) {
    const classCode = bus.read(devfn, PCI_CLASS_DEVICE, 2);
    const vendorId = bus.read(devfn, PCI_VENDOR_ID, 2);
    const deviceId = bus.read(devfn, PCI_DEVICE_ID, 2);
    if (vendorId === 0xffff && deviceId === 0xffff) continue;
    const xenPlatform = isXenPlatformDevice(vendorId, deviceId);
    devices.push({ devfn, vendorId, deviceId, classCode, xenPlatform });

    if (classCode === PCI_CLASS_DISPLAY_VGA) {
      // An emulated VGA always becomes the primary one; otherwise the first VGA-class function.
      const emulated =
        (vendorId === 0x1234 && deviceId === 0x1111) || (vendorId === 0x1013 && deviceId === 0x00b8);
      if (emulated) vga = { devfn, emulated };
      else if (vga === undefined) {
        vga = { devfn, emulated };
        if (vendorId === 0x8086) log.push(`pci dev ${dev(devfn)}: IGD OpRegion not modelled`);
      }
    }

    // Decoding off before touching BARs: a half-programmed 64-bit BAR would otherwise decode low.
    const cmd = bus.read(devfn, PCI_COMMAND, 2) & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
    bus.write(devfn, PCI_COMMAND, 2, cmd);

    for (let bar = 0; bar < 7; bar++) {
      const reg = bar === 6 ? PCI_ROM_ADDRESS : PCI_BASE_ADDRESS_0 + 4 * bar;
      const isRom = reg === PCI_ROM_ADDRESS;
      let data = bus.read(devfn, reg, 4);
      let is64 = false;
      if (!isRom) {
        is64 =
          (data & (PCI_BASE_ADDRESS_SPACE_IO | PCI_BASE_ADDRESS_MEM_TYPE_MASK)) ===
          PCI_BASE_ADDRESS_MEM_TYPE_64;
        bus.write(devfn, reg, 4, 0xffffffff);
      } else {
        bus.write(devfn, reg, 4, ((data | PCI_ROM_ADDRESS_MASK) & ~PCI_ROM_ADDRESS_ENABLE) >>> 0);
      }
      let size = BigInt(bus.read(devfn, reg, 4));
      bus.write(devfn, reg, 4, data);
      const memory = (data & PCI_BASE_ADDRESS_SPACE_IO) === 0;
      if (!isRom) size &= memory ? BigInt(PCI_BASE_ADDRESS_MEM_MASK) : 0xfffcn;
      else size &= BigInt(PCI_ROM_ADDRESS_MASK);
      let upper = 0;
      if (is64) {
        upper = bus.read(devfn, reg + 4, 4);
        bus.write(devfn, reg + 4, 4, 0xffffffff);
        const sizeUpper = BigInt(bus.read(devfn, reg + 4, 4));
        bus.write(devfn, reg + 4, 4, upper);
        size |= sizeUpper << 32n;
      }
      size &= -size; // the lowest set bit
      // A 64-bit BAR that sizes as 0 does not skip its upper half, which is then probed as a BAR.
      if (size === 0n) continue;

      const scanned: ScannedBar = {
        devfn,
        index: bar,
        reg,
        kind: isRom ? 'rom' : !memory ? 'io' : is64 ? 'mem64' : 'mem32',
        size,
        memory,
        is64,
        prefetchable: !isRom && memory && (data & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0,
        original: data,
        originalUpper: upper,
        seq: seq++,
      };

      if (!options.xenpciBarUc && memory && xenPlatform) {
        const top = is64 ? undefined : xenpciTopOfHole(size, options.pciMemStart, pciMemEnd);
        if (is64) {
          log.push(`xen platform pci dev ${dev(devfn)} unexpected MMIO 64bit BAR${bar}`);
        } else if (top === undefined) {
          log.push(
            `xen platform pci dev ${dev(devfn)} BAR${bar} size ${prillx(size)} overflows low PCI hole`,
          );
        } else {
          // At the top of the hole, which now ends below it: the UC MTRRs stop short of it.
          pciMemEnd = top;
          data = ((data & ~PCI_BASE_ADDRESS_MEM_MASK) | Number(top)) >>> 0;
          bus.write(devfn, reg, 4, data);
          decode[devfn]! |= PCI_COMMAND_MEMORY;
          log.push(`pci dev ${dev(devfn)} bar ${hex2(reg)} size ${prillx(size)}: 0${hex8(data)}`);
          xenpci.push({ bar: scanned, addr: top });
          continue;
        }
      }

      bars.push(scanned);
      if (is64) bar++; // the upper half was sized with it
    }
    decode[devfn]! |= PCI_COMMAND_MASTER; // bus mastering is enabled with decoding, at the end
  }
  return { devices, bars, xenpci, pciMemEnd, vgaDevfn: vga?.devfn, decode, log };
}

/** `dd:f` as hvmloader prints a devfn. */
export function dev(devfn: number): string {
  return `${(devfn >> 3).toString(16).padStart(2, '0')}:${(devfn & 7).toString(16)}`;
}

/** hvmloader's `PRIllx`: the upper dword in `%x`, the lower in `%08x`. */
export function prillx(value: bigint): string {
  return `${(value >> 32n).toString(16)}${hex8(Number(value & 0xffff_ffffn))}`;
}

function hex8(value: number): string {
  return (value >>> 0).toString(16).padStart(8, '0');
}

function hex2(value: number): string {
  return value.toString(16).padStart(2, '0');
}
