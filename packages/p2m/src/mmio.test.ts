import { RangeSet } from '@vpci/rangeset';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.js';
import { type Gfn, gfn, type Mfn, mfn } from './frame.js';
import {
  addIdentityEntry,
  clearMmioEntry,
  type MmioResult,
  mapMmio,
  mmioOrder,
  removeIdentityEntry,
  setMmioEntry,
  unmapMmio,
} from './mmio.js';
import { P2m } from './p2m.js';
import { populateRam } from './populate.js';

/** Calls `call` from `(first, count, firstMfn)` until it is done or fails; returns every result. */
function drive(
  call: (g: number, count: number, m: number) => MmioResult,
  first: number,
  count: number,
  firstMfn: number,
) {
  const results: MmioResult[] = [];
  let done = 0;
  for (;;) {
    const r = call(first + done, count - done, firstMfn + done);
    results.push(r);
    if (!r.ok || r.done) return results;
    done += r.progress;
  }
}

describe('mmioOrder', () => {
  const hap = new P2m();
  it.each([
    [0xe0000, 0x10000, 9],
    [0xe0000, 512, 9],
    [0xe0000, 511, 0], // fewer than 512 remaining
    [0xe0100, 0x10000, 0], // OR not 2M-aligned
    [0x40000, 2 ** 20, 9], // 1G-aligned, 1G remaining: still 2M, 1G is never used
  ])('(or %i, remaining %i) → %i', (or, remaining, order) => {
    expect(mmioOrder(hap, or, remaining)).toBe(order);
  });
  it('4K without HAP or without 2M support', () => {
    expect(mmioOrder(new P2m({ hap: false }), 0, 1024)).toBe(0);
    expect(mmioOrder(new P2m({ superpages2M: false }), 0, 1024)).toBe(0);
    expect(mmioOrder(new P2m({ superpages1G: true }), 0, 2 ** 20)).toBe(9);
  });
});

describe('map_mmio_regions worked examples (HAP, 2M, empty p2m, no RO ranges)', () => {
  it('1: identity map of a 256 MiB BAR: 0x8000, then done', () => {
    const p2m = new P2m();
    expect(mapMmio(p2m, gfn(0xe0000), 0x10000, mfn(0xe0000))).toEqual({
      ok: true,
      done: false,
      progress: 0x8000,
    });
    expect(mapMmio(p2m, gfn(0xe8000), 0x8000, mfn(0xe8000))).toEqual({ ok: true, done: true });
    expect(p2m.lookup(gfn(0xeffff))).toEqual({ mfn: 0xeffff, type: 'mmio_direct', order: 9 });
    expect(p2m.extentCount).toBe(1);
  });

  it('2: misaligned pair: every chunk 4K, 64 calls of 64', () => {
    const p2m = new P2m();
    const results = drive((g, n, m) => mapMmio(p2m, gfn(g), n, mfn(m)), 0xe0000, 4096, 0xfe100);
    expect(results).toHaveLength(64);
    expect(results.slice(0, 63).every((r) => r.ok && !r.done && r.progress === 64)).toBe(true);
    expect(results[63]).toEqual({ ok: true, done: true });
    expect([...p2m.extents()]).toEqual([
      { gfn: 0xe0000, count: 4096, mfn: 0xfe100, type: 'mmio_direct', order: 0 },
    ]);
  });

  it('3: unaligned start, 252 frames: 64, 64, 64, done', () => {
    const p2m = new P2m();
    const results = drive((g, n, m) => mapMmio(p2m, gfn(g), n, mfn(m)), 0xfe004, 252, 0xfe004);
    expect(results).toEqual([
      { ok: true, done: false, progress: 64 },
      { ok: true, done: false, progress: 64 },
      { ok: true, done: false, progress: 64 },
      { ok: true, done: true },
    ]);
  });

  it('4: a read-only frame inside a 2M block forces 4K up to 0x801ff, then one 2M leaf', () => {
    const ro = new RangeSet<Mfn>();
    ro.addSingleton(mfn(0x80010));
    const p2m = new P2m({ mmioRoRanges: ro });
    expect(setMmioEntry(p2m, gfn(0x80000), mfn(0x80000), 9)).toEqual({ ok: false, code: 'retry', order: 0 });
    const results = drive((g, n, m) => mapMmio(p2m, gfn(g), n, mfn(m)), 0x80000, 0x400, 0x80000);
    expect(results[0]).toEqual({ ok: true, done: false, progress: 64 });
    // 512 frames in 4K chunks: 8 calls; then the last 512 frames are one 2M chunk.
    expect(results).toHaveLength(9);
    expect(results[8]).toEqual({ ok: true, done: true });
    expect([...p2m.extents()]).toEqual([
      { gfn: 0x80000, count: 512, mfn: 0x80000, type: 'mmio_direct', order: 0 },
      { gfn: 0x80200, count: 512, mfn: 0x80200, type: 'mmio_direct', order: 9 },
    ]);
  });

  it('5: mapping over a different mmio_direct crashes the domain with EPERM; the same mapping is a no-op', () => {
    const p2m = new P2m();
    expect(mapMmio(p2m, gfn(0xf0000), 1, mfn(0xa0000))).toEqual({ ok: true, done: true });
    const writes = p2m.writes;
    expect(mapMmio(p2m, gfn(0xf0000), 1, mfn(0xa0000))).toEqual({ ok: true, done: true });
    expect(p2m.writes).toBe(writes); // nothing written
    expect(p2m.crashed).toBe(false);
    expect(mapMmio(p2m, gfn(0xf0000), 1, mfn(0xb0000))).toEqual({ ok: false, code: 'EPERM' });
    expect(p2m.crashed).toBe(true);
    expect(p2m.events.at(-1)).toMatchObject({ kind: 'domain-crashed', gfn: 0xf0000 });
    expect(p2m.lookup(gfn(0xf0000)).mfn).toBe(0xa0000);
  });

  it('6: unmapping a hole is EINVAL', () => {
    const p2m = new P2m();
    expect(unmapMmio(p2m, gfn(0x1000), 1, mfn(0x1000))).toEqual({ ok: false, code: 'EINVAL' });
    expect(p2m.events).toEqual([{ kind: 'unmap-not-mmio', gfn: 0x1000, type: 'mmio_dm', mfn: undefined }]);
  });
});

