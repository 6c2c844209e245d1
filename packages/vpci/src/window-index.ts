/**
 * Per domain, the enabled BAR windows and MSI-X pages of the devices mapped into it, by guest frame:
 * what the scoped invariant checks ask about the frames a line touched (which BAR covers a mapping,
 * which MSI-X pages lie there). A domain of the hardware domain's size holds thousands of devices;
 * walking them all after every line made a check's cost grow with the machine.
 *
 * A domain's index is built from scratch the first time a scoped check asks for it, and then changed
 * only for the devices a scoped check names (`InvariantScope.devices`: every device whose vPCI state
 * changed since the last check, which is all a window depends on). A whole check does not read the
 * indexes (it lists every device's windows afresh, whole-check-lists.ts, as the naive reference the
 * scoped checks are compared with) and drops them, so the next scoped check builds them again from the machine as it is.
 */

import { IntervalIndex } from '@vpci/rangeset/internal';
import type { DeviceWindows, DeviceWindowsCache, MsixPages, Window } from './bar-windows.js';
import { type EngineContext, mappingDomain } from './context.js';
import type { DeviceCheckStates } from './device-check-state.js';
import type { Domain, PciDevice } from './domain.js';
import { sbdfKey } from './sbdf.js';
import { sortSmall } from './small-sort.js';

/** Inclusive guest frame ranges, sorted by start and merged (as the checks' regions are). */
type Region = readonly (readonly [number, number])[];

/**
 * What the checks ask of a domain's windows. Every list is in the order a walk over the domain's
 * devices by SBDF meets them (a device's windows in slot order, its MSI-X structures table first),
 * so violations come in the same order however they were found.
 */
export interface DomainLayout {
  /** The windows meeting guest frames `[first, last]`. */
  windowsMeeting(first: number, last: number): readonly Window[];
  /** The windows meeting `region`, each once; every window without a region. */
  windowsIn(region: Region | undefined): readonly Window[];
  /** The MSI-X pages meeting guest frames `[first, last]`. */
  msixMeeting(first: number, last: number): readonly MsixPages[];
  /** The MSI-X pages meeting `region`, each once; every one without a region. */
  msixIn(region: Region | undefined): readonly MsixPages[];
  /**
   * Writes into `into` from its start the windows meeting `region`, in no order, one meeting two
   * ranges twice, and returns how many: for questions whose answer depends on neither (the lean
   * scoped check), without sorting or a list made (`into` is refilled, never emptied: `length = 0`
   * gives an array's store up).
   */
  collectWindowsMeeting(region: Region, into: Window[]): number;
  /** Likewise the MSI-X pages meeting `region`. */
  collectMsixMeeting(region: Region, into: MsixPages[]): number;
}

/**
 * A layout that walks every device's windows: the naive walk test/check-indexes.property.test.ts
 * compares the index with.
 */
export function walkedLayout(parts: readonly DeviceWindows[]): DomainLayout {
  const windows = parts.flatMap((part) => part.windows);
  const msix = parts.flatMap((part) => part.msixPages);
  return {
    windowsMeeting: (first, last) => windows.filter((w) => w.first <= last && first <= w.last),
    windowsIn: (region) =>
      region === undefined ? windows : windows.filter((w) => meetsRegion(region, w.first, w.last)),
    msixMeeting: (first, last) => msix.filter((page) => page.first <= last && first <= page.last),
    msixIn: (region) =>
      region === undefined ? msix : msix.filter((page) => meetsRegion(region, page.first, page.last)),
    collectWindowsMeeting: (region, into) => collectMeeting(windows, region, into),
    collectMsixMeeting: (region, into) => collectMeeting(msix, region, into),
  };
}

/** Writes into `into` from its start the `spans` meeting `region`; returns how many. */
export function collectMeeting<T extends { readonly first: number; readonly last: number }>(
  spans: Iterable<T>,
  region: Region,
  into: T[],
): number {
  let n = 0;
  for (const span of spans) if (meetsRegion(region, span.first, span.last)) into[n++] = span;
  return n;
}

function meetsRegion(region: Region, first: number, last: number): boolean {
  for (let i = 0; i < region.length; i++) if (region[i]![0] <= last && first <= region[i]![1]) return true;
  return false;
}

