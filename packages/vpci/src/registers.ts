/**
 * Register handlers and the config-space dispatch of Xen's `vpci.c`: a sorted list of
 * non-overlapping handlers per device; an access is split into the handlers it touches and the gaps
 * between them, which go to "hardware" (the real device for the hardware domain; all-ones reads and
 * dropped writes for a guest).
 */
import type { Result } from '@vpci/rangeset';
import { PCI_CFG_SPACE_EXP_SIZE } from './pci-regs.js';

/**
 * Reads a whole register (its `size` bytes). `owner` is the device whose table holds the handler and
 * `offset` the register's: a handler shared by every device of one layout (`SharedRegisters`) finds
 * the device's state through them, as Xen's handlers get `pdev` and `reg`; a closure may ignore them.
 */
export type RegisterRead = (owner: unknown, offset: number) => number;
/**
 * Writes a whole register with the merged value; `bytes` says how many of its bytes the access wrote
 * (a partial write is merged into `value`, as Xen's `vpci_write_helper` does). `owner` and `offset`
 * as for `RegisterRead`.
 */
export type RegisterWrite = (value: number, bytes: number, owner: unknown, offset: number) => void;
/** Whether a write of `value` can change what the device (`owner`) maps (`Register.mapping`). */
export type RegisterMapping = (value: number, owner: unknown) => boolean;

/** One emulated register: offset, size and masks as Xen's `struct vpci_register`. */
export interface Register {
  readonly offset: number;
  readonly size: 1 | 2 | 4;
  readonly read: RegisterRead;
  readonly write: RegisterWrite;
  /** Read-only bits: written back with their current value. */
  readonly roMask: number;
  /** Write-1-to-clear bits: never written as 1 unless the guest wrote them. */
  readonly rw1cMask: number;
  /** Reserved, preserved: read as 0, written back with their current value. */
  readonly rsvdpMask: number;
  /** Reserved, zero: read as 0, written as 0. */
  readonly rsvdzMask: number;
  /**
   * Whether a write of this whole register's `value` can change what the device maps or where its
   * BARs are: always for the BAR, ROM and resizable-BAR control handlers, when decoding flips for the
   * command register's; never for the others (status, capabilities, MSI-X control, …).
   */
  readonly mapping: RegisterMapping;
}

/** How `RegisterTable.add` marks a handler: `Register.mapping`, or true/false for always/never. */
export type MappingMark = boolean | RegisterMapping;

/** Masks of a register; all default to 0. */
export interface RegisterMasks {
  readonly ro?: number;
  readonly rw1c?: number;
  readonly rsvdp?: number;
  readonly rsvdz?: number;
}

/** Config-space access to the "hardware" behind the handlers (sizes 1, 2 and 4 only). */
export interface HardwareAccess {
  read(reg: number, size: number): number;
  write(reg: number, size: number, value: number): void;
}

/**
 * What tells whether config-space bytes are BAR, ROM or resizable-BAR registers of a device's
 * hardware (`PhysicalDevice.placesBars`).
 */
export interface BarRegisters {
  placesBars(reg: number, size: number): boolean;
}

/** Result of adding a register: Xen's `-EINVAL` (bad shape) and `-EEXIST` (overlap) as values. */
export type AddRegisterResult = Result<'EINVAL' | 'EEXIST'>;

const IGNORED_READ: RegisterRead = () => 0xffffffff;
const ALWAYS = (): boolean => true;
const NEVER = (): boolean => false;
/** Where a write goes (`RegisterTable.writeTargets`): one of the three frozen answers below. */
type WriteTargets = Readonly<{ mapping: boolean; hardware: boolean }>;
const MAPPING: WriteTargets = Object.freeze({ mapping: true, hardware: false });
const HARDWARE: WriteTargets = Object.freeze({ mapping: false, hardware: true });
const HANDLED: WriteTargets = Object.freeze({ mapping: false, hardware: false });
const IGNORED_WRITE: RegisterWrite = () => {};

/**
 * Handler functions that read or write nothing but the device they are handed (`owner`) and state
 * shared by a whole machine: one function serves every device's table, so a register made of such
 * functions is one object for every device of the same layout (`SharedRegisters`).
 */
const SHARED_HANDLERS = new WeakSet<object>([IGNORED_READ, IGNORED_WRITE, ALWAYS, NEVER]);

/**
 * Marks `handler` as shared by every device (it keeps no device's state of its own: it reaches the
 * device through the `owner` it is handed) and returns it.
 */
