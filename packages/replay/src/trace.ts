/**
 * The trace format (docs/trace-format.md): JSON Lines, one event an object with an `event` field.
 * `parseTraceLine` turns one line into a checked `TraceEvent` or throws a `TraceError` naming the field,
 * the value and what was expected. Blank lines and lines starting with `#` are comments (`undefined`).
 */
import {
  MAX_FRAME,
  MEMORY_TYPES,
  type MemoryType,
  MTRR_TYPES,
  type MtrrType,
  P2M_TYPES,
  type P2mType,
  PAGE_ORDERS,
  type PageOrder,
} from '@vpci/p2m';
import {
  ARCHES,
  type Arch,
  type BarSpec,
  type DeviceSpec,
  type HostBridge,
  type MmioPath,
  type MsiSpec,
  type MsixSpec,
  POLICY_SWITCHES,
  type Policy,
  type Profile,
  type RebarSpec,
  type RomSpec,
  RULE_SET_NAMES,
  type RuleSetName,
  type SriovSpec,
  type VfBarSpec,
} from '@vpci/vpci';
import { Fields, hex, isIntegerIn, requireObject, TraceError } from './fields.js';
import { strictJsonProblem } from './strict-json.js';

const U64 = (1n << 64n) - 1n;
const U32 = 0xffff_ffff;

/** An MTRR layout as a trace gives it (guest or host). */
export interface TraceMtrr {
  /** MTRRs enabled (MTRRdefType.E); when off every access is UC. */
  readonly enabled: boolean;
  /** Fixed-range MTRRs enabled (MTRRdefType.FE). */
  readonly fixedEnabled: boolean;
  /** Type of memory no range covers. */
  readonly defaultType: MtrrType;
  /** 88 fixed-range types, or one type for all of them. */
  readonly fixed: MtrrType | readonly MtrrType[];
  /** Variable ranges: base and size in bytes, and the type. */
  readonly variable: readonly { readonly base: bigint; readonly size: bigint; readonly type: MtrrType }[];
}

/** One host memory map entry. */
export interface TraceE820 {
  /** Start address in bytes. */
  readonly addr: bigint;
  /** Length in bytes. */
  readonly size: bigint;
  /** The e820 type. */
  readonly type: 'ram' | 'reserved' | 'acpi' | 'nvs' | 'unusable';
}

/** A vCPU as `d<domain>v<vcpu>`. */
export interface TraceVcpu {
  /** Domain id. */
  readonly domain: number;
  /** vCPU index in the domain. */
  readonly vcpu: number;
}

/** What an assertion checks. */
export type TraceAssertion =
  | {
      /** Guest frames `gfn … gfn+count-1` map machine frames from `mfn` (absent: a hole) with `type`. */
      readonly kind: 'maps';
      readonly domain: number;
      readonly gfn: number;
      readonly count: number;
      readonly mfn: number | undefined;
      readonly type: P2mType | undefined;
      /** Every frame is mapped with leaves of this order (0, 9, 18); needs `mfn`. Absent: any order. */
      readonly order?: PageOrder | undefined;
    }
  | {
      /** An access to `gfn` through guest PAT type `pat` has memory type `expect`. */
      readonly kind: 'memoryType';
      readonly domain: number;
      readonly gfn: number;
      readonly pat: MemoryType;
      readonly expect: MtrrType;
      readonly ipat: boolean | undefined;
    }
  | {
      /**
       * Some engine event so far (`notLogged`: none) has every given field (values compared as the
       * report prints them), among the events logged by lines `from … to` (default: every line so far).
       */
      readonly kind: 'logged' | 'notLogged';
      readonly pattern: Readonly<Record<string, unknown>>;
      /** First trace line whose events count. Absent: line 1. */
      readonly from?: number | undefined;
      /** Last trace line whose events count. Absent: the assertion's line. */
      readonly to?: number | undefined;
    }
  | {
      /** Some current invariant violation matches; matching violations are expected from now on. */
      readonly kind: 'violation';
      readonly pattern: Readonly<Record<string, unknown>>;
    }
  | { /** No unexpected invariant violation now. */ readonly kind: 'noViolations' }
  | {
      /** BAR `bar` of the device is at `addr` / `guestAddr` and is (not) mapped. */
      readonly kind: 'bar';
      readonly sbdf: string;
      readonly bar: number;
      readonly addr: bigint | undefined;
      readonly guestAddr: bigint | undefined;
      readonly size: bigint | undefined;
      readonly enabled: boolean | undefined;
    }
  | {
      /** The domain has (not) crashed. */ readonly kind: 'crashed';
      readonly domain: number;
      readonly expect: boolean;
    };

/** Assertion kinds, in documentation order. */
export const ASSERTION_KINDS = [
  'maps',
  'memoryType',
  'logged',
  'notLogged',
  'violation',
  'noViolations',
  'bar',
  'crashed',
] as const;

/** Outcomes of `run` that a trace may expect. */
export type RunStatus = 'idle' | 'restart' | 'done' | 'dropped' | 'failed';