/**
 * What `othersMeet` found, refilled from the start search after search (`IntervalIndex.collect`) and
 * never emptied: `length = 0` gives an array's store up, made again at the next search.
 */
const foundWindows: Window[] = [];
const foundMsix: MsixPages[] = [];

/**
 * How many devices a domain's index keeps late (`DomainWindowIndex.replaceLater`) before it enters
 * them all (every `othersMeet` of the domain reads them), and a device's windows and MSI-X pages at
 * most: its seven BAR slots (`VpciState.bars`, the ROM's last) and two MSI-X structures.
 */
const LATE_KEPT = 16;
const LATE_SPANS = 9;

/**
 * One domain's windows and MSI-X pages by guest frame. A device whose windows changed may be kept
 * late (`replaceLater`): its entries stay as they were and its windows as they are wait beside them,
 * entered when a search other than `othersMeet` reads the index (each settles every late device
 * first, `enterLate`), or when too many wait. `othersMeet`, the question of every line that finishes
 * a device's map or unmap (a guest moving its BAR makes its windows again at each map), reads the
 * late devices' windows as they are and passes over their entries: its answer is the one the index
 * brought up to date gives, without the entries' drop and put (two searches and two shifts of a
 * chunk each, for every window and MSI-X page), which most devices' next change would undo unread.
 */
class DomainWindowIndex implements DomainLayout {
  private readonly windows = new IntervalIndex<Window>();
  private readonly msix = new IntervalIndex<MsixPages>();
  /**
   * How many times a device's windows were put, dropped or replaced: what was found stands while it
   * does.
   */
  changes = 0;
  /**
   * The late devices (the first `lateCount`), their windows as they are (`lateParts`), the windows
   * their entries hold (`lateEntered`), and the first and last frames of their windows and MSI-X
   * pages as they are, `LATE_SPANS` places a device, in one array (`lateBounds`; `lateSpans` of
   * them held): what `othersMeet` reads of them, where their objects would be a few cache lines
   * each, line after line.
   */
  private readonly lateDevices: PciDevice[] = [];
  private readonly lateParts: DeviceWindows[] = [];
  private readonly lateEntered: DeviceWindows[] = [];
  private readonly lateBounds = new Float64Array(2 * LATE_KEPT * LATE_SPANS);
  private readonly lateSpans = new Uint8Array(LATE_KEPT);
  private lateCount = 0;

  /** Puts a device's windows, which the index does not hold. */
  put(part: DeviceWindows): void {
    this.changes++;
    this.enter(part);
  }

  /** Drops a device's windows as `put` or `replaceLater` last gave them. */
  drop(part: DeviceWindows): void {
    this.changes++;
    const at = this.lateAt(part.device);
    if (at < 0) this.leave(part);
    else {
      this.leave(this.lateEntered[at]!);
      this.unlate(at);
    }
  }

  /**
   * Replaces a device's windows `from` (as `put` or `replaceLater` last gave them) with `to`, its
   * entries left as they are until a search needs them (the device kept late).
   */
  replaceLater(from: DeviceWindows, to: DeviceWindows): void {
    this.changes++;
    let at = this.lateAt(to.device);
    if (at < 0 && this.lateCount === LATE_KEPT) this.enterLate();
    if (at < 0) {
      at = this.lateCount++;
      this.lateDevices[at] = to.device;
      this.lateEntered[at] = from;
    }
    this.lateParts[at] = to;
    this.writeBounds(at, to);
  }

  /** Writes `part`'s windows and MSI-X pages into late place `at` of `lateBounds`. */
  private writeBounds(at: number, part: DeviceWindows): void {
    const { windows, msixPages } = part;
    if (windows.length + msixPages.length > LATE_SPANS)
      throw new Error(`a device with ${windows.length} windows and ${msixPages.length} MSI-X pages`);
    const bounds = this.lateBounds;
    let k = 2 * LATE_SPANS * at;
    for (let i = 0; i < windows.length; i++) {
      bounds[k++] = windows[i]!.first;
      bounds[k++] = windows[i]!.last;
    }
    for (let i = 0; i < msixPages.length; i++) {
      bounds[k++] = msixPages[i]!.first;
      bounds[k++] = msixPages[i]!.last;
    }
    this.lateSpans[at] = windows.length + msixPages.length;
  }

