/**
 * Populating guest RAM (Xen's `p2m_add_page` per 4K page, as `XENMEM_populate_physmap` with extent
 * order 0 does for hvmloader), with seed 003 made visible: a gfn that already holds a page loses it
 * silently in Xen. Here the default policy reports every such frame in a `ram-orphaned` event;
 * `refuseClobber` refuses the whole call and changes nothing.
 */
import type { Failure, Ok } from '@vpci/rangeset';
import { checkFrame, InvalidArgumentError, MAX_FRAME } from './errors.js';
import { appendRange, type FrameRanges } from './events.js';
import type { Gfn, Mfn } from './frame.js';
import type { P2m } from './p2m.js';
import { checkP2mType, isRam, isSpecial, type P2mType } from './p2m-type.js';

/**
 * What to do about gfns that already hold a page.
 * - `report` (default, Xen's behaviour plus an event): replace it and report the frame in a
 *   `ram-orphaned` event (the old page stays allocated to the domain, unreachable from the guest).
 * - `refuseClobber`: refuse the whole call with EEXIST naming the frames, and change nothing.
 */
export type PopulatePolicy = 'report' | 'refuseClobber';

/**
 * The result of `populateRam`.
 * - `{ ok: true, orphaned }`: every frame populated; `orphaned` lists the gfns whose previous page
 *   was dropped (empty if none).
 * - `{ ok: false, code: 'EEXIST', gfns }`: `refuseClobber` found pages at `gfns`; nothing changed.
 * - `{ ok: false, code: 'EPERM', done, gfn }`: a special entry (MMIO, grant, foreign) was at `gfn`;
 *   the domain crashed; the first `done` frames were populated. Also `done: 0` for a non-translated
 *   domain (no `gfn`).
 * - `{ ok: false, code: 'ENOMEM', done, gfn }`: the entry write for `gfn` failed (fault injection).
 * - `{ ok: false, code: 'EINVAL' | 'ENOENT', done, gfn }`: `gfn` is beyond what the p2m's tables
 *   hold (`P2m.frameLimit`; EINVAL from EPT, ENOENT from NPT/shadow): Xen's `p2m_add_page` returns
 *   the error of `p2m_set_entry`.
 */
export type PopulateResult =
  | (Ok & { readonly orphaned: FrameRanges })
  | (Failure<'EEXIST'> & { readonly gfns: FrameRanges })
  | (Failure<'EPERM' | 'ENOMEM' | 'EINVAL' | 'ENOENT'> & { readonly done: number; readonly gfn?: Gfn });

/**
 * Populates `count` guest frames from `gfn` with RAM pages: machine frames `mfns, mfns + 1, …` when
 * `mfns` is a number, else `mfns[k]` for frame `k` (exactly `count` of them). Each frame is written
 * as a 4K leaf of `type` (a RAM type, default `ram_rw`). Throws `InvalidArgumentError` for bad frames,
 * counts, types or policies.
 */
