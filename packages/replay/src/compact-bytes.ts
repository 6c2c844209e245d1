/**
 * A compact `write` line read from its UTF-8 bytes, where it stands in a chunk read from a file: no
 * text is decoded, no string or object is made for it. The form is `compactWrite`'s,
 * `{"event":"write","vcpu":"d…v…","sbdf":"…","reg":…,"size":…,"value":…}`, narrowed to what bytes
 * show at once: an address of printable ASCII only (a byte of 0x80 or more is part of a character
 * the decoder must read), and at most 15 digits in every number. Every line this takes,
 * `compactWrite` takes with the same fields once the line is decoded; any other line is left to the
 * text path (decoded, then `compactWrite` or the general reader), which reads or reports it as before.
 *
 * A trace names the same few devices from the same few vCPUs line after line, so a line's key (its
 * bytes up to the register: domain, vCPU, address) is first compared with the key met before in its
 * slot of `CompactWrite.keys`, and only the register, size and value are read when it is that one;
 * the key is read field by field, and kept, only when it is new or was pushed out of its slot.
 *
 * Why bytes: decoding every chunk to text, then reading each number back with `charCodeAt` and
 * cutting the address out of the text, was most of what a replay added to the engine's work on a
 * line (the compact-line reader was about a third of an unchecked replay's time); a typed array's
 * bytes are plain loads.
 */

import type { PciDevice, Sbdf, Vcpu } from '@vpci/vpci';
import type { WriteTargets } from './write-target.js';

/**
 * The fields of a compact write line; `readCompactWrite` fills one, reused from line to line. A line
 * whose key was met in its slot (`met`) has the key's fields (domain, vCPU, address) there, and they
 * are read from it when asked for: copied on every line, they were a fifth of what reading a met key
 * cost, and a line whose key's slot keeps its write target (write-target.ts) asks for none of them.
 */
export class CompactWrite {
  /** The vCPU's domain (`d…`). */
  get domain(): number {
    return this.met ? this.keyNumber(Slot.KeyDomain) | 0 : this.parsedDomain;
  }
  /** The vCPU (`v…`). */
  get vcpu(): number {
    return this.met ? this.keyNumber(Slot.KeyVcpu) | 0 : this.parsedVcpu;
  }
  /** Where the address's characters start in the bytes (past its opening quote). */
  get sbdfFrom(): number {
    return this.met ? this.lineFrom + (this.keyNumber(Slot.AddressFrom) | 0) : this.parsedSbdfFrom;
  }
  /** Where they end (its closing quote). */
  get sbdfTo(): number {
    return this.met ? this.lineFrom + (this.keyNumber(Slot.AddressTo) | 0) : this.parsedSbdfTo;
  }
  /** A hash of the address's bytes, for finding its text again without decoding it (`AddressTexts`). */
  get sbdfHash(): number {
    return this.met ? this.keyNumber(Slot.AddressHash) | 0 : this.parsedSbdfHash;
  }
  /**
   * The address's first 12 characters, 7 bits each, six in each number (exact: 42 bits): with its
   * length, the address itself when it has at most 12 (`ssss:bb:dd.f` has 12), so that telling it
   * from the last one compares two numbers, not its bytes.
   */
  get sbdfHigh(): number {
    return this.met ? this.keyNumber(Slot.AddressHigh) : this.parsedSbdfHigh;
  }
  get sbdfLow(): number {
    return this.met ? this.keyNumber(Slot.AddressLow) : this.parsedSbdfLow;
  }
  /** Whether the key of the line read last is the one in its slot `key`, met there. */
  met = false;
  /** Where the line read last starts (a met key's address is where its slot says from there). */
  lineFrom = 0;
  /** The fields above as `readKey` read them from a line whose key was not met. */
  parsedDomain = 0;
  parsedVcpu = 0;
  parsedSbdfFrom = 0;
  parsedSbdfTo = 0;
  parsedSbdfHash = 0;
  parsedSbdfHigh = 0;
  parsedSbdfLow = 0;
  /**
   * The address's bytes four at a time, when it has 12 (`ssss:bb:dd.f`, `PACKED`), else
   * `sbdfWords` false: the next line's address is compared with it as three numbers first (a
   * device's writes come in runs), and read byte by byte only when it differs.
   */
  sbdfWords = false;
  sbdfWord0 = 0;
  sbdfWord1 = 0;
  sbdfWord2 = 0;
  /** The register, 0 … 4095. */
  reg = 0;
  /** The access size: 1, 2 or 4. */
  size: 1 | 2 | 4 = 1;
  /** The value, at most the size's all-ones. */
  value = 0;
  /** The keys `readKey` read and kept, each in its slot (`KeySlots`). */
  readonly keys = new KeySlots();
  /**
   * The slot of `keys` holding the key of the line read last (-1 when it was too short or too long to
   * keep): where `AddressTexts.textOf` finds the address's text again, with no compare of its bytes.
   */
  key = -1;
  /** The bytes `view` shows: the chunk the lines read last are spans of (one view per chunk). */
  viewed: Uint8Array | undefined = undefined;
  view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  /** The number at `place` of the met key's slot (`KeySlots`). */
  private keyNumber(place: Slot): number {
    return this.keys.numbers[Slot.Numbers * this.key + place]!;
  }
}

