/**
 * `checkInvariants(machine)`: every violation of the engine's invariants (docs/architecture.md), with the
 * frames and devices involved. Under `hardened` the list must always be empty; under `xen` it shows
 * Xen's known holes.
 */
import { gfn, MAX_FRAME, type P2mExtent, type P2mExtentRecord } from '@vpci/p2m';
import { IntervalIndex } from '@vpci/rangeset/internal';
import { type DeviceWindows, DeviceWindowsCache, type MsixPages, type Window } from './bar-windows.js';
import { type EngineContext, mappingDomain } from './context.js';
import type { Bar } from './device.js';
import { DeviceCheckStates } from './device-check-state.js';
import type { Domain, PciDevice, Vcpu } from './domain.js';
import { type HostPageSpot, HostPagesCache } from './host-pages.js';
import { MmioExtentsCache, wholeRuns } from './mmio-extents.js';
import { sbdfKey } from './sbdf.js';
import { sortSmall } from './small-sort.js';
import { barSetGeneration, partsGeneration, READ_BY } from './state-generation.js';
import { UnsharedWindows } from './unshared-windows.js';
import { type HostPage, type SortedSpans, wholeHostPages, wholeLayout } from './whole-check-lists.js';
import { heldByWindows } from './window-cover.js';
import { type DomainLayout, DomainWindowIndexes } from './window-index.js';

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

/**
 * What may have changed since the last check, for a check that only looks there (a replay checks
 * after every line, and a line touches one or two devices). Everything a violation depends on must be
 * covered: the devices whose vPCI state changed, per domain the guest frames whose p2m entries or
 * enabled BARs may have changed, and the host frames of moved BARs. A device that changed owner is
 * one of `devices`, with its guest frames in the domain it left and the one it joined, and its host
 * frames in `hostFrames` (every domain's mappings of its pages are then looked at again: whose pages
 * they are changed).
 */
export interface InvariantScope {
  /**
   * Every device whose vPCI state changed since the machine's last check, scoped or not: the
   * sharing check re-reads the host pages of these, and of devices whose BAR registers were written,
   * and keeps the others' from then.
   */
  readonly devices: ReadonlySet<PciDevice>;
  /**
   * Per domain, the guest frame ranges `[first, last]` whose p2m entries or enabled BARs may have changed.
   */
  readonly frames: ReadonlyMap<Domain, readonly (readonly [number, number])[]>;
  /**
   * Machine frames where a device's host BAR moved or its owner changed: every domain's mappings of
   * them are checked for sharing again.
   */
  readonly hostFrames?: readonly (readonly [number, number])[];
}

/**
 * What the checks remember of one machine between calls, each part until its source changes (see
 * the modules): the machine owns it (`Machine.invariantCaches`) and hands it to every check.
 */
export class InvariantCaches {
  /** What the caches below keep per device, in one object on the device (device-check-state.ts). */
  private readonly deviceStates = new DeviceCheckStates();
  readonly windows = new DeviceWindowsCache(this.deviceStates);
  /** Per domain, the enabled windows and MSI-X pages by guest frame (scoped checks only). */
  readonly windowIndexes = new DomainWindowIndexes(this.windows, this.deviceStates);
  readonly hostPages = new HostPagesCache(this.deviceStates);
  /** Per BAR, whether its window's machine frames hold no other domain's page (the lean check's). */
  readonly unsharedWindows = new UnsharedWindows(this.deviceStates);
  readonly mmio = new MmioExtentsCache();
  /**
   * Every domain's `mmio_direct` mappings by machine frame, one entry per p2m extent, kept up to date
   * by the p2ms as they are written (`P2m.watchMmioByMfn`, set up by the machine for each domain): a
   * scoped check asks it which domains map the host pages that moved, instead of asking every domain.
   */
  readonly mmioHolders = new IntervalIndex<Domain>();
  /**
   * How many changes `mmioHolders` has had (the machine counts them as it makes them): an answer
   * found there stands while the count does (`DeviceSnapshot`'s searches of the same host pages,
   * line after line of a reprogramming).
   */
  mmioHoldersChanges = 0;
  /**
   * Whether a scoped check of one domain's frames first asks `regionFindsNothing` (the lean path):
   * `off`, every scoped check takes the general path; `verify` (the model tests) takes the lean path
   * and then the general one too, and throws where the general path finds what the lean one did not.
   */
  leanRegions: 'on' | 'off' | 'verify' = 'on';
  /**
   * How many scoped checks the lean path answered, or a finished map answered without one
   * (`DeviceSnapshot.leftMappedFindsNothing`, which the same switch turns off or to `verify`). For
   * the model tests: it must be taken.
   */
  leanRegionsFound = 0;
  /**
   * Whether a `DeviceSnapshot` taken again after its `change` (`DeviceSnapshot.takeAgain`: the
   * replayer's next line on the same device) keeps what `change` recorded of the device: `off`, it
   * records the device afresh; `verify` (the model tests) keeps it and records afresh too, and throws
   * where the two differ.
   */
  snapshotReuse: 'on' | 'off' | 'verify' = 'on';
  /** How many snapshots kept what `change` recorded (for the model tests: it must happen). */
  snapshotReuses = 0;
  /** Per domain, the devices mapped into it as last sorted (`devicesMappedInto`). */
  readonly sortedDevices = new WeakMap<Domain, SortedDevices>();
  /**
   * The BARs' violations (`rangeset-not-empty`, `probe-mapped`) the last whole check found, with
   * `partsGeneration(READ_BY.rest)` and `barSetGeneration()` as they were read before.
   */
  lastWholeBars:
    | {
        readonly generation: number;
        readonly sets: number;
        readonly violations: readonly Violation[];
      }
    | undefined;
  /**
   * The domains' violations the last whole check found, with the parts they were made of, each kept
   * while what it reads stands (state-generation.ts): while all stand, so do the violations.
   */
  lastWhole:
    | {
        readonly violations: readonly Violation[];
        readonly hostPages: WholeHostPages;
        readonly layouts: WholeLayouts;
        readonly mappings: WholeMappings;
      }
    | undefined;
}

/** Every device's host pages as a whole check listed them, and `partsGeneration(READ_BY.hostPages)` then. */
interface WholeHostPages {
  readonly generation: number;
  readonly pages: SortedSpans<HostPage>;
}

/** Each domain's windows and MSI-X pages as a whole check listed them, and `partsGeneration(READ_BY.windows)` then. */
interface WholeLayouts {
  readonly generation: number;
  readonly byDomain: Map<Domain, DomainLayout>;
}

/**
 * The domains' violations a whole check worked out in full, each domain's (in `domains`) in three
 * parts: its MSI-X pages' (3), then its shared pages' (4), then its mappings' and coverage's (5, 6).
 * All but the shared pages' stand while what the windows and the rest read stands (`generation`,
 * `partsGeneration(MAPPINGS_READ)`) and each domain's frames in flight are the same; the shared
 * pages' read the host pages too.
 */
