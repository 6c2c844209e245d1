/**
 * The per-domain GFN → MFN map (Xen's `struct p2m_domain` with `get_entry`/`set_entry`), stored as
 * extents: a run of guest frames mapping a run of machine frames, one type, written as leaves of one
 * order. A 64 GiB BAR mapped in 2M leaves is one extent, not 16 Mi entries.
 */
import { RangeSet, type Result } from '@vpci/rangeset';
import { IntervalIndex } from '@vpci/rangeset/internal';
import {
  checkBoolean,
  checkFrame,
  checkOrder,
  InvalidArgumentError,
  MAX_FRAME,
  type PageOrder,
} from './errors.js';
import type { P2mEvent } from './events.js';
import { END, ExtentChunks, NONE } from './extent-chunks.js';
import type { Gfn, Mfn } from './frame.js';
import { P2mExtentRecord } from './p2m-extent-record.js';
import { INVALID_MFN, type P2mLookup } from './p2m-lookup.js';
import { P2M_TYPES, type P2mType } from './p2m-type.js';
import { IntermediateTables } from './page-tables.js';

/**
 * What `lookup` returns (Xen's `get_entry`): for a mapped gfn the leaf's type, the machine frame of
 * this gfn (leaf MFN + offset in the leaf) and the leaf's order; for a hole `mfn: undefined`
 * (INVALID_MFN), type `mmio_dm` and the order of the largest aligned block (1G, 2M, 4K) around the
 * gfn that holds no entry.
 */
export interface P2mEntry {
  /** The machine frame, or `undefined` (Xen's INVALID_MFN) for a hole. */
  readonly mfn: Mfn | undefined;
  /** The entry's type; a hole reads as `mmio_dm`. */
  readonly type: P2mType;
  /** The order of the leaf holding the gfn, or of the empty block around a hole. */
  readonly order: PageOrder;
}

/** A run of mapped guest frames: `count` frames from `gfn` map `mfn …` with one type and leaf order. */
export interface P2mExtent {
  /** First guest frame. */
  readonly gfn: Gfn;
  /** Number of frames (a multiple of `2^order`). */
  readonly count: number;
  /** Machine frame of the first guest frame; the others follow contiguously. */
  readonly mfn: Mfn;
  /** The type of every frame of the run. */
  readonly type: P2mType;
  /** The order of the leaves the run was written with. */
  readonly order: PageOrder;
}

/**
 * The outcome of one entry write: done; or, with nothing written, ENOMEM (fault injection), or the
 * error of a frame the tables cannot hold (EINVAL from EPT, ENOENT from the NPT/shadow tables).
 */
export type WriteResult = Result<'ENOMEM' | 'EINVAL' | 'ENOENT'>;

/**
 * Which of Xen's p2m implementations holds the map (`p2m_initialise`): `ept` (p2m-ept.c, Intel with
 * HAP) or `pt` (p2m-pt.c: AMD's NPT, and shadow paging on either vendor).
 */
export type P2mTables = 'ept' | 'pt';

/** The guest-physical address width of Xen's p2m: 4-level tables, 9 bits a level above 12 (48). */
export const P2M_ADDRESS_BITS = 48;

/** Options of a new `P2m`; every flag has Xen's usual HVM-with-HAP value by default. */
export interface P2mOptions {
  /** The domain is translated (HVM/PVH): it has a p2m at all. Default true. */
  readonly translated?: boolean;
  /** Hardware-assisted paging (EPT/NPT) is on; without it MMIO is mapped in 4K leaves. Default true. */
  readonly hap?: boolean;
  /** The hardware supports 2M leaves (`hap_has_2mb`). Default true. */
  readonly superpages2M?: boolean;
  /**
   * The hardware supports 1G leaves (`hap_has_1gb`). Default false. Xen's `mmio_order` never returns
   * 1G whatever this says ("don't use 1Gb pages"); it is here for completeness.
   */
  readonly superpages1G?: boolean;
  /** Machine frames of read-only MMIO (Xen's global `mmio_ro_ranges`); may be shared by domains. */
  readonly mmioRoRanges?: RangeSet<Mfn>;
  /**
   * The guest-physical address width the tables cover, 30 … 64 bits: a write of a guest frame at or
   * above 2^(addressBits - 12) fails (Xen's tables have 4 levels: `P2M_ADDRESS_BITS`). Default 64,
   * no limit below the frame space.
   */
  readonly addressBits?: number;
  /** Which implementation (default `ept`): decides the error of a write beyond `addressBits`. */
  readonly tables?: P2mTables;
  /** The event log to push to; a new empty array by default. */
  readonly events?: P2mEvent[];
  /**
   * Fault injection: called before each entry write with its 1-based number; returning true makes
   * that write fail with ENOMEM (as running out of page-table memory would) and write nothing.
   */
  readonly failAt?: (write: number) => boolean;
  /**
   * Most extents one chunk of the map holds (`ExtentChunks`), 2 … 256; default 128. For tests, which
   * make it small so that chunks are split and merged after a few writes.
   *
   * @internal
   */
  readonly extentChunkSize?: number;
}

