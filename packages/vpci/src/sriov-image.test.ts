/**
 * An SR-IOV physical function read from a configuration-space image (`PhysicalDevice.fromImage`, the
 * bytes of `lspci -xxxx`). The images are laid out by hand, byte by byte, from the register layout of
 * the PCIe Base Specification 9.3.3 (SR-IOV Extended Capability: header at +0x00, SR-IOV Control
 * +0x08, InitialVFs +0x0c, TotalVFs +0x0e, NumVFs +0x10, First VF Offset +0x14, VF Stride +0x16, VF
 * Device ID +0x1a, Supported Page Sizes +0x1c, System Page Size +0x20, VF BAR0…5 +0x24…+0x38), with
 * literal offsets rather than the model's constants, so a wrong constant would show. A real dump
 * (pciutils' test case of an Intel 82576, test/fixtures/lspci/) is checked against the values lspci
 * itself decoded from it.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { PhysicalDevice } from './hardware.js';

/** A 4096-byte image with `fields` written little-endian: `[offset, size, value]`. */
function image(fields: readonly (readonly [number, 1 | 2 | 4, number])[]): Uint8Array {
  const bytes = new Uint8Array(4096);
  for (const [offset, size, value] of fields) {
    for (let i = 0; i < size; i++) bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  }
  return bytes;
}

/**
 * A PF (vendor 8086, device 1572) with an AER-like capability at 0x100 whose `next` is 0x160, and
 * the SR-IOV capability at 0x160 followed by another at 0x1a0: TotalVFs 64, InitialVFs 64, NumVFs 8,
 * VF Enable and ARI Capable Hierarchy set, First VF Offset 0x10, VF Stride 1, VF Device ID 0x154c,
 * Supported Page Sizes 0x553, System Page Size 1 (4 KiB); VF BAR0 64-bit prefetchable at
 * 0x38_0000_0000, VF BAR3 64-bit prefetchable at 0x38_0040_0000.
 */
const SRIOV_AT = 0x160;
const PF_IMAGE: readonly (readonly [number, 1 | 2 | 4, number])[] = [
  [0x00, 4, 0x1572_8086],
  [0x0e, 1, 0x00],
  [0x100, 4, (0x160 << 20) | (1 << 16) | 0x0001],
  [SRIOV_AT + 0x00, 4, (0x1a0 << 20) | (1 << 16) | 0x0010],
  [SRIOV_AT + 0x08, 2, 0x0011],
  [SRIOV_AT + 0x0c, 2, 64],
  [SRIOV_AT + 0x0e, 2, 64],
  [SRIOV_AT + 0x10, 2, 8],
  [SRIOV_AT + 0x14, 2, 0x10],
  [SRIOV_AT + 0x16, 2, 1],
  [SRIOV_AT + 0x1a, 2, 0x154c],
  [SRIOV_AT + 0x1c, 4, 0x553],
  [SRIOV_AT + 0x20, 4, 0x1],
  [SRIOV_AT + 0x24, 4, 0x0000_000c],
  [SRIOV_AT + 0x28, 4, 0x38],
  [SRIOV_AT + 0x30, 4, 0x0040_000c],
  [SRIOV_AT + 0x34, 4, 0x38],
  [0x1a0, 4, (1 << 16) | 0x000e],
];
const SIZES = { vfBars: [0x1_0000n, null, null, 0x4000n] };

/** Xen's `pci_size_mem_bar()` on a 64-bit VF BAR register pair: all-ones, read back, restore. */
function size64(hw: PhysicalDevice, reg: number): bigint {
  const [lo, hi] = [hw.read(reg, 4), hw.read(reg + 4, 4)];
  hw.write(reg, 4, 0xffffffff);
  hw.write(reg + 4, 4, 0xffffffff);
  const mask = BigInt((hw.read(reg, 4) & 0xfffffff0) >>> 0) | (BigInt(hw.read(reg + 4, 4)) << 32n);
  hw.write(reg, 4, lo);
  hw.write(reg + 4, 4, hi);
  return (1n << 64n) - mask;
}

