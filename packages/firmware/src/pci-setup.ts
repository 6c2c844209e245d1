/**
 * hvmloader's `pci_setup` end to end through a `ConfigBus`: scan and size (phase 1), size the low hole
 * (2), relocate RAM out of it (2b, as data), place every BAR with the chosen policy (3), then turn on
 * decoding and bus mastering, last, for every function. The result holds every BAR's placement, the
 * windows the MTRRs are built from and the accesses made, so a run on a `Machine` is also a trace.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { type Machine, PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MEMORY, type Vcpu } from '@vpci/vpci';
import { type Allocation, allocate } from './allocate.js';
import {
  type ConfigAccess,
  type ConfigBus,
  devfnName,
  type HostBarAddress,
  type MachineBusOptions,
  machineBus,
} from './bus.js';
import {
  GB4,
  HVM_BELOW_4G_MMIO_START,
  HVMLOADER_DEFAULT_PHYS_BITS,
  PAGE_BYTES,
  PCI_IO_BASE,
  PCI_IO_END,
  RESERVED_MEMBASE,
  SUPERPAGE_BYTES,
} from './constants.js';
import { type LowHole, type MemoryRegion, sizeLowHole } from './hole.js';
import { checkPolicy, mmioDemand, type PlacementPolicyName, placementUnits } from './policy.js';
import { type RamLayout, relocateRam } from './relocate.js';
import { type BarKind, dev, prillx, type ScannedBar, type ScannedDevice, scanBus } from './scan.js';

/** hvmloader's inputs (xenstore keys, `hvm_info`, the guest memory map, CPUID) and the policy. */
export interface PciSetupOptions {
  /** Placement policy (default `hvmloader`). */
  readonly policy?: PlacementPolicyName;
  /** `hvmloader/pci/xen-platform-pci-bar-uc` (xl `xen_platform_pci_bar_uc`); default true, Xen's. */
  readonly xenpciBarUc?: boolean;
  /** `hvmloader/allow-memory-relocate`; default true. */
  readonly allowMemoryRelocate?: boolean;
  /** `platform/mmio_hole_size` in bytes; default 0n (not set). */
  readonly mmioHoleSize?: bigint;
  /** `hvm_info->low_mem_pgend`; default 0xF0000 (RAM up to 0xF000_0000: seed 000's 4 GiB guest). */
  readonly lowMemPgend?: number;
  /** `hvm_info->high_mem_pgend`; default 0x110000 (the rest of that guest's RAM above 4 GiB). */
  readonly highMemPgend?: number;
  /** CPUID physical address width (the high window ends at 2^bits); default 36, hvmloader's fallback. */
  readonly physAddrBits?: number;
  /** E820_RESERVED regions of the guest memory map (RMRRs); default none. */
  readonly reserved?: readonly MemoryRegion[];
  /** Host addresses for the `congruent` policy; default: what the bus knows. */
  readonly hostAddresses?: readonly HostBarAddress[];
}

/** Where a BAR went: one of the three windows, or `xenpci` (top of the low hole, during the scan). */
export type PlacementWindow = 'low' | 'high' | 'io' | 'xenpci';

/**
 * How a placed memory BAR's guest address relates to its host address: `superpage` (equal modulo
 * 2 MiB, so a 2 MiB mapping can hold it), `page` (only the offset in the 4 KiB page is equal, which
 * vPCI needs to map it at all), `none` (vPCI refuses it: offset mismatch).
 */
export type Congruence = 'superpage' | 'page' | 'none';

/** One BAR (or ROM) and where it went. */
export interface BarPlacement {
  /** The function on bus 0, as `device << 3 | function`. */
  readonly devfn: number;
  /** `00:dd.f`, as the vCPU sees it. */
  readonly sbdf: string;
  /** 0–5, or 6 for the ROM. */
  readonly index: number;
  /** Config offset of its (low) register: 0x10 + 4·index, or 0x30 for the ROM. */
  readonly reg: number;
  /** I/O, 32- or 64-bit memory, or the ROM. */
  readonly kind: BarKind;
  /** Size in bytes. */
  readonly size: bigint;
  /** Prefetchable memory. */
  readonly prefetchable: boolean;
  /** The window the policy placed it in. */
  readonly window: PlacementWindow;
  /** The address given; undefined: "no space", the BAR was left unprogrammed. */
  readonly addr: bigint | undefined;
  /**
   * The address the BAR decodes afterwards: `addr`, except that hvmloader writes a 64-bit BAR's upper
   * dword only when it places it high, so one placed low keeps the upper dword it had.
   */
  readonly decodes: bigint | undefined;
  /** The host address behind it, when known. */
  readonly hostAddr: bigint | undefined;
  /** `decodes` against `hostAddr` (memory BARs with both). */
  readonly congruence: Congruence | undefined;
}

