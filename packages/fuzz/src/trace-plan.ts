/**
 * What a random trace is made of, before it is written (trace-writer.ts): the host (profile, policy,
 * dom0's vCPUs, e820 entries over BARs), devices (sub-page BARs packed by natural alignment into shared
 * pages, MSI-X, hidden ones owned by dom_xen, resizable BARs, hot-plugged ones), two guests with
 * several vCPUs, and steps. The steps reach what an independent campaign found the engine's holes
 * with: dom0 writing to devices it does not own (raw hardware writes under a guest's mappings), every
 * command on hidden devices, unplug and hot plug beside live mappings, ReBAR resizes racing pending
 * work, p2m faults during unmaps, e820 holes over BARs, several vCPUs with work pending at once, BARs
 * moved over each other, devices marked read-only at boot, devices whose vPCI set-up fails, IOMMU
 * faults on hot plug and assignment; and an SR-IOV physical function (sriov.ts) whose VFs the hardware domain
 * sizes, places, enables and decodes, guests get and give back, and which is unplugged. Plans shrink as fast-check shrinks records and arrays: fewer steps, fewer
 * devices, smaller numbers.
 */
import type { Policy, Profile, RuleSetName } from '@vpci/vpci';
import fc from 'fast-check';
import { traceBarSizeLog2 } from './bar.js';
import { type SriovPlan, type SriovStep, sriovPlan, sriovStep } from './sriov.js';
import { rawValue } from './step.js';

/** A trace's device: 32-bit memory BARs of `2^sizes[i]` bytes, at host addresses packed in order. */
export interface TraceDevicePlan {
  /** log2 of each BAR's size, 4 (16 bytes) to 22 (4 MiB); one to three BARs, in slots 0, 1, 2. */
  sizes: number[];
  /** A one-entry MSI-X table in BAR 0 (when it holds 32 bytes). */
  msix: boolean;
  /** Who gets it after boot: 0 the hardware domain, 1 or 2 a guest. */
  owner: number;
  /** Hidden from dom0 (owned by dom_xen, reached through dom0's vPCI). */
  hidden: boolean;
  /** BAR 0 is resizable, 1 MiB to 8 MiB (its size is then at least 1 MiB). */
  rebar: boolean;
  /** Added after boot (hot plug), not at boot. */
  hotplug: boolean;
  /**
   * Marked read-only while Xen boots (`pci_ro_device`: the trace's `readOnly`, which implies hidden):
   * no vPCI, the hardware domain's writes dropped. Only at boot (`pci_ro_device` is `__init`): a
   * read-only device is never hot-plugged, and plugged back in it is not marked again (Xen's `ro_map`
   * keeps the address marked). Absent: false.
   */
  readOnly?: boolean;
  /**
   * Its vPCI set-up fails (`vpci_assign_device`: a `vpci-setup-failed` event): it is written as a
   * config-space image whose MSI-X capability names table BIR 6 behind the capability pointer 0x42,
   * so `init_msix` fails (ENODEV) and the capability cannot be hidden. At boot it stays the hardware
   * domain's without vPCI; hot-plugged, it is nobody's. Memory decoding is on in the image, so the
   * header's set-up maps (at boot) or defers a map (hot plug) before the failure. Absent: false.
   */
  setupFails?: boolean;
  /**
   * One phantom function (`phantomFunctions` 1: requester ID function 4), whose IOMMU context an
   * `iommuFault` step can fail. Absent: none.
   */
  phantom?: boolean;
}

/** An e820 entry of the host over a BAR's pages (the trace drops one that overlaps an earlier one). */
export interface TraceE820Plan {
  /** The device (modulo the devices) and its BAR (modulo its BARs) whose first page it starts on. */
  device: number;
  /** The BAR, modulo the device's BARs. */
  bar: number;
  /** How many 4 KiB pages it covers, from that BAR's first page. */
  pages: number;
  /** The e820 type. */
  type: 'ram' | 'reserved' | 'acpi' | 'nvs' | 'unusable';
}

/** Who makes an access: the device's owner (as it sees the device), or the hardware domain by the host address. */
export type TraceVia = 'owner' | 'hardware';

/**
 * Where a BAR write puts the BAR: all-ones (a probe), a guest slot of its own, the host address, the
 * next page, the page of the next device's first BAR (sub-page neighbours), or exactly over the next
 * device's first BAR (as its owner would place it: BARs overlapping each other).
 */