describe('retry protocol and errors', () => {
  it('an existing 4K leaf forces 4K: the helper answers retry with its order', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(0x205), 0, mfn(0x9999), 'ram_rw');
    expect(setMmioEntry(p2m, gfn(0x200), mfn(0x200), 9)).toEqual({ ok: false, code: 'retry', order: 0 });
    expect(clearMmioEntry(p2m, gfn(0x200), mfn(0x200), 9)).toEqual({ ok: false, code: 'retry', order: 0 });
  });

  it('a later failing chunk is dropped: progress now, the error on the next call', () => {
    const p2m = new P2m();
    mapMmio(p2m, gfn(0x10), 1, mfn(0x500));
    expect(mapMmio(p2m, gfn(0x0), 0x20, mfn(0x0))).toEqual({ ok: true, done: false, progress: 0x10 });
    expect(mapMmio(p2m, gfn(0x10), 0x10, mfn(0x10))).toEqual({ ok: false, code: 'EPERM' });
  });

  it('mapping over RAM orphans the pages and names them', () => {
    const p2m = new P2m();
    populateRam(p2m, gfn(0x200), 512, mfn(0x7000));
    p2m.events.length = 0;
    expect(drive((g, n, m) => mapMmio(p2m, gfn(g), n, mfn(m)), 0x200, 512, 0x200).at(-1)).toEqual({
      ok: true,
      done: true,
    });
    // 4K RAM leaves force 4K chunks: 8 calls, one event each naming its 64 frames.
    expect(p2m.events).toHaveLength(8);
    expect(p2m.events[0]).toEqual({ kind: 'ram-orphaned', by: 'map-mmio', gfns: [[0x200, 0x23f]] });
    expect(p2m.events[7]).toEqual({ kind: 'ram-orphaned', by: 'map-mmio', gfns: [[0x3c0, 0x3ff]] });
  });

  it('unmapping RAM is EINVAL; unmapping another mfn warns and clears', () => {
    const p2m = new P2m();
    populateRam(p2m, gfn(0x10), 1, mfn(0x10));
    expect(unmapMmio(p2m, gfn(0x10), 1, mfn(0x10))).toEqual({ ok: false, code: 'EINVAL' });
    mapMmio(p2m, gfn(0x20), 1, mfn(0x30));
    expect(unmapMmio(p2m, gfn(0x20), 1, mfn(0x40))).toEqual({ ok: true, done: true });
    expect(p2m.events.at(-1)).toEqual({ kind: 'unmap-mfn-mismatch', gfn: 0x20, expected: 0x40, found: 0x30 });
    expect(p2m.lookup(gfn(0x20)).mfn).toBeUndefined();
  });

  it('unmap of a 2M mapping in 2M chunks, and of part of it in 4K chunks', () => {
    const p2m = new P2m();
    drive((g, n, m) => mapMmio(p2m, gfn(g), n, mfn(m)), 0, 2048, 0);
    expect(unmapMmio(p2m, gfn(512), 512, mfn(512))).toEqual({ ok: true, done: true });
    expect(unmapMmio(p2m, gfn(3), 2, mfn(3))).toEqual({ ok: true, done: true });
    expect(p2m.lookup(gfn(0))).toEqual({ mfn: 0, type: 'mmio_direct', order: 0 });
    expect(p2m.lookup(gfn(1024))).toEqual({ mfn: 1024, type: 'mmio_direct', order: 9 });
    expect(p2m.mappedFrames).toBe(2048 - 514);
  });

  it('ENOMEM on the first chunk is returned; on a later one it becomes progress', () => {
    const p2m = new P2m({ failAt: (n) => n === 1 || n === 4 });
    expect(mapMmio(p2m, gfn(0), 8, mfn(0))).toEqual({ ok: false, code: 'ENOMEM' });
    expect(mapMmio(p2m, gfn(0), 8, mfn(0))).toEqual({ ok: true, done: false, progress: 2 });
  });

  it('a non-translated domain: EOPNOTSUPP; the helpers EIO', () => {
    const p2m = new P2m({ translated: false });
    expect(mapMmio(p2m, gfn(0), 1, mfn(0))).toEqual({ ok: false, code: 'EOPNOTSUPP' });
    expect(unmapMmio(p2m, gfn(0), 1, mfn(0))).toEqual({ ok: false, code: 'EOPNOTSUPP' });
    expect(setMmioEntry(p2m, gfn(0), mfn(0), 0)).toEqual({ ok: false, code: 'EIO' });
    expect(clearMmioEntry(p2m, gfn(0), mfn(0), 0)).toEqual({ ok: false, code: 'EIO' });
  });

  it('count 0 is done at once', () => {
    expect(mapMmio(new P2m(), gfn(0), 0, mfn(0))).toEqual({ ok: true, done: true });
  });

  // The casts stand for untyped JavaScript callers: the checks stay at run time.
  it.each([
    ['a gfn beyond 52 bits', () => mapMmio(new P2m(), (2 ** 52) as Gfn, 1, mfn(0)), 'gfn'],
    ['an mfn beyond 52 bits', () => mapMmio(new P2m(), gfn(0), 1, (2 ** 52) as Mfn), 'mfn'],
    ['a string gfn', () => unmapMmio(new P2m(), '5' as unknown as Gfn, 1, mfn(0)), 'gfn'],
    ['an identity gfn that is negative', () => addIdentityEntry(new P2m(), -1 as Gfn), 'gfn'],
    ['an identity gfn that is fractional', () => removeIdentityEntry(new P2m(), 0.5 as Gfn), 'gfn'],
    ['a run past 2^52', () => unmapMmio(new P2m(), gfn(2 ** 52 - 1), 2, mfn(0)), 'count'],
    ['a fractional count', () => mapMmio(new P2m(), gfn(0), 1.5, mfn(0)), 'count'],
  ])('%s throws naming the argument', (_name, call, argument) => {
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(argument);
  });
});

