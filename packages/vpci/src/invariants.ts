/**
 * `checkInvariants(machine)`: every violation of the engine's invariants (ARCHITECTURE.md), with the
 * frames and devices involved. Under `hardened` the list must always be empty; under `xen` it shows
 * Xen's known holes.
 */
import { gfn, MAX_FRAME, type P2mExtent } from '@vpci/p2m';
import type { EngineContext } from './context.js';
import type { Bar, PciDevice } from './device.js';
import type { Domain } from './domain.js';
import { effectiveOwner, hostBars } from './modify-bars.js';
import { msixBir, msixGuestFrames } from './msix.js';
import { sbdfKey } from './sbdf.js';

/**
 * One violation. Frames are numbers (gfn: guest, mfn: machine); `domain` is the domain whose p2m
 * holds the problem.
 * - `msix-mapped` (3): an MSI-X table or PBA page is mapped while the device decodes memory.
 * - `subpage-shared` (4): the domain maps a host page holding a BAR of `other`, owned by another domain.
 * - `page-unmapped` (5, 6): a page an enabled BAR needs is not mapped.
 * - `wrong-mfn` (6): a page of an enabled BAR maps a machine frame no enabled BAR there explains.
 * - `unexplained-mapping` (6): an MMIO mapping that no enabled BAR covers.
 * - `rangeset-not-empty` (23): a BAR's set holds frames while no operation is pending for it.
 * - `probe-mapped` (8): an enabled BAR is at a sizing-probe or half-written address.
 */
export type Violation =
  | {
      readonly kind: 'msix-mapped';
      readonly domain: number;
      readonly sbdf: string;
      readonly gfn: number;
      readonly mfn: number | undefined;
    }
  | {
      readonly kind: 'subpage-shared';
      readonly domain: number;
      readonly gfn: number;
      readonly mfn: number;
      readonly other: string;
      readonly otherDomain: number;
    }
  | {
      readonly kind: 'page-unmapped';
      readonly domain: number;
      readonly sbdf: string;
      readonly bar: number;
      readonly gfn: number;
      readonly count: number;
    }
  | {
      readonly kind: 'wrong-mfn';
      readonly domain: number;
      readonly sbdf: string;
      readonly bar: number;
      readonly gfn: number;
      readonly mfn: number;
      readonly count: number;
    }
  | {
      readonly kind: 'unexplained-mapping';
      readonly domain: number;
      readonly gfn: number;
      readonly mfn: number;
      readonly count: number;
    }
  | {
      readonly kind: 'rangeset-not-empty';
      readonly sbdf: string;
      readonly bar: number;
      readonly frames: string;
    }
  | {
      readonly kind: 'probe-mapped';
      readonly sbdf: string;
      readonly bar: number;
      readonly guestAddr: bigint;
    };

/** An enabled BAR's guest range and its guest → machine shift. */
interface Window {
  readonly device: PciDevice;
  readonly bar: Bar;
  readonly first: number;
  readonly last: number;
  /** mfn - gfn for every page of the BAR. */
  readonly shift: number;
}

/**
 * What may have changed since the last check, for a check that only looks there (a replay checks
 * after every line, and a line touches one or two devices). Everything a violation depends on must be
 * covered: the devices whose vPCI state changed, and per domain the guest frames whose p2m entries or
 * enabled BARs may have changed. Ownership and host BAR addresses must not have changed (the sharing
 * check then needs every domain): check without a scope.
 */
export interface InvariantScope {
  readonly devices: ReadonlySet<PciDevice>;
  readonly frames: ReadonlyMap<Domain, readonly (readonly [number, number])[]>;
  /**
   * Machine frames where a device's host BAR moved or its owner changed: every domain's mappings of
   * them are checked for sharing again.
   */
  readonly hostFrames?: readonly (readonly [number, number])[];
}

/**
 * Every violation, in a deterministic order (domains by id, then frames). With a `scope`, only the
 * violations that involve its devices or frames: the same ones a whole check reports there.
 * Ownership must not have changed since the last check when a scope is given.
 */