export function sharedHandler<F extends object>(handler: F): F {
  SHARED_HANDLERS.add(handler);
  return handler;
}

/** A handler that reads as zero, shared by every device (Xen's `vpci_read_val` of 0). */
export const READ_ZERO: RegisterRead = sharedHandler(() => 0);

/** Numbers for shared handlers, to name a register's functions in `SharedRegisters`' keys. */
const handlerIds = new WeakMap<object, number>();
let handlerCount = 0;
function handlerId(handler: object): number {
  let id = handlerIds.get(handler);
  if (id === undefined) {
    id = handlerCount++;
    handlerIds.set(handler, id);
  }
  return id;
}

/**
 * One machine's registers made of shared handlers (`sharedHandler`), one object per distinct offset,
 * size, masks and functions: every device of one layout holds the same `Register` objects, so that an
 * access to a device last met thousands of accesses ago reads its handlers from lines other devices
 * keep in the cache, instead of the device's own objects and closures (the scale row's cost).
 * Per machine, so that a machine's handlers go with it.
 */
export class SharedRegisters {
  private readonly registers = new Map<string, Register>();
  /** The interned registers' numbers, which name a layout in `layouts`. */
  private readonly ids = new Map<Register, number>();
  /** Tables' handler lists made only of interned registers, by their registers' numbers. */
  private readonly layouts = new Map<string, Layout>();

  /**
   * The shared layout of `handlers` (with their `ends`): an equal one met before, or these arrays,
   * kept from now on (the caller must no longer change them). Undefined when a handler is the
   * device's own (a closure over its state), so that the table keeps its own arrays.
   */
  layout(handlers: Register[], ends: number[]): Layout | undefined {
    let key = '';
    for (const r of handlers) {
      const id = this.ids.get(r);
      if (id === undefined) return undefined;
      key += `${id},`;
    }
    const known = this.layouts.get(key);
    if (known !== undefined) return known;
    const made = { handlers, ends };
    this.layouts.set(key, made);
    return made;
  }

  /** The register `made` describes, or an equal one made before (when every function is shared). */
  intern(made: Register): Register {
    if (
      !SHARED_HANDLERS.has(made.read) ||
      !SHARED_HANDLERS.has(made.write) ||
      !SHARED_HANDLERS.has(made.mapping)
    )
      return made;
    const key = `${handlerId(made.read)},${handlerId(made.write)},${handlerId(made.mapping)},${made.offset},${made.size},${made.roMask},${made.rw1cMask},${made.rsvdpMask},${made.rsvdzMask}`;
    const known = this.registers.get(key);
    if (known !== undefined) return known;
    this.registers.set(key, made);
    this.ids.set(made, this.ids.size);
    return made;
  }
}

/** A table's handlers and their ends as `SharedRegisters` shares them between tables: never changed. */
interface Layout {
  readonly handlers: Register[];
  readonly ends: number[];
}

const sharedRegisters = new WeakMap<object, SharedRegisters>();

/** The `SharedRegisters` of `machine` (its `EngineContext`), made on first use. */
export function sharedRegistersOf(machine: object): SharedRegisters {
  let shared = sharedRegisters.get(machine);
  if (shared === undefined) {
    shared = new SharedRegisters();
    sharedRegisters.set(machine, shared);
  }
  return shared;
}

/** A device's register handlers, kept sorted by offset and pairwise non-overlapping. */
export class RegisterTable {
  private handlers: Register[] = [];
  /**
   * Each handler's end (`offset + size`), in the same order: what the search for an access's first
   * handler reads, in one small array instead of one object per probe (over a machine of thousands
   * of devices a device's handlers are seldom in the cache, and each object read was a miss).
   */
  private ends: number[] = [];
  /**
   * The device the handlers are called for (`bind`); undefined in a table used on its own. Declared
   * before the fields an access does not read: V8 lays them out in this order, and a table met cold
   * (one device among thousands) then costs fewer cache lines.
   */
  private owner: unknown;
  /**
   * Whether `handlers` and `ends` are a layout other tables hold too (`SharedRegisters.layout`):
   * copied before they change (`own`). Devices of one layout then read one pair of arrays.
   */
  private layoutShared = false;
  /** Where the registers of shared handlers are interned (`bind`). */
  private shared: SharedRegisters | undefined;

  /**
   * The device whose handlers these are (each handler is called with it) and the machine's
   * `SharedRegisters`.
   */
  bind(owner: unknown, shared: SharedRegisters): void {
    this.owner = owner;
    this.shared = shared;
  }

