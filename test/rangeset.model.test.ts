/**
 * Model-based tests of RangeSet against a deliberately naive model: one byte per value over a small
 * universe, with the range list recomputed from scratch after every step. Every command checks its
 * own outcome (including ENOMEM under a limit), and after every command the set must equal the model
 * and be canonical (sorted, disjoint, non-adjacent). `consumeRanges` is run on the model too, after
 * Xen's `rangeset_consume_ranges`: the ranges each callback is handed, the result and what is left all
 * come from the model, for callbacks that restart or fail anywhere and for budgeted workers resumed
 * call after call.
 */
import {
  type ConsumeResult,
  type ConsumeStep,
  type Errno,
  RangeSet,
  RangeSetBusyError,
} from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';

/** Values the commands touch. */
const UNIVERSE = 160;
/**
 * Values the model holds: claims go past the universe, up to 200 commands of at most 32 values each
 * (with 256, a run of claims under another seed outgrew the model, FC_SEED=593436892).
 */
const BITMAP = UNIVERSE + 200 * 32;

type Ranges = Array<[number, number]>;

/** The canonical range list of ascending distinct values: their maximal runs of consecutive values. */
function runsOf(values: Iterable<number>): Ranges {
  const out: Ranges = [];
  for (const v of values) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === v - 1) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

/** The values a bitmap holds, ascending. */
function* setBits(bits: Uint8Array): Generator<number> {
  for (let v = 0; v < bits.length; v++) if (bits[v]) yield v;
}

/** The canonical range list of a bitmap. */
function rangesOf(bits: Uint8Array): Ranges {
  return runsOf(setBits(bits));
}

/** A bitmap holding `values`. */
function bitmapOf(values: Iterable<number>): Uint8Array {
  const bits = new Uint8Array(BITMAP);
  for (const v of values) bits[v] = 1;
  return bits;
}

function fill(bits: Uint8Array, s: number, e: number, value: 0 | 1): Uint8Array<ArrayBuffer> {
  const next = bits.slice();
  next.fill(value, s, e + 1);
  return next;
}

/** A callback answering each range it is handed; the model and the set each get a fresh one. */
type Responder<C extends Errno> = (s: number, e: number) => ConsumeStep<C>;

/**
 * One `consumeRanges` call on the model, after Xen's `rangeset_consume_ranges` (xen/common/rangeset.c):
 * while values are left, hand the callback the first range, drop the values it consumed from the
 * front, and go on only when it says continue. `values` is ascending (a bitmap's set bits). Returns
 * the ranges handed over, the values left and the result the call must give.
 */
function consumeModel<C extends Errno>(
  values: readonly number[],
  respond: Responder<C>,
): { handed: Ranges; left: number[]; result: ConsumeResult<C> } {
  let left = [...values];
  const handed: Ranges = [];
  for (;;) {
    const first = runsOf(left)[0];
    if (first === undefined) return { handed, left, result: { ok: true, status: 'done' } };
    handed.push(first);
    const step = respond(...first);
    left = left.slice(step.consumed);
    if (step.next === 'fail') return { handed, left, result: { ok: false, code: step.code } };
    if (step.next === 'restart') return { handed, left, result: { ok: true, status: 'restart' } };
  }
}

/** Runs `consumeRanges` on `set` with `respond`; returns the ranges handed over and the result. */
function consumeReal<C extends Errno>(
  set: RangeSet,
  respond: Responder<C>,
): { handed: Ranges; result: ConsumeResult<C> } {
  const handed: Ranges = [];
  const result = set.consumeRanges<C>((s, e) => {
    handed.push([s, e]);
    return respond(s, e);
  });
  return { handed, result };
}

/** Two sets, `a` (the one most commands work on) and `b` (for swap), each with its limit. */
interface Model {
  a: Uint8Array;
  b: Uint8Array;
  limitA: number;
  limitB: number;
}
interface Real {
  a: RangeSet;
  b: RangeSet;
}

/** An operation may grow the range count only up to the limit (or not at all when already over it). */
function allowed(before: Uint8Array, after: Uint8Array, limit: number): boolean {
  const n = rangesOf(after).length;
  return n <= rangesOf(before).length || n <= limit;
}

function expectSame(model: Model, real: Real): void {
  expect(real.a.toArray()).toEqual(rangesOf(model.a));
  expect(real.b.toArray()).toEqual(rangesOf(model.b));
  expect(real.a.size).toBe(rangesOf(model.a).length);
  expect(real.a.isEmpty()).toBe(rangesOf(model.a).length === 0);
}

const range = fc
  .tuple(fc.nat({ max: UNIVERSE - 1 }), fc.nat({ max: 24 }))
  .map(([s, len]): [number, number] => [s, Math.min(UNIVERSE - 1, s + len)]);