/**
 * The keys `readKey` read (a line's bytes from its `{` through `"reg":`, which hold everything but the
 * register, size and value), each in the slot `keySlot` gives its line: a line whose first bytes are
 * the key in its slot is that key again, its domain, vCPU and address the key's. A trace's lines name
 * the same few devices from the same few vCPUs, so most lines meet their key. Sized by what it meets
 * (`keep`): `FIRST_KEY_SLOTS`, four times more each time it has kept keys for a quarter of its slots,
 * up to `MOST_KEY_SLOTS`. Also where the address's text and the write target (write-target.ts) found
 * for a line of the key are kept, forgotten when the slot takes another key.
 *
 * Flat: a slot's numbers are `Slot.Numbers` of one `Float64Array` (`numbers`), and its text and
 * target the fields of one small object (`KeyRefs`). Over a machine of thousands of devices, each
 * visit to a device meets its key cold, and each cache line the reader reads of it is a miss: a key
 * as an object (its fields and boxed doubles, its own `Float64Array` of bytes and those bytes, reached
 * through the slot array) was about nine lines; here the numbers a met key reads are the first 112
 * bytes of its 128 (two lines, wherever the array starts: it is 16 bytes past a 64-byte line when
 * the allocator gives it a page of its own), then the slot's reference and its `KeyRefs`.
 */
class KeySlots implements WriteTargets {
  /** Each slot's numbers: `Slot.Numbers` from `Slot.Numbers * slot` (`Slot.KeyLength` 0: no key). */
  numbers = new Float64Array(FIRST_KEY_SLOTS * Slot.Numbers);
  /** Each slot's text and target, made when a key first lands in the slot. */
  refs: (KeyRefs | undefined)[] = new Array(FIRST_KEY_SLOTS).fill(undefined);
  /** 32 less the bits of a slot's index (`keySlot` keeps a hash's top bits). */
  shift = 32 - Math.log2(FIRST_KEY_SLOTS);
  /** Keys `keep` kept since the slots were last made. */
  private kept = 0;

  /**
   * The slot for the key at `from` that `readKey` keeps, its text and target forgotten. When it has
   * kept keys for a quarter of its slots (a trace of more keys than that pushes them out of each
   * other's slots: a key shares its slot with another for a fifth of them at a quarter, fewer the
   * emptier the table), the slots are first made again four times as many, empty (each key is read
   * again once, then kept), and the key goes to its slot there.
   */
  keep(v: DataView, from: number): number {
    if (
      ++this.kept > this.numbers.length / Slot.Numbers / 4 &&
      this.numbers.length < MOST_KEY_SLOTS * Slot.Numbers
    ) {
      this.numbers = new Float64Array(4 * this.numbers.length);
      this.refs = new Array(4 * this.refs.length).fill(undefined);
      this.shift -= 2;
      this.kept = 1;
    }
    const slot = keySlot(v, from, this.shift);
    this.numbers[Slot.Numbers * slot + Slot.TargetVersion] = -1;
    const refs = this.refs[slot];
    if (refs === undefined) this.refs[slot] = new KeyRefs();
    else refs.forget();
    return slot;
  }

  /** The address's text, once `AddressTexts.textOf` found it for a line of the key in `slot`. */
  text(slot: number): string | undefined {
    return this.refs[slot]!.text;
  }

