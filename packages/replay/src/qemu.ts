/**
 * QEMU trace logs (`qemu-system-x86_64 -trace 'pci_cfg_*' -trace 'pci_update_mappings_*' -trace
 * 'memory_region_ops_*' …`) as traces: what SeaBIOS, OVMF, qboot and Linux really did to config
 * space, replayed as the hardware domain's accesses (a PVH dom0 whose BARs are identity-mapped), with
 * QEMU's own BAR mapping decisions kept to hold the replay against (qemu-oracle.ts). docs/qemu-logs.md
 * says how to capture a log and what is inferred.
 *
 * Every `pci_cfg_read`/`pci_cfg_write` line is an access: the device and register come from the line
 * (the device kept by where it sits when bus numbers change, qemu-identity.ts), the size from its
 * region line or, without one, from the rule of qemu-sizes.ts. An access is dropped only when it
 * cannot be replayed (a size other than 1, 2 or 4 bytes, beyond 4 KiB of config space); each class of
 * dropped access is counted with the first line it happened on. The devices are rebuilt from the log
 * (qemu-device.ts, qemu-rebuild.ts), with a config-space dump and QEMU's monitor output filling what
 * the log never showed.
 *
 * A write is followed by a `run` line: Xen finishes the work a write deferred before the vCPU returns
 * to the guest, so that is when the replay's mappings are compared with QEMU's.
 *
 * Hot plug: a device that arrived while the log ran (qemu-identity.ts says when) is a `device` line
 * after `boot`, just before its first access (Xen's `pci_add_device` when dom0 reports it); a device
 * that left is an `unplug` line where the log shows it gone: before the write that turned its slot's
 * power off (qemu-slot-power.ts; dom0 removes a device before powering its slot off), else at the
 * first unanswered read of its address, an ACPI eject of its slot (qemu-log.ts), or the first line
 * of the device that took its place.
 */
import { formatSbdf, makeSbdf, PCI_CFG_SPACE_EXP_SIZE, parseHexDump } from '@vpci/vpci';
import { hex, TraceError } from './fields.js';
import { LoggedDevice } from './qemu-device.js';
import { DeviceIdentities } from './qemu-identity.js';
import { type MappingLine, type QemuLog, readQemuLog } from './qemu-log.js';
import type { QemuMonitor } from './qemu-monitor.js';
import { rebuildDevice } from './qemu-rebuild.js';
import { turnsSlotPowerOff } from './qemu-slot-power.js';

export { parseInfoPci, parseQemuMonitor } from './qemu-monitor.js';

import { inferSize, registerWidth, valueWidth } from './qemu-sizes.js';

/** One config access as replayed. */
export interface QemuAccess {
  /** A config-space read or write. */
  readonly kind: 'read' | 'write';
  /** The device's address in the replay (its address at the end of the log). */
  readonly sbdf: string;
  /** Register offset in config space. */
  readonly reg: number;
  /** Access size in bytes. */
  readonly size: 1 | 2 | 4;
  /** The value read or written. */
  readonly value: number;
  /** Line of the QEMU log (the `pci_cfg_*` line). */
  readonly line: number;
  /** Whether the size came from the paired region line or from the inference rule. */
  readonly sizeFrom: 'region' | 'inferred';
}

/** A BAR mapping QEMU made or removed (`pci_update_mappings_add` / `_del`). */
export interface QemuMapping {
  /** The device's address in the replay. */
  readonly sbdf: string;
  /** BAR number; 6 is the expansion ROM. */
  readonly bar: number;
  /** Guest address in bytes. */
  readonly addr: bigint;
  /** Size in bytes. */
  readonly size: bigint;
  /** Mapped (`_add`) rather than unmapped (`_del`). */
  readonly added: boolean;
  /** Line of the QEMU log. */
  readonly line: number;
}

/** A class of accesses that could not be replayed. */
export interface QemuDropped {
  /** Why these accesses could not be replayed. */
  readonly reason: string;
  /** How many accesses were dropped for this reason. */
  readonly count: number;
  /** The log line of the first of them. */
  readonly firstLine: number;
}

