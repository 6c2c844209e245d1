/**
 * Placement policies: the order BARs are placed in and the room each takes. All four run hvmloader's
 * flow (hole sizing, 64-bit relocation, descending sizes); they differ in the units they place.
 * - `hvmloader`: Xen's. Each BAR is a unit of its own size: BARs under 4 KiB of different devices can
 *   share a page (XSA-461's hazard when one of them is passed through).
 * - `seabios`: SeaBIOS's `PCI_DEVICE_MEM_MIN`: every memory BAR (and ROM) takes at least 4 KiB,
 *   aligned to 4 KiB.
 * - `pageAligned`: seed 002's Linux proposal, as its goal states it: no page holds BARs of two
 *   devices. BARs under 4 KiB go last, grouped by device, each device's group starting on a new page;
 *   BARs of one device may still share a page.
 * - `congruent` (ours): each BAR's guest address keeps its host address modulo 2 MiB where it can, and
 *   BARs under 4 KiB keep their host page layout: the BARs in one host page form a 4 KiB unit that
 *   keeps their offsets. Natural alignment already makes a BAR of 2 MiB or more congruent.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { PAGE_BYTES, SUPERPAGE_BYTES } from './constants.js';
import type { ScannedBar } from './scan.js';

/** A placement policy (see the module comment). */
export type PlacementPolicyName = 'hvmloader' | 'seabios' | 'pageAligned' | 'congruent';

/** Every policy, Xen's first. */
export const PLACEMENT_POLICIES: readonly PlacementPolicyName[] = Object.freeze([
  'hvmloader',
  'seabios',
  'pageAligned',
  'congruent',
]);

/** One BAR of a unit and where it sits inside it. */
export interface UnitMember {
  readonly bar: ScannedBar;
  /** Byte offset from the unit's start. */
  readonly offset: bigint;
}

/** What the placement loop places at once: one BAR, or (congruent) the BARs of one host page. */
export interface PlacementUnit {
  readonly members: readonly UnitMember[];
  /** Bytes taken: a power of two. */
  readonly size: bigint;
  /** Alignment of the unit's start: its size. */
  readonly align: bigint;
  /**
   * What the unit counts in `mmio_total`: its size, plus (pageAligned) the rest of the last page of a
   * device's group of sub-page BARs, which no other device may use.
   */
  readonly room: bigint;
  /** Placed in memory space (hvmloader's memory test of the first member). */
  readonly memory: boolean;
  /** Every member is a 64-bit BAR, so the unit may go above 4 GiB. */
  readonly is64: boolean;
  /** Congruent: the start must be this modulo 2 MiB where it can (a host address modulo 2 MiB). */
  readonly target: bigint | undefined;
  /** The devfn owning the unit's pages, for `pageAligned` (undefined: several devices). */
  readonly owner: number | undefined;
}

/** Throws unless `value` names a policy. */
export function checkPolicy(value: unknown): asserts value is PlacementPolicyName {
  if (!PLACEMENT_POLICIES.includes(value as PlacementPolicyName)) {
    throw new InvalidArgumentError('policy', value, `one of ${PLACEMENT_POLICIES.join(', ')}`);
  }
}

/** hvmloader's list: descending size, discovery order among equal sizes (a stable sort). */
export function hvmloaderOrder(bars: readonly ScannedBar[]): ScannedBar[] {
  return [...bars].sort((a, b) => (a.size === b.size ? a.seq - b.seq : a.size > b.size ? -1 : 1));
}

/**
 * The units `policy` places, in order. `hostAddress` gives a BAR's host address when known (the
 * `congruent` policy needs it; without one a BAR is placed as hvmloader would). `congruentTargets`:
 * false gives congruent's page-only plan (offsets within a page kept, no 2 MiB targets).
 */
