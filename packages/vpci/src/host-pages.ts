/**
 * The host pages of a device's BARs (see `hostBars`), for the sharing invariant. A replay checks
 * invariants after every line that changed something, and a line writes one device's registers:
 * remembering each device's pages until its BAR registers are written again or a vPCI BAR's host frames
 * change keeps a check from rebuilding them for every device on the machine.
 */
import type { EngineContext } from './context.js';
import type { PciDevice } from './domain.js';
import { effectiveOwner, hostBarFrames } from './ownership.js';

/** Inclusive host frames, as `Bar.hostFrames` gives them. */
export type HostFrames = readonly [number, number];

interface Remembered {
  /** The device's BAR register write count when made. */
  readonly barWrites: number;
  /** Its vPCI state then, and that state's `barChanges()` then: a vPCI BAR changed later moves its pages. */
  readonly vpci: PciDevice['vpci'];
  readonly madeAt: number;
  readonly pages: readonly HostFrames[];
}

/** The host frames of a device's BARs and the domain that owns it (dom_xen's count as dom0's). */
export interface DevicePages {
  readonly device: PciDevice;
  readonly owner: number | undefined;
  readonly pages: readonly HostFrames[];
  /** The device's BAR register writes and vPCI state when the pages were taken. */
  readonly barWrites: number;
  readonly vpci: PciDevice['vpci'];
}

/** A machine's devices in order with their pages, and where each device is in that order. */
interface Listing {
  /** `EngineContext.deviceListVersion` when the listing was made. */
  readonly version: number;
  readonly entries: DevicePages[];
  readonly at: ReadonlyMap<PciDevice, number>;
}

/** Each device's host pages, and the machine's listing of them; one per machine. */
export class HostPagesCache {
  private readonly remembered = new WeakMap<PciDevice, Remembered>();
  private listing: Listing | undefined;

  /**
   * The host frames of every BAR `device` decodes or vPCI maps. The same array while they stay the
   * same, even across register writes that did not move them (a listing is kept while its devices'
   * arrays are).
   */
  hostPagesOf(device: PciDevice): readonly HostFrames[] {
    const known = this.remembered.get(device);
    if (known !== undefined && known.barWrites === device.hw.barWrites && unchangedSince(device, known))
      return known.pages;
    const found = hostBarFrames(device);
    const pages = known !== undefined && sameFrames(found, known.pages) ? known.pages : found;
    this.remembered.set(device, {
      barWrites: device.hw.barWrites,
      vpci: device.vpci,
      madeAt: device.vpci?.barChanges() ?? 0,
      pages,
    });
    return pages;
  }

  /**
   * Every device's host pages and owner, in device order, remembered for the machine and brought up
   * to date in place. `changed` names the devices whose vPCI state may have changed since the
   * machine's last listing (a scoped invariant check's devices); without it every device is looked
   * at. Either way a device whose BAR registers were written, or whose vPCI state was replaced, is
   * looked at again: the hardware domain moves the BARs of a device vPCI does not handle without any
   * check seeing that device.
   */
  devicePages(context: EngineContext, changed?: Iterable<PciDevice>): readonly DevicePages[] {
    let listing = this.listing;
    // A device added or removed since the listing was made (a hot plug or an unplug, after which a
    // check may not have asked for the listing at all) makes it stale, scoped check or not.
    if (listing === undefined || listing.version !== context.deviceListVersion) {
      const entries = [...context.devices()].map((device) => this.pagesNow(context, device));
      listing = {
        version: context.deviceListVersion,
        entries,
        at: new Map(entries.map((entry, i) => [entry.device, i])),
      };
      this.listing = listing;
      return entries;
    }
    const { entries } = listing;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      if (entry.barWrites !== entry.device.hw.barWrites || entry.vpci !== entry.device.vpci)
        entries[i] = this.pagesNow(context, entry.device);
    }
    for (const device of changed ?? context.devices()) {
      const i = listing.at.get(device);
      // A device the listing does not know is no longer on the host (the listing, of this version,
      // has every device that is): nothing of it to list.
      if (i === undefined) continue;
      const entry = listing.entries[i]!;
      if (entry.owner !== effectiveOwner(context, device) || entry.pages !== this.hostPagesOf(device))
        listing.entries[i] = this.pagesNow(context, device);
    }
    return listing.entries;
  }

  private pagesNow(context: EngineContext, device: PciDevice): DevicePages {
    return {
      device,
      owner: effectiveOwner(context, device),
      pages: this.hostPagesOf(device),
      barWrites: device.hw.barWrites,
      vpci: device.vpci,
    };
  }
}

function unchangedSince(device: PciDevice, known: Remembered): boolean {
  return device.vpci === known.vpci && (device.vpci?.barChanges() ?? 0) === known.madeAt;
}

function sameFrames(a: readonly HostFrames[], b: readonly HostFrames[]): boolean {
  return a.length === b.length && a.every((frames, i) => frames[0] === b[i]![0] && frames[1] === b[i]![1]);
}