describe('an SR-IOV capability read from an image (PCIe 9.3.3 layout)', () => {
  it('finds the capability down the extended list and reads every field from its bytes', () => {
    const hw = PhysicalDevice.fromImage('0000:3b:00.0', image(PF_IMAGE), SIZES);
    const sriov = hw.sriov!;
    expect(sriov.pos).toBe(0x160);
    expect(sriov.field16(0x0e)).toBe(64);
    expect(sriov.field16(0x0c)).toBe(64);
    expect(sriov.field16(0x10)).toBe(8);
    expect(sriov.field16(0x14)).toBe(0x10);
    expect(sriov.field16(0x16)).toBe(1);
    expect(sriov.field16(0x1a)).toBe(0x154c);
    expect(sriov.vfEnable).toBe(true);
    expect(sriov.vfMemorySpace).toBe(false);
    expect(sriov.vfBarSize(0)).toBe(0x1_0000n);
    expect(sriov.vfBarSize(1)).toBe(0n);
    expect(sriov.vfBarSize(3)).toBe(0x4000n);
    // Routing IDs: 0x3b00 + 0x10 + n (PCIe 9.3.3.10-11): 3b:02.0 … 3b:02.7.
    expect(sriov.vfRoutingIds(0x3b00)).toEqual([
      0x3b10, 0x3b11, 0x3b12, 0x3b13, 0x3b14, 0x3b15, 0x3b16, 0x3b17,
    ]);
  });

  it('leaves the image bytes as they were: the next pointer, the ARI bit, the capability after it', () => {
    const bytes = image(PF_IMAGE);
    const hw = PhysicalDevice.fromImage('0000:3b:00.0', bytes, SIZES);
    expect(hw.image()).toEqual(bytes);
    expect(hw.read(SRIOV_AT, 4) >>> 20).toBe(0x1a0);
    expect(hw.read(SRIOV_AT + 0x08, 2)).toBe(0x11);
  });

  it('makes the registers software may write writable, and only those', () => {
    const hw = PhysicalDevice.fromImage('0000:3b:00.0', image(PF_IMAGE), SIZES);
    hw.write(SRIOV_AT + 0x10, 2, 4); // NumVFs: RW
    expect(hw.read(SRIOV_AT + 0x10, 2)).toBe(4);
    hw.write(SRIOV_AT + 0x0e, 2, 1); // TotalVFs: RO
    expect(hw.read(SRIOV_AT + 0x0e, 2)).toBe(64);
    hw.write(SRIOV_AT + 0x08, 2, 0x0019); // VF Enable, VF MSE, ARI: RW
    expect(hw.read(SRIOV_AT + 0x08, 2)).toBe(0x19);
    hw.write(SRIOV_AT + 0x08, 2, 0x0006); // VF Migration Enable and its interrupt: RO zero
    expect(hw.read(SRIOV_AT + 0x08, 2)).toBe(0);
  });

  it('answers VF BAR sizing with the given sizes, and resizes them with System Page Size', () => {
    const hw = PhysicalDevice.fromImage('0000:3b:00.0', image(PF_IMAGE), SIZES);
    expect(size64(hw, SRIOV_AT + 0x24)).toBe(0x1_0000n);
    expect(size64(hw, SRIOV_AT + 0x30)).toBe(0x4000n);
    expect(hw.read(SRIOV_AT + 0x24, 4)).toBe(0x0000_000c);
    expect(hw.read(SRIOV_AT + 0x28, 4)).toBe(0x38);
    // System Page Size 64 KiB (bit 4): each VF BAR becomes at least 64 KiB (PCIe 9.3.3.13).
    hw.write(SRIOV_AT + 0x20, 4, 0x10);
    expect(size64(hw, SRIOV_AT + 0x30)).toBe(0x1_0000n);
  });

  it('reads 32-bit, prefetchable and non-prefetchable VF BARs by their type bits', () => {
    const fields = [
      ...PF_IMAGE.filter(([o]) => o < SRIOV_AT + 0x24 || o > SRIOV_AT + 0x38),
      [SRIOV_AT + 0x24, 4, 0xfe00_0000] as const,
      [SRIOV_AT + 0x28, 4, 0xfd00_0008] as const,
    ];
    const hw = PhysicalDevice.fromImage('0000:3b:00.0', image(fields), { vfBars: [0x2000n, 0x1000n] });
    expect(hw.sriov!.vfBarSize(0)).toBe(0x2000n);
    expect(hw.sriov!.vfBarSize(1)).toBe(0x1000n);
    hw.write(SRIOV_AT + 0x24, 4, 0xffffffff);
    expect(hw.read(SRIOV_AT + 0x24, 4)).toBe(0xffff_e000);
  });

  it('has no SR-IOV capability when the image has none, and refuses VF BAR sizes for it', () => {
    const plain = image([[0x00, 4, 0x1572_8086]]);
    expect(PhysicalDevice.fromImage('0000:3b:00.0', plain).sriov).toBeUndefined();
    expect(() => PhysicalDevice.fromImage('0000:3b:00.0', plain, { vfBars: [0x4000n] })).toThrow(
      /no SR-IOV capability/,
    );
    expect(() =>
      PhysicalDevice.fromImage('0000:3b:00.0', plain.slice(0, 256), { vfBars: [0x4000n] }),
    ).toThrow(/256-byte image/);
  });

  const malformed: [string, readonly (readonly [number, 1 | 2 | 4, number])[], object, RegExp][] = [
    ['TotalVFs 0', [[SRIOV_AT + 0x0e, 2, 0]], SIZES, /image\.sriov\.totalVfs.*register 0x16e/],
    ['NumVFs above TotalVFs', [[SRIOV_AT + 0x10, 2, 65]], SIZES, /image\.sriov\.numVfs/],
    ['InitialVFs above TotalVFs', [[SRIOV_AT + 0x0c, 2, 65]], SIZES, /image\.sriov\.initialVfs/],
    ['First VF Offset 0', [[SRIOV_AT + 0x14, 2, 0]], SIZES, /image\.sriov\.firstVfOffset/],
    ['VF Stride 0 with 64 VFs', [[SRIOV_AT + 0x16, 2, 0]], SIZES, /image\.sriov\.vfStride/],
    ['4 KiB pages unsupported', [[SRIOV_AT + 0x1c, 4, 0x552]], SIZES, /image\.sriov\.supportedPageSizes/],
    ['two System Page Size bits', [[SRIOV_AT + 0x20, 4, 0x3]], SIZES, /image\.sriov\.systemPageSize/],
    ['an I/O VF BAR', [[SRIOV_AT + 0x24, 4, 0x1001]], SIZES, /image\.sriov\.vfBars\[0\].*no I\/O space/],
    ['reserved type bits', [[SRIOV_AT + 0x24, 4, 0x2]], SIZES, /image\.sriov\.vfBars\[0\]/],
    ['a VF BAR address below its size', [[SRIOV_AT + 0x30, 4, 0x0000_200c]], SIZES, /vfBars\[3\]\.addr/],
    ['a size for the upper half', [], { vfBars: [0x1_0000n, 0x1000n] }, /sizes\.vfBars\[1\].*upper half/],
    ['a size below the page', [], { vfBars: [0x800n] }, /sizes\.vfBars\[0\].*System Page Size 4096/],
    ['a size not a power of two', [], { vfBars: [0x3000n] }, /sizes\.vfBars\[0\].*power of two/],
  ];
  it.each(malformed)('refuses %s, naming the field and the register', (_name, change, sizes, message) => {
    const bytes = image([...PF_IMAGE, ...change]);
    const attempt = () => PhysicalDevice.fromImage('0000:3b:00.0', bytes, sizes);
    expect(attempt).toThrow(InvalidArgumentError);
    expect(attempt).toThrow(message);
    expect(attempt).toThrow(/SR-IOV capability at 0x160/);
  });

  it('refuses a capability that runs past the end of configuration space', () => {
    const bytes = image([
      [0x100, 4, (0xfd0 << 20) | (1 << 16) | 0x0001],
      [0xfd0, 4, (1 << 16) | 0x0010],
    ]);
    expect(() => PhysicalDevice.fromImage('0000:3b:00.0', bytes)).toThrow(/inside the 4096-byte/);
  });
});