/**
 * `addRange` or `removeRange` of one range on set a, or on set b (`which`), so that b too moves
 * between its fields and its store.
 */
class Update implements fc.Command<Model, Real> {
  constructor(
    readonly op: 'addRange' | 'removeRange',
    readonly r: [number, number],
    readonly which: 'a' | 'b' = 'a',
  ) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    const set = this.which;
    const limit = set === 'a' ? m.limitA : m.limitB;
    const after = fill(m[set], this.r[0], this.r[1], this.op === 'addRange' ? 1 : 0);
    const ok = allowed(m[set], after, limit);
    expect(real[set][this.op](...this.r)).toEqual(ok ? { ok: true } : { ok: false, code: 'ENOMEM' });
    if (ok) m[set] = after;
    expectSame(m, real);
  }
  toString = (): string => `${this.which === 'a' ? '' : 'b.'}${this.op}(${this.r})`;
}

class Query implements fc.Command<Model, Real> {
  constructor(readonly r: [number, number]) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    const slice = Array.from(m.a.subarray(this.r[0], this.r[1] + 1));
    expect(real.a.containsRange(...this.r)).toBe(slice.every((b) => b === 1));
    expect(real.a.overlapsRange(...this.r)).toBe(slice.some((b) => b === 1));
    expect(real.a.containsSingleton(this.r[0])).toBe(m.a[this.r[0]] === 1);
  }
  toString = (): string => `query(${this.r})`;
}

class Report implements fc.Command<Model, Real> {
  constructor(
    readonly r: [number, number],
    readonly stopAfter: number,
  ) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    const [ws, we] = this.r;
    const clipped = rangesOf(m.a)
      .filter(([s, e]) => e >= ws && s <= we)
      .map(([s, e]): [number, number] => [Math.max(s, ws), Math.min(e, we)]);
    const seen: Ranges = [];
    const returned = real.a.reportRanges(ws, we, (s, e) => {
      seen.push([s, e]);
      return seen.length === this.stopAfter ? 'stop' : undefined;
    });
    expect(seen).toEqual(clipped.slice(0, this.stopAfter));
    expect(returned).toBe(clipped.length >= this.stopAfter ? 'stop' : undefined);
  }
  toString = (): string => `reportRanges(${this.r}, stop after ${this.stopAfter})`;
}

class Claim implements fc.Command<Model, Real> {
  constructor(readonly size: number) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    let start = 0;
    while (m.a.subarray(start, start + this.size).some((b) => b === 1)) start++;
    const after = fill(m.a, start, start + this.size - 1, 1);
    const ok = allowed(m.a, after, m.limitA);
    expect(real.a.claimRange(this.size)).toEqual(ok ? { ok: true, start } : { ok: false, code: 'ENOMEM' });
    if (ok) m.a = after;
    expectSame(m, real);
  }
  toString = (): string => `claimRange(${this.size})`;
}

/** One callback answer: how many values to take from the range handed over, and what to do next. */
type Plan = { take: number; next: 'continue' | 'restart' | 'fail' };

/** Answers the callbacks of one call by `plan`, in order; past the plan, a restart. */
function planned(plan: readonly Plan[]): Responder<'EIO'> {
  let call = 0;
  return (s, e) => {
    const step = plan[call++] ?? { take: 0, next: 'restart' };
    const consumed = Math.min(step.take, e - s + 1);
    if (step.next === 'fail') return { consumed, next: 'fail', code: 'EIO' };
    // 'continue' must make progress; a plan step that would not becomes a restart.
    return { consumed, next: consumed === 0 ? 'restart' : step.next };
  };
}

class Consume implements fc.Command<Model, Real> {
  constructor(readonly plan: Plan[]) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    const expected = consumeModel([...setBits(m.a)], planned(this.plan));
    expect(consumeReal(real.a, planned(this.plan))).toEqual({
      handed: expected.handed,
      result: expected.result,
    });
    m.a = bitmapOf(expected.left);
    expectSame(m, real);
  }
  toString = (): string => `consumeRanges(${JSON.stringify(this.plan)})`;
}

class Limit implements fc.Command<Model, Real> {
  constructor(readonly n: number) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    real.a.limit(this.n);
    m.limitA = this.n;
    expect(real.a.rangeLimit).toBe(this.n);
    expectSame(m, real);
  }
  toString = (): string => `limit(${this.n})`;
}