  keepText(slot: number, text: string): void {
    this.refs[slot]!.text = text;
  }

  targetVersion(slot: number): number {
    return this.numbers[Slot.Numbers * slot + Slot.TargetVersion]!;
  }

  // The three below are read only while the slot's version is not -1 (`WriteTargets`): set then.
  targetVcpu(slot: number): Vcpu {
    return this.refs[slot]!.vcpu!;
  }

  targetSbdf(slot: number): Sbdf {
    return this.refs[slot]!.sbdf!;
  }

  targetDevice(slot: number): PciDevice {
    return this.refs[slot]!.device!;
  }

  keepTarget(slot: number, vcpu: Vcpu, sbdf: Sbdf, device: PciDevice, version: number): void {
    const refs = this.refs[slot]!;
    refs.vcpu = vcpu;
    refs.sbdf = sbdf;
    refs.device = device;
    this.numbers[Slot.Numbers * slot + Slot.TargetVersion] = version;
  }
}

/**
 * A slot's references: its key's address text and its target's (`KeySlots`). Fields of an object of
 * their own, not places of a shared array: V8 then knows the class of what each field holds, and the
 * inert path reading the target's vCPU and device checks no map (as places of one array of mixed
 * references: 41 instructions a line more, `bench/line-instructions.sh unchecked 64`).
 */
class KeyRefs {
  text: string | undefined = undefined;
  vcpu: Vcpu | undefined = undefined;
  sbdf: Sbdf | undefined = undefined;
  device: PciDevice | undefined = undefined;

  forget(): void {
    this.text = undefined;
    this.vcpu = undefined;
    this.sbdf = undefined;
    this.device = undefined;
  }
}

/**
 * A slot's numbers, at these places from its first: the key's bytes as 8-byte numbers, its 8-byte
 * numbers at 24, 32, 40 and 48 and its last 8 bytes (`Slot.KeyLength` of them: every kept key's first 24
 * bytes are `HEAD`'s, compared with it, not kept), then its length in bytes (0 for no key), its
 * domain and vCPU, where its address starts and ends from the line's start, the address's hash and
 * packed form (`CompactWrite.sbdfHash`, `sbdfHigh`, `sbdfLow`), and `targetVersion`; two unused, so
 * that a slot is 128 bytes and what a met key reads its first 112.
 */
// biome-ignore lint/suspicious/noConstEnum: used in this module alone, where the build writes each member's number in place (module-level constants were each a context slot load and its initialisation check, a dozen on every line)
const enum Slot {
  /** After the saved words (as many as its index). */
  KeyLength = 5,
  KeyDomain = 6,
  KeyVcpu = 7,
  AddressFrom = 8,
  AddressTo = 9,
  AddressHash = 10,
  AddressHigh = 11,
  AddressLow = 12,
  TargetVersion = 13,
  Numbers = 16,
}

/**
 * The longest key kept, in 8-byte numbers: 64 bytes. A key with an address in Xen's form
 * `ssss:bb:dd.f` takes 59 (`d0v0`) to 64 (`d1234v12`); a longer key is read field by field on every
 * line.
 */
const KEY_WORDS = 8;
/** The largest domain or vCPU number a kept key has: an int32 (a larger one is read on every line). */
const LARGEST_KEPT_ID = 0x7fff_ffff;
/**
 * The shortest key kept: 56 bytes, the first seven of its 8-byte numbers at fixed offsets, so that
 * comparing them reads no offset (a key of `d0v0` and an address of 9 characters or more; a shorter
 * one, which no address in Xen's form makes, is read field by field on every line).
 */
const SHORTEST_KEPT_KEY = 8 * (KEY_WORDS - 1);
/**
 * Slots of a new `CompactWrite.keys`: a power of two, sixteen times the bench's 64 devices (fewer
 * slots left keys pushing each other out: 52 slots held 64 devices' keys with 256). A slot's key is
 * made when a key first lands in it.
 */
const FIRST_KEY_SLOTS = 1024;
/**
 * Slots of `CompactWrite.keys` at most: sixteen times the scale row's 4,096 devices (with 1,024 slots
 * there a device's key was pushed out before its next visit, with 16,384 a fifth of them still were).
 */
const MOST_KEY_SLOTS = 65536;
/**
 * The shortest compact write line: the head, `0v0`, the address's key and an empty address, the
 * register's key and the shortest tail (68 bytes).
 */
