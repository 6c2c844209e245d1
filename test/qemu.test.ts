/**
 * Real guests: QEMU trace logs captured by scripts/capture-qemu-traces.sh (see
 * test/fixtures/qemu/README.md) are converted and replayed as the hardware domain's accesses. Every
 * expected value comes from QEMU itself: the log's own lines (its `pci_cfg_*` accesses, its
 * `pci_update_mappings_*` decisions) and the monitor's `info pci` and `info mtree` at the end of the run,
 * read here by parsers of this file, not the importer's.
 *
 * For each log, as captured and with its region events stripped: every `pci_cfg_*` access is
 * replayed; no divergence from QEMU's decisions is unexplained; the final placement is `info pci`'s
 * (every BAR QEMU maps, at the same frames, and nothing else); ids are `info pci`'s; bridges have no
 * BAR2–5 and their windows are `info pci`'s; MSI-X tables (and, with the monitor output, PBAs) are
 * where `info mtree` has them.
 *
 * A hot-plug log (scripts/capture-qemu-traces.sh's monitor steps, `NAME.steps.txt`: each `device_add`
 * and `device_del`, with `info pci` after it) also ends where `info pci` says, and each device the
 * monitor added is a device of its own that arrives at its first access, with the BAR sizes of
 * QEMU's own mapping decisions; each one the monitor deleted leaves. A device that left while it
 * decoded memory leaves its pages mapped in the hardware domain (Xen's `vpci_deassign_device` frees
 * the vPCI state and unmaps nothing): the violations expected are those pages, the ones QEMU had the
 * device map at its last access and that no BAR of `info pci` at the end covers.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  convertQemuLog,
  parseQemuMonitor,
  type QemuDevice,
  qemuLogText,
  type Report,
  replayCli,
  replayQemuConversion,
} from '@vpci/replay';
import type { Profile, RuleSetName } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';

const fixtures = new URL('./fixtures/qemu/', import.meta.url);
const SCENARIOS = [
  'seabios-testdev',
  'seabios-linux',
  'ovmf-linux',
  'pc-linux',
  'qboot-linux',
  'msix-linux',
  'cfgonly-linux',
  'renumber-linux',
];
const logs = readdirSync(fixtures)
  .filter((f) => /\.trace\.log(\.gz)?$/.test(f))
  .sort();
const nameOf = (file: string): string => file.replace(/\.trace\.log(\.gz)?$/, '');

function readLog(file: string): string[] {
  return qemuLogText(readFileSync(new URL(file, fixtures))).split('\n');
}

/** The log without its region events: what a capture with -trace 'pci_cfg_*' alone would give. */
function stripRegions(lines: readonly string[]): string[] {
  return lines.filter((l) => !/^(\d+@[\d.]+:)?memory_region_ops_/.test(l));
}

// ---- QEMU's monitor output, read independently of the importer --------------------------------

interface ListedBar {
  readonly io: boolean;
  /** null: QEMU does not map it (it prints all-ones). */
  readonly addr: bigint | null;
  readonly size: bigint;
}

interface ListedDevice {
  ids: string;
  /** The `id "…"` QEMU printed (the monitor's device_add id, empty for a device of the command line). */
  id: string;
  bridge: boolean;
  readonly windows: Map<string, [bigint, bigint]>;
  readonly bars: Map<number, ListedBar>;
}

/** `info pci` by SBDF. */
function infoPci(text: string): Map<string, ListedDevice> {
  const out = new Map<string, ListedDevice>();
  let device: ListedDevice | undefined;
  const section = text.slice(text.indexOf('(qemu) info pci'), text.indexOf('(qemu) info mtree'));
  for (const line of section.split('\n')) {
    let m = /Bus\s+(\d+), device\s+(\d+), function (\d+):/.exec(line);
    if (m !== null) {
      const sbdf = `0000:${hex2(m[1]!)}:${hex2(m[2]!)}.${m[3]}`;
      device = { ids: '', id: '', bridge: false, windows: new Map(), bars: new Map() };
      out.set(sbdf, device);
      continue;
    }
    if (device === undefined) continue;
    m = /: PCI device (\w{4}):(\w{4})$/.exec(line);
    if (m !== null) {
      device.ids = `0x${m[1]}:0x${m[2]}`.replace(/0x0+(?=\w)/g, '0x');
      device.bridge = line.includes('PCI bridge:');
    }
    m = /^\s+id "([^"]*)"$/.exec(line);
    if (m !== null) device.id = m[1]!;
    m = /^\s+(IO|memory|prefetchable memory) range \[(0x\w+), (0x\w+)\]/.exec(line);
    if (m !== null) device.windows.set(m[1]!, [BigInt(m[2]!), BigInt(m[3]!)]);
    m = /^\s+BAR(\d): (I\/O|.*memory) at (0x\w+) \[(0x\w+)\]/.exec(line);
    if (m !== null) {
      const at = BigInt(m[3]!);
      const mapped = at !== 0xffffffffffffffffn && at !== 0xffffffffn;
      device.bars.set(Number(m[1]), {
        io: m[2] === 'I/O',
        addr: mapped ? at : null,
        size: mapped ? BigInt(m[4]!) - at + 1n : 0n,
      });
    }
  }
  return out;
}

