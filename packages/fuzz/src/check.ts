/**
 * Runs one trace plan: its lines are written (trace-writer.ts) and replayed twice in step, once with
 * the replayer's scoped invariant checks and once checking the whole machine after every line. A
 * failure is the first of:
 * - `crash`: the engine (or the replayer) threw; the message names the exception;
 * - `bad-line`: the replayer refused a written line (a bug of the writer: it only writes lines the
 *   machine can take);
 * - `disagreement`: the scoped and the whole checks saw different violations after a line;
 * - `violation`: under `hardened`, an invariant broke (under `xen` Xen's known holes break them on
 *   purpose, so a violation there is no failure).
 * The trace stops at the line the failure was found after, so its lines are a reproducer.
 */
import { type SeenViolation, TraceReplay } from '@vpci/replay';
import type { Violation } from '@vpci/vpci';
import type { TracePlan } from './trace-plan.js';
import { traceLines } from './trace-writer.js';

/** What went wrong. */
export type FailureKind = 'crash' | 'bad-line' | 'disagreement' | 'violation';

/** A failure of one trace: its kind, the line it was found after (or at, for a crash) and what. */
export interface TraceFailure {
  /** What went wrong. */
  readonly kind: FailureKind;
  /** The 1-based trace line after which it was found; one past the last line for the end of the trace. */
  readonly line: number;
  /** One sentence: the violation, the exception, the refused line's error. */
  readonly message: string;
}

/** The outcome of running one plan. */
export interface TraceCheck {
  /** The lines written (up to the failure). */
  readonly lines: string[];
  /** The plan's steps (each one a line, unless `skipped`). */
  readonly steps: number;
  /** Steps that wrote no line (an access to an unplugged device, moving a device to where it is). */
  readonly skipped: number;
  /** The first failure, if any. */
  readonly failure: TraceFailure | undefined;
}

/** A violation in one line of text: its kind and fields, bigints as hexadecimal. */
export function describeViolation(violation: Violation): string {
  const { kind, ...fields } = violation;
  const shown = JSON.stringify(fields, (_key, value) =>
    typeof value === 'bigint' ? `0x${value.toString(16)}` : value,
  );
  return `${kind} ${shown}`;
}

const keyOf = (seen: SeenViolation): string => `${seen.line} ${describeViolation(seen.violation)}`;

/** Replays `plan`'s lines with scoped and whole checks in step; see the module comment. */
export function checkTrace(plan: TracePlan, name = 'fuzz.jsonl'): TraceCheck {
  const scoped = new TraceReplay(name);
  const full = new TraceReplay(name, { invariantChecks: 'full' });
  const lines: string[] = [];
  const counts = { skipped: 0 };
  const done = (failure: TraceFailure | undefined): TraceCheck => ({
    lines,
    steps: plan.steps.length,
    skipped: counts.skipped,
    failure,
  });
  const writer = traceLines(plan, () => scoped.replayer.machine, counts);
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = writer.next();
    } catch (error) {
      return done(crash(lines.length + 1, error, 'writing the next line'));
    }
    if (next.done) break;
    lines.push(next.value);
    const line = lines.length;
    for (const replay of [scoped, full]) {
      let fed: boolean;
      try {
        fed = replay.feed(next.value);
      } catch (error) {
        return done(crash(line, error, 'replaying it'));
      }
      if (!fed) return done({ kind: 'bad-line', line, message: replay.error!.message });
    }
    const failure = compare(plan, scoped, full, line);
    if (failure !== undefined) return done(failure);
  }
  const end = lines.length + 1;
  try {
    scoped.end();
    full.end();
  } catch (error) {
    return done(crash(end, error, 'finishing the pending work at the end of the trace'));
  }
  return done(compare(plan, scoped, full, end));
}

/** A disagreement between the two replays, or a violation under `hardened`, after `line`. */
function compare(
  plan: TracePlan,
  scoped: TraceReplay,
  full: TraceReplay,
  line: number,
): TraceFailure | undefined {
  const a = scoped.replayer.violations;
  const b = full.replayer.violations;
  if (a.length !== b.length || a.some((v, i) => keyOf(v) !== keyOf(b[i]!))) {
    const onlyScoped = a.filter((v) => !b.some((w) => keyOf(w) === keyOf(v)));
    const onlyFull = b.filter((v) => !a.some((w) => keyOf(w) === keyOf(v)));
    const list = (vs: SeenViolation[]): string =>
      vs.map((v) => describeViolation(v.violation)).join('; ') || 'none';
    return {
      kind: 'disagreement',
      line,
      message: `the scoped check found ${list(onlyScoped)} that the whole check did not, and missed ${list(onlyFull)}`,
    };
  }
  if (plan.profile === 'hardened' && a.length > 0)
    return { kind: 'violation', line, message: describeViolation(a[0]!.violation) };
  return undefined;
}

function crash(line: number, error: unknown, doing: string): TraceFailure {
  const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { kind: 'crash', line, message: `${what} (while ${doing})` };
}
