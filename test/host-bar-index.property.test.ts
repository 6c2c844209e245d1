/**
 * The index of every device's BARs by host frame (packages/vpci/src/host-bar-index.ts), which the
 * hardened sharing refusals search instead of walking every device (`Machine.sharedMappedPage` at an
 * assignment or hot plug, `modifyBars`' `dropSharedPages` at a map), against the walk:
 * - after every step, for every host frame range of every device's BARs (and across the boundary of
 *   each inverted one), the devices the index says meet it are those whose BARs meet it, each
 *   device's BARs read afresh (`hostBars` and its vPCI BARs, a BAR of size 0 at its inverted frames,
 *   tested as the walk tests: `first <= last' && first' <= last`);
 * - the same steps on a machine without the index (both refusals walk every device, as before it)
 *   give the same p2m, device state, events (`assign-refused`, `subpage-shared` among them) and Xen
 *   cost counts.
 * Random worlds (hardened): maybe a hidden device (dom_xen's) mapped from boot on a plain device's
 * page. Random steps: an SR-IOV PF's VF Enable and VF MSE, NumVFs, System Page Size and VF BAR
 * writes, its VFs to guests and back, guests decoding them, the PF unplugged (test/support/sriov-world.ts);
 * the hardware domain's devices toggling decoding; devices hot-plugged onto pages other devices' BARs
 * are on (some with a resizable BAR) and unplugged; the hardware domain moving a BAR onto another
 * device's page, or a ROM (its vPCI BAR moved before its register); ReBAR resizes; plain devices to guests and back, the guests toggling their decoding.
 */

import { devicePlans, deviceSpecs, sriovPlan, sriovStep } from '@vpci/fuzz';
import { type DeviceSpec, Machine, type PciDevice, type Vcpu } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostBars } from '../packages/vpci/src/ownership.js';
import { runs } from './support/fast-check-setup.js';
import {
  build,
  costs,
  finishBudget,
  json,
  type PlainToggle,
  plainToggle,
  settle,
  snapshot,
  stepOrToggle,
  type World,
} from './support/sriov-world.js';

type Frames = readonly [number, number];

/** A step of this test's own, beside the SR-IOV steps and plain toggles. */
type HostStep =
  | { kind: 'hotPlug'; slot: number; at: number; offset: number; rebar: boolean }
  | { kind: 'hotUnplug'; slot: number }
  | { kind: 'move'; device: number; at: number; offset: number }
  | { kind: 'romMove'; device: number; at: number; enable: boolean }
  | { kind: 'rebar'; slot: number; field: 0 | 1 }
  | { kind: 'give'; device: number; to: 1 | 2 }
  | { kind: 'takeBack'; device: number }
  | { kind: 'guestDecode'; device: number; memory: boolean };

const MIB = 1n << 20n;
/** The resizable BAR's control: the device's only extended capability, at 0x100 (`RebarSpec`). */
const REBAR_CTRL = 0x100 + 8;
const plugged = (slot: number): string => `0000:05:${slot.toString(16).padStart(2, '0')}.0`;

const hostStep: fc.Arbitrary<HostStep> = fc.oneof(
  fc.record({
    kind: fc.constant('hotPlug' as const),
    slot: fc.nat(3),
    at: fc.nat(),
    offset: fc.nat(3),
    rebar: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('hotUnplug' as const), slot: fc.nat(3) }),
  fc.record({ kind: fc.constant('move' as const), device: fc.nat(), at: fc.nat(), offset: fc.nat(3) }),
  fc.record({ kind: fc.constant('romMove' as const), device: fc.nat(), at: fc.nat(), enable: fc.boolean() }),
  fc.record({
    kind: fc.constant('rebar' as const),
    slot: fc.nat(3),
    field: fc.constantFrom(0 as const, 1 as const),
  }),
  fc.record({
    kind: fc.constant('give' as const),
    device: fc.nat(),
    to: fc.constantFrom(1 as const, 2 as const),
  }),
  fc.record({ kind: fc.constant('takeBack' as const), device: fc.nat() }),
  fc.record({ kind: fc.constant('guestDecode' as const), device: fc.nat(), memory: fc.boolean() }),
);

type Step = HostStep | Parameters<typeof stepOrToggle>[2];

const steps: fc.Arbitrary<Step[]> = fc.array(
  fc.oneof(
    { arbitrary: hostStep, weight: 3 },
    { arbitrary: sriovStep, weight: 2 },
    { arbitrary: plainToggle as fc.Arbitrary<PlainToggle>, weight: 1 },
  ),
  { maxLength: 40, size: 'max' },
);

