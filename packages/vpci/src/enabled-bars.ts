/**
 * Per domain, the enabled vPCI BARs of the devices mapped into it (dom_xen's in the hardware
 * domain's), by guest frame, in the order Xen's `modify_bars` meets them: its Step C walks every
 * device of the domain with `for_each_pdev` (then dom_xen's for the hardware domain) and every BAR
 * of each, to keep out of a map or unmap the frames another enabled BAR holds. The hardware domain of
 * a large host owns thousands of devices; `enabledMeeting` gives the same BARs that walk would act
 * on, in the same order, from a search.
 *
 * A domain's index is made from its device lists the first time it is asked for, and changed for
 * the devices whose BARs told of a change since (`Bar.watcher`). The machine tells it of every change
 * to the lists and to the devices' vPCI states, so that it is kept, not made again, as devices come,
 * go and change hands (the VFs of an SR-IOV PF join and leave the hardware domain thousands at a
 * time): a device joins its owner's list (`joined`: a rank past every other of that list, which
 * Xen's head insertion walks first), leaves it (`left`: its BARs go; the others' ranks keep their
 * order), or gets a new vPCI state (`renewed`: its new BARs are watched and looked at).
 *
 * A BAR that stops decoding keeps its entry, dormant (`on` false: no search returns it, no count
 * counts it), at the frames it had when it last decoded: turned on again at the same frames (a
 * decoding toggle, or a BAR sized and put back where it was while off, as firmware and drivers do), it
 * wakes with no change to the search structure. Only an enabled BAR's entry must be where its BAR is;
 * a dormant one is moved when it wakes. Decoding toggles are the engine's hot path (one config write
 * in about 35 of a running system's), and taking a device's BARs out of the index and putting them back
 * each time was a third of `modifyBars`' Step C.
 */

import { IntervalIndex } from '@vpci/rangeset/internal';
import type { Bar, BarWatcher } from './device.js';
import type { Domain, PciDevice } from './domain.js';
import { VfDecoding } from './sriov-decoding.js';

/**
 * What the index reads of the machine: a part of `EngineContext` (named here, as that module names
 * this one's index).
 */
interface BarsContext {
  readonly hardwareDomain: Domain;
  readonly domXen: Domain;
}

/** The domain whose index holds the BARs of `owner`'s devices: dom_xen's map into the hardware domain's. */
function holderOf(context: BarsContext, owner: Domain): Domain {
  return owner === context.domXen ? context.hardwareDomain : owner;
}

/** An enabled BAR of a device and where `modify_bars`' walk meets it. */
export interface EnabledBar {
  readonly device: PciDevice;
  readonly bar: Bar;
  /** The BAR's place in the walk: the device's place in the domain's lists, then the BAR's slot. */
  readonly order: number;
  readonly first: number;
  readonly last: number;
}

/**
 * A BAR's entry in its domain's index: enabled (`on`), or dormant (off since it was last enabled, at
 * the frames it had then).
 */
interface HeldBar extends EnabledBar {
  first: number;
  last: number;
  /** The BAR was enabled when its device was last looked at: found by searches, counted. */
  on: boolean;
}

/** One domain's enabled BARs. */
interface DomainBars {
  /** Every entry, dormant ones included (searches pass those over). */
  readonly index: IntervalIndex<HeldBar>;
  /**
   * Each device's place in the walk: ranks only grow along a list (a device joining gets the next, and
   * is walked before every other of its list: `walkOrder`), dom_xen's list (walked after the hardware
   * domain's) from `DOM_XEN_RANKS`.
   */
  readonly rank: Map<PciDevice, number>;
  /** What each device has in `index`, by slot (a slot without an entry: undefined). */
  readonly held: Map<PciDevice, (HeldBar | undefined)[]>;
  /** How many entries are on: the enabled BARs Xen's walk meets. */
  enabled: number;
  /** Changes to `index` (an entry made, moved or dropped; not one turning on or dormant). */
  moves: number;
  /** Per device, its last question to `entriesMeeting` and the answer, valid while `moves` stays. */
  readonly asked: Map<PciDevice, Answer>;
  /** The rank the next device to join the domain's own list, and dom_xen's, gets. */
  readonly next: [own: number, domXen: number];
  /**
   * The VF BAR arrays (sriov-decoding.ts) whose attached VFs are this domain's devices: held as arrays,
   * not as entries per VF, counted from their arrays and expanded to VFs where a search meets them.
   */
  readonly arrays: Set<VfDecoding>;
}

