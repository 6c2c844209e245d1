/**
 * The BARs a device's registers decode are remembered on the device and, after its BAR registers are
 * written, decoded again giving each slot whose register words and size are those of one of its last
 * few decodings the `Bar` made then (ownership.ts, `DecodedBars`). Held here against the registers
 * read afresh as the PCI spec lays them out (a memory BAR's address is its register less the low 4
 * type bits, a 64-bit one's high half in the next slot; an I/O or unimplemented slot decodes
 * nothing; the ROM's address is its register's bits 31:11), after writes of random sequences to the
 * BAR and ROM registers (values coming back among them) and the resizable-BAR control (which
 * resizes a BAR without writing its register). The device's host pages (host-pages.ts
 * `HostPagesCache.hostPagesOf`, which gives a state of the registers met again the pages worked out
 * then, `BarStates`, without decoding) are held to the frames of those BARs after the same writes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { frameRange } from './device.js';
import { findExtCapability, type PhysicalDevice } from './hardware.js';
import { Machine } from './machine.js';
import { registerBars } from './ownership.js';
import { PCI_EXT_CAP_ID_REBAR } from './pci-regs.js';

const MIB = 0x10_0000n;
const PAGE_SHIFT = 12n;

/** An endpoint (6 BARs, ROM at 0x30) or a bridge (2 BARs, ROM at 0x38), with every kind of slot. */
function device(headerType: 0 | 1, m = new Machine()) {
  const sbdf = '0000:03:00.0';
  m.addDevice(
    headerType === 0
      ? {
          sbdf,
          bars: [
            { type: 'mem64', size: MIB, addr: 0xe000_0000n },
            null,
            { type: 'io', size: 0x100n, addr: 0x1000n },
            { type: 'mem32', size: 0x1_0000n, addr: 0xf000_0000n },
            { type: 'mem64', size: 0x4000n, addr: 0x8_0000_0000n },
          ],
          rom: { size: 0x1_0000n, addr: 0xf010_0000n },
          rebar: [{ bar: 0, sizes: [MIB, 2n * MIB, 4n * MIB] }],
        }
      : {
          sbdf,
          headerType: 1,
          bars: [{ type: 'mem32', size: 0x2000n, addr: 0xf100_0000n }, null],
          rom: { size: 0x800n, addr: 0xf200_0000n },
        },
  );
  return m.device(sbdf);
}

/** What the registers decode now, read afresh. */
function decodedNow(hw: PhysicalDevice, headerType: 0 | 1) {
  const slots = headerType === 0 ? 6 : 2;
  const bars: { index: number; type: string; size: bigint; addr: bigint }[] = [];
  for (let i = 0; i < slots; i++) {
    const low = hw.read(0x10 + 4 * i, 4);
    const size = hw.barSize(i);
    if (size === 0n || (low & 1) !== 0) continue;
    const is64 = (low & 0x6) === 0x4;
    if (is64 && i + 1 >= slots) continue;
    const high = is64 ? BigInt(hw.read(0x14 + 4 * i, 4)) : 0n;
    bars.push({
      index: i,
      type: is64 ? 'mem64lo' : 'mem32',
      size,
      addr: (high << 32n) | BigInt((low & ~0xf) >>> 0),
    });
  }
  const romSize = hw.romSize();
  if (romSize > 0n) {
    const rom = hw.read(headerType === 0 ? 0x30 : 0x38, 4);
    bars.push({ index: slots, type: 'rom', size: romSize, addr: BigInt((rom & ~0x7ff) >>> 0) });
  }
  return bars;
}

/** A register write: a BAR or ROM register (a value, or the sizing probe), or a ReBAR size. */
const writeArb = fc.oneof(
  fc.record({
    reg: fc.constantFrom(0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30, 0x38),
    value: fc.oneof(
      fc.constantFrom(0xffff_ffff, 0, 0xe000_0000, 0xf000_0000, 0x8),
      fc.integer({ min: 0, max: 0xffff_ffff }),
    ),
  }),
  fc.record({ rebarSize: fc.integer({ min: 0, max: 2 }) }),
);