describe('identity entries (p2m_add_identity_entry, p2m_remove_identity_entry)', () => {
  it('add over a hole maps gfn → gfn; again is 0; over something else EBUSY, or 0 when relaxed', () => {
    const p2m = new P2m();
    expect(addIdentityEntry(p2m, gfn(0xfee00))).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0xfee00))).toEqual({ mfn: 0xfee00, type: 'mmio_direct', order: 0 });
    expect(addIdentityEntry(p2m, gfn(0xfee00))).toEqual({ ok: true });
    mapMmio(p2m, gfn(0x100), 1, mfn(0x200));
    expect(addIdentityEntry(p2m, gfn(0x100))).toEqual({ ok: false, code: 'EBUSY' });
    expect(addIdentityEntry(p2m, gfn(0x100), { relaxed: true })).toEqual({ ok: true });
    expect(p2m.events.at(-1)).toEqual({
      kind: 'identity-busy',
      gfn: 0x100,
      mfn: 0x200,
      type: 'mmio_direct',
      relaxed: true,
    });
  });

  it('remove clears an identity entry; leaves others alone with a warning; a hole silently', () => {
    const p2m = new P2m();
    addIdentityEntry(p2m, gfn(0x50));
    mapMmio(p2m, gfn(0x60), 1, mfn(0x61));
    expect(removeIdentityEntry(p2m, gfn(0x50))).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0x50)).mfn).toBeUndefined();
    expect(removeIdentityEntry(p2m, gfn(0x60))).toEqual({ ok: true });
    expect(p2m.lookup(gfn(0x60)).mfn).toBe(0x61);
    expect(p2m.events).toEqual([{ kind: 'identity-not-cleared', gfn: 0x60, mfn: 0x61, type: 'mmio_direct' }]);
    expect(removeIdentityEntry(p2m, gfn(0x70))).toEqual({ ok: true });
    expect(p2m.events).toHaveLength(1);
  });

  it('non-translated: EPERM', () => {
    const p2m = new P2m({ translated: false });
    expect(addIdentityEntry(p2m, gfn(1))).toEqual({ ok: false, code: 'EPERM' });
    expect(removeIdentityEntry(p2m, gfn(1))).toEqual({ ok: false, code: 'EPERM' });
  });
});