class MergeOrSubtract implements fc.Command<Model, Real> {
  constructor(
    readonly op: 'merge' | 'subtract',
    readonly ranges: Ranges,
  ) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    const other = RangeSet.from(this.ranges);
    let after = m.a;
    for (const [s, e] of this.ranges) after = fill(after, s, e, this.op === 'merge' ? 1 : 0);
    const ok = allowed(m.a, after, m.limitA);
    expect(real.a[this.op](other)).toEqual(ok ? { ok: true } : { ok: false, code: 'ENOMEM' });
    if (ok) m.a = after;
    let otherBits = new Uint8Array(BITMAP);
    for (const [s, e] of this.ranges) otherBits = fill(otherBits, s, e, 1);
    expect(other.toArray(), 'the other set is not modified').toEqual(rangesOf(otherBits));
    expectSame(m, real);
  }
  toString = (): string => `${this.op}(${JSON.stringify(this.ranges)})`;
}

class SwapAndFill implements fc.Command<Model, Real> {
  constructor(readonly r: [number, number]) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    real.a.swap(real.b);
    [m.a, m.b] = [m.b, m.a];
    expect(real.a.rangeLimit).toBe(m.limitA);
    expect(real.b.rangeLimit).toBe(m.limitB);
    const after = fill(m.b, this.r[0], this.r[1], 1);
    const ok = allowed(m.b, after, m.limitB);
    expect(real.b.addRange(...this.r).ok).toBe(ok);
    if (ok) m.b = after;
    expectSame(m, real);
  }
  toString = (): string => `swap() then b.addRange(${this.r})`;
}

class Purge implements fc.Command<Model, Real> {
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    real.a.purge();
    m.a = new Uint8Array(BITMAP);
    expectSame(m, real);
  }
  toString = (): string => 'purge()';
}

const plan = fc.array(
  fc.record({
    take: fc.nat({ max: 30 }),
    next: fc.constantFrom('continue', 'continue', 'restart', 'fail') as fc.Arbitrary<Plan['next']>,
  }),
  { maxLength: 8 },
);

const commands = [
  range.map((r) => new Update('addRange', r)),
  range.map((r) => new Update('addRange', r)),
  range.map((r) => new Update('removeRange', r)),
  range.map((r) => new Update('removeRange', r)),
  range.map((r) => new Query(r)),
  fc.tuple(range, fc.integer({ min: 1, max: 4 })).map(([r, n]) => new Report(r, n)),
  fc.integer({ min: 1, max: 32 }).map((n) => new Claim(n)),
  plan.map((p) => new Consume(p)),
  fc.nat({ max: 12 }).map((n) => new Limit(n)),
  fc
    .tuple(fc.constantFrom('merge' as const, 'subtract' as const), fc.array(range, { maxLength: 6 }))
    .map(([op, rs]) => new MergeOrSubtract(op, rs)),
  range.map((r) => new SwapAndFill(r)),
  fc.constant(new Purge()),
];

describe('RangeSet against a bitmap model', () => {
  it('agrees after every command, at every chunk size', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(4, 5, 8, 256),
        fc.commands(commands, { maxCommands: 200, size: 'max' }),
        (chunkSize, cmds) => {
          const real: Real = { a: new RangeSet({ chunkSize }), b: new RangeSet({ chunkSize }) };
          const model: Model = {
            a: new Uint8Array(BITMAP),
            b: new Uint8Array(BITMAP),
            limitA: Number.POSITIVE_INFINITY,
            limitB: Number.POSITIVE_INFINITY,
          };
          fc.modelRun(() => ({ model, real }), cmds);
        },
      ),
      runs(300),
    );
  });
});

/** The values of possibly overlapping ranges, ascending, each once: the model's bitmap, kept sparse. */
function valuesOf(ranges: Ranges): number[] {
  const seen = new Set<number>();
  for (const [s, e] of ranges) for (let v = s; v <= e; v++) seen.add(v);
  return [...seen].sort((a, b) => a - b);
}

/**
 * A worker as vPCI's map_range is one: it takes up to `budget` values (all, when undefined) and asks
 * for a restart when the budget runs out.
 */
function budgeted(budget = Number.POSITIVE_INFINITY): Responder<never> {
  return (s, e) => {
    const consumed = Math.min(budget, e - s + 1);
    budget -= consumed;
    return { consumed, next: budget === 0 ? 'restart' : 'continue' };
  };
}

/**
 * Drains `set`, which holds `values`, with a budgeted worker per call (`budgets[c]` values on call c,
 * unbounded past the list), beside the model drained the same way: every call must hand over the
 * ranges the model hands over, give its result and leave what it leaves. Returns the values consumed,
 * in order, and the number of calls.
 */
function drainBeside(
  set: RangeSet,
  values: number[],
  budgets: number[],
): { consumed: number[]; calls: number } {
  let left = values;
  for (let call = 0; ; call++) {
    const expected = consumeModel(left, budgeted(budgets[call]));
    expect(consumeReal(set, budgeted(budgets[call])), `call ${call}`).toEqual({
      handed: expected.handed,
      result: expected.result,
    });
    expect(set.toArray()).toEqual(runsOf(expected.left));
    left = expected.left;
    if (expected.result.ok && expected.result.status === 'done') {
      return { consumed: values.slice(0, values.length - left.length), calls: call + 1 };
    }
  }
}

