import { RangeSet } from '@vpci/rangeset';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, MAX_FRAME, type PageOrder } from './errors.js';
import { type Gfn, gfn, type Mfn, mfn } from './frame.js';
import { P2M_ADDRESS_BITS, P2m } from './p2m.js';
import type { P2mType } from './p2m-type.js';

describe('P2m lookup', () => {
  it('an empty p2m reads as mmio_dm holes of order 18', () => {
    const p2m = new P2m();
    expect(p2m.lookup(gfn(0))).toEqual({ mfn: undefined, type: 'mmio_dm', order: 18 });
    expect(p2m.lookup(gfn(2 ** 52 - 1))).toEqual({ mfn: undefined, type: 'mmio_dm', order: 18 });
    expect(p2m.mappedFrames).toBe(0);
  });

  it('a mapped gfn reads the leaf mfn plus its offset and the leaf order', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(0x200), 9, mfn(0x1000), 'mmio_direct');
    expect(p2m.lookup(gfn(0x205))).toEqual({ mfn: 0x1005, type: 'mmio_direct', order: 9 });
    expect(p2m.mappedFrames).toBe(512);
  });

  it('hole order: the largest of 18/9/0 whose aligned block holds no entry', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(0x1), 0, mfn(0x99), 'ram_rw');
    expect(p2m.lookup(gfn(0x2)).order).toBe(0); // {0x0-0x1ff} holds gfn 1
    expect(p2m.lookup(gfn(0x200)).order).toBe(9); // {0x200-0x3ff} empty, 1G block not
    expect(p2m.lookup(gfn(0x40000)).order).toBe(18);
  });

  it('a 4K write inside a 2M leaf splits the leaf to 4K leaves and keeps the others', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(0), 9, mfn(0), 'mmio_direct');
    p2m.setEntry(gfn(512), 9, mfn(512), 'mmio_direct');
    expect(p2m.extentCount).toBe(1);
    p2m.clearEntry(gfn(600), 0);
    expect([...p2m.extents()]).toEqual([
      { gfn: 0, count: 512, mfn: 0, type: 'mmio_direct', order: 9 },
      { gfn: 512, count: 88, mfn: 512, type: 'mmio_direct', order: 0 },
      { gfn: 601, count: 423, mfn: 601, type: 'mmio_direct', order: 0 },
    ]);
    expect(p2m.mappedFrames).toBe(1023);
    expect(p2m.lookup(gfn(600))).toEqual({ mfn: undefined, type: 'mmio_dm', order: 0 });
  });

  it('contiguous writes of the same type and order merge into one extent', () => {
    const p2m = new P2m();
    for (let g = 0; g < 1000; g++) p2m.setEntry(gfn(g), 0, mfn(5000 + g), 'ram_rw');
    expect(p2m.extentCount).toBe(1);
    p2m.setEntry(gfn(1000), 0, mfn(1), 'ram_rw'); // mfn breaks the run
    expect(p2m.extentCount).toBe(2);
    // writing backwards also merges
    for (let g = 1999; g >= 1500; g--) p2m.setEntry(gfn(g), 0, mfn(g), 'ram_ro');
    expect(p2m.extentCount).toBe(3);
  });

  it('stores a 64 GiB BAR of 2M leaves as one extent', () => {
    const p2m = new P2m();
    for (let g = 0; g < 2 ** 24; g += 512) p2m.setEntry(gfn(2 ** 30 + g), 9, mfn(2 ** 32 + g), 'mmio_direct');
    expect(p2m.extentCount).toBe(1);
    expect(p2m.mappedFrames).toBe(2 ** 24);
  });

  it('holds the domain flags and a shared read-only MMIO set', () => {
    const ro = new RangeSet<Mfn>();
    const p2m = new P2m({ hap: false, mmioRoRanges: ro });
    expect(p2m).toMatchObject({ translated: true, hap: false, superpages2M: true, superpages1G: false });
    expect(p2m.mmioRoRanges).toBe(ro);
    p2m.crash('test', gfn(5));
    expect(p2m.crashed).toBe(true);
    expect(p2m.events).toEqual([{ kind: 'domain-crashed', reason: 'test', gfn: 5 }]);
  });

  it('failAt makes the Nth write fail with ENOMEM and write nothing', () => {
    const p2m = new P2m({ failAt: (n) => n === 2 });
    expect(p2m.setEntry(gfn(0), 0, mfn(0), 'ram_rw')).toEqual({ ok: true });
    expect(p2m.setEntry(gfn(1), 0, mfn(1), 'ram_rw')).toEqual({ ok: false, code: 'ENOMEM' });
    expect(p2m.mappedFrames).toBe(1);
  });

  it('extentsIn lists the whole extents meeting [first, last], none for a gap', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(10), 0, mfn(100), 'ram_rw');
    p2m.setEntry(gfn(11), 0, mfn(101), 'ram_rw'); // merges: {10-11}
    p2m.setEntry(gfn(20), 0, mfn(5), 'ram_rw');
    const starts = (first: number, last: number) =>
      [...p2m.extentsIn(gfn(first), gfn(last))].map((e) => e.gfn);
    expect(starts(0, 9)).toEqual([]);
    expect(starts(11, 11)).toEqual([10]); // the extent holding 11, whole
    expect(starts(12, 19)).toEqual([]);
    expect(starts(11, 20)).toEqual([10, 20]);
    expect(starts(21, 100)).toEqual([]);
    expect(() => [...p2m.extentsIn(gfn(0), -1 as Gfn)]).toThrow('last');
  });

  it('extentsOfType lists the extents of one type, in gfn order, as extents() has them', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(10), 0, mfn(100), 'mmio_direct');
    p2m.setEntry(gfn(11), 0, mfn(7), 'ram_rw');
    p2m.setEntry(gfn(512), 9, mfn(1024), 'mmio_direct');
    p2m.setEntry(gfn(12), 0, mfn(102), 'mmio_direct');
    const byType = (type: 'mmio_direct' | 'ram_rw') => [...p2m.extents()].filter((e) => e.type === type);
    expect(p2m.extentsOfType('mmio_direct')).toEqual(byType('mmio_direct'));
    expect(p2m.extentsOfType('mmio_direct').map((e) => e.gfn)).toEqual([10, 12, 512]);
    expect(p2m.extentsOfType('ram_rw')).toEqual(byType('ram_rw'));
    expect(p2m.extentsOfType('grant_map_rw')).toEqual([]);
    expect(() => p2m.extentsOfType('mmio' as 'ram_rw')).toThrow('type: expected a p2m type');
  });

  it('failNext(n) fails the n-th write from now once, and turns off the batched 4K path meanwhile', () => {
    const p2m = new P2m();
    expect(p2m.setEntry(gfn(0), 0, mfn(0), 'ram_rw')).toEqual({ ok: true });
    expect(p2m.faultInjection).toBe(false);
    p2m.failNext(2);
    expect(p2m.faultInjection).toBe(true);
    expect(p2m.setEntry(gfn(1), 0, mfn(1), 'ram_rw')).toEqual({ ok: true }); // write 2
    expect(p2m.setEntry(gfn(2), 0, mfn(2), 'ram_rw')).toEqual({ ok: false, code: 'ENOMEM' }); // write 3
    expect(p2m.setEntry(gfn(2), 0, mfn(2), 'ram_rw')).toEqual({ ok: true }); // spent
    expect(p2m.faultInjection).toBe(false);
    expect(p2m.mappedFrames).toBe(3);
    expect(() => p2m.failNext(0)).toThrow('n');
  });
});

