/**
 * The replay report as data (docs/trace-format.md, "The report"): devices with their BARs, what is
 * mapped and the holes with their reasons, each domain's p2m as extents, the events, the violations
 * and the assertions. It is the `--json` output and what the text report and the pictures are drawn
 * from. Deterministic: the same trace gives the same document; addresses, sizes and frames are `0x…`
 * strings, counts are numbers.
 */
import { type Gfn, MAX_FRAME, type MmioCost } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import {
  type Bar,
  describeEvent,
  describeGuestVpci,
  describeViolation,
  formatSbdf,
  type Machine,
  type MmioPath,
  type MsiState,
  type MsixState,
  mappingDomain,
  msixBir,
  msixGuestFrames,
  msixSize,
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_DEVICE_ID,
  PCI_VENDOR_ID,
  type PciDevice,
  POLICY_SWITCHES,
  type RangesetOps,
  reportE820Frames,
  type Violation,
  type VpciEvent,
} from '@vpci/vpci';
import type { ReportCompare } from './compare-section.js';
import { hex } from './fields.js';
import type { ReportQemu } from './qemu-report.js';
import type { Replayer } from './replayer.js';
import { type ReportSriov, reportSriov, type SriovLinks, sriovLinks } from './sriov-report.js';

/** Format name and version of the report document. */
export const REPORT_FORMAT = 'vpci-replay-report/1';

/** Why a guest frame of an enabled BAR is not mapped to that BAR's machine frame. */
export type HoleReason =
  /** An MSI-X table page (kept unmapped so Xen traps accesses). */
  | 'msix-table'
  /** An MSI-X PBA page. */
  | 'msix-pba'
  /** Covered by the host memory map (Xen's `pci_sanitize_bar_memory`). */
  | 'e820'
  /** Left out by `refuseSubpageSharing`: the host page holds another domain's BAR. */
  | 'shared-page'
  /** Mapped for another BAR (a page several BARs share follows the highest slot, or another device). */
  | 'other-bar'
  /** Nothing explains it (an invariant violation says more). */
  | 'unmapped';

/** A run of guest frames of an enabled BAR that is not mapped to the BAR's machine frames. */
export interface ReportHole {
  /** First guest frame, hexadecimal. */
  readonly gfn: string;
  /** Frames in the run. */
  readonly count: number;
  /** Why the frames are not mapped. */
  readonly reason: HoleReason;
}

/** One implemented BAR or ROM of a device. */
export interface ReportBar {
  /** BAR slot (the ROM's slot for the ROM). */
  readonly index: number;
  /** I/O, 32- or 64-bit memory, or the expansion ROM. */
  readonly type: 'io' | 'mem32' | 'mem64' | 'rom';
  /** Host address, hexadecimal. */
  readonly addr: string;
  /** The owner's view; null for an I/O BAR of a guest (guests get no I/O BARs). */
  readonly guestAddr: string | null;
  /** Size in bytes, hexadecimal. */
  readonly size: string;
  /** Prefetchable memory. */
  readonly prefetchable: boolean;
  /** Mapped in the owner's p2m (Xen's `enabled`). */
  readonly enabled: boolean;
  /** Guest frames `[first, last]` and the machine frames they correspond to. */
  readonly gfns: readonly [string, string] | null;
  /** Machine frames `[first, last]` of the BAR; null where `gfns` is null. */
  readonly mfns: readonly [string, string] | null;
  /** Frames of an enabled BAR not mapped to its machine frames, with the reason. */
  readonly holes: readonly ReportHole[];
  /** Other devices' BARs in the same host pages: `"<sbdf> BAR<n>"`. */
  readonly sharesPageWith: readonly string[];
}

/** A device's MSI capability as vPCI emulates it (msi.c): the values the owner reads. */
export interface ReportMsi {
  /** Vectors the device supports (Multiple Message Capable). */
  readonly maxVectors: number;
  /** Vectors enabled (Multiple Message Enable). */
  readonly vectors: number;
  /** MSI is enabled (Xen enabled it on the device). */
  readonly enabled: boolean;
  /** 64-bit Message Address, hexadecimal. */
  readonly address: string;
  /** Message Data, hexadecimal. */
  readonly data: string;
  /** Mask Bits, hexadecimal; null without per-vector masking. */
  readonly mask: string | null;
}

