/**
 * The machine's event log: every outcome Xen would log (a warning, a crash), as data, so a replay
 * can show why something was or was not mapped. Frames are hexadecimal in `describeEvent`.
 */

import type { Errno } from '@vpci/rangeset';

/**
 * Why a VF that VF Enable asked for did not come up on the machine (`vf-not-added`):
 * - `routing-id-taken`: a device is already at the VF's routing ID. Xen's `pci_add_device` finds it
 *   (`alloc_pdev` returns the device on the segment's list) instead of adding a VF, so the engine
 *   leaves that device as it is and adds no VF there.
 * - `past-last-bus`: `PF + First VF Offset + n × VF Stride` is past 0xffff, beyond bus 255 (PCIe
 *   9.3.3.10–11): no function can answer there, so neither that VF nor any later one comes up.
 */
export type VfNotAddedReason = 'routing-id-taken' | 'past-last-bus';

/** Which map/unmap a deferred operation was doing. */
export type MapOperation = 'map' | 'unmap';

/**
 * One event. `sbdf` is the physical address of the device; `domain` a domain id.
 * - `bar-write-ignored`: a BAR (or its 64-bit high half) was written with a new value while mapped.
 * - `rom-write-ignored`: the ROM BAR was written with enable set while mapped.
 * - `offset-mismatch`: modifyBars refused a BAR whose guest page offset differs from the host's.
 * - `bar-not-in-hole`: a BAR overlaps the host memory map (Xen's pci_check_bar warning).
 * - `bar-invalid-position`: Arm: the BAR's host frames `[start, end]` lie in no window of its host
 *   bridge (Arm's `pci_check_bar` is false); modify_bars does not map it.
 * - `no-vpci`: x86: the device went to a guest without vPCI (`has_vpci` is false for an x86 domU in
 *   Xen); the guest's config accesses would go to its device model, which the engine does not model.
 * - `iomem-denied`: the domain has no permission for the machine frames (EPERM).
 * - `map-failed`: a deferred map or unmap failed with `code`; decoding was turned off, the
 *   rangesets purged, and a guest crashed (`crashed`).
 * - `msix-clobber`: an existing mapping at `gfn` clobbers the MSI-X area (EEXIST).
 * - `msix-invalid`: the MSI-X capability points outside its BAR (ENODEV); MSI-X is hidden.
 * - `capability-masked`: the init of legacy capability `cap` (MSI 5, MSI-X 17), or with `extended` of
 *   extended capability `cap` (ReBAR 21), failed with `code`; it is cleaned up and hidden from its
 *   list (Xen's `vpci_init_capabilities`).
 * - `capability-cleanup-failed`: that cleanup failed with `code` (a guest's set-up then fails).
 * - `msix-initial-state`: the device was added with MSI-X Enable or Function Mask set; both were
 *   cleared on the hardware (Xen's `pdev_msi_init`).
 * - `msix-entry-failed`: MSI-X entry `entry` could not be set up: its address `addr` is not an x86
 *   MSI address (Xen's `vpci_msi_update`, EOPNOTSUPP).
 * - `msix-access-refused`: an MSI-X table or PBA access at guest address `addr` of `size` bytes that
 *   is not an aligned 4- or 8-byte access (`access_allowed`); a read gives all-ones, a write is dropped.
 * - `subpage-shared`: hardened refusal: host page `mfn` of this BAR holds a BAR of `other`, owned by
 *   another domain; the page is not mapped.
 * - `assign-refused`: hardened refusal to assign a device whose BAR page another domain maps (domain 0
 *   for a device hot-plugged there: it joins with no owner).
 * - `assigned-write-refused`: hardened refusal of a hardware-domain write to a BAR, ROM or ReBAR
 *   control register (`reg`) of a device owned by guest `domain`; the write is ignored.
 * - `move-refused`: hardened refusal of a hardware-domain write that would move or resize a BAR (or
 *   the ROM, `bar` is then its slot) onto host page `mfn`, which domain `domain` maps; the write is
 *   ignored.
 * - `probe-refused`: hardened refusal to enable decoding with a probe or half-written BAR address.
 * - `overlap-refused`: hardened refusal to map a guest's BAR over an enabled BAR of `other` that maps
 *   other machine frames, from guest frame `gfn`.
 * - `busy`: hardened refusal of a second operation on a device with one pending.
 * - `rebar-refused`: a resize while the BAR is mapped (ignored); `rebar-unsupported`: a size the
 *   hardware does not list (written anyway, as Xen does).
 * - `pending-dropped`: the device of a pending operation is gone or owned by another domain.
 * - `iommu-add-failed`: on hot plug the IOMMU refused requester `sbdf` of `device` with `code` (Xen's
 *   `iommu_add_device`, injected through `Machine.iommuFaults`). For the function itself
 *   (`sbdf` = `device`) the device lost its vPCI state and left the hardware domain's list (no
 *   owner); for a phantom function it is only logged, as Xen does ("IOMMU: add … failed").
 * - `vpci-setup-failed`: `vpci_assign_device` failed with `code` for the hardware domain (`domain`).
 *   With `hotPlug` (Xen's `pci_add_device`: "Setup of vPCI failed") the device left the hardware
 *   domain's list and has no owner; without (building the hardware domain, `setup_one_hwdom_device`:
 *   "setup of vPCI for d0 failed") it stays the hardware domain's, without vPCI.
 * - `rollback`: hardened: frames of a failed operation were restored.
 * - `msix-page-restored`: hardened: an MSI-X page of `sbdf` was mapped again for device `for`.
 * - `domain-crashed`: the domain was crashed (`domain_crash`).
 * - `modify-bars-failed`: modifyBars returned an error other than the ones above (ENOMEM).
 * - `crashed-domain-access`: a crashed domain's vCPU tried a config access; dropped.
 * - `access-dropped`: a config access Xen's `vpci_access_allowed` refuses (`reason` `misaligned`: not
 *   aligned to its size) never reached vPCI: a read returned all-ones, a write was dropped; or
 *   (`read-only`) a hardware-domain write to a device Xen marked read-only (`pci_ro_device`), which
 *   `vpci_write` drops. Xen is silent; the engine logs it so no access is lost without a word.
 * - `crashed-domain-mmio`: a crashed domain's vCPU tried a memory access at `addr`; dropped.
 * - `rule-decision`: a rule set other than Xen's decided what BAR `bar` of `sbdf` maps (`decision`,
 *   one sentence naming the rule and its source function): mapped, moved, unmapped, or trapped.
 * - `vf-added`: VF `index` of SR-IOV physical function `pf` came up at `sbdf` when the hardware
 *   domain set VF Enable, and was reported to Xen (`PHYSDEVOP_pci_device_add` with `is_virtfn`).
 * - `vf-removed`: the VF went, with VF Enable cleared or its PF removed (`pci_remove_device`).
 * - `vf-not-added`: VF Enable on SR-IOV physical function `sbdf` asked for VFs `index` …
 *   `index + count - 1` and they did not come up (`reason`, `VfNotAddedReason`): `routing-id-taken`
 *   (one VF; `other` is the device already at its routing ID, which stays as it was) or
 *   `past-last-bus` (every VF from `index` on: routing IDs past 0xffff).
 * - `sriov-write-ignored`: hardened (`mapVfBarRanges`): a write to a PF's VF BAR registers or System
 *   Page Size while VF Memory Space Enable is on, or to NumVFs while VF Enable is on, was ignored.
 * - `sriov-vfs-enabled-at-add`: SR-IOV physical function `sbdf` was added with VF Enable or VF MSE
 *   already set in SR-IOV Control (`control`): Xen's `pci_add_device` warns and does not size its VF
 *   BARs (`PciDevice.vfRlen` stays 0).
 */