export type TraceBarPlacement = 'probe' | 'own' | 'host' | 'shift' | 'neighbour' | 'overlap';

/** Fields every access step has. */
export interface TraceAccess {
  /** The device, modulo the trace's devices. */
  device: number;
  /** The vCPU, modulo the accessing domain's vCPUs. */
  vcpu: number;
  /** Whose access it is. */
  via: TraceVia;
}

/** One step of a random trace. An access to a device that is not on the machine (unplugged) writes no line. */
export type TraceStep =
  /** Memory decoding on or off (the command register). */
  | (TraceAccess & { kind: 'command'; memory: boolean })
  /** A BAR write (`bar` modulo the device's BARs). */
  | (TraceAccess & { kind: 'bar'; bar: number; placement: TraceBarPlacement })
  /** The MSI-X control word. */
  | (TraceAccess & { kind: 'msix'; enable: boolean; mask: boolean })
  /** Any value of `size` bytes at `reg` (below 0x50: the header and the MSI-X capability). */
  | (TraceAccess & { kind: 'raw'; size: 1 | 2 | 4; reg: number; value: number })
  /** The hardware domain resizes BAR 0 to `2^sizeLog2` (a ReBAR control write), resizable or not. */
  | { kind: 'rebar'; device: number; vcpu: number; sizeLog2: number }
  /** Domain `domain`'s vCPU runs its deferred work, preempted after `budget` frames (none: to the end). */
  | { kind: 'run'; domain: number; vcpu: number; budget: number | undefined }
  /** Domain `domain`'s p2m entry write `after` writes from now fails (ENOMEM), once. */
  | { kind: 'fault'; domain: number; after: number }
  /** Give the device to guest `to` (from the hardware domain) or back (from a guest). */
  | { kind: 'move'; device: number; to: number }
  /** Unplug the device, or plug it back in (hot plug, the hardware domain's) when it is not there. */
  | { kind: 'plug'; device: number }
  /**
   * What happens to the SR-IOV PF (`TracePlan.sriov`): the hardware domain's SR-IOV Control, NumVFs,
   * System Page Size and VF BAR writes (whatever VF Enable and VF MSE are), VFs assigned and
   * de-assigned, the guest that has a VF placing and decoding its BAR, deferred work, and the PF
   * unplugged.
   */
  | { kind: 'sriov'; step: SriovStep }
  /** The SR-IOV PF is plugged back in (hot plug) when it is not there. */
  | { kind: 'pfPlug' }
  /**
   * The next IOMMU context set-up of the device's requester ID (its own, or with `phantom` its
   * phantom function's) fails with `code`, once (a `fault` line's `requester`): on its hot plug
   * (`iommu_add_device`: an `iommu-add-failed` event) or its assignment (`assign_device`).
   */
  | { kind: 'iommuFault'; device: number; phantom: boolean; code: IommuFaultCode }
  /** The hardware domain sizes VF BAR `bar` (modulo the PF's): all-ones to its low register. */
  | { kind: 'vfProbe'; bar: number; vcpu: number };

/** The errors an injected IOMMU fault returns (a `fault` line's `code`). */
export type IommuFaultCode = 'ENOMEM' | 'EPERM' | 'ENODEV' | 'EBUSY';

/** A whole random trace before it is written. */
export interface TracePlan {
  /** The profile the host line names. */
  profile: Profile;
  /** Switches overriding the profile (the host line's `policy`). */
  policy: Partial<Policy>;
  /** The hardware domain's vCPUs, 1–4. */
  hardwareVcpus: number;
  /** The vCPUs of guests 1 and 2, 1–3 each. */
  guestVcpus: [number, number];
  /** The host's e820 entries. */
  e820: TraceE820Plan[];
  /** One to four devices. */
  devices: TraceDevicePlan[];
  /**
   * An SR-IOV physical function at `PF_SBDF` (0000:02:00.0), the hardware domain's, present at boot,
   * its VF BARs in a window of their own or over the devices' BARs; none when absent.
   */
  sriov?: SriovPlan | undefined;
  /** What happens, in order. */
  steps: TraceStep[];
}

/** The kinds of device and step a trace may leave out (`TracePlanOptions`, `vpci-fuzz --without`). */
export const TRACE_FEATURES: readonly TraceFeature[] = Object.freeze([
  'hidden',
  'hotplug',
  'rebar',
  'e820',
  'foreign',
  'faults',
  'sriov',
  'readonly',
  'setupfail',
  'iommufail',
]);

