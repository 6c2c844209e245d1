/**
 * The benchmark's mixed-stream kernels and the way each structure gets its own compiled copy of a
 * kernel, shared by `rangeset.bench.ts` and the side-by-side tool `mixed-ab.ts`, so both time the
 * same loop.
 */
import type { RangeSetLike } from './peers.js';

/** Replays `n` operations of a mixed stream; counts true answers in `hits` ([contains, overlaps]). */
export function applyOps(
  set: RangeSetLike,
  ops: Uint8Array,
  starts: Float64Array,
  ends: Float64Array,
  n: number,
  hits: Float64Array,
): void {
  let contains = 0;
  let overlaps = 0;
  for (let i = 0; i < n; i++) {
    const s = starts[i]!;
    const e = ends[i]!;
    switch (ops[i]) {
      case 0:
        set.addRange(s, e);
        break;
      case 1:
        set.removeRange(s, e);
        break;
      case 2:
        if (set.containsRange(s, e)) contains++;
        break;
      default:
        if (set.overlapsRange(s, e)) overlaps++;
    }
  }
  hits[0] = contains;
  hits[1] = overlaps;
}

/** Adds every range of a list in order. */
export function addAll(set: RangeSetLike, starts: Float64Array, ends: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) set.addRange(starts[i]!, ends[i]!);
}

/**
 * Which of `sets` overlap `[start, end]`, bit `i` for `sets[i]`: Step C's query in workload (g),
 * Xen's `rangeset_overlaps_range` against each of a device's BAR sets. RangeSet answers it with
 * `RangeSet.overlappingSets` (the range checked once), as vPCI's `modifyBars` does.
 */
export type OverlappingSets = (sets: readonly RangeSetLike[], start: number, end: number) => number;

/** `OverlappingSets` for the peers, in their natural form: each set's `overlapsRange` in turn. */
export function overlappingEach(sets: readonly RangeSetLike[], start: number, end: number): number {
  let found = 0;
  for (let i = 0; i < sets.length; i++) if (sets[i]!.overlapsRange(start, end)) found |= 1 << i;
  return found;
}

/**
 * A private copy of `fn`, compiled from its source. V8 keeps type feedback per function literal, so
 * one shared loop would see every structure's class at its call sites, go megamorphic, stop inlining
 * and slow down whoever it runs for; each copy compiled by `new Function` has its own feedback, so
 * each structure runs a monomorphic loop. The kernels use only their arguments and globals. tsx
 * compiles with `keepNames`, which may wrap inner functions in `__name(fn, "name")`: the copy gets a
 * no-op `__name`.
 */
export function privateCopy<F extends (...args: never[]) => unknown>(fn: F): F {
  // Each copy's source is made unique: V8 caches what `new Function` compiles by its source text, and
  // copies compiled from the same text shared one function, and with it one set of type feedback.
  // In (g) the kernel RangeSet ran at 100,000 devices had seen all three structures' sets (its
  // `--print-opt-code` checked three maps and called three `overlapsRange`s, none inlined).
  privateCopies++;
  const compile = new Function('__name', `return (${fn.toString()}); // private copy ${privateCopies}`) as (
    name: (f: unknown) => unknown,
  ) => F;
  return compile((f) => f);
}

/** Private copies made so far (see `privateCopy`). */
let privateCopies = 0;
