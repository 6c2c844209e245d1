/**
 * The default output of `vpci-replay`: the report as text, a section per domain with its devices (BARs
 * with host and guest addresses, what is mapped, the holes and why) and its p2m, then the events,
 * violations, notes and assertions.
 */
import type { Colors } from 'picocolors/types';
import { pictureSize } from './picture.js';
import type { QemuDevice } from './qemu.js';
import type { ReportQemu } from './qemu-report.js';
import type {
  Report,
  ReportBar,
  ReportDevice,
  ReportDomain,
  ReportRangesetOps,
  ReportXenCost,
} from './report.js';
import { sriovFieldsText, vfBarText } from './sriov-report.js';

/** How the text report is written. */
export interface TextReportOptions {
  /** Colours for a terminal (picocolors' `createColors(true)`); none when omitted. */
  readonly colors?: Colors;
}

/** Text as it is: the colours when none are wanted. */
const plain = (text: string | number): string => String(text);
const NO_COLORS = { red: plain, green: plain, yellow: plain, bold: plain } as const;

/** Extents listed per domain before the rest is summarised (the JSON report has them all). */
const MAX_EXTENTS = 40;

/** VFs listed under their PF before the rest is summarised (the JSON report has them all). */
const MAX_VFS = 16;

/** A bus number as two hex digits. */
function hex2(bus: number): string {
  return bus.toString(16).padStart(2, '0');
}

