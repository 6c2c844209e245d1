/**
 * What a replayed line may change of a device, as far as the invariants look at it: taken before the
 * line, compared with the device after it. Most lines change nothing an invariant reads (sizing a BAR
 * that is not mapped, a driver's runtime writes), and then no check runs; so a snapshot is taken and
 * compared in place, into arrays reused from line to line, without allocating.
 */
import { type Gfn, gfn, MAX_FRAME } from '@vpci/p2m';
import type { RangeSet } from '@vpci/rangeset';
import { mappingDomain } from './context.js';
import { type Bar, guestFrameRange } from './device.js';
import type { Domain, PciDevice, Vcpu } from './domain.js';
import {
  barsFindNothing,
  checkInvariants,
  describeViolation,
  deviceRegionFindsNothing,
  type InvariantCaches,
} from './invariants.js';
import type { Machine } from './machine.js';
import { hostBarFrames } from './ownership.js';
import { formatSbdf } from './sbdf.js';
import { stateGeneration } from './state-generation.js';

/** A frame range as the BARs cache them (never changed in place: a moved BAR makes a new one). */
export type FrameRange = readonly [number, number];

/**
 * What a line changed of a device, as far as the invariant checks can find something new there
 * (`DeviceSnapshot.change`), from least to most:
 * - `none`: nothing any check reads;
 * - `busy`: only that work became pending on it (a decoding toggle `modify_bars` defers to
 *   `vpci_process_pending`), its BARs' windows, registers and host pages as they were: no check can
 *   find anything new (a device with work pending is only excused more);
 * - `host`: besides that, only what its BARs hold while not mapped (host address, size, guest
 *   address, the frames left in their sets) or its BAR registers, with no work pending on it before
 *   or after: only its own checks and the sharing check of its host pages can find something new;
 * - `frames`: anything else (its domain, that domain's p2m, decoding, withheld pages, an enabled
 *   BAR, pending work finished or moved): every check, over the device's guest frames too.
 */
export type DeviceChange = 'none' | 'busy' | 'host' | 'frames';

/** The device's own fields `record` writes before its BAR sections. */
const DEVICE_FIELDS = 7;
/** Where `record` writes the vCPU with work pending on the device, and the BAR register writes. */
const PENDING_FIELD = 4;
const BAR_WRITES_FIELD = 6;
/**
 * A BAR section's fixed fields: slot, type, enabled, guest address, half-written (while enabled),
 * host address, size, the `Bar` itself (not compared: what the device's guest frames at `take` are
 * made of, `guestAtTake`); then the count of set values and the set's frames.
 */
const SECTION_FIELDS = 8;
const SECTION_ENABLED = 2;
const SECTION_GUEST = 3;
const SECTION_HALF = 4;
const SECTION_HOST = 5;
const SECTION_SIZE = 6;
const SECTION_BAR = 7;

/**
 * A device as the invariants see it, taken before a replayed line and compared after it; reused from line to
 * line without allocating.
 */
export class DeviceSnapshot {
  /** The device last taken; undefined before the first `take`. */
  device: PciDevice | undefined;
  /** The domain whose p2m the device's BARs map into, and the id of its owner. */
  domain: Domain | undefined;
  /** Id of the device's owner at `take`; undefined when it had none. */
  owner: number | undefined;
  /**
   * Guest frames of its memory BARs and pending sets at `take` (a set within its BAR's frames not
   * listed: the union is the same, `guestFramesOf`), worked out from the BAR sections `take`
   * recorded when first asked for (`guestAtTake`). Most lines change nothing a check reads of the
   * device, and then no check asks for them: working a BAR's frames out of its address is bigint
   * arithmetic, and the line before (a BAR sizing or placement) has most often just moved it.
   */
  private readonly guest = new FrameList();
  private guestKnown = false;
  /** Its last searches of `mmioHolders` and the page lists found unmapped (`hostPagesUnmapped`). */
  private readonly holderAnswers = new HolderAnswers();
  /**
   * The host pages at `take`, as the machine remembers them (the same array while they stay; never
   * changed in place, so kept as it is).
   */
  private pagesAtTake: readonly FrameRange[] = [];
  /** What `record` wrote at `take`, the first `kept` entries. */
  private values: unknown[] = [];
  private kept = 0;
  /**
   * What `change` found different of the device from the take's record, when it compared the whole
   * record and found it laid out as before (the same BAR sections, each set as many ranges long): the
   * indexes and the device's values there now, which make the take's record one of the device now
   * (`takeAgain`). Written only where a value differs: most lines move one BAR, where `change`
   * recorded every BAR's fields into a second record and then compared the two.
   */
  private readonly patchAt: number[] = [];
  private readonly patchValue: unknown[] = [];
  /** How many entries of `patchAt` hold, when `change` compared the whole record; else -1. */
  private patchCount = -1;
  /**
   * The count of changes to the machines' state (state-generation.ts) when `change` compared the
   * whole device: `takeAgain` keeps its record only while the count stands. The caller's word that
   * nothing changed the device is what makes the record sound; the count only refuses more (a caller
   * that changed the machine behind the replayer's back between two lines gets a record taken afresh).
   */
  private generationAtRecord = -1;

  /** Records `device` as it is now. */
  take(machine: Machine, device: PciDevice): void {
    this.kept = record(machine, device, this.values);
    this.takeRest(machine, device);
  }