const smallSet = fc.array(
  fc.tuple(fc.nat({ max: 1 << 20 }), fc.nat({ max: 20 })).map(([s, len]): [number, number] => [s, s + len]),
  { maxLength: 8 },
);

describe('consumeRanges preemption, against the model', () => {
  it('resuming after a restart at any point ends where an uninterrupted run ends', () => {
    fc.assert(
      fc.property(smallSet, fc.constantFrom(4, 256), (ranges, chunkSize) => {
        const values = valuesOf(ranges);
        const uninterrupted = drainBeside(RangeSet.from(ranges, { chunkSize }), values, []);
        expect(uninterrupted).toEqual({ consumed: values, calls: 1 });
        // Restart after exactly p values, for every p, then run to the end.
        for (let p = 0; p <= values.length; p++) {
          const set = RangeSet.from(ranges, { chunkSize });
          expect(drainBeside(set, values, [p]).consumed).toEqual(values);
          expect(set.isEmpty()).toBe(true);
        }
      }),
      runs(150),
    );
  });

  it('any sequence of budgets consumes the same values in the same order', () => {
    fc.assert(
      fc.property(
        smallSet,
        fc.array(fc.integer({ min: 1, max: 7 }), { maxLength: 40 }),
        (ranges, budgets) => {
          const values = valuesOf(ranges);
          const set = RangeSet.from(ranges, { chunkSize: 4 });
          expect(drainBeside(set, values, budgets).consumed).toEqual(values);
        },
      ),
    );
  });

  it('a failure at any point keeps exactly the unconsumed rest, and a later call finishes it', () => {
    /** Consumes `p` values, continuing, and fails with EPERM on the callback that takes the last. */
    const failAfter = (p: number): Responder<'EPERM'> => {
      let left = p;
      return (s, e) => {
        const consumed = Math.min(left, e - s + 1);
        left -= consumed;
        return left === 0 ? { consumed, next: 'fail', code: 'EPERM' } : { consumed, next: 'continue' };
      };
    };
    fc.assert(
      fc.property(smallSet, (ranges) => {
        const values = valuesOf(ranges);
        for (let p = 0; p <= values.length; p++) {
          const set = RangeSet.from(ranges, { chunkSize: 4 });
          const expected = consumeModel(values, failAfter(p));
          expect(expected.left).toEqual(values.slice(p));
          expect(consumeReal(set, failAfter(p))).toEqual({
            handed: expected.handed,
            result: expected.result,
          });
          expect(set.toArray()).toEqual(runsOf(expected.left));
          expect(drainBeside(set, expected.left, []).consumed).toEqual(values.slice(p));
        }
      }),
      runs(150),
    );
  });
});

/**
 * One step of a set used as a queue: ranges added past the end (and now and then anywhere), consumed
 * from the front a budget at a time, and queried, from outside and from inside the consume callback.
 */
type QueueStep =
  | { op: 'append'; gap: number; len: number }
  | { op: 'add'; r: [number, number] }
  | { op: 'remove'; r: [number, number] }
  | { op: 'consume'; budget: number; probe: number }
  | { op: 'query'; r: [number, number] };

const QUEUE_SPAN = 4096;
const queueRange = fc
  .tuple(fc.nat({ max: QUEUE_SPAN - 1 }), fc.nat({ max: 12 }))
  .map(([s, len]): [number, number] => [s, Math.min(QUEUE_SPAN - 1, s + len)]);
const queueStep: fc.Arbitrary<QueueStep> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      gap: fc.integer({ min: 1, max: 6 }),
      len: fc.nat({ max: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('add' as const), r: queueRange }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), r: queueRange }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('consume' as const),
      budget: fc.integer({ min: 1, max: 60 }),
      probe: fc.nat({ max: QUEUE_SPAN - 1 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('query' as const), r: queueRange }) },
);

