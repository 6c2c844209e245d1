/**
 * Reading a QEMU trace log (the "log" backend, `-trace 'pci_cfg_*' -trace pci_update_mappings_*
 * -trace memory_region_ops_*`, QEMU 7.2's formats) into what the importer uses: the config accesses
 * of the `pci_cfg_read`/`pci_cfg_write` lines, each with the access size of its paired region line
 * where the log has one, and QEMU's BAR mapping decisions (`pci_update_mappings_add`/`_del`).
 *
 * A `pci_cfg_*` line names the device (with the bus number in effect then), the register and the
 * value, but not the size. The region lines of `pci-conf-data` (ports 0xcfc–0xcff) and
 * `pcie-mmcfg-mmio` (ECAM) carry it: for a read QEMU logs `pci_cfg_read` first and the region's read
 * when it returns; for a write the region's write comes first. A region line is taken as an access's
 * partner only when it agrees with it (the register's low bits, the ECAM function, the value); a data
 * access no device answered has no `pci_cfg_*` line at all and is counted as an empty-slot probe. The
 * 0xcf8 index register (`pci-conf-idx`) is not needed for those: the `pci_cfg_*` line already names
 * the device and the register. It names the function of an unanswered read, though: a read of a
 * function's first 256 bytes that no `pci_cfg_read` answered found no device there (QEMU answers
 * all-ones without tracing when no device, or no powered device, has the address: pci_host.c,
 * `pci_host_config_read_common`), which is how the importer sees a slot empty (hot plug).
 *
 * ACPI hot plug (i440fx, or q35 with it on) shows in no config access: the guest ejects a device by
 * writing the slot's bit to QEMU's `acpi-pci-hotplug` registers (hw/acpi/pcihp.c: the bus selector at
 * offset 0x10, the eject register at 0x08; `acpi_pcihp_eject_slot` then detaches the device). Those
 * writes, when the log kept them, are the ejects.
 *
 * Lines may carry the `PID@SECONDS.MICROS:` prefix QEMU adds with timestamps on; other trace events
 * and other text are counted and skipped. A known event in a format QEMU does not write is an error.
 */
import { gunzipSync } from 'node:zlib';
import { TraceError } from './fields.js';

/** A config access as a `pci_cfg_*` line shows it. */
export interface CfgLine {
  readonly kind: 'read' | 'write';
  /** QEMU's device model name (`nvme`, `pcie-pci-bridge`, …). */
  readonly name: string;
  /** The bus number QEMU printed: the one the device's bus had at that moment. */
  readonly bus: number;
  readonly dev: number;
  readonly fn: number;
  readonly reg: number;
  readonly value: number;
  readonly line: number;
  /** The size of the paired region line, when the log has one (may be other than 1, 2 or 4). */
  size: number | undefined;
}

/** A BAR mapping QEMU made or removed: a `pci_update_mappings_add` / `_del` line. */
export interface MappingLine {
  readonly added: boolean;
  readonly name: string;
  readonly bus: number;
  readonly dev: number;
  readonly fn: number;
  /** BAR number, 0–5, or 6 for the expansion ROM (QEMU's `PCI_ROM_SLOT`, either header layout). */
  readonly bar: number;
  readonly addr: bigint;
  readonly size: bigint;
  readonly line: number;
}

/** A read of a function's config header that no device answered: nothing was at that address. */
export interface AbsentLine {
  readonly bus: number;
  readonly dev: number;
  readonly fn: number;
  /** The line of the region read. */
  readonly line: number;
}

/** The guest ejected the devices of `slots` (bit n: device n) on the bus ACPI selects by `selector`. */
export interface EjectLine {
  /** The bus selector written before (QEMU numbers the root bus 0: `acpi_set_bsel`). */
  readonly selector: number;
  readonly slots: number;
  readonly line: number;
}

/** One line of the log the importer uses, in log order. */
export type QemuLogEntry =
  | ({ readonly type: 'cfg' } & CfgLine)
  | ({ readonly type: 'mapping' } & MappingLine)
  | ({ readonly type: 'absent' } & AbsentLine)
  | ({ readonly type: 'eject' } & EjectLine);

type CfgEntry = Extract<QemuLogEntry, { type: 'cfg' }>;

/** What a log held. */
export interface QemuLog {
  readonly entries: QemuLogEntry[];
  /** Lines read, blank ones included (not the empty string after a final newline). */
  readonly lines: number;
  /** `memory_region_ops_*` lines of the config regions (`pci-conf-idx`, `pci-conf-data`, ECAM). */
  readonly regionLines: number;
  /** Data-port or ECAM accesses no device answered (no `pci_cfg_*` partner): probes of empty slots. */
  readonly emptySlotProbes: number;
  /** The first non-blank line, for saying what the file looked like when it held no access. */
  readonly firstLine: { readonly line: number; readonly text: string } | undefined;
}

const REGION =
  /^memory_region_ops_(read|write) cpu \d+ mr 0x[0-9a-f]+ addr (0x[0-9a-f]+) value (0x[0-9a-f]+) size (\d+) name '([^']*)'$/;
