/**
 * Command, BAR and ROM register writes as the VFIO rule sets take them: never ignored. The command
 * register is written through to the device (and a guest's view) as QEMU's and cloud-hypervisor's
 * VFIO devices pass it on. The value lands in the
 * BAR's address (the hardware domain's also in the device, with the type bits put back, as Xen's
 * `bar_write` writes it; a guest's only in its view, cut to the BAR's size as QEMU's emulated config
 * space keeps it, `pci_default_write_config` with the BAR's write mask), and the rule set then decides
 * what that does to the mappings.
 */
import { type Bar, barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { lowSlot, withHalf } from './header.js';
import {
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_32,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
} from './pci-regs.js';

/**
 * Writes `value` to the command register: a guest's view keeps it (the hardware domain reads the
 * device's), the device takes it, and `barsMapped` follows Memory Space Enable. Returns whether
 * memory decoding is now on.
 */
export function writeCommandRegister(device: PciDevice, value: number): boolean {
  if (device.domain?.kind !== 'hardware') device.vpci!.guestCmd = value;
  return writeDecoding(device, value);
}

/**
 * The engine's own command write (`modifyBars` at set-up and when a device leaves its owner): the
 * device takes `cmd` and `barsMapped` follows Memory Space Enable; a guest's view is left as it is.
 * Returns whether memory decoding is now on.
 */
export function writeDecoding(device: PciDevice, cmd: number): boolean {
  device.hw.write(PCI_COMMAND, 2, cmd);
  device.vpci!.barsMapped = (cmd & PCI_COMMAND_MEMORY) !== 0;
  return device.vpci!.barsMapped;
}

/**
 * Writes `value` to the memory BAR slot `bar` (either half of a 64-bit BAR): the hardware domain's
 * write to the device's register `reg`, or with `reg` undefined a guest's write to its view. Returns
 * the BAR whose address changed (the low slot of a 64-bit BAR).
 */
export function writeBarRegister(device: PciDevice, bar: Bar, value: number, reg?: number): Bar {
  const { target, hi } = lowSlot(device.vpci!, bar);
  let val = hi ? value : (value & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  if (reg !== undefined) {
    // The register keeps the address cut to the BAR's size (its write mask, as the device's is).
    target.addr = barAddress(withHalf(target.addr, hi, val) & ~(target.size - 1n));
    target.guestAddr = target.addr;
    if (!hi) {
      val |= target.type === 'mem32' ? PCI_BASE_ADDRESS_MEM_TYPE_32 : PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (target.prefetchable) val |= PCI_BASE_ADDRESS_MEM_PREFETCH;
    }
    device.hw.write(reg, 4, val >>> 0);
  } else {
    target.guestAddr = barAddress(withHalf(target.guestAddr, hi, val) & ~(target.size - 1n));
  }
  return target;
}

/** Writes `value` to the ROM BAR register `reg`: its address and enable bit. Returns the ROM. */
export function writeRomRegister(device: PciDevice, reg: number, value: number): Bar {
  const vpci = device.vpci!;
  const rom = vpci.bars[vpci.romSlot]!;
  rom.addr = barAddress(BigInt((value & PCI_ROM_ADDRESS_MASK) >>> 0));
  rom.guestAddr = rom.addr;
  vpci.romEnabled = (value & PCI_ROM_ADDRESS_ENABLE) !== 0;
  device.hw.write(reg, 4, value >>> 0);
  return rom;
}
