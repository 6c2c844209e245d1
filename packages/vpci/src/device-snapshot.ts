/**
 * What a replayed line may change of a device, as far as the invariants look at it: taken before the
 * line, compared with the device after it. Most lines change nothing an invariant reads (sizing a BAR
 * that is not mapped, a driver's runtime writes), and then no check runs; so a snapshot is taken and
 * compared in place, into arrays reused from line to line, without allocating.
 */
import { gfn, MAX_FRAME } from '@vpci/p2m';
import { mappingDomain } from './context.js';
import type { Domain, PciDevice, Vcpu } from './domain.js';
import type { Machine } from './machine.js';
import { hostBarFrames } from './ownership.js';

/** A frame range as the BARs cache them (never changed in place: a moved BAR makes a new one). */
export type FrameRange = readonly [number, number];

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
  /** Guest frames of its memory BARs and pending sets, and host frames of its memory BARs. */
  private readonly guest = new FrameList();
  private readonly host = new FrameList();
  /** What `record` wrote at `take`, the first `kept` entries, and at the latest compare. */
  private readonly values: unknown[] = [];
  private kept = 0;
  private readonly now: unknown[] = [];

  /** Records `device` as it is now. */
  take(machine: Machine, device: PciDevice): void {
    this.device = device;
    this.domain = mappingDomain(machine, device);
    this.owner = device.domain?.id;
    this.kept = record(machine, device, this.values);
    this.guest.clear();
    this.host.clear();
    framesOf(device, this.guest, this.host, machine);
  }

  /** The guest frames the device had at `take`, and its host frames. */
  frames(): { guest: FrameRange[]; host: FrameRange[] } {
    return { guest: this.guest.toArray(), host: this.host.toArray() };
  }

  /** Whether nothing an invariant reads of the device has changed since `take`. */
  unchanged(machine: Machine): boolean {
    const count = record(machine, this.device!, this.now);
    if (count !== this.kept) return false;
    for (let i = 0; i < count; i++) if (this.now[i] !== this.values[i]) return false;
    return true;
  }
}

/**
 * Writes into `into` (from index 0, overwriting) everything an invariant reads of the device: the
 * owner, the p2m's writes, decoding, pending work, withheld pages, the hardware's BAR register writes,
 * and per BAR its enabled flag, guest address while mapped or pending, host address, size and the
 * frames its set holds. Returns how many.
 */
function record(machine: Machine, device: PciDevice, into: unknown[]): number {
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
  const pending = machine.pendingVcpus.firstOn(device);
  into[n++] = pending;
  into[n++] = vpci?.withheld?.size;
  // The hardware's BARs count for sharing even where vPCI does not handle the device.
  into[n++] = device.hw.barWrites;
  for (const bar of vpci?.bars ?? []) {
    if (!bar.mappable || bar.size === 0n) continue;
    // A BAR's guest address matters while it is mapped or work is pending on the device (its frames
    // excuse the mappings in flight); its host address always (sharing).
    into[n++] = bar.enabled;
    into[n++] = bar.enabled || pending !== undefined ? bar.guestAddr : 0n;
    into[n++] = bar.enabled && bar.halfWritten;
    into[n++] = bar.addr;
    into[n++] = bar.size;
    // The set's frames, not only whether it has some: a leftover set that grows is a new
    // rangeset-not-empty violation (it names the frames). Empty is the common case and costs nothing.
    const mem = bar.mem;
    into[n++] = mem?.size ?? 0;
    if (mem !== undefined && !mem.isEmpty()) {
      mem.reportRanges(gfn(0), gfn(MAX_FRAME), (start, end) => {
        into[n++] = start;
        into[n++] = end;
        return undefined;
      });
    }
  }
  return n;
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
}

/**
 * Adds the guest frames of `device`'s memory BARs (and its pending sets), and the host frames of every
 * BAR it decodes or vPCI maps (`hostBars`), to the lists. The host frames are those `machine`
 * remembers, when given (the replayer asks after every line); else they are read again.
 */
export function framesOf(device: PciDevice, guest: FrameSink, host: FrameSink, machine?: Machine): void {
  const pages = machine?.invariantCaches.hostPages.hostPagesOf(device) ?? hostBarFrames(device);
  for (const frames of pages) host.push(frames);
  for (const bar of device.vpci?.bars ?? []) {
    if (!bar.mappable || bar.size === 0n) continue;
    guest.push(bar.guestFrames());
    if (bar.mem !== undefined && !bar.mem.isEmpty()) for (const [s, e] of bar.mem) guest.push([s, e]);
  }
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
  if (vcpu.pending !== undefined) return true;
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