const CFG =
  /^pci_cfg_(read|write) (\S+) ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) @(0x[0-9a-f]+) (?:->|<-) (0x[0-9a-f]+)$/;
const MAPPING =
  /^pci_update_mappings_(add|del) (\S+) ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) (\d+),(0x[0-9a-f]+)\+(0x[0-9a-f]+)$/;
/** QEMU prefixes lines with `pid@seconds.micros:` when timestamps are on. */
const PREFIX = /^\d+@\d+\.\d+:/;
/** Bits of an ECAM offset naming bus, device and function. */
const ECAM_FUNCTION_BITS = 0x0fff_f000n;

/** A region line of a config data access (port 0xcfc–0xcff or ECAM) waiting for its partner. */
interface RegionAccess {
  readonly ecam: boolean;
  readonly addr: bigint;
  readonly value: bigint;
  readonly size: number;
}

/** Offsets in QEMU's ACPI PCI hot-plug registers (hw/acpi/pcihp.c: PCI_EJ_BASE, PCI_SEL_BASE). */
const PCIHP_EJECT = 0x08n;
const PCIHP_SELECT = 0x10n;
/** The registers' span: their base (0xae00 on i440fx, 0xcc0 on q35) is a multiple of it. */
const PCIHP_SPAN = 0x20n;

/** The index register's enable bit: the data port reaches config space only with it set. */
const CONFIG_ENABLE = 0x8000_0000n;

/**
 * The function and register an unanswered data-port or ECAM read was for, when it is in the first
 * 256 bytes (the config space every function has: a read there with no answer means no function).
 */
function absentAt(
  region: RegionAccess,
  index: bigint | undefined,
  line: number,
): ({ readonly type: 'absent' } & AbsentLine) | undefined {
  let address: bigint;
  if (region.ecam) address = region.addr & 0x0fff_ffffn;
  else if (index === undefined || (index & CONFIG_ENABLE) === 0n) return undefined;
  // 0xcf8 layout: bus 23:16, device 15:11, function 10:8, register 7:2 (0xcfc + n adds n).
  else address = ((index & 0x00ff_ff00n) << 4n) | (index & 0xfcn) | (region.addr & 3n);
  if ((address & 0xfffn) >= 0x100n) return undefined;
  return {
    type: 'absent',
    bus: Number((address >> 20n) & 0xffn),
    dev: Number((address >> 15n) & 0x1fn),
    fn: Number((address >> 12n) & 7n),
    line,
  };
}

/** Whether `region` is the data half of the access `cfg` (see the module comment). */
function partners(cfg: CfgLine, region: RegionAccess): boolean {
  const bits = region.size >= 1 && region.size <= 8 ? BigInt(8 * region.size) : 64n;
  if ((region.value & ((1n << bits) - 1n)) !== BigInt(cfg.value)) return false;
  if (!region.ecam) return Number(region.addr & 3n) === (cfg.reg & 3);
  const offset = region.addr & 0x0fff_ffffn;
  return (
    Number(offset & 0xfffn) === cfg.reg &&
    (offset & ECAM_FUNCTION_BITS) === BigInt((cfg.bus << 20) | (cfg.dev << 15) | (cfg.fn << 12))
  );
}

