/**
 * An SR-IOV physical function read back from its own configuration-space image answers as the
 * description it was made from: for any generated PF (`@vpci/fuzz`'s sriov.ts: VF counts, routing
 * layouts, 32/64-bit VF BARs of 16 bytes to 1 MiB, System Page Size 4, 8 or 64 KiB), the image of
 * `PhysicalDevice.fromSpec` given to `PhysicalDevice.fromImage` with the VF BAR sizes sizing reads
 * back (what `lspci -vv` prints for a VF) holds the same bytes, and every sequence of writes to the
 * capability (SR-IOV Control, NumVFs, System Page Size, the VF BAR registers, all-ones sizing
 * included) reads back the same from both, register by register, with the same VF BAR sizes. System
 * Page Size is only written at or above the image's: below it, the size the image was given is all
 * that is known of the function's own (docs/sriov.md), which a separate case checks.
 */

import { SRIOV_POS, type SriovPlan, sriovPlan, sriovSpec } from '@vpci/fuzz';
import { PhysicalDevice } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';

/** Writes to the capability: `[offset from the capability, size, value]`. */
function writes(plan: SriovPlan): fc.Arbitrary<[number, 2 | 4, number][]> {
  // Supported Page Sizes is 0x553 (the default): bits 0, 1, 4, 6, 8, 10; only those at or above the image's.
  const pages = [0, 1, 4, 6, 8, 10].filter((bit) => bit >= plan.pageSizeBit).map((bit) => 1 << bit);
  const write = fc.oneof(
    fc.tuple(fc.constant(0x08), fc.constant(2 as const), fc.integer({ min: 0, max: 0xffff })),
    fc.tuple(fc.constant(0x10), fc.constant(2 as const), fc.integer({ min: 0, max: plan.totalVfs })),
    fc.tuple(fc.constant(0x20), fc.constant(4 as const), fc.constantFrom(...pages)),
    fc.tuple(
      fc.integer({ min: 0, max: 5 }).map((i) => 0x24 + 4 * i),
      fc.constant(4 as const),
      fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 0, max: 0xffffffff })),
    ),
  );
  return fc.array(write, { maxLength: 12 });
}

/** Every dword of the capability and every VF BAR size, as `hw` answers now. */
function answers(hw: PhysicalDevice): { registers: number[]; sizes: bigint[] } {
  const registers: number[] = [];
  for (let reg = SRIOV_POS; reg < SRIOV_POS + 0x40; reg += 4) registers.push(hw.read(reg, 4));
  return { registers, sizes: [0, 1, 2, 3, 4, 5].map((i) => hw.sriov!.vfBarSize(i)) };
}

describe('an SR-IOV PF read back from its image (PhysicalDevice.fromImage)', () => {
  it('holds the same bytes and answers every write to the capability as its description does', () => {
    fc.assert(
      fc.property(
        sriovPlan.chain((plan) => fc.tuple(fc.constant(plan), writes(plan))),
        ([plan, sequence]) => {
          const described = PhysicalDevice.fromSpec(sriovSpec(plan));
          const sizes = [0, 1, 2, 3, 4, 5].map((i) => described.sriov!.vfBarSize(i));
          const imaged = PhysicalDevice.fromImage(described.toString(), described.image(), {
            vfBars: sizes.map((size) => (size === 0n ? null : size)),
          });
          expect(imaged.image()).toEqual(described.image());
          expect(answers(imaged)).toEqual(answers(described));
          for (const [offset, size, value] of sequence) {
            described.write(SRIOV_POS + offset, size, value);
            imaged.write(SRIOV_POS + offset, size, value);
            expect(answers(imaged), `after 0x${value.toString(16)} to +0x${offset.toString(16)}`).toEqual(
              answers(described),
            );
          }
        },
      ),
      runs(100),
    );
  });

  it('keeps a VF BAR the size it was given when System Page Size drops below the image’s', () => {
    // A 16-byte VF BAR under 64 KiB pages reads back 64 KiB, all an image can be given; back at
    // 4 KiB pages the description knows the function asks for 16 bytes (4 KiB), the image does not.
    const spec = sriovSpec({
      totalVfs: 2,
      numVfs: 2,
      firstVfOffset: 1,
      vfStride: 1,
      pageSizeBit: 4,
      bars: [{ slot: 0, type: 'mem32', sizeLog2: 4 }],
      placement: 'own',
      msixEntries: undefined,
    });
    const described = PhysicalDevice.fromSpec(spec);
    const imaged = PhysicalDevice.fromImage(described.toString(), described.image(), { vfBars: [0x1_0000n] });
    for (const hw of [described, imaged]) hw.write(SRIOV_POS + 0x20, 4, 0x1);
    expect(described.sriov!.vfBarSize(0)).toBe(0x1000n);
    expect(imaged.sriov!.vfBarSize(0)).toBe(0x1_0000n);
  });
});
