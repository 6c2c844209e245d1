/**
 * Pinned cache attributes: guest-frame ranges whose memory type the toolstack has fixed
 * (`XEN_DMOP_pin_memory_cacheattr`, formerly `XEN_DOMCTL_pin_mem_cacheattr`), kept as Xen's
 * `hvm_set_mem_pinned_cacheattr` keeps them and looked up as `hvm_get_mem_pinned_cacheattr`
 * (xen/arch/x86/hvm/mtrr.c).
 */

import type { Failure, Ok } from '@vpci/rangeset';
import { checkEmtDomain, type EmtDomain } from './emt-domain.js';
import { checkFrame, checkOrder, InvalidArgumentError, type PageOrder } from './errors.js';
import type { Gfn } from './frame.js';
import { checkMemoryType, decodePatType, type MemoryType } from './memory-type.js';

/** One pinned range: the guest frames `[gfnStart, gfnEnd]` (inclusive) have memory type `type`. */
export interface PinnedRange {
  /** First guest frame of the range. */
  readonly gfnStart: Gfn;
  /** Last guest frame of the range (inclusive), `>= gfnStart`. */
  readonly gfnEnd: Gfn;
  /** The pinned type; any memory type, UC- included (Xen stores UC- in the EPT leaf as UC). */
  readonly type: MemoryType;
}

/**
 * Outcome of a pinned-range lookup for a block of frames.
 * - `full`: a range holds the whole block; its `type` applies (Xen returns the type).
 * - `partial`: a range covers part of the block only; the block must be split (`-EADDRNOTAVAIL`).
 * - `none`: no range touches the block (`-ENXIO`).
 */
export type PinnedLookup =
  | { readonly match: 'full'; readonly type: MemoryType }
  | { readonly match: 'partial'; readonly split: true }
  | { readonly match: 'none' };

const PARTIAL: PinnedLookup = Object.freeze({ match: 'partial', split: true });
const NONE: PinnedLookup = Object.freeze({ match: 'none' });

/**
 * Validates a pinned list and returns a frozen copy: each range well formed, and no two ranges sharing
 * a frame (Xen refuses an overlapping pin with `-EBUSY`, so its list never holds one). Throws naming
 * `ranges[i]` (or its field).
 */
export function checkPinnedRanges(ranges: readonly PinnedRange[]): readonly PinnedRange[] {
  if (!Array.isArray(ranges)) {
    throw new InvalidArgumentError('ranges', ranges, 'an array of { gfnStart, gfnEnd, type }');
  }
  const copy = ranges.map((range, i) => {
    if (typeof range !== 'object' || range === null) {
      throw new InvalidArgumentError(`ranges[${i}]`, range, 'a { gfnStart, gfnEnd, type } object');
    }
    checkFrame(`ranges[${i}].gfnStart`, range.gfnStart);
    checkFrame(`ranges[${i}].gfnEnd`, range.gfnEnd);
    if (range.gfnEnd < range.gfnStart) {
      throw new InvalidArgumentError(
        `ranges[${i}].gfnEnd`,
        range.gfnEnd,
        `a frame >= gfnStart (${range.gfnStart})`,
      );
    }
    checkMemoryType(`ranges[${i}].type`, range.type);
    return Object.freeze({ gfnStart: range.gfnStart, gfnEnd: range.gfnEnd, type: range.type });
  });
  for (let i = 0; i < copy.length; i++) {
    for (let j = 0; j < i; j++) {
      if (copy[j]!.gfnStart <= copy[i]!.gfnEnd && copy[i]!.gfnStart <= copy[j]!.gfnEnd) {
        throw new InvalidArgumentError(
          `ranges[${i}]`,
          `[${copy[i]!.gfnStart}, ${copy[i]!.gfnEnd}]`,
          `a range sharing no frame with ranges[${j}] [${copy[j]!.gfnStart}, ${copy[j]!.gfnEnd}]`,
        );
      }
    }
  }
  return Object.freeze(copy);
}

/**
 * The pinned type of the naturally aligned `2^order`-frame block holding `gfn`. Scans `ranges` in
 * order (Xen's list order: the newest pin first) and stops at the first range that touches the block:
 * it holds the whole block → `full`, it holds part → `partial`. No range touches it → `none`.
 */
