/**
 * Intel EPT: the memory type Xen writes into an EPT leaf and whether it sets iPAT ("ignore guest PAT"),
 * after `epte_get_entry_emt` (xen/arch/x86/mm/p2m-ept.c). Every input is an argument; nothing is
 * global.
 */
import { RangeSet } from '@vpci/rangeset';
import { checkEmtDomain, type EmtDomain } from './emt-domain.js';
import { checkBoolean, checkFrame, checkOrder, InvalidArgumentError, type PageOrder } from './errors.js';
import { frameAddress, type Gfn, type Mfn } from './frame.js';
import type { MtrrType } from './memory-type.js';
import { MtrrState, mtrrGetType } from './mtrr.js';
import { checkP2mType, type P2mType } from './p2m-type.js';
import { getPinnedCacheAttr, type PinnedRange } from './pinned.js';
import { isSplit, type Split } from './split.js';

/**
 * Which rule decided the answer, named after Xen's steps.
 * - `mmio-ro`: the MFN block meets `mmio_ro_ranges` (step 1).
 * - `no-iommu-no-io`: not mmio_direct, and the domain has no IOMMU and no I/O resources (step 2).
 * - `special-page`: the block holds special (Xen-heap or extra) pages (step 3, since seed 001).
 * - `mmio-direct`: p2m type mmio_direct (step 4).
 * - `grant-or-foreign`: grant_map_rw, grant_map_ro or map_foreign (step 5, since 2021).
 * - `pinned`: a pinned cache attribute range (step 6).
 * - `mtrr`: guest MTRR type combined with the host MTRR type (step 7).
 * - `apic-access-page`: before seed 001 only: mmio_direct of the APIC access page.
 * - `mfn-not-valid`: before seed 001 only: an MFN without a frame-table entry.
 */
export type EmtRule =
  | 'mmio-ro'
  | 'no-iommu-no-io'
  | 'special-page'
  | 'mmio-direct'
  | 'grant-or-foreign'
  | 'pinned'
  | 'mtrr'
  | 'apic-access-page'
  | 'mfn-not-valid';

/** Everything `epteGetEntryEmt` looks at. */
export interface EmtInput {
  /** The domain's I/O facts. */
  readonly domain: EmtDomain;
  /** The p2m type of the leaf. */
  readonly p2mType: P2mType;
  /** The guest frame (the leaf's first for a superpage; Xen passes it as it is and aligns in lookups). */
  readonly gfn: Gfn;
  /** The machine frame the leaf maps (never INVALID_MFN: Xen only asks for present leaves). */
  readonly mfn: Mfn;
  /** The leaf's order: 0, 9 or 18. */
  readonly order: PageOrder;
  /**
   * The guest MTRRs Xen reads: the current vCPU's if it belongs to the domain, else vCPU 0's.
   * `undefined`: the domain has no vCPU, and the guest side counts as WB.
   */
  readonly guestMtrr: MtrrState | undefined;
  /** The host's MTRRs (Xen's global `mtrr_state`). */
  readonly hostMtrr: MtrrState;
  /**
   * Which MFNs are special pages (valid Xen-heap or "extra" pages: grant-table frames, shared info, …),
   * as a set of MFNs or a predicate. Default: none.
   */
  readonly specialPages?: RangeSet<Mfn> | ((mfn: Mfn) => boolean);
  /**
   * The domain's pinned cache-attribute ranges, in Xen's list order (`PinnedCacheAttrs.ranges`).
   * Default: none.
   */
  readonly pinned?: readonly PinnedRange[];
  /** Xen's global `mmio_ro_ranges`: MFNs that must only be mapped read-only. Default: empty. */
  readonly mmioRo?: RangeSet<Mfn>;
  /**
   * true (default): current Xen. false: Xen before seed 001's commit (ca24b2ffdb, July 2020), which
   * had no special-page rule and no grant/foreign rule, and handled mmio_direct and invalid MFNs
   * before the IOMMU test.
   */
  readonly specialPageRule?: boolean;
  /** Before seed 001 only: the MFN of the domain's APIC access page, if it has one. */
  readonly apicAccessMfn?: Mfn;
  /** Before seed 001 only: whether an MFN has a frame-table entry (`mfn_valid`). Default: all do. */
  readonly isValidMfn?: (mfn: Mfn) => boolean;
}