describe('a set used as a queue, against the model', () => {
  // The store drops chunks used up at the front by narrowing its chunk arrays, takes that room back
  // when they fill up, and keeps bounds of the values for lookups that miss: a long run of appends
  // and consumes at chunk size 4 crosses every one of those paths many times.
  it('appends, consumes from the front, queries (also from inside the callback) agree with the model', () => {
    fc.assert(
      fc.property(
        fc.array(queueStep, { minLength: 50, maxLength: 400 }),
        fc.constantFrom(4, 5, 256),
        (steps, chunkSize) => {
          const set = new RangeSet({ chunkSize });
          // Room for QUEUE_SPAN and 400 appends of at most 6 + 5 + 1 values past it.
          let bits = new Uint8Array(QUEUE_SPAN + 400 * 12);
          let tail = 0;
          for (const step of steps) {
            if (step.op === 'append' || step.op === 'add') {
              const [s, e] = step.op === 'append' ? [tail + step.gap, tail + step.gap + step.len] : step.r;
              tail = Math.max(tail, e + 1);
              expect(set.addRange(s, e)).toEqual({ ok: true });
              bits = fill(bits, s, e, 1);
            } else if (step.op === 'remove') {
              expect(set.removeRange(...step.r)).toEqual({ ok: true });
              bits = fill(bits, step.r[0], step.r[1], 0);
            } else if (step.op === 'query') {
              const slice = Array.from(bits.subarray(step.r[0], step.r[1] + 1));
              expect(set.overlapsRange(...step.r)).toBe(slice.some((b) => b === 1));
              expect(set.containsRange(...step.r)).toBe(slice.every((b) => b === 1));
            } else {
              const expected = consumeModel([...setBits(bits)], budgeted(step.budget));
              // The set as each callback sees it: what the model holds at that point of the call.
              let current = bits;
              const handed: Ranges = [];
              const answer = budgeted(step.budget);
              const [ps, pe] = [step.probe, step.probe + 3];
              const result = set.consumeRanges((s, e) => {
                handed.push([s, e]);
                // Each read looks first in turn: a read may bring the store up to date for the next.
                const reads = [
                  () => expect(set.containsRange(s, e)).toBe(true),
                  () =>
                    expect(set.overlapsRange(ps, pe)).toBe(current.subarray(ps, pe + 1).some((b) => b === 1)),
                  () => expect(set.size).toBe(rangesOf(current).length),
                  // The whole set (a walk of every chunk) on the first callbacks of each call.
                  () => handed.length <= 3 && expect(set.toArray()).toEqual(rangesOf(current)),
                ];
                for (let k = 0; k < reads.length; k++)
                  reads[(k + handed.length + step.probe) % reads.length]!();
                const reply = answer(s, e);
                current = fill(current, s, s + reply.consumed - 1, 0);
                return reply;
              });
              expect({ handed, result }).toEqual({ handed: expected.handed, result: expected.result });
              bits = new Uint8Array(bits.length);
              for (const v of expected.left) bits[v] = 1;
            }
            expect(set.toArray()).toEqual(rangesOf(bits));
            expect(set.size).toBe(rangesOf(bits).length);
          }
        },
      ),
      runs(60),
    );
  });
});

/** Values the long-chunk test spans: every fourth one starts out stored, 1,000 ranges. */
const WIDE = 4000;

/**
 * One update of the long-chunk test: a new range between two stored ones (the value 4i + 2 touches
 * neither neighbour), an add or a remove of a few values anywhere, a wide window (which removes or
 * merges many ranges at once, across chunks), or a consume of a few values from the front.
 */
const wideUpdate = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.nat({ max: WIDE / 4 - 1 }).map((i) => ({ op: 'add' as const, s: 4 * i + 2, e: 4 * i + 2 })),
  },
  {
    weight: 4,
    arbitrary: fc.tuple(fc.boolean(), fc.nat({ max: WIDE - 1 }), fc.nat({ max: 3 })).map(([add, s, len]) => ({
      op: add ? ('add' as const) : ('remove' as const),
      s,
      e: Math.min(WIDE - 1, s + len),
    })),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.boolean(), fc.nat({ max: WIDE - 1 })).map(([add, s]) => ({
      op: add ? ('add' as const) : ('remove' as const),
      s,
      e: Math.min(WIDE - 1, s + 200),
    })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 40 }).map((n) => ({ op: 'consume' as const, s: n, e: n })),
  },
);

describe('long chunks: inserts, deletes and consumes at every offset, against the model', () => {
  // A chunk's ranges sit anywhere in their slot: an insert moves the shorter side that has room, a
  // delete the shorter side, and a consume leaves room at the front of the first chunk, which later
  // inserts use. The bitmap model above keeps sets to a few dozen ranges; here chunks of 16 to 256
  // ranges fill and empty at every offset, from either side, and split, spill and merge.
  it('agrees after every update, at chunk sizes 16, 64 and 256', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 64, 256),
        fc.array(wideUpdate, { minLength: 1, maxLength: 300 }),
        (chunkSize, updates) => {
          const set = new RangeSet({ chunkSize });
          for (let v = 0; v < WIDE; v += 4) set.addRange(v, v);
          let bits = bitmapOf(Array.from({ length: WIDE / 4 }, (_, i) => 4 * i));
          for (const { op, s, e } of updates) {
            if (op === 'consume') {
              // Up to s values from the front, in one call that restarts.
              const expected = consumeModel([...setBits(bits)], budgeted(s));
              expect(consumeReal(set, budgeted(s)).result).toEqual(expected.result);
              bits = bitmapOf(expected.left);
              continue;
            }
            expect(op === 'add' ? set.addRange(s, e) : set.removeRange(s, e)).toEqual({ ok: true });
            bits = fill(bits, s, e, op === 'add' ? 1 : 0);
            const expected = rangesOf(bits);
            expect(set.size).toBe(expected.length);
            expect(JSON.stringify(set.toArray())).toBe(JSON.stringify(expected));
            const probe = Math.max(0, s - 1);
            expect(set.containsSingleton(probe)).toBe(bits[probe] === 1);
            expect(set.overlapsRange(s, e)).toBe(bits.subarray(s, e + 1).some((b) => b === 1));
          }
          expect(JSON.stringify(set.toArray())).toBe(JSON.stringify(rangesOf(bits)));
        },
      ),
      runs(100),
    );
  });
});