/** Renders the report as text, ending with a newline. */
export function textReport(report: Report, options: TextReportOptions = {}): string {
  const c = options.colors ?? NO_COLORS;
  const out: string[] = [];
  const m = report.machine;
  out.push(
    `vpci-replay ${report.trace}: ${counted(report.lines, 'trace line')}, ${counted(report.applied, 'event')} replayed` +
      (m === null
        ? ''
        : `; ${m.rules === undefined ? '' : `rules ${m.rules}, `}profile ${m.profile}, ${m.vendor}, IOMMU ${m.iommu ? 'on' : 'off'}`),
  );
  if (m !== null) {
    // Said where the trace chose it; an assumed choice is a note at the first assignment.
    if (m.guestVpci.reason !== 'x86-assumed') out.push(`  ${m.guestVpci.text}`);
    for (const b of m.hostBridges) {
      const buses = `${hex2(b.buses[0])}-${hex2(b.buses[1])}`;
      const windows = b.windows.map(([first, last]) => `[${first}, ${last}]`).join(', ');
      out.push(
        `  host bridge ${b.segment.toString(16).padStart(4, '0')}:${buses}: ${windows || 'no windows'}`,
      );
    }
    const switches = Object.entries(m.policy)
      .filter(([, on]) => on)
      .map(([name]) => name);
    if (m.profile === 'xen' && switches.length > 0) out.push(`  switches on: ${switches.join(', ')}`);
    if (m.profile === 'hardened' && switches.length < Object.keys(m.policy).length) {
      const off = Object.entries(m.policy)
        .filter(([, on]) => !on)
        .map(([name]) => name);
      out.push(`  switches off: ${off.join(', ')}`);
    }
  }
  if (report.qemu !== undefined) out.push(...qemuSummary(report.qemu));
  if (report.mmio !== undefined) {
    const paths = Object.entries(report.mmio.paths).map(([path, n]) => `${path} ${n}`);
    const n = report.mmio.accesses;
    out.push(`  ${n} MMIO access${n === 1 ? '' : 'es'}: ${paths.join(', ')}`);
  }
  // The QEMU device at each address at the end (one that left by hot unplug shares the address).
  const qemuDevices = new Map(
    (report.qemu?.devices ?? []).filter((d) => d.unplugged === undefined).map((d) => [d.sbdf, d]),
  );
  const bySbdf = new Map(report.devices.map((d) => [d.sbdf, d]));
  const deviceLines = (device: ReportDevice, qemu?: QemuDevice): string[] => [
    ...deviceLinesOf(device, qemu),
    ...sriovLines(device, bySbdf),
  ];
  for (const domain of report.domains) {
    out.push('', domainTitle(domain));
    for (const device of report.devices.filter(
      (d) => d.owner === domain.id || (d.hidden && domain.kind === 'hardware'),
    )) {
      out.push(...deviceLines(device, qemuDevices.get(device.sbdf)));
    }
    out.push(...p2mLines(domain));
    out.push(`  Xen's MMIO work: ${xenCostText(domain.xenCost)}`);
    if (domain.xenCost.rangesets !== undefined)
      out.push(`  Xen's rangeset work: ${rangesetOpsText(domain.xenCost.rangesets)}`);
  }
  // dom_io (0x7ff1) is not listed among the domains: its devices are the quarantined ones.
  const listed = new Set(report.domains.map((domain) => domain.id));
  const quarantined = report.devices.filter((d) => d.owner !== null && !listed.has(d.owner));
  if (quarantined.length > 0) {
    out.push('', 'quarantined (dom_io: no vPCI, the hardware domain reaches them on the hardware)');
    for (const device of quarantined) out.push(...deviceLines(device, qemuDevices.get(device.sbdf)));
  }
  const unowned = report.devices.filter((d) => d.owner === null && !d.hidden);
  if (unowned.length > 0) {
    out.push('', 'devices without an owner');
    for (const device of unowned) out.push(...deviceLines(device, qemuDevices.get(device.sbdf)));
  }
  // What Xen would have logged (its printk lines), by trace line.
  section(
    out,
    c.bold("Xen's log"),
    report.events.map((e) => `line ${e.line}: ${String(e.message)}`),
  );
  const divergences = report.qemu?.divergences ?? [];
  section(
    out,
    "divergences from QEMU's mapping decisions",
    divergences.map(
      (d) =>
        `line ${d.line}: ${d.message}${d.explained ? ` [explained: ${d.rule}]` : ' [UNEXPLAINED]'}` +
        (d.decisions.length === 0
          ? ''
          : ` (QEMU's line${d.decisions.length === 1 ? '' : 's'} ${d.decisions.join(', ')})`),
    ),
  );
  section(
    out,
    c.bold('invariant violations'),
    report.violations.map((v) => {
      const text = `line ${v.line}: ${String(v.message)}${v.expected ? ' [expected]' : ''}${v.present ? '' : ' [gone by the end]'}`;
      return v.expected ? text : c.yellow(text);
    }),
  );
  section(
    out,
    c.bold('notes'),
    report.notes.map((n) => `line ${n.line}: ${n.text}`),
  );
  const a = report.assertions;
  out.push('', `assertions: ${a.passed} passed, ${a.failed} failed`);
  for (const f of a.failures)
    out.push(c.red(`  line ${f.line}: FAILED ${f.assertion}: expected ${f.expected}, got ${f.actual}`));
  if (report.error !== null)
    out.push('', c.red(`stopped at line ${report.error.line}: ${report.error.message}`));
  const unexpected = report.violations.filter((v) => !v.expected).length;
  const statusColor = report.status === 'ok' ? c.green : c.red;
  const unexplained = divergences.filter((d) => !d.explained).length;
  out.push(
    '',
    `status: ${statusColor(report.status)}` +
      (report.status === 'failed'
        ? ` (${a.failed} failed assertion${a.failed === 1 ? '' : 's'}, ${unexpected} unexpected violation${unexpected === 1 ? '' : 's'}` +
          (report.qemu === undefined
            ? ')'
            : `, ${unexplained} unexplained divergence${unexplained === 1 ? '' : 's'} from QEMU)`)
        : ''),
  );
  return `${out.join('\n')}\n`;
}

/**
 * Xen's MMIO calls and the leaves they wrote: `512 map_mmio_regions, 512 unmap_mmio_regions, leaves
 * 0 × 4K, 65536 × 2M, 0 × 1G`.
 */
