/**
 * Writes a `TracePlan` as trace lines (docs/trace-format.md), one at a time, looking at the machine
 * the lines so far built: a step names a device, and what line it becomes depends on who owns the
 * device then (a guest reaches it at its virtual address, the hardware domain at the host's), whether
 * it is still on the machine, how many vCPUs a domain has. The caller replays each line before it
 * asks for the next, so every line written is one the replayer accepts: an assignment the engine
 * refused never leaves a guest writing to a device it does not have.
 */
import { formatSbdf, type Machine, type PciDevice } from '@vpci/vpci';
import { hostSbdf } from './device.js';
import { PF_SBDF, SRIOV_POS, type SriovPlan, sriovSpec, vfBarAddress } from './sriov.js';
import type { TraceDevicePlan, TracePlan, TraceStep } from './trace-plan.js';

/** Where the MSI-X capability is in a trace's devices (the engine's hardware puts it there). */
const MSIX_CONTROL = 0x42;
/** The control register of a device's first resizable BAR (the capability at 0x100). */
const REBAR_CONTROL = 0x108;
/** Where the written BAR addresses of a guest start: 0xe0000000 plus the host address modulo 16 MiB. */
const GUEST_WINDOW = 0xe000_0000;

/** The host addresses of each device's BARs: packed in order from 0xc0000000 by natural alignment. */
export function hostBarAddresses(devices: readonly TraceDevicePlan[]): number[][] {
  let next = 0xc000_0000;
  return devices.map((plan) =>
    plan.sizes.map((log2) => {
      const size = 2 ** log2;
      next = Math.ceil(next / size) * size;
      const addr = next;
      next += size;
      return addr;
    }),
  );
}

/**
 * A device line for plan `i`: hidden (dom_xen's) or marked read-only as asked (both only where the
 * device is present at boot), written as a config-space image when its vPCI set-up is to fail.
 */
function deviceLine(
  plan: TraceDevicePlan,
  i: number,
  addrs: readonly number[],
  hidden: boolean,
  readOnly = false,
): string {
  if (plan.setupFails === true) return failingDeviceLine(plan, i, addrs, hidden, readOnly);
  const bars = plan.sizes
    .map((log2, b) => `{"type":"mem32","size":${2 ** log2},"addr":${addrs[b]}}`)
    .join(',');
  const msix =
    plan.msix && plan.sizes[0]! >= 5
      ? ',"msix":{"entries":1,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":16}}'
      : '';
  const rebar = plan.rebar ? ',"rebar":[{"bar":0,"sizes":[1048576,2097152,4194304,8388608]}]' : '';
  return `{"event":"device","sbdf":"${hostSbdf(i)}","bars":[${bars}]${msix}${rebar}${marks(plan, hidden, readOnly)}}`;
}

/**
 * The device line's fields after its BARs: phantom functions (a description's only: an image would
 * hold them in its PCI Express capability), hidden or read-only.
 */
function marks(plan: TraceDevicePlan, hidden: boolean, readOnly: boolean): string {
  const phantom = plan.phantom === true && plan.setupFails !== true ? ',"phantomFunctions":1' : '';
  // `readOnly` implies hidden (pci_ro_device hands the device to dom_xen).
  return `${phantom}${readOnly ? ',"readOnly":true' : hidden ? ',"hidden":true' : ''}`;
}

/**
 * The device line of a plan whose vPCI set-up fails (`TraceDevicePlan.setupFails`): a config-space
 * image (`setupFailingImage`) with the plan's BARs at `addrs`.
 */
function failingDeviceLine(
  plan: TraceDevicePlan,
  i: number,
  addrs: readonly number[],
  hidden: boolean,
  readOnly: boolean,
): string {
  const image = setupFailingImage(addrs);
  const sizes = plan.sizes.map((log2) => `"0x${(2 ** log2).toString(16)}"`).join(',');
  return `{"event":"device","sbdf":"${hostSbdf(i)}","image":${JSON.stringify(image)},"sizes":{"bars":[${sizes}]}${marks(plan, hidden, readOnly)}}`;
}

/**
 * The config-space image (`lspci -xxx` lines, a device line's `image`) of a device whose vPCI set-up
 * fails: 32-bit memory BARs at `addrs` (slots 0, 1, …; their sizes go in the line's `sizes.bars`),
 * memory decoding on, and an MSI-X capability at 0x40 that Xen cannot set up or hide: the capability
 * pointer (0x34) reads 0x42, which `pci_find_next_cap_ttl` follows to 0x40 (it masks the low bits),
 * and the table's BIR is 6, no BAR (`init_msix`: ENODEV); `vpci_capability_hide` then finds no
 * pointer holding 0x40, so `vpci_assign_device` fails after `init_header` has mapped (at boot) or
 * deferred a map (hot plug).
 */