/** The outcome of `pciSetup`. */
export interface PciSetupResult {
  /** The placement policy that ran. */
  readonly policy: PlacementPolicyName;
  /** The vCPU the accesses were made from. */
  readonly vcpu: string;
  /** The functions found on bus 0, in scan order. */
  readonly devices: readonly ScannedDevice[];
  /** xenpci BARs placed by the scan first, then every BAR in placement order. */
  readonly bars: readonly BarPlacement[];
  /** `pci_mem_start`: the low hole's start. */
  readonly pciMemStart: bigint;
  /** `pci_mem_end`: its end (0xFC00_0000, or the xenpci BAR's address with the special case). */
  readonly pciMemEnd: bigint;
  /** `pci_hi_mem_start`: the high window's start (0n: unused). */
  readonly pciHiMemStart: bigint;
  /** `pci_hi_mem_end`: its end, aligned like its start (0n: unused). */
  readonly pciHiMemEnd: bigint;
  /** `mmio_total` after the scan (the policy's room). */
  readonly mmioTotal: bigint;
  /** `bar64_relocate` after the hole was sized. */
  readonly bar64Relocate: boolean;
  /** RAM after relocation (`low_mem_pgend`, `high_mem_pgend`, the moves). */
  readonly ram: RamLayout;
  /** Congruent: `superpage` when the 2 MiB targets were kept, `page` when that plan lost a BAR. */
  readonly plan: 'superpage' | 'page' | undefined;
  /** The final command register writes (decoding and bus mastering), by devfn. */
  readonly commands: readonly { readonly devfn: number; readonly value: number }[];
  /** Every config-space access made, in order. */
  readonly accesses: readonly ConfigAccess[];
  /** hvmloader's messages, in its words. */
  readonly log: readonly string[];
}

