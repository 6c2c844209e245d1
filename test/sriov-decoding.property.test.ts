/**
 * The VFs' decoding flags kept per VF BAR array (packages/vpci/src/sriov-decoding.ts, `VfDecoding`:
 * under `mapVfBarRanges`, a VF's `Bar.enabled` and `barsMapped` live in its PF's array while its vPCI
 * state is attached, a whole-range operation finds the VFs to change and flips them there, and the
 * enabled-BAR index holds the array's VFs as one array, expanded where a search meets it) against the
 * naive per-VF model it stands for: the same machine with every VF keeping its flags in its own objects
 * (`packVfDecoding` off; the operations then walk the VFs one by one, as before the arrays).
 *
 * After every step of random PFs (`@vpci/fuzz`'s `sriovPlan`: 1–12 VFs, First VF Offsets and VF
 * Strides that carry onto the next bus, 32/64-bit VF BARs, MSI-X or not, placed apart or over the
 * plain devices' BARs) and random steps (VF Enable and VF MSE, NumVFs, System Page Size, VF BAR
 * writes, VFs to guests and back, guest placement, deferred work with any budget, the PF hot unplugged,
 * the plain devices' decoding from either vCPU): the same p2m, device state (each VF's BAR flags and
 * decoding, read through the array on one side), events and Xen cost counts; every BAR's change count
 * only grows and grows when its enabled flag changes (what the checks' caches are keyed on); and the
 * index's answers are those of the walk over each device's flags (test/support/enabled-bars-walk.ts).
 */

import { devicePlans, deviceSpecs, sriovPlan } from '@vpci/fuzz';
import type { Bar, Machine } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkEnabledBars } from './support/enabled-bars-walk.js';
import { runs } from './support/fast-check-setup.js';
import {
  build,
  costs,
  finishBudget,
  json,
  snapshot,
  stepOrToggle,
  stepsWithToggles,
} from './support/sriov-world.js';

/** Whether a VF's vPCI state keeps its flags in its PF's array (an internal the API does not list). */
function packed(machine: Machine): number {
  let n = 0;
  for (const device of machine.devices())
    if ((device.vpci as { packedIn?: unknown } | undefined)?.packedIn !== undefined) n++;
  return n;
}

/**
 * Each BAR's change count only grows, and grows when its enabled flag changes (what the checks'
 * caches are keyed on), from what `seen` last noted of the same BAR object; then notes it.
 */
function checkChangeCounts(machine: Machine, seen: WeakMap<Bar, [number, boolean]>, where: string): void {
  for (const device of machine.devices()) {
    for (const bar of device.vpci?.bars ?? []) {
      const was = seen.get(bar);
      if (was !== undefined) {
        expect(bar.changes, `${where}: ${device.name} BAR${bar.index}'s change count`).toBeGreaterThanOrEqual(
          was[0],
        );
        if (bar.enabled !== was[1])
          expect(bar.changes, `${where}: ${device.name} BAR${bar.index} flipped`).toBeGreaterThan(was[0]);
      }
      seen.set(bar, [bar.changes, bar.enabled]);
    }
  }
}

describe('VF decoding kept per VF BAR array, against every VF keeping its own', () => {
  for (const profile of ['hardened', 'xen'] as const) {
    it(`${profile}: the same machine after every step as the per-VF model, the index as the walk`, () => {
      let made = 0;
      let withFlagsInArrays = 0;
      fc.assert(
        fc.property(devicePlans, sriovPlan, stepsWithToggles, finishBudget, (plain, plan, steps, finish) => {
          const sbdfs = deviceSpecs(plain).map((spec) => String(spec.sbdf));
          const arrays = build(plain, plan, profile);
          const naive = build(plain, plan, profile);
          Object.defineProperty(naive.machine, 'packVfDecoding', { value: false });
          made++;
          let seen = false;
          const counts = new WeakMap<Bar, [number, boolean]>();
          checkChangeCounts(arrays.machine, counts, 'at the start');
          for (const [at, s] of steps.entries()) {
            stepOrToggle(arrays, sbdfs, s, finish);
            stepOrToggle(naive, sbdfs, s, finish);
            const where = `after step ${at}: ${json(s)}`;
            expect(packed(naive.machine), where).toBe(0);
            if (packed(arrays.machine) > 0) seen = true;
            checkEnabledBars(arrays.machine);
            expect(json(snapshot(arrays)), where).toBe(json(snapshot(naive)));
            expect(json(arrays.machine.events), where).toBe(json(naive.machine.events));
            expect(costs(arrays.machine), where).toBe(costs(naive.machine));
            checkChangeCounts(arrays.machine, counts, where);
          }
          if (seen) withFlagsInArrays++;
        }),
        runs(60),
      );
      // Only `mapVfBarRanges` keeps VFs in arrays; under it most runs bring VFs up (VF Enable).
      if (profile === 'xen') expect(withFlagsInArrays).toBe(0);
      else expect(withFlagsInArrays).toBeGreaterThan(made / 4);
    });
  }
});
