/**
 * Model-based tests of the p2m against a deliberately naive model of Xen's x86 code: the page table
 * as a `Map` of leaves (first gfn → mfn, type, order 0 or 9), on which `map_mmio_regions` and
 * `unmap_mmio_regions` are written out as Xen writes them (xen/arch/x86/mm/p2m.c): `mmio_order` picks
 * each chunk's order, `set_mmio_p2m_entry` / `clear_mmio_p2m_entry` answer "retry at a smaller order"
 * or write one leaf, and one call does at most MAP_MMIO_MAX_ITER = 64 chunks before it returns its
 * progress. The model knows nothing of extents, batches or the package's fast paths.
 *
 * Every map/unmap call's result (done, the exact progress, or the error) comes from the model, and
 * after every command the p2m must hold the model's leaves, be crashed when the model is and have made
 * the same number of entry writes. Host capabilities vary (HAP or not, 2M and 1G leaves or not),
 * read-only MMIO forces 4K, and some runs make chosen entry writes fail (ENOMEM). The leaf rules are
 * checked on their own as well: order 9 only where gfn and mfn are 2M-aligned, order 0 wherever the
 * MFN block meets mmioRoRanges.
 */
import {
  type FrameRanges,
  type Gfn,
  gfn,
  INVALID_MFN,
  MAX_FRAME,
  type Mfn,
  type MmioErrno,
  type MmioResult,
  mapMmio,
  mfn,
  mfnAdd,
  P2m,
  P2mLookup,
  type PopulateResult,
  populateRam,
  unmapMmio,
} from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';

/** Leaf orders the model writes: 4K and 2M (`mmio_order` never returns 1G). */
type Order = 0 | 9;
/** The only types these tests create: RAM by populating, MMIO by mapping. */
type PageType = 'ram_rw' | 'mmio_direct';

/** A page-table leaf: `2^order` guest frames from its (aligned) gfn map `mfn …`. */
interface Leaf {
  mfn: number;
  type: PageType;
  order: Order;
}

/** What the host offers: `hap_enabled(d)`, `hap_has_2mb`, `hap_has_1gb`. */
interface Caps {
  hap: boolean;
  superpages2M: boolean;
  superpages1G: boolean;
}

interface Model {
  /** The leaves by first gfn. */
  leaves: Map<number, Leaf>;
  /**
   * The 2M blocks that have an L1 table and the 1G blocks that have an L2 table (by block number):
   * where a walk over a hole stops, so the order `get_entry` reports for it.
   */
  l1Tables: Set<number>;
  l2Tables: Set<number>;
  caps: Caps;
  /** `mmio_ro_ranges`: inclusive MFN ranges. */
  ro: ReadonlyArray<readonly [number, number]>;
  /** Entry writes attempted so far, and the write numbers that fail with ENOMEM. */
  writes: number;
  failing: ReadonlySet<number>;
  /** The write number a one-shot `failNext` armed (it fails with ENOMEM, then disarms), or 0. */
  armed: number;
  crashed: boolean;
}

function newModel(caps: Caps, ro: Model['ro'], failing: ReadonlySet<number>): Model {
  const [leaves, l1Tables, l2Tables] = [new Map(), new Set<number>(), new Set<number>()];
  return { leaves, l1Tables, l2Tables, caps, ro, writes: 0, failing, armed: 0, crashed: false };
}

function newP2m(model: Model): P2m {
  const roSet = new RangeSet<Mfn>();
  for (const [s, e] of model.ro) roSet.addRange(mfn(s), mfn(e));
  return new P2m({
    ...model.caps,
    mmioRoRanges: roSet,
    ...(model.failing.size > 0 ? { failAt: (n: number) => model.failing.has(n) } : {}),
  });
}

// ---- the model's page table: leaves, get_entry, set_entry ------------------------------------------

const block = (g: number, order: 9 | 18): number => Math.floor(g / 2 ** order);

