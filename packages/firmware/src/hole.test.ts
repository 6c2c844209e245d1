import { InvalidArgumentError } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { checkOverlap, type LowHoleInput, sizeLowHole } from './hole.js';

const MIB = 1n << 20n;
const base: LowHoleInput = {
  mmioTotal: 0n,
  bar64Relocate: false,
  pciMemEnd: 0xfc00_0000n,
  mmioHoleSize: 0n,
  allowMemoryRelocate: true,
  lowMemPgend: 0xf0000,
  reserved: [],
};

describe('checkOverlap (half-open ranges)', () => {
  it.each([
    [0x1000n, 0x1000n, 0x2000n, 0x1000n, false], // [1000,2000) and [2000,3000) touch
    [0x1000n, 0x1001n, 0x2000n, 0x1000n, true],
    [0x3000n, 0x1000n, 0x2000n, 0x1000n, false],
    [0x2fffn, 0x1n, 0x2000n, 0x1000n, true],
  ])('[%s,+%s) vs [%s,+%s): %s', (s, n, rs, rn, expected) => {
    expect(checkOverlap(s, n, rs, rn)).toBe(expected);
  });
});

describe("sizeLowHole (hvmloader pci_setup's low hole)", () => {
  it('keeps the default 192 MiB hole when the MMIO fits', () => {
    expect(sizeLowHole({ ...base, mmioTotal: 192n * MIB })).toMatchObject({
      pciMemStart: 0xf000_0000n,
      bar64Relocate: false,
    });
  });

  it.each([
    [193n * MIB, 0xe000_0000n],
    [448n * MIB, 0xe000_0000n],
    [449n * MIB, 0xc000_0000n],
    [960n * MIB, 0xc000_0000n],
    [961n * MIB, 0x8000_0000n],
  ])('mmio_total %s: the start halves to %s', (mmioTotal, start) => {
    expect(sizeLowHole({ ...base, mmioTotal }).pciMemStart).toBe(start);
  });

  it('stops at 2 GiB (0x80000000 << 1 is 0 in 32 bits) and then relocates 64-bit BARs', () => {
    expect(sizeLowHole({ ...base, mmioTotal: 3n << 30n })).toMatchObject({
      pciMemStart: 0x8000_0000n,
      bar64Relocate: true,
    });
  });

  it('without memory relocation stops before the next start would be below low RAM', () => {
    // Low RAM ends at 0xd0000000: 0xe0000000 is allowed, 0xc0000000 is not.
    const hole = sizeLowHole({
      ...base,
      mmioTotal: 900n * MIB,
      allowMemoryRelocate: false,
      lowMemPgend: 0xd0000,
    });
    expect(hole).toMatchObject({ pciMemStart: 0xe000_0000n, bar64Relocate: true });
  });

  it('a 64-bit BAR over 1 GiB always sets bar64_relocate', () => {
    expect(sizeLowHole({ ...base, bar64Relocate: true }).bar64Relocate).toBe(true);
  });

  it.each([
    [0x4000_0000n, 0xc000_0000n], // 1 GiB hole
    [0x1000_0000n, 0xf000_0000n], // 256 MiB: 4G - 256M = 0xf0000000, not above the default: taken
  ])('mmio_hole_size %s sets the start to %s', (mmioHoleSize, start) => {
    expect(sizeLowHole({ ...base, mmioHoleSize, mmioTotal: 1n << 31n }).pciMemStart).toBe(start);
  });

  it('ignores an mmio_hole_size leaving more than 0xf0000000 of RAM (and one over 4 GiB)', () => {
    for (const mmioHoleSize of [0x800_0000n, 1n << 33n]) {
      const hole = sizeLowHole({ ...base, mmioHoleSize, mmioTotal: 1n << 30n });
      expect(hole.pciMemStart).toBe(0xf000_0000n);
      expect(hole.log[0]).toMatch(/has been ignored/);
    }
  });

  it('with a fixed hole size does not grow it, however much MMIO there is', () => {
    const hole = sizeLowHole({ ...base, mmioHoleSize: 0x1000_0000n, mmioTotal: 1n << 31n });
    expect(hole).toMatchObject({ pciMemStart: 0xf000_0000n, bar64Relocate: true });
  });

  it('an RMRR in the hole pulls its start down to the end of low RAM', () => {
    const reserved = [{ addr: 0xf800_0000n, size: 0x1000n }];
    expect(sizeLowHole({ ...base, lowMemPgend: 0x80000, reserved }).pciMemStart).toBe(0x8000_0000n);
    // Outside the hole: no effect.
    const outside = [{ addr: 0xfd00_0000n, size: 0x1000n }];
    expect(sizeLowHole({ ...base, lowMemPgend: 0x80000, reserved: outside }).pciMemStart).toBe(0xf000_0000n);
  });

  it('refuses a hole size that is not a byte count', () => {
    expect(() => sizeLowHole({ ...base, mmioHoleSize: -1n })).toThrow(InvalidArgumentError);
  });
});