/** A device's MSI-X capability: its state and where the table and PBA are. */
export interface ReportMsix {
  /** Table entries. */
  readonly entries: number;
  /** The MSI-X Enable bit. */
  readonly enabled: boolean;
  /** The Function Mask bit. */
  readonly masked: boolean;
  /**
   * The table entries vPCI holds that differ from their reset state (address 0, data 0, masked), as
   * written through Xen's MSI-X handler; only present when there is one.
   */
  readonly written?: readonly {
    readonly entry: number;
    readonly addr: string;
    readonly data: string;
    readonly masked: boolean;
  }[];
  /** The table: its BAR, offset (hexadecimal), size in bytes and guest frames `[first, last]`. */
  readonly table: {
    readonly bar: number;
    readonly offset: string;
    readonly size: number;
    readonly gfns: readonly [string, string];
  };
  /** The Pending Bit Array, described as `table` is. */
  readonly pba: {
    readonly bar: number;
    readonly offset: string;
    readonly size: number;
    readonly gfns: readonly [string, string];
  };
}

/** A PCI function of the host, its owner and its BARs. */
export interface ReportDevice {
  /** Host address, `ssss:bb:dd.f`. */
  readonly sbdf: string;
  /** Vendor ID, hexadecimal. */
  readonly vendorId: string;
  /** Device ID, hexadecimal. */
  readonly deviceId: string;
  /**
   * Owning domain id, or null (dom_xen's hidden devices: `hidden`); 0x7ff1 (`DOMID_IO`) for a
   * quarantined device, which dom_io owns.
   */
  readonly owner: number | null;
  /** Hidden from the hardware domain (owned by dom_xen). */
  readonly hidden: boolean;
  /** The address the owner sees it at, for a guest. */
  readonly guestSbdf: string | null;
  /** The hardware command register. */
  readonly command: string;
  /** Memory decoding is on from Xen's point of view (`bars_mapped`). */
  readonly decoding: boolean;
  /** The vCPU with an operation on the device still pending. */
  readonly pending: string | null;
  /** Implemented BARs and the ROM, by slot. */
  readonly bars: readonly ReportBar[];
  /** The MSI-X capability; null without one. */
  readonly msix: ReportMsix | null;
  /** The MSI capability vPCI emulates; only present for a device that has one (and set it up). */
  readonly msi?: ReportMsi;
  /** The SR-IOV capability of a physical function; only present for a device that has one. */
  readonly sriov?: ReportSriov;
  /** A virtual function's physical function and VF index; only present for a VF. */
  readonly physfn?: { readonly sbdf: string; readonly vf: number };
  /**
   * What vPCI's deferred work for this device (`map_range`) cost Xen's p2m over the replay, and the
   * continuations: `vpci_process_pending` preempted with -ERESTART.
   */
  readonly xenCost: ReportXenCost & { readonly continuations: number };
}

/** A run of a domain's p2m: guest frames mapped to consecutive machine frames, one type and leaf order. */
export interface ReportExtent {
  /** First guest frame, hexadecimal. */
  readonly gfn: string;
  /** First machine frame, hexadecimal. */
  readonly mfn: string;
  /** Frames in the run. */
  readonly count: number;
  /** The p2m type, such as `mmio_direct`. */
  readonly type: string;
  /** Leaf order: 0 (4 KiB), 9 (2 MiB) or 18 (1 GiB). */
  readonly order: number;
}

/** A domain and what its p2m maps. */
export interface ReportDomain {
  /** Domain id. */
  readonly id: number;
  /** The hardware domain or a guest. */
  readonly kind: 'hardware' | 'guest';
  /** The domain was crashed (by vPCI or a p2m operation). */
  readonly crashed: boolean;
  /** Number of vCPUs. */
  readonly vcpus: number;
  /** Guest frames mapped in the p2m, all types. */
  readonly mappedFrames: number;
  /** The p2m's extents in guest-frame order. */
  readonly p2m: readonly ReportExtent[];
  /** What Xen's MMIO calls on this domain's p2m cost over the replay (vPCI's and any other). */
  readonly xenCost: ReportXenCost;
}

