/**
 * Table-driven unit tests for `RangeSet`.
 *
 * The tables are written in set notation and parsed: `{0-1, 4-5} − {3-4} = {0-1, 5}`, where `a-b` is
 * the inclusive range [a, b], a lone number a singleton, `{}` the empty set, `MAX` is
 * `Number.MAX_SAFE_INTEGER` (Xen's `~0UL`) and `(MAX-k)` a value just below it. The parser only takes
 * canonical notation (it re-prints what it read and checks it gets the same text), and is tested first.
 *
 * Where our answer differs from Xen's (the set stays canonical, the limit counts stored ranges,
 * merge/subtract are all-or-nothing, nothing wraps at MAX), a comment above the row gives Xen's answer,
 * from a reading of xen/common/rangeset.c and from probes: rangeset.c compiled with Xen's unit-test
 * harness (tools/tests/rangeset/), whose outputs the rows and tests marked "probed on Xen" reproduce.
 *
 * Model-based and property tests live in test/; this file pins down named cases and boundaries.
 */
import { describe, expect, it } from 'vitest';
import { NEAR_SEARCH_FROM } from './_internal/chunked-store.js';
import {
  type ConsumeStep,
  type Errno,
  type Failure,
  InvalidArgumentError,
  MAX_VALUE,
  type Range,
  RangeSet,
  RangeSetBusyError,
  type RangeSetOptions,
  type Result,
} from './index.js';

const MAX = Number.MAX_SAFE_INTEGER;

type Pair = readonly [number, number];

// ---- set notation ------------------------------------------------------------------------------------

/** A value in set notation: `MAX` and `(MAX-k)` near the top, decimal otherwise. */
function v(n: number): string {
  if (n === MAX) return 'MAX';
  if (n >= MAX - 1000) return `(MAX-${MAX - n})`;
  return String(n);
}

/** Ranges in set notation: `{0-1, 5}`; `{}` when empty. */
function fmt(ranges: readonly Pair[]): string {
  return `{${ranges.map(([s, e]) => (s === e ? v(s) : `${v(s)}-${v(e)}`)).join(', ')}}`;
}

/** A set's ranges in set notation. */
function show(set: RangeSet): string {
  return fmt(set.toArray());
}

const VALUE = String.raw`\(MAX-\d+\)|MAX|\d+`;
const ITEM = new RegExp(`^(${VALUE})(?:-(${VALUE}))?$`);

function parseValue(text: string): number {
  if (text === 'MAX') return MAX;
  const below = /^\(MAX-(\d+)\)$/.exec(text);
  return below ? MAX - Number(below[1]) : Number(text);
}

/** Parses `{0-1, 5}`; throws unless the ranges are canonical and the text is how `fmt` prints them. */
function parseSet(text: string): Pair[] {
  const body = /^\{(.*)\}$/.exec(text)?.[1];
  if (body === undefined) throw new Error(`not a set: ${text}`);
  const ranges =
    body === ''
      ? []
      : body.split(', ').map((item): Pair => {
          const m = ITEM.exec(item);
          if (!m) throw new Error(`not a range: ${item} in ${text}`);
          const s = parseValue(m[1]!);
          return [s, m[2] === undefined ? s : parseValue(m[2])];
        });
  ranges.forEach(([s, e], i) => {
    if (s > e || (i > 0 && s <= ranges[i - 1]![1] + 1)) throw new Error(`not canonical: ${text}`);
  });
  if (fmt(ranges) !== text) throw new Error(`not in canonical notation: ${text} (reads as ${fmt(ranges)})`);
  return ranges;
}

/** Parses `A op B = C` (`C` may be a failure code such as `ENOMEM`). */
function parseCase(text: string, op: '∪' | '−' | '∩'): { a: Pair[]; b: Pair[]; result: Pair[] | string } {
  const m = new RegExp(`^(\\{[^}]*\\}) ${op} (\\{[^}]*\\}) = (\\{[^}]*\\}|[A-Z]+)$`).exec(text);
  if (!m) throw new Error(`not a case of ${op}: ${text}`);
  const result = m[3]!.startsWith('{') ? parseSet(m[3]!) : m[3]!;
  return { a: parseSet(m[1]!), b: parseSet(m[2]!), result };
}

/** The one range of a parsed singleton-range set such as `{3-4}`. */
function only(ranges: Pair[]): Pair {
  if (ranges.length !== 1) throw new Error(`expected one range, got ${fmt(ranges)}`);
  return ranges[0]!;
}

function make(notation: string | readonly Pair[], options: RangeSetOptions = {}): RangeSet {
  return RangeSet.from(typeof notation === 'string' ? parseSet(notation) : notation, options);
}

// ---- other helpers -----------------------------------------------------------------------------------

/** `n` ranges of `len` values every `step` from `from`: `{0-4, 10-14, 20-24, …}` by default. */
function grid(n: number, step = 10, len = 5, from = 0): Pair[] {
  return Array.from({ length: n }, (_, i): Pair => [from + step * i, from + step * i + len - 1]);
}

/** The ranges left after dropping the first `n` values (what consumeRanges should leave). */
function dropFirst(ranges: readonly Pair[], n: number): Pair[] {
  const out: Pair[] = [];
  for (const [s, e] of ranges) {
    const len = e - s + 1;
    if (n >= len) {
      n -= len;
      continue;
    }
    out.push([s + n, e]);
    n = 0;
  }
  return out;
}

/** Everything observable about a set, to check that a refused or throwing call changed nothing. */
function state(set: RangeSet): { ranges: string; size: number; limit: number; text: string } {
  return { ranges: show(set), size: set.size, limit: set.rangeLimit, text: set.toString() };
}

/** The canonical-form invariant: sorted, disjoint, non-adjacent, and every view of the set agrees. */
function expectCanonical(set: RangeSet): void {
  const ranges = set.toArray();
  expect(set.size).toBe(ranges.length);
  expect(set.isEmpty()).toBe(ranges.length === 0);
  ranges.forEach(([s, e], i) => {
    expect(Number.isSafeInteger(s) && Number.isSafeInteger(e) && s >= 0 && s <= e).toBe(true);
    if (i > 0) expect(s).toBeGreaterThan(ranges[i - 1]![1] + 1);
  });
  expect([...set]).toEqual(ranges);
  const { seen, cb } = recorder();
  set.reportRanges(0, MAX, cb);
  expect(seen).toEqual(ranges);
}

/** The error `fn` throws; fails the test when it returns normally. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return expect.fail('expected a throw');
}

/** Checks that `error` is an `InvalidArgumentError` naming `argument` and the value `received`. */
function expectInvalid(error: unknown, argument: string, received: unknown, shown: string): void {
  expect(error).toBeInstanceOf(InvalidArgumentError);
  expect(error).toBeInstanceOf(RangeError);
  const e = error as InvalidArgumentError;
  expect(e.name).toBe('InvalidArgumentError');
  expect(e.argument).toBe(argument);
  expect(Object.is(e.received, received)).toBe(true);
  expect(e.message.startsWith(`${argument}: expected `)).toBe(true);
  expect(e.message.endsWith(`got ${shown}`)).toBe(true);
}

/** A reportRanges callback that records the ranges it is handed and lets the visit continue. */
function recorder(): { seen: Pair[]; cb: (s: number, e: number) => undefined } {
  const seen: Pair[] = [];
  return {
    seen,
    cb: (s, e) => {
      seen.push([s, e]);
      return undefined;
    },
  };
}

/** A consumeRanges step that continues or restarts after consuming `consumed` values. */
function step(consumed: number, next: 'continue' | 'restart'): ConsumeStep {
  return { consumed, next };
}

/** A consumeRanges step that stops with `code` after consuming `consumed` values. */
function fail<C extends Errno>(consumed: number, code: C): ConsumeStep<C> {
  return { consumed, next: 'fail', code };
}

/** A consumeRanges callback with a budget of values; asks for a restart when the budget runs out. */
function budgeted(budget: number): { seen: Pair[]; cb: (s: number, e: number) => ConsumeStep } {
  const seen: Pair[] = [];
  return {
    seen,
    cb: (s, e) => {
      seen.push([s, e]);
      const consumed = Math.min(budget, e - s + 1);
      budget -= consumed;
      return step(consumed, budget === 0 ? 'restart' : 'continue');
    },
  };
}

describe('the set notation of these tests', () => {
  it.each([
    { text: '{}', ranges: [] },
    { text: '{0}', ranges: [[0, 0]] },
    {
      text: '{0-1, 5}',
      ranges: [
        [0, 1],
        [5, 5],
      ],
    },
    { text: '{2-MAX}', ranges: [[2, MAX]] },
    {
      text: '{0, (MAX-1)-MAX}',
      ranges: [
        [0, 0],
        [MAX - 1, MAX],
      ],
    },
  ] as const)('$text', ({ text, ranges }) => {
    expect(parseSet(text)).toEqual(ranges);
    expect(fmt(ranges)).toBe(text);
  });

  it.each(['{0-1,5}', '{1-0}', '{5, 0}', '{0-1, 2}', '{0-3, 2-5}', '{MAX-1}', '{05}', '0-1', '{x}'])(
    'rejects %s',
    (text) => {
      expect(() => parseSet(text)).toThrow();
    },
  );

  it('parses a case', () => {
    expect(parseCase('{0-1, 4-5} − {3-4} = {0-1, 5}', '−')).toEqual({
      a: [
        [0, 1],
        [4, 5],
      ],
      b: [[3, 4]],
      result: [
        [0, 1],
        [5, 5],
      ],
    });
    expect(parseCase('{5-10} ∪ {0-3} = ENOMEM', '∪').result).toBe('ENOMEM');
  });
});

// ---- Xen's own unit test ---------------------------------------------------------------------------

describe("Xen's tools/tests/rangeset cases", () => {
  // Xen's harness reuses one set, purging it between cases; it adds each range of the left-hand set,
  // removes one range, and reads the result back through report_ranges over [0, MAX].
  const cases = [
    // Case 0: the removal takes the head of the second range and nothing of the first.
    '{0-1, 4-5} − {3-4} = {0-1, 5}',
    // Case 1: the removal swallows a whole range and takes the head of the next one.
    '{0-1, 4-5, 7-8} − {3-7} = {0-1, 8}',
    // Case 2: the removal lies entirely in a gap.
    '{0-1, 4-5} − {2-3} = {0-1, 4-5}',
    // Case 3: the removal trims the tail of one range and the head of the next.
    '{0-1, 4-5} − {1-4} = {0, 5}',
  ];

  for (const chunkSize of [256, 4]) {
    const shared = new RangeSet({ chunkSize });
    it.each(cases)(`%s (one set reused, chunkSize ${chunkSize})`, (text) => {
      const { a, b, result } = parseCase(text, '−');
      shared.purge();
      for (const [s, e] of a) expect(shared.addRange(s, e)).toEqual({ ok: true });
      const [s, e] = only(b);
      expect(shared.removeRange(s, e)).toEqual({ ok: true });
      const { seen, cb } = recorder();
      expect(shared.reportRanges(0, MAX, cb)).toBeUndefined();
      expect(fmt(seen)).toBe(fmt(result as Pair[]));
      expectCanonical(shared);
    });
  }
});

// ---- addRange ----------------------------------------------------------------------------------------

describe('addRange', () => {
  const cases = [
    '{} ∪ {0} = {0}',
    '{} ∪ {MAX} = {MAX}',
    '{} ∪ {0-MAX} = {0-MAX}',
    // Touching on the right: the range is extended.
    '{5-9} ∪ {10-12} = {5-12}',
    // Touching on the left: merged too (Xen gets the same set but allocates a temporary node first).
    '{5-9} ∪ {0-4} = {0-9}',
    // One past the end and one before the start: a one-value gap stays, so two ranges.
    '{5-9} ∪ {11-12} = {5-9, 11-12}',
    '{5-9} ∪ {0-3} = {0-3, 5-9}',
    // Inside, equal, at an edge, covering.
    '{5-9} ∪ {6-7} = {5-9}',
    '{5-9} ∪ {5-9} = {5-9}',
    '{5-9} ∪ {5} = {5-9}',
    '{5-9} ∪ {9} = {5-9}',
    '{5-9} ∪ {3-12} = {3-12}',
    '{5-9} ∪ {0-MAX} = {0-MAX}',
    // Touching on both sides: the new range bridges two into one.
    '{0-1, 3-4} ∪ {2} = {0-4}',
    '{10-20, 30-40} ∪ {21-29} = {10-40}',
    '{10-20, 30-40} ∪ {22-28} = {10-20, 22-28, 30-40}',
    '{10-20, 30-40} ∪ {21} = {10-21, 30-40}',
    '{10-20, 30-40} ∪ {29} = {10-20, 29-40}',
    '{10-20, 30-40} ∪ {15-35} = {10-40}',
    '{10-20, 30-40} ∪ {9-31} = {9-40}',
    '{10-20, 30-40} ∪ {0-50} = {0-50}',
    '{0, 2, 4, 6, 8} ∪ {1-7} = {0-8}',
    '{0, 2, 4, 6, 8} ∪ {3-4} = {0, 2-4, 6, 8}',
    // Probed on Xen (coalescing across several ranges), first step.
    '{0-1, 4-5, 8-9, 12-13} ∪ {3-10} = {0-1, 3-10, 12-13}',
    // Boundaries 0 and MAX.
    '{0-(MAX-1)} ∪ {MAX} = {0-MAX}',
    '{1-MAX} ∪ {0} = {0-MAX}',
    '{(MAX-1)} ∪ {MAX} = {(MAX-1)-MAX}',
    '{MAX} ∪ {(MAX-2)} = {(MAX-2), MAX}',
    '{0, MAX} ∪ {1-(MAX-1)} = {0-MAX}',
    '{0, MAX} ∪ {2-(MAX-2)} = {0, 2-(MAX-2), MAX}',
  ];

  it.each(cases)('%s', (text) => {
    const { a, b, result } = parseCase(text, '∪');
    const set = make(a);
    const [s, e] = only(b);
    expect(set.addRange(s, e)).toEqual({ ok: true });
    expect(show(set)).toBe(fmt(result as Pair[]));
    expectCanonical(set);
  });

  it.each(cases.filter((text) => /∪ \{[^-}]*\} =/.test(text)))('%s (addSingleton)', (text) => {
    const { a, b, result } = parseCase(text, '∪');
    const set = make(a);
    expect(set.addSingleton(only(b)[0])).toEqual({ ok: true });
    expect(show(set)).toBe(fmt(result as Pair[]));
  });

  it('coalesces across several ranges step by step (probed on Xen)', () => {
    const set = make('{0-1, 4-5, 8-9, 12-13}');
    set.addRange(3, 10); // {0-1, 4-5, 8-9, 12-13} ∪ {3-10} = {0-1, 3-10, 12-13}
    expect(show(set)).toBe('{0-1, 3-10, 12-13}');
    set.addSingleton(2); // ∪ {2} = {0-10, 12-13}
    expect(show(set)).toBe('{0-10, 12-13}');
    set.addSingleton(11); // ∪ {11} = {0-13}
    expect(show(set)).toBe('{0-13}');
  });

  it('RangeSet.from takes ranges in any order, overlapping or touching, and stores them canonically', () => {
    // {8-9} ∪ {0-1} ∪ {2-3} ∪ {5-6} ∪ {6-7} ∪ {20} = {0-3, 5-9, 20}
    const set = RangeSet.from([
      [8, 9],
      [0, 1],
      [2, 3],
      [5, 6],
      [6, 7],
      [20, 20],
    ]);
    expect(show(set)).toBe('{0-3, 5-9, 20}');
    expectCanonical(set);
  });

  it('stores -0 as 0 (the value zero, not a negative zero)', () => {
    // {} ∪ {-0 … 3} = {0-3}: -0 passes the safe-integer check and must come back as +0.
    const set = new RangeSet();
    set.addRange(-0, 3);
    const [start] = set.toArray()[0]!;
    expect(Object.is(start, 0)).toBe(true);
  });
});

