/**
 * hvmloader's phase 3 as a pure computation: give each placement unit an address in the low hole, the
 * high (64-bit) window or the I/O window, or none ("no space", the BAR is left as it is). The `bump`
 * method is hvmloader's: a cursor per window, each unit at the cursor rounded up to its alignment,
 * stepped past E820_RESERVED regions in the low hole. The `firstFit` method (the congruent policy's)
 * searches the free gaps for the lowest address with the unit's 2 MiB target, then for the lowest
 * naturally aligned one.
 */
import { BAR_RELOC_THRESH, PAGE_BYTES, SUPERPAGE_BYTES } from './constants.js';
import { checkOverlap, type MemoryRegion } from './hole.js';
import { type PlacementUnit, roundUp } from './policy.js';
import { dev, prillx } from './scan.js';

/** Addresses `[base, max)`. */
export interface AddressWindow {
  readonly base: bigint;
  readonly max: bigint;
}

/** Which window a BAR went to. */
export type WindowName = 'low' | 'high' | 'io';

/** What the placement loop works on. */
export interface AllocationInput {
  /** In placement order. */
  readonly units: readonly PlacementUnit[];
  /** `mmio_total` after the scan (the units' room). */
  readonly mmioTotal: bigint;
  /** `bar64_relocate` after the hole was sized. */
  readonly bar64Relocate: boolean;
  /** `[pci_mem_start, pci_mem_end)`. */
  readonly low: AddressWindow;
  /** `[max(high_mem_pgend << 12, 4 GiB), 2^phys_bits)`. */
  readonly high: AddressWindow;
  /** `[0xC000, 0x10000)`. */
  readonly io: AddressWindow;
  /** E820_RESERVED regions: low-hole units step past them. */
  readonly reserved: readonly MemoryRegion[];
  /** `bump` (hvmloader's cursor) or `firstFit` (free-gap search with 2 MiB targets). */
  readonly method: 'bump' | 'firstFit';
  /** pageAligned's rule: a unit never starts in the last page of another device's unit. */
  readonly pageOwnership: boolean;
}

/** Where one unit went. */
export interface UnitPlacement {
  readonly unit: PlacementUnit;
  readonly window: WindowName;
  /** The unit's start; undefined: no space (hvmloader leaves the BAR unprogrammed). */
  readonly addr: bigint | undefined;
}

/** The outcome of the placement loop. */
export interface Allocation {
  /** One per unit, in placement order. */
  readonly placements: readonly UnitPlacement[];
  /** `pci_hi_mem_start` (0n: nothing went high). */
  readonly pciHiMemStart: bigint;
  /** `pci_hi_mem_end`: the high window's end rounded up to the alignment of its start. */
  readonly pciHiMemEnd: bigint;
  /** hvmloader's "no space for resource" messages. */
  readonly log: readonly string[];
}

/** Places `input.units`; see the module comment. */
export function allocate(input: AllocationInput): Allocation {
  return input.method === 'bump' ? bump(input) : firstFit(input);
}

/** The end of a high window that starts at `start` and is used up to `used`: aligned like its start. */
export function highWindowEnd(start: bigint, used: bigint): bigint {
  if (start === 0n) return 0n;
  return ((used - 1n) | ((start & -start) - 1n)) + 1n;
}

// ---- hvmloader's cursor ----------------------------------------------------------------------

function bump(input: AllocationInput): Allocation {
  const low = { ...input.low };
  const high = { ...input.high };
  const io = { ...input.io };
  const log: string[] = [];
  const placements: UnitPlacement[] = [];
  // pageAligned: the page each cursor's last unit ends in, and whose it is.
  const lastPage = new Map<object, { page: bigint; owner: number | undefined }>();
  let mmioTotal = input.mmioTotal;
  let pciHiMemStart = 0n;
  for (const unit of input.units) {
    // Larger devices go high first: the list is in descending size order.
    const using64 =
      unit.is64 && input.bar64Relocate && (mmioTotal > low.max - low.base || unit.size > BAR_RELOC_THRESH);
    let resource: { base: bigint; max: bigint };
    let window: WindowName;
    if (unit.memory) {
      if (using64) {
        high.base = roundUp(high.base, unit.align);
        if (pciHiMemStart === 0n) pciHiMemStart = high.base; // recorded even if the BAR then fails
        resource = high;
        window = 'high';
      } else {
        resource = low;
        window = 'low';
      }
      if (unit.size <= BAR_RELOC_THRESH) mmioTotal -= unit.room;
    } else {
      resource = io;
      window = 'io';
    }
    let base = roundUp(resource.base, unit.align);
    const last = lastPage.get(resource);
    if (
      input.pageOwnership &&
      resource !== io &&
      last !== undefined &&
      base / PAGE_BYTES === last.page &&
      (last.owner === undefined || last.owner !== unit.owner)
    ) {
      base = roundUp((last.page + 1n) * PAGE_BYTES, unit.align);
    }
    if (resource === low) base = pastReserved(base, unit.size, input.reserved);
    const end = base + unit.size;
    if (end < resource.base || end > resource.max || end > 1n << 64n) {
      const bar = unit.members[0]!.bar;
      log.push(
        `pci dev ${dev(bar.devfn)} bar ${hex2(bar.reg)} size ${prillx(unit.size)}: no space for resource!`,
      );
      placements.push({ unit, window, addr: undefined });
      continue;
    }
    resource.base = end;
    lastPage.set(resource, { page: (end - 1n) / PAGE_BYTES, owner: unit.owner });
    placements.push({ unit, window, addr: base });
  }
  return { placements, pciHiMemStart, pciHiMemEnd: highWindowEnd(pciHiMemStart, high.base), log };
}