/**
 * A set holds up to two ranges in its own fields and moves them into a chunked store when it needs a
 * third; it moves back when the store is found empty. These commands keep the sets small (a universe
 * of 24 values, ranges of 1-4 values), so a run crosses that boundary both ways many times: adds and
 * splits past two ranges, removes and consumes back to none, swaps between a set in its fields and a
 * set in its store, limits at the boundary, partial consumes that restart, and mutations refused from
 * inside a callback.
 */
const TINY_UNIVERSE = 24;
const tinyRange = fc
  .tuple(fc.nat({ max: TINY_UNIVERSE - 1 }), fc.nat({ max: 3 }))
  .map(([s, len]): [number, number] => [s, Math.min(TINY_UNIVERSE - 1, s + len)]);

/** Every verb that changes a set, tried on `a` from inside one of its own callbacks. */
const MUTATIONS: ReadonlyArray<(real: Real) => unknown> = [
  (real) => real.a.addRange(0, 3),
  (real) => real.a.removeRange(0, TINY_UNIVERSE),
  (real) => real.a.claimRange(1),
  (real) => real.a.purge(),
  (real) => real.a.merge(real.b),
  (real) => real.a.subtract(real.b),
  (real) => real.a.swap(real.b),
  (real) => real.a.consumeRanges(() => ({ consumed: 1, next: 'continue' })),
];

/** A mutation of `a` from inside its own `consumeRanges` or `reportRanges` callback: refused, nothing changes. */
class BusyMutation implements fc.Command<Model, Real> {
  constructor(
    readonly inConsume: boolean,
    readonly mutation: number,
  ) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    const mutate = MUTATIONS[this.mutation]!;
    let error: unknown;
    let calls = 0;
    const attempt = (): void => {
      calls++;
      try {
        mutate(real);
      } catch (thrown) {
        error = thrown;
      }
    };
    if (this.inConsume) {
      // The callback takes nothing and restarts: the set must be exactly as it was.
      expect(
        real.a.consumeRanges(() => {
          attempt();
          return { consumed: 0, next: 'restart' };
        }),
      ).toEqual(rangesOf(m.a).length === 0 ? { ok: true, status: 'done' } : { ok: true, status: 'restart' });
    } else real.a.reportRanges(0, TINY_UNIVERSE, () => attempt());
    if (calls > 0) expect(error).toBeInstanceOf(RangeSetBusyError);
    expectSame(m, real);
  }
  toString = (): string =>
    `mutation ${this.mutation} inside ${this.inConsume ? 'consumeRanges' : 'reportRanges'}`;
}

/** Swaps a and b (in their fields or in their stores, whichever each is in), then checks both. */
class Swap implements fc.Command<Model, Real> {
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    real.a.swap(real.b);
    [m.a, m.b] = [m.b, m.a];
    expectSame(m, real);
    const query = (set: RangeSet, bits: Uint8Array): void => {
      for (let v = 0; v < TINY_UNIVERSE; v += 3) {
        expect(set.containsSingleton(v)).toBe(bits[v] === 1);
        expect(set.overlapsRange(v, v + 2)).toBe(bits.subarray(v, v + 3).some((b) => b === 1));
      }
    };
    query(real.a, m.a);
    query(real.b, m.b);
  }
  toString = (): string => 'swap()';
}