  /**
   * `take` of the device `change` last compared, keeping the take's record with what `change` found
   * different written over it instead of recording the device again, for a caller that knows nothing
   * changed the device since that `change` (the replayer: its next line, with nothing applied in
   * between but writes that change nothing a snapshot records of any device). A reprogramming's
   * lines snapshot one device line after line, and most lines whose check is answered from the
   * snapshot alone were mostly its records. False, with nothing done, when `change` did not compare
   * the whole record laid out as before (it answered from the device's own fields or the first BAR
   * section that differed, or a section or set changed length) or `InvariantCaches.snapshotReuse` is
   * off.
   */
  takeAgain(machine: Machine): boolean {
    const caches = machine.invariantCaches;
    if (
      this.patchCount < 0 ||
      caches.snapshotReuse === 'off' ||
      stateGeneration() !== this.generationAtRecord
    )
      return false;
    const device = this.device!;
    const values = this.values;
    for (let p = 0; p < this.patchCount; p++) values[this.patchAt[p]!] = this.patchValue[p];
    if (caches.snapshotReuse === 'verify') {
      const fresh: unknown[] = [];
      const count = record(machine, device, fresh);
      for (let i = 0; i < Math.max(count, this.kept); i++)
        if (i >= count || i >= this.kept || fresh[i] !== values[i])
          throw new Error(
            `DeviceSnapshot.takeAgain: ${formatSbdf(device.sbdf)} differs from what change recorded at ${i}`,
          );
    }
    caches.snapshotReuses++;
    this.takeRest(machine, device);
    return true;
  }

  /** What `take` records besides the device's fields and BAR sections. */
  private takeRest(machine: Machine, device: PciDevice): void {
    this.patchCount = -1;
    this.device = device;
    this.domain = mappingDomain(machine, device);
    this.owner = device.domain?.id;
    this.pagesAtTake = machine.invariantCaches.hostPages.hostPagesOf(device);
    this.guestKnown = false;
  }

  /**
   * The guest frames the device had at `take` (their union: a set within its BAR's frames is not
   * listed), and its host frames.
   */
  frames(): { guest: FrameRange[]; host: FrameRange[] } {
    return { guest: this.guestAtTake().toArray(), host: [...this.pagesAtTake] };
  }

  /**
   * The guest frames the device had at `take` (as `guestFramesOf` lists them with `past the BAR`),
   * worked out from the BAR sections `take` recorded (each BAR, its guest address and size, its set's
   * frames) the first time they are asked for after it. A BAR whose address and size are still
   * those it had at `take` gives its remembered frames (the same values, `Bar.guestFrames`).
   */
  private guestAtTake(): FrameList {
    const guest = this.guest;
    if (this.guestKnown) return guest;
    guest.clear();
    const values = this.values;
    for (let i = DEVICE_FIELDS; i < this.kept; ) {
      const bar = values[i + SECTION_BAR] as Bar;
      const addr = values[i + SECTION_GUEST] as bigint;
      const size = values[i + SECTION_SIZE] as bigint;
      const frames =
        bar.guestAddr === addr && bar.size === size ? bar.guestFrames() : guestFrameRange(addr, size);
      guest.push(frames);
      const set = i + SECTION_FIELDS + 1;
      const end = set + (values[i + SECTION_FIELDS] as number);
      // The set's ranges (sorted) only where it reaches past the BAR's frames (`guestFramesOf`).
      if (set < end && ((values[set] as number) < frames[0] || (values[end - 1] as number) > frames[1]))
        for (let k = set; k < end; k += 2) guest.push([values[k] as number, values[k + 1] as number]);
      i = end;
    }
    this.guestKnown = true;
    return guest;
  }

  /**
   * Adds the device's host frames at `take` and now to `host`, and its guest frames at `take` to
   * `guest` and now to `guestNow` (the same list unless the device changed owner), where given: where
   * a scoped check looks after the step (`change` says whether guest frames are needed; working out
   * a BAR's frames again after its address was written is bigint arithmetic, so a check by host frame
   * only does not).
   */
  scopeFrames(
    machine: Machine,
    guest: FrameSink | undefined,
    host: FrameSink,
    guestNow: FrameSink | undefined = guest,
  ): void {
    const device = this.device!;
    pushPages(this.pagesAtTake, host);
    pushPages(machine.invariantCaches.hostPages.hostPagesOf(device), host);
    if (guest !== undefined) this.guestAtTake().pushInto(guest);
    // Into the same list, a BAR whose frames are those it had at `take` (the same pair: a BAR keeps
    // its pair until its address or size is set, and `guestAtTake` lists it) is not listed twice (a
    // finishing line's BARs): the union is the same, and a list with no repeats is one the check need
    // not copy to merge.
    if (guestNow !== undefined)
      guestFramesOf(device, guestNow, 'past the BAR', guestNow === guest ? this.guestAtTake() : undefined);
  }