/** What was read and what became of it. */
export interface QemuCounts {
  /** Lines of the log. */
  readonly lines: number;
  /** `memory_region_ops_*` lines of the config regions. */
  readonly regionLines: number;
  /** Config accesses found: `pci_cfg_read` / `pci_cfg_write` lines. */
  readonly found: number;
  /** Config accesses replayed. */
  readonly replayed: number;
  /** Config accesses not replayed, by reason. */
  readonly dropped: readonly QemuDropped[];
  /** Replayed accesses whose size came from a region line, and those whose size was inferred. */
  readonly sizesFromRegion: number;
  /** Accesses whose size no region line gave, inferred by the documented rule. */
  readonly sizesInferred: number;
  /** Data-port or ECAM accesses no device answered (empty slots): not accesses of any device. */
  readonly emptySlotProbes: number;
}

/**
 * A PCI-to-PCI bridge's window as the log left it: `0x…` bounds (disabled when the limit is below the
 * base), null where the log never showed them.
 */
export interface QemuWindow {
  /** Which of the bridge's three windows. */
  readonly kind: 'io' | 'memory' | 'prefetchable';
  /** First address (`0x…`), or null when the window is disabled. */
  readonly base: string | null;
  /** Last address (`0x…`), or null when the window is disabled. */
  readonly limit: string | null;
}

/** A device of the log. */
export interface QemuDevice {
  /** Its address in the replay (the address it had at the end of the log). */
  readonly sbdf: string;
  /** QEMU's device model name. */
  readonly name: string;
  /** The addresses QEMU printed it at (`BB:DD.F`), first seen first. */
  readonly seenAt: readonly string[];
  /** Header type 0 (endpoint) or 1 (bridge); null when the log never showed it. */
  readonly headerType: 0 | 1 | null;
  /** Bytes the log never showed, filled from an `lspci` image or the monitor output. */
  readonly filled: readonly { readonly what: string; readonly from: 'image' | 'monitor' }[];
  /** What matters and stays unknown, and what the replay does about it. */
  readonly unknown: readonly { readonly what: string; readonly effect: string }[];
  /** A bridge's windows (I/O, memory, prefetchable); empty for an endpoint. */
  readonly windows: readonly QemuWindow[];
  /** The log line of its first access, when it arrived while the log ran (hot plug). */
  readonly hotPlugged?: number;
  /** The log line where it was seen gone (see `convertQemuLog`), when it left while the log ran. */
  readonly unplugged?: number;
}

/** What the replay is compared with after a write: the mappings QEMU decided since the last one. */
export interface QemuCheckpoint {
  /** The trace line (1-based) after which to compare: the `run` line following the write. */
  readonly traceLine: number;
  /** The log line of the write. */
  readonly line: number;
  /** The device written and the register range. */
  readonly sbdf: string;
  /** First register written. */
  readonly reg: number;
  /** Bytes written. */
  readonly size: number;
  /** The mappings QEMU decided since the previous write. */
  readonly mappings: readonly QemuMapping[];
}

/** A converted log. */
export interface QemuConversion {
  /** The trace, one JSON line each (comments included). */
  readonly trace: readonly string[];
  /** The QEMU log line each trace line came from (0 for the set-up lines). */
  readonly sourceLines: readonly number[];
  /** QEMU's own BAR mappings, in log order. */
  readonly mappings: readonly QemuMapping[];
  /** The devices found, by address. */
  readonly devices: readonly QemuDevice[];
  /** What the log held and what was replayed or dropped. */
  readonly counts: QemuCounts;
  /** After each replayed write, in order. */
  readonly checkpoints: readonly QemuCheckpoint[];
  /** QEMU's decisions after the last replayed write (compared at the end). */
  readonly finalMappings: readonly QemuMapping[];
  /** Where QEMU had BARs mapped when the log began (a BAR whose first decision is an unmap). */
  readonly mappedAtStart: ReadonlyMap<string, ReadonlyMap<number, bigint>>;
  /**
   * The devices that left while the log ran, with the trace line (1-based) of their `unplug`: QEMU
   * detaches a device with its BARs, and logs no decision for that.
   */
  readonly unplugs: readonly { readonly traceLine: number; readonly sbdf: string }[];
}