const tinyCommands = [
  tinyRange.map((r) => new Update('addRange', r)),
  tinyRange.map((r) => new Update('addRange', r)),
  tinyRange.map((r) => new Update('removeRange', r)),
  tinyRange.map((r) => new Update('removeRange', r)),
  tinyRange.map((r) => new Update('addRange', r, 'b')),
  tinyRange.map((r) => new Update('removeRange', r, 'b')),
  tinyRange.map((r) => new Query(r)),
  fc.tuple(tinyRange, fc.integer({ min: 1, max: 3 })).map(([r, n]) => new Report(r, n)),
  fc.integer({ min: 1, max: 4 }).map((n) => new Claim(n)),
  fc
    .array(
      fc.record({
        take: fc.nat({ max: 5 }),
        next: fc.constantFrom('continue', 'continue', 'restart', 'fail') as fc.Arbitrary<Plan['next']>,
      }),
      { maxLength: 4 },
    )
    .map((p) => new Consume(p)),
  fc.nat({ max: 4 }).map((n) => new Limit(n)),
  fc
    .tuple(fc.constantFrom('merge' as const, 'subtract' as const), fc.array(tinyRange, { maxLength: 3 }))
    .map(([op, rs]) => new MergeOrSubtract(op, rs)),
  fc.constant(new Swap()),
  fc.tuple(fc.boolean(), fc.nat({ max: MUTATIONS.length - 1 })).map(([c, k]) => new BusyMutation(c, k)),
  fc.constant(new Purge()),
];

describe('a set in its own fields and in its store, against the model', () => {
  it('agrees after every command across the boundary, both ways, at chunk sizes 4 and 256', () => {
    // The representation is private, but the sizes show it: above 2 ranges a set is in its store, and a
    // set emptied from there is back in its fields. Count the crossings (a run that never crossed
    // would prove nothing about the boundary).
    const crossings = { intoStore: 0, backToFields: 0, mixedSwaps: 0 };
    let tried = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(4, 256),
        fc.commands(tinyCommands, { maxCommands: 120, size: 'max' }),
        (chunkSize, cmds) => {
          tried++;
          const real: Real = { a: new RangeSet({ chunkSize }), b: new RangeSet({ chunkSize }) };
          const model: Model = {
            a: new Uint8Array(BITMAP),
            b: new Uint8Array(BITMAP),
            limitA: Number.POSITIVE_INFINITY,
            limitB: Number.POSITIVE_INFINITY,
          };
          let stored = false;
          const watched = [...cmds].map((cmd): fc.Command<Model, Real> => {
            // fast-check hands its commands over wrapped; the text names the command.
            const swap = cmd.toString() === new Swap().toString();
            return {
              check: (m) => cmd.check(m),
              run: (m, r) => {
                if (swap && r.a.size > 2 !== r.b.size > 2) crossings.mixedSwaps++;
                cmd.run(m, r);
                // A swap moves a's ranges away: follow the set a holds now.
                if (swap) stored = r.a.size > 2;
                else if (r.a.size > 2 && !stored) {
                  crossings.intoStore++;
                  stored = true;
                } else if (r.a.size === 0 && stored) {
                  crossings.backToFields++;
                  stored = false;
                }
              },
              toString: () => cmd.toString(),
            };
          });
          fc.modelRun(() => ({ model, real }), watched);
        },
      ),
      runs(150),
    );
    // 100, 50 and 50 of the 150 runs by default; FC_RUNS scales the runs, and these with them.
    expect(crossings.intoStore).toBeGreaterThan((tried * 2) / 3);
    expect(crossings.backToFields).toBeGreaterThan(tried / 3);
    expect(crossings.mixedSwaps).toBeGreaterThan(tried / 3);
  });
});

// ---- queries of a tiny set in every layout, at any magnitude ------------------------------------------

/**
 * A set's one or two ranges live in its own fields, laid out so that a query is one or two comparisons
 * (packages/rangeset DESIGN.md, "Representation": one range held twice, an empty set as the empty
 * interval, the store's values bounded by the same two fields), and `checkRange` sends whole values
 * from 2^51 on to its detailed path. Here a set of values near a base (0, just below and above 2^51
 * and 2^52, just below MAX_VALUE) is updated and consumed at random, and after every step every window
 * of up to 5 values, and some wider ones, is asked with `overlapsRange` and `containsRange` and
 * compared with a plain list of the values held. The run counts the layouts it saw (fails if one is
 * missing).
 */
