/**
 * QEMU's own BAR mapping decisions (`pci_update_mappings_add` / `_del`) as an oracle for a replayed
 * QEMU log. After each replayed write (once the vCPU finished the work it deferred) the written
 * device's BARs, and those of any device QEMU decided about since, are held against what QEMU had
 * mapped at that point; at the end, every device's. Where they differ, a divergence is recorded at
 * the write where it began (or changed), with the log lines, and classified:
 *
 * - `io-bar`: QEMU maps an I/O BAR; Xen hands the hardware domain its I/O BARs as ports, and vPCI
 *   maps no I/O BAR.
 * - `bar-write-ignored`: Xen ignored a write to the BAR (or ROM) while it was mapped (its warning
 *   "ignored BAR write while mapped"), so the hardware kept the old address where QEMU took the new
 *   one; it stays explained until the BAR is written again and the write is not ignored, or both map
 *   it at one address.
 * - otherwise unexplained: the replay fails.
 *
 * The two classes are Xen's rules: under another rule set (`--rules qemu`) nothing explains a
 * difference, and the `qemu` rules must match every decision (an I/O BAR's ports included).
 *
 * Each decision counts as matched when, after its write, the replay has that BAR where QEMU has it,
 * and otherwise takes the class of the divergence there.
 *
 * A device that left (the trace's `unplug`) takes its BARs out of QEMU's view too: QEMU detaches a
 * device with its memory regions and logs no decision for that; a device that takes the address later
 * starts with nothing mapped and nothing differing.
 */
import type { Machine } from '@vpci/vpci';
import { hex } from './fields.js';
import type { QemuConversion, QemuMapping } from './qemu.js';
import type { DivergenceRule, ReportDivergence, ReportQemu } from './qemu-report.js';
import type { LoggedEvent, ReplayOptions } from './replayer.js';
import type { Report } from './report.js';
import { TraceReplay } from './run.js';

/** The state of one BAR: where it is mapped (null: not mapped), and whether it is an I/O BAR. */
interface BarState {
  readonly addr: bigint | null;
  readonly io: boolean;
}

/** Compares a replay with QEMU's decisions as the replay goes (see the module comment). */
export class QemuOracle {
  private readonly conversion: QemuConversion;
  /** What QEMU has mapped now: `sbdf → bar → address`. */
  private readonly qemu = new Map<string, Map<number, bigint>>();
  /** The last difference found per `sbdf#bar` (empty: none). */
  private readonly differing = new Map<string, string>();
  /** The log line of a write Xen ignored while its BAR was mapped, per `sbdf#bar`, until resolved. */
  private readonly ignored = new Map<string, number>();
  private readonly divergences: ReportDivergence[] = [];
  private readonly tally = { total: 0, matched: 0, explained: 0, unexplained: 0 };
  private nextCheckpoint = 0;
  private nextUnplug = 0;
  private eventsSeen = 0;

  constructor(conversion: QemuConversion) {
    this.conversion = conversion;
    for (const [sbdf, bars] of conversion.mappedAtStart) this.qemu.set(sbdf, new Map(bars));
  }

  /** Whether there is anything to compare with: a log with no decisions was traced without them. */
  get comparing(): boolean {
    return this.conversion.mappings.length > 0;
  }

  /** Called after trace line `line` (1-based) was applied, with the replay's machine and events. */
  afterLine(line: number, machine: Machine | undefined, events: readonly LoggedEvent[]): void {
    if (!this.comparing) return;
    this.noteIgnoredWrites(machine, events);
    const unplug = this.conversion.unplugs[this.nextUnplug];
    if (unplug?.traceLine === line) {
      this.nextUnplug++;
      this.forget(unplug.sbdf);
    }
    const checkpoint = this.conversion.checkpoints[this.nextCheckpoint];
    if (checkpoint === undefined || checkpoint.traceLine !== line || machine === undefined) return;
    this.nextCheckpoint++;
    // A write the replay took clears an ignored write of the BARs it reached.
    for (const bar of barsWritten(machine, checkpoint.sbdf, checkpoint.reg, checkpoint.size)) {
      const key = `${checkpoint.sbdf}#${bar}`;
      if (this.ignored.get(key) !== checkpoint.line) this.ignored.delete(key);
    }
    this.compare(machine, checkpoint.line, checkpoint.mappings, [checkpoint.sbdf]);
  }