/**
 * hvmloader's RMRR loop: while the lowest reserved region ending above `base` (at or below 4 GiB)
 * overlaps `[base, base + size)`, move past it, aligned to `size`.
 */
function pastReserved(base: bigint, size: bigint, reserved: readonly MemoryRegion[]): bigint {
  let next = nextReserved(base, reserved);
  while (next !== undefined && checkOverlap(base, size, next.addr, next.size)) {
    base = roundUp(next.addr + next.size, size);
    next = nextReserved(base, reserved);
  }
  return base;
}

/** Xen's `find_next_rmrr`: the region with the lowest end above `base` and at most 4 GiB (ties: the last). */
function nextReserved(base: bigint, reserved: readonly MemoryRegion[]): MemoryRegion | undefined {
  const base32 = base & 0xffff_ffffn; // the C function takes a uint32_t
  let found: MemoryRegion | undefined;
  let minEnd = 1n << 32n;
  for (const region of reserved) {
    const end = region.addr + region.size;
    if (end > base32 && end <= minEnd) {
      found = region;
      minEnd = end;
    }
  }
  return found;
}

// ---- congruent's free-gap search ---------------------------------------------------------------

/** Used intervals `[start, end)` of one window, sorted and disjoint. */
class Space {
  private readonly used: [bigint, bigint][] = [];

  constructor(readonly window: AddressWindow) {}

  /** Bytes of the window not used. */
  free(): bigint {
    let used = 0n;
    for (const [s, e] of this.used) used += e - s;
    return this.window.max - this.window.base - used;
  }

  /** Marks `[start, end)` used (clipped to the window). */
  take(start: bigint, end: bigint): void {
    const s = start < this.window.base ? this.window.base : start;
    const e = end > this.window.max ? this.window.max : end;
    if (s >= e) return;
    this.used.push([s, e]);
    this.used.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    // Merge overlapping or touching intervals so `gaps` stays simple.
    for (let i = this.used.length - 1; i > 0; i--) {
      const prev = this.used[i - 1]!;
      const cur = this.used[i]!;
      if (cur[0] <= prev[1]) {
        if (cur[1] > prev[1]) prev[1] = cur[1];
        this.used.splice(i, 1);
      }
    }
  }

  /** The free gaps `[start, end)`, lowest first. */
  *gaps(): Generator<[bigint, bigint]> {
    let cursor = this.window.base;
    for (const [s, e] of this.used) {
      if (s > cursor) yield [cursor, s];
      if (e > cursor) cursor = e;
    }
    if (cursor < this.window.max) yield [cursor, this.window.max];
  }

  /** The lowest free start for `size` bytes aligned to `align`, at `target` modulo 2 MiB if given. */
  find(size: bigint, align: bigint, target: bigint | undefined): bigint | undefined {
    if (target !== undefined) {
      for (const [s, e] of this.gaps()) {
        const g = s + ((((target - s) % SUPERPAGE_BYTES) + SUPERPAGE_BYTES) % SUPERPAGE_BYTES);
        if (g + size <= e) return g;
      }
    }
    for (const [s, e] of this.gaps()) {
      const g = roundUp(s, align);
      if (g + size <= e) return g;
    }
    return undefined;
  }
}

function firstFit(input: AllocationInput): Allocation {
  const low = new Space(input.low);
  for (const region of input.reserved) low.take(region.addr, region.addr + region.size);
  const high = new Space(input.high);
  const io = new Space(input.io);
  const log: string[] = [];
  const placements: UnitPlacement[] = [];
  let mmioTotal = input.mmioTotal;
  let hiStart: bigint | undefined;
  let hiEnd = 0n;
  for (const unit of input.units) {
    const using64 =
      unit.is64 && input.bar64Relocate && (mmioTotal > low.free() || unit.size > BAR_RELOC_THRESH);
    const window: WindowName = !unit.memory ? 'io' : using64 ? 'high' : 'low';
    if (unit.memory && unit.size <= BAR_RELOC_THRESH) mmioTotal -= unit.room;
    const space = window === 'io' ? io : window === 'high' ? high : low;
    const addr = space.find(unit.size, unit.align, unit.memory ? unit.target : undefined);
    if (addr === undefined) {
      const bar = unit.members[0]!.bar;
      log.push(
        `pci dev ${dev(bar.devfn)} bar ${hex2(bar.reg)} size ${prillx(unit.size)}: no space for resource!`,
      );
      placements.push({ unit, window, addr: undefined });
      continue;
    }
    space.take(addr, addr + unit.size);
    if (window === 'high') {
      if (hiStart === undefined || addr < hiStart) hiStart = addr;
      if (addr + unit.size > hiEnd) hiEnd = addr + unit.size;
    }
    placements.push({ unit, window, addr });
  }
  const pciHiMemStart = hiStart ?? 0n;
  return { placements, pciHiMemStart, pciHiMemEnd: highWindowEnd(pciHiMemStart, hiEnd), log };
}

function hex2(value: number): string {
  return value.toString(16).padStart(2, '0');
}
