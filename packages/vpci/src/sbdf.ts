/**
 * PCI addresses: segment, bus, device, function ("SBDF"), written as Linux and Xen print them,
 * `0000:03:00.0`.
 */
import { InvalidArgumentError } from '@vpci/p2m';

/** A PCI function's address. */
export interface Sbdf {
  /** PCI segment, 0 … 0xffff. */
  readonly seg: number;
  /** Bus, 0 … 0xff. */
  readonly bus: number;
  /** Device (slot), 0 … 31. */
  readonly dev: number;
  /** Function, 0 … 7. */
  readonly fn: number;
}

const SBDF_PATTERN = /^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/;

/**
 * An SBDF `makeSbdf` built (frozen, fields checked): `toSbdf` takes it as it is. Every config access
 * names its device, and copying the address each time was a measurable part of a replay. Its class
 * is the mark (no registry of the SBDFs built).
 */
class CheckedSbdf implements Sbdf {
  readonly seg: number;
  readonly bus: number;
  readonly dev: number;
  readonly fn: number;

  constructor(seg: number, bus: number, dev: number, fn: number) {
    this.seg = seg;
    this.bus = bus;
    this.dev = dev;
    this.fn = fn;
    Object.freeze(this);
  }
}

/** Builds an SBDF, checking each field's range; throws naming the field. */
export function makeSbdf(seg: number, bus: number, dev: number, fn: number): Sbdf {
  checkField('seg', seg, 0xffff);
  checkField('bus', bus, 0xff);
  checkField('dev', dev, 31);
  checkField('fn', fn, 7);
  return new CheckedSbdf(seg, bus, dev, fn);
}

/** Parses `ssss:bb:dd.f` or `bb:dd.f` (segment 0), hexadecimal as lspci prints. */
export function parseSbdf(text: string, argument = 'sbdf'): Sbdf {
  const canonical = typeof text === 'string' ? canonicalSbdf(text) : undefined;
  if (canonical !== undefined) return canonical;
  const match = typeof text === 'string' ? SBDF_PATTERN.exec(text) : null;
  if (match === null) {
    throw new InvalidArgumentError(argument, text, 'a PCI address "ssss:bb:dd.f" or "bb:dd.f" (hex)');
  }
  const [, seg = '0', bus = '', dev = '', fn = ''] = match;
  const device = Number.parseInt(dev, 16);
  if (device > 31) throw new InvalidArgumentError(argument, text, 'a device number 00 … 1f');
  return makeSbdf(Number.parseInt(seg, 16), Number.parseInt(bus, 16), device, Number(fn));
}

/**
 * `ssss:bb:dd.f` exactly as `formatSbdf` writes it (any case), read digit by digit, or undefined for
 * any other text (`parseSbdf`'s pattern then reads or refuses it). A caller that names its devices as
 * text names them this way, on every access: the pattern's match and its strings cost more than the
 * access.
 */
function canonicalSbdf(text: string): Sbdf | undefined {
  if (
    text.length !== 12 ||
    text.charCodeAt(4) !== 0x3a /* : */ ||
    text.charCodeAt(7) !== 0x3a ||
    text.charCodeAt(10) !== 0x2e /* . */
  )
    return undefined;
  const seg = hexDigits(text, 0, 4);
  const bus = hexDigits(text, 5, 7);
  const dev = hexDigits(text, 8, 10);
  const fn = text.charCodeAt(11) - 0x30;
  if (seg < 0 || bus < 0 || dev < 0 || dev > 31 || fn < 0 || fn > 7) return undefined;
  return new CheckedSbdf(seg, bus, dev, fn);
}

/** The hexadecimal number `text[from … to)`, or -1 if a character there is not a hex digit. */
function hexDigits(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    const letter = c | 0x20; // lower case, for A … F
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : letter >= 0x61 && letter <= 0x66 ? letter - 0x57 : -1;
    if (digit < 0) return -1;
    n = n * 16 + digit;
  }
  return n;
}

/**
 * Texts `toSbdf` read, and what it read there: a caller naming its devices as text names the same few
 * on every access, and reading one again (and the SBDF made for it) was a visible part of a config
 * access. Bounded: emptied when it holds `PARSED_LIMIT` texts (an SBDF is frozen, so a shared one is
 * safe).
 */
const parsed = new Map<string, Sbdf>();
const PARSED_LIMIT = 4096;

/** Accepts an `Sbdf` or its text form. */
export function toSbdf(value: Sbdf | string, argument = 'sbdf'): Sbdf {
  if (typeof value === 'string') {
    const known = parsed.get(value);
    if (known !== undefined) return known;
    const sbdf = parseSbdf(value, argument);
    if (parsed.size >= PARSED_LIMIT) parsed.clear();
    parsed.set(value, sbdf);
    return sbdf;
  }
  if (value instanceof CheckedSbdf) return value;
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(
      argument,
      value,
      'a PCI address ("0000:00:02.0" or { seg, bus, dev, fn })',
    );
  }
  return makeSbdf(value.seg, value.bus, value.dev, value.fn);
}

/** `ssss:bb:dd.f`, lower-case hex, as Xen's `%pp` prints. */
export function formatSbdf(sbdf: Sbdf): string {
  const hex = (value: number, width: number): string => value.toString(16).padStart(width, '0');
  return `${hex(sbdf.seg, 4)}:${hex(sbdf.bus, 2)}:${hex(sbdf.dev, 2)}.${sbdf.fn}`;
}

/** A number unique per SBDF, ordered as Xen walks buses: segment, bus, device, function. */
export function sbdfKey(sbdf: Sbdf): number {
  return sbdf.seg * 0x10000 + sbdf.bus * 0x100 + sbdf.dev * 8 + sbdf.fn;
}

function checkField(argument: string, value: unknown, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new InvalidArgumentError(argument, value, `an integer in 0 … ${max}`);
  }
}