/**
 * What Xen's p2m MMIO calls cost, counted as Xen's loops do the work (`map_mmio_regions` /
 * `unmap_mmio_regions` in xen/arch/x86/mm/p2m.c: at most 64 chunks a call, each chunk one leaf of
 * `mmio_order`: 2 MiB where the guest and machine frames are both 2 MiB aligned and 512 frames or
 * more remain under HAP, else 4 KiB; never 1 GiB).
 */
export interface ReportXenCost {
  /** `map_mmio_regions` calls. */
  readonly mapMmioRegions: number;
  /** `unmap_mmio_regions` calls. */
  readonly unmapMmioRegions: number;
  /** Leaves written (set or cleared) by those calls, by size. */
  readonly leaves: { readonly '4K': number; readonly '2M': number; readonly '1G': number };
  /**
   * Xen's calls on vPCI's BAR rangesets (`bar->mem`), counted where xen/drivers/vpci/header.c makes
   * them (`ReportRangesetOps`). Optional for reports written before it was counted; always present in
   * a report of this version.
   */
  readonly rangesets?: ReportRangesetOps;
}

/**
 * Xen's calls on vPCI's BAR rangesets over the replay (the engine's `RangesetOps`): per device, on its
 * sets whichever domain owned it; per domain, on the sets of the devices it owned (dom_xen's hidden
 * devices count for the hardware domain).
 */
export interface ReportRangesetOps {
  /** `rangeset_new` (`bar_add_rangeset` in `vpci_init_header`: each memory BAR slot and the ROM). */
  readonly new: number;
  /** `rangeset_add_range` (`modify_bars`: each BAR that changes). */
  readonly addRange: number;
  /**
   * `rangeset_remove_range` (`modify_bars`: a higher BAR's frames from lower BARs' sets, each e820
   * entry in x86 `pci_sanitize_bar_memory`, the MSI-X table and PBA pages, overlapping enabled BARs).
   */
  readonly removeRange: number;
  /** `rangeset_overlaps_range` (`modify_bars`' overlap loop: 7 slots per enabled BAR it meets). */
  readonly overlapsRange: number;
  /** `rangeset_consume_ranges` calls (`vpci_process_pending`, `apply_map`: one per non-empty set). */
  readonly consumeRanges: number;
  /** Ranges those calls used up. */
  readonly rangesConsumed: number;
  /** `rangeset_purge` of a non-empty set (`vpci_process_pending` after a failed map or unmap). */
  readonly purge: number;
  /** `rangeset_destroy` of a set (`vpci_deassign_device`). */
  readonly destroy: number;
}

