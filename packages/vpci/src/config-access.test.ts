/**
 * Which config accesses reach vPCI. Xen: `vpci_access_allowed` (vpci.c) allows 1, 2, 4 and 8 bytes
 * aligned to their size; x86's `vpci_portio_read` returns `*data = ~0` and `vpci_portio_write`
 * returns before `vpci_write` for any other; `vpci_ecam_read`/`vpci_ecam_write` (reached from
 * `vpci_mmcfg_read`/`vpci_mmcfg_write`, "failed reads are not propagated") do the same and split an
 * 8-byte access into `vpci_read(reg, 4)` and `vpci_read(reg + 4, 4)`, the second shifted up by 32.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mmioExtents, writeCommand } from '../../../test/support/machine.js';
import { vpciAccessAllowed } from './config-access.js';
import type { DeviceSpec } from './hardware.js';
import { Machine } from './machine.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';

const MIB = 0x10_0000n;
const DEVICE: DeviceSpec = {
  sbdf: '0000:03:00.0',
  vendorId: 0x8086,
  deviceId: 0x10d3,
  bars: [
    { type: 'mem64', size: MIB, addr: 0xfe00_0000n },
    null,
    { type: 'mem32', size: MIB, addr: 0xfd00_0000n },
  ],
};

describe('vpci_access_allowed', () => {
  // (reg & (len - 1)) == 0 for len 1, 2, 4, 8; any other length is refused.
  it.each([
    [0x04, 2, true],
    [0x05, 2, false],
    [0x06, 2, true],
    [0x10, 4, true],
    [0x12, 4, false],
    [0x11, 1, true],
    [0x10, 8, true],
    [0x14, 8, false],
    [0x10, 3, false],
    [0x10, 16, false],
  ])('reg %i, %i bytes: %s', (reg, size, allowed) => {
    expect(vpciAccessAllowed(reg, size)).toBe(allowed);
  });
});

describe('a config access not aligned to its size (vpci_portio_read / vpci_portio_write)', () => {
  it('a guest write of MEMORY at 0x03 (2 bytes over the command register) does not turn decoding on', () => {
    // vpci_portio_write: reg 0x03, size 2 fails vpci_access_allowed, so cmd_write is never called;
    // before, the model split it and the byte at 0x04 turned memory decoding on.
    const machine = bootedMachine([DEVICE]);
    const guest = machine.createGuest();
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: true });
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    machine.configWrite(v, '00:00.0', 0x03, 2, PCI_COMMAND_MEMORY << 8);
    expect(v.pending).toBeUndefined();
    expect(machine.device('03:00.0').vpci!.barsMapped).toBe(false);
    expect(mmioExtents(guest)).toEqual([]);
    expect(machine.events).toContainEqual({
      kind: 'access-dropped',
      domain: guest.id,
      sbdf: '0000:00:00.0',
      reg: 3,
      size: 2,
      reason: 'misaligned',
    });
  });

  it('the same bytes written aligned do turn decoding on', () => {
    const machine = bootedMachine([DEVICE]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    writeCommand(machine, v, '00:00.0', PCI_COMMAND_MEMORY);
    expect(machine.device('03:00.0').vpci!.barsMapped).toBe(true);
  });

  it('a misaligned read returns all-ones of its size, even from the hardware domain', () => {
    const machine = bootedMachine([DEVICE]);
    const v = machine.hardwareDomain.vcpus[0]!;
    // The vendor id 0x8086 at 0x00: a 2-byte read at 0x01 would have read 0x1080 before.
    expect(machine.configRead(v, '03:00.0', 0x01, 2)).toBe(0xffff);
    expect(machine.configRead(v, '03:00.0', 0x02, 4)).toBe(0xffff_ffff);
    expect(machine.configRead(v, '03:00.0', 0x00, 2)).toBe(0x8086);
    // A misaligned access at the end of config space is dropped, not refused as bad input.
    expect(machine.configRead(v, '03:00.0', 0xffe, 4)).toBe(0xffff_ffff);
  });

  it('the CF8/CFC ports carry no 8-byte access; an offset past 0xfff is bad input', () => {
    const machine = bootedMachine([DEVICE]);
    const v = machine.hardwareDomain.vcpus[0]!;
    expect(() => machine.configRead(v, '03:00.0', 0x10, 8)).toThrow(/^size/);
    expect(() => machine.configRead(v, '03:00.0', 0x1000, 1)).toThrow(/^reg/);
    expect(() => machine.configWrite(v, '03:00.0', 0x10, 2, 0x1_0000)).toThrow(/^value/);
  });
});

describe('ECAM / MMCFG accesses (vpci_ecam_read / vpci_ecam_write)', () => {
  it('an 8-byte write sets both halves of a 64-bit BAR: two 4-byte vpci_writes, low half first', () => {
    const machine = bootedMachine([DEVICE]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.ecamWrite(v, '00:00.0', 0x10, 8, 0x0000_0001_e000_0000n);
    const bar = machine.device('03:00.0').vpci!.bars[0]!;
    expect(bar.guestAddr).toBe(0x1_e000_0000n);
    // guest_mem_bar_read: the low half carries the 64-bit type bits (0x4).
    expect(machine.ecamRead(v, '00:00.0', 0x10, 8)).toBe(0x0000_0001_e000_0004n);
    expect(machine.configRead(v, '00:00.0', 0x14, 4)).toBe(1);
  });

  it('an 8-byte write over command and status runs the second half in the same trap', () => {
    // vpci_ecam_write at 0x00: vpci_write(0x00, 4) (vendor/device, read-only) then vpci_write(0x04, 4):
    // cmd_write defers the map to the vCPU, which only then leaves the trap.
    const machine = bootedMachine([DEVICE]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    machine.ecamWrite(v, '00:00.0', 0x00, 8, BigInt(PCI_COMMAND_MEMORY) << 32n);
    expect(v.pending).toBeDefined();
    machine.finishPending(v);
    expect(mmioExtents(guest)).toContainEqual([0xe0000, 0xfe000, 256]);
  });

  it('an 8-byte access not aligned to 8 is dropped: reads ~0UL, writes nothing', () => {
    const machine = bootedMachine([DEVICE]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.ecamWrite(v, '00:00.0', 0x14, 8, 0xffff_ffff_ffff_ffffn);
    expect(machine.device('03:00.0').vpci!.bars[2]!.guestAddr).toBe(0xfd00_0000n);
    expect(machine.ecamRead(v, '00:00.0', 0x0c, 8)).toBe(0xffff_ffff_ffff_ffffn);
    expect(machine.events.filter((e) => e.kind === 'access-dropped')).toHaveLength(2);
  });

  it('smaller ECAM accesses are the same as through the ports', () => {
    const machine = bootedMachine([DEVICE]);
    const v = machine.hardwareDomain.vcpus[0]!;
    expect(machine.ecamRead(v, '03:00.0', 0x00, 4)).toBe(BigInt(machine.configRead(v, '03:00.0', 0x00, 4)));
    expect(machine.ecamRead(v, '03:00.0', 0x01, 1)).toBe(0x80n);
    expect(() => machine.ecamRead(v, '03:00.0', 0x10, 16)).toThrow(/^size/);
  });
});

describe('read-only devices (pci_ro_device, ro_map)', () => {
  // pci.c pci_ro_device: the address's bit in the segment's ro_map, then _pci_hide_device (dom_xen).
  // _setup_hwdom_pci_devices sets a dom_xen device up as dom0's: vpci_assign_device returns 0 with
  // no vPCI ("No vPCI for r/o devices"), so nothing is sized, trapped or mapped and decoding is left
  // as the device has it. vpci_read finds the pci_dev in dom_xen's list without ->vpci and reads the
  // hardware (vpci_read_hw); vpci_write drops the write ("Ignore writes to read-only devices").
  // free_pdev (pci_remove_device) leaves the ro_map bit set: a device added there later is set up
  // as dom0's (pci_add_device) and is read-only too.
  const uart: DeviceSpec = {
    sbdf: '0000:00:1f.0',
    command: PCI_COMMAND_MEMORY,
    bars: [{ type: 'mem32', size: 0x1000n, addr: 0xfe00_0000n }],
  };

  it('gets no vPCI; dom0 reads the hardware and its writes are dropped', () => {
    const machine = new Machine();
    const device = machine.addDevice(uart, { readOnly: true });
    machine.boot();
    const dom0 = machine.hardwareDomain;
    const v = dom0.vcpus[0]!;
    expect(device.domain).toBe(machine.domXen);
    expect(device.vpci).toBeUndefined();
    expect(mmioExtents(dom0)).toEqual([]);
    expect(machine.configRead(v, '00:1f.0', 0x04, 2)).toBe(PCI_COMMAND_MEMORY);
    expect(machine.configRead(v, '00:1f.0', 0x10, 4)).toBe(0xfe00_0000);
    machine.configWrite(v, '00:1f.0', 0x04, 2, 0);
    machine.configWrite(v, '00:1f.0', 0x10, 4, 0xfd00_0000);
    expect(device.hw.read(0x04, 2)).toBe(PCI_COMMAND_MEMORY);
    expect(device.hw.read(0x10, 4)).toBe(0xfe00_0000);
    expect(machine.events.filter((event) => event.kind === 'access-dropped')).toEqual([
      { kind: 'access-dropped', domain: 0, sbdf: '0000:00:1f.0', reg: 0x04, size: 2, reason: 'read-only' },
      { kind: 'access-dropped', domain: 0, sbdf: '0000:00:1f.0', reg: 0x10, size: 4, reason: 'read-only' },
    ]);
    const guest = machine.createGuest();
    expect(machine.assignDevice('00:1f.0', guest.id)).toEqual({ ok: false, code: 'EBUSY' });
  });

  it("the ro_map bit outlives the device: one added there later is dom0's, without vPCI, read-only", () => {
    const machine = new Machine();
    machine.addDevice(uart, { readOnly: true });
    machine.boot();
    expect(machine.removeDevice('00:1f.0')).toEqual({ ok: true });
    const device = machine.addDevice(uart);
    const v = machine.hardwareDomain.vcpus[0]!;
    expect(device.domain).toBe(machine.hardwareDomain);
    expect(device.vpci).toBeUndefined();
    machine.configWrite(v, '00:1f.0', 0x04, 2, 0);
    expect(device.hw.read(0x04, 2)).toBe(PCI_COMMAND_MEMORY);
  });

  it('a device not read-only beside it is written as usual', () => {
    const machine = new Machine();
    machine.addDevice(uart, { readOnly: true });
    machine.addDevice({ ...uart, sbdf: '0000:00:1e.0', bars: [] }, { hidden: true });
    machine.boot();
    const v = machine.hardwareDomain.vcpus[0]!;
    // cmd_write with the memory bit as bars_mapped has it: straight to the device.
    machine.configWrite(v, '00:1e.0', 0x04, 2, PCI_COMMAND_MEMORY | 0x0004);
    expect(machine.device('00:1e.0').hw.read(0x04, 2)).toBe(PCI_COMMAND_MEMORY | 0x0004);
  });
});