export type VpciEvent =
  | {
      readonly kind: 'rule-decision';
      readonly sbdf: string;
      readonly bar: number;
      readonly ruleSet: string;
      readonly decision: string;
    }
  | {
      readonly kind: 'bar-write-ignored';
      readonly sbdf: string;
      readonly bar: number;
      readonly value: number;
    }
  | { readonly kind: 'rom-write-ignored'; readonly sbdf: string }
  | {
      readonly kind: 'offset-mismatch';
      readonly sbdf: string;
      readonly bar: number;
      readonly addr: bigint;
      readonly guestAddr: bigint;
    }
  | {
      readonly kind: 'bar-invalid-position';
      readonly sbdf: string;
      readonly bar: number;
      readonly start: number;
      readonly end: number;
    }
  | { readonly kind: 'no-vpci'; readonly sbdf: string; readonly domain: number }
  | {
      readonly kind: 'bar-not-in-hole';
      readonly sbdf: string;
      readonly bar: number;
      readonly start: number;
      readonly end: number;
    }
  | { readonly kind: 'iomem-denied'; readonly domain: number; readonly start: number; readonly end: number }
  | {
      readonly kind: 'map-failed';
      readonly sbdf: string;
      readonly domain: number;
      readonly operation: MapOperation;
      readonly gfn: number;
      readonly mfn: number;
      readonly code: Errno;
      readonly crashed: boolean;
    }
  | {
      readonly kind: 'msix-clobber';
      readonly sbdf: string;
      readonly gfn: number;
      readonly mfn: number | undefined;
      readonly type: string;
    }
  | { readonly kind: 'msix-invalid'; readonly sbdf: string; readonly reason: string }
  | {
      readonly kind: 'msix-initial-state';
      readonly sbdf: string;
      readonly maskall: boolean;
      readonly enable: boolean;
    }
  | {
      readonly kind: 'msix-entry-failed';
      readonly sbdf: string;
      readonly entry: number;
      readonly addr: bigint;
    }
  | {
      readonly kind: 'msix-access-refused';
      readonly sbdf: string;
      readonly addr: bigint;
      readonly size: number;
    }
  | {
      readonly kind: 'capability-masked';
      readonly sbdf: string;
      readonly cap: number;
      readonly code: Errno;
      /** An extended capability (absent: a legacy one). */
      readonly extended?: true;
    }
  | {
      readonly kind: 'capability-cleanup-failed';
      readonly sbdf: string;
      readonly cap: number;
      readonly code: Errno;
      /** An extended capability (absent: a legacy one). */
      readonly extended?: true;
    }
  | {
      readonly kind: 'subpage-shared';
      readonly sbdf: string;
      readonly bar: number;
      readonly mfn: number;
      readonly other: string;
      readonly otherDomain: number;
    }
  | {
      readonly kind: 'assign-refused';
      readonly sbdf: string;
      readonly domain: number;
      readonly mfn: number;
      readonly other: string;
    }
  | {
      readonly kind: 'assigned-write-refused';
      readonly sbdf: string;
      readonly reg: number;
      readonly domain: number;
    }
  | {
      readonly kind: 'move-refused';
      readonly sbdf: string;
      readonly bar: number;
      readonly mfn: number;
      readonly domain: number;
    }
  | {
      readonly kind: 'overlap-refused';
      readonly sbdf: string;
      readonly bar: number;
      readonly gfn: number;
      readonly other: string;
    }
  | {
      readonly kind: 'probe-refused';
      readonly sbdf: string;
      readonly bar: number;
      readonly guestAddr: bigint;
    }
  | { readonly kind: 'busy'; readonly sbdf: string; readonly vcpu: string }
  | { readonly kind: 'rebar-refused'; readonly sbdf: string; readonly bar: number; readonly size: bigint }
  | { readonly kind: 'rebar-unsupported'; readonly sbdf: string; readonly bar: number; readonly size: bigint }
  | { readonly kind: 'pending-dropped'; readonly sbdf: string; readonly vcpu: string }
  | {
      readonly kind: 'iommu-add-failed';
      readonly sbdf: string;
      readonly device: string;
      readonly code: Errno;
    }
  | {
      readonly kind: 'vpci-setup-failed';
      readonly sbdf: string;
      readonly domain: number;
      readonly code: Errno;
      /** Hot plug (`pci_add_device`): the device left the domain's list; else at boot, it stays. */
      readonly hotPlug: boolean;
    }
  | { readonly kind: 'rollback'; readonly sbdf: string; readonly domain: number; readonly frames: number }
  | { readonly kind: 'msix-page-restored'; readonly sbdf: string; readonly gfn: number; readonly for: string }
  | { readonly kind: 'domain-crashed'; readonly domain: number; readonly reason: string }
  | { readonly kind: 'modify-bars-failed'; readonly sbdf: string; readonly code: Errno }
  | { readonly kind: 'crashed-domain-access'; readonly domain: number; readonly sbdf: string }
  | { readonly kind: 'crashed-domain-mmio'; readonly domain: number; readonly addr: bigint }
  | { readonly kind: 'vf-added'; readonly sbdf: string; readonly pf: string; readonly index: number }
  | { readonly kind: 'vf-removed'; readonly sbdf: string; readonly pf: string }
  | {
      readonly kind: 'vf-not-added';
      readonly sbdf: string;
      readonly index: number;
      readonly count: number;
      readonly reason: VfNotAddedReason;
      readonly other?: string;
    }
  | {
      readonly kind: 'sriov-write-ignored';
      readonly sbdf: string;
      readonly reg: number;
      readonly value: number;
      readonly reason: 'vf-memory-space' | 'vf-enable';
    }
  | { readonly kind: 'sriov-vfs-enabled-at-add'; readonly sbdf: string; readonly control: number }
  | {
      readonly kind: 'access-dropped';
      readonly domain: number;
      readonly sbdf: string;
      readonly reg: number;
      readonly size: number;
      readonly reason: 'misaligned' | 'read-only';
    };