/** One event of a trace. */
export type TraceEvent =
  | {
      readonly event: 'host';
      /** `x86` or `arm`; undefined for a trace that predates `arch` (x86, guest vPCI assumed). */
      readonly arch?: Arch | undefined;
      /** x86: guests get vPCI, anticipating x86 domU vPCI support; undefined when not given. */
      readonly x86GuestVpci?: boolean | undefined;
      /** Arm: the PCI host bridges (empty or undefined when none is given). */
      readonly hostBridges?: readonly HostBridge[] | undefined;
      readonly profile: Profile;
      /** Whose rules decide what the header writes do (`RuleSetName`); undefined: `xen`. */
      readonly rules?: RuleSetName | undefined;
      readonly policy: Partial<Policy>;
      readonly vendor: 'intel' | 'amd';
      readonly iommu: boolean;
      readonly physAddrBits: number;
      readonly hardwareVcpus: number;
      /** Xen's `iommu_quarantine`. Absent: true, Xen's default. */
      readonly quarantine?: boolean | undefined;
      readonly e820: readonly TraceE820[];
      readonly mtrr: TraceMtrr | undefined;
      /** The hardware domain's MTRRs as dom0 reprogrammed them (absent: a copy of the host's). */
      readonly hardwareMtrr?: TraceMtrr | undefined;
      /** The hardware domain uses HAP (false: Xen's `dom0=shadow`). Absent: true. */
      readonly hardwareHap?: boolean | undefined;
      /** HAP may use 2 MiB leaves (Xen's global `hap_2mb`). Absent: true. */
      readonly hap2mb?: boolean | undefined;
    }
  | {
      readonly event: 'device';
      readonly spec: DeviceSpec;
      readonly hidden: boolean;
      /** Xen's `pci_ro_device` (implies `hidden`): no vPCI, the hardware domain's writes dropped. */
      readonly readOnly?: boolean;
    }
  | {
      readonly event: 'device';
      readonly sbdf: string;
      readonly image: string;
      readonly sizes: {
        readonly bars: readonly (bigint | null)[];
        readonly rom: bigint | undefined;
        /** The VF BAR sizes of the image's SR-IOV capability (absent: none given). */
        readonly vfBars?: readonly (bigint | null)[] | undefined;
      };
      readonly hidden: boolean;
      /** Xen's `pci_ro_device` (implies `hidden`): no vPCI, the hardware domain's writes dropped. */
      readonly readOnly?: boolean;
    }
  | { readonly event: 'boot' }
  | {
      readonly event: 'domain';
      readonly id: number;
      readonly vcpus: number;
      readonly mtrr: TraceMtrr | undefined;
      /** The guest uses HAP (false: shadow paging). Absent: true. */
      readonly hap?: boolean | undefined;
      /** The guest has an IOMMU context. Absent: as the host. */
      readonly iommu?: boolean | undefined;
    }
  | {
      readonly event: 'iomem';
      readonly domain: number;
      readonly permit: boolean;
      readonly first: number;
      readonly last: number;
    }
  | {
      readonly event: 'assign';
      readonly sbdf: string;
      readonly domain: number;
      readonly expect: string | undefined;
    }
  | { readonly event: 'deassign'; readonly sbdf: string; readonly expect: string | undefined }
  | {
      /** `xl pci-assignable-add`: the device goes to dom_io, quarantined. */
      readonly event: 'quarantine';
      readonly sbdf: string;
      readonly expect: string | undefined;
    }
  | {
      /** Xen's `pci_release_devices`: a dying guest gives up every device. */
      readonly event: 'release';
      readonly domain: number;
      readonly expect: string | undefined;
    }
  | {
      /** The device-reset hypercall (`PHYSDEVOP_pci_device_reset`): vPCI state set up again. */
      readonly event: 'reset';
      readonly sbdf: string;
      readonly type: 'cold' | 'warm' | 'hot' | 'flr';
      readonly expect: string | undefined;
    }
  | { readonly event: 'unplug'; readonly sbdf: string; readonly expect?: string | undefined }
  | {
      /** `PHYSDEVOP_pci_mmcfg_reserved`: an MMCFG region is usable (`reserved`) or not. */
      readonly event: 'mmcfg';
      readonly segment: number;
      readonly startBus: number;
      readonly endBus: number;
      readonly reserved: boolean;
    }
  | {
      readonly event: 'read';
      /** Through the CF8/CFC ports (the default). */
      readonly via?: 'cf8';
      readonly vcpu: TraceVcpu;
      readonly sbdf: string;
      readonly reg: number;
      readonly size: 1 | 2 | 4;
      readonly expect: number | undefined;
    }
  | {
      readonly event: 'read';
      /** Through the memory-mapped configuration space (ECAM/MMCFG): up to 8 bytes. */
      readonly via: 'ecam';
      readonly vcpu: TraceVcpu;
      readonly sbdf: string;
      readonly reg: number;
      readonly size: 1 | 2 | 4 | 8;
      readonly expect: bigint | undefined;
    }
  | {
      readonly event: 'write';
      /** Through the CF8/CFC ports (the default). */
      readonly via?: 'cf8';
      readonly vcpu: TraceVcpu;
      readonly sbdf: string;
      readonly reg: number;
      readonly size: 1 | 2 | 4;
      readonly value: number;
    }
  | {
      readonly event: 'write';
      /** Through the memory-mapped configuration space (ECAM/MMCFG): up to 8 bytes. */
      readonly via: 'ecam';
      readonly vcpu: TraceVcpu;
      readonly sbdf: string;
      readonly reg: number;
      readonly size: 1 | 2 | 4 | 8;
      readonly value: bigint;
    }
  | {
      readonly event: 'run';
      readonly vcpu: TraceVcpu;
      readonly budget: number | undefined;
      readonly expect: RunStatus | undefined;
    }
  | { readonly event: 'fault'; readonly domain: number; readonly after: number }
  | {
      /** The next IOMMU context (re)assignment of requester ID `requester` fails with `code`. */
      readonly event: 'fault';
      readonly requester: string;
      readonly code: 'ENOMEM' | 'EPERM' | 'ENODEV' | 'EBUSY';
    }
  | {
      readonly event: 'populate';
      readonly domain: number;
      readonly gfn: number;
      readonly count: number;
      readonly mfn: number;
      readonly refuseClobber: boolean;
      readonly expect: 'ok' | 'EEXIST' | 'EPERM' | 'ENOMEM' | 'EINVAL' | 'ENOENT' | undefined;
    }
  | {
      readonly event: 'p2m';
      readonly domain: number;
      readonly gfn: number;
      readonly count: number;
      readonly mfn: number;
      readonly type: P2mType;
      readonly special: boolean;
    }
  | {
      readonly event: 'mmio';
      readonly vcpu: TraceVcpu;
      readonly addr: bigint;
      readonly size: 1 | 2 | 4 | 8;
      /** The value written; undefined for a read. */
      readonly value: bigint | undefined;
      /** A read's expected value. */
      readonly expect: bigint | undefined;
      /** Who is expected to answer (`MmioPath`). */
      readonly via: MmioPath | undefined;
    }
  | { readonly event: 'assert'; readonly assertion: TraceAssertion };