/** Xen's numeric value of each type, for the type column (a Map: cheaper than searching the list). */
const TYPE_CODES: ReadonlyMap<string, number> = new Map(P2M_TYPES.map((type, code) => [type, code]));
const MMIO_DIRECT = TYPE_CODES.get('mmio_direct')!;
/**
 * How many changes an index by machine frame may take beyond the map's extent count with no
 * question about its type before it is dropped (`P2m.byMfnUnasked`): a floor, so that a small map
 * asked now and then is not made again at each question.
 */
const UNASKED_SLACK = 64;

/**
 * Told of a p2m's `mmio_direct` extents by machine frame as they join and leave its map
 * (`P2m.watchMmioByMfn`); inclusive machine frames.
 */
interface MmioWatcher {
  /** An extent on machine frames `[first, last]` joined the map. */
  added(first: number, last: number): void;
  /** An extent on machine frames `[first, last]` left it. */
  removed(first: number, last: number): void;
}
/**
 * What Xen's MMIO calls cost a p2m, counted as Xen's loops do the work: calls of `map_mmio_regions`
 * and `unmap_mmio_regions`, and the leaves their chunks wrote (set or cleared) by order. Xen's
 * `mmio_order` never picks 1 GiB (its test starts `if ( 0 && …`), so `leaves1G` stays 0 there.
 */
export interface MmioCost {
  /** `map_mmio_regions` calls (each does at most `MAP_MMIO_MAX_ITER` chunks). */
  mapCalls: number;
  /** `unmap_mmio_regions` calls. */
  unmapCalls: number;
  /** 4 KiB leaves written by the calls' chunks. */
  leaves4K: number;
  /** 2 MiB leaves written. */
  leaves2M: number;
  /** 1 GiB leaves written. */
  leaves1G: number;
}

const ORDER_2M = 9;
/**
 * Most pieces one write can leave: the neighbour before, three of the extent cut at the start (the
 * part before the split leaf, and the split part: with p2m-pt a 1G leaf split for a 4K write leaves 2M
 * leaves and one 2M region of 4K leaves), the new run, three of the extent cut at the end, the
 * neighbour after: 9. Typed arrays drop writes past their end silently, so this bound must hold.
 */
const MAX_PIECES = 10;

/**
 * A domain's p2m. Extents are kept sorted by first gfn (start, count, mfn, type code, order) in
 * chunks of typed arrays (`ExtentChunks`); lookup is the rangeset's interpolation-guided search over
 * the chunks then in one, O(log n) at worst, without allocation. A write replaces the extents it
 * touches by at most a few pieces (splitting a larger leaf to the written order, as EPT does, and
 * merging with neighbours that continue it), so a sequential fill rewrites one extent in place and a
 * write in the middle moves the rest of one chunk, whatever the size of the map. Neighbouring
 * extents never continue each other (same type and order, contiguous frames): the extents of a map are
 * the same whatever writes built it.
 *
 * Frames are `Gfn` / `Mfn` at the public methods and plain numbers inside (the arrays hold numbers);
 * an extent inside is named by its position in the chunks (`ExtentChunks`).
 */
export class P2m {
  /** The domain is translated (HVM/PVH). */
  readonly translated: boolean;
  /** Hardware-assisted paging is on. */
  readonly hap: boolean;
  /** 2M leaves are supported. */
  readonly superpages2M: boolean;
  /** 1G leaves are supported (never used for MMIO: Xen disables them in `mmio_order`). */
  readonly superpages1G: boolean;
  /** Machine frames of read-only MMIO, which must be mapped with 4K leaves. */
  readonly mmioRoRanges: RangeSet<Mfn>;
  /** The guest-physical address width the tables cover. */
  readonly addressBits: number;
  /** Which implementation holds the map. */
  readonly tables: P2mTables;
  /** The first guest frame the tables cannot hold: 2^(addressBits - 12), at most 2^52. */
  readonly frameLimit: number;
  /** The event log. */
  readonly events: P2mEvent[];
  /** Set once an operation crashed the domain (`domain_crash`); the p2m stays usable. */
  crashed = false;
  /** Entry writes attempted so far (the count `failAt` sees). */
  writes = 0;
  /**
   * Called before every change to the map (every entry write that reaches the map, whatever its
   * outcome there), or undefined: vpci's machine counts them so that its whole-machine invariant
   * check knows when nothing changed.
   */
  onChange: (() => void) | undefined;
  /** What `mapMmio` / `unmapMmio` (Xen's `map_mmio_regions` / `unmap_mmio_regions`) have cost so far. */
  readonly mmioCost: MmioCost = { mapCalls: 0, unmapCalls: 0, leaves4K: 0, leaves2M: 0, leaves1G: 0 };

