import { describe, expect, it } from 'vitest';
import { isXenPlatformDevice, xenpciTopOfHole } from './xenpci.js';

const MIB = 1n << 20n;

describe('isXenPlatformDevice', () => {
  it.each([
    [0x5853, 0x0001, true],
    [0x5853, 0x0002, true],
    [0x5853, 0x0003, false], // only the two IDs hvmloader checks
    [0x8086, 0x0001, false],
  ])('%s:%s -> %s', (vendor, device, expected) => {
    expect(isXenPlatformDevice(vendor, device)).toBe(expected);
  });
});

describe('xenpciTopOfHole (hvmloader pci_setup, xen-platform-pci-bar-uc = 0)', () => {
  it.each([
    // size, expected BAR address (= new pci_mem_end) with the hole [0xf0000000, 0xfc000000)
    [16n * MIB, 0xfb00_0000n],
    [64n * MIB, 0xf800_0000n],
    [32n * MIB, 0xfa00_0000n],
    [0x1000n, 0xfbff_f000n],
    [128n * MIB, 0xf000_0000n], // (0xfc000000 - 128M) & ~(128M-1) = 0xf0000000: just fits
  ])('size %s goes to %s', (size, addr) => {
    expect(xenpciTopOfHole(size, 0xf000_0000n, 0xfc00_0000n)).toBe(addr);
  });

  it('does not fit when aligning drops it below the hole (256 MiB: 0xe0000000 < 0xf0000000)', () => {
    expect(xenpciTopOfHole(256n * MIB, 0xf000_0000n, 0xfc00_0000n)).toBeUndefined();
  });

  it('does not fit when larger than pci_mem_end itself', () => {
    expect(xenpciTopOfHole(1n << 33n, 0xf000_0000n, 0xfc00_0000n)).toBeUndefined();
  });

  it('uses the current end: a second BAR goes below the first', () => {
    const first = xenpciTopOfHole(16n * MIB, 0xf000_0000n, 0xfc00_0000n)!;
    expect(xenpciTopOfHole(16n * MIB, 0xf000_0000n, first)).toBe(0xfa00_0000n);
  });
});