/** Who may answer an `mmio` line, as `via` names it. */
export const MMIO_PATHS: readonly MmioPath[] = [
  'direct',
  'msix-table',
  'msix-adjacent',
  'unhandled',
  'memory',
];

/** Event names, in documentation order. */
export const EVENT_NAMES = [
  'host',
  'device',
  'boot',
  'domain',
  'iomem',
  'assign',
  'deassign',
  'quarantine',
  'release',
  'reset',
  'unplug',
  'mmcfg',
  'read',
  'write',
  'mmio',
  'run',
  'fault',
  'populate',
  'p2m',
  'assert',
] as const;

/** Parses one line (1-based `line` for messages). Comments and blank lines give `undefined`. */
export function parseTraceLine(text: string, line: number): TraceEvent | undefined {
  return compactWrite(text) ?? parseGeneralLine(text, line);
}

/** `parseTraceLine` without the compact write path: `JSON.parse` and the field readers. */
export function parseGeneralLine(text: string, line: number): TraceEvent | undefined {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(trimmed);
  } catch (error) {
    throw new TraceError(line, `not JSON (${(error as Error).message}); expected one JSON object per line`);
  }
  const problem = strictJsonProblem(trimmed, json);
  if (problem !== undefined) throw new TraceError(line, problem);
  const object = requireObject(line, 'event', json);
  const name = object.event;
  if (typeof name !== 'string' || !Object.hasOwn(PARSERS, name)) {
    throw new TraceError(
      line,
      `'event' is ${JSON.stringify(name) ?? 'missing'}; expected one of: ${EVENT_NAMES.join(', ')}`,
    );
  }
  return (name === 'write' ? plainWrite(object) : undefined) ?? parseEvent(line, name, object);
}

/** Reads event `name` from a line's object field by field: every bad field is a `TraceError`. */
export function parseEvent(line: number, name: string, json: Record<string, unknown>): TraceEvent {
  const f = new Fields(line, name, json);
  f.raw('event');
  const event = PARSERS[name as TraceEvent['event']](f);
  f.done();
  return event;
}

/**
 * A `write` line in the form nearly every line of a long trace has: its six fields, each a plain
 * JSON value that `parseEvent` takes as it is. Anything else (a hex string, a missing or extra field,
 * a value out of range) is undefined here and goes to `parseEvent`, which reads or reports it; the
 * field-by-field reader cost about as much as `JSON.parse`.
 */
export function plainWrite(json: Record<string, unknown>): TraceEvent | undefined {
  let fields = 0;
  for (const _ in json) fields++;
  const { vcpu, sbdf, reg, size, value } = json;
  if (fields !== 6 || typeof vcpu !== 'string' || typeof sbdf !== 'string') return undefined;
  if (size !== 1 && size !== 2 && size !== 4) return undefined;
  if (!isIntegerIn(reg, 0, 4095) || !isIntegerIn(value, 0, largestValue(size))) return undefined;
  const who = parseVcpu(vcpu);
  return who === undefined ? undefined : { event: 'write', vcpu: who, sbdf, reg, size, value };
}

/**
 * A compact write line's shape: `{"event":"write","vcpu":"d…v…","sbdf":"…","reg":…,"size":…,"value":…}`,
 * keys in that order, no spaces, a plain string for the address (no escape, no control character),
 * integers of 1 to 15 digits (leading zeros are refused after the match), a size of one digit 1, 2
 * or 4. Sticky: it is tried where the line starts. It cannot run past a line's end: nothing it
 * matches after the address's quote is a newline, and the address refuses control characters.
 */
const COMPACT_WRITE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a JSON string holds no raw control character
  /\{"event":"write","vcpu":"d[0-9]+v[0-9]+","sbdf":"[^"\\\x00-\x1f]*","reg":[0-9]{1,15},"size":[124],"value":[0-9]{1,15}\}/y;
/** Where the vCPU's domain number starts in a compact write line: past `{"event":"write","vcpu":"d`. */
const VCPU_DOMAIN_AT = '{"event":"write","vcpu":"d'.length;

/**
 * A `write` line read straight from its characters, without `JSON.parse`, when it has the form a long
 * trace's lines have: `{"event":"write","vcpu":"d0v0","sbdf":"…","reg":4,"size":2,"value":6}`, keys
 * in that order, no spaces, plain strings (no escapes), integers of at most 15 digits without a
 * sign, fraction or exponent. Every such text is valid JSON with no repeated key and exact numbers, so
 * it means what `plainWrite` makes of `JSON.parse(text)`; anything else (and any value `plainWrite`
 * would not take) is undefined here and goes through the general reader, which reads or reports it.
 * `JSON.parse` and the object it builds were a quarter of a replay.
 *
 * The line's shape is checked by one sticky regular expression (`COMPACT_WRITE`, compiled to machine
 * code: comparing the keys' characters one `charCodeAt` at a time cost a replay more than the engine's
 * work on the line), and then only the numbers are read, where the shape puts them; only the address
 * is cut out of the line. The line may be `text[from … to)`, a span of a chunk read from a file
 * (`LineSpans`), so it need not be cut out either.
 */
