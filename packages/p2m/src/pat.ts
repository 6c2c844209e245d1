/**
 * The page attribute table: its 8 entries, how a page-table entry selects one, and how the PAT type
 * combines with the MTRR type (natively) or with the EPT memory type (Intel, under EPT).
 */
import { checkBoolean, checkU64, InvalidArgumentError } from './errors.js';
import {
  checkMemoryType,
  checkMtrrType,
  decodePatType,
  encodeMemoryType,
  type MemoryType,
  type MtrrType,
} from './memory-type.js';

/** The 8 entries of an IA32_PAT value, entry 0 first. */
export type Pat = readonly [
  MemoryType,
  MemoryType,
  MemoryType,
  MemoryType,
  MemoryType,
  MemoryType,
  MemoryType,
  MemoryType,
];

/**
 * The architectural reset value of IA32_PAT, which Xen also gives every new HVM vCPU
 * (`hvm_vcpu_cacheattr_init`): WB, WT, UC-, UC, WB, WT, UC-, UC.
 */
export const PAT_POWER_ON: Pat = Object.freeze(['WB', 'WT', 'UC-', 'UC', 'WB', 'WT', 'UC-', 'UC'] as const);

/**
 * Xen's own PAT (`XEN_MSR_PAT`), used for Xen's mappings and for the cache bits of AMD NPT leaves:
 * WB, WT, UC-, UC, WC, WP, UC, UC.
 */
export const XEN_HOST_PAT: Pat = Object.freeze(['WB', 'WT', 'UC-', 'UC', 'WC', 'WP', 'UC', 'UC'] as const);

/** A validated, frozen PAT from 8 memory types. Throws naming `entries[i]` for a bad entry. */
export function createPat(entries: readonly MemoryType[]): Pat {
  if (!Array.isArray(entries) || entries.length !== 8) {
    throw new InvalidArgumentError('entries', entries, 'an array of 8 memory types');
  }
  entries.forEach((type, i) => {
    checkMemoryType(`entries[${i}]`, type);
  });
  return Object.freeze([...entries]) as unknown as Pat;
}

/**
 * Decodes an IA32_PAT MSR value (entry `i` in bits `8i+2 … 8i`; bits 7:3 of each byte reserved).
 * Throws naming `pat[i]` for an entry that is not a memory type.
 */
export function patFromMsr(msr: bigint): Pat {
  checkU64('msr', msr);
  const entries: MemoryType[] = [];
  for (let i = 0; i < 8; i++) {
    entries.push(decodePatType(Number((msr >> BigInt(8 * i)) & 0xffn), `pat[${i}]`));
  }
  return Object.freeze(entries) as unknown as Pat;
}

/** Encodes a PAT as its IA32_PAT MSR value. */
export function patToMsr(pat: Pat): bigint {
  checkPat('pat', pat);
  let msr = 0n;
  pat.forEach((type, i) => {
    msr |= BigInt(encodeMemoryType(type)) << BigInt(8 * i);
  });
  return msr;
}

function checkPat(argument: string, pat: unknown): asserts pat is Pat {
  if (!Array.isArray(pat) || pat.length !== 8) {
    throw new InvalidArgumentError(argument, pat, 'a PAT: an array of 8 memory types');
  }
  pat.forEach((type, i) => {
    checkMemoryType(`${argument}[${i}]`, type);
  });
}

/** The three PTE bits that select a PAT entry. */
export interface PatBits {
  /** The PAT bit (bit 7 of a 4K PTE, bit 12 of a large-page entry). */
  readonly pat: boolean;
  /** PCD, page-level cache disable (bit 4). */
  readonly pcd: boolean;
  /** PWT, page-level write-through (bit 3). */
  readonly pwt: boolean;
}

/** The PAT entry a PTE selects: `PAT*4 + PCD*2 + PWT` (0 … 7). */
export function patIndex(bits: PatBits): number {
  checkBoolean('pat', bits.pat);
  checkBoolean('pcd', bits.pcd);
  checkBoolean('pwt', bits.pwt);
  return (bits.pat ? 4 : 0) + (bits.pcd ? 2 : 0) + (bits.pwt ? 1 : 0);
}

/** The memory type a PTE with `bits` gets from `pat`. */
export function patType(pat: Pat, bits: PatBits): MemoryType {
  checkPat('pat', pat);
  return pat[patIndex(bits)]!;
}

/**
 * Effective type of MTRR (row) × PAT (column), the Intel SDM table Xen carries as `mm_type_tbl`. Under
 * EPT the EPT memory type takes the MTRR's place.
 */
const TABLE: Readonly<Record<MtrrType, Readonly<Record<MemoryType, MtrrType>>>> = Object.freeze({
  UC: { UC: 'UC', WC: 'WC', WT: 'UC', WP: 'UC', WB: 'UC', 'UC-': 'UC' },
  WC: { UC: 'UC', WC: 'WC', WT: 'UC', WP: 'UC', WB: 'WC', 'UC-': 'WC' },
  WT: { UC: 'UC', WC: 'WC', WT: 'WT', WP: 'WP', WB: 'WT', 'UC-': 'UC' },
  WP: { UC: 'UC', WC: 'WC', WT: 'WT', WP: 'WP', WB: 'WP', 'UC-': 'WC' },
  WB: { UC: 'UC', WC: 'WC', WT: 'WT', WP: 'WP', WB: 'WB', 'UC-': 'UC' },
});

/**
 * The effective type of an access whose MTRR type is `mtrr` and PAT type is `pat`, as natively on
 * x86 (SDM Vol. 3A, effective page-level memory types): PAT UC always wins, PAT WC always gives WC,
 * MTRR UC lets only PAT WC through, MTRR WB keeps the PAT type except that UC- becomes UC.
 */
export function combineMtrrWithPat(mtrr: MtrrType, pat: MemoryType): MtrrType {
  checkMtrrType('mtrr', mtrr);
  checkMemoryType('pat', pat);
  return TABLE[mtrr][pat];
}

/**
 * Intel with EPT and iPAT clear: the EPT memory type `emt` plays the MTRR's role in the same table
 * (SDM Vol. 3C, memory type for guest-physical accesses). The guest's MTRRs take no part.
 */
export function combineEptWithPat(emt: MtrrType, guestPat: MemoryType): MtrrType {
  checkMtrrType('emt', emt);
  checkMemoryType('guestPat', guestPat);
  return TABLE[emt][guestPat];
}

/**
 * Intel: the type a guest access really gets from an EPT leaf `{ emt, ipat }` and the guest's PAT type
 * for the access. With iPAT set the EPT type is used alone; otherwise `combineEptWithPat`.
 */
export function intelEffectiveType(
  leaf: { readonly emt: MtrrType; readonly ipat: boolean },
  guestPat: MemoryType,
): MtrrType {
  checkMtrrType('emt', leaf.emt);
  checkBoolean('ipat', leaf.ipat);
  checkMemoryType('guestPat', guestPat);
  return leaf.ipat ? leaf.emt : TABLE[leaf.emt][guestPat];
}