/** Runs hvmloader's PCI set-up through `bus`; see the module comment. */
export function pciSetup(bus: ConfigBus, options: PciSetupOptions = {}): PciSetupResult {
  const o = resolveOptions(options);
  const log: string[] = [
    `Relocating guest memory for lowmem MMIO space ${o.allowMemoryRelocate ? 'enabled' : 'disabled'}`,
    `Xen platform PCI device BAR MTRR cache attribute set to ${o.xenpciBarUc ? 'UC' : 'WB'}`,
  ];
  const scan = scanBus(bus, {
    xenpciBarUc: o.xenpciBarUc,
    pciMemStart: HVM_BELOW_4G_MMIO_START,
    pciMemEnd: RESERVED_MEMBASE,
  });
  log.push(...scan.log);
  const given = new Map(o.hostAddresses.map((h) => [`${h.devfn}:${h.index}`, h.addr]));
  const hostOf = (bar: ScannedBar): bigint | undefined =>
    given.get(`${bar.devfn}:${bar.index}`) ?? bus.hostAddress(bar.devfn, bar.index);

  const plan = (
    targets: boolean,
  ): { hole: LowHole; ram: RamLayout; alloc: Allocation; mmioTotal: bigint } => {
    const units = placementUnits(o.policy, scan.bars, hostOf, targets);
    const demand = mmioDemand(units);
    const hole = sizeLowHole({ ...demand, pciMemEnd: scan.pciMemEnd, ...o });
    const ram = relocateRam(hole.pciMemStart, o.lowMemPgend, o.highMemPgend);
    const highBase = BigInt(ram.highMemPgend) << 12n;
    const alloc = allocate({
      units,
      mmioTotal: demand.mmioTotal,
      bar64Relocate: hole.bar64Relocate,
      low: { base: hole.pciMemStart, max: scan.pciMemEnd },
      high: { base: highBase < GB4 ? GB4 : highBase, max: 1n << BigInt(o.physAddrBits) },
      io: { base: PCI_IO_BASE, max: PCI_IO_END },
      reserved: o.reserved,
      method: o.policy === 'congruent' && targets ? 'firstFit' : 'bump',
      pageOwnership: o.policy === 'pageAligned',
    });
    return { hole, ram, alloc, mmioTotal: demand.mmioTotal };
  };
  let chosen = plan(true);
  let planName: 'superpage' | 'page' | undefined;
  if (o.policy === 'congruent') {
    // The 2 MiB targets fragment the hole; keep them only if no BAR the page-only plan places is lost.
    const pageOnly = plan(false);
    const placed = (p: typeof chosen): Set<string> =>
      new Set(
        p.alloc.placements
          .filter((u) => u.addr !== undefined)
          .flatMap((u) => u.unit.members.map((m) => `${m.bar.devfn}:${m.bar.index}`)),
      );
    const withTargets = placed(chosen);
    const lost = [...placed(pageOnly)].some((key) => !withTargets.has(key));
    planName = lost ? 'page' : 'superpage';
    if (lost) chosen = pageOnly;
  }
  const { hole, ram, alloc } = chosen;
  log.push(...hole.log);
  for (const move of ram.moves) {
    log.push(
      `Relocating 0x${move.count.toString(16)} pages from ${prillx(BigInt(move.from) << 12n)} to ${prillx(BigInt(move.to) << 12n)} for lowmem MMIO hole`,
    );
  }
  const highRam = BigInt(ram.highMemPgend) << 12n;
  if (highRam < GB4 && ram.highMemPgend !== 0)
    log.push(
      `WARNING: hvm_info->high_mem_pgend ${ram.highMemPgend.toString(16)} does not point into high memory!`,
    );
  log.push(
    `${ram.highMemPgend !== 0 ? '' : 'No '}RAM in high memory; setting high_mem resource base to ${prillx(highRam < GB4 ? GB4 : highRam)}`,
  );

  const decode = [...scan.decode];
  const bars: BarPlacement[] = scan.xenpci.map(({ bar, addr }) =>
    barPlacement(bar, 'xenpci', addr, addr, hostOf(bar)),
  );
  let allocLog = 0;
  for (const { unit, window, addr } of alloc.placements) {
    for (const { bar, offset } of unit.members) {
      let data = bus.read(bar.devfn, bar.reg, 4);
      if (addr === undefined) {
        log.push(alloc.log[allocLog++]!);
        bars.push(barPlacement(bar, window, undefined, undefined, hostOf(bar)));
        continue;
      }
      const base = addr + offset;
      const mask = unit.memory ? 0xfffffff0 : 0xfffffffc;
      data = ((data & ~mask) | Number(base & 0xffff_ffffn)) >>> 0;
      const upper = Number(base >> 32n);
      bus.write(bar.devfn, bar.reg, 4, data);
      // hvmloader writes the upper dword only for a BAR it put high; the other policies always do.
      const writeUpper = bar.is64 && (window === 'high' || o.policy !== 'hvmloader');
      if (writeUpper) bus.write(bar.devfn, bar.reg + 4, 4, upper);
      log.push(
        `pci dev ${dev(bar.devfn)} bar ${bar.reg.toString(16).padStart(2, '0')} size ${prillx(bar.size)}: ${upper.toString(16)}${data.toString(16).padStart(8, '0')}`,
      );
      const decodes =
        bar.is64 && !writeUpper ? (BigInt(bar.originalUpper) << 32n) | (base & 0xffff_ffffn) : base;
      bars.push(barPlacement(bar, window, base, decodes, hostOf(bar)));
      decode[bar.devfn]! |= bar.kind === 'rom' || unit.memory ? PCI_COMMAND_MEMORY : PCI_COMMAND_IO;
    }
  }
  // VGA registers are I/O ports: the primary VGA decodes I/O even without an I/O BAR.
  if (scan.vgaDevfn !== undefined) decode[scan.vgaDevfn]! |= PCI_COMMAND_IO;

  // Decoding last, once every BAR holds its final address.
  const commands: { devfn: number; value: number }[] = [];
  for (let devfn = 0; devfn < 256; devfn++) {
    if (decode[devfn] === 0) continue;
    const value = (bus.read(devfn, PCI_COMMAND, 2) | decode[devfn]!) & 0xffff;
    bus.write(devfn, PCI_COMMAND, 2, value);
    commands.push({ devfn, value });
  }
  return {
    policy: o.policy,
    vcpu: bus.vcpu,
    devices: scan.devices,
    bars,
    pciMemStart: hole.pciMemStart,
    pciMemEnd: scan.pciMemEnd,
    pciHiMemStart: alloc.pciHiMemStart,
    pciHiMemEnd: alloc.pciHiMemEnd,
    mmioTotal: chosen.mmioTotal,
    bar64Relocate: hole.bar64Relocate,
    ram,
    plan: planName,
    commands,
    accesses: bus.accesses,
    log,
  };
}

/**
 * `pciSetup` on `machine` from `vcpu` (dom0's or a guest's; see `machineBus` for what it reaches),
 * with the deferred work of the last command write done before it returns.
 */
