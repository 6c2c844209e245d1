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
import {
  bootFault,
  bus0Sbdf,
  type DevicePlan,
  devicePlans,
  deviceSpecs,
  type EngineStep,
  engineStep,
  MSIX_CAP,
  ROM_SLOT,
} from '@vpci/fuzz';
import {
  type Bar,
  checkInvariants,
  describeViolation,
  Machine,
  type MachineOptions,
  type PciDevice,
  type Profile,
  QEMU_RULES,
  qemuBarAddress,
  type Vcpu,
} from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';

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
 * Builds the machine. `bootWrite`: the hardware domain's n-th p2m write while booting fails. Fault
 * hooks are only installed when `faulty` (without them the p2m batches runs of 4K writes, the path
 * most runs should take).
 */
function build(
  plans: DevicePlan[],
  profile: Profile,
  faulty: boolean,
  bootWrite?: number,
  host: MachineOptions = {},
): World {
  const faults: Faults = { armed: false, at: new Map() };
  const p2m = (id: number) => (faulty ? { p2m: { failAt: failAt(faults, id) } } : {});
  const machine = new Machine({
    ...host,
    profile,
    hardwareVcpus: 2,
    ...(faulty ? { hardwareP2m: { failAt: failAt(faults, 0) } } : {}),
  });
  const all = deviceSpecs(plans);
  for (const spec of all) machine.addDevice(spec);
  if (bootWrite !== undefined) faults.at.set(0, bootWrite);
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
  const address = guestSbdf === undefined ? pdev.name : bus0Sbdf(guestSbdf.dev << 3);
  return { v, address };
}