export function compactWrite(text: string, from = 0, to = text.length): TraceEvent | undefined {
  COMPACT_WRITE.lastIndex = from;
  if (!COMPACT_WRITE.test(text) || COMPACT_WRITE.lastIndex !== to) return undefined;
  // From here the shape is known: each number runs to the first character that is not a digit.
  let at = from + VCPU_DOMAIN_AT;
  let domain = 0;
  for (let c = text.charCodeAt(at); c !== 0x76 /* v */; c = text.charCodeAt(++at))
    domain = domain * 10 + (c - 0x30);
  let vcpu = 0;
  for (let c = text.charCodeAt(++at); c !== 0x22 /* " */; c = text.charCodeAt(++at))
    vcpu = vcpu * 10 + (c - 0x30);
  const sbdfFrom = at + '","sbdf":"'.length;
  at = text.indexOf('"', sbdfFrom);
  const sbdf = text.slice(sbdfFrom, at);
  at += '","reg":'.length;
  const reg = integerAt(text, at, 0x2c /* , */);
  at = integerEnd;
  const size = text.charCodeAt(at + ',"size":'.length) - 0x30;
  at += ',"size":'.length + 1 + ',"value":'.length;
  const value = integerAt(text, at, 0x7d /* } */);
  if (reg < 0 || value < 0 || reg > 4095 || value > largestValue(size)) return undefined;
  return { event: 'write', vcpu: { domain, vcpu }, sbdf, reg, size: size as 1 | 2 | 4, value };
}

/** Where the last `integerAt` stopped: its `end` character. */
let integerEnd = 0;

/**
 * The JSON integer of digits at `at` up to the character `end` (`COMPACT_WRITE` matched: 1 to 15
 * digits, so it is exact), or -1 when it has a leading zero (JSON has none). Sets `integerEnd`.
 */
function integerAt(text: string, at: number, end: number): number {
  let n = 0;
  let i = at;
  for (let c = text.charCodeAt(i); c !== end; c = text.charCodeAt(++i)) n = n * 10 + (c - 0x30);
  integerEnd = i;
  return i - at > 1 && text.charCodeAt(at) === 0x30 ? -1 : n;
}

type Parser = (f: Fields) => TraceEvent;

/** One Arm host bridge of the `host` line: its segment, bus range and windows. */
function parseHostBridge(b: Fields): HostBridge {
  const busStart = b.optionalInteger('busStart', 0, 255) ?? 0;
  const busEnd = b.optionalInteger('busEnd', 0, 255) ?? 255;
  if (busStart > busEnd)
    throw b.error('busEnd', `is below busStart ${busStart}; expected busStart <= busEnd`);
  const windows = b.array('windows', 64).map((entry, j) => {
    const w = new Fields(b.line, `${b.path}.windows[${j}]`, entry);
    const window = { addr: w.bigint('addr', 0n, U64), size: w.bigint('size', 1n, U64) };
    if (window.addr + window.size > 1n << 64n)
      throw w.error('size', 'runs past 2^64; expected addr + size <= 2^64');
    w.done();
    return window;
  });
  const bridge = { segment: b.optionalInteger('segment', 0, 0xffff) ?? 0, busStart, busEnd, windows };
  b.done();
  return bridge;
}