export function xenCostText(cost: ReportXenCost): string {
  const { leaves } = cost;
  return (
    `${cost.mapMmioRegions} map_mmio_regions, ${cost.unmapMmioRegions} unmap_mmio_regions, ` +
    `leaves ${leaves['4K']} × 4K, ${leaves['2M']} × 2M, ${leaves['1G']} × 1G`
  );
}

/**
 * Xen's calls on vPCI's BAR rangesets: `2 rangeset_new, 2 rangeset_add_range, 3
 * rangeset_remove_range, 7 rangeset_overlaps_range, 2 rangeset_consume_ranges (2 ranges consumed), 0
 * rangeset_purge, 0 rangeset_destroy`.
 */
export function rangesetOpsText(ops: ReportRangesetOps): string {
  return (
    `${ops.new} rangeset_new, ${ops.addRange} rangeset_add_range, ${ops.removeRange} rangeset_remove_range, ` +
    `${ops.overlapsRange} rangeset_overlaps_range, ${ops.consumeRanges} rangeset_consume_ranges ` +
    `(${counted(ops.rangesConsumed, 'range')} consumed), ${ops.purge} rangeset_purge, ${ops.destroy} rangeset_destroy`
  );
}

/** Whether any of Xen's rangeset calls was counted. */
export function anyRangesetOps(ops: ReportRangesetOps | undefined): ops is ReportRangesetOps {
  return ops !== undefined && Object.values(ops).some((n) => n > 0);
}

function domainTitle(domain: ReportDomain): string {
  const kind = domain.kind === 'hardware' ? 'hardware domain' : 'guest';
  return `d${domain.id} (${kind}, ${counted(domain.vcpus, 'vCPU')})${domain.crashed ? ' CRASHED' : ''}: ${counted(domain.mappedFrames, 'frame')} mapped in ${counted(domain.p2m.length, 'extent')}`;
}

/** The QEMU log's counts and how the replay compares with QEMU's decisions (indented lines). */
export function qemuSummary(qemu: ReportQemu): string[] {
  const c = qemu.counts;
  const dropped = c.dropped.reduce((n, d) => n + d.count, 0);
  const d = qemu.decisions;
  return [
    `  QEMU log ${qemu.log}: ${c.lines} lines read; ${c.found} config accesses found (pci_cfg_* lines), ${c.replayed} replayed, ${dropped} dropped`,
    ...c.dropped.map((x) => `    dropped: ${x.count} ${x.reason} (first at line ${x.firstLine})`),
    `    access sizes: ${c.sizesFromRegion} from region lines, ${c.sizesInferred} inferred; ${c.emptySlotProbes} data accesses no device answered (empty slots, nothing to replay)`,
    ...qemu.devices
      .filter((x) => x.hotPlugged !== undefined || x.unplugged !== undefined)
      .map(
        (x) =>
          `    hot plug: ${x.sbdf} ${x.name}` +
          (x.hotPlugged === undefined ? ', there at the start' : `, arrived at line ${x.hotPlugged}`) +
          (x.unplugged === undefined ? '' : `, gone at line ${x.unplugged}`),
      ),
    d.compared
      ? `  QEMU's ${d.total} mapping decisions: ${d.matched} matched, ${d.explained} explained by Xen's rules, ${d.unexplained} unexplained`
      : "  QEMU's mapping decisions: none in the log (traced without pci_update_mappings_*), nothing compared",
  ];
}

/**
 * A PF's SR-IOV capability, its VF BAR arrays and its VFs on the machine with their owners (the first
 * `MAX_VFS`); nothing for other devices.
 */