/** Applies a step; `finish` runs each write's deferred work to the end with `budget` (for invariant 7). */
function apply(world: World, s: EngineStep, finish: number | undefined): void {
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
    // A device leaving a guest goes to dom_io (Xen's default quarantine); from there it is assigned
    // again, or given back to the hardware domain (pci-assignable-remove).
    const owner = machine.device(sbdf).domain;
    const assignable = owner?.kind === 'hardware' || owner?.kind === 'dom_io';
    if (owner?.kind === 'guest' || (owner?.kind === 'dom_io' && s.to === 0)) machine.deassignDevice(sbdf);
    else if (assignable && s.to !== 0) machine.assignDevice(sbdf, s.to);
    return;
  }
  const target = access(world, s.device, s.vcpu);
  if (target === undefined) return;
  const { v, address } = target;
  if (s.kind === 'run' || v.pending !== undefined) {
    if (finish === undefined)
      deferred(world, () => machine.processPending(v, s.kind === 'run' ? s.budget : 1));
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

/** Where the engine has a BAR decoding under the qemu rules (undefined: nowhere). */
function decodedAt(bar: Bar): bigint | undefined {
  if (bar.type === 'io') return bar.portsDecoded ? bar.guestAddr : undefined;
  return bar.enabled ? bar.guestAddr : undefined;
}

/**
 * Where QEMU's `pci_bar_address` says the BAR decodes, from its owner's registers: the device's for
 * the hardware domain (the ROM's at 0x30, both halves of a 64-bit BAR), a guest's view otherwise.
 */
function registerAddress(device: PciDevice, bar: Bar): bigint | undefined {
  const vpci = device.vpci!;
  const type = bar.type as 'io' | 'mem32' | 'mem64lo' | 'rom';
  if (device.domain?.kind === 'guest') {
    const value = bar.guestAddr | (bar.type === 'rom' && vpci.romEnabled ? 1n : 0n);
    return qemuBarAddress({ type, size: bar.size }, value, vpci.guestCmd);
  }
  const reg = bar.type === 'rom' ? 0x30 : 0x10 + 4 * bar.index;
  let value = BigInt(device.hw.read(reg, 4) >>> 0);
  if (bar.type === 'mem64lo') value |= BigInt(device.hw.read(reg + 4, 4) >>> 0) << 32n;
  return qemuBarAddress({ type, size: bar.size }, value, device.hw.read(0x04, 2));
}

const faulty = (steps: EngineStep[], boot: number | undefined): boolean =>
  boot !== undefined || steps.some((s) => s.kind === 'fault');

describe('vpci properties', () => {
  it('hardened: no invariant is ever violated', () => {
    fc.assert(
      fc.property(
        devicePlans,
        fc.array(engineStep, { maxLength: 60, size: 'max' }),
        fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
        bootFault,
        (plans, steps, finish, boot) => {
          // Either the deferred work interleaves freely across vCPUs, or each write's work runs to the
          // end (preempted every `finish` frames), which reaches more completed states.
          const world = build(plans, 'hardened', faulty(steps, boot), boot);
          expect(checkInvariants(world.machine)).toEqual([]);
          for (const s of steps) {
            apply(world, s, finish);
            expect(checkInvariants(world.machine)).toEqual([]);
          }
        },
      ),
      runs(500),
    );
  });

  it('hardened on Arm: no invariant is ever violated (no MSI-X, whole-range block maps, never preempted)', () => {
    // One host bridge whose window holds every address, so pci_check_bar never refuses a BAR here.
    const arm: MachineOptions = { arch: 'arm', hostBridges: [{ windows: [{ addr: 0n, size: 1n << 64n }] }] };
    fc.assert(
      fc.property(
        devicePlans,
        fc.array(engineStep, { maxLength: 40, size: 'max' }),
        fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
        bootFault,
        (plans, steps, finish, boot) => {
          const world = build(plans, 'hardened', faulty(steps, boot), boot, arm);
          expect(checkInvariants(world.machine)).toEqual([]);
          for (const s of steps) {
            apply(world, s, finish);
            expect(checkInvariants(world.machine)).toEqual([]);
          }
        },
      ),
      runs(150),
    );
  });

  it("qemu: every BAR decodes where its register says at once, and only the rule set's declared hazards show", () => {
    const hazards = new Set<string>(QEMU_RULES.hazards.map((h) => h.violation));
    // The hardened policy keeps the shared machinery (a device leaving its owner) from Xen's gaps,
    // so what shows is the rule set's own.
    fc.assert(
      fc.property(
        devicePlans,
        fc.array(engineStep, { maxLength: 40, size: 'max' }),
        bootFault,
        (plans, steps, boot) => {
          const world = build(plans, 'hardened', faulty(steps, boot), boot, { rules: 'qemu' });
          const check = (): void => {
            for (const v of checkInvariants(world.machine))
              expect(hazards, describeViolation(v)).toContain(v.kind);
            for (const device of world.machine.devices()) {
              if (device.vpci === undefined) continue;
              for (const bar of device.vpci.bars) {
                if (bar.size === 0n || !(bar.mappable || bar.type === 'io') || bar.type === 'mem64hi')
                  continue;
                const where = `${device.name} BAR${bar.index}`;
                expect(decodedAt(bar), where).toBe(registerAddress(device, bar));
              }
            }
          };
          check();
          for (const s of steps) {
            apply(world, s, undefined);
            check();
          }
        },
      ),
      runs(150),
    );
  });

  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: preempting the deferred work anywhere changes nothing`, () => {
      fc.assert(
        fc.property(
          devicePlans,
          fc.array(engineStep, { maxLength: 30, size: 'max' }),
          fc.integer({ min: 1, max: 300 }),
          bootFault,
          (plans, steps, budget, boot) => {
            const preempted = build(plans, profile, faulty(steps, boot), boot);
            const whole = build(plans, profile, faulty(steps, boot), boot);
            for (const s of steps) {
              apply(preempted, s, budget);
              apply(whole, s, Number.POSITIVE_INFINITY);
            }
            expect(snapshot(preempted)).toEqual(snapshot(whole));
          },
        ),
        runs(120),
      );
    });
  }
});