export function placeBars(
  machine: Machine,
  vcpu: Vcpu,
  options: PciSetupOptions & { readonly bus?: MachineBusOptions } = {},
): PciSetupResult {
  const result = pciSetup(machineBus(machine, vcpu, options.bus ?? {}), options);
  // The vCPU goes on running firmware code only once the last decoding change is mapped.
  if (vcpu.pending !== undefined) machine.finishPending(vcpu);
  return result;
}

/** `decodes` against `host`: equal modulo 2 MiB, equal in the page offset only, or neither. */
export function congruenceOf(guest: bigint, host: bigint): Congruence {
  if (guest % SUPERPAGE_BYTES === host % SUPERPAGE_BYTES) return 'superpage';
  return guest % PAGE_BYTES === host % PAGE_BYTES ? 'page' : 'none';
}

// ---- internals -------------------------------------------------------------------------------

function barPlacement(
  bar: ScannedBar,
  window: PlacementWindow,
  addr: bigint | undefined,
  decodes: bigint | undefined,
  hostAddr: bigint | undefined,
): BarPlacement {
  const memory = bar.kind !== 'io';
  return {
    devfn: bar.devfn,
    sbdf: devfnName(bar.devfn),
    index: bar.index,
    reg: bar.reg,
    kind: bar.kind,
    size: bar.size,
    prefetchable: bar.prefetchable,
    window,
    addr,
    decodes,
    hostAddr,
    congruence:
      memory && decodes !== undefined && hostAddr !== undefined ? congruenceOf(decodes, hostAddr) : undefined,
  };
}

interface ResolvedOptions {
  readonly policy: PlacementPolicyName;
  readonly xenpciBarUc: boolean;
  readonly allowMemoryRelocate: boolean;
  readonly mmioHoleSize: bigint;
  readonly lowMemPgend: number;
  readonly highMemPgend: number;
  readonly physAddrBits: number;
  readonly reserved: readonly MemoryRegion[];
  readonly hostAddresses: readonly HostBarAddress[];
}

function resolveOptions(options: PciSetupOptions): ResolvedOptions {
  const policy = options.policy ?? 'hvmloader';
  checkPolicy(policy);
  const bool = (name: string, value: unknown): boolean => {
    if (typeof value !== 'boolean') throw new InvalidArgumentError(name, value, 'true or false');
    return value;
  };
  const pages = (name: string, value: unknown, max: number): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
      throw new InvalidArgumentError(name, value, `a page number in 0 … 0x${max.toString(16)}`);
    return value;
  };
  const mmioHoleSize = options.mmioHoleSize ?? 0n;
  if (typeof mmioHoleSize !== 'bigint' || mmioHoleSize < 0n)
    throw new InvalidArgumentError('mmioHoleSize', mmioHoleSize, 'a byte count (bigint >= 0n; 0n: not set)');
  const physAddrBits = options.physAddrBits ?? HVMLOADER_DEFAULT_PHYS_BITS;
  if (!Number.isInteger(physAddrBits) || physAddrBits < 32 || physAddrBits > 52)
    throw new InvalidArgumentError('physAddrBits', physAddrBits, 'an integer in 32 … 52');
  const reserved = options.reserved ?? [];
  reserved.forEach((r, i) => {
    if (typeof r?.addr !== 'bigint' || typeof r.size !== 'bigint' || r.addr < 0n || r.size <= 0n)
      throw new InvalidArgumentError(`reserved[${i}]`, r, 'a region { addr, size } (bigints, size > 0n)');
  });
  const hostAddresses = options.hostAddresses ?? [];
  hostAddresses.forEach((h, i) => {
    if (typeof h?.addr !== 'bigint' || !Number.isInteger(h.devfn) || !Number.isInteger(h.index))
      throw new InvalidArgumentError(`hostAddresses[${i}]`, h, '{ devfn, index, addr } (addr a bigint)');
  });
  const lowMemPgend = pages('lowMemPgend', options.lowMemPgend ?? 0xf0000, 0x100000);
  const highMemPgend = pages('highMemPgend', options.highMemPgend ?? 0x110000, 2 ** 40);
  return {
    policy,
    xenpciBarUc: bool('xenpciBarUc', options.xenpciBarUc ?? true),
    allowMemoryRelocate: bool('allowMemoryRelocate', options.allowMemoryRelocate ?? true),
    mmioHoleSize,
    lowMemPgend,
    highMemPgend,
    physAddrBits,
    reserved,
    hostAddresses,
  };
}