const PARSERS: Record<TraceEvent['event'], Parser> = {
  host: (f) => {
    const policy: Record<string, boolean> = {};
    const switches = f.optionalObject('policy');
    if (switches !== undefined) {
      for (const name of POLICY_SWITCHES) {
        const value = switches.optionalBoolean(name);
        if (value !== undefined) policy[name] = value;
      }
      switches.done();
    }
    const e820 = (f.optionalArray('e820', 1024) ?? []).map((entry, i) => {
      const e = new Fields(f.line, `host.e820[${i}]`, entry);
      const parsed: TraceE820 = {
        addr: e.bigint('addr', 0n, U64),
        size: e.bigint('size', 1n, U64),
        type: e.optionalString('type', ['ram', 'reserved', 'acpi', 'nvs', 'unusable'] as const) ?? 'reserved',
      };
      if (parsed.addr + parsed.size > 1n << 64n)
        throw e.error('size', 'runs past 2^64; expected addr + size <= 2^64');
      e.done();
      return parsed;
    });
    rejectOverlappingE820(f.line, e820);
    const mtrr = f.optionalObject('mtrr');
    const hardwareMtrr = f.optionalObject('hardwareMtrr');
    const arch = f.optionalString('arch', ARCHES);
    const x86GuestVpci = f.optionalBoolean('x86GuestVpci');
    const hostBridges = (f.optionalArray('hostBridges', 64) ?? []).map((entry, i) =>
      parseHostBridge(new Fields(f.line, `host.hostBridges[${i}]`, entry)),
    );
    if (arch === 'arm') {
      // What only x86 has: the e820 map, MTRRs, the CPU vendor's EPT/NPT rules and HAP/shadow
      // choices, the guest-vPCI switch.
      for (const name of ['e820', 'mtrr', 'hardwareMtrr', 'vendor', 'hardwareHap', 'hap2mb', 'x86GuestVpci'])
        if (f.has(name)) throw f.error(name, "is x86's; expected no such field with arch 'arm'");
    } else if (f.has('hostBridges')) {
      throw f.error(
        'hostBridges',
        "are Arm's (pci_check_bar on their windows); expected them with arch 'arm' only",
      );
    }
    return {
      event: 'host',
      arch,
      x86GuestVpci,
      hostBridges,
      profile: f.optionalString('profile', ['xen', 'hardened'] as const) ?? 'xen',
      rules: f.optionalString('rules', RULE_SET_NAMES),
      policy: policy as Partial<Policy>,
      vendor: f.optionalString('vendor', ['intel', 'amd'] as const) ?? 'intel',
      iommu: f.optionalBoolean('iommu') ?? true,
      physAddrBits: f.optionalInteger('physAddrBits', 36, 52) ?? 48,
      hardwareVcpus: f.optionalInteger('hardwareVcpus', 1, 128) ?? 2,
      quarantine: f.optionalBoolean('quarantine') ?? true,
      e820,
      mtrr: mtrr === undefined ? undefined : parseMtrr(mtrr),
      hardwareMtrr: hardwareMtrr === undefined ? undefined : parseMtrr(hardwareMtrr),
      hardwareHap: f.optionalBoolean('hardwareHap') ?? true,
      hap2mb: f.optionalBoolean('hap2mb') ?? true,
    };
  },

  device: (f) => {
    const readOnly = f.optionalBoolean('readOnly') ?? false;
    const hidden = (f.optionalBoolean('hidden') ?? false) || readOnly;
    const flags = readOnly ? { hidden, readOnly } : { hidden };
    const sbdf = f.string('sbdf');
    if (f.has('image')) {
      const image = f.raw('image');
      const text =
        Array.isArray(image) && image.every((l) => typeof l === 'string') ? image.join('\n') : image;
      if (typeof text !== 'string') {
        throw f.error(
          'image',
          'is not text; expected the lspci -xxx hex dump as a string or an array of lines',
        );
      }
      const sizes = f.optionalObject('sizes');
      const bars = (sizes?.optionalArray('bars', 6) ?? []).map((size, i) =>
        size === null
          ? null
          : new Fields(f.line, 'device.sizes', { [`bars[${i}]`]: size }).bigint(`bars[${i}]`, 4n, 1n << 63n),
      );
      const rom = sizes?.optionalBigint('rom', 2048n, 1n << 32n);
      const vfBars = sizes
        ?.optionalArray('vfBars', 6)
        ?.map((size, i) =>
          size === null
            ? null
            : new Fields(f.line, 'device.sizes', { [`vfBars[${i}]`]: size }).bigint(
                `vfBars[${i}]`,
                16n,
                1n << 63n,
              ),
        );
      sizes?.done();
      return {
        event: 'device',
        sbdf,
        image: text,
        sizes: { bars, rom, ...(vfBars === undefined ? {} : { vfBars }) },
        ...flags,
      };
    }
    f.raw('image');
    const bars = (f.optionalArray('bars', 6) ?? []).map((bar, i) =>
      bar === null ? null : parseBar(new Fields(f.line, `device.bars[${i}]`, bar)),
    );
    const rom = f.optionalObject('rom');
    const msix = f.optionalObject('msix');
    const msi = f.optionalObject('msi');
    const rebar = f.optionalArray('rebar', 6);
    const sriov = f.optionalObject('sriov');
    const phantom = f.optionalInteger('phantomFunctions', 0, 3);
    const spec: DeviceSpec = {
      sbdf,
      vendorId: f.optionalInteger('vendorId', 0, 0xffff) ?? 0x1234,
      deviceId: f.optionalInteger('deviceId', 0, 0xffff) ?? 0x0001,
      headerType: (f.optionalInteger('headerType', 0, 1) ?? 0) as 0 | 1,
      command: f.optionalInteger('command', 0, 0xffff) ?? 0,
      bars,
      ...(rom === undefined ? {} : { rom: parseRom(rom) }),
      ...(msix === undefined ? {} : { msix: parseMsix(msix) }),
      ...(msi === undefined ? {} : { msi: parseMsi(msi) }),
      ...(rebar === undefined
        ? {}
        : { rebar: rebar.map((r, i) => parseRebar(new Fields(f.line, `device.rebar[${i}]`, r))) }),
      ...(sriov === undefined ? {} : { sriov: parseSriov(sriov) }),
      ...(phantom === undefined ? {} : { phantomFunctions: phantom as 0 | 1 | 2 | 3 }),
    };
    return { event: 'device', spec, ...flags };
  },

  boot: () => ({ event: 'boot' }),

  domain: (f) => {
    const mtrr = f.optionalObject('mtrr');
    return {
      event: 'domain',
      id: f.integer('id', 1, 0x7ff0),
      vcpus: f.optionalInteger('vcpus', 1, 128) ?? 1,
      mtrr: mtrr === undefined ? undefined : parseMtrr(mtrr),
      hap: f.optionalBoolean('hap') ?? true,
      iommu: f.optionalBoolean('iommu'),
    };
  },

  iomem: (f) => {
    const first = f.integer('first', 0, MAX_FRAME);
    const last = f.integer('last', 0, MAX_FRAME);
    if (last < first) throw f.error('last', `is below first (${first}); expected first <= last`);
    return { event: 'iomem', domain: domainId(f), permit: f.boolean('permit'), first, last };
  },

  assign: (f) => ({
    event: 'assign',
    sbdf: f.string('sbdf'),
    domain: f.integer('domain', 1, 0x7ff0),
    expect: f.optionalString('expect'),
  }),

  deassign: (f) => ({ event: 'deassign', sbdf: f.string('sbdf'), expect: f.optionalString('expect') }),

  quarantine: (f) => ({ event: 'quarantine', sbdf: f.string('sbdf'), expect: f.optionalString('expect') }),

  release: (f) => ({
    event: 'release',
    domain: f.integer('domain', 1, 0x7ff0),
    expect: f.optionalString('expect'),
  }),

  reset: (f) => ({
    event: 'reset',
    sbdf: f.string('sbdf'),
    type: f.optionalString('type', ['cold', 'warm', 'hot', 'flr'] as const) ?? 'flr',
    expect: f.optionalString('expect'),
  }),

  unplug: (f) => ({ event: 'unplug', sbdf: f.string('sbdf'), expect: f.optionalString('expect') }),

  mmcfg: (f) => {
    const startBus = f.optionalInteger('startBus', 0, 0xff) ?? 0;
    return {
      event: 'mmcfg',
      segment: f.optionalInteger('segment', 0, 0xffff) ?? 0,
      startBus,
      endBus: f.optionalInteger('endBus', startBus, 0xff) ?? 0xff,
      reserved: f.boolean('reserved'),
    };
  },

  read: (f) => {
    if (accessPath(f) === 'ecam') {
      const size = ecamSize(f);
      return {
        event: 'read',
        via: 'ecam',
        vcpu: vcpuOf(f),
        sbdf: f.string('sbdf'),
        reg: register(f),
        size,
        expect: f.optionalBigint('expect', 0n, ecamLargest(size)),
      };
    }
    const size = accessSize(f);
    return {
      event: 'read',
      vcpu: vcpuOf(f),
      sbdf: f.string('sbdf'),
      reg: register(f),
      size,
      expect: f.optionalInteger('expect', 0, largestValue(size)),
    };
  },

  mmio: (f) => {
    const size = f.raw('size');
    if (size !== 1 && size !== 2 && size !== 4 && size !== 8)
      throw f.error('size', `is ${JSON.stringify(size) ?? 'missing'}; expected 1, 2, 4 or 8`);
    const addr = f.bigint('addr', 0n, U64);
    if ((addr & 0xfffn) + BigInt(size) > 0x1000n) {
      throw f.error(
        'addr',
        `is 0x${addr.toString(16)}; expected an access of ${size} bytes within one 4 KiB page`,
      );
    }
    const largest = (1n << BigInt(8 * size)) - 1n;
    const value = f.optionalBigint('value', 0n, largest);
    const expect = f.optionalBigint('expect', 0n, largest);
    if (value !== undefined && expect !== undefined) {
      throw f.error('expect', 'is given with value; expected value (a write) or expect (a read), not both');
    }
    const via = f.optionalString('via');
    if (via !== undefined && !MMIO_PATHS.includes(via as MmioPath)) {
      throw f.error('via', `is ${JSON.stringify(via)}; expected one of ${MMIO_PATHS.join(', ')}`);
    }
    return { event: 'mmio', vcpu: vcpuOf(f), addr, size, value, expect, via: via as MmioPath | undefined };
  },

  write: (f) => {
    if (accessPath(f) === 'ecam') {
      const size = ecamSize(f);
      return {
        event: 'write',
        via: 'ecam',
        vcpu: vcpuOf(f),
        sbdf: f.string('sbdf'),
        reg: register(f),
        size,
        value: f.bigint('value', 0n, ecamLargest(size)),
      };
    }
    const size = accessSize(f);
    return {
      event: 'write',
      vcpu: vcpuOf(f),
      sbdf: f.string('sbdf'),
      reg: register(f),
      size,
      value: f.integer('value', 0, largestValue(size)),
    };
  },

  run: (f) => ({
    event: 'run',
    vcpu: vcpuOf(f),
    budget: f.optionalInteger('budget', 1, Number.MAX_SAFE_INTEGER),
    expect: f.optionalString('expect', ['idle', 'restart', 'done', 'dropped', 'failed'] as const),
  }),

  fault: (f) =>
    f.has('requester')
      ? {
          event: 'fault',
          requester: f.string('requester'),
          code: f.optionalString('code', ['ENOMEM', 'EPERM', 'ENODEV', 'EBUSY'] as const) ?? 'ENOMEM',
        }
      : { event: 'fault', domain: domainId(f), after: f.integer('after', 1, Number.MAX_SAFE_INTEGER) },

  populate: (f) => {
    const gfn = f.integer('gfn', 0, MAX_FRAME);
    return {
      event: 'populate',
      domain: domainId(f),
      gfn,
      count: frameCount(f, gfn),
      mfn: f.integer('mfn', 0, MAX_FRAME),
      refuseClobber:
        (f.optionalString('policy', ['report', 'refuseClobber'] as const) ?? 'report') === 'refuseClobber',
      expect: f.optionalString('expect', ['ok', 'EEXIST', 'EPERM', 'ENOMEM', 'EINVAL', 'ENOENT'] as const),
    };
  },

  p2m: (f) => {
    const gfn = f.integer('gfn', 0, MAX_FRAME);
    const count = frameCount(f, gfn, 1 << 20);
    const mfn = f.integer('mfn', 0, MAX_FRAME - count + 1);
    const type = f.string('type', P2M_TYPES as readonly P2mType[]);
    if (type === 'invalid') throw f.error('type', "is 'invalid'; expected a type that maps a frame");
    return {
      event: 'p2m',
      domain: domainId(f),
      gfn,
      count,
      mfn,
      type,
      special: f.optionalBoolean('special') ?? false,
    };
  },

  assert: (f) => {
    const present = ASSERTION_KINDS.filter((kind) => f.has(kind));
    if (present.length === 0) {
      // A misspelt kind is an unknown field: say so, with the kinds there are.
      f.raw('event');
      for (const kind of ASSERTION_KINDS) f.raw(kind);
      f.done();
    }
    if (present.length !== 1) {
      throw new TraceError(
        f.line,
        `'assert' has ${present.length === 0 ? 'no check' : `${present.join(' and ')}`}; expected exactly one of: ${ASSERTION_KINDS.join(', ')}`,
      );
    }
    for (const kind of ASSERTION_KINDS) f.raw(kind);
    return { event: 'assert', assertion: parseAssertion(f, present[0]!) };
  },
};

