/**
 * The replay bench's warm-up (packages/replay/bench/warm-up.ts): each side of a paired child (a
 * contender and its ratio partner) is warmed up as it would be alone, by its own passes' time and
 * count, whatever the other side's passes cost. The expected passes are worked out by hand from the
 * rule (a side stops once its own passes took the budget and numbered the minimum), over a clock
 * that each pass moves on by its side's cost.
 */
import { describe, expect, it } from 'vitest';
import { warmUp } from '../packages/replay/bench/warm-up.js';

/** A fake CPU clock that a pass of a side moves on by that side's cost, and the passes made. */
function fakeSides(costs: Readonly<Record<string, number>>) {
  let now = 0;
  const made: string[] = [];
  return {
    clock: () => now,
    made,
    pass: async (side: string) => {
      made.push(side);
      now += costs[side]!;
    },
  };
}

describe("the replay bench's warm-up", () => {
  it('gives each side of a pair its own budget, the passes in turn', async () => {
    // Scoped passes of 1,500 ms, direct ones of 450, 2,000 ms each: scoped stops after 2 (3,000),
    // direct after 5 (2,250; 4 made 1,800), as each would alone.
    const sides = fakeSides({ scoped: 1500, direct: 450 });
    expect(await warmUp(['scoped', 'direct'], sides.pass, 2000, () => 1, sides.clock)).toEqual([2, 5]);
    expect(sides.made).toEqual(['scoped', 'direct', 'scoped', 'direct', 'direct', 'direct', 'direct']);
  });

  it('warms a side up alike alone and paired', async () => {
    const alone = fakeSides({ scoped: 1500 });
    const paired = fakeSides({ scoped: 1500, unchecked: 700 });
    const [scopedAlone] = await warmUp(['scoped'], alone.pass, 2000, () => 1, alone.clock);
    const [scopedPaired, unchecked] = await warmUp(
      ['scoped', 'unchecked'],
      paired.pass,
      2000,
      () => 1,
      paired.clock,
    );
    expect([scopedAlone, scopedPaired, unchecked]).toEqual([2, 2, 3]);
  });

  it('makes the fewest passes a side asks for, however long its first one took', async () => {
    // A first pass over the budget (a loaded host): two passes of scoped, one of scale.
    const sides = fakeSides({ scoped: 2500, scale: 9000 });
    const minPasses = (side: string): number => (side === 'scale' ? 1 : 2);
    expect(await warmUp(['scoped'], sides.pass, 2000, minPasses, sides.clock)).toEqual([2]);
    expect(await warmUp(['scale'], sides.pass, 2000, minPasses, sides.clock)).toEqual([1]);
  });
});
