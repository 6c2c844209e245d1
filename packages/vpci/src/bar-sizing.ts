/**
 * Xen's `pci_size_mem_bar` (xen/drivers/passthrough/pci.c): the all-ones sizing protocol on a BAR,
 * ROM or VF BAR register, as the BAR discovery of `vpci_init_header` and the series' `size_vf_bars()`
 * use it.
 */
import type { Paddr } from '@vpci/p2m';
import { barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import {
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_ROM_ADDRESS_MASK,
} from './pci-regs.js';

const U32 = 0xffffffffn;

/**
 * Xen's `pci_size_mem_bar`: write all-ones, read back the writable bits, restore. A 64-bit BAR in
 * the last slot sizes as 0, and Xen then leaves the all-ones in its low half (not restored).
 */
export function pciSizeMemBar(
  device: PciDevice,
  reg: number,
  kind: 'bar' | 'last' | 'rom',
): { addr: Paddr; size: bigint } {
  const hw = device.hw;
  const bar = hw.read(reg, 4);
  const is64 = kind !== 'rom' && (bar & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
  const mask = BigInt(kind === 'rom' ? PCI_ROM_ADDRESS_MASK : PCI_BASE_ADDRESS_MEM_MASK);
  let hi = 0;
  hw.write(reg, 4, 0xffffffff);
  if (is64) {
    if (kind === 'last') return { addr: barAddress(0n), size: 0n };
    hi = hw.read(reg + 4, 4);
    hw.write(reg + 4, 4, 0xffffffff);
  }
  let size = BigInt(hw.read(reg, 4)) & mask;
  if (is64) {
    size |= BigInt(hw.read(reg + 4, 4)) << 32n;
    hw.write(reg + 4, 4, hi);
  } else if (size !== 0n) {
    size |= U32 << 32n;
  }
  hw.write(reg, 4, bar);
  size = -size & ((1n << 64n) - 1n);
  return { addr: barAddress((BigInt(bar) & mask) | (BigInt(hi) << 32n)), size };
}