function parseAssertion(f: Fields, kind: (typeof ASSERTION_KINDS)[number]): TraceAssertion {
  if (kind === 'noViolations') {
    if (f.raw(kind) !== true) throw f.error(kind, 'must be true');
    return { kind };
  }
  if (kind === 'logged' || kind === 'notLogged' || kind === 'violation') {
    const a = f.object(kind);
    const pattern = a.raw('kind') === undefined ? undefined : (f.raw(kind) as Record<string, unknown>);
    if (pattern === undefined) throw a.error('kind', "is missing; expected the event's or violation's kind");
    if (kind === 'violation') return { kind, pattern };
    const from = windowLine(f, 'from', 1);
    const to = windowLine(f, 'to', from ?? 1);
    return { kind, pattern, from, to };
  }
  const a = f.object(kind);
  let assertion: TraceAssertion;
  switch (kind) {
    case 'maps': {
      const gfn = a.integer('gfn', 0, MAX_FRAME);
      const mfn = a.optionalInteger('mfn', 0, MAX_FRAME);
      const type = a.optionalString('type', P2M_TYPES as readonly P2mType[]);
      const order = a.has('order') ? a.integer('order', 0, 18) : undefined;
      if (order !== undefined && !(PAGE_ORDERS as readonly number[]).includes(order))
        throw a.error('order', 'is not a leaf order; expected 0 (4 KiB), 9 (2 MiB) or 18 (1 GiB)');
      if (order !== undefined && mfn === undefined)
        throw a.error('order', 'is given without mfn; expected an mfn: holes have no leaves');
      assertion = {
        kind,
        domain: domainId(a),
        gfn,
        count: frameCount(a, gfn),
        mfn,
        type,
        order: order as PageOrder | undefined,
      };
      break;
    }
    case 'memoryType':
      assertion = {
        kind,
        domain: domainId(a),
        gfn: a.integer('gfn', 0, MAX_FRAME),
        pat: a.string('pat', MEMORY_TYPES as readonly MemoryType[]),
        expect: a.string('expect', MTRR_TYPES as readonly MtrrType[]),
        ipat: a.optionalBoolean('ipat'),
      };
      break;
    case 'bar':
      assertion = {
        kind,
        sbdf: a.string('sbdf'),
        bar: a.integer('index', 0, 6),
        addr: a.optionalBigint('addr', 0n, U64),
        guestAddr: a.optionalBigint('guestAddr', 0n, U64),
        size: a.optionalBigint('size', 0n, U64),
        enabled: a.optionalBoolean('enabled'),
      };
      break;
    case 'crashed':
      assertion = { kind, domain: domainId(a), expect: a.optionalBoolean('expect') ?? true };
      break;
  }
  a.done();
  return assertion;
}