function sriovLines(device: ReportDevice, bySbdf: ReadonlyMap<string, ReportDevice>): string[] {
  const sriov = device.sriov;
  if (sriov === undefined) return [];
  const out = [`    SR-IOV at ${sriov.pos}: ${sriovFieldsText(sriov)}`];
  for (const bar of sriov.vfBars) out.push(`      ${vfBarText(bar)}`);
  if (sriov.vfs.length > 0) out.push(`      ${counted(sriov.vfs.length, 'VF')} on the machine:`);
  for (const vf of sriov.vfs.slice(0, MAX_VFS)) {
    const owner = bySbdf.get(vf.sbdf)?.owner;
    out.push(
      `        VF ${vf.index} ${vf.sbdf}, owner ${owner === null || owner === undefined ? 'none' : `d${owner}`}`,
    );
  }
  if (sriov.vfs.length > MAX_VFS)
    out.push(`        … ${counted(sriov.vfs.length - MAX_VFS, 'more VF')} (see --json)`);
  return out;
}

function deviceLinesOf(device: ReportDevice, qemu?: QemuDevice): string[] {
  const out: string[] = [];
  const at = device.guestSbdf === null ? '' : ` (seen at ${device.guestSbdf})`;
  const flags = [
    device.physfn === undefined ? '' : `VF ${device.physfn.vf} of ${device.physfn.sbdf}`,
    device.hidden ? 'hidden' : '',
    `command ${device.command}`,
    `decoding ${device.decoding ? 'on' : 'off'}`,
    device.pending === null ? '' : `pending on ${device.pending}`,
  ].filter((s) => s !== '');
  const unknown = new Set(qemu?.unknown.map((u) => u.what));
  const ids = unknown.has('ids')
    ? '????:????'
    : `${device.vendorId.slice(2).padStart(4, '0')}:${device.deviceId.slice(2).padStart(4, '0')}`;
  out.push(`  ${device.sbdf}${at} [${ids}] ${flags.join(', ')}`);
  if (qemu !== undefined) out.push(...qemuDeviceLines(qemu));
  for (const bar of device.bars) out.push(...barLines(bar));
  const cost = device.xenCost;
  if (cost.mapMmioRegions + cost.unmapMmioRegions > 0)
    out.push(`    Xen's MMIO work: ${xenCostText(cost)}, ${counted(cost.continuations, 'continuation')}`);
  if (anyRangesetOps(cost.rangesets)) out.push(`    Xen's rangeset work: ${rangesetOpsText(cost.rangesets)}`);
  const msix = device.msix;
  if (msix !== null) {
    const pba = unknown.has('MSI-X PBA')
      ? 'PBA unknown (none in the log: no hole of its own)'
      : `PBA BAR${msix.pba.bar}+${msix.pba.offset} (gfn ${span(msix.pba.gfns)})`;
    out.push(
      `    MSI-X ${msix.entries} entries${msix.enabled ? ', enabled' : ''}${msix.masked ? ', masked' : ''}: ` +
        `table BAR${msix.table.bar}+${msix.table.offset} (gfn ${span(msix.table.gfns)}), ${pba}`,
    );
  }
  for (const e of device.msix?.written ?? []) {
    out.push(`      entry ${e.entry}: address ${e.addr} data ${e.data}${e.masked ? ', masked' : ''}`);
  }
  const msi = device.msi;
  if (msi !== undefined) {
    out.push(
      `    MSI ${msi.vectors}/${msi.maxVectors} vectors${msi.enabled ? ', enabled' : ''}: ` +
        `address ${msi.address} data ${msi.data}${msi.mask === null ? '' : ` mask ${msi.mask}`}`,
    );
  }
  return out;
}

/** What the QEMU log said of a device: its model, where it was seen, what was filled or is unknown. */
function qemuDeviceLines(qemu: QemuDevice): string[] {
  const out = [`    QEMU ${qemu.name}, seen at ${qemu.seenAt.join(', ')}`];
  for (const from of ['image', 'monitor'] as const) {
    const what = qemu.filled.filter((f) => f.from === from).map((f) => f.what);
    if (what.length > 0)
      out.push(`    from the ${from === 'image' ? 'config-space image' : 'monitor'}: ${what.join(', ')}`);
  }
  for (const u of qemu.unknown) out.push(`    unknown: ${u.what}: ${u.effect}`);
  for (const w of qemu.windows) {
    const range =
      w.base === null || w.limit === null
        ? 'unknown (not in the log)'
        : BigInt(w.base) > BigInt(w.limit)
          ? 'disabled'
          : `${w.base}-${w.limit} (${humanSize(BigInt(w.limit) - BigInt(w.base) + 1n)})`;
    out.push(`    window ${w.kind.padEnd(12)} ${range}`);
  }
  return out;
}