interface WholeMappings {
  readonly generation: number;
  readonly violations: readonly Violation[];
  readonly domains: readonly DomainParts[];
}

/**
 * Where one domain's parts are in `WholeMappings.violations` (`checkDomains` records them as it
 * makes them), and the MMIO extents its checks read.
 */
interface DomainParts {
  readonly domain: Domain;
  readonly extents: readonly P2mExtent[];
  /** The frames in flight its checks left alone (`inFlightFrames`). */
  readonly inFlight: Ranges;
  /** Its MSI-X pages' violations from here, its shared pages' from `shared`, the rest from `rest` to `end`. */
  readonly from: number;
  readonly shared: number;
  readonly rest: number;
  readonly end: number;
}

/** What the checks read: the engine's context, every domain, and the machine's caches. */
export interface InvariantContext extends EngineContext {
  /** Every domain of the machine. */
  domains(): Domain[];
  /** @internal */
  readonly invariantCaches: InvariantCaches;
}

/**
 * Every violation, in a deterministic order (domains by id, then frames). With a `scope`, only the
 * violations that involve its devices or frames: the same ones a whole check reports there, but
 * the shared pages that cannot be new since the machine's last check (`SharedChanges`).
 */
export function checkInvariants(context: InvariantContext, scope?: InvariantScope): Violation[] {
  const caches = context.invariantCaches;
  const violations: Violation[] = [];
  // Emptied, not made anew: a cleared set is a new table, and most checks find no work pending.
  const busy = busyDevices;
  if (busy.size > 0) busy.clear();
  // A scoped check looks at the domains its scope names and those mapping a moved host page only.
  const domains = scope === undefined ? context.domains() : NO_DOMAINS;
  // A whole check walks every vCPU; a scoped one reads the machine's record of those with work
  // pending (`PendingVcpus`), so comparing the two tests the record.
  if (scope === undefined) for (const domain of domains) for (const vcpu of domain.vcpus) addBusy(busy, vcpu);
  else {
    const pending = context.hardwareDomain.pendingVcpus.vcpus();
    for (let i = 0; i < pending.length; i++) addBusy(busy, pending[i]!);
  }

  // Each device's BARs (23, 8): a whole check walks the machine's list, a scoped one its scope's set,
  // each loop its own (one loop over either met both kinds of iterator and was slower for it).
  if (scope === undefined) wholeBars(context, busy, violations);
  else for (const device of scope.devices) checkBars(device, busy, violations);

  // A whole check lists every device's windows and pages afresh (whole-check-lists.ts), and drops
  // the indexes a scoped check searches: a scoped scope names what changed since the last check,
  // whole or scoped, so the next scoped check builds them again from the machine, and comparing the
  // two tests the indexes.
  if (scope === undefined) {
    caches.windowIndexes.clear();
    caches.hostPages.forget();
    wholeDomains(context, domains, busy, violations);
    return violations;
  }
  caches.windowIndexes.update(context, scope.devices);
  const near = caches.hostPages.indexNear(context, scope.devices);
  // Where pages moved or changed holder since the last check: all the sharing checks need look at
  // beside the scope's guest frames (`SharedChanges`), unless what moved is not known.
  const moved =
    near.moved === undefined ? undefined : near.moved.length === 0 ? NO_RANGES : merged(near.moved);
  // Of the host frames the scope names, only where pages moved or changed owner since the last
  // check can a page be newly shared: elsewhere no host page and (outside the scope's guest
  // frames) no mapping changed. The scope's are kept whole when what moved is not known.
  // (Nothing moved, the usual line and every finishing one: none, without merging the scope's.)
  let hostFrames: Ranges | undefined;
  if (scope.hostFrames !== undefined)
    hostFrames =
      moved === undefined
        ? merged(scope.hostFrames)
        : moved.length === 0
          ? NO_RANGES
          : intersection(merged(scope.hostFrames), moved);
  // The usual line (a vCPU finishing one device's map): one domain's frames, no moved host page,
  // and nothing to find there; proved by a walk that makes nothing (`regionFindsNothing`).
  if (
    caches.leanRegions !== 'off' &&
    (hostFrames === undefined || hostFrames.length === 0) &&
    scope.frames.size === 1 &&
    regionFindsNothing(context, scope, busy, near.index)
  ) {
    caches.leanRegionsFound++;
    if (caches.leanRegions === 'on') return violations;
    // 'verify': the general path over the same scope, which must find nothing either.
    const general: Violation[] = [];
    checkScope(context, scope, busy, hostFrames, moved, near.index, general);
    if (general.length > 0)
      throw new Error(
        `the lean path found nothing where the general path finds ${general.length} violations`,
      );
    return violations;
  }
  checkScope(context, scope, busy, hostFrames, moved, near.index, violations);
  return violations;
}

/**
 * Every device's BARs (`checkBars`), or the last whole check's answer on them while nothing they are
 * read from changed: the BARs' flags, devices and pending work (`READ_BY.rest`: the loop reads no host
 * address, register or MSI-X structure, and a BAR's guest address only while it is enabled) and the
 * BARs' sets (`barSetGeneration`).
 */
function wholeBars(context: InvariantContext, busy: ReadonlySet<PciDevice>, violations: Violation[]): void {
  const caches = context.invariantCaches;
  const last = caches.lastWholeBars;
  const generation = partsGeneration(READ_BY.rest);
  const sets = barSetGeneration();
  if (last !== undefined && last.generation === generation && last.sets === sets) {
    for (let i = 0; i < last.violations.length; i++) violations.push(last.violations[i]!);
    return;
  }
  const found = violations.length;
  for (const device of context.devices()) checkBars(device, busy, violations);
  caches.lastWholeBars = { generation, sets, violations: violations.slice(found) };
}

/**
 * The checks of each domain's mappings (3–6) over the whole machine. They are a pure function of the
 * machine's state, each part kept while what it reads stands (the counts of state-generation.ts,
 * `READ_BY`): while nothing they read changed since the last whole check, its answer stands. The
 * guest frames of BARs of devices with work pending, which the mapping checks leave alone, are
 * compared as they are (`inFlightFrames`) rather than counted: a guest placing a BAR with decoding
 * off changes them only for such a device. While nothing but the devices' host pages changed (the
 * hardware domain sizing and placing a BAR with decoding off), only the sharing check (4) is made
 * again, over the domains' MMIO extents as they were, and each domain's other parts are kept. The
 * host pages, and each domain's windows and MSI-X pages, are listed again only when what they read
 * changed.
 */