/** The whole report. */
export interface Report {
  /** The format name and version, `REPORT_FORMAT`. */
  readonly format: typeof REPORT_FORMAT;
  /** The trace's name (a file name). */
  readonly trace: string;
  /**
   * `ok`: everything held; `failed`: an assertion or an unexpected violation failed; `error`: bad input
   * stopped the replay.
   */
  readonly status: 'ok' | 'failed' | 'error';
  /** The line and message of the bad input that stopped the replay; null otherwise. */
  readonly error: { readonly line: number; readonly message: string } | null;
  /**
   * The host: profile, policy switches, CPU vendor, IOMMU and memory map; null before the trace set one up.
   */
  readonly machine: {
    /** `x86` or `arm` (`host.arch`; x86 for a trace without it). */
    readonly arch: string;
    /**
     * Whether guests get vPCI and why (`reason`: `arm`, `x86-switch`, `x86-assumed` for a trace that
     * predates `arch`, `x86-off`), with the sentence the text report prints.
     */
    readonly guestVpci: { readonly enabled: boolean; readonly reason: string; readonly text: string };
    /** Arm: the PCI host bridges, with their windows as `[first, last]` byte addresses; empty on x86. */
    readonly hostBridges: readonly {
      readonly segment: number;
      readonly buses: readonly [number, number];
      readonly windows: readonly (readonly [string, string])[];
    }[];
    readonly profile: string;
    /**
     * Whose rules decided what the header writes did (`host.rules`, `--rules`): present only when it
     * is not `xen`, so that the reports of Xen replays stay as they were.
     */
    readonly rules?: string;
    readonly policy: Readonly<Record<string, boolean>>;
    /** The x86 CPU vendor (`intel`, `amd`); `arm` on an Arm host, which has none of their rules. */
    readonly vendor: string;
    readonly iommu: boolean;
    readonly e820: readonly { readonly addr: string; readonly size: string; readonly type: string }[];
  } | null;
  /** Lines read. */
  readonly lines: number;
  /** Lines applied (comments excluded). */
  readonly applied: number;
  /** The host's devices, by SBDF. */
  readonly devices: readonly ReportDevice[];
  /** The domains, by id. */
  readonly domains: readonly ReportDomain[];
  /** The engine's events: the line, the event's fields and its message. */
  readonly events: readonly Readonly<Record<string, unknown>>[];
  /**
   * Invariant violations: the line first seen, whether still present and whether expected, and the violation.
   */
  readonly violations: readonly Readonly<Record<string, unknown>>[];
  /** Replay notes. */
  readonly notes: readonly { readonly line: number; readonly text: string }[];
  /** Assertion counts, and each failure. */
  readonly assertions: {
    readonly total: number;
    readonly passed: number;
    readonly failed: number;
    readonly failures: readonly {
      readonly line: number;
      readonly assertion: string;
      readonly expected: string;
      readonly actual: string;
    }[];
  };
  /** A replayed QEMU log (`--qemu`): the log's counts, its devices, QEMU's decisions compared. */
  readonly qemu?: ReportQemu;
  /**
   * `--compare`: the trace replayed under several rule sets (this report is the first one's), and each
   * step at which their mappings part or meet again; only present then.
   */
  readonly compare?: ReportCompare;
  /** The trace's `mmio` lines, by who answered them; only present when it had some. */
  readonly mmio?: ReportMmio;
}

/** The `mmio` lines replayed: how many, and how many each path answered. */
export interface ReportMmio {
  /** `mmio` lines replayed. */
  readonly accesses: number;
  /** Lines per path (`direct`, `msix-table`, `msix-adjacent`, `unhandled`, `memory`), those seen only. */
  readonly paths: Readonly<Record<string, number>>;
}

/** Builds the report of a replay that read `lines` lines of `trace` (and stopped at `error`, if any). */
export function buildReport(
  replayer: Replayer,
  trace: string,
  lines: number,
  error?: { line: number; message: string },
): Report {
  const machine = replayer.machine;
  const failed = replayer.failures.length;
  return {
    format: REPORT_FORMAT,
    trace,
    status: error !== undefined ? 'error' : replayer.ok ? 'ok' : 'failed',
    error: error ?? null,
    machine:
      machine === undefined
        ? null
        : {
            arch: machine.arch,
            guestVpci: { ...machine.guestVpci, text: describeGuestVpci(machine.guestVpci) },
            hostBridges: machine.hostBridges.map((b) => ({
              segment: b.segment,
              buses: [b.busStart, b.busEnd] as const,
              windows: b.windows.map((w) => [hex(w.addr), hex(w.addr + w.size - 1n)] as const),
            })),
            profile: machine.profile,
            ...(machine.rules.name === 'xen' ? {} : { rules: machine.rules.name }),
            policy: Object.fromEntries(POLICY_SWITCHES.map((name) => [name, machine.policy[name]])),
            vendor: machine.arch === 'arm' ? 'arm' : machine.vendor,
            iommu: machine.iommu,
            e820: machine.e820.map((e) => ({ addr: hex(e.addr), size: hex(e.size), type: e.type })),
          },
    lines,
    applied: replayer.applied,
    devices: machine === undefined ? [] : reportDevices(machine),
    domains:
      machine === undefined
        ? []
        : machine
            .domains()
            .filter((d) => !d.isPseudo)
            .map((domain) => ({
              id: domain.id,
              kind: domain.kind as 'hardware' | 'guest',
              crashed: domain.crashed,
              vcpus: domain.vcpus.length,
              mappedFrames: domain.p2m.mappedFrames,
              p2m: [...domain.p2m.extents()].map((e) => ({
                gfn: hex(e.gfn),
                mfn: hex(e.mfn),
                count: e.count,
                type: e.type,
                order: e.order,
              })),
              xenCost: xenCost(domain.p2m.mmioCost, domain.rangesetOps),
            })),
    events: replayer.events.map(({ line, event }) => ({
      line,
      ...plain(event),
      message: describeEvent(event),
    })),
    violations: replayer.violations.map((seen) => ({
      line: seen.line,
      present: seen.present,
      expected: seen.expected,
      ...plain(seen.violation),
      message: describeViolation(seen.violation),
    })),
    notes: replayer.notes.map((n) => ({ line: n.line, text: n.text })),
    assertions: {
      total: replayer.assertions,
      passed: replayer.assertions - failed,
      failed,
      failures: [...replayer.failures],
    },
    ...(replayer.mmioPaths.size === 0 ? {} : { mmio: reportMmio(replayer.mmioPaths) }),
  };
}

