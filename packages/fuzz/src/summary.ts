/**
 * A campaign's summary (`vpci-fuzz --json`), and the merge of the summaries of a campaign's shards
 * into the summary the whole campaign run at once gives. A summary holds no times and no paths beyond
 * the reproducers' file names, so the same campaign gives the same bytes.
 */
import type { Policy, Profile } from '@vpci/vpci';
import type { CaseResult } from './campaign.js';
import type { FailureKind } from './check.js';
import type { TraceFeature } from './trace-plan.js';

/** The summary's format name and version. */
export const SUMMARY_FORMAT = 'vpci-fuzz-summary/1';

/** One failed case in a summary. */
export interface SummaryFailure {
  /** The case's number. */
  readonly case: number;
  /** The case's own seed. */
  readonly caseSeed: number;
  /** What went wrong. */
  readonly kind: FailureKind;
  /** One sentence: the violation, the exception, the disagreement. */
  readonly message: string;
  /** Steps as generated. */
  readonly originalSteps: number;
  /** Steps after shrinking. */
  readonly shrunkSteps: number;
  /** The reproducer's file name (in the `--out` directory), or null when none was written. */
  readonly reproducer: string | null;
}

/** What a campaign (or some of its shards) ran and found. */
export interface FuzzSummary {
  /** Always `SUMMARY_FORMAT`. */
  readonly format: typeof SUMMARY_FORMAT;
  /** The campaign's seed. */
  readonly seed: number;
  /** The profile. */
  readonly profile: Profile;
  /** Policy switches set on top of the profile (empty: none). */
  readonly policy: Partial<Policy>;
  /** Steps per trace at most. */
  readonly maxSteps: number;
  /** The kinds of device and step the traces left out. */
  readonly without: readonly TraceFeature[];
  /** The budget: steps (the whole campaign's, every shard's share of it), or seconds (each shard's), or both. */
  readonly budget: { readonly steps: number | null; readonly seconds: number | null };
  /** Into how many shards the campaign is split. */
  readonly shards: number;
  /** The shards this summary covers, ascending. */
  readonly covered: readonly number[];
  /** Whether every covered shard ran all its cases (a time budget can stop one first). */
  readonly complete: boolean;
  /** Cases run. */
  readonly cases: number;
  /** Random steps run. */
  readonly steps: number;
  /** Trace lines replayed (each twice: scoped and whole checks). */
  readonly lines: number;
  /** Steps that wrote no line. */
  readonly skipped: number;
  /** Failures, by case number. */
  readonly failures: readonly SummaryFailure[];
}

/** What a summary is of: every field two shards of one campaign share. */
export type SummaryHead = Pick<
  FuzzSummary,
  'seed' | 'profile' | 'policy' | 'maxSteps' | 'without' | 'budget' | 'shards'
>;

/** The summary of one shard's results (in any order; it sorts them by case). */
export function summarize(
  head: SummaryHead,
  shard: number,
  complete: boolean,
  results: readonly CaseResult[],
  reproducers: ReadonlyMap<number, string>,
): FuzzSummary {
  const sorted = [...results].sort((a, b) => a.index - b.index);
  return {
    format: SUMMARY_FORMAT,
    ...head,
    covered: [shard],
    complete,
    cases: sorted.length,
    steps: sum(sorted.map((r) => r.steps)),
    lines: sum(sorted.map((r) => r.lines)),
    skipped: sum(sorted.map((r) => r.skipped)),
    failures: sorted.flatMap((r) =>
      r.failure === undefined
        ? []
        : [
            {
              case: r.index,
              caseSeed: r.caseSeed,
              kind: r.failure.kind,
              message: r.failure.message,
              originalSteps: r.failure.originalSteps,
              shrunkSteps: r.failure.shrunkSteps,
              reproducer: reproducers.get(r.index) ?? null,
            },
          ],
    ),
  };
}

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/** Why summaries cannot be merged. */
export class MergeError extends Error {
  /** The error's name in messages and stacks. */
  override readonly name = 'MergeError';
}

/**
 * Merges summaries of shards of one campaign (the same seed, profile, policy, steps per trace, budget
 * and shard count; no shard twice). Throws `MergeError` naming the first summary that differs.
 */