/**
 * VFs a search leaves out (a whole-range VF BAR operation's own, sriov.ts `queueVfRanges`): those at
 * the indexes `covered` marks in `decoding`, and `devices`.
 */
export interface CoveredVfs {
  readonly decoding: VfDecoding | undefined;
  readonly covered: Uint8Array;
  readonly devices: ReadonlySet<PciDevice>;
  /** Every enabled BAR of `decoding` is a covered VF's: the array is passed over whole. */
  readonly wholeArray: boolean;
}

/**
 * A device's last question to the index (its ranges, flat) and the entries met, dormant included;
 * made again in place by the device's next question (`entriesMeeting`).
 */
interface Answer {
  moves: number;
  readonly ranges: number[];
  readonly met: HeldBar[];
}

/** Most entries an answer kept for a device may hold (nearly always it holds none). */
const KEPT_ANSWER = 8;

/** Whether `flat` (first, last, first, last, …) holds exactly `ranges`. */
function sameRanges(flat: readonly number[], ranges: readonly (readonly [number, number])[]): boolean {
  if (flat.length !== 2 * ranges.length) return false;
  for (let i = 0; i < ranges.length; i++) {
    const range = ranges[i]!;
    if (flat[2 * i] !== range[0] || flat[2 * i + 1] !== range[1]) return false;
  }
  return true;
}

/**
 * Where dom_xen's ranks start in the hardware domain's index: past any the hardware domain's own list
 * can reach (one per device that ever joined it), with `rank × 8 + slot` still an exact integer.
 */
const DOM_XEN_RANKS = 2 ** 40;

/**
 * A BAR's place in the walk from its device's rank (`DomainBars.rank`) and slot. Every device joins
 * its domain's `pdev_list` at the head (`list_add`: `pci_add_device`, `_setup_hwdom_pci_devices`,
 * `_pci_hide_device` in xen/drivers/passthrough/pci.c; the IOMMUs' `reassign_device`), so
 * `for_each_pdev` meets the device that joined last first: a higher rank walks earlier. The hardware
 * domain's own list comes before dom_xen's, and a device's BARs by slot.
 */
function walkOrder(rank: number, slot: number): number {
  const list = rank < DOM_XEN_RANKS ? 0 : DOM_XEN_RANKS;
  return (list + DOM_XEN_RANKS - 1 - (rank - list)) * 8 + slot;
}

/** The enabled BARs of every domain, for one machine (`EngineContext.enabledBars`). */
export class EnabledBarIndex {
  private readonly byDomain = new Map<Domain, DomainBars>();
  /** The devices whose BARs changed since their domain's index last looked at them. */
  private readonly changed = new Set<PciDevice>();
  private readonly watchers = new WeakMap<PciDevice, BarWatcher>();

  /** Drops every index: they are made again when asked. */
  clear(): void {
    this.byDomain.clear();
    this.changed.clear();
  }

  /** `device` joined its owner's device list, last (`device.domain` is that owner). */
  joined(context: BarsContext, device: PciDevice): void {
    const owner = device.domain!;
    const bars = this.byDomain.get(holderOf(context, owner));
    if (bars === undefined) return;
    bars.rank.set(device, owner === context.domXen ? DOM_XEN_RANKS + bars.next[1]++ : bars.next[0]++);
    this.watch(device);
    this.changed.add(device);
  }

  /** `device` left `owner`'s device list: its BARs leave the index. */
  left(context: BarsContext, device: PciDevice, owner: Domain): void {
    const bars = this.byDomain.get(holderOf(context, owner));
    if (bars === undefined || !bars.rank.has(device)) return;
    for (const entry of bars.held.get(device) ?? []) if (entry !== undefined) drop(bars, entry);
    bars.held.delete(device);
    bars.rank.delete(device);
    bars.asked.delete(device);
  }

  /** `device` got a new vPCI state, or lost it: its BARs are watched anew and looked at again. */
  renewed(device: PciDevice): void {
    this.watch(device);
    this.changed.add(device);
  }

