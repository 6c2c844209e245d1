/**
 * Mapping device MMIO into a guest (xen/arch/x86/mm/p2m.c): `map_mmio_regions`,
 * `unmap_mmio_regions`, their per-chunk helpers `set_mmio_p2m_entry` / `clear_mmio_p2m_entry` with
 * the retry protocol, `mmio_order`, and the identity-entry helpers used to punch MSI-X holes.
 */
import type { Result } from '@vpci/rangeset';
import { checkFrame, InvalidArgumentError, MAX_FRAME, type PageOrder } from './errors.js';
import { appendRange, type FrameRanges } from './events.js';
import { type Gfn, type Mfn, mfn as toMfn } from './frame.js';
import type { MmioCost, P2m } from './p2m.js';
import { isRam, isSpecial, P2M_TYPES, type P2mType } from './p2m-type.js';

// The classes as sets, so the per-chunk path does not re-validate the type each time.
const SPECIAL: ReadonlySet<P2mType> = new Set(P2M_TYPES.filter(isSpecial));
const PAGE_HOLDING_RAM: ReadonlySet<P2mType> = new Set(
  P2M_TYPES.filter((t) => isRam(t) && t !== 'ram_paged'),
);

/** Chunks handled per call of `mapMmio` / `unmapMmio` (Xen's `MAP_MMIO_MAX_ITER`, "pretty arbitrary"). */
export const MAP_MMIO_MAX_ITER = 64;

/** Errors of the MMIO calls, as Xen's negative errno values. */
export type MmioErrno = 'EPERM' | 'EINVAL' | 'ENOENT' | 'ENOMEM' | 'EIO' | 'EOPNOTSUPP';

/**
 * The result of one `mapMmio` / `unmapMmio` call (Xen's `0`, positive `k`, negative errno).
 * - `{ ok: true, done: true }`: all frames done.
 * - `{ ok: true, done: false, progress }`: the first `progress` frames (0 < progress < count) were
 *   done; call again for the rest. An error met after that is dropped and shows on the next call.
 * - `{ ok: false, code }`: nothing was done in this call.
 */
export type MmioResult = Result<
  MmioErrno,
  { readonly done: true } | { readonly done: false; readonly progress: number }
>;

/**
 * The result of a chunk helper: done, "retry this gfn with `order`" (Xen returns `order + 1`, always
 * smaller than the order asked), or an error. The retry is not an errno (Xen's value is positive), so
 * it is its own member beside `Result`'s, and `code: 'retry'` never reaches a caller of `mapMmio`.
 */
export type ChunkResult =
  | Result<MmioErrno>
  | { readonly ok: false; readonly code: 'retry'; readonly order: PageOrder };

/** The result of the identity-entry helpers. */
export type IdentityResult = Result<'EPERM' | 'EBUSY' | 'ENOMEM' | 'EINVAL' | 'ENOENT'>;

const DONE: ChunkResult = Object.freeze({ ok: true });
/** The result of a call that did every frame (one object: results are read, never changed). */
const ALL_DONE: MmioResult = Object.freeze({ ok: true, done: true });

/**
 * Xen's `mmio_order`: the leaf order for the next chunk, given the OR of the current gfn and mfn and
 * the frames remaining. 4K without HAP, when the OR is not 2M-aligned or fewer than 512 frames
 * remain; never 1G (disabled in Xen); else 2M if the hardware has 2M leaves.
 */
export function mmioOrder(p2m: P2m, frameOr: number, remaining: number): PageOrder {
  checkFrame('frameOr', frameOr);
  checkCount('remaining', remaining);
  return mmioOrderFast(p2m, frameOr, remaining);
}

/**
 * Xen's `set_mmio_p2m_entry` + `set_typed_p2m_entry(…, p2m_mmio_direct)` for one chunk: retry at 4K
 * when the MFN block meets read-only MMIO; retry at the existing leaf's order when it is smaller;
 * crash the domain (EPERM) over a different special entry; nothing to do over the identical mapping;
 * otherwise write, logging the RAM it orphans (into `orphaned` when given, else as its own event).
 */
