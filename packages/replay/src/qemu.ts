/**
 * QEMU trace logs (`qemu-system-x86_64 -trace 'pci_cfg_*' -trace memory_region_ops_* …`) as traces:
 * what SeaBIOS, OVMF and Linux really did to config space, replayed as the hardware domain's accesses
 * (a PVH dom0 whose BARs are identity-mapped), so the engine's final BAR placement can be held against
 * QEMU's `info pci`.
 *
 * QEMU 7.2's `pci_cfg_read`/`pci_cfg_write` lines name the device and its address (with the bus number
 * in effect then) but not the access size; the `memory_region_ops_read`/`_write` lines of the regions
 * `pci-conf-idx` (port 0xcf8), `pci-conf-data` (ports 0xcfc–0xcff) and `pcie-mmcfg-mmio` (ECAM) carry
 * the size. Each config access is the pair: for a read the `pci_cfg_read` line comes first and the
 * region's read after it returns, for a write the region's write comes first. An access with no
 * `pci_cfg_*` partner reached no device (a bus scan probing an empty slot) and is dropped.
 *
 * The devices and their initial config space are rebuilt from the log alone: the first value read of
 * each byte before anything wrote it, and each BAR's size from the value read back after all-ones was
 * written to it (the sizing protocol). A config-space dump can stand in where a log lacks a register
 * (a device whose capability list the guest never read).
 */
import { formatSbdf, makeSbdf, parseHexDump } from '@vpci/vpci';
import { hex, TraceError } from './fields.js';

/** One config-space access as the guest made it. */
export interface QemuAccess {
  /** A config-space read or write. */
  readonly kind: 'read' | 'write';
  /** The function accessed, `ssss:bb:dd.f`. */
  readonly sbdf: string;
  /** Register offset in config space. */
  readonly reg: number;
  /** Access size in bytes. */
  readonly size: 1 | 2 | 4;
  /** The value read or written. */
  readonly value: number;
  /** Line of the QEMU log (the region access). */
  readonly line: number;
}

/** A BAR mapping QEMU made or removed (`pci_update_mappings_add` / `_del`). */
export interface QemuMapping {
  /** The function whose BAR it is, `ssss:bb:dd.f`. */
  readonly sbdf: string;
  /** BAR slot. */
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

/** A converted log. */
export interface QemuConversion {
  /** The trace, one JSON line each (comments included). */
  readonly trace: readonly string[];
  /** The QEMU log line each trace line came from (0 for the set-up lines). */
  readonly sourceLines: readonly number[];
  /** QEMU's own BAR mappings, in log order. */
  readonly mappings: readonly QemuMapping[];
  /** The devices found: address and QEMU's device name. */
  readonly devices: readonly { readonly sbdf: string; readonly name: string }[];
}

/** Options of a conversion. */
export interface QemuOptions {
  /** The log's name, for the trace's first comment. */
  readonly name?: string;
  /** Config-space dumps (`lspci -xxx`) by SBDF, used under what the log read. */
  readonly images?: ReadonlyMap<string, string>;
}

/** The low bits of the ECAM region address that select bus, device, function and register. */
const ECAM_MASK = 0x0fff_ffffn;
const REGION =
  /^memory_region_ops_(read|write) cpu \d+ mr 0x[0-9a-f]+ addr (0x[0-9a-f]+) value (0x[0-9a-f]+) size (\d+) name '([^']*)'$/;
const CFG =
  /^pci_cfg_(read|write) (\S+) ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) @(0x[0-9a-f]+) (?:->|<-) (0x[0-9a-f]+)$/;
const MAPPING =
  /^pci_update_mappings_(add|del) (\S+) ([0-9a-f]{2}):([0-9a-f]{2})\.([0-7]) (\d+),(0x[0-9a-f]+)\+(0x[0-9a-f]+)$/;
/** QEMU prefixes lines with `pid@seconds:` when timestamps are on. */
const PREFIX = /^\d+@\d+\.\d+:/;

