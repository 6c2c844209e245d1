/**
 * The guest MTRRs hvmloader programs on every vCPU after `pci_setup` (`cacheattr_init`): MTRRs on,
 * default type WB; fixed ranges WB except 0xA0000–0xBFFFF WC (WB without WC); then UC variable ranges
 * greedily covering `[pci_mem_start, pci_mem_end)` and then `[pci_hi_mem_start, pci_hi_mem_end)`, at
 * most as many as the CPU has (8 for a domU). What no range covers stays WB, which is how the xenpci
 * BAR escapes UC when the special case moved `pci_mem_end` below it.
 */
import {
  DEFAULT_PHYS_ADDR_BITS,
  InvalidArgumentError,
  MTRR_VCNT,
  MtrrState,
  type MtrrType,
  NUM_FIXED_RANGES,
  variableRange,
} from '@vpci/p2m';
import { PAGE_BYTES } from './constants.js';

/** The windows the UC ranges cover (a `PciSetupResult` has them). */
export interface MtrrWindows {
  /** `pci_mem_start`: the low hole's start. */
  readonly pciMemStart: bigint;
  /** `pci_mem_end`: the low hole's end. */
  readonly pciMemEnd: bigint;
  /** `pci_hi_mem_start`: the high window's start (0n: unused). */
  readonly pciHiMemStart: bigint;
  /** `pci_hi_mem_end`: the high window's end (0n: unused). */
  readonly pciHiMemEnd: bigint;
}

/** What the virtual CPU offers (CPUID and MTRRcap). */
export interface GuestMtrrOptions {
  /** CPUID.1:EDX.MTRR: without it hvmloader programs nothing (MTRRs stay disabled: all UC). Default true. */
  readonly mtrrSupported?: boolean;
  /** MTRRcap.FIX. Default true. */
  readonly fixedRanges?: boolean;
  /** MTRRcap.WC: 0xA0000–0xBFFFF becomes WC, else WB. Default true. */
  readonly writeCombining?: boolean;
  /** MTRRcap.VCNT: variable pairs (1 … 40). Default 8, a domU's. */
  readonly variableCount?: number;
  /** Physical address width for the masks (32 … 52). Default 52. */
  readonly physAddrBits?: number;
}

/** One variable range of a cover: `size` bytes (a power of two) at `base` (a multiple of `size`). */
export interface MtrrBlock {
  /** Start address in bytes, a multiple of `size`. */
  readonly base: bigint;
  /** Length in bytes, a power of two. */
  readonly size: bigint;
}

/** A cover of a window and where it stopped. */
export interface MtrrCover {
  /** The blocks, in address order. */
  readonly blocks: readonly MtrrBlock[];
  /** The end of the covered prefix: the window's end unless the ranges ran out. */
  readonly coveredTo: bigint;
}

/**
 * hvmloader's greedy cover of `[start, end)` with at most `budget` blocks: each block is as large as
 * the alignment of its base allows (its lowest set bit, at least 4 KiB), halved until it ends at or
 * before `end`. Stops at `end` or when the budget is spent (the rest is left uncovered).
 */
export function mtrrCover(start: bigint, end: bigint, budget: number): MtrrCover {
  if (typeof start !== 'bigint' || typeof end !== 'bigint' || start < 0n || end < start)
    throw new InvalidArgumentError('end', end, `a bigint at or above start (${start})`);
  if (start % PAGE_BYTES !== 0n || end % PAGE_BYTES !== 0n)
    throw new InvalidArgumentError('start', start, 'a window with 4 KiB aligned bounds');
  if (!Number.isInteger(budget) || budget < 0)
    throw new InvalidArgumentError('budget', budget, 'a non-negative integer');
  const blocks: MtrrBlock[] = [];
  let base = start;
  while (base !== end && blocks.length < budget) {
    // hvmloader's base is never 0 (it would loop); a 0 base is aligned to anything.
    let size = base === 0n ? 1n << 63n : PAGE_BYTES;
    while (base !== 0n && (base & size) === 0n) size <<= 1n;
    while (base + size > end) size >>= 1n;
    blocks.push({ base, size });
    base += size;
  }
  return { blocks, coveredTo: base };
}

/** The MTRR state hvmloader leaves each vCPU in, for the given windows; see the module comment. */
export function guestMtrrState(windows: MtrrWindows, options: GuestMtrrOptions = {}): MtrrState {
  const variableCount = options.variableCount ?? MTRR_VCNT;
  const physAddrBits = options.physAddrBits ?? DEFAULT_PHYS_ADDR_BITS;
  if (options.mtrrSupported === false) return new MtrrState({ variableCount, physAddrBits });
  const fixed = options.fixedRanges ?? true;
  const wc = options.writeCombining ?? true;
  const fixedRanges = new Array<MtrrType>(NUM_FIXED_RANGES).fill('WB');
  // Bytes 16–23: MTRRfix16K_A0000, 0xA0000–0xBFFFF (the legacy VGA window).
  if (wc) for (let i = 16; i < 24; i++) fixedRanges[i] = 'WC';
  const low = mtrrCover(windows.pciMemStart, windows.pciMemEnd, variableCount);
  const high = mtrrCover(windows.pciHiMemStart, windows.pciHiMemEnd, variableCount - low.blocks.length);
  const variableRanges = [...low.blocks, ...high.blocks].map((b) =>
    variableRange(b.base, b.size, 'UC', physAddrBits),
  );
  return new MtrrState({
    enabled: true,
    fixedEnabled: fixed,
    defaultType: 'WB',
    // Without fixed-range support hvmloader writes none; they keep their reset value (UC, unused).
    ...(fixed ? { fixedRanges } : {}),
    variableRanges,
    variableCount,
    physAddrBits,
  });
}

/** A trace's MTRR layout (docs/trace-format.md "MTRR layouts"), addresses as hex strings. */
export interface MtrrLayoutJson {
  /** MTRRs enabled (MTRRdefType.E). */
  readonly enabled: boolean;
  /** Fixed-range MTRRs enabled (MTRRdefType.FE). */
  readonly fixedEnabled: boolean;
  /** Type of memory no range covers. */
  readonly defaultType: MtrrType;
  /** The 88 fixed-range types, or one type when all are equal. */
  readonly fixed: MtrrType | readonly MtrrType[];
  /** The valid variable ranges: base and size as hexadecimal strings, and the type. */
  readonly variable: readonly { readonly base: string; readonly size: string; readonly type: MtrrType }[];
}

/** `state` as a trace's MTRR layout: valid variable ranges only, `fixed` one type when all are equal. */
export function mtrrLayoutJson(state: MtrrState): MtrrLayoutJson {
  if (!(state instanceof MtrrState)) throw new InvalidArgumentError('state', state, 'an MtrrState');
  const first = state.fixedRanges[0]!;
  const uniform = state.fixedRanges.every((t) => t === first);
  return {
    enabled: state.enabled,
    fixedEnabled: state.fixedEnabled,
    defaultType: state.defaultType,
    fixed: uniform ? first : [...state.fixedRanges],
    variable: state.variableRanges
      .filter((r) => r.valid)
      .map((r) => ({
        base: `0x${r.base.toString(16)}`,
        size: `0x${(r.mask & -r.mask).toString(16)}`,
        type: r.type,
      })),
  };
}