export function setMmioEntry(
  p2m: P2m,
  gfn: Gfn,
  mfn: Mfn,
  order: PageOrder,
  orphaned?: FrameRanges,
): ChunkResult {
  // The leaf's last frame is a machine frame (the caller keeps the run below 2^52).
  if (order > 0 && p2m.mmioRoRanges.overlapsRange(mfn, (mfn + (1 << order) - 1) as Mfn)) {
    return { ok: false, code: 'retry', order: 0 };
  }
  if (!p2m.translated) return { ok: false, code: 'EIO' };
  const old = p2m.lookup(gfn);
  if (old.order < order) return { ok: false, code: 'retry', order: old.order };
  if (SPECIAL.has(old.type)) {
    if (old.mfn !== mfn || old.type !== 'mmio_direct') {
      p2m.crash(`map gfn ${hex(gfn)} -> mfn ${hex(mfn)} over ${old.type} -> ${hexOrNone(old.mfn)}`, gfn);
      return { ok: false, code: 'EPERM' };
    }
    return DONE; // identical, and access is always the default here
  }
  const written = p2m.setEntry(gfn, order, mfn, 'mmio_direct');
  if (!written.ok) return written;
  if (PAGE_HOLDING_RAM.has(old.type)) {
    const last = (gfn + (1 << order) - 1) as Gfn; // inside the leaf just written, so a frame
    if (orphaned !== undefined) appendRange(orphaned, gfn, last);
    else p2m.events.push({ kind: 'ram-orphaned', by: 'map-mmio', gfns: [[gfn, last]] });
  }
  return DONE;
}

/**
 * Xen's `clear_mmio_p2m_entry` for one chunk: retry at the existing leaf's order when smaller; EINVAL
 * (logged) unless the entry is mmio_direct; a different MFN is only a warning; then clear.
 */
export function clearMmioEntry(p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder): ChunkResult {
  if (!p2m.translated) return { ok: false, code: 'EIO' };
  const old = p2m.lookup(gfn);
  if (old.order < order) return { ok: false, code: 'retry', order: old.order };
  if (old.mfn === undefined || old.type !== 'mmio_direct') {
    p2m.events.push({ kind: 'unmap-not-mmio', gfn, type: old.type, mfn: old.mfn });
    return { ok: false, code: 'EINVAL' };
  }
  if (old.mfn !== mfn) p2m.events.push({ kind: 'unmap-mfn-mismatch', gfn, expected: mfn, found: old.mfn });
  const written = p2m.clearEntry(gfn, order);
  return written.ok ? DONE : written;
}

/**
 * Xen's `map_mmio_regions(d, gfn, count, mfn)`: map guest frames `gfn …` to machine frames `mfn …` as
 * mmio_direct, at most 64 chunks per call. Throws `InvalidArgumentError` for a frame beyond 2^52 - 1
 * or a run that would pass it, or a count that is not a non-negative integer.
 */
export function mapMmio(p2m: P2m, gfn: Gfn, count: number, mfn: Mfn): MmioResult {
  return iterate(p2m, gfn, count, mfn, setMmioEntry, mapRun, true);
}

/**
 * Xen's `unmap_mmio_regions(d, gfn, count, mfn)`: clear the mmio_direct entries of `gfn …`, at most 64
 * chunks per call; same result and argument rules as `mapMmio`.
 */
export function unmapMmio(p2m: P2m, gfn: Gfn, count: number, mfn: Mfn): MmioResult {
  return iterate(p2m, gfn, count, mfn, clearMmioEntry, clearMmioRun, false);
}

/**
 * Consecutive calls of `map_mmio_regions` (`map`) or `unmap_mmio_regions` over `gfn … gfn + count - 1`
 * done in closed form, as vPCI's `map_range` makes them (each call from where the last one's progress
 * ended): the leading calls that would each do their 64 chunks of one order through the batched path
 * (holes for a map, one extent of mmio_direct leaves of that order mapping `mfn …` for an unmap) and
 * return partial progress, so that no chunk needs a decision. They are applied as one run write, with
 * every call and leaf counted in `mmioCost` and every entry write in `writes`, exactly as calling
 * `mapMmio` / `unmapMmio` once per call would. The run stops with the call whose progress brings the
 * frames done to `atLeast` or more (a caller's preemption budget; `Infinity` for none), before any
 * call that would do less, fail or finish, and before a write an armed fault would hit (none under a
 * `failAt` hook). Returns the frames done (0: the next call must be made by `mapMmio` / `unmapMmio`).
 * Throws as `mapMmio` does for its arguments.
 */
