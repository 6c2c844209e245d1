/**
 * AMD nested paging: what Xen puts in an NPT leaf for each p2m type (`p2m_type_to_flags`,
 * xen/arch/x86/mm/p2m-pt.c) and the memory type a guest access then gets. AMD has no iPAT: the guest
 * PAT always takes part.
 */
import { RangeSet } from '@vpci/rangeset';
import { checkBoolean, checkFrame, checkOrder, InvalidArgumentError, type PageOrder } from './errors.js';
import type { Mfn } from './frame.js';
import { checkMemoryType, checkMtrrType, type MemoryType, type MtrrType } from './memory-type.js';
import { checkP2mType, type P2mType } from './p2m-type.js';
import { combineMtrrWithPat, type Pat, patType, XEN_HOST_PAT } from './pat.js';

/** An NPT leaf as Xen writes it: not present, or present with its permission and cache bits. */
export type NptLeaf =
  | { readonly present: false }
  | {
      readonly present: true;
      /** RW: writes allowed. */
      readonly writable: boolean;
      /** NX: instruction fetches refused. */
      readonly noExecute: boolean;
      /** PCD bit. */
      readonly pcd: boolean;
      /** PWT bit. */
      readonly pwt: boolean;
      /** The host PAT entry the bits select (`PCD*2 + PWT`; Xen never sets the PAT bit here). */
      readonly hostPatIndex: number;
      /** That entry's type in the host PAT: the NPT side of the combination. */
      readonly hostType: MemoryType;
    };

/** What `nptLeafFor` needs to know about the leaf. */
export interface NptLeafInput {
  /** The p2m type of the entry. */
  readonly p2mType: P2mType;
  /** The machine frame (only mmio_direct looks at it). */
  readonly mfn: Mfn;
  /** The leaf's order. Default 0. An mmio_direct leaf of a read-only MFN must be 4K (Xen asserts it). */
  readonly order?: PageOrder;
  /** Xen's global `mmio_ro_ranges`. Default: empty. */
  readonly mmioRo?: RangeSet<Mfn>;
  /** ioreq_server only: writes are forwarded to the ioreq server, so the leaf is read-only. */
  readonly ioreqWritesForwarded?: boolean;
  /** The host PAT. Default: Xen's, `XEN_HOST_PAT`. */
  readonly hostPat?: Pat;
}

/**
 * The NPT leaf Xen writes for an entry, as `p2m_type_to_flags`:
 * - ram_rw: RW; ram_ro, ram_logdirty, ram_shared: read-only; grant_map_rw, map_foreign: RW + NX;
 *   grant_map_ro: read-only + NX; ioreq_server: RW + NX, read-only when writes are forwarded. None
 *   sets cache bits: host PAT entry 0, WB.
 * - mmio_direct: RW + PCD (entry 2, UC-); when the MFN itself is in `mmioRo`, read-only + PCD + PWT
 *   (entry 3, UC).
 * - invalid, mmio_dm, populate_on_demand, the paging types, ram_broken: not present.
 */
