/**
 * `firstVfProbe` finds the first VF BAR holding a sizing probe over the VF BAR arrays from a few
 * candidate VFs per slot and run; the walk it replaces (the series' `vf_init_bars` then `modify_bars`'
 * invariant-8 check for each VF, header.c: `pci_check_bar`'s probe test under `refuseProbeAddress`)
 * makes every VF's BARs (`VF BAR i + n × size_i`) and asks `holdsProbe` of each, VF by VF in run order,
 * slot by slot. Both must name the same VF, slot and address (or none) for any VF BAR type, size (sub-page
 * and sizes that are not a power of two included), address (probes, arrays crossing a 4 GiB boundary
 * or reaching the top of the 32- or 64-bit space) and runs of VFs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { Bar, type BarType, barAddress } from './device.js';
import { holdsProbe } from './modify-bars.js';
import { vfBarAddress } from './sriov-hardware.js';
import { firstVfProbe, type VfProbe } from './vf-bars.js';

/** The walk VF by VF: each VF's BARs as `vfInitBars` makes them, `holdsProbe` of each. */
function naive(slots: readonly Bar[], vfRuns: readonly (readonly [number, number])[]): VfProbe | undefined {
  for (const [a, b] of vfRuns)
    for (let n = a; n <= b; n++)
      for (const from of slots) {
        const bar = new Bar(from.index);
        bar.prefetchable = from.prefetchable;
        bar.type = from.type;
        bar.size = from.size;
        const addr = barAddress(vfBarAddress(from.addr, from.size, n));
        bar.addr = addr;
        bar.guestAddr = addr;
        if (bar.mappable && holdsProbe(bar))
          return { vfIndex: n, slot: from.index, guestAddr: bar.guestAddr };
      }
  return undefined;
}

const TWO_32 = 1n << 32n;
const TWO_64 = 1n << 64n;

/** One VF BAR slot: type, size, and VF 0's address placed so that VF `cross` meets a boundary. */
const slotPlan = (crossFrom: number, crossTo: number) =>
  fc.record({
    type: fc.constantFrom<BarType>('empty', 'mem32', 'mem64lo', 'mem64lo'),
    sizeLog2: fc.integer({ min: 4, max: 40 }),
    // Now and then a size no sizing makes (not a power of two), or none.
    oddSize: fc.option(fc.constantFrom(0n, 0x3000n, 0x18n), { freq: 8, nil: undefined }),
    boundary: fc.constantFrom(TWO_32, 2n * TWO_32, 3n * TWO_32, TWO_64 - TWO_32, TWO_64, 0x80_0000_0000n),
    cross: fc.integer({ min: crossFrom, max: crossTo }),
    // Off the size's alignment (a register left half-written), now and then.
    delta: fc.option(fc.bigInt({ min: 0n, max: 0xfffn }), { freq: 6, nil: undefined }),
    // A plain address instead, now and then.
    anywhere: fc.option(fc.bigInt({ min: 0n, max: TWO_64 - 1n }), { freq: 6, nil: undefined }),
  });

/** Runs of consecutive VF indexes, ascending, each apart from the next (as a PF's VFs to change give them). */
const vfRunsArb = fc
  .array(fc.record({ gap: fc.integer({ min: 1, max: 200 }), length: fc.integer({ min: 1, max: 700 }) }), {
    minLength: 1,
    maxLength: 3,
  })
  .chain((parts) =>
    fc.integer({ min: 0, max: 600 }).map((start) => {
      const out: [number, number][] = [];
      let next = start;
      for (const { gap, length } of parts) {
        out.push([next, next + length - 1]);
        next += length + gap;
      }
      return out;
    }),
  );

type SlotPlan = ReturnType<typeof slotPlan> extends fc.Arbitrary<infer T> ? T : never;

/** Runs and slots whose boundaries fall about the runs' VFs. */
const caseArb = vfRunsArb.chain((vfRuns) =>
  fc.record({
    vfRuns: fc.constant(vfRuns),
    plans: fc.array(slotPlan(vfRuns[0]![0] - 3, vfRuns[vfRuns.length - 1]![1] + 3), {
      minLength: 1,
      maxLength: 6,
    }),
  }),
);

function makeSlots(plans: SlotPlan[]): Bar[] {
  const slots = Array.from({ length: 6 }, (_, i) => new Bar(i));
  for (let i = 0; i < plans.length && i < 6; i++) {
    const plan = plans[i]!;
    const slot = slots[i]!;
    if (plan.type === 'mem64lo' && i === 5) continue;
    if (slot.type === 'mem64hi') continue;
    const size = plan.oddSize ?? 1n << BigInt(plan.sizeLog2);
    const width = plan.type === 'mem64lo' ? TWO_64 : TWO_32;
    let addr = plan.anywhere ?? plan.boundary - BigInt(plan.cross) * size + (plan.delta ?? 0n);
    addr = ((addr % width) + width) % width;
    slot.type = plan.type;
    slot.size = plan.type === 'empty' ? 0n : size;
    slot.addr = barAddress(addr);
    slot.guestAddr = slot.addr;
    if (plan.type === 'mem64lo') slots[i + 1]!.type = 'mem64hi';
  }
  return slots;
}

describe('firstVfProbe over VF BAR arrays against the walk VF by VF', () => {
  it('names the same VF, slot and address as holdsProbe of each VF BAR (pci_check_bar, invariant 8)', () => {
    fc.assert(
      fc.property(caseArb, ({ plans, vfRuns }) => {
        const slots = makeSlots(plans);
        expect(firstVfProbe(slots, vfRuns)).toEqual(naive(slots, vfRuns));
      }),
      runs(150),
    );
  });

  it('finds the VF before a 4 GiB boundary and the VF at the top of the space (cases worked by hand)', () => {
    // 64 KiB 64-bit VF BARs from 0xF_FFF0_0000: VF 15 sits at 0xF_FFFF_0000, its low half 0xFFFF_0000
    // is all ones above the size and its high half (0xF) is not: a half-written probe.
    const slots = makeSlots([]);
    slots[0]!.type = 'mem64lo';
    slots[0]!.size = 0x1_0000n;
    slots[0]!.addr = barAddress(0xf_fff0_0000n);
    slots[1]!.type = 'mem64hi';
    expect(firstVfProbe(slots, [[0, 31]])).toEqual({ vfIndex: 15, slot: 0, guestAddr: 0xf_ffff_0000n });
    expect(firstVfProbe(slots, [[0, 14]])).toBeUndefined();
    expect(
      firstVfProbe(slots, [
        [0, 14],
        [16, 40],
      ]),
    ).toBeUndefined();
    // 32-bit 4 KiB VF BARs from 0xFFFF_0000: VF 15 at 0xFFFF_F000 holds the probe (the top 4 KiB).
    slots[0]!.type = 'mem32';
    slots[1]!.type = 'empty';
    slots[0]!.size = 0x1000n;
    slots[0]!.addr = barAddress(0xffff_0000n);
    expect(firstVfProbe(slots, [[3, 20]])).toEqual({ vfIndex: 15, slot: 0, guestAddr: 0xffff_f000n });
  });
});