  /**
   * After a `host` change (`change`): whether no check can find anything new of it. Such a change
   * can make only the device's own violation (a BAR's set left holding frames) and pages of a
   * domain's MMIO mappings newly shared with the device's host pages (`DeviceChange`); so when its
   * sets are empty and no domain maps MMIO on its host pages at `take` or now (the machine's index
   * of every domain's MMIO mappings by machine frame, `InvariantCaches.mmioHolders`), there is
   * nothing to find. The replayer then checks nothing after the line and names the device to the
   * next check, which brings what the checks remember of it up to date.
   */
  hostChangeFindsNothing(machine: Machine): boolean {
    const device = this.device!;
    const bars = device.vpci?.bars;
    for (let i = 0; bars !== undefined && i < bars.length; i++) {
      const mem = bars[i]!.mem;
      if (mem !== undefined && !mem.isEmpty()) return false;
    }
    return this.hostPagesUnmapped(machine, 'at take and now');
  }

  /**
   * Whether no domain maps MMIO on the device's host pages now, and at `take` too unless `which` says
   * only those new since (`mmioHolders`): a list found unmapped lately is not asked about again (the
   * pages at `take` are most often the list the last line found, and a state of the BARs met again
   * gives its list again, host-pages.ts `BarStates`); else one question per page range, the last
   * answers remembered (`HolderAnswers`). A range now that is one at `take` (the same pair: a BAR's
   * frames are one pair until it moves, and its decoded `Bar`s are kept) is not asked about twice;
   * most pages are where they were.
   */
  private hostPagesUnmapped(machine: Machine, which: 'at take and now' | 'new since take'): boolean {
    const caches = machine.invariantCaches;
    const then = this.pagesAtTake;
    const now = caches.hostPages.hostPagesOf(this.device!);
    const answers = this.holderAnswers;
    if (which === 'new since take') return now === then || answers.unmapped(caches, now, then, false);
    return answers.unmapped(caches, then, undefined) && (now === then || answers.unmapped(caches, now, then));
  }

