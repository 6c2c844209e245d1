/**
 * Xen's rangeset calls for a placement: what vPCI's `modify_bars` and `vpci_process_pending` do on
 * the BAR sets when the guest firmware turns decoding on with the BARs where the placement put them.
 * Counted by the engine itself (`Domain.rangesetOps`, the `xen` profile), so the rules are the
 * replay report's (docs/trace-format.md, "Xen's rangeset calls"), not a second model of them.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import {
  type DeviceSpec,
  formatSbdf,
  Machine,
  makeSbdf,
  noRangesetOps,
  PCI_COMMAND,
  type RangesetOps,
  type Sbdf,
  toSbdf,
} from '@vpci/vpci';
import type { PciSetupResult } from './pci-setup.js';

/**
 * The rangeset calls Xen makes for `result`'s decoding writes: `devices` (at their host addresses)
 * on a machine, all assigned to one guest in the order given, each as function 0 of a slot of its own
 * on the host (Xen's vPCI gives a guest function 0 only, `add_virtual_device`; this way every device
 * of the layout counts, as in the rest of the comparison); each placed memory BAR's guest address
 * set to what it `decodes` (both dwords of a 64-bit BAR); then `result.commands` in order, each
 * one's deferred work done before the next write, as the vCPU would. Only those writes are counted:
 * setting the devices up for the guest (`rangeset_new`, the dom0 sets destroyed) is the same under
 * every policy. A guest's vPCI has no ROM (Xen's `vpci_init_header`), so placed ROMs write nothing.
 */
export function placementRangesetOps(devices: readonly DeviceSpec[], result: PciSetupResult): RangesetOps {
  const machine = new Machine();
  // The layout's function at devfn (bus 0) → the machine's device standing for it.
  const hostOf = new Map<number, Sbdf>();
  devices.forEach((spec, i) => {
    const { dev, fn } = toSbdf(spec.sbdf);
    const host = makeSbdf(0, 1 + Math.floor(i / 32), i % 32, 0);
    hostOf.set((dev << 3) | fn, host);
    machine.addDevice({ ...spec, sbdf: formatSbdf(host) });
  });
  machine.boot();
  const guest = machine.createGuest();
  for (const host of hostOf.values()) {
    const assigned = machine.assignDevice(host, guest.id);
    if (!assigned.ok) {
      throw new InvalidArgumentError(
        'devices',
        `${devices.length} devices`,
        `devices one guest can take (assigning ${formatSbdf(host)}: ${assigned.code})`,
      );
    }
  }
  const before = { ...guest.rangesetOps };
  const vcpu = guest.vcpus[0]!;
  /** The guest's address of the layout's function at `devfn` on bus 0. */
  const guestSbdf = (devfn: number): Sbdf => {
    const host = hostOf.get(devfn);
    const slot = host === undefined ? undefined : machine.device(host).vpci?.guestSbdf;
    if (slot === undefined) {
      throw new InvalidArgumentError('result', `devfn ${devfn}`, 'a placement of these devices');
    }
    return slot;
  };
  for (const bar of result.bars) {
    if (bar.decodes === undefined || bar.kind === 'io' || bar.kind === 'rom') continue;
    const sbdf = guestSbdf(bar.devfn);
    machine.configWrite(vcpu, sbdf, bar.reg, 4, Number(bar.decodes & 0xffff_ffffn));
    if (bar.kind === 'mem64') machine.configWrite(vcpu, sbdf, bar.reg + 4, 4, Number(bar.decodes >> 32n));
  }
  for (const { devfn, value } of result.commands) {
    machine.configWrite(vcpu, guestSbdf(devfn), PCI_COMMAND, 2, value);
    if (vcpu.pending !== undefined) machine.finishPending(vcpu);
  }
  const ops = noRangesetOps();
  for (const key of Object.keys(ops) as (keyof RangesetOps)[])
    ops[key] = guest.rangesetOps[key] - before[key];
  return ops;
}
