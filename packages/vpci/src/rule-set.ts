/**
 * Rule sets: which hypervisor's rules decide what a guest's (or the hardware domain's) writes to a
 * device's command, BAR and ROM registers do to the mappings. The engine's state (devices, BARs,
 * their rangesets, the p2m, the events) and its checks (invariants.ts) are shared; a rule set is the
 * part that differs from one hypervisor to another:
 *
 * - what a command, BAR, ROM or I/O BAR write does (`cmdWrite`, `barWrite`, `guestBarWrite`,
 *   `romWrite`, `ioBarWrite`), and which command values can change the mappings (`commandMaps`);
 * - how the BARs become frames, which pages are left out (MSI-X table and PBA holes), what happens to
 *   a BAR that does not fill its pages (sub-page BARs), and whether the work is applied at once or
 *   deferred to the vCPU (`modifyBars`).
 *
 * A rule set is a different axis from the policy (policy.ts): the policy's switches are Xen's safer
 * behaviours, each a departure from Xen's code that the Xen rule set consults. The profiles `xen`
 * and `hardened` are the one Xen rule set under two policies (every switch off, every switch on).
 * Other rule sets do not consult the switches in their own decisions; the machinery they share
 * (assignment, the deferred work's failure path) still does.
 *
 * The Xen rule set's logic is not here: a Xen reader finds header.c's `cmd_write`, `bar_write`,
 * `guest_mem_bar_write` and `rom_write` in header.ts and `modify_bars` in modify-bars.ts, as before;
 * `XEN_RULES` (xen-rules.ts) only names them.
 *
 * Adding a rule set:
 * 1. Write one module (e.g. `qemu-rules.ts`, after `xen-rules.ts`) exporting a `RuleSet` object whose methods say, each
 *    citing the source function it follows, what the writes do. Reuse the shared machinery: the
 *    BARs' state in device.ts (`Bar.addr`, `Bar.enabled`, `Bar.mem`), the hardware device
 *    (`device.hw`), the p2m calls (@vpci/p2m) and the event log.
 * 2. Add its name to `RuleSetName` and `RULE_SET_NAMES` below, and the object to `ruleSetFor`
 *    (rule-sets.ts). This module holds types only, so that every module may name a `RuleSet`.
 * 3. Declare its known hazards (`hazards`): the invariants it may break by design, with why, the way
 *    Xen's gaps are declared in docs/xen-gaps.md. The property tests accept exactly those.
 * 4. Test its decisions with expected values from its source (cite the function), add a row to
 *    docs/rule-sets.md, and it is selectable with `MachineOptions.rules` and `vpci-replay --rules`.
 */
import type { EngineContext } from './context.js';
import type { Bar } from './device.js';
import type { AccessorRef, PciDevice, Vcpu } from './domain.js';
import type { Violation } from './invariants.js';
import type { ModifyBarsResult } from './modify-bars.js';

/** The rule sets there are, by the name `MachineOptions.rules` and `vpci-replay --rules` take. */
export type RuleSetName = 'xen' | 'qemu' | 'kvm-vfio' | 'cloud-hypervisor';

/** The rule set names, in documentation order. */
export const RULE_SET_NAMES: readonly RuleSetName[] = Object.freeze([
  'xen',
  'qemu',
  'kvm-vfio',
  'cloud-hypervisor',
]);

/**
 * An invariant a rule set breaks by design (its hypervisor does so), declared as Xen's gaps are: the
 * property tests accept a violation of this kind under this rule set, and nothing else.
 */
export interface RuleSetHazard {
  /** The kind of violation (invariants.ts) the rule set may cause. */
  readonly violation: Violation['kind'];
  /** Why its hypervisor does so, citing its source. */
  readonly why: string;
}

/**
 * One hypervisor's decisions about a device's BARs (see the module comment). Each handler is called
 * by the register table with the vCPU doing the access in `accessor.current`; the machine's state
 * and the policy are reached through `context`.
 */
