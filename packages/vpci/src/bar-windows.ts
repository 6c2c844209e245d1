/**
 * What the invariant checks read of a device's BARs, in plain numbers: its enabled BARs as guest
 * windows with their guest → machine shift, and the guest frames of its MSI-X structures. A replay
 * checks after every line and a check reads every device of a domain, so these are remembered per
 * device until one of its BARs changes (`Bar.changes`); making them needs bigint arithmetic.
 */

import type { Bar, VpciState } from './device.js';
import { DeviceCheckStates } from './device-check-state.js';
import type { PciDevice } from './domain.js';
import { msixBir, msixGuestFrames } from './msix.js';

/** An enabled BAR's guest frames and its guest → machine shift. */
export interface Window {
  readonly device: PciDevice;
  readonly bar: Bar;
  readonly first: number;
  readonly last: number;
  /** mfn - gfn for every page of the BAR. */
  readonly shift: number;
}

/** The guest frames of an MSI-X structure (table or PBA) whose BIR BAR is enabled. */
export interface MsixPages {
  readonly device: PciDevice;
  /** Where it is among the device's `msixPages` (the order a check reports them in). */
  readonly position: number;
  readonly first: number;
  readonly last: number;
}

/** A device's enabled BARs (in slot order) and MSI-X structures whose BIR BAR is enabled. */
export interface DeviceWindows {
  readonly device: PciDevice;
  readonly windows: readonly Window[];
  readonly msixPages: readonly MsixPages[];
}

interface Remembered extends DeviceWindows {
  /**
   * `VpciState.barChanges()` when made, or when last found the same after a change (a BAR that is
   * not enabled sized or placed: its windows stay as they were).
   */
  madeAt: number;
  /** The MSI-X state they were made with (set up after the header, so it may come later). */
  readonly msix: VpciState['msix'];
  /** The vPCI state they were made of (a device given a new one has new BARs). */
  readonly vpci: VpciState;
}

/**
 * A device's windows made from its BARs as they are now (a device with vPCI state): what the cache
 * below remembers, and what a whole check reads afresh (`pushDeviceWindows`, into its lists).
 */
export function deviceWindows(device: PciDevice): DeviceWindows {
  const windows: Window[] = [];
  const msixPages: MsixPages[] = [];
  pushDeviceWindows(device, windows, msixPages);
  return { device, windows, msixPages };
}

/** `deviceWindows(device)`'s windows and MSI-X pages added to the end of `windows` and `msixPages`. */
export function pushDeviceWindows(device: PciDevice, windows: Window[], msixPages: MsixPages[]): void {
  const vpci = device.vpci!;
  for (let i = 0; i < vpci.bars.length; i++) {
    const bar = vpci.bars[i]!;
    if (!bar.enabled) continue;
    const first = bar.guestFrames()[0];
    windows.push({ device, bar, first, last: bar.guestFrames()[1], shift: bar.hostFrames()[0] - first });
  }
  if (vpci.msix === undefined) return;
  let position = 0;
  for (let nr = 0; nr < 2; nr++) {
    if (!vpci.bars[msixBir(vpci, nr)]!.enabled) continue;
    const [first, last] = msixGuestFrames(vpci, nr);
    msixPages.push({ device, position: position++, first, last });
  }
}

/** The windows of each device, remembered until its BARs change; one per machine. */
export class DeviceWindowsCache {
  /** Where each device's windows are kept (`DeviceCheckState.windows`). */
  constructor(private readonly states = new DeviceCheckStates()) {}

  /**
   * The windows of a device with vPCI state: the same object while they stay the same, even across
   * BAR changes that did not move them (the window indexes then keep the device's entries as they
   * are: most of a reprogramming's lines size or place a BAR that is not enabled).
   */
  windowsOf(device: PciDevice): DeviceWindows {
    const vpci = device.vpci!;
    const state = this.states.of(device);
    const known = state.windows as Remembered | undefined;
    const changes = vpci.barChanges();
    // Compared with the BARs before anything is made: the usual change since (a map finishing where
    // the BARs were, which sets only the enabled flags back) leaves them as they were.
    if (
      known !== undefined &&
      known.vpci === vpci &&
      known.msix === vpci.msix &&
      (known.madeAt === changes || windowsStill(known, vpci))
    ) {
      known.madeAt = changes;
      return known;
    }
    // Made field by field rather than by spreading `deviceWindows`' answer: one object fewer per change.
    const windows: Window[] = [];
    const msixPages: MsixPages[] = [];
    pushDeviceWindows(device, windows, msixPages);
    const made: Remembered = { device, windows, msixPages, madeAt: changes, msix: vpci.msix, vpci };
    state.windows = made;
    return made;
  }
}

/**
 * Whether `pushDeviceWindows` would make `known`'s windows and MSI-X pages of `vpci` as it is now (the
 * same BARs enabled, on the same frames with the same shifts, the same MSI-X pages), found without
 * making them.
 */
function windowsStill(known: DeviceWindows, vpci: VpciState): boolean {
  const windows = known.windows;
  let k = 0;
  for (let i = 0; i < vpci.bars.length; i++) {
    const bar = vpci.bars[i]!;
    if (!bar.enabled) continue;
    const w = windows[k++];
    if (w === undefined || w.bar !== bar) return false;
    const guest = bar.guestFrames();
    if (w.first !== guest[0] || w.last !== guest[1] || w.shift !== bar.hostFrames()[0] - guest[0])
      return false;
  }
  if (k !== windows.length) return false;
  const msixPages = known.msixPages;
  let position = 0;
  for (let nr = 0; vpci.msix !== undefined && nr < 2; nr++) {
    if (!vpci.bars[msixBir(vpci, nr)]!.enabled) continue;
    const page = msixPages[position++];
    const [first, last] = msixGuestFrames(vpci, nr);
    if (page === undefined || page.first !== first || page.last !== last) return false;
  }
  return position === msixPages.length;
}