function hex2(decimal: string): string {
  return Number(decimal).toString(16).padStart(2, '0');
}

/** `info mtree`'s `msix-table` and `msix-pba` regions: `[first, last]` byte addresses, once each. */
function mtree(text: string): { table: [bigint, bigint][]; pba: [bigint, bigint][] } {
  const seen = { table: new Map<string, [bigint, bigint]>(), pba: new Map<string, [bigint, bigint]>() };
  for (const m of text.matchAll(/([0-9a-f]{16})-([0-9a-f]{16}) \([^)]*\): msix-(table|pba)$/gm)) {
    seen[m[3] as 'table' | 'pba'].set(`${m[1]}`, [BigInt(`0x${m[1]}`), BigInt(`0x${m[2]}`)]);
  }
  return { table: [...seen.table.values()], pba: [...seen.pba.values()] };
}

const page = (addr: bigint): string => `0x${(addr >> 12n).toString(16)}`;

// ---- hot plug: the monitor steps and QEMU's lines about each device they added ----------------

/** A `device_add` or `device_del` of the capture's monitor steps, and `info pci` and `info mtree` after it. */
interface Step {
  readonly command: 'device_add' | 'device_del';
  readonly model: string;
  readonly id: string;
  readonly after: Map<string, ListedDevice>;
  readonly mtreeAfter: ReturnType<typeof mtree>;
}

/** The monitor steps of a hot-plug fixture (`NAME.steps.txt`); none for a boot. */
function steps(file: string): Step[] {
  const url = new URL(`${nameOf(file)}.steps.txt`, fixtures);
  if (!existsSync(url)) return [];
  const models = new Map<string, string>();
  const out: Step[] = [];
  // Each step: "(qemu) COMMAND", "(qemu) info pci" and its output, "(qemu) info mtree" and its output.
  const parts = readFileSync(url, 'utf8')
    .split(/^(?=\(qemu\) device_)/m)
    .filter((part) => part.startsWith('(qemu) device_'));
  for (const part of parts) {
    const command = part.split('\n', 1)[0]!.replace('(qemu) ', '');
    const after = infoPci(part);
    const mtreeAfter = mtree(part.slice(part.indexOf('(qemu) info mtree')));
    const add = /^device_add ([^,]+),.*\bid=([^,]+)/.exec(command);
    if (add !== null) {
      models.set(add[2]!, add[1]!);
      out.push({ command: 'device_add', model: add[1]!, id: add[2]!, after, mtreeAfter });
    }
    const del = /^device_del (\S+)/.exec(command);
    if (del !== null)
      out.push({ command: 'device_del', model: models.get(del[1]!)!, id: del[1]!, after, mtreeAfter });
  }
  return out;
}

const cfgLine = /^(?:\d+@[\d.]+:)?pci_cfg_(?:read|write) (\S+) /;
const decisionLine = /^(?:\d+@[\d.]+:)?pci_update_mappings_(add|del) (\S+) \S+ (\d+),(0x\w+)\+(0x\w+)$/;

/** The 1-based log lines of `model`'s `pci_cfg_*` accesses. */
function accessLines(lines: readonly string[], model: string): number[] {
  const out: number[] = [];
  lines.forEach((l, i) => {
    if (cfgLine.exec(l)?.[1] === model) out.push(i + 1);
  });
  return out;
}

/** QEMU's decisions about `model`'s BARs up to log line `until`: BAR → [address, size] mapped. */
function qemuMapped(lines: readonly string[], model: string, until: number): Map<number, [bigint, bigint]> {
  const mapped = new Map<number, [bigint, bigint]>();
  lines.slice(0, until).forEach((l) => {
    const m = decisionLine.exec(l);
    if (m === null || m[2] !== model) return;
    if (m[1] === 'add') mapped.set(Number(m[3]), [BigInt(m[4]!), BigInt(m[5]!)]);
    else mapped.delete(Number(m[3]));
  });
  return mapped;
}