export interface RuleSet {
  /** The name it is selected by. */
  readonly name: RuleSetName;
  /** The source its rules come from (files and functions), for reports and docs. */
  readonly source: string;
  /** The invariants it breaks by design (empty: none). */
  readonly hazards: readonly RuleSetHazard[];
  /** A write of `value` to the command register (Xen's `cmd_write`). */
  cmdWrite(context: EngineContext, accessor: AccessorRef, device: PciDevice, value: number): void;
  /**
   * Whether a command write of `value` can change what the device maps (a scoped invariant check
   * looks at the device after such a write). Xen: only when memory decoding flips. A write that flips
   * decoding is looked at whatever this says (the checks read decoding: `vpciInitHeader`'s mark).
   */
  commandMaps(device: PciDevice, value: number): boolean;
  /**
   * The hardware domain's write of `value` to the register `reg` of a memory BAR slot (either half
   * of a 64-bit BAR: `bar` is the slot written). Xen's `bar_write`. `bytes`: how many bytes of the
   * register the access wrote (1, 2 or 4; a partial write arrives merged into `value`, as Xen's
   * `vpci_write_helper` merges it); absent, 4.
   */
  barWrite(
    context: EngineContext,
    accessor: AccessorRef,
    device: PciDevice,
    bar: Bar,
    reg: number,
    value: number,
    bytes?: number,
  ): void;
  /**
   * A guest's write of `value` to its view of a memory BAR slot. Xen's `guest_mem_bar_write`.
   * `bytes` as for `barWrite`.
   */
  guestBarWrite(
    context: EngineContext,
    accessor: AccessorRef,
    device: PciDevice,
    bar: Bar,
    value: number,
    bytes?: number,
  ): void;
  /** The hardware domain's write of `value` to the ROM BAR register `reg`. Xen's `rom_write`. */
  romWrite(
    context: EngineContext,
    accessor: AccessorRef,
    device: PciDevice,
    reg: number,
    value: number,
  ): void;
  /**
   * The hardware domain's write to an I/O BAR's register `reg`. Absent: I/O BARs get no handler (the
   * write reaches the device) and are never sized nor decoded by the engine: Xen hands the hardware
   * domain its I/O BARs as ports. Present: I/O BARs are sized at set-up (`Bar.size`, `Bar.addr`) and
   * their writes come here; the rule set keeps `Bar.portsDecoded` for the ports it decodes.
   */
  ioBarWrite?(
    context: EngineContext,
    accessor: AccessorRef,
    device: PciDevice,
    bar: Bar,
    reg: number,
    value: number,
  ): void;
  /**
   * Whether the rule set's own page rules decide the MSI-X table and PBA pages (what is left out of
   * the mapping), so that Xen's hole punch (`vpci_make_msix_hole`, run when MSI-X is set up and when
   * decoding turns on) is not run. Absent or false: Xen's holes.
   */
  readonly ownsMsixPages?: boolean;
  /**
   * Whether a device leaving its owner (de-assigned, removed, reset, moved) has its enabled BARs
   * unmapped first whatever the policy: a KVM VMM removes the device's memory slots with the device.
   * Absent or false: only under the policy's `unmapOnDeassign` (Xen leaves the mappings).
   */
  readonly unmapsLeavingDevice?: boolean;
  /**
   * Set-up of a device's header done (Xen's `vpci_init_header` end), with `cmd` the command register
   * found (decoding was turned off while sizing; the hook writes the register back): when present,
   * called instead of `modifyBars` for a device found decoding, for a rule set that maps a device's
   * BARs when it is added whatever its command register says (cloud-hypervisor's `map_mmio_regions`).
   */
  setUp?(context: EngineContext, accessor: AccessorRef, device: PciDevice, cmd: number): void;
  /**
   * Map (`cmd` has the memory bit) or unmap the device's BARs, or its ROM only (`romOnly`): how the
   * BARs become frames, the holes, sub-page BARs, and whether the work is deferred to `vcpu` or
   * applied at once (`immediate`, or while booting). Xen's `modify_bars`. Also called by the
   * machine (a device leaving its owner) and at set-up.
   */
  modifyBars(
    context: EngineContext,
    vcpu: Vcpu,
    device: PciDevice,
    cmd: number,
    romOnly: boolean,
    immediate?: boolean,
  ): ModifyBarsResult;
}