/** One line of text for an event, in the words of Xen's log message where there is one. */
export function describeEvent(event: VpciEvent): string {
  const hex = (value: number | bigint | undefined): string =>
    value === undefined ? 'INVALID' : `0x${value.toString(16)}`;
  switch (event.kind) {
    case 'rule-decision':
      return `${event.sbdf}: ${event.bar === 6 ? 'ROM' : `BAR${event.bar}`}: ${event.ruleSet}: ${event.decision}`;
    case 'bar-write-ignored':
      return `${event.sbdf}: ignored BAR ${event.bar} write while mapped (${hex(event.value)})`;
    case 'rom-write-ignored':
      return `${event.sbdf}: ignored ROM BAR write while mapped`;
    case 'offset-mismatch':
      return `${event.sbdf}: can't map BAR${event.bar} - offset mismatch: ${hex(event.guestAddr)} vs ${hex(event.addr)}`;
    case 'bar-invalid-position':
      return `${event.sbdf}: not mapping BAR [${hex(event.start)}, ${hex(event.end)}] invalid position`;
    case 'no-vpci':
      return `${event.sbdf}: assigned to d${event.domain} without vPCI (x86 domU: has_vpci() is false)`;
    case 'bar-not-in-hole':
      return `${event.sbdf}: BAR${event.bar} at [${hex(event.start)}, ${hex(event.end)}] not in memory map hole`;
    case 'iomem-denied':
      return `d${event.domain} denied access to MMIO range [${hex(event.start)}, ${hex(event.end)}]`;
    case 'map-failed':
      return `${event.sbdf}: failed to ${event.operation} gfn ${hex(event.gfn)} -> mfn ${hex(event.mfn)} for d${event.domain}: ${event.code}${event.crashed ? ' (domain crashed)' : ''}`;
    case 'msix-clobber':
      return `${event.sbdf}: existing mapping (mfn: ${hex(event.mfn)} type: ${event.type}) at ${hex(event.gfn)} clobbers MSIX MMIO area`;
    case 'msix-invalid':
      return `${event.sbdf}: MSI-X ${event.reason}`;
    case 'msix-initial-state':
      return `${event.sbdf}: unexpected initial MSI-X state (MASKALL=${event.maskall ? 1 : 0}, ENABLE=${event.enable ? 1 : 0}), fixing`;
    case 'msix-entry-failed':
      return `${event.sbdf}: unable to enable entry ${event.entry}: EOPNOTSUPP (unsupported address ${hex(event.addr)})`;
    case 'msix-access-refused':
      return `${event.sbdf}: unaligned or invalid size MSI-X table access (${hex(event.addr)}, ${event.size} bytes)`;
    case 'capability-masked':
      return `${event.sbdf}: init ${event.extended === true ? 'extended' : 'legacy'} cap ${event.cap} fail rc=${event.code}, mask it`;
    case 'capability-cleanup-failed':
      return `${event.sbdf}: clean ${event.extended === true ? 'extended' : 'legacy'} cap ${event.cap} fail rc=${event.code}`;
    case 'subpage-shared':
      return `${event.sbdf}: BAR${event.bar} page ${hex(event.mfn)} shared with ${event.other} of d${event.otherDomain}: not mapped`;
    case 'assign-refused':
      return `${event.sbdf}: not assigned to d${event.domain}: page ${hex(event.mfn)} is mapped for ${event.other}`;
    case 'assigned-write-refused':
      return `${event.sbdf}: d0 write to register ${hex(event.reg)} ignored: the device is d${event.domain}'s`;
    case 'move-refused':
      return `${event.sbdf}: BAR${event.bar} not moved: page ${hex(event.mfn)} is mapped by d${event.domain}`;
    case 'overlap-refused':
      return `${event.sbdf}: BAR${event.bar} not mapped: gfn ${hex(event.gfn)} is ${event.other}'s`;
    case 'probe-refused':
      return `${event.sbdf}: BAR${event.bar} holds a probe or half-written address ${hex(event.guestAddr)}: not mapped`;
    case 'busy':
      return `${event.sbdf}: an operation is already pending on ${event.vcpu}`;
    case 'rebar-refused':
      return `${event.sbdf}: refuse to resize BAR#${event.bar} to ${hex(event.size)} with memory decoding enabled`;
    case 'rebar-unsupported':
      return `${event.sbdf}: new BAR#${event.bar} size ${hex(event.size)} is not supported by hardware`;
    case 'iommu-add-failed':
      return event.sbdf === event.device
        ? `${event.sbdf}: IOMMU add_device failed (${event.code}): the device has no owner`
        : `IOMMU: add ${event.sbdf} failed (${event.code})`;
    case 'vpci-setup-failed':
      return event.hotPlug
        ? `${event.sbdf}: Setup of vPCI failed: ${event.code}`
        : `${event.sbdf}: setup of vPCI for d${event.domain} failed: ${event.code}`;
    case 'pending-dropped':
      return `${event.sbdf}: pending operation of ${event.vcpu} dropped (device gone or reassigned)`;
    case 'rollback':
      return `${event.sbdf}: rolled back ${event.frames} frames of d${event.domain}`;
    case 'msix-page-restored':
      return `${event.sbdf}: MSI-X page ${hex(event.gfn)} mapped again for ${event.for}`;
    case 'domain-crashed':
      return `d${event.domain} crashed: ${event.reason}`;
    case 'modify-bars-failed':
      return `${event.sbdf}: modify_bars failed: ${event.code}`;
    case 'crashed-domain-mmio':
      return `d${event.domain}: memory access to ${hex(event.addr)} after crash dropped`;
    case 'crashed-domain-access':
      return `d${event.domain}: config access to ${event.sbdf} after crash dropped`;
    case 'vf-added':
      return `PCI add virtual function ${event.sbdf} (VF ${event.index} of ${event.pf})`;
    case 'vf-removed':
      return `PCI remove virtual function ${event.sbdf} of ${event.pf}`;
    case 'vf-not-added':
      return event.reason === 'routing-id-taken'
        ? `${event.sbdf}: VF ${event.index} not added: its routing ID ${event.other} is already a device`
        : `${event.sbdf}: ${event.count === 1 ? `VF ${event.index}` : `VFs ${event.index}-${event.index + event.count - 1} (${event.count})`} not added: routing IDs past bus 255`;
    case 'sriov-write-ignored':
      return `${event.sbdf}: SR-IOV write of ${hex(event.value)} at ${hex(event.reg)} ignored while ${event.reason === 'vf-enable' ? 'VF Enable' : 'VF Memory Space Enable'} is on`;
    case 'sriov-vfs-enabled-at-add':
      return `SR-IOV device ${event.sbdf} has its virtual functions already enabled (${event.control.toString(16).padStart(4, '0')})`;
    case 'access-dropped':
      return event.reason === 'read-only'
        ? `d${event.domain}: ${event.size}-byte config write to read-only device ${event.sbdf} at ${hex(event.reg)}: dropped`
        : `d${event.domain}: ${event.size}-byte config access to ${event.sbdf} at ${hex(event.reg)} not aligned to its size: dropped`;
  }
}