/** Reads the log's lines. Throws `TraceError` on a known event in a format QEMU does not write. */
export function readQemuLog(lines: Iterable<string>): QemuLog {
  const entries: QemuLogEntry[] = [];
  let n = 0;
  let regionLines = 0;
  let emptySlotProbes = 0;
  let firstLine: QemuLog['firstLine'];
  // The read whose region line has not come yet, and the region write whose pci_cfg_write has not.
  let openRead: CfgEntry | undefined;
  let openWrite: RegionAccess | undefined;
  /** The last value written to 0xcf8 (a 4-byte write: smaller ones do not reach the index). */
  let index: bigint | undefined;
  /** The ACPI hot-plug bus selector last written (0, the root bus, until one is). */
  let selector = 0;
  let lastEmpty = false;
  for (const raw of lines) {
    n++;
    lastEmpty = raw === '';
    const text = raw.replace(PREFIX, '').trim();
    if (text === '') continue;
    firstLine ??= { line: n, text };
    const kind = text.split(' ', 1)[0]!;
    if (kind === 'memory_region_ops_read' || kind === 'memory_region_ops_write') {
      const m = REGION.exec(text);
      if (m === null)
        throw new TraceError(
          n,
          `a ${kind} line not in QEMU's format; expected "${kind} cpu N mr 0x… addr 0x… value 0x… size N name '…'"`,
        );
      const region = m[5]!;
      if (region === 'acpi-pci-hotplug' && m[1] === 'write') {
        const offset = BigInt(m[2]!) % PCIHP_SPAN;
        if (offset === PCIHP_SELECT) selector = Number(m[3]);
        else if (offset === PCIHP_EJECT)
          entries.push({ type: 'eject', selector, slots: Number(m[3]), line: n });
        continue;
      }
      if (region !== 'pci-conf-idx' && region !== 'pci-conf-data' && region !== 'pcie-mmcfg-mmio') continue;
      regionLines++;
      if (region === 'pci-conf-idx') {
        if (m[1] === 'write' && m[4] === '4') index = BigInt(m[3]!);
        continue;
      }
      const access = {
        ecam: region === 'pcie-mmcfg-mmio',
        addr: BigInt(m[2]!),
        value: BigInt(m[3]!),
        size: Number(m[4]),
      };
      if (m[1] === 'write') {
        if (openWrite !== undefined) emptySlotProbes++;
        openWrite = access;
      } else if (openRead !== undefined && partners(openRead, access)) {
        openRead.size = access.size;
        openRead = undefined;
      } else {
        emptySlotProbes++;
        const absent = absentAt(access, index, n);
        if (absent !== undefined) entries.push(absent);
      }
      continue;
    }
    if (kind === 'pci_cfg_read' || kind === 'pci_cfg_write') {
      const m = CFG.exec(text);
      if (m === null)
        throw new TraceError(
          n,
          `a ${kind} line not in QEMU's format; expected "${kind} NAME BB:DD.F @0xREG ${kind === 'pci_cfg_read' ? '->' : '<-'} 0xVALUE"`,
        );
      const cfg: CfgEntry = {
        type: 'cfg',
        kind: m[1] === 'read' ? 'read' : 'write',
        name: m[2]!,
        bus: Number.parseInt(m[3]!, 16),
        dev: Number.parseInt(m[4]!, 16),
        fn: Number(m[5]),
        reg: Number(m[6]),
        value: Number(m[7]),
        line: n,
        size: undefined,
      };
      if (cfg.reg > 0xfff || cfg.value > 0xffff_ffff)
        throw new TraceError(
          n,
          `register ${m[6]} value ${m[7]}; expected a register below 0x1000 and a value of at most 32 bits`,
        );
      if (cfg.kind === 'write') {
        if (openWrite !== undefined && partners(cfg, openWrite)) cfg.size = openWrite.size;
        else if (openWrite !== undefined) emptySlotProbes++;
        openWrite = undefined;
      } else {
        if (openWrite !== undefined) emptySlotProbes++;
        openWrite = undefined;
        openRead = cfg;
      }
      entries.push(cfg);
      continue;
    }
    if (kind === 'pci_update_mappings_add' || kind === 'pci_update_mappings_del') {
      const m = MAPPING.exec(text);
      if (m === null)
        throw new TraceError(
          n,
          `a ${kind} line not in QEMU's format; expected "${kind} NAME BB:DD.F BAR,0xADDR+0xSIZE"`,
        );
      entries.push({
        type: 'mapping',
        added: m[1] === 'add',
        name: m[2]!,
        bus: Number.parseInt(m[3]!, 16),
        dev: Number.parseInt(m[4]!, 16),
        fn: Number(m[5]),
        bar: Number(m[6]),
        addr: BigInt(m[7]!),
        size: BigInt(m[8]!),
        line: n,
      });
    }
    // Other trace events (msix_*, anything else captured) and other text change no config space.
  }
  if (openWrite !== undefined) emptySlotProbes++;
  // A text that ends with a newline has no line after it.
  return { entries, lines: lastEmpty ? n - 1 : n, regionLines, emptySlotProbes, firstLine };
}

/**
 * A log file's text: gunzipped when it starts with gzip's magic bytes (whatever its name), then
 * checked to be text. Throws `TraceError` for a gzip file that does not unpack or for binary data.
 */
export function qemuLogText(bytes: Uint8Array): string {
  let data = bytes;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      data = gunzipSync(bytes);
    } catch (error) {
      throw new TraceError(
        1,
        `a gzip file that does not unpack (${(error as Error).message}); expected a whole gzip file or a plain text log`,
      );
    }
  }
  const nul = data.indexOf(0);
  if (nul >= 0) {
    throw new TraceError(
      lineAt(data, nul),
      `binary data (a NUL byte at offset ${nul}); expected a text log, plain or gzip'd`,
    );
  }
  const text = new TextDecoder('utf-8').decode(data);
  const bad = text.indexOf('\ufffd');
  if (bad >= 0) {
    const line = text.slice(0, bad).split('\n').length;
    throw new TraceError(line, "bytes that are not UTF-8 text; expected a text log, plain or gzip'd");
  }
  rejectLongLines(text);
  return text;
}

/** The longest line a QEMU log may have: QEMU's trace lines are a few hundred characters. */
export const MAX_QEMU_LINE_CHARS = 1 << 20;

/** Refuses a log with a line longer than `MAX_QEMU_LINE_CHARS`: no QEMU trace line is, so it is not one. */
function rejectLongLines(text: string): void {
  let start = 0;
  for (let line = 1; start <= text.length; line++) {
    const end = text.indexOf('\n', start);
    const length = (end < 0 ? text.length : end) - start;
    if (length > MAX_QEMU_LINE_CHARS) {
      throw new TraceError(
        line,
        `a line of ${length.toLocaleString('en-US')} characters; expected QEMU trace output, whose lines are under 1 MiB`,
      );
    }
    if (end < 0) break;
    start = end + 1;
  }
}

/** The 1-based line of byte `offset`. */
function lineAt(data: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (data[i] === 0x0a) line++;
  return line;
}