function wholeDomains(
  context: InvariantContext,
  domains: readonly Domain[],
  busy: ReadonlySet<PciDevice>,
  violations: Violation[],
): void {
  const caches = context.invariantCaches;
  const last = caches.lastWhole;
  let hostPages = last?.hostPages;
  let layouts = last?.layouts;
  let mappings = last?.mappings;
  const hostPagesStand = hostPages?.generation === partsGeneration(READ_BY.hostPages);
  const mappingsStand =
    mappings?.generation === partsGeneration(MAPPINGS_READ) &&
    inFlightStands(context, mappings.domains, busy);
  if (last !== undefined && hostPagesStand && mappingsStand) {
    for (let i = 0; i < last.violations.length; i++) violations.push(last.violations[i]!);
    return;
  }
  const found = violations.length;
  // Listed before its count is read: a check changes nothing of the machine, but reading a device's
  // BAR registers again after they were written makes `Bar`s (`hostBarFrames`), which count as
  // changes to the host pages.
  if (hostPages === undefined || !hostPagesStand) {
    const pages = wholeHostPages(context);
    hostPages = { generation: partsGeneration(READ_BY.hostPages), pages };
  }
  const pages = hostPages.pages;
  const meeting: SharedPages = (first, last) => pages.meeting(first, last);
  if (layouts !== undefined && mappings !== undefined && mappingsStand) {
    const kept = mappings.violations;
    for (const part of mappings.domains) {
      for (let i = part.from; i < part.shared; i++) violations.push(kept[i]!);
      checkShared(part.domain, part.extents, meeting, violations);
      for (let i = part.rest; i < part.end; i++) violations.push(kept[i]!);
    }
  } else {
    // The windows and MSI-X pages kept while what they read stands, else listed as they are met.
    if (layouts === undefined || layouts.generation !== partsGeneration(READ_BY.windows))
      layouts = { generation: partsGeneration(READ_BY.windows), byDomain: new Map() };
    const made: Violation[] = [];
    const parts: DomainParts[] = [];
    checkDomains(context, domains, busy, undefined, undefined, meeting, made, {
      layouts: layouts.byDomain,
      parts,
    });
    for (let i = 0; i < made.length; i++) violations.push(made[i]!);
    mappings = { generation: partsGeneration(MAPPINGS_READ), violations: made, domains: parts };
  }
  caches.lastWhole = {
    violations: violations.slice(found),
    hostPages,
    layouts,
    mappings,
  };
}

/** What each domain's checks but the sharing one read (`WholeMappings`), but the frames in flight. */
const MAPPINGS_READ = READ_BY.windows | READ_BY.rest;

/** Whether each domain's frames in flight are those its kept parts were found with. */
function inFlightStands(
  context: InvariantContext,
  parts: readonly DomainParts[],
  busy: ReadonlySet<PciDevice>,
): boolean {
  for (let i = 0; i < parts.length; i++) {
    const then = parts[i]!.inFlight;
    const now = inFlightFrames(context, parts[i]!.domain, busy);
    if (now.length !== then.length) return false;
    for (let k = 0; k < now.length; k++)
      if (now[k]![0] !== then[k]![0] || now[k]![1] !== then[k]![1]) return false;
  }
  return true;
}

/**
 * The guest frames of the BARs of the devices with work pending mapped into `domain`: their
 * mappings may be half done, so the mapping checks leave them alone.
 */
function inFlightFrames(context: EngineContext, domain: Domain, busy: ReadonlySet<PciDevice>): Ranges {
  if (busy.size === 0) return NO_RANGES;
  const frames: (readonly [number, number])[] = [];
  for (const device of busy) {
    if (device.vpci === undefined || mappingDomain(context, device) !== domain) continue;
    for (const bar of device.vpci.bars) if (bar.mappable && bar.size > 0n) frames.push(bar.guestFrames());
  }
  return frames;
}

/** A device's BARs: `rangeset-not-empty` (23) and `probe-mapped` (8), unless it has work pending. */
function checkBars(device: PciDevice, busy: ReadonlySet<PciDevice>, violations: Violation[]): void {
  const vpci = device.vpci;
  if (vpci === undefined || busy.has(device)) return;
  for (const bar of vpci.bars) {
    if (bar.mem !== undefined && !bar.mem.isEmpty()) {
      violations.push({
        kind: 'rangeset-not-empty',
        sbdf: device.name,
        bar: bar.index,
        frames: bar.mem.toString(),
      });
    }
    if (bar.enabled && bar.type !== 'rom' && (bar.halfWritten || atAddressTop(bar))) {
      violations.push({
        kind: 'probe-mapped',
        sbdf: device.name,
        bar: bar.index,
        guestAddr: bar.guestAddr,
      });
    }
  }
}

/**
 * Whether a device with no work pending has nothing for its own checks (`checkBars`): no set holding
 * frames, no enabled BAR at a sizing-probe or half-written address.
 */
export function barsFindNothing(device: PciDevice): boolean {
  const found = barsFound;
  checkBars(device, NOBODY_BUSY, found);
  if (found.length === 0) return true;
  found.length = 0;
  return false;
}

/** A set of `device` alone (reused: checks do not nest). */
function busyDevice(device: PciDevice): ReadonlySet<PciDevice> {
  oneBusy.clear();
  return oneBusy.add(device);
}

const oneBusy = new Set<PciDevice>();

/** What `barsFindNothing` found (emptied after each: it is most often empty). */
const barsFound: Violation[] = [];

/** No device with work pending (a check of a device that has none). */
const NOBODY_BUSY: ReadonlySet<PciDevice> = new Set();

/** The devices with work pending, for the check being made (emptied by each: checks do not nest). */
const busyDevices = new Set<PciDevice>();

/** No domains: a scoped check does not take the machine's list (it finds its own, `scopedDomains`). */
const NO_DOMAINS: readonly Domain[] = Object.freeze([]);

/**
 * The general path of a scoped check (`checkDomains` over the scope), its findings pushed to `found`;
 * `moved`: the host frames where pages moved since the last check, when known.
 */
function checkScope(
  context: InvariantContext,
  scope: InvariantScope,
  busy: ReadonlySet<PciDevice>,
  hostFrames: Ranges | undefined,
  moved: Ranges | undefined,
  hostPages: IntervalIndex<HostPageSpot>,
  found: Violation[],
): void {
  checkDomains(
    context,
    scopedDomains(context.invariantCaches, scope, hostFrames),
    busy,
    scope,
    hostFrames,
    (first, last) => hostPages.meeting(first, last, []),
    found,
    undefined,
    moved,
  );
}

/**
 * The domains a scoped check looks at, by id (the order a whole check meets them in): those whose
 * guest frames the scope names, and those with an MMIO mapping on the moved host frames (where a
 * page may have become, or stopped being, another domain's). No other domain's violations can have
 * changed; found without walking every domain (`InvariantCaches.mmioHolders`).
 */