  /** Brings every late device's entries up to date: what each search but `othersMeet` first does. */
  private enterLate(): void {
    for (let i = 0; i < this.lateCount; i++) {
      this.leave(this.lateEntered[i]!);
      this.enter(this.lateParts[i]!);
    }
    this.lateCount = 0;
  }

  /** Where `device` is among the late devices; -1 when it is not late. */
  private lateAt(device: PciDevice): number {
    for (let i = 0; i < this.lateCount; i++) if (this.lateDevices[i] === device) return i;
    return -1;
  }

  /** Forgets late device `at` (the last put in its place). */
  private unlate(at: number): void {
    const last = --this.lateCount;
    if (at === last) return;
    this.lateDevices[at] = this.lateDevices[last]!;
    this.lateParts[at] = this.lateParts[last]!;
    this.lateEntered[at] = this.lateEntered[last]!;
    this.writeBounds(at, this.lateParts[at]!);
  }

  // Indexed loops: a device's windows change on the lines that finish its work, a few in a hundred,
  // so these run in the engine's less optimised tiers for long, where `for … of` makes an iterator.
  private enter(part: DeviceWindows): void {
    const { windows, msixPages } = part;
    for (let i = 0; i < windows.length; i++)
      this.windows.add(windows[i]!.first, windows[i]!.last, windows[i]!);
    for (let i = 0; i < msixPages.length; i++)
      this.msix.add(msixPages[i]!.first, msixPages[i]!.last, msixPages[i]!);
  }

  private leave(part: DeviceWindows): void {
    const { windows, msixPages } = part;
    for (let i = 0; i < windows.length; i++)
      this.windows.remove(windows[i]!.first, windows[i]!.last, windows[i]!);
    for (let i = 0; i < msixPages.length; i++)
      this.msix.remove(msixPages[i]!.first, msixPages[i]!.last, msixPages[i]!);
  }

  /**
   * Whether a window or MSI-X page of a device other than `device` meets `[first, last]`: the
   * entries of devices not late, and the late devices' windows as they are.
   */
  othersMeet(device: PciDevice, first: number, last: number): boolean {
    const late = this.lateCount;
    const windows = this.windows.collect(first, last, foundWindows, 0);
    for (let i = 0; i < windows; i++) {
      const other = foundWindows[i]!.device;
      if (other !== device && (late === 0 || this.lateAt(other) < 0)) return true;
    }
    const msix = this.msix.collect(first, last, foundMsix, 0);
    for (let i = 0; i < msix; i++) {
      const other = foundMsix[i]!.device;
      if (other !== device && (late === 0 || this.lateAt(other) < 0)) return true;
    }
    const bounds = this.lateBounds;
    for (let i = 0; i < late; i++) {
      if (this.lateDevices[i] === device) continue;
      const from = 2 * LATE_SPANS * i;
      const to = from + 2 * this.lateSpans[i]!;
      for (let k = from; k < to; k += 2) if (bounds[k]! <= last && first <= bounds[k + 1]!) return true;
    }
    return false;
  }

  windowsMeeting(first: number, last: number): readonly Window[] {
    this.enterLate();
    return sortSmall(this.windows.meeting(first, last, []), windowOrder);
  }

  windowsIn(region: Region | undefined): readonly Window[] {
    this.enterLate();
    if (region === undefined) return this.windows.all().sort(windowOrder);
    return inRegion(this.windows, region, windowOrder);
  }

  msixMeeting(first: number, last: number): readonly MsixPages[] {
    this.enterLate();
    return sortSmall(this.msix.meeting(first, last, []), msixOrder);
  }

  msixIn(region: Region | undefined): readonly MsixPages[] {
    this.enterLate();
    if (region === undefined) return this.msix.all().sort(msixOrder);
    return inRegion(this.msix, region, msixOrder);
  }

  collectWindowsMeeting(region: Region, into: Window[]): number {
    this.enterLate();
    let n = 0;
    for (let i = 0; i < region.length; i++) n = this.windows.collect(region[i]![0], region[i]![1], into, n);
    return n;
  }

  collectMsixMeeting(region: Region, into: MsixPages[]): number {
    this.enterLate();
    let n = 0;
    for (let i = 0; i < region.length; i++) n = this.msix.collect(region[i]![0], region[i]![1], into, n);
    return n;
  }
}