// ---- removeRange -------------------------------------------------------------------------------------

describe('removeRange', () => {
  const cases = [
    '{} − {0-MAX} = {}',
    '{} − {0} = {}',
    // Trimming the head and the tail.
    '{5-9} − {5} = {6-9}',
    '{5-9} − {9} = {5-8}',
    '{5-9} − {0-6} = {7-9}',
    '{5-9} − {8-MAX} = {5-7}',
    // Splitting one range in two.
    '{5-9} − {7} = {5-6, 8-9}',
    '{5-9} − {6-8} = {5, 9}',
    // One before and one past: nothing to remove.
    '{5-9} − {4} = {5-9}',
    '{5-9} − {10} = {5-9}',
    '{5-9} − {0-4} = {5-9}',
    '{5-9} − {10-MAX} = {5-9}',
    // Removing the whole range, exactly or with a margin.
    '{5-9} − {5-9} = {}',
    '{5-9} − {4-10} = {}',
    '{5-9} − {0-MAX} = {}',
    '{5} − {5} = {}',
    // Boundaries 0 and MAX.
    '{0-MAX} − {0} = {1-MAX}',
    '{0-MAX} − {MAX} = {0-(MAX-1)}',
    '{0-MAX} − {1-(MAX-1)} = {0, MAX}',
    '{0-MAX} − {0-MAX} = {}',
    '{0, MAX} − {1-(MAX-1)} = {0, MAX}',
    // Removal shapes probed on Xen (the first four are Xen's unit-test cases).
    '{0-1, 4-5} − {3-4} = {0-1, 5}',
    '{0-1, 4-5, 7-8} − {3-7} = {0-1, 8}',
    '{0-1, 4-5} − {2-3} = {0-1, 4-5}',
    '{0-1, 4-5} − {1-4} = {0, 5}',
    '{0-9, 20-29, 40-49} − {5-44} = {0-4, 45-49}',
    // Across several ranges.
    '{0-9, 20-29, 40-49} − {10-19} = {0-9, 20-29, 40-49}',
    '{0-9, 20-29, 40-49} − {9-20} = {0-8, 21-29, 40-49}',
    '{0-9, 20-29, 40-49} − {20-29} = {0-9, 40-49}',
    '{0-9, 20-29, 40-49} − {10-39} = {0-9, 40-49}',
    '{0-9, 20-29, 40-49} − {0-49} = {}',
    '{0, 2, 4, 6, 8} − {1-7} = {0, 8}',
    // The MAX-wrap regressions. When the removal ends at MAX and touches more than one range, Xen sets
    // the last range's start to MAX + 1, which wraps to 0, and keeps it. We give the correct answer.
    // Xen: {0-2, 0-MAX}, two overlapping nodes.
    '{0-5, 10-MAX} − {3-MAX} = {0-2}',
    // Xen: {0-MAX}; the first node is freed, the last wraps to [0, MAX] and stays.
    '{0-5, 10-MAX} − {0-MAX} = {}',
    // Xen: {0-3, 0-MAX}.
    '{0-5, 10-20, 30-MAX} − {4-MAX} = {0-3}',
    // Only one range involved: Xen is right here too.
    '{10-MAX} − {12-MAX} = {10-11}',
    '{0-5, 10-MAX} − {10-MAX} = {0-5}',
    '{0-5, 10-MAX} − {6-MAX} = {0-5}',
  ];

  it.each(cases)('%s', (text) => {
    const { a, b, result } = parseCase(text, '−');
    const set = make(a);
    const [s, e] = only(b);
    expect(set.removeRange(s, e)).toEqual({ ok: true });
    expect(show(set)).toBe(fmt(result as Pair[]));
    expectCanonical(set);
  });

  it.each(cases.filter((text) => /− \{[^-}]*\} =/.test(text)))('%s (removeSingleton)', (text) => {
    const { a, b, result } = parseCase(text, '−');
    const set = make(a);
    expect(set.removeSingleton(only(b)[0])).toEqual({ ok: true });
    expect(show(set)).toBe(fmt(result as Pair[]));
  });
});

// ---- queries -----------------------------------------------------------------------------------------

describe('containsRange, overlapsRange, containsSingleton', () => {
  const set = make('{0, 5-9, 20-29, MAX}');
  // range on {0, 5-9, 20-29, MAX} → contains, overlaps
  const cases: ReadonlyArray<[range: string, contains: boolean, overlaps: boolean]> = [
    ['{0}', true, true],
    ['{0-1}', false, true],
    ['{1-4}', false, false],
    ['{4}', false, false],
    ['{4-5}', false, true],
    ['{5}', true, true],
    ['{5-9}', true, true],
    ['{6-8}', true, true],
    ['{9}', true, true],
    ['{9-10}', false, true],
    ['{10}', false, false],
    ['{10-19}', false, false],
    ['{9-20}', false, true],
    ['{5-29}', false, true],
    ['{30-(MAX-1)}', false, false],
    ['{30-MAX}', false, true],
    ['{MAX}', true, true],
    ['{0-MAX}', false, true],
  ];
  it.each(cases)('{0, 5-9, 20-29, MAX} against %s: contains %s, overlaps %s', (range, contains, overlaps) => {
    const [s, e] = only(parseSet(range));
    expect(set.containsRange(s, e)).toBe(contains);
    expect(set.overlapsRange(s, e)).toBe(overlaps);
    if (s === e) expect(set.containsSingleton(s)).toBe(contains);
  });

  it('sets in their stores, queried in turn, each answer overlapsRange from their own ranges', () => {
    // `overlapsRange` hands a stored set's query over in one shared typed array (`STORED_QUERY`), not as
    // arguments: alternating sets and queries, each answer must still be the asked set's own.
    const a = make('{0, 5-9, 20-29, MAX}');
    const b = make('{1-2, 10-11, 30-31}');
    const small = make('{3-4}');
    const queries: ReadonlyArray<[s: number, e: number, inA: boolean, inB: boolean, inSmall: boolean]> = [
      [1, 2, false, true, false],
      [5, 5, true, false, false],
      [10, 19, false, true, false],
      [3, 4, false, false, true],
      [21, 21, true, false, false],
      [30, 31, false, true, false],
      [32, MAX - 1, false, false, false],
      [0, 0, true, false, false],
      [MAX, MAX, true, false, false],
    ];
    for (const [s, e, inA, inB, inSmall] of queries) {
      expect([a.overlapsRange(s, e), b.overlapsRange(s, e), small.overlapsRange(s, e)]).toEqual([
        inA,
        inB,
        inSmall,
      ]);
      expect([b.overlapsRange(s, e), a.overlapsRange(s, e)]).toEqual([inB, inA]);
    }
  });

  it('an empty set contains and overlaps nothing', () => {
    const empty = new RangeSet();
    expect(empty.containsRange(0, 0)).toBe(false);
    expect(empty.overlapsRange(0, MAX)).toBe(false);
    expect(empty.containsSingleton(MAX)).toBe(false);
  });

  it('{0-MAX} contains everything', () => {
    const full = make('{0-MAX}');
    expect(full.containsRange(0, MAX)).toBe(true);
    expect(full.containsSingleton(0)).toBe(true);
    expect(full.containsSingleton(MAX)).toBe(true);
  });

  it('after a claim next to a range, a span across the seam is contained (Xen: false)', () => {
    // claim 5 in {5-10} → {0-10}, one range, so containsRange(0, 10) holds. Xen leaves two adjacent
    // nodes {0-4, 5-10} and answers false.
    const merged = make('{5-10}');
    expect(merged.claimRange(5)).toEqual({ ok: true, start: 0 });
    expect(merged.containsRange(0, 10)).toBe(true);
  });
});

// ---- reportRanges ------------------------------------------------------------------------------------

describe('reportRanges', () => {
  const set = make('{0-9, 20-29, 40-49}');
  // Each reported range is clipped to the window: the set ∩ the window, range by range.
  const windows = [
    // Probed on Xen: report_ranges clips each range to the window.
    '{0-9, 20-29, 40-49} ∩ {5-45} = {5-9, 20-29, 40-45}',
    '{0-9, 20-29, 40-49} ∩ {0-MAX} = {0-9, 20-29, 40-49}',
    '{0-9, 20-29, 40-49} ∩ {10-19} = {}',
    '{0-9, 20-29, 40-49} ∩ {9-20} = {9, 20}',
    '{0-9, 20-29, 40-49} ∩ {0} = {0}',
    '{0-9, 20-29, 40-49} ∩ {29} = {29}',
    '{0-9, 20-29, 40-49} ∩ {30} = {}',
    '{0-9, 20-29, 40-49} ∩ {21-28} = {21-28}',
    '{0-9, 20-29, 40-49} ∩ {49-MAX} = {49}',
    '{0-9, 20-29, 40-49} ∩ {50-MAX} = {}',
  ];

  it.each(windows)('%s', (text) => {
    const { a, b, result } = parseCase(text, '∩');
    expect(fmt(a)).toBe(show(set));
    const [s, e] = only(b);
    const { seen, cb } = recorder();
    expect(set.reportRanges(s, e, cb)).toBeUndefined();
    expect(fmt(seen)).toBe(fmt(result as Pair[]));
  });

  it('visits nothing on an empty set', () => {
    const { seen, cb } = recorder();
    expect(new RangeSet().reportRanges(0, MAX, cb)).toBeUndefined();
    expect(seen).toEqual([]);
  });

  it('clips at MAX: {0-MAX} ∩ {(MAX-1)-MAX}', () => {
    const { seen, cb } = recorder();
    make('{0-MAX}').reportRanges(MAX - 1, MAX, cb);
    expect(fmt(seen)).toBe('{(MAX-1)-MAX}');
  });

  it('stops at the first callback that returns a value, and returns it (probed on Xen)', () => {
    const seen: Pair[] = [];
    const result = set.reportRanges(0, MAX, (s, e) => {
      seen.push([s, e]);
      return seen.length === 2 ? 7 : undefined;
    });
    expect(result).toBe(7);
    expect(fmt(seen)).toBe('{0-9, 20-29}');
  });

  // Unlike Xen, where a 0 return continues, every value but undefined stops the visit.
  it.each([0, false, null, '', 'stop', { found: 20 }])('stops on the value %o', (value) => {
    let calls = 0;
    const result = set.reportRanges(0, MAX, () => {
      calls++;
      return value;
    });
    expect(result).toBe(value);
    expect(calls).toBe(1);
  });

  it('continues while callbacks return undefined, including ones that return nothing', () => {
    let calls = 0;
    const result = set.reportRanges(0, MAX, () => {
      calls++;
    });
    expect(result).toBeUndefined();
    expect(calls).toBe(3);
  });

  it('visits in ascending order', () => {
    const many = make(grid(50, 7, 3), { chunkSize: 4 });
    const { seen, cb } = recorder();
    many.reportRanges(0, MAX, cb);
    expect(seen).toEqual(grid(50, 7, 3));
  });

  it('lets the callback read this set and change other sets', () => {
    const other = new RangeSet();
    set.reportRanges(0, MAX, (s, e) => {
      expect(set.containsRange(s, e)).toBe(true);
      expect(set.size).toBe(3);
      other.addRange(s, e);
    });
    expect(show(other)).toBe(show(set));
  });
});

// ---- consumeRanges -----------------------------------------------------------------------------------