const SHORTEST_LINE = 26 + 3 + 10 + 8 + 21;

/**
 * The slot of `CompactWrite.keys` for the line at `from` (at least `SHORTEST_LINE` bytes): a hash of
 * the bytes where a key of a short vCPU and an address in Xen's form has its vCPU (26 on) and its
 * address's bus, device and function (43 on). Any bytes would do (the slot's key is compared whole);
 * these tell a trace's devices apart.
 */
function keySlot(v: DataView, from: number, shift: number): number {
  const h =
    Math.imul(v.getInt32(from + 26, true), 0x9e3779b1) ^
    v.getInt32(from + 43, true) ^
    Math.imul(v.getInt32(from + 47, true), 0x85ebca6b);
  return Math.imul(h ^ (h >>> 15), 0x27d4eb2f) >>> shift;
}

/**
 * Four bytes of `text` (ASCII) at `at` as one little-endian number, as `DataView.getInt32(…, true)`
 * reads them: the literals of the form are compared a word at a time, each word a constant (a loop
 * over a literal's bytes was half of the reader's time; one over its words, with the words in an
 * array, still a third).
 */
function word(text: string, at: number): number {
  return (
    text.charCodeAt(at) |
    (text.charCodeAt(at + 1) << 8) |
    (text.charCodeAt(at + 2) << 16) |
    (text.charCodeAt(at + 3) << 24)
  );
}

/**
 * The literals of the form that every line is compared with, each as the number
 * `DataView.getFloat64(…, true)` reads from its eight bytes: members of a `const enum`, whose numbers
 * the build writes in place (module-level constants made from the texts were each a context slot
 * load, a check that it holds a number and a load of it, five on every line). Comparing such numbers
 * compares the bytes when one side is ASCII text: no eight ASCII bytes read as NaN or an infinity
 * (their last byte would be 0x7f or 0xff and the one before it 0xf0 or more) or as ±0 (eight zero
 * bytes, or seven then 0x80), and any other two doubles are equal only when their bits are. Half the
 * compares of four-byte words.
 */
// biome-ignore lint/suspicious/noConstEnum: used in this module alone, where the build writes each member's number in place
const enum Eight {
  /** `{"event"`, `HEAD`'s first eight bytes. */
  Head0 = 1.0471688089047425e-142,
  /** `:"write"`, its next eight. */
  Head1 = 5.498132511242094e-143,
  /** `,"vcpu":`, its next eight (then `"d`). */
  Head2 = 1.1649106565747118e-28,
  /** `,"size":`: between the register and the size (8 bytes). */
  SizeKey = 1.1609760042237392e-28,
  /** `,"value"`: between the size and the value's `:`. */
  ValueKey = 5.499145024016051e-143,
}

/** `{"event":"write","vcpu":"d`: the line up to the vCPU's domain number (26 bytes; `Eight.Head*`). */
const HEAD = '{"event":"write","vcpu":"d';
/** `","sbdf":"`: between the vCPU's closing quote and the address's opening one (10 bytes). */
const SBDF_KEY = '","sbdf":"';
const SBDF_KEY_0 = word(SBDF_KEY, 0);
const SBDF_KEY_1 = word(SBDF_KEY, 4);
/** `","reg":`: between the address's closing quote and the register (8 bytes). */
const REG_KEY = '","reg":';
const REG_KEY_0 = word(REG_KEY, 0);
const REG_KEY_1 = word(REG_KEY, 4);
/**
 * The fewest bytes after a key: `<reg>,"size":<size>,"value":<value>}` with a digit each for the
 * register and the value.
 */
const SHORTEST_TAIL = 21;
/** Digits a number may have here: 15 are always exact in a double (the text path takes more). */
const MAX_DIGITS = 15;

/**
 * Where the last `digitsAt` stopped, and the number it read: fields of a constant object, not
 * module-level `let`s (each use of one of those is a context slot with a check that it was
 * initialised, on every number of every line).
 */
const digits = { end: 0, value: 0 };

/**
 * Reads the line `bytes[from … to)` (its line end left out) into `into` when it is a compact write
 * line this reader takes (see the module comment); false, with `into` partly written, otherwise.
 * Reads no byte past `to`.
 */