export function mmioCallRun(
  p2m: P2m,
  map: boolean,
  gfn: Gfn,
  count: number,
  mfn: Mfn,
  atLeast: number,
): number {
  checkFrame('gfn', gfn);
  checkFrame('mfn', mfn);
  checkCount('count', count);
  if (!p2m.translated || !(atLeast > 0)) return 0;
  const order = mmioOrderFast(p2m, low9(gfn) | low9(mfn), count);
  const size = 1 << order;
  const perCall = MAP_MMIO_MAX_ITER * size;
  // Every chunk of the calls must have `order` (chunk orders depend on the position, not on where a
  // call starts), and every call must leave frames for the next (the last call is made one by one).
  const ofOrder = Math.floor(chunksOfOrder(p2m, order, gfn, mfn, count) / MAP_MMIO_MAX_ITER);
  let calls = Math.min(ofOrder, Math.floor((count - 1) / perCall), Math.ceil(atLeast / perCall));
  calls = Math.min(calls, Math.floor(p2m.writesBeforeFault() / MAP_MMIO_MAX_ITER));
  if (calls <= 0) return 0;
  const holes = map ? holeChunks(p2m, gfn, mfn, order, calls * MAP_MMIO_MAX_ITER) : 0;
  // A map over its own mapping writes nothing (see `sameMappingChunks`), an unmap clears a run.
  const same = map && holes === 0;
  const chunks = !map
    ? Math.floor(p2m.leafRun(gfn, calls * perCall, mfn, 'mmio_direct', order) / size)
    : same
      ? sameMappingChunks(p2m, gfn, mfn, order, calls * MAP_MMIO_MAX_ITER)
      : holes;
  calls = Math.floor(chunks / MAP_MMIO_MAX_ITER);
  if (calls <= 0) return 0;
  const frames = calls * perCall;
  if (!same) p2m.writeRun(gfn, frames, order, map ? mfn : undefined);
  const cost = p2m.mmioCost;
  if (map) cost.mapCalls += calls;
  else cost.unmapCalls += calls;
  countLeaves(cost, order, calls * MAP_MMIO_MAX_ITER);
  return frames;
}

/**
 * A run of at most `chunks` map chunks of `order` that need no decision: on holes (`mapHoles`), or,
 * when the first chunk meets a mapping, over the same mapping (`sameMappingChunks`, nothing written).
 * Returns the chunks done (0: none).
 */
function mapRun(p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder, chunks: number): number {
  const holes = mapHoles(p2m, gfn, mfn, order, chunks);
  return holes > 0 ? holes : sameMappingChunks(p2m, gfn, mfn, order, chunks);
}

/**
 * A run of at most `chunks` map chunks of `order` that all land on holes the tables can hold: each
 * would look up a hole whose empty block is at least its own size and write one mmio_direct leaf
 * continuing the last, so together they are one run write. A 2M chunk in a region that kept its L1
 * table, or whose machine frames meet read-only MMIO, would be retried at 4K: the run stops before
 * it. Returns the chunks done (0: none).
 */
function mapHoles(p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder, chunks: number): number {
  const n = holeChunks(p2m, gfn, mfn, order, chunks);
  if (n > 0) p2m.writeRun(gfn, n * (1 << order), order, mfn);
  return n;
}

/** How many of `mapHoles`' chunks find a hole the tables hold and need no retry (nothing written). */
function holeChunks(p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder, chunks: number): number {
  const size = 1 << order;
  let n = Math.floor(p2m.holeRun(gfn, chunks * size) / size);
  if (order > 0 && n > 0) n = Math.floor(p2m.unsplitRun(gfn, n * size) / size);
  return beforeReadOnly(p2m, mfn, order, n);
}

/**
 * How many of at most `chunks` map chunks of `order` find the mapping they would write already there
 * (mmio_direct to the same machine frames, in leaves at least as large as the chunk): Xen's
 * `set_typed_p2m_entry` returns 0 for each without a write (`p2m_is_special` with the same type and
 * MFN), so the run changes nothing and fires no write or event; only its chunks are counted. A 2M
 * chunk whose machine frames meet read-only MMIO is retried at 4K first: the run stops before it.
 */
function sameMappingChunks(p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder, chunks: number): number {
  const size = 1 << order;
  const n = Math.floor(p2m.sameMappingRun(gfn, chunks * size, mfn, 'mmio_direct', order) / size);
  return beforeReadOnly(p2m, mfn, order, n);
}

/**
 * How many of `n` chunks of `order` from `mfn` come before the first 2M chunk whose machine frames
 * meet read-only MMIO (`set_mmio_p2m_entry` retries that one at 4K); 4K chunks are never retried.
 */