function putLeaf(m: Model, g: number, leaf: Leaf | undefined): void {
  if (leaf === undefined) m.leaves.delete(g);
  else m.leaves.set(g, leaf);
}

/** The leaf holding `g` and its first gfn: a 4K leaf at `g`, or a 2M leaf at the start of its block. */
function leafAt(m: Model, g: number): { start: number; leaf: Leaf } | undefined {
  const own = m.leaves.get(g);
  if (own !== undefined) return { start: g, leaf: own };
  const start = g - (g % 512);
  const big = m.leaves.get(start);
  return big?.order === 9 ? { start, leaf: big } : undefined;
}

/**
 * `p2m->get_entry(gfn)` (`ept_get_entry`, `p2m_pt_get_entry`): a mapped frame's mfn (the leaf's plus
 * the offset in it), type and leaf order; for a hole INVALID_MFN, `mmio_dm` and the level at which
 * the walk met an empty entry: 0 inside an L1 table, 9 inside an L2 table, else 18. Tables are kept
 * when their entries are cleared, so a 2M block once written in 4K reads as order 0 for good.
 */
function getEntry(
  m: Model,
  g: number,
): { mfn: number | undefined; type: PageType | 'mmio_dm'; order: number } {
  const held = leafAt(m, g);
  if (held !== undefined) return { ...held.leaf, mfn: held.leaf.mfn + (g - held.start) };
  return {
    mfn: undefined,
    type: 'mmio_dm',
    order: m.l1Tables.has(block(g, 9)) ? 0 : m.l2Tables.has(block(g, 18)) ? 9 : 18,
  };
}

/**
 * `p2m_set_entry` of one leaf of `order` at `g` (aligned): map `mfn …` with `type`, or clear when
 * `target` is undefined. A larger leaf holding `g` is split first, all of it down to `order` (EPT's
 * `ept_split_super_page`, xen/arch/x86/mm/p2m-ept.c). Every call is one entry write; a write whose
 * number is in `failing` fails with ENOMEM and changes nothing. Returns whether it was written.
 */
function writeLeaf(m: Model, g: number, order: Order, target: Omit<Leaf, 'order'> | undefined): boolean {
  m.writes++;
  if (m.armed === m.writes) {
    m.armed = 0;
    return false;
  }
  if (m.failing.has(m.writes)) return false;
  const held = leafAt(m, g);
  if (held !== undefined && held.leaf.order > order) {
    for (let k = 0; k < 2 ** held.leaf.order; k++)
      putLeaf(m, held.start + k, { ...held.leaf, mfn: held.leaf.mfn + k, order: 0 });
  }
  putLeaf(m, g, target === undefined ? undefined : { ...target, order });
  // The walk allocates the tables down to the leaf's level (set or clear alike); a 2M leaf replaces
  // (frees) the block's L1 table (`ept_set_entry`'s old_entry, `p2m_pt_set_entry`'s intermediate).
  if (order === 0) m.l1Tables.add(block(g, 9));
  else m.l1Tables.delete(block(g, 9));
  m.l2Tables.add(block(g, 18));
  return true;
}

// ---- the MMIO calls, as in xen/arch/x86/mm/p2m.c ---------------------------------------------------

/** A helper's answer as Xen's int: 0 done, `order + 1` retry at `order`, or the error. */
type Rc = number | MmioErrno;

/** Chunks per call ("pretty arbitrary"). */
const MAP_MMIO_MAX_ITER = 64;

/**
 * `mmio_order(d, start_fn, nr)`: 4K without HAP, when `start_fn` (gfn | mfn) is not 2M-aligned or
 * fewer than 2^9 frames remain; the 1G branch is compiled out (`if ( 0 && … hap_has_1gb )`), so 1G
 * support changes nothing; else 2M when `hap_has_2mb`, 4K otherwise.
 */
