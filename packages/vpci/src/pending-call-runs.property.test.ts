/**
 * vPCI's `map_range` (xen/drivers/vpci/header.c) calls `map_mmio_regions` / `unmap_mmio_regions`
 * (xen/arch/x86/mm/p2m.c, at most MAP_MMIO_MAX_ITER = 64 chunks per call, returning the progress)
 * again and again, running `general_preempt_check` after each partial call. The engine does the
 * leading run of whole, identical calls in closed form (`mmioCallRun`). The oracle is the per-call
 * loop: the same machine whose p2ms carry a `failAt` hook that never fires takes Xen's path one call
 * (and one chunk) at a time, the naive reference. Both must agree after every `vpci_process_pending`
 * step: p2m extents, entry writes, MMIO cost, the device's `xenCost`, events, the pending state. The
 * other rule sets' own loops over the same calls (qemu, kvm-vfio, cloud-hypervisor) are compared too.
 */
import { MAP_MMIO_MAX_ITER, mapMmio, P2m, gfn as toGfn, mfn as toMfn } from '@vpci/p2m';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import type { Domain, Vcpu } from './domain.js';
import { Machine } from './machine.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import type { Profile } from './policy.js';
import type { RuleSetName } from './rule-set.js';

interface Case {
  profile: Profile;
  /** Whose rules map the BAR: Xen's deferred map_range, or the other rule sets' own loops. */
  rules: RuleSetName;
  hap: boolean;
  superpages2M: boolean;
  /** BAR0 size in frames (a power of two). */
  frames: number;
  /** Host address of BAR0 in BAR sizes (natural alignment). */
  hostSlot: number;
  /** Guest address of BAR0 in BAR sizes. */
  guestSlot: number;
  /** MSI-X table page in BAR0, or none. */
  msixPage: number | undefined;
  /** Frames of BAR0 already mapped in the guest before the map (a leaf in the way), as [offset, count, shift]. */
  inTheWay: [number, number, number] | undefined;
  /** `general_preempt_check` after this many frames, or never. */
  budget: number;
}

const cases: fc.Arbitrary<Case> = fc
  .record({
    profile: fc.constantFrom<Profile>('xen', 'hardened'),
    rules: fc.constantFrom<RuleSetName>('xen', 'xen', 'xen', 'qemu', 'kvm-vfio', 'cloud-hypervisor'),
    hap: fc.boolean(),
    superpages2M: fc.boolean(),
    log2: fc.integer({ min: 8, max: 14 }),
    hostSlot: fc.integer({ min: 1, max: 6 }),
    guestSlot: fc.integer({ min: 1, max: 6 }),
    msix: fc.option(fc.nat(), { nil: undefined }),
    inTheWay: fc.option(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 700 }), fc.nat(1024)), {
      nil: undefined,
    }),
    budget: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 1, max: 5000 })),
  })
  .map(({ log2, msix, inTheWay, ...rest }) => {
    const frames = 2 ** log2;
    return {
      ...rest,
      frames,
      msixPage: msix === undefined ? undefined : msix % frames,
      inTheWay:
        inTheWay === undefined
          ? undefined
          : ([inTheWay[0] % frames, inTheWay[1], inTheWay[2]] as [number, number, number]),
    };
  });

/** Everything a step can change that a report or a later step can see. */
function snapshot(machine: Machine, guest: Domain, vcpu: Vcpu): unknown {
  const device = machine.device('01:00.0');
  return {
    extents: [...guest.p2m.extents()],
    writes: guest.p2m.writes,
    cost: { ...guest.p2m.mmioCost },
    p2mEvents: guest.p2m.events.length,
    xenCost: { ...device.xenCost },
    events: machine.events.map((e) => JSON.stringify(e)),
    pending:
      vcpu.pending === undefined
        ? undefined
        : [...vcpu.pending.done].map(([bar, set]) => [bar, set.toArray()]),
    sets: device.vpci!.bars.map((bar) => bar.mem?.toArray()),
    enabled: device.vpci!.bars.map((bar) => bar.enabled),
  };
}

