/**
 * What a replayed line may change of a device, as far as the invariants look at it: taken before the
 * line, compared with the device after it. Most lines change nothing an invariant reads (sizing a BAR
 * that is not mapped, a driver's runtime writes), and then no check runs; so a snapshot is taken and
 * compared in place, into arrays reused from line to line, without allocating.
 */
import { mappingDomain } from '../context.js';
import type { PciDevice } from '../device.js';
import type { Domain } from '../domain.js';
import type { Machine } from '../machine.js';
import { pendingVcpuOf } from '../modify-bars.js';

/** A frame range as the BARs cache them (never changed in place: a moved BAR makes a new one). */
export type FrameRange = readonly [number, number];

export class DeviceSnapshot {
  device: PciDevice | undefined;
  /** The domain whose p2m the device's BARs map into, and the id of its owner. */
  domain: Domain | undefined;
  owner: number | undefined;
  /** Guest frames of its memory BARs and pending sets, and host frames of its memory BARs. */
  private readonly guest = new FrameList();
  private readonly host = new FrameList();
  /** The values `visit` handed over, the first `kept` of them (the array is overwritten, never cut). */
  private readonly values: unknown[] = [];
  private kept = 0;
  private compared = 0;
  private readonly keep = (value: unknown): boolean => {
    this.values[this.kept++] = value;
    return true;
  };
  private readonly same = (value: unknown): boolean => value === this.values[this.compared++];

  /** Records `device` as it is now. */
  take(machine: Machine, device: PciDevice): void {
    this.device = device;
    this.domain = mappingDomain(machine, device);
    this.owner = device.domain?.id;
    this.kept = 0;
    visit(machine, device, this.keep);
    this.guest.clear();
    this.host.clear();
    framesOf(device, this.guest, this.host);
  }

  /** The guest frames the device had at `take`, and its host frames. */
  frames(): { guest: FrameRange[]; host: FrameRange[] } {
    return { guest: this.guest.toArray(), host: this.host.toArray() };
  }

  /** Whether nothing an invariant reads of the device has changed since `take`. */
  unchanged(machine: Machine): boolean {
    this.compared = 0;
    return visit(machine, this.device!, this.same) && this.compared === this.kept;
  }
}

/**
 * Hands `step` everything an invariant reads of the device, value by value, until `step` says stop:
 * the owner, the p2m's writes, decoding, pending work, withheld pages, and per BAR its enabled flag,
 * guest address while mapped, host address, size and whether its set holds frames.
 */
function visit(machine: Machine, device: PciDevice, step: (value: unknown) => boolean): boolean {
  const vpci = device.vpci;
  const domain = mappingDomain(machine, device);
  if (
    !step(device.domain?.id) ||
    !step(domain) ||
    !step(domain?.p2m.writes) ||
    !step(vpci?.barsMapped) ||
    !step(pendingVcpuOf(machine, device)) ||
    !step(vpci?.withheld?.size)
  )
    return false;
  for (const bar of vpci?.bars ?? []) {
    if (!bar.mappable || bar.size === 0n) continue;
    // A BAR's guest address matters only while it is mapped; its host address always (sharing).
    if (
      !step(bar.enabled) ||
      !step(bar.enabled ? bar.guestAddr : 0n) ||
      !step(bar.enabled && bar.halfWritten) ||
      !step(bar.addr) ||
      !step(bar.size) ||
      !step(bar.mem?.isEmpty() ?? true)
    )
      return false;
  }
  return true;
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
}

/** Adds the guest and host frames of `device`'s memory BARs (and its pending sets) to the lists. */
export function framesOf(
  device: PciDevice,
  guest: { push(range: FrameRange): void },
  host: { push(range: FrameRange): void },
): void {
  for (const bar of device.vpci?.bars ?? []) {
    if (!bar.mappable || bar.size === 0n) continue;
    guest.push(bar.guestFrames());
    host.push(bar.hostFrames());
    if (bar.mem !== undefined && !bar.mem.isEmpty()) for (const [s, e] of bar.mem) guest.push([s, e]);
  }
}
