/**
 * Profiles and their switches. `xen` reproduces Xen, known holes included; `hardened` turns on every
 * safer behaviour. Each safer behaviour is a named switch that can be set on its own.
 */
import { InvalidArgumentError } from '@vpci/p2m';

/** The safer behaviours; each is off under `xen` and on under `hardened`. */
export interface Policy {
  /**
   * XSA-461 / seed 002: a guest frame is not mapped when its host page also holds any byte of a BAR
   * of a device owned by another domain (an event names both devices); assigning a device whose BAR
   * shares a page that another domain maps (or is about to) is refused with EBUSY, and a device
   * hot-plugged there joins with no owner; a hardware-domain write that would move or resize a BAR
   * (BAR, ROM or ReBAR control) onto such a page is ignored, also for a device whose vPCI set-up
   * failed (the write is tried on a copy of the device first).
   */
  readonly refuseSubpageSharing: boolean;
  /**
   * F8: a deferred map that fails undoes the frames it already mapped (an unmap that fails, likewise);
   * so does an `apply_map` that fails (the map at boot, before the device's vPCI is torn down, and
   * the unmap of a device leaving its owner under `unmapOnDeassign`, which then stays). A p2m call
   * the rollback makes that fails is tried once more before it gives up.
   */
  readonly rollbackFailedMap: boolean;
  /**
   * G3: `apply_map` (the boot-time map, and the unmap of a leaving device) stops at the first BAR
   * that fails and returns its error. Xen goes on with the next BARs and keeps only the last one's
   * result, so a later BAR that maps well turns decoding on with part of an earlier BAR unmapped (and
   * its rangeset left filled).
   */
  readonly applyMapKeepsErrors: boolean;
  /**
   * G1: every error return of modifyBars purges the device's rangesets (Xen leaves them filled), and
   * so does a deferred operation `vpci_process_pending` drops (its device gone or now another
   * domain's, as a hidden device's always is): Xen drops it with the sets still filled, and the
   * device's next operation works from those stale frames.
   */
  readonly purgeOnError: boolean;
  /**
   * G5: the host memory map (e820) is removed using host frames, not the guest frames of the set.
   * A page a BAR leaves out for the memory map is then kept in the sets of the device's lower BARs
   * over it (Xen's Step A takes a page shared by BARs of one device from all but the highest slot,
   * which would leave it unmapped for the lower BARs whose host frame there is not in the map).
   */
  readonly e820OnHostFrames: boolean;
  /** G6: a failed ROM-only map or unmap leaves the other BARs' decoding alone. */
  readonly romFailureKeepsBars: boolean;
  /** G7: a ROM toggle subtracts the device's other enabled BARs, as the code comment intends. */
  readonly romOverlapRule: boolean;
  /**
   * Invariant 8: decoding is not enabled while a BAR holds a sizing probe (every address bit above
   * its size set) or a 64-bit BAR is half-written: one of its halves holds the probe, the other not
   * (EINVAL, an event). A 64-bit BAR rewritten one half at a time from one address to another is
   * neither. Under `mapVfBarRanges` VF MSE is refused the same way while a VF BAR holds the probe.
   */
  readonly refuseProbeAddress: boolean;
  /**
   * A guest's BAR is not mapped over an enabled BAR of another of its devices that maps other
   * machine frames there (EINVAL, an event). Xen maps around it (the overlap keeps the first BAR's
   * frames), and when that BAR stops decoding the overlap stays mapped, to the wrong device's frames.
   */
  readonly refuseOverlappingBars: boolean;
  /**
   * F2: while a map/unmap is pending in a domain, another one in that domain is refused (EBUSY): a
   * device's state is not trusted until its work completes, and another device's work would not
   * see it (it could unmap a shared page the first one is about to flag as mapped). Writes that
   * move or resize the BARs of a device with work pending (BAR, ROM, ReBAR control) are ignored.
   * Each refusal is an event.
   */
  readonly serialOperations: boolean;
  /**
   * Assigning, de-assigning, removing or resetting (`vpci_reset_device`) a device first lets every
   * vCPU's pending vPCI work finish, then unmaps the device's enabled BARs from its old owner; an
   * unmap that fails refuses the move, and the removal too (the device stays). Xen leaves the
   * mappings in the old owner's p2m and lets the work run on (see `Machine.settleBeforeMove`). A
   * vPCI set-up that fails (`vpci_assign_device`) unmaps what the header's set-up mapped before the
   * state goes; Xen's `vpci_deassign_device` leaves it (at boot, `apply_map` has mapped a device
   * decoding memory, which then stays mapped with no vPCI BAR there).
   */
  readonly unmapOnDeassign: boolean;
  /**
   * The hardware domain's writes to the BAR, ROM and ReBAR control registers of a device it gave to
   * a guest are ignored (an `assigned-write-refused` event). Xen's `vpci_write` finds no vPCI state
   * of dom0's for such a device and writes the hardware: the BAR moves under the guest, whose p2m
   * still maps the old frames, possibly onto a page dom0 maps for a device of its own.
   */
  readonly protectAssignedBars: boolean;
  /**
   * A device's MSI-X hole punched in a page another device's enabled BAR also needs (sub-page BARs)
   * is mapped again for that BAR when the device stops decoding (Xen leaves the page unmapped),
   * unless that BAR leaves the page out for the host memory map (e820).
   */
  readonly restoreMsixPages: boolean;
  /**
   * G4: when punching the MSI-X holes fails at the end of a map (another mapping clobbers the area,
   * or removing the identity entry there fails: ENOMEM), the map fails as a map error does: undone
   * under `rollbackFailedMap`, decoding off, the BARs not enabled, a guest crashed; at MSI-X set-up,
   * MSI-X is dropped. Xen leaves the BARs mapped and flagged enabled with decoding off, for good
   * (G4), and ignores a failed removal: the device then decodes with its table page mapped.
   */
  readonly msixHoleFailsMap: boolean;
  /**
   * SR-IOV (docs/sriov.md): a physical function's VF Memory Space Enable maps or unmaps its VFs' BARs
   * as one deferred, preemptible operation over each VF BAR slot's whole range (VF BAR i up to VF BAR
   * i + n × size i for the n VFs, less their MSI-X pages and the VFs another domain owns), as Roger Pau
   * Monné asked of the series' v1. v1 calls `vpci_modify_bars` once per VF, and each `defer_map`
   * overwrites the vCPU's single pending operation: only the last call's VF is mapped (VF 0: v1 walks
   * `vf_list`, newest first), the others keep filled rangesets. The VF BARs are also sized at VF Enable (the later series text), and while
   * VF Memory Space Enable is on a write to the VF BAR registers or System Page Size, and while VF
   * Enable is on one to NumVFs, is ignored with an event (PCIe 9.3.3: undefined; what is mapped would
   * no longer be what the VFs decode).
   */
  readonly mapVfBarRanges: boolean;
  /**
   * G10: guest memory written outside vPCI (a `populate`, the toolstack's other p2m entries) into the
   * guest frames of one of the domain's enabled BARs is refused whole (EPERM). Xen's `p2m_add_page`
   * refuses only special entries (MMIO, grant, foreign), so RAM fills a decoding BAR's holes: its
   * MSI-X table and PBA pages (the guest's accesses there no longer reach vPCI's handlers), the pages
   * left out for the host memory map or a shared page.
   */
  readonly protectBarFrames: boolean;
}