function beforeReadOnly(p2m: P2m, mfn: Mfn, order: PageOrder, n: number): number {
  if (order === 0 || n === 0) return n;
  const size = 1 << order;
  // The run's last machine frame is one: the caller keeps the run below 2^52.
  const last = (mfn + n * size - 1) as Mfn;
  const readOnly = p2m.mmioRoRanges.reportRanges(mfn, last, (first): number => first);
  return readOnly === undefined ? n : Math.floor((readOnly - mfn) / size);
}

/**
 * A run of at most `chunks` unmap chunks of `order` inside one mmio_direct extent of leaves of that
 * order mapping exactly `mfn …`: each would find its leaf mapped as expected and clear it, so
 * together they are one run clear.
 */
function clearMmioRun(p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder, chunks: number): number {
  const size = 1 << order;
  const n = Math.floor(p2m.leafRun(gfn, chunks * size, mfn, 'mmio_direct', order) / size);
  if (n > 0) p2m.writeRun(gfn, n * size, order, undefined);
  return n;
}

/**
 * How many chunks from here on certainly have `order` (that of the chunk at `gfn`): at 2M, every
 * whole 2M that remains (frames stay aligned); at 4K all that remain, unless gfn and mfn share their
 * alignment modulo 2M and a 2M chunk becomes possible at the next 2M boundary.
 */
function chunksOfOrder(p2m: P2m, order: PageOrder, gfn: number, mfn: number, remaining: number): number {
  if (order > 0) return Math.floor(remaining / (1 << order));
  if (!p2m.hap || !p2m.superpages2M || low9(gfn - mfn) !== 0) return remaining;
  const into = low9(gfn);
  const toBoundary = into === 0 ? 0 : 512 - into;
  return toBoundary > 0 && remaining - toBoundary >= 512 ? toBoundary : remaining;
}

/**
 * The loop of `map_mmio_regions` / `unmap_mmio_regions`. Frames are plain numbers inside (`gfn + i`);
 * each one handed on is below 2^52 because the run was checked to stay there, so the casts are safe.
 */
function iterate(
  p2m: P2m,
  gfn: number,
  count: number,
  mfn: number,
  helper: (p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder, orphaned: FrameRanges) => ChunkResult,
  batch: (p2m: P2m, gfn: Gfn, mfn: Mfn, order: PageOrder, chunks: number) => number,
  map: boolean,
): MmioResult {
  checkFrame('gfn', gfn);
  checkFrame('mfn', mfn);
  checkCount('count', count);
  if (count > 0 && gfn + count - 1 > MAX_FRAME) {
    throw new InvalidArgumentError('count', count, `a run that stays below 2^52 from gfn ${hex(gfn)}`);
  }
  if (count > 0 && mfn + count - 1 > MAX_FRAME) {
    throw new InvalidArgumentError('count', count, `a run that stays below 2^52 from mfn ${hex(mfn)}`);
  }
  const cost = p2m.mmioCost;
  if (map) cost.mapCalls++;
  else cost.unmapCalls++;
  if (!p2m.translated) return { ok: false, code: 'EOPNOTSUPP' };
  let i = 0;
  let failed: MmioErrno | undefined;
  const orphaned: FrameRanges = [];
  for (let iter = 0; i < count && iter < MAP_MMIO_MAX_ITER; iter++) {
    // Only the low 9 bits of the OR matter, and `low9` keeps them exact for frames above 2^32.
    let order = mmioOrderFast(p2m, low9(gfn + i) | low9(mfn + i), count - i);
    if (!p2m.faultInjection) {
      // Consecutive chunks of one order that need no decision each are done as one run; each still
      // counts as one of the call's 64 chunks, so results and progress are Xen's.
      const room = Math.min(MAP_MMIO_MAX_ITER - iter, chunksOfOrder(p2m, order, gfn + i, mfn + i, count - i));
      const done = batch(p2m, (gfn + i) as Gfn, (mfn + i) as Mfn, order, room);
      if (done > 0) {
        countLeaves(cost, order, done);
        i += done * (1 << order);
        iter += done - 1;
        continue;
      }
    }
    let rc = helper(p2m, (gfn + i) as Gfn, (mfn + i) as Mfn, order, orphaned);
    while (!rc.ok && rc.code === 'retry') {
      order = rc.order;
      rc = helper(p2m, (gfn + i) as Gfn, (mfn + i) as Mfn, order, orphaned);
    }
    if (!rc.ok) {
      failed = rc.code;
      break;
    }
    countLeaves(cost, order, 1);
    i += 1 << order;
  }
  // One event per call for the RAM this call orphaned.
  if (orphaned.length > 0) p2m.events.push({ kind: 'ram-orphaned', by: 'map-mmio', gfns: orphaned });
  if (i === count) return ALL_DONE;
  if (i > 0) return { ok: true, done: false, progress: i };
  return { ok: false, code: failed ?? 'EIO' };
}