  /**
   * The device's BARs in `slots` turned on or off (`Bar.setEnabledUntold`), told at once and not
   * through their watcher: a whole-range VF BAR operation flips thousands of VFs' BARs where they are
   * (pending.ts, `vfFlags`), and looking at each VF again at the next use was most of that
   * operation's cost. An entry at the BAR's guest frames turns on, or dormant, in place, as `refresh`
   * would turn it; a BAR turned on without an entry (never enabled before), or an entry for another
   * BAR object (a new vPCI state), leaves its device to `refresh`, as a watcher's change does; so does
   * a dormant entry elsewhere than its BAR (a BAR moved while off, looked at since: `mapVfBarRanges`
   * keeps the VF BAR registers still while VFs exist, so only a change to that would get here).
   */
  decodingFlipped(context: BarsContext, device: PciDevice, slots: readonly number[]): void {
    const owner = device.domain;
    const holder = owner === undefined ? undefined : this.byDomain.get(holderOf(context, owner));
    // Entries only for a device on a list of an index made already, and looked at since it joined
    // (one that joined since waits in `changed`); an index not made yet is made from the lists.
    const held = holder?.held.get(device);
    if (held === undefined) return;
    const bars = device.vpci?.bars;
    if (bars === undefined) {
      this.changed.add(device);
      return;
    }
    for (let s = 0; s < slots.length; s++) {
      const slot = slots[s]!;
      const bar = bars[slot]!;
      const entry = held[slot];
      const on = bar.enabled;
      if (entry === undefined || entry.bar !== bar) {
        if (on || entry !== undefined) this.changed.add(device);
        continue;
      }
      if (entry.on === on) continue;
      if (on) {
        const frames = bar.guestFrames();
        if (entry.first !== frames[0] || entry.last !== frames[1]) {
          this.changed.add(device);
          continue;
        }
      }
      entry.on = on;
      holder!.enabled += on ? 1 : -1;
    }
  }

  /**
   * The enabled BARs mapped into `domain` (with dom_xen's for the hardware domain) whose guest frames
   * meet any of `ranges`, each once, in the order `modify_bars`' walk meets them.
   */
  enabledMeeting(
    context: BarsContext,
    domain: Domain,
    ranges: readonly (readonly [number, number])[],
    asker?: PciDevice,
    except?: CoveredVfs,
  ): EnabledBar[] {
    const bars = this.domainBars(context, domain);
    const met = this.entriesMeeting(bars, ranges, asker);
    // Dormant entries out (nearly always nothing is met).
    const found: EnabledBar[] = [];
    for (let i = 0; i < met.length; i++) {
      const entry = met[i]!;
      if (entry.on && except?.devices.has(entry.device) !== true) found.push(entry);
    }
    if (bars.arrays.size !== 0) expandArrays(context, domain, bars, ranges, except, found);
    // Nearly always none: no set, no copy, no sort then.
    if (found.length < 2) return found;
    const once = ranges.length < 2 ? found : [...new Set(found)];
    return once.sort((a, b) => a.order - b.order);
  }

  /**
   * The entries, dormant ones too, that meet any of `ranges`. `asker`'s last answer is given again
   * while nothing in the index moved (`DomainBars.moves`) and `ranges` are the same: a device toggled
   * asks with its BARs' frames each time, and while no BAR of the domain takes a new place (a
   * decoding toggle leaves them where they are; a BAR sized and put back while off wakes where it was)
   * the answer stays. Kept only when it holds few entries (memory stays O(devices)). A device's
   * answer is made again in its own object and arrays: a new answer per question lived until the
   * device's next one, which over thousands of devices comes thousands of lines later, so each was
   * copied and promoted by a scavenge, then left for the old generation's collector.
   */
  private entriesMeeting(
    bars: DomainBars,
    ranges: readonly (readonly [number, number])[],
    asker: PciDevice | undefined,
  ): readonly HeldBar[] {
    const previous = asker === undefined ? undefined : bars.asked.get(asker);
    if (previous !== undefined && previous.moves === bars.moves && sameRanges(previous.ranges, ranges))
      return previous.met;
    // (The caller reads the answer before it asks again: `enabledMeeting` copies what it keeps.)
    const met = previous?.met ?? [];
    met.length = 0;
    for (const [first, last] of ranges) bars.index.meeting(first, last, met);
    if (asker !== undefined && met.length <= KEPT_ANSWER) {
      const answer = previous ?? { moves: 0, ranges: [], met };
      answer.moves = bars.moves;
      const flat = answer.ranges;
      // Written over where the ranges are as many as last time (a device's BARs: nearly always).
      if (flat.length !== 2 * ranges.length) flat.length = 0;
      for (let i = 0; i < ranges.length; i++) {
        flat[2 * i] = ranges[i]![0];
        flat[2 * i + 1] = ranges[i]![1];
      }
      if (previous === undefined) bars.asked.set(asker, answer);
    } else if (previous !== undefined) bars.asked.delete(asker!);
    return met;
  }