  /** The end: QEMU's last decisions and every device compared; the report section. */
  finish(machine: Machine | undefined, events: readonly LoggedEvent[], log: string): ReportQemu {
    this.noteIgnoredWrites(machine, events);
    if (machine !== undefined && this.comparing) {
      const all = new Set<string>([...machine.devices().map((d) => d.name), ...this.qemu.keys()]);
      this.compare(machine, this.conversion.counts.lines, this.conversion.finalMappings, [...all]);
    }
    return {
      log,
      counts: this.conversion.counts,
      devices: this.conversion.devices,
      decisions: { compared: this.comparing, ...this.tally },
      divergences: this.divergences,
    };
  }

  /** A device left: QEMU's mappings of it and what differed about it go with it. */
  private forget(sbdf: string): void {
    this.qemu.delete(sbdf);
    for (const map of [this.differing, this.ignored])
      for (const key of [...map.keys()]) if (key.startsWith(`${sbdf}#`)) map.delete(key);
  }

  /** Notes the replay's ignored BAR and ROM writes since the last call. */
  private noteIgnoredWrites(machine: Machine | undefined, events: readonly LoggedEvent[]): void {
    for (; this.eventsSeen < events.length; this.eventsSeen++) {
      const { line, event } = events[this.eventsSeen]!;
      if (event.kind !== 'bar-write-ignored' && event.kind !== 'rom-write-ignored') continue;
      let bar = 6;
      if (event.kind === 'bar-write-ignored') {
        const slot = machine?.findDevice(event.sbdf)?.vpci?.bars[event.bar];
        bar = slot?.type === 'mem64hi' ? event.bar - 1 : event.bar;
      }
      this.ignored.set(`${event.sbdf}#${bar}`, this.conversion.sourceLines[line - 1] ?? 0);
    }
  }

  /** Applies `mappings` to QEMU's state, then compares `devices` and the ones they name. */
  private compare(machine: Machine, line: number, mappings: readonly QemuMapping[], devices: string[]): void {
    for (const m of mappings) {
      const bars = this.qemu.get(m.sbdf) ?? new Map<number, bigint>();
      this.qemu.set(m.sbdf, bars);
      if (m.added) bars.set(m.bar, m.addr);
      else bars.delete(m.bar);
    }
    const named = new Set([...devices, ...mappings.map((m) => m.sbdf)]);
    for (const sbdf of named) {
      const engine = engineBars(machine, sbdf);
      const qemu = this.qemu.get(sbdf) ?? new Map<number, bigint>();
      // A BAR decided about counts even when neither side has it now (QEMU's unmapping of a device
      // that has left: both have it unmapped).
      const decidedBars = mappings.filter((m) => m.sbdf === sbdf).map((m) => m.bar);
      for (const bar of new Set([...engine.keys(), ...qemu.keys(), ...decidedBars])) {
        const decided = mappings.filter((m) => m.sbdf === sbdf && m.bar === bar);
        const mine = engine.get(bar) ?? { addr: null, io: false };
        const theirs = qemu.get(bar) ?? null;
        const key = `${sbdf}#${bar}`;
        if (mine.addr === theirs) {
          this.differing.set(key, '');
          if (theirs !== null) this.ignored.delete(key);
          this.count(decided, 'matched');
          continue;
        }
        const rule: DivergenceRule | null =
          machine.rules.name !== 'xen'
            ? null
            : mine.io
              ? 'io-bar'
              : this.ignored.has(key)
                ? 'bar-write-ignored'
                : null;
        this.count(decided, rule === null ? 'unexplained' : 'explained');
        const signature = `${theirs}/${mine.addr}/${rule}`;
        if (this.differing.get(key) === signature) continue;
        this.differing.set(key, signature);
        this.divergences.push({
          line,
          sbdf,
          bar,
          qemu: theirs === null ? null : hex(theirs),
          engine: mine.addr === null ? null : hex(mine.addr),
          decisions: decided.map((m) => m.line),
          explained: rule !== null,
          rule,
          message: describe(sbdf, bar, theirs, mine.addr, rule, this.ignored.get(key), machine.rules.name),
        });
      }
    }
  }

