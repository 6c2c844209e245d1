/**
 * What a compact write line's key (its domain, vCPU and address: compact-bytes.ts) names on the
 * replay's machine, kept in the key's slot so that a line whose key is met again reaches its device
 * with no look-up: the vCPU, the address parsed, and the device the vCPU's domain sees there.
 *
 * Why: a met key still went address text → the replayer's address and vCPU look-ups → the engine's
 * look-ups of the domain and of the device by address, several hash look-ups a line (over thousands
 * of devices each a cold bucket, entry and key). What they answer changes only when the machine's
 * `accessTargetsVersion` moves (a device removed, a vPCI state taken away), so a target is used only
 * while that count stands at the one it was found at; the key's slot forgets it when it takes another
 * key. A target is kept with its slot of the reader's flat tables (`KeySlots`, compact-bytes.ts), so
 * that a met key's cold slot is as few cache lines as can be.
 */
import type { PciDevice, Sbdf, Vcpu } from '@vpci/vpci';

/** Where the keys' targets are kept, by slot (`KeySlots`). */
export interface WriteTargets {
  /**
   * `Machine.accessTargetsVersion` when the target of the key in `slot` was found; -1 (which it never
   * is) while the slot keeps none. The three below are set with it, and only read while it is not -1.
   */
  targetVersion(slot: number): number;
  /** The vCPU. */
  targetVcpu(slot: number): Vcpu;
  /** The address, parsed. */
  targetSbdf(slot: number): Sbdf;
  /** The device the vCPU's domain sees at the address. */
  targetDevice(slot: number): PciDevice;
  /** Keeps the target the look-ups found for the key in `slot`, at `version`. */
  keepTarget(slot: number, vcpu: Vcpu, sbdf: Sbdf, device: PciDevice, version: number): void;
}
