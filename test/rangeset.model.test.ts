/**
 * Model-based tests of RangeSet against a deliberately naive model: one byte per value over a small
 * universe, with the range list recomputed from scratch after every step. Every command checks its
 * own outcome (including ENOMEM under a limit), and after every command the set must equal the model
 * and be canonical (sorted, disjoint, non-adjacent).
 */
import { RangeSet } from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/** Values the commands touch. */
const UNIVERSE = 160;
/**
 * Values the model holds: claims go past the universe, up to 200 commands of at most 32 values each
 * (with 256, a run of claims under another seed outgrew the model, FC_SEED=593436892).
 */
const BITMAP = UNIVERSE + 200 * 32;

type Ranges = Array<[number, number]>;

/** The canonical range list of a bitmap. */
function rangesOf(bits: Uint8Array): Ranges {
  const out: Ranges = [];
  for (let v = 0; v < bits.length; v++) {
    if (!bits[v]) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === v - 1) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

function fill(bits: Uint8Array, s: number, e: number, value: 0 | 1): Uint8Array<ArrayBuffer> {
  const next = bits.slice();
  next.fill(value, s, e + 1);
  return next;
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

/** `addRange` or `removeRange` of one range on set a. */
class Update implements fc.Command<Model, Real> {
  constructor(
    readonly op: 'addRange' | 'removeRange',
    readonly r: [number, number],
  ) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    const after = fill(m.a, this.r[0], this.r[1], this.op === 'addRange' ? 1 : 0);
    const ok = allowed(m.a, after, m.limitA);
    expect(real.a[this.op](...this.r)).toEqual(ok ? { ok: true } : { ok: false, code: 'ENOMEM' });
    if (ok) m.a = after;
    expectSame(m, real);
  }
  toString = (): string => `${this.op}(${this.r})`;
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

class Consume implements fc.Command<Model, Real> {
  constructor(readonly plan: Plan[]) {}
  check = (): boolean => true;
  run(m: Model, real: Real): void {
    let call = 0;
    const result = real.a.consumeRanges<'EIO'>((s, e) => {
      const expected = rangesOf(m.a)[0];
      expect([s, e]).toEqual(expected);
      const step = this.plan[call++] ?? { take: 0, next: 'restart' };
      const consumed = Math.min(step.take, e - s + 1);
      m.a = fill(m.a, s, s + consumed - 1, 0);
      if (step.next === 'fail') return { consumed, next: 'fail', code: 'EIO' };
      // 'continue' must make progress; a plan step that would not becomes a restart.
      return { consumed, next: consumed === 0 ? 'restart' : step.next };
    });
    if (result.ok && result.status === 'done') expect(rangesOf(m.a)).toEqual([]);
    if (!result.ok) expect(this.plan[call - 1]?.next).toBe('fail');
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
      { numRuns: 300 },
    );
  });
});

/** Every value of a set, in ascending order (small sets only). */
function values(ranges: Ranges): number[] {
  return ranges.flatMap(([s, e]) => Array.from({ length: e - s + 1 }, (_, i) => s + i));
}

/**
 * A worker as vPCI's map_range is one: it takes up to `budget` values from the front of the first
 * range, logs them, and asks for a restart when the budget runs out.
 */
function drain(set: RangeSet, budgets: number[], log: number[]): number {
  let calls = 0;
  for (;;) {
    let budget = budgets[calls] ?? Number.POSITIVE_INFINITY;
    calls++;
    const result = set.consumeRanges((s, e) => {
      const consumed = Math.min(budget, e - s + 1);
      for (let v = s; v < s + consumed; v++) log.push(v);
      budget -= consumed;
      return { consumed, next: budget === 0 ? 'restart' : 'continue' };
    });
    if (result.ok && result.status === 'done') return calls;
  }
}

const smallSet = fc.array(
  fc.tuple(fc.nat({ max: 1 << 20 }), fc.nat({ max: 20 })).map(([s, len]): [number, number] => [s, s + len]),
  { maxLength: 8 },
);

describe('consumeRanges preemption', () => {
  it('resuming after a restart at any point ends where an uninterrupted run ends', () => {
    fc.assert(
      fc.property(smallSet, fc.constantFrom(4, 256), (ranges, chunkSize) => {
        const whole = RangeSet.from(ranges, { chunkSize });
        const expected = values(whole.toArray());
        const uninterrupted: number[] = [];
        drain(RangeSet.from(ranges, { chunkSize }), [], uninterrupted);
        expect(uninterrupted).toEqual(expected);
        // Restart after exactly p values, for every p, then run to the end.
        for (let p = 0; p <= expected.length; p++) {
          const set = RangeSet.from(ranges, { chunkSize });
          const log: number[] = [];
          drain(set, [p], log);
          expect(log).toEqual(expected);
          expect(set.isEmpty()).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('any sequence of budgets consumes the same values in the same order', () => {
    fc.assert(
      fc.property(
        smallSet,
        fc.array(fc.integer({ min: 1, max: 7 }), { maxLength: 40 }),
        (ranges, budgets) => {
          const set = RangeSet.from(ranges, { chunkSize: 4 });
          const expected = values(set.toArray());
          const log: number[] = [];
          drain(set, budgets, log);
          expect(log).toEqual(expected);
        },
      ),
    );
  });

  it('a failure at any point keeps exactly the unconsumed rest, and a later call finishes it', () => {
    fc.assert(
      fc.property(smallSet, (ranges) => {
        const expected = values(RangeSet.from(ranges).toArray());
        for (let p = 0; p <= expected.length; p++) {
          const set = RangeSet.from(ranges, { chunkSize: 4 });
          let left = p;
          const result = set.consumeRanges<'EPERM'>((s, e) => {
            const consumed = Math.min(left, e - s + 1);
            left -= consumed;
            return left === 0 ? { consumed, next: 'fail', code: 'EPERM' } : { consumed, next: 'continue' };
          });
          if (expected.length === 0) expect(result).toEqual({ ok: true, status: 'done' });
          else expect(result).toEqual({ ok: false, code: 'EPERM' });
          expect(values(set.toArray())).toEqual(expected.slice(p));
          const log: number[] = [];
          drain(set, [], log);
          expect(log).toEqual(expected.slice(p));
        }
      }),
      { numRuns: 150 },
    );
  });
});
