/**
 * `arbTrace`: random traces as a fast-check arbitrary, for a test engineer's own properties:
 *
 *     fc.assert(fc.property(arbTrace({ profile: 'hardened' }), (t) => { … replayText(t.text) … }));
 *
 * A trace is written from a `TracePlan` while it is replayed (trace-writer.ts: each line depends on
 * the machine the lines before it built), so generating one costs a replay. It shrinks as its plan
 * does.
 */
import { type ReplayOptions, TraceReplay } from '@vpci/replay';
import type fc from 'fast-check';
import { arbTracePlan, type TracePlan, type TracePlanOptions } from './trace-plan.js';
import { traceLines } from './trace-writer.js';

/** A random trace: its plan, its lines and the whole text (lines ending in newlines). */
export interface FuzzTrace {
  /** What it was written from. */
  readonly plan: TracePlan;
  /** The trace's lines (JSON Lines, docs/trace-format.md). */
  readonly lines: readonly string[];
  /** The lines joined, each ending in a newline: a trace file's content. */
  readonly text: string;
}

/**
 * Writes `plan` as trace lines, replaying each (with `options`: under a rule set other than Xen's,
 * for one) to decide the next. Writing stops early at a line the replay cannot take (the engine
 * threw on it, or refused it): that line is the last.
 */
export function writeTrace(plan: TracePlan, options: ReplayOptions = {}): string[] {
  const replay = new TraceReplay('trace.jsonl', options);
  const lines: string[] = [];
  for (const line of traceLines(plan, () => replay.replayer.machine)) {
    lines.push(line);
    let fed = false;
    try {
      fed = replay.feed(line);
    } catch {
      // The engine threw: the trace ends with the line that makes it throw, for the caller to see.
    }
    if (!fed) break;
  }
  return lines;
}

/** Random traces; see `TracePlanOptions` for what they hold. */
export function arbTrace(options: TracePlanOptions = {}): fc.Arbitrary<FuzzTrace> {
  return arbTracePlan(options).map((plan) => {
    const lines = writeTrace(plan, options.rules === undefined ? {} : { rules: options.rules });
    return { plan, lines, text: `${lines.join('\n')}\n` };
  });
}