/** A `from` / `to` line of an assertion's window: a trace line in `min … ` the assertion's own line. */
function windowLine(f: Fields, name: 'from' | 'to', min: number): number | undefined {
  const value = f.optionalInteger(name, 1, Number.MAX_SAFE_INTEGER);
  if (value === undefined || (value >= min && value <= f.line)) return value;
  throw f.error(
    name,
    `is ${value}; expected a trace line number in ${min} … ${f.line} (${name === 'to' && value < min ? "at least 'from'" : 'at most the assertion’s own line'})`,
  );
}

function parseMtrr(f: Fields): TraceMtrr {
  const types = MTRR_TYPES as readonly MtrrType[];
  let fixed: MtrrType | MtrrType[] = 'UC';
  if (f.has('fixed')) {
    const raw = f.raw('fixed');
    if (Array.isArray(raw)) {
      if (raw.length !== 88 || !raw.every((t) => types.includes(t as MtrrType))) {
        throw f.error(
          'fixed',
          'is not 88 memory types; expected one type or an array of 88 (UC, WC, WT, WP, WB)',
        );
      }
      fixed = raw as MtrrType[];
    } else {
      fixed = f.string('fixed', types);
    }
  }
  const variable = (f.optionalArray('variable', 40) ?? []).map((entry, i) => {
    const v = new Fields(f.line, `${f.path}.variable[${i}]`, entry);
    const range = {
      base: v.bigint('base', 0n, (1n << 52n) - 1n),
      size: v.bigint('size', 4096n, 1n << 52n),
      type: v.string('type', types),
    };
    v.done();
    return range;
  });
  const mtrr: TraceMtrr = {
    enabled: f.optionalBoolean('enabled') ?? true,
    fixedEnabled: f.optionalBoolean('fixedEnabled') ?? f.has('fixed'),
    defaultType: f.optionalString('defaultType', types) ?? 'UC',
    fixed,
    variable,
  };
  f.done();
  return mtrr;
}

function parseBar(f: Fields): BarSpec {
  const type = f.string('type', ['io', 'mem32', 'mem64'] as const);
  const bar: BarSpec = {
    type,
    size: f.bigint('size', type === 'io' ? 4n : 16n, 1n << 63n),
    addr: f.optionalBigint('addr', 0n, U64) ?? 0n,
    prefetchable: f.optionalBoolean('prefetchable') ?? false,
  };
  f.done();
  return bar;
}

function parseRom(f: Fields): RomSpec {
  const rom: RomSpec = {
    size: f.bigint('size', 2048n, 1n << 32n),
    addr: f.optionalBigint('addr', 0n, 0xffff_ffffn) ?? 0n,
    enabled: f.optionalBoolean('enabled') ?? false,
  };
  f.done();
  return rom;
}

function parseMsix(f: Fields): MsixSpec {
  const placement = (name: string): { bar: number; offset: number } => {
    const p = f.object(name);
    const result = { bar: p.integer('bar', 0, 7), offset: p.integer('offset', 0, 0xffff_fff8) };
    p.done();
    return result;
  };
  const msix: MsixSpec = {
    entries: f.integer('entries', 1, 2048),
    table: placement('table'),
    pba: placement('pba'),
  };
  f.done();
  return msix;
}

function parseMsi(f: Fields): MsiSpec {
  const vectors = f.integer('vectors', 1, 32);
  if ((vectors & (vectors - 1)) !== 0)
    throw f.error('vectors', `is ${vectors}; expected 1, 2, 4, 8, 16 or 32`);
  const address64 = f.optionalBoolean('address64');
  const masking = f.optionalBoolean('masking');
  f.done();
  return {
    vectors,
    ...(address64 === undefined ? {} : { address64 }),
    ...(masking === undefined ? {} : { masking }),
  };
}

function parseRebar(f: Fields): RebarSpec {
  const sizes = f
    .array('sizes', 44)
    .map((size, i) =>
      new Fields(f.line, f.path, { [`sizes[${i}]`]: size }).bigint(`sizes[${i}]`, 1n << 20n, 1n << 63n),
    );
  const rebar: RebarSpec = { bar: f.integer('bar', 0, 5), sizes };
  f.done();
  return rebar;
}