/**
 * Maybe a hidden device (dom_xen's) decoding from boot on the page of a plain device's BAR (the `bar`-th
 * of them, modulo) `offset` KiB in: the hardware domain maps its BAR, and it counts as the hardware
 * domain's at a device's move to that domain (a take-back, a hot plug onto its page).
 */
const hiddenPlan = fc.option(fc.record({ bar: fc.nat(), offset: fc.nat(3) }), { nil: undefined });

function hiddenSpecs(
  plain: Parameters<typeof deviceSpecs>[0],
  at: { bar: number; offset: number } | undefined,
): DeviceSpec[] {
  if (at === undefined) return [];
  const bars = deviceSpecs(plain).flatMap((spec) => (spec.bars ?? []).filter((bar) => bar !== undefined));
  const bar = bars[at.bar % bars.length]!;
  const addr = (bar.addr! & ~0xfffn) + BigInt(at.offset) * 0x400n;
  return [{ sbdf: '0000:06:00.0', command: 0x0006, bars: [{ type: bar.type, size: 0x400n, addr }] }];
}

/** Every device's BARs' host frames, read afresh: what the walks looked at. */
function walkFrames(device: PciDevice): Frames[] {
  return [
    ...hostBars(device).map((bar) => bar.hostFrames()),
    ...(device.vpci?.bars ?? []).map((bar) => bar.hostFrames()),
  ];
}

/** A frame on a page of some device's BAR (the `at`-th, modulo), or undefined on a machine without one. */
function frameOnBar(machine: Machine, at: number): number | undefined {
  const frames = machine.devices().flatMap((device) => hostBars(device).map((bar) => bar.hostFrames()));
  return frames.length === 0 ? undefined : frames[at % frames.length]![0];
}

function writeFrom(machine: Machine, v: Vcpu, sbdf: string, reg: number, size: number, value: number): void {
  if (v.pending !== undefined) machine.processPending(v, 1);
  else machine.configWrite(v, sbdf, reg, size, value);
}

function applyHostStep(world: World, s: HostStep, finish: number | undefined): void {
  const { machine } = world;
  const d0 = machine.hardwareDomain.vcpus[0]!;
  const devices = machine.devices().filter((device) => device.physfn === undefined);
  const pick = (n: number): PciDevice => devices[n % devices.length]!;
  let v: Vcpu | undefined;
  switch (s.kind) {
    case 'hotPlug': {
      if (machine.findDevice(plugged(s.slot)) !== undefined) return;
      const frame = frameOnBar(machine, s.at) ?? 0xd0000;
      // A sub-page BAR on that page, or a 1 MiB resizable one on the MiB holding it.
      const addr = s.rebar
        ? (BigInt(frame) << 12n) & ~(MIB - 1n)
        : (BigInt(frame) << 12n) + BigInt(s.offset) * 0x400n;
      settle(machine);
      machine.addDevice({
        sbdf: plugged(s.slot),
        bars: [{ type: addr < 1n << 32n ? 'mem32' : 'mem64', size: s.rebar ? MIB : 0x400n, addr }],
        ...(s.rebar ? { rebar: [{ bar: 0, sizes: [MIB, 2n * MIB] }] } : {}),
      });
      return;
    }
    case 'hotUnplug':
      if (machine.findDevice(plugged(s.slot)) === undefined) return;
      settle(machine);
      machine.removeDevice(plugged(s.slot));
      return;
    case 'move': {
      const device = pick(s.device);
      const frame = frameOnBar(machine, s.at);
      const bar = device.vpci?.bars.find((b) => b.mappable && b.type !== 'rom');
      // Below 4 GiB: the low register alone places it (a 64-bit BAR's high half stays).
      if (device.domain !== machine.hardwareDomain || frame === undefined || frame >= 0x100000) return;
      if (bar === undefined) return;
      v = d0;
      writeFrom(machine, v, device.name, 0x10 + 4 * bar.index, 4, frame * 0x1000 + s.offset * 0x400);
      break;
    }
    case 'romMove': {
      // vPCI takes the ROM's new address at once and the register only when its map completes
      // (header.ts): a vPCI BAR's host frames moving without a register write.
      const device = pick(s.device);
      const frame = frameOnBar(machine, s.at);
      const rom = device.vpci?.bars.find((b) => b.type === 'rom');
      if (device.domain !== machine.hardwareDomain || frame === undefined || frame >= 0x100000) return;
      if (rom === undefined) return;
      v = d0;
      writeFrom(machine, v, device.name, 0x30, 4, (frame * 0x1000 + (s.enable ? 1 : 0)) >>> 0);
      break;
    }
    case 'rebar': {
      const device = machine.findDevice(plugged(s.slot));
      if (device?.domain !== machine.hardwareDomain) return;
      v = d0;
      const ctrl = machine.configRead(v, device.name, REBAR_CTRL, 4);
      writeFrom(machine, v, device.name, REBAR_CTRL, 4, ((ctrl & ~0x3f00) | (s.field << 8)) >>> 0);
      break;
    }
    case 'give': {
      const device = pick(s.device);
      if (device.domain !== machine.hardwareDomain) return;
      settle(machine);
      machine.assignDevice(device.sbdf, s.to);
      return;
    }
    case 'takeBack': {
      const device = pick(s.device);
      if (device.domain?.kind !== 'guest') return;
      settle(machine);
      machine.deassignDevice(device.sbdf);
      return;
    }
    case 'guestDecode': {
      const device = pick(s.device);
      const guestSbdf = device.vpci?.guestSbdf;
      if (device.domain?.kind !== 'guest' || guestSbdf === undefined || device.domain.crashed) return;
      v = device.domain.vcpus[0]!;
      const address = `00:${guestSbdf.dev.toString(16).padStart(2, '0')}.0`;
      writeFrom(machine, v, address, 0x04, 2, s.memory ? 0x0006 : 0x0004);
      break;
    }
  }
  if (finish !== undefined && v !== undefined) while (machine.processPending(v, finish).status === 'restart');
}

