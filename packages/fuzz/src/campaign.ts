/**
 * A campaign: numbered cases, each one random trace plan from a seed of its own (the campaign's seed
 * and the case's number, mixed), so any case can be run alone, by any worker or shard, and comes out
 * the same. A campaign of `steps` steps is the cases 0, 1, 2, … up to the first whose steps bring the
 * total to `steps`; shard `i` of `n` runs the cases whose number is `i` modulo `n`. A failing case is
 * shrunk by fast-check (to a smaller plan failing the same way) and written as a reproducer: a trace
 * `vpci-replay` replays, with the seed and the failure in comment lines at its top.
 */
import type { Policy, Profile } from '@vpci/vpci';
import fc from 'fast-check';
import { checkTrace, type TraceFailure } from './check.js';
import { arbTracePlan, type TraceFeature, type TracePlan } from './trace-plan.js';

/** What every case of a campaign shares. */
export interface CampaignOptions {
  /** The campaign's seed. */
  readonly seed: number;
  /** The profile every trace runs under. */
  readonly profile: Profile;
  /** Policy switches every trace's host line sets (to fuzz a policy other than the profile's). */
  readonly policy?: Partial<Policy>;
  /** At most this many steps in one trace (default 60). */
  readonly maxSteps?: number;
  /** Kinds of device and step the traces leave out (default: none). */
  readonly without?: readonly TraceFeature[];
}

/** A failing case, shrunk. */
export interface CaseFailure extends TraceFailure {
  /** The steps of the case as generated. */
  readonly originalSteps: number;
  /** The steps of the shrunk plan. */
  readonly shrunkSteps: number;
  /** The shrunk plan's trace, up to the failure: the reproducer's lines without its header. */
  readonly lines: readonly string[];
}

/** The outcome of one case. */
export interface CaseResult {
  /** The case's number in the campaign. */
  readonly index: number;
  /** Its own seed (fast-check's), from the campaign's seed and its number. */
  readonly caseSeed: number;
  /** Random steps it ran. */
  readonly steps: number;
  /** Trace lines it replayed (twice: scoped and whole checks). */
  readonly lines: number;
  /** Steps that wrote no line. */
  readonly skipped: number;
  /** Its failure, shrunk, if it failed. */
  readonly failure: CaseFailure | undefined;
}

/** Case `index`'s seed: the campaign's seed and the number mixed (MurmurHash3's finaliser), 31 bits. */
export function caseSeed(seed: number, index: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) & 0x7fff_ffff;
}

function planArbitrary(options: CampaignOptions): fc.Arbitrary<TracePlan> {
  return arbTracePlan({
    profile: options.profile,
    ...(options.policy === undefined ? {} : { policy: options.policy }),
    ...(options.maxSteps === undefined ? {} : { maxSteps: options.maxSteps }),
    ...Object.fromEntries((options.without ?? []).map((feature) => [feature, false])),
  });
}

/** Case `index`'s plan, as generated (before any shrinking). */
export function casePlan(options: CampaignOptions, index: number): TracePlan {
  return fc.sample(planArbitrary(options), { seed: caseSeed(options.seed, index), numRuns: 1 })[0]!;
}

/**
 * What makes two failures the same for shrinking: their kind, and the violation's kind or the
 * exception's name, so a shrunk reproducer shows the failure its case found, not another one.
 */
function signature(failure: TraceFailure): string {
  return `${failure.kind}:${/^[\w-]+/.exec(failure.message)?.[0] ?? ''}`;
}

/** Runs case `index`: generates its plan, checks it, shrinks a failure. */
export function runCase(options: CampaignOptions, index: number): CaseResult {
  const seed = caseSeed(options.seed, index);
  let first: { steps: number; lines: number; skipped: number; failure: TraceFailure | undefined } | undefined;
  const property = fc.property(planArbitrary(options), (plan) => {
    const checked = checkTrace(plan);
    if (first === undefined) {
      first = {
        steps: checked.steps,
        lines: checked.lines.length,
        skipped: checked.skipped,
        failure: checked.failure,
      };
      return checked.failure === undefined;
    }
    // While shrinking: only the same failure counts.
    return checked.failure === undefined || signature(checked.failure) !== signature(first.failure!);
  });
  const details = fc.check(property, { seed, numRuns: 1, endOnFailure: false });
  const generated = first!;
  let failure: CaseFailure | undefined;
  if (details.failed && details.counterexample !== null) {
    const shrunk = details.counterexample[0];
    const again = checkTrace(shrunk);
    // Shrinking is deterministic, so the shrunk plan fails again the same way.
    const found = again.failure ?? generated.failure!;
    failure = {
      ...found,
      originalSteps: generated.steps,
      shrunkSteps: shrunk.steps.length,
      lines: again.failure === undefined ? [] : again.lines,
    };
  } else if (details.failed) {
    // The property itself threw (a bug of the fuzzer's checks, not the engine's): report it as a crash.
    failure = {
      kind: 'crash',
      line: 0,
      message: `the check did not finish: ${'errorInstance' in details ? String(details.errorInstance) : 'interrupted'}`,
      originalSteps: generated.steps,
      shrunkSteps: generated.steps,
      lines: [],
    };
  }
  return {
    index,
    caseSeed: seed,
    steps: generated.steps,
    lines: generated.lines,
    skipped: generated.skipped,
    failure,
  };
}

/**
 * The numbers of the campaign's cases that shard `shard` of `shards` runs, lazily, with each case's
 * steps: cases are counted until their steps reach `steps` (every shard counts them all, so the
 * shards split one campaign), without end when `steps` is undefined (a time budget stops it).
 */
export function* shardCases(
  options: CampaignOptions,
  steps: number | undefined,
  shard: number,
  shards: number,
): Generator<{ index: number; steps: number }, void, undefined> {
  let total = 0;
  for (let index = 0; steps === undefined || total < steps; index++) {
    const planSteps = casePlan(options, index).steps.length;
    total += planSteps;
    if (index % shards === shard) yield { index, steps: planSteps };
  }
}

/** The file name of case `index`'s reproducer. */
export function reproducerName(seed: number, index: number): string {
  return `vpci-fuzz-seed${seed}-case${index}.jsonl`;
}

/** The comment lines a reproducer starts with. */
const HEADER_LINES = 4;

/**
 * The reproducer of a failed case: comment lines naming the seed, the case, the profile and the
 * failure (its line counted in the file, as vpci-replay counts), then the shrunk trace.
 */
export function reproducer(options: CampaignOptions, result: CaseResult): string {
  const failure = result.failure!;
  const where =
    failure.line > failure.lines.length
      ? 'at the end of the trace'
      : `after line ${failure.line + HEADER_LINES}`;
  const policy = options.policy === undefined ? '' : `, policy ${JSON.stringify(options.policy)}`;
  const without = (options.without ?? []).length === 0 ? '' : `, without ${options.without!.join(',')}`;
  const header = [
    `# vpci-fuzz reproducer: seed ${options.seed}, case ${result.index} (case seed ${result.caseSeed}), profile ${options.profile}${policy}${without}`,
    `# ${failure.kind} ${where}: ${failure.message}`,
    `# shrunk from ${failure.originalSteps} random steps to ${failure.shrunkSteps}; replay: vpci-replay ${reproducerName(options.seed, result.index)}`,
    '#',
  ];
  return `${[...header, ...failure.lines].join('\n')}\n`;
}