describe('decoded BARs, decoded again in place after register writes', () => {
  it('are what the registers decode read afresh, after every write (both header layouts)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<0 | 1>(0, 1),
        fc.array(fc.tuple(writeArb, fc.boolean()), { maxLength: 40 }),
        (headerType, writes) => {
          const pdev = device(headerType);
          const hw = pdev.hw;
          const rebarCtrl = headerType === 0 ? findExtCapability(hw, PCI_EXT_CAP_ID_REBAR) + 8 : undefined;
          const seen = () =>
            registerBars(pdev).map((bar) => ({
              index: bar.index,
              type: bar.type,
              size: bar.size,
              addr: bar.addr as bigint,
            }));
          expect(seen()).toEqual(decodedNow(hw, headerType));
          for (const [write, check] of writes) {
            if ('reg' in write) hw.write(write.reg, 4, write.value);
            else if (rebarCtrl !== undefined) hw.write(rebarCtrl, 4, write.rebarSize << 8);
            // Several writes between two decodings too: a kept BAR is compared with the last decoding.
            if (!check) continue;
            const now = decodedNow(hw, headerType);
            expect(seen()).toEqual(now);
            // A kept BAR's frames are its own still.
            for (const bar of registerBars(pdev))
              expect(bar.hostFrames()).toEqual(frameRange(bar.addr, bar.size));
          }
        },
      ),
      runs(200),
    );
  });

  it('give again the Bar a slot had for the same words, and a new one for new words', () => {
    const pdev = device(0);
    const hw = pdev.hw;
    registerBars(pdev); // the first decoding
    hw.write(0x1c, 4, 0xffff_ffff); // BAR 3 sized: decoded again, and from here on the BARs are kept
    const probed = registerBars(pdev);
    hw.write(0x1c, 4, 0xf000_0000); // and placed back
    const placed = registerBars(pdev);
    expect(placed[0]).toBe(probed[0]); // BAR 0, not written
    expect(placed[1]).not.toBe(probed[1]);
    expect(placed[3]).toBe(probed[3]); // the ROM
    hw.write(0x1c, 4, 0xffff_ffff);
    expect(registerBars(pdev)[1]).toBe(probed[1]);
    hw.write(0x1c, 4, 0xf000_0000);
    expect(registerBars(pdev)[1]).toBe(placed[1]);
    hw.write(0x1c, 4, 0xf001_0000);
    expect(registerBars(pdev)[1]!.addr).toBe(0xf001_0000n);
  });

  it('give host pages that are the frames of what the registers decode, after every write', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<0 | 1>(0, 1),
        fc.array(fc.tuple(writeArb, fc.boolean()), { maxLength: 40 }),
        (headerType, writes) => {
          const m = new Machine();
          const pdev = device(headerType, m);
          const hw = pdev.hw;
          const rebarCtrl = headerType === 0 ? findExtCapability(hw, PCI_EXT_CAP_ID_REBAR) + 8 : undefined;
          // No vPCI state (the machine is not booted): the pages are the decoded BARs' alone, in order.
          const framesNow = () =>
            decodedNow(hw, headerType).map((bar) => [
              Number(bar.addr >> PAGE_SHIFT),
              Number((bar.addr + bar.size - 1n) >> PAGE_SHIFT),
            ]);
          const pagesOf = () => m.invariantCaches.hostPages.hostPagesOf(pdev);
          expect(pagesOf()).toEqual(framesNow());
          for (const [write, check] of writes) {
            if ('reg' in write) hw.write(write.reg, 4, write.value);
            else if (rebarCtrl !== undefined) hw.write(rebarCtrl, 4, write.rebarSize << 8);
            if (check) expect(pagesOf()).toEqual(framesNow());
          }
        },
      ),
      runs(200),
    );
  });
});
