/**
 * A compact `write` line read from its UTF-8 bytes, where it stands in a chunk read from a file: no
 * text is decoded, no string or object is made for it. The form is `compactWrite`'s,
 * `{"event":"write","vcpu":"d…v…","sbdf":"…","reg":…,"size":…,"value":…}`, narrowed to what bytes
 * show at once: an address of printable ASCII only (a byte of 0x80 or more is part of a character
 * the decoder must read), and at most 15 digits in every number. Every line this takes,
 * `compactWrite` takes with the same fields once the line is decoded; any other line is left to the
 * text path (decoded, then `compactWrite` or the general reader), which reads or reports it as before.
 *
 * Why bytes: decoding every chunk to text, then reading each number back with `charCodeAt` and
 * cutting the address out of the text, was most of what a replay added to the engine's work on a
 * line (the compact-line reader was about a third of an unchecked replay's time); a typed array's
 * bytes are plain loads.
 */

/** The fields of a compact write line; `readCompactWrite` fills one, reused from line to line. */
export class CompactWrite {
  /** The vCPU's domain (`d…`). */
  domain = 0;
  /** The vCPU (`v…`). */
  vcpu = 0;
  /** Where the address's characters start in the bytes (past its opening quote). */
  sbdfFrom = 0;
  /** Where they end (its closing quote). */
  sbdfTo = 0;
  /** A hash of the address's bytes, for finding its text again without decoding it (`AddressTexts`). */
  sbdfHash = 0;
  /**
   * The address's first 12 characters, 7 bits each, six in each number (exact: 42 bits): with its
   * length, the address itself when it has at most 12 (`ssss:bb:dd.f` has 12), so that telling it
   * from the last one compares two numbers, not its bytes.
   */
  sbdfHigh = 0;
  sbdfLow = 0;
  /** The register, 0 … 4095. */
  reg = 0;
  /** The access size: 1, 2 or 4. */
  size: 1 | 2 | 4 = 1;
  /** The value, at most the size's all-ones. */
  value = 0;
}

/**
 * A fixed run of a compact line's characters (its keys and punctuation), compared four bytes at a
 * time: a byte-by-byte loop over the five runs was half of the reader's time.
 */
class Literal {
  /** Its bytes four at a time, little-endian, as `DataView.getInt32(…, true)` reads them. */
  readonly words: Int32Array;
  /** The bytes after the last whole word. */
  readonly tail: Uint8Array;
  /** How many bytes. */
  readonly length: number;

  constructor(text: string) {
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    const whole = bytes.length >> 2;
    const view = new DataView(bytes.buffer);
    this.words = Int32Array.from({ length: whole }, (_, i) => view.getInt32(4 * i, true));
    this.tail = bytes.slice(4 * whole);
    this.length = bytes.length;
  }
}

/** The line up to the vCPU's domain number. */
const HEAD = new Literal('{"event":"write","vcpu":"d');
/** Between the vCPU's closing quote and the address's opening one. */
const SBDF_KEY = new Literal('","sbdf":"');
/** Between the address's closing quote and the register. */
const REG_KEY = new Literal('","reg":');
/** Between the register and the size. */
const SIZE_KEY = new Literal(',"size":');
/** Between the size and the value. */
const VALUE_KEY = new Literal(',"value":');
/** The shortest compact write line: one-digit numbers, an empty address. */
const SHORTEST =
  HEAD.length + 3 + SBDF_KEY.length + REG_KEY.length + 1 + SIZE_KEY.length + 1 + VALUE_KEY.length + 2;
/** Digits a number may have here: 15 are always exact in a double (the text path takes more). */
const MAX_DIGITS = 15;

/** Where the last `digitsAt` stopped, and the number it read. */
let digitsEnd = 0;
let digitsValue = 0;

/**
 * Reads the line `bytes[from … to)` (its line end left out) into `into` when it is a compact write
 * line this reader takes (see the module comment); false, with `into` partly written, otherwise.
 * Reads no byte past `to`.
 */
