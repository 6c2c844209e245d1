/**
 * Which enabled BAR a write to guest memory from outside vPCI would land on. Xen's `p2m_add_page`
 * (populate, grant maps) and `set_typed_p2m_entry` (foreign and MMIO maps) refuse only to replace a
 * special entry, so RAM can fill the holes vPCI leaves in a decoding BAR's guest frames: its MSI-X
 * table and PBA pages, the pages kept out for the host memory map or a shared page. The hardened
 * `protectBarFrames` refuses such a write (docs/xen-gaps.md, G10).
 */
import type { Domain } from './domain.js';
import type { Machine } from './machine.js';

/** An enabled BAR a write would land on: its device and slot (6: the ROM of an endpoint). */
export interface BarMet {
  /** The device's address, `ssss:bb:dd.f`. */
  readonly sbdf: string;
  /** The BAR's slot (0–5; 6 the ROM). */
  readonly bar: number;
}

/**
 * The first enabled BAR mapped into `domain` (dom_xen's too for the hardware domain) whose guest
 * frames meet `[first, last]`, or undefined. A search of the domain's BAR index, not a walk.
 */
export function enabledBarMeeting(
  machine: Machine,
  domain: Domain,
  first: number,
  last: number,
): BarMet | undefined {
  const [met] = machine.enabledBars?.enabledMeeting(machine, domain, [[first, last]]) ?? [];
  return met === undefined ? undefined : { sbdf: met.device.name, bar: met.bar.index };
}