  /** Before a change of the handlers: this table's own copy of a shared layout. */
  private own(): void {
    if (!this.layoutShared) return;
    this.handlers = this.handlers.slice();
    this.ends = this.ends.slice();
    this.layoutShared = false;
  }

  /** After a change of the handlers: the machine's shared layout equal to them, if they can share. */
  private share(): void {
    const layout = this.shared?.layout(this.handlers, this.ends);
    if (layout === undefined) return;
    this.handlers = layout.handlers;
    this.ends = layout.ends;
    this.layoutShared = true;
  }

  /** The handlers in offset order. */
  list(): readonly Register[] {
    return this.handlers;
  }

  /**
   * Xen's `vpci_add_register_mask`: a missing read handler reads all-ones, a missing write handler
   * ignores writes. `EINVAL` for a size other than 1/2/4, an offset beyond 4 KiB or not aligned to
   * the size, no handler at all, masks sharing a bit or wider than the register; `EEXIST` when it
   * overlaps a registered handler. `mapping` marks a handler whose writes can change what the device
   * maps or where its BARs are (`Register.mapping`).
   */
  add(
    read: RegisterRead | undefined,
    write: RegisterWrite | undefined,
    offset: number,
    size: number,
    masks: RegisterMasks = {},
    mapping: MappingMark = false,
  ): AddRegisterResult {
    const ro = masks.ro ?? 0;
    const rw1c = masks.rw1c ?? 0;
    const rsvdp = masks.rsvdp ?? 0;
    const rsvdz = masks.rsvdz ?? 0;
    if (
      (size !== 1 && size !== 2 && size !== 4) ||
      offset >= PCI_CFG_SPACE_EXP_SIZE ||
      offset % size !== 0 ||
      (read === undefined && write === undefined) ||
      (ro & rw1c) !== 0 ||
      (ro & rsvdp) !== 0 ||
      (ro & rsvdz) !== 0 ||
      (rw1c & rsvdp) !== 0 ||
      (rw1c & rsvdz) !== 0 ||
      (rsvdp & rsvdz) !== 0 ||
      (size !== 4 && (ro | rw1c | rsvdp | rsvdz) >>> (8 * size) !== 0)
    ) {
      return { ok: false, code: 'EINVAL' };
    }
    let at = 0;
    for (; at < this.handlers.length; at++) {
      const other = this.handlers[at]!;
      if (offset < other.offset + other.size && other.offset < offset + size)
        return { ok: false, code: 'EEXIST' };
      if (offset < other.offset) break;
    }
    const made: Register = {
      offset,
      size,
      read: read ?? IGNORED_READ,
      write: write ?? IGNORED_WRITE,
      roMask: ro >>> 0,
      rw1cMask: rw1c >>> 0,
      rsvdpMask: rsvdp >>> 0,
      rsvdzMask: rsvdz >>> 0,
      mapping: mapping === true ? ALWAYS : mapping === false ? NEVER : mapping,
    };
    this.own();
    this.ends.splice(at, 0, offset + size);
    this.handlers.splice(at, 0, this.shared === undefined ? made : this.shared.intern(made));
    this.share();
    return { ok: true };
  }

  /**
   * Xen's `vpci_remove_registers(start, size)`: deletes the handlers lying wholly inside
   * `[start, start + size)`; `ERANGE` when one straddles a boundary (those before it are gone).
   */
  remove(start: number, size: number): Result<'ERANGE'> {
    const end = start + size;
    let removed = false;
    for (let i = 0; i < this.handlers.length; ) {
      const r = this.handlers[i]!;
      if (r.offset >= start && r.offset + r.size <= end) {
        this.own();
        this.handlers.splice(i, 1);
        this.ends.splice(i, 1);
        removed = true;
        continue;
      }
      if (r.offset + r.size > start && r.offset < end) {
        if (removed) this.share();
        return { ok: false, code: 'ERANGE' };
      }
      if (start < r.offset) break;
      i++;
    }
    if (removed) this.share();
    return { ok: true };
  }

  /**
   * Where a write of `data` (`size` bytes at `reg`) goes, as `write` would split it, without making
   * it: `mapping` when a handler it reaches says the value it would get can change what the device
   * maps (`Register.mapping`, given the value `writeHelper` would merge), `hardware` when part of it
   * falls between handlers (to the hardware).
   */
  writeTargets(reg: number, size: number, data: number): { mapping: boolean; hardware: boolean } {
    return this.targetsFrom(this.firstEndingAfter(reg), reg, size, data);
  }