function mmioOrder(caps: Caps, startFn: bigint, nr: number): Order {
  if (!caps.hap || (startFn & 0x1ffn) !== 0n || Math.floor(nr / 2 ** 9) === 0) return 0;
  return caps.superpages2M ? 9 : 0;
}

/** `p2m_is_special`: grants, foreign maps and mmio_direct; of the types here, mmio_direct. */
const isSpecial = (type: PageType | 'mmio_dm'): boolean => type === 'mmio_direct';

/**
 * `set_mmio_p2m_entry` and `set_typed_p2m_entry(…, p2m_mmio_direct)`: 4K when the MFN block meets
 * `mmio_ro_ranges`; retry at the entry's order when smaller; over a special entry, the identical
 * mapping is done and anything else crashes the domain (EPERM); else write.
 */
function setMmioEntry(m: Model, g: number, mf: number, order: Order): Rc {
  if (order > 0 && m.ro.some(([s, e]) => s <= mf + 2 ** order - 1 && mf <= e)) return 0 + 1; // PAGE_ORDER_4K + 1
  const old = getEntry(m, g);
  if (old.order < order) return old.order + 1;
  if (isSpecial(old.type)) {
    if (old.mfn !== mf || old.type !== 'mmio_direct') {
      m.crashed = true;
      return 'EPERM';
    }
    return 0;
  }
  return writeLeaf(m, g, order, { mfn: mf, type: 'mmio_direct' }) ? 0 : 'ENOMEM';
}

/**
 * `clear_mmio_p2m_entry`: retry at the entry's order when smaller; EINVAL unless the entry is
 * mmio_direct (another mfn is only a warning); else clear.
 */
function clearMmioEntry(m: Model, g: number, _mf: number, order: Order): Rc {
  const old = getEntry(m, g);
  if (old.order < order) return old.order + 1;
  if (old.mfn === undefined || old.type !== 'mmio_direct') return 'EINVAL';
  return writeLeaf(m, g, order, undefined) ? 0 : 'ENOMEM';
}

/**
 * `map_mmio_regions` / `unmap_mmio_regions`: at most MAP_MMIO_MAX_ITER chunks, each at
 * `mmio_order((gfn + i) | (mfn + i), nr - i)`, retried at the order the helper names; stop at an
 * error. Returns 0 when all is done, the progress `i` when some is, else the error (`i ?: ret`).
 */
function mmioRegions(m: Model, kind: 'map' | 'unmap', g: number, nr: number, mf: number): MmioResult {
  const helper = kind === 'map' ? setMmioEntry : clearMmioEntry;
  let rc: Rc = 0;
  let i = 0;
  let order: Order = 0;
  for (let iter = 0; i < nr && iter < MAP_MMIO_MAX_ITER; i += 2 ** order, iter++) {
    order = mmioOrder(m.caps, BigInt(g + i) | BigInt(mf + i), nr - i);
    for (;;) {
      rc = helper(m, g + i, mf + i, order);
      if (typeof rc !== 'number' || rc === 0) break;
      order = (rc - 1) as Order;
    }
    if (typeof rc !== 'number') break;
  }
  if (i === nr) return { ok: true, done: true };
  if (i > 0) return { ok: true, done: false, progress: i };
  return { ok: false, code: rc as MmioErrno };
}

/**
 * `populateRam` (the package's `XENMEM_populate_physmap` of 4K pages): page by page, a special entry
 * crashes the domain (EPERM), else a 4K RAM leaf is written; RAM at another mfn is reported orphaned.
 * `refuseClobber` refuses the whole call (EEXIST) when any frame holds RAM.
 */
