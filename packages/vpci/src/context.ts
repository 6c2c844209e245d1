/**
 * What the header, map and MSI-X code need from the machine they run in: the policy, the event log,
 * the host memory map, the domains and whether the system has finished booting. The machine passes
 * itself; tests may pass a fake.
 */
import type { Mfn } from '@vpci/p2m';
import type { RangeSet } from '@vpci/rangeset';
import type { Arch } from './arch.js';
import type { ResolvedHostBridge } from './arm-pci-host.js';
import type { Domain, PciDevice } from './domain.js';
import type { EnabledBarIndex } from './enabled-bars.js';
import type { VpciEvent } from './events.js';
import type { Policy } from './policy.js';

export interface EngineContext {
  /** The architecture whose Xen build the handlers follow (see arch.ts). */
  readonly arch: Arch;
  /** Arm: the PCI host bridges, whose windows `pci_check_bar` checks BARs against (none on x86). */
  readonly hostBridges: readonly ResolvedHostBridge[];
  /** The safer behaviours in force (Xen's rule set consults them). */
  readonly policy: Policy;
  /** The event log: every outcome Xen would log, in order. */
  readonly events: VpciEvent[];
  /** Host frames covered by an entry of the host memory map (e820), every type. */
  readonly e820Frames: RangeSet<Mfn>;
  /**
   * Entries of the host memory map with a size: x86 `pci_sanitize_bar_memory` makes one
   * `rangeset_remove_range` call for each on every BAR set it sanitizes (counted in `RangesetOps`).
   */
  readonly e820Removals: number;
  /** False while the hardware domain is being built: mappings are then applied at once. */
  readonly systemActive: boolean;
  /** The hardware domain (dom0). */
  readonly hardwareDomain: Domain;
  /** dom_xen, which owns the devices hidden from dom0; their BARs map into dom0's p2m. */
  readonly domXen: Domain;
  /** Every device on the host. */
  devices(): Iterable<PciDevice>;
  /**
   * What the shared machinery asks of the machine's rule set (a `RuleSet`, rule-set.ts, which this
   * module does not import: rule-set.ts imports it): whether Xen's MSI-X hole punch is left out.
   * Absent in a test's fake context: Xen's.
   */
  readonly rules?: { readonly ownsMsixPages?: boolean };
  /** Counts the devices added and removed: a listing of `devices()` holds while it stays the same. */
  readonly deviceListVersion: number;
  /**
   * The enabled BARs of each domain by guest frame, for `modifyBars`' overlap walk; without it (a
   * fake context) the walk goes over every device of the domain, as Xen's does.
   * @internal
   */
  readonly enabledBars?: EnabledBarIndex | undefined;
  /**
   * Hardened: every device's BARs by host frame, for the searches of the pages another domain's
   * device has a BAR on (`modifyBars`' withheld pages, sriov.ts' whole-range VF operation); without
   * it (a fake context) they walk every device.
   * @internal
   */
  readonly hostBarIndex?: HostBarLookup | undefined;
  /**
   * Whether every device of the machine is on the hardware domain's or dom_xen's list: then no
   * device has an owner other than dom0's (`effectiveOwner`), and a search for one on dom0's behalf
   * finds none without asking `hostBarIndex`, which is then not brought up to date for the devices
   * plugged since (a PF's thousands of VFs at VF Enable). Absent (a fake context): not known.
   * @internal
   */
  readonly hardwareDomainOwnsEveryDevice?: boolean;
  /**
   * Hardened (`mapVfBarRanges`): the decoding flags of a PF's VFs are kept per VF BAR array
   * (sriov-decoding.ts); without it (a fake context, or a test's naive machine) each VF keeps its own.
   * @internal
   */
  readonly packVfDecoding?: boolean;
  /**
   * SR-IOV: the hardware domain set VF Enable on physical function `pf`; the VFs NumVFs brings up
   * join the machine at their routing IDs, linked to `pf`, as dom0 reports each to Xen
   * (`PHYSDEVOP_pci_device_add` with `is_virtfn`).
   */
  addVirtualFunctions(pf: PciDevice): void;
  /** SR-IOV: `pf`'s VFs leave the machine, last first, as dom0 reports their removal. */
  removeVirtualFunctions(pf: PciDevice): void;
}

/** The domain whose p2m a device's BARs are mapped into: dom_xen's hidden devices map into dom0's. */
export function mappingDomain(context: EngineContext, device: PciDevice): Domain | undefined {
  return device.domain === context.domXen ? context.hardwareDomain : device.domain;
}

/**
 * Whether the machine's rule set decides `device`'s mappings. The hardware domain's SR-IOV VFs are
 * mapped by Xen's `modify_bars` under every rule set (the series' VF MSE path; a VF's own BAR
 * registers read zero, so no register rule applies), so their MSI-X holes and their unmap on
 * removal are Xen's too.
 */
export function ruleSetMapsDevice(context: EngineContext, device: PciDevice): boolean {
  return device.physfn === undefined || device.domain !== context.hardwareDomain;
}

/**
 * Which devices may have a BAR on given host frames, each once, in no order (host-bar-index.ts
 * `HostBarIndex`, kept by the machine): what the engine asks of it. Declared here rather than
 * imported: the index reads BARs through ownership.ts, which reads this module.
 * @internal
 */
export interface HostBarLookup {
  devicesMeeting(ranges: readonly (readonly [number, number])[]): PciDevice[];
}
