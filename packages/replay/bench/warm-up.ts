/**
 * The untimed warm-up of a bench child (`replay-contender-child.ts`): passes of each side's work (a
 * contender and, paired, its ratio partner), in turn, until each side's own passes took `budgetMs`
 * of CPU time and numbered `minPasses(side)`. The budget is each side's, so a side is warmed up as it
 * would be alone in a child, whatever the other side's passes cost: a budget shared by the two left
 * the scoped replay one warm-up pass in the direct and unchecked children where alone it had two,
 * and its second pass costs 1.3-1.5 times its later ones (packages/replay DESIGN.md, "Benchmark
 * figures", branch pair2).
 */
import { cpuMs } from '../../../bench/cpu-time.js';

/** Warms up `sides`; returns each side's warm-up passes, in the order of `sides`. */
export async function warmUp<Side>(
  sides: readonly Side[],
  pass: (side: Side) => Promise<unknown>,
  budgetMs: number,
  minPasses: (side: Side) => number,
  clock: () => number = cpuMs,
): Promise<number[]> {
  const warmed = sides.map(() => ({ ms: 0, passes: 0 }));
  const cold = (k: number): boolean => warmed[k]!.passes < minPasses(sides[k]!) || warmed[k]!.ms < budgetMs;
  while (sides.some((_, k) => cold(k)))
    for (let k = 0; k < sides.length; k++) {
      if (!cold(k)) continue;
      const t0 = clock();
      await pass(sides[k]!);
      warmed[k]!.ms += clock() - t0;
      warmed[k]!.passes++;
    }
  return warmed.map((side) => side.passes);
}
