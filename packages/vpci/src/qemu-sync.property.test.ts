/**
 * The `qemu` rule set's `syncFrames` (qemu-rules.ts) against the walk it replaced, kept here as the
 * model: every device of the machine walked on every sync for the decoding BARs of the domain (the
 * first in device order mapping a page several overlap), their MSI-X structures punched out, and
 * every wanted run compared with every extent for the unmap. Random machines of the hardware domain
 * and guests (several domains), BARs overlapping across devices, MSI-X tables and PBAs inside BARs,
 * driven through the registers; two machines in lockstep, one with the index of enabled BARs and
 * one without (the rule set then walks), and after each step a sync over random frames, the new code
 * on the first machine and the model on the second: the same p2ms throughout. Then an MSI-X table a
 * resizable-BAR resize left outside its BAR, over another device's BAR (the holes then come from the
 * walk, `msixMayLieOutsideBars`).
 */
import { type Gfn, MAX_FRAME } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { archMmioCalls } from './arch.js';
import { type EngineContext, mappingDomain } from './context.js';
import type { Bar } from './device.js';
import type { Domain, PciDevice, Vcpu } from './domain.js';
import type { DeviceSpec } from './hardware.js';
import { Machine } from './machine.js';
import { msixBir, msixGuestFrames } from './msix.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import { syncFrames } from './qemu-rules.js';

/** The old `syncFrames`: the walk over every device, and every wanted run per extent. */
function modelSync(context: EngineContext, device: PciDevice, frames: readonly [number, number]): void {
  const domain = mappingDomain(context, device);
  if (domain === undefined) return;
  const first = frames[0];
  const last = Math.min(frames[1], MAX_FRAME);
  if (first > last) return;
  const decoding: { device: PciDevice; bar: Bar }[] = [];
  for (const other of context.devices()) {
    if (other.vpci === undefined || mappingDomain(context, other) !== domain) continue;
    for (const bar of other.vpci.bars) if (bar.enabled && bar.mappable) decoding.push({ device: other, bar });
  }
  const free = RangeSet.from<Gfn>([[first as Gfn, last as Gfn]]);
  for (const { device: other } of decoding) {
    const vpci = other.vpci!;
    for (let nr = 0; vpci.msix !== undefined && nr < 2; nr++) {
      if (!vpci.bars[msixBir(vpci, nr)]!.enabled) continue;
      const [start, end] = msixGuestFrames(vpci, nr);
      if (start <= last && end >= first)
        free.removeRange(Math.max(start, first) as Gfn, Math.min(end, last) as Gfn);
    }
  }
  const wanted: { first: number; last: number; bar: Bar }[] = [];
  for (const { bar } of decoding) {
    const [start, end] = bar.guestFrames();
    if (start > last || end < first) continue;
    const s = Math.max(start, first);
    const e = Math.min(end, last);
    for (const [fs, fe] of free) {
      if (fe < s) continue;
      if (fs > e) break;
      wanted.push({ first: Math.max(fs, s), last: Math.min(fe, e), bar });
    }
    free.removeRange(s as Gfn, e as Gfn);
  }
  wanted.sort((a, b) => a.first - b.first);
  // A map or unmap repeated until done (the calls stop after some chunks with their progress).
  const run = (map: boolean, s: number, e: number, mfn: number): void => {
    for (let at = s; at <= e; ) {
      const rc = archMmioCalls(
        context.arch,
        domain.p2m,
        map,
        at as Gfn,
        e - at + 1,
        (mfn + at - s) as never,
        Infinity,
      );
      if (!rc.ok) throw new Error(`the model's p2m call failed: ${rc.code}`);
      at += rc.done ? e - at + 1 : rc.progress;
    }
  };
  for (const extent of [...domain.p2m.extentsIn(first as Gfn, last as Gfn)]) {
    if (extent.type !== 'mmio_direct') continue;
    const s = Math.max(extent.gfn, first);
    const e = Math.min(extent.gfn + extent.count - 1, last);
    const shift = extent.mfn - extent.gfn;
    let at = s;
    for (const w of wanted) {
      if (w.last < at || w.first > e) continue;
      const keep = w.bar.hostFrameOf(w.first as Gfn) - w.first === shift;
      if (w.first > at) run(false, at, w.first - 1, at + shift);
      const to = Math.min(w.last, e);
      if (!keep) run(false, Math.max(w.first, at), to, Math.max(w.first, at) + shift);
      at = to + 1;
    }
    if (at <= e) run(false, at, e, at + shift);
  }
  for (const w of wanted) run(true, w.first, w.last, w.bar.hostFrameOf(w.first as Gfn));
}

/** Host BARs in 32 pages from here; a guest's view in 8 pages from `GUEST` (its BARs overlap). */
const HOST = 0xf000_0000;
const GUEST = 0xe000_0000;
const PAGES = 32;
const GUEST_PAGES = 8;

