/**
 * What a QEMU log shows of one PCI function: for each config byte, its value before anything wrote
 * it (the device's initial state, what the replay starts from), its value as QEMU last showed or took
 * it (QEMU's view now: a bridge's windows at the end), and which bytes are known at all; the read-back
 * of each register after all-ones was written to it (the BAR sizing protocol); and the layout so far
 * (header type, capability list), which sizes accesses that have no region line.
 */
import {
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_HEADER_TYPE,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
} from '@vpci/vpci';
import type { RegisterLayout } from './qemu-sizes.js';

/** Values software writes to size a BAR (all-ones) or a ROM (SeaBIOS: 0xfffff800, others 0xfffffffe). */
const SIZING_WRITES = new Set([0xffff_ffff, 0xffff_f800, 0xffff_fffe]);

/** One function as the log shows it. */
export class LoggedDevice {
  /** QEMU's device model name (`nvme`, `pcie-pci-bridge`, …). */
  readonly name: string;
  /** The addresses QEMU printed it at (`BB:DD.F`), in the order seen. */
  readonly seenAt = new Set<string>();
  /**
   * Each byte before the first write to it, as reads showed it; -1 where nothing did. A byte only an
   * inferred read's width covered (not its value) is a guess, replaced by any read that shows it.
   */
  readonly initial = new Int16Array(PCI_CFG_SPACE_EXP_SIZE).fill(-1);
  private readonly guessed = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE);
  /** Each byte as QEMU last showed it (a read) or took it (a write); -1 where unknown. */
  readonly current = new Int16Array(PCI_CFG_SPACE_EXP_SIZE).fill(-1);
  /** Each byte as last read (read-only bits, such as a window's type, show only in reads). */
  readonly lastRead = new Int16Array(PCI_CFG_SPACE_EXP_SIZE).fill(-1);
  /** The value read back from a register right after a sizing write to it. */
  readonly probes = new Map<number, number>();
  /** Accesses reached extended config space (offset 0x100 or more). */
  extended = false;
  private readonly written = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE);
  /** The last dword written to each register, until the next read of it (to spot a sizing read). */
  private readonly pendingSizing = new Map<number, number>();

  constructor(name: string) {
    this.name = name;
  }

  /**
   * Takes in an access: a read of which the low `certainBytes` bytes are known right (all of them
   * when a region line gave the size; the others are guesses), or a write.
   */
  observe(kind: 'read' | 'write', reg: number, size: number, value: number, certainBytes: number): void {
    if (reg + size > PCI_CFG_SPACE_SIZE) this.extended = true;
    if (kind === 'write') {
      for (let i = 0; i < size; i++) {
        this.written[reg + i] = 1;
        this.current[reg + i] = (value >>> (8 * i)) & 0xff;
      }
      if (size === 4) this.pendingSizing.set(reg, value >>> 0);
      return;
    }
    for (let i = 0; i < size; i++) {
      const byte = (value >>> (8 * i)) & 0xff;
      const guess = i >= certainBytes;
      if (
        this.written[reg + i] === 0 &&
        (this.initial[reg + i] === -1 || (this.guessed[reg + i] === 1 && !guess))
      ) {
        this.initial[reg + i] = byte;
        this.guessed[reg + i] = guess ? 1 : 0;
      }
      if (guess && this.lastRead[reg + i] !== -1) continue;
      this.current[reg + i] = byte;
      this.lastRead[reg + i] = byte;
    }
    const written = this.pendingSizing.get(reg);
    if (size === 4 && written !== undefined && SIZING_WRITES.has(written) && !this.probes.has(reg))
      this.probes.set(reg, value >>> 0);
    this.pendingSizing.delete(reg);
  }

  /** Whether a write reached any byte of `[reg, reg + size)`. */
  wasWritten(reg: number, size: number): boolean {
    for (let i = 0; i < size; i++) if (this.written[reg + i] !== 0) return true;
    return false;
  }

  /** A byte as best known: its initial value, else the last read of it; -1 when neither. */
  known(reg: number): number {
    const initial = this.initial[reg]!;
    return initial >= 0 ? initial : this.lastRead[reg]!;
  }

  /** The header type, once a read has shown it (the register is read-only). */
  get headerType(): 0 | 1 | undefined {
    const byte = this.known(PCI_HEADER_TYPE);
    if (byte < 0) return undefined;
    const type = byte & 0x7f;
    return type === 0 || type === 1 ? type : undefined;
  }

  /** Header type and the capability list as far as the log has shown them. */
  layout(): RegisterLayout {
    const capabilities = new Map<number, number>();
    const status = this.known(PCI_STATUS);
    let pos = this.known(PCI_CAPABILITY_LIST);
    if (status >= 0 && (status & PCI_STATUS_CAP_LIST) === 0) pos = -1;
    for (let ttl = 48; pos >= 0x40 && ttl > 0 && !capabilities.has(pos & ~3); ttl--) {
      pos &= ~3;
      const id = this.known(pos);
      if (id < 0) break;
      capabilities.set(pos, id);
      pos = this.known(pos + PCI_CAP_LIST_NEXT);
    }
    return { headerType: this.headerType, capabilities };
  }
}