  /**
   * After a `frames` change (`change`): whether no check can find anything new of it because the
   * device was left with nothing mapped or to map (the line that finishes a decoding toggle's unmap,
   * Xen's `vpci_process_pending` with decoding off, the usual `frames` line of a reprogramming), in
   * the domain it mapped into at `take`, and nothing else is there. A whole check can then find
   * nothing new that involves it:
   * - its own checks: no BAR enabled (no `probe-mapped`), every set empty (no `rangeset-not-empty`),
   *   no work pending on it (nothing excused or half done);
   * - its domain's guest frames: the line wrote the p2m only where the device's sets held frames at
   *   `take` (among its guest frames then); with no `mmio_direct` extent on those frames or a frame
   *   beside them, no MMIO mapping there or joined or split there can be unexplained, shared or of
   *   the wrong frame; with no other device's enabled BAR or MSI-X page there (and none of its own
   *   now), no page there is needed or must stay unmapped (`InvariantCaches.windowIndexes`). Where
   *   its BARs are now, nothing changed but that they are not enabled: what a check finds there was
   *   there before the line, and found then;
   * - its host pages: no domain maps MMIO on a page it has now and did not have at `take`
   *   (`mmioHolders`), so none is newly shared. Pages it had at `take` are not asked about: the line
   *   wrote no p2m but that domain's on the device's frames, and the device kept its owner, so a
   *   domain mapping such a page maps the same page of the same owner as before the line, a
   *   violation the check before it found (a page the device left can only end one);
   * The replayer then checks nothing after the line and names the device to the next check, as after
   * a quiet `host` change (`hostChangeFindsNothing`). False, so the line is checked, when anything
   * differs: its owner or domain changed, it is an SR-IOV PF or VF, or its domain's index of windows is
   * not kept.
   */
  leftUnmappedFindsNothing(machine: Machine): boolean {
    const device = this.device!;
    if (!this.keptItsPlace(machine) || machine.pendingVcpus.firstOn(device) !== undefined) return false;
    const domain = this.domain!;
    const bars = device.vpci!.bars;
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i]!;
      if (bar.enabled || (bar.mem !== undefined && !bar.mem.isEmpty())) return false;
    }
    if (!this.hostPagesUnmapped(machine, 'new since take')) return false;
    const windows = machine.invariantCaches.windowIndexes;
    // Its guest frames at `take` (where the line wrote the p2m), one search of each kind per range
    // of their union. Where its BARs are now nothing changed but that none is enabled there.
    const union = scratchUnion;
    union.clear();
    this.guestAtTake().pushInto(union);
    union.merge();
    for (let i = 0; i < union.count; i++) {
      const first = union.first(i);
      const last = union.last(i);
      // A BAR at a probe address reaches past the last frame a p2m holds: nothing is mapped there.
      if (first <= MAX_FRAME + 1) {
        const extents = domain.p2m.extentsIn(gfn(Math.max(0, first - 1)), gfn(Math.min(MAX_FRAME, last + 1)));
        for (let k = 0; k < extents.length; k++) if (extents[k]!.type === 'mmio_direct') return false;
      }
      if (windows.othersMayMeet(machine, domain, device, first, last)) return false;
    }
    // The index keeps its windows as they were until the next check (which a reprogramming's map
    // finds where they were).
    windows.defer(device);
    return true;
  }

  /**
   * After a `frames` change (`change`): whether no check can find anything new of it because the line
   * left its BARs mapped as they ask where no other device's BAR is (the line that finishes a
   * reprogramming's map, Xen's `vpci_process_pending` with decoding on: the other half of the lines
   * that finish pending work). Its check would be scoped to the device, its guest frames at `take`
   * and now in the domain it maps into, and its host pages; this answers what that check would,
   * without making its scope:
   * - its own checks find nothing (`barsFindNothing`), or are skipped: work is pending on it again
   *   (the line's write, a decoding toggle right after the last, made more: the check counts it busy);
   * - its host pages are those it had at `take` (the same array), and none moved on them since the
   *   last check (`HostPagesCache.indexAhead`, which brings the machine's index of host pages up to
   *   date for `named` and the device, as that check would): the check would look at no other domain;
   * - no other device's window or MSI-X page meets its guest frames (the domain's window index,
   *   `othersMayMeet`), so the windows and MSI-X pages the check would find there are the device's
   *   own, all within those frames, and with them the lean path's conditions hold
   *   (`deviceRegionFindsNothing`: every mapping there explained, unshared and clear of MSI-X pages,
   *   every window mapped).
   * Then the check would find nothing at all. On a true answer the window index is brought up to
   * date here for the device (the hardware domain's map finds its windows where they were: nothing
   * to change) and for `named`, as the check would have: both indexes then hold every one of them as
   * it is, and what the check reads of them besides, their own BARs, holds nothing new (each was
   * named by a line whose quiet answer found nothing there), so none needs naming to the next check:
   * the replayer empties its list and makes no check. `named` are the devices changed since the
   * last check (`InvariantScope.devices` but the line's); `more` says that the line snapshotted
   * another device whose answer is still to come (then what moved is handed back on a true answer
   * too, for that answer to see). Not taken while `InvariantCaches.leanRegions` is `off`; counted in
   * `leanRegionsFound`. Under `verify` the check is made too and must find nothing of the device's
   * (`verifyLeftMapped`), but for the first of two devices (its check would not see what moved).
   */
  leftMappedFindsNothing(machine: Machine, named: readonly PciDevice[], more = false): boolean {
    const caches = machine.invariantCaches;
    if (caches.leanRegions === 'off' || !this.keptItsPlace(machine)) return false;
    const device = this.device!;
    const domain = this.domain!;
    const pages = caches.hostPages;
    // A device with work pending again (the line's write made more: a decoding toggle right after
    // the last) has its own checks skipped, as the check skips them.
    const busy = machine.pendingVcpus.firstOn(device) !== undefined;
    if ((!busy && !barsFindNothing(device)) || pages.hostPagesOf(device) !== this.pagesAtTake) return false;
    const union = scratchUnion;
    union.clear();
    this.guestAtTake().pushInto(union);
    guestFramesOf(device, union, 'past the BAR');
    union.merge();
    const windows = caches.windowIndexes;
    for (let i = 0; i < union.count; i++)
      if (windows.othersMayMeet(machine, domain, device, union.first(i), union.last(i))) return false;
    const near = pages.indexAhead(machine, named, device);
    if (near === undefined) return false;
    windows.updateDevice(machine, device);
    const found =
      !anyMeets(near.moved, this.pagesAtTake) &&
      deviceRegionFindsNothing(
        machine,
        domain,
        caches.windows.windowsOf(device),
        busy,
        union.ranges(),
        near.index,
      );
    // A check made instead (or besides, `verify`), or the answer for the line's other device, must
    // see what moved.
    const verify = caches.leanRegions === 'verify' && !more;
    if (!found || verify || more) pages.holdMoved(near.moved);
    if (!found) return false;
    caches.leanRegionsFound++;
    // The devices named since, as the check would: both indexes now hold them as they are.
    for (let i = 0; i < named.length; i++) windows.updateDevice(machine, named[i]!);
    if (verify) this.verifyLeftMapped(machine, named, union.ranges());
    return true;
  }

  /**
   * `verify`: the check `leftMappedFindsNothing` answered for, made (its scope as the replayer makes
   * it, the devices named since with this one), which must find nothing but what the devices named
   * since had of their own before the line (their BARs' checks: the line changed none of them).
   */
  private verifyLeftMapped(
    machine: Machine,
    named: readonly PciDevice[],
    region: readonly FrameRange[],
  ): void {
    const device = this.device!;
    const found = checkInvariants(machine, {
      devices: new Set([...named, device]),
      frames: new Map([[this.domain!, [...region]]]),
      hostFrames: [...this.pagesAtTake],
    });
    for (const violation of found) {
      const othersOwn =
        (violation.kind === 'rangeset-not-empty' || violation.kind === 'probe-mapped') &&
        violation.sbdf !== device.name;
      if (!othersOwn)
        throw new Error(
          `DeviceSnapshot.leftMappedFindsNothing: ${formatSbdf(device.sbdf)}'s check finds ${describeViolation(violation)}`,
        );
    }
  }

  /**
   * Whether the device kept its owner and the domain it maps into (not a pseudo-domain) and is no
   * SR-IOV PF or VF: what `leftUnmappedFindsNothing` and `leftMappedFindsNothing` first require.
   */
  private keptItsPlace(machine: Machine): boolean {
    const device = this.device!;
    const domain = this.domain;
    if (device.vpci === undefined || domain === undefined || domain.isPseudo) return false;
    if (device.domain?.id !== this.owner || mappingDomain(machine, device) !== domain) return false;
    return device.hw.sriov === undefined && device.physfn === undefined;
  }

  /** Whether nothing an invariant reads of the device has changed since `take`. */
  unchanged(machine: Machine): boolean {
    return this.change(machine) === 'none';
  }

  /**
   * What changed of the device since `take`, as far as a check can find something new (`DeviceChange`):
   * the device compared in place with the take's record, each value that differs noted (`patchAt`).
   */
  change(machine: Machine): DeviceChange {
    const then = this.values;
    const device = this.device!;
    this.patchCount = -1;
    // The device's own fields first, its BAR sections only if these leave the answer open: a line
    // that finishes work on the device wrote its domain's p2m and left no work pending, which is
    // `frames` whatever its BARs hold.
    const now = deviceNow;
    recordDevice(machine, device, now);
    for (let i = 0; i < DEVICE_FIELDS; i++)
      if (i !== PENDING_FIELD && i !== BAR_WRITES_FIELD && now[i] !== then[i]) return 'frames';
    const pendingThen = then[PENDING_FIELD];
    const pendingNow = now[PENDING_FIELD];
    // Work finished, or moved to another vCPU: what it excused is looked at again.
    if (pendingThen !== pendingNow && pendingThen !== undefined) return 'frames';
    const becameBusy = pendingThen !== pendingNow;
    let patches = 0;
    if (becameBusy) patches = this.patch(patches, PENDING_FIELD, pendingNow);
    const busy = pendingThen !== undefined;
    // Something a check of the device or of its host pages reads changed.
    let own = now[BAR_WRITES_FIELD] !== then[BAR_WRITES_FIELD];
    if (own) patches = this.patch(patches, BAR_WRITES_FIELD, now[BAR_WRITES_FIELD]);
    // Whether every section and set is as long as at `take`, so that the patches make a record.
    let sameLayout = true;
    const bars = device.vpci?.bars;
    let i = DEVICE_FIELDS;
    for (let slot = 0; bars !== undefined && slot < bars.length; slot++) {
      const bar = bars[slot]!;
      if (!bar.mappable || bar.size === 0n) continue;
      // The same slots with the same types, else the windows may differ.
      if (i >= this.kept || then[i] !== slot || then[i + 1] !== bar.type) return 'frames';
      const enabled = bar.enabled;
      if (then[i + SECTION_ENABLED] !== enabled) return 'frames';
      const before = patches;
      // The guest address matters only while the BAR is enabled or the device busy (an enabled BAR's
      // window, or the frames of a busy device's BARs, its mappings in flight): otherwise it excuses
      // nothing, and a device that became busy is only excused more.
      patches = this.patchIfDiffers(patches, i + SECTION_GUEST, bar.guestAddr);
      const afterGuest = patches;
      patches = this.patchIfDiffers(patches, i + SECTION_HALF, enabled && bar.halfWritten);
      patches = this.patchIfDiffers(patches, i + SECTION_HOST, bar.addr);
      patches = this.patchIfDiffers(patches, i + SECTION_SIZE, bar.size);
      if (patches !== before && (enabled || busy)) return 'frames';
      // Its half-written flag, host address or size: what its own checks and the sharing check read.
      if (patches !== afterGuest) own = true;
      // Not compared: what the device's guest frames at `take` are made of (`guestAtTake`).
      patches = this.patchIfDiffers(patches, i + SECTION_BAR, bar);
      const set = i + SECTION_FIELDS;
      const setThen = then[set] as number;
      const setNow = listSet(bar.mem, setRanges, 0);
      // The sets of a device that became busy hold its work in flight, which no check reads.
      if (setNow !== setThen) {
        sameLayout = false;
        if (!becameBusy) own = true;
      } else
        for (let f = 0; f < setThen; f++) {
          const before = patches;
          patches = this.patchIfDiffers(patches, set + 1 + f, setRanges[f]);
          if (patches !== before && !becameBusy) own = true;
        }
      // A busy device's sets are its work in flight: a change there is looked at with its frames.
      if (own && busy) return 'frames';
      i = set + 1 + setThen;
    }
    if (i < this.kept) return 'frames';
    if (sameLayout) {
      this.patchCount = patches;
      this.generationAtRecord = stateGeneration();
    }
    if (becameBusy) {
      // Its host pages as they were (the machine keeps the same array while they stay): nothing a
      // check remembers of the device moved, so no later check needs to hear of this line.
      if (!own && machine.invariantCaches.hostPages.hostPagesOf(device) === this.pagesAtTake) return 'busy';
      return 'frames';
    }
    return own ? 'host' : 'none';
  }

  /** Notes `value` as the device's value now at `at` of the record, when it differs there. */
  private patchIfDiffers(patches: number, at: number, value: unknown): number {
    return this.values[at] === value ? patches : this.patch(patches, at, value);
  }

  /** Notes `value` as the device's value now at `at` of the record; returns how many are noted. */
  private patch(patches: number, at: number, value: unknown): number {
    this.patchAt[patches] = at;
    this.patchValue[patches] = value;
    return patches + 1;
  }
}

