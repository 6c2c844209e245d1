/**
 * Every property run is seeded and bounded. The seed is fixed so CI is reproducible; set FC_SEED to
 * explore other seeds (FC_SEED=random picks one) and FC_RUNS to change the default run count.
 * fast-check prints the seed and the counterexample path of a failure; this file also prints the
 * seed once so a log always says which one ran.
 */
import fc from 'fast-check';

const DEFAULT_SEED = 20261121;

function chooseSeed(): number {
  const raw = process.env.FC_SEED;
  if (raw === undefined || raw === '') return DEFAULT_SEED;
  if (raw === 'random') return Math.floor(Math.random() * 0x7fffffff);
  const seed = Number(raw);
  if (!Number.isSafeInteger(seed))
    throw new RangeError(`FC_SEED: expected an integer or "random", got "${raw}"`);
  return seed;
}

const seed = chooseSeed();
const numRuns = Number(process.env.FC_RUNS ?? 100);
fc.configureGlobal({ seed, numRuns, endOnFailure: false });

if (process.env.FC_SEED !== undefined) console.info(`fast-check seed ${seed}, ${numRuns} runs by default`);