export function readCompactWrite(bytes: Uint8Array, from: number, to: number, into: CompactWrite): boolean {
  return readCompactLine(bytes, from, to, into) === to;
}

/**
 * The line starting at `from` of the lines `bytes[from … to)`, read into `into` when it is a compact
 * write line this reader takes, in the same pass that finds where it ends: the index of the next
 * line (past its `\n`, or `\r\n`), or `to` when the line ends there (with or without a `\r`); -1,
 * with `into` partly written, for any other line (the caller finds its end and reads it as text).
 * What makes a line this reader's is `readCompactWrite`'s rule for the line as the line splitting
 * cuts it (its `\n` and one `\r` before it left out). Reads no byte past `to`.
 */
export function compactLineEnd(bytes: Uint8Array, from: number, to: number, into: CompactWrite): number {
  const end = readCompactLine(bytes, from, to, into);
  if (end < 0 || end === to) return end;
  const c = bytes[end];
  if (c === 0x0a /* \n */) return end + 1;
  if (c !== 0x0d /* \r */) return -1;
  if (end + 1 === to) return to;
  return bytes[end + 1] === 0x0a ? end + 2 : -1;
}

/**
 * Reads a compact write line from `from`, before `to`, into `into`: the index just past its closing
 * `}`, or -1 when the bytes there are not such a line (what follows the `}` is the caller's to judge).
 * A trace's lines repeat their key (the domain, vCPU and address: a device's writes come in runs), so
 * the line is first compared with the last key read, eight bytes at a time, and read field by field
 * (`readKey`) only when that differs; the register, size and value are read on every line (`readTail`).
 */
