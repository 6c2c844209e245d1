/**
 * The QEMU section of the replay report (`--qemu`), as data: what the log held, its devices, and where
 * the replay's BAR mappings part from QEMU's own decisions. Types only, shared by the report and the
 * oracle that fills it in.
 */
import type { QemuCounts, QemuDevice } from './qemu.js';

/** A Xen rule that explains a divergence. */
export type DivergenceRule = 'io-bar' | 'bar-write-ignored';

/** Where the replay's BAR mappings and QEMU's part. */
export interface ReportDivergence {
  /** The log line of the write after which it was found (the log's last line: at the end). */
  readonly line: number;
  /** The device whose BAR differs. */
  readonly sbdf: string;
  /** BAR number as QEMU counts it (6: the ROM). */
  readonly bar: number;
  /** Where QEMU maps it, or null. */
  readonly qemu: string | null;
  /** Where the replay maps it, or null. */
  readonly engine: string | null;
  /** The log lines of QEMU's decisions about this BAR at that point. */
  readonly decisions: readonly number[];
  /** Whether a Xen rule explains the difference. */
  readonly explained: boolean;
  /** The Xen rule that explains it; null when none does. */
  readonly rule: DivergenceRule | null;
  /** What differs, in words. */
  readonly message: string;
}

/** The QEMU section of the report (`--qemu`). */
export interface ReportQemu {
  /** The log's file name. */
  readonly log: string;
  /** What the log held and what was replayed or dropped. */
  readonly counts: QemuCounts;
  /** The devices of the log, with the bytes filled in or left unknown. */
  readonly devices: readonly QemuDevice[];
  /**
   * QEMU's mapping decisions and how the replay compares with them; `compared` is false for a log
   * with none (captured without `-trace 'pci_update_mappings_*'`): nothing was compared.
   */
  readonly decisions: {
    readonly compared: boolean;
    readonly total: number;
    readonly matched: number;
    readonly explained: number;
    readonly unexplained: number;
  };
  /** Every step where the replay's mappings differ from QEMU's, in log order. */
  readonly divergences: readonly ReportDivergence[];
}