export function getPinnedCacheAttr(ranges: readonly PinnedRange[], gfn: Gfn, order: PageOrder): PinnedLookup {
  const list = checkPinnedRanges(ranges);
  checkFrame('gfn', gfn);
  checkOrder('order', order);
  const size = 2 ** order;
  const first = gfn - (gfn % size);
  const last = first + size - 1;
  for (const range of list) {
    if (first >= range.gfnStart && last <= range.gfnEnd) return { match: 'full', type: range.type };
    if (first <= range.gfnEnd && last >= range.gfnStart) return PARTIAL;
  }
  return NONE;
}

/** Most ranges a domain may pin (Xen: "The limit is arbitrary."); pinning one more is ENOSPC. */
export const MAX_PINNED_RANGES = 64;

/**
 * The raw `type` that deletes a range instead of pinning one (`XEN_DMOP_DELETE_MEM_CACHEATTR`, `~0u`):
 * `pin(s, e, DELETE_MEM_CACHEATTR)` is `unpin(s, e)`, as one Xen call does both.
 */
export const DELETE_MEM_CACHEATTR = 0xffff_ffff;

/**
 * The type `pin` takes: a memory-type name, or the raw 32-bit `type` field of the call (a trace
 * records that): 0 UC, 1 WC, 4 WT, 5 WP, 6 WB, 7 UC-, `DELETE_MEM_CACHEATTR`; any other value is one
 * Xen refuses with EINVAL.
 */
export type PinType = MemoryType | number;

/** What `PinnedCacheAttrs` is made with. */
export interface PinnedCacheAttrsOptions {
  /**
   * The domain's I/O facts, read at every `pin` (Xen reads them at the time of the call): pinning UC,
   * UC- or WC needs an IOMMU, I/O resources or a PCI device (`cache_flush_permitted`). Default: a
   * domain with an IOMMU, which may pin any type.
   */
  readonly domain?: EmtDomain;
  /**
   * The host's physical address width (Xen's `paddr_bits`), 32 … 52, default 52. Xen refuses
   * (EINVAL) a range whose frame numbers have a bit at or above it: it shifts the *frame* numbers
   * by the address width, so frames up to 2^paddrBits - 1 pass. With the default, every frame does.
   */
  readonly paddrBits?: number;
}

/**
 * The outcome of `unpin` (and of `pin` with `DELETE_MEM_CACHEATTR`).
 * - `{ ok: true, action: 'removed', range, flush }`: the range was removed. `flush` is true when
 *   its type was WB, WP or WT (Xen: "we don't know what the cachability is going to be").
 * - `{ ok: false, code: 'ENOENT', gfnStart, gfnEnd }`: no range is exactly `[gfnStart, gfnEnd]`
 *   (a range that only overlaps it does not count).
 * - `{ ok: false, code: 'EINVAL', reason: 'address-width', paddrBits }`: a frame has a bit at or
 *   above `paddrBits`.
 *
 * `flush`, wherever it appears, says what Xen does afterwards: true → `memory_type_changed(d)`
 * (flush the caches and recompute every memory type), false → `p2m_memory_type_changed(d)`
 * (recompute only). Outcomes without it returned before that, as in Xen.
 */
export type UnpinResult =
  | (Ok & { readonly action: 'removed'; readonly range: PinnedRange; readonly flush: boolean })
  | (Failure<'ENOENT'> & { readonly gfnStart: Gfn; readonly gfnEnd: Gfn })
  | AddressWidthError;

/** Xen's EINVAL for a frame number with a bit at or above the host's address width. */
export interface AddressWidthError extends Failure<'EINVAL'> {
  /** Why: a frame number is too wide. */
  readonly reason: 'address-width';
  /** The width the frames were checked against. */
  readonly paddrBits: number;
}

/**
 * The outcome of `pin`; a failed call changed nothing. `flush` as in `UnpinResult` (true for UC, UC-
 * and WC, even when the call then fails with EBUSY or ENOSPC: Xen's error paths reach its flush too).
 * - `{ ok: true, action: 'added', range, flush }`: a new range, first in the list (newest first).
 * - `{ ok: true, action: 'updated', range, previous, flush }`: a range with exactly these bounds
 *   existed; its type is now `range.type` (it was `previous`) and it keeps its place in the list.
 * - `{ ok: false, code: 'EBUSY', conflict, flush }`: `conflict` shares a frame with the range without
 *   having the same bounds (the first such in list order).
 * - `{ ok: false, code: 'ENOSPC', limit, flush }`: the list already holds `limit` (64) ranges.
 * - `{ ok: false, code: 'EPERM', type }`: UC, UC- or WC for a domain with no IOMMU, no I/O resources
 *   and no PCI device.
 * - `{ ok: false, code: 'EINVAL', reason: 'type', type }`: a raw type Xen does not know (2, 3, 8 …).
 * - `{ ok: false, code: 'EINVAL', reason: 'address-width', paddrBits }`: see `UnpinResult`.
 * - anything `unpin` returns, for `DELETE_MEM_CACHEATTR`.
 */
