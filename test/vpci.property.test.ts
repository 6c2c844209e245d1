/**
 * Properties of the vPCI engine over random machines: devices with BARs from 16 bytes to 64 GiB
 * (sub-page BARs packed into shared pages as firmware without page alignment leaves them), ROMs,
 * MSI-X tables anywhere in a BAR, devices the firmware left decoding, guests, and random sequences
 * of config-space writes (the command register, BARs, ROM BARs, MSI-X control, and raw writes of any
 * value anywhere in the header and the MSI-X capability), device moves, preempted deferred work and
 * failing p2m writes.
 * - hardened: `checkInvariants` finds nothing after any step;
 * - both profiles: a sequence whose deferred work is preempted anywhere ends in the same p2m and
 *   device state as the same sequence run without preemption (invariant 7).
 *
 * Fault injection: a `fault` step makes the n-th p2m entry write of a domain from then on fail
 * (ENOMEM), once, if it happens during deferred work (a boot fault does the same while the hardware
 * domain is built). Preemption does not change which writes are made, or in what order: a
 * preempted map resumes with the call the unpreempted one makes next. So a fault counted in writes
 * lands on the same write in both runs of the second property. One failure per fault step, so the
 * hardened rollback after an injected failure never fails itself; surviving two failures in one
 * operation is not a goal (a rollback that fails leaves what it could not put back).
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
  /** MSI-X in BAR slot `bar`; the PBA right after the table, or at the end of the BAR (`pbaAtEnd`). */
  msix: { bar: number; entries: number; offsetFraction: number; pbaAtEnd: boolean } | undefined;
  /** log2 of the ROM's size, if it has one. */
  rom: number | undefined;
  /** The firmware left memory decoding on: the hardware domain maps it at boot (`apply_map`). */
  decoding: boolean;
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
        pbaAtEnd: fc.boolean(),
      }),
      {
        nil: undefined,
      },
    ),
    rom: fc.option(fc.integer({ min: 11, max: 16 }), { nil: undefined, freq: 2 }),
    decoding: fc.oneof(
      { weight: 3, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
    owner: fc.integer({ min: 0, max: 2 }),
  })
  .map(({ sizes, msix, rom, decoding, owner }) => {
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
      rom,
      decoding,
      owner,
    };
  });

const ROM_SLOT = 6;

/**
 * Host addresses: BARs and ROMs packed by natural alignment, largest first, so small ones share
 * pages. ROMs are 32-bit, in the low window.
 */
function specs(plans: DevicePlan[]): DeviceSpec[] {
  let low = 0xc000_0000n;
  let high = 0x40_0000_0000n;
  const addrs = new Map<string, bigint>();
  const all = plans.flatMap((plan, d) => [
    ...plan.bars.map((bar) => ({ d, slot: bar.slot, log2: bar.sizeLog2, high: bar.type === 'mem64' })),
    ...(plan.rom === undefined ? [] : [{ d, slot: ROM_SLOT, log2: plan.rom, high: false }]),
  ]);
  all.sort((a, b) => b.log2 - a.log2);
  for (const { d, slot, log2, high: isHigh } of all) {
    const size = 1n << BigInt(log2);
    if (isHigh) {
      high = (high + size - 1n) & ~(size - 1n);
      addrs.set(`${d}:${slot}`, high);
      high += size;
    } else {
      low = (low + size - 1n) & ~(size - 1n);
      addrs.set(`${d}:${slot}`, low);
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
        pba: {
          bar: msix.bar,
          offset: msix.pbaAtEnd ? Math.min(size, 2 ** 20) - 8 : table + 16 * msix.entries,
        },
      };
    }
    return {
      sbdf: `0000:01:${d.toString(16).padStart(2, '0')}.0`,
      bars,
      ...(plan.decoding ? { command: 0x0006 } : {}),
      ...(plan.rom === undefined
        ? {}
        : { rom: { size: 1n << BigInt(plan.rom), addr: addrs.get(`${d}:${ROM_SLOT}`)! } }),
      ...(msixSpec ? { msix: msixSpec } : {}),
    };
  });
}

/** Where the MSI-X capability is in the devices the specs build (hardware.ts puts it there). */
const MSIX_CAP = 0x40;
/** The raw writes cover the header and the MSI-X capability (ID, next, control, table, PBA). */
const RAW_END = MSIX_CAP + 12;

/** One step of the guest or toolstack. */
type Step =
  | { kind: 'command'; device: number; vcpu: number; memory: boolean }
  | {
      kind: 'bar';
      device: number;
      vcpu: number;
      bar: number;
      placement: 'own' | 'probe' | 'identity' | 'other' | 'zero';
    }
  | { kind: 'rom'; device: number; vcpu: number; enable: boolean; placement: 'own' | 'bar' | 'probe' }
  | { kind: 'msix'; device: number; vcpu: number; enable: boolean; mask: boolean }
  | { kind: 'raw'; device: number; vcpu: number; size: 1 | 2 | 4; reg: number; value: number }
  | { kind: 'process'; device: number; vcpu: number; budget: number }
  | { kind: 'move'; device: number; to: number }
  | { kind: 'fault'; domain: number; after: number };

