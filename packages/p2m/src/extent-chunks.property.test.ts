/**
 * A p2m whose extents are cut into chunks of 4 to 8 (so that a write splits, merges, empties and
 * rebuilds chunks, and takes in neighbours across a chunk boundary) against a naive page map, one
 * entry per guest frame, and against a p2m with one chunk of 256 (the sorted list the map used to
 * be). Random 4K and 2M leaf writes and clears (Xen's `p2m_set_entry`), and batched runs (the
 * `map_mmio_regions` loop's `writeRun`), over a few 2M regions so that they meet, split one another's
 * leaves and join; after each, every frame the write touched and its neighbours read as the page map
 * says, the extents are those of the one-chunk p2m, and the index by machine frame
 * (`extentsOfTypeMeetingMfns`, kept up to date by every write) finds what a filter of the extents
 * finds. The whole frame space is read at the end.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import type { PageOrder } from './errors.js';
import { gfn, mfn } from './frame.js';
import { P2m } from './p2m.js';
import { P2mExtentRecord } from './p2m-extent-record.js';
import { P2mLookup } from './p2m-lookup.js';
import type { P2mType } from './p2m-type.js';

/** Four 2M regions. */
const SPACE = 4 * 512;

type Write =
  | { kind: 'set'; gfn: number; order: PageOrder; shift: number; type: P2mType }
  | { kind: 'clear'; gfn: number; order: PageOrder }
  | { kind: 'run'; gfn: number; count: number; shift: number; clear: boolean };

const type = fc.constantFrom<P2mType>('mmio_direct', 'mmio_direct', 'ram_rw');
/** Guest to machine distance: a few 2M blocks, as often as not plus a 4K offset. */
const shift = fc
  .tuple(fc.nat(3), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 511 })))
  .map(([blocks, offset]) => 512 + blocks * 512 + offset);
/**
 * Mostly 4K leaves (each to its own machine frame more often than not, so the map fragments into
 * many extents and chunks), with 2M leaves, clears and batched runs that split, join and remove them
 * in numbers.
 */
const write: fc.Arbitrary<Write> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant<'set'>('set'),
      gfn: fc.nat(SPACE - 1),
      order: fc.constant<PageOrder>(0),
      shift,
      type,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant<'set'>('set'),
      gfn: fc.nat(SPACE - 1),
      order: fc.constant<PageOrder>(9),
      shift,
      type,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant<'clear'>('clear'),
      gfn: fc.nat(SPACE - 1),
      order: fc.constantFrom<PageOrder>(0, 0, 9),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant<'run'>('run'),
      gfn: fc.nat(SPACE - 1),
      count: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 700 })),
      shift,
      clear: fc.boolean(),
    }),
  },
);

/** Applies `w` to the p2m, and returns the frames it wrote. */
function apply(p2m: P2m, w: Write): [number, number] {
  if (w.kind === 'run') {
    const count = Math.min(w.count, SPACE - w.gfn);
    p2m.writeRun4K(gfn(w.gfn), count, w.clear ? undefined : mfn(w.gfn + w.shift));
    return [w.gfn, w.gfn + count - 1];
  }
  const size = 1 << w.order;
  const at = Math.floor(w.gfn / size) * size;
  if (w.kind === 'set') {
    // A 2M leaf needs a 2M-aligned machine frame.
    const machine = w.order === 9 ? Math.floor((at + w.shift) / 512) * 512 : at + w.shift;
    expect(p2m.setEntry(gfn(at), w.order, mfn(machine), w.type).ok).toBe(true);
    return [at, at + size - 1];
  }
  expect(p2m.clearEntry(gfn(at), w.order).ok).toBe(true);
  return [at, at + size - 1];
}

/** The page map's view of the same write. */
function applyToPages(pages: Map<number, { mfn: number; type: P2mType }>, p2m: P2m, w: Write): void {
  const [first, last] =
    w.kind === 'run'
      ? [w.gfn, w.gfn + Math.min(w.count, SPACE - w.gfn) - 1]
      : [Math.floor(w.gfn / (1 << w.order)) * (1 << w.order), 0];
  if (w.kind === 'run') {
    for (let g = first; g <= last; g++)
      if (w.clear) pages.delete(g);
      else pages.set(g, { mfn: g + w.shift, type: 'mmio_direct' });
    return;
  }
  const size = 1 << w.order;
  const base =
    w.kind === 'set' && w.order === 9
      ? Math.floor((first + w.shift) / 512) * 512
      : first + (w.kind === 'set' ? w.shift : 0);
  for (let i = 0; i < size; i++)
    if (w.kind === 'clear') pages.delete(first + i);
    else pages.set(first + i, { mfn: base + i, type: w.type });
  void p2m;
}

function expectFrames(
  p2m: P2m,
  pages: Map<number, { mfn: number; type: P2mType }>,
  first: number,
  last: number,
): void {
  const into = new P2mLookup();
  const seen: string[] = [];
  const expected: string[] = [];
  for (let g = Math.max(0, first); g <= Math.min(SPACE - 1, last); g++) {
    const page = pages.get(g);
    seen.push(p2m.lookupInto(gfn(g), into) ? `${g} ${into.mfn} ${into.type}` : `${g} hole`);
    expected.push(page === undefined ? `${g} hole` : `${g} ${page.mfn} ${page.type}`);
  }
  expect(seen).toEqual(expected);
}

describe('a p2m in small extent chunks against a page map and a one-chunk p2m', () => {
  it('reads, keeps extents and finds by machine frame alike after every write (p2m_set_entry)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 8 }),
        fc.array(write, { minLength: 1, maxLength: 150 }),
        (chunkSize, writes) => {
          const chunked = new P2m({ extentChunkSize: chunkSize });
          const flat = new P2m({ extentChunkSize: 256 });
          const pages = new Map<number, { mfn: number; type: P2mType }>();
          // Asked once first, so that every write keeps the index by machine frame.
          chunked.extentsOfTypeMeetingMfns('mmio_direct', 0, 0);
          for (const w of writes) {
            const [first, last] = apply(chunked, w);
            apply(flat, w);
            applyToPages(pages, chunked, w);
            expectFrames(chunked, pages, first - 2, last + 2);
            expect([...chunked.extents()]).toEqual([...flat.extents()]);
            expect(chunked.mappedFrames).toBe(pages.size);
            const lo = first + (w.kind === 'clear' ? 0 : 512);
            const byMfn = chunked.extentsOfTypeMeetingMfns('mmio_direct', lo, lo + 600);
            const filtered = [...chunked.extents()].filter(
              (e) => e.type === 'mmio_direct' && e.mfn <= lo + 600 && lo <= e.mfn + e.count - 1,
            );
            expect(byMfn).toEqual(filtered);
            expect(chunked.extentsIn(gfn(first), gfn(last))).toEqual(flat.extentsIn(gfn(first), gfn(last)));
            // Into records from place 1 of a list holding older ones: the same extents, up to the place returned.
            const records = [new P2mExtentRecord(), new P2mExtentRecord()];
            const end = chunked.extentsInto(gfn(first), gfn(last), records, 1);
            expect(records.slice(1, end).map((r) => ({ ...r }))).toEqual(
              flat.extentsIn(gfn(first), gfn(last)),
            );
          }
          expectFrames(chunked, pages, 0, SPACE - 1);
        },
      ),
      runs(100),
    );
  });
});