export type PinResult =
  | (Ok & { readonly action: 'added'; readonly range: PinnedRange; readonly flush: boolean })
  | (Ok & {
      readonly action: 'updated';
      readonly range: PinnedRange;
      readonly previous: MemoryType;
      readonly flush: boolean;
    })
  | (Failure<'EBUSY'> & { readonly conflict: PinnedRange; readonly flush: boolean })
  | (Failure<'ENOSPC'> & { readonly limit: number; readonly flush: boolean })
  | (Failure<'EPERM'> & { readonly type: 'UC' | 'UC-' | 'WC' })
  | (Failure<'EINVAL'> & { readonly reason: 'type'; readonly type: number })
  | UnpinResult;

const ANY_TYPE_DOMAIN: EmtDomain = Object.freeze({
  iommuEnabled: true,
  hasIoResources: false,
  hasPciDevices: false,
});

/**
 * A domain's pinned cache-attribute ranges, changed as Xen's `hvm_set_mem_pinned_cacheattr` changes
 * them. Expected refusals are results with Xen's codes (see `PinResult`); only malformed arguments
 * throw `InvalidArgumentError`. `ranges` is an immutable snapshot replaced on every change, so a reader
 * holding it sees one consistent list, as Xen's RCU readers do.
 */
export class PinnedCacheAttrs {
  private readonly domain: EmtDomain;
  private readonly paddrBits: number;
  private list: readonly PinnedRange[] = Object.freeze([]);

