/**
 * The Xen platform PCI device ("xenpci", QEMU's `xen-platform`, vendor 0x5853) and hvmloader's special
 * case for it (seed 000, upstream since 2025): with `xen-platform-pci-bar-uc` = 0 its memory BAR goes
 * to the top of the low MMIO hole during the scan, and the hole's end (`pci_mem_end`) moves down to it,
 * so the UC MTRRs, which cover `[pci_mem_start, pci_mem_end)`, leave it WB.
 */
import { PCI_VENDOR_ID_XEN } from './constants.js';

/** Whether vendor/device IDs name the Xen platform device (device 0x0001 or 0x0002, as hvmloader checks). */
export function isXenPlatformDevice(vendorId: number, deviceId: number): boolean {
  return vendorId === PCI_VENDOR_ID_XEN && (deviceId === 0x0001 || deviceId === 0x0002);
}

/**
 * Where hvmloader puts a xenpci BAR of `size` bytes: `(pciMemEnd - size) & ~(size - 1)`, which is also
 * the new `pci_mem_end`; undefined when it "overflows low PCI hole" (`size > pciMemEnd`, or the aligned
 * address falls below `pciMemStart`, the hole's start before it is grown). `size` is a power of two.
 */
export function xenpciTopOfHole(size: bigint, pciMemStart: bigint, pciMemEnd: bigint): bigint | undefined {
  if (size > pciMemEnd) return undefined;
  const addr = (pciMemEnd - size) & ~(size - 1n);
  return addr < pciMemStart ? undefined : addr;
}
