/**
 * How a QEMU log shows a device arrive and leave (hot plug): unanswered reads of its address (the
 * 0xcf8 index register's layout, PCI Local Bus spec 3.0 §3.2.2.3.2: enable 31, bus 23:16, device
 * 15:11, function 10:8, register 7:2; ECAM's, PCIe spec §7.2.2: bus 27:20, device 19:15, function
 * 14:12), a PCIe port's Slot Control write that turns the slot's power off (PCIe spec §7.5.3.10:
 * Power Controller Control is bit 10, 1 = off), and QEMU's ACPI eject register (hw/acpi/pcihp.c:
 * PCI_EJ_BASE 0x08, PCI_SEL_BASE 0x10). The logs are short hand-written ones in QEMU 7.2's format.
 */
import { describe, expect, it } from 'vitest';
import { LoggedDevice } from './qemu-device.js';
import { readQemuLog } from './qemu-log.js';
import { turnsSlotPowerOff } from './qemu-slot-power.js';

const region = (kind: 'read' | 'write', addr: number, value: number, size: number, name: string) =>
  `memory_region_ops_${kind} cpu 0 mr 0x55 addr 0x${addr.toString(16)} value 0x${value.toString(16)} size ${size} name '${name}'`;
/** The 0xcf8 value selecting `bus:dev.fn` register `reg`, as the spec lays it out. */
const cf8 = (bus: number, dev: number, fn: number, reg: number) =>
  (0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | reg) >>> 0;

describe('reading a log: where no device answered', () => {
  it('an unanswered data-port read of a header register names the function the index selected', () => {
    const log = readQemuLog([
      region('write', 0xcf8, cf8(3, 0x1f, 5, 0x0c), 4, 'pci-conf-idx'),
      region('read', 0xcfe, 0xffff, 2, 'pci-conf-data'),
    ]);
    expect(log.entries).toEqual([{ type: 'absent', bus: 3, dev: 0x1f, fn: 5, line: 2 }]);
    expect(log.emptySlotProbes).toBe(1);
  });

  it('an unanswered ECAM read names its function from the address', () => {
    const ecam = 0xb000_0000 + ((2 << 20) | (4 << 15) | (1 << 12) | 0x40);
    const log = readQemuLog([region('read', ecam, 0xffffffff, 4, 'pcie-mmcfg-mmio')]);
    expect(log.entries).toEqual([{ type: 'absent', bus: 2, dev: 4, fn: 1, line: 1 }]);
  });

  it('an unanswered read beyond the first 256 bytes, or with the index disabled, shows no empty slot', () => {
    const ecam = 0xb000_0000 + ((2 << 20) | 0x100);
    const log = readQemuLog([
      region('read', ecam, 0xffffffff, 4, 'pcie-mmcfg-mmio'),
      region('write', 0xcf8, cf8(0, 3, 0, 0) & 0x7fff_ffff, 4, 'pci-conf-idx'),
      region('read', 0xcfc, 0xffffffff, 4, 'pci-conf-data'),
    ]);
    expect(log.entries).toEqual([]);
    expect(log.emptySlotProbes).toBe(2);
  });

  it('an answered read is an access, not an empty slot', () => {
    const log = readQemuLog([
      region('write', 0xcf8, cf8(0, 3, 0, 0), 4, 'pci-conf-idx'),
      'pci_cfg_read nvme 00:03.0 @0x0 -> 0x101b36',
      region('read', 0xcfc, 0x101b36, 4, 'pci-conf-data'),
    ]);
    expect(log.entries.map((e) => e.type)).toEqual(['cfg']);
    expect(log.emptySlotProbes).toBe(0);
  });

  it('an ACPI eject: the slots written to the eject register, on the bus selected before', () => {
    const log = readQemuLog([
      region('write', 0xae08, 1 << 5, 4, 'acpi-pci-hotplug'),
      region('write', 0xae10, 2, 4, 'acpi-pci-hotplug'),
      region('write', 0xae08, 1 << 3, 4, 'acpi-pci-hotplug'),
      region('write', 0xcc8, 1 << 7, 4, 'acpi-pci-hotplug'), // q35's base: 0xcc0
    ]);
    expect(log.entries).toEqual([
      { type: 'eject', selector: 0, slots: 0x20, line: 1 },
      { type: 'eject', selector: 2, slots: 0x08, line: 3 },
      { type: 'eject', selector: 2, slots: 0x80, line: 4 },
    ]);
    expect(log.regionLines).toBe(0);
  });
});

describe("a PCIe port's slot power", () => {
  /** A root port with its PCI Express capability at 0x60, Slot Control as last read. */
  const port = (slotControl: number): LoggedDevice => {
    const d = new LoggedDevice('pcie-root-port');
    d.observe('read', 0x0e, 1, 0x01, 1); // header type 1
    d.observe('read', 0x06, 2, 0x10, 2); // capability list
    d.observe('read', 0x34, 1, 0x60, 1);
    d.observe('read', 0x60, 2, 0x0010, 2); // PCI Express, last
    d.observe('read', 0x78, 2, slotControl, 2);
    return d;
  };

  it('a write that sets Power Controller Control turns it off; one that leaves it set, or clears it, does not', () => {
    expect(turnsSlotPowerOff(port(0x2f1), 0x78, 2, 0x6f1)).toBe(true);
    expect(turnsSlotPowerOff(port(0x2f1), 0x79, 1, 0x06)).toBe(true);
    expect(turnsSlotPowerOff(port(0x6f1), 0x78, 2, 0x7f1)).toBe(false);
    expect(turnsSlotPowerOff(port(0x6f1), 0x78, 2, 0x2f1)).toBe(false);
    expect(turnsSlotPowerOff(port(0x2f1), 0x78, 1, 0xff)).toBe(false); // the low byte only
    expect(turnsSlotPowerOff(port(0x2f1), 0x7a, 2, 0x400)).toBe(false); // Slot Status
  });

  it('an endpoint, or a bridge with no PCI Express capability, has no slot', () => {
    const endpoint = new LoggedDevice('nvme');
    endpoint.observe('read', 0x0e, 1, 0x00, 1);
    expect(turnsSlotPowerOff(endpoint, 0x78, 2, 0x6f1)).toBe(false);
    const bridge = new LoggedDevice('pci-bridge');
    bridge.observe('read', 0x0e, 1, 0x01, 1);
    bridge.observe('read', 0x06, 2, 0x00, 2);
    expect(turnsSlotPowerOff(bridge, 0x78, 2, 0x6f1)).toBe(false);
  });
});