function scopedDomains(
  caches: InvariantCaches,
  scope: InvariantScope,
  hostFrames: Ranges | undefined,
): Domain[] {
  const holders: Domain[] = [];
  if (hostFrames !== undefined)
    for (let i = 0; i < hostFrames.length; i++)
      caches.mmioHolders.meeting(hostFrames[i]![0], hostFrames[i]![1], holders);
  // The usual line names one domain's frames and moved no mapped host page.
  if (holders.length === 0 && scope.frames.size < 2) return [...scope.frames.keys()];
  const found = new Set<Domain>(scope.frames.keys());
  for (let i = 0; i < holders.length; i++) found.add(holders[i]!);
  return [...found].sort((a, b) => a.id - b.id);
}

/** The extents `regionFindsNothing` found, the windows and MSI-X pages it searched (refilled from the start). */
const leanExtents: P2mExtentRecord[] = [];
const leanWindows: Window[] = [];
const leanMsix: MsixPages[] = [];
/** The MSI-X pages meeting one window, as first and last frames (reused). */
const leanCutFirsts: number[] = [];
const leanCutLasts: number[] = [];

/**
 * Whether the general scoped check (`checkDomains`) would find nothing in the one domain the scope
 * names, with no moved host page to look at (`scopedDomains` then gives that domain alone): the
 * usual line, a vCPU finishing one device's map, whose frames are mapped as its BARs ask and meet
 * no one else's. Decided by one search of the p2m per range of the region and, where the answer
 * for its windows is not kept, of the host pages per window or extent, without building the lists
 * the general path builds; a case that needs more (an extent that is not `mmio_direct`, a window
 * reaching past the region) answers false and the general path decides. True only where the general
 * path pushes nothing, condition by condition:
 * 1. every p2m extent on the region's frames and the frames beside it is `mmio_direct`;
 * 2. `checkShared`: no host page on an extent's machine frames is another domain's. With 3, an
 *    extent's machine frames lie in those of the windows holding it, so windows none of whose
 *    machine frames holds another domain's page answer for every extent (unshared-windows.ts: the
 *    answer kept per BAR while the host-page index stands); else each extent is searched;
 * 3. `checkMappings`: each extent is held by the region's windows with its shift;
 * 4. every window meeting the region lies in it. With 3, every extent found lies in one range of the
 *    region (the windows' union holds it), so none is on a frame beside the region and the extents
 *    the general path looks at (`wholeRuns` over `withNeighbours(region)`: the MMIO extents there,
 *    each with the extents continuing it on a frame beside it) are exactly these; and the windows
 *    meeting an extent, which `checkMappings` asks about, are among the region's (the others cannot
 *    advance `heldByWindows`);
 * 5. `checkMsix`: no extent meets an MSI-X page of a device that decodes memory, each page in the
 *    region (with 1, every extent on it is among those found);
 * 6. `checkCoverage`: each window of a device with no work pending has its frames less the MSI-X
 *    pages meeting it held by the extents. The general path also leaves out e820 frames and withheld
 *    pages: cuts that only make less needed, so what holds here holds there.
 */
function regionFindsNothing(
  context: InvariantContext,
  scope: InvariantScope,
  busy: ReadonlySet<PciDevice>,
  hostPages: IntervalIndex<HostPageSpot>,
): boolean {
  // The one domain (keys, not entries: an entry is an array made per step).
  let domain: Domain | undefined;
  for (const d of scope.frames.keys()) domain = d;
  const dirty = domain === undefined ? undefined : scope.frames.get(domain);
  if (domain === undefined || dirty === undefined) return false;
  if (domain.isPseudo) return true;
  const region = merged(dirty);
  const extentCount = extentsAllMmio(domain, region, leanExtents);
  if (extentCount < 0) return false;
  const caches = context.invariantCaches;
  const layout = caches.windowIndexes.of(context, domain, () => devicesMappedInto(context, domain));
  // The lists are refilled from their start and never emptied (`length = 0` gives an array's store
  // up, made again at the next item): each holds its first `count` items, and past them a few
  // objects of earlier checks until written over. In no order and maybe twice (a window meeting two
  // ranges): no condition depends on either.
  const windows = leanWindows;
  const msix = leanMsix;
  const windowCount = layout.collectWindowsMeeting(region, windows);
  const msixCount = layout.collectMsixMeeting(region, msix);
  return leanConditionsHold(
    domain,
    region,
    extentCount,
    windows,
    windowCount,
    msix,
    msixCount,
    busy,
    hostPages,
    caches,
  );
}

/**
 * Whether a scoped check of one device's `frames` in `domain` would find nothing, where no other
 * device's window or MSI-X page meets them and every window of the device lies in them (a line that
 * finished a map of its BARs: `DeviceSnapshot.leftMappedFindsNothing`) and no host page moved on
 * the scope's host frames: `regionFindsNothing` with the device's own windows and MSI-X pages (`own`)
 * for what the domain's index holds there, the device counted busy when `busy` (work pending on it:
 * its windows need not be mapped).
 */
export function deviceRegionFindsNothing(
  context: InvariantContext,
  domain: Domain,
  own: DeviceWindows,
  busy: boolean,
  frames: Ranges,
  hostPages: IntervalIndex<HostPageSpot>,
): boolean {
  const { windows, msixPages } = own;
  const region = merged(frames);
  const extentCount = extentsAllMmio(domain, region, leanExtents);
  return (
    extentCount >= 0 &&
    leanConditionsHold(
      domain,
      region,
      extentCount,
      windows,
      windows.length,
      msixPages,
      msixPages.length,
      busy ? busyDevice(own.device) : NOBODY_BUSY,
      hostPages,
      context.invariantCaches,
    )
  );
}

/**
 * The lean path's conditions (`regionFindsNothing`) but the first over `region` (merged) of `domain`,
 * given the first `extentCount` of `leanExtents` (`extentsAllMmio`), `windowCount` of `windows` and
 * `msixCount` of `msix`: those meeting the region.
 */
function leanConditionsHold(
  domain: Domain,
  region: Ranges,
  extentCount: number,
  windows: readonly Window[],
  windowCount: number,
  msix: readonly MsixPages[],
  msixCount: number,
  busy: ReadonlySet<PciDevice>,
  hostPages: IntervalIndex<HostPageSpot>,
  caches: InvariantCaches,
): boolean {
  const extents = leanExtents;
  return (
    extentsHeldByWindows(windows, windowCount, extents, extentCount) &&
    // (2) after (3), which it rests on when the windows answer it.
    (caches.unsharedWindows.noneShared(
      windows,
      windowCount,
      domain.id,
      hostPages,
      caches.hostPages.indexVersion,
    ) ||
      extentsShareNothing(domain, extents, extentCount, hostPages)) &&
    windowsInRegion(windows, windowCount, region) &&
    msixUnmapped(msix, msixCount, region, extents, extentCount) &&
    windowsCovered(windows, windowCount, msix, msixCount, busy, extents, extentCount)
  );
}