function applyStep(world: World, plain: readonly string[], s: Step, finish: number | undefined): void {
  const own = ['hotPlug', 'hotUnplug', 'move', 'romMove', 'rebar', 'give', 'takeBack', 'guestDecode'];
  if (own.includes(s.kind)) applyHostStep(world, s as HostStep, finish);
  else stepOrToggle(world, plain, s as Parameters<typeof stepOrToggle>[2], finish);
}

/**
 * The index's answers against the walk's, for every proper range of every device's BARs, and for
 * each inverted one (a BAR of size 0, `[a, a - 1]`) the two frames across its boundary `[a - 1, a]`,
 * the smallest range the walk's test meets it in. Every inverted BAR these worlds make (empty slots,
 * I/O BARs, 64-bit high halves: vPCI leaves their address and size at 0) is at frame 0, so that
 * range is `[-1, 0]`, which no caller's BAR crosses: it asks the index's promise (the walk's test on
 * every vPCI BAR, `emptyAt`/`boundaries`, `framesOf`' second loop), not what a refusal decides.
 */
function checkIndex(machine: Machine, where: string): void {
  const index = machine.hostBarIndex!;
  const devices = machine.devices();
  const frames = new Map(devices.map((device) => [device, walkFrames(device)]));
  // Each range once: every device's empty slots are at the same inverted frames.
  const ranges = new Map<string, Frames>();
  for (const [first, last] of [...frames.values()].flat())
    ranges.set(`${first},${last}`, first <= last ? [first, last] : [last, first]);
  for (const range of ranges.values()) {
    const walked = devices
      .filter((other) => frames.get(other)!.some(([first, last]) => first <= range[1] && range[0] <= last))
      .map((other) => other.name)
      .sort();
    const found = index
      .devicesMeeting([range])
      .map((other) => other.name)
      .sort();
    expect(found, `${where}: [${range}]`).toEqual(walked);
  }
}

describe('the index of BARs by host frame, against the walk over every device', () => {
  it('hardened: the same devices as the walk after every step, and the same machine as without the index', () => {
    // Runs in which a refusal acted (an assignment refused, a page withheld): the index must be
    // asked where it matters, or this tests little.
    let acted = 0;
    fc.assert(
      fc.property(
        devicePlans,
        hiddenPlan,
        sriovPlan,
        steps,
        finishBudget,
        (plain, hidden, plan, path, finish) => {
          const sbdfs = deviceSpecs(plain).map((spec) => String(spec.sbdf));
          const indexed = build(plain, plan, 'hardened', hiddenSpecs(plain, hidden));
          const walking = build(plain, plan, 'hardened', hiddenSpecs(plain, hidden));
          Object.defineProperty(walking.machine, 'hostBarIndex', { value: undefined });
          for (const [at, s] of path.entries()) {
            applyStep(indexed, sbdfs, s, finish);
            applyStep(walking, sbdfs, s, finish);
            const where = `after step ${at}: ${json(s)}`;
            checkIndex(indexed.machine, where);
            expect(json(snapshot(indexed)), where).toBe(json(snapshot(walking)));
            expect(json(indexed.machine.events), where).toBe(json(walking.machine.events));
            expect(costs(indexed.machine), where).toBe(costs(walking.machine));
          }
          if (indexed.machine.events.some((e) => e.kind === 'assign-refused' || e.kind === 'subpage-shared'))
            acted++;
        },
      ),
      runs(60),
    );
    expect(acted).toBeGreaterThan(5);
  });
});