/**
 * The violations a replay under Xen's rules must show (see the module comment): for each device the
 * monitor deleted, the pages of the memory BARs QEMU had it map at its last access that no memory BAR
 * of `info pci` at the end covers, as one `unexplained-mapping` of the hardware domain. Its MSI-X
 * table and PBA pages (`info mtree` before the deletion) are not among them: Xen's vPCI never maps
 * those for the hardware domain (vpci_make_msix_hole).
 */
function staleAfterUnplug(file: string, lines: readonly string[], listed: Map<string, ListedDevice>) {
  const covered = new Set<bigint>();
  for (const device of listed.values())
    for (const bar of device.bars.values())
      if (bar.addr !== null && !bar.io)
        for (let p = bar.addr >> 12n; p <= (bar.addr + bar.size - 1n) >> 12n; p++) covered.add(p);
  const all = steps(file);
  return all
    .filter((s) => s.command === 'device_del')
    .flatMap((del) => {
      const added = all.find((s) => s.command === 'device_add' && s.id === del.id)!;
      const before = all[all.indexOf(del) - 1]!;
      const holes = new Set<bigint>();
      for (const [first, last] of [...before.mtreeAfter.table, ...before.mtreeAfter.pba])
        for (let p = first >> 12n; p <= last >> 12n; p++) holes.add(p);
      const io = new Set(
        [...added.after.values()]
          .filter((d) => d.id === del.id)
          .flatMap((d) => [...d.bars].filter(([, b]) => b.io).map(([i]) => i)),
      );
      const last = accessLines(lines, del.model).at(-1)!;
      const pages: bigint[] = [];
      for (const [bar, [addr, size]] of qemuMapped(lines, del.model, last)) {
        if (io.has(bar)) continue;
        for (let p = addr >> 12n; p <= (addr + size - 1n) >> 12n; p++)
          if (!covered.has(p) && !holes.has(p)) pages.push(p);
      }
      if (pages.length === 0) return [];
      let lowest = pages[0]!;
      for (const p of pages) if (p < lowest) lowest = p;
      const first = `0x${lowest.toString(16)}`;
      return [
        {
          kind: 'unexplained-mapping',
          domain: 0,
          gfn: first,
          mfn: first,
          count: pages.length,
          present: true,
        },
      ];
    });
}

// ---- the replay ------------------------------------------------------------------------------

function replay(
  file: string,
  lines: string[],
  withMonitor: boolean,
  rules: RuleSetName = 'xen',
  profile?: Profile,
): Report {
  const monitorText = readFileSync(new URL(`${nameOf(file)}.monitor.txt`, fixtures), 'utf8');
  const conversion = convertQemuLog(lines, {
    name: file,
    ...(withMonitor ? { monitor: parseQemuMonitor(monitorText) } : {}),
  });
  return replayQemuConversion(conversion, file, {
    ...(rules === 'xen' ? {} : { rules }),
    ...(profile === undefined ? {} : { profile }),
  });
}

/**
 * The checks every replay of a fixture must pass (see the module comment). A log that starts late
 * may never show some device's ids; without the monitor output they must then be said unknown.
 */
