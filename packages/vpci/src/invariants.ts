/**
 * `checkInvariants(machine)`: every violation of the engine's invariants (ARCHITECTURE.md), with the
 * frames and devices involved. Under `hardened` the list must always be empty; under `xen` it shows
 * Xen's known holes.
 */
import type { P2mExtent } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import type { EngineContext } from './context.js';
import { mappingDomain } from './context.js';
import { type Bar, frameRange, type PciDevice } from './device.js';
import type { Domain } from './domain.js';
import { effectiveOwner, hostBars } from './modify-bars.js';
import { msixBir, msixGuestFrames } from './msix.js';

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

/** Every violation, in a deterministic order (domains by id, then frames). */
export function checkInvariants(context: EngineContext & { domains(): Domain[] }): Violation[] {
  const violations: Violation[] = [];
  const devices = [...context.devices()];
  const busy = new Set<PciDevice>();
  for (const domain of context.domains())
    for (const vcpu of domain.vcpus) if (vcpu.pending) busy.add(vcpu.pending.device);

  for (const device of devices) {
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

  for (const domain of context.domains()) {
    if (domain.kind === 'dom_xen') continue;
    const mine = devices.filter(
      (device) => device.vpci !== undefined && mappingDomain(context, device) === domain,
    );
    const windows: Window[] = [];
    for (const device of mine) {
      for (const bar of device.vpci!.bars) {
        if (!bar.enabled) continue;
        const [first, last] = frameRange(bar.guestAddr, bar.size);
        windows.push({ device, bar, first, last, shift: Number(bar.addr >> 12n) - first });
      }
    }
    const inFlight = new RangeSet();
    for (const device of mine) {
      if (!busy.has(device)) continue;
      for (const bar of device.vpci!.bars)
        if (bar.mappable && bar.size > 0n) inFlight.addRange(...frameRange(bar.guestAddr, bar.size));
    }
    const msixPages = msixFrames(mine);
    checkMsix(domain, mine, violations);
    checkShared(context, domain, devices, violations);
    checkMappings(domain, windows, inFlight, violations);
    checkCoverage(context, domain, windows, busy, msixPages, devices, violations);
  }
  return violations;
}

/** Guest frames of the MSI-X structures of the devices whose BIR BAR is enabled. */
function msixFrames(devices: PciDevice[]): RangeSet {
  const pages = new RangeSet();
  for (const device of devices) {
    const vpci = device.vpci!;
    if (vpci.msix === undefined) continue;
    for (let nr = 0; nr < 2; nr++)
      if (vpci.bars[msixBir(vpci, nr)]!.enabled) pages.addRange(...msixGuestFrames(vpci, nr));
  }
  return pages;
}

function checkMsix(domain: Domain, devices: PciDevice[], violations: Violation[]): void {
  for (const device of devices) {
    const vpci = device.vpci!;
    if (vpci.msix === undefined || !vpci.barsMapped) continue;
    for (let nr = 0; nr < 2; nr++) {
      if (!vpci.bars[msixBir(vpci, nr)]!.enabled) continue;
      const [first, last] = msixGuestFrames(vpci, nr);
      for (const extent of extentsIn(domain, first, last)) {
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

/** Host pages holding a BAR of a device whose (effective) owner is not this domain. */
function checkShared(
  context: EngineContext,
  domain: Domain,
  devices: PciDevice[],
  violations: Violation[],
): void {
  const foreign: { first: number; last: number; device: PciDevice }[] = [];
  for (const device of devices) {
    const owner = effectiveOwner(context, device);
    if (owner === undefined || owner === domain.id) continue;
    for (const bar of hostBars(device)) {
      const [first, last] = frameRange(bar.addr, bar.size);
      foreign.push({ first, last, device });
    }
  }
  if (foreign.length === 0) return;
  for (const extent of domain.p2m.extents()) {
    if (extent.type !== 'mmio_direct') continue;
    for (const page of foreign) {
      const start = Math.max(extent.mfn, page.first);
      const end = Math.min(extent.mfn + extent.count - 1, page.last);
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

/** Every MMIO mapping lies in an enabled BAR whose guest → machine shift it follows. */
function checkMappings(domain: Domain, windows: Window[], inFlight: RangeSet, violations: Violation[]): void {
  for (const extent of domain.p2m.extents()) {
    if (extent.type !== 'mmio_direct') continue;
    let gfn = extent.gfn as number;
    const end = gfn + extent.count - 1;
    const shift = (extent.mfn as number) - gfn;
    while (gfn <= end) {
      // The longest piece from gfn on that one enabled BAR with the same shift explains.
      const fits = windows.filter((w) => w.first <= gfn && gfn <= w.last && w.shift === shift);
      if (fits.length > 0) {
        gfn = Math.min(end, Math.max(...fits.map((w) => w.last))) + 1;
        continue;
      }
      const next = Math.min(end, ...windows.filter((w) => w.first > gfn).map((w) => w.first - 1));
      if (!inFlight.containsRange(gfn, next)) {
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
        continue;
      }
      gfn = next + 1;
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
  windows: Window[],
  busy: Set<PciDevice>,
  msixPages: RangeSet,
  devices: PciDevice[],
  violations: Violation[],
): void {
  for (const w of windows) {
    if (busy.has(w.device)) continue;
    const needed = RangeSet.from([[w.first, w.last]]);
    needed.subtract(msixPages);
    if (context.policy.e820OnHostFrames) {
      context.e820Frames.reportRanges(w.first + w.shift, w.last + w.shift, (s, e) => {
        needed.removeRange(s - w.shift, e - w.shift);
        return undefined;
      });
    } else {
      needed.subtract(context.e820Frames);
    }
    // Pages refuseSubpageSharing withheld when the device was mapped (shared with another domain then).
    const withheld = w.device.vpci!.withheld;
    if (withheld !== undefined) needed.subtract(withheld);
    for (const [first, last] of needed) {
      let gfn = first;
      for (const extent of extentsIn(domain, first, last)) {
        const start = Math.max(first, extent.gfn);
        if (start > gfn) {
          violations.push({
            kind: 'page-unmapped',
            domain: domain.id,
            sbdf: w.device.name,
            bar: w.bar.index,
            gfn,
            count: start - gfn,
          });
        }
        gfn = Math.max(gfn, Math.min(last, extent.gfn + extent.count - 1) + 1);
        if (extent.type !== 'mmio_direct') {
          violations.push({
            kind: 'page-unmapped',
            domain: domain.id,
            sbdf: w.device.name,
            bar: w.bar.index,
            gfn: start,
            count: gfn - start,
          });
        }
      }
      if (gfn <= last) {
        violations.push({
          kind: 'page-unmapped',
          domain: domain.id,
          sbdf: w.device.name,
          bar: w.bar.index,
          gfn,
          count: last - gfn + 1,
        });
      }
    }
  }
}

/** The p2m extents that meet guest frames `[first, last]`, in order. */
function* extentsIn(domain: Domain, first: number, last: number): Generator<P2mExtent> {
  for (const extent of domain.p2m.extents()) {
    if (extent.gfn > last) return;
    if (extent.gfn + extent.count - 1 >= first) yield extent;
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
