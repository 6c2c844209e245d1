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