  /** How many enabled BARs the walk over `domain` meets (every device's). */
  enabledCount(context: BarsContext, domain: Domain): number {
    const bars = this.domainBars(context, domain);
    let n = bars.enabled;
    for (const array of bars.arrays) if (heldHere(context, domain, array)) n += array.onBars;
    return n;
  }

  /**
   * How many enabled BARs of the devices `counted` accepts the walk over `domain` meets up to the
   * one at `order` (included). A pass over the domain's BARs: asked only when `modifyBars` fails
   * part-way.
   */
  enabledUpTo(
    context: BarsContext,
    domain: Domain,
    order: number,
    counted: (device: PciDevice) => boolean,
  ): number {
    let n = 0;
    const bars = this.domainBars(context, domain);
    for (const entry of bars.index.all()) if (entry.on && entry.order <= order && counted(entry.device)) n++;
    const expanded: EnabledBar[] = [];
    expandArrays(context, domain, bars, [[0, Number.MAX_SAFE_INTEGER]], undefined, expanded);
    for (const entry of expanded) if (entry.order <= order && counted(entry.device)) n++;
    return n;
  }

  private domainBars(context: BarsContext, domain: Domain): DomainBars {
    let bars = this.byDomain.get(domain);
    if (bars === undefined) {
      bars = {
        index: new IntervalIndex(),
        rank: new Map(),
        held: new Map(),
        enabled: 0,
        moves: 0,
        asked: new Map(),
        next: [0, 0],
        arrays: new Set(),
      };
      for (const device of domain.devices) {
        bars.rank.set(device, bars.next[0]++);
        this.watch(device);
        refresh(bars, device);
      }
      for (const device of domain.isHardware ? context.domXen.devices : []) {
        bars.rank.set(device, DOM_XEN_RANKS + bars.next[1]++);
        this.watch(device);
        refresh(bars, device);
      }
      this.byDomain.set(domain, bars);
    }
    // Nearly always empty (a toggled device is looked at once, by the first of the two questions
    // modify_bars' Step C asks): no iterator over an empty set.
    if (this.changed.size === 0) return bars;
    for (const device of this.changed) {
      // Each taken out as it is looked at (a set may lose members while iterated): `Set.clear` makes
      // a new table, and the set nearly always holds one device, the one a toggle changed.
      this.changed.delete(device);
      // The domain whose p2m the device's BARs map into (`mappingDomain`): dom_xen's map into dom0's.
      const holder =
        device.domain === undefined ? undefined : this.byDomain.get(holderOf(context, device.domain));
      if (holder === undefined || !holder.rank.has(device)) continue;
      refresh(holder, device);
    }
    return bars;
  }

  /** Tells the device's BARs to note it here when they change. */
  private watch(device: PciDevice): void {
    let watcher = this.watchers.get(device);
    if (watcher === undefined) {
      const changed = this.changed;
      watcher = { barChanged: () => changed.add(device) };
      this.watchers.set(device, watcher);
    }
    for (const bar of device.vpci?.bars ?? []) bar.watcher = watcher;
  }
}

/** Whether `array`'s attached VFs are held in `domain`'s index: their PF's owner maps into it. */
function heldHere(context: BarsContext, domain: Domain, array: VfDecoding): boolean {
  const owner = array.pf.domain;
  return owner !== undefined && holderOf(context, owner) === domain;
}

