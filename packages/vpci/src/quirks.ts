/**
 * Xen's `apply_quirks` (xen/drivers/passthrough/pci.c): devices whose BARs Xen ignores. For these
 * errata "force ignoring the BARs, which prevents vPCI from trying to size the BARs or add handlers to
 * trap accesses" (`pdev->ignore_bars`, honoured by `vpci_init_header` in header.c).
 */
import type { PhysicalDevice } from './hardware.js';
import { PCI_DEVICE_ID, PCI_VENDOR_ID } from './pci-regs.js';

const PCI_VENDOR_ID_INTEL = 0x8086;

/**
 * `ignore_bars[]` of `apply_quirks`: Haswell-EP [8086:2fc0] (erratum HSE43, CONFIG_TDP_NOMINAL CSR at
 * an incorrect offset) and the Broadwell-EP Home Agents [8086:6f60, 6fa0, 6fc0] (errata BDF2 / BDX2:
 * BARs return non-zero values during enumeration).
 */
export const IGNORE_BARS_DEVICES: readonly { readonly vendor: number; readonly device: number }[] =
  Object.freeze([
    { vendor: PCI_VENDOR_ID_INTEL, device: 0x2fc0 },
    { vendor: PCI_VENDOR_ID_INTEL, device: 0x6f60 },
    { vendor: PCI_VENDOR_ID_INTEL, device: 0x6fa0 },
    { vendor: PCI_VENDOR_ID_INTEL, device: 0x6fc0 },
  ]);

/** Whether Xen sets `pdev->ignore_bars` for the device (its vendor and device IDs as read at add). */
export function ignoresBars(hw: PhysicalDevice): boolean {
  const vendor = hw.read(PCI_VENDOR_ID, 2);
  const device = hw.read(PCI_DEVICE_ID, 2);
  return IGNORE_BARS_DEVICES.some((quirk) => quirk.vendor === vendor && quirk.device === device);
}