  private readonly failAt: ((write: number) => boolean) | undefined;
  /** The write number `failNext` armed, or 0. */
  private armedFailure = 0;
  /** The extents. */
  private readonly store: ExtentChunks;
  private frames = 0;
  /**
   * Per type code, the extents of the type by machine frame (each held by its first guest frame),
   * for the types `extentsOfTypeMeetingMfns` was asked about; `splice` keeps them up to date.
   */
  private readonly byMfn: (IntervalIndex<number> | undefined)[] = [];
  /** How many types `byMfn` holds an index of (a write of a map never asked about skips them). */
  private indexedTypes = 0;
  /**
   * Per type code, the changes made to its index in `byMfn` since the type was last asked about.
   * Past the map's extent count (and `UNASKED_SLACK`) the index is dropped, to be made again at the
   * next question: keeping it up to date has then cost more than making it again would (a pass over
   * the extents), and a map whose questions stopped (the vPCI checks ask about the hardware domain's
   * while devices are assigned, then seldom or never) no longer pays an index change per extent its
   * writes split, join or remove.
   */
  private readonly byMfnUnasked = new Float64Array(P2M_TYPES.length);
  /** How many indexes by machine frame were made (`machineFrameIndexesMade`). */
  private byMfnMade = 0;
  /** Told of every `mmio_direct` extent joining and leaving the map (`watchMmioByMfn`), or undefined. */
  private mmioWatcher: MmioWatcher | undefined;
  /** Told the guest frames of every change to the map before it is made (`watchWrites`), or undefined. */
  private writeWatcher: ((first: number, last: number) => void) | undefined;
  /** The L1 and L2 tables that exist: how a walk over a hole ends (the order `lookup` reports). */
  private readonly pageTables = new IntermediateTables();
  // Scratch space for the pieces of one write (instance state, reused to avoid allocation).
  private readonly pStart = new Float64Array(MAX_PIECES);
  private readonly pCount = new Float64Array(MAX_PIECES);
  private readonly pMfn = new Float64Array(MAX_PIECES);
  private readonly pType = new Uint8Array(MAX_PIECES);
  private readonly pOrder = new Uint8Array(MAX_PIECES);
  /** The scratch arrays, as `ExtentChunks.replace` takes them. */
  private readonly pieces = {
    start: this.pStart,
    count: this.pCount,
    mfn: this.pMfn,
    type: this.pType,
    order: this.pOrder,
  };

  /** A new, empty p2m. Throws `InvalidArgumentError` for a flag that is not a boolean. */
  constructor(options: P2mOptions = {}) {
    const { translated = true, hap = true, superpages2M = true, superpages1G = false } = options;
    const { addressBits = 64, tables = 'ept', extentChunkSize } = options;
    checkBoolean('translated', translated);
    checkBoolean('hap', hap);
    checkBoolean('superpages2M', superpages2M);
    checkBoolean('superpages1G', superpages1G);
    // From 30 bits the limit is a multiple of every leaf size: a leaf is wholly below it or above.
    if (!Number.isInteger(addressBits) || addressBits < 30 || addressBits > 64) {
      throw new InvalidArgumentError('addressBits', addressBits, 'an integer in 30 … 64');
    }
    if (tables !== 'ept' && tables !== 'pt')
      throw new InvalidArgumentError('tables', tables, "'ept' or 'pt'");
    if (options.mmioRoRanges !== undefined && !(options.mmioRoRanges instanceof RangeSet)) {
      throw new InvalidArgumentError('mmioRoRanges', options.mmioRoRanges, 'a RangeSet of machine frames');
    }
    if (options.failAt !== undefined && typeof options.failAt !== 'function') {
      throw new InvalidArgumentError('failAt', options.failAt, 'a function (write number) => boolean');
    }
    this.translated = translated;
    this.hap = hap;
    this.superpages2M = superpages2M;
    this.superpages1G = superpages1G;
    this.addressBits = addressBits;
    this.tables = tables;
    this.frameLimit = Math.min(2 ** (addressBits - 12), MAX_FRAME + 1);
    this.mmioRoRanges = options.mmioRoRanges ?? new RangeSet<Mfn>({ name: 'mmio_ro_ranges' });
    this.events = options.events ?? [];
    this.failAt = options.failAt;
    this.store = new ExtentChunks(extentChunkSize, MAX_PIECES);
  }

  /** Number of guest frames mapped (holes excluded). */
  get mappedFrames(): number {
    return this.frames;
  }

  /** Number of extents stored (the memory the map costs is proportional to it). */
  get extentCount(): number {
    return this.store.size;
  }

  /** Xen's `get_entry(gfn)`; see `P2mEntry`. Throws for a gfn that is not a frame number. */
  lookup(gfn: Gfn): P2mEntry {
    checkFrame('gfn', gfn);
    const at = this.store.locate(gfn);
    const data = this.store.data;
    if (at >= 0 && gfn < data[at]! + data[at + 1]!) {
      return {
        mfn: (data[at + 2]! + (gfn - data[at]!)) as Mfn,
        type: P2M_TYPES[data[at + 3]! >> 8] as P2mType,
        order: (data[at + 3]! & 0xff) as PageOrder,
      };
    }
    // FIXME (Xen, p2m-pt.c p2m_pt_get_entry, an XXX there; ept_get_entry does the same): a gfn with
    // nothing mapped reads as mmio_dm, "for compatibility with the old model, where anything not
    // marked as RAM was considered to be emulated MMIO space"; Xen means to return p2m_invalid once
    // MMIO regions are registered explicitly. Callers treat mmio_dm and invalid alike as holes.
    return { mfn: undefined, type: 'mmio_dm', order: this.holeOrder(gfn) };
  }