export function populateRam(
  p2m: P2m,
  gfn: Gfn,
  count: number,
  mfns: Mfn | readonly Mfn[],
  type: P2mType = 'ram_rw',
  policy: PopulatePolicy = 'report',
): PopulateResult {
  checkFrame('gfn', gfn);
  if (!Number.isInteger(count) || count < 0 || (count > 0 && gfn + count - 1 > MAX_FRAME)) {
    throw new InvalidArgumentError(
      'count',
      count,
      `a frame count that keeps gfn ${gfn} + count - 1 below 2^52`,
    );
  }
  if (typeof mfns === 'number') {
    checkFrame('mfns', mfns);
    if (count > 0 && mfns + count - 1 > MAX_FRAME) {
      throw new InvalidArgumentError(
        'count',
        count,
        `a frame count that keeps mfn ${mfns} + count - 1 below 2^52`,
      );
    }
  } else {
    if (!Array.isArray(mfns) || mfns.length !== count) {
      throw new InvalidArgumentError('mfns', mfns, `a frame number or an array of exactly ${count} frames`);
    }
    for (let k = 0; k < count; k++) checkFrame(`mfns[${k}]`, mfns[k]);
  }
  checkP2mType('type', type);
  if (!isRam(type) || type === 'ram_paged') {
    throw new InvalidArgumentError('type', type, 'a RAM type that maps a page, such as "ram_rw"');
  }
  if (policy !== 'report' && policy !== 'refuseClobber') {
    throw new InvalidArgumentError('policy', policy, '"report" or "refuseClobber"');
  }
  if (!p2m.translated) return { ok: false, code: 'EPERM', done: 0 };
  // Every frame below is in range: the run from gfn (and from mfns) was checked to stay below 2^52.
  const mfnAt = typeof mfns === 'number' ? (k: number) => (mfns + k) as Mfn : (k: number) => mfns[k] as Mfn;

  if (policy === 'refuseClobber') {
    const present: FrameRanges = [];
    const last = gfn + count - 1;
    for (const extent of count > 0 ? p2m.extentsIn(gfn, last as Gfn) : []) {
      if (!holdsPage(extent.type, extent.mfn)) continue;
      const end = Math.min(last, extent.gfn + extent.count - 1);
      appendRange(present, Math.max(gfn, extent.gfn) as Gfn, end as Gfn);
    }
    if (present.length > 0) return { ok: false, code: 'EEXIST', gfns: present };
  }

  // Frame by frame as Xen does, unless the machine frames are contiguous: then the frames the loop
  // would populate without incident (nothing special in the way, below the tables' limit, before an
  // armed fault) are one run write, with the same extents, write count, orphans and events. The work
  // is bounded by the extents met, never by the frames.
  const batch = typeof mfns === 'number';
  const orphaned: FrameRanges = [];
  for (let k = 0; k < count; ) {
    const g = (gfn + k) as Gfn;
    const mfn = mfnAt(k);
    const n = batch ? cleanRun(p2m, g, count - k, mfn, type, orphaned) : 0;
    if (n > 0) {
      p2m.writeRun(g, n, 0, mfn, type);
      k += n;
      continue;
    }
    // One frame, as Xen's loop: it is special (crash), beyond the tables, the armed fault, or the
    // frames are a list.
    const old = p2m.lookup(g);
    if (isSpecial(old.type)) {
      p2m.crash(`populate gfn 0x${g.toString(16)} over ${old.type}`, g);
      return finish(p2m, orphaned, { ok: false, code: 'EPERM', done: k, gfn: g });
    }
    const written = p2m.setEntry(g, 0, mfn, type);
    if (!written.ok) return finish(p2m, orphaned, { ok: false, code: written.code, done: k, gfn: g });
    if (holdsPage(old.type, old.mfn) && !(old.mfn === mfn && old.type === type)) appendRange(orphaned, g, g);
    k += 1;
  }
  return finish(p2m, orphaned, { ok: true, orphaned });
}

/**
 * How many frames from `gfn`, at most `max`, Xen's loop would populate one by one without incident,
 * mapping them to `mfn …`: it stops before the first special entry, at the tables' frame limit and
 * before an armed fault (0 while a `failAt` hook is set). Appends to `orphaned` the frames of that run
 * whose page the write drops (RAM with another machine frame or type), as the loop would report them.
 * Visits the extents in the run, not its frames.
 */
function cleanRun(p2m: P2m, gfn: Gfn, max: number, mfn: Mfn, type: P2mType, orphaned: FrameRanges): number {
  let n = Math.min(max, p2m.writesBeforeFault(), Math.max(0, p2m.frameLimit - gfn));
  if (n <= 0) return 0;
  const last = gfn + n - 1;
  for (const extent of p2m.extentsIn(gfn, last as Gfn)) {
    const from = Math.max(gfn, extent.gfn);
    if (isSpecial(extent.type)) {
      n = from - gfn;
      break;
    }
    // Inside one extent the old and the new machine frames both continue: its first frame decides.
    const oldMfn = extent.mfn + (from - extent.gfn);
    if (holdsPage(extent.type, extent.mfn) && !(oldMfn === mfn + (from - gfn) && extent.type === type)) {
      // The frames are below 2^52: they lie inside the run, which was checked.
      appendRange(orphaned, from as Gfn, Math.min(last, extent.gfn + extent.count - 1) as Gfn);
    }
  }
  return n;
}

