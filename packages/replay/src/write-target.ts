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
 * key. The target's fields are the slot's own (no object of its own: one cache line less a line).
 */
import type { PciDevice, Sbdf, Vcpu } from '@vpci/vpci';

/** Where a key's target is kept: its slot (`KnownKey`). */
export interface WriteTargetSlot {
  /**
   * `Machine.accessTargetsVersion` when the target was found; -1 (which it never is) while the slot
   * keeps none. The three fields below are set with it.
   */
  targetVersion: number;
  /** The vCPU. */
  targetVcpu: Vcpu | undefined;
  /** The address, parsed. */
  targetSbdf: Sbdf | undefined;
  /** The device the vCPU's domain sees at the address. */
  targetDevice: PciDevice | undefined;
}
