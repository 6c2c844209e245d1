/**
 * Memory type range registers: one vCPU's (or the host's) MTRR state and Xen's lookup `mtrr_get_type`
 * (xen/arch/x86/hvm/mtrr.c), overlap rules and order-dependent quirk included.
 */
import {
  checkBoolean,
  checkOrder,
  checkU64,
  InvalidArgumentError,
  MAX_U64,
  type PageOrder,
} from './errors.js';
import type { Paddr } from './frame.js';
import { checkMtrrType, decodeMtrrType, encodeMemoryType, type MtrrType } from './memory-type.js';
import { SPLIT, type Split } from './split.js';

/** Number of fixed-range type bytes: 8 of 64 KiB, 16 of 16 KiB, 64 of 4 KiB, covering the first 1 MiB. */
export const NUM_FIXED_RANGES = 88;

/** Variable range pairs Xen gives a domU vCPU (`MTRR_VCNT`). */
export const MTRR_VCNT = 8;

/** Most variable range pairs Xen emulates (`MTRR_VCNT_MAX`: the MSR space below the fixed ranges). */
export const MTRR_VCNT_MAX = 40;

/** Physical address width used when none is given, in bits: the architectural maximum, 52. */
export const DEFAULT_PHYS_ADDR_BITS = 52;

const PAGE_MASK = 0xfffn;
const ONE_MIB = 0x100000n;

/**
 * One variable-range pair, decoded: the range holds every address `a` with
 * `(a & mask) === (base & mask)`. `base` and `mask` are byte addresses with their low 12 bits zero.
 */
export interface VariableRange {
  /** PHYSBASE address bits: the start of the range (4 KiB aligned). */
  readonly base: bigint;
  /** PHYSMASK address bits: ones from bit 12 (at least) up to the width for a contiguous range. */
  readonly mask: bigint;
  /** The memory type of the range (PHYSBASE bits 7:0). */
  readonly type: MtrrType;
  /** PHYSMASK bit 11: a range that is not valid matches nothing. */
  readonly valid: boolean;
}

/** What a new `MtrrState` is made from; each field left out takes Xen's reset value. */
export interface MtrrStateInit {
  /** MTRRdefType.E (bit 11). Default false: with MTRRs disabled everything is UC. */
  readonly enabled?: boolean;
  /** MTRRdefType.FE (bit 10): the fixed ranges apply below 1 MiB. Default false. */
  readonly fixedEnabled?: boolean;
  /** MTRRdefType.Type (bits 7:0): the type of addresses no range covers. Default UC. */
  readonly defaultType?: MtrrType;
  /** The 88 fixed-range types, lowest address first. Default: all UC. */
  readonly fixedRanges?: readonly MtrrType[];
  /** The variable ranges, pair 0 first; at most `variableCount`. Missing pairs are not valid. */
  readonly variableRanges?: readonly VariableRange[];
  /** How many pairs MTRRcap.VCNT announces (1 … 40). Default 8, a domU's count. */
  readonly variableCount?: number;
  /** Physical address width in bits (32 … 52); address bits at or above it must be zero. Default 52. */
  readonly physAddrBits?: number;
}

/**
 * The MTRR state of one vCPU or of the host: immutable and validated when made. `with…` methods return
 * a changed copy, validated the same way, as Xen's `mtrr_*_msr_set` validate a guest's MSR write.
 */
export class MtrrState {
  /** MTRRdefType.E. */
  readonly enabled: boolean;
  /** MTRRdefType.FE. */
  readonly fixedEnabled: boolean;
  /** MTRRdefType.Type. */
  readonly defaultType: MtrrType;
  /** The 88 fixed-range types (see `fixedRangeIndex` for which address each one covers). */
  readonly fixedRanges: readonly MtrrType[];
  /** `variableCount` pairs, pair 0 first (pairs not given are present but not valid). */
  readonly variableRanges: readonly VariableRange[];
  /** MTRRcap.VCNT. */
  readonly variableCount: number;
  /** Physical address width in bits. */
  readonly physAddrBits: number;
  /** Xen's cached `overlapped`: some two valid variable ranges share an address. */
  readonly overlapped: boolean;