/** Options of a conversion. */
export interface QemuOptions {
  /** The log's name, for the trace's first comment. */
  readonly name?: string;
  /** Config-space dumps (`lspci -xxx`) by SBDF, used under what the log read. */
  readonly images?: ReadonlyMap<string, string>;
  /** QEMU's monitor output (`info pci`, `info mtree`), used under the log and the images. */
  readonly monitor?: QemuMonitor;
}

/** An access as the log walk found it, before its device has its final address. */
interface Found {
  readonly kind: 'read' | 'write';
  readonly device: LoggedDevice;
  readonly reg: number;
  readonly size: 1 | 2 | 4;
  readonly value: number;
  readonly line: number;
  readonly sizeFrom: 'region' | 'inferred';
}

/** A mapping decision and the number of accesses found before it. */
interface Decision {
  readonly entry: MappingLine;
  readonly device: LoggedDevice | undefined;
  readonly after: number;
}

/** The secondary bus number register of a PCI-to-PCI bridge. */
const PCI_SECONDARY_BUS = 0x19;

/** When a device arrived or left: before the access `before` (an index of `found`), at log line `line`. */
interface Moment {
  readonly before: number;
  readonly line: number;
}

/** What the walk over a log's entries found. */
interface Walk {
  readonly found: Found[];
  /** The devices that arrived while the log ran. */
  readonly arrivals: Map<LoggedDevice, Moment>;
  /** The devices that left while the log ran. */
  readonly departures: Map<LoggedDevice, Moment>;
  readonly decisions: Decision[];
  readonly dropped: Map<string, { count: number; firstLine: number }>;
  /** `pci_cfg_*` lines. */
  readonly cfgLines: number;
  /** Each device's address in the replay. */
  readonly names: Map<LoggedDevice, string>;
}

/** Walks the log: each access's device and size, what each device showed, the dropped accesses. */
function walkLog(log: QemuLog): Walk {
  const identities = new DeviceIdentities<LoggedDevice>();
  const found: Found[] = [];
  const decisions: Decision[] = [];
  const dropped = new Map<string, { count: number; firstLine: number }>();
  const arrivals = new Map<LoggedDevice, Moment>();
  const departures = new Map<LoggedDevice, Moment>();
  const leaves = (device: LoggedDevice | undefined, line: number): void => {
    if (device !== undefined && !departures.has(device))
      departures.set(device, { before: found.length, line });
  };
  let cfgLines = 0;
  for (const entry of log.entries) {
    if (entry.type === 'mapping') {
      decisions.push({ entry, device: identities.find(entry.bus, entry.dev, entry.fn), after: found.length });
      continue;
    }
    if (entry.type === 'absent') {
      leaves(identities.absent(entry.bus, entry.dev, entry.fn), entry.line);
      continue;
    }
    if (entry.type === 'eject') {
      // Only the root bus's selector is known (0); another bus's devices stay until seen gone.
      if (entry.selector !== 0) continue;
      for (let dev = 0; dev < 32; dev++) {
        if (((entry.slots >>> dev) & 1) === 0) continue;
        for (let fn = 0; fn < 8; fn++) leaves(identities.absent(0, dev, fn), entry.line);
      }
      continue;
    }
    cfgLines++;
    const occupant = identities.at(
      entry.bus,
      entry.dev,
      entry.fn,
      (d) => d.name === entry.name,
      () => new LoggedDevice(entry.name),
    );
    const device = occupant.device;
    leaves(occupant.replaced, entry.line);
    if (occupant.hotPlugged) arrivals.set(device, { before: found.length, line: entry.line });
    device.seenAt.add(`${hex2(entry.bus)}:${hex2(entry.dev)}.${entry.fn}`);
    const size = entry.size ?? inferSize(entry.reg, entry.value, registerWidth(device.layout(), entry.reg));
    const reason =
      size !== 1 && size !== 2 && size !== 4
        ? `an access size of ${size} bytes (the engine takes 1, 2 or 4)`
        : entry.reg + size > PCI_CFG_SPACE_EXP_SIZE
          ? "beyond the function's 4 KiB of config space"
          : undefined;
    if (reason !== undefined) {
      const seen = dropped.get(reason);
      if (seen === undefined) dropped.set(reason, { count: 1, firstLine: entry.line });
      else seen.count++;
      continue;
    }
    const access: Found = {
      kind: entry.kind,
      device,
      reg: entry.reg,
      size: size as 1 | 2 | 4,
      value: entry.value,
      line: entry.line,
      sizeFrom: entry.size === undefined ? 'inferred' : 'region',
    };
    const certain = access.sizeFrom === 'region' ? access.size : valueWidth(access.value);
    if (access.kind === 'write' && turnsSlotPowerOff(device, access.reg, access.size, access.value))
      for (const gone of identities.poweredOff(device)) leaves(gone, access.line);
    device.observe(access.kind, access.reg, access.size, access.value, certain);
    const known = access.kind === 'write' ? access.size : certain;
    if (
      device.headerType === 1 &&
      access.reg <= PCI_SECONDARY_BUS &&
      access.reg + known > PCI_SECONDARY_BUS
    ) {
      const bus = (access.value >>> (8 * (PCI_SECONDARY_BUS - access.reg))) & 0xff;
      identities.secondary(device, bus, access.kind);
    }
    found.push(access);
  }
  return { found, arrivals, departures, decisions, dropped, cfgLines, names: finalAddresses(identities) };
}