function checkAgainstQemu(
  file: string,
  lines: readonly string[],
  report: Report,
  withMonitor: boolean,
  startsLate = false,
): void {
  const monitorText = readFileSync(new URL(`${nameOf(file)}.monitor.txt`, fixtures), 'utf8');
  const listed = infoPci(monitorText);
  const regions = mtree(monitorText);
  const qemu = report.qemu!;
  // The QEMU device at an address at the end (one that left by hot unplug shares the address).
  const atEnd = (sbdf: string) => qemu.devices.find((q) => q.sbdf === sbdf && q.unplugged === undefined)!;
  expect(report.error).toBeNull();
  const stale = report.machine?.profile === 'xen' ? staleAfterUnplug(file, lines, listed) : [];
  expect(
    report.violations.map(({ kind, domain, gfn, mfn, count, present }) => ({
      kind,
      domain,
      gfn,
      mfn,
      count,
      present,
    })),
  ).toEqual(stale);

  // Every access replayed; every decision accounted for, none unexplained.
  const accesses = lines.filter((l) => /^(\d+@[\d.]+:)?pci_cfg_(read|write) /.test(l)).length;
  const decisions = lines.filter((l) => /^(\d+@[\d.]+:)?pci_update_mappings_(add|del) /.test(l)).length;
  expect(qemu.counts.found).toBe(accesses);
  expect(qemu.counts.replayed).toBe(accesses);
  expect(qemu.counts.dropped).toEqual([]);
  expect(qemu.decisions.total).toBe(decisions);
  expect(qemu.decisions.matched + qemu.decisions.explained).toBe(decisions);
  expect(qemu.divergences.filter((d) => !d.explained)).toEqual([]);
  expect(report.status).toBe(stale.length === 0 ? 'ok' : 'failed');

  // The devices are info pci's, with its ids.
  expect(report.devices.map((d) => d.sbdf).sort()).toEqual([...listed.keys()].sort());
  for (const device of report.devices) {
    const known = !atEnd(device.sbdf).unknown.some((u) => u.what === 'ids');
    if (!known && startsLate && !withMonitor) continue;
    expect(known, `${device.sbdf} ids known`).toBe(true);
    expect(`${device.vendorId}:${device.deviceId}`, device.sbdf).toBe(listed.get(device.sbdf)!.ids);
  }

  // Final placement: every BAR QEMU maps is where QEMU has it, memory BARs mapped at those frames;
  // nothing else is mapped.
  let compared = 0;
  for (const [sbdf, device] of listed) {
    const mine = report.devices.find((d) => d.sbdf === sbdf)!;
    for (const [index, bar] of device.bars) {
      const found = mine.bars.find((b) => (index === 6 ? b.type === 'rom' : b.index === index));
      const where = `${sbdf} BAR${index}`;
      if (bar.addr === null) {
        expect(found?.enabled ?? false, `${where} not mapped`).toBe(false);
        continue;
      }
      expect(found, where).toBeDefined();
      expect(`${where} ${found!.addr}`).toBe(`${where} 0x${bar.addr.toString(16)}`);
      expect(found!.type === 'io', `${where} I/O`).toBe(bar.io);
      compared++;
      if (bar.io) continue;
      expect(found!.enabled, `${where} mapped`).toBe(true);
      expect(BigInt(found!.size), `${where} size`).toBe(bar.size);
      const frames = [page(bar.addr), page(bar.addr + bar.size - 1n)];
      expect(found!.gfns, `${where} gfns`).toEqual(frames);
      expect(found!.mfns, `${where} mfns`).toEqual(frames);
    }
    for (const bar of mine.bars.filter((b) => b.enabled)) {
      const index = bar.type === 'rom' ? 6 : bar.index;
      expect(device.bars.get(index)?.addr, `${sbdf} BAR${index}: QEMU maps it too`).toBe(BigInt(bar.addr));
    }
  }
  expect(compared).toBeGreaterThan(3);

  // Bridges: BAR0-1 and the ROM only, their windows as QEMU has them.
  for (const [sbdf, device] of listed) {
    if (!device.bridge) continue;
    const mine = report.devices.find((d) => d.sbdf === sbdf)!;
    expect(
      mine.bars.filter((b) => b.type !== 'rom' && b.index >= 2),
      `${sbdf} has no BAR2-5`,
    ).toEqual([]);
    const windows = atEnd(sbdf).windows;
    for (const [kind, name] of [
      ['io', 'IO'],
      ['memory', 'memory'],
      ['prefetchable', 'prefetchable memory'],
    ] as const) {
      const [base, limit] = device.windows.get(name)!;
      const w = windows.find((x) => x.kind === kind)!;
      expect(`${sbdf} ${kind} ${w.base}-${w.limit}`).toBe(
        `${sbdf} ${kind} 0x${base.toString(16)}-0x${limit.toString(16)}`,
      );
    }
  }

  // MSI-X: each table (and PBA, with the monitor output) is where info mtree has it. Without the
  // monitor output a PBA the log never showed is said unknown and makes no hole of its own.
  for (const device of report.devices) {
    const msix = device.msix;
    if (msix === null) continue;
    const tableBar = device.bars.find((b) => b.index === msix.table.bar)!;
    if (!tableBar.enabled) continue;
    const structurePages = (s: typeof msix.table): string[] => {
      const bar = device.bars.find((b) => b.index === s.bar)!;
      const start = BigInt(bar.addr) + BigInt(s.offset);
      return [page(start), page(start + BigInt(s.size) - 1n)];
    };
    const inBar = (ranges: [bigint, bigint][]) =>
      ranges.filter(
        ([first]) => first >= BigInt(tableBar.addr) && first < BigInt(tableBar.addr) + BigInt(tableBar.size),
      );
    const [table] = inBar(regions.table);
    expect(table, `${device.sbdf}: info mtree has its MSI-X table`).toBeDefined();
    expect(structurePages(msix.table), `${device.sbdf} MSI-X table pages`).toEqual([
      page(table![0]),
      page(table![1]),
    ]);
    const q = atEnd(device.sbdf);
    const pbaUnknown = q.unknown.some((u) => u.what === 'MSI-X PBA');
    if (withMonitor || !pbaUnknown) {
      expect(pbaUnknown).toBe(false);
      const pbaBar = device.bars.find((b) => b.index === msix.pba.bar)!;
      const [pba] = regions.pba.filter(
        ([first]) => first >= BigInt(pbaBar.addr) && first < BigInt(pbaBar.addr) + BigInt(pbaBar.size),
      );
      expect(structurePages(msix.pba), `${device.sbdf} MSI-X PBA pages`).toEqual([
        page(pba![0]),
        page(pba![1]),
      ]);
    } else {
      const holes = device.bars.flatMap((b) => b.holes);
      expect(
        holes.filter((h) => h.reason === 'msix-pba'),
        `${device.sbdf}: no PBA hole`,
      ).toEqual([]);
    }
  }
}