/**
 * Writes into the records of `extents` from its start (`P2m.extentsInto`: no object made per extent)
 * the p2m extents meeting `region` (merged) grown by a frame each side, in gfn order, and returns how
 * many; -1 as soon as one is not `mmio_direct` (condition 1).
 */
function extentsAllMmio(domain: Domain, region: Ranges, extents: P2mExtentRecord[]): number {
  let n = 0;
  for (let r = 0; r < region.length; r++) {
    const first = Math.max(0, region[r]![0] - 1);
    const last = Math.min(MAX_FRAME, region[r]![1] + 1);
    if (first > last) continue;
    const from = n;
    n = domain.p2m.extentsInto(gfn(first), gfn(last), extents, n);
    for (let k = from; k < n; k++) if (extents[k]!.type !== 'mmio_direct') return -1;
  }
  return n;
}

/**
 * The host pages one search of `extentsShareNothing` found, refilled from the start (`collect`) and
 * never emptied: `length = 0` gives an array's store up, made again at the next search.
 */
const leanPages: HostPageSpot[] = [];

/** Whether no host page on the machine frames of `extents` is another domain's (condition 2). */
function extentsShareNothing(
  domain: Domain,
  extents: readonly P2mExtent[],
  extentCount: number,
  hostPages: IntervalIndex<HostPageSpot>,
): boolean {
  const pages = leanPages;
  for (let i = 0; i < extentCount; i++) {
    const extent = extents[i]!;
    const found = hostPages.collect(extent.mfn, extent.mfn + extent.count - 1, pages, 0);
    for (let k = 0; k < found; k++) {
      const owner = pages[k]!.owner;
      if (owner !== undefined && owner !== domain.id) return false;
    }
  }
  return true;
}

/** Whether each extent is held by `windows` with its shift (condition 3). */
function extentsHeldByWindows(
  windows: readonly Window[],
  windowCount: number,
  extents: readonly P2mExtent[],
  extentCount: number,
): boolean {
  for (let i = 0; i < extentCount; i++) {
    const extent = extents[i]!;
    const shift = extent.mfn - extent.gfn;
    if (!heldByWindows(windows, windowCount, extent.gfn, extent.gfn + extent.count - 1, shift)) return false;
  }
  return true;
}

/** Whether every window lies in `region` (condition 4). */
function windowsInRegion(windows: readonly Window[], windowCount: number, region: Ranges): boolean {
  for (let i = 0; i < windowCount; i++) if (!holds(region, windows[i]!.first, windows[i]!.last)) return false;
  return true;
}

/** Whether no extent meets an MSI-X page of a device that decodes memory (condition 5). */
function msixUnmapped(
  msix: readonly MsixPages[],
  msixCount: number,
  region: Ranges,
  extents: readonly P2mExtent[],
  extentCount: number,
): boolean {
  for (let i = 0; i < msixCount; i++) {
    const page = msix[i]!;
    if (!page.device.vpci!.barsMapped) continue;
    if (!holds(region, page.first, page.last)) return false;
    for (let k = 0; k < extentCount; k++) {
      const extent = extents[k]!;
      if (extent.gfn <= page.last && page.first <= extent.gfn + extent.count - 1) return false;
    }
  }
  return true;
}

/**
 * Whether the frames each window of a device without work pending needs, less the MSI-X pages
 * meeting it (all among `msix`: the window is in the region), are held by `extents`, piece by piece
 * (condition 6).
 */
function windowsCovered(
  windows: readonly Window[],
  windowCount: number,
  msix: readonly MsixPages[],
  msixCount: number,
  busy: ReadonlySet<PciDevice>,
  extents: readonly P2mExtent[],
  extentCount: number,
): boolean {
  for (let i = 0; i < windowCount; i++) {
    const w = windows[i]!;
    if (!busy.has(w.device) && !windowHeld(w, msix, msixCount, extents, extentCount)) return false;
  }
  return true;
}

/**
 * Whether the frames of window `w` less the MSI-X pages among the first `msixCount` of `msix`
 * meeting it are held by the first `extentCount` of `extents`, piece by piece. What `checkCoverage`
 * requires mapped is those frames less more cuts (e820 frames, withheld pages), each a part of one
 * such piece: where this holds, it reports nothing.
 */
function windowHeld(
  w: Window,
  msix: readonly MsixPages[],
  msixCount: number,
  extents: readonly P2mExtent[],
  extentCount: number,
): boolean {
  // The MSI-X pages meeting the window, by first frame.
  let cuts = 0;
  for (let k = 0; k < msixCount; k++) {
    const page = msix[k]!;
    if (page.last < w.first || w.last < page.first) continue;
    let j = cuts++;
    for (; j > 0 && leanCutFirsts[j - 1]! > page.first; j--) {
      leanCutFirsts[j] = leanCutFirsts[j - 1]!;
      leanCutLasts[j] = leanCutLasts[j - 1]!;
    }
    leanCutFirsts[j] = page.first;
    leanCutLasts[j] = page.last;
  }
  let from = w.first;
  for (let k = 0; k < cuts; k++) {
    const cutFirst = leanCutFirsts[k]!;
    if (cutFirst > from && !heldByExtents(extents, extentCount, from, cutFirst - 1)) return false;
    from = Math.max(from, leanCutLasts[k]! + 1);
  }
  return from > w.last || heldByExtents(extents, extentCount, from, w.last);
}

/**
 * The checks of each domain's mappings (3–6), over the whole domain without a `scope`, else where
 * it names (`hostFrames`: the scope's host frames where pages moved). A whole check's (`wholeDomains`)
 * gives `whole`: the domains' windows and MSI-X pages it keeps (those not there are listed and put
 * there), and a list told where each domain's parts lie in `violations`. A scoped check that knows
 * where host pages moved since the last check (`moved`) reports only the shared pages that can be
 * new (`SharedChanges`).
 */