/** Runs the case on a machine, per call when `naive`; the snapshots after every step. */
function play(c: Case, naive: boolean): unknown[] {
  const size = BigInt(c.frames) * 4096n;
  const machine = new Machine({ profile: c.profile, rules: c.rules });
  machine.addDevice({
    sbdf: '0000:01:00.0',
    bars: [{ type: 'mem64', size, addr: size * BigInt(c.hostSlot) + (1n << 40n) }, null],
    ...(c.msixPage === undefined
      ? {}
      : {
          msix: {
            entries: 4,
            table: { bar: 0, offset: c.msixPage * 4096 },
            pba: { bar: 0, offset: c.msixPage * 4096 + 2048 },
          },
        }),
  });
  machine.boot();
  const guest = machine.createGuest({
    p2m: { hap: c.hap, superpages2M: c.superpages2M, ...(naive ? { failAt: () => false } : {}) },
  });
  machine.assignDevice('01:00.0', guest.id);
  const vcpu = guest.vcpus[0]!;
  const guestAddr = size * BigInt(c.guestSlot) + (1n << 39n);
  machine.configWrite(vcpu, '00:00.0', 0x10, 4, Number(guestAddr & 0xffff_ffffn));
  machine.configWrite(vcpu, '00:00.0', 0x14, 4, Number(guestAddr >> 32n));
  if (c.inTheWay !== undefined) {
    const [offset, count, shift] = c.inTheWay;
    const first = Number(guestAddr / 4096n) + offset;
    mapMmio(guest.p2m, toGfn(first), count, toMfn(first + shift));
  }
  const steps: unknown[] = [];
  for (const cmd of [PCI_COMMAND_MEMORY, 0]) {
    machine.configWrite(vcpu, '00:00.0', 0x04, 2, cmd);
    for (let step = 0; step < 100_000; step++) {
      const result = machine.processPending(vcpu, c.budget);
      steps.push(result, snapshot(machine, guest, vcpu));
      if (result.status !== 'restart') break;
    }
  }
  return steps;
}

describe('map_range over map_mmio_regions calls: closed form against the per-call loop', () => {
  it('same p2m, counts, events and pending state after every vpci_process_pending step', () => {
    fc.assert(
      fc.property(cases, (c) => {
        expect(play(c, false)).toEqual(play(c, true));
      }),
      runs(60),
    );
  });
});

describe('a 2^47-byte BAR under 4K-only leaves (HAP without 2M pages): work bounded by extents', () => {
  // 2^35 frames: Xen's map_mmio_regions does 64 4K chunks per call (mmio_order is 0 without 2M pages),
  // so 2^29 calls each way; map_range's general_preempt_check after each partial call, here a budget
  // of 2^30 frames (2^24 calls), preempts 31 times and the 32nd vpci_process_pending finishes.
  const frames = 2 ** 35;
  const calls = frames / MAP_MMIO_MAX_ITER;
  const budget = 2 ** 30;
  it('maps and unmaps with every call and leaf counted, in a few p2m writes per step', () => {
    const writeRun = vi.spyOn(P2m.prototype, 'writeRun');
    try {
      const machine = new Machine({ superpages2M: false });
      machine.addDevice({
        sbdf: '0000:01:00.0',
        bars: [{ type: 'mem64', size: 1n << 47n, addr: 1n << 47n }, null],
      });
      machine.boot();
      const dom0 = machine.hardwareDomain;
      const vcpu = dom0.vcpus[0]!;
      const device = machine.device('01:00.0');
      for (const cmd of [PCI_COMMAND_MEMORY, 0]) {
        const before = writeRun.mock.calls.length;
        machine.configWrite(vcpu, '01:00.0', 0x04, 2, cmd);
        const statuses: string[] = [];
        for (let step = 0; step < 64; step++) {
          const result = machine.processPending(vcpu, budget);
          statuses.push(result.status);
          if (result.status !== 'restart') break;
        }
        expect(statuses).toEqual([...Array<string>(31).fill('restart'), 'done']);
        // One run write per step: 2^24 calls each; the last call of all is made by map_mmio_regions.
        expect(writeRun.mock.calls.length - before).toBeLessThanOrEqual(2 * 32);
      }
      expect(dom0.p2m.mmioCost).toEqual({
        mapCalls: calls,
        unmapCalls: calls,
        leaves4K: 2 * frames,
        leaves2M: 0,
        leaves1G: 0,
      });
      expect(device.xenCost).toMatchObject({ mapCalls: calls, unmapCalls: calls, continuations: 62 });
      expect([...dom0.p2m.extents()]).toEqual([]);
      expect(dom0.p2m.writes).toBe(2 * frames);
    } finally {
      writeRun.mockRestore();
    }
  });
});