  /**
   * Whether a write of `data` (`size` bytes at `reg`) is inert: no handler it reaches says the value
   * it would get can change what the device maps, and no part of it goes to hardware where
   * `barRegisters` says a BAR, ROM or resizable-BAR register is (undefined: the hardware's registers
   * change nothing that matters, as for a guest). For a write that is then dropped unmade
   * (`writeIfInert` for one that is made).
   */
  isInertWrite(reg: number, size: number, data: number, barRegisters: BarRegisters | undefined): boolean {
    return this.inertFrom(this.firstEndingAfter(reg), reg, size, data, barRegisters);
  }

  /**
   * `write`, made only when the write is inert (`isInertWrite`): false, with nothing done, when it
   * is not. The handlers are searched once for both. A write inside one handler (nearly every write
   * of a running driver: a whole register, or bytes of one) is decided and made in one step, with
   * the value `writeHelper` merges read and merged once, for the handler's `mapping` and its write
   * both: nothing runs between the two that could change what the merge reads (the caller has made
   * the access checks before).
   */
  writeIfInert(
    reg: number,
    size: number,
    data: number,
    barRegisters: BarRegisters | undefined,
    hardware: HardwareAccess,
  ): boolean {
    const at = this.firstEndingAfter(reg);
    const handlers = this.handlers;
    if (at < handlers.length) {
      const r = handlers[at]!;
      if (r.offset <= reg && reg + size <= r.offset + r.size) {
        const owner = this.owner;
        const value = mergedValue(r, owner, size, reg - r.offset, data >>> 0);
        if (r.mapping !== NEVER && r.mapping(value, owner)) return false;
        r.write(value, size, owner, r.offset);
        return true;
      }
    }
    if (!this.inertFrom(at, reg, size, data, barRegisters)) return false;
    this.writeFrom(at, reg, size, data, hardware);
    return true;
  }

  /** `isInertWrite` from handler `at` on (`firstEndingAfter(reg)`). */
  private inertFrom(
    at: number,
    reg: number,
    size: number,
    data: number,
    barRegisters: BarRegisters | undefined,
  ): boolean {
    const targets = this.targetsFrom(at, reg, size, data);
    return targets === HANDLED || (targets === HARDWARE && barRegisters?.placesBars(reg, size) !== true);
  }