export function readCompactWrite(bytes: Uint8Array, from: number, to: number, into: CompactWrite): boolean {
  if (bytes !== viewed) {
    viewed = bytes;
    view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  if (to - from < SHORTEST || !matchesAt(bytes, from, to, HEAD)) return false;
  let at = from + HEAD.length;
  // The vCPU, `d<digits>v<digits>`: any digits, leading zeros included (as the text path reads them).
  if (!digitsAt(bytes, at, to, true) || digitsEnd >= to || bytes[digitsEnd] !== 0x76 /* v */) return false;
  into.domain = digitsValue;
  if (!digitsAt(bytes, digitsEnd + 1, to, true) || !matchesAt(bytes, digitsEnd, to, SBDF_KEY)) return false;
  into.vcpu = digitsValue;
  at = digitsEnd + SBDF_KEY.length;
  into.sbdfFrom = at;
  // The address: printable ASCII (0x20 … 0x7f) but a quote or backslash, up to its closing quote.
  let hash = 0;
  let high = 0;
  let low = 0;
  for (; ; at++) {
    if (at >= to) return false;
    const c = bytes[at]!;
    if (c === 0x22 /* " */) break;
    if (c < 0x20 || c > 0x7f || c === 0x5c /* \ */) return false;
    hash = (Math.imul(hash, 31) + c) | 0;
    const k = at - into.sbdfFrom;
    if (k < 6) high = high * 128 + c;
    else if (k < 12) low = low * 128 + c;
  }
  into.sbdfTo = at;
  into.sbdfHash = hash;
  into.sbdfHigh = high;
  into.sbdfLow = low;
  if (!matchesAt(bytes, at, to, REG_KEY) || !digitsAt(bytes, at + REG_KEY.length, to, false)) return false;
  if (digitsValue > 4095) return false;
  into.reg = digitsValue;
  at = digitsEnd;
  if (!matchesAt(bytes, at, to, SIZE_KEY)) return false;
  at += SIZE_KEY.length;
  if (at >= to) return false;
  const size = bytes[at]! - 0x30;
  if (size !== 1 && size !== 2 && size !== 4) return false;
  into.size = size;
  at++;
  if (!matchesAt(bytes, at, to, VALUE_KEY) || !digitsAt(bytes, at + VALUE_KEY.length, to, false))
    return false;
  // The size's all-ones (a table, not `2 ** (8 * size)`: this runs for every line).
  if (digitsValue > (size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff)) return false;
  into.value = digitsValue;
  return digitsEnd === to - 1 && bytes[digitsEnd] === 0x7d /* } */;
}

/** The bytes `view` shows: the chunk the lines read last are spans of (one view per chunk). */
let viewed: Uint8Array | undefined;
let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/** Whether `bytes` (seen through `view`) at `at` hold `literal`, before `to`. */
function matchesAt(bytes: Uint8Array, at: number, to: number, literal: Literal): boolean {
  if (at + literal.length > to) return false;
  const { words, tail } = literal;
  for (let i = 0; i < words.length; i++) if (view.getInt32(at + 4 * i, true) !== words[i]) return false;
  const rest = at + 4 * words.length;
  for (let i = 0; i < tail.length; i++) if (bytes[rest + i] !== tail[i]) return false;
  return true;
}

/**
 * Reads 1 to `MAX_DIGITS` decimal digits at `at`, before `to`, into `digitsValue`, with `digitsEnd`
 * at the first byte after them; false for none, too many, or (unless `zeros`) a leading zero, which
 * JSON's numbers do not have.
 */
function digitsAt(bytes: Uint8Array, at: number, to: number, zeros: boolean): boolean {
  let n = 0;
  let i = at;
  for (; i < to; i++) {
    const digit = bytes[i]! - 0x30;
    if (digit < 0 || digit > 9) break;
    n = n * 10 + digit;
  }
  digitsEnd = i;
  digitsValue = n;
  const count = i - at;
  return count > 0 && count <= MAX_DIGITS && (zeros || count === 1 || bytes[at] !== 0x30);
}

/**
 * The text of each address a byte reader met, found again from its bytes: a trace names the same few
 * devices on millions of lines, so the text (which the replayer's own look-ups key on, and messages
 * quote) is decoded once per distinct address, not once per line. The same text object comes back
 * every time, which also lets the replayer's last-address check compare by identity. Bounded: emptied
 * when it holds `ADDRESS_LIMIT` addresses.
 */
export class AddressTexts {
  private readonly byHash = new Map<number, KnownAddress>();
  private last: KnownAddress | undefined;

  /** The text of the address `write` found in `bytes` (printable ASCII: one character a byte). */
  textOf(bytes: Uint8Array, write: CompactWrite): string {
    const { sbdfFrom: from, sbdfTo: to } = write;
    const last = this.last;
    if (last?.is(bytes, write)) return last.text;
    // No real address is long: a long one (the line then fails) is decoded, not kept.
    if (to - from > LONGEST_KEPT) return ascii.decode(bytes.subarray(from, to));
    let known = this.byHash.get(write.sbdfHash);
    if (known === undefined || !known.is(bytes, write)) {
      known = new KnownAddress(bytes, write);
      if (this.byHash.size >= ADDRESS_LIMIT) this.byHash.clear();
      this.byHash.set(write.sbdfHash, known);
    }
    this.last = known;
    return known.text;
  }
}

/** An address `AddressTexts` met: its bytes, their packed form (`CompactWrite.sbdfHigh`) and its text. */
class KnownAddress {
  readonly bytes: Uint8Array;
  readonly high: number;
  readonly low: number;
  readonly text: string;

  constructor(bytes: Uint8Array, write: CompactWrite) {
    this.bytes = bytes.slice(write.sbdfFrom, write.sbdfTo);
    this.high = write.sbdfHigh;
    this.low = write.sbdfLow;
    this.text = ascii.decode(this.bytes);
  }

  /** Whether the address `write` found in `bytes` is this one. */
  is(bytes: Uint8Array, write: CompactWrite): boolean {
    const length = write.sbdfTo - write.sbdfFrom;
    if (length !== this.bytes.length || write.sbdfHigh !== this.high || write.sbdfLow !== this.low)
      return false;
    return length <= PACKED || sameBytes(this.bytes, bytes, write.sbdfFrom);
  }
}

/** Characters `CompactWrite.sbdfHigh` and `sbdfLow` hold. */
const PACKED = 12;

/** Distinct addresses `AddressTexts` holds at most (a machine has far fewer devices). */
const ADDRESS_LIMIT = 4096;
/** The longest address `AddressTexts` keeps: `ssss:bb:dd.f` is 12 characters. */
const LONGEST_KEPT = 64;
/** ASCII bytes as text (UTF-8 decodes them one character a byte). */
const ascii = new TextDecoder();

/** Whether `bytes` at `from` hold `known`. */
function sameBytes(known: Uint8Array, bytes: Uint8Array, from: number): boolean {
  for (let i = 0; i < known.length; i++) if (known[i] !== bytes[from + i]) return false;
  return true;
}