function barLines(bar: ReportBar): string[] {
  const name = bar.index === 6 || bar.type === 'rom' ? 'ROM ' : `BAR${bar.index}`;
  const type = `${bar.type}${bar.prefetchable ? ' pref' : ''}`;
  const guest = bar.guestAddr === null ? 'guest -' : `guest ${bar.guestAddr}`;
  const withheldAll = bar.enabled && pagesOf(bar) > 0 && withheldPages(bar) >= pagesOf(bar);
  const state =
    bar.type === 'io'
      ? 'I/O, not mapped'
      : withheldAll
        ? 'enabled, no page mapped (every page is a hole)'
        : bar.enabled
          ? 'mapped'
          : 'not mapped';
  const out = [
    `    ${name} ${type.padEnd(10)} ${humanSize(BigInt(bar.size)).padStart(8)}  host ${bar.addr}  ${guest}  ${state}`,
  ];
  if (bar.enabled && !withheldAll && bar.gfns !== null && bar.mfns !== null) {
    out.push(`         gfn ${span(bar.gfns)} -> mfn ${span(bar.mfns)}`);
  }
  for (const hole of bar.holes)
    out.push(`         hole: gfn ${hole.gfn}${hole.count > 1 ? ` +${hole.count}` : ''}: ${hole.reason}`);
  if (bar.sharesPageWith.length > 0) out.push(`         shares a page with ${bar.sharesPageWith.join(', ')}`);
  return out;
}

function p2mLines(domain: ReportDomain): string[] {
  if (domain.p2m.length === 0) return ['  p2m: empty'];
  const out = ['  p2m:'];
  for (const e of domain.p2m.slice(0, MAX_EXTENTS)) {
    const last = `0x${(BigInt(e.gfn) + BigInt(e.count) - 1n).toString(16)}`;
    const order = e.order === 0 ? '4K' : e.order === 9 ? '2M' : '1G';
    out.push(
      `    gfn ${e.count === 1 ? e.gfn : `${e.gfn}-${last}`} -> mfn ${e.mfn}  ${e.type} ${order}  (${counted(e.count, 'page')})`,
    );
  }
  if (domain.p2m.length > MAX_EXTENTS)
    out.push(`    … ${counted(domain.p2m.length - MAX_EXTENTS, 'more extent')} (see --json)`);
  return out;
}

/** `n noun(s)` with thousands separators: `1 frame`, `16,777,216 frames`. */
function counted(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}

/** The guest pages an enabled BAR spans (0 without guest frames). */
function pagesOf(bar: ReportBar): number {
  return bar.gfns === null ? 0 : Number(BigInt(bar.gfns[1]) - BigInt(bar.gfns[0])) + 1;
}

/** The guest pages of a BAR that are holes (withheld, MSI-X, e820, …). */
function withheldPages(bar: ReportBar): number {
  return bar.holes.reduce((sum, hole) => sum + hole.count, 0);
}

function section(out: string[], title: string, lines: string[]): void {
  if (lines.length === 0) return;
  out.push('', `${title} (${lines.length}):`);
  for (const line of lines) out.push(`  ${line}`);
}

function span([first, last]: readonly [string, string]): string {
  return first === last ? first : `${first}-${last}`;
}

/** A byte size as people read it: `256 B`, `4 KiB`, `64 GiB` (the picture's formatter, shared). */
export function humanSize(size: bigint): string {
  return pictureSize(size);
}
