import { readFileSync } from 'node:fs';
import { PhysicalDevice } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { SEED_002_LAYOUT_1, SEED_002_LAYOUT_2 } from '../../../test/fixtures/seed-layouts.js';
import { layoutFromInfoPci } from './layouts.js';

const fixture = (name: string): string =>
  readFileSync(new URL(`../../../test/fixtures/qemu/${name}.info-pci.txt`, import.meta.url), 'utf8');

describe('seed 002 layouts', () => {
  it("build as devices on bus 0 with the thread's host addresses", () => {
    for (const layout of [SEED_002_LAYOUT_1, SEED_002_LAYOUT_2])
      for (const spec of layout.devices) expect(PhysicalDevice.fromSpec(spec).sbdf.bus).toBe(0);
    expect(SEED_002_LAYOUT_1.devices[0]!.bars![0]).toMatchObject({ size: 0x100n, addr: 0xd192_4600n });
    expect(SEED_002_LAYOUT_2.devices.map((d) => d.bars![2]!.addr)).toEqual([
      0x70_5000_0000n,
      0x70_5000_0020n,
      0x70_5000_0040n,
      0x70_4000_0000n,
    ]);
  });
});

describe('layoutFromInfoPci', () => {
  const layout = layoutFromInfoPci('seabios-linux', fixture('seabios-linux'));

  it('takes every function with BARs; bus 1 functions move to free bus 0 slots', () => {
    expect(layout.devices.map((d) => d.sbdf)).toEqual([
      '0000:00:01.0', // the PCIe-PCI bridge (its own 256-byte BAR)
      '0000:00:00.0', // bus 1's testdevs, renumbered
      '0000:00:05.0',
      '0000:00:06.0',
      '0000:00:07.0',
      '0000:00:02.0',
      '0000:00:03.0',
      '0000:00:04.0',
      '0000:00:1f.2',
      '0000:00:1f.3',
    ]);
  });

  it('reads sizes from the ranges and keeps 64-bit and prefetchable flags', () => {
    const testdev = layout.devices[1]!;
    expect(testdev.vendorId).toBe(0x1b36);
    expect(testdev.bars).toEqual([
      { type: 'mem32', size: 0x1000n, addr: 0xfe80_0000n, prefetchable: false },
      { type: 'io', size: 0x100n, addr: 0xc000n },
      { type: 'mem64', size: 0x20n, addr: 0x3_1000_0000n, prefetchable: true },
      null,
    ]);
    for (const spec of layout.devices) expect(() => PhysicalDevice.fromSpec(spec)).not.toThrow();
  });
});