/** `xen`: Xen exactly; `hardened`: every safer behaviour. */
export type Profile = 'xen' | 'hardened';

/** The switch names, in documentation order. */
export const POLICY_SWITCHES: readonly (keyof Policy)[] = Object.freeze([
  'refuseSubpageSharing',
  'rollbackFailedMap',
  'applyMapKeepsErrors',
  'purgeOnError',
  'e820OnHostFrames',
  'romFailureKeepsBars',
  'romOverlapRule',
  'refuseProbeAddress',
  'refuseOverlappingBars',
  'serialOperations',
  'unmapOnDeassign',
  'protectAssignedBars',
  'restoreMsixPages',
  'msixHoleFailsMap',
  'mapVfBarRanges',
  'protectBarFrames',
]);

/** The policy of a profile, with any switch overridden. Throws for an unknown profile or switch. */
export function policyFor(profile: Profile = 'xen', overrides: Partial<Policy> = {}): Policy {
  if (profile !== 'xen' && profile !== 'hardened') {
    throw new InvalidArgumentError('profile', profile, "'xen' or 'hardened'");
  }
  const on = profile === 'hardened';
  const policy: Record<string, boolean> = {};
  for (const name of POLICY_SWITCHES) policy[name] = on;
  for (const [name, value] of Object.entries(overrides)) {
    if (!POLICY_SWITCHES.includes(name as keyof Policy)) {
      throw new InvalidArgumentError('policy', name, `one of ${POLICY_SWITCHES.join(', ')}`);
    }
    if (typeof value !== 'boolean') throw new InvalidArgumentError(`policy.${name}`, value, 'true or false');
    policy[name] = value;
  }
  return Object.freeze(policy) as unknown as Policy;
}