/** The accesses and mapping decisions of a log, devices named by their address in the replay. */
export function parseQemuLog(lines: Iterable<string>): {
  accesses: QemuAccess[];
  mappings: QemuMapping[];
  /** QEMU's device model name by address. */
  names: Map<string, string>;
} {
  const walk = walkLog(readQemuLog(lines));
  return {
    accesses: walk.found.map((a) => access(a, walk.names)),
    mappings: walk.decisions.map((d) => mapping(d, walk.names)),
    names: new Map([...walk.names].map(([device, sbdf]) => [sbdf, device.name])),
  };
}

function access(a: Found, names: ReadonlyMap<LoggedDevice, string>): QemuAccess {
  const { kind, reg, size, value, line, sizeFrom } = a;
  return { kind, sbdf: names.get(a.device)!, reg, size, value, line, sizeFrom };
}

function mapping({ entry, device }: Decision, names: ReadonlyMap<LoggedDevice, string>): QemuMapping {
  return {
    // A device no access showed (QEMU maps only after config writes, so never in practice).
    sbdf: device === undefined ? formatSbdf(makeSbdf(0, entry.bus, entry.dev, entry.fn)) : names.get(device)!,
    bar: entry.bar,
    addr: entry.addr,
    size: entry.size,
    added: entry.added,
    line: entry.line,
  };
}

