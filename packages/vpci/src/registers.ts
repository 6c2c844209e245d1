/**
 * Register handlers and the config-space dispatch of Xen's `vpci.c`: a sorted list of
 * non-overlapping handlers per device; an access is split into the handlers it touches and the gaps
 * between them, which go to "hardware" (the real device for the hardware domain; all-ones reads and
 * dropped writes for a guest).
 */
import type { Result } from '@vpci/rangeset';
import { PCI_CFG_SPACE_EXP_SIZE } from './pci-regs.js';

/** Reads a whole register (its `size` bytes). */
export type RegisterRead = () => number;
/**
 * Writes a whole register with the merged value; `bytes` says how many of its bytes the access wrote
 * (a partial write is merged into `value`, as Xen's `vpci_write_helper` does).
 */
export type RegisterWrite = (value: number, bytes: number) => void;

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
  readonly mapping: (value: number) => boolean;
}

/** How `RegisterTable.add` marks a handler: `Register.mapping`, or true/false for always/never. */
export type MappingMark = boolean | ((value: number) => boolean);

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

/** A device's register handlers, kept sorted by offset and pairwise non-overlapping. */
export class RegisterTable {
  private readonly handlers: Register[] = [];
  /**
   * Each handler's end (`offset + size`), in the same order: what the search for an access's first
   * handler reads, in one small array instead of one object per probe (over a machine of thousands
   * of devices a device's handlers are seldom in the cache, and each object read was a miss).
   */
  private readonly ends: number[] = [];

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
    this.ends.splice(at, 0, offset + size);
    this.handlers.splice(at, 0, {
      offset,
      size,
      read: read ?? IGNORED_READ,
      write: write ?? IGNORED_WRITE,
      roMask: ro >>> 0,
      rw1cMask: rw1c >>> 0,
      rsvdpMask: rsvdp >>> 0,
      rsvdzMask: rsvdz >>> 0,
      mapping: mapping === true ? ALWAYS : mapping === false ? NEVER : mapping,
    });
    return { ok: true };
  }

  /**
   * Xen's `vpci_remove_registers(start, size)`: deletes the handlers lying wholly inside
   * `[start, start + size)`; `ERANGE` when one straddles a boundary (those before it are gone).
   */
  remove(start: number, size: number): Result<'ERANGE'> {
    const end = start + size;
    for (let i = 0; i < this.handlers.length; ) {
      const r = this.handlers[i]!;
      if (r.offset >= start && r.offset + r.size <= end) {
        this.handlers.splice(i, 1);
        this.ends.splice(i, 1);
        continue;
      }
      if (r.offset + r.size > start && r.offset < end) return { ok: false, code: 'ERANGE' };
      if (start < r.offset) break;
      i++;
    }
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
   * change nothing that matters, as for a guest). Inert: where `writeAt` starts the write (a position
   * among the handlers, good until they change); not: -1. The handlers are searched once for both
   * the decision and the write (`writeTargets` and `write` search them each).
   */
  inertWriteAt(reg: number, size: number, data: number, barRegisters: BarRegisters | undefined): number {
    const at = this.firstEndingAfter(reg);
    const targets = this.targetsFrom(at, reg, size, data);
    if (targets === MAPPING) return -1;
    if (targets === HARDWARE && barRegisters?.placesBars(reg, size) === true) return -1;
    return at;
  }

  /** `write` from position `at` (`inertWriteAt`'s answer for the same `reg`, handlers unchanged). */
  writeAt(at: number, reg: number, size: number, data: number, hardware: HardwareAccess): void {
    this.writeFrom(at, reg, size, data, hardware);
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
    let covered = 0;
    const end = reg + size;
    for (let i = at; i < handlers.length; i++) {
      const r = handlers[i]!;
      if (r.offset >= end) break;
      const from = Math.max(reg, r.offset);
      const part = Math.min(end, r.offset + r.size) - from;
      if (
        r.mapping !== NEVER &&
        r.mapping(mergedValue(r, part, from - r.offset, data >>> ((from - reg) * 8)))
      )
        return MAPPING;
      covered += part;
    }
    return covered < size ? HARDWARE : HANDLED;
  }

  /** Drops every handler (device de-assignment). */
  clear(): void {
    this.handlers.length = 0;
    this.ends.length = 0;
  }

  /**
   * Xen's `vpci_read`: `size` bytes (1, 2 or 4) at `reg`. Handlers supply their bytes with reserved
   * bits cleared; gaps before, between and after them come from `hardware`.
   */
  read(reg: number, size: number, hardware: HardwareAccess): number {
    let data = 0xffffffff;
    let done = 0;
    const handlers = this.handlers;
    for (let i = this.firstEndingAfter(reg); i < handlers.length; i++) {
      const r = handlers[i]!;
      const start = reg + done;
      const length = size - done;
      if (r.offset + r.size <= start) continue;
      if (r.offset >= start + length) break;
      if (start < r.offset) {
        const gap = r.offset - start;
        data = mergeResult(data, readHardware(hardware, start, gap), gap, done);
        done += gap;
      }
      let value = (r.read() & ~(r.rsvdpMask | r.rsvdzMask)) >>> 0;
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
   * step, as Xen's walk of `vpci->handlers` is: a handler may add or remove handlers.
   */
  private writeFrom(at: number, reg: number, size: number, data: number, hardware: HardwareAccess): void {
    let done = 0;
    const handlers = this.handlers;
    for (let i = at; i < handlers.length; i++) {
      const r = handlers[i]!;
      const start = reg + done;
      const length = size - done;
      if (r.offset + r.size <= start) continue;
      if (r.offset >= start + length) break;
      if (start < r.offset) {
        writeHardware(hardware, start, r.offset - start, data >>> (done * 8));
        done += r.offset - start;
      }
      const part = Math.min(reg + size, r.offset + r.size) - Math.max(reg + done, r.offset);
      writeHelper(r, part, reg + done - r.offset, data >>> (done * 8));
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
function writeHelper(r: Register, size: number, offset: number, data: number): void {
  r.write(mergedValue(r, size, offset, data), size);
}

/** The whole-register value `writeHelper` hands the handler for `size` bytes of `data` at `offset`. */
function mergedValue(r: Register, size: number, offset: number, data: number): number {
  let current = 0;
  const preserved = (r.roMask | r.rsvdpMask) >>> 0;
  let value = data;
  if (size !== r.size || preserved !== 0) {
    current = (r.read() & ~r.rw1cMask) >>> 0;
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