// map_mmio_regions hands set_mmio_p2m_entry each chunk; past the tables' reach get_entry reads a
// hole (p2m_mmio_dm, INVALID_MFN, an order of at least the chunk's), so set_typed_p2m_entry goes on to
// p2m_set_entry, whose ept_set_entry returns -EINVAL (p2m_pt_set_entry: -ENOENT). The loop stops
// there: `return i == nr ? 0 : i ?: ret` — the progress if any chunk was done, else the error.
describe('map_mmio_regions beyond the address width (ept_set_entry, p2m_pt_set_entry)', () => {
  const LIMIT = 2 ** 36;

  it('a 64-bit BAR left at its sizing value (1 MiB at 2^64 - 2^20): EINVAL, nothing mapped', () => {
    const p2m = new P2m({ addressBits: 48 });
    const sized = 2 ** 52 - 256;
    expect(mapMmio(p2m, gfn(sized), 256, mfn(0xfe000))).toEqual({ ok: false, code: 'EINVAL' });
    expect(p2m.mappedFrames).toBe(0);
    expect(p2m.events).toEqual([]);
  });

  it.each([
    ['ept', 'EINVAL'],
    ['pt', 'ENOENT'],
  ] as const)('%s: a run across the limit maps up to it, then fails with %s', (tables, code) => {
    const p2m = new P2m({ addressBits: 48, tables });
    // 2M chunks: two below the limit, the third at it fails; the call returns the 1024 frames done.
    expect(mapMmio(p2m, gfn(LIMIT - 1024), 2048, mfn(0x100000))).toEqual({
      ok: true,
      done: false,
      progress: 1024,
    });
    expect(mapMmio(p2m, gfn(LIMIT), 1024, mfn(0x100400))).toEqual({ ok: false, code });
    expect([...p2m.extents()].map((e) => [e.gfn, e.count, e.order])).toEqual([[LIMIT - 1024, 1024, 9]]);
    // 4K chunks: the same, frame by frame.
    const small = new P2m({ addressBits: 48, tables });
    expect(mapMmio(small, gfn(LIMIT - 3), 10, mfn(7))).toEqual({ ok: true, done: false, progress: 3 });
    expect(mapMmio(small, gfn(LIMIT), 7, mfn(10))).toEqual({ ok: false, code });
    expect(small.mappedFrames).toBe(3);
  });

  it('unmapping there finds no mmio_direct entry: EINVAL (clear_mmio_p2m_entry)', () => {
    const p2m = new P2m({ addressBits: 48 });
    expect(unmapMmio(p2m, gfn(LIMIT), 512, mfn(0))).toEqual({ ok: false, code: 'EINVAL' });
    expect(p2m.events).toEqual([{ kind: 'unmap-not-mmio', gfn: LIMIT, type: 'mmio_dm', mfn: undefined }]);
  });
});
