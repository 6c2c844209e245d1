/**
 * Mapping device MMIO on Arm (xen/arch/arm/p2m.c `map_mmio_regions` / `unmap_mmio_regions` →
 * `p2m_insert_mapping` / `p2m_remove_mapping`, and mmu/p2m.c `p2m_set_entry`): unlike x86's
 * `map_mmio_regions` (mmio.ts: at most 64 chunks a call, partial progress, retries), Arm's does the
 * whole range in one call and returns 0 or an error, never a count: vPCI's `map_range` on Arm is
 * never preempted (header.c's "ARM TODOs": "{un}map_mmio_regions doesn't support preemption").
 * The same `P2m` holds the entries; Arm's `p2m_mmio_direct_dev` is written as `mmio_direct`.
 */
import type { Failure, Ok } from '@vpci/rangeset';
import { checkFrame, InvalidArgumentError, MAX_FRAME, type PageOrder } from './errors.js';
import type { Gfn, Mfn } from './frame.js';
import { countLeaves } from './mmio.js';
import type { P2m } from './p2m.js';
import type { P2mType } from './p2m-type.js';

/** Errors of Arm's MMIO calls: beyond the IPA size (EINVAL), a table allocation (ENOMEM), RAM in an unmap (EILSEQ). */
export type ArmMmioErrno = 'EINVAL' | 'ENOMEM' | 'EILSEQ';

/**
 * The result of `armMapMmioRegions` / `armUnmapMmioRegions`: all frames done, or Xen's negative
 * errno. A failure reports no progress to the caller (Xen returns only `rc`), yet the leaves written
 * before it stay: `written` counts those frames, for a caller that wants to undo them.
 */
export type ArmMmioResult = Ok | (Failure<ArmMmioErrno> & { readonly written: number });

/** Arm's `p2m_is_any_ram`: `P2M_RAM_TYPES | P2M_GRANT_TYPES | P2M_FOREIGN_TYPES` (asm/p2m.h). */
const ARM_ANY_RAM: ReadonlySet<P2mType> = new Set<P2mType>([
  'ram_rw',
  'ram_ro',
  'grant_map_rw',
  'grant_map_ro',
  'map_foreign',
]);

/**
 * Arm64's stage-2 set-up (mmu/p2m.c `setup_virt_paging`, `pa_range_info`): `p2m_ipa_bits` is
 * `PADDR_BITS` (48) cut to the host's PA size, which picks a row of root order and start level; a
 * GFN whose root index reaches `P2M_ROOT_PAGES` has no root page (`p2m_get_root_pointer`: NULL, so
 * EINVAL). The GFNs that can be written are below 2^(returned bits - 12): for a 36-bit host that is
 * 39 bits (one level-1 root page), for a 44-bit host 48 (one level-0 root page).
 */
const ARM_ROOT_LIMIT_BITS: ReadonlyMap<number, number> = new Map([
  // PA bits → bits of the GFN limit: root pages << (LEVEL_ORDER(root level) + 9) frames, + 12.
  [36, 39], // 36-bit IPA: root order 0, SL0 1 (level 1): 1 << 27 frames
  [40, 40], // root order 1, level 1: 2 << 27
  [42, 42], // root order 3, level 1: 8 << 27
  [44, 48], // root order 0, SL0 2 (level 0): 1 << 36
  [48, 48], // root order 0, level 0: 1 << 36
  [52, 48], // p2m_ipa_bits = min(PADDR_BITS 48, 52): the 48-bit row
]);

/** The Arm64 physical address sizes `pa_range_info` lists that the engine accepts (32 is below its minimum). */
export const ARM_PA_BITS: readonly number[] = Object.freeze([...ARM_ROOT_LIMIT_BITS.keys()]);

/**
 * The address bits below which an Arm64 stage-2 p2m of a host with `paBits` can hold a guest frame
 * (a `P2mOptions.addressBits`); throws for a size `pa_range_info` does not list.
 */
export function armP2mAddressBits(paBits: number): number {
  const bits = ARM_ROOT_LIMIT_BITS.get(paBits);
  if (bits === undefined)
    throw new InvalidArgumentError('physAddrBits', paBits, `on Arm one of ${ARM_PA_BITS.join(', ')}`);
  return bits;
}

/** Arm's block orders with a 4K granule: `THIRD_ORDER` (4K), `SECOND_ORDER` (2M), `FIRST_ORDER` (1G). */
const FIRST_ORDER = 18;
const SECOND_ORDER = 9;

/**
 * The block order `p2m_set_entry` picks for the next step: the OR of the MFN (left out when
 * removing: INVALID_MFN), the GFN and the frames left (`nr`, so a range whose length is not a block
 * multiple is mapped 4K by 4K: "XXX: Support superpage mappings if nr is not aligned to a superpage
 * size"): 1G if its low 18 bits are clear, else 2M if its low 9 bits are, else 4K.
 */
export function armBlockOrder(gfn: number, mfn: number | undefined, nr: number): PageOrder {
  checkFrame('gfn', gfn);
  if (mfn !== undefined) checkFrame('mfn', mfn);
  if (!Number.isInteger(nr) || nr < 1 || nr > MAX_FRAME + 1)
    throw new InvalidArgumentError('nr', nr, 'a frame count, an integer in 1 … 2^52');
  return blockOrder(gfn, mfn, nr);
}