/** A uniform answer: the EPT memory type, whether iPAT is set, and the rule that chose them. */
export interface EmtAnswer {
  /** The memory type written into the EPT leaf. */
  readonly emt: MtrrType;
  /** iPAT: the guest PAT is ignored, `emt` is the effective type. */
  readonly ipat: boolean;
  /** The rule that decided. */
  readonly rule: EmtRule;
}

/** The block is not uniform (Xen's −1): split the superpage and ask for each part. */
export interface EmtSplit extends Split {
  /** The rule that found the block non-uniform. */
  readonly rule: EmtRule;
}

/** Outcome of `epteGetEntryEmt`. */
export type EmtResult = EmtAnswer | EmtSplit;

function answer(emt: MtrrType, ipat: boolean, rule: EmtRule): EmtAnswer {
  return { emt, ipat, rule };
}

function split(rule: EmtRule): EmtSplit {
  return { split: true, rule };
}

/**
 * The EPT memory type and iPAT Xen gives the leaf mapping `gfn → mfn` of `2^order` frames with p2m
 * type `p2mType`, or a split when the block is not uniform. Current Xen's order, first rule wins:
 *
 * 1. MFN block `[mfn, mfn | (2^order − 1)]` meets `mmioRo`: UC + iPAT at order 0 or when all of it
 *    is inside, else split.
 * 2. Not mmio_direct, no IOMMU and no I/O resources or PCI devices: WB + iPAT.
 * 3. `[mfn, mfn + 2^order − 1]` holds special pages: all → WB + iPAT, some → split.
 * 4. mmio_direct: UC, no iPAT.
 * 5. grant_map_rw, grant_map_ro, map_foreign: WB + iPAT.
 * 6. A pinned range holds the block: its type (UC- stored as UC) + iPAT; a partial one → split.
 * 7. Guest MTRR type of the GFN (WB with no vCPU) with the host MTRR type of the MFN (either split →
 *    split): equal → it; either UC → UC; one WB → the other; WT with WP → WP; else UC. No iPAT.
 *
 * With `specialPageRule: false`, Xen before seed 001: 1; mmio_direct → UC, except the APIC access page
 * (WB + iPAT at order 0, split for a superpage holding it); MFN not valid → UC + iPAT; 2 (for any type);
 * 6; 7.
 */
export function epteGetEntryEmt(input: EmtInput): EmtResult {
  const checked = checkInput(input);
  const { domain, p2mType, mfn, order } = checked;
  const size = 2 ** order;

  // 1. Xen ORs the order mask into the MFN (so the range is the aligned block around mfn).
  // The block's last frame: below 2^52, since blocks are aligned and a frame is.
  const roEnd = (mfn - (mfn % size) + size - 1) as Mfn;
  const mmioRo = checked.mmioRo;
  if (mmioRo?.overlapsRange(mfn, roEnd)) {
    if (order === 0 || mmioRo.containsRange(mfn, roEnd)) return answer('UC', true, 'mmio-ro');
    return split('mmio-ro');
  }

  const cacheFlushPermitted = domain.hasIoResources || domain.hasPciDevices;

  if (!checked.specialPageRule) {
    if (p2mType === 'mmio_direct') {
      const apic = checked.apicAccessMfn;
      // Xen compares the frames above the order: the leaf holds the APIC page iff they agree.
      if (apic === undefined || Math.floor(mfn / size) !== Math.floor(apic / size)) {
        return answer('UC', false, 'mmio-direct');
      }
      if (order > 0) return split('apic-access-page');
      return answer('WB', true, 'apic-access-page');
    }
    if (!checked.isValidMfn(mfn)) return answer('UC', true, 'mfn-not-valid');
    if (!domain.iommuEnabled && !cacheFlushPermitted) return answer('WB', true, 'no-iommu-no-io');
    return pinnedThenMtrr(checked);
  }

  // 2.
  if (p2mType !== 'mmio_direct' && !domain.iommuEnabled && !cacheFlushPermitted) {
    return answer('WB', true, 'no-iommu-no-io');
  }

  // 3. Counted over mfn … mfn + 2^order − 1 (added, not ORed, unlike step 1).
  const special = countSpecial(checked.specialPages, mfn, size);
  if (special > 0) {
    if (special !== size) return split('special-page');
    return answer('WB', true, 'special-page');
  }

  // 4. and 5.
  if (p2mType === 'mmio_direct') return answer('UC', false, 'mmio-direct');
  if (p2mType === 'grant_map_rw' || p2mType === 'grant_map_ro' || p2mType === 'map_foreign') {
    return answer('WB', true, 'grant-or-foreign');
  }

  return pinnedThenMtrr(checked);
}