  constructor(init: MtrrStateInit = {}) {
    const enabled = init.enabled ?? false;
    const fixedEnabled = init.fixedEnabled ?? false;
    const defaultType = init.defaultType ?? 'UC';
    checkBoolean('enabled', enabled);
    checkBoolean('fixedEnabled', fixedEnabled);
    checkMtrrType('defaultType', defaultType);
    const physAddrBits = init.physAddrBits ?? DEFAULT_PHYS_ADDR_BITS;
    if (!Number.isInteger(physAddrBits) || physAddrBits < 32 || physAddrBits > 52) {
      throw new InvalidArgumentError('physAddrBits', physAddrBits, 'an integer in 32 … 52');
    }
    const variableCount = init.variableCount ?? MTRR_VCNT;
    if (!Number.isInteger(variableCount) || variableCount < 1 || variableCount > MTRR_VCNT_MAX) {
      throw new InvalidArgumentError('variableCount', variableCount, `an integer in 1 … ${MTRR_VCNT_MAX}`);
    }

    const fixed = init.fixedRanges ?? new Array<MtrrType>(NUM_FIXED_RANGES).fill('UC');
    if (!Array.isArray(fixed) || fixed.length !== NUM_FIXED_RANGES) {
      throw new InvalidArgumentError(
        'fixedRanges',
        Array.isArray(fixed) ? `an array of ${fixed.length}` : fixed,
        `an array of ${NUM_FIXED_RANGES} MTRR types`,
      );
    }
    fixed.forEach((type, i) => {
      checkMtrrType(`fixedRanges[${i}]`, type);
    });

    const given = init.variableRanges ?? [];
    if (!Array.isArray(given) || given.length > variableCount) {
      throw new InvalidArgumentError(
        'variableRanges',
        Array.isArray(given) ? `an array of ${given.length}` : given,
        `an array of at most variableCount (${variableCount}) ranges`,
      );
    }
    const variable: VariableRange[] = [];
    for (let i = 0; i < variableCount; i++) {
      const range = given[i];
      variable.push(
        range === undefined ? INVALID_RANGE : checkVariableRange(`variableRanges[${i}]`, range, physAddrBits),
      );
    }

    this.enabled = enabled;
    this.fixedEnabled = fixedEnabled;
    this.defaultType = defaultType;
    this.fixedRanges = Object.freeze([...fixed]);
    this.variableRanges = Object.freeze(variable);
    this.variableCount = variableCount;
    this.physAddrBits = physAddrBits;
    this.overlapped = anyOverlap(variable);
    Object.freeze(this);
  }

  /** A copy with new MTRRdefType fields (E, FE, Type); fields left out keep their value. */
  withDefType(fields: {
    readonly enabled?: boolean;
    readonly fixedEnabled?: boolean;
    readonly defaultType?: MtrrType;
  }): MtrrState {
    return new MtrrState({ ...this.init(), ...fields });
  }

  /** A copy with fixed-range byte `index` (0 … 87) set to `type`. */
  withFixedRange(index: number, type: MtrrType): MtrrState {
    if (!Number.isInteger(index) || index < 0 || index >= NUM_FIXED_RANGES) {
      throw new InvalidArgumentError('index', index, `an integer in 0 … ${NUM_FIXED_RANGES - 1}`);
    }
    checkMtrrType('type', type);
    const fixedRanges = [...this.fixedRanges];
    fixedRanges[index] = type;
    return new MtrrState({ ...this.init(), fixedRanges });
  }

  /** A copy with variable pair `index` replaced by `range` (`null`: the pair is no longer valid). */
  withVariableRange(index: number, range: VariableRange | null): MtrrState {
    if (!Number.isInteger(index) || index < 0 || index >= this.variableCount) {
      throw new InvalidArgumentError('index', index, `an integer in 0 … ${this.variableCount - 1}`);
    }
    const variableRanges = [...this.variableRanges];
    variableRanges[index] = range ?? INVALID_RANGE;
    return new MtrrState({ ...this.init(), variableRanges });
  }

  private init(): MtrrStateInit {
    return {
      enabled: this.enabled,
      fixedEnabled: this.fixedEnabled,
      defaultType: this.defaultType,
      fixedRanges: this.fixedRanges,
      variableRanges: this.variableRanges,
      variableCount: this.variableCount,
      physAddrBits: this.physAddrBits,
    };
  }
}

const INVALID_RANGE: VariableRange = Object.freeze({ base: 0n, mask: 0n, type: 'UC', valid: false });

/** Mask of the address bits `[12, physAddrBits)`. */
function addressBits(physAddrBits: number): bigint {
  return ((1n << BigInt(physAddrBits)) - 1n) & ~PAGE_MASK;
}

/**
 * Validates a decoded variable range against the width: base and mask 4 KiB granular, no address bit
 * at or above the width, and (for a valid range) a contiguous mask. Returns a frozen copy.
 */
