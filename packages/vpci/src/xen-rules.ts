/**
 * The `xen` rule set: Xen's vPCI (xen/drivers/vpci/header.c). It holds no logic of its own: it names
 * header.ts's `cmdWrite`, `barWrite`, `guestMemBarWrite`, `romWrite` and modify-bars.ts's
 * `modifyBars`, where a Xen reader finds header.c's functions. The `xen` and `hardened` profiles both
 * run it; the policy's switches are consulted inside those functions.
 */
import { barWrite, cmdWrite, commandFlipsDecoding, guestMemBarWrite, romWrite } from './header.js';
import { modifyBars } from './modify-bars.js';
import type { RuleSet } from './rule-set.js';

/** Xen's rule set (see the module comment). */
export const XEN_RULES: RuleSet = Object.freeze({
  name: 'xen',
  source:
    'xen/drivers/vpci/header.c: cmd_write, bar_write, guest_mem_bar_write, rom_write, modify_bars, defer_map, apply_map',
  // Xen's holes are its gaps (docs/xen-gaps.md), shown under the `xen` profile and closed by
  // `hardened`'s switches: they are the policy's business, not declared here.
  hazards: Object.freeze([]),
  cmdWrite,
  commandMaps: commandFlipsDecoding,
  barWrite: (context, _accessor, device, bar, reg, value) => barWrite(context, device, bar, reg, value),
  guestBarWrite: (context, _accessor, device, bar, value) => guestMemBarWrite(context, device, bar, value),
  romWrite,
  // Not modifyBars itself: a rule set's modifyBars takes no more arguments than the interface's.
  modifyBars: (context, vcpu, device, cmd, romOnly, immediate) =>
    modifyBars(context, vcpu, device, cmd, romOnly, immediate),
} satisfies RuleSet);
