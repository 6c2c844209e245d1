/**
 * The host pages of a device's BARs (see `hostBars`), for the sharing invariant. A replay checks
 * invariants after every line that changed something, and a line writes one device's registers:
 * remembering each device's pages until its registers are written again or a vPCI BAR's host frames
 * change keeps a check from rebuilding them for every device on the machine.
 */
import type { EngineContext } from './context.js';
import type { PciDevice } from './device.js';
import { effectiveOwner, hostBars } from './modify-bars.js';

/** Inclusive host frames, as `Bar.hostFrames` gives them. */
export type HostFrames = readonly [number, number];

interface Remembered {
  /** The device's register write count when made. */
  readonly writes: number;
  /**
   * The host frames of its mapped vPCI BARs when made. Each BAR caches its pair until its address or
   * size changes, so an unchanged pair is the same object.
   */
  readonly vpciFrames: readonly HostFrames[];
  readonly pages: readonly HostFrames[];
}

const remembered = new WeakMap<PciDevice, Remembered>();

/** The host frames of every BAR `device` decodes or vPCI maps. */
function hostPagesOf(device: PciDevice): readonly HostFrames[] {
  const known = remembered.get(device);
  if (known !== undefined && known.writes === device.hw.writes && sameVpciFrames(device, known.vpciFrames))
    return known.pages;
  const vpciFrames: HostFrames[] = [];
  for (const bar of device.vpci?.bars ?? [])
    if (bar.mappable && bar.size > 0n) vpciFrames.push(bar.hostFrames());
  const pages = hostBars(device).map((bar) => bar.hostFrames());
  remembered.set(device, { writes: device.hw.writes, vpciFrames, pages });
  return pages;
}

/** Whether the mapped vPCI BARs' host frames are still `frames`, compared in place. */
function sameVpciFrames(device: PciDevice, frames: readonly HostFrames[]): boolean {
  let k = 0;
  for (const bar of device.vpci?.bars ?? []) {
    if (bar.mappable && bar.size > 0n && frames[k++] !== bar.hostFrames()) return false;
  }
  return k === frames.length;
}

/** One BAR's host frames and the domain that owns its device (dom_xen's count as dom0's). */
export interface OwnedPage {
  readonly device: PciDevice;
  readonly owner: number;
  readonly frames: HostFrames;
}

/** The owned pages of a machine and what they were made from, per device. */
interface Listing {
  readonly made: ReadonlyMap<
    PciDevice,
    { readonly owner: number | undefined; readonly pages: readonly HostFrames[] }
  >;
  readonly order: readonly PciDevice[];
  readonly pages: readonly OwnedPage[];
}

const listings = new WeakMap<EngineContext, Listing>();

/**
 * The host pages of every device that has an owner, in device order, remembered per machine.
 * `changed` names the devices that may have changed since the machine's last listing (a scoped
 * invariant check's devices); without it every device is looked at.
 */
export function ownedHostPages(context: EngineContext, changed?: Iterable<PciDevice>): readonly OwnedPage[] {
  const known = listings.get(context);
  if (known !== undefined && stillListed(context, known, changed)) return known.pages;
  const made = new Map<PciDevice, { owner: number | undefined; pages: readonly HostFrames[] }>();
  const order: PciDevice[] = [];
  const pages: OwnedPage[] = [];
  for (const device of context.devices()) {
    const owner = effectiveOwner(context, device);
    const frames = hostPagesOf(device);
    made.set(device, { owner, pages: frames });
    order.push(device);
    if (owner !== undefined) for (const page of frames) pages.push({ device, owner, frames: page });
  }
  listings.set(context, { made, order, pages });
  return pages;
}

function stillListed(
  context: EngineContext,
  known: Listing,
  changed: Iterable<PciDevice> | undefined,
): boolean {
  const same = (device: PciDevice): boolean => {
    const entry = known.made.get(device);
    return (
      entry !== undefined &&
      entry.owner === effectiveOwner(context, device) &&
      entry.pages === hostPagesOf(device)
    );
  };
  if (changed !== undefined) {
    for (const device of changed) if (!same(device)) return false;
    return true;
  }
  let k = 0;
  for (const device of context.devices()) if (known.order[k++] !== device || !same(device)) return false;
  return k === known.order.length;
}