describe('consumeRanges', () => {
  it('consumes with a budget of 15 and resumes after a restart (probed on Xen)', () => {
    // {0-9, 20-29, 40-49}: the first call takes [0,9] (10 values) and 5 values of [20,29], then asks
    // for a restart, leaving {25-29, 40-49}. Xen returns -ERESTART (-85) here.
    const set = make('{0-9, 20-29, 40-49}');
    const first = budgeted(15);
    expect(set.consumeRanges(first.cb)).toEqual({ ok: true, status: 'restart' });
    expect(fmt(first.seen)).toBe('{0-9, 20-29}');
    expect(show(set)).toBe('{25-29, 40-49}');
    // A second call with a budget of 100 sees what is left and empties the set (Xen returns 0).
    const second = budgeted(100);
    expect(set.consumeRanges(second.cb)).toEqual({ ok: true, status: 'done' });
    expect(fmt(second.seen)).toBe('{25-29, 40-49}');
    expect(set.isEmpty()).toBe(true);
  });

  it('returns done at once on an empty set, without calling back', () => {
    let calls = 0;
    const result = new RangeSet().consumeRanges(() => {
      calls++;
      return step(1, 'continue');
    });
    expect(result).toEqual({ ok: true, status: 'done' });
    expect(calls).toBe(0);
  });

  it('reports restart when the budget ends exactly with the set; the next call is done', () => {
    // {0-6} with a budget of 7: the last value goes with the restart, so the set is empty but the
    // status is restart; the next call finds nothing to do.
    const set = make('{0-6}');
    expect(set.consumeRanges(budgeted(7).cb)).toEqual({ ok: true, status: 'restart' });
    expect(set.isEmpty()).toBe(true);
    const again = budgeted(7);
    expect(set.consumeRanges(again.cb)).toEqual({ ok: true, status: 'done' });
    expect(again.seen).toEqual([]);
  });

  it('hands the same range again after a partial continue', () => {
    // {0-9, 20-21} consumed 4 values at a time: [0,9], [4,9], [8,9] (2 left), [20,21].
    const set = make('{0-9, 20-21}');
    const seen: string[] = [];
    const result = set.consumeRanges((s, e) => {
      seen.push(`${s}-${e}`);
      return step(Math.min(4, e - s + 1), 'continue');
    });
    expect(result).toEqual({ ok: true, status: 'done' });
    expect(seen).toEqual(['0-9', '4-9', '8-9', '20-21']);
  });

  it('keeps what is left after a failure and returns the callback’s code', () => {
    // {0-9, 20-29}: consume 3 of [0,9] and fail with EIO → {3-9, 20-29}; no clean-up, as in Xen.
    const set = make('{0-9, 20-29}');
    expect(set.consumeRanges(() => fail(3, 'EIO'))).toEqual({ ok: false, code: 'EIO' });
    expect(show(set)).toBe('{3-9, 20-29}');
  });

  it('keeps earlier progress when a later range fails', () => {
    // {0-9, 20-29}: all of [0,9], then fail on [20,29] with nothing consumed → {20-29}.
    const set = make('{0-9, 20-29}');
    const result = set.consumeRanges<'EBUSY'>((s, e) =>
      s === 0 ? step(e - s + 1, 'continue') : fail(0, 'EBUSY'),
    );
    expect(result).toEqual({ ok: false, code: 'EBUSY' });
    expect(show(set)).toBe('{20-29}');
  });

  it.each([
    [0, '{0-9, 20-29}'],
    [1, '{1-9, 20-29}'],
    [10, '{20-29}'],
  ])('a restart after consuming %i of [0,9] leaves %s', (consumed, after) => {
    const set = make('{0-9, 20-29}');
    expect(set.consumeRanges(() => step(consumed, 'restart'))).toEqual({ ok: true, status: 'restart' });
    expect(show(set)).toBe(after);
  });

  it('consumes a whole range ending at MAX and empties the set (Xen wraps it to [0, MAX])', () => {
    // {10-MAX} consumed whole = {}. Xen moves the start to MAX + 1, which wraps to 0, and does not free
    // the node: the set becomes {0-MAX}.
    const set = make('{10-MAX}');
    expect(set.consumeRanges((s, e) => step(e - s + 1, 'continue'))).toEqual({ ok: true, status: 'done' });
    expect(set.isEmpty()).toBe(true);
  });

  it('consumes the top values one at a time', () => {
    // {(MAX-2)-MAX}: [MAX-2, MAX], [MAX-1, MAX], [MAX, MAX], then {}.
    const set = make('{(MAX-2)-MAX}');
    const seen: string[] = [];
    set.consumeRanges((s, e) => {
      seen.push(fmt([[s, e]]));
      return step(1, 'continue');
    });
    expect(seen).toEqual(['{(MAX-2)-MAX}', '{(MAX-1)-MAX}', '{MAX}']);
    expect(set.isEmpty()).toBe(true);
  });

  describe('rejects a bad consumed count before applying it', () => {
    // On {0-9, 20-29}, [0,9] is consumed whole, then the callback returns a bad count for [20,29]:
    // the error names `consumed`, [0,9] stays consumed and [20,29] stays as it was.
    const bad: ReadonlyArray<{ label: string; consumed: unknown; shown: string }> = [
      { label: 'negative', consumed: -1, shown: '-1' },
      { label: 'above the range length', consumed: 11, shown: '11' },
      { label: 'not an integer', consumed: 1.5, shown: '1.5' },
      { label: 'NaN', consumed: Number.NaN, shown: 'NaN' },
      { label: 'a string', consumed: '3', shown: '"3"' },
      { label: 'unsafe', consumed: 2 ** 53, shown: '9007199254740992' },
    ];
    it.each(bad)('$label ($shown)', ({ consumed, shown }) => {
      const set = make('{0-9, 20-29}');
      const error = thrown(() =>
        set.consumeRanges((s, e) => step(s === 0 ? e - s + 1 : (consumed as number), 'continue')),
      );
      expectInvalid(error, 'consumed', consumed, shown);
      expect(show(set)).toBe('{20-29}');
      expect(set.addRange(0, 0)).toEqual({ ok: true });
    });
  });

  it('accepts consuming exactly the range length, and 0 with restart', () => {
    const set = make('{0-9}');
    expect(set.consumeRanges(() => step(0, 'restart'))).toEqual({ ok: true, status: 'restart' });
    expect(set.consumeRanges(() => step(10, 'continue'))).toEqual({ ok: true, status: 'done' });
  });

  it("throws instead of looping forever when 'continue' consumes nothing", () => {
    const set = make('{0-9}');
    let calls = 0;
    const error = thrown(() =>
      set.consumeRanges(() => {
        calls++;
        return step(0, 'continue');
      }),
    );
    expectInvalid(error, 'consumed', 0, '0');
    expect(calls).toBe(1);
    expect(show(set)).toBe('{0-9}');
  });

  it('rejects an unknown `next` without consuming anything for that step', () => {
    // {0-9}: the callback consumes 3 but names an unknown next step. A rejected argument changes
    // nothing (errors.ts: thrown "before any state changes"), so the set must still be {0-9}.
    const set = make('{0-9}');
    const error = thrown(() => set.consumeRanges(() => step(3, 'bogus' as 'continue')));
    expectInvalid(error, 'next', 'bogus', '"bogus"');
    expect(show(set)).toBe('{0-9}');
  });

  it('passes a callback’s exception through, keeps earlier progress, and stays usable', () => {
    const set = make('{0-9, 20-29}');
    const boom = new Error('boom');
    const error = thrown(() =>
      set.consumeRanges((s, e) => {
        if (s === 20) throw boom;
        return step(e - s + 1, 'continue');
      }),
    );
    expect(error).toBe(boom);
    expect(show(set)).toBe('{20-29}');
    expect(set.addRange(0, 0)).toEqual({ ok: true });
  });

  it('never needs a new range, so it works at limit 0', () => {
    const set = make('{0-9, 20-29}');
    set.limit(0);
    expect(set.consumeRanges(budgeted(12).cb)).toEqual({ ok: true, status: 'restart' });
    expect(show(set)).toBe('{22-29}');
  });
});

// ---- claimRange --------------------------------------------------------------------------------------

describe('claimRange', () => {
  const CLAIM = /^(?:limit (\d+), )?claim (\S+) in (\{[^}]*\})(?: at (\S+) → (\{[^}]*\})|: (ENOSPC|ENOMEM))$/;
  function parseClaim(text: string) {
    const m = CLAIM.exec(text);
    if (!m) throw new Error(`not a claim case: ${text}`);
    return {
      limit: m[1] === undefined ? undefined : Number(m[1]),
      size: parseValue(m[2]!),
      before: m[3]!,
      expected: m[6] === undefined ? { ok: true, start: parseValue(m[4]!) } : { ok: false, code: m[6] },
      after: m[5] ?? m[3]!,
    };
  }

  const cases = [
    // Unlike Xen, the empty set has room: claims start at 0. Xen: ENOSPC for every size.
    'claim 1 in {} at 0 → {0}',
    'claim 5 in {} at 0 → {0-4}',
    'claim MAX in {} at 0 → {0-(MAX-1)}',
    // Probed on Xen (claim_range).
    'claim 1 in {0-3} at 4 → {0-4}',
    'claim 1 in {2-MAX} at 0 → {0, 2-MAX}',
    'claim 2 in {0, 2-MAX}: ENOSPC',
    // The claimed block merges with the range that follows. Xen: start 0, non-canonical {0-4, 5-10}.
    'claim 5 in {5-10} at 0 → {0-10}',
    // Xen: start 5, non-canonical {0-9, 10-20}.
    'claim 5 in {0-4, 10-20} at 5 → {0-20}',
    // Xen: start 5, non-canonical {0-5, 6-9}.
    'claim 1 in {0-4, 6-9} at 5 → {0-9}',
    // First fit: the first gap large enough, counting from 0.
    'claim 4 in {5-10} at 0 → {0-3, 5-10}',
    'claim 6 in {5-10} at 11 → {5-16}',
    'claim 2 in {0-4, 7-9, 20-29} at 5 → {0-9, 20-29}',
    'claim 3 in {0-4, 7-9, 20-29} at 10 → {0-4, 7-12, 20-29}',
    'claim 11 in {0-4, 7-9, 20-29} at 30 → {0-4, 7-9, 20-40}',
    // Near MAX.
    'claim 1 in {0-(MAX-1)} at MAX → {0-MAX}',
    'claim 1 in {1-MAX} at 0 → {0-MAX}',
    'claim 2 in {0, MAX} at 1 → {0-2, MAX}',
    'claim (MAX-1) in {0, MAX} at 1 → {0-MAX}',
    'claim MAX in {0} at 1 → {0-MAX}',
    'claim MAX in {MAX} at 0 → {0-MAX}',
    // No gap large enough.
    'claim 1 in {0-MAX}: ENOSPC',
    'claim 2 in {0-(MAX-1)}: ENOSPC',
    'claim 2 in {1-MAX}: ENOSPC',
    'claim 4 in {0-2, 4-6, 8-MAX}: ENOSPC',
    'claim MAX in {1}: ENOSPC',
    'claim MAX in {(MAX-1)}: ENOSPC',
    // Under a limit: a block that needs a range of its own is refused.
    'limit 0, claim 1 in {}: ENOMEM',
    'limit 1, claim 5 in {6-10}: ENOMEM',
    'limit 2, claim 1 in {2-3, 5-6}: ENOMEM',
    // A block that extends the previous range or merges with the next one is allowed.
    'limit 1, claim 5 in {5-10} at 0 → {0-10}',
    'limit 1, claim 1 in {0-3} at 4 → {0-4}',
    'limit 0, claim 3 in {0-3, 10-12} at 4 → {0-6, 10-12}',
    'limit 2, claim 1 in {0-3, 5-6} at 4 → {0-6}',
    // No room at all is ENOSPC, whatever the limit.
    'limit 0, claim 1 in {0-MAX}: ENOSPC',
  ];

  it.each(cases)('%s', (text) => {
    const { limit, size, before, expected, after } = parseClaim(text);
    const set = make(before);
    if (limit !== undefined) set.limit(limit);
    const was = state(set);
    expect(set.claimRange(size)).toEqual(expected);
    expect(show(set)).toBe(after);
    if (!expected.ok) expect(state(set)).toEqual(was);
    expectCanonical(set);
  });

  it('claims until the space is gone (probed on Xen, continued)', () => {
    // {2-MAX}: claim 1 → 0; claim 2 → ENOSPC (only the hole at 1 is left); claim 1 → 1, {0-MAX}.
    const set = make('{2-MAX}');
    expect(set.claimRange(1)).toEqual({ ok: true, start: 0 });
    expect(set.claimRange(2)).toEqual({ ok: false, code: 'ENOSPC' });
    expect(show(set)).toBe('{0, 2-MAX}');
    expect(set.claimRange(1)).toEqual({ ok: true, start: 1 });
    expect(show(set)).toBe('{0-MAX}');
    expect(set.claimRange(1)).toEqual({ ok: false, code: 'ENOSPC' });
  });

  it('hands out consecutive singletons from an empty set', () => {
    const set = new RangeSet();
    for (let i = 0; i < 5; i++) expect(set.claimRange(1)).toEqual({ ok: true, start: i });
    expect(show(set)).toBe('{0-4}');
  });

  it('refills the hole a removal left (the xg_alloc_unused_page pattern)', () => {
    // {0-9} − {4} = {0-3, 5-9}; claim 1 at 4 → {0-9}.
    const set = make('{0-9}');
    set.removeSingleton(4);
    expect(set.claimRange(1)).toEqual({ ok: true, start: 4 });
    expect(show(set)).toBe('{0-9}');
  });

  const badSizes: ReadonlyArray<{ size: unknown; shown: string }> = [
    { size: 0, shown: '0' },
    { size: -1, shown: '-1' },
    { size: 1.5, shown: '1.5' },
    { size: Number.NaN, shown: 'NaN' },
    { size: 2 ** 53, shown: '9007199254740992' },
    { size: Number.POSITIVE_INFINITY, shown: 'Infinity' },
    { size: '1', shown: '"1"' },
  ];
  it.each(badSizes)('rejects size $shown and changes nothing', ({ size, shown }) => {
    const set = make('{5-10}');
    const was = state(set);
    expectInvalid(
      thrown(() => set.claimRange(size as number)),
      'size',
      size,
      shown,
    );
    expect(state(set)).toEqual(was);
  });
});

// ---- limit and ENOMEM --------------------------------------------------------------------------------