export function checkInvariants(
  context: EngineContext & { domains(): Domain[] },
  scope?: InvariantScope,
): Violation[] {
  const violations: Violation[] = [];
  const busy = new Set<PciDevice>();
  for (const domain of context.domains())
    for (const vcpu of domain.vcpus) if (vcpu.pending) busy.add(vcpu.pending.device);

  for (const device of scope === undefined ? context.devices() : scope.devices) {
    const vpci = device.vpci;
    if (vpci === undefined || busy.has(device)) continue;
    for (const bar of vpci.bars) {
      if (bar.mem !== undefined && !bar.mem.isEmpty()) {
        violations.push({
          kind: 'rangeset-not-empty',
          sbdf: device.name,
          bar: bar.index,
          frames: bar.mem.toString(),
        });
      }
      if (
        bar.enabled &&
        bar.type !== 'rom' &&
        (bar.halfWritten || bar.guestAddr >= (1n << (bar.type === 'mem64lo' ? 64n : 32n)) - bar.size)
      ) {
        violations.push({
          kind: 'probe-mapped',
          sbdf: device.name,
          bar: bar.index,
          guestAddr: bar.guestAddr,
        });
      }
    }
  }

  // Host pages of every device's BARs with the domain that owns them, made on first use (sharing).
  let pages: HostPage[] | undefined;
  const hostPages = (): HostPage[] => {
    if (pages !== undefined) return pages;
    pages = [];
    for (const device of context.devices()) {
      const owner = effectiveOwner(context, device);
      if (owner === undefined) continue;
      for (const bar of hostBars(device)) {
        const [first, last] = bar.hostFrames();
        pages.push({ first, last, device, owner });
      }
    }
    return pages;
  };
  const hostFrames = scope?.hostFrames === undefined ? undefined : toRanges(scope.hostFrames);
  for (const domain of context.domains()) {
    if (domain.kind === 'dom_xen') continue;
    const dirty = scope?.frames.get(domain);
    const region = dirty === undefined ? undefined : toRanges(dirty);
    if (scope !== undefined && region === undefined) {
      // Only what a moved host BAR can change here: whether a mapped page is another domain's.
      if (hostFrames !== undefined)
        checkShared(domain, hostPages, (e) => meets(hostFrames, e.mfn, e.mfn + e.count - 1), violations);
      continue;
    }
    const inScope =
      region === undefined
        ? () => true
        : (e: P2mExtent) =>
            meets(region, e.gfn, e.gfn + e.count - 1) ||
            (hostFrames !== undefined && meets(hostFrames, e.mfn, e.mfn + e.count - 1));
    const mine = devicesMappedInto(context, domain);
    const windows = windowsOf(mine);
    const inFlight: Ranges = [];
    for (const device of mine) {
      if (!busy.has(device)) continue;
      for (const bar of device.vpci!.bars)
        if (bar.mappable && bar.size > 0n) inFlight.push([...bar.guestFrames()]);
    }
    checkMsix(domain, mine, region, violations);
    checkShared(domain, hostPages, inScope, violations);
    checkMappings(domain, windows, merged(inFlight), inScope, violations);
    checkCoverage(context, domain, windows, busy, () => msixFrames(mine), region, violations);
  }
  return violations;
}

/**
 * Inclusive frame ranges, sorted and merged once built by `merged`. The checks run after every step
 * of a replay or property test, so they use plain arrays and searches rather than building sets.
 */
type Ranges = [number, number][];

/**
 * The devices with vPCI state whose BARs map into `domain` (dom_xen's hidden devices map into the
 * hardware domain's), by SBDF.
 */
function devicesMappedInto(context: EngineContext, domain: Domain): PciDevice[] {
  const owned = domain.isHardware ? [...domain.devices, ...context.domXen.devices] : domain.devices;
  return owned
    .filter((device) => device.vpci !== undefined)
    .sort((a, b) => sbdfKey(a.sbdf) - sbdfKey(b.sbdf));
}

