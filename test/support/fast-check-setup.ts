/**
 * Every property run is seeded and bounded, here. The seed is fixed so CI is reproducible; set FC_SEED
 * to explore other seeds (FC_SEED=random picks one). Each property names its default run count through
 * `runs(n)`, and FC_RUNS governs them all: FC_RUNS=N runs every property N times, FC_RUNS=xK runs each
 * K times its default (x10 for a campaign ten times the suite's). fast-check prints the seed and the
 * counterexample path of a failure; this file also prints the seed once so a log always says which one
 * ran. test/fast-check-runs.test.ts checks that no property sets its own numRuns.
 */
import fc from 'fast-check';

const DEFAULT_SEED = 20261121;
/** The run count of a property that names none. */
const DEFAULT_RUNS = 100;

function chooseSeed(): number {
  const raw = process.env.FC_SEED;
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  if (raw === 'random') return Math.floor(Math.random() * 0x7fffffff);
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed))
    throw new RangeError(`FC_SEED: expected an integer or "random", got "${raw}"`);
  return seed;
}

/** FC_RUNS: every property's run count (`{ runs }`), or a factor on each one's default (`{ factor }`). */
function chooseRuns(): { runs: number } | { factor: number } | undefined {
  const raw = process.env.FC_RUNS;
  if (raw === undefined || raw === '') return undefined;
  const factor = /^x(\d+(\.\d+)?)$/.exec(raw);
  if (factor !== null && Number(factor[1]) > 0) return { factor: Number(factor[1]) };
  const runs = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(runs) || runs < 1)
    throw new RangeError(
      `FC_RUNS: expected a run count (a whole number above 0) or xK (K times each default), got "${raw}"`,
    );
  return { runs };
}

const seed = chooseSeed();
const override = chooseRuns();

/**
 * The parameters of a property whose default run count is `n`, as FC_RUNS has them: pass them to
 * `fc.assert(property, runs(n))`.
 */
export function runs(n: number): { numRuns: number } {
  if (override === undefined) return { numRuns: n };
  if ('runs' in override) return { numRuns: override.runs };
  return { numRuns: Math.max(1, Math.round(n * override.factor)) };
}

fc.configureGlobal({ seed, ...runs(DEFAULT_RUNS), endOnFailure: false });

if (process.env.FC_SEED !== undefined || override !== undefined)
  console.info(`fast-check seed ${seed}; runs: ${process.env.FC_RUNS ?? 'the defaults'}`);