describe('a real lspci -xxxx dump: Intel 82576 (pciutils tests/cap-pcie-2)', () => {
  const dump = readFileSync(
    new URL('../../../test/fixtures/lspci/intel-82576-sriov.xxxx.txt', import.meta.url),
    'utf8',
  );
  // The 82576's VF BAR0 (registers) and VF BAR3 (MSI-X) are 16 KiB each (its datasheet; Linux's lspci
  // -vv of an 82576 VF shows "[virtual] Memory … [size=16K]" for both). The dump agrees: VF BAR3
  // starts 128 KiB (TotalVFs 8 × 16 KiB) after VF BAR0, where Linux put the next VF BAR range.
  const sizes = {
    bars: [0x2_0000n, 0x40_0000n, 0x20n, 0x4000n],
    rom: 0x40_0000n,
    vfBars: [0x4000n, null, null, 0x4000n],
  };

  it('reads what lspci decoded from the same bytes: 8/8 VFs, 1 enabled, offset 384, stride 2, DID 10ca', () => {
    const hw = PhysicalDevice.fromImage('0000:01:00.0', dump, sizes);
    const sriov = hw.sriov!;
    expect(sriov.pos).toBe(0x160);
    expect(sriov.field16(0x0c)).toBe(8); // Initial VFs: 8
    expect(sriov.field16(0x0e)).toBe(8); // Total VFs: 8
    expect(sriov.field16(0x10)).toBe(1); // Number of VFs: 1
    expect(sriov.field16(0x14)).toBe(384); // VF offset: 384
    expect(sriov.field16(0x16)).toBe(2); // stride: 2
    expect(sriov.field16(0x1a)).toBe(0x10ca); // Device ID: 10ca
    expect(hw.read(0x160 + 0x1c, 4)).toBe(0x553); // Supported Page Size: 00000553
    expect(hw.read(0x160 + 0x20, 4)).toBe(1); // System Page Size: 00000001
    expect(sriov.vfEnable).toBe(true); // IOVCtl: Enable+
    expect(sriov.vfMemorySpace).toBe(true); // MSE+
    // VF 0 at routing ID 0x0100 + 384 = 0x0280: bus 2, device 0x10, function 0.
    expect(sriov.vfRoutingIds(0x0100)).toEqual([0x0280]);
    expect(size64(hw, 0x160 + 0x24)).toBe(0x4000n);
    expect(hw.read(0x160 + 0x24, 4)).toBe(0xd284_0004);
    expect(hw.read(0x160 + 0x30, 4)).toBe(0xd286_0004);
  });
});
