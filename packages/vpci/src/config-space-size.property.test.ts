/**
 * A `PhysicalDevice` holds as many configuration-space bytes as the device has, 256 for a
 * conventional device and 4 KiB with extended space, cut one after the other from a slab that the
 * devices made in a row share (hardware.ts `config`, `cutConfigSpace`). What a device answers must
 * not depend on that: against a naive model holding all 4 KiB of each device on its own, a
 * conventional device reads all-ones past byte 255 and drops writes there (PCI 3.0: no extended
 * space without PCIe; Xen's `pci_conf_read` then reads `~0`), an extended device keeps every byte,
 * and no device reads or writes another's. The images have no capabilities and no BAR sizes, so the
 * only writable bits are the command register's (`fromImage`: 0x07ff), which the model knows on its
 * own.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { PhysicalDevice } from './hardware.js';
import { PCI_COMMAND, PCI_HEADER_TYPE, PCI_STATUS, PCI_STATUS_CAP_LIST } from './pci-regs.js';

/** Bytes of a whole 4 KiB space, with all-ones where the device has none (`extended` off: past 255). */
class NaiveSpace {
  private readonly bytes = new Uint8Array(4096).fill(0xff);

  constructor(
    image: Uint8Array,
    private readonly extended: boolean,
  ) {
    this.bytes.set(image);
  }

  read(reg: number, size: number): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + this.bytes[reg + i]!;
    return value;
  }

  write(reg: number, size: number, value: number): void {
    if (reg >= 256 && !this.extended) return;
    for (let i = 0; i < size; i++) {
      const at = reg + i;
      // The command register's writable bits, 0x07ff, as fromImage makes them.
      const mask = at === PCI_COMMAND ? 0xff : at === PCI_COMMAND + 1 ? 0x07 : 0;
      this.bytes[at] = (this.bytes[at]! & ~mask) | ((value >>> (8 * i)) & 0xff & mask);
    }
  }

  image(): Uint8Array {
    return this.bytes.slice(0, this.extended ? 4096 : 256);
  }
}

/** An endpoint's image of `length` bytes with no capability list (so nothing is writable but the command register). */
const imageArb = (length: 256 | 4096): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: length, maxLength: length }).map((bytes) => {
    bytes[PCI_HEADER_TYPE] = 0;
    bytes[PCI_STATUS] = bytes[PCI_STATUS]! & ~PCI_STATUS_CAP_LIST;
    return bytes;
  });

/**
 * An aligned access anywhere in 4 KiB to one of the devices (an index taken modulo their count), a
 * read or a write; half of them past the first 256 bytes.
 */
const accessArb = fc
  .tuple(
    fc.nat({ max: 3 }),
    fc.constantFrom(1, 2, 4),
    fc.oneof(fc.nat({ max: 255 }), fc.integer({ min: 256, max: 4095 })),
    fc.option(fc.nat({ max: 0xffff_ffff }), { nil: undefined }),
  )
  .map(([device, size, at, value]) => ({ device, size, reg: at - (at % size), value }));

describe('devices hold the configuration-space bytes they have (256 conventional, 4 KiB extended), cut from one slab', () => {
  it('reads, writes, image and copy answer as a naive model of the whole 4 KiB of each device', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc
            .constantFrom<256 | 4096>(256, 4096)
            .chain((length) => fc.tuple(fc.constant(length), imageArb(length))),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(accessArb, { maxLength: 60 }),
        (described, accesses) => {
          // Made in a row: cut one after the other from the slab.
          const devices = described.map(([, image], i) => PhysicalDevice.fromImage(`0000:03:0${i}.0`, image));
          const models = described.map(([length, image]) => new NaiveSpace(image, length === 4096));
          for (const { device: which, size, reg, value } of accesses) {
            const device = devices[which % devices.length]!;
            const model = models[which % devices.length]!;
            if (value === undefined) expect(device.read(reg, size)).toBe(model.read(reg, size));
            else {
              const bits = size === 4 ? value : value % 2 ** (8 * size);
              device.write(reg, size, bits);
              model.write(reg, size, bits);
            }
          }
          devices.forEach((device, i) => {
            const model = models[i]!;
            expect(device.extendedConfig).toBe(described[i]![0] === 4096);
            expect(device.image()).toEqual(model.image());
            // A trial copy has bytes of its own: the same space, reads past 255 included.
            const copy = device.copy();
            expect(copy.image()).toEqual(model.image());
            for (const reg of [0x100, 0xffc]) expect(copy.read(reg, 4)).toBe(model.read(reg, 4));
          });
        },
      ),
      runs(40),
    );
  });
});
