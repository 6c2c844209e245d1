/**
 * The machine's record of the vCPUs with pending work (pending-vcpus.ts) against a naive walk over
 * `Machine.domains()` and each domain's `vcpus`, the walk the engine made before the record (and the
 * whole invariant check still makes), after every step of random sequences that set, replace and
 * clear vCPUs' work through `Vcpu.pending`: several vCPUs on one device (Xen lets parallel operations
 * start: F2), guests made out of id order, work moved from one device to another.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import type { PciDevice, Vcpu } from './domain.js';
import { Machine } from './machine.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';

/** A machine of four devices, the hardware domain's 2 vCPUs and guests 7, 2 and 5 (made in that order). */
function machineWithGuests(): { machine: Machine; vcpus: Vcpu[]; devices: PciDevice[] } {
  const machine = new Machine();
  const devices = [0, 1, 2, 3].map((i) =>
    machine.addDevice({
      sbdf: `0000:0${i + 1}:00.0`,
      bars: [{ type: 'mem32', size: 0x1000n, addr: BigInt(0xc000_0000 + i * 0x10_0000) }],
    }),
  );
  machine.boot();
  for (const [id, vcpus] of [
    [7, 3],
    [2, 1],
    [5, 2],
  ] as const)
    machine.createGuest({ id, vcpus });
  const vcpus = machine.domains().flatMap((domain) => domain.vcpus);
  return { machine, vcpus, devices };
}

/** The vCPUs with work pending as the walk meets them. */
function walked(machine: Machine): Vcpu[] {
  return machine.domains().flatMap((domain) => domain.vcpus.filter((vcpu) => vcpu.pending !== undefined));
}

const names = (vcpus: readonly Vcpu[]): string[] => vcpus.map((vcpu) => vcpu.name);

/** Each step: a vCPU (by index among all) gets work on a device (by index), or none. */
const step = fc.record({ vcpu: fc.nat(), device: fc.option(fc.nat(), { freq: 3, nil: undefined }) });

describe('PendingVcpus against a walk over every domain and vCPU', () => {
  it('after every set or clear: the same vCPUs in the same order, per device and after each vCPU', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const { machine, vcpus, devices } = machineWithGuests();
        const record = machine.pendingVcpus;
        for (const [i, s] of steps.entries()) {
          const vcpu = vcpus[s.vcpu % vcpus.length]!;
          vcpu.pending =
            s.device === undefined
              ? undefined
              : {
                  device: devices[s.device % devices.length]!,
                  cmd: PCI_COMMAND_MEMORY,
                  romOnly: false,
                  done: new Map(),
                };
          const where = `after step ${i + 1} (${vcpu.name})`;
          const walk = walked(machine);
          expect(names(record.vcpus()), where).toEqual(names(walk));
          expect(record.size, where).toBe(walk.length);
          for (const device of devices) {
            const on = walk.filter((v) => v.pending!.device === device);
            expect(names(record.on(device)), `${where}, ${device.name}`).toEqual(names(on));
            expect(record.firstOn(device)?.name, `${where}, ${device.name}`).toBe(on[0]?.name);
          }
          // `after`: the next vCPU with work the walk would meet, from any vCPU (pending or not).
          expect(record.after(undefined)?.name, where).toBe(walk[0]?.name);
          for (const [at, from] of vcpus.entries()) {
            const next = vcpus.slice(at + 1).find((v) => v.pending !== undefined);
            expect(record.after(from)?.name, `${where}, after ${from.name}`).toBe(next?.name);
          }
        }
      }),
      runs(200),
    );
  });

  it("every domain of a machine (dom_xen and dom_io too) shares the machine's record", () => {
    const machine = new Machine();
    const device = machine.addDevice({ sbdf: '0000:01:00.0', bars: [] });
    const guest = machine.createGuest({ vcpus: 2 });
    guest.vcpus[1]!.pending = { device, cmd: 0, romOnly: false, done: new Map() };
    expect(names(machine.pendingVcpus.vcpus())).toEqual(['d1v1']);
    for (const domain of machine.domains()) expect(domain.pendingVcpus).toBe(machine.pendingVcpus);
  });
});