describe('the index of BARs by host frame: a vPCI BAR moved without a register write', () => {
  // Xen's `rom_write` takes the ROM's new address into vPCI at once and writes the register when the
  // deferred map completes (`modify_decoding`, rom_only): until then only the vPCI BAR is on the new
  // page. A guest mapping a BAR on that page must have it withheld (hardened `dropSharedPages`), as the
  // walk over every device finds; the index hears of it from the BAR (`Bar.hostWatcher`).
  it('hardened: a ROM moved onto a guest device’s page with its map pending is seen at the guest’s map', () => {
    const machines = [false, true].map((indexed) => {
      const machine = new Machine({ profile: 'hardened' });
      if (!indexed) Object.defineProperty(machine, 'hostBarIndex', { value: undefined });
      machine.addDevice({
        sbdf: '0000:01:00.0',
        command: 0x0006,
        bars: [{ type: 'mem32', size: 0x1000n, addr: 0xc000_0000n }],
        rom: { size: 0x800n, addr: 0xc010_0000n },
      });
      machine.addDevice({
        sbdf: '0000:01:01.0',
        bars: [{ type: 'mem32', size: 0x400n, addr: 0xc002_0000n }],
      });
      machine.boot();
      machine.createGuest({ id: 1, vcpus: 1 });
      // The index is made here (the assignment asks it), before the ROM moves.
      expect(machine.assignDevice('0000:01:01.0', 1)).toEqual({ ok: true });
      const d0 = machine.hardwareDomain.vcpus[0]!;
      machine.configWrite(d0, '01:00.0', 0x30, 4, 0xc002_0801);
      expect(d0.pending).toBeDefined();
      const guest = machine.domain(1).vcpus[0]!;
      machine.configWrite(guest, '00:00.0', 0x04, 2, 0x0002);
      return machine;
    });
    const [walking, indexed] = machines as [Machine, Machine];
    const shared = (machine: Machine) =>
      json(machine.events.filter((e) => e.kind === 'subpage-shared' && e.sbdf === '0000:01:01.0'));
    expect(shared(walking)).toContain('"other":"0000:01:00.0"');
    expect(shared(indexed)).toBe(shared(walking));
    expect(json(indexed.events)).toBe(json(walking.events));
  });
});

