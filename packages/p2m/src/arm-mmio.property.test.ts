/**
 * Arm's MMIO calls against a line-by-line transcription of Xen's loops, one block write at a time:
 * p2m.c `p2m_remove_mapping` (the RAM check stepping by each entry's order) and mmu/p2m.c
 * `p2m_set_entry` (`mask = mfn | gfn | nr`, 1G / 2M / 4K). `armMapMmioRegions` writes runs of one
 * order at once; on the same random p2m (holes, 4K and 2M leaves of several types, a low IPA size so
 * runs cross the end) both must leave the same extents, count the same writes and return the same.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { armMapMmioRegions, armUnmapMmioRegions } from './arm-mmio.js';
import type { PageOrder } from './errors.js';
import { gfn, mfn } from './frame.js';
import { P2m } from './p2m.js';
import type { P2mType } from './p2m-type.js';

/** 31 address bits: GFNs below 2^19, so a run near the end crosses it (EINVAL). */
const ADDRESS_BITS = 31;
const LIMIT = 2 ** (ADDRESS_BITS - 12);
const ANCHORS = [0, 2 ** 18 - 1024, LIMIT - 1024];

const frame = fc
  .tuple(fc.constantFrom(...ANCHORS), fc.nat(3), fc.oneof(fc.constant(0), fc.nat(511)))
  .map(([anchor, block, offset]) => anchor + block * 512 + offset);
const shift = fc
  .tuple(fc.constantFrom(0, 512, 2 ** 18), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 511 })))
  .map(([blocks, offset]) => blocks + offset);
const count = fc.oneof(fc.integer({ min: 1, max: 1100 }), fc.constantFrom(512, 1024, 2 ** 18, 2 ** 18 + 512));

type Leaf = { gfn: number; order: PageOrder; shift: number; type: P2mType };
const leaf: fc.Arbitrary<Leaf> = fc.record({
  gfn: frame,
  order: fc.constantFrom<PageOrder>(0, 9),
  shift,
  type: fc.constantFrom<P2mType>('mmio_direct', 'mmio_direct', 'ram_rw', 'grant_map_ro', 'map_foreign'),
});
type Call = { map: boolean; gfn: number; count: number; shift: number };
// A 1G-long call has 2M-aligned frames, so Xen's loop takes at most 512 writes for it, not 2^18.
const call: fc.Arbitrary<Call> = fc
  .record({ map: fc.boolean(), gfn: frame, count, shift })
  .map((c) =>
    c.count < 2 ** 18 ? c : { ...c, gfn: c.gfn - (c.gfn % 512), shift: c.shift - (c.shift % 512) },
  );

function build(leaves: readonly Leaf[]): P2m {
  const p2m = new P2m({ addressBits: ADDRESS_BITS });
  for (const l of leaves) {
    const size = 2 ** l.order;
    const start = l.gfn - (l.gfn % size);
    if (start + size <= LIMIT)
      p2m.setEntry(gfn(start), l.order, mfn(start + l.shift - (l.shift % size)), l.type);
  }
  return p2m;
}

const ANY_RAM = new Set<P2mType>(['ram_rw', 'ram_ro', 'grant_map_rw', 'grant_map_ro', 'map_foreign']);

/** Xen's `p2m_set_entry`, block by block, in BigInt bit operations as the C does them. */
function xenSetEntry(p2m: P2m, sgfn: number, nr: number, smfn: number | undefined): unknown {
  let g = BigInt(sgfn);
  let m = smfn === undefined ? undefined : BigInt(smfn);
  let left = BigInt(nr);
  let written = 0;
  while (left > 0n) {
    const mask = (m ?? 0n) | g | left;
    const order: PageOrder =
      (mask & ((1n << 18n) - 1n)) === 0n ? 18 : (mask & ((1n << 9n) - 1n)) === 0n ? 9 : 0;
    const rc =
      m === undefined
        ? p2m.clearEntry(gfn(Number(g)), order)
        : p2m.setEntry(gfn(Number(g)), order, mfn(Number(m)), 'mmio_direct');
    if (!rc.ok) return { ok: false, code: rc.code, written };
    const size = 1n << BigInt(order);
    g += size;
    if (m !== undefined) m += size;
    left -= size;
    written += Number(size);
  }
  return { ok: true };
}

/** Xen's `p2m_remove_mapping`: the RAM check (MMIO machine frames are never mfn_valid), then removal. */
function xenRemoveMapping(p2m: P2m, start: number, nr: number): unknown {
  for (let i = 0; i < nr; ) {
    if (start + i >= LIMIT) break; // p2m_get_entry finds no root there: INVALID_MFN, p2m_invalid
    const entry = p2m.lookup(gfn(start + i));
    if (ANY_RAM.has(entry.type)) return { ok: false, code: 'EILSEQ', written: 0 };
    const size = 2 ** entry.order;
    i += size - ((start + i) % size);
  }
  return xenSetEntry(p2m, start, nr, undefined);
}

describe('Arm map/unmap against Xen loops transcribed', () => {
  it('the same extents, writes and results', () => {
    fc.assert(
      fc.property(
        fc.array(leaf, { maxLength: 10 }),
        fc.array(call, { minLength: 1, maxLength: 6 }),
        (leaves, calls) => {
          const batched = build(leaves);
          const xen = build(leaves);
          for (const c of calls) {
            const n = Math.min(c.count, 2 ** 52 - c.gfn - c.shift);
            const got = c.map
              ? armMapMmioRegions(batched, gfn(c.gfn), n, mfn(c.gfn + c.shift))
              : armUnmapMmioRegions(batched, gfn(c.gfn), n, mfn(c.gfn + c.shift));
            const want = c.map
              ? xenSetEntry(xen, c.gfn, n, c.gfn + c.shift)
              : xenRemoveMapping(xen, c.gfn, n);
            expect(got).toEqual(want);
            expect([...batched.extents()]).toEqual([...xen.extents()]);
            expect(batched.writes).toBe(xen.writes);
          }
        },
      ),
    );
  });
});