/** One kind of device or step a trace may leave out. */
export type TraceFeature =
  | 'hidden'
  | 'hotplug'
  | 'rebar'
  | 'e820'
  | 'foreign'
  | 'faults'
  | 'sriov'
  | 'readonly'
  | 'setupfail'
  | 'iommufail';

/**
 * What a random trace may hold. Every kind of step and device is on by default; a property that only
 * wants some of them turns the others off.
 */
export interface TracePlanOptions {
  /** The profile (default: either, chosen at random). */
  readonly profile?: Profile;
  /**
   * The rule set the trace is written against (`MachineOptions.rules`, default `xen`): each line is
   * written for the machine the lines before it built under these rules. The trace itself does not
   * name it: replay it with the same `rules`.
   */
  readonly rules?: RuleSetName;
  /** Policy switches for the host line (default: none, the profile's). */
  readonly policy?: Partial<Policy>;
  /** At most this many steps (default 60). */
  readonly maxSteps?: number;
  /** At most this many devices, 1–16 (default 4). */
  readonly maxDevices?: number;
  /** Devices hidden from dom0 (dom_xen's). Default true. */
  readonly hidden?: boolean;
  /** Hot plug and unplug (devices added after boot, `plug` steps). Default true. */
  readonly hotplug?: boolean;
  /** Resizable BARs and resizes. Default true. */
  readonly rebar?: boolean;
  /** e820 entries over BARs. Default true. */
  readonly e820?: boolean;
  /** The hardware domain writing to devices it does not own (raw hardware writes). Default true. */
  readonly foreign?: boolean;
  /** p2m faults. Default true. */
  readonly faults?: boolean;
  /** An SR-IOV physical function (in half the traces) and the steps that drive it. Default true. */
  readonly sriov?: boolean;
  /** Devices marked read-only at boot (`TraceDevicePlan.readOnly`). Default true. */
  readonly readonly?: boolean;
  /** Devices whose vPCI set-up fails (`TraceDevicePlan.setupFails`). Default true. */
  readonly setupfail?: boolean;
  /** IOMMU faults on hot plug and assignment, and phantom functions (`iommuFault` steps). Default true. */
  readonly iommufail?: boolean;
}

const MAX_DEVICES = 16;

/** The devices' arbitrary. */
function devicePlan(options: TracePlanOptions): fc.Arbitrary<TraceDevicePlan> {
  const maybe = (on: boolean | undefined, freq: number): fc.Arbitrary<boolean> =>
    on === false
      ? fc.constant(false)
      : fc.oneof({ weight: freq, arbitrary: fc.constant(false) }, fc.constant(true));
  return fc
    .record({
      sizes: fc.array(traceBarSizeLog2, { minLength: 1, maxLength: 3 }),
      msix: fc.boolean(),
      owner: fc.integer({ min: 0, max: 2 }),
      hidden: maybe(options.hidden, 5),
      rebar: maybe(options.rebar, 3),
      hotplug: maybe(options.hotplug, 4),
      readOnly: maybe(options.readonly, 12),
      setupFails: maybe(options.setupfail, 10),
      phantom: maybe(options.iommufail, 6),
    })
    .map((plan) => {
      const sized = plan.rebar
        ? { ...plan, sizes: [Math.max(20, plan.sizes[0]!), ...plan.sizes.slice(1)] }
        : plan;
      // `pci_ro_device` runs while Xen boots only: a read-only device is one present at boot.
      return plan.readOnly ? { ...sized, hotplug: false } : sized;
    });
}

function access<T extends object>(
  options: TracePlanOptions,
  rest: { [K in keyof T]: fc.Arbitrary<T[K]> },
): fc.Arbitrary<TraceAccess & T> {
  const via: fc.Arbitrary<TraceVia> =
    options.foreign === false
      ? fc.constant('owner')
      : fc.oneof({ weight: 4, arbitrary: fc.constant('owner' as const) }, fc.constant('hardware' as const));
  return fc.record({ device: fc.nat(MAX_DEVICES - 1), vcpu: fc.nat(3), via, ...rest }) as fc.Arbitrary<
    TraceAccess & T
  >;
}

