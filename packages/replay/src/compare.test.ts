import { gfn, mfn, type P2mExtent } from '@vpci/p2m';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { compareTargets, partingSegments, writtenPartingSegments } from './compare.js';

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

/** A map of a few frames, frame by frame: null (a hole) or the type and `mfn - gfn`. */
type Frames = ({ type: P2mExtent['type']; delta: number } | null)[];
const FRAMES = 48;
const mapping = fc.option(
  fc.record({
    type: fc.constantFrom('mmio_direct' as const, 'ram_rw' as const),
    delta: fc.constantFrom(0, 64, 128),
  }),
);

/** The extents of `frames`, runs of one mapping, also cut where `cuts` says (as leaves of other orders are). */
function extentsOf(frames: Frames, cuts: readonly boolean[]): P2mExtent[] {
  const out: P2mExtent[] = [];
  for (let g = 0; g < frames.length; g++) {
    const m = frames[g];
    if (m == null) continue;
    const last = out.at(-1);
    if (
      last !== undefined &&
      !cuts[g] &&
      last.gfn + last.count === g &&
      last.type === m.type &&
      last.mfn - last.gfn === m.delta
    )
      out[out.length - 1] = { ...last, count: last.count + 1 };
    else out.push(extent(g, g + m.delta, 1, m.type));
  }
  return out;
}

/** `list` frame by frame. */
function framesOf(list: readonly P2mExtent[]): Frames {
  const frames: Frames = Array.from({ length: FRAMES }, () => null);
  for (const e of list)
    for (let g = e.gfn; g < e.gfn + e.count; g++) frames[g] = { type: e.type, delta: e.mfn - e.gfn };
  return frames;
}

describe('writtenPartingSegments', () => {
  const replay = fc.record({
    before: fc.array(mapping, { minLength: FRAMES, maxLength: FRAMES }),
    cutsBefore: fc.array(fc.boolean(), { minLength: FRAMES, maxLength: FRAMES }),
    cutsAfter: fc.array(fc.boolean(), { minLength: FRAMES, maxLength: FRAMES }),
    writes: fc.array(
      fc.record({
        first: fc.nat(FRAMES - 1),
        count: fc.integer({ min: 1, max: 12 }),
        to: mapping,
        leafByLeaf: fc.boolean(),
      }),
      { maxLength: 4 },
    ),
  });

  it('finds over the frames written what a sweep over the whole lists finds, and brings the lists up to date', () => {
    fc.assert(
      fc.property(fc.array(replay, { minLength: 2, maxLength: 3 }), (replays) => {
        const before = replays.map((r) => extentsOf(r.before, r.cutsBefore));
        const after = replays.map((r) => {
          const frames = [...r.before];
          for (const w of r.writes)
            for (let g = w.first; g < Math.min(FRAMES, w.first + w.count); g++) frames[g] = w.to;
          return extentsOf(frames, r.cutsAfter);
        });
        // The frames of each write, as the p2m tells them: at once, or frame by frame (4K leaves
        // written one by one, touching ranges); a write may leave a frame as it was.
        const written = replays.map((r) =>
          r.writes.flatMap((w) => {
            const end = Math.min(FRAMES, w.first + w.count);
            if (!w.leafByLeaf) return [w.first, end - 1];
            return Array.from({ length: end - w.first }, (_, k) => [w.first + k, w.first + k]).flat();
          }),
        );
        // The p2m's `extentsIn`: the whole extents meeting the frames.
        const extentsIn = after.map(
          (list) => (first: number, last: number) =>
            list.filter((e) => e.gfn <= last && e.gfn + e.count > first),
        );
        const kept = before.map((list) => [...list]);
        expect(writtenPartingSegments(kept, extentsIn, written)).toEqual(partingSegments(before, after));
        expect(kept.map(framesOf)).toEqual(after.map(framesOf));
      }),
      runs(300),
    );
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