  /**
   * `lookup` without allocating: writes the answer into `into` (caller-owned, reusable) and returns
   * whether the gfn is mapped. The same facts as `lookup` gives: for a hole `mapped` is false, `mfn`
   * is `INVALID_MFN`, `type` is `mmio_dm` and `order` the empty block's. Throws for a gfn that is not
   * a frame number.
   */
  lookupInto(gfn: Gfn, into: P2mLookup): boolean {
    checkFrame('gfn', gfn);
    // The extent's first gfn, count, mfn and `type * 256 + order` (`ExtentChunks`).
    const at = this.store.locate(gfn);
    const data = this.store.data;
    if (at >= 0 && gfn < data[at]! + data[at + 1]!) {
      // The offset is inside the extent, whose machine frames were checked when it was written.
      into.mapped = true;
      into.mfn = (data[at + 2]! + (gfn - data[at]!)) as Mfn;
      into.type = P2M_TYPES[data[at + 3]! >> 8] as P2mType;
      into.order = (data[at + 3]! & 0xff) as PageOrder;
      return true;
    }
    // A hole, read as `lookup` reads it (see the FIXME there).
    into.mapped = false;
    into.mfn = INVALID_MFN;
    into.type = 'mmio_dm';
    into.order = this.holeOrder(gfn);
    return false;
  }

  /** The mapped runs in gfn order. */
  *extents(): Generator<P2mExtent, void, undefined> {
    for (let i = this.store.first(); i !== END; i = this.store.next(i)) yield this.extentAt(i);
  }

  /**
   * The extents that hold a frame of `[first, last]` (inclusive), in gfn order, whole (not clipped),
   * as a list. Found by search, so asking about a few frames of a large map costs O(log n).
   */
  extentsIn(first: Gfn, last: Gfn): P2mExtent[] {
    const store = this.store;
    const out: P2mExtent[] = [];
    for (let k = this.firstExtentMeeting(first, last); k !== END && store.start(k) <= last; k = store.next(k))
      out.push(this.extentAt(k));
    return out;
  }

  /**
   * `extentsIn` written into `into` from place `at` on, each extent into the record there (made only
   * where `into` has none yet); returns the place after the last one written. For a caller that asks
   * again and again and keeps no extent past its next question: no object is made per extent.
   */
  extentsInto(first: Gfn, last: Gfn, into: P2mExtentRecord[], at: number): number {
    const store = this.store;
    let n = at;
    for (
      let k = this.firstExtentMeeting(first, last);
      k !== END && store.start(k) <= last;
      k = store.next(k)
    ) {
      let record = into[n];
      if (record === undefined) {
        record = new P2mExtentRecord();
        into[n] = record;
      }
      n++;
      record.gfn = store.start(k) as Gfn;
      record.count = store.count(k);
      record.mfn = store.mfn(k) as Mfn;
      record.type = P2M_TYPES[store.type(k)] as P2mType;
      record.order = store.order(k) as PageOrder;
    }
    return n;
  }

  /** The first extent holding a frame of `[first, last]` or after it (`END`: none), the frames checked. */
  private firstExtentMeeting(first: Gfn, last: Gfn): number {
    checkFrame('first', first);
    checkFrame('last', last);
    const store = this.store;
    const i = store.find(first);
    return i === NONE ? store.first() : store.start(i) + store.count(i) > first ? i : store.next(i);
  }

  /**
   * The extents of one type in gfn order, as a list. Extents of other types are passed over without
   * making objects for them (a checker asks for a domain's MMIO runs next to its RAM).
   */
  extentsOfType(type: P2mType): P2mExtent[] {
    const code = TYPE_CODES.get(type);
    if (code === undefined)
      throw new InvalidArgumentError('type', type, `a p2m type (${P2M_TYPES.join(', ')})`);
    const out: P2mExtent[] = [];
    const store = this.store;
    for (let i = store.first(); i !== END; i = store.next(i))
      if (store.type(i) === code) out.push(this.extentAt(i));
    return out;
  }

  /**
   * The extents of one type whose machine frames meet `[first, last]` (inclusive; any numbers, a
   * range past the last machine frame meets nothing there), in gfn order. Found in an index of the
   * type's extents by machine frame, made the first time the type is asked about (a pass over the
   * map) and from then on kept up to date by every write, as the extents are split, joined and
   * removed: a question costs O(log n + found), whatever the writes between two questions (a
   * checker asks which mappings of a domain reach a host BAR that moved, after nearly every write
   * of the hardware domain's map). An index that took more changes since its last question than
   * the map has extents (and a few more) is dropped and made again at the next one, so the upkeep
   * between two questions costs at most about what making it again does.
   */
  extentsOfTypeMeetingMfns(type: P2mType, first: number, last: number): P2mExtent[] {
    const code = TYPE_CODES.get(type);
    if (code === undefined)
      throw new InvalidArgumentError('type', type, `a p2m type (${P2M_TYPES.join(', ')})`);
    const found = this.machineFrameIndex(code).meeting(first, last, []);
    // The index holds each extent by its first guest frame, which no other extent shares.
    if (found.length > 1) found.sort((a, b) => a - b);
    const out: P2mExtent[] = [];
    for (let k = 0; k < found.length; k++) out.push(this.extentAt(this.store.find(found[k]!)));
    return out;
  }