function populate(m: Model, g: number, count: number, mf: number, refuse: boolean): PopulateResult {
  const ram = Array.from({ length: count }, (_, k) => g + k).filter((f) => getEntry(m, f).type === 'ram_rw');
  if (refuse && ram.length > 0) return { ok: false, code: 'EEXIST', gfns: runsOf(ram) };
  const orphaned: number[] = [];
  for (let k = 0; k < count; k++) {
    const old = getEntry(m, g + k);
    if (isSpecial(old.type)) {
      m.crashed = true;
      return { ok: false, code: 'EPERM', done: k, gfn: gfn(g + k) };
    }
    if (!writeLeaf(m, g + k, 0, { mfn: mf + k, type: 'ram_rw' }))
      return { ok: false, code: 'ENOMEM', done: k, gfn: gfn(g + k) };
    if (old.mfn !== undefined && old.mfn !== mf + k) orphaned.push(g + k);
  }
  return { ok: true, orphaned: runsOf(orphaned) };
}

/** Ascending guest frames as inclusive runs. */
function runsOf(frames: readonly number[]): FrameRanges {
  const out: Array<[Gfn, Gfn]> = [];
  for (const f of frames) {
    const last = out.at(-1);
    if (last !== undefined && last[1] === f - 1) last[1] = gfn(f);
    else out.push([gfn(f), gfn(f)]);
  }
  return out;
}

// ---- comparing the p2m with the model ------------------------------------------------------------

/** The p2m's leaves by first gfn: each extent cut into leaves of its order. */
function leavesOf(p2m: P2m): Map<number, Leaf> {
  const out = new Map<number, Leaf>();
  for (const e of p2m.extents())
    for (let k = 0; k < e.count; k += 2 ** e.order)
      out.set(e.gfn + k, { mfn: e.mfn + k, type: e.type as PageType, order: e.order as Order });
  return out;
}

function checkState(m: Model, p2m: P2m): void {
  const got = leavesOf(p2m);
  expect(got.size, 'leaves').toBe(m.leaves.size);
  let frames = 0;
  for (const [g, leaf] of m.leaves) {
    const real = got.get(g);
    // expect() per leaf is slow; compare plainly and let expect report a mismatch.
    if (real === undefined || real.mfn !== leaf.mfn || real.type !== leaf.type || real.order !== leaf.order)
      expect(real, `leaf at gfn ${g}`).toEqual(leaf);
    frames += 2 ** leaf.order;
  }
  expect(p2m.mappedFrames).toBe(frames);
  expect(p2m.crashed).toBe(m.crashed);
  expect(p2m.writes, 'entry writes').toBe(m.writes);
  for (const e of p2m.extents()) {
    const size = 2 ** e.order;
    expect(e.order === 0 || e.order === 9, 'no 1G leaves').toBe(true);
    if (e.order > 0) {
      expect(e.gfn % size, 'superpage gfn aligned').toBe(0);
      expect(e.mfn % size, 'superpage mfn aligned').toBe(0);
      expect(e.count % size).toBe(0);
      const lastMfn = mfnAdd(e.mfn, e.count - 1);
      expect(p2m.mmioRoRanges.overlapsRange(e.mfn, lastMfn), 'superpage meets mmioRoRanges').toBe(false);
    }
  }
}

/** One call of map/unmap on both sides; its result must be the model's. */
function call(m: Model, p2m: P2m, kind: 'map' | 'unmap', g: number, count: number, mf: number): MmioResult {
  const expected = mmioRegions(m, kind, g, count, mf);
  const got = (kind === 'map' ? mapMmio : unmapMmio)(p2m, gfn(g), count, mfn(mf));
  expect(got, `${kind}(${g}, ${count}, ${mf})`).toEqual(expected);
  if (got.ok && !got.done) expect(got.progress).toBeLessThanOrEqual(MAP_MMIO_MAX_ITER * 512);
  return expected;
}

// ---- commands: operations started, driven a few calls at a time, interleaved -----------------------

const UNIVERSE = 8192;

interface PendingOp {
  kind: 'map' | 'unmap';
  gfn: number;
  count: number;
  mfn: number;
  done: number;
}
interface State {
  model: Model;
  pending: PendingOp[];
  /** The caller-owned answer every `lookupInto` reuses. */
  into: P2mLookup;
}