function checkDomains(
  context: InvariantContext,
  domains: readonly Domain[],
  busy: ReadonlySet<PciDevice>,
  scope: InvariantScope | undefined,
  hostFrames: Ranges | undefined,
  hostPages: SharedPages,
  violations: Violation[],
  whole?: { readonly layouts: Map<Domain, DomainLayout>; readonly parts: DomainParts[] },
  moved?: Ranges,
): void {
  const caches = context.invariantCaches;
  for (const domain of domains) {
    if (domain.isPseudo) continue;
    const dirty = scope?.frames.get(domain);
    const region = dirty === undefined ? undefined : merged(dirty);
    if (scope !== undefined && region === undefined) {
      // Only what a moved host BAR can change here: whether a mapped page is another domain's.
      if (hostFrames !== undefined && hostFrames.length > 0)
        checkShared(
          domain,
          caches.mmio.mmioExtentsMeeting(domain.p2m, [], hostFrames),
          hostPages,
          violations,
          moved === undefined ? undefined : { guestFrames: NO_RANGES, movedHostFrames: moved },
        );
      continue;
    }
    // The MMIO mappings to look at: all, or those on the region's guest frames or moved host frames,
    // and those next to the region: a p2m write in it can split or join the extent beside it, and a
    // violation is reported per extent (its count, where it starts), so it changes there too. Each
    // with the whole run it belongs to: the p2m can split a run far from the frames it wrote
    // (`wholeRuns`), which renames the violations of the far piece.
    const searched = region === undefined ? undefined : withNeighbours(region);
    const extents =
      searched === undefined
        ? caches.mmio.mmioExtents(domain.p2m)
        : wholeRuns(
            domain.p2m,
            caches.mmio.mmioExtentsMeeting(domain.p2m, searched, hostFrames ?? []),
            searched,
          );
    const inFlight = inFlightFrames(context, domain, busy);
    let layout: DomainLayout;
    if (whole === undefined)
      layout = caches.windowIndexes.of(context, domain, () => devicesMappedInto(context, domain));
    else {
      const kept = whole.layouts.get(domain);
      layout = kept ?? wholeLayout(devicesMappedInto(context, domain));
      if (kept === undefined) whole.layouts.set(domain, layout);
    }
    // The region's windows and MSI-X pages, searched for once: what meets a window or extent inside
    // the region is among them (the usual extent and window are the scope's device's own).
    const near = regionLayout(layout, region);
    const from = violations.length;
    checkMsix(domain, near, violations);
    const shared = violations.length;
    checkShared(
      domain,
      extents,
      hostPages,
      violations,
      moved === undefined || region === undefined
        ? undefined
        : { guestFrames: region, movedHostFrames: moved },
    );
    const rest = violations.length;
    checkMappings(domain, near, merged(inFlight), extents, violations);
    checkCoverage(context, domain, near, busy, extents, violations);
    whole?.parts.push({ domain, extents, inFlight, from, shared, rest, end: violations.length });
  }
}

/**
 * Whether an enabled BAR reaches the top of its address space (`guestAddr >= 2^bits - size`: a sizing
 * probe). Its last guest frame tells without bigint arithmetic unless the BAR ends in the top page or
 * past it: one that ends below the top page ends at least a page below the top.
 */
function atAddressTop(bar: Bar): boolean {
  const wide = bar.type === 'mem64lo';
  if (bar.guestFrames()[1] < (wide ? TOP_PAGE_64 : TOP_PAGE_32)) return false;
  return bar.guestAddr >= (wide ? ADDRESS_SPACE_64 : ADDRESS_SPACE_32) - bar.size;
}

/** The last page of a 32-bit and of a 64-bit address space, and their sizes (constants, not `2 **` per call). */
const TOP_PAGE_32 = 2 ** 20 - 1;
const TOP_PAGE_64 = 2 ** 52 - 1;
const ADDRESS_SPACE_32 = 1n << 32n;
const ADDRESS_SPACE_64 = 1n << 64n;

/** Adds the devices `vcpu`'s pending work is on, if it has any, to `busy`. */
function addBusy(busy: Set<PciDevice>, vcpu: Vcpu): void {
  const pending = vcpu.pending;
  if (pending === undefined) return;
  busy.add(pending.device);
  // A PF's whole-range VF BAR operation (`mapVfBarRanges`) is each of its VFs' work in flight.
  const vfs = pending.vfRanges?.vfs;
  if (vfs !== undefined) for (const vf of vfs) busy.add(vf);
}

/**
 * Inclusive frame ranges, sorted and merged once built by `merged`. The checks run after every step
 * of a replay or property test, so they use plain arrays and searches rather than building sets.
 */
type Ranges = readonly (readonly [number, number])[];

/** No frames (one list for every check that has none, instead of a new one each time). */
const NO_RANGES: Ranges = Object.freeze([]);

/** A domain's device list as last sorted: what it was made from (devices and their vPCI states). */
interface SortedDevices {
  readonly from: readonly (PciDevice | PciDevice['vpci'])[];
  readonly sorted: readonly PciDevice[];
}

/**
 * The devices with vPCI state whose BARs map into `domain` (dom_xen's hidden devices map into the
 * hardware domain's), by SBDF. Remembered per domain while its devices and their vPCI states stay
 * the same (filtering and sorting them in every check allocated more than the check).
 */
function devicesMappedInto(context: InvariantContext, domain: Domain): readonly PciDevice[] {
  const lists = domain.isHardware ? [domain.devices, context.domXen.devices] : [domain.devices];
  const cache = context.invariantCaches.sortedDevices;
  const known = cache.get(domain);
  if (known !== undefined && madeFrom(known.from, lists)) return known.sorted;
  const owned = lists.flat();
  const sorted = owned
    .filter((device) => device.vpci !== undefined)
    .sort((a, b) => sbdfKey(a.sbdf) - sbdfKey(b.sbdf));
  cache.set(domain, { from: owned.flatMap((device) => [device, device.vpci]), sorted });
  return sorted;
}

function madeFrom(from: readonly (PciDevice | PciDevice['vpci'])[], lists: readonly PciDevice[][]): boolean {
  let k = 0;
  for (const list of lists) {
    for (const device of list) if (from[k++] !== device || from[k++] !== device.vpci) return false;
  }
  return k === from.length;
}

/**
 * A copy of `input` sorted by start with overlapping and adjacent ranges joined. Indexed loops, and
 * no sort when already sorted: this runs several times in every check, and destructuring and sorting
 * allocate.
 */
function merged(input: Ranges): Ranges {
  // Already merged (one BAR's frames, the usual region): the list itself, nothing copied.
  let already = true;
  for (let i = 1; i < input.length && already; i++) already = input[i - 1]![1] + 1 < input[i]![0];
  if (already) return input;
  const ranges = sortedByStart(input);
  const out: [number, number][] = [];
  for (let i = 0; i < ranges.length; i++) {
    const range = ranges[i]!;
    const last = out[out.length - 1];
    if (last !== undefined && range[0] <= last[1] + 1) last[1] = Math.max(last[1], range[1]);
    else out.push([range[0], range[1]]);
  }
  return out;
}

/** `ranges` (merged) each grown by one frame on either side (frames stay in `0 … MAX_FRAME`). */
function withNeighbours(ranges: Ranges): Ranges {
  return merged(ranges.map(([s, e]): [number, number] => [Math.max(0, s - 1), Math.min(MAX_FRAME, e + 1)]));
}