describe('P2m validation', () => {
  // JavaScript callers can pass anything: the casts stand for an untyped caller.
  const p2m = new P2m();
  it.each([
    ['a frame beyond 52 bits', () => p2m.lookup((2 ** 52) as Gfn), 'gfn'],
    ['a negative frame', () => p2m.lookup(-1 as Gfn), 'gfn'],
    ['a fractional frame', () => p2m.clearEntry(0.5 as Gfn, 0), 'gfn'],
    ['an order not 0/9/18', () => p2m.setEntry(gfn(0), 1 as PageOrder, mfn(0), 'ram_rw'), 'order'],
    ['an unaligned gfn', () => p2m.setEntry(gfn(1), 9, mfn(0), 'mmio_direct'), 'gfn'],
    ['an unaligned mfn', () => p2m.setEntry(gfn(0), 9, mfn(3), 'mmio_direct'), 'mfn'],
    ['an mfn that is not a number', () => p2m.setEntry(gfn(0), 0, '7' as unknown as Mfn, 'ram_rw'), 'mfn'],
    ['a hole type', () => p2m.setEntry(gfn(0), 0, mfn(0), 'invalid'), 'type'],
    ['a bad flag', () => new P2m({ hap: 1 as unknown as boolean }), 'hap'],
  ])('%s throws naming the argument', (_name, call, argument) => {
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(argument);
  });
});

