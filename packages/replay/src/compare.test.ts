import { gfn, mfn, type P2mExtent } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { compareTargets, partingSegments } from './compare.js';

/** An extent of `count` frames from guest frame `g` to machine frame `m`. */
function extent(g: number, m: number, count: number, type: P2mExtent['type'] = 'mmio_direct'): P2mExtent {
  return { gfn: gfn(g), mfn: mfn(m), count, type, order: 0 };
}

describe('partingSegments', () => {
  it('finds nothing when no replay changed, even where they differ', () => {
    const a = [extent(0x100, 0x900, 4)];
    const b: P2mExtent[] = [];
    expect(partingSegments([a, b], [a, b])).toEqual([]);
  });

  it('finds nothing when every replay made the same change', () => {
    expect(partingSegments([[], []], [[extent(0x100, 0x900, 4)], [extent(0x100, 0x900, 4)]])).toEqual([]);
  });

  it('finds the frames one replay mapped and the other did not (they part)', () => {
    const segments = partingSegments([[], []], [[extent(0x100, 0x900, 4)], []]);
    expect(segments).toEqual([
      {
        first: 0x100,
        last: 0x103,
        before: [null, null],
        after: [{ type: 'mmio_direct', delta: 0x800 }, null],
      },
    ]);
  });

  it('finds the frames where they meet again', () => {
    const segments = partingSegments(
      [[extent(0x100, 0x900, 2)], []],
      [[extent(0x100, 0x900, 2)], [extent(0x100, 0x900, 2)]],
    );
    expect(segments).toHaveLength(1);
    expect(segments[0]).toMatchObject({ first: 0x100, last: 0x101 });
  });

  it('treats runs split into leaves of other orders, or continuing each other, as one mapping', () => {
    const whole = [extent(0x200, 0x1200, 0x400)];
    const split = [extent(0x200, 0x1200, 0x200), { ...extent(0x400, 0x1400, 0x200), order: 9 as const }];
    expect(partingSegments([[], []], [whole, split])).toEqual([]);
  });

  it('tells a run moved to other machine frames from the same run', () => {
    const segments = partingSegments(
      [[extent(0x10, 0x500, 1)], [extent(0x10, 0x500, 1)]],
      [[extent(0x10, 0x600, 1)], [extent(0x10, 0x500, 1)]],
    );
    expect(segments).toEqual([
      {
        first: 0x10,
        last: 0x10,
        before: [
          { type: 'mmio_direct', delta: 0x4f0 },
          { type: 'mmio_direct', delta: 0x4f0 },
        ],
        after: [
          { type: 'mmio_direct', delta: 0x5f0 },
          { type: 'mmio_direct', delta: 0x4f0 },
        ],
      },
    ]);
  });

  it('keeps only the changed part of a difference that was already there', () => {
    // Frames 0x100–0x103 differ since before; at this line replay 0 maps 0x104 as well.
    const before = [[extent(0x100, 0x900, 4)], []];
    const after = [[extent(0x100, 0x900, 5)], []];
    expect(partingSegments(before, after)).toMatchObject([{ first: 0x104, last: 0x104 }]);
  });
});

describe('compareTargets', () => {
  it('takes two or more known names, in the order given', () => {
    expect(compareTargets('hardened,xen').map((t) => t.name)).toEqual(['hardened', 'xen']);
  });

  it.each([
    [
      'xen,nope',
      /--compare is 'xen,nope': 'nope' is not a rule set; expected two or more of xen, hardened, qemu, kvm-vfio, cloud-hypervisor/,
    ],
    ['xen', /--compare is 'xen': one rule set; expected two or more of/],
    ['xen,xen', /'xen' is named twice/],
    ['xen,,hardened', /an empty name/],
  ])('refuses %s, naming the option, the value and the accepted names', (value, message) => {
    expect(() => compareTargets(value)).toThrow(message);
  });
});
