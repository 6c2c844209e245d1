/**
 * An SR-IOV physical function (`@vpci/fuzz`'s sriov.ts) beside generated plain devices on a machine,
 * and the steps that drive it as test/sriov.property.test.ts and test/sriov-index.property.test.ts
 * apply them: VF Enable and VF MSE, NumVFs, System Page Size, VF BAR writes, VFs to guests and back,
 * guests placing and decoding their VF's BARs, deferred work with any budget, the PF unplugged; and
 * the hardware domain's plain devices toggling their decoding beside them (`PlainToggle`,
 * `stepOrToggle`), which test/sriov-index.property.test.ts and test/sriov-decoding.property.test.ts
 * interleave with the SR-IOV steps.
 */

import {
  deviceSpecs,
  PF_SBDF,
  SRIOV_POS,
  type SriovPlan,
  type SriovStep,
  sriovSpec,
  sriovStep,
  vfBarAddress,
} from '@vpci/fuzz';
import { type DeviceSpec, Machine, type PciDevice, type Profile, type Vcpu } from '@vpci/vpci';
import fc from 'fast-check';

/** The machine and the PF's plan the steps read. */
export interface World {
  machine: Machine;
  plan: SriovPlan;
}

/**
 * Arm: one host bridge for buses 0-2 with a window over every address the plans use, so that the PF
 * (bus 2) is under it and a VF a First VF Offset or VF Stride carries onto bus 3 or beyond is under
 * none (Arm's `pci_check_bar` refuses that VF's BARs).
 */
const ARM_HOST = {
  arch: 'arm',
  hostBridges: [{ busStart: 0, busEnd: 2, windows: [{ addr: 0n, size: 1n << 48n }] }],
} as const;

/**
 * The plain devices (some given to guests 1 and 2) and the PF on a booted machine of `profile` (on
 * x86, or on Arm under `ARM_HOST`), and `hidden` devices (dom_xen's, plugged before boot: the hardware
 * domain maps those that decode).
 */
export function build(
  plain: Parameters<typeof deviceSpecs>[0],
  plan: SriovPlan,
  profile: Profile,
  hidden: readonly DeviceSpec[] = [],
  arch: 'x86' | 'arm' = 'x86',
): World {
  const machine = new Machine({ profile, hardwareVcpus: 2, ...(arch === 'arm' ? ARM_HOST : {}) });
  const specs = deviceSpecs(plain);
  for (const spec of specs) machine.addDevice(spec);
  machine.addDevice(sriovSpec(plan));
  for (const spec of hidden) machine.addDevice(spec, { hidden: true });
  machine.boot();
  machine.createGuest({ id: 1, vcpus: 2 });
  machine.createGuest({ id: 2, vcpus: 2 });
  for (let d = 0; d < plain.length; d++)
    if (plain[d]!.owner !== 0) machine.assignDevice(String(specs[d]!.sbdf), plain[d]!.owner);
  return { machine, plan };
}

/** Every vCPU's pending work, to the end (the toolstack waits for the machine before it moves devices). */
export function settle(machine: Machine): void {
  for (const d of machine.domains()) for (const v of d.vcpus) if (v.pending) machine.finishPending(v);
}

/** VF `n` modulo the PF's VFs on the machine; undefined without PF or VFs. */
export function vfOf(machine: Machine, n: number): PciDevice | undefined {
  const pf = machine.findDevice(PF_SBDF);
  if (pf === undefined || pf.virtfns.length === 0) return undefined;
  return pf.virtfns[n % pf.virtfns.length];
}

/** Writes from `v`, or (its work pending) runs one preemptible step of that work instead. */
export function write(
  machine: Machine,
  v: Vcpu,
  sbdf: string,
  reg: number,
  size: number,
  value: number,
): void {
  if (v.pending !== undefined) machine.processPending(v, 1);
  else machine.configWrite(v, sbdf, reg, size, value);
}