/** The enabled BARs of `devices`, made on first use (many scoped checks never need them). */
function windowsOf(devices: readonly PciDevice[]): () => Window[] {
  let windows: Window[] | undefined;
  return () => {
    if (windows !== undefined) return windows;
    windows = [];
    for (const device of devices) {
      for (const bar of device.vpci!.bars) {
        if (!bar.enabled) continue;
        const [first, last] = bar.guestFrames();
        windows.push({ device, bar, first, last, shift: Number(bar.addr >> 12n) - first });
      }
    }
    return windows;
  };
}

/** A copy of `ranges`, merged. */
function toRanges(ranges: readonly (readonly [number, number])[]): Ranges {
  return merged(ranges.map(([s, e]): [number, number] => [s, e]));
}

/** `ranges` sorted by start with overlapping and adjacent ranges joined. */
function merged(ranges: Ranges): Ranges {
  ranges.sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  for (const [s, e] of ranges) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1] + 1) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Index of the first range of `ranges` (merged) ending at or after `frame`. */
function firstEndingFrom(ranges: Ranges, frame: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid]![1] < frame) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether `[s, e]` meets `ranges` (merged). */
function meets(ranges: Ranges, s: number, e: number): boolean {
  const r = ranges[firstEndingFrom(ranges, s)];
  return r !== undefined && r[0] <= e;
}

/** Whether `ranges` (merged) hold every frame of `[s, e]`. */
function holds(ranges: Ranges, s: number, e: number): boolean {
  const r = ranges[firstEndingFrom(ranges, s)];
  return r !== undefined && r[0] <= s && e <= r[1];
}

/** The parts of `[s, e]` that `ranges` (merged) do not hold. */
function outside(ranges: Ranges, s: number, e: number): Ranges {
  const out: Ranges = [];
  let from = s;
  for (let i = firstEndingFrom(ranges, s); i < ranges.length && from <= e; i++) {
    const [rs, re] = ranges[i]!;
    if (rs > e) break;
    if (rs > from) out.push([from, rs - 1]);
    from = Math.max(from, re + 1);
  }
  if (from <= e) out.push([from, e]);
  return out;
}

/** `ranges` (merged) less `cut` (merged). */
function minus(ranges: Ranges, cut: Ranges): Ranges {
  return ranges.flatMap(([s, e]) => outside(cut, s, e));
}

/**
 * The p2m extents meeting guest frames `[first, last]`. A BAR at a probe address can reach past the
 * last frame a p2m holds (2^52 - 1): nothing is mapped there.
 */
function extentsBetween(domain: Domain, first: number, last: number): Iterable<P2mExtent> {
  if (first > MAX_FRAME) return [];
  return domain.p2m.extentsIn(gfn(first), gfn(Math.min(last, MAX_FRAME)));
}

/** Guest frames of the MSI-X structures of the devices whose BIR BAR is enabled. */
function msixFrames(devices: PciDevice[]): Ranges {
  const pages: Ranges = [];
  for (const device of devices) {
    const vpci = device.vpci!;
    if (vpci.msix === undefined) continue;
    for (let nr = 0; nr < 2; nr++)
      if (vpci.bars[msixBir(vpci, nr)]!.enabled) pages.push(msixGuestFrames(vpci, nr));
  }
  return merged(pages);
}

function checkMsix(
  domain: Domain,
  devices: PciDevice[],
  region: Ranges | undefined,
  violations: Violation[],
): void {
  for (const device of devices) {
    const vpci = device.vpci!;
    if (vpci.msix === undefined || !vpci.barsMapped) continue;
    for (let nr = 0; nr < 2; nr++) {
      const bir = vpci.bars[msixBir(vpci, nr)]!;
      if (!bir.enabled) continue;
      // The structure lies inside its BAR (checked when MSI-X was set up): test the BAR's cached
      // frames first.
      if (region !== undefined && !meets(region, ...bir.guestFrames())) continue;
      const [first, last] = msixGuestFrames(vpci, nr);
      if (region !== undefined && !meets(region, first, last)) continue;
      for (const extent of extentsBetween(domain, first, last)) {
        if (extent.type === 'invalid' || extent.type === 'mmio_dm') continue;
        violations.push({
          kind: 'msix-mapped',
          domain: domain.id,
          sbdf: device.name,
          gfn: extent.gfn,
          mfn: extent.mfn,
        });
      }
    }
  }
}