describe('QEMU traces', () => {
  it('are there: SeaBIOS, OVMF, qboot, i440fx, MSI-X drivers, a pci_cfg_* only capture, renumbered buses', () => {
    for (const name of SCENARIOS)
      expect(
        logs.some((f) => nameOf(f) === name),
        name,
      ).toBe(true);
    for (const file of logs) expect(existsSync(new URL(`${nameOf(file)}.monitor.txt`, fixtures))).toBe(true);
  });

  describe.each(logs)('%s', (file) => {
    const lines = readLog(file);

    it('as captured: every access replayed, no unexplained divergence, the machine info pci shows', () => {
      checkAgainstQemu(file, lines, replay(file, lines, false), false);
    });

    it('without its region events: the same, every access size inferred', () => {
      const stripped = stripRegions(lines);
      const report = replay(file, stripped, false);
      checkAgainstQemu(file, stripped, report, false);
      expect(report.qemu!.counts.sizesInferred).toBe(report.qemu!.counts.replayed);
      const full = replay(file, lines, false);
      expect(report.devices).toEqual(full.devices);
      // Without region lines no read shows a slot empty or a device ejected: a device that arrived
      // may look there from the start, and one that left goes when another model takes its place.
      const lifeless = (devices: readonly QemuDevice[]) =>
        devices.map(({ hotPlugged: _plugged, unplugged: _unplugged, ...rest }) => rest);
      expect(lifeless(report.qemu!.devices)).toEqual(lifeless(full.qemu!.devices));
    });

    it("under the qemu rules (pci_update_mappings): every one of QEMU's decisions matched, none explained", () => {
      const report = replay(file, lines, true, 'qemu');
      const decisions = lines.filter((l) => /^(\d+@[\d.]+:)?pci_update_mappings_(add|del) /.test(l)).length;
      expect(report.machine?.rules).toBe('qemu');
      expect(report.qemu!.decisions).toEqual({
        compared: decisions > 0,
        total: decisions,
        matched: decisions,
        explained: 0,
        unexplained: 0,
      });
      expect(report.qemu!.divergences).toEqual([]);
      checkAgainstQemu(file, lines, report, true);
    });

    it('with the monitor output: the MSI-X PBAs are info mtree’s, nothing stays unknown', () => {
      const report = replay(file, lines, true);
      checkAgainstQemu(file, lines, report, true);
      // The monitor output shows the end: of a device that left before (hot unplug) only what the log
      // showed is known, and Linux never reads a PBA register.
      const [left, there] = [true, false].map((gone) =>
        report.qemu!.devices.filter((d) => (d.unplugged !== undefined) === gone),
      );
      expect(there!.flatMap((d) => d.unknown)).toEqual([]);
      for (const d of left!)
        expect(d.unknown.map((u) => u.what).filter((w) => w !== 'MSI-X PBA')).toEqual([]);
    });
  });

  describe.each(logs.filter((f) => steps(f).length > 0))('hot plug: %s', (file) => {
    const lines = readLog(file);
    const monitor = parseQemuMonitor(readFileSync(new URL(`${nameOf(file)}.monitor.txt`, fixtures), 'utf8'));
    const conversion = convertQemuLog(lines, { name: file, monitor });
    const added = steps(file).filter((s) => s.command === 'device_add');
    const deleted = new Set(
      steps(file)
        .filter((s) => s.command === 'device_del')
        .map((s) => s.model),
    );

    it("each device the monitor added arrives at its first access, after boot, with QEMU's BAR sizes", () => {
      const boot = conversion.trace.indexOf('{"event":"boot"}');
      for (const step of added) {
        const first = accessLines(lines, step.model)[0]!;
        const device = conversion.devices.find((d) => d.name === step.model);
        expect(device?.hotPlugged, step.model).toBe(first);
        // Its device line: after boot, right before the access of its first log line.
        const at = conversion.trace.findIndex(
          (l, i) => i > boot && l.startsWith('{"event":"device"') && conversion.sourceLines[i] === first,
        );
        expect(at, `${step.model}'s device line after boot`).toBeGreaterThan(boot);
        const event = JSON.parse(conversion.trace[at]!) as {
          sbdf: string;
          sizes: { bars: (string | null)[] };
        };
        expect(event.sbdf).toBe(device!.sbdf);
        expect(conversion.sourceLines[at + 1], `${step.model}'s first access`).toBe(first);
        expect(JSON.parse(conversion.trace[at + 1]!).sbdf).toBe(device!.sbdf);
        // Each BAR QEMU mapped for it has the size QEMU mapped.
        const sizes = new Map<number, bigint>();
        for (const l of lines) {
          const m = decisionLine.exec(l);
          if (m !== null && m[2] === step.model) sizes.set(Number(m[3]), BigInt(m[5]!));
        }
        expect(sizes.size, `QEMU mapped ${step.model}`).toBeGreaterThan(0);
        for (const [bar, size] of sizes) {
          if (bar === 6) continue;
          expect(`${step.model} BAR${bar} ${event.sizes.bars[bar]}`).toBe(
            `${step.model} BAR${bar} 0x${size.toString(16)}`,
          );
        }
      }
      // The devices of the command line were there from the start.
      for (const device of conversion.devices.filter((d) => !added.some((s) => s.model === d.name)))
        expect(device.hotPlugged, `${device.sbdf} ${device.name}`).toBeUndefined();
    });

    it('each device the monitor deleted leaves after its last access and before the next in its slot', () => {
      for (const device of conversion.devices) {
        if (!deleted.has(device.name)) {
          expect(device.unplugged, `${device.sbdf} ${device.name}`).toBeUndefined();
          continue;
        }
        const mine = accessLines(lines, device.name);
        expect(device.unplugged!, device.name).toBeGreaterThan(mine.at(-1)!);
        const next = conversion.devices.find((d) => d.sbdf === device.sbdf && (d.hotPlugged ?? 0) > mine[0]!);
        if (next !== undefined) expect(device.unplugged!, device.name).toBeLessThanOrEqual(next.hotPlugged!);
        // The trace unplugs it there, after its last access.
        const unplug = conversion.trace.indexOf(`{"event":"unplug","sbdf":"${device.sbdf}"}`);
        expect(conversion.sourceLines[unplug]).toBe(device.unplugged);
      }
      expect(conversion.devices.filter((d) => d.unplugged !== undefined).map((d) => d.name)).toEqual([
        ...deleted,
      ]);
    });

    it("a slot's devices in turn are devices of their own: two device lines, neither with the other's BARs", () => {
      const slots = new Map<string, string[]>();
      for (const d of conversion.devices) slots.set(d.sbdf, [...(slots.get(d.sbdf) ?? []), d.name]);
      const shared = [...slots].filter(([, names]) => names.length > 1);
      expect(shared.length).toBeGreaterThan(0);
      for (const [sbdf] of shared) {
        const events = conversion.trace.filter((l) => l.startsWith(`{"event":"device","sbdf":"${sbdf}"`));
        expect(events.length, sbdf).toBe(slots.get(sbdf)!.length);
      }
    });

    it('under the hardened profile (unmapOnDeassign) a device that left takes its pages with it: no violation', () => {
      const report = replay(file, lines, true, 'xen', 'hardened');
      expect(report.violations).toEqual([]);
      expect(report.status).toBe('ok');
      expect(report.qemu!.divergences.filter((d) => !d.explained)).toEqual([]);
    });
  });

  it('Linux turned MSI-X on for NVMe, virtio-net and e1000e: enabled, the table page a hole', () => {
    for (const file of logs.filter((f) => nameOf(f).endsWith('-linux'))) {
      const report = replay(file, readLog(file), true);
      const withMsix = report.devices.filter((d) => ['0x10', '0x1000', '0x10d3'].includes(d.deviceId));
      expect(withMsix.length, file).toBeGreaterThan(0);
      for (const device of withMsix) {
        expect(device.msix?.enabled, `${file} ${device.sbdf}`).toBe(true);
        expect(device.bars.flatMap((b) => b.holes.map((h) => h.reason))).toContain('msix-table');
      }
    }
  });

  it('the size rule agrees with QEMU’s region lines on every write to a command, BAR, ROM or MSI-X control register', () => {
    for (const file of logs.filter((f) => nameOf(f) !== 'cfgonly-linux')) {
      const lines = readLog(file);
      const sized = convertQemuLog(lines).trace;
      const inferred = convertQemuLog(stripRegions(lines)).trace;
      // Where each device's MSI-X control register is: walk the capability list of its image.
      const msixControl = new Map<string, number>();
      for (const line of sized.filter((l) => l.startsWith('{"event":"device"'))) {
        const device = JSON.parse(line) as { sbdf: string; image: string[] };
        const bytes = device.image.flatMap((row) =>
          row
            .split(': ')[1]!
            .split(' ')
            .map((b) => Number.parseInt(b, 16)),
        );
        for (
          let pos = bytes[0x34]! & ~3, ttl = 48;
          pos >= 0x40 && ttl > 0;
          pos = bytes[pos + 1]! & ~3, ttl--
        ) {
          if (bytes[pos] === 0x11) msixControl.set(device.sbdf, pos + 2);
        }
      }
      const bridge = (line: string) => JSON.parse(line).image[0].split(' ')[15] === '01';
      const bridges = new Set(
        sized
          .filter((l) => l.startsWith('{"event":"device"') && bridge(l))
          .map((l) => JSON.parse(l).sbdf as string),
      );
      const writes = (trace: readonly string[]) =>
        trace
          .filter((l) => l.startsWith('{"event":"write"'))
          .map((l) => JSON.parse(l) as { sbdf: string; reg: string; size: number });
      const a = writes(sized);
      const b = writes(inferred);
      expect(b.length, file).toBe(a.length);
      let compared = 0;
      a.forEach((w, i) => {
        const reg = Number(w.reg);
        const romReg = bridges.has(w.sbdf) ? 0x38 : 0x30;
        const barEnd = bridges.has(w.sbdf) ? 0x18 : 0x28;
        const acted =
          reg === 0x04 || (reg >= 0x10 && reg < barEnd) || reg === romReg || reg === msixControl.get(w.sbdf);
        if (!acted) return;
        compared++;
        expect(`${file} ${w.sbdf} @${w.reg} size ${b[i]!.size}`).toBe(
          `${file} ${w.sbdf} @${w.reg} size ${w.size}`,
        );
      });
      expect(compared, file).toBeGreaterThan(10);
    }
  });

  it('with the PID@SECONDS.MICROS: prefix QEMU writes with timestamps on: the same replay', () => {
    const file = 'seabios-testdev.trace.log';
    const lines = readLog(file);
    const stamped = lines.map((l, i) => (l === '' ? l : `4242@${1_700_000_000 + i}.000123:${l}`));
    const report = replay(file, stamped, false);
    checkAgainstQemu(
      file,
      stamped.map((l) => l.replace(/^\d+@[\d.]+:/, '')),
      report,
      false,
    );
    expect(report.devices).toEqual(replay(file, lines, false).devices);
  });

  it('vpci-replay --qemu --rules qemu: every decision matched, exit 0; the report names the rule set', async () => {
    const file = 'seabios-testdev.trace.log';
    const decisions = readLog(file).filter((l) => l.startsWith('pci_update_mappings_')).length;
    let stdout = '';
    const status = await replayCli(
      ['--qemu', '--rules', 'qemu', '--json', new URL(file, fixtures).pathname],
      {
        stdout: { write: (t: string) => (stdout += t) },
        stderr: { write: () => true, isTTY: false },
      },
    );
    expect(status).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.machine.rules).toBe('qemu');
    expect(report.qemu.decisions).toEqual({
      compared: true,
      total: decisions,
      matched: decisions,
      explained: 0,
      unexplained: 0,
    });
  });

  it('a log that starts late (Linux only) still ends where info pci says', () => {
    const file = 'seabios-linux.trace.log.gz';
    const lines = readLog(file);
    // Linux's first config access: the first one after SeaBIOS's last (the first unmap is Linux sizing).
    const firstUnmap = lines.findIndex((l) => l.startsWith('pci_update_mappings_del'));
    const late = lines.slice(Math.max(0, firstUnmap - 50));
    for (const withMonitor of [false, true]) {
      checkAgainstQemu(file, late, replay(file, late, withMonitor), withMonitor, true);
    }
  });
});