/** One call for the rest of `op`; true when the op is over (done or failed). */
function step(state: State, p2m: P2m, op: PendingOp): boolean {
  const r = call(state.model, p2m, op.kind, op.gfn + op.done, op.count - op.done, op.mfn + op.done);
  if (r.ok && !r.done) op.done += r.progress;
  return !r.ok || r.done;
}

class StartCommand implements fc.Command<State, P2m> {
  constructor(readonly op: Omit<PendingOp, 'done'>) {}
  check(): boolean {
    return true;
  }
  run(state: State, p2m: P2m): void {
    state.pending.push({ ...this.op, done: 0 });
    checkState(state.model, p2m);
  }
  toString(): string {
    return `start ${this.op.kind}(${this.op.gfn}, ${this.op.count}, ${this.op.mfn})`;
  }
}

class StepCommand implements fc.Command<State, P2m> {
  constructor(
    readonly which: number,
    readonly calls: number,
  ) {}
  check(state: Readonly<State>): boolean {
    return state.pending.length > 0;
  }
  run(state: State, p2m: P2m): void {
    const index = this.which % state.pending.length;
    const op = state.pending[index] as PendingOp;
    for (let c = 0; c < this.calls; c++) {
      if (step(state, p2m, op)) {
        state.pending.splice(index, 1);
        break;
      }
    }
    checkState(state.model, p2m);
  }
  toString(): string {
    return `step #${this.which} x${this.calls}`;
  }
}

class FinishCommand implements fc.Command<State, P2m> {
  check(state: Readonly<State>): boolean {
    return state.pending.length > 0;
  }
  run(state: State, p2m: P2m): void {
    for (const op of state.pending.splice(0)) while (!step(state, p2m, op));
    checkState(state.model, p2m);
  }
  toString(): string {
    return 'finish all';
  }
}

class PopulateCommand implements fc.Command<State, P2m> {
  constructor(
    readonly gfn: number,
    readonly count: number,
    readonly mfn: number,
    readonly refuse: boolean,
  ) {}
  check(): boolean {
    return true;
  }
  run(state: State, p2m: P2m): void {
    const expected = populate(state.model, this.gfn, this.count, this.mfn, this.refuse);
    const policy = this.refuse ? 'refuseClobber' : 'report';
    expect(populateRam(p2m, gfn(this.gfn), this.count, mfn(this.mfn), 'ram_rw', policy)).toEqual(expected);
    checkState(state.model, p2m);
  }
  toString(): string {
    return `populate(${this.gfn}, ${this.count}, ${this.mfn}, ${this.refuse ? 'refuse' : 'report'})`;
  }
}

/**
 * A trace's `fault` line: `P2m.failNext(after)` arms a one-shot ENOMEM on the `after`-th entry write
 * from now (replacing an earlier shot), which populate's batched runs must stop in front of.
 */
class FailNextCommand implements fc.Command<State, P2m> {
  constructor(readonly after: number) {}
  check(): boolean {
    return true;
  }
  run(state: State, p2m: P2m): void {
    p2m.failNext(this.after);
    state.model.armed = state.model.writes + this.after;
  }
  toString(): string {
    return `failNext(${this.after})`;
  }
}

class LookupCommand implements fc.Command<State, P2m> {
  constructor(readonly gfn: number) {}
  check(): boolean {
    return true;
  }
  run(state: State, p2m: P2m): void {
    const expected = getEntry(state.model, this.gfn);
    expect(p2m.lookup(gfn(this.gfn))).toEqual(expected);
    // The allocation-free lookup gives the same facts, into a reused object.
    const mapped = p2m.lookupInto(gfn(this.gfn), state.into);
    expect(mapped).toBe(expected.mfn !== undefined);
    expect({ ...state.into }).toEqual({
      mapped,
      mfn: expected.mfn ?? INVALID_MFN,
      type: expected.type,
      order: expected.order,
    });
  }
  toString(): string {
    return `lookup(${this.gfn})`;
  }
}