export function mergeSummaries(summaries: readonly { name: string; summary: FuzzSummary }[]): FuzzSummary {
  if (summaries.length === 0) throw new MergeError('no summaries to merge; expected one or more files');
  const [first] = summaries;
  const headOf = (s: FuzzSummary): string =>
    JSON.stringify([s.seed, s.profile, s.policy, s.maxSteps, s.without, s.budget, s.shards]);
  const seen = new Map<number, string>();
  for (const { name, summary } of summaries) {
    if (headOf(summary) !== headOf(first!.summary)) {
      throw new MergeError(
        `${name} is of another campaign than ${first!.name} (seed, profile, policy, --max-steps, --without, budget or shard count differ); expected shards of one campaign`,
      );
    }
    for (const shard of summary.covered) {
      const other = seen.get(shard);
      if (other !== undefined)
        throw new MergeError(
          `${name} covers shard ${shard}/${summary.shards}, and so does ${other}; expected each shard once`,
        );
      seen.set(shard, name);
    }
  }
  const all = summaries.map((s) => s.summary);
  return {
    format: SUMMARY_FORMAT,
    seed: first!.summary.seed,
    profile: first!.summary.profile,
    policy: first!.summary.policy,
    maxSteps: first!.summary.maxSteps,
    without: first!.summary.without,
    budget: first!.summary.budget,
    shards: first!.summary.shards,
    covered: [...seen.keys()].sort((a, b) => a - b),
    complete: all.every((s) => s.complete),
    cases: sum(all.map((s) => s.cases)),
    steps: sum(all.map((s) => s.steps)),
    lines: sum(all.map((s) => s.lines)),
    skipped: sum(all.map((s) => s.skipped)),
    failures: all.flatMap((s) => s.failures).sort((a, b) => a.case - b.case),
  };
}

/** The summary as JSON, two-space indented, ending in a newline. */
export function summaryJson(summary: FuzzSummary): string {
  return `${JSON.stringify(summary, null, 2)}\n`;
}

/** The summary as text: the figures, then one line per failure. */
export function summaryText(summary: FuzzSummary): string {
  const shards =
    summary.shards === 1
      ? ''
      : `, shard${summary.covered.length === 1 ? '' : 's'} ${summary.covered.join(',')} of ${summary.shards}`;
  const lines = [
    `vpci-fuzz: seed ${summary.seed}, profile ${summary.profile}${summary.without.length === 0 ? '' : ` without ${summary.without.join(',')}`}${shards}: ${summary.cases} traces, ${summary.steps} random steps, ${summary.lines} lines` +
      `${summary.complete ? '' : ' (stopped by the time budget)'}`,
    `${summary.failures.length} failure${summary.failures.length === 1 ? '' : 's'}${summary.failures.length === 0 ? '' : ':'}`,
    ...summary.failures.map(
      (f) =>
        `  case ${f.case}: ${f.kind}: ${f.message} (shrunk ${f.originalSteps} → ${f.shrunkSteps} steps)${f.reproducer === null ? '' : ` → ${f.reproducer}`}`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Reads a summary from JSON text; throws `MergeError` naming `name` when it is not one (so a merge
 * of the wrong file says which).
 */
export function parseSummary(name: string, text: string): FuzzSummary {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new MergeError(
      `${name}: not JSON (${(error as Error).message}); expected a vpci-fuzz --json summary`,
    );
  }
  const s = value as Partial<FuzzSummary> | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    s.format !== SUMMARY_FORMAT ||
    !Array.isArray(s.covered) ||
    !Array.isArray(s.without) ||
    !Array.isArray(s.failures) ||
    typeof s.shards !== 'number' ||
    typeof s.cases !== 'number' ||
    typeof s.steps !== 'number' ||
    typeof s.lines !== 'number' ||
    typeof s.skipped !== 'number'
  ) {
    throw new MergeError(
      `${name}: not a vpci-fuzz summary; expected the JSON of vpci-fuzz --json (format "${SUMMARY_FORMAT}")`,
    );
  }
  return s as FuzzSummary;
}