/**
 * `input` itself when sorted by start, else a sorted copy. The lists here are most often a few
 * ranges (`sortSmall`: an insertion sort, as `Array.prototype.sort` allocates a work array every
 * call; the library's sort for a long list, where insertion would be quadratic).
 */
function sortedByStart(
  input: readonly (readonly [number, number])[],
): readonly (readonly [number, number])[] {
  let sorted = true;
  for (let i = 1; i < input.length && sorted; i++) sorted = input[i - 1]![0] <= input[i]![0];
  if (sorted) return input;
  return sortSmall(input.slice(), byStart);
}

const byStart = (a: readonly [number, number], b: readonly [number, number]): number => a[0] - b[0];

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

/** Whether `ranges` (merged) hold every frame of `[s, e]`. */
function holds(ranges: Ranges, s: number, e: number): boolean {
  const r = ranges[firstEndingFrom(ranges, s)];
  return r !== undefined && r[0] <= s && e <= r[1];
}

/** The parts of `[s, e]` that `ranges` (merged) do not hold. */
function outside(ranges: Ranges, s: number, e: number): Ranges {
  const out: [number, number][] = [];
  let from = s;
  for (let i = firstEndingFrom(ranges, s); i < ranges.length && from <= e; i++) {
    const rs = ranges[i]![0];
    const re = ranges[i]![1];
    if (rs > e) break;
    if (rs > from) out.push([from, rs - 1]);
    from = Math.max(from, re + 1);
  }
  if (from <= e) out.push([from, e]);
  return out;
}

/** The frames both `a` and `b` (merged) hold. */
function intersection(a: Ranges, b: Ranges): Ranges {
  const out: [number, number][] = [];
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const s = Math.max(a[i]![0], b[j]![0]);
    const e = Math.min(a[i]![1], b[j]![1]);
    if (s <= e) out.push([s, e]);
    if (a[i]![1] < b[j]![1]) i++;
    else j++;
  }
  return out;
}

/** `ranges` (merged) less `cut` (merged). */
function minus(ranges: Ranges, cut: Ranges): Ranges {
  if (cut.length === 0) return ranges;
  const out: (readonly [number, number])[] = [];
  for (let i = 0; i < ranges.length; i++) out.push(...outside(cut, ranges[i]![0], ranges[i]![1]));
  return out;
}

/**
 * The p2m extents meeting guest frames `[first, last]`. A BAR at a probe address can reach past the
 * last frame a p2m holds (2^52 - 1): nothing is mapped there.
 */
function extentsBetween(domain: Domain, first: number, last: number): Iterable<P2mExtent> {
  if (first > MAX_FRAME) return [];
  return domain.p2m.extentsIn(gfn(first), gfn(Math.min(last, MAX_FRAME)));
}

/** The guest frames of MSI-X structures `found` (those meeting some frames), merged. */
function msixFramesMeeting(found: readonly MsixPages[]): Ranges {
  const pages: [number, number][] = [];
  for (let i = 0; i < found.length; i++) pages.push([found[i]!.first, found[i]!.last]);
  return merged(pages);
}

/** Whether `ranges` (merged) hold any frame of `[s, e]`. */
function meetsAny(ranges: Ranges, s: number, e: number): boolean {
  const r = ranges[firstEndingFrom(ranges, s)];
  return r !== undefined && r[0] <= e;
}

/**
 * A domain's windows and MSI-X pages meeting a region (every one without a region), and a search of
 * them by frames: within the region a filter of those lists (in the same order: both are in the
 * layout's order), elsewhere the layout's search.
 */
interface RegionLayout {
  readonly windows: readonly Window[];
  readonly msix: readonly MsixPages[];
  windowsMeeting(first: number, last: number): readonly Window[];
  msixMeeting(first: number, last: number): readonly MsixPages[];
}

function regionLayout(layout: DomainLayout, region: Ranges | undefined): RegionLayout {
  const windows = layout.windowsIn(region);
  const msix = layout.msixIn(region);
  return {
    windows,
    msix,
    windowsMeeting: (first, last) =>
      region !== undefined && holds(region, first, last)
        ? windows.filter((w) => w.first <= last && first <= w.last)
        : layout.windowsMeeting(first, last),
    msixMeeting: (first, last) =>
      region !== undefined && holds(region, first, last)
        ? msix.filter((page) => page.first <= last && first <= page.last)
        : layout.msixMeeting(first, last),
  };
}

function checkMsix(domain: Domain, layout: RegionLayout, violations: Violation[]): void {
  const pages = layout.msix;
  for (let i = 0; i < pages.length; i++) {
    const { device, first, last } = pages[i]!;
    if (!device.vpci!.barsMapped) continue;
    for (const extent of extentsBetween(domain, first, last)) {
      if (extent.type === 'invalid' || extent.type === 'mmio_dm') continue;
      // Named by the first MSI-X page the extent maps, not by where the extent starts: a p2m write
      // elsewhere in the extent (a hole punched pages away) splits it and would rename the violation
      // where no scoped check looks.
      const page = Math.max(extent.gfn, first);
      violations.push({
        kind: 'msix-mapped',
        domain: domain.id,
        sbdf: device.name,
        gfn: page,
        mfn: extent.mfn + (page - extent.gfn),
      });
    }
  }
}

/**
 * The host pages meeting machine frames `[first, last]`, each with its device's owner, in device order
 * or not: a whole check's sorted list or a scoped check's index.
 */
type SharedPages = (first: number, last: number) => HostPage[];

/** Host pages in device (SBDF) order, each device's in its order. */
function pageOrder(a: HostPage, b: HostPage): number {
  return sbdfKey(a.device.sbdf) - sbdfKey(b.device.sbdf) || a.position - b.position;
}

/**
 * Where a scoped check's sharing violations of one domain can be new since the machine's last check
 * (`checkShared`). Such a violation is an extent of the domain's p2m and a host page of another
 * domain on its machine frames, named by the first frame of the page the extent maps: the page's
 * first frame where the extent holds it (`gfn` the page's first frame less the extent's shift),
 * else the extent's first frame (an extent starting inside the page). The first kind is there or
 * not as the p2m entry at that `gfn` and the page are; the second as the extent's boundaries are,
 * which the p2m may draw away from the frames it wrote (`wholeRuns`). So one can be new only where
 * the p2m entries changed (`guestFrames`), where a page moved or changed holder (`movedHostFrames`),
 * or at an extent's first frame; a merged extent of the hardware domain over thousands of BARs then
 * lists none of the pages it held before (issue 16, `guests`). The other pages are a whole check's
 * violations as they were: already reported, and a replay records a violation when first seen.
 */