/**
 * The enabled BARs of the VF BAR arrays held in `domain`'s index whose frames meet any of `ranges`,
 * each once, except `except`'s, appended to `into`: per array and slot, the VFs whose BAR the ranges
 * can meet are worked out from the layout (`VF BAR i + n × size_i`), and only their bits are read.
 */
function expandArrays(
  context: BarsContext,
  domain: Domain,
  bars: DomainBars,
  ranges: readonly (readonly [number, number])[],
  except: CoveredVfs | undefined,
  into: EnabledBar[],
): void {
  for (const array of bars.arrays) {
    if (array.onBars === 0 || !heldHere(context, domain, array)) continue;
    const covered = except?.decoding === array ? except.covered : undefined;
    if (covered !== undefined && except!.wholeArray) continue;
    for (let s = 0; s < 6; s++) {
      const at = array.layout(s);
      if (at === undefined) continue;
      const bit = 1 << s;
      // Each VF's BAR once, whichever of the ranges meets it first.
      let seen: Set<number> | undefined;
      for (const [first, last] of ranges) {
        if (last < at.first) continue;
        const lo = Math.max(0, Math.floor((first - at.first) / at.per));
        const hi = Math.min(array.length - 1, Math.floor((last - at.first) / at.per));
        for (let n = lo; n <= hi; n++) {
          if ((array.bits[n]! & bit) === 0 || (covered !== undefined && covered[n] !== 0)) continue;
          if (ranges.length > 1) {
            seen ??= new Set();
            if (seen.has(n)) continue;
            seen.add(n);
          }
          const device = array.devices[n]!;
          const start = at.first + n * at.per;
          into.push({
            device,
            bar: device.vpci!.bars[s]!,
            order: walkOrder(bars.rank.get(device)!, s),
            first: start,
            last: start + at.per - 1,
          });
        }
      }
    }
  }
}

/** Takes `entry` out of its domain's index (and out of the count if on). */
function drop(bars: DomainBars, entry: HeldBar): void {
  bars.index.remove(entry.first, entry.last, entry);
  bars.moves++;
  if (entry.on) bars.enabled--;
}

/**
 * Brings the device's entries in `bars` up to date with its BARs: an entry of a BAR the device no
 * longer has (a new vPCI state) goes; an enabled BAR's entry is on, at the BAR's guest frames (made, or
 * moved if its frames changed); a disabled BAR's entry, if any, turns dormant where it is.
 */
function refresh(bars: DomainBars, device: PciDevice): void {
  let held = bars.held.get(device);
  if (held === undefined) {
    held = [];
    bars.held.set(device, held);
  }
  // A VF kept in its PF's VF BAR array: held there, not by entries of its own.
  const packed = device.vpci?.packedIn;
  if (packed instanceof VfDecoding && packed.keeps(device)) {
    for (let i = 0; i < held.length; i++) if (held[i] !== undefined) drop(bars, held[i]!);
    held.length = 0;
    bars.arrays.add(packed);
    return;
  }
  const slots = device.vpci?.bars ?? [];
  for (let i = 0; i < held.length; i++) {
    const entry = held[i];
    if (entry === undefined || entry.bar === slots[i]) continue;
    drop(bars, entry);
    held[i] = undefined;
  }
  const rank = bars.rank.get(device)!;
  for (let i = 0; i < slots.length; i++) {
    const bar = slots[i]!;
    const on = bar.enabled;
    const entry = held[i];
    if (entry === undefined) {
      if (!on) continue;
      const frames = bar.guestFrames(); // not destructured: that iterates
      const made: HeldBar = {
        device,
        bar,
        order: walkOrder(rank, i),
        first: frames[0],
        last: frames[1],
        on,
      };
      bars.index.add(made.first, made.last, made);
      bars.moves++;
      bars.enabled++;
      held[i] = made;
      continue;
    }
    if (entry.on !== on) {
      entry.on = on;
      bars.enabled += on ? 1 : -1;
    }
    if (!on) continue;
    const frames = bar.guestFrames();
    if (entry.first === frames[0] && entry.last === frames[1]) continue;
    bars.index.remove(entry.first, entry.last, entry);
    entry.first = frames[0];
    entry.last = frames[1];
    bars.index.add(entry.first, entry.last, entry);
    bars.moves++;
  }
}