  /**
   * Tells `watcher` of every `mmio_direct` extent by machine frame: those the map holds now, then each
   * as a write adds or removes it (a split or a join is the old extents removed and the new ones
   * added). A machine keeps one index of all its p2ms' MMIO mappings by machine frame with it, so a
   * check of who maps a moved host page asks the p2ms that do instead of every domain's. One watcher
   * per p2m: a second replaces the first.
   */
  watchMmioByMfn(watcher: {
    added(first: number, last: number): void;
    removed(first: number, last: number): void;
  }): void {
    const code = TYPE_CODES.get('mmio_direct')!;
    // `reindex` runs on every write while there is a watcher (it tells it there); the index by
    // machine frame of mmio_direct is made only if `extentsOfTypeMeetingMfns` asks about the type: a
    // machine watches every p2m, and without questions (checks off, or a direct `Machine`) keeping it
    // cost an index insertion or removal per extent change, a tenth of a decoding toggle.
    this.mmioWatcher = watcher;
    const store = this.store;
    for (let i = store.first(); i !== END; i = store.next(i))
      if (store.type(i) === code) watcher.added(store.mfn(i), store.mfn(i) + store.count(i) - 1);
  }

  /**
   * Tells `watcher` the guest frames `[first, last]` (inclusive) of every write that reaches the map
   * (the frames it replaces, whatever it leaves there), before the write is made: a caller that
   * compares maps line by line (`vpci-replay --compare`) looks again only at the frames written
   * since. One watcher per p2m: a second replaces the first, `undefined` removes it.
   */
  watchWrites(watcher: ((first: number, last: number) => void) | undefined): void {
    this.writeWatcher = watcher;
  }

  /**
   * The index by machine frame of the extents of type `code`, made on the first question (and on
   * the first after it was dropped, `keptIndex`).
   */
  private machineFrameIndex(code: number): IntervalIndex<number> {
    this.byMfnUnasked[code] = 0;
    let index = this.byMfn[code];
    if (index === undefined) {
      index = new IntervalIndex<number>();
      const store = this.store;
      for (let i = store.first(); i !== END; i = store.next(i))
        if (store.type(i) === code)
          index.add(store.mfn(i), store.mfn(i) + store.count(i) - 1, store.start(i));
      this.byMfn[code] = index;
      this.indexedTypes++;
      this.byMfnMade++;
    }
    return index;
  }

  private extentAt(i: number): P2mExtent {
    const store = this.store;
    return {
      gfn: store.start(i) as Gfn,
      count: store.count(i),
      mfn: store.mfn(i) as Mfn,
      type: P2M_TYPES[store.type(i)] as P2mType,
      order: store.order(i) as PageOrder,
    };
  }

  /**
   * Xen's `p2m->set_entry` for one leaf: map the `2^order` frames from `gfn` to `mfn …` with `type`.
   * A larger leaf that holds them is split to `order` first (EPT splits down to the written level).
   * `gfn` and `mfn` must be aligned to `order`; `type` must not be a hole type (use `clearEntry`).
   */
  setEntry(gfn: Gfn, order: PageOrder, mfn: Mfn, type: P2mType): WriteResult {
    checkOrder('order', order);
    this.checkLeaf('gfn', gfn, order);
    this.checkLeaf('mfn', mfn, order);
    const code = TYPE_CODES.get(type);
    if (code === undefined || type === 'invalid' || type === 'mmio_dm') {
      throw new InvalidArgumentError('type', type, 'a type that maps a frame (clear holes with clearEntry)');
    }
    if (gfn >= this.frameLimit) return this.beyondWidth();
    if (this.injectFailure()) return { ok: false, code: 'ENOMEM' };
    this.write(gfn, 1 << order, order, mfn, code);
    return { ok: true };
  }

  /** Xen's `set_entry` with INVALID_MFN and `p2m_invalid`: the `2^order` frames from `gfn` become a hole. */
  clearEntry(gfn: Gfn, order: PageOrder): WriteResult {
    checkOrder('order', order);
    this.checkLeaf('gfn', gfn, order);
    if (gfn >= this.frameLimit) return this.beyondWidth();
    if (this.injectFailure()) return { ok: false, code: 'ENOMEM' };
    this.write(gfn, 1 << order, order, -1, 0);
    return { ok: true };
  }

  /**
   * The refusal of a write at or beyond `frameLimit`, before any table is touched (so it is no write
   * `failAt` counts). EPT: `ept_set_entry` returns -EINVAL when
   * `gfn >> ((ept->wl + 1) * EPT_TABLE_ORDER)` is non-zero. NPT/shadow: `p2m_pt_set_entry`'s first `p2m_next_level` finds the
   * L4 index `gfn >> 27` past the 512 entries (`p2m_find_entry` gives NULL) and returns -ENOENT.
   */
  private beyondWidth(): WriteResult {
    return { ok: false, code: this.tables === 'ept' ? 'EINVAL' : 'ENOENT' };
  }