function blockOrder(gfn: number, mfn: number | undefined, nr: number): PageOrder {
  const aligned = (bits: number): boolean => {
    const size = 1 << bits; // 9 or 18 (`2 ** bits` is a Math.pow call at run time)
    return gfn % size === 0 && nr % size === 0 && (mfn === undefined || mfn % size === 0);
  };
  if (aligned(FIRST_ORDER)) return 18;
  if (aligned(SECOND_ORDER)) return 9;
  return 0;
}

/**
 * How many steps in a row `p2m_set_entry` takes at `order` from here: all that remain, unless the
 * GFN, the MFN and the frames left all reach the next block size together (then up to there).
 */
function stepsAtOrder(order: PageOrder, gfn: number, mfn: number | undefined, nr: number): number {
  const size = 1 << order; // orders are 0, 9 and 18 (`**` is a Math.pow call at run time)
  const all = nr / size;
  if (order === FIRST_ORDER) return all;
  const next = 1 << (order === 0 ? SECOND_ORDER : FIRST_ORDER);
  const toBoundary = (next - (gfn % next)) % next;
  const together = (mfn === undefined || (gfn - mfn) % next === 0) && (gfn + nr) % next === 0;
  return together && toBoundary > 0 && toBoundary < nr ? toBoundary / size : all;
}

/**
 * Xen's Arm `map_mmio_regions(d, gfn, nr, mfn)`: `p2m_set_entry` with `p2m_mmio_direct_dev`, block by
 * block (see `armBlockOrder`); a larger block in the way is split, a smaller table under a new block
 * is freed, whatever was mapped there before (RAM included) is replaced without a word. A block at or
 * past the IPA size fails with EINVAL (`p2m_get_root_pointer` finds no root page), a table that
 * cannot be allocated with ENOMEM (`fault` injection); the blocks before stay.
 */
export function armMapMmioRegions(p2m: P2m, gfn: Gfn, nr: number, mfn: Mfn): ArmMmioResult {
  checkRun(gfn, nr, mfn);
  p2m.mmioCost.mapCalls++;
  return setEntries(p2m, gfn, nr, mfn);
}

/**
 * Xen's Arm `unmap_mmio_regions(d, gfn, nr, mfn)` (`p2m_remove_mapping`): first, if any RAM, grant or
 * foreign entry of the range does not map the expected machine frame, EILSEQ and nothing is removed
 * (a BAR's machine frames are MMIO, never `mfn_valid`, so any such entry fails it); then
 * `p2m_set_entry` with INVALID_MFN: every entry of the range is removed, whatever it maps (a hole
 * stays a hole, another MMIO frame goes too), the block order taken from the GFN and `nr` only.
 */
export function armUnmapMmioRegions(p2m: P2m, gfn: Gfn, nr: number, mfn: Mfn): ArmMmioResult {
  checkRun(gfn, nr, mfn);
  p2m.mmioCost.unmapCalls++;
  if (nr === 0) return { ok: true };
  const last = Math.min(gfn + nr - 1, MAX_FRAME) as Gfn;
  for (const extent of p2m.extentsIn(gfn, last)) {
    if (ARM_ANY_RAM.has(extent.type)) return { ok: false, code: 'EILSEQ', written: 0 };
  }
  return setEntries(p2m, gfn, nr, undefined);
}

/** `p2m_set_entry`'s loop: blocks of the order `blockOrder` picks, runs of one order written as one. */
function setEntries(p2m: P2m, gfn: number, nr: number, mfn: number | undefined): ArmMmioResult {
  let done = 0;
  while (done < nr) {
    const g = gfn + done;
    const m = mfn === undefined ? undefined : mfn + done;
    const left = nr - done;
    const order = blockOrder(g, m, left);
    const size = 1 << order;
    // The IPA size is a multiple of every block size: a block is wholly below it or at/after it.
    const below = Math.max(0, Math.floor((p2m.frameLimit - g) / size));
    const steps = Math.min(stepsAtOrder(order, g, m, left), below);
    if (steps === 0) return { ok: false, code: 'EINVAL', written: done };
    if (p2m.faultInjection) {
      // One entry write at a time, so the injected failure lands on the block Xen would fail.
      for (let i = 0; i < steps; i++) {
        const at = (g + i * size) as Gfn;
        const rc =
          m === undefined
            ? p2m.clearEntry(at, order)
            : p2m.setEntry(at, order, (m + i * size) as Mfn, 'mmio_direct');
        if (!rc.ok) return { ok: false, code: rc.code === 'ENOMEM' ? 'ENOMEM' : 'EINVAL', written: done };
        countLeaves(p2m.mmioCost, order, 1);
        done += size;
      }
    } else {
      p2m.writeRun(g as Gfn, steps * size, order, m as Mfn | undefined);
      countLeaves(p2m.mmioCost, order, steps);
      done += steps * size;
    }
  }
  return { ok: true };
}

function checkRun(gfn: number, nr: number, mfn: number): void {
  checkFrame('gfn', gfn);
  checkFrame('mfn', mfn);
  if (!Number.isInteger(nr) || nr < 0 || nr > MAX_FRAME + 1)
    throw new InvalidArgumentError('nr', nr, 'a frame count, an integer in 0 … 2^52');
  if (nr > 0 && gfn + nr - 1 > MAX_FRAME)
    throw new InvalidArgumentError('nr', nr, `a run that stays below 2^52 from gfn 0x${gfn.toString(16)}`);
  if (nr > 0 && mfn + nr - 1 > MAX_FRAME)
    throw new InvalidArgumentError('nr', nr, `a run that stays below 2^52 from mfn 0x${mfn.toString(16)}`);
}