/** A device's SR-IOV capability (docs/sriov.md); cross-field rules are the engine's (`SriovHardware`). */
function parseSriov(f: Fields): SriovSpec {
  const totalVfs = f.integer('totalVfs', 1, 0xffff);
  const vfBars = (f.optionalArray('vfBars', 6) ?? []).map((bar, i) =>
    bar === null ? null : parseVfBar(new Fields(f.line, `${f.path}.vfBars[${i}]`, bar)),
  );
  const vfMsix = f.optionalObject('vfMsix');
  const sriov: SriovSpec = {
    totalVfs,
    initialVfs: f.optionalInteger('initialVfs', 0, 0xffff) ?? totalVfs,
    numVfs: f.optionalInteger('numVfs', 0, 0xffff) ?? 0,
    firstVfOffset: f.integer('firstVfOffset', 1, 0xffff),
    vfStride: f.integer('vfStride', 0, 0xffff),
    vfDeviceId: f.optionalInteger('vfDeviceId', 0, 0xffff) ?? 0,
    supportedPageSizes: f.optionalInteger('supportedPageSizes', 1, 0xffff_ffff) ?? 0x553,
    systemPageSize: f.optionalInteger('systemPageSize', 1, 0xffff_ffff) ?? 1,
    vfBars,
    vfEnable: f.optionalBoolean('vfEnable') ?? false,
    vfMemorySpace: f.optionalBoolean('vfMemorySpace') ?? false,
    ...(vfMsix === undefined ? {} : { vfMsix: parseMsix(vfMsix) }),
  };
  f.done();
  return sriov;
}

function parseVfBar(f: Fields): VfBarSpec {
  const bar: VfBarSpec = {
    type: f.string('type', ['mem32', 'mem64'] as const),
    size: f.bigint('size', 16n, 1n << 63n),
    addr: f.optionalBigint('addr', 0n, U64) ?? 0n,
    prefetchable: f.optionalBoolean('prefetchable') ?? false,
  };
  f.done();
  return bar;
}

/** `vcpu` as `d<domain>v<vcpu>` (default `d0v0`, the hardware domain's first vCPU). */
function vcpuOf(f: Fields): TraceVcpu {
  const value = f.raw('vcpu') ?? 'd0v0';
  const parsed = typeof value === 'string' ? parseVcpu(value) : undefined;
  if (parsed === undefined)
    throw f.error('vcpu', `is ${JSON.stringify(value)}; expected "d<domain>v<vcpu>", e.g. "d1v0"`);
  return parsed;
}

/** `d<domain>v<vcpu>` read character by character (every access line has one; a regex match allocates). */
function parseVcpu(text: string): TraceVcpu | undefined {
  const v = text.indexOf('v');
  if (text.charCodeAt(0) !== 0x64 /* d */ || v < 2 || v === text.length - 1) return undefined;
  const domain = decimal(text, 1, v);
  const vcpu = decimal(text, v + 1, text.length);
  return domain === undefined || vcpu === undefined ? undefined : { domain, vcpu };
}

/** The decimal number `text[from … to)`, or undefined if a character there is not a digit. */
function decimal(text: string, from: number, to: number): number | undefined {
  let n = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    n = n * 10 + digit;
  }
  return n;
}

function domainId(f: Fields): number {
  return f.integer('domain', 0, 0x7ff0);
}

function accessSize(f: Fields): 1 | 2 | 4 {
  const size = f.raw('size');
  if (size !== 1 && size !== 2 && size !== 4)
    throw f.error(
      'size',
      `is ${JSON.stringify(size) ?? 'missing'}; expected 1, 2 or 4 (8 only with "via":"ecam")`,
    );
  return size;
}

/** `via`: `cf8` (the CF8/CFC ports, default) or `ecam` (the memory-mapped configuration space). */
function accessPath(f: Fields): 'cf8' | 'ecam' {
  return f.optionalString('via', ['cf8', 'ecam'] as const) ?? 'cf8';
}

function ecamSize(f: Fields): 1 | 2 | 4 | 8 {
  const size = f.raw('size');
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8)
    throw f.error('size', `is ${JSON.stringify(size) ?? 'missing'}; expected 1, 2, 4 or 8`);
  return size;
}

function ecamLargest(size: number): bigint {
  return (1n << BigInt(8 * size)) - 1n;
}

/**
 * Any offset in the 4 KiB config space: the machine drops an access not aligned to its size as Xen's
 * `vpci_access_allowed` does; an aligned one spanning registers is split as `vpci.c` does.
 */
function register(f: Fields): number {
  return f.integer('reg', 0, 4095);
}

/** The largest value an access of `size` bytes carries. */
function largestValue(size: number): number {
  // A table, not `2 ** (8 * size)`: this runs for every write line and `**` is a call.
  return size === 4 ? U32 : size === 2 ? 0xffff : size === 1 ? 0xff : 2 ** (8 * size) - 1;
}

function frameCount(f: Fields, gfn: number, max = MAX_FRAME + 1): number {
  const count = f.optionalInteger('count', 1, max) ?? 1;
  if (gfn + count - 1 > MAX_FRAME)
    throw f.error('count', `runs past frame 2^52 from gfn ${gfn}; expected a smaller count`);
  return count;
}

/**
 * A host memory map whose entries overlap has no single answer for the frames they share (Xen's e820
 * sanitiser would merge or drop them before anything reads the map), so such a trace is refused.
 */
function rejectOverlappingE820(line: number, entries: readonly TraceE820[]): void {
  const order = entries
    .map((entry, index) => ({ entry, index }))
    .sort((a, b) => (a.entry.addr < b.entry.addr ? -1 : a.entry.addr > b.entry.addr ? 1 : 0));
  for (let i = 1; i < order.length; i++) {
    const before = order[i - 1]!;
    const after = order[i]!;
    if (after.entry.addr < before.entry.addr + before.entry.size) {
      const [first, second] = before.index < after.index ? [before, after] : [after, before];
      throw new TraceError(
        line,
        `'host.e820[${second.index}]' (${hex(second.entry.addr)}, size ${hex(second.entry.size)}) overlaps 'host.e820[${first.index}]' (${hex(first.entry.addr)}, size ${hex(first.entry.size)}); expected entries that do not overlap`,
      );
    }
  }
}