/** A gfn, 2M-aligned half the time. */
const gfnArb = fc.oneof(
  fc.nat(UNIVERSE / 512 - 1).map((b) => b * 512),
  fc.nat(UNIVERSE - 1),
);
const countArb = fc.oneof(
  fc.integer({ min: 1, max: 80 }),
  fc.integer({ min: 1, max: 3000 }),
  fc.constantFrom(512, 1024, 1536),
);
/** A run: mfn with the gfn's 2M offset (so superpages are possible), or any mfn. */
const runArb = fc
  .record({ gfn: gfnArb, count: countArb, base: fc.nat(40), any: fc.nat(50_000), aligned: fc.boolean() })
  .map(({ gfn: g, count, base, any, aligned }) => ({
    gfn: g,
    count: Math.min(count, UNIVERSE - g),
    mfn: aligned ? 0x10000 + base * 512 + (g % 512) : any,
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
    fc.nat(UNIVERSE - 1).map((g) => new LookupCommand(g)),
    fc.integer({ min: 1, max: 700 }).map((n) => new FailNextCommand(n)),
  ],
  { size: 'max', maxCommands: 60 },
);

/** Read-only MMIO ranges inside the mfn window the aligned runs use. */
const roArb = fc.array(
  fc
    .tuple(fc.nat(40 * 512), fc.nat(8))
    .map(([s, len]) => [0x10000 + s, 0x10000 + s + len] as [number, number]),
  { maxLength: 3 },
);

const capsArb: fc.Arbitrary<Caps> = fc.record({
  hap: fc.boolean(),
  superpages2M: fc.boolean(),
  superpages1G: fc.boolean(),
});

/** Entry writes that fail: none in most runs, a few chosen ones in the others. */
const failingArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(new Set<number>()) },
  {
    weight: 1,
    arbitrary: fc.uniqueArray(fc.integer({ min: 1, max: 400 }), { maxLength: 4 }).map((w) => new Set(w)),
  },
);