export function placementUnits(
  policy: PlacementPolicyName,
  bars: readonly ScannedBar[],
  hostAddress: (bar: ScannedBar) => bigint | undefined,
  congruentTargets = true,
): PlacementUnit[] {
  checkPolicy(policy);
  const sorted = hvmloaderOrder(bars);
  const single = (bar: ScannedBar, size = bar.size): PlacementUnit => ({
    members: [{ bar, offset: 0n }],
    size,
    align: size,
    room: size,
    memory: bar.memory,
    is64: bar.is64,
    target: undefined,
    owner: bar.devfn,
  });
  const subPage = (bar: ScannedBar): boolean => bar.memory && bar.size < PAGE_BYTES;
  switch (policy) {
    case 'hvmloader':
      return sorted.map((bar) => single(bar));
    case 'seabios':
      return sorted.map((bar) => single(bar, bar.memory && bar.size < PAGE_BYTES ? PAGE_BYTES : bar.size));
    case 'pageAligned': {
      // Sub-page BARs after every larger one (so pages start aligned), one device's together.
      const small = sorted.filter(subPage);
      const devfns = [...new Set(small.map((b) => b.devfn))].sort((a, b) => a - b);
      const grouped = devfns.flatMap((devfn) => {
        const group = small.filter((b) => b.devfn === devfn).map((bar) => single(bar));
        // Descending powers of two pack without gaps, so the group ends `total` bytes after its page.
        const total = group.reduce((sum, u) => sum + u.size, 0n);
        const last = group.length - 1;
        const padding = roundUp(total, PAGE_BYTES) - total;
        return group.map((u, i) => (i === last ? { ...u, room: u.size + padding } : u));
      });
      return [...sorted.filter((b) => !subPage(b)).map((bar) => single(bar)), ...grouped];
    }
    case 'congruent': {
      const units: { unit: PlacementUnit; seq: number }[] = [];
      const pages = new Map<bigint, ScannedBar[]>();
      for (const bar of sorted) {
        const host = bar.memory ? hostAddress(bar) : undefined;
        if (host !== undefined && bar.size < PAGE_BYTES) {
          const page = host & ~(PAGE_BYTES - 1n);
          pages.set(page, [...(pages.get(page) ?? []), bar]);
          continue;
        }
        const target =
          congruentTargets && host !== undefined && bar.size < SUPERPAGE_BYTES
            ? host % SUPERPAGE_BYTES
            : undefined;
        units.push({ unit: { ...single(bar), target }, seq: bar.seq });
      }
      for (const [page, members] of pages) {
        const devfns = new Set(members.map((b) => b.devfn));
        units.push({
          unit: {
            members: members.map((bar) => ({ bar, offset: hostAddress(bar)! - page })),
            size: PAGE_BYTES,
            align: PAGE_BYTES,
            room: PAGE_BYTES,
            memory: true,
            is64: members.every((b) => b.is64),
            target: congruentTargets ? page % SUPERPAGE_BYTES : undefined,
            owner: devfns.size === 1 ? members[0]!.devfn : undefined,
          },
          seq: Math.min(...members.map((b) => b.seq)),
        });
      }
      return units
        .sort((a, b) => (a.unit.size === b.unit.size ? a.seq - b.seq : a.unit.size > b.unit.size ? -1 : 1))
        .map((u) => u.unit);
    }
  }
}

/**
 * `mmio_total` and `bar64_relocate` as hvmloader's scan adds them up, over `units`: a 64-bit unit over
 * 1 GiB sets `bar64Relocate` (and counts nothing); every other memory unit, and every ROM, counts its
 * room. With hvmloader's units this is hvmloader's sum; the other policies count the room they take.
 */
export function mmioDemand(units: readonly PlacementUnit[]): { mmioTotal: bigint; bar64Relocate: boolean } {
  let mmioTotal = 0n;
  let bar64Relocate = false;
  for (const unit of units) {
    if (unit.is64 && unit.size > 1n << 30n) bar64Relocate = true;
    else if (unit.memory || unit.members.some((m) => m.bar.kind === 'rom')) mmioTotal += unit.room;
  }
  return { mmioTotal, bar64Relocate };
}

/** `value` rounded up to a multiple of `align` (a power of two). */
export function roundUp(value: bigint, align: bigint): bigint {
  return (value + align - 1n) & ~(align - 1n);
}
