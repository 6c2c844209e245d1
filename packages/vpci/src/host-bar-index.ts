/**
 * Every device's BARs by host frame, for the hardened sharing refusals: `Machine.sharedMappedPage` (a
 * device assigned or hot-plugged while another domain maps a page of its BARs) and `modifyBars`'
 * `dropSharedPages` (a map withholding the pages another domain's device has a BAR on). Each asks
 * which other devices have a BAR on the host pages of a few BARs, and walked every device of the
 * machine for it: n guests of a device each made n assignments and n maps, each walking n devices
 * (packages/replay DESIGN.md, the `guests` dimension). The index answers with the devices that may
 * meet those pages; the callers then ask each of them what the walk asked, so the answers, their
 * order and the events are the walk's.
 *
 * A device's entries are the host frames of its `hostBars` (`hostBarFrames`) and of every BAR of its
 * vPCI state (the BARs `sharedPageWith` asks of: mapped, or with frames to map), a superset of what
 * either caller looks at. They are taken again, lazily at the next question, for the devices told of
 * since: a device plugged (`plugged`), a BAR, ROM, resizable-BAR or VF BAR register written or a vPCI
 * state replaced (`BarWriteLog`; a PF's write re-reads its VFs, whose BARs its VF BAR registers place,
 * if it left those placed otherwise than when the VFs were read: `vfBarsMoved`),
 * or a vPCI BAR's type, host address or size set (`Bar.hostWatcher`). A device whose frames did not
 * change keeps its entries; an unplugged one loses them at once (`unplugged`). A PF's VF BAR registers
 * written re-read each of its VFs once at the next question, however many writes came before it: the
 * work is the VFs whose BARs the writes placed, not the writes times the VFs.
 */

import { IntervalIndex } from '@vpci/rangeset/internal';
import type { BarWatcher } from './device.js';
import type { PciDevice } from './domain.js';
import { BarWriteLog, type PhysicalDevice } from './hardware.js';
import { hostBarFrames } from './ownership.js';
import { PCI_SRIOV_BAR, PCI_SRIOV_NUM_BARS } from './pci-regs.js';

/**
 * One BAR's host frames `[first, last]` of a device; inverted (`last = first - 1`) for a vPCI BAR of
 * size 0 (an empty slot), which the walk's test `start <= first - 1 && first <= end` meets in a range
 * crossing the boundary below frame `first`.
 */
interface Spot {
  readonly device: PciDevice;
  readonly first: number;
  readonly last: number;
}

/** The devices' BARs of one machine by host frame (`EngineContext.hostBarIndex`). */
export class HostBarIndex {
  private readonly index = new IntervalIndex<Spot>();
  /**
   * The inverted spots, by the frame `first` above their boundary (nearly all at 0: every device's empty
   * slots), each boundary once in `boundaries` at `[first - 1, first]`: in `index` they would be
   * walked at every search, and thousands on one interval made each removal a walk over them.
   */
  private readonly emptyAt = new Map<number, Set<PciDevice>>();
  private readonly boundaries = new IntervalIndex<number>();
  /** Each indexed device's entries in `index`. */
  private readonly spots = new Map<PciDevice, Spot[]>();
  /** The indexed devices by their hardware, for what `barWrites` notes. */
  private readonly byHardware = new Map<PhysicalDevice, PciDevice>();
  /** The devices to take again at the next question. */
  private readonly stale = new Set<PciDevice>();
  private readonly barWrites = new BarWriteLog();
  /**
   * Each written PF's VF BAR placement (`vfBarPlacement`) when its VFs were last taken again for a
   * write: while it holds, a VF's frames through its PF are as read, whatever the PF's write was.
   */
  private readonly vfPlacements = new Map<PciDevice, number[]>();
  private readonly watchers = new WeakMap<PciDevice, BarWatcher>();

  /** `device` joined the machine (a hot plug, a VF brought up, a device at boot). */
  plugged(device: PciDevice): void {
    this.stale.add(device);
  }

  /** `device` left the machine: its entries go. */
  unplugged(device: PciDevice): void {
    this.stale.delete(device);
    for (const spot of this.spots.get(device) ?? []) this.drop(spot);
    this.spots.delete(device);
    this.vfPlacements.delete(device);
    if (this.byHardware.get(device.hw) === device) this.byHardware.delete(device.hw);
  }

  /**
   * The devices with an entry meeting any of `ranges` (host frames, inclusive), each once, in no
   * particular order: every device whose `hostBars` or vPCI BARs meet them, and maybe others.
   */
  devicesMeeting(ranges: readonly (readonly [number, number])[]): PciDevice[] {
    this.bringUpToDate();
    const met: Spot[] = [];
    const boundaries: number[] = [];
    for (const [first, last] of ranges) {
      this.index.meeting(first, last, met);
      this.boundaries.meeting(first, last, boundaries);
    }
    const devices = new Set<PciDevice>();
    for (const spot of met) devices.add(spot.device);
    // `[above - 1, above]` met: the walk's test asks for both frames.
    for (const above of boundaries)
      if (ranges.some(([first, last]) => first <= above - 1 && above <= last))
        for (const device of this.emptyAt.get(above)!) devices.add(device);
    return [...devices];
  }