/** Where `change` reads the device's own fields now (reused). */
const deviceNow: unknown[] = [];

/** Where `listSet` lists a set's ranges (reused). */
const setRanges: unknown[] = [];

/**
 * Writes the ranges `set` holds into `into` from index `at` (first and last of each); returns the
 * index after them. Empty is the common case and costs nothing.
 */
function listSet(set: RangeSet<Gfn> | undefined, into: unknown[], at: number): number {
  if (set === undefined || set.isEmpty()) return at;
  setListing.into = into;
  setListing.at = at;
  set.reportRanges(gfn(0), gfn(MAX_FRAME), listSetRange);
  return setListing.at;
}

/**
 * Writes into `into` (from index 0, overwriting) everything an invariant reads of the device: the
 * owner, its mapping domain, the p2m's writes, decoding, pending work, withheld pages, the hardware's
 * BAR register writes (`DEVICE_FIELDS`), and per memory BAR a section: its slot, type, enabled flag,
 * guest address, half-written flag while mapped, host address, size, the `Bar`, and the frames its
 * set holds (their count, then first and last of each range). Returns how many.
 */
function record(machine: Machine, device: PciDevice, into: unknown[]): number {
  recordDevice(machine, device, into);
  return recordBars(device, into);
}

/** `record`'s device fields (`DEVICE_FIELDS` of them, from index 0). */
function recordDevice(machine: Machine, device: PciDevice, into: unknown[]): void {
  const vpci = device.vpci;
  const domain = mappingDomain(machine, device);
  let n = 0;
  into[n++] = device.domain?.id;
  into[n++] = domain;
  into[n++] = domain?.p2m.writes;
  into[n++] = vpci?.barsMapped;
  // The vCPU of any domain with work pending on the device, as the checks count it busy: work left on
  // a vCPU of a domain that no longer owns the device counts until `processPending` drops it (and the
  // drop lets the checks see the device again). The first in domain order, as a walk finds it.
  into[n++] = machine.pendingVcpus.firstOn(device);
  into[n++] = vpci?.withheld?.size;
  // The hardware's BARs count for sharing even where vPCI does not handle the device.
  into[n] = device.hw.barWrites;
}