  /**
   * Whether `failAt` is armed. Batched writes (`writeRun`) are only used when it is not, so the hook
   * sees every write Xen would make, one by one.
   */
  get faultInjection(): boolean {
    return this.failAt !== undefined || this.armedFailure !== 0;
  }

  /**
   * How many indexes by machine frame `extentsOfTypeMeetingMfns` has made so far, one per type at
   * its first question and one again after an index was dropped (`keptIndex`). For the tests of
   * when an index is kept.
   *
   * @internal
   */
  get machineFrameIndexesMade(): number {
    return this.byMfnMade;
  }

  /**
   * How many entry writes from now are sure to succeed as far as fault injection goes: unbounded
   * (`Infinity`) when nothing is armed, the writes before the shot `failNext` armed, and 0 when a
   * `failAt` hook is set (it must see every write one by one). Lets a batching loop write a run at
   * once up to the failing write.
   *
   * @internal
   */
  writesBeforeFault(): number {
    if (this.failAt !== undefined) return 0;
    return this.armedFailure === 0 ? Number.POSITIVE_INFINITY : this.armedFailure - this.writes - 1;
  }

  /**
   * One-shot fault injection, armed at any time (a trace's `fault` line): the `n`-th entry write from
   * now (1 = the next) fails with ENOMEM; the writes before and after it succeed. Arming again replaces
   * the previous shot. Throws for an `n` that is not a positive safe integer.
   */
  failNext(n: number): void {
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError('n', n, 'a write count >= 1 (1 = the next entry write)');
    }
    this.armedFailure = this.writes + n;
  }

  /**
   * How many frames from `gfn`, at most `max`, are holes (nothing mapped) the tables can hold: the
   * run ends at the next extent or at `frameLimit`. Unchecked: for the batching loops, whose
   * arguments are already checked.
   *
   * @internal
   */
  holeRun(gfn: Gfn, max: number): number {
    const store = this.store;
    const i = store.find(gfn);
    if (i >= 0 && gfn < store.start(i) + store.count(i)) return 0;
    // Past the last extent the hole ends with what the tables hold, not at infinity.
    const after = i === NONE ? store.first() : store.next(i);
    const next = after === END ? this.frameLimit : store.start(after);
    return Math.max(0, Math.min(max, next - gfn));
  }

  /**
   * How many frames from `gfn` (2M aligned), at most `max`, lie before the first 2M region that has an
   * L1 table (kept from an earlier 4K entry): a 2M chunk there finds a 4K hole and is retried at 4K.
   * Unchecked, as `holeRun`.
   *
   * @internal
   */
  unsplitRun(gfn: Gfn, max: number): number {
    // Literal 512s: `2 ** ORDER_2M` is a Math.pow call at run time (V8 folds literals only).
    const first = gfn / 512;
    const end = first + Math.ceil(max / 512);
    return Math.min(max, (this.pageTables.firstL1(first, end) - first) * 512);
  }

  /**
   * How many frames from `gfn`, at most `max`, one 4K-leaf extent of `type` maps to `mfn …` (0 when
   * `gfn` is not in such an extent). Unchecked, as `holeRun`.
   *
   * @internal
   */
  order0Run(gfn: Gfn, max: number, mfn: Mfn, type: P2mType): number {
    return this.leafRun(gfn, max, mfn, type, 0);
  }

  /**
   * How many frames from `gfn`, at most `max`, one extent of `type` written in leaves of `order` maps
   * to `mfn …` (0 when `gfn` is not in such an extent). Unchecked, as `holeRun`.
   *
   * @internal
   */
  leafRun(gfn: Gfn, max: number, mfn: Mfn, type: P2mType, order: PageOrder): number {
    const store = this.store;
    const i = store.find(gfn);
    if (i < 0 || gfn >= store.start(i) + store.count(i)) return 0;
    if (store.order(i) !== order || store.type(i) !== TYPE_CODES.get(type)) return 0;
    if (store.mfn(i) + (gfn - store.start(i)) !== mfn) return 0;
    return Math.min(max, store.start(i) + store.count(i) - gfn);
  }

  /**
   * How many frames from `gfn`, at most `max`, consecutive extents of `type` in leaves of `minOrder`
   * or larger map to `mfn …` without a gap (0 when `gfn` is not in such an extent): over them each
   * chunk of `minOrder` finds its own mapping and `set_typed_p2m_entry` writes nothing. Walks the
   * extents of the run, so its cost is the extents met, not the frames. Unchecked, as `holeRun`.
   *
   * @internal
   */
  sameMappingRun(gfn: Gfn, max: number, mfn: Mfn, type: P2mType, minOrder: PageOrder): number {
    const store = this.store;
    const code = TYPE_CODES.get(type);
    let i = store.find(gfn);
    if (i < 0) return 0;
    let at = gfn as number;
    const end = gfn + max;
    while (at < end && i !== END && store.start(i) <= at && at < store.start(i) + store.count(i)) {
      if (store.order(i) < minOrder || store.type(i) !== code) break;
      if (store.mfn(i) + (at - store.start(i)) !== mfn + (at - gfn)) break;
      at = store.start(i) + store.count(i);
      i = store.next(i);
    }
    return Math.min(max, at - gfn);
  }

  /**
   * `count` 4K leaf writes in a row from `gfn`: `writeRun(gfn, count, 0, mfn, type)`.
   *
   * @internal
   */
  writeRun4K(gfn: Gfn, count: number, mfn: Mfn | undefined, type: P2mType = 'mmio_direct'): void {
    this.writeRun(gfn, count, 0, mfn, type);
  }

  /**
   * `count / 2^order` leaf writes of `order` in a row from `gfn`, to `mfn …` with `type`, or clearing
   * them when `mfn` is undefined, applied as one run: the same extents as writing them one by one
   * (each merges with the run before it, and splits only the larger leaves at the two ends), and as
   * many writes counted. For the batching loops; the caller checks that each write is one Xen would
   * make and succeed (aligned, below `frameLimit`) and that no fault injection is armed.
   *
   * @internal
   */
  writeRun(
    gfn: Gfn,
    count: number,
    order: PageOrder,
    mfn: Mfn | undefined,
    type: P2mType = 'mmio_direct',
  ): void {
    this.writes += count / (1 << order);
    if (mfn === undefined) this.write(gfn, count, order, -1, 0);
    else this.write(gfn, count, order, mfn, TYPE_CODES.get(type)!);
  }

  /** Marks the domain crashed (Xen's `domain_crash`) and logs why. */
  crash(reason: string, gfn: Gfn): void {
    this.crashed = true;
    this.events.push({ kind: 'domain-crashed', reason, gfn });
  }

  private checkLeaf(argument: string, frame: number, order: PageOrder): void {
    checkFrame(argument, frame);
    const size = 1 << order;
    // A frame aligned to 2^order never runs past MAX_FRAME: 2^52 is a multiple of every leaf size.
    // Aligned: no float modulo (a C call), the division by a power of two is exact.
    if (Math.floor(frame / size) * size !== frame) {
      throw new InvalidArgumentError(
        argument,
        frame,
        `a frame aligned to order ${order} (a multiple of ${size})`,
      );
    }
  }

  private injectFailure(): boolean {
    this.writes++;
    if (this.armedFailure === this.writes) {
      this.armedFailure = 0;
      return true;
    }
    return this.failAt?.(this.writes) === true;
  }

  /**
   * The order of a hole at `gfn`: the level at which Xen's walk meets an empty entry, which depends on
   * the intermediate tables that exist, not on what is mapped around it (a 2M region whose 4K entries
   * were all cleared keeps its L1 table and reads as order 0).
   */
  private holeOrder(gfn: number): PageOrder {
    return this.pageTables.holeOrder(gfn);
  }

  private piece(k: number, start: number, count: number, mfn: number, type: number, order: number): number {
    if (count <= 0) return k;
    if (k > 0) {
      const p = k - 1;
      if (
        this.pStart[p] + this.pCount[p] === start &&
        this.pType[p] === type &&
        this.pOrder[p] === order &&
        this.pMfn[p] + this.pCount[p] === mfn
      ) {
        this.pCount[p] += count;
        return k;
      }
    }
    this.pStart[k] = start;
    this.pCount[k] = count;
    this.pMfn[k] = mfn;
    this.pType[k] = type;
    this.pOrder[k] = order;
    return k + 1;
  }

  /** Pushes the part of extent `i` in `[from, to]` as pieces; frames of the leaf holding `cut` drop to `order`. */
  private remnant(k: number, i: number, from: number, to: number, cut: number, order: number): number {
    const store = this.store;
    const mfn = store.mfn(i) + (from - store.start(i));
    return this.splitPieces(k, from, to, mfn, store.type(i), store.order(i), cut, order);
  }

  /**
   * Pushes frames `[from, to]` (to `mfn …`, leaves of `own`) as pieces, the leaf of `own` holding `cut`
   * split down to `order`. EPT splits that leaf straight to the target level, every entry of every new
   * table (`ept_split_super_page` recurses over all 512): a 1G leaf becomes 4K leaves throughout.
   * p2m-pt splits one level per step of the walk (`p2m_next_level`): a 1G leaf becomes 2M leaves and
   * only the one holding `cut` goes on to 4K.
   */
  private splitPieces(
    k: number,
    from: number,
    to: number,
    mfn: number,
    type: number,
    own: number,
    cut: number,
    order: number,
  ): number {
    if (own <= order) return this.piece(k, from, to - from + 1, mfn, type, own);
    const size = 1 << own; // orders are 0, 9 and 18 (`**` would be a Math.pow call)
    const leafStart = Math.floor(cut / size) * size; // no float modulo (a C call)
    const leafEnd = leafStart + size - 1;
    const a = Math.max(from, leafStart);
    const b = Math.min(to, leafEnd);
    let r = this.piece(k, from, Math.min(to, leafStart - 1) - from + 1, mfn, type, own);
    if (a <= b) {
      const step = this.tables === 'pt' && own > ORDER_2M && order < ORDER_2M ? ORDER_2M : order;
      r =
        step === order
          ? this.piece(r, a, b - a + 1, mfn + (a - from), type, order)
          : this.splitPieces(r, a, b, mfn + (a - from), type, step, cut, order);
    }
    const c = Math.max(from, leafEnd + 1);
    return this.piece(r, c, to - c + 1, mfn + (c - from), type, own);
  }

  /** Replaces frames `[gfn, gfn + count - 1]` by a run to `mfn` (or a hole when `mfn` is -1). */
  private write(gfn: number, count: number, order: PageOrder, mfn: number, type: number): void {
    this.onChange?.();
    this.writeWatcher?.(gfn, gfn + count - 1);
    this.pageTables.written(gfn, count, order);
    const end = gfn + count - 1;
    const store = this.store;
    // Positions compare as the extents do; `END` is past the last.
    let lo = store.find(gfn);
    if (lo === NONE) lo = store.first();
    else if (store.start(lo) + store.count(lo) - 1 < gfn) lo = store.next(lo);
    const last = store.find(end);
    const hi = last === NONE ? store.first() : store.next(last); // extents [lo, hi) meet the written frames
    let removed = 0;
    let taken = 0;
    for (let i = lo; i < hi; i = store.next(i)) {
      removed += store.count(i);
      taken++;
    }
    let k = 0;
    let from = lo;
    // The first piece starts where extent lo starts if it begins before gfn (its remnant: split leaves
    // may now continue the neighbour before, as {512-599} does once a 2M leaf at 512 is split to 4K
    // next to a 4K run ending at 511), else at gfn if the write maps anything; a clear of frames
    // starting at an extent start leaves no piece there.
    const cut = lo < hi && store.start(lo) < gfn;
    const first = cut ? store.start(lo) : mfn >= 0 ? gfn : -1;
    const before = first >= 0 ? store.prev(lo) : NONE;
    if (before !== NONE && store.start(before) + store.count(before) === first) {
      // The neighbour before ends just below the first piece: take it in, the piece may continue it.
      from = before;
      removed += store.count(before);
      taken++;
      k = this.piece(
        k,
        store.start(before),
        store.count(before),
        store.mfn(before),
        store.type(before),
        store.order(before),
      );
    }
    if (cut) k = this.remnant(k, lo, store.start(lo), gfn - 1, gfn, order);
    if (mfn >= 0) k = this.piece(k, gfn, count, mfn, type, order);
    if (lo < hi) {
      const lastEnd = store.start(last) + store.count(last) - 1;
      if (lastEnd > end) k = this.remnant(k, last, end + 1, lastEnd, end, order);
    }
    if (k > 0 && hi !== END && store.start(hi) === this.pStart[k - 1] + this.pCount[k - 1]) {
      // The neighbour after starts just past the last piece: take it in, it may continue it.
      removed += store.count(hi);
      taken++;
      k = this.piece(k, store.start(hi), store.count(hi), store.mfn(hi), store.type(hi), store.order(hi));
    }
    let kept = 0;
    for (let p = 0; p < k; p++) kept += this.pCount[p];
    this.frames += kept - removed;
    if (this.indexedTypes > 0 || this.mmioWatcher !== undefined) this.reindex(from, taken, k);
    store.replace(from, taken, this.pieces, k);
  }

  /**
   * The indexes by machine frame brought from the `taken` extents from position `from` to the `k`
   * scratch pieces that replace them: both lists are in gfn order, and an extent a piece repeats (the
   * same first guest frame, count, machine frame and type: a neighbour taken in and put back) stays
   * as it is.
   */
  private reindex(from: number, taken: number, k: number): void {
    const { pStart, pCount, pMfn, pType } = this;
    const store = this.store;
    let p = 0;
    for (let i = from, left = taken; left > 0; i = store.next(i), left--) {
      const start = store.start(i);
      for (; p < k && pStart[p]! < start; p++) this.indexed(pType[p]!, pMfn[p]!, pCount[p]!, pStart[p]!);
      const count = store.count(i);
      const mfn = store.mfn(i);
      const type = store.type(i);
      if (p < k && pStart[p] === start && pCount[p] === count && pMfn[p] === mfn && pType[p] === type) {
        p++;
        continue;
      }
      this.keptIndex(type)?.remove(mfn, mfn + count - 1, start);
      if (type === MMIO_DIRECT) this.mmioWatcher?.removed(mfn, mfn + count - 1);
    }
    for (; p < k; p++) this.indexed(pType[p]!, pMfn[p]!, pCount[p]!, pStart[p]!);
  }

  /** An extent added to the index by machine frame of its type, if kept, and told to the watcher. */
  private indexed(type: number, mfn: number, count: number, start: number): void {
    this.keptIndex(type)?.add(mfn, mfn + count - 1, start);
    if (type === MMIO_DIRECT) this.mmioWatcher?.added(mfn, mfn + count - 1);
  }

  /**
   * The index by machine frame of type `code` for one change, or undefined: none is kept, or it has
   * taken more changes since its type was last asked about than making it again costs, and is
   * dropped now (`byMfnUnasked`).
   */
  private keptIndex(code: number): IntervalIndex<number> | undefined {
    const index = this.byMfn[code];
    if (index === undefined) return undefined;
    if (++this.byMfnUnasked[code]! <= this.store.size + UNASKED_SLACK) return index;
    this.byMfn[code] = undefined;
    this.indexedTypes--;
    return undefined;
  }
}