/** The result of `addEntries`: done, or where and why it stopped (`done` frames written before it). */
export type AddEntriesResult =
  | Ok
  | (Failure<'EPERM' | 'ENOMEM' | 'EINVAL' | 'ENOENT'> & { readonly done: number; readonly gfn: Gfn });

/**
 * Writes `count` 4K entries of `type` (any type that maps a frame) from `gfn` to machine frames from
 * `mfn`, as Xen's other ways into a p2m do: `p2m_add_page` (RAM, grant maps through
 * `guest_physmap_add_entry`) and `set_typed_p2m_entry` (foreign and MMIO maps). Both refuse to
 * replace a special entry (MMIO, grant, foreign: "Don't permit unmapping grant/foreign/direct-MMIO this
 * way"): the domain crashes and the call fails with EPERM at that frame, the frames before it written.
 * `set_typed_p2m_entry` leaves the same mapping as it is, and so does this. An entry write that fails
 * (an armed fault, a frame beyond the tables) stops the call with its error. The work is bounded by
 * the extents met, never by the frames. Throws `InvalidArgumentError` for bad frames, counts or types.
 */
export function addEntries(p2m: P2m, gfn: Gfn, count: number, mfn: Mfn, type: P2mType): AddEntriesResult {
  checkFrame('gfn', gfn);
  checkFrame('mfn', mfn);
  if (!Number.isInteger(count) || count < 1 || gfn + count - 1 > MAX_FRAME || mfn + count - 1 > MAX_FRAME) {
    throw new InvalidArgumentError(
      'count',
      count,
      'a frame count >= 1 that keeps gfn and mfn + count - 1 below 2^52',
    );
  }
  checkP2mType('type', type);
  if (type === 'invalid') throw new InvalidArgumentError('type', type, 'a type that maps a frame');
  const ignored: FrameRanges = [];
  for (let k = 0; k < count; ) {
    const g = (gfn + k) as Gfn;
    const m = (mfn + k) as Mfn;
    const n = cleanRun(p2m, g, count - k, m, type, ignored);
    if (n > 0) {
      p2m.writeRun(g, n, 0, m, type);
      k += n;
      continue;
    }
    const [old] = p2m.extentsIn(g, g);
    if (old !== undefined && isSpecial(old.type)) {
      const oldMfn = old.mfn + (g - old.gfn);
      if (oldMfn !== m || old.type !== type) {
        p2m.crash(`p2m entry 0x${g.toString(16)} over ${old.type}`, g);
        return { ok: false, code: 'EPERM', done: k, gfn: g };
      }
      // The same mapping already: left as it is, to the end of the extent or of the call.
      k += Math.min(count - k, old.gfn + old.count - g);
      continue;
    }
    const written = p2m.setEntry(g, 0, m, type);
    if (!written.ok) return { ok: false, code: written.code, done: k, gfn: g };
    k += 1;
  }
  return { ok: true };
}

/** Pushes the orphan event, if any, and returns `result`. */
function finish(p2m: P2m, orphaned: FrameRanges, result: PopulateResult): PopulateResult {
  if (orphaned.length > 0) {
    p2m.events.push({ kind: 'ram-orphaned', by: 'populate', gfns: orphaned.map(([s, e]) => [s, e]) });
  }
  return result;
}

function holdsPage(type: P2mType, mfn: Mfn | undefined): boolean {
  return mfn !== undefined && isRam(type) && type !== 'ram_paged';
}
