/**
 * Model-based tests of the p2m against a deliberately naive model: a page-by-page `Map<gfn, {mfn,
 * type}>` that knows nothing of leaves, orders, chunks or extents. MMIO map/unmap operations are
 * started, driven a few calls at a time (interleaved with other operations, resumed later or left
 * unfinished) and the model replays exactly the frames each call reports as done, checking each is
 * allowed. After every command the p2m must equal the model and its leaves must be legal: order 9
 * only where gfn and mfn are 2M-aligned, order 0 wherever the MFN block meets mmioRoRanges.
 */
import {
  type Gfn,
  gfn,
  gfnAdd,
  isRam,
  isSpecial,
  type Mfn,
  type MmioResult,
  mapMmio,
  mfn,
  mfnAdd,
  P2m,
  type P2mType,
  populateRam,
  unmapMmio,
} from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const UNIVERSE = 8192;

interface Page {
  mfn: number;
  type: P2mType;
}
interface PendingOp {
  kind: 'map' | 'unmap';
  gfn: Gfn;
  count: number;
  mfn: Mfn;
  done: number;
}
interface Model {
  pages: Map<number, Page>;
  crashed: boolean;
  pending: PendingOp[];
}
interface Real {
  p2m: P2m;
  ro: RangeSet<Mfn>;
}

function expandReal(p2m: P2m): Map<number, Page> {
  const out = new Map<number, Page>();
  for (const e of p2m.extents())
    for (let k = 0; k < e.count; k++) out.set(e.gfn + k, { mfn: e.mfn + k, type: e.type });
  return out;
}

function checkState(model: Model, real: Real): void {
  const got = expandReal(real.p2m);
  expect(got.size).toBe(model.pages.size);
  for (const [g, page] of model.pages) {
    const real = got.get(g);
    // expect() per page is slow; compare plainly and let expect report a mismatch.
    if (real === undefined || real.mfn !== page.mfn || real.type !== page.type)
      expect(real, `gfn ${g}`).toEqual(page);
  }
  expect(real.p2m.mappedFrames).toBe(model.pages.size);
  expect(real.p2m.crashed).toBe(model.crashed);
  for (const e of real.p2m.extents()) {
    const size = 2 ** e.order;
    expect(e.order === 0 || e.order === 9, 'no 1G leaves').toBe(true);
    if (e.order > 0) {
      expect(e.gfn % size, 'superpage gfn aligned').toBe(0);
      expect(e.mfn % size, 'superpage mfn aligned').toBe(0);
      expect(e.count % size).toBe(0);
      const lastMfn = mfnAdd(e.mfn, e.count - 1);
      expect(real.ro.overlapsRange(e.mfn, lastMfn), 'superpage meets mmioRoRanges').toBe(false);
    }
  }
}

/**
 * Replays one call's reported frames on the model, checking each was allowed. `crashedNow`: the call
 * crashed the domain. Xen's `map_mmio_regions` returns the frames done before an error when there
 * are any (`i ?: ret`), so a map that crashes on a special entry after some progress reports that
 * progress, not EPERM: the crash must then be justified by the next frame.
 */
function replayCall(model: Model, op: PendingOp, r: MmioResult, crashedNow: boolean): void {
  const remaining = op.count - op.done;
  const k = r.ok ? (r.done ? remaining : r.progress) : 0;
  if (r.ok && !r.done) {
    expect(k).toBeGreaterThan(0);
    expect(k).toBeLessThan(remaining);
    expect(k).toBeLessThanOrEqual(64 * 512);
  }
  for (let j = 0; j < k; j++) {
    const g = op.gfn + op.done + j;
    const m = op.mfn + op.done + j;
    const old = model.pages.get(g);
    if (op.kind === 'map') {
      if (old !== undefined && isSpecial(old.type)) {
        expect(old, `map over special at ${g}`).toEqual({ mfn: m, type: 'mmio_direct' });
      }
      model.pages.set(g, { mfn: m, type: 'mmio_direct' });
    } else {
      expect(old?.type, `unmap of a non-mmio frame ${g}`).toBe('mmio_direct');
      model.pages.delete(g);
    }
  }
  op.done += k;
  if (r.ok && crashedNow) {
    const old = model.pages.get(op.gfn + op.done);
    expect(op.kind).toBe('map');
    expect(
      old !== undefined &&
        isSpecial(old.type) &&
        !(old.mfn === op.mfn + op.done && old.type === 'mmio_direct'),
      `a crash after progress, at gfn ${op.gfn + op.done}`,
    ).toBe(true);
    model.crashed = true;
  }
  if (!r.ok) {
    const g = op.gfn + op.done;
    const old = model.pages.get(g);
    if (op.kind === 'map') {
      expect(r.code).toBe('EPERM');
      expect(
        old !== undefined &&
          isSpecial(old.type) &&
          !(old.mfn === op.mfn + op.done && old.type === 'mmio_direct'),
      ).toBe(true);
      model.crashed = true;
    } else {
      expect(r.code).toBe('EINVAL');
      expect(old?.type).not.toBe('mmio_direct');
    }
  }
}