/**
 * The items meeting any range of `region`, each once, sorted by `order`. An item meeting two ranges
 * is found twice; sorted, the two are side by side (`order` ties no two items of an index), so the
 * second is dropped without building a set.
 */
function inRegion<T>(index: IntervalIndex<T>, region: Region, order: (a: T, b: T) => number): T[] {
  const found: T[] = [];
  for (let i = 0; i < region.length; i++) index.meeting(region[i]![0], region[i]![1], found);
  sortSmall(found, order);
  let twice = false;
  for (let i = 1; i < found.length && !twice; i++) twice = found[i] === found[i - 1];
  // Usually none is: the list as it is (shortening an array in place is a slow path of the engine).
  if (!twice) return found;
  const once: T[] = [found[0]!];
  for (let i = 1; i < found.length; i++) if (found[i] !== found[i - 1]) once.push(found[i]!);
  return once;
}

function windowOrder(a: Window, b: Window): number {
  return sbdfKey(a.device.sbdf) - sbdfKey(b.device.sbdf) || a.bar.index - b.bar.index;
}

function msixOrder(a: MsixPages, b: MsixPages): number {
  return sbdfKey(a.device.sbdf) - sbdfKey(b.device.sbdf) || a.position - b.position;
}

/**
 * Frame ranges on which a domain's index, at `changes`, held no window or MSI-X page of devices other
 * than the one they are kept for (`othersMayMeet`); the first `count` are kept.
 */
interface AloneOn {
  index: DomainWindowIndex;
  changes: number;
  readonly firsts: number[];
  readonly lasts: number[];
  count: number;
}

/** How many ranges an `AloneOn` keeps (a device's BARs, where they were and where they are). */
const ALONE_KEPT = 8;

/**
 * Where a device's windows are held, and which (`DeviceCheckState.held`). An index dropped since
 * (`clear`) is no index kept: a `Held` of it is found stale as one of another domain's index is.
 */
interface Held {
  readonly index: DomainWindowIndex;
  part: DeviceWindows;
}

/** Every domain's index, for one machine (`InvariantCaches.windowIndexes`). */
export class DomainWindowIndexes {
  private readonly byDomain = new Map<Domain, DomainWindowIndex>();
  /**
   * Devices whose windows the indexes may hold although they have none (`defer`), the first
   * `waitingCount`: a few, until the next update. A list rather than a set, whose deletion at every
   * update shrank its table, made anew; rather than a flag on `held`, a weak map's search at every
   * unmap.
   */
  private readonly waiting: PciDevice[] = [];
  private waitingCount = 0;
  /** `EngineContext.deviceListVersion` the indexes were made at. */
  private version = -1;

  /**
   * `windows` gives the devices' windows; each device's `Held` and `AloneOn` are kept in its state
   * (`DeviceCheckState.held`, `.alone`).
   */
  constructor(
    private readonly windows: DeviceWindowsCache,
    private readonly states: DeviceCheckStates,
  ) {}

  /** Drops every index (a whole check, or devices added or removed): they are built again when asked. */
  clear(): void {
    this.byDomain.clear();
    this.waitingCount = 0;
  }

  /**
   * Brings the indexes up to date for `changed`, the devices whose vPCI state changed since the
   * last check; a device added or removed since they were made drops them all.
   */
  update(context: EngineContext, changed: Iterable<PciDevice>): void {
    if (this.version !== context.deviceListVersion) {
      this.clear();
      this.version = context.deviceListVersion;
      return;
    }
    for (const device of changed) this.bringUpToDate(context, device);
  }

  /**
   * Brings the indexes up to date for `device` alone, as `update` does for each device it is given
   * (a check of that device's frames made without a scoped check: `DeviceSnapshot.leftMappedFindsNothing`);
   * nothing when they were made for another list of devices (the next `update` drops them).
   */
  updateDevice(context: EngineContext, device: PciDevice): void {
    if (this.version === context.deviceListVersion) this.bringUpToDate(context, device);
  }