/** A value for a raw write of `size` bytes: anything, with all-ones, zero and memory-on likelier. */
function rawValue(size: 1 | 2 | 4): fc.Arbitrary<number> {
  const max = size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
  return fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max }) },
    { weight: 1, arbitrary: fc.constantFrom(0, max, 0x0006 & max, 0x0002 & max) },
  );
}

const rawWrite = fc
  .record({
    device: fc.nat(5),
    vcpu: fc.nat(1),
    size: fc.constantFrom(1 as const, 2 as const, 4 as const),
    // Aligned to the size, as Xen's config-space entry points require.
    index: fc.nat(RAW_END - 1),
  })
  .chain(({ device, vcpu, size, index }) =>
    rawValue(size).map((value) => ({
      kind: 'raw' as const,
      device,
      vcpu,
      size,
      reg: Math.min(index - (index % size), RAW_END - size),
      value,
    })),
  );

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
      placement: fc.constantFrom(
        'own' as const,
        'probe' as const,
        'identity' as const,
        'other' as const,
        'zero' as const,
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('rom' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      enable: fc.boolean(),
      placement: fc.constantFrom('own' as const, 'bar' as const, 'probe' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('msix' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      enable: fc.boolean(),
      mask: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: rawWrite },
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
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      domain: fc.nat(2),
      // Mostly soon (small BARs take a write or two), sometimes deep into a large map.
      after: fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 1, max: 8 }) },
        { weight: 1, arbitrary: fc.integer({ min: 9, max: 600 }) },
      ),
    }),
  },
);

/**
 * Armed faults: per domain, the p2m write number that fails next. They fire only while `armed`
 * (deferred work, or boot), and each fires once.
 */
interface Faults {
  armed: boolean;
  at: Map<number, number>;
}

interface World {
  machine: Machine;
  plans: DevicePlan[];
  sbdfs: string[];
  faults: Faults;
}

/** The p2m hook of domain `id`: fails the armed write, once. */
function failAt(faults: Faults, id: number): (write: number) => boolean {
  return (write) => {
    if (!faults.armed || faults.at.get(id) !== write) return false;
    faults.at.delete(id);
    return true;
  };
}

/**
 * Builds the machine. `bootFault`: the hardware domain's n-th p2m write while booting fails. Fault
 * hooks are only installed when `faulty` (without them the p2m batches runs of 4K writes, the path
 * most runs should take).
 */
function build(plans: DevicePlan[], profile: Profile, faulty: boolean, bootFault?: number): World {
  const faults: Faults = { armed: false, at: new Map() };
  const p2m = (id: number) => (faulty ? { p2m: { failAt: failAt(faults, id) } } : {});
  const machine = new Machine({
    profile,
    hardwareVcpus: 2,
    ...(faulty ? { hardwareP2m: { failAt: failAt(faults, 0) } } : {}),
  });
  const all = specs(plans);
  for (const spec of all) machine.addDevice(spec);
  if (bootFault !== undefined) faults.at.set(0, bootFault);
  faults.armed = true;
  machine.boot();
  faults.armed = false;
  faults.at.clear();
  machine.createGuest({ id: 1, vcpus: 2, ...p2m(1) });
  machine.createGuest({ id: 2, vcpus: 2, ...p2m(2) });
  for (let d = 0; d < plans.length; d++)
    if (plans[d]!.owner !== 0) machine.assignDevice(all[d]!.sbdf, plans[d]!.owner);
  return { machine, plans, sbdfs: all.map((s) => String(s.sbdf)), faults };
}