describe('QEMU logs that are not', () => {
  const cli = async (name: string, content: Uint8Array | string, extra: string[] = []) => {
    const file = join(mkdtempSync(join(tmpdir(), 'vpci-qemu-')), name);
    writeFileSync(file, content);
    let stderr = '';
    let stdout = '';
    const status = await replayCli(['--qemu', ...extra, file], {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t), isTTY: false },
    });
    return { status, stderr, stdout, file };
  };

  it('a malformed log line is reported with the log line, exit 2', async () => {
    const lines = readLog('seabios-testdev.trace.log');
    lines[9] = 'pci_cfg_read mch 00:00.0 @0x0 => 0x8086';
    const { status, stderr, file } = await cli('bad.log', lines.join('\n'));
    expect(status).toBe(2);
    expect(stderr).toContain(`${file}:10: a pci_cfg_read line not in QEMU's format`);
  });

  it.each([
    ['an empty log', 'empty.log', '', ':1: the log is empty; expected QEMU trace lines'],
    [
      'binary data',
      'core.bin',
      Uint8Array.from([0x7f, 0x45, 0x4c, 0x46, 0x0a, 0x00, 0x01]),
      ':2: binary data',
    ],
    [
      'a JSON Lines trace',
      'seed.jsonl',
      '{"event":"host","profile":"xen"}\n{"event":"boot"}\n',
      ':1: a JSON Lines trace, not a QEMU log',
    ],
    [
      'region lines alone',
      'regions.log',
      "memory_region_ops_write cpu 0 mr 0x5 addr 0xcf8 value 0x80000000 size 4 name 'pci-conf-idx'\nmemory_region_ops_read cpu 0 mr 0x6 addr 0xcfc value 0x29c08086 size 4 name 'pci-conf-data'\n",
      ':2: 2 memory_region_ops lines but no pci_cfg_read or pci_cfg_write line',
    ],
    [
      'a line of 10 MB',
      'long.log',
      `pci_cfg_read mch 00:00.0 @0x0 -> 0x8086\n${'x'.repeat(10_000_000)}\n`,
      ':2: a line of 10,000,000 characters; expected QEMU trace output',
    ],
    [
      'a corrupt gzip file',
      'cut.log.gz',
      gzipSync('pci_cfg_read mch 00:00.0 @0x0 -> 0x8086\n'.repeat(100)).subarray(0, 30),
      ':1: not valid gzip data',
    ],
  ])('%s: exit 2, file:line: what was wrong; what was expected', async (_what, name, content, message) => {
    const { status, stderr, stdout, file } = await cli(name, content);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain(`${file}${message}`);
    expect(stderr).toMatch(/; expected /);
  });

  it('a log that needs no gzip name: gzip is known by its bytes, exit 0', async () => {
    const text = readFileSync(new URL('seabios-testdev.trace.log', fixtures));
    const { status, stdout } = await cli('testdev.log', gzipSync(text));
    expect(status).toBe(0);
    expect(stdout).toContain('508 config accesses found (pci_cfg_* lines), 508 replayed, 0 dropped');
    expect(stdout).toContain(
      "QEMU's 16 mapping decisions: 10 matched, 6 explained by Xen's rules, 0 unexplained",
    );
    const json = await cli('testdev.log', text, ['--json']);
    expect(json.status).toBe(0);
    const counts = JSON.parse(json.stdout).qemu.counts;
    expect([counts.found, counts.replayed, counts.dropped, counts.lines]).toEqual([508, 508, [], 1524]);
  });

  it('--qemu-monitor with nothing of the monitor in it is bad input', async () => {
    const monitor = join(mkdtempSync(join(tmpdir(), 'vpci-qemu-')), 'monitor.txt');
    writeFileSync(monitor, 'hello\n');
    const text = readFileSync(new URL('seabios-testdev.trace.log', fixtures));
    const { status, stderr } = await cli('testdev.log', text, ['--qemu-monitor', monitor]);
    expect(status).toBe(2);
    expect(stderr).toContain(
      `--qemu-monitor ${monitor}: no "info pci" or "info mtree" output in it; expected`,
    );
  });
});