describe('the index of BARs by host frame: a PF’s VF BAR register moving its VFs’ BARs', () => {
  // A VF's BARs are where its PF's VF BAR registers put them (PCIe 9.3.3.14), so a write to those
  // registers must re-read the PF's VFs (`HostBarIndex` takes each VF again). `hardened`
  // (`mapVfBarRanges`, sriov.ts `guardedWrite`) ignores such a write while VF Enable is on, and the
  // VFs exist only then: under `hardened` alone the path is never taken. The index is asked under
  // any policy with `refuseSubpageSharing`, though: `xen` with that switch alone passes the write to
  // the device (Xen's `vpci_write_hw`: no handler for the register), and a guest's map must then
  // withhold its page the moved VF BAR is on (`dropSharedPages` reads the VF's `hostBars`).
  // The index re-reads a PF's VFs only when its VF BAR placement (register words, sizes under the
  // System Page Size) differs from when they were last read (`vfBarsMoved`): these cases move it
  // away and back, and by the page size alone.

  /**
   * Two machines (the walk's, the index's), `xen` with `refuseSubpageSharing`: PF 04:00.0 with `vfs`
   * VFs enabled (04:00.4, then 04:01.0: offset and stride 4), VF BAR 0 4 KiB at c100_0000; 01:00.0's 1 KiB BAR at `guestBar`,
   * assigned to guest 1 (which makes the index, the VFs read with their BARs where the registers put
   * them); then `steps` on each, with `d0` the hardware domain's vCPU, `guest` the guest's and
   * `map(on)` the guest's decoding of 01:00.0 toggled to the end.
   */
  function vfWorlds(
    vfs: number,
    guestBar: bigint,
    steps: (machine: Machine, d0: Vcpu, map: (on: boolean) => void) => void,
  ): [walking: Machine, indexed: Machine] {
    const machines = [false, true].map((indexed) => {
      const machine = new Machine({ profile: 'xen', policy: { refuseSubpageSharing: true } });
      if (!indexed) Object.defineProperty(machine, 'hostBarIndex', { value: undefined });
      machine.addDevice({
        sbdf: '0000:04:00.0',
        sriov: {
          totalVfs: vfs,
          numVfs: vfs,
          firstVfOffset: 4,
          vfStride: 4,
          vfBars: [{ type: 'mem32', size: 0x1000n, addr: 0xc100_0000n }],
        },
      });
      machine.addDevice({ sbdf: '0000:01:00.0', bars: [{ type: 'mem32', size: 0x400n, addr: guestBar }] });
      machine.boot();
      machine.createGuest({ id: 1, vcpus: 1 });
      const d0 = machine.hardwareDomain.vcpus[0]!;
      machine.configWrite(d0, '04:00.0', 0x108, 2, 0x1); // VF Enable: the VFs join the hardware domain.
      expect(machine.findDevice('0000:04:00.4')).toBeDefined();
      expect(machine.assignDevice('0000:01:00.0', 1)).toEqual({ ok: true });
      const guest = machine.domain(1).vcpus[0]!;
      steps(machine, d0, (on) => {
        machine.configWrite(guest, '00:00.0', 0x04, 2, on ? 0x0002 : 0x0000);
        machine.finishPending(guest);
      });
      return machine;
    });
    return machines as [Machine, Machine];
  }

  /** 01:00.0's `subpage-shared` events, as JSON. */
  const shared = (machine: Machine) =>
    json(machine.events.filter((e) => e.kind === 'subpage-shared' && e.sbdf === '0000:01:00.0'));

  it('xen with refuseSubpageSharing: a VF BAR moved onto a guest device’s page with VFs enabled is seen at the guest’s map', () => {
    const [walking, indexed] = vfWorlds(1, 0xc002_0000n, (machine, d0, map) => {
      machine.configWrite(d0, '04:00.0', 0x124, 4, 0xc002_0000); // VF BAR 0 onto 01:00.0's page.
      expect(machine.configRead(d0, '04:00.0', 0x124, 4)).toBe(0xc002_0000);
      map(true);
    });
    expect(shared(walking)).toContain('"other":"0000:04:00.4"');
    expect(shared(indexed)).toBe(shared(walking));
    expect(json(indexed.events)).toBe(json(walking.events));
  });

  it('xen with refuseSubpageSharing: a VF BAR moved onto a guest device’s page, back, and onto it again: each map sees where it is', () => {
    const [walking, indexed] = vfWorlds(1, 0xc002_0000n, (machine, d0, map) => {
      for (const at of [0xc002_0000, 0xc100_0000, 0xc002_0000]) {
        machine.configWrite(d0, '04:00.0', 0x124, 4, at);
        // Xen's sizing of the register in between (all ones, then the address back), as at VF MSE on:
        // the placement is where it was at the map.
        machine.configWrite(d0, '04:00.0', 0x124, 4, 0xffff_ffff);
        machine.configWrite(d0, '04:00.0', 0x124, 4, at);
        map(true);
        map(false);
      }
    });
    // Withheld at the first and third maps only: the walk's count, as the index's.
    expect(shared(walking).split('"other":"0000:04:00.4"').length - 1).toBe(2);
    expect(shared(indexed)).toBe(shared(walking));
    expect(json(indexed.events)).toBe(json(walking.events));
  });

  it('xen with refuseSubpageSharing: System Page Size doubled moves VF 1’s BAR onto a guest device’s page (VF n at base + n × size)', () => {
    // 4 KiB pages: VF 0 at c100_0000, VF 1 at c100_1000; 8 KiB: VF 1 at c100_2000 (8 KiB), 01:00.0's page.
    const [walking, indexed] = vfWorlds(2, 0xc100_2000n, (machine, d0, map) => {
      // Xen's sizing of VF BAR 0 (all ones, the address back) before a map: the index has seen the
      // placement as it is before the page size changes it.
      machine.configWrite(d0, '04:00.0', 0x124, 4, 0xffff_ffff);
      machine.configWrite(d0, '04:00.0', 0x124, 4, 0xc100_0000);
      map(true);
      map(false);
      machine.configWrite(d0, '04:00.0', 0x120, 4, 0x2); // System Page Size 8 KiB.
      map(true);
    });
    expect(shared(walking)).toContain('"other":"0000:04:01.0"');
    expect(shared(walking)).not.toContain('"other":"0000:04:00.4"');
    expect(shared(indexed)).toBe(shared(walking));
    expect(json(indexed.events)).toBe(json(walking.events));
  });
});
