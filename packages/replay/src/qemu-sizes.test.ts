import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inferSize, type RegisterLayout, registerWidth, valueWidth } from './qemu-sizes.js';

const endpoint: RegisterLayout = { headerType: 0, capabilities: new Map([[0x40, 0x11]]) };
const bridge: RegisterLayout = { headerType: 1, capabilities: new Map() };
const unknown: RegisterLayout = { headerType: undefined, capabilities: new Map() };

describe('the size of an access with no region line', () => {
  it('is as wide as the register, by the PCI header layout of the header type', () => {
    // PCI Local Bus spec, type 0 and type 1 headers.
    expect(registerWidth(endpoint, 0x04)).toBe(2); // command
    expect(registerWidth(endpoint, 0x0e)).toBe(1); // header type
    expect(registerWidth(endpoint, 0x24)).toBe(4); // BAR5
    expect(registerWidth(endpoint, 0x30)).toBe(4); // expansion ROM
    expect(registerWidth(bridge, 0x24)).toBe(2); // prefetchable memory base
    expect(registerWidth(bridge, 0x19)).toBe(1); // secondary bus number
    expect(registerWidth(bridge, 0x38)).toBe(4); // a bridge's expansion ROM
    expect(registerWidth(bridge, 0x30)).toBe(2); // I/O base upper 16 bits
    // Unknown: an endpoint's (a bridge's header type byte, 1, shows in any read that covers it).
    expect(registerWidth(unknown, 0x24)).toBe(4);
  });

  it('knows the MSI-X registers, and dwords in extended config space', () => {
    expect(registerWidth(endpoint, 0x42)).toBe(2); // Message Control
    expect(registerWidth(endpoint, 0x44)).toBe(4); // Table Offset/BIR
    expect(registerWidth(endpoint, 0x48)).toBe(4); // PBA Offset/BIR
    expect(registerWidth(endpoint, 0x41)).toBe(1); // next pointer
    expect(registerWidth(endpoint, 0x104)).toBe(4);
    expect(registerWidth(endpoint, 0x106)).toBeUndefined();
  });

  it('writes a word to the MSI-X control register even when its high byte is zero', () => {
    // Linux turning MSI-X off on a 65-entry NVMe: the value is the table size field alone.
    expect(inferSize(0x42, 0x0040, registerWidth(endpoint, 0x42))).toBe(2);
    expect(inferSize(0x10, 0, registerWidth(endpoint, 0x10))).toBe(4);
    expect(inferSize(0x1a, 0xff, registerWidth(bridge, 0x1a))).toBe(1);
  });

  it('fits the value, is naturally aligned when the value allows, and follows the register within that', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffc }),
        fc.oneof(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0xffff }), fc.nat(0xffff_ffff)),
        fc.constantFrom<(1 | 2 | 4 | undefined)[]>(1, 2, 4, undefined),
        (reg, value, width) => {
          const size = inferSize(reg, value, width);
          expect(size).toBeGreaterThanOrEqual(valueWidth(value));
          expect(value < 2 ** (8 * size)).toBe(true);
          const aligned = reg % size === 0;
          if (!aligned) expect(size).toBe(valueWidth(value));
          if (width !== undefined && reg % width === 0) expect(size).toBe(Math.max(width, valueWidth(value)));
        },
      ),
    );
  });
});