/** A raw write below 0x50 at any offset (Xen drops a misaligned one), any value. */
function rawStep(options: TracePlanOptions): fc.Arbitrary<TraceStep> {
  return access(options, {
    kind: fc.constant('raw' as const),
    size: fc.constantFrom(1 as const, 2 as const, 4 as const),
    reg: fc.integer({ min: 0, max: 0x4f }),
    value: fc.constant(0),
  }).chain((s) => rawValue(s.size).map((value) => ({ ...s, reg: Math.min(s.reg, 0x50 - s.size), value })));
}

function stepPlan(options: TracePlanOptions): fc.Arbitrary<TraceStep> {
  const device = fc.nat(MAX_DEVICES - 1);
  const steps: fc.WeightedArbitrary<TraceStep>[] = [
    {
      weight: 5,
      arbitrary: access(options, { kind: fc.constant('command' as const), memory: fc.boolean() }),
    },
    {
      weight: 3,
      arbitrary: access(options, {
        kind: fc.constant('bar' as const),
        bar: fc.nat(2),
        placement: fc.constantFrom(
          'probe' as const,
          'own' as const,
          'host' as const,
          'shift' as const,
          'neighbour' as const,
          'overlap' as const,
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: access(options, {
        kind: fc.constant('msix' as const),
        enable: fc.boolean(),
        mask: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: rawStep(options) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('run' as const),
        domain: fc.nat(2),
        vcpu: fc.nat(3),
        budget: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), device, to: fc.nat(2) }) },
  ];
  if (options.faults !== false) {
    steps.push({
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('fault' as const),
        domain: fc.nat(2),
        after: fc.oneof(
          { weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }) },
          fc.integer({ min: 5, max: 40 }),
        ),
      }),
    });
  }
  if (options.rebar !== false) {
    steps.push({
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('rebar' as const),
        device,
        vcpu: fc.nat(3),
        sizeLog2: fc.integer({ min: 20, max: 23 }),
      }),
    });
  }
  if (options.hotplug !== false)
    steps.push({ weight: 1, arbitrary: fc.record({ kind: fc.constant('plug' as const), device }) });
  if (options.iommufail !== false)
    steps.push({
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('iommuFault' as const),
        device,
        phantom: fc.boolean(),
        code: fc.constantFrom('ENOMEM' as const, 'EPERM' as const, 'ENODEV' as const, 'EBUSY' as const),
      }),
    });
  if (options.sriov !== false) {
    steps.push(
      { weight: 8, arbitrary: fc.record({ kind: fc.constant('sriov' as const), step: sriovStep }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('vfProbe' as const), bar: fc.nat(1), vcpu: fc.nat(3) }),
      },
    );
    if (options.hotplug !== false)
      steps.push({ weight: 1, arbitrary: fc.constant({ kind: 'pfPlug' as const }) });
  }
  return fc.oneof(...steps);
}

/** The arbitrary of trace plans: what `arbTrace` writes traces from. */
export function arbTracePlan(options: TracePlanOptions = {}): fc.Arbitrary<TracePlan> {
  const maxDevices = options.maxDevices ?? 4;
  const maxSteps = options.maxSteps ?? 60;
  if (!Number.isInteger(maxDevices) || maxDevices < 1 || maxDevices > MAX_DEVICES)
    throw new RangeError(`maxDevices: expected an integer in 1 … ${MAX_DEVICES}, got ${maxDevices}`);
  if (!Number.isInteger(maxSteps) || maxSteps < 0)
    throw new RangeError(`maxSteps: expected a whole number, got ${maxSteps}`);
  return fc.record({
    profile:
      options.profile === undefined
        ? fc.constantFrom('xen' as const, 'hardened' as const)
        : fc.constant(options.profile),
    policy: fc.constant({ ...options.policy }),
    hardwareVcpus: fc.integer({ min: 1, max: 4 }),
    guestVcpus: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    e820:
      options.e820 === false
        ? fc.constant([])
        : fc.array(
            fc.record({
              device: fc.nat(MAX_DEVICES - 1),
              bar: fc.nat(2),
              pages: fc.integer({ min: 1, max: 4 }),
              type: fc.constantFrom(
                'reserved' as const,
                'ram' as const,
                'acpi' as const,
                'nvs' as const,
                'unusable' as const,
              ),
            }),
            { maxLength: 2 },
          ),
    devices: fc.array(devicePlan(options), { minLength: 1, maxLength: maxDevices }),
    steps: fc.array(stepPlan(options), { maxLength: maxSteps, size: 'max' }),
    sriov:
      options.sriov === false ? fc.constant(undefined) : fc.option(sriovPlan, { nil: undefined, freq: 2 }),
  });
}