/**
 * `record`'s BAR sections, after the device fields (`DEVICE_FIELDS` of them); returns how many values
 * `into` then holds.
 */
function recordBars(device: PciDevice, into: unknown[]): number {
  let n = DEVICE_FIELDS;
  const bars = device.vpci?.bars;
  for (let slot = 0; bars !== undefined && slot < bars.length; slot++) {
    const bar = bars[slot]!;
    if (!bar.mappable || bar.size === 0n) continue;
    // A BAR's guest address matters while it is mapped or work is pending on the device (its frames
    // excuse the mappings in flight; `change` looks at it only then), its host address always
    // (sharing).
    into[n++] = slot;
    into[n++] = bar.type;
    into[n++] = bar.enabled;
    into[n++] = bar.guestAddr;
    into[n++] = bar.enabled && bar.halfWritten;
    into[n++] = bar.addr;
    into[n++] = bar.size;
    into[n++] = bar;
    // The set's frames, not only whether it has some: a leftover set that grows is a new
    // rangeset-not-empty violation (it names the frames).
    const counted = n++;
    n = listSet(bar.mem, into, n);
    into[counted] = n - counted - 1;
  }
  return n;
}

/**
 * Where `listSetRange` writes a BAR's set into a record, and from which index. One callback made once
 * for every set: a callback made per call of `recordBars` would take its count along (every write
 * of the record through the closure's context, allocated per call).
 */
const setListing = { into: [] as unknown[], at: 0 };

/** `reportRanges`' callback for `recordBars`: writes the range at `setListing`'s index. */
function listSetRange(start: Gfn, end: Gfn): undefined {
  const into = setListing.into;
  into[setListing.at++] = start;
  into[setListing.at++] = end;
  return undefined;
}

/** Adds each of `pages` to `sink`. */
function pushPages(pages: readonly FrameRange[], sink: FrameSink): void {
  for (let i = 0; i < pages.length; i++) sink.push(pages[i]!);
}

/** Where frame ranges are added. */
export interface FrameSink {
  /** Adds one frame range. */
  push(range: FrameRange): void;
}

/** A list of frame ranges overwritten in place from line to line (`length = 0` would free it). */
class FrameList {
  private readonly ranges: FrameRange[] = [];
  private count = 0;

  clear(): void {
    this.count = 0;
  }

  push(range: FrameRange): void {
    this.ranges[this.count++] = range;
  }

  toArray(): FrameRange[] {
    return this.ranges.slice(0, this.count);
  }

  /** Whether it holds `range` itself (the same pair, not only the same frames). */
  holds(range: FrameRange): boolean {
    for (let i = 0; i < this.count; i++) if (this.ranges[i] === range) return true;
    return false;
  }

  /** Adds every range it holds to `sink`. */
  pushInto(sink: FrameSink): void {
    for (let i = 0; i < this.count; i++) sink.push(this.ranges[i]!);
  }
}

/** The domains `HolderAnswers.mapped` finds, reused from call to call (emptied after each search). */
const found: Domain[] = [];

/**
 * Whether any domain maps MMIO on machine frames `[first, last]`, or on a device's page list
 * (`InvariantCaches.mmioHolders`), the last few answers remembered while the index stands
 * (`mmioHoldersChanges`): a reprogramming sizes and places one BAR a line, so each line asks again
 * about the pages the last line asked about.
 */