describe('queries of a tiny set in every layout, near 0, 2^51, 2^52 and MAX_VALUE, against a value list', () => {
  const SPAN = 20;
  const BASES = [0, 2 ** 51 - 10, 2 ** 52 - 10, Number.MAX_SAFE_INTEGER - SPAN + 1];
  type Step =
    | { op: 'add' | 'remove'; s: number; e: number }
    | { op: 'consume'; take: number; next: 'continue' | 'restart' };
  const step: fc.Arbitrary<Step> = fc.oneof(
    fc
      .tuple(
        fc.constantFrom('add' as const, 'add' as const, 'remove' as const),
        fc.nat({ max: SPAN - 1 }),
        fc.nat({ max: 4 }),
      )
      .map(([op, s, len]) => ({ op, s, e: Math.min(SPAN - 1, s + len) })),
    fc
      .tuple(fc.integer({ min: 1, max: 6 }), fc.constantFrom('continue' as const, 'restart' as const))
      .map(([take, next]) => ({ op: 'consume' as const, take, next })),
  );

  it('answers every window as the value list does, after every update and consume', () => {
    const layouts = new Set<number>();
    fc.assert(
      fc.property(fc.constantFrom(...BASES), fc.array(step, { maxLength: 40 }), (base, steps) => {
        const set = new RangeSet();
        const held = new Uint8Array(SPAN);
        for (const st of steps) {
          if (st.op === 'consume') {
            // Take up to `take` values from the front, a range at a time, as a budgeted map loop does.
            let left = st.take;
            set.consumeRanges((s, e) => {
              const n = Math.min(left, e - s + 1);
              left -= n;
              return { consumed: n, next: left > 0 ? st.next : 'restart' };
            });
            let drop = st.take - left;
            for (let v = 0; v < SPAN && drop > 0; v++) {
              if (held[v] === 1) {
                held[v] = 0;
                drop--;
              }
            }
          } else {
            const r =
              st.op === 'add'
                ? set.addRange(base + st.s, base + st.e)
                : set.removeRange(base + st.s, base + st.e);
            expect(r).toEqual({ ok: true });
            held.fill(st.op === 'add' ? 1 : 0, st.s, st.e + 1);
          }
          const ranges = rangesOf(held);
          expect(set.toArray()).toEqual(ranges.map(([s, e]) => [base + s, base + e]));
          layouts.add(Math.min(ranges.length, 3));
          for (let s = 0; s < SPAN; s++) {
            for (const e of [s, s + 1, s + 3, SPAN - 1]) {
              if (e >= SPAN || e < s) continue;
              const window = held.subarray(s, e + 1);
              expect(set.overlapsRange(base + s, base + e)).toBe(window.some((b) => b === 1));
              expect(set.containsRange(base + s, base + e)).toBe(window.every((b) => b === 1));
            }
          }
          // Windows reaching outside the values the set can hold: below and above them.
          if (base > 0) expect(set.overlapsRange(0, base - 1)).toBe(false);
          expect(set.overlapsRange(0, base + SPAN - 1)).toBe(held.some((b) => b === 1));
        }
      }),
      runs(60),
    );
    // Empty, one range, two ranges (in the fields) and three or more (in the store) were all queried.
    expect([...layouts].sort()).toEqual([0, 1, 2, 3]);
  });
});

describe('RangeSet.overlappingSets against bitmaps', () => {
  /** Values the sets hold and the queries span, from `base` (the high bases pass 2^32 and reach MAX). */
  const SPAN = 48;
  const BASES = [0, 2 ** 40, Number.MAX_SAFE_INTEGER - SPAN + 1];
  /** One set: the ranges added, then removed, in order (up to 6 each, so some sets need the store). */
  const setSteps = fc.array(
    fc
      .tuple(fc.boolean(), fc.nat({ max: SPAN - 1 }), fc.nat({ max: 6 }))
      .map(([add, s, len]) => ({ add, s, e: Math.min(SPAN - 1, s + len) })),
    { maxLength: 12 },
  );

  it('answers, bit by bit, whether each set holds a value of the range, for every window', () => {
    const layouts = new Set<number>();
    fc.assert(
      fc.property(
        fc.constantFrom(...BASES),
        fc.array(fc.tuple(setSteps, fc.constantFrom(4, 256)), { minLength: 1, maxLength: 8 }),
        (base, specs) => {
          const sets: RangeSet[] = [];
          const held: Uint8Array[] = [];
          for (const [steps, chunkSize] of specs) {
            const set = new RangeSet({ chunkSize });
            const bits = new Uint8Array(SPAN);
            for (const { add, s, e } of steps) {
              expect(add ? set.addRange(base + s, base + e) : set.removeRange(base + s, base + e)).toEqual({
                ok: true,
              });
              bits.fill(add ? 1 : 0, s, e + 1);
            }
            layouts.add(Math.min(rangesOf(bits).length, 3));
            sets.push(set);
            held.push(bits);
          }
          for (let s = 0; s < SPAN; s++) {
            for (const e of [s, s + 1, s + 5, SPAN - 1]) {
              if (e >= SPAN || e < s) continue;
              let want = 0;
              held.forEach((bits, i) => {
                if (bits.subarray(s, e + 1).some((b) => b === 1)) want |= 1 << i;
              });
              expect(RangeSet.overlappingSets(sets, base + s, base + e), `[${s}, ${e}]`).toBe(want);
            }
          }
          // The sets are unchanged by the queries.
          sets.forEach((set, i) => {
            expect(set.toArray()).toEqual(rangesOf(held[i]!).map(([s, e]) => [base + s, base + e]));
          });
        },
      ),
      runs(60),
    );
    // Empty sets, one range, two (in the fields) and three or more (in the store) were all asked.
    expect([...layouts].sort()).toEqual([0, 1, 2, 3]);
  });
});