/** Runs deferred work with the faults armed. */
function deferred<T>(world: World, work: () => T): T {
  world.faults.armed = true;
  try {
    return work();
  } finally {
    world.faults.armed = false;
  }
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
  if (s.kind === 'fault') {
    const p2m = machine.domain(s.domain).p2m;
    world.faults.at.set(s.domain, p2m.writes + s.after);
    return;
  }
  const index = s.device % world.sbdfs.length;
  if (s.kind === 'move') {
    const sbdf = world.sbdfs[index]!;
    deferred(world, () => {
      for (const d of machine.domains()) for (const v of d.vcpus) if (v.pending) machine.finishPending(v);
    });
    const owner = machine.device(sbdf).domain;
    if (owner?.kind === 'guest') machine.deassignDevice(sbdf);
    else if (owner?.kind === 'hardware' && s.to !== 0) machine.assignDevice(sbdf, s.to);
    return;
  }
  const target = access(world, s.device, s.vcpu);
  if (target === undefined) return;
  const { v, address } = target;
  if (s.kind === 'process' || v.pending !== undefined) {
    if (finish === undefined)
      deferred(world, () => machine.processPending(v, s.kind === 'process' ? s.budget : 1));
    return;
  }
  if (v.domain.crashed) return;
  const plan = world.plans[index]!;
  const pdev = machine.device(world.sbdfs[index]!);
  switch (s.kind) {
    case 'command':
      machine.configWrite(v, address, 0x04, 2, s.memory ? 0x0006 : 0x0004);
      break;
    case 'raw':
      machine.configWrite(v, address, s.reg, s.size, s.value);
      break;
    case 'msix':
      machine.configWrite(v, address, MSIX_CAP + 2, 2, (s.enable ? 0x8000 : 0) | (s.mask ? 0x4000 : 0));
      break;
    case 'rom': {
      // The ROM's own place, over one of the device's BARs (the overlap G7 is about), or the probe.
      const rom = pdev.vpci!.bars[ROM_SLOT]!;
      const size = plan.rom === undefined ? 0x800n : 1n << BigInt(plan.rom);
      let addr: bigint;
      if (s.placement === 'probe') addr = 0xffff_f800n;
      else if (s.placement === 'bar') addr = pdev.vpci!.bars[plan.bars[0]!.slot]!.addr & 0xffff_ffffn;
      else addr = rom.type === 'rom' ? rom.addr : 0n;
      addr &= ~(size - 1n);
      machine.configWrite(v, address, 0x30, 4, (Number(addr) | (s.enable ? 1 : 0)) >>> 0);
      break;
    }
    case 'bar': {
      const bar = plan.bars[s.bar % plan.bars.length]!;
      const state = pdev.vpci!.bars[bar.slot]!;
      const size = 1n << BigInt(bar.sizeLog2);
      const offset = state.addr & (size - 1n) & 0xfffn;
      let addr: bigint;
      if (s.placement === 'probe') addr = (1n << 64n) - 1n;
      else if (s.placement === 'identity' || v.domain.isHardware) addr = state.addr;
      else if (s.placement === 'zero')
        addr = offset; // every device's BAR there: they overlap
      else {
        // A slot of its own in the guest's space: one per device and BAR, aligned to the size.
        const slot = BigInt(index * 3 + bar.slot / 2 + (s.placement === 'other' ? 16 : 0));
        addr =
          bar.type === 'mem32'
            ? 0x8000_0000n + slot * (1n << 24n) + offset
            : 0x80_0000_0000n + slot * (1n << 36n) + offset;
      }
      if (bar.type === 'mem32' && s.placement !== 'probe') addr &= 0xffff_ffffn;
      const reg = 0x10 + 4 * bar.slot;
      machine.configWrite(v, address, reg, 4, Number(addr & 0xffff_ffffn));
      if (bar.type === 'mem64')
        machine.configWrite(v, address, reg + 4, 4, Number((addr >> 32n) & 0xffff_ffffn));
      break;
    }
  }
  if (finish !== undefined)
    deferred(world, () => {
      while (machine.processPending(v, finish).status === 'restart');
    });
}

function snapshot(world: World): unknown {
  return {
    domains: world.machine
      .domains()
      .map((d) => ({ id: d.id, crashed: d.crashed, writes: d.p2m.writes, extents: [...d.p2m.extents()] })),
    devices: world.machine.devices().map((p) => ({
      name: p.name,
      owner: p.domain?.id,
      command: p.hw.read(0x04, 2),
      rom: p.hw.read(0x30, 4),
      barsMapped: p.vpci?.barsMapped,
      bars: p.vpci?.bars.map((b) => ({
        enabled: b.enabled,
        addr: b.addr,
        guestAddr: b.guestAddr,
        mem: b.mem?.toString(),
      })),
    })),
  };
}

const plans = fc.array(devicePlan, { minLength: 1, maxLength: 4 });
const bootFault = fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined, freq: 3 });
const faulty = (steps: Step[], boot: number | undefined): boolean =>
  boot !== undefined || steps.some((s) => s.kind === 'fault');

describe('vpci properties', () => {
  it('hardened: no invariant is ever violated', () => {
    fc.assert(
      fc.property(
        plans,
        fc.array(step, { maxLength: 60, size: 'max' }),
        fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
        bootFault,
        (devicePlans, steps, finish, boot) => {
          // Either the deferred work interleaves freely across vCPUs, or each write's work runs to the
          // end (preempted every `finish` frames), which reaches more completed states.
          const world = build(devicePlans, 'hardened', faulty(steps, boot), boot);
          expect(checkInvariants(world.machine)).toEqual([]);
          for (const s of steps) {
            apply(world, s, finish);
            expect(checkInvariants(world.machine)).toEqual([]);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: preempting the deferred work anywhere changes nothing`, () => {
      fc.assert(
        fc.property(
          plans,
          fc.array(step, { maxLength: 30, size: 'max' }),
          fc.integer({ min: 1, max: 300 }),
          bootFault,
          (devicePlans, steps, budget, boot) => {
            const preempted = build(devicePlans, profile, faulty(steps, boot), boot);
            const whole = build(devicePlans, profile, faulty(steps, boot), boot);
            for (const s of steps) {
              apply(preempted, s, budget);
              apply(whole, s, Number.POSITIVE_INFINITY);
            }
            expect(snapshot(preempted)).toEqual(snapshot(whole));
          },
        ),
        { numRuns: 120 },
      );
    });
  }
});