function reportMmio(paths: ReadonlyMap<MmioPath, number>): ReportMmio {
  const order: readonly MmioPath[] = ['direct', 'msix-table', 'msix-adjacent', 'unhandled', 'memory'];
  const seen = order.filter((path) => paths.has(path));
  return {
    accesses: seen.reduce((sum, path) => sum + paths.get(path)!, 0),
    paths: Object.fromEntries(seen.map((path) => [path, paths.get(path)!])),
  };
}

/** The report as the `--json` output: two-space indented, one trailing newline. */
export function reportJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Frame-valued fields of events and violations, printed in hexadecimal like addresses. */
const HEX_FIELDS: ReadonlySet<string> = new Set(['gfn', 'mfn', 'start', 'end', 'value']);

/** An event or violation as plain JSON: bigints and frames as `0x…`. */
function plain(record: VpciEvent | Violation): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (typeof value === 'bigint') out[key] = hex(value);
    else if (typeof value === 'number' && HEX_FIELDS.has(key)) out[key] = hex(value);
    else out[key] = value ?? null;
  }
  return out;
}

function reportDevices(machine: Machine): ReportDevice[] {
  const hostBars = new HostBarIndex(machine);
  const links = sriovLinks(machine);
  return machine.devices().map((device) => reportDevice(machine, device, hostBars, links));
}

function reportDevice(
  machine: Machine,
  device: PciDevice,
  hostBars: HostBarIndex,
  links: SriovLinks,
): ReportDevice {
  const vpci = device.vpci;
  const hw = device.hw;
  const pending = machine.pendingVcpus.firstOn(device);
  const bars: ReportBar[] = [];
  if (vpci !== undefined) {
    for (const bar of vpci.bars) {
      if (bar.type === 'empty' || bar.type === 'mem64hi') continue;
      bars.push(bar.type === 'io' ? ioBar(device, bar.index) : memoryBar(machine, device, bar, hostBars));
    }
  }
  const msix = vpci?.msix;
  const structure = (nr: number) => {
    const raw = msix!.tables[nr]!;
    const [first, last] = msixGuestFrames(vpci!, nr);
    return {
      bar: msixBir(vpci!, nr),
      offset: hex((raw & ~7) >>> 0),
      size: msixSize(msix!.maxEntries, nr),
      gfns: [hex(first), hex(last)] as const,
    };
  };
  return {
    sbdf: device.name,
    vendorId: hex(hw.read(PCI_VENDOR_ID, 2)),
    deviceId: hex(hw.read(PCI_DEVICE_ID, 2)),
    owner: device.domain === undefined || device.domain === machine.domXen ? null : device.domain.id,
    hidden: device.domain === machine.domXen,
    guestSbdf: vpci?.guestSbdf === undefined ? null : formatSbdf(vpci.guestSbdf),
    command: hex(hw.read(PCI_COMMAND, 2)),
    decoding: vpci?.barsMapped ?? false,
    pending: pending?.name ?? null,
    bars,
    msix:
      msix === undefined
        ? null
        : {
            entries: msix.maxEntries,
            enabled: msix.enabled,
            masked: msix.masked,
            table: structure(0),
            pba: structure(1),
            ...writtenEntries(msix),
          },
    ...(vpci?.msi === undefined ? {} : { msi: reportMsi(vpci.msi) }),
    ...sriovFields(device, links),
    xenCost: {
      ...xenCost(device.xenCost, device.xenCost.rangesets),
      continuations: device.xenCost.continuations,
    },
  };
}