function step(model: Model, real: Real, op: PendingOp): boolean {
  const call = op.kind === 'map' ? mapMmio : unmapMmio;
  const crashedBefore = real.p2m.crashed;
  const r = call(real.p2m, gfnAdd(op.gfn, op.done), op.count - op.done, mfnAdd(op.mfn, op.done));
  replayCall(model, op, r, real.p2m.crashed && !crashedBefore);
  return !r.ok || r.done;
}

class StartCommand implements fc.Command<Model, Real> {
  constructor(readonly op: Omit<PendingOp, 'done'>) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    model.pending.push({ ...this.op, done: 0 });
    checkState(model, real);
  }
  toString(): string {
    return `start ${this.op.kind}(${this.op.gfn}, ${this.op.count}, ${this.op.mfn})`;
  }
}

class StepCommand implements fc.Command<Model, Real> {
  constructor(
    readonly which: number,
    readonly calls: number,
  ) {}
  check(model: Readonly<Model>): boolean {
    return model.pending.length > 0;
  }
  run(model: Model, real: Real): void {
    const index = this.which % model.pending.length;
    const op = model.pending[index] as PendingOp;
    for (let c = 0; c < this.calls; c++) {
      if (step(model, real, op)) {
        model.pending.splice(index, 1);
        break;
      }
    }
    checkState(model, real);
  }
  toString(): string {
    return `step #${this.which} x${this.calls}`;
  }
}

class FinishCommand implements fc.Command<Model, Real> {
  check(model: Readonly<Model>): boolean {
    return model.pending.length > 0;
  }
  run(model: Model, real: Real): void {
    for (const op of model.pending.splice(0)) while (!step(model, real, op));
    checkState(model, real);
  }
  toString(): string {
    return 'finish all';
  }
}

class PopulateCommand implements fc.Command<Model, Real> {
  constructor(
    readonly gfn: Gfn,
    readonly count: number,
    readonly mfn: Mfn,
    readonly refuse: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const r = populateRam(
      real.p2m,
      this.gfn,
      this.count,
      this.mfn,
      'ram_rw',
      this.refuse ? 'refuseClobber' : 'report',
    );
    const present: Array<[number, number]> = [];
    for (let k = 0; k < this.count; k++) {
      const old = model.pages.get(this.gfn + k);
      if (old !== undefined && isRam(old.type)) {
        const last = present.at(-1);
        if (last !== undefined && last[1] === this.gfn + k - 1) last[1]++;
        else present.push([this.gfn + k, this.gfn + k]);
      }
    }
    if (this.refuse && present.length > 0) {
      expect(r).toEqual({ ok: false, code: 'EEXIST', gfns: present });
    } else {
      const orphaned: Array<[number, number]> = [];
      let k = 0;
      for (; k < this.count; k++) {
        const g = this.gfn + k;
        const old = model.pages.get(g);
        if (old !== undefined && isSpecial(old.type)) break;
        if (old !== undefined && isRam(old.type) && old.mfn !== this.mfn + k) {
          const last = orphaned.at(-1);
          if (last !== undefined && last[1] === g - 1) last[1]++;
          else orphaned.push([g, g]);
        }
        model.pages.set(g, { mfn: this.mfn + k, type: 'ram_rw' });
      }
      if (k < this.count) {
        expect(r).toEqual({ ok: false, code: 'EPERM', done: k, gfn: this.gfn + k });
        model.crashed = true;
      } else {
        expect(r).toEqual({ ok: true, orphaned });
      }
    }
    checkState(model, real);
  }
  toString(): string {
    return `populate(${this.gfn}, ${this.count}, ${this.mfn}, ${this.refuse ? 'refuse' : 'report'})`;
  }
}

