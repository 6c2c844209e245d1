/**
 * Properties of the vPCI engine over random machines: devices with BARs from 16 bytes to 64 GiB
 * (sub-page BARs packed into shared pages as firmware without page alignment leaves them), MSI-X
 * tables anywhere in a BAR, guests, and random sequences of config-space writes, device moves and
 * preempted deferred work.
 * - hardened: `checkInvariants` finds nothing after any step;
 * - both profiles: a sequence whose deferred work is preempted anywhere ends in the same p2m and
 *   device state as the same sequence run without preemption (invariant 7).
 */
import { checkInvariants, type DeviceSpec, Machine, type Profile, type Vcpu } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

interface BarPlan {
  slot: number;
  type: 'mem32' | 'mem64';
  sizeLog2: number;
}
interface DevicePlan {
  bars: BarPlan[];
  msix: { bar: number; entries: number; offsetFraction: number } | undefined;
  owner: number; // 0: dom0, 1 or 2: a guest
}

/** Sizes: mostly small (sub-page included), some large, 64 GiB rarely. */
const sizeLog2 = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 4, max: 14 }) },
  { weight: 3, arbitrary: fc.integer({ min: 15, max: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom(30, 36) },
);

const devicePlan: fc.Arbitrary<DevicePlan> = fc
  .record({
    sizes: fc.array(sizeLog2, { minLength: 1, maxLength: 3 }),
    msix: fc.option(
      fc.record({
        entries: fc.integer({ min: 1, max: 64 }),
        offsetFraction: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      {
        nil: undefined,
      },
    ),
    owner: fc.integer({ min: 0, max: 2 }),
  })
  .map(({ sizes, msix, owner }) => {
    // 64-bit BARs take two slots: slots 0, 2, 4.
    const bars = sizes.map((log2, i) => ({
      slot: 2 * i,
      type: log2 > 24 ? 'mem64' : ('mem32' as 'mem32' | 'mem64'),
      sizeLog2: log2,
    }));
    const fits =
      msix === undefined ? undefined : bars.find((bar) => 2 ** bar.sizeLog2 >= 16 * msix.entries + 8 * 2);
    return {
      bars,
      msix: fits === undefined || msix === undefined ? undefined : { bar: fits.slot, ...msix },
      owner,
    };
  });

/** Host addresses: BARs packed by natural alignment, largest first, so small ones share pages. */
function specs(plans: DevicePlan[]): DeviceSpec[] {
  let low = 0xc000_0000n;
  let high = 0x40_0000_0000n;
  const addrs = new Map<string, bigint>();
  const all = plans.flatMap((plan, d) => plan.bars.map((bar) => ({ d, bar })));
  all.sort((a, b) => b.bar.sizeLog2 - a.bar.sizeLog2);
  for (const { d, bar } of all) {
    const size = 1n << BigInt(bar.sizeLog2);
    if (bar.type === 'mem64') {
      high = (high + size - 1n) & ~(size - 1n);
      addrs.set(`${d}:${bar.slot}`, high);
      high += size;
    } else {
      low = (low + size - 1n) & ~(size - 1n);
      addrs.set(`${d}:${bar.slot}`, low);
      low += size;
    }
  }
  return plans.map((plan, d) => {
    const bars: (DeviceSpec['bars'] extends readonly (infer B)[] | undefined ? B : never)[] = [];
    for (const bar of plan.bars) {
      bars[bar.slot] = {
        type: bar.type,
        size: 1n << BigInt(bar.sizeLog2),
        addr: addrs.get(`${d}:${bar.slot}`)!,
      };
    }
    const msix = plan.msix;
    let msixSpec: DeviceSpec['msix'];
    if (msix !== undefined) {
      const size = 2 ** plan.bars.find((b) => b.slot === msix.bar)!.sizeLog2;
      const room = Math.min(size, 2 ** 20) - 16 * msix.entries - 8;
      const table = Math.floor((room * msix.offsetFraction) / 8) * 8;
      msixSpec = {
        entries: msix.entries,
        table: { bar: msix.bar, offset: table },
        pba: { bar: msix.bar, offset: table + 16 * msix.entries },
      };
    }
    return {
      sbdf: `0000:01:${d.toString(16).padStart(2, '0')}.0`,
      bars,
      ...(msixSpec ? { msix: msixSpec } : {}),
    };
  });
}

/** One step of the guest or toolstack. */
type Step =
  | { kind: 'command'; device: number; vcpu: number; memory: boolean }
  | {
      kind: 'bar';
      device: number;
      vcpu: number;
      bar: number;
      placement: 'own' | 'probe' | 'identity' | 'other';
    }
  | { kind: 'process'; device: number; vcpu: number; budget: number }
  | { kind: 'move'; device: number; to: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      memory: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('bar' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      bar: fc.nat(2),
      placement: fc.constantFrom('own' as const, 'probe' as const, 'identity' as const, 'other' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('process' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      budget: fc.oneof(fc.integer({ min: 1, max: 700 }), fc.constant(Number.POSITIVE_INFINITY)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('move' as const), device: fc.nat(5), to: fc.nat(2) }),
  },
);

interface World {
  machine: Machine;
  plans: DevicePlan[];
  sbdfs: string[];
}

function build(plans: DevicePlan[], profile: Profile): World {
  const machine = new Machine({ profile, hardwareVcpus: 2 });
  const all = specs(plans);
  for (const spec of all) machine.addDevice(spec);
  machine.boot();
  machine.createGuest({ id: 1, vcpus: 2 });
  machine.createGuest({ id: 2, vcpus: 2 });
  for (let d = 0; d < plans.length; d++)
    if (plans[d]!.owner !== 0) machine.assignDevice(all[d]!.sbdf, plans[d]!.owner);
  return { machine, plans, sbdfs: all.map((s) => String(s.sbdf)) };
}

/** The vCPU and address a device's owner uses for it (undefined when it has no owner with vCPUs). */
function access(world: World, device: number, vcpu: number): { v: Vcpu; address: string } | undefined {
  const pdev = world.machine.device(world.sbdfs[device % world.sbdfs.length]!);
  const domain = pdev.domain;
  if (domain === undefined || domain.vcpus.length === 0 || pdev.vpci === undefined) return undefined;
  const v = domain.vcpus[vcpu % domain.vcpus.length]!;
  const guestSbdf = pdev.vpci.guestSbdf;
  const address = guestSbdf === undefined ? pdev.name : `00:${guestSbdf.dev.toString(16).padStart(2, '0')}.0`;
  return { v, address };
}

/** Applies a step; `finish` runs each write's deferred work to the end with `budget` (for invariant 7). */
function apply(world: World, s: Step, finish: number | undefined): void {
  const { machine } = world;
  const index = s.device % world.sbdfs.length;
  if (s.kind === 'move') {
    const sbdf = world.sbdfs[index]!;
    for (const d of machine.domains()) for (const v of d.vcpus) if (v.pending) machine.finishPending(v);
    const owner = machine.device(sbdf).domain;
    if (owner?.kind === 'guest') machine.deassignDevice(sbdf);
    else if (owner?.kind === 'hardware' && s.to !== 0) machine.assignDevice(sbdf, s.to);
    return;
  }
  const target = access(world, s.device, s.vcpu);
  if (target === undefined) return;
  const { v, address } = target;
  if (s.kind === 'process' || v.pending !== undefined) {
    if (finish === undefined) machine.processPending(v, s.kind === 'process' ? s.budget : 1);
    return;
  }
  if (v.domain.crashed) return;
  if (s.kind === 'command') {
    machine.configWrite(v, address, 0x04, 2, s.memory ? 0x0006 : 0x0004);
  } else {
    const plan = world.plans[index]!;
    const bar = plan.bars[s.bar % plan.bars.length]!;
    const pdev = machine.device(world.sbdfs[index]!);
    const state = pdev.vpci!.bars[bar.slot]!;
    const size = 1n << BigInt(bar.sizeLog2);
    let addr: bigint;
    if (s.placement === 'probe') addr = (1n << 64n) - 1n;
    else if (s.placement === 'identity' || v.domain.isHardware) addr = state.addr;
    else {
      // A slot of its own in the guest's space: one per device and BAR, aligned to the size.
      const slot = BigInt(index * 3 + bar.slot / 2 + (s.placement === 'other' ? 16 : 0));
      addr = 0x80_0000_0000n + slot * (1n << 36n) + (state.addr & (size - 1n) & 0xfffn);
    }
    if (bar.type === 'mem32' && s.placement !== 'probe') addr &= 0xffff_ffffn;
    const reg = 0x10 + 4 * bar.slot;
    machine.configWrite(v, address, reg, 4, Number(addr & 0xffff_ffffn));
    if (bar.type === 'mem64')
      machine.configWrite(v, address, reg + 4, 4, Number((addr >> 32n) & 0xffff_ffffn));
  }
  if (finish !== undefined) while (machine.processPending(v, finish).status === 'restart');
}

function snapshot(world: World): unknown {
  return {
    domains: world.machine
      .domains()
      .map((d) => ({ id: d.id, crashed: d.crashed, extents: [...d.p2m.extents()] })),
    devices: world.machine.devices().map((p) => ({
      name: p.name,
      owner: p.domain?.id,
      command: p.hw.read(0x04, 2),
      bars: p.vpci?.bars.map((b) => ({ enabled: b.enabled, addr: b.addr, guestAddr: b.guestAddr })),
    })),
  };
}

const plans = fc.array(devicePlan, { minLength: 1, maxLength: 4 });

describe('vpci properties', () => {
  it('hardened: no invariant is ever violated', () => {
    fc.assert(
      fc.property(
        plans,
        fc.array(step, { maxLength: 60 }),
        fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
        (devicePlans, steps, finish) => {
          // Either the deferred work interleaves freely across vCPUs, or each write's work runs to the
          // end (preempted every `finish` frames), which reaches more completed states.
          const world = build(devicePlans, 'hardened');
          expect(checkInvariants(world.machine)).toEqual([]);
          for (const s of steps) {
            apply(world, s, finish);
            expect(checkInvariants(world.machine)).toEqual([]);
          }
        },
      ),
      { numRuns: 250 },
    );
  });

  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: preempting the deferred work anywhere changes nothing`, () => {
      fc.assert(
        fc.property(
          plans,
          fc.array(step, { maxLength: 30 }),
          fc.integer({ min: 1, max: 300 }),
          (devicePlans, steps, budget) => {
            const preempted = build(devicePlans, profile);
            const whole = build(devicePlans, profile);
            for (const s of steps) {
              apply(preempted, s, budget);
              apply(whole, s, Number.POSITIVE_INFINITY);
            }
            expect(snapshot(preempted)).toEqual(snapshot(whole));
          },
        ),
        { numRuns: 60 },
      );
    });
  }
});