  private bringUpToDate(context: EngineContext, device: PciDevice): void {
    if (this.waitingCount > 0) {
      const at = this.waitingAt(device);
      if (at >= 0) this.waiting[at] = this.waiting[--this.waitingCount]!;
    }
    const target = device.vpci === undefined ? undefined : mappingDomain(context, device);
    const index = target === undefined ? undefined : this.byDomain.get(target);
    const part = index === undefined ? undefined : this.windows.windowsOf(device);
    const state = this.states.of(device);
    const held = state.held as Held | undefined;
    if (held !== undefined && held.index === index && held.part === part) return;
    // Moved within its domain's index (a guest's BAR at a new address): entered when a search needs it.
    if (held !== undefined && held.index === index && part !== undefined) {
      index.replaceLater(held.part, part);
      held.part = part;
      return;
    }
    if (held !== undefined) {
      held.index.drop(held.part);
      state.held = undefined;
    }
    if (index !== undefined && part !== undefined) {
      index.put(part);
      state.held = { index, part };
    }
  }

  /**
   * Whether a window or MSI-X page of a device other than `device` may meet guest frames
   * `[first, last]` of `domain`: false only when `domain`'s index is kept (at the machine's device
   * list version) and holds none there. A quick test that a line's frames meet no other device's
   * BARs without bringing the index up to date: of the devices changed since the last check (each
   * named to the next one, `InvariantScope.devices`), the index holds windows as they were, which
   * are as they are (the enabled BARs of a device whose line was not checked did not change,
   * `DeviceChange`) or are gone (a device left with none, `defer`): those only make this say true.
   * A false answer is kept per device while the index has no window put or dropped (`AloneOn`).
   */
  othersMayMeet(
    context: EngineContext,
    domain: Domain,
    device: PciDevice,
    first: number,
    last: number,
  ): boolean {
    const index = this.version === context.deviceListVersion ? this.byDomain.get(domain) : undefined;
    if (index === undefined) return true;
    // The answer stands while the index does: a hardware-domain device's reprogramming asks about
    // its frames again where every device's windows are as they were (each maps back in place).
    const state = this.states.of(device);
    let alone = state.alone as AloneOn | undefined;
    if (alone !== undefined && alone.index === index && alone.changes === index.changes) {
      for (let i = 0; i < alone.count; i++)
        if (alone.firsts[i] === first && alone.lasts[i] === last) return false;
    }
    if (index.othersMeet(device, first, last)) return true;
    if (alone === undefined) {
      alone = { index, changes: index.changes, firsts: [], lasts: [], count: 0 };
      state.alone = alone;
    } else if (alone.index !== index || alone.changes !== index.changes) {
      alone.index = index;
      alone.changes = index.changes;
      alone.count = 0;
    }
    if (alone.count === ALONE_KEPT) alone.count = 0;
    alone.firsts[alone.count] = first;
    alone.lasts[alone.count] = last;
    alone.count++;
    return false;
  }

  /**
   * Notes that `device` has no enabled BAR left while the index may still hold its windows: it is
   * named to the next check, whose `update` drops them (a reprogramming that puts the BARs back where
   * they were then changes nothing here). Until then the model tests compare the rest.
   */
  defer(device: PciDevice): void {
    if (this.waitingAt(device) < 0) this.waiting[this.waitingCount++] = device;
  }

  /** Where `device` is among the waiting devices; -1 when it is not there. */
  private waitingAt(device: PciDevice): number {
    for (let i = 0; i < this.waitingCount; i++) if (this.waiting[i] === device) return i;
    return -1;
  }

  /** Whether `device`'s windows wait for the next `update` (`defer`). For the model tests. */
  awaitsUpdate(device: PciDevice): boolean {
    return this.waitingAt(device) >= 0;
  }

  /** `domain`'s index as the last scoped checks left it, if one is kept. For the model tests. */
  kept(domain: Domain): DomainLayout | undefined {
    return this.byDomain.get(domain);
  }

  /**
   * `domain`'s index, built from `devices` (its devices with vPCI state, dom_xen's for the hardware
   * domain) when there is none.
   */
  of(context: EngineContext, domain: Domain, devices: () => readonly PciDevice[]): DomainLayout {
    if (this.version !== context.deviceListVersion) {
      this.clear();
      this.version = context.deviceListVersion;
    }
    let index = this.byDomain.get(domain);
    if (index !== undefined) return index;
    index = new DomainWindowIndex();
    for (const device of devices()) {
      const part = this.windows.windowsOf(device);
      index.put(part);
      this.states.of(device).held = { index, part } satisfies Held;
    }
    this.byDomain.set(domain, index);
    return index;
  }
}