describe('limit and ENOMEM', () => {
  // Probes on Xen: limit 1 on {5-10}, each on a fresh set. Our limit counts stored
  // ranges, so only an operation that would end with 2 ranges is refused.
  const probes = [
    // Xen: ENOMEM; it allocates a temporary node before merging it into [5,10].
    '{5-10} ∪ {0-4} = {0-10}',
    '{5-10} ∪ {11-12} = {5-12}',
    '{5-10} ∪ {3-6} = {3-10}',
    '{5-10} ∪ {0-MAX} = {0-MAX}',
    // A range of its own is needed: refused, unchanged.
    '{5-10} ∪ {0-3} = ENOMEM',
    '{5-10} ∪ {12} = ENOMEM',
    '{5-10} ∪ {MAX} = ENOMEM',
    // A split needs a second range: refused, unchanged (Xen agrees).
    '{5-10} − {5-6} = {7-10}',
    '{5-10} − {6-7} = ENOMEM',
    '{5-10} − {9} = ENOMEM',
    // Trimming and removing whole ranges never need one.
    '{5-10} − {10} = {5-9}',
    '{5-10} − {3-4} = {5-10}',
    '{5-10} − {0-MAX} = {}',
  ];

  it.each(probes)('limit 1: %s', (text) => {
    const adding = text.includes('∪');
    const { a, b, result } = parseCase(text, adding ? '∪' : '−');
    const set = make(a);
    set.limit(1);
    const was = state(set);
    const [s, e] = only(b);
    const outcome = adding ? set.addRange(s, e) : set.removeRange(s, e);
    if (typeof result === 'string') {
      expect(outcome).toEqual({ ok: false, code: result });
      expect(state(set)).toEqual(was);
    } else {
      expect(outcome).toEqual({ ok: true });
      expect(show(set)).toBe(fmt(result));
    }
  });

  it('replays the Xen probe sequence on one set, with our answers', () => {
    // Xen, in sequence on {5-10} with limit 1: add [0,4] → ENOMEM; add [11,12] → {5-12}; add [3,6] →
    // {3-12}; remove [5,6] → ENOMEM; remove [3,4] → {5-12}. We accept the first add (it ends with one
    // range), so the later steps see {0-…} and both removals in the middle are splits.
    const set = make('{5-10}');
    set.limit(1);
    expect(set.addRange(0, 4)).toEqual({ ok: true }); // {5-10} ∪ {0-4} = {0-10}
    expect(set.addRange(11, 12)).toEqual({ ok: true }); // ∪ {11-12} = {0-12}
    expect(set.addRange(3, 6)).toEqual({ ok: true }); // ∪ {3-6} = {0-12}
    expect(show(set)).toBe('{0-12}');
    expect(set.removeRange(5, 6)).toEqual({ ok: false, code: 'ENOMEM' }); // − {5-6}: a split
    expect(set.removeRange(3, 4)).toEqual({ ok: false, code: 'ENOMEM' }); // − {3-4}: a split
    expect(set.removeRange(0, 4)).toEqual({ ok: true }); // − {0-4} = {5-12}, as Xen ends
    expect(show(set)).toBe('{5-12}');
  });

  it('limit 0 on an empty set refuses every add and accepts removals', () => {
    const set = new RangeSet();
    set.limit(0);
    expect(set.rangeLimit).toBe(0);
    expect(set.addRange(0, 0)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(set.addSingleton(MAX)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(set.removeRange(0, MAX)).toEqual({ ok: true });
    expect(set.isEmpty()).toBe(true);
  });

  it('is unlimited until limit is called', () => {
    const set = new RangeSet({ chunkSize: 4 });
    expect(set.rangeLimit).toBe(Number.POSITIVE_INFINITY);
    for (const [s, e] of grid(100)) expect(set.addRange(s, e)).toEqual({ ok: true });
    expect(set.size).toBe(100);
  });

  it('allows exactly `limit` ranges', () => {
    // limit 3: {0-4} ∪ {10-14} ∪ {20-24} works; ∪ {30-34} = ENOMEM; ∪ {25-29} merges and works.
    const set = new RangeSet();
    set.limit(3);
    for (const [s, e] of grid(3)) expect(set.addRange(s, e)).toEqual({ ok: true });
    expect(set.addRange(30, 34)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(show(set)).toBe('{0-4, 10-14, 20-24}');
    expect(set.addRange(25, 29)).toEqual({ ok: true });
    expect(show(set)).toBe('{0-4, 10-14, 20-29}');
  });

  it('refuses a split at the limit, and accepts it once a range is gone', () => {
    // limit 2 on {0-9, 20-29}: − {5} = ENOMEM; − {20-29} = {0-9}; − {5} = {0-4, 6-9}.
    const set = make('{0-9, 20-29}');
    set.limit(2);
    expect(set.removeSingleton(5)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(show(set)).toBe('{0-9, 20-29}');
    expect(set.removeRange(20, 29)).toEqual({ ok: true });
    expect(set.removeSingleton(5)).toEqual({ ok: true });
    expect(show(set)).toBe('{0-4, 6-9}');
  });

  it('keeps its ranges when the limit is set below the size, and then may only shrink', () => {
    const set = make('{0-1, 4-5, 8-9}');
    set.limit(1);
    expect(set.size).toBe(3);
    expect(set.rangeLimit).toBe(1);
    expect(set.addRange(20, 20)).toEqual({ ok: false, code: 'ENOMEM' }); // would be 4 ranges
    expect(set.removeSingleton(8)).toEqual({ ok: true }); // trim: {0-1, 4-5, 9}
    expect(set.addRange(2, 3)).toEqual({ ok: true }); // bridge: {0-5, 9}
    expect(show(set)).toBe('{0-5, 9}');
    expect(set.removeSingleton(3)).toEqual({ ok: false, code: 'ENOMEM' }); // split: would be 3
    expect(set.addRange(6, 8)).toEqual({ ok: true }); // bridge: {0-9}
    expect(show(set)).toBe('{0-9}');
    expect(set.removeSingleton(5)).toEqual({ ok: false, code: 'ENOMEM' }); // split: would be 2
    set.limit(2); // raising the limit allows the split
    expect(set.removeSingleton(5)).toEqual({ ok: true });
    expect(show(set)).toBe('{0-4, 6-9}');
  });

  it('purge empties a set whatever its limit, and the limit stays', () => {
    const set = make(grid(5));
    set.limit(0);
    set.purge();
    expect(set.isEmpty()).toBe(true);
    expect(set.rangeLimit).toBe(0);
    expect(set.addRange(0, 0)).toEqual({ ok: false, code: 'ENOMEM' });
  });

  describe('merge is all or nothing', () => {
    it('refuses a merge past the limit and changes nothing (probed on Xen)', () => {
      // limit 2: {} ∪ {0, 10, 20, 30} would need 4 ranges: ENOMEM, still {}. Xen stops at the first
      // failing add and leaves {0, 10}.
      const l = new RangeSet();
      l.limit(2);
      const other = make('{0, 10, 20, 30}');
      expect(l.merge(other)).toEqual({ ok: false, code: 'ENOMEM' });
      expect(show(l)).toBe('{}');
      expect(show(other)).toBe('{0, 10, 20, 30}');
    });

    it('accepts a merge that ends exactly at the limit', () => {
      // limit 2: {} ∪ {0, 10} = {0, 10}.
      const l = new RangeSet();
      l.limit(2);
      expect(l.merge(make('{0, 10}'))).toEqual({ ok: true });
      expect(show(l)).toBe('{0, 10}');
    });

    it('judges the final count, not the steps: a new range can be paid for by a later bridge', () => {
      // limit 3: {0-1, 10-11, 13-14} ∪ {5, 12} = {0-1, 5, 10-14}, 3 ranges. Adding {5} first would
      // hold 4 ranges for a moment (Xen: ENOMEM with nothing merged); the end result fits.
      const set = make('{0-1, 10-11, 13-14}');
      set.limit(3);
      expect(set.merge(make('{5, 12}'))).toEqual({ ok: true });
      expect(show(set)).toBe('{0-1, 5, 10-14}');
    });

    it('allows a merge that does not grow a set already over its limit', () => {
      // limit 1 on {0, 2, 4}: ∪ {1, 10} = {0-2, 4, 10}, still 3 ranges; ∪ {20} would make 4: refused.
      const set = make('{0, 2, 4}');
      set.limit(1);
      expect(set.merge(make('{1, 10}'))).toEqual({ ok: true });
      expect(show(set)).toBe('{0-2, 4, 10}');
      expect(set.merge(make('{20}'))).toEqual({ ok: false, code: 'ENOMEM' });
      expect(show(set)).toBe('{0-2, 4, 10}');
    });
  });

  describe('subtract is all or nothing', () => {
    it('refuses a subtraction past the limit and changes nothing (probed on Xen)', () => {
      // limit 1: {0-100} − {0-10, 50-60, 90-100} would be {11-49, 61-89}: ENOMEM, still {0-100}.
      // Xen applies the first removal, fails on the split, and leaves {11-100}.
      const s = make('{0-100}');
      s.limit(1);
      expect(s.subtract(make('{0-10, 50-60, 90-100}'))).toEqual({ ok: false, code: 'ENOMEM' });
      expect(show(s)).toBe('{0-100}');
    });

    it('judges the final count: a split can be paid for by a range removed later', () => {
      // limit 2: {0-9, 20-29} − {5, 20-29} = {0-4, 6-9}. Removing {5} first would hold 3 ranges.
      const set = make('{0-9, 20-29}');
      set.limit(2);
      expect(set.subtract(make('{5, 20-29}'))).toEqual({ ok: true });
      expect(show(set)).toBe('{0-4, 6-9}');
    });

    it('accepts trims at limit 0', () => {
      // limit 0: {0-9, 20-29} − {0-2, 27-MAX} = {3-9, 20-26}.
      const set = make('{0-9, 20-29}');
      set.limit(0);
      expect(set.subtract(make('{0-2, 27-MAX}'))).toEqual({ ok: true });
      expect(show(set)).toBe('{3-9, 20-26}');
    });

    it('counts splits at 0 and MAX right', () => {
      // limit 2: {0-MAX} − {0, 5, MAX} = {1-4, 6-(MAX-1)}, 2 ranges; then − {7} would make 3.
      const set = make('{0-MAX}');
      set.limit(2);
      expect(set.subtract(make('{0, 5, MAX}'))).toEqual({ ok: true });
      expect(show(set)).toBe('{1-4, 6-(MAX-1)}');
      expect(set.subtract(make('{7}'))).toEqual({ ok: false, code: 'ENOMEM' });
      expect(show(set)).toBe('{1-4, 6-(MAX-1)}');
    });
  });

  it('swap keeps limits and names with the set objects, so a limited set may hold more than its limit', () => {
    const limited = new RangeSet({ name: 'limited' });
    limited.limit(1);
    const big = make('{0-4, 10-14, 20-24}', { name: 'big' });
    limited.swap(big);
    expect(show(limited)).toBe('{0-4, 10-14, 20-24}');
    expect(limited.rangeLimit).toBe(1);
    expect(limited.name).toBe('limited');
    expect(big.isEmpty()).toBe(true);
    expect(big.rangeLimit).toBe(Number.POSITIVE_INFINITY);
    expect(big.name).toBe('big');
    // The limited set is over its limit: it may not grow, only shrink.
    expect(limited.addRange(100, 100)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(limited.removeRange(10, 14)).toEqual({ ok: true });
    expect(big.addRange(100, 100)).toEqual({ ok: true });
  });
});

// ---- merge, subtract, swap, purge and the views ------------------------------------------------------

describe('merge', () => {
  const cases = [
    '{} ∪ {} = {}',
    '{} ∪ {0-1, 5} = {0-1, 5}',
    '{0-1, 5} ∪ {} = {0-1, 5}',
    '{0-1, 10-11} ∪ {2-9} = {0-11}',
    '{0-1, 10-11} ∪ {5, 20} = {0-1, 5, 10-11, 20}',
    '{0-9} ∪ {0-9} = {0-9}',
    '{0, 2, 4} ∪ {1, 3, 5} = {0-5}',
    '{0} ∪ {MAX} = {0, MAX}',
    '{5-9} ∪ {0-MAX} = {0-MAX}',
    '{0-4, 10-14, 20-24} ∪ {5-9, 15-19} = {0-24}',
  ];
  it.each(cases)('%s', (text) => {
    const { a, b, result } = parseCase(text, '∪');
    const set = make(a);
    const other = make(b);
    expect(set.merge(other)).toEqual({ ok: true });
    expect(show(set)).toBe(fmt(result as Pair[]));
    expect(show(other)).toBe(fmt(b));
    expectCanonical(set);
  });

  it('merging a set with itself changes nothing', () => {
    const set = make('{0-1, 5}');
    set.limit(0);
    expect(set.merge(set)).toEqual({ ok: true });
    expect(show(set)).toBe('{0-1, 5}');
  });
});

describe('subtract', () => {
  const cases = [
    '{} − {0-MAX} = {}',
    '{0-1, 5} − {} = {0-1, 5}',
    '{0-9} − {0-9} = {}',
    '{0-9, 20-29, 40-49} − {5-44} = {0-4, 45-49}',
    '{0-100} − {0-10, 50-60, 90-100} = {11-49, 61-89}',
    '{0-5} − {1, 3, 5} = {0, 2, 4}',
    '{0-5, 10-MAX} − {3-MAX} = {0-2}',
    '{0-9} − {10-MAX} = {0-9}',
  ];
  it.each(cases)('%s', (text) => {
    const { a, b, result } = parseCase(text, '−');
    const set = make(a);
    const other = make(b);
    expect(set.subtract(other)).toEqual({ ok: true });
    expect(show(set)).toBe(fmt(result as Pair[]));
    expect(show(other)).toBe(fmt(b));
    expectCanonical(set);
  });

  it('subtracting a set from itself purges it (Xen deadlocks)', () => {
    const set = make('{0-1, 5}');
    set.limit(0);
    expect(set.subtract(set)).toEqual({ ok: true });
    expect(set.isEmpty()).toBe(true);
    expect(set.rangeLimit).toBe(0);
  });
});

describe('swap', () => {
  it('exchanges the ranges; names and print flags stay with the objects', () => {
    const a = make('{0-1}', { name: 'a', hex: true });
    const b = make('{10-11, 20}', { name: 'b' });
    a.swap(b);
    expect(show(a)).toBe('{10-11, 20}');
    expect(show(b)).toBe('{0-1}');
    expect(a.toString()).toBe('a          { a-b, 14 }');
    expect(b.toString()).toBe('b          { 0-1 }');
    expectCanonical(a);
    expectCanonical(b);
    // The two stay independent.
    a.addRange(0, 0);
    expect(show(b)).toBe('{0-1}');
  });

  it('swapping with an empty set moves everything across', () => {
    const a = make('{0-4, 10-14}');
    const b = new RangeSet();
    a.swap(b);
    expect(a.isEmpty()).toBe(true);
    expect(show(b)).toBe('{0-4, 10-14}');
  });

  it('swapping a set with itself changes nothing', () => {
    const a = make('{0-1}');
    a.swap(a);
    expect(show(a)).toBe('{0-1}');
  });

  // A set with chunkSize 4 takes the ranges of a default set (one chunk of n ranges), then grows and
  // shrinks across them; the default set takes chunkSize-4 ranges and does the same. Nothing in the
  // API ties the chunk size to the ranges, so both must work and hold exactly what they should.
  it.each([5, 20])('works between sets of different chunk sizes (%i ranges), and both stay usable', (n) => {
    const small = new RangeSet({ chunkSize: 4 });
    const large = make(grid(n));
    small.swap(large);
    for (let i = 0; i < n; i++) expect(small.addSingleton(10 * i + 6)).toEqual({ ok: true });
    expect(small.toArray()).toEqual(
      grid(n).flatMap(([s, e]): Pair[] => [
        [s, e],
        [e + 2, e + 2],
      ]),
    );
    for (let i = 0; i < n; i++) expect(small.removeRange(10 * i, 10 * i + 4)).toEqual({ ok: true });
    expect(small.toArray()).toEqual(grid(n, 10, 1, 6));
    expectCanonical(small);

    large.swap(make(grid(n), { chunkSize: 4 }));
    for (let i = 0; i < n; i++) expect(large.addSingleton(10 * i + 6)).toEqual({ ok: true });
    expect(large.size).toBe(2 * n);
    expectCanonical(large);
  });
});

// A set holds up to two ranges in its own fields and moves them into a chunked store when an update
// needs a third; it moves back when the store is found empty. Each case crosses that boundary.
describe('two ranges in the fields, more in the store', () => {
  it('grows past two ranges by an add, a split and a claim, and answers the same on both sides', () => {
    const set = make('{10-19}');
    expect(set.removeRange(14, 15)).toEqual({ ok: true }); // a split: two ranges
    expect(show(set)).toBe('{10-13, 16-19}');
    expect(set.removeRange(11, 11)).toEqual({ ok: true }); // a split of the first of two: three
    expect(show(set)).toBe('{10, 12-13, 16-19}');
    expect(set.addRange(30, 30)).toEqual({ ok: true });
    expect(set.claimRange(1)).toEqual({ ok: true, start: 0 });
    expect(show(set)).toBe('{0, 10, 12-13, 16-19, 30}');
    expect([set.overlapsRange(20, 29), set.overlapsRange(19, 29), set.containsRange(16, 19)]).toEqual([
      false,
      true,
      true,
    ]);
    expect(set.removeRange(0, 12)).toEqual({ ok: true }); // back to three, still in the store
    expect(set.removeRange(13, 29)).toEqual({ ok: true });
    expect(show(set)).toBe('{30}');
    expectCanonical(set);
  });

  it.each([
    ['{0-1, 5-6} ∪ {3} = {0-1, 3, 5-6}', '{0-1, 5-6}', [3, 3]],
    ['{0-1, 5-6} ∪ {9} = {0-1, 5-6, 9}', '{0-1, 5-6}', [9, 9]],
    ['{3-4, 8-9} ∪ {0} = {0, 3-4, 8-9}', '{3-4, 8-9}', [0, 0]],
    ['{0-1, 5-6} ∪ {2-4} = {0-6}', '{0-1, 5-6}', [2, 4]],
    ['{0-1, 5-6} ∪ {2} = {0-2, 5-6}', '{0-1, 5-6}', [2, 2]],
    ['{0-1, 5-6} ∪ {4} = {0-1, 4-6}', '{0-1, 5-6}', [4, 4]],
  ] as const)('%s', (text, before, [s, e]) => {
    const set = make(before);
    expect(set.addRange(s, e)).toEqual({ ok: true });
    expect(show(set)).toBe(text.split(' = ')[1]);
    expectCanonical(set);
  });

  it.each([
    ['{0-9, 20-29} − {5} = {0-4, 6-9, 20-29}', '{0-9, 20-29}', [5, 5]],
    ['{0-9, 20-29} − {25} = {0-9, 20-24, 26-29}', '{0-9, 20-29}', [25, 25]],
    ['{0-9, 20-29} − {5-25} = {0-4, 26-29}', '{0-9, 20-29}', [5, 25]],
    ['{0-9, 20-29} − {0-25} = {26-29}', '{0-9, 20-29}', [0, 25]],
    ['{0-9, 20-29} − {5-29} = {0-4}', '{0-9, 20-29}', [5, 29]],
    ['{0-9, 20-29} − {0-29} = {}', '{0-9, 20-29}', [0, 29]],
    ['{0-9, 20-29} − {0-9} = {20-29}', '{0-9, 20-29}', [0, 9]],
    ['{0-9, 20-29} − {20-29} = {0-9}', '{0-9, 20-29}', [20, 29]],
    ['{0-9, 20-29} − {10-19} = {0-9, 20-29}', '{0-9, 20-29}', [10, 19]],
  ] as const)('%s', (text, before, [s, e]) => {
    const set = make(before);
    expect(set.removeRange(s, e)).toEqual({ ok: true });
    expect(show(set)).toBe(text.split(' = ')[1]);
    expectCanonical(set);
  });

  it('a limit at the boundary refuses the third range and accepts it once raised', () => {
    const set = make('{2-9, 20-29}');
    set.limit(2);
    const was = state(set);
    expect(set.removeRange(5, 5)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(set.addRange(40, 40)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(set.claimRange(1)).toEqual({ ok: false, code: 'ENOMEM' }); // [0, 0] would be a third range
    expect(state(set)).toEqual(was);
    expect(set.addRange(10, 19)).toEqual({ ok: true }); // merging needs no new range
    expect(show(set)).toBe('{2-29}');
    set.limit(1);
    expect(set.removeRange(5, 5)).toEqual({ ok: false, code: 'ENOMEM' });
    set.limit(3);
    expect(set.removeRange(5, 5)).toEqual({ ok: true });
    expect(set.removeRange(15, 15)).toEqual({ ok: true });
    expect(show(set)).toBe('{2-4, 6-14, 16-29}');
    expect(set.removeRange(25, 25)).toEqual({ ok: false, code: 'ENOMEM' }); // in the store now
    expect(show(set)).toBe('{2-4, 6-14, 16-29}');
  });

  it('a set over its limit after a swap may shrink from the store back into its fields', () => {
    const limited = new RangeSet();
    limited.limit(1);
    const big = make('{0, 2, 4, 6}');
    limited.swap(big);
    expect(limited.size).toBe(4);
    expect(limited.addRange(8, 8)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(limited.removeRange(0, 4)).toEqual({ ok: true });
    expect(limited.removeRange(6, 6)).toEqual({ ok: true });
    expect(limited.isEmpty()).toBe(true);
    expect(limited.addRange(8, 8)).toEqual({ ok: true });
    expect(limited.addRange(10, 10)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(show(limited)).toBe('{8}');
  });

  it('a consume that restarts in the store resumes there and ends back in the fields, then grows again', () => {
    const set = make('{0-2, 10-12, 20-22}', { chunkSize: 4 });
    let budget = 4;
    const worker = (s: number, e: number): ConsumeStep => {
      const consumed = Math.min(budget, e - s + 1);
      budget -= consumed;
      return { consumed, next: budget === 0 ? 'restart' : 'continue' };
    };
    expect(set.consumeRanges(worker)).toEqual({ ok: true, status: 'restart' });
    expect(show(set)).toBe('{11-12, 20-22}');
    budget = 4;
    expect(set.consumeRanges(worker)).toEqual({ ok: true, status: 'restart' });
    expect(show(set)).toBe('{22}');
    budget = 4;
    expect(set.consumeRanges(worker)).toEqual({ ok: true, status: 'done' });
    expect(set.isEmpty()).toBe(true);
    for (const v of [0, 2, 4, 6, 8]) expect(set.addSingleton(v)).toEqual({ ok: true });
    expect(show(set)).toBe('{0, 2, 4, 6, 8}');
    expectCanonical(set);
  });

  it('a consume in the fields that fails keeps the rest, and the callback reads the set as it is', () => {
    const set = make('{0-2, 10-12}');
    const seen: string[] = [];
    const result = set.consumeRanges((s, e): ConsumeStep<'EIO'> => {
      seen.push(`${show(set)} size ${set.size} contains ${s}-${e}: ${set.containsRange(s, e)}`);
      return s === 0 ? { consumed: 3, next: 'continue' } : { consumed: 1, next: 'fail', code: 'EIO' };
    });
    expect(result).toEqual({ ok: false, code: 'EIO' });
    expect(seen).toEqual(['{0-2, 10-12} size 2 contains 0-2: true', '{10-12} size 1 contains 10-12: true']);
    expect(show(set)).toBe('{11-12}');
  });

  it('swaps a set in its fields with one in its store, both ways, and both keep working', () => {
    const fields = make('{0-1, 5}', { chunkSize: 4 });
    const stored = make(grid(6));
    fields.swap(stored);
    expect(show(stored)).toBe('{0-1, 5}');
    expect(fields.toArray()).toEqual(grid(6));
    expect(stored.addRange(10, 10)).toEqual({ ok: true }); // a third range: into the store
    expect(fields.removeRange(0, 54)).toEqual({ ok: true }); // emptied: back into the fields
    expect(fields.addRange(7, 7)).toEqual({ ok: true });
    stored.swap(fields);
    expect(show(fields)).toBe('{0-1, 5, 10}');
    expect(show(stored)).toBe('{7}');
    expectCanonical(fields);
    expectCanonical(stored);
  });

  it('refuses every mutation from inside a callback on either side of the boundary', () => {
    for (const notation of ['{0-1}', '{0-1, 5}', '{0-1, 5, 9}']) {
      const set = make(notation, { name: 'busy' });
      const was = state(set);
      const errors: unknown[] = [];
      const tryAll = (): void => {
        for (const mutate of [
          () => set.addRange(20, 20),
          () => set.removeRange(0, 0),
          () => set.swap(new RangeSet()),
          () => set.purge(),
          () => set.consumeRanges(() => step(1, 'continue')),
        ]) {
          try {
            mutate();
          } catch (error) {
            errors.push(error);
          }
        }
      };
      set.reportRanges(0, MAX, () => tryAll());
      const result = set.consumeRanges(() => {
        tryAll();
        return step(0, 'restart');
      });
      expect(result).toEqual({ ok: true, status: 'restart' });
      expect(errors).toHaveLength(5 * (set.size + 1));
      for (const error of errors) expect(error).toBeInstanceOf(RangeSetBusyError);
      expect(state(set)).toEqual(was);
    }
  });
});

describe('purge, isEmpty, size', () => {
  it('purge empties the set, twice is harmless, and the set is usable afterwards', () => {
    const set = make(grid(10), { chunkSize: 4 });
    expect(set.size).toBe(10);
    expect(set.isEmpty()).toBe(false);
    set.purge();
    expect(set.size).toBe(0);
    expect(set.isEmpty()).toBe(true);
    expect(set.toArray()).toEqual([]);
    set.purge();
    expect(set.isEmpty()).toBe(true);
    expect(set.addRange(3, 4)).toEqual({ ok: true });
    expect(show(set)).toBe('{3-4}');
  });

  it.each([
    ['{}', 0],
    ['{0-MAX}', 1],
    ['{0, 2, MAX}', 3],
  ] as const)('size of %s is %i: it counts ranges, not values', (text, size) => {
    expect(make(text).size).toBe(size);
    expect(make(text).isEmpty()).toBe(size === 0);
  });
});

describe('iteration and toArray', () => {
  it('for..of, spread and Array.from yield the ranges in ascending order', () => {
    const set = make('{0-9, 20-29, MAX}');
    const seen: Range[] = [];
    for (const range of set) seen.push(range);
    expect(fmt(seen)).toBe('{0-9, 20-29, MAX}');
    expect([...set]).toEqual(seen);
    expect(Array.from(set)).toEqual(seen);
    expect(set.toArray()).toEqual(seen);
    expect([...new RangeSet()]).toEqual([]);
  });

  it('iterates over a snapshot: changes during the loop do not affect it', () => {
    const set = make('{0-9, 20-29}');
    const seen: Range[] = [];
    for (const range of set) {
      seen.push(range);
      set.addRange(100, 100);
      set.removeRange(20, 29);
    }
    expect(fmt(seen)).toBe('{0-9, 20-29}');
    expect(show(set)).toBe('{0-9, 100}');
  });

  it('toArray and the iterator return fresh arrays that the caller may change', () => {
    const set = make('{0-9, 20-29}');
    const first = set.toArray();
    const second = set.toArray();
    expect(first).not.toBe(second);
    expect(first[0]).not.toBe(second[0]);
    first[0]![0] = 5;
    first.push([100, 200]);
    expect(show(set)).toBe('{0-9, 20-29}');
    const [range] = [...set];
    range![1] = 1000;
    expect(show(set)).toBe('{0-9, 20-29}');
  });
});

// ---- callbacks must not modify their set -------------------------------------------------------------

describe('modifying the set from its own callback', () => {
  // Every verb that changes a set, with the set as `this`; `other` is an idle set where one is needed.
  const mutations: ReadonlyArray<{ name: string; run: (set: RangeSet, other: RangeSet) => unknown }> = [
    { name: 'addRange', run: (set) => set.addRange(100, 100) },
    { name: 'removeRange', run: (set) => set.removeRange(0, 0) },
    { name: 'addSingleton', run: (set) => set.addSingleton(100) },
    { name: 'removeSingleton', run: (set) => set.removeSingleton(0) },
    { name: 'claimRange', run: (set) => set.claimRange(1) },
    { name: 'purge', run: (set) => set.purge() },
    { name: 'merge', run: (set, other) => set.merge(other) },
    { name: 'merge itself', run: (set) => set.merge(set) },
    { name: 'subtract', run: (set, other) => set.subtract(other) },
    { name: 'subtract itself', run: (set) => set.subtract(set) },
    { name: 'swap', run: (set, other) => set.swap(other) },
    { name: 'swap itself', run: (set) => set.swap(set) },
    { name: 'consumeRanges', run: (set) => set.consumeRanges(() => step(1, 'continue')) },
  ];
  /** The operation the error names: the verb without "itself". */
  const verb = (name: string): string => name.split(' ')[0]!;

  /** Expects a `RangeSetBusyError` for `operation` on the set named `set` inside `callback`. */
  function expectBusy(error: unknown, set: string, operation: string, callback: string): void {
    expect(error).toBeInstanceOf(RangeSetBusyError);
    expect(error).toMatchObject({ name: 'RangeSetBusyError', set, operation, callback });
    expect(String(error)).toBe(
      `RangeSetBusyError: RangeSet ${set}: ${operation} called from a ${callback} callback on the same set`,
    );
  }

  // With the limit at the set's size, a growing mutation would fail with ENOMEM if the limit were
  // checked first (merge once did): the busy set must throw whatever else the call would do.
  describe.each([
    { limit: 'no limit', apply: (_: RangeSet) => {} },
    { limit: 'the limit reached', apply: (set: RangeSet) => set.limit(set.size) },
  ])('with $limit', ({ apply }) => {
    it.each(mutations)(
      '$name inside reportRanges throws; the set is unchanged and usable after',
      ({ name, run }) => {
        const set = make('{0-9, 20-29}', { name: 'busy' });
        apply(set);
        const other = make('{40}');
        const was = state(set);
        const error = thrown(() => set.reportRanges(0, MAX, () => run(set, other)));
        expectBusy(error, 'busy', verb(name), 'reportRanges');
        expect(state(set)).toEqual(was);
        expect(show(other)).toBe('{40}');
        expect(set.removeRange(0, 0)).toEqual({ ok: true }); // no longer busy (and within any limit)
      },
    );

    it.each(mutations)('$name inside consumeRanges throws; the set is usable after', ({ name, run }) => {
      const set = make('{0-9, 20-29}', { name: 'busy' });
      apply(set);
      const other = make('{40}');
      const error = thrown(() =>
        set.consumeRanges(() => {
          run(set, other);
          return step(1, 'continue');
        }),
      );
      expectBusy(error, 'busy', verb(name), 'consumeRanges');
      expect(show(set)).toBe('{0-9, 20-29}');
      expect(show(other)).toBe('{40}');
      expect(set.removeRange(0, 0)).toEqual({ ok: true });
    });
  });

  it('a mutation inside a reportRanges nested in another throws and names the outer callback', () => {
    const set = make('{0-9}', { name: 'busy' });
    const error = thrown(() =>
      set.consumeRanges(() => {
        set.reportRanges(0, MAX, () => set.addRange(50, 50));
        return step(1, 'continue');
      }),
    );
    expectBusy(error, 'busy', 'addRange', 'consumeRanges');
    expect(show(set)).toBe('{0-9}');
  });

  // The busy set as the *other* argument of another set's verb: `swap` changes it, so it throws;
  // `merge` and `subtract` only read it, and reading a busy set is allowed (R5).
  const asArgument: ReadonlyArray<{
    name: string;
    run: (idle: RangeSet, busy: RangeSet) => unknown;
    idle: string;
  }> = [
    { name: 'merge', run: (idle, busy) => idle.merge(busy), idle: '{0-9, 20-29, 40}' },
    { name: 'subtract', run: (idle, busy) => idle.subtract(busy), idle: '{40}' },
  ];

  it.each(['reportRanges', 'consumeRanges'] as const)(
    'swap with the busy set as the argument throws inside its %s callback; both sets are unchanged',
    (callback) => {
      const busy = make('{0-9, 20-29}', { name: 'busy' });
      const idle = make('{40}', { name: 'idle' });
      const error = thrown(() =>
        callback === 'reportRanges'
          ? busy.reportRanges(0, MAX, () => idle.swap(busy))
          : busy.consumeRanges(() => {
              idle.swap(busy);
              return step(1, 'continue');
            }),
      );
      expectBusy(error, 'busy', 'swap', callback);
      expect(show(busy)).toBe('{0-9, 20-29}');
      expect(show(idle)).toBe('{40}');
      expect(idle.addRange(8, 8)).toEqual({ ok: true }); // the calling set was not left busy
      expect(busy.addRange(50, 50)).toEqual({ ok: true });
    },
  );

  it.each(asArgument)(
    '$name with the busy set as the argument reads it: allowed in reportRanges',
    ({ run, idle }) => {
      // {0-9, 20-29, 40} ∪ or − {0-9, 20-29}, computed inside the busy set's reportRanges callback.
      const busy = make('{0-9, 20-29}');
      const other = make('{0-9, 20-29, 40}');
      busy.reportRanges(0, 0, () => {
        expect(run(other, busy)).toEqual({ ok: true });
      });
      expect(show(other)).toBe(idle);
      expect(show(busy)).toBe('{0-9, 20-29}');
    },
  );

  it.each(asArgument)(
    '$name with the busy set as the argument reads it: allowed in consumeRanges',
    ({ name, run }) => {
      // The callback sees the set as it is at each step: {0-9, 20-29}, then {20-29} after [0-9] is consumed.
      const busy = make('{0-9, 20-29}');
      const seen: string[] = [];
      busy.consumeRanges((s, e) => {
        const other = make('{0-9, 20-29, 40}');
        expect(run(other, busy)).toEqual({ ok: true });
        seen.push(show(other));
        return step(e - s + 1, 'continue');
      });
      expect(seen).toEqual(
        name === 'merge' ? ['{0-9, 20-29, 40}', '{0-9, 20-29, 40}'] : ['{40}', '{0-9, 40}'],
      );
      expect(busy.isEmpty()).toBe(true);
    },
  );

  it('a callback may modify another set, even one that reads this set', () => {
    const set = make('{0-9, 20-29}');
    const copy = new RangeSet();
    set.consumeRanges((s, e) => {
      copy.addRange(s, e);
      copy.merge(set);
      return step(e - s + 1, 'continue');
    });
    expect(set.isEmpty()).toBe(true);
    expect(show(copy)).toBe('{0-9, 20-29}');
  });

  it('limit is not a change of the ranges and is allowed inside a callback', () => {
    const set = make('{0-9}');
    set.reportRanges(0, MAX, () => set.limit(1));
    expect(set.rangeLimit).toBe(1);
  });
});

// ---- chunk boundaries ---------------------------------------------------------------------------------

describe('across chunk boundaries (chunkSize 4)', () => {
  // 40 ranges {0-4, 10-14, …, 390-394} in chunks of at most 4: the operations below cross chunks,
  // split full ones and let small ones merge.
  const N = 40;
  const base = grid(N);
  const chunked = (ranges: readonly Pair[] = base): RangeSet => make(ranges, { chunkSize: 4 });

  const orders: ReadonlyArray<{ name: string; ranges: readonly Pair[] }> = [
    { name: 'ascending', ranges: base },
    { name: 'descending', ranges: [...base].reverse() },
    {
      name: 'evens then odds',
      ranges: [...base.filter((_, i) => i % 2 === 0), ...base.filter((_, i) => i % 2 === 1)],
    },
    { name: 'outside in', ranges: base.map((_, i) => base[i % 2 === 0 ? i / 2 : N - 1 - (i - 1) / 2]!) },
  ];
  it.each(orders)('builds the same set whatever the insertion order ($name)', ({ ranges }) => {
    const set = chunked(ranges);
    expect(set.toArray()).toEqual(base);
    expectCanonical(set);
  });

  it('answers queries at every range edge', () => {
    const set = chunked();
    for (const [s, e] of base) {
      expect(set.containsRange(s, e)).toBe(true);
      expect(set.containsSingleton(s)).toBe(true);
      expect(set.containsSingleton(e)).toBe(true);
      expect(set.containsSingleton(s - 1 < 0 ? MAX : s - 1)).toBe(false);
      expect(set.containsSingleton(e + 1)).toBe(false);
      expect(set.containsRange(s, e + 1)).toBe(false);
      expect(set.overlapsRange(e + 1, e + 5)).toBe(false);
      expect(set.overlapsRange(e, e + 5)).toBe(true);
    }
    expect(set.overlapsRange(395, MAX)).toBe(false);
  });

  it('{0-4, 10-14, …, 390-394} − {23-377} = {0-4, 10-14, 20-22, 380-384, 390-394}', () => {
    const set = chunked();
    expect(set.removeRange(23, 377)).toEqual({ ok: true });
    expect(show(set)).toBe('{0-4, 10-14, 20-22, 380-384, 390-394}');
    expectCanonical(set);
  });

  it('{0-4, 10-14, …, 390-394} ∪ {3-382} = {0-384, 390-394}', () => {
    const set = chunked();
    expect(set.addRange(3, 382)).toEqual({ ok: true });
    expect(show(set)).toBe('{0-384, 390-394}');
    expectCanonical(set);
  });

  it.each(Array.from({ length: N - 1 }, (_, i) => i))('trims range %i and the next one at once', (i) => {
    // {…, 10i-(10i+4), (10i+10)-(10i+14), …} − {(10i+3)-(10i+11)}: both ranges lose their inner edges.
    const set = chunked();
    expect(set.removeRange(10 * i + 3, 10 * i + 11)).toEqual({ ok: true });
    const expected = base.map(
      ([s, e], j): Pair => (j === i ? [s, s + 2] : j === i + 1 ? [s + 2, e] : [s, e]),
    );
    expect(set.toArray()).toEqual(expected);
    expectCanonical(set);
  });

  it('splits every range in the middle: 40 ranges become 80', () => {
    const set = chunked();
    for (const [s] of base) expect(set.removeSingleton(s + 2)).toEqual({ ok: true });
    expect(set.toArray()).toEqual(
      base.flatMap(([s, e]): Pair[] => [
        [s, s + 1],
        [s + 3, e],
      ]),
    );
    expectCanonical(set);
  });

  it('fills every gap: 40 ranges merge one by one into {0-394}', () => {
    const set = chunked();
    for (let i = 0; i < N - 1; i++) {
      expect(set.addRange(10 * i + 5, 10 * i + 9)).toEqual({ ok: true });
      expect(set.size).toBe(N - 1 - i);
    }
    expect(show(set)).toBe('{0-394}');
    expect(set.containsRange(0, 394)).toBe(true);
  });

  it('fills the gaps top down and in a scattered order to the same result', () => {
    const down = chunked();
    for (let i = N - 2; i >= 0; i--) down.addRange(10 * i + 5, 10 * i + 9);
    expect(show(down)).toBe('{0-394}');
    const scattered = chunked();
    for (let k = 0; k < N - 1; k++) {
      const i = (k * 17) % (N - 1);
      scattered.addRange(10 * i + 5, 10 * i + 9);
      expectCanonical(scattered);
    }
    expect(show(scattered)).toBe('{0-394}');
  });

  it('removes every range one by one, odds from the top then evens from the bottom', () => {
    const set = chunked();
    const left = new Set(base.keys());
    const odds = [...base.keys()].filter((i) => i % 2 === 1).reverse();
    const evens = [...base.keys()].filter((i) => i % 2 === 0);
    for (const i of [...odds, ...evens]) {
      const [s, e] = base[i]!;
      expect(set.removeRange(s, e)).toEqual({ ok: true });
      left.delete(i);
      expect(set.toArray()).toEqual(base.filter((_, j) => left.has(j)));
    }
    expect(set.isEmpty()).toBe(true);
    expect(set.addRange(7, 7)).toEqual({ ok: true });
    expect(show(set)).toBe('{7}');
  });

  it('reports a window over several chunks, clipped, and stops early', () => {
    const set = chunked();
    const { seen, cb } = recorder();
    set.reportRanges(42, 91, cb);
    expect(fmt(seen)).toBe('{42-44, 50-54, 60-64, 70-74, 80-84, 90-91}');
    const visited: number[] = [];
    const found = set.reportRanges(0, MAX, (s) => {
      visited.push(s);
      return s >= 230 ? s : undefined;
    });
    expect(found).toBe(230);
    expect(visited).toEqual(base.slice(0, 24).map(([s]) => s));
  });

  it('consumes with restarts across chunks, 7 values per call', () => {
    // 200 values: 28 calls restart after 7 values each; the 29th takes the last 4 and is done.
    const set = chunked();
    for (let call = 1; call <= 28; call++) {
      expect(set.consumeRanges(budgeted(7).cb)).toEqual({ ok: true, status: 'restart' });
      expect(set.toArray()).toEqual(dropFirst(base, 7 * call));
    }
    const last = budgeted(7);
    expect(set.consumeRanges(last.cb)).toEqual({ ok: true, status: 'done' });
    expect(last.seen).toEqual(dropFirst(base, 7 * 28));
    expect(set.isEmpty()).toBe(true);
  });

  it("a budgeted consume's first step in the store sees every change made between its calls", () => {
    // The first step of a consume in the store remembers where the first range sits; every change of
    // the set between two calls must show in the next call's first range, and nothing else may move.
    const set = chunked(); // {0-4, 10-14, …, 390-394} in chunks of 4
    const firstHanded = (): Pair => {
      const run = budgeted(2);
      expect(set.consumeRanges(run.cb)).toEqual({ ok: true, status: 'restart' });
      return run.seen[0]!;
    };
    expect(firstHanded()).toEqual([0, 4]);
    expect(firstHanded()).toEqual([2, 4]); // {4, 10-14, …}
    expect(set.removeRange(4, 11)).toEqual({ ok: true }); // the first range gone, the next cut
    expect(firstHanded()).toEqual([12, 14]);
    expect(set.addRange(0, 13)).toEqual({ ok: true }); // merged into the first range from below
    expect(firstHanded()).toEqual([0, 14]);
    expect(set.removeRange(0, 45)).toEqual({ ok: true }); // the first chunk and more dropped
    expect(firstHanded()).toEqual([50, 54]);
    const other = chunked(grid(8, 10, 5, 1000));
    set.swap(other);
    expect(firstHanded()).toEqual([1000, 1004]);
    other.swap(set); // back: the set left off at {52-54, 60-64, …}
    expect(firstHanded()).toEqual([52, 54]);
    expect(set.claimRange(7)).toEqual({ ok: true, start: 0 });
    expect(firstHanded()).toEqual([0, 6]);
    set.purge();
    expect(set.addRange(300, 309)).toEqual({ ok: true });
    expect(set.addRange(320, 329)).toEqual({ ok: true });
    expect(set.addRange(340, 349)).toEqual({ ok: true }); // a third range: back in the store
    expect(firstHanded()).toEqual([300, 309]);
    expect(show(set)).toBe('{302-309, 320-329, 340-349}');
    expectCanonical(set);
  });

  it("a consume's first step in the store: a throw, a bad step and a mutation from inside change nothing", () => {
    const set = chunked();
    const was = set.toArray();
    expect(() =>
      set.consumeRanges(() => {
        throw new Error('callback failed');
      }),
    ).toThrow('callback failed');
    expect(set.toArray()).toEqual(was);
    expectInvalid(
      thrown(() => set.consumeRanges(() => step(6, 'restart'))),
      'consumed',
      6,
      '6',
    );
    expect(set.toArray()).toEqual(was);
    expect(() =>
      set.consumeRanges((s) => {
        set.removeRange(s, s);
        return step(1, 'restart');
      }),
    ).toThrow(RangeSetBusyError);
    expect(set.toArray()).toEqual(was);
    // Usable afterwards: not left busy by any of the three.
    expect(set.removeRange(0, 0)).toEqual({ ok: true });
    expect(set.consumeRanges(() => ({ consumed: 2, next: 'fail', code: 'EIO' }))).toEqual({
      ok: false,
      code: 'EIO',
    });
    expect(set.toArray()).toEqual(dropFirst(base, 3));
    // A callback that reads the set sees it as it is, and its step still applies where it should.
    const reads: string[] = [];
    expect(
      set.consumeRanges((s, e) => {
        reads.push(`${set.size} ${set.containsRange(s, e)} ${set.toArray()[0]}`);
        return step(1, 'restart');
      }),
    ).toEqual({ ok: true, status: 'restart' });
    expect(reads).toEqual([`${N} true 3,4`]);
    expect(set.toArray()).toEqual(dropFirst(base, 4));
    // 'continue' after part of the first range goes on from what is left of it.
    const run = budgeted(6);
    expect(set.consumeRanges(run.cb)).toEqual({ ok: true, status: 'restart' });
    expect(run.seen).toEqual([
      [4, 4],
      [10, 14],
    ]);
    expect(set.toArray()).toEqual(dropFirst(base, 10));
  });

  // The first step of a stored set with `restart` is the budgeted consumer's common call: its count is
  // checked there as everywhere (R4), and a count that uses the range up drops it.
  const badRestarts: ReadonlyArray<{ label: string; consumed: unknown; shown: string }> = [
    { label: 'negative', consumed: -1, shown: '-1' },
    { label: 'above the range length', consumed: 6, shown: '6' },
    { label: 'not an integer', consumed: 1.5, shown: '1.5' },
    { label: 'NaN', consumed: Number.NaN, shown: 'NaN' },
    { label: 'a string', consumed: '3', shown: '"3"' },
  ];
  it.each(badRestarts)(
    "a consume's first step in the store rejects a restart's count: $label ($shown)",
    ({ consumed, shown }) => {
      const set = chunked();
      expectInvalid(
        thrown(() => set.consumeRanges(() => step(consumed as number, 'restart'))),
        'consumed',
        consumed,
        shown,
      );
      expect(set.toArray()).toEqual(base);
    },
  );

  it("a consume's first step in the store that uses the range up with a restart drops it", () => {
    const set = chunked();
    expect(set.consumeRanges(() => step(2, 'restart'))).toEqual({ ok: true, status: 'restart' });
    // The 3 values left of [0, 4], then a restart: the next call starts on the second range.
    expect(set.consumeRanges((s, e) => step(e - s + 1, 'restart'))).toEqual({ ok: true, status: 'restart' });
    expect(set.toArray()).toEqual(dropFirst(base, 5));
    const run = budgeted(7);
    expect(set.consumeRanges(run.cb)).toEqual({ ok: true, status: 'restart' });
    expect(run.seen).toEqual([
      [10, 14],
      [20, 24],
    ]);
    expect(set.toArray()).toEqual(dropFirst(base, 12));
    expectCanonical(set);
  });

  it('claims first fit across chunks', () => {
    // Every gap holds 5 values: claim 5 fills {5-9}; claim 6 fits only past the end, at 395.
    const set = chunked();
    expect(set.claimRange(5)).toEqual({ ok: true, start: 5 });
    expect(set.claimRange(6)).toEqual({ ok: true, start: 395 });
    expect(set.toArray()[0]).toEqual([0, 14]);
    expect(set.toArray().at(-1)).toEqual([390, 400]);
    expect(set.size).toBe(N - 1);
    // Claims of 5 now fill the remaining gaps in order, each merging two ranges.
    for (let i = 1; i < N - 1; i++) expect(set.claimRange(5)).toEqual({ ok: true, start: 10 * i + 5 });
    expect(show(set)).toBe('{0-400}');
  });

  it('merges and subtracts chunked sets', () => {
    const evens = chunked(grid(20, 20)); // {0-4, 20-24, …, 380-384}
    const odds = chunked(grid(20, 20, 5, 10)); // {10-14, 30-34, …, 390-394}
    const union = chunked(grid(20, 20));
    expect(union.merge(odds)).toEqual({ ok: true });
    expect(union.toArray()).toEqual(base);
    expect(union.merge(chunked(grid(N - 1, 10, 5, 5)))).toEqual({ ok: true }); // the gaps
    expect(show(union)).toBe('{0-394}');
    expect(union.subtract(evens)).toEqual({ ok: true });
    expect(union.toArray()).toEqual([...grid(19, 20, 15, 5), [385, 394]]);
    expect(union.subtract(union)).toEqual({ ok: true });
    expect(union.isEmpty()).toBe(true);
  });

  it('refuses every split at the limit and allows every trim', () => {
    const set = chunked();
    set.limit(N);
    for (const [s, e] of base) {
      expect(set.removeSingleton(s + 2)).toEqual({ ok: false, code: 'ENOMEM' });
      expect(set.removeSingleton(e)).toEqual({ ok: true });
    }
    expect(set.toArray()).toEqual(grid(N, 10, 4));
    expect(set.addRange(1000, 1000)).toEqual({ ok: false, code: 'ENOMEM' });
    expect(set.merge(chunked(grid(3, 10, 1, 7)))).toEqual({ ok: false, code: 'ENOMEM' });
    expect(set.toArray()).toEqual(grid(N, 10, 4));
  });

  it('holds a thousand ranges and takes them apart in one removal', () => {
    const set = new RangeSet({ chunkSize: 4 });
    const many = grid(1000, 3, 1); // {0, 3, 6, …, 2997}
    for (const [s, e] of many) set.addRange(s, e);
    expect(set.size).toBe(1000);
    expect(set.toArray()).toEqual(many);
    expect(set.removeRange(1, 2996)).toEqual({ ok: true });
    expect(show(set)).toBe('{0, 2997}');
  });
});

// ---- bad arguments -----------------------------------------------------------------------------------

describe('bad arguments throw InvalidArgumentError and change nothing', () => {
  const badValues: ReadonlyArray<{ value: unknown; shown: string }> = [
    { value: Number.NaN, shown: 'NaN' },
    { value: -1, shown: '-1' },
    { value: 1.5, shown: '1.5' },
    // checkRange's whole-number test squares a scaled difference: unscaled, these underflow to 0.
    { value: 1e-300, shown: '1e-300' },
    { value: Number.MIN_VALUE, shown: '5e-324' },
    // Past 2^51 the cheap test's rounding spacing is 2: a half there must still fail.
    { value: 2 ** 51 + 0.5, shown: '2251799813685248.5' },
    { value: 2 ** 53, shown: '9007199254740992' },
    { value: Number.POSITIVE_INFINITY, shown: 'Infinity' },
    { value: '3', shown: '"3"' },
    { value: undefined, shown: 'undefined' },
    { value: null, shown: 'null' },
    { value: 3n, shown: '3n' },
  ];

  // Each call puts the bad value x in one argument and valid values in the others.
  const calls: ReadonlyArray<{ call: string; argument: string; run: (set: RangeSet, x: number) => unknown }> =
    [
      { call: 'addRange(x, 30)', argument: 'start', run: (set, x) => set.addRange(x, 30) },
      { call: 'addRange(0, x)', argument: 'end', run: (set, x) => set.addRange(0, x) },
      { call: 'removeRange(x, 30)', argument: 'start', run: (set, x) => set.removeRange(x, 30) },
      { call: 'removeRange(0, x)', argument: 'end', run: (set, x) => set.removeRange(0, x) },
      { call: 'containsRange(x, 30)', argument: 'start', run: (set, x) => set.containsRange(x, 30) },
      { call: 'containsRange(0, x)', argument: 'end', run: (set, x) => set.containsRange(0, x) },
      { call: 'overlapsRange(x, 30)', argument: 'start', run: (set, x) => set.overlapsRange(x, 30) },
      { call: 'overlapsRange(0, x)', argument: 'end', run: (set, x) => set.overlapsRange(0, x) },
      {
        call: 'reportRanges(x, 30, cb)',
        argument: 'start',
        run: (set, x) => set.reportRanges(x, 30, () => expect.fail('called back')),
      },
      {
        call: 'reportRanges(0, x, cb)',
        argument: 'end',
        run: (set, x) => set.reportRanges(0, x, () => expect.fail('called back')),
      },
      { call: 'addSingleton(x)', argument: 'value', run: (set, x) => set.addSingleton(x) },
      { call: 'removeSingleton(x)', argument: 'value', run: (set, x) => set.removeSingleton(x) },
      { call: 'containsSingleton(x)', argument: 'value', run: (set, x) => set.containsSingleton(x) },
      { call: 'claimRange(x)', argument: 'size', run: (set, x) => set.claimRange(x) },
      { call: 'limit(x)', argument: 'maxRanges', run: (set, x) => set.limit(x) },
    ];

  const rows = calls.flatMap((c) =>
    badValues.map((b) => ({ ...c, ...b, label: c.call.replace('x', b.shown) })),
  );

  it.each(rows)('$label', ({ argument, run, value, shown }) => {
    const set = make('{0-9, 20-29}');
    set.limit(5);
    const was = state(set);
    expectInvalid(
      thrown(() => run(set, value as number)),
      argument,
      value,
      shown,
    );
    expect(state(set)).toEqual(was);
    expect(set.addRange(40, 40)).toEqual({ ok: true }); // not left busy
  });

  const reversed: ReadonlyArray<{ call: string; run: (set: RangeSet) => unknown }> = [
    { call: 'addRange(5, 3)', run: (set) => set.addRange(5, 3) },
    { call: 'removeRange(5, 3)', run: (set) => set.removeRange(5, 3) },
    { call: 'containsRange(5, 3)', run: (set) => set.containsRange(5, 3) },
    { call: 'overlapsRange(5, 3)', run: (set) => set.overlapsRange(5, 3) },
    {
      call: 'reportRanges(5, 3, cb)',
      run: (set) => set.reportRanges(5, 3, () => expect.fail('called back')),
    },
  ];
  it.each(reversed)('$call: start > end names end and the value', ({ run }) => {
    const set = make('{0-9, 20-29}');
    const was = state(set);
    const error = thrown(() => run(set));
    expectInvalid(error, 'end', 3, '3');
    expect((error as Error).message).toBe('end: expected a value >= start (5), got 3');
    expect(state(set)).toEqual(was);
  });

  // `checkRange` folds its five conditions into two comparisons (products and a sum of squares, see
  // errors.ts): every pair of these values, each edge of a condition or of the folding's arithmetic,
  // must be accepted exactly when a plain reading of the contract accepts it.
  const edges = [
    ...[Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, -1e300, 1e300, -2, -1, -0.5],
    ...[-Number.MIN_VALUE, -1e-300, -0, 0, Number.MIN_VALUE, 1e-300, 0.25, 0.5, 1 - 2 ** -53, 1],
    ...[1 + 2 ** -52, 1.5, 2, 30, 12_345.000_000_001, 2 ** 36 + 0.5, 2 ** 51 - 1, 2 ** 51, 2 ** 51 + 0.5],
    ...[2 ** 51 + 1, 2 ** 52 - 0.5, 2 ** 52, 2 ** 52 + 1, MAX - 1, MAX, 2 ** 53, 2 ** 53 + 2],
  ];
  const accepted = (s: number, e: number): boolean =>
    Number.isSafeInteger(s) && Number.isSafeInteger(e) && s >= 0 && s <= e;
  const rangeVerbs: ReadonlyArray<(set: RangeSet, s: number, e: number) => unknown> = [
    (set, s, e) => set.containsRange(s, e),
    (set, s, e) => set.overlapsRange(s, e),
    (set, s, e) => set.reportRanges(s, e, () => undefined),
    (set, s, e) => set.addRange(s, e),
    (set, s, e) => set.removeRange(s, e),
    (set, s, e) => RangeSet.overlappingSets([set], s, e),
  ];
  it('every range verb accepts a pair of edge values exactly when both are safe integers >= 0 and start <= end', () => {
    let refused = 0;
    for (const s of edges) {
      for (const e of edges) {
        for (const verb of rangeVerbs) {
          const set = make('{10-19, 40-49}');
          let error: unknown;
          try {
            verb(set, s, e);
          } catch (caught) {
            error = caught;
          }
          if (accepted(s, e)) expect(error, `[${s}, ${e}]`).toBeUndefined();
          else {
            expect(error, `[${s}, ${e}]`).toBeInstanceOf(InvalidArgumentError);
            expect(show(set)).toBe('{10-19, 40-49}');
            refused++;
          }
        }
      }
    }
    // Most pairs are refused; the accepted ones include every valid pair of the list.
    expect(refused).toBeGreaterThan(1000);
  });

  it('start == end is a one-value range, accepted everywhere', () => {
    const set = new RangeSet();
    expect(set.addRange(MAX, MAX)).toEqual({ ok: true });
    expect(set.containsRange(MAX, MAX)).toBe(true);
    expect(set.overlapsRange(0, 0)).toBe(false);
    expect(set.removeRange(0, 0)).toEqual({ ok: true });
  });

  const peers: ReadonlyArray<{ call: string; run: (set: RangeSet, x: RangeSet) => unknown }> = [
    { call: 'merge', run: (set, x) => set.merge(x) },
    { call: 'subtract', run: (set, x) => set.subtract(x) },
    { call: 'swap', run: (set, x) => set.swap(x) },
  ];
  const notSets: ReadonlyArray<{ value: unknown; shown: string }> = [
    { value: null, shown: 'null' },
    { value: undefined, shown: 'undefined' },
    { value: {}, shown: '[object Object]' },
    { value: [[0, 1]], shown: '[object Array]' },
  ];
  it.each(peers.flatMap((p) => notSets.map((n) => ({ ...p, ...n }))))(
    '$call($shown) names other',
    ({ run, value, shown }) => {
      const set = make('{0-9}');
      const was = state(set);
      expectInvalid(
        thrown(() => run(set, value as RangeSet)),
        'other',
        value,
        shown,
      );
      expect(state(set)).toEqual(was);
    },
  );

  it.each(notSets)(
    'overlappingSets names sets[i] for an element $shown, the first such',
    ({ value, shown }) => {
      const sets = [make('{0-9}'), make('{20-29}'), value, new RangeSet()] as RangeSet[];
      expectInvalid(
        thrown(() => RangeSet.overlappingSets(sets, 0, 5)),
        'sets[2]',
        value,
        shown,
      );
      expectInvalid(
        thrown(() => RangeSet.overlappingSets([value, value] as RangeSet[], 0, 5)),
        'sets[0]',
        value,
        shown,
      );
    },
  );

  it('overlappingSets names sets[i] for a hole and for a number', () => {
    // biome-ignore lint/suspicious/noSparseArray: a hole, which reads as undefined
    const holey = [make('{0-9}'), , make('{20-29}')] as RangeSet[];
    expectInvalid(
      thrown(() => RangeSet.overlappingSets(holey, 0, 5)),
      'sets[1]',
      undefined,
      'undefined',
    );
    expectInvalid(
      thrown(() => RangeSet.overlappingSets([make('{0-9}'), 7 as unknown as RangeSet], 0, 5)),
      'sets[1]',
      7,
      '7',
    );
  });

  it('overlappingSets takes up to 31 sets (bit 30 the last) and names sets past that', () => {
    const sets = Array.from({ length: 31 }, (_, i) => make([[10 * i, 10 * i + 4]]));
    expect(RangeSet.overlappingSets(sets, 300, 300)).toBe(2 ** 30);
    expect(RangeSet.overlappingSets(sets, 0, 310)).toBe(2 ** 31 - 1);
    expect(RangeSet.overlappingSets([], 0, 5)).toBe(0);
    const more = [...sets, new RangeSet()];
    const error = thrown(() => RangeSet.overlappingSets(more, 0, 5));
    expectInvalid(error, 'sets', more, '[object Array]');
    expect((error as Error).message).toBe('sets: expected at most 31 RangeSets, got [object Array]');
  });

  // `overlappingSets` answers sets in their fields in one loop and, once it meets a set in its store
  // with the query inside that set's bounds, asks every set again out of line (`overlappingStored`):
  // the sets before that one, the store's own answer and the sets after it must all be right, in
  // every order, and a query must not see the range of the query before it.
  it('overlappingSets answers sets in their fields and in their stores together, in every order', () => {
    // Each set's ranges as written here are the model: a set holds a value of [s, e] iff one of them
    // meets it.
    const defs: readonly (readonly Pair[])[] = [
      [[0, 9]],
      [
        [20, 29],
        [40, 49],
        [60, 69],
      ],
      [
        [50, 59],
        [80, 89],
      ],
      [],
      [
        [5, 5],
        [30, 31],
        [45, 46],
        [70, 75],
      ],
    ];
    const windows: readonly Pair[] = [
      [0, 3],
      [35, 39],
      [44, 44],
      [47, 52],
      [30, 30],
      [76, 79],
      [0, 100],
      [62, 62],
      [32, 39],
      [5, 5],
    ];
    const orders = [
      [0, 1, 2, 3, 4],
      [1, 0, 2, 3, 4],
      [2, 3, 4, 0, 1],
      [4, 1, 3, 2, 0],
    ];
    for (const order of orders) {
      const sets = order.map((k) => make(defs[k]!));
      const was = sets.map(state);
      // Twice over, so that each window follows a different one the second time.
      for (const [s, e] of [...windows, ...[...windows].reverse()]) {
        let want = 0;
        order.forEach((k, i) => {
          if (defs[k]!.some(([a, b]) => a <= e && b >= s)) want |= 1 << i;
        });
        expect(RangeSet.overlappingSets(sets, s, e), `order ${order}, [${s}, ${e}]`).toBe(want);
      }
      expect(sets.map(state)).toEqual(was);
    }
  });

  it('overlappingSets names a bad element that follows a set in its store', () => {
    const stored = make('{20-29, 40-49, 60-69}');
    // [30, 45] lies within the stored set's bounds, so the store is asked before the bad element is met.
    expectInvalid(
      thrown(() => RangeSet.overlappingSets([stored, null] as unknown as RangeSet[], 30, 45)),
      'sets[1]',
      null,
      'null',
    );
    const notASet = {};
    expectInvalid(
      thrown(() => RangeSet.overlappingSets([make('{0-9}'), stored, notASet] as RangeSet[], 30, 45)),
      'sets[2]',
      notASet,
      '[object Object]',
    );
    const more = [stored, ...Array.from({ length: 31 }, () => new RangeSet())];
    expectInvalid(
      thrown(() => RangeSet.overlappingSets(more, 30, 45)),
      'sets',
      more,
      '[object Array]',
    );
  });

  it('overlappingSets checks the range before the sets, and changes no set', () => {
    const sets = [make('{0-9}'), make('{20-29, 40-49, 60-69}')];
    const was = sets.map(state);
    expectInvalid(
      thrown(() => RangeSet.overlappingSets([...sets, null] as RangeSet[], 5, 3)),
      'end',
      3,
      '3',
    );
    expectInvalid(
      thrown(() => RangeSet.overlappingSets(sets, -1, 3)),
      'start',
      -1,
      '-1',
    );
    expect(sets.map(state)).toEqual(was);
  });

  it('limit accepts 0 and the largest safe integer', () => {
    const set = new RangeSet();
    set.limit(0);
    expect(set.rangeLimit).toBe(0);
    set.limit(MAX);
    expect(set.rangeLimit).toBe(MAX);
  });

  const options: ReadonlyArray<{
    label: string;
    options: unknown;
    argument: string;
    value: unknown;
    shown: string;
  }> = [
    { label: 'name: 5', options: { name: 5 }, argument: 'options.name', value: 5, shown: '5' },
    { label: 'chunkSize: 3', options: { chunkSize: 3 }, argument: 'options.chunkSize', value: 3, shown: '3' },
    {
      label: 'chunkSize: 65537',
      options: { chunkSize: 65537 },
      argument: 'options.chunkSize',
      value: 65537,
      shown: '65537',
    },
    {
      label: 'chunkSize: 4.5',
      options: { chunkSize: 4.5 },
      argument: 'options.chunkSize',
      value: 4.5,
      shown: '4.5',
    },
    {
      label: "chunkSize: '8'",
      options: { chunkSize: '8' },
      argument: 'options.chunkSize',
      value: '8',
      shown: '"8"',
    },
  ];
  it.each(options)('new RangeSet({ $label }) names $argument', ({ options: o, argument, value, shown }) => {
    expectInvalid(
      thrown(() => new RangeSet(o as RangeSetOptions)),
      argument,
      value,
      shown,
    );
  });

  it('accepts the chunk sizes 4 and 65536', () => {
    expect(new RangeSet({ chunkSize: 4 }).isEmpty()).toBe(true);
    expect(new RangeSet({ chunkSize: 65536 }).isEmpty()).toBe(true);
  });

  it('RangeSet.from with a reversed pair throws', () => {
    expectInvalid(
      thrown(() =>
        make([
          [0, 1],
          [5, 3],
        ]),
      ),
      'end',
      3,
      '3',
    );
  });

  it('MAX_VALUE is Number.MAX_SAFE_INTEGER and is accepted', () => {
    expect(MAX_VALUE).toBe(MAX);
    expect(make([[MAX_VALUE, MAX_VALUE]]).containsSingleton(MAX_VALUE)).toBe(true);
  });

  it('whole values from 2^51 to MAX_VALUE are accepted by every range verb (checkRange sends odd ones to its detailed path)', () => {
    for (const v of [2 ** 51, 2 ** 51 + 1, 2 ** 52 - 1, 2 ** 52 + 1, MAX - 2, MAX]) {
      const set = new RangeSet();
      expect(set.addRange(v, v)).toEqual({ ok: true });
      expect(set.containsRange(v, v)).toBe(true);
      expect(set.overlapsRange(v - 1, v)).toBe(true);
      expect(set.reportRanges(v, v, (s, e) => [s, e])).toEqual([v, v]);
      expect(set.removeRange(v, v)).toEqual({ ok: true });
      expect(set.isEmpty()).toBe(true);
    }
  });
});

// ---- typed values ------------------------------------------------------------------------------------

describe('a set of branded values (RangeSet<T>)', () => {
  // Two kinds of number that must not mix, as guest and machine frames in @vpci/p2m. The `@ts-expect-error`
  // lines fail the typecheck if they ever compile.
  type Apple = number & { readonly __brand: 'Apple' };
  type Pear = number & { readonly __brand: 'Pear' };
  const apple = (n: number): Apple => n as Apple;
  const pear = (n: number): Pear => n as Pear;

  it('takes values of its type and hands them back with that type', () => {
    const apples = RangeSet.from<Apple>([[apple(0), apple(9)]]);
    expect(apples.addRange(apple(20), apple(29))).toEqual({ ok: true });
    const seen: Array<[Apple, Apple]> = [];
    apples.reportRanges(apple(0), apple(100), (s, e) => {
      seen.push([s, e]);
    });
    expect(seen).toEqual([
      [0, 9],
      [20, 29],
    ]);
    const listed: Array<Range<Apple>> = [...apples];
    expect(listed).toEqual(apples.toArray());
    const claimed = apples.claimRange(5);
    const start: Apple | undefined = claimed.ok ? claimed.start : undefined;
    expect(start).toBe(10);
    const consumed: Apple[] = [];
    apples.consumeRanges((s, e) => {
      consumed.push(s);
      return step(e - s + 1, 'continue');
    });
    expect(consumed).toEqual([0, 20]);
  });

  it('refuses values, sets and callbacks of another type at compile time', () => {
    const apples = new RangeSet<Apple>();
    const pears = new RangeSet<Pear>();
    const plain = new RangeSet();
    // @ts-expect-error a pear is not an apple
    apples.addRange(pear(1), pear(2));
    // @ts-expect-error a plain number is not an apple either
    apples.containsSingleton(3);
    // @ts-expect-error sets of different kinds do not merge
    apples.merge(pears);
    // @ts-expect-error nor subtract
    apples.subtract(plain);
    // @ts-expect-error nor swap
    plain.swap(apples);
    // @ts-expect-error the set is invariant: a set of apples is not a set of numbers (it would take any)
    const widened: RangeSet = apples;
    // @ts-expect-error a callback expecting pears is not handed apples
    apples.reportRanges(apple(0), apple(9), (s: Pear) => s);
    // At run time they are numbers: the lines ran as on plain sets, and the swap moved {1-2} away.
    expect(show(plain)).toBe('{1-2}');
    expect(widened.isEmpty()).toBe(true);
    expect(pears.isEmpty()).toBe(true);
  });
});

// ---- the result vocabulary ---------------------------------------------------------------------------

describe('results speak the errno union only', () => {
  it('a code outside Errno is a type error, and Result carries its success fields', () => {
    const claimed: Result<'ENOSPC', { readonly start: number }> = { ok: true, start: 5 };
    expect(claimed.ok && claimed.start).toBe(5);
    const full: Failure<'ENOSPC'> = { ok: false, code: 'ENOSPC' };
    expect(full.code).toBe('ENOSPC');
    // @ts-expect-error not one of Xen's errno names
    const made: Failure<'EWHATEVER'> = { ok: false, code: 'EWHATEVER' };
    // @ts-expect-error a code outside the subset the result names
    const other: Result<'ENOMEM'> = { ok: false, code: 'ENOSPC' };
    expect([made.ok, other.ok]).toEqual([false, false]);
  });
});

describe('a set past NEAR_SEARCH_FROM ranges (lookups read a window of the chunk at once)', () => {
  it('answers, adds and removes as a sorted list of its ranges does, at every distance from the guess', () => {
    // Ranges 128 values apart with a seeded jitter, added in a shuffled order (chunks partly full, as
    // random inserts leave them): the interpolated guess inside a chunk lands a few places off, and
    // sometimes outside the window, on both sides.
    const n = NEAR_SEARCH_FROM + 4096;
    let seed = 0x2545f491;
    const next = (m: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % m;
    };
    const starts = new Float64Array(n);
    const ends = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      starts[i] = i * 128 + next(64);
      ends[i] = starts[i]! + next(32);
    }
    const order = new Int32Array(n).map((_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = next(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const set = new RangeSet();
    for (const i of order) set.addRange(starts[i]!, ends[i]!);
    expect(set.size).toBe(n);
    /** Index of the last range starting at or before x, by binary search over the sorted list. */
    const below = (x: number): number => {
      let lo = -1;
      let hi = n;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (starts[mid]! <= x) lo = mid;
        else hi = mid;
      }
      return lo;
    };
    for (let q = 0; q < 10_000; q++) {
      const x = next(n * 128 + 200);
      const i = below(x);
      const inside = i >= 0 && ends[i]! >= x;
      expect(set.containsSingleton(x)).toBe(inside);
      expect(set.overlapsRange(x, x + 40)).toBe(inside || (i + 1 < n && starts[i + 1]! <= x + 40));
      if (i >= 0) expect(set.containsRange(starts[i]!, ends[i]!)).toBe(true);
    }
    // Whole ranges removed and put back, and a range cut in two: each found where the list has it.
    for (let q = 0; q < 2_000; q++) {
      const i = next(n);
      expect(set.removeRange(starts[i]!, ends[i]!).ok).toBe(true);
      expect(set.overlapsRange(starts[i]!, ends[i]!)).toBe(false);
      expect(set.size).toBe(n - 1);
      expect(set.addRange(starts[i]!, ends[i]!).ok).toBe(true);
      expect(set.containsRange(starts[i]!, ends[i]!)).toBe(true);
    }
    const cut = n >> 1;
    set.removeRange(starts[cut]! + 1, starts[cut]! + 1);
    expect(set.size).toBe(ends[cut]! > starts[cut]! + 1 ? n + 1 : n);
    expect(set.containsSingleton(starts[cut]!)).toBe(true);
    expect(set.containsSingleton(starts[cut]! + 1)).toBe(false);
    expect(set.toArray().length).toBe(set.size);
  });
});