function checkVariableRange(argument: string, range: VariableRange, physAddrBits: number): VariableRange {
  if (typeof range !== 'object' || range === null) {
    throw new InvalidArgumentError(argument, range, 'a variable range { base, mask, type, valid }');
  }
  const { base, mask, type, valid } = range;
  const allowed = addressBits(physAddrBits);
  checkU64(`${argument}.base`, base);
  if ((base & ~allowed) !== 0n) {
    throw new InvalidArgumentError(
      `${argument}.base`,
      base,
      `a 4 KiB aligned address below 2^${physAddrBits} (the physical address width)`,
    );
  }
  checkU64(`${argument}.mask`, mask);
  if ((mask & ~allowed) !== 0n) {
    throw new InvalidArgumentError(
      `${argument}.mask`,
      mask,
      `a mask of address bits 12 … ${physAddrBits - 1} only (the physical address width is ${physAddrBits})`,
    );
  }
  checkMtrrType(`${argument}.type`, type);
  checkBoolean(`${argument}.valid`, valid);
  if (valid && !isContiguous(mask, physAddrBits)) {
    throw new InvalidArgumentError(
      `${argument}.mask`,
      mask,
      `a contiguous mask: ones from some bit up to bit ${physAddrBits - 1}, zeros below`,
    );
  }
  return Object.freeze({ base, mask, type, valid });
}

/** Contiguous: inside `[12, width)` the clear bits of the mask all lie below its set bits. */
function isContiguous(mask: bigint, physAddrBits: number): boolean {
  const holes = (addressBits(physAddrBits) ^ mask) >> 12n;
  return (holes & (holes + 1n)) === 0n;
}

/** Xen's `is_var_mtrr_overlapped`: two valid ranges intersect iff their bases agree on both masks. */
function anyOverlap(ranges: readonly VariableRange[]): boolean {
  for (let i = 0; i < ranges.length; i++) {
    const a = ranges[i]!;
    if (!a.valid) continue;
    for (let j = i + 1; j < ranges.length; j++) {
      const b = ranges[j]!;
      if (!b.valid) continue;
      const both = a.mask & b.mask;
      if ((a.base & both) === (b.base & both)) return true;
    }
  }
  return false;
}

/**
 * A valid variable range of `size` bytes (a power of two, at least 4 KiB) at `base` (a multiple of
 * `size`), as hvmloader programs them: mask `~(size - 1)` cut to the physical address width.
 */
export function variableRange(
  base: bigint,
  size: bigint,
  type: MtrrType,
  physAddrBits: number = DEFAULT_PHYS_ADDR_BITS,
): VariableRange {
  checkU64('size', size);
  if (size < 0x1000n || (size & (size - 1n)) !== 0n) {
    throw new InvalidArgumentError('size', size, 'a power of two of at least 4096 bytes');
  }
  checkU64('base', base);
  if ((base & (size - 1n)) !== 0n) {
    throw new InvalidArgumentError('base', base, `a multiple of the size (0x${size.toString(16)})`);
  }
  const mask = ~(size - 1n) & ((1n << BigInt(physAddrBits)) - 1n);
  return checkVariableRange('range', { base, mask, type, valid: true }, physAddrBits);
}

/**
 * Decodes a PHYSBASE/PHYSMASK MSR pair. Throws, naming the register, for a type byte that is not an
 * MTRR type, reserved bits set (PHYSBASE 11:8, PHYSMASK 10:0), bits beyond the width, or a valid
 * non-contiguous mask.
 */
export function variableRangeFromMsrs(
  physBase: bigint,
  physMask: bigint,
  physAddrBits: number = DEFAULT_PHYS_ADDR_BITS,
): VariableRange {
  checkU64('physBase', physBase);
  checkU64('physMask', physMask);
  const type = decodeMtrrType(Number(physBase & 0xffn), 'physBase');
  if ((physBase & 0xf00n) !== 0n) {
    throw new InvalidArgumentError('physBase', physBase, 'reserved bits 11:8 clear');
  }
  if ((physMask & 0x7ffn) !== 0n) {
    throw new InvalidArgumentError('physMask', physMask, 'reserved bits 10:0 clear');
  }
  const range = {
    base: physBase & ~PAGE_MASK,
    mask: physMask & ~PAGE_MASK,
    type,
    valid: (physMask & 0x800n) !== 0n,
  };
  if (((range.base | range.mask) & ~addressBits(physAddrBits)) !== 0n) {
    const register = (range.base & ~addressBits(physAddrBits)) !== 0n ? 'physBase' : 'physMask';
    throw new InvalidArgumentError(
      register,
      register === 'physBase' ? physBase : physMask,
      `no address bit at or above the physical address width (${physAddrBits})`,
    );
  }
  if (range.valid && !isContiguous(range.mask, physAddrBits)) {
    throw new InvalidArgumentError(
      'physMask',
      physMask,
      'a contiguous address mask (ones down from the width)',
    );
  }
  return checkVariableRange('range', range, physAddrBits);
}

/**
 * Decodes the 11 fixed-range MSRs (MTRRfix64K_00000, MTRRfix16K_80000, _A0000, MTRRfix4K_C0000 …
 * _F8000), 8 type bytes each, lowest byte lowest address. Throws naming `msrs[i]` for a byte that is
 * not an MTRR type.
 */
