/**
 * Helpers shared by the package's tests: building machines from short descriptions and reading
 * back mappings. Not exported from the package.
 */
import { gfn } from '@vpci/p2m';
import {
  type DeviceSpec,
  type Domain,
  Machine,
  type MachineOptions,
  type PciDevice,
  type PendingResult,
  parseSbdf,
  type Vcpu,
} from '@vpci/vpci';

/** A booted machine with the given devices (all the hardware domain's). */
export function bootedMachine(devices: readonly DeviceSpec[], options: MachineOptions = {}): Machine {
  const machine = new Machine(options);
  for (const device of devices) machine.addDevice(device);
  machine.boot();
  return machine;
}

/** Writes the command register and runs the deferred work to the end. */
export function writeCommand(machine: Machine, vcpu: Vcpu, sbdf: string, cmd: number): PendingResult {
  machine.configWrite(vcpu, sbdf, 0x04, 2, cmd);
  return machine.finishPending(vcpu);
}

/** What guest frame `frame` maps: the machine frame of an mmio_direct entry, or undefined. */
export function mfnAt(domain: Domain, frame: number): number | undefined {
  const entry = domain.p2m.lookup(gfn(frame));
  return entry.type === 'mmio_direct' ? entry.mfn : undefined;
}

/** The domain's MMIO extents as `[gfn, mfn, count]` triples, for whole-map comparisons. */
export function mmioExtents(domain: Domain): [number, number, number][] {
  return [...domain.p2m.extents()]
    .filter((e) => e.type === 'mmio_direct')
    .map((e) => [e.gfn, e.mfn, e.count]);
}

/** The device `vcpu` reaches at `text` (a guest's addresses are its own virtual ones). */
export function reached(machine: Machine, vcpu: Vcpu, text: string): PciDevice | undefined {
  const sbdf = parseSbdf(text);
  if (vcpu.domain.isHardware) return machine.findDevice(sbdf);
  return vcpu.domain.devices.find((d) => {
    const seen = d.vpci?.guestSbdf;
    return seen?.bus === sbdf.bus && seen.dev === sbdf.dev && seen.fn === sbdf.fn && seen.seg === sbdf.seg;
  });
}