interface SharedChanges {
  /** The domain's guest frames the scope names (merged): where its p2m entries may have changed. */
  readonly guestFrames: Ranges;
  /** The machine frames (merged) where host pages moved or changed holder since the last check. */
  readonly movedHostFrames: Ranges;
}

/**
 * The host pages on `extent`'s machine frames that `checkShared` reports, in no order: every one
 * without `changed`, else those where a violation can be new (`SharedChanges`), each once.
 */
function pagesToReport(
  extent: P2mExtent,
  hostPages: SharedPages,
  changed: SharedChanges | undefined,
): HostPage[] {
  const first = extent.mfn as number;
  const last = first + extent.count - 1;
  if (changed === undefined) return hostPages(first, last);
  const shift = first - extent.gfn;
  // The pages holding the extent's first frame: those it starts inside, and the one it starts with.
  const found = hostPages(first, first);
  const add = (from: number, to: number): void => {
    const more = hostPages(Math.max(first, from), Math.min(last, to));
    for (let k = 0; k < more.length; k++) if (!found.includes(more[k]!)) found.push(more[k]!);
  };
  const guest = changed.guestFrames;
  for (let r = firstEndingFrom(guest, extent.gfn); r < guest.length && guest[r]![0] + shift <= last; r++)
    add(guest[r]![0] + shift, guest[r]![1] + shift);
  const moved = changed.movedHostFrames;
  for (let r = firstEndingFrom(moved, first); r < moved.length && moved[r]![0] <= last; r++)
    add(moved[r]![0], moved[r]![1]);
  return found;
}

/**
 * Mapped host pages (of MMIO `extents` of `domain`) that hold a BAR of another domain's device: all
 * of them, or with `changed` (a scoped check) those that can be new since the last check.
 */
function checkShared(
  domain: Domain,
  extents: readonly P2mExtent[],
  hostPages: SharedPages,
  violations: Violation[],
  changed?: SharedChanges,
): void {
  // Per extent, the pages on its machine frames, in device order.
  for (let i = 0; i < extents.length; i++) {
    const extent = extents[i]!;
    const meeting = pagesToReport(extent, hostPages, changed);
    // Only other domains' pages count: the usual extent meets its own BAR's pages alone.
    let others = 0;
    for (let k = 0; k < meeting.length; k++) {
      const owner = meeting[k]!.owner;
      if (owner !== undefined && owner !== domain.id) others++;
    }
    if (others === 0) continue;
    const near =
      others === meeting.length
        ? meeting
        : meeting.filter((page) => page.owner !== undefined && page.owner !== domain.id);
    if (near.length > 1) sortSmall(near, pageOrder);
    for (const { device, frames } of near) {
      const start = Math.max(extent.mfn, frames[0]);
      if (start > Math.min(extent.mfn + extent.count - 1, frames[1])) continue;
      violations.push({
        kind: 'subpage-shared',
        domain: domain.id,
        gfn: extent.gfn + (start - extent.mfn),
        mfn: start,
        other: device.name,
        otherDomain: device.domain!.id,
      });
    }
  }
}

/**
 * Every MMIO mapping lies in an enabled BAR whose guest → machine shift it follows. Per extent, the
 * frames its shift explains are the union of the enabled BARs there with that shift; only what that
 * union leaves out is looked at frame range by frame range.
 */
function checkMappings(
  domain: Domain,
  layout: RegionLayout,
  inFlight: Ranges,
  extents: readonly P2mExtent[],
  violations: Violation[],
): void {
  for (const extent of extents) {
    const first = extent.gfn as number;
    const end = first + extent.count - 1;
    const shift = (extent.mfn as number) - first;
    // Only the windows meeting the extent can explain or name its frames.
    const windows = layout.windowsMeeting(first, end);
    if (heldByWindows(windows, windows.length, first, end, shift)) continue;
    const explained = merged(windows.filter((w) => w.shift === shift).map((w) => [w.first, w.last]));
    for (const [s, e] of outside(explained, first, end)) {
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
 * Whether the first `count` of `extents` (MMIO extents of one p2m, in gfn order) hold every frame of
 * `[first, last]`, one after another.
 */
function heldByExtents(extents: readonly P2mExtent[], count: number, first: number, last: number): boolean {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (extents[mid]!.gfn + extents[mid]!.count - 1 < first) lo = mid + 1;
    else hi = mid;
  }
  let from = first;
  for (let i = lo; i < count && extents[i]!.gfn <= from; i++) {
    from = extents[i]!.gfn + extents[i]!.count;
    if (from > last) return true;
  }
  return false;
}

/**
 * Every page an enabled BAR needs is mapped: its guest frames less the MSI-X pages, the frames the
 * host memory map removes and the pages `refuseSubpageSharing` withheld. `extents` are MMIO extents
 * of the domain's p2m (all of them, or those a scope looks at): where they hold a BAR's frames the
 * p2m is not searched.
 */
function checkCoverage(
  context: EngineContext,
  domain: Domain,
  layout: RegionLayout,
  busy: ReadonlySet<PciDevice>,
  extents: readonly P2mExtent[],
  violations: Violation[],
): void {
  let e820: Ranges | undefined;
  for (const w of layout.windows) if (!busy.has(w.device)) checkWindow(w);

  function checkWindow(w: Window): void {
    const msix = layout.msixMeeting(w.first, w.last);
    // The usual window: mapped all through but its MSI-X pages, no cut to make or list to build.
    if (windowHeld(w, msix, msix.length, extents, extents.length)) return;
    e820 ??= context.e820Frames.toArray() as Ranges;
    let needed: Ranges = [[w.first, w.last]];
    // Each cut made only where it meets the BAR (the usual BAR meets no MSI-X page of another
    // device, no frame of the memory map): a cut that meets nothing leaves `needed` as it is.
    if (msix.length > 0) needed = minus(needed, msixFramesMeeting(msix));
    if (context.policy.e820OnHostFrames) {
      // The host frames the memory map covers, seen through this BAR's shift.
      if (meetsAny(e820, w.first + w.shift, w.last + w.shift)) {
        const hostE820 = e820.map(([s, e]): [number, number] => [s - w.shift, e - w.shift]);
        needed = minus(needed, hostE820);
      }
    } else if (meetsAny(e820, w.first, w.last)) {
      needed = minus(needed, e820);
    }
    // Pages refuseSubpageSharing withheld when the device was mapped (shared with another domain then).
    const withheld = w.device.vpci!.withheld;
    if (withheld !== undefined) needed = minus(needed, withheld.toArray() as Ranges);
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
    for (let i = 0; i < needed.length; i++) {
      const first = needed[i]![0];
      const last = needed[i]![1];
      // Mapped MMIO all through (the usual case): nothing to report, no search of the p2m.
      if (first <= last && heldByExtents(extents, extents.length, first, last)) continue;
      let next = first;
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
