import { PhysicalDevice } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { hardwareBus } from './bus.js';
import { dev, prillx, scanBus } from './scan.js';

const MIB = 1n << 20n;
const options = { xenpciBarUc: true, pciMemStart: 0xf000_0000n, pciMemEnd: 0xfc00_0000n };

/** A 256-byte config image with the given dwords. */
function image(dwords: Record<number, number>): Uint8Array {
  const bytes = new Uint8Array(256);
  for (const [reg, value] of Object.entries(dwords)) {
    for (let i = 0; i < 4; i++) bytes[Number(reg) + i] = (value >>> (8 * i)) & 0xff;
  }
  return bytes;
}

describe('scanBus', () => {
  it('sizes a 64-bit BAR low dword first, then the upper one, restoring each (hvmloader pci_setup)', () => {
    const bus = hardwareBus([
      {
        sbdf: '00:05.0',
        bars: [{ type: 'mem64', size: 4n << 30n, addr: 0x8_0000_0000n, prefetchable: true }],
      },
    ]);
    const scan = scanBus(bus, options);
    expect(scan.bars).toEqual([
      expect.objectContaining({
        index: 0,
        kind: 'mem64',
        size: 4n << 30n,
        is64: true,
        original: 0xc,
        originalUpper: 8,
      }),
    ]);
    const bar = bus.accesses.filter((a) => a.reg === 0x10 || a.reg === 0x14);
    expect(bar.map((a) => [a.op, a.reg, a.value])).toEqual([
      ['read', 0x10, 0x0000000c],
      ['write', 0x10, 0xffffffff],
      ['read', 0x10, 0x0000000c], // the size mask's low dword: all address bits below 4 GiB are 0
      ['write', 0x10, 0x0000000c],
      ['read', 0x14, 8],
      ['write', 0x14, 0xffffffff],
      ['read', 0x14, 0xffffffff], // 4 GiB: every upper address bit writable
      ['write', 0x14, 8],
    ]);
  });

  it('sizes the ROM with the address bits set and the enable bit clear', () => {
    const bus = hardwareBus([{ sbdf: '00:05.0', rom: { size: 0x10000n, addr: 0xfeb0_0000n } }]);
    const scan = scanBus(bus, options);
    expect(scan.bars).toEqual([
      expect.objectContaining({ index: 6, reg: 0x30, kind: 'rom', size: 0x10000n }),
    ]);
    const rom = bus.accesses.filter((a) => a.reg === 0x30 && a.op === 'write');
    expect(rom.map((a) => a.value)).toEqual([0xfffff800, 0xfeb0_0000]);
  });

  it('masks I/O BARs to 16 bits and keeps discovery order', () => {
    const scan = scanBus(
      hardwareBus([
        {
          sbdf: '00:03.0',
          bars: [
            { type: 'io', size: 0x100n },
            { type: 'mem32', size: 16n * MIB },
          ],
        },
        { sbdf: '00:02.0', bars: [{ type: 'mem32', size: 0x1000n }] },
      ]),
      options,
    );
    expect(scan.bars.map((b) => [b.devfn, b.index, b.kind, b.size, b.seq])).toEqual([
      [0x10, 0, 'mem32', 0x1000n, 0],
      [0x18, 0, 'io', 0x100n, 1],
      [0x18, 1, 'mem32', 16n * MIB, 2],
    ]);
  });

  it('turns decoding off before sizing and records bus mastering for every function', () => {
    const bus = hardwareBus([{ sbdf: '00:04.0', command: 0x7, bars: [{ type: 'mem32', size: 0x1000n }] }]);
    const scan = scanBus(bus, options);
    expect(bus.accesses.find((a) => a.op === 'write' && a.reg === 0x04)?.value).toBe(0x4);
    expect(scan.decode[0x20]).toBe(0x4);
  });

  it('puts the xenpci memory BAR at the top of the hole when xen-platform-pci-bar-uc is 0', () => {
    const bus = hardwareBus([
      {
        sbdf: '00:03.0',
        vendorId: 0x5853,
        deviceId: 0x0002,
        bars: [
          { type: 'io', size: 0x100n },
          { type: 'mem32', size: 16n * MIB, prefetchable: true },
        ],
      },
    ]);
    const scan = scanBus(bus, { ...options, xenpciBarUc: false });
    expect(scan.pciMemEnd).toBe(0xfb00_0000n);
    expect(scan.xenpci).toEqual([{ bar: expect.objectContaining({ index: 1 }), addr: 0xfb00_0000n }]);
    expect(scan.bars.map((b) => b.index)).toEqual([0]); // only the I/O BAR is left to place
    expect(scan.decode[0x18]).toBe(0x6); // memory (the xenpci BAR) and bus master
    expect(scan.log).toContain('pci dev 03:0 bar 14 size 001000000: 0fb000008');
    // Programmed during the scan, with the flag bits kept.
    expect(bus.accesses.filter((a) => a.reg === 0x14 && a.op === 'write').at(-1)?.value).toBe(0xfb00_0008);
  });

  it('falls back to normal placement for a 64-bit or too large xenpci BAR', () => {
    const scan = scanBus(
      hardwareBus([
        {
          sbdf: '00:03.0',
          vendorId: 0x5853,
          deviceId: 0x0001,
          bars: [{ type: 'mem64', size: 16n * MIB }, null, { type: 'mem32', size: 256n * MIB }],
        },
      ]),
      { ...options, xenpciBarUc: false },
    );
    expect(scan.xenpci).toEqual([]);
    expect(scan.bars.map((b) => b.index)).toEqual([0, 2]);
    expect(scan.log).toEqual([
      'xen platform pci dev 03:0 unexpected MMIO 64bit BAR0',
      'xen platform pci dev 03:0 BAR2 size 010000000 overflows low PCI hole',
    ]);
  });

  it('treats a ROM with its enable bit set as hvmloader does: not memory', () => {
    const scan = scanBus(hardwareBus([{ sbdf: '00:05.0', rom: { size: 0x800n, enabled: true } }]), options);
    expect(scan.bars[0]).toMatchObject({ kind: 'rom', memory: false });
  });

  it('probes the upper half of a 64-bit BAR that sizes as 0 as a BAR of its own', () => {
    // BAR0 says 64-bit but has no writable bits; BAR1 (its upper half) is left to be probed: it reads 0.
    const device = PhysicalDevice.fromImage('00:06.0', image({ 0: 0x1111_1234, 16: 0x4 }), {});
    const bus = hardwareBus([device]);
    const scan = scanBus(bus, options);
    expect(scan.bars).toEqual([]);
    const probed = bus.accesses.filter((a) => a.op === 'write' && a.value === 0xffffffff).map((a) => a.reg);
    expect(probed).toEqual([0x10, 0x14, 0x14, 0x18, 0x1c, 0x20, 0x24]);
  });

  it('finds the primary VGA: an emulated one wins over a passed-through one found first', () => {
    const vga = (sbdf: string, vendor: number, device: number): PhysicalDevice =>
      PhysicalDevice.fromImage(sbdf, image({ 0: (device << 16) | vendor, 8: 0x0300_0000 }), {});
    const scan = scanBus(
      hardwareBus([vga('00:02.0', 0x10de, 0x1234), vga('00:05.0', 0x1234, 0x1111)]),
      options,
    );
    expect(scan.vgaDevfn).toBe(0x28);
    expect(scan.devices.map((d) => d.classCode)).toEqual([0x0300, 0x0300]);
  });

  it('skips functions whose vendor and device IDs both read all-ones', () => {
    const bus = hardwareBus([{ sbdf: '00:1f.7', bars: [{ type: 'mem32', size: 0x1000n }] }]);
    expect(scanBus(bus, options).devices.map((d) => d.devfn)).toEqual([0xff]);
    expect(bus.accesses.filter((a) => a.devfn === 0).map((a) => a.reg)).toEqual([0x0a, 0x00, 0x02]);
  });
});

describe('hvmloader print formats', () => {
  it('prints a devfn as dd:f and a 64-bit value as %x%08x', () => {
    expect(dev(0x1a)).toBe('03:2');
    expect(prillx(0x1000000n)).toBe('001000000');
    expect(prillx(0x2_0000_0000n)).toBe('200000000');
  });
});