interface DevicePlan {
  /** The device's slot on bus 1. */
  readonly fn: number;
  /** Per BAR, log2 of its pages (0–2) and its page in the window. */
  readonly bars: readonly { readonly order: number; readonly page: number }[];
  /** MSI-X table and PBA pages in BAR 0 (a page each, inside it), or none. */
  readonly msix: readonly [number, number] | undefined;
  /** 0: the hardware domain's; k: guest k's. */
  readonly owner: number;
}

const aligned = (page: number, order: number): number => page & ~((1 << order) - 1);

const devicePlan = fc.record({
  fn: fc.integer({ min: 0, max: 31 }),
  bars: fc.array(
    fc.record({ order: fc.integer({ min: 0, max: 2 }), page: fc.integer({ min: 0, max: PAGES - 1 }) }),
    { minLength: 1, maxLength: 3 },
  ),
  msix: fc.option(fc.tuple(fc.nat(3), fc.nat(3)), { nil: undefined }),
  // Guests' devices oftener: a guest's view overlaps with other host frames, where the order tells.
  owner: fc.constantFrom(0, 1, 1, 2),
});

type Step =
  | { readonly kind: 'cmd'; readonly device: number; readonly on: boolean }
  | { readonly kind: 'move'; readonly device: number; readonly bar: number; readonly page: number }
  | { readonly kind: 'sync'; readonly device: number; readonly from: number; readonly pages: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('cmd' as const), device: fc.nat(7), on: fc.boolean() }),
  fc.record({
    kind: fc.constant('move' as const),
    device: fc.nat(7),
    bar: fc.nat(2),
    page: fc.integer({ min: 0, max: PAGES - 1 }),
  }),
  fc.record({
    kind: fc.constant('sync' as const),
    device: fc.nat(7),
    from: fc.integer({ min: -2, max: PAGES }),
    pages: fc.integer({ min: 1, max: PAGES }),
  }),
);

function specOf(plan: DevicePlan): DeviceSpec {
  const sizeOrder = (i: number): number => {
    const order = plan.bars[i]!.order;
    // MSI-X structures lie inside BAR 0: it holds at least their pages.
    return i === 0 && plan.msix !== undefined ? Math.max(order, 2) : order;
  };
  const [table, pba] = plan.msix ?? [0, 0];
  return {
    sbdf: `0000:01:${plan.fn.toString(16).padStart(2, '0')}.0`,
    bars: plan.bars.map((bar, i) => ({
      type: 'mem32' as const,
      size: BigInt(0x1000 << sizeOrder(i)),
      addr: BigInt(HOST + aligned(bar.page, sizeOrder(i)) * 0x1000),
    })),
    ...(plan.msix === undefined
      ? {}
      : {
          msix: {
            entries: 4,
            table: { bar: 0, offset: table * 0x1000 },
            pba: { bar: 0, offset: pba * 0x1000 + 0x800 },
          },
        }),
  };
}

/** A machine of `plans` under the qemu rules, booted, each device handed to its owner. */
function machineOf(plans: readonly DevicePlan[]): Machine {
  const machine = new Machine({ rules: 'qemu', x86GuestVpci: true });
  for (const plan of plans) machine.addDevice(specOf(plan));
  machine.boot();
  const guests = [machine.createGuest(), machine.createGuest()];
  for (const plan of plans)
    if (plan.owner !== 0)
      expect(machine.assignDevice(specOf(plan).sbdf, guests[plan.owner - 1]!.id).ok).toBe(true);
  // Each guest places its BARs in its few pages and turns decoding on: they overlap from the start.
  for (const plan of plans) {
    if (plan.owner === 0) continue;
    const { vcpu, sbdf } = accessOf(machine, machine.device(specOf(plan).sbdf));
    for (const [i, bar] of plan.bars.entries())
      machine.configWrite(vcpu, sbdf, 0x10 + 4 * i, 4, GUEST + (bar.page % GUEST_PAGES) * 0x1000);
    machine.configWrite(vcpu, sbdf, 0x04, 2, PCI_COMMAND_MEMORY);
  }
  return machine;
}

/** The vCPU and address through which `device`'s owner reaches it. */
function accessOf(machine: Machine, device: PciDevice): { vcpu: Vcpu; sbdf: string } {
  const owner = device.domain!;
  if (owner.isHardware) return { vcpu: owner.vcpus[0]!, sbdf: device.name };
  for (let slot = 0; slot < 32; slot++) {
    const sbdf = `0000:00:${slot.toString(16).padStart(2, '0')}.0`;
    if (machine.findGuestDevice(owner, sbdf) === device) return { vcpu: owner.vcpus[0]!, sbdf };
  }
  throw new Error(`${device.name} not seen by d${owner.id}`);
}