/** A PF's `sriov` and a VF's `physfn`, each only where it applies. */
function sriovFields(device: PciDevice, links: SriovLinks): Pick<ReportDevice, 'sriov' | 'physfn'> {
  const sriov = reportSriov(device.hw, links.vfs.get(device));
  const pf = links.pf.get(device);
  return {
    ...(sriov === undefined ? {} : { sriov }),
    ...(pf === undefined ? {} : { physfn: { sbdf: pf.device.name, vf: pf.index } }),
  };
}

function writtenEntries(
  msix: MsixState,
): Record<never, never> | { written: NonNullable<ReportMsix['written']> } {
  const written = msix.entries.flatMap((e, entry) =>
    e.addr === 0n && e.data === 0 && e.masked
      ? []
      : [{ entry, addr: hex(e.addr), data: hex(e.data), masked: e.masked }],
  );
  return written.length === 0 ? {} : { written };
}

function reportMsi(msi: MsiState): ReportMsi {
  return {
    maxVectors: msi.maxVectors,
    vectors: msi.vectors,
    enabled: msi.enabled,
    address: hex(msi.address),
    data: hex(msi.data),
    mask: msi.masking ? hex(msi.mask) : null,
  };
}

/** A p2m's or a device's `MmioCost` and its `RangesetOps` as the report gives them. */
function xenCost(cost: MmioCost, rangesets: RangesetOps): ReportXenCost {
  return {
    mapMmioRegions: cost.mapCalls,
    unmapMmioRegions: cost.unmapCalls,
    leaves: { '4K': cost.leaves4K, '2M': cost.leaves2M, '1G': cost.leaves1G },
    rangesets: { ...rangesets },
  };
}

/** An I/O BAR as the hardware has it (vPCI keeps no state for I/O BARs on x86). */
function ioBar(device: PciDevice, index: number): ReportBar {
  const addr = BigInt((device.hw.read(PCI_BASE_ADDRESS_0 + 4 * index, 4) & ~3) >>> 0);
  return {
    index,
    type: 'io',
    addr: hex(addr),
    guestAddr: device.domain?.isHardware === true ? hex(addr) : null,
    size: hex(device.hw.barSize(index)),
    prefetchable: false,
    enabled: false,
    gfns: null,
    mfns: null,
    holes: [],
    sharesPageWith: [],
  };
}

function memoryBar(machine: Machine, device: PciDevice, bar: Bar, hostBars: HostBarIndex): ReportBar {
  const [first, last] = bar.guestFrames();
  const [hostFirst, hostLast] = bar.hostFrames();
  return {
    index: bar.index,
    type: bar.type === 'mem64lo' ? 'mem64' : (bar.type as 'mem32' | 'rom'),
    addr: hex(bar.addr),
    guestAddr: hex(bar.guestAddr),
    size: hex(bar.size),
    prefetchable: bar.prefetchable,
    enabled: bar.enabled,
    gfns: [hex(first), hex(last)],
    mfns: [hex(hostFirst), hex(hostLast)],
    holes: bar.enabled ? holes(machine, device, bar) : [],
    sharesPageWith: hostBars.sharers(device, bar),
  };
}