  /**
   * The index of the first handler ending past `reg`: where an access at `reg` starts (handlers are
   * sorted and do not overlap, so their ends are sorted too). A binary search: every access of a
   * replay comes here, and walking the handlers before it was a visible part of its cost.
   */
  private firstEndingAfter(reg: number): number {
    const ends = this.ends;
    let low = 0;
    let high = ends.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (ends[middle]! <= reg) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** `writeTargets` from handler `at` on (`firstEndingAfter(reg)`), as one of the frozen answers. */
  private targetsFrom(at: number, reg: number, size: number, data: number): WriteTargets {
    const handlers = this.handlers;
    const owner = this.owner;
    let covered = 0;
    const end = reg + size;
    for (let i = at; i < handlers.length; i++) {
      const r = handlers[i]!;
      if (r.offset >= end) break;
      const from = Math.max(reg, r.offset);
      const part = Math.min(end, r.offset + r.size) - from;
      if (
        r.mapping !== NEVER &&
        r.mapping(mergedValue(r, owner, part, from - r.offset, data >>> ((from - reg) * 8)), owner)
      )
        return MAPPING;
      covered += part;
    }
    return covered < size ? HARDWARE : HANDLED;
  }

  /** Drops every handler (device de-assignment). */
  clear(): void {
    this.handlers = [];
    this.ends = [];
    this.layoutShared = false;
  }

  /**
   * Xen's `vpci_read`: `size` bytes (1, 2 or 4) at `reg`. Handlers supply their bytes with reserved
   * bits cleared; gaps before, between and after them come from `hardware`.
   */
  read(reg: number, size: number, hardware: HardwareAccess): number {
    let data = 0xffffffff;
    let done = 0;
    // Read afresh at each step, as `writeFrom` does (a change replaces a shared layout's arrays).
    for (let i = this.firstEndingAfter(reg); i < this.handlers.length; i++) {
      const r = this.handlers[i]!;
      const start = reg + done;
      const length = size - done;
      if (r.offset + r.size <= start) continue;
      if (r.offset >= start + length) break;
      if (start < r.offset) {
        const gap = r.offset - start;
        data = mergeResult(data, readHardware(hardware, start, gap), gap, done);
        done += gap;
      }
      let value = (r.read(this.owner, r.offset) & ~(r.rsvdpMask | r.rsvdzMask)) >>> 0;
      if (r.offset < start) value >>>= (start - r.offset) * 8;
      const part = Math.min(start + length, r.offset + r.size) - Math.max(start, r.offset);
      data = mergeResult(data, value, part, done);
      done += part;
      if (done === size) break;
    }
    if (done < size)
      data = mergeResult(data, readHardware(hardware, reg + done, size - done), size - done, done);
    return (data & sizeMask(size)) >>> 0;
  }

  /** Xen's `vpci_write`: the bytes falling in each handler go through `writeHelper`, gaps to hardware. */
  write(reg: number, size: number, data: number, hardware: HardwareAccess): void {
    this.writeFrom(this.firstEndingAfter(reg), reg, size, data, hardware);
  }

  /**
   * `write` from handler `at` on (`firstEndingAfter(reg)`). The list is read as it stands at each
   * step, as Xen's walk of `vpci->handlers` is: a handler may add or remove handlers (and a change
   * replaces a shared layout's arrays with the table's own: `this.handlers` is read at each step).
   */
  private writeFrom(at: number, reg: number, size: number, data: number, hardware: HardwareAccess): void {
    let done = 0;
    for (let i = at; i < this.handlers.length; i++) {
      const r = this.handlers[i]!;
      const start = reg + done;
      const length = size - done;
      if (r.offset + r.size <= start) continue;
      if (r.offset >= start + length) break;
      if (start < r.offset) {
        writeHardware(hardware, start, r.offset - start, data >>> (done * 8));
        done += r.offset - start;
      }
      const part = Math.min(reg + size, r.offset + r.size) - Math.max(reg + done, r.offset);
      writeHelper(r, this.owner, part, reg + done - r.offset, data >>> (done * 8));
      done += part;
      if (done === size) break;
    }
    if (done < size) writeHardware(hardware, reg + done, size - done, data >>> (done * 8));
  }
}

/**
 * Xen's `vpci_write_helper`: a partial write, or one to a register with RO/RsvdP bits, merges the
 * new bytes into the current value (RW1C bits cleared so they are not written back as 1); RO and
 * RsvdP bits keep their current value, RsvdZ bits are written as 0.
 */
function writeHelper(r: Register, owner: unknown, size: number, offset: number, data: number): void {
  r.write(mergedValue(r, owner, size, offset, data), size, owner, r.offset);
}

/** The whole-register value `writeHelper` hands the handler for `size` bytes of `data` at `offset`. */
function mergedValue(r: Register, owner: unknown, size: number, offset: number, data: number): number {
  let current = 0;
  const preserved = (r.roMask | r.rsvdpMask) >>> 0;
  let value = data;
  if (size !== r.size || preserved !== 0) {
    current = (r.read(owner, r.offset) & ~r.rw1cMask) >>> 0;
    value = mergeResult(current, data, size, offset);
  }
  value = ((value & ~(preserved | r.rsvdzMask)) | (current & preserved)) >>> 0;
  return (value & sizeMask(r.size)) >>> 0;
}

/** Xen's `merge_result`: `value`'s low `size` bytes placed at byte `offset` of `data`. */
function mergeResult(data: number, value: number, size: number, offset: number): number {
  const mask = sizeMask(size);
  const shift = offset * 8;
  return (((data & ~(mask << shift)) | ((value & mask) << shift)) >>> 0) >>> 0;
}

function sizeMask(size: number): number {
  return size >= 4 ? 0xffffffff : (1 << (8 * size)) - 1;
}

/** A 3-byte gap is read as 1 + 2 or 2 + 1 bytes, whichever keeps the accesses aligned, as Xen does. */
function readHardware(hardware: HardwareAccess, reg: number, size: number): number {
  if (size !== 3) return hardware.read(reg, size);
  if ((reg & 1) !== 0) return (hardware.read(reg, 1) | (hardware.read(reg + 1, 2) << 8)) >>> 0;
  return (hardware.read(reg, 2) | (hardware.read(reg + 2, 1) << 16)) >>> 0;
}

function writeHardware(hardware: HardwareAccess, reg: number, size: number, data: number): void {
  if (size !== 3) {
    hardware.write(reg, size, (data & sizeMask(size)) >>> 0);
    return;
  }
  if ((reg & 1) !== 0) {
    hardware.write(reg, 1, data & 0xff);
    hardware.write(reg + 1, 2, (data >>> 8) & 0xffff);
  } else {
    hardware.write(reg, 2, data & 0xffff);
    hardware.write(reg + 2, 1, (data >>> 16) & 0xff);
  }
}
