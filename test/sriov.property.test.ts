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

import { devicePlans, PF_SBDF, sriovPlan, sriovStep } from '@vpci/fuzz';
import { checkInvariants } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { apply, build, settle, snapshot } from './support/sriov-world.js';

describe('SR-IOV properties', () => {
  // Arm: the VFs a First VF Offset or VF Stride carries past the host bridge's buses are refused
  // by their own bridge (none), the others taken (test/hardened-holes.test.ts 11, 12).
  for (const arch of ['x86', 'arm'] as const)
    it(`hardened${arch === 'arm' ? ', Arm' : ''}: no invariant is ever violated over PFs with VFs`, () => {
      fc.assert(
        fc.property(
          devicePlans,
          sriovPlan,
          fc.array(sriovStep, { maxLength: 40, size: 'max' }),
          fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
          (plain, plan, steps, finish) => {
            const world = build(plain, plan, 'hardened', [], arch);
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
        runs(arch === 'arm' ? 100 : 200),
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