/** `chunks` leaves of `order` written by one call's chunks. */
/** Adds `chunks` leaves of `order` to a p2m's MMIO cost (also Arm's block writes, arm-mmio.ts). */
export function countLeaves(cost: MmioCost, order: PageOrder, chunks: number): void {
  if (order === 0) cost.leaves4K += chunks;
  else if (order === 9) cost.leaves2M += chunks;
  else cost.leaves1G += chunks;
}

/**
 * `frame % 512` (0 … 511) for any integer below 2^53, negative ones too (so `low9(a - b) === 0`
 * tests `a ≡ b` mod 512), without a float modulo: that is a C call (`fmod`, tens of ns) and these
 * run several times per p2m call. Dividing by a power of two is exact.
 */
function low9(frame: number): number {
  return frame - Math.floor(frame / 512) * 512;
}

/** `mmioOrder` without the argument checks, for the loop (its arguments are already checked). */
function mmioOrderFast(p2m: P2m, frameOr: number, remaining: number): PageOrder {
  if (!p2m.hap || low9(frameOr) !== 0 || remaining < 512) return 0;
  return p2m.superpages2M ? 9 : 0;
}

/**
 * Xen's `p2m_add_identity_entry(d, gfn, access, flags)`, 4K only: a hole (invalid or mmio_dm) becomes
 * mmio_direct to `mfn = gfn`; the same identity entry is left as is; anything else is EBUSY, or
 * success with a warning when `relaxed` (the RDM-relaxed flag). Non-translated: EPERM.
 */
export function addIdentityEntry(
  p2m: P2m,
  gfn: Gfn,
  options: { readonly relaxed?: boolean } = {},
): IdentityResult {
  checkFrame('gfn', gfn);
  const relaxed = options.relaxed ?? false;
  if (typeof relaxed !== 'boolean') throw new InvalidArgumentError('relaxed', relaxed, 'true or false');
  if (!p2m.translated) return { ok: false, code: 'EPERM' };
  const identity = toMfn(gfn); // Xen's _mfn(gfn_x(gfn)): the guest frame names the machine frame
  const old = p2m.lookup(gfn);
  if (old.mfn === undefined && (old.type === 'mmio_dm' || old.type === 'invalid')) {
    return p2m.setEntry(gfn, 0, identity, 'mmio_direct');
  }
  if (old.mfn === identity && old.type === 'mmio_direct') return { ok: true };
  p2m.events.push({ kind: 'identity-busy', gfn, mfn: old.mfn, type: old.type, relaxed });
  return relaxed ? { ok: true } : { ok: false, code: 'EBUSY' };
}

/**
 * Xen's `p2m_remove_identity_entry(d, gfn)`, 4K only: an identity mmio_direct entry is cleared (the
 * write's result is returned); anything else is left alone with success, and a warning unless it is
 * an empty hole. Non-translated: EPERM.
 */
export function removeIdentityEntry(p2m: P2m, gfn: Gfn): IdentityResult {
  checkFrame('gfn', gfn);
  if (!p2m.translated) return { ok: false, code: 'EPERM' };
  const old = p2m.lookup(gfn);
  if (old.type === 'mmio_direct' && old.mfn === toMfn(gfn)) return p2m.clearEntry(gfn, 0);
  if (old.mfn !== undefined || (old.type !== 'mmio_dm' && old.type !== 'invalid')) {
    p2m.events.push({ kind: 'identity-not-cleared', gfn, mfn: old.mfn, type: old.type });
  }
  return { ok: true };
}

function checkCount(argument: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_FRAME + 1) {
    throw new InvalidArgumentError(argument, value, 'a frame count, an integer in 0 … 2^52');
  }
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}

function hexOrNone(value: number | undefined): string {
  return value === undefined ? 'INVALID_MFN' : hex(value);
}