describe('frames are typed: a Gfn, an Mfn and a number cannot stand for one another', () => {
  it('is checked by the compiler (each @ts-expect-error fails the typecheck if the line compiles)', () => {
    const p2m = new P2m();
    const g = gfn(0x10);
    const m = mfn(0x20);
    const calls = [
      // @ts-expect-error an Mfn where a Gfn is expected
      () => p2m.lookup(m),
      // @ts-expect-error a plain number where a Gfn is expected
      () => p2m.lookup(0x10),
      // @ts-expect-error gfn and mfn swapped
      () => p2m.setEntry(m, 0, g, 'ram_rw'),
      // @ts-expect-error a plain number where an Mfn is expected
      () => p2m.setEntry(g, 0, 0x20, 'ram_rw'),
    ];
    // At run time the brands do not exist: the swapped call is a valid write of other frames.
    expect(calls.map((call) => typeof call)).toEqual(['function', 'function', 'function', 'function']);
    const entry = p2m.lookup(g);
    // @ts-expect-error what lookup returns is an Mfn, not a Gfn
    const asGfn: Gfn | undefined = entry.mfn;
    expect(asGfn).toBeUndefined();
  });
});

/**
 * The extent code at its boundaries (`write`, `remnant`, `piece`, `splice`, `grow`, `find`). Each case
 * states the map before and after as extents `{gfn-last → mfn, type, order}`; `expectCanonical` checks
 * that no two neighbouring extents could be one (the map has a single representation).
 */