export function setupFailingImage(addrs: readonly number[]): string[] {
  if (addrs.length > 6) throw new RangeError(`addrs: expected at most 6 BAR addresses, got ${addrs.length}`);
  const bytes = new Uint8Array(256);
  const put = (offset: number, size: number, value: number): void => {
    for (let k = 0; k < size; k++) bytes[offset + k] = (value >>> (8 * k)) & 0xff;
  };
  put(0x00, 2, 0x1234); // vendor
  put(0x02, 2, 0x0001); // device
  put(0x04, 2, 0x0006); // command: memory decoding and bus mastering on
  put(0x06, 2, 0x0010); // status: a capability list
  for (let b = 0; b < addrs.length; b++) put(0x10 + 4 * b, 4, addrs[b]!);
  put(0x34, 1, 0x42); // the capability pointer, its low bits set
  put(0x40, 1, 0x11); // MSI-X, the last capability
  put(0x44, 4, 6); // table: BIR 6, offset 0
  put(0x48, 4, 0x800); // PBA: BIR 0, offset 0x800
  const image: string[] = [];
  for (let row = 0; row < 16; row++) {
    const hex = [...bytes.subarray(row * 16, row * 16 + 16)].map((x) => x.toString(16).padStart(2, '0'));
    image.push(`${(row * 16).toString(16).padStart(2, '0')}: ${hex.join(' ')}`);
  }
  return image;
}

/** The SR-IOV PF's device line: `sriovSpec`'s description, sizes and addresses in hexadecimal. */
function pfLine(plan: SriovPlan): string {
  return JSON.stringify({ event: 'device', ...sriovSpec(plan) }, (_key, value) =>
    typeof value === 'bigint' ? `0x${value.toString(16)}` : value,
  );
}

/** The host line: profile, policy, dom0's vCPUs, and the e820 entries that do not overlap earlier ones. */
function hostLine(plan: TracePlan, addrs: readonly number[][]): string {
  const kept: [number, number, string][] = [];
  for (const entry of plan.e820) {
    const d = entry.device % plan.devices.length;
    const list = addrs[d]!;
    const start = Math.floor(list[entry.bar % list.length]! / 0x1000) * 0x1000;
    const end = start + entry.pages * 0x1000;
    if (kept.some(([s, e]) => start < e && s < end)) continue;
    kept.push([start, end, entry.type]);
  }
  const e820 =
    kept.length === 0
      ? ''
      : `,"e820":[${kept.map(([s, e, type]) => `{"addr":"0x${s.toString(16)}","size":"0x${(e - s).toString(16)}","type":"${type}"}`).join(',')}]`;
  const policy = Object.keys(plan.policy).length === 0 ? '' : `,"policy":${JSON.stringify(plan.policy)}`;
  return `{"event":"host","profile":"${plan.profile}","hardwareVcpus":${plan.hardwareVcpus}${e820}${policy}}`;
}

/**
 * The plan's lines. `machine` gives the machine the lines yielded so far built (the caller replays each
 * line before asking for the next). Steps that cannot apply (an access to an unplugged device) yield
 * nothing; `skipped` counts them.
 */
export function* traceLines(
  plan: TracePlan,
  machine: () => Machine | undefined,
  counts: { skipped: number } = { skipped: 0 },
): Generator<string, void, undefined> {
  const addrs = hostBarAddresses(plan.devices);
  yield hostLine(plan, addrs);
  for (let i = 0; i < plan.devices.length; i++) {
    const device = plan.devices[i]!;
    if (!device.hotplug) yield deviceLine(device, i, addrs[i]!, device.hidden, device.readOnly);
  }
  if (plan.sriov !== undefined) yield pfLine(plan.sriov);
  yield '{"event":"boot"}';
  yield `{"event":"domain","id":1,"vcpus":${plan.guestVcpus[0]}}`;
  yield `{"event":"domain","id":2,"vcpus":${plan.guestVcpus[1]}}`;
  for (let i = 0; i < plan.devices.length; i++) {
    const device = plan.devices[i]!;
    if (device.hotplug) yield deviceLine(device, i, addrs[i]!, device.hidden);
    if (device.owner !== 0 && !device.hidden && device.readOnly !== true)
      yield `{"event":"assign","sbdf":"${hostSbdf(i)}","domain":${device.owner}}`;
  }
  for (const step of plan.steps) {
    const lines =
      step.kind === 'sriov' || step.kind === 'vfProbe' || step.kind === 'pfPlug'
        ? sriovLines(plan, step, machine()!)
        : stepLine(plan, addrs, step, machine()!);
    if (lines === undefined) counts.skipped++;
    else if (typeof lines === 'string') yield lines;
    else yield* lines;
  }
}