/** The host pages of one BAR and the domain that owns its device (dom_xen's count as dom0's). */
interface HostPage {
  readonly first: number;
  readonly last: number;
  readonly device: PciDevice;
  readonly owner: number;
}

/** Mapped host pages (of the extents `inScope` picks) that hold a BAR of another domain's device. */
function checkShared(
  domain: Domain,
  hostPages: () => readonly HostPage[],
  inScope: (extent: P2mExtent) => boolean,
  violations: Violation[],
): void {
  let foreign: HostPage[] | undefined;
  for (const extent of domain.p2m.extents()) {
    if (extent.type !== 'mmio_direct' || !inScope(extent)) continue;
    foreign ??= hostPages().filter((page) => page.owner !== domain.id);
    const last = extent.mfn + extent.count - 1;
    for (const page of foreign) {
      const start = Math.max(extent.mfn, page.first);
      const end = Math.min(last, page.last);
      if (start > end) continue;
      violations.push({
        kind: 'subpage-shared',
        domain: domain.id,
        gfn: extent.gfn + (start - extent.mfn),
        mfn: start,
        other: page.device.name,
        otherDomain: page.device.domain!.id,
      });
    }
  }
}

/**
 * Every MMIO mapping lies in an enabled BAR whose guest → machine shift it follows. The frames each
 * shift explains are the union of the enabled BARs with that shift; only what that union leaves out
 * is looked at frame range by frame range.
 */
function checkMappings(
  domain: Domain,
  allWindows: () => Window[],
  inFlight: Ranges,
  inScope: (extent: P2mExtent) => boolean,
  violations: Violation[],
): void {
  // Made on the first extent in scope: most scoped checks find none.
  let explained: Map<number, Ranges> | undefined;
  let windows: Window[] = [];
  const explanations = (): Map<number, Ranges> => {
    windows = allWindows();
    const byShift = new Map<number, Ranges>();
    for (const w of windows) {
      const list = byShift.get(w.shift) ?? [];
      list.push([w.first, w.last]);
      byShift.set(w.shift, list);
    }
    for (const [shift, list] of byShift) byShift.set(shift, merged(list));
    return byShift;
  };
  for (const extent of domain.p2m.extents()) {
    if (extent.type !== 'mmio_direct' || !inScope(extent)) continue;
    const first = extent.gfn as number;
    const end = first + extent.count - 1;
    const shift = (extent.mfn as number) - first;
    explained ??= explanations();
    for (const [s, e] of outside(explained.get(shift) ?? [], first, end)) {
      let gfn = s;
      while (gfn <= e) {
        const next = Math.min(e, ...windows.filter((w) => w.first > gfn).map((w) => w.first - 1));
        if (holds(inFlight, gfn, next)) {
          gfn = next + 1;
          continue;
        }
        const covering = windows.find((w) => w.first <= gfn && gfn <= w.last);
        const pieceEnd = covering === undefined ? next : Math.min(next, covering.last);
        if (covering === undefined) {
          violations.push({
            kind: 'unexplained-mapping',
            domain: domain.id,
            gfn,
            mfn: gfn + shift,
            count: pieceEnd - gfn + 1,
          });
        } else {
          violations.push({
            kind: 'wrong-mfn',
            domain: domain.id,
            sbdf: covering.device.name,
            bar: covering.bar.index,
            gfn,
            mfn: gfn + shift,
            count: pieceEnd - gfn + 1,
          });
        }
        gfn = pieceEnd + 1;
      }
    }
  }
}