function readCompactLine(bytes: Uint8Array, from: number, to: number, into: CompactWrite): number {
  if (from + SHORTEST_LINE > to) return -1;
  if (bytes !== into.viewed) {
    into.viewed = bytes;
    into.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  const v = into.view;
  const slot = keySlot(v, from, into.keys.shift);
  const n = into.keys.numbers;
  const at = Slot.Numbers * slot;
  // `| 0` on the numbers that are int32s (`readKey` keeps no key whose domain or vCPU is larger), so
  // that the code reading them has them as integers, not doubles.
  const length = n[at + Slot.KeyLength]! | 0;
  if (length !== 0 && from + length + SHORTEST_TAIL <= to && sameKey(v, from, n, at, length)) {
    into.met = true;
    into.lineFrom = from;
    into.key = slot;
    // `readKey`'s shortcut for the address it read last: not this one.
    into.sbdfWords = false;
    return readTail(bytes, from + length, to, into);
  }
  const tail = readKey(bytes, from, to, into);
  return tail < 0 ? -1 : readTail(bytes, tail, to, into);
}

/**
 * Whether the `length` bytes at `from` (all before the line's end) are the key whose numbers start at
 * `n[at]`: eight 8-byte numbers compared, unrolled (a loop over them re-checked the view and the
 * array on every turn), seven at fixed offsets (an array of offsets cost a load and its check each),
 * the first three with `HEAD`'s (every kept key starts with it).
 */
function sameKey(v: DataView, from: number, n: Float64Array, at: number, length: number): boolean {
  return (
    v.getFloat64(from, true) === Eight.Head0 &&
    v.getFloat64(from + 8, true) === Eight.Head1 &&
    v.getFloat64(from + 16, true) === Eight.Head2 &&
    v.getFloat64(from + 24, true) === n[at] &&
    v.getFloat64(from + 32, true) === n[at + 1] &&
    v.getFloat64(from + 40, true) === n[at + 2] &&
    v.getFloat64(from + 48, true) === n[at + 3] &&
    v.getFloat64(from + length - 8, true) === n[at + 4]
  );
}

/**
 * Reads the key of a compact write line from `from`, before `to`, into `into` (domain, vCPU,
 * address) and keeps it in its slot of `into.keys` (`keptKey`) when it is neither too short nor too long: the index just past its
 * `"reg":`, or -1, with the slot's key left as it was, when the bytes there do not start such a line.
 */
function readKey(bytes: Uint8Array, from: number, to: number, into: CompactWrite): number {
  const v = into.view;
  into.met = false;
  // The head, and the vCPU's `d` (its first digit at least follows).
  if (
    from + HEAD.length >= to ||
    v.getFloat64(from, true) !== Eight.Head0 ||
    v.getFloat64(from + 8, true) !== Eight.Head1 ||
    v.getFloat64(from + 16, true) !== Eight.Head2 ||
    bytes[from + 24] !== 0x22 /* " */ ||
    bytes[from + 25] !== 0x64 /* d */
  )
    return -1;
  // The vCPU, `d<digits>v<digits>`: any digits, leading zeros included (as the text path reads them).
  if (
    !digitsAt(bytes, from + HEAD.length, to, true) ||
    digits.end >= to ||
    bytes[digits.end] !== 0x76 /* v */
  )
    return -1;
  into.parsedDomain = digits.value;
  if (!digitsAt(bytes, digits.end + 1, to, true)) return -1;
  into.parsedVcpu = digits.value;
  let at = digits.end;
  if (
    at + SBDF_KEY.length > to ||
    v.getInt32(at, true) !== SBDF_KEY_0 ||
    v.getInt32(at + 4, true) !== SBDF_KEY_1 ||
    bytes[at + 8] !== 0x3a /* : */ ||
    bytes[at + 9] !== 0x22 /* " */
  )
    return -1;
  at += SBDF_KEY.length;
  const sbdfFrom = at;
  if (
    into.sbdfWords &&
    at + PACKED < to &&
    bytes[at + PACKED] === 0x22 /* " */ &&
    v.getInt32(at, true) === into.sbdfWord0 &&
    v.getInt32(at + 4, true) === into.sbdfWord1 &&
    v.getInt32(at + 8, true) === into.sbdfWord2
  ) {
    // The last address read again (its bytes were checked then; its hash and packed form stay).
    at += PACKED;
    into.parsedSbdfFrom = sbdfFrom;
    into.parsedSbdfTo = at;
  } else {
    // The address: printable ASCII (0x20 … 0x7f) but a quote or backslash, up to its closing quote.
    let hash = 0;
    let high = 0;
    let low = 0;
    for (; ; at++) {
      if (at >= to) return -1;
      const c = bytes[at]!;
      if (c === 0x22 /* " */) break;
      if (c < 0x20 || c > 0x7f || c === 0x5c /* \ */) return -1;
      hash = (Math.imul(hash, 31) + c) | 0;
      const k = at - sbdfFrom;
      if (k < 6) high = high * 128 + c;
      else if (k < 12) low = low * 128 + c;
    }
    into.parsedSbdfFrom = sbdfFrom;
    into.parsedSbdfTo = at;
    into.parsedSbdfHash = hash;
    into.parsedSbdfHigh = high;
    into.parsedSbdfLow = low;
    into.sbdfWords = at - sbdfFrom === PACKED;
    if (into.sbdfWords) {
      into.sbdfWord0 = v.getInt32(sbdfFrom, true);
      into.sbdfWord1 = v.getInt32(sbdfFrom + 4, true);
      into.sbdfWord2 = v.getInt32(sbdfFrom + 8, true);
    }
  }
  if (
    at + REG_KEY.length > to ||
    v.getInt32(at, true) !== REG_KEY_0 ||
    v.getInt32(at + 4, true) !== REG_KEY_1
  )
    return -1;
  at += REG_KEY.length;
  // Kept as read from the line's own bytes: every byte of it is printable ASCII, so each 8-byte
  // number is one no line's bytes read as unless they are these (see `Eight`). Those at 24, 32, 40
  // and 48, and the key's last 8 bytes (`sameKey`; the first 24 are `HEAD`'s, checked above).
  const length = at - from;
  into.key = -1;
  if (
    length >= SHORTEST_KEPT_KEY &&
    length <= 8 * KEY_WORDS &&
    into.parsedDomain <= LARGEST_KEPT_ID &&
    into.parsedVcpu <= LARGEST_KEPT_ID
  ) {
    const slot = into.keys.keep(v, from);
    const n = into.keys.numbers;
    const first = Slot.Numbers * slot;
    for (let k = 0; k < Slot.KeyLength - 1; k++) n[first + k] = v.getFloat64(from + 24 + 8 * k, true);
    n[first + Slot.KeyLength - 1] = v.getFloat64(from + length - 8, true);
    n[first + Slot.KeyLength] = length;
    n[first + Slot.KeyDomain] = into.parsedDomain;
    n[first + Slot.KeyVcpu] = into.parsedVcpu;
    n[first + Slot.AddressFrom] = into.parsedSbdfFrom - from;
    n[first + Slot.AddressTo] = into.parsedSbdfTo - from;
    n[first + Slot.AddressHash] = into.parsedSbdfHash;
    n[first + Slot.AddressHigh] = into.parsedSbdfHigh;
    n[first + Slot.AddressLow] = into.parsedSbdfLow;
    into.key = slot;
  }
  return at;
}

/**
 * Reads the rest of a compact write line after its key, from `at` (past `"reg":`), before `to`,
 * into `into`: `<reg>,"size":<size>,"value":<value>}`, the index just past the `}`, or -1. The
 * register has at most four digits (4095), the value at most ten (2^32 - 1), so each is read
 * without the general digit loop's count: a longer number is the next literal not matching, which
 * `digitsAt`'s limit and the range checks refuse too.
 */
function readTail(bytes: Uint8Array, at: number, to: number, into: CompactWrite): number {
  if (at + SHORTEST_TAIL > to) return -1;
  // The register: 1 to 4 digits, no leading zero (all of them before `to`: the shortest tail is past).
  let reg = bytes[at]! - 0x30;
  if (reg >>> 0 > 9) return -1;
  let digit = bytes[at + 1]! - 0x30;
  if (digit >>> 0 > 9) at += 1;
  else {
    if (reg === 0) return -1;
    reg = reg * 10 + digit;
    digit = bytes[at + 2]! - 0x30;
    if (digit >>> 0 > 9) at += 2;
    else {
      reg = reg * 10 + digit;
      digit = bytes[at + 3]! - 0x30;
      if (digit >>> 0 > 9) at += 3;
      else {
        reg = reg * 10 + digit;
        if (reg > 4095) return -1;
        at += 4;
      }
    }
  }
  // `,"size":`, its one digit, `,"value":` and the value's first digit and the `}` after it.
  if (at + SHORTEST_TAIL - 1 > to || into.view.getFloat64(at, true) !== Eight.SizeKey) return -1;
  const size = bytes[at + 8]! - 0x30;
  if (size !== 1 && size !== 2 && size !== 4) return -1;
  if (into.view.getFloat64(at + 9, true) !== Eight.ValueKey || bytes[at + 17] !== 0x3a /* : */) return -1;
  // The value: 1 to 10 digits, no leading zero, up to the `}`. Its first nine in int32 arithmetic
  // (below 10^9), and a tenth then as a double (the largest value, 2^32 - 1, is no int32): with the
  // loop in doubles, every line's digits were multiplied and added as such.
  const first = at + 18;
  let nine = bytes[first]! - 0x30;
  if (nine >>> 0 > 9) return -1;
  let end = first + 1;
  let value = nine;
  if (nine !== 0) {
    const last = Math.min(to, first + 9);
    for (; end < last; end++) {
      digit = bytes[end]! - 0x30;
      if (digit >>> 0 > 9) break;
      nine = nine * 10 + digit;
    }
    value = nine;
    if (end === first + 9 && end < to) {
      digit = bytes[end]! - 0x30;
      if (digit >>> 0 <= 9) {
        value = nine * 10 + digit;
        end++;
      }
    }
  }
  if (end >= to || bytes[end] !== 0x7d /* } */) return -1;
  // The size's all-ones (a table, not `2 ** (8 * size)`: this runs for every line).
  if (value > (size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff)) return -1;
  into.reg = reg;
  into.size = size;
  into.value = value;
  return end + 1;
}

/**
 * Reads 1 to `MAX_DIGITS` decimal digits at `at`, before `to`, into `digits.value`, with `digits.end`
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
  digits.end = i;
  digits.value = n;
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

  /**
   * The text of the address `write` found in `bytes` (printable ASCII: one character a byte): the
   * one kept with the line's key when a line of that key was met before (`CompactWrite.key`), else
   * found by the address's bytes and kept with the key.
   */
  textOf(bytes: Uint8Array, write: CompactWrite): string {
    const slot = write.key;
    if (slot < 0) return this.find(bytes, write);
    let text = write.keys.text(slot);
    if (text === undefined) {
      text = this.find(bytes, write);
      write.keys.keepText(slot, text);
    }
    return text;
  }

  /** `textOf` without the key: the address found by its bytes. */
  private find(bytes: Uint8Array, write: CompactWrite): string {
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
