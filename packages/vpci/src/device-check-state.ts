/**
 * What the invariant checks keep for one device, in one object reached from the device with one field
 * read (`PciDevice.checkState`). A line that finishes a device's map asks the checks' caches about that
 * device some fifteen times (its windows, where the window index holds them, the frames it was found
 * alone on, its host pages, its place in the listing of host pages): each cache kept its part in a
 * table of its own keyed by the device, so the line searched six tables, which no other kind of line
 * reads and which are cold when it comes (packages/vpci DESIGN.md, branches `fin9` and `devstate`).
 *
 * Each part is written and read by one cache module only, which declares its type (the slots are
 * typed `unknown` here: those modules import this one, and a type import back would be a cycle).
 * Each part says itself whether it still holds (the vPCI state or index it was made for, a count),
 * as the tables' entries did: a device's state replaced, its domain changed, or an index made again
 * finds the part stale in the same way it found the entry stale.
 */

import type { PciDevice } from './domain.js';

/** One device's parts of one machine's caches (`DeviceCheckStates.of`). */
export class DeviceCheckState {
  /** bar-windows.ts: its windows and MSI-X pages as last made. */
  windows: unknown = undefined;
  /** window-index.ts: where the domain window indexes hold its windows, and which. */
  held: unknown = undefined;
  /** window-index.ts: the frames `othersMayMeet` last found no other device's window or page on. */
  alone: unknown = undefined;
  /** host-pages.ts: its host pages and what they were worked out from. */
  hostPages: unknown = undefined;
  /** host-pages.ts: the listing of host pages it has a place in, and the place. */
  listing: unknown = undefined;
  listingAt = -1;
  /** unshared-windows.ts: per BAR slot, the last window of it found to hold no other domain's page. */
  unshared: unknown[] | undefined = undefined;

  constructor(readonly keptBy: DeviceCheckStates) {}
}

/**
 * The devices' check states of one machine's caches (`InvariantCaches.deviceStates`). A device holds
 * the state of the first such owner that asks (a machine has one); another owner (a test's cache made
 * beside the machine's, reading the same devices) keeps its states in a table of its own, so that
 * neither sees the other's.
 */
export class DeviceCheckStates {
  private readonly elsewhere = new WeakMap<PciDevice, DeviceCheckState>();

  of(device: PciDevice): DeviceCheckState {
    const kept = device.checkState;
    if (kept instanceof DeviceCheckState && kept.keptBy === this) return kept;
    if (kept !== undefined) return this.notKeptHere(device);
    const made = new DeviceCheckState(this);
    device.checkState = made;
    return made;
  }

  private notKeptHere(device: PciDevice): DeviceCheckState {
    let state = this.elsewhere.get(device);
    if (state === undefined) {
      state = new DeviceCheckState(this);
      this.elsewhere.set(device, state);
    }
    return state;
  }
}