  private count(decided: readonly QemuMapping[], how: 'matched' | 'explained' | 'unexplained'): void {
    this.tally.total += decided.length;
    this.tally[how] += decided.length;
  }
}

/** The replay's BARs of a device by QEMU's numbering (the ROM as 6): where each is mapped. */
function engineBars(machine: Machine, sbdf: string): Map<number, BarState> {
  const out = new Map<number, BarState>();
  const vpci = machine.findDevice(sbdf)?.vpci;
  if (vpci === undefined) return out;
  for (const bar of vpci.bars) {
    const index = bar.type === 'rom' ? 6 : bar.index;
    // Xen never decodes an I/O BAR (the hardware domain has the ports); a rule set that does says so.
    if (bar.type === 'io') out.set(index, { addr: bar.portsDecoded ? bar.addr : null, io: true });
    else if (bar.type === 'mem32' || bar.type === 'mem64lo' || bar.type === 'rom')
      out.set(index, { addr: bar.enabled ? bar.addr : null, io: false });
  }
  return out;
}

/** QEMU's BAR numbers (6: the ROM) whose registers a write of `[reg, reg + size)` reached. */
function barsWritten(machine: Machine, sbdf: string, reg: number, size: number): number[] {
  const vpci = machine.findDevice(sbdf)?.vpci;
  if (vpci === undefined) return [];
  const out: number[] = [];
  const romReg = vpci.romSlot === 2 ? 0x38 : 0x30;
  if (reg < romReg + 4 && reg + size > romReg) out.push(6);
  for (const bar of vpci.bars) {
    if (bar.index >= vpci.romSlot) continue;
    const start = 0x10 + 4 * bar.index;
    if (reg < start + 4 && reg + size > start) out.push(bar.type === 'mem64hi' ? bar.index - 1 : bar.index);
  }
  return out;
}

function describe(
  sbdf: string,
  bar: number,
  qemu: bigint | null,
  engine: bigint | null,
  rule: DivergenceRule | null,
  ignoredAt: number | undefined,
  rules: string,
): string {
  const name = `${sbdf} ${bar === 6 ? 'ROM' : `BAR${bar}`}`;
  const theirs = qemu === null ? 'QEMU has it unmapped' : `QEMU maps it at ${hex(qemu)}`;
  const mine = engine === null ? 'the replay does not map it' : `the replay maps it at ${hex(engine)}`;
  const why =
    rule === 'io-bar'
      ? 'an I/O BAR: Xen hands the hardware domain its I/O BARs as ports, vPCI maps none'
      : rule === 'bar-write-ignored'
        ? `Xen ignored the write of line ${ignoredAt} while the BAR was mapped`
        : rules === 'xen'
          ? 'no Xen rule explains it'
          : `the ${rules} rules should have decided as QEMU did`;
  return `${name}: ${theirs}, ${mine}; ${why}`;
}

/**
 * Replays a converted log with the oracle: the report, with its `qemu` section; `failed` when a
 * divergence no Xen rule explains was found. `onLine` sees each trace line before it is fed.
 */
export function replayQemuConversion(
  conversion: QemuConversion,
  name: string,
  options: ReplayOptions = {},
  onLine?: (text: string, index: number) => void,
): Report {
  const replay = new TraceReplay(name, options);
  const oracle = new QemuOracle(conversion);
  const { trace } = conversion;
  for (let i = 0; i < trace.length; i++) {
    onLine?.(trace[i]!, i);
    if (!replay.feed(trace[i]!)) break;
    oracle.afterLine(i + 1, replay.replayer.machine, replay.replayer.events);
  }
  const report = replay.end();
  const qemu = oracle.finish(replay.replayer.machine, replay.replayer.events, name);
  const unexplained = qemu.divergences.some((d) => !d.explained);
  return { ...report, status: report.status === 'ok' && unexplained ? 'failed' : report.status, qemu };
}