export function fixedRangesFromMsrs(msrs: readonly bigint[]): MtrrType[] {
  if (!Array.isArray(msrs) || msrs.length !== NUM_FIXED_RANGES / 8) {
    throw new InvalidArgumentError('msrs', msrs, `an array of ${NUM_FIXED_RANGES / 8} 64-bit MSR values`);
  }
  const types: MtrrType[] = [];
  msrs.forEach((msr, i) => {
    checkU64(`msrs[${i}]`, msr);
    for (let byte = 0; byte < 8; byte++) {
      types.push(decodeMtrrType(Number((msr >> BigInt(byte * 8)) & 0xffn), `msrs[${i}]`));
    }
  });
  return types;
}

/** Encodes a variable range as its PHYSBASE/PHYSMASK MSR values. */
export function variableRangeToMsrs(range: VariableRange): { physBase: bigint; physMask: bigint } {
  return {
    physBase: range.base | BigInt(encodeMemoryType(range.type)),
    physMask: range.mask | (range.valid ? 0x800n : 0n),
  };
}

/**
 * Which fixed-range byte covers `address` (below 1 MiB) and the granule that byte covers, as a page
 * order: 64 KiB steps below 0x80000 (order 4), 16 KiB steps below 0xC0000 (order 2), then 4 KiB
 * (order 0). `undefined` at or above 1 MiB.
 */
export function fixedRangeIndex(address: Paddr): { index: number; granuleOrder: 0 | 2 | 4 } | undefined {
  checkU64('address', address);
  if (address >= ONE_MIB) return undefined;
  const a = Number(address);
  if (a < 0x80000) return { index: a >> 16, granuleOrder: 4 };
  if (a < 0xc0000) return { index: 8 + ((a - 0x80000) >> 14), granuleOrder: 2 };
  return { index: 24 + ((a - 0xc0000) >> 12), granuleOrder: 0 };
}

/** The 88 fixed-range types, each chosen by `typeAt(start)` from the first address its byte covers. */
export function fixedRangesFrom(typeAt: (start: number) => MtrrType): MtrrType[] {
  const types: MtrrType[] = [];
  for (let i = 0; i < NUM_FIXED_RANGES; i++) {
    const start = i < 8 ? i << 16 : i < 24 ? 0x80000 + ((i - 8) << 14) : 0xc0000 + ((i - 24) << 12);
    const type = typeAt(start);
    checkMtrrType(`typeAt(0x${start.toString(16)})`, type);
    types.push(type);
  }
  return types;
}

/**
 * The MTRR type of the naturally aligned `2^order`-page block that holds `address`, as Xen's
 * `mtrr_get_type`, or `{ split: true }` when the block is not uniform enough for one answer.
 *
 * 1. MTRRs disabled: UC.
 * 2. Block below 1 MiB with fixed ranges enabled: the fixed byte, or split if the block is larger than
 *    the byte's granule (64 KiB, 16 KiB or 4 KiB).
 * 3. Variable ranges (a range matches when block and base agree on the mask bits above the block size):
 *    none → the default type; all of one type → it; different types → split at order > 0, else UC if
 *    any is UC, WT for exactly {WT, WB}, otherwise (undefined architecturally) the last matching pair's.
 *
 * QUIRK (kept from Xen): at order > 0 the mask bits below the block size are ignored, so a range smaller
 * than the block counts as covering all of it and the default type of the rest is never considered.
 */
export function mtrrGetType(state: MtrrState, address: Paddr, order: PageOrder): MtrrType | Split {
  if (!(state instanceof MtrrState)) {
    throw new InvalidArgumentError('state', state, 'an MtrrState');
  }
  checkU64('address', address);
  checkOrder('order', order);
  if (!state.enabled) return 'UC';

  const blockMask = MAX_U64 ^ ((0x1000n << BigInt(order)) - 1n);
  const pa = address & blockMask;
  if (pa < ONE_MIB && state.fixedEnabled) {
    const fixed = fixedRangeIndex(pa as Paddr)!; // address with low bits cleared: still an address
    if (order > fixed.granuleOrder) return SPLIT;
    return state.fixedRanges[fixed.index]!;
  }

  const matched = new Set<MtrrType>();
  let last: MtrrType | undefined;
  for (const range of state.variableRanges) {
    if (!range.valid) continue;
    const mask = range.mask & blockMask;
    if ((pa & mask) !== (range.base & mask)) continue;
    // With no overlapping pairs, a 4K lookup has at most one match: take it at once.
    if (!state.overlapped && order === 0) return range.type;
    matched.add(range.type);
    last = range.type;
  }

  if (last === undefined) return state.defaultType;
  if (matched.size === 1) return last;
  if (order > 0) return SPLIT;
  if (matched.has('UC')) return 'UC';
  if (matched.size === 2 && matched.has('WT') && matched.has('WB')) return 'WT';
  return last;
}
