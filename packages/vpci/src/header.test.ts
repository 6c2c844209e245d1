/**
 * Header details: devices from config-space images, BAR sizing (64-bit BAR in the last slot),
 * guests' deny-by-default view, the capability list a guest sees, resizable BARs and hidden devices.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mfnAt, writeCommand } from '../../../test/support/machine.js';
import { PhysicalDevice, parseHexDump } from './hardware.js';
import { checkInvariants } from './invariants.js';
import { Machine } from './machine.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';

const MEM = PCI_COMMAND_MEMORY;
const MIB = 1n << 20n;

describe('devices from a config-space image', () => {
  const dump = [
    '00:01.0 Unclassified device: Red Hat, Inc. QEMU PCI Test Device',
    '00: f4 1a 05 00 03 01 00 00 00 00 ff 00 00 00 00 00',
    '10: 00 00 80 fe 01 c0 00 00 00 00 00 00 00 00 00 00',
    ...Array.from({ length: 14 }, (_, i) => `${((i + 2) * 16).toString(16)}: ${'00 '.repeat(16).trim()}`),
  ].join('\n');

  it('parses lspci -xxx and sizes the BARs it is told', () => {
    const bytes = parseHexDump(dump);
    expect(bytes.length).toBe(256);
    const hw = PhysicalDevice.fromImage('00:01.0', dump, { bars: [0x1000n, 0x100n] });
    expect(hw.read(0x00, 4)).toBe(0x00051af4);
    hw.write(0x10, 4, 0xffffffff);
    expect(hw.read(0x10, 4)).toBe(0xfffff000);
    hw.write(0x14, 4, 0xffffffff);
    expect(hw.read(0x14, 4)).toBe(0xffffff01);
  });

  it('maps a device built from the image once the hardware domain enables it', () => {
    const machine = new Machine();
    machine.addDevice(PhysicalDevice.fromImage('00:01.0', dump, { bars: [0x1000n, 0x100n] }));
    machine.boot();
    writeCommand(machine, machine.hardwareDomain.vcpus[0]!, '00:01.0', MEM);
    expect(mfnAt(machine.hardwareDomain, 0xfe800)).toBe(0xfe800);
  });

  it('reports a malformed dump with the line and what was expected', () => {
    expect(() => parseHexDump('00: 00 01\n20: 00')).toThrow(/line 2.*offset 2 next/);
    expect(() => PhysicalDevice.fromImage('00:01.0', new Uint8Array(100))).toThrow(/256- or 4096-byte/);
  });
});

describe('BAR sizing', () => {
  it('a 64-bit BAR in the last slot sizes as 0, and Xen leaves all-ones in its low half', () => {
    const hw = PhysicalDevice.fromSpec({
      sbdf: '00:02.0',
      bars: [null, null, null, null, { type: 'mem32', size: 0x1000n }],
    });
    // Make slot 5 look like a 64-bit BAR with nothing above it, as broken hardware does.
    const image = hw.image();
    image[0x24] = 0x04;
    const broken = PhysicalDevice.fromImage('00:02.0', image, {
      bars: [null, null, null, null, 0x1000n, 0x1000n],
    });
    const machine = new Machine();
    const pdev = machine.addDevice(broken);
    machine.boot();
    expect(pdev.vpci!.bars[5]!.type).toBe('empty');
    expect(broken.read(0x24, 4)).toBe(0xfffff004);
  });

  it('a guest sizes a BAR by writing all-ones and reading the mask (invariant 26)', () => {
    const machine = bootedMachine([
      {
        sbdf: '00:03.0',
        bars: [{ type: 'mem64', size: 4n << 30n, prefetchable: true, addr: 0x80_0000_0000n }],
      },
    ]);
    const guest = machine.createGuest();
    machine.assignDevice('00:03.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xffffffff);
    expect(machine.configRead(v, '00:00.0', 0x10, 4)).toBe(0x0000000c);
    machine.configWrite(v, '00:00.0', 0x14, 4, 0xffffffff);
    expect(machine.configRead(v, '00:00.0', 0x14, 4)).toBe(0xffffffff);
  });
});

describe("a guest's view", () => {
  const device = {
    sbdf: '0000:05:00.0',
    vendorId: 0x8086,
    bars: [
      { type: 'mem32' as const, size: MIB, addr: 0xf000_0000n },
      { type: 'io' as const, size: 0x20n, addr: 0xc000n },
    ],
    msix: { entries: 4, table: { bar: 0, offset: 0x1000 }, pba: { bar: 0, offset: 0x2000 } },
  };

  it('unhandled bytes read all-ones and writes to them never reach the device (invariant 34)', () => {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('05:00.0', guest.id);
    const v = guest.vcpus[0]!;
    expect(machine.configRead(v, '00:00.0', 0x00, 4)).toBe(0xffffffff); // IDs are not emulated by vPCI
    expect(machine.configRead(v, '00:00.0', 0x14, 4)).toBe(0xffffffff); // I/O BAR
    machine.configWrite(v, '00:00.0', 0x3c, 1, 0x0b);
    expect(machine.device('05:00.0').hw.read(0x3c, 1)).toBe(0);
    expect(machine.configRead(v, '00:01.0', 0x00, 4)).toBe(0xffffffff); // no device there
  });

  it('F5: the ROM reads 0 and I/O BARs all-ones; writes to either never reach the device', () => {
    const machine = bootedMachine([{ ...device, rom: { size: 0x10000n, addr: 0xf010_0000n } }]);
    const guest = machine.createGuest();
    machine.assignDevice('05:00.0', guest.id);
    const v = guest.vcpus[0]!;
    const hw = machine.device('05:00.0').hw;
    expect(machine.configRead(v, '00:00.0', 0x30, 4)).toBe(0);
    expect(machine.configRead(v, '00:00.0', 0x14, 4)).toBe(0xffffffff);
    machine.configWrite(v, '00:00.0', 0x30, 4, 0xe010_0001);
    machine.configWrite(v, '00:00.0', 0x14, 4, 0xd001);
    machine.configWrite(v, '00:00.0', 0x14, 2, 0xd101);
    expect(machine.configRead(v, '00:00.0', 0x30, 4)).toBe(0);
    expect(machine.configRead(v, '00:00.0', 0x14, 4)).toBe(0xffffffff);
    expect(hw.read(0x30, 4)).toBe(0xf010_0000);
    expect(hw.read(0x14, 4)).toBe(0xc001);
    // I/O decoding is reserved to the host (RsvdP): the guest's IO bit never reaches the device.
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    writeCommand(machine, v, '00:00.0', MEM | 0x1);
    expect(hw.read(0x04, 2) & 0x1).toBe(0);
    // Only BAR0 is mapped: neither the ROM nor anything at the written ROM address.
    expect(mfnAt(guest, 0xe0000)).toBe(0xf0000);
    expect(mfnAt(guest, 0xe0100)).toBeUndefined();
    expect(mfnAt(guest, 0xf0100)).toBeUndefined();
  });

  it('shows MSI-X in the capability list and enabling it forces INTx off', () => {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('05:00.0', guest.id);
    const v = guest.vcpus[0]!;
    expect(machine.configRead(v, '00:00.0', 0x06, 2) & 0x10).toBe(0x10);
    const cap = machine.configRead(v, '00:00.0', 0x34, 1);
    expect(machine.configRead(v, '00:00.0', cap, 1)).toBe(0x11);
    machine.configWrite(v, '00:00.0', cap + 2, 2, 0x8000);
    expect(machine.configRead(v, '00:00.0', cap + 2, 2)).toBe(0x8003);
    expect(machine.configRead(v, '00:00.0', 0x04, 2) & 0x400).toBe(0x400);
  });

  it('hides MSI-X whose table lies outside its BAR (ENODEV)', () => {
    const machine = bootedMachine([
      { ...device, msix: { entries: 4, table: { bar: 0, offset: 0x10_0000 }, pba: { bar: 0, offset: 0 } } },
    ]);
    const pdev = machine.device('05:00.0');
    expect(pdev.vpci!.msix).toBeUndefined();
    expect(machine.events.some((e) => e.kind === 'msix-invalid')).toBe(true);
    expect(machine.configRead(machine.hardwareDomain.vcpus[0]!, '05:00.0', 0x34, 1)).toBe(0);
  });
});

describe('PhysicalDevice.barWrites', () => {
  it('counts the writes that may move or resize a BAR, and no others', () => {
    const hw = PhysicalDevice.fromSpec({
      sbdf: '0000:07:00.0',
      bars: [{ type: 'mem32', size: 1n * MIB, addr: 0xfe00_0000n }],
      rebar: [{ bar: 0, sizes: [1n * MIB, 2n * MIB] }],
    });
    const counted = (write: () => void): number => {
      const before = hw.barWrites;
      write();
      return hw.barWrites - before;
    };
    expect(counted(() => hw.write(0x04, 2, 0x0406))).toBe(0); // command
    expect(counted(() => hw.write(0x3c, 1, 5))).toBe(0); // interrupt line
    expect(counted(() => hw.write(0x0c, 4, 0))).toBe(0); // cache line … BIST, just below BAR0
    expect(counted(() => hw.write(0x10, 4, 0xffff_ffff))).toBe(1); // BAR0
    expect(counted(() => hw.write(0x27, 1, 0))).toBe(1); // the last byte of BAR5
    expect(counted(() => hw.write(0x30, 4, 0))).toBe(1); // expansion ROM
    expect(counted(() => hw.write(0x38, 4, 0))).toBe(1); // a bridge's ROM register
    expect(counted(() => hw.write(0x100 + 8, 4, 1 << 8))).toBe(1); // the ReBAR control resizes BAR0
    expect(hw.barSize(0)).toBe(2n * MIB);
  });
});

describe('resizable BARs (hardware domain)', () => {
  const device = {
    sbdf: '0000:06:00.0',
    bars: [{ type: 'mem64' as const, size: 256n * MIB, addr: 0x40_0000_0000n }],
    rebar: [{ bar: 0, sizes: [256n * MIB, 512n * MIB, 1024n * MIB] }],
  };

  it('refuses a resize while mapped and uses the new size on the next map', () => {
    const machine = bootedMachine([device]);
    const v = machine.hardwareDomain.vcpus[0]!;
    const pdev = machine.device('06:00.0');
    const ctrl = 0x100 + 8;
    writeCommand(machine, v, '06:00.0', MEM);
    machine.configWrite(
      v,
      '06:00.0',
      ctrl,
      4,
      (machine.configRead(v, '06:00.0', ctrl, 4) & ~0x3f00) | (9 << 8),
    );
    expect(machine.events.at(-1)).toMatchObject({ kind: 'rebar-refused', bar: 0, size: 512n * MIB });
    expect(pdev.vpci!.bars[0]!.size).toBe(256n * MIB);
    writeCommand(machine, v, '06:00.0', 0);
    machine.configWrite(
      v,
      '06:00.0',
      ctrl,
      4,
      (machine.configRead(v, '06:00.0', ctrl, 4) & ~0x3f00) | (9 << 8),
    );
    expect(pdev.vpci!.bars[0]!.size).toBe(512n * MIB);
    writeCommand(machine, v, '06:00.0', MEM);
    expect(mfnAt(machine.hardwareDomain, 0x400_0000 + 0x1ffff)).toBe(0x400_0000 + 0x1ffff);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('warns about a size the hardware does not list and resizes anyway, as Xen does', () => {
    const machine = bootedMachine([device]);
    const v = machine.hardwareDomain.vcpus[0]!;
    machine.configWrite(
      v,
      '06:00.0',
      0x108,
      4,
      (machine.configRead(v, '06:00.0', 0x108, 4) & ~0x3f00) | (12 << 8),
    );
    expect(machine.events.at(-1)).toMatchObject({ kind: 'rebar-unsupported', size: 4096n * MIB });
  });
});

describe('hidden devices (dom_xen)', () => {
  it('are mapped into dom0 at boot, and a later decoding change is dropped as in Xen', () => {
    const machine = new Machine();
    machine.addDevice(
      { sbdf: '00:1f.0', command: MEM, bars: [{ type: 'mem32', size: 0x1000n, addr: 0xfed0_0000n }] },
      { hidden: true },
    );
    machine.boot();
    const dom0 = machine.hardwareDomain;
    expect(machine.device('00:1f.0').domain).toBe(machine.domXen);
    expect(mfnAt(dom0, 0xfed00)).toBe(0xfed00);
    const v = dom0.vcpus[0]!;
    expect(writeCommand(machine, v, '00:1f.0', 0)).toEqual({ status: 'dropped' });
    expect(mfnAt(dom0, 0xfed00)).toBe(0xfed00);
    expect(machine.events.at(-1)).toMatchObject({ kind: 'pending-dropped', sbdf: '0000:00:1f.0' });
  });
});