class HolderAnswers {
  private readonly firsts = new Float64Array(HOLDER_ANSWERS);
  private readonly lasts = new Float64Array(HOLDER_ANSWERS);
  private readonly answers = new Uint8Array(HOLDER_ANSWERS);
  /** The caches and their change count the answers were found at. */
  private caches: InvariantCaches | undefined;
  private changes = -1;
  private count = 0;
  private next = 0;
  /**
   * The last page lists found with nothing mapped on them (the lists themselves: a device's host
   * pages are the same array while they stay, and a state of its BARs met again gives the array
   * worked out then, host-pages.ts `BarStates`), so a list asked about again is not asked range by range.
   */
  private readonly unmappedLists: (readonly FrameRange[] | undefined)[] = new Array(UNMAPPED_LISTS).fill(
    undefined,
  );
  private nextList = 0;

  /**
   * Whether no domain maps MMIO on any of `pages` but those `skip` holds (the same pairs: asked
   * about already, or not to be asked about). `pages` is remembered as a list found unmapped only
   * when `skip`'s ranges are known to be unmapped too (`skipUnmapped`).
   */
  unmapped(
    caches: InvariantCaches,
    pages: readonly FrameRange[],
    skip: readonly FrameRange[] | undefined,
    skipUnmapped = true,
  ): boolean {
    this.keepWhile(caches);
    const lists = this.unmappedLists;
    for (let i = 0; i < UNMAPPED_LISTS; i++) if (lists[i] === pages) return true;
    for (let i = 0; i < pages.length; i++) {
      const range = pages[i]!;
      if ((skip === undefined || !skip.includes(range)) && this.mapped(caches, range[0], range[1]))
        return false;
    }
    if (skip !== undefined && !skipUnmapped) return true;
    lists[this.nextList] = pages;
    this.nextList = (this.nextList + 1) % UNMAPPED_LISTS;
    return true;
  }

  /** Forgets every answer when the index changed since they were found. */
  private keepWhile(caches: InvariantCaches): void {
    if (caches === this.caches && caches.mmioHoldersChanges === this.changes) return;
    this.caches = caches;
    this.changes = caches.mmioHoldersChanges;
    this.count = 0;
    this.next = 0;
    this.unmappedLists.fill(undefined);
  }

  private mapped(caches: InvariantCaches, first: number, last: number): boolean {
    for (let i = 0; i < this.count; i++)
      if (this.firsts[i] === first && this.lasts[i] === last) return this.answers[i] === 1;
    const answer = caches.mmioHolders.meeting(first, last, found).length > 0;
    found.length = 0;
    const at = this.next;
    this.next = (at + 1) % HOLDER_ANSWERS;
    if (this.count < HOLDER_ANSWERS) this.count++;
    this.firsts[at] = first;
    this.lasts[at] = last;
    this.answers[at] = answer ? 1 : 0;
    return answer;
  }
}

/** How many answers `HolderAnswers` keeps: a device's BARs where they were and where they are. */
const HOLDER_ANSWERS = 8;
/** How many page lists `HolderAnswers` keeps: the states of a device's BARs through a reprogramming. */
const UNMAPPED_LISTS = 6;

/**
 * The union of frame ranges, as few ranges as it takes (sorted, overlapping and adjacent ones
 * joined), in two lists of numbers reused from use to use: a search per range of the union instead
 * of one per range pushed (a device's frames at `take` and now are mostly the same).
 */
class FrameUnion implements FrameSink {
  private readonly firsts: number[] = [];
  private readonly lasts: number[] = [];
  /** Per count of ranges, the pairs `ranges` rewrites. */
  private readonly lists: [number, number][][] = [];
  /** How many ranges it holds (after `merge`, how many the union has). */
  count = 0;

  clear(): void {
    this.count = 0;
  }

  push(range: FrameRange): void {
    // Insertion by start: the lists are a few ranges.
    let i = this.count++;
    for (; i > 0 && this.firsts[i - 1]! > range[0]; i--) {
      this.firsts[i] = this.firsts[i - 1]!;
      this.lasts[i] = this.lasts[i - 1]!;
    }
    this.firsts[i] = range[0];
    this.lasts[i] = range[1];
  }

  /** Joins overlapping and adjacent ranges (they are sorted by start). */
  merge(): void {
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const first = this.firsts[i]!;
      const last = this.lasts[i]!;
      if (n > 0 && first <= this.lasts[n - 1]! + 1) {
        if (last > this.lasts[n - 1]!) this.lasts[n - 1] = last;
      } else {
        this.firsts[n] = first;
        this.lasts[n] = last;
        n++;
      }
    }
    this.count = n;
  }

  first(i: number): number {
    return this.firsts[i]!;
  }

  /** The ranges it holds, as pairs rewritten at each call (one list per count, kept). */
  ranges(): readonly FrameRange[] {
    let list = this.lists[this.count];
    if (list === undefined) {
      list = Array.from({ length: this.count }, (): [number, number] => [0, 0]);
      this.lists[this.count] = list;
    }
    for (let i = 0; i < this.count; i++) {
      list[i]![0] = this.firsts[i]!;
      list[i]![1] = this.lasts[i]!;
    }
    return list;
  }

  last(i: number): number {
    return this.lasts[i]!;
  }
}

/** Whether a range of `a` meets a range of `b` (a few each). */
function anyMeets(a: readonly FrameRange[], b: readonly FrameRange[]): boolean {
  for (let i = 0; i < a.length; i++)
    for (let k = 0; k < b.length; k++) if (a[i]![0] <= b[k]![1] && b[k]![0] <= a[i]![1]) return true;
  return false;
}