  /** The host frames each indexed device has entries on, as the index holds them (for the model tests). */
  indexedFrames(): Map<PciDevice, (readonly [number, number])[]> {
    this.bringUpToDate();
    const frames = new Map<PciDevice, (readonly [number, number])[]>();
    for (const [device, spots] of this.spots)
      frames.set(
        device,
        spots.map((spot) => [spot.first, spot.last]),
      );
    return frames;
  }

  private bringUpToDate(): void {
    const written = this.barWrites.take();
    if (written.size > 0)
      for (const hw of written) {
        const device = this.byHardware.get(hw);
        if (device === undefined) continue;
        this.stale.add(device);
        if (device.virtfns.length > 0 && this.vfBarsMoved(device))
          for (const vf of device.virtfns) if (this.spots.has(vf)) this.stale.add(vf);
      }
    if (this.stale.size === 0) return;
    for (const device of this.stale) this.takeAgain(device);
    this.stale.clear();
  }

  /**
   * Whether `pf`'s VF BARs are placed otherwise than when its VFs were last read, and if so their
   * placement now remembered. Xen's sizing of the VF BARs at every VF MSE on writes and restores the
   * VF BAR registers, and the PF's own BARs share its write count: re-reading every VF after each of
   * those would make one VF MSE operation re-read all of a PF's VFs.
   */
  private vfBarsMoved(pf: PciDevice): boolean {
    const now = vfBarPlacement(pf.hw);
    const before = this.vfPlacements.get(pf);
    if (before?.every((word, i) => word === now[i])) return false;
    this.vfPlacements.set(pf, now);
    return true;
  }

  private takeAgain(device: PciDevice): void {
    if (this.byHardware.get(device.hw) !== device) {
      device.hw.watchBarWrites(this.barWrites);
      this.byHardware.set(device.hw, device);
    }
    const watcher = this.watcherOf(device);
    for (const bar of device.vpci?.bars ?? []) bar.hostWatcher = watcher;
    const frames = framesOf(device);
    const before = this.spots.get(device);
    if (before !== undefined && sameFrames(before, frames)) return;
    for (const spot of before ?? []) this.drop(spot);
    const spots = frames.map(([first, last]) => ({ device, first, last }));
    for (const spot of spots) this.hold(spot);
    this.spots.set(device, spots);
  }

  private hold(spot: Spot): void {
    if (spot.first <= spot.last) {
      this.index.add(spot.first, spot.last, spot);
      return;
    }
    let devices = this.emptyAt.get(spot.first);
    if (devices === undefined) {
      devices = new Set();
      this.emptyAt.set(spot.first, devices);
      this.boundaries.add(spot.first - 1, spot.first, spot.first);
    }
    devices.add(spot.device);
  }

  private drop(spot: Spot): void {
    if (spot.first <= spot.last) {
      this.index.remove(spot.first, spot.last, spot);
      return;
    }
    const devices = this.emptyAt.get(spot.first)!;
    devices.delete(spot.device);
    if (devices.size > 0) return;
    this.emptyAt.delete(spot.first);
    this.boundaries.remove(spot.first - 1, spot.first, spot.first);
  }

  private watcherOf(device: PciDevice): BarWatcher {
    let watcher = this.watchers.get(device);
    if (watcher === undefined) {
      // A BAR of a vPCI state the device no longer has, or of a device unplugged since, tells nothing.
      watcher = {
        barChanged: () => {
          if (this.spots.has(device)) this.stale.add(device);
        },
      };
      this.watchers.set(device, watcher);
    }
    return watcher;
  }
}

/**
 * What a VF's BARs take from its PF (`vfDecodedBars`: VF BAR `i` at `base_i + n × size_i`): each VF BAR
 * register word and each VF BAR's size under the current System Page Size. NumVFs and VF Offset and
 * Stride are not among them: they say which VFs exist and their routing IDs, and a VF's index `n` is
 * fixed from its bring-up.
 */
function vfBarPlacement(pf: PhysicalDevice): number[] {
  const sriov = pf.sriov;
  const placement: number[] = [];
  if (sriov === undefined) return placement;
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++)
    placement.push(pf.read(sriov.pos + PCI_SRIOV_BAR + 4 * i, 4), Number(sriov.vfBarSize(i)));
  return placement;
}

/** `hostBarFrames(device)`, then the host frames of each vPCI BAR not among them. */
function framesOf(device: PciDevice): (readonly [number, number])[] {
  const frames: (readonly [number, number])[] = [...hostBarFrames(device)];
  for (const bar of device.vpci?.bars ?? []) {
    const [first, last] = bar.hostFrames();
    if (!frames.some((known) => known[0] === first && known[1] === last)) frames.push([first, last]);
  }
  return frames;
}

function sameFrames(spots: readonly Spot[], frames: readonly (readonly [number, number])[]): boolean {
  if (spots.length !== frames.length) return false;
  for (let i = 0; i < spots.length; i++)
    if (spots[i]!.first !== frames[i]![0] || spots[i]!.last !== frames[i]![1]) return false;
  return true;
}