/** Applies a step; `finish` runs each write's deferred work to the end with that budget. */
export function apply(world: World, s: SriovStep, finish: number | undefined): void {
  const { machine, plan } = world;
  const pf = machine.findDevice(PF_SBDF);
  const d0 = machine.hardwareDomain.vcpus;
  let v: Vcpu | undefined;
  switch (s.kind) {
    case 'control':
      if (pf === undefined) return;
      v = d0[s.vcpu]!;
      write(machine, v, PF_SBDF, SRIOV_POS + 8, 2, (s.vfe ? 1 : 0) | (s.mse ? 8 : 0));
      break;
    case 'numVfs':
      if (pf === undefined) return;
      v = d0[0]!;
      write(machine, v, PF_SBDF, SRIOV_POS + 0x10, 2, Math.round(s.fraction * plan.totalVfs));
      break;
    case 'pageSize':
      if (pf === undefined) return;
      v = d0[0]!;
      write(machine, v, PF_SBDF, SRIOV_POS + 0x20, 4, 1 << s.bit);
      break;
    case 'vfBar': {
      if (pf === undefined) return;
      const bar = plan.bars[s.bar % plan.bars.length]!;
      const addr = vfBarAddress(plan, bar, bar.type === 'mem64' ? 'own' : s.placement, s.shift);
      v = d0[0]!;
      const reg = SRIOV_POS + 0x24 + 4 * bar.slot;
      write(machine, v, PF_SBDF, reg, 4, Number(addr & 0xffff_ffffn));
      if (bar.type === 'mem64') write(machine, v, PF_SBDF, reg + 4, 4, Number(addr >> 32n));
      break;
    }
    case 'assign': {
      const vf = vfOf(machine, s.vf);
      if (vf === undefined) return;
      settle(machine);
      if (vf.domain?.kind === 'hardware' || vf.domain?.kind === 'dom_io') machine.assignDevice(vf.sbdf, s.to);
      return;
    }
    case 'deassign': {
      const vf = vfOf(machine, s.vf);
      if (vf === undefined) return;
      settle(machine);
      if (vf.domain?.kind === 'guest' || vf.domain?.kind === 'dom_io') machine.deassignDevice(vf.sbdf);
      return;
    }
    case 'guest': {
      const vf = vfOf(machine, s.vf);
      const guestSbdf = vf?.vpci?.guestSbdf;
      if (vf?.domain?.kind !== 'guest' || guestSbdf === undefined || vf.domain.crashed) return;
      v = vf.domain.vcpus[0]!;
      const address = `00:${guestSbdf.dev.toString(16).padStart(2, '0')}.0`;
      const bar = vf.vpci!.bars.find((b) => b.mappable);
      if (bar !== undefined && v.pending === undefined) {
        // A slot of its own in the guest's space (16 MiB apart: any VF BAR here fits), or slot 0
        // for every VF: their BARs then overlap in the guest.
        const at = 0xe000_0000n + BigInt(s.slot) * 0x100_0000n;
        machine.configWrite(v, address, 0x10 + 4 * bar.index, 4, Number(at));
        if (bar.type === 'mem64lo') machine.configWrite(v, address, 0x14 + 4 * bar.index, 4, 0);
      }
      write(machine, v, address, 0x04, 2, s.memory ? 0x0006 : 0x0004);
      break;
    }
    case 'run': {
      const domain = machine.domain(s.domain);
      v = domain.vcpus[s.vcpu]!;
      if (finish === undefined) machine.processPending(v, s.budget);
      return;
    }
    case 'unplug':
      if (pf === undefined) return;
      settle(machine);
      machine.removeDevice(PF_SBDF);
      return;
  }
  if (finish !== undefined && v !== undefined) while (machine.processPending(v, finish).status === 'restart');
}

/** What preemption must not change: every domain's p2m and every device's owner and BAR state. */
export function snapshot(world: World): unknown {
  return {
    domains: world.machine
      .domains()
      .map((d) => ({ id: d.id, crashed: d.crashed, extents: [...d.p2m.extents()] })),
    devices: world.machine.devices().map((p) => ({
      name: p.name,
      owner: p.domain?.id,
      barsMapped: p.vpci?.barsMapped,
      bars: p.vpci?.bars.map((b) => ({ enabled: b.enabled, addr: b.addr, guestAddr: b.guestAddr })),
    })),
  };
}

/** JSON with bigints as hex, for comparing two machines' state. */
export const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/** A plain device's memory decoding turned on or off by the hardware domain's vCPU `vcpu`. */
export interface PlainToggle {
  readonly kind: 'plain';
  readonly device: number;
  readonly vcpu: 0 | 1;
  readonly memory: boolean;
}

export const plainToggle: fc.Arbitrary<PlainToggle> = fc.record({
  kind: fc.constant('plain' as const),
  device: fc.nat(7),
  vcpu: fc.constantFrom(0 as const, 1 as const),
  memory: fc.boolean(),
});

/**
 * Applies an SR-IOV step (`apply`) or a plain toggle: the write (or, with the vCPU's work pending, one
 * preemptible step of it) to a device the hardware domain owns, its work run with `finish` as
 * `apply` runs it.
 */
export function stepOrToggle(
  world: World,
  plain: readonly string[],
  s: SriovStep | PlainToggle,
  finish: number | undefined,
): void {
  if (s.kind !== 'plain') {
    apply(world, s, finish);
    return;
  }
  const { machine } = world;
  const sbdf = plain[s.device % Math.max(1, plain.length)];
  const device = sbdf === undefined ? undefined : machine.findDevice(sbdf);
  if (device?.domain !== machine.hardwareDomain) return;
  const v = machine.hardwareDomain.vcpus[s.vcpu]!;
  write(machine, v, sbdf!, 0x04, 2, s.memory ? 0x0002 : 0x0000);
  if (finish !== undefined) while (machine.processPending(v, finish).status === 'restart');
}

/** Each device's Xen cost counts (p2m calls and leaves, continuations, rangeset calls), by name. */
export function costs(machine: Machine): string {
  return json(machine.devices().map((device) => [device.name, device.xenCost]));
}

/** Up to 40 steps, SR-IOV steps three times as often as plain toggles. */
export const stepsWithToggles: fc.Arbitrary<(SriovStep | PlainToggle)[]> = fc.array(
  fc.oneof({ arbitrary: sriovStep, weight: 3 }, { arbitrary: plainToggle, weight: 1 }),
  { maxLength: 40, size: 'max' },
);

/** The budget each step's deferred work runs with, or none (the work stays pending). */
export const finishBudget: fc.Arbitrary<number | undefined> = fc.option(fc.integer({ min: 1, max: 300 }), {
  nil: undefined,
});
