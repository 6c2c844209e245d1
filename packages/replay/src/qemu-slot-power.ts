/**
 * A PCIe hot-plug slot's power, as a config write to its port turns it off. Linux's pciehp removes
 * the devices below a port, then turns the slot's Power Controller Control on (power off) in the
 * port's Slot Control register; QEMU then takes the power from the devices below (their BARs unmap:
 * `pci_set_power` in hw/pci/pci.c, called from `pcie_cap_slot_write_config` in hw/pci/pcie.c) and,
 * once the power indicator is off too, detaches them. The write is where a log shows a device leave
 * a native hot-plug slot (`device_del`); nothing about the device itself says so.
 */
import { PCI_CAP_ID_EXP } from '@vpci/vpci';
import type { LoggedDevice } from './qemu-device.js';

/** Slot Control's offset in the PCI Express capability. */
const PCI_EXP_SLTCTL = 0x18;
/** Power Controller Control, bit 10 of Slot Control (1: power off): bit 2 of its high byte. */
const PCC_BYTE = PCI_EXP_SLTCTL + 1;
const PCC_BIT = 1 << 2;

/**
 * Whether a write of `size` bytes of `value` at `reg` turns the slot of `port` off, judged before
 * the write is taken in (the byte's last known value must have had the power on; unknown: on).
 */
export function turnsSlotPowerOff(port: LoggedDevice, reg: number, size: number, value: number): boolean {
  if (port.headerType !== 1) return false;
  let exp: number | undefined;
  for (const [pos, id] of port.layout().capabilities) if (id === PCI_CAP_ID_EXP) exp = pos;
  if (exp === undefined) return false;
  const byte = exp + PCC_BYTE;
  if (byte < reg || byte >= reg + size) return false;
  const now = (value >>> (8 * (byte - reg))) & 0xff;
  const before = port.current[byte]!;
  return (now & PCC_BIT) !== 0 && (before < 0 || (before & PCC_BIT) === 0);
}