/** The vCPU `vcpu` (modulo its vCPUs) of domain `domain`, as a trace names it. */
function vcpuName(plan: TracePlan, domain: number, vcpu: number): string {
  const count = domain === 0 ? plan.hardwareVcpus : plan.guestVcpus[domain - 1]!;
  return `d${domain}v${vcpu % count}`;
}

/** The line of one step, or undefined when it cannot apply. */
function stepLine(
  plan: TracePlan,
  addrs: readonly number[][],
  step: Exclude<TraceStep, { kind: 'sriov' | 'vfProbe' | 'pfPlug' }>,
  machine: Machine,
): string | undefined {
  const n = plan.devices.length;
  switch (step.kind) {
    case 'run': {
      const budget = step.budget === undefined ? '' : `,"budget":${step.budget}`;
      return `{"event":"run","vcpu":"${vcpuName(plan, step.domain, step.vcpu)}"${budget}}`;
    }
    case 'fault':
      return `{"event":"fault","domain":${step.domain},"after":${step.after}}`;
    case 'iommuFault': {
      // Function 4 is the phantom function of a device with one (`phantom_stride` 4).
      const own = hostSbdf(step.device % n);
      const requester = step.phantom ? `${own.slice(0, -1)}4` : own;
      return `{"event":"fault","requester":"${requester}","code":"${step.code}"}`;
    }
    case 'plug': {
      const i = step.device % n;
      if (machine.findDevice(hostSbdf(i)) !== undefined) return `{"event":"unplug","sbdf":"${hostSbdf(i)}"}`;
      return deviceLine(plan.devices[i]!, i, addrs[i]!, false);
    }
    case 'move': {
      const i = step.device % n;
      const owner = machine.findDevice(hostSbdf(i))?.domain;
      if (owner === undefined) return undefined;
      // A device leaving a guest goes to dom_io (Xen's default quarantine); from there a move to
      // the hardware domain is `xl pci-assignable-remove` (a deassign), any other an assignment.
      if (owner.kind === 'guest' || (owner.kind === 'dom_io' && step.to === 0))
        return `{"event":"deassign","sbdf":"${hostSbdf(i)}"}`;
      if (step.to === 0) return undefined;
      return `{"event":"assign","sbdf":"${hostSbdf(i)}","domain":${step.to}}`;
    }
    case 'rebar': {
      const i = step.device % n;
      if (machine.findDevice(hostSbdf(i)) === undefined) return undefined;
      return write(vcpuName(plan, 0, step.vcpu), hostSbdf(i), REBAR_CONTROL, 4, (step.sizeLog2 - 20) << 8);
    }
  }
  const i = step.device % n;
  const pdev = machine.findDevice(hostSbdf(i));
  if (pdev === undefined) return undefined;
  const owner = pdev.domain;
  const guestSbdf = pdev.vpci?.guestSbdf;
  const asGuest = step.via === 'owner' && owner?.kind === 'guest' && guestSbdf !== undefined;
  const vcpu = asGuest ? vcpuName(plan, owner.id, step.vcpu) : vcpuName(plan, 0, step.vcpu);
  const sbdf = asGuest ? formatSbdf(guestSbdf) : hostSbdf(i);
  switch (step.kind) {
    case 'command':
      return write(vcpu, sbdf, 0x04, 2, step.memory ? 0x0006 : 0x0004);
    case 'msix':
      return write(vcpu, sbdf, MSIX_CONTROL, 2, (step.enable ? 0x8000 : 0) | (step.mask ? 0x4000 : 0));
    case 'raw':
      return write(vcpu, sbdf, step.reg, step.size, step.value);
    case 'bar': {
      const b = step.bar % addrs[i]!.length;
      const host = addrs[i]![b]!;
      const next = addrs[(i + 1) % n]![0]!;
      const where = {
        probe: 0xffff_ffff,
        own: GUEST_WINDOW + (host % 0x100_0000),
        host,
        shift: host + 0x1000,
        neighbour: next - (next % 0x1000) + (host % 0x1000),
        // Where the next device's first BAR is, as the accessing domain addresses it.
        overlap: asGuest ? GUEST_WINDOW + (next % 0x100_0000) : next,
      }[step.placement];
      return write(vcpu, sbdf, 0x10 + 4 * b, 4, where >>> 0);
    }
  }
}

/** VF `n` of the PF, modulo the VFs it has now; undefined when it has none (VF Enable off, or unplugged). */
function vfOf(machine: Machine, n: number): PciDevice | undefined {
  const pf = machine.findDevice(PF_SBDF);
  if (pf === undefined || pf.virtfns.length === 0) return undefined;
  return pf.virtfns[n % pf.virtfns.length];
}

