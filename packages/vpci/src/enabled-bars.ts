/**
 * Per domain, the enabled vPCI BARs of the devices mapped into it (dom_xen's in the hardware
 * domain's), by guest frame, in the order Xen's `modify_bars` meets them: its Step C walks every
 * device of the domain with `for_each_pdev` (then dom_xen's for the hardware domain) and every BAR
 * of each, to keep out of a map or unmap the frames another enabled BAR holds. The hardware domain of
 * a large host owns thousands of devices; `enabledMeeting` gives the same BARs that walk would act
 * on, in the same order, from a search.
 *
 * A domain's index is made from its device lists the first time it is asked for, and changed for
 * the devices whose BARs told of a change since (`Bar.watcher`). The machine drops every index when
 * a device changes hands or gets a new vPCI state (`clear`): the lists' order and the BARs watched
 * then change.
 */

import { IntervalIndex } from '@vpci/rangeset/internal';
import type { Bar, BarWatcher } from './device.js';
import type { Domain, PciDevice } from './domain.js';

/**
 * What the index reads of the machine: a part of `EngineContext` (named here, as that module names
 * this one's index).
 */
interface BarsContext {
  readonly hardwareDomain: Domain;
  readonly domXen: Domain;
  readonly deviceListVersion: number;
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

/** One domain's enabled BARs. */
interface DomainBars {
  readonly index: IntervalIndex<EnabledBar>;
  /** Each device's place in the walk (its lists do not change while the index lives). */
  readonly rank: Map<PciDevice, number>;
  /** What each device has in `index`. */
  readonly held: Map<PciDevice, EnabledBar[]>;
}

/** The enabled BARs of every domain, for one machine (`EngineContext.enabledBars`). */
export class EnabledBarIndex {
  private readonly byDomain = new Map<Domain, DomainBars>();
  /** The devices whose BARs changed since their domain's index last looked at them. */
  private readonly changed = new Set<PciDevice>();
  private readonly watchers = new WeakMap<PciDevice, BarWatcher>();
  /** `EngineContext.deviceListVersion` the indexes were made at. */
  private version = -1;

  /** Drops every index (a device changed hands or vPCI state): they are made again when asked. */
  clear(): void {
    this.byDomain.clear();
    this.changed.clear();
  }

  /**
   * The enabled BARs mapped into `domain` (with dom_xen's for the hardware domain) whose guest frames
   * meet any of `ranges`, each once, in the order `modify_bars`' walk meets them.
   */
  enabledMeeting(
    context: BarsContext,
    domain: Domain,
    ranges: readonly (readonly [number, number])[],
  ): EnabledBar[] {
    const bars = this.domainBars(context, domain);
    const found: EnabledBar[] = [];
    for (const [first, last] of ranges) bars.index.meeting(first, last, found);
    const once = ranges.length < 2 ? found : [...new Set(found)];
    return once.sort((a, b) => a.order - b.order);
  }

  /** How many enabled BARs the walk over `domain` meets (every device's). */
  enabledCount(context: BarsContext, domain: Domain): number {
    return this.domainBars(context, domain).index.size;
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
    for (const entry of this.domainBars(context, domain).index.all())
      if (entry.order <= order && counted(entry.device)) n++;
    return n;
  }

  private domainBars(context: BarsContext, domain: Domain): DomainBars {
    if (this.version !== context.deviceListVersion) {
      this.clear();
      this.version = context.deviceListVersion;
    }
    let bars = this.byDomain.get(domain);
    if (bars === undefined) {
      bars = { index: new IntervalIndex(), rank: new Map(), held: new Map() };
      const lists = domain.isHardware ? [domain.devices, context.domXen.devices] : [domain.devices];
      for (const list of lists) {
        for (const device of list) {
          bars.rank.set(device, bars.rank.size);
          this.watch(device);
          this.put(bars, device);
        }
      }
      this.byDomain.set(domain, bars);
    }
    for (const device of this.changed) {
      // The domain whose p2m the device's BARs map into (`mappingDomain`): dom_xen's map into dom0's.
      const holder = this.byDomain.get(
        device.domain === context.domXen ? context.hardwareDomain : device.domain!,
      );
      if (holder === undefined || !holder.rank.has(device)) continue;
      for (const entry of holder.held.get(device) ?? []) holder.index.remove(entry.first, entry.last, entry);
      this.put(holder, device);
    }
    this.changed.clear();
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

  /** The device's enabled BARs into `bars`. */
  private put(bars: DomainBars, device: PciDevice): void {
    const held: EnabledBar[] = [];
    const rank = bars.rank.get(device)!;
    const slots = device.vpci?.bars ?? [];
    for (let i = 0; i < slots.length; i++) {
      const bar = slots[i]!;
      if (!bar.enabled) continue;
      const [first, last] = bar.guestFrames();
      const entry = { device, bar, order: rank * 8 + i, first, last };
      bars.index.add(first, last, entry);
      held.push(entry);
    }
    bars.held.set(device, held);
  }
}
