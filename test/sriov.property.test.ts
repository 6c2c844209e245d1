/**
 * Properties of the engine over SR-IOV physical functions (`@vpci/fuzz`'s sriov.ts) beside the
 * generated plain devices (`devicePlans`, some a guest's, some decoding from boot): the hardware
 * domain turns VF Enable and VF MSE on and off, writes NumVFs, System Page Size and the VF BARs
 * (moving them over the other devices' BARs), VFs go to guests and back, guests place and decode
 * their VF's BARs, deferred work runs with any budget, and the PF is unplugged.
 * - hardened: `checkInvariants` finds nothing after any step — VFs are devices like any other
 *   (their MSI-X holes, their pages shared with another domain's BAR, their mappings explained);
 * - both profiles: preempting the deferred work anywhere ends in the same p2m and device state as
 *   running each write's work whole (invariant 7), v1's per-VF loop under `xen` included.
 */

import {
  devicePlans,
  deviceSpecs,
  PF_SBDF,
  SRIOV_POS,
  type SriovPlan,
  type SriovStep,
  sriovPlan,
  sriovSpec,
  sriovStep,
  vfBarAddress,
} from '@vpci/fuzz';
import { checkInvariants, Machine, type PciDevice, type Profile, type Vcpu } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';

interface World {
  machine: Machine;
  plan: SriovPlan;
}

function build(plain: Parameters<typeof deviceSpecs>[0], plan: SriovPlan, profile: Profile): World {
  const machine = new Machine({ profile, hardwareVcpus: 2 });
  const specs = deviceSpecs(plain);
  for (const spec of specs) machine.addDevice(spec);
  machine.addDevice(sriovSpec(plan));
  machine.boot();
  machine.createGuest({ id: 1, vcpus: 2 });
  machine.createGuest({ id: 2, vcpus: 2 });
  for (let d = 0; d < plain.length; d++)
    if (plain[d]!.owner !== 0) machine.assignDevice(String(specs[d]!.sbdf), plain[d]!.owner);
  return { machine, plan };
}

/** Every vCPU's pending work, to the end (the toolstack waits for the machine before it moves devices). */
function settle(machine: Machine): void {
  for (const d of machine.domains()) for (const v of d.vcpus) if (v.pending) machine.finishPending(v);
}

function vfOf(machine: Machine, n: number): PciDevice | undefined {
  const pf = machine.findDevice(PF_SBDF);
  if (pf === undefined || pf.virtfns.length === 0) return undefined;
  return pf.virtfns[n % pf.virtfns.length];
}

/** Writes from `v`, or (its work pending) runs one preemptible step of that work instead. */
function write(machine: Machine, v: Vcpu, sbdf: string, reg: number, size: number, value: number): void {
  if (v.pending !== undefined) machine.processPending(v, 1);
  else machine.configWrite(v, sbdf, reg, size, value);
}

/** Applies a step; `finish` runs each write's deferred work to the end with that budget. */
function apply(world: World, s: SriovStep, finish: number | undefined): void {
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

function snapshot(world: World): unknown {
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

describe('SR-IOV properties', () => {
  it('hardened: no invariant is ever violated over PFs with VFs', () => {
    fc.assert(
      fc.property(
        devicePlans,
        sriovPlan,
        fc.array(sriovStep, { maxLength: 40, size: 'max' }),
        fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
        (plain, plan, steps, finish) => {
          const world = build(plain, plan, 'hardened');
          expect(checkInvariants(world.machine)).toEqual([]);
          for (const s of steps) {
            apply(world, s, finish);
            expect(checkInvariants(world.machine)).toEqual([]);
          }
          // And the map happens: once the work is done, VF MSE on means every VF the PF's owner
          // has decodes (v1's loop leaves all but one unmapped, or refused under serialOperations).
          settle(world.machine);
          expect(checkInvariants(world.machine)).toEqual([]);
          const pf = world.machine.findDevice(PF_SBDF);
          if (pf?.hw.sriov?.vfMemorySpace === true)
            for (const vf of pf.virtfns)
              if (vf.domain === pf.domain && vf.vpci !== undefined) expect(vf.vpci.barsMapped).toBe(true);
        },
      ),
      runs(200),
    );
  });

  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: preempting the deferred work anywhere changes nothing`, () => {
      fc.assert(
        fc.property(
          devicePlans,
          sriovPlan,
          fc.array(sriovStep, { maxLength: 30, size: 'max' }),
          fc.integer({ min: 1, max: 300 }),
          (plain, plan, steps, budget) => {
            const preempted = build(plain, plan, profile);
            const whole = build(plain, plan, profile);
            for (const s of steps) {
              apply(preempted, s, budget);
              apply(whole, s, Number.POSITIVE_INFINITY);
            }
            expect(snapshot(preempted)).toEqual(snapshot(whole));
          },
        ),
        runs(60),
      );
    });
  }
});