/**
 * The lines of an SR-IOV step (the same steps test/sriov.property.test.ts applies to a machine), or
 * undefined when it cannot apply: no PF in the plan, the PF unplugged, no VF there, a VF not where
 * the step needs it, the PF plugged in already (`pfPlug`). A 64-bit VF BAR's placement is two lines (low, then high register), a guest's
 * access to its VF two or three (its BAR, then its command register).
 */
function sriovLines(
  plan: TracePlan,
  step: Extract<TraceStep, { kind: 'sriov' | 'vfProbe' | 'pfPlug' }>,
  machine: Machine,
): string | string[] | undefined {
  const sriov = plan.sriov;
  if (sriov === undefined) return undefined;
  const pf = machine.findDevice(PF_SBDF);
  if (step.kind === 'pfPlug') return pf === undefined ? pfLine(sriov) : undefined;
  if (step.kind === 'vfProbe') {
    if (pf === undefined) return undefined;
    const bar = sriov.bars[step.bar % sriov.bars.length]!;
    return write(vcpuName(plan, 0, step.vcpu), PF_SBDF, SRIOV_POS + 0x24 + 4 * bar.slot, 4, 0xffff_ffff);
  }
  const s = step.step;
  switch (s.kind) {
    case 'control':
      if (pf === undefined) return undefined;
      return write(vcpuName(plan, 0, s.vcpu), PF_SBDF, SRIOV_POS + 8, 2, (s.vfe ? 1 : 0) | (s.mse ? 8 : 0));
    case 'numVfs':
      if (pf === undefined) return undefined;
      return write('d0v0', PF_SBDF, SRIOV_POS + 0x10, 2, Math.round(s.fraction * sriov.totalVfs));
    case 'pageSize':
      if (pf === undefined) return undefined;
      return write('d0v0', PF_SBDF, SRIOV_POS + 0x20, 4, 1 << s.bit);
    case 'vfBar': {
      if (pf === undefined) return undefined;
      const bar = sriov.bars[s.bar % sriov.bars.length]!;
      const addr = vfBarAddress(sriov, bar, bar.type === 'mem64' ? 'own' : s.placement, s.shift);
      const reg = SRIOV_POS + 0x24 + 4 * bar.slot;
      const low = write('d0v0', PF_SBDF, reg, 4, Number(addr & 0xffff_ffffn));
      return bar.type === 'mem64' ? [low, write('d0v0', PF_SBDF, reg + 4, 4, Number(addr >> 32n))] : low;
    }
    case 'assign': {
      const vf = vfOf(machine, s.vf);
      if (vf?.domain?.kind !== 'hardware' && vf?.domain?.kind !== 'dom_io') return undefined;
      return `{"event":"assign","sbdf":"${formatSbdf(vf.sbdf)}","domain":${s.to}}`;
    }
    case 'deassign': {
      const vf = vfOf(machine, s.vf);
      if (vf?.domain?.kind !== 'guest' && vf?.domain?.kind !== 'dom_io') return undefined;
      return `{"event":"deassign","sbdf":"${formatSbdf(vf.sbdf)}"}`;
    }
    case 'guest': {
      const vf = vfOf(machine, s.vf);
      const guestSbdf = vf?.vpci?.guestSbdf;
      if (vf?.domain?.kind !== 'guest' || guestSbdf === undefined || vf.domain.crashed) return undefined;
      const vcpu = vcpuName(plan, vf.domain.id, 0);
      const sbdf = formatSbdf(guestSbdf);
      const lines: string[] = [];
      const bar = vf.vpci!.bars.find((b) => b.mappable);
      if (bar !== undefined) {
        // A slot of its own in the guest's space (16 MiB apart: any VF BAR here fits), or slot 0 for
        // every VF: their BARs then overlap in the guest.
        lines.push(write(vcpu, sbdf, 0x10 + 4 * bar.index, 4, 0xe000_0000 + s.slot * 0x100_0000));
        if (bar.type === 'mem64lo') lines.push(write(vcpu, sbdf, 0x14 + 4 * bar.index, 4, 0));
      }
      lines.push(write(vcpu, sbdf, 0x04, 2, s.memory ? 0x0006 : 0x0004));
      return lines;
    }
    case 'run':
      return `{"event":"run","vcpu":"${vcpuName(plan, s.domain, s.vcpu)}","budget":${s.budget}}`;
    case 'unplug':
      return pf === undefined ? undefined : `{"event":"unplug","sbdf":"${PF_SBDF}"}`;
  }
}

function write(vcpu: string, sbdf: string, reg: number, size: number, value: number): string {
  return `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":${reg},"size":${size},"value":${value}}`;
}