/** Every domain's p2m, and how many writes made it (a page unmapped and mapped again is one more). */
const maps = (machine: Machine): string =>
  JSON.stringify(machine.domains().map((d: Domain) => [d.id, d.p2m.writes, [...d.p2m.extents()]]));

describe('qemu syncFrames: the search of enabled BARs and the merged unmap against the walk', () => {
  it('random machines, several domains, overlapping BARs and MSI-X: the same p2ms after every step', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(devicePlan, { minLength: 2, maxLength: 8, selector: (p) => p.fn }),
        fc.array(step, { maxLength: 60 }),
        (plans, steps) => {
          const indexed = machineOf(plans);
          const walking = machineOf(plans);
          // Without the index the rule set walks every device (decodingBarsMeeting).
          Object.defineProperty(walking, 'enabledBars', { value: undefined });
          const devicesOf = (machine: Machine): PciDevice[] =>
            plans.map((plan) => machine.device(specOf(plan).sbdf));
          const [a, b] = [devicesOf(indexed), devicesOf(walking)];
          for (const [n, s] of steps.entries()) {
            const at = s.device % plans.length;
            if (s.kind === 'sync') {
              const base = (a[at]!.domain!.isHardware ? HOST : GUEST) / 0x1000 + s.from;
              syncFrames(indexed, a[at]!, [base, base + s.pages - 1]);
              modelSync(walking, b[at]!, [base, base + s.pages - 1]);
            } else {
              for (const [machine, device] of [
                [indexed, a[at]!],
                [walking, b[at]!],
              ] as const) {
                const { vcpu, sbdf } = accessOf(machine, device);
                if (s.kind === 'cmd') machine.configWrite(vcpu, sbdf, 0x04, 2, s.on ? PCI_COMMAND_MEMORY : 0);
                else {
                  const bar = s.bar % plans[at]!.bars.length;
                  const base = device.domain!.isHardware ? HOST : GUEST;
                  const page = device.domain!.isHardware ? s.page : s.page % GUEST_PAGES;
                  machine.configWrite(vcpu, sbdf, 0x10 + 4 * bar, 4, base + page * 0x1000);
                }
              }
            }
            expect(maps(indexed), `after step ${n}: ${JSON.stringify(s)}`).toBe(maps(walking));
            expect(JSON.stringify(indexed.events)).toBe(JSON.stringify(walking.events));
          }
        },
      ),
      runs(150),
    );
  });

  it('an MSI-X table a resize left outside its BAR: its page punched out of the BAR over it, as the walk did', () => {
    const MIB = 0x10_0000;
    const specs: DeviceSpec[] = [
      {
        sbdf: '0000:01:00.0',
        bars: [{ type: 'mem32', size: BigInt(2 * MIB), addr: 0xf000_0000n }],
        msix: { entries: 4, table: { bar: 0, offset: 0x18_0000 }, pba: { bar: 0, offset: 0x18_1000 } },
        rebar: [{ bar: 0, sizes: [BigInt(MIB), BigInt(2 * MIB)] }],
      },
      { sbdf: '0000:01:01.0', bars: [{ type: 'mem32', size: BigInt(MIB), addr: 0xf010_0000n }] },
    ];
    const [indexed, walking] = [0, 1].map(() => {
      const machine = new Machine({ rules: 'qemu' });
      for (const spec of specs) machine.addDevice(spec);
      machine.boot();
      // BAR 0 of 01:00.0 resized to 1 MiB (the control register's size field, bits 8–13: 2^(20 + 0)).
      const v = machine.hardwareDomain.vcpus[0]!;
      const ctrl = 0x100 + 8;
      machine.configWrite(v, '01:00.0', ctrl, 4, machine.configRead(v, '01:00.0', ctrl, 4) & ~0x3f00);
      machine.configWrite(v, '01:00.0', 0x04, 2, PCI_COMMAND_MEMORY);
      machine.configWrite(v, '01:01.0', 0x04, 2, PCI_COMMAND_MEMORY);
      return machine;
    }) as [Machine, Machine];
    Object.defineProperty(walking, 'enabledBars', { value: undefined });
    expect(indexed.device('01:00.0').vpci!.bars[0]!.size).toBe(BigInt(MIB));
    const frames = [0xf0100, 0xf01ff] as const;
    syncFrames(indexed, indexed.device('01:01.0'), frames);
    modelSync(walking, walking.device('01:01.0'), frames);
    expect(maps(indexed)).toBe(maps(walking));
    // The table's page, past 01:00.0's BAR now, inside 01:01.0's: unmapped; the next one mapped.
    expect(indexed.hardwareDomain.p2m.lookup(0xf0180 as Gfn).type).not.toBe('mmio_direct');
    expect(indexed.hardwareDomain.p2m.lookup(0xf0182 as Gfn).type).toBe('mmio_direct');
  });
});