  /** An empty list. Throws `InvalidArgumentError` for a malformed option. */
  constructor(options: PinnedCacheAttrsOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', options, '{ domain?, paddrBits? }');
    }
    const domain = options.domain ?? ANY_TYPE_DOMAIN;
    checkEmtDomain(domain);
    const paddrBits = options.paddrBits ?? 52;
    if (!Number.isInteger(paddrBits) || paddrBits < 32 || paddrBits > 52) {
      throw new InvalidArgumentError('paddrBits', paddrBits, 'an integer in 32 … 52');
    }
    this.domain = domain;
    this.paddrBits = paddrBits;
  }

  /**
   * The ranges, newest first (Xen's `list_add_rcu` puts a new range at the head), frozen; pass it as
   * `pinned` to `epteGetEntryEmt` or to `getPinnedCacheAttr`.
   */
  get ranges(): readonly PinnedRange[] {
    return this.list;
  }

  /**
   * Xen's `hvm_set_mem_pinned_cacheattr(d, gfnStart, gfnEnd, type)`: pin `[gfnStart, gfnEnd]`
   * (inclusive) to `type`, or change the type of the range with exactly these bounds; see `PinResult`.
   * Throws `InvalidArgumentError` for a frame that is not in `0 … 2^52 - 1`, `gfnEnd < gfnStart`, or a
   * type that is neither a memory-type name nor an integer in `0 … 2^32 - 1`.
   */
  pin(gfnStart: Gfn, gfnEnd: Gfn, type: PinType): PinResult {
    checkBounds(gfnStart, gfnEnd);
    if (typeof type === 'number') {
      if (!Number.isInteger(type) || type < 0 || type > DELETE_MEM_CACHEATTR) {
        throw new InvalidArgumentError('type', type, 'a memory type, or a raw type in 0 … 2^32-1');
      }
    } else {
      checkMemoryType('type', type);
    }
    // Xen checks the width before it looks at the type.
    const wide = this.checkWidth(gfnStart, gfnEnd);
    if (wide !== undefined) return wide;
    if (type === DELETE_MEM_CACHEATTR) return this.remove(gfnStart, gfnEnd);
    let memoryType: MemoryType;
    if (typeof type === 'number') {
      const decoded = decodeRaw(type);
      if (decoded === undefined) return { ok: false, code: 'EINVAL', reason: 'type', type };
      memoryType = decoded;
    } else {
      memoryType = type;
    }

    // UC, UC- and WC need a domain that may flush caches; they flush whatever happens next.
    if (memoryType === 'UC' || memoryType === 'UC-' || memoryType === 'WC') {
      const { iommuEnabled, hasIoResources, hasPciDevices } = this.domain;
      if (!iommuEnabled && !hasIoResources && !hasPciDevices) {
        return { ok: false, code: 'EPERM', type: memoryType };
      }
    }
    const flush = memoryType === 'UC' || memoryType === 'UC-' || memoryType === 'WC';

    const list = this.list;
    for (let i = 0; i < list.length; i++) {
      const range = list[i]!;
      if (range.gfnStart === gfnStart && range.gfnEnd === gfnEnd) {
        // The same bounds: the type changes in place, whatever the count (Xen's limit is not checked).
        const updated = Object.freeze({ gfnStart, gfnEnd, type: memoryType });
        this.list = Object.freeze(list.map((r, j) => (j === i ? updated : r)));
        return { ok: true, action: 'updated', range: updated, previous: range.type, flush };
      }
      if (range.gfnStart <= gfnEnd && gfnStart <= range.gfnEnd) {
        return { ok: false, code: 'EBUSY', conflict: range, flush };
      }
    }
    if (list.length >= MAX_PINNED_RANGES) {
      return { ok: false, code: 'ENOSPC', limit: MAX_PINNED_RANGES, flush };
    }
    const added = Object.freeze({ gfnStart, gfnEnd, type: memoryType });
    this.list = Object.freeze([added, ...list]);
    return { ok: true, action: 'added', range: added, flush };
  }

  /**
   * Xen's `hvm_set_mem_pinned_cacheattr(d, gfnStart, gfnEnd, XEN_DMOP_DELETE_MEM_CACHEATTR)`: remove
   * the range with exactly the bounds `[gfnStart, gfnEnd]`; see `UnpinResult`. Throws
   * `InvalidArgumentError` for a frame that is not in `0 … 2^52 - 1` or `gfnEnd < gfnStart`.
   */
  unpin(gfnStart: Gfn, gfnEnd: Gfn): UnpinResult {
    checkBounds(gfnStart, gfnEnd);
    return this.checkWidth(gfnStart, gfnEnd) ?? this.remove(gfnStart, gfnEnd);
  }

  /** The pinned type of the `2^order` block holding `gfn`: `getPinnedCacheAttr(this.ranges, gfn, order)`. */
  lookup(gfn: Gfn, order: PageOrder): PinnedLookup {
    return getPinnedCacheAttr(this.list, gfn, order);
  }

  private remove(gfnStart: Gfn, gfnEnd: Gfn): UnpinResult {
    const i = this.list.findIndex((r) => r.gfnStart === gfnStart && r.gfnEnd === gfnEnd);
    if (i < 0) return { ok: false, code: 'ENOENT', gfnStart, gfnEnd };
    const range = this.list[i]!;
    this.list = Object.freeze(this.list.filter((_, j) => j !== i));
    const flush = range.type === 'WB' || range.type === 'WP' || range.type === 'WT';
    return { ok: true, action: 'removed', range, flush };
  }

  /** Xen's `(gfn_start | gfn_end) >> paddr_bits`: any frame bit at or above the address width. */
  private checkWidth(gfnStart: Gfn, gfnEnd: Gfn): AddressWidthError | undefined {
    const limit = 2 ** this.paddrBits;
    if (gfnStart < limit && gfnEnd < limit) return undefined;
    return { ok: false, code: 'EINVAL', reason: 'address-width', paddrBits: this.paddrBits };
  }
}

/** Throws unless both are frames and `gfnStart <= gfnEnd` (Xen's EINVAL; a programming error here). */
function checkBounds(gfnStart: Gfn, gfnEnd: Gfn): void {
  checkFrame('gfnStart', gfnStart);
  checkFrame('gfnEnd', gfnEnd);
  if (gfnEnd < gfnStart) {
    throw new InvalidArgumentError('gfnEnd', gfnEnd, `a frame >= gfnStart (${gfnStart})`);
  }
}

/** The memory type a raw `type` value names (the PAT encodings), or undefined for one Xen refuses. */
function decodeRaw(type: number): MemoryType | undefined {
  return type <= 7 && type !== 2 && type !== 3 ? decodePatType(type) : undefined;
}