/** Converts a QEMU log into a trace (see the module comment). Throws `TraceError` with the log's line. */
export function convertQemuLog(lines: Iterable<string>, options: QemuOptions = {}): QemuConversion {
  const log = readQemuLog(lines);
  const { found, arrivals, departures, decisions, dropped, cfgLines, names } = walkLog(log);
  const replayed = found.length;
  if (replayed === 0) throw nothingToReplay(log, cfgLines, dropped);

  // QEMU's decisions by the replay's addresses; per device (a slot's devices in turn share the
  // address), which BARs QEMU decided about and which it had mapped when the log began.
  // (A decision about a device no access showed is kept by the address QEMU printed.)
  const mappings = decisions.map((d) => mapping(d, names));
  const mappedAtStartOf = new Map<LoggedDevice | string, Map<number, bigint>>();
  const decided = new Map<LoggedDevice | string, Set<number>>();
  decisions.forEach(({ device }, i) => {
    const m = mappings[i]!;
    const key = device ?? m.sbdf;
    const bars = decided.get(key) ?? new Set<number>();
    decided.set(key, bars);
    if (bars.has(m.bar)) return;
    bars.add(m.bar);
    if (!m.added) {
      const start = mappedAtStartOf.get(key) ?? new Map<number, bigint>();
      start.set(m.bar, m.addr);
      mappedAtStartOf.set(key, start);
    }
  });
  const mappedAtStart = new Map<string, Map<number, bigint>>();
  for (const [key, bars] of mappedAtStartOf) {
    if (typeof key === 'string') mappedAtStart.set(key, bars);
    else if (!arrivals.has(key)) mappedAtStart.set(names.get(key)!, bars);
  }

  const trace: string[] = [];
  const sourceLines: number[] = [];
  const emit = (text: string, line = 0): void => {
    trace.push(text);
    sourceLines.push(line);
  };
  const droppedCount = droppedTotal(dropped);
  emit(
    `# converted from the QEMU trace log ${options.name ?? '(unnamed)'}: ${replayed} of ${cfgLines} config accesses of ${names.size} devices${droppedCount > 0 ? ` (${droppedCount} dropped)` : ''}, replayed as the hardware domain's; a run line after each write finishes its deferred work, as Xen does before the vCPU returns to the guest`,
  );
  emit('{"event":"host","profile":"xen","vendor":"intel","iommu":true}');
  const devices: QemuDevice[] = [];
  /** A device's `device` line (and the comment before it), rebuilt from the log and what fills it. */
  const emitDevice = (device: LoggedDevice, sbdf: string, line = 0): void => {
    // The image and the monitor output show the machine at the end: only a device still there then.
    const atEnd = !departures.has(device);
    const given = atEnd ? options.images?.get(sbdf) : undefined;
    const monitorDevice = atEnd ? options.monitor?.devices.get(sbdf) : undefined;
    const rebuilt = rebuildDevice(device, {
      ...(given === undefined ? {} : { image: parseHexDump(given) }),
      ...(monitorDevice === undefined ? {} : { monitor: monitorDevice }),
      ...(options.monitor === undefined || !atEnd ? {} : { mtree: options.monitor }),
      mappedAtStart: mappedAtStartOf.get(device) ?? new Map(),
      decided: decided.get(device) ?? new Set(),
    });
    const plugged = arrivals.get(device)?.line;
    const unplugged = departures.get(device)?.line;
    const info: QemuDevice = {
      sbdf,
      name: device.name,
      seenAt: [...device.seenAt],
      headerType: rebuilt.headerType,
      filled: rebuilt.filled,
      unknown: rebuilt.unknown,
      windows: rebuilt.headerType === 1 ? bridgeWindows(device) : [],
      ...(plugged === undefined ? {} : { hotPlugged: plugged }),
      ...(unplugged === undefined ? {} : { unplugged }),
    };
    devices.push(info);
    const sizes = {
      bars: rebuilt.sizes.bars.map((s) => (s === null ? null : hex(s))),
      ...(rebuilt.sizes.rom === undefined ? {} : { rom: hex(rebuilt.sizes.rom) }),
    };
    emit(
      `# ${sbdf}: QEMU device ${device.name}, seen at ${info.seenAt.join(', ')}` +
        (plugged === undefined ? '' : `; hot plugged at line ${plugged}`) +
        (unplugged === undefined ? '' : `; gone at line ${unplugged}`) +
        (info.filled.length === 0
          ? ''
          : `; filled: ${info.filled.map((f) => `${f.what} (${f.from})`).join(', ')}`) +
        (info.unknown.length === 0
          ? ''
          : `; unknown: ${info.unknown.map((u) => `${u.what} (${u.effect})`).join(', ')}`),
      line,
    );
    emit(JSON.stringify({ event: 'device', sbdf, image: hexDump(rebuilt.image), sizes }), line);
  };
  const bySbdf = [...names].sort(([, a], [, b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [device, sbdf] of bySbdf) if (!arrivals.has(device)) emitDevice(device, sbdf);
  emit('{"event":"boot"}');

  // The devices that arrive or leave before each access (index `found.length`: after the last).
  const comings = new Map<number, LoggedDevice[]>();
  const goings = new Map<number, LoggedDevice[]>();
  for (const [moments, at] of [
    [arrivals, comings],
    [departures, goings],
  ] as const) {
    for (const [device, { before }] of moments) at.set(before, [...(at.get(before) ?? []), device]);
  }
  const unplugs: { traceLine: number; sbdf: string }[] = [];
  const comeAndGo = (i: number): void => {
    for (const device of goings.get(i) ?? []) {
      const sbdf = names.get(device)!;
      emit(`{"event":"unplug","sbdf":"${sbdf}"}`, departures.get(device)!.line);
      unplugs.push({ traceLine: trace.length, sbdf });
    }
    for (const device of comings.get(i) ?? [])
      emitDevice(device, names.get(device)!, arrivals.get(device)!.line);
  };

  const accesses: QemuAccess[] = [];
  const checkpoints: QemuCheckpoint[] = [];
  let next = 0; // the next decision not yet given to a checkpoint
  found.forEach((a, i) => {
    comeAndGo(i);
    const sbdf = names.get(a.device)!;
    accesses.push(access(a, names));
    if (a.kind === 'read') {
      emit(`{"event":"read","sbdf":"${sbdf}","reg":"${hex(a.reg)}","size":${a.size}}`, a.line);
      return;
    }
    emit(
      `{"event":"write","sbdf":"${sbdf}","reg":"${hex(a.reg)}","size":${a.size},"value":"${hex(a.value >>> 0)}"}`,
      a.line,
    );
    emit('{"event":"run","vcpu":"d0v0"}', a.line);
    // The decisions QEMU logged up to the next access (the ones this write caused, and any before).
    const taken: QemuMapping[] = [];
    while (next < decisions.length && decisions[next]!.after <= i + 1) taken.push(mappings[next++]!);
    checkpoints.push({
      traceLine: trace.length,
      line: a.line,
      sbdf,
      reg: a.reg,
      size: a.size,
      mappings: taken,
    });
  });
  comeAndGo(found.length);

  const counts: QemuCounts = {
    lines: log.lines,
    regionLines: log.regionLines,
    found: cfgLines,
    replayed,
    dropped: [...dropped].map(([reason, d]) => ({ reason, count: d.count, firstLine: d.firstLine })),
    sizesFromRegion: accesses.filter((a) => a.sizeFrom === 'region').length,
    sizesInferred: accesses.filter((a) => a.sizeFrom === 'inferred').length,
    emptySlotProbes: log.emptySlotProbes,
  };
  return {
    trace,
    sourceLines,
    mappings,
    devices,
    counts,
    checkpoints,
    finalMappings: mappings.slice(next),
    mappedAtStart,
    unplugs,
  };
}

/** `BB`: a bus or device number as QEMU prints it. */
function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** How many accesses were dropped, over every class. */
function droppedTotal(dropped: ReadonlyMap<string, { count: number }>): number {
  let total = 0;
  for (const d of dropped.values()) total += d.count;
  return total;
}

/**
 * Each device's address in the replay: its bus's number at the end of the log; the devices a slot
 * held in turn share it. Two slots that would share one (a log that renumbered buses oddly) keep
 * apart: the later gets an unused bus.
 */
function finalAddresses(identities: DeviceIdentities<LoggedDevice>): Map<LoggedDevice, string> {
  const names = new Map<LoggedDevice, string>();
  const used = new Set<string>();
  const busesUsed = new Set<number>();
  const named = identities.named();
  for (const { bus } of named) busesUsed.add(bus);
  for (const { bus, dev, fn, occupants } of named) {
    let sbdf = formatSbdf(makeSbdf(0, bus, dev, fn));
    if (used.has(sbdf)) {
      let spare = 0xff;
      while (busesUsed.has(spare)) spare--;
      busesUsed.add(spare);
      sbdf = formatSbdf(makeSbdf(0, spare, dev, fn));
    }
    used.add(sbdf);
    for (const device of occupants) names.set(device, sbdf);
  }
  return names;
}

/** The error for a log with no access to replay: what the file looked like and what was expected. */
function nothingToReplay(
  log: QemuLog,
  cfgLines: number,
  dropped: ReadonlyMap<string, { count: number; firstLine: number }>,
): TraceError {
  const expected =
    'expected QEMU trace lines such as "pci_cfg_read NAME BB:DD.F @0xREG -> 0xVALUE" (captured with -trace \'pci_cfg_*\')';
  const first = log.firstLine;
  if (first === undefined) return new TraceError(Math.max(1, log.lines), `the log is empty; ${expected}`);
  if (first.text.startsWith('{'))
    return new TraceError(
      first.line,
      `a JSON Lines trace, not a QEMU log; ${expected}, or replay a JSON trace without --qemu`,
    );
  if (cfgLines > 0) {
    const reasons = [...dropped].map(([reason, d]) => `${d.count} ${reason}, first at line ${d.firstLine}`);
    return new TraceError(
      [...dropped.values()][0]!.firstLine,
      `none of the ${cfgLines} config accesses can be replayed (${reasons.join('; ')}); expected accesses of 1, 2 or 4 bytes within 4 KiB of config space`,
    );
  }
  if (log.regionLines > 0)
    return new TraceError(
      log.lines,
      `${log.regionLines} memory_region_ops lines but no pci_cfg_read or pci_cfg_write line: nothing names a device and a register; ${expected}`,
    );
  const shown = first.text.length > 60 ? `${first.text.slice(0, 60)}…` : first.text;
  return new TraceError(
    log.lines,
    `no pci_cfg_read or pci_cfg_write line (the first line is "${shown}"); ${expected}`,
  );
}

/** A bridge's windows from the log's last view of its registers (read-only type bits from reads). */
function bridgeWindows(device: LoggedDevice): QemuWindow[] {
  const byte = (reg: number): number | null => {
    const v = device.current[reg]!;
    return v < 0 ? null : v;
  };
  const word = (reg: number): number | null => {
    const lo = byte(reg);
    const hi = byte(reg + 1);
    return lo === null || hi === null ? null : lo | (hi << 8);
  };
  const dword = (reg: number): bigint | null => {
    const lo = word(reg);
    const hi = word(reg + 2);
    return lo === null || hi === null ? null : BigInt(lo) | (BigInt(hi) << 16n);
  };
  const typeBits = (reg: number): number => Math.max(0, device.known(reg)) & 0xf;
  const window = (kind: QemuWindow['kind'], base: bigint | null, limit: bigint | null): QemuWindow => ({
    kind,
    base: base === null || limit === null ? null : hex(base),
    limit: base === null || limit === null ? null : hex(limit),
  });
  // I/O: bits 15:12 in 0x1c/0x1d, bits 31:16 in 0x30/0x32 when the window decodes 32 bits.
  const io32 = typeBits(0x1c) === 1;
  const ioBase = byte(0x1c);
  const ioLimit = byte(0x1d);
  const ioUpper = (reg: number): bigint | null =>
    io32 ? (word(reg) === null ? null : BigInt(word(reg)!) << 16n) : 0n;
  const io =
    ioBase === null || ioLimit === null || ioUpper(0x30) === null || ioUpper(0x32) === null
      ? window('io', null, null)
      : window(
          'io',
          BigInt((ioBase & 0xf0) << 8) | ioUpper(0x30)!,
          BigInt(((ioLimit & 0xf0) << 8) | 0xfff) | ioUpper(0x32)!,
        );
  const memBase = word(0x20);
  const memLimit = word(0x22);
  const memory =
    memBase === null || memLimit === null
      ? window('memory', null, null)
      : window('memory', BigInt(memBase & 0xfff0) << 16n, (BigInt(memLimit & 0xfff0) << 16n) | 0xfffffn);
  // Prefetchable: bits 31:20 in 0x24/0x26, bits 63:32 in 0x28/0x2c when it decodes 64 bits.
  const pref64 = typeBits(0x24) === 1;
  const prefBase = word(0x24);
  const prefLimit = word(0x26);
  const prefUpper = (reg: number): bigint | null =>
    pref64 ? (dword(reg) === null ? null : dword(reg)! << 32n) : 0n;
  const prefetchable =
    prefBase === null || prefLimit === null || prefUpper(0x28) === null || prefUpper(0x2c) === null
      ? window('prefetchable', null, null)
      : window(
          'prefetchable',
          (BigInt(prefBase & 0xfff0) << 16n) | prefUpper(0x28)!,
          (BigInt(prefLimit & 0xfff0) << 16n) | 0xfffffn | prefUpper(0x2c)!,
        );
  return [io, memory, prefetchable];
}

/** `lspci -xxx`-style lines of `bytes`. */
function hexDump(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = [...bytes.subarray(offset, offset + 16)]
      .map((b) => b.toString(16).padStart(2, '0'))
      .join(' ');
    out.push(`${offset.toString(16).padStart(offset < 256 ? 2 : 3, '0')}: ${row}`);
  }
  return out;
}