/** The union `leftUnmappedFindsNothing` and `leftMappedFindsNothing` search by (reused). */
const scratchUnion = new FrameUnion();

/**
 * Adds the guest frames of `device`'s memory BARs (and its pending sets), and the host frames of every
 * BAR it decodes or vPCI maps (`hostBars`), to the lists. The host frames are those `machine`
 * remembers, when given (the replayer asks after every line); else they are read again. Returns the
 * host frames.
 */
export function framesOf(
  device: PciDevice,
  guest: FrameSink,
  host: FrameSink,
  machine?: Machine,
): readonly FrameRange[] {
  const pages = machine?.invariantCaches.hostPages.hostPagesOf(device) ?? hostBarFrames(device);
  pushPages(pages, host);
  guestFramesOf(device, guest);
  return pages;
}

/**
 * Which ranges of a BAR's set `guestFramesOf` lists beside the BAR's frames: every one, or only
 * where the set reaches past the BAR's frames (the union of what is listed is the same).
 */
type SetRanges = 'every set range' | 'past the BAR';

/**
 * Adds the guest frames of `device`'s memory BARs and of what their sets hold to `guest`. With
 * `sets` at `past the BAR`, a set that lies within its BAR's frames (the usual pending map or unmap:
 * the BAR's frames less its holes) is not listed: it adds no frame to the union of what is added,
 * which is all a snapshot's users read (a scope's frames and `leftUnmappedFindsNothing`'s search
 * are merged first); a set reaching past them (a BAR moved while its work was pending, F2) is.
 * Reading a set is an iterator, a copy of its ranges and a pair per range: a line that finishes
 * pending work took that for each of its device's BARs. A BAR's frames already in `listed` (the
 * same pair) are not added again.
 */
function guestFramesOf(
  device: PciDevice,
  guest: FrameSink,
  sets: SetRanges = 'every set range',
  listed?: FrameList,
): void {
  const bars = device.vpci?.bars;
  for (let i = 0; bars !== undefined && i < bars.length; i++) {
    const bar = bars[i]!;
    if (!bar.mappable || bar.size === 0n) continue;
    const frames = bar.guestFrames();
    if (listed === undefined || !listed.holds(frames)) guest.push(frames);
    const mem = bar.mem;
    if (mem === undefined || mem.isEmpty()) continue;
    if (sets === 'past the BAR' && setWithin(mem, frames[0], frames[1])) continue;
    for (const [s, e] of mem) guest.push([s, e]);
  }
}

/**
 * Whether every frame `set` holds lies in `[first, last]` (frames a BAR touches: `last` passes
 * `MAX_FRAME` only for a BAR at a sizing probe near 2^64, and no set holds a frame past it).
 */
function setWithin(set: RangeSet<Gfn>, first: number, last: number): boolean {
  if (first > MAX_FRAME) return false;
  if (first > 0 && set.overlapsRange(gfn(0), gfn(first - 1))) return false;
  return last >= MAX_FRAME || !set.overlapsRange(gfn(last + 1), gfn(MAX_FRAME));
}

/**
 * Whether a config write of `value` (`size` bytes at `reg`) by `vcpu` to `device` (the device the vCPU
 * reaches there) can change anything a `DeviceSnapshot` records, decided from the register dispatch
 * the write will take (`Machine.configWrite`, `RegisterTable.writeTargets`) before it is made: it
 * reaches a BAR, ROM or resizable-BAR control handler, or the command register's with a value that
 * flips decoding (`Register.mapping`), or it reaches the device's
 * hardware at a BAR, ROM or resizable-BAR register (the hardware domain, past vPCI's handlers or on
 * a device vPCI does not handle for it). A vCPU with pending work finishes it first, which can change
 * anything. A replay neither snapshots nor checks a write for which this is false.
 */
export function writeMayChangeDevice(
  machine: Machine,
  vcpu: Vcpu,
  device: PciDevice,
  reg: number,
  size: number,
  value: number,
): boolean {
  return vcpu.pending !== undefined || writeReachesDevice(machine, vcpu, device, reg, size, value);
}

/**
 * `writeMayChangeDevice` for the write itself, whether or not the vCPU has work to finish first:
 * whether its register dispatch can change anything a `DeviceSnapshot` of `device` records. For a
 * vCPU with work pending on another device, false means the line changes nothing of `device` but
 * what finishing that work does: the p2m of their domain, written only on the frames of the device
 * the work is on (its BARs' sets and frames, which a scoped check of that device looks at); so a
 * replay snapshots only that device.
 */
export function writeReachesDevice(
  machine: Machine,
  vcpu: Vcpu,
  device: PciDevice,
  reg: number,
  size: number,
  value: number,
): boolean {
  const hardware = vcpu.domain.isHardware;
  const vpci = device.vpci;
  // The hardware domain's handlers are those of its own and dom_xen's devices; it reaches the
  // hardware of any other device directly (Machine.resolve).
  const handled =
    vpci !== undefined && (!hardware || device.domain === vcpu.domain || device.domain === machine.domXen);
  if (!handled) return hardware && device.hw.placesBars(reg, size);
  const targets = vpci.registers.writeTargets(reg, size, value);
  return targets.mapping || (targets.hardware && hardware && device.hw.placesBars(reg, size));
}