class LookupCommand implements fc.Command<Model, Real> {
  constructor(readonly gfn: Gfn) {}
  check(): boolean {
    return true;
  }
  run(model: Model, real: Real): void {
    const got = real.p2m.lookup(this.gfn);
    const page = model.pages.get(this.gfn);
    if (page === undefined) expect(got.mfn === undefined && got.type === 'mmio_dm').toBe(true);
    else expect({ mfn: got.mfn, type: got.type }).toEqual(page);
    if (got.mfn !== undefined && got.order > 0) {
      const block = this.gfn - (this.gfn % 2 ** got.order);
      expect((got.mfn - (this.gfn - block)) % 2 ** got.order).toBe(0);
    }
  }
  toString(): string {
    return `lookup(${this.gfn})`;
  }
}

/** A gfn, 2M-aligned half the time (plain numbers here; frames are made where a run is built). */
const gfnArb = fc.oneof(
  fc.nat(UNIVERSE / 512 - 1).map((b) => b * 512),
  fc.nat(UNIVERSE - 1),
);
const countArb = fc.oneof(
  fc.integer({ min: 1, max: 80 }),
  fc.integer({ min: 1, max: 3000 }),
  fc.constantFrom(512, 1024, 1536),
);
/** A pair: mfn with the gfn's 2M offset (so superpages are possible), or any mfn. */
const runArb = fc
  .record({ gfn: gfnArb, count: countArb, base: fc.nat(40), any: fc.nat(50_000), aligned: fc.boolean() })
  .map(({ gfn: g, count, base, any, aligned }) => ({
    gfn: gfn(g),
    count: Math.min(count, UNIVERSE - g),
    mfn: mfn(aligned ? 0x10000 + base * 512 + (g % 512) : any),
  }));

const commands = fc.commands(
  [
    runArb.map((r) => new StartCommand({ kind: 'map', ...r })),
    runArb.map((r) => new StartCommand({ kind: 'unmap', ...r })),
    fc.tuple(fc.nat(7), fc.integer({ min: 1, max: 12 })).map(([w, c]) => new StepCommand(w, c)),
    fc.constant(new FinishCommand()),
    fc
      .tuple(runArb, fc.boolean())
      .map(([r, refuse]) => new PopulateCommand(r.gfn, Math.min(r.count, 600), r.mfn, refuse)),
    fc.nat(UNIVERSE - 1).map((g) => new LookupCommand(gfn(g))),
  ],
  { size: 'max', maxCommands: 60 },
);

/** Read-only MMIO ranges inside the mfn window the aligned pairs use. */
const roArb = fc.array(
  fc
    .tuple(fc.nat(40 * 512), fc.nat(8))
    .map(([s, len]) => [0x10000 + s, 0x10000 + s + len] as [number, number]),
  { maxLength: 3 },
);

describe('P2m against a page-by-page model', () => {
  it('any interleaving of map/unmap (driven in steps), populate and lookups agrees with the model', () => {
    fc.assert(
      fc.property(
        roArb,
        fc.record({ hap: fc.boolean(), superpages2M: fc.boolean() }),
        commands,
        (ro, flags, cmds) => {
          const roSet = new RangeSet<Mfn>();
          for (const [s, e] of ro) roSet.addRange(mfn(s), mfn(e));
          const setup = () => ({
            model: { pages: new Map<number, Page>(), crashed: false, pending: [] } as Model,
            real: { p2m: new P2m({ ...flags, mmioRoRanges: roSet }), ro: roSet },
          });
          fc.modelRun(setup, cmds);
        },
      ),
      { numRuns: 150 },
    );
  });
});