describe('P2m against a naive model of Xen’s page table and MMIO calls', () => {
  it('any interleaving of map/unmap (driven in steps), populate and lookups gives the model’s results and leaves', () => {
    fc.assert(
      fc.property(roArb, capsArb, failingArb, commands, (ro, caps, failing, cmds) => {
        const setup = () => {
          const model = newModel(caps, ro, failing);
          return { model: { model, pending: [], into: new P2mLookup() } as State, real: newP2m(model) };
        };
        fc.modelRun(setup, cmds);
      }),
      runs(150),
    );
  });

  it('long runs anywhere in the frame space: each call’s progress (up to 64 2M chunks) and the leaves', () => {
    /** A 2M block: low, anywhere, or the last one below 2^52. */
    const blockArb = fc.oneof(fc.nat(2 ** 11), fc.nat(2 ** 43 - 1), fc.constant(2 ** 43 - 1));
    /** A frame's offset in its 2M block: mostly 0, so that superpages are possible. */
    const offsetArb = fc.oneof(
      { weight: 2, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.nat(511) },
    );
    /** A run of `counts` frames starting in `blocks` at `offsets`, below 2^52. */
    const longRunArb = (
      counts: fc.Arbitrary<number>,
      blocks: fc.Arbitrary<number>,
      offsets: fc.Arbitrary<number>,
    ) =>
      fc
        .record({
          gfnBlock: blocks,
          mfnBlock: blocks,
          gfnOffset: offsets,
          // undefined: the gfn's offset, so gfn | mfn is 2M-aligned wherever gfn is.
          mfnOffset: fc.option(offsets, { nil: undefined }),
          count: counts,
        })
        .map(({ gfnBlock, mfnBlock, gfnOffset, mfnOffset, count }) => {
          /** The frame at `offset` in `block`, moved down by whole blocks until the run fits below 2^52. */
          const place = (block: number, offset: number): number => {
            const frame = block * 512 + offset;
            const over = frame + count - (MAX_FRAME + 1);
            return over > 0 ? frame - 512 * Math.ceil(over / 512) : frame;
          };
          return { gfn: place(gfnBlock, gfnOffset), count, mfn: place(mfnBlock, mfnOffset ?? gfnOffset) };
        });
    /** Mostly a host with HAP and 2M leaves, where chunks can be 2M. */
    const hostArb = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          hap: fc.constant(true),
          superpages2M: fc.constant(true),
          superpages1G: fc.boolean(),
        }),
      },
      { weight: 1, arbitrary: capsArb },
    );
    const caseArb = fc.oneof(
      {
        // Short runs, and runs past one call's 64 2M chunks.
        weight: 6,
        arbitrary: fc.tuple(
          longRunArb(
            fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 32_000, max: 45_000 })),
            blockArb,
            offsetArb,
          ),
          hostArb,
        ),
      },
      {
        // A 1G-aligned run past a 1G block on a host with 1G leaves: still 2M chunks, 64 a call.
        weight: 1,
        arbitrary: fc.tuple(
          longRunArb(
            fc.integer({ min: 2 ** 18, max: 2 ** 18 + 2000 }),
            fc.nat(2 ** 34 - 1).map((b) => b * 512),
            fc.constant(0),
          ),
          fc.constant({ hap: true, superpages2M: true, superpages1G: true }),
        ),
      },
    );
    /** Things in the run's way, as offsets into it: RAM pages, other MMIO, read-only MMIO frames. */
    const fraction = fc.double({ min: 0, max: 1, noNaN: true });
    const obstaclesArb = fc.oneof(
      fc.constant({ ram: [], mmio: [], ro: [] }),
      fc.record({
        ram: fc.array(fc.tuple(fraction, fc.integer({ min: 1, max: 40 })), { maxLength: 3 }),
        mmio: fc.array(fc.tuple(fraction, fc.integer({ min: 1, max: 1100 }), fc.boolean()), { maxLength: 2 }),
        ro: fc.array(fc.tuple(fraction, fc.nat(3)), { maxLength: 2 }),
      }),
    );
    fc.assert(
      fc.property(caseArb, obstaclesArb, failingArb, ([run, caps], obstacles, failing) => {
        const at = (fraction: number) => Math.floor(fraction * (run.count - 1));
        const ro = obstacles.ro.map(([f, len]): [number, number] => [
          run.mfn + at(f),
          Math.min(run.mfn + at(f) + len, MAX_FRAME),
        ]);
        const m = newModel(caps, ro, failing);
        const p2m = newP2m(m);
        /** Calls `kind` until it is done or fails. */
        const drive = (kind: 'map' | 'unmap', g: number, count: number, mf: number): void => {
          for (let done = 0; ; ) {
            const r = call(m, p2m, kind, g + done, count - done, mf + done);
            if (!r.ok || r.done) break;
            done += r.progress;
          }
        };
        for (const [f, n] of obstacles.ram) {
          const count = Math.min(n, run.count - at(f));
          expect(populateRam(p2m, gfn(run.gfn + at(f)), count, mfn(0x1000))).toEqual(
            populate(m, run.gfn + at(f), count, 0x1000, false),
          );
        }
        // Other MMIO in the way: the run's own frames (mapping them again changes nothing) or others.
        for (const [f, n, own] of obstacles.mmio) {
          const count = Math.min(n, run.count - at(f));
          drive('map', run.gfn + at(f), count, own ? run.mfn + at(f) : 0x2000);
        }
        checkState(m, p2m);
        drive('map', run.gfn, run.count, run.mfn);
        checkState(m, p2m);
        drive('unmap', run.gfn, run.count, run.mfn);
        checkState(m, p2m);
      }),
      runs(60),
    );
  });
});