/** Parses the log's lines into config accesses and BAR mappings. Throws `TraceError` on a bad line. */
export function parseQemuLog(lines: Iterable<string>): {
  accesses: QemuAccess[];
  mappings: QemuMapping[];
  names: Map<string, string>;
} {
  const accesses: QemuAccess[] = [];
  const mappings: QemuMapping[] = [];
  const names = new Map<string, string>();
  let address = 0; // the last dword written to 0xcf8
  let pendingRead: { sbdf: string; reg: number; value: number } | undefined;
  let pendingWrite: { sbdf: string; reg: number; size: 1 | 2 | 4; value: number; line: number } | undefined;
  let n = 0;
  for (const raw of lines) {
    n++;
    const text = raw.replace(PREFIX, '').trim();
    if (text === '') continue;
    const kind = text.split(' ', 1)[0]!;
    if (kind === 'memory_region_ops_read' || kind === 'memory_region_ops_write') {
      const m = REGION.exec(text);
      if (m === null)
        throw new TraceError(
          n,
          `a ${kind} line not in QEMU's format; expected "${kind} cpu N mr 0x… addr 0x… value 0x… size N name '…'"`,
        );
      const [, op, addrText, valueText, sizeText, region] = m as unknown as [
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      const addr = BigInt(addrText);
      const size = Number(sizeText);
      const value = Number(BigInt(valueText) & 0xffff_ffffn);
      if (region === 'pci-conf-idx') {
        // QEMU keeps only dword writes to 0xcf8 (Linux probes 0xcfb with a byte write).
        if (op === 'write' && size === 4 && (addr & 3n) === 0n) address = value;
        continue;
      }
      if (region !== 'pci-conf-data' && region !== 'pcie-mmcfg-mmio') continue;
      if (size !== 1 && size !== 2 && size !== 4) {
        if (size === 8 && region === 'pcie-mmcfg-mmio')
          throw new TraceError(n, 'an 8-byte ECAM access; expected 1, 2 or 4 bytes (split it)');
        throw new TraceError(n, `size ${size}; expected 1, 2 or 4`);
      }
      let sbdf: string;
      let reg: number;
      if (region === 'pci-conf-data') {
        if ((address & 0x8000_0000) === 0) continue; // configuration cycles disabled
        const bus = (address >>> 16) & 0xff;
        const dev = (address >>> 11) & 0x1f;
        const fn = (address >>> 8) & 7;
        sbdf = formatSbdf(makeSbdf(0, bus, dev, fn));
        reg = (address & 0xfc) | Number(addr & 3n);
      } else {
        const offset = Number(addr & ECAM_MASK);
        sbdf = formatSbdf(makeSbdf(0, offset >>> 20, (offset >>> 15) & 0x1f, (offset >>> 12) & 7));
        reg = offset & 0xfff;
      }
      if (op === 'write') {
        pendingWrite = { sbdf, reg, size, value, line: n };
      } else if (pendingRead !== undefined && pendingRead.sbdf === sbdf && pendingRead.reg === reg) {
        accesses.push({ kind: 'read', sbdf, reg, size, value, line: n });
        pendingRead = undefined;
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
      const [, op, name, bus, dev, fn, regText, valueText] = m as unknown as string[];
      const sbdf = formatSbdf(makeSbdf(0, Number.parseInt(bus!, 16), Number.parseInt(dev!, 16), Number(fn)));
      names.set(sbdf, name!);
      const reg = Number(regText);
      if (op === 'read') {
        pendingRead = { sbdf, reg, value: Number(valueText) };
      } else if (pendingWrite !== undefined && pendingWrite.sbdf === sbdf && pendingWrite.reg === reg) {
        accesses.push({ kind: 'write', ...pendingWrite });
        pendingWrite = undefined;
      }
      continue;
    }
    if (kind === 'pci_update_mappings_add' || kind === 'pci_update_mappings_del') {
      const m = MAPPING.exec(text);
      if (m === null)
        throw new TraceError(
          n,
          `a ${kind} line not in QEMU's format; expected "${kind} NAME BB:DD.F BAR,0xADDR+0xSIZE"`,
        );
      const [, op, , bus, dev, fn, bar, addr, size] = m as unknown as string[];
      const sbdf = formatSbdf(makeSbdf(0, Number.parseInt(bus!, 16), Number.parseInt(dev!, 16), Number(fn)));
      mappings.push({
        sbdf,
        bar: Number(bar),
        addr: BigInt(addr!),
        size: BigInt(size!),
        added: op === 'add',
        line: n,
      });
    }
    // Other trace events (msix_*, anything else captured) do not change config space.
  }
  return { accesses, mappings, names };
}

/** What the log tells of one device's initial config space. */
interface Reconstruction {
  /** Bytes as first read, before any write; -1 where nothing tells. */
  readonly bytes: Int16Array;
  /** Bytes some write has changed (what is read after no longer shows the initial state). */
  readonly written: Uint8Array;
  /** The value read back from a register right after all-ones was written to it. */
  readonly probes: Map<number, number>;
  /** The last value written to each register offset (to recognise a sizing write). */
  readonly lastWrite: Map<number, number>;
}

/** Rebuilds every device's initial config space and BAR sizes from its accesses. */
function reconstruct(accesses: readonly QemuAccess[]): Map<string, Reconstruction> {
  const devices = new Map<string, Reconstruction>();
  for (const a of accesses) {
    let d = devices.get(a.sbdf);
    if (d === undefined) {
      d = {
        bytes: new Int16Array(4096).fill(-1),
        written: new Uint8Array(4096),
        probes: new Map(),
        lastWrite: new Map(),
      };
      devices.set(a.sbdf, d);
    }
    if (a.kind === 'write') {
      for (let i = 0; i < a.size; i++) d.written[a.reg + i] = 1;
      if (a.size === 4) d.lastWrite.set(a.reg, a.value >>> 0);
      continue;
    }
    for (let i = 0; i < a.size; i++) {
      if (d.written[a.reg + i] === 0 && d.bytes[a.reg + i] === -1)
        d.bytes[a.reg + i] = (a.value >>> (8 * i)) & 0xff;
    }
    const written = d.lastWrite.get(a.reg);
    if (
      a.size === 4 &&
      written !== undefined &&
      (written === 0xffff_ffff || written === 0xffff_f800 || written === 0xffff_fffe)
    ) {
      if (!d.probes.has(a.reg)) d.probes.set(a.reg, a.value >>> 0);
    }
    d.lastWrite.delete(a.reg);
  }
  return devices;
}

/** BAR sizes (and the ROM's) from the sizing read-backs, for the device's header type. */
function barSizes(
  image: Uint8Array,
  probes: ReadonlyMap<number, number>,
): { bars: (bigint | null)[]; rom: bigint | undefined } {
  const dword = (reg: number): number =>
    (image[reg]! | (image[reg + 1]! << 8) | (image[reg + 2]! << 16) | (image[reg + 3]! << 24)) >>> 0;
  const headerType = image[0x0e]! & 0x7f;
  const slots = headerType === 1 ? 2 : 6;
  const bars: (bigint | null)[] = [];
  for (let i = 0; i < slots; i++) {
    const reg = 0x10 + 4 * i;
    const initial = dword(reg);
    const probe = probes.get(reg);
    if (probe === undefined) {
      bars.push(null);
      continue;
    }
    if ((initial & 1) !== 0) {
      const mask = BigInt(((probe & 0xffff_fffc) | 0xffff_0000) >>> 0);
      bars.push(mask === 0xffff_ffffn ? null : 0x1_0000_0000n - mask);
      continue;
    }
    const is64 = (initial & 0x6) === 0x4;
    let mask = BigInt((probe & 0xffff_fff0) >>> 0);
    if (is64) {
      mask |= BigInt(probes.get(reg + 4) ?? 0xffff_ffff) << 32n;
      bars.push(mask === 0n ? null : (1n << 64n) - mask, null);
      i++;
    } else {
      bars.push(mask === 0n ? null : 0x1_0000_0000n - mask);
    }
  }
  while (bars.length > 0 && bars.at(-1) === null) bars.pop();
  const romProbe = probes.get(headerType === 1 ? 0x38 : 0x30);
  const romMask = romProbe === undefined ? 0n : BigInt((romProbe & 0xffff_f800) >>> 0);
  return { bars, rom: romMask === 0n ? undefined : 0x1_0000_0000n - romMask };
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

/** Converts a QEMU log into a trace (see the module comment). Throws `TraceError` with the log's line. */
export function convertQemuLog(lines: Iterable<string>, options: QemuOptions = {}): QemuConversion {
  const { accesses, mappings, names } = parseQemuLog(lines);
  const rebuilt = reconstruct(accesses);
  const trace: string[] = [];
  const sourceLines: number[] = [];
  const emit = (text: string, line = 0): void => {
    trace.push(text);
    sourceLines.push(line);
  };
  emit(
    `# converted from the QEMU trace log ${options.name ?? '(unnamed)'}: ${accesses.length} config accesses of ${rebuilt.size} devices, replayed as the hardware domain's`,
  );
  emit('{"event":"host","profile":"xen","vendor":"intel","iommu":true}');
  const devices: { sbdf: string; name: string }[] = [];
  for (const [sbdf, d] of [...rebuilt].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const given = options.images?.get(sbdf);
    const extended =
      d.bytes.subarray(256).some((b) => b !== -1) ||
      (given !== undefined && parseHexDump(given).length === 4096);
    const base = given === undefined ? new Uint8Array(extended ? 4096 : 256) : parseHexDump(given);
    const image =
      extended && base.length === 256 ? Uint8Array.from({ length: 4096 }, (_, i) => base[i] ?? 0) : base;
    for (let i = 0; i < image.length; i++) if (d.bytes[i]! >= 0) image[i] = d.bytes[i]!;
    const sizes = barSizes(image, d.probes);
    const name = names.get(sbdf) ?? '?';
    devices.push({ sbdf, name });
    const sizeField = {
      bars: sizes.bars.map((s) => (s === null ? null : hex(s))),
      ...(sizes.rom === undefined ? {} : { rom: hex(sizes.rom) }),
    };
    emit(`# ${sbdf}: QEMU device ${name}`);
    emit(JSON.stringify({ event: 'device', sbdf, image: hexDump(image), sizes: sizeField }));
  }
  emit('{"event":"boot"}');
  for (const a of accesses) {
    emit(
      a.kind === 'read'
        ? `{"event":"read","sbdf":"${a.sbdf}","reg":"${hex(a.reg)}","size":${a.size}}`
        : `{"event":"write","sbdf":"${a.sbdf}","reg":"${hex(a.reg)}","size":${a.size},"value":"${hex(a.value >>> 0)}"}`,
      a.line,
    );
  }
  return { trace, sourceLines, mappings, devices };
}

/**
 * The BARs QEMU reports mapped in `info pci` (the monitor's text): `sbdf → [bar, addr]` for memory and
 * I/O BARs at a real address (QEMU prints all-ones for a BAR it does not map).
 */
export function parseInfoPci(text: string): Map<string, Map<number, { addr: bigint; kind: 'io' | 'mem' }>> {
  const out = new Map<string, Map<number, { addr: bigint; kind: 'io' | 'mem' }>>();
  let current: Map<number, { addr: bigint; kind: 'io' | 'mem' }> | undefined;
  for (const line of text.split(/\r?\n/)) {
    const device = /^\s*Bus\s+(\d+), device\s+(\d+), function (\d+):/.exec(line);
    if (device !== null) {
      current = new Map();
      out.set(formatSbdf(makeSbdf(0, Number(device[1]), Number(device[2]), Number(device[3]))), current);
      continue;
    }
    const bar = /^\s*BAR(\d+): (?:(I\/O)|.*memory) at (0x[0-9a-f]+) \[/.exec(line);
    if (bar !== null && current !== undefined) {
      const addr = BigInt(bar[3]!);
      if (addr !== 0xffff_ffff_ffff_ffffn && addr !== 0xffff_ffffn)
        current.set(Number(bar[1]), { addr, kind: bar[2] === undefined ? 'mem' : 'io' });
    }
  }
  return out;
}