/** Steps 6 and 7, shared by both decision orders. */
function pinnedThenMtrr(input: CheckedInput): EmtResult {
  const pinned = getPinnedCacheAttr(input.pinned, input.gfn, input.order);
  if (pinned.match === 'full') return answer(pinned.type === 'UC-' ? 'UC' : pinned.type, true, 'pinned');
  if (pinned.match === 'partial') return split('pinned');

  const guest = input.guestMtrr ? mtrrGetType(input.guestMtrr, frameAddress(input.gfn), input.order) : 'WB';
  const host = mtrrGetType(input.hostMtrr, frameAddress(input.mfn), input.order);
  if (isSplit(guest) || isSplit(host)) return split('mtrr');
  return answer(combineGuestHostMtrr(guest, host), false, 'mtrr');
}

/**
 * Xen's combination of the guest's and the host's MTRR types in step 7 (not the SDM's MTRR×PAT table):
 * equal → it; either UC → UC; one WB → the other; WT with WP → WP; any other mix (with WC) → UC.
 */
export function combineGuestHostMtrr(guest: MtrrType, host: MtrrType): MtrrType {
  if (guest === host) return host;
  if (guest === 'UC' || host === 'UC') return 'UC';
  if (guest === 'WB') return host;
  if (host === 'WB') return guest;
  if ((guest === 'WT' && host === 'WP') || (guest === 'WP' && host === 'WT')) return 'WP';
  return 'UC';
}

/** How many of the `size` frames from `mfn` are special pages (stops early once the answer is clear). */
function countSpecial(
  special: RangeSet<Mfn> | ((mfn: Mfn) => boolean) | undefined,
  mfn: Mfn,
  size: number,
): number {
  if (special === undefined) return 0;
  const end = (mfn + size - 1) as Mfn; // the leaf's last frame
  if (special instanceof RangeSet) {
    if (!special.overlapsRange(mfn, end)) return 0;
    return special.containsRange(mfn, end) ? size : 1;
  }
  let count = 0;
  for (let i = 0; i < size; i++) {
    if (special((mfn + i) as Mfn)) count++; // inside the leaf, so a frame
    // Some but not all: the answer is a split whatever the rest holds.
    if (count > 0 && count <= i) return count;
  }
  return count;
}

/** `EmtInput` once checked, with its defaults filled in. */
type CheckedInput = EmtInput & {
  readonly pinned: readonly PinnedRange[];
  readonly specialPageRule: boolean;
  readonly isValidMfn: (mfn: Mfn) => boolean;
};

function checkInput(input: EmtInput): CheckedInput {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidArgumentError('input', input, 'an EmtInput object');
  }
  checkEmtDomain(input.domain);
  checkP2mType('p2mType', input.p2mType);
  checkFrame('gfn', input.gfn);
  checkFrame('mfn', input.mfn);
  checkOrder('order', input.order);
  if (input.guestMtrr !== undefined && !(input.guestMtrr instanceof MtrrState)) {
    throw new InvalidArgumentError('guestMtrr', input.guestMtrr, 'an MtrrState, or undefined for no vCPU');
  }
  if (!(input.hostMtrr instanceof MtrrState)) {
    throw new InvalidArgumentError('hostMtrr', input.hostMtrr, 'an MtrrState');
  }
  const special = input.specialPages;
  if (special !== undefined && !(special instanceof RangeSet) && typeof special !== 'function') {
    throw new InvalidArgumentError('specialPages', special, 'a RangeSet of MFNs or a predicate on an MFN');
  }
  if (input.mmioRo !== undefined && !(input.mmioRo instanceof RangeSet)) {
    throw new InvalidArgumentError('mmioRo', input.mmioRo, 'a RangeSet of MFNs');
  }
  const specialPageRule = input.specialPageRule ?? true;
  checkBoolean('specialPageRule', specialPageRule);
  if (input.apicAccessMfn !== undefined) checkFrame('apicAccessMfn', input.apicAccessMfn);
  if (input.isValidMfn !== undefined && typeof input.isValidMfn !== 'function') {
    throw new InvalidArgumentError('isValidMfn', input.isValidMfn, 'a predicate on an MFN');
  }
  return {
    ...input,
    pinned: input.pinned ?? [],
    specialPageRule,
    isValidMfn: input.isValidMfn ?? (() => true),
  };
}
