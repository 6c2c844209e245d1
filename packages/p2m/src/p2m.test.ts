import { RangeSet } from '@vpci/rangeset';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, type PageOrder } from './errors.js';
import { P2m } from './p2m.js';

describe('P2m lookup', () => {
  it('an empty p2m reads as mmio_dm holes of order 18', () => {
    const p2m = new P2m();
    expect(p2m.lookup(0)).toEqual({ mfn: undefined, type: 'mmio_dm', order: 18 });
    expect(p2m.lookup(2 ** 52 - 1)).toEqual({ mfn: undefined, type: 'mmio_dm', order: 18 });
    expect(p2m.mappedFrames).toBe(0);
  });

  it('a mapped gfn reads the leaf mfn plus its offset and the leaf order', () => {
    const p2m = new P2m();
    p2m.setEntry(0x200, 9, 0x1000, 'mmio_direct');
    expect(p2m.lookup(0x205)).toEqual({ mfn: 0x1005, type: 'mmio_direct', order: 9 });
    expect(p2m.mappedFrames).toBe(512);
  });

  it('hole order: the largest of 18/9/0 whose aligned block holds no entry', () => {
    const p2m = new P2m();
    p2m.setEntry(0x1, 0, 0x99, 'ram_rw');
    expect(p2m.lookup(0x2).order).toBe(0); // {0x0-0x1ff} holds gfn 1
    expect(p2m.lookup(0x200).order).toBe(9); // {0x200-0x3ff} empty, 1G block not
    expect(p2m.lookup(0x40000).order).toBe(18);
  });

  it('a 4K write inside a 2M leaf splits the leaf to 4K leaves and keeps the others', () => {
    const p2m = new P2m();
    p2m.setEntry(0, 9, 0, 'mmio_direct');
    p2m.setEntry(512, 9, 512, 'mmio_direct');
    expect(p2m.extentCount).toBe(1);
    p2m.clearEntry(600, 0);
    expect([...p2m.extents()]).toEqual([
      { gfn: 0, count: 512, mfn: 0, type: 'mmio_direct', order: 9 },
      { gfn: 512, count: 88, mfn: 512, type: 'mmio_direct', order: 0 },
      { gfn: 601, count: 423, mfn: 601, type: 'mmio_direct', order: 0 },
    ]);
    expect(p2m.mappedFrames).toBe(1023);
    expect(p2m.lookup(600)).toEqual({ mfn: undefined, type: 'mmio_dm', order: 0 });
  });

  it('contiguous writes of the same type and order merge into one extent', () => {
    const p2m = new P2m();
    for (let g = 0; g < 1000; g++) p2m.setEntry(g, 0, 5000 + g, 'ram_rw');
    expect(p2m.extentCount).toBe(1);
    p2m.setEntry(1000, 0, 1, 'ram_rw'); // mfn breaks the run
    expect(p2m.extentCount).toBe(2);
    // writing backwards also merges
    for (let g = 1999; g >= 1500; g--) p2m.setEntry(g, 0, g, 'ram_ro');
    expect(p2m.extentCount).toBe(3);
  });

  it('stores a 64 GiB BAR of 2M leaves as one extent', () => {
    const p2m = new P2m();
    for (let g = 0; g < 2 ** 24; g += 512) p2m.setEntry(2 ** 30 + g, 9, 2 ** 32 + g, 'mmio_direct');
    expect(p2m.extentCount).toBe(1);
    expect(p2m.mappedFrames).toBe(2 ** 24);
  });

  it('holds the domain flags and a shared read-only MMIO set', () => {
    const ro = new RangeSet();
    const p2m = new P2m({ hap: false, mmioRoRanges: ro });
    expect(p2m).toMatchObject({ translated: true, hap: false, superpages2M: true, superpages1G: false });
    expect(p2m.mmioRoRanges).toBe(ro);
    p2m.crash('test', 5);
    expect(p2m.crashed).toBe(true);
    expect(p2m.events).toEqual([{ kind: 'domain-crashed', reason: 'test', gfn: 5 }]);
  });

  it('failAt makes the Nth write fail with ENOMEM and write nothing', () => {
    const p2m = new P2m({ failAt: (n) => n === 2 });
    expect(p2m.setEntry(0, 0, 0, 'ram_rw')).toEqual({ ok: true });
    expect(p2m.setEntry(1, 0, 1, 'ram_rw')).toEqual({ ok: false, code: 'ENOMEM' });
    expect(p2m.mappedFrames).toBe(1);
  });
});

describe('P2m validation', () => {
  const p2m = new P2m();
  it.each([
    ['a frame beyond 52 bits', () => p2m.lookup(2 ** 52), 'gfn'],
    ['a negative frame', () => p2m.lookup(-1), 'gfn'],
    ['an order not 0/9/18', () => p2m.setEntry(0, 1 as PageOrder, 0, 'ram_rw'), 'order'],
    ['an unaligned gfn', () => p2m.setEntry(1, 9, 0, 'mmio_direct'), 'gfn'],
    ['an unaligned mfn', () => p2m.setEntry(0, 9, 3, 'mmio_direct'), 'mfn'],
    ['a hole type', () => p2m.setEntry(0, 0, 0, 'invalid'), 'type'],
    ['a bad flag', () => new P2m({ hap: 1 as unknown as boolean }), 'hap'],
  ])('%s throws naming the argument', (_name, call, argument) => {
    expect(call).toThrow(InvalidArgumentError);
    expect(call).toThrow(argument);
  });
});