/** The frames of an enabled BAR not mapped to its machine frames, split by reason. */
function holes(machine: Machine, device: PciDevice, bar: Bar): ReportHole[] {
  const domain = mappingDomain(machine, device);
  if (domain === undefined) return [];
  const [first, barLast] = bar.guestFrames();
  // A BAR written at the top of the 64-bit space (all-ones sizing left in place, `bar_write` keeps
  // whatever address is written) runs past 2^64, where no page is: no p2m holds a frame there.
  const last = Math.min(barLast, MAX_FRAME) as Gfn;
  const shift = Number(bar.addr >> 12n) - first;
  const missing = RangeSet.from<Gfn>([[first, last]]);
  const elsewhere = new RangeSet<Gfn>();
  // Only the extents over the BAR, found by search: walking the whole map from its start made the
  // report quadratic in the BARs a domain maps (thousands of devices).
  for (const extent of domain.p2m.extentsIn(first, last)) {
    const end = extent.gfn + extent.count - 1;
    // Guest frames of the BAR that the extent covers.
    const s = Math.max(first, extent.gfn) as Gfn;
    const e = Math.min(last, end) as Gfn;
    if (extent.type === 'mmio_direct' && extent.mfn - extent.gfn === shift) missing.removeRange(s, e);
    else elsewhere.addRange(s, e);
  }
  const vpci = device.vpci!;
  const reasons: [HoleReason, RangeSet<Gfn>][] = [];
  if (vpci.msix !== undefined) {
    reasons.push(['msix-table', RangeSet.from<Gfn>([msixGuestFrames(vpci, 0)])]);
    reasons.push(['msix-pba', RangeSet.from<Gfn>([msixGuestFrames(vpci, 1)])]);
  }
  reasons.push(['e820', e820Frames(machine, bar)]);
  if (vpci.withheld !== undefined) reasons.push(['shared-page', vpci.withheld]);
  reasons.push(['other-bar', elsewhere]);
  const out: ReportHole[] = [];
  for (const [reason, frames] of reasons) {
    for (const [s, e] of intersect(missing, frames)) out.push({ gfn: hex(s), count: e - s + 1, reason });
    missing.subtract(frames);
  }
  for (const [s, e] of missing) out.push({ gfn: hex(s), count: e - s + 1, reason: 'unmapped' });
  return out.sort((a, b) => Number(BigInt(a.gfn) - BigInt(b.gfn)));
}

/** Guest frames of the BAR the host memory map takes out, as the policy removes them. */
function e820Frames(machine: Machine, bar: Bar): RangeSet<Gfn> {
  const out = new RangeSet<Gfn>();
  reportE820Frames(machine, bar, (first, last) => {
    out.addRange(first, last);
  });
  return out;
}

function intersect<T extends number>(a: RangeSet<T>, b: RangeSet<T>): RangeSet<T> {
  const out = RangeSet.from<T>(a);
  const outside = RangeSet.from<T>(a);
  outside.subtract(b);
  out.subtract(outside);
  return out;
}

/**
 * Every device's memory BARs by host frame, so that finding the BARs in one BAR's host pages costs
 * what is near them (asking every device for every BAR made a report of 4,096 devices quadratic).
 */
class HostBarIndex {
  /** The BARs in machine order (device, then slot), sorted by first host frame. */
  private readonly byFirst: {
    first: number;
    last: number;
    order: number;
    device: PciDevice;
    name: string;
  }[] = [];
  /** The largest last frame of each prefix of `byFirst`. */
  private readonly reach: number[] = [];

  constructor(machine: Machine) {
    for (const device of machine.devices()) {
      for (const bar of device.vpci?.bars ?? []) {
        if (!bar.mappable || bar.size === 0n) continue;
        const [first, last] = bar.hostFrames();
        const name = `${device.name} BAR${bar.index}`;
        this.byFirst.push({ first, last, order: this.byFirst.length, device, name });
      }
    }
    this.byFirst.sort((a, b) => a.first - b.first || a.order - b.order);
    for (const entry of this.byFirst) this.reach.push(Math.max(this.reach.at(-1) ?? -1, entry.last));
  }

  /** Other devices' memory BARs with a byte in one of this BAR's host pages, in machine order. */
  sharers(device: PciDevice, bar: Bar): string[] {
    const [first, last] = bar.hostFrames();
    let lo = 0;
    let hi = this.byFirst.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.byFirst[mid]!.first <= last) lo = mid + 1;
      else hi = mid;
    }
    const found: { order: number; name: string }[] = [];
    for (let i = lo - 1; i >= 0 && this.reach[i]! >= first; i--) {
      const entry = this.byFirst[i]!;
      if (entry.device !== device && entry.last >= first) found.push(entry);
    }
    return found.sort((a, b) => a.order - b.order).map((entry) => entry.name);
  }
}