describe('P2m extents at their boundaries', () => {
  type Row = readonly [gfn: number, count: number, mfn: number, type: P2mType, order: PageOrder];
  const rows = (p2m: P2m): Row[] => [...p2m.extents()].map((e) => [e.gfn, e.count, e.mfn, e.type, e.order]);

  function expectCanonical(p2m: P2m): void {
    const list = [...p2m.extents()];
    let frames = 0;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      frames += e.count;
      expect(e.count % 2 ** e.order, `extent ${i} holds whole leaves`).toBe(0);
      expect(e.gfn % 2 ** e.order, `extent ${i} gfn aligned`).toBe(0);
      expect(e.mfn % 2 ** e.order, `extent ${i} mfn aligned`).toBe(0);
      if (i === 0) continue;
      const d = list[i - 1]!;
      expect(d.gfn + d.count <= e.gfn, `extents ${i - 1} and ${i} are sorted and disjoint`).toBe(true);
      const mergeable =
        d.gfn + d.count === e.gfn && d.type === e.type && d.order === e.order && d.mfn + d.count === e.mfn;
      expect(mergeable, `extents ${i - 1} and ${i} should be one`).toBe(false);
    }
    expect(p2m.mappedFrames).toBe(frames);
    expect(p2m.extentCount).toBe(list.length);
  }

  /** A p2m holding `n` 4K extents of 4 frames each, 4 frames apart: {8i … 8i+3} → 0x1000 + 8i. */
  function striped(n: number): P2m {
    const p2m = new P2m();
    for (let i = 0; i < n; i++) {
      p2m.writeRun4K(gfn(8 * i), 4, mfn(0x1000 + 8 * i), i % 2 ? 'ram_rw' : 'mmio_direct');
    }
    return p2m;
  }

  it('an empty map: clearing and lookups change nothing', () => {
    const p2m = new P2m();
    expect(p2m.clearEntry(gfn(0), 0)).toEqual({ ok: true });
    expect(p2m.clearEntry(gfn(MAX_FRAME - 2 ** 18 + 1), 18)).toEqual({ ok: true });
    p2m.writeRun4K(gfn(5), 100, undefined);
    expect(rows(p2m)).toEqual([]);
    expect(p2m.holeRun(gfn(7), 1000)).toBe(1000);
    expect(p2m.order0Run(gfn(7), 1000, mfn(7), 'mmio_direct')).toBe(0);
    expectCanonical(p2m);
  });

  it.each<readonly [string, (p: P2m) => void, Row[]]>([
    // {0-9 → 100} with a write at its first frame.
    [
      'same run at the start: no change',
      (p) => p.setEntry(gfn(0), 0, mfn(100), 'ram_rw'),
      [[0, 10, 100, 'ram_rw', 0]],
    ],
    [
      'other mfn at the start: {0} + {1-9}',
      (p) => p.setEntry(gfn(0), 0, mfn(7), 'ram_rw'),
      [
        [0, 1, 7, 'ram_rw', 0],
        [1, 9, 101, 'ram_rw', 0],
      ],
    ],
    [
      'other mfn at the end: {0-8} + {9}',
      (p) => p.setEntry(gfn(9), 0, mfn(7), 'ram_rw'),
      [
        [0, 9, 100, 'ram_rw', 0],
        [9, 1, 7, 'ram_rw', 0],
      ],
    ],
    [
      'other type in the middle: split into three',
      (p) => p.setEntry(gfn(4), 0, mfn(104), 'ram_ro'),
      [
        [0, 4, 100, 'ram_rw', 0],
        [4, 1, 104, 'ram_ro', 0],
        [5, 5, 105, 'ram_rw', 0],
      ],
    ],
    [
      'clear the middle: {0-3} + {5-9}',
      (p) => p.clearEntry(gfn(4), 0),
      [
        [0, 4, 100, 'ram_rw', 0],
        [5, 5, 105, 'ram_rw', 0],
      ],
    ],
    ['clear the first frame: {1-9}', (p) => p.clearEntry(gfn(0), 0), [[1, 9, 101, 'ram_rw', 0]]],
    ['clear the last frame: {0-8}', (p) => p.clearEntry(gfn(9), 0), [[0, 9, 100, 'ram_rw', 0]]],
    ['clear all of it', (p) => p.writeRun4K(gfn(0), 10, undefined), []],
    ['clear more than all of it', (p) => p.writeRun4K(gfn(0), 50, undefined), []],
    [
      'continue it after the end: {0-10}',
      (p) => p.setEntry(gfn(10), 0, mfn(110), 'ram_rw'),
      [[0, 11, 100, 'ram_rw', 0]],
    ],
    [
      'a gap, then the continuing frame: not adjacent, two extents',
      (p) => p.setEntry(gfn(11), 0, mfn(111), 'ram_rw'),
      [
        [0, 10, 100, 'ram_rw', 0],
        [11, 1, 111, 'ram_rw', 0],
      ],
    ],
  ])('one 4K extent {0-9 → 100}: %s', (_name, act, after) => {
    const p2m = new P2m();
    p2m.writeRun4K(gfn(0), 10, mfn(100), 'ram_rw');
    act(p2m);
    expect(rows(p2m)).toEqual(after);
    expectCanonical(p2m);
  });

  it('a write spanning many extents replaces them, keeping the ends of the first and the last', () => {
    // {0-3}, {8-11}, …, {72-75}; write {2-73} → 0x9002: the first and the last keep {0-1} and {74-75}.
    const p2m = striped(10);
    p2m.writeRun4K(gfn(2), 72, mfn(0x9002), 'ram_ro');
    expect(rows(p2m)).toEqual([
      [0, 2, 0x1000, 'mmio_direct', 0],
      [2, 72, 0x9002, 'ram_ro', 0],
      [74, 2, 0x1000 + 74, 'ram_rw', 0],
    ]);
    expectCanonical(p2m);
    // Clearing across all of them leaves nothing.
    p2m.writeRun4K(gfn(0), 76, undefined);
    expect(rows(p2m)).toEqual([]);
    expectCanonical(p2m);
  });

  it('the first and the last extent: writes before, after and exactly over them', () => {
    const p2m = striped(5); // {0-3} {8-11} {16-19} {24-27} {32-35}
    p2m.writeRun4K(gfn(32), 4, undefined); // the last, exactly
    p2m.writeRun4K(gfn(0), 4, undefined); // the first, exactly
    expect(rows(p2m).map((r) => r[0])).toEqual([8, 16, 24]);
    // A run ending just below the first extent that continues it merges backwards into it.
    p2m.writeRun4K(gfn(4), 4, mfn(0x1004), 'ram_rw');
    // A run starting just past the last extent that continues it merges into it.
    p2m.writeRun4K(gfn(28), 100, mfn(0x1000 + 28), 'ram_rw');
    expect(rows(p2m)).toEqual([
      [4, 8, 0x1004, 'ram_rw', 0],
      [16, 4, 0x1010, 'mmio_direct', 0],
      [24, 104, 0x1018, 'ram_rw', 0],
    ]);
    expectCanonical(p2m);
  });

  it('filling the gaps between extents merges them all into one', () => {
    const p2m = new P2m();
    for (let i = 0; i < 40; i++) p2m.writeRun4K(gfn(8 * i), 4, mfn(8 * i), 'ram_rw'); // past the 16 of capacity
    expect(p2m.extentCount).toBe(40);
    for (let i = 39; i >= 0; i--) p2m.writeRun4K(gfn(8 * i + 4), 4, mfn(8 * i + 4), 'ram_rw');
    expect(rows(p2m)).toEqual([[0, 320, 0, 'ram_rw', 0]]);
    expectCanonical(p2m);
  });

  it('inserting in front of many extents (grow, then memmove) keeps them sorted', () => {
    const p2m = new P2m();
    // 100 single frames, written from the last to the first: each write moves all the others.
    for (let i = 99; i >= 0; i--) p2m.setEntry(gfn(2 * i), 0, mfn(1000 + 3 * i), 'ram_rw');
    expect(p2m.extentCount).toBe(100);
    for (let i = 0; i < 100; i++) {
      expect(p2m.lookup(gfn(2 * i))).toEqual({ mfn: 1000 + 3 * i, type: 'ram_rw', order: 0 });
      expect(p2m.lookup(gfn(2 * i + 1)).mfn).toBeUndefined();
    }
    expectCanonical(p2m);
  });

  it('a 4K write splits a 1G leaf into 4K leaves, a 2M write into 2M leaves (EPT recursive split)', () => {
    const G = 2 ** 18;
    const p2m = new P2m();
    p2m.setEntry(gfn(G), 18, mfn(4 * G), 'mmio_direct');
    p2m.setEntry(gfn(2 * G), 18, mfn(5 * G), 'mmio_direct'); // continues the first: one extent of two 1G leaves
    expect(p2m.extentCount).toBe(1);
    p2m.clearEntry(gfn(G + 512), 9);
    expect(rows(p2m)).toEqual([
      [G, 512, 4 * G, 'mmio_direct', 9],
      [G + 1024, G - 1024, 4 * G + 1024, 'mmio_direct', 9],
      [2 * G, G, 5 * G, 'mmio_direct', 18],
    ]);
    p2m.clearEntry(gfn(2 * G + 5), 0);
    expect(rows(p2m).slice(2)).toEqual([
      [2 * G, 5, 5 * G, 'mmio_direct', 0],
      [2 * G + 6, G - 6, 5 * G + 6, 'mmio_direct', 0],
    ]);
    expectCanonical(p2m);
  });

  it('a leaf split at the first frame of an extent merges with the neighbour before it', () => {
    // {0-511 → 0} in 4K leaves, then {512-1023 → 512} as one 2M leaf: two extents (orders differ).
    const p2m = new P2m();
    p2m.writeRun4K(gfn(0), 512, mfn(0), 'mmio_direct');
    p2m.setEntry(gfn(512), 9, mfn(512), 'mmio_direct');
    expect(p2m.extentCount).toBe(2);
    // Clearing {600} splits the 2M leaf into 4K leaves: {512-599} now continues {0-511}.
    p2m.clearEntry(gfn(600), 0);
    expect(rows(p2m)).toEqual([
      [0, 600, 0, 'mmio_direct', 0],
      [601, 423, 601, 'mmio_direct', 0],
    ]);
    expectCanonical(p2m);
    expect(p2m.order0Run(gfn(0), 1000, mfn(0), 'mmio_direct')).toBe(600);
  });

  it('a leaf split at the last frame of an extent merges with the neighbour after it', () => {
    const p2m = new P2m();
    p2m.setEntry(gfn(0), 9, mfn(0), 'mmio_direct');
    p2m.writeRun4K(gfn(512), 512, mfn(512), 'mmio_direct');
    p2m.clearEntry(gfn(100), 0);
    expect(rows(p2m)).toEqual([
      [0, 100, 0, 'mmio_direct', 0],
      [101, 923, 101, 'mmio_direct', 0],
    ]);
    expectCanonical(p2m);
  });

  it('frames up to MAX_FRAME (2^52 - 1)', () => {
    const top = MAX_FRAME - 2 ** 18 + 1; // the last 1G leaf
    const p2m = new P2m();
    p2m.setEntry(gfn(MAX_FRAME), 0, mfn(MAX_FRAME), 'ram_rw');
    expect(p2m.lookup(gfn(MAX_FRAME))).toEqual({ mfn: MAX_FRAME, type: 'ram_rw', order: 0 });
    expect(p2m.lookup(gfn(MAX_FRAME - 1))).toEqual({ mfn: undefined, type: 'mmio_dm', order: 0 });
    expect(p2m.lookup(gfn(top - 1)).order).toBe(18); // the 1G block below is empty
    p2m.setEntry(gfn(top), 18, mfn(top), 'mmio_direct'); // replaces it
    expect(rows(p2m)).toEqual([[top, 2 ** 18, top, 'mmio_direct', 18]]);
    p2m.clearEntry(gfn(MAX_FRAME), 0); // the last frame: the 1G leaf drops to 4K leaves
    expect(rows(p2m)).toEqual([[top, 2 ** 18 - 1, top, 'mmio_direct', 0]]);
    expect(p2m.holeRun(gfn(MAX_FRAME), 10)).toBe(1);
    p2m.writeRun4K(gfn(MAX_FRAME), 1, mfn(MAX_FRAME), 'mmio_direct'); // continues it again
    expect(rows(p2m)).toEqual([[top, 2 ** 18, top, 'mmio_direct', 0]]);
    expectCanonical(p2m);
    expect(() => p2m.setEntry(gfn(top), 18, mfn(MAX_FRAME), 'ram_rw')).toThrow(
      'mfn: expected a frame aligned',
    );
  });

  it('lookups find the right extent however the extents are spread (interpolation search)', () => {
    const p2m = new P2m();
    // Skewed: a dense cluster at 0 and a few far away, up to MAX_FRAME.
    const at = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 2 ** 40, 2 ** 51, MAX_FRAME];
    at.forEach((g, i) => {
      p2m.setEntry(gfn(g), 0, mfn(10 * i + 1), i % 2 ? 'ram_ro' : 'ram_rw');
    });
    at.forEach((g, i) => {
      expect(p2m.lookup(gfn(g)).mfn).toBe(10 * i + 1);
    });
    for (const g of [4, 6, 7, 9, 56, 2 ** 40 - 1, 2 ** 40 + 1, 2 ** 51 + 1, MAX_FRAME - 1]) {
      expect(p2m.lookup(gfn(g)).mfn, `gfn ${g}`).toBeUndefined();
    }
    expectCanonical(p2m);
  });
});