/**
 * Every page an enabled BAR needs is mapped: its guest frames less the MSI-X pages, the frames the
 * host memory map removes and the pages `refuseSubpageSharing` withheld.
 */
function checkCoverage(
  context: EngineContext,
  domain: Domain,
  allWindows: () => Window[],
  busy: Set<PciDevice>,
  msixFrames: () => Ranges,
  region: Ranges | undefined,
  violations: Violation[],
): void {
  let e820: Ranges | undefined;
  let msixPages: Ranges | undefined;
  for (const w of allWindows()) {
    if (busy.has(w.device) || (region !== undefined && !meets(region, w.first, w.last))) continue;
    e820 ??= context.e820Frames.toArray() as Ranges;
    msixPages ??= msixFrames();
    let needed = minus([[w.first, w.last]], msixPages);
    if (context.policy.e820OnHostFrames) {
      // The host frames the memory map covers, seen through this BAR's shift.
      const hostE820 = e820.map(([s, e]): [number, number] => [s - w.shift, e - w.shift]);
      needed = minus(needed, hostE820);
    } else {
      needed = minus(needed, e820);
    }
    // Pages refuseSubpageSharing withheld when the device was mapped (shared with another domain then).
    const withheld = w.device.vpci!.withheld;
    if (withheld !== undefined) needed = minus(needed, withheld.toArray() as Ranges);
    for (const [first, last] of needed) {
      let next = first;
      const unmapped = (from: number, count: number): void => {
        violations.push({
          kind: 'page-unmapped',
          domain: domain.id,
          sbdf: w.device.name,
          bar: w.bar.index,
          gfn: from,
          count,
        });
      };
      for (const extent of extentsBetween(domain, first, last)) {
        const start = Math.max(first, extent.gfn);
        if (start > next) unmapped(next, start - next);
        next = Math.max(next, Math.min(last, extent.gfn + extent.count - 1) + 1);
        if (extent.type !== 'mmio_direct') unmapped(start, next - start);
      }
      if (next <= last) unmapped(next, last - next + 1);
    }
  }
}

/** One line of text for a violation, frames in hexadecimal. */
export function describeViolation(violation: Violation): string {
  const hex = (value: number | bigint | undefined): string =>
    value === undefined ? 'none' : `0x${value.toString(16)}`;
  const pages = (count: number): string => `${count} page${count === 1 ? '' : 's'}`;
  switch (violation.kind) {
    case 'msix-mapped':
      return `d${violation.domain}: MSI-X page ${hex(violation.gfn)} of ${violation.sbdf} is mapped (mfn ${hex(violation.mfn)}) while it decodes memory`;
    case 'subpage-shared':
      return `d${violation.domain}: gfn ${hex(violation.gfn)} maps host page ${hex(violation.mfn)}, which holds a BAR of ${violation.other} of d${violation.otherDomain}`;
    case 'page-unmapped':
      return `d${violation.domain}: ${pages(violation.count)} from gfn ${hex(violation.gfn)} of enabled ${violation.sbdf} BAR${violation.bar} not mapped`;
    case 'wrong-mfn':
      return `d${violation.domain}: ${pages(violation.count)} from gfn ${hex(violation.gfn)} of ${violation.sbdf} BAR${violation.bar} map mfn ${hex(violation.mfn)}, not the BAR's`;
    case 'unexplained-mapping':
      return `d${violation.domain}: ${pages(violation.count)} from gfn ${hex(violation.gfn)} map mfn ${hex(violation.mfn)} with no enabled BAR there`;
    case 'rangeset-not-empty':
      return `${violation.sbdf} BAR${violation.bar}: rangeset not empty with nothing pending: ${violation.frames}`;
    case 'probe-mapped':
      return `${violation.sbdf} BAR${violation.bar}: mapped at a probe or half-written address ${hex(violation.guestAddr)}`;
  }
}