export function nptLeafFor(input: NptLeafInput): NptLeaf {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidArgumentError('input', input, 'an NptLeafInput object');
  }
  const { p2mType, mfn } = input;
  checkP2mType('p2mType', p2mType);
  checkFrame('mfn', mfn);
  const order = input.order ?? 0;
  checkOrder('order', order);
  if (input.mmioRo !== undefined && !(input.mmioRo instanceof RangeSet)) {
    throw new InvalidArgumentError('mmioRo', input.mmioRo, 'a RangeSet of MFNs');
  }
  const forwarded = input.ioreqWritesForwarded ?? false;
  checkBoolean('ioreqWritesForwarded', forwarded);
  const hostPat = input.hostPat ?? XEN_HOST_PAT;

  const leaf = (writable: boolean, noExecute: boolean, pcd = false, pwt = false): NptLeaf => ({
    present: true,
    writable,
    noExecute,
    pcd,
    pwt,
    hostPatIndex: (pcd ? 2 : 0) + (pwt ? 1 : 0),
    hostType: patType(hostPat, { pat: false, pcd, pwt }),
  });

  switch (p2mType) {
    case 'ram_rw':
      return leaf(true, false);
    case 'ram_ro':
    case 'ram_logdirty':
    case 'ram_shared':
      return leaf(false, false);
    case 'grant_map_rw':
    case 'map_foreign':
      return leaf(true, true);
    case 'grant_map_ro':
      return leaf(false, true);
    case 'ioreq_server':
      return leaf(!forwarded, true);
    case 'mmio_direct':
      // Xen tests the one MFN, not the whole block.
      if (!input.mmioRo?.containsSingleton(mfn)) return leaf(true, false, true, false);
      if (order !== 0) {
        throw new InvalidArgumentError('order', order, '0: Xen maps read-only MMIO in 4K leaves only');
      }
      return leaf(false, false, true, true);
    default:
      return NOT_PRESENT;
  }
}

const NOT_PRESENT: NptLeaf = Object.freeze({ present: false });

/** A combined type, and whether every rule that produced it is one the port may rely on. */
export interface AmdCombination {
  /** The combined type. */
  readonly type: MemoryType;
  /**
   * true when only the verified rules decided (UC on either side gives UC; host WB keeps the guest
   * type); false when the answer is this model's choice for a cell of AMD's guest × host table that
   * is not verified (see the package's DESIGN.md).
   */
  readonly verified: boolean;
}

/**
 * The guest PAT type of an access combined with the host type of the NPT leaf (AMD APM Vol. 2,
 * nested paging, combining memory types). Verified rules: either UC → UC; host WB → the guest type.
 * UNVERIFIED cells, our choice: equal types → that type; guest WB → the host type; any other mix → UC,
 * the conservative answer (uncached is slow but never incoherent).
 */
export function combineAmdGuestHost(guest: MemoryType, host: MemoryType): AmdCombination {
  checkMemoryType('guest', guest);
  checkMemoryType('host', host);
  if (guest === 'UC' || host === 'UC') return { type: 'UC', verified: true };
  if (host === 'WB') return { type: guest, verified: true };
  if (guest === host) return { type: guest, verified: false };
  if (guest === 'WB') return { type: host, verified: false };
  return { type: 'UC', verified: false };
}

/** The effective type of an access on AMD, with the intermediate guest × host type. */
export interface AmdEffective {
  /** The type the access gets. */
  readonly type: MtrrType;
  /** Guest PAT type combined with the NPT host type, before the host MTRR. */
  readonly combined: MemoryType;
  /** false if an UNVERIFIED cell of the guest × host table decided (see `combineAmdGuestHost`). */
  readonly verified: boolean;
}

/**
 * AMD: the effective type of a guest access. The guest PAT type combines with the NPT leaf's host type
 * (`combineAmdGuestHost`), and that with the host MTRR type of the system address as natively
 * (`combineMtrrWithPat`). The guest's virtual MTRRs take no part: they matter only through the PAT
 * type the guest OS chose.
 */
export function amdEffectiveType(input: {
  /** The guest's PAT type for the access (guest PTE bits through the guest PAT). */
  readonly guestPat: MemoryType;
  /** The NPT leaf's host type (`nptLeafFor(...).hostType`). */
  readonly nptHostType: MemoryType;
  /** The host MTRR type of the machine address. */
  readonly hostMtrr: MtrrType;
}): AmdEffective {
  checkMemoryType('guestPat', input.guestPat);
  checkMemoryType('nptHostType', input.nptHostType);
  checkMtrrType('hostMtrr', input.hostMtrr);
  const combined = combineAmdGuestHost(input.guestPat, input.nptHostType);
  return {
    type: combineMtrrWithPat(input.hostMtrr, combined.type),
    combined: combined.type,
    verified: combined.verified,
  };
}