// Xen's p2m has 4-level tables (ept_p2m_init sets ept->wl = 3; p2m-pt walks L4 to L1): guest
// frames below 2^36. ept_set_entry returns -EINVAL when gfn >> ((ept->wl + 1) * EPT_TABLE_ORDER) is
// non-zero, before touching a table; p2m_pt_set_entry's first p2m_next_level gets NULL from
// p2m_find_entry (L4 index gfn >> 27 at or past L4_PAGETABLE_ENTRIES) and returns -ENOENT.
describe('P2m address width (ept_set_entry, p2m_pt_set_entry)', () => {
  const LIMIT = 2 ** 36;

  it('P2M_ADDRESS_BITS is 48, and 48 bits hold the frames below 2^36', () => {
    expect(P2M_ADDRESS_BITS).toBe(48);
    expect(new P2m({ addressBits: P2M_ADDRESS_BITS }).frameLimit).toBe(LIMIT);
    expect(new P2m().frameLimit).toBe(MAX_FRAME + 1); // default: the whole frame space
  });

  it.each([
    ['ept', 'EINVAL'],
    ['pt', 'ENOENT'],
  ] as const)(
    '%s: a write at or past the limit fails with %s, writes nothing and is no write',
    (tables, code) => {
      const p2m = new P2m({ addressBits: 48, tables, failAt: () => true });
      expect(p2m.setEntry(gfn(LIMIT), 0, mfn(0), 'ram_rw')).toEqual({ ok: false, code });
      expect(p2m.setEntry(gfn(LIMIT + 512), 9, mfn(0), 'mmio_direct')).toEqual({ ok: false, code });
      expect(p2m.clearEntry(gfn(MAX_FRAME), 0)).toEqual({ ok: false, code });
      // failAt fails every write it sees: it saw none of these.
      expect(p2m.writes).toBe(0);
      expect(p2m.setEntry(gfn(LIMIT - 1), 0, mfn(0), 'ram_rw')).toEqual({ ok: false, code: 'ENOMEM' });
      expect(p2m.writes).toBe(1);
      expect(p2m.mappedFrames).toBe(0);
    },
  );

  it('the last leaf below the limit is written; a hole past it is still a hole', () => {
    const p2m = new P2m({ addressBits: 48 });
    expect(p2m.setEntry(gfn(LIMIT - 512), 9, mfn(0), 'mmio_direct')).toEqual({ ok: true });
    expect(p2m.lookup(gfn(LIMIT - 1))).toEqual({ mfn: 511, type: 'mmio_direct', order: 9 });
    expect(p2m.lookup(gfn(LIMIT))).toEqual({ mfn: undefined, type: 'mmio_dm', order: 18 });
    expect(p2m.holeRun(gfn(LIMIT - 1024), 4096)).toBe(512); // up to the extent
    p2m.clearEntry(gfn(LIMIT - 512), 9);
    expect(p2m.holeRun(gfn(LIMIT - 1024), 4096)).toBe(1024); // up to the limit
    expect(p2m.holeRun(gfn(LIMIT), 4096)).toBe(0);
  });

  it.each([[29], [65], [48.5], ['48']])('addressBits %j is refused', (bits) => {
    expect(() => new P2m({ addressBits: bits as number })).toThrow(InvalidArgumentError);
    expect(() => new P2m({ addressBits: bits as number })).toThrow('addressBits');
  });

  it('tables other than ept and pt are refused', () => {
    expect(() => new P2m({ tables: 'npt' as 'pt' })).toThrow('tables');
  });
});
