/**
 * Domains, their vCPUs and the PCI devices they own. A domain owns a p2m, the machine frames it may
 * map (Xen's `iomem_caps`), its devices and its vCPUs; a vCPU holds at most one pending map/unmap
 * (Xen's `struct vpci_vcpu`), naming its device; a device names its owner. They refer to each other,
 * so they are defined together.
 */
import { type Gfn, type Mfn, type MmioCost, MtrrState, P2m, type P2mOptions, type Paddr } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import type { Bar, PackedDecoding, VpciState } from './device.js';
import type { PhysicalDevice } from './hardware.js';
import { PendingVcpus } from './pending-vcpus.js';
import { formatSbdf, type Sbdf } from './sbdf.js';
import { READ_BY, stateChanged } from './state-generation.js';

/**
 * `hardware`: the hardware domain (dom0, identity BARs); `guest`: a domU; `dom_xen`: hidden devices;
 * `dom_io`: quarantined devices (no vPCI; the hardware domain reaches them on the hardware).
 */
export type DomainKind = 'hardware' | 'guest' | 'dom_xen' | 'dom_io';

/** Xen's id of the pseudo-domain that owns devices hidden from dom0. */
export const DOMID_XEN = 0x7ff2;

/** Xen's id of the pseudo-domain that owns quarantined devices (`dom_io`). */
export const DOMID_IO = 0x7ff1;

/** Guest virtual slots: a guest bus has 32 device numbers. */
export const VPCI_MAX_VIRT_DEV = 32;

/** A deferred operation (Xen's `v->vpci`): map (`cmd` has MEMORY) or unmap the device's rangesets. */
export interface PendingOperation {
  /** The device whose BARs the operation maps or unmaps. */
  readonly device: PciDevice;
  /** The command register value being applied: with `PCI_COMMAND_MEMORY` a map, without it an unmap. */
  readonly cmd: number;
  /** Only the ROM BAR changes (a ROM enable or disable), not the whole header (Xen's `rom_only`). */
  readonly romOnly: boolean;
  /** Guest frames done so far per BAR slot, kept only under `rollbackFailedMap` (its rollback reads them). */
  readonly done: Map<number, RangeSet<Gfn>>;
  /**
   * Hardened (`serialOperations`): where a ROM-only unmap moves the ROM once it completes (Xen moves
   * it when the unmap is deferred; the frames still to unmap are then no longer the ROM's).
   */
  romMove?: Paddr;
  /**
   * Hardened (`refuseSubpageSharing`): the pages the device withheld before a ROM-only map gave some
   * of them back (no longer shared), put back if the map fails: the ROM is then not mapped there.
   */
  withheldBefore?: RangeSet<Gfn>;
  /**
   * Hardened (`mapVfBarRanges`): the operation is a PF's VF Memory Space Enable change, over each VF
   * BAR slot's whole range (`bars`, one per slot, `VF BAR i … + count × size_i`) rather than the
   * device's own BARs; when it completes, `vfs` (the VFs it covers) start or stop decoding.
   */
  vfRanges?: VfRangeWork;
}

/** What a PF's whole-range VF BAR operation covers (`PendingOperation.vfRanges`). */
export interface VfRangeWork {
  /** One BAR per VF BAR slot, spanning the slot's VFs; its set holds the frames still to do. */
  readonly bars: readonly Bar[];
  /** The VFs whose BARs the ranges hold, in VF order. */
  readonly vfs: readonly PciDevice[];
  /**
   * Each of `vfs`' VF index, and the PF's VF BAR arrays' decoding the attached ones are kept in
   * (sriov-decoding.ts), when the PF's VFs are kept there.
   * @internal
   */
  readonly packed?: {
    readonly decoding: PackedDecoding;
    readonly indexes: readonly number[];
    /** `vfs` are VFs 0 … `count` - 1, all the attached VFs as of the decoding's `attachments`. */
    readonly whole?: { readonly count: number; readonly attachments: number };
  };
}

/** Who is accessing: the vCPU the deferred work lands on. Set by the machine around each access. */
export interface AccessorRef {
  /** The vCPU doing the access being handled. */
  current: Vcpu;
}

/** Told of every p2m write (`P2m.onChange`): the p2m is read by the domain's checks, not by its lists. */
function p2mWritten(): void {
  stateChanged(READ_BY.rest);
}

/** A virtual CPU. */
export class Vcpu {
  /** The domain the vCPU belongs to. */
  readonly domain: Domain;
  /** Index of the vCPU in its domain, from 0. */
  readonly id: number;
  private work: PendingOperation | undefined;

  constructor(domain: Domain, id: number) {
    this.domain = domain;
    this.id = id;
  }

  /**
   * Map or unmap work deferred to this vCPU, done by `Machine.processPending`; undefined when there is
   * none. Setting or clearing it updates the machine's record of it (`Domain.pendingVcpus`): this
   * setter is the only way to change it, so the record cannot drift.
   */
  get pending(): PendingOperation | undefined {
    return this.work;
  }

  set pending(operation: PendingOperation | undefined) {
    stateChanged(READ_BY.rest);
    const previous = this.work?.device;
    this.work = operation;
    this.domain.pendingVcpus.changed(this, previous, operation?.device);
  }

  /** `d<domain>v<vcpu>`, as Xen prints it. */
  get name(): string {
    return `d${this.domain.id}v${this.id}`;
  }
}

/** A domain. */
export class Domain {
  /** Domain id: 0 for the hardware domain, 1 and up for guests, `0x7ff2` for dom_xen. */
  readonly id: number;
  /** Hardware domain, guest or dom_xen. */
  readonly kind: DomainKind;
  /** The domain's guest-frame → machine-frame map, where BARs are mapped. */
  readonly p2m: P2m;
  /** Machine frames the domain may map (Xen's `iomem_caps`). */
  readonly iomem: RangeSet<Mfn>;
  /** The domain's vCPUs, by id. */
  readonly vcpus: Vcpu[] = [];
  /**
   * Devices owned, in the order they joined the domain (the oldest first). Xen's `d->pdev_list` holds
   * the same devices newest first: every place that links a device in uses `list_add` (head
   * insertion: `pci_add_device`, `_setup_hwdom_pci_devices`, `_pci_hide_device` in
   * xen/drivers/passthrough/pci.c, and the IOMMUs' `reassign_device_ownership` / `reassign_device`),
   * so Xen's `for_each_pdev` walks this array from its end (`pdevList`).
   */
  readonly devices: PciDevice[] = [];
  /** Which guest slots (`0000:00:dd.0`) are in use. */
  readonly virtualSlots: boolean[] = new Array<boolean>(VPCI_MAX_VIRT_DEV).fill(false);
  /**
   * The device at each guest slot in use (`virtualSlots`), set and cleared with it by the machine's
   * `vpci_assign_device` / `vpci_deassign_device`: a guest's access finds the device it addresses
   * here instead of walking `devices` (Xen's `translate_virtual_device`), which would cost a guest of
   * 32 devices four times what one of 8 pays on every access.
   * @internal
   */
  readonly slotDevices: (PciDevice | undefined)[] = new Array<PciDevice | undefined>(VPCI_MAX_VIRT_DEV).fill(
    undefined,
  );
  /**
   * The domain's MTRRs (Xen keeps them per vCPU and reads the accessing vCPU's, else vCPU 0's: one
   * set for all here). Default: disabled, everything UC, as a domU's vCPU starts
   * (`hvm_vcpu_cacheattr_init`); the machine gives the hardware domain a copy of the host's.
   */
  readonly mtrr: MtrrState;
  /**
   * The domain has an IOMMU context (Xen's `is_iommu_enabled(d)`, `XEN_DOMCTL_CDF_iommu`): only then
   * can devices be assigned to it, and EPT memory types follow its MTRRs rather than WB.
   */
  readonly iommu: boolean;
  /**
   * Xen's rangeset calls on the BAR sets of the devices this domain owns (dom_xen's hidden devices
   * count for the hardware domain, as `modify_bars` walks them there), over the replay: see
   * `RangesetOps` and `countRangesetOps`.
   */
  readonly rangesetOps: RangesetOps = noRangesetOps();
  /**
   * The vCPUs with pending work, of every domain of the machine this domain belongs to (one record,
   * shared by its domains: a domain made alone has its own), kept by `Vcpu.pending`'s setter.
   */
  readonly pendingVcpus: PendingVcpus<Vcpu, PciDevice>;
  private crashedHere = false;

  constructor(
    id: number,
    kind: DomainKind,
    vcpus: number,
    p2m: P2mOptions = {},
    mtrr = new MtrrState(),
    iommu = true,
    pendingVcpus = new PendingVcpus<Vcpu, PciDevice>(),
  ) {
    this.id = id;
    this.kind = kind;
    this.pendingVcpus = pendingVcpus;
    this.p2m = new P2m(p2m);
    this.p2m.onChange = p2mWritten;
    this.mtrr = mtrr;
    this.iommu = iommu;
    this.iomem = new RangeSet<Mfn>({ name: `d${id} iomem`, hex: true });
    for (let i = 0; i < vcpus; i++) this.vcpus.push(new Vcpu(this, i));
  }

  /**
   * The domain's devices in the order of Xen's `d->pdev_list`, which `for_each_pdev` walks: the device
   * that joined the domain last first (`devices` from its end; see there). A new array each call.
   */
  pdevList(): PciDevice[] {
    return this.devices.slice().reverse();
  }

  /** The domain was crashed, by vPCI or by a p2m operation. */
  get crashed(): boolean {
    return this.crashedHere || this.p2m.crashed;
  }

  /** Xen's `domain_crash`. */
  crash(): void {
    this.crashedHere = true;
  }

  /** dom_xen or dom_io: a pseudo-domain that owns devices but runs nothing and has no vPCI. */
  get isPseudo(): boolean {
    return this.kind === 'dom_xen' || this.kind === 'dom_io';
  }

  /** Whether this is the hardware domain (dom0), whose BARs are mapped at their host addresses. */
  get isHardware(): boolean {
    return this.kind === 'hardware';
  }
}

/**
 * Xen's calls on the rangesets vPCI keeps per BAR (`bar->mem`), counted where Xen makes them
 * (xen/drivers/vpci/header.c, vpci.c, x86 pci.c), not where the engine happens to: the engine's own
 * sets (the hardened `withheld`, rollback and `mapVfBarRanges` whole-range sets) are not counted, nor `rangeset_is_empty` (a list
 * test, no lock). Under a `Policy` switch that changes `modify_bars`, the changed code's calls on the
 * BAR sets are counted at the same places.
 */
export interface RangesetOps {
  /** `rangeset_new`: `bar_add_rangeset` in `vpci_init_header`, for each memory BAR slot and the ROM. */
  new: number;
  /** `rangeset_add_range`: `modify_bars` puts each BAR that changes into its set. */
  addRange: number;
  /**
   * `rangeset_remove_range`: `modify_bars` taking out a higher BAR's frames from the lower BARs'
   * sets, the host memory map (x86 `pci_sanitize_bar_memory`: one call per e820 entry with a size),
   * the MSI-X table and PBA pages, and the frames of other enabled BARs that overlap.
   */
  removeRange: number;
  /**
   * `rangeset_overlaps_range`: `modify_bars`' overlap loop asks it of all 7 BAR slots of the device
   * for every enabled BAR of the domain's devices (and dom_xen's, for the hardware domain).
   */
  overlapsRange: number;
  /** `rangeset_consume_ranges` calls: `vpci_process_pending` and `apply_map`, once per non-empty set. */
  consumeRanges: number;
  /** Ranges those calls used up (`destroy_range` inside `rangeset_consume_ranges`). */
  rangesConsumed: number;
  /** `rangeset_purge`: `vpci_process_pending` empties the non-empty sets when a map or unmap fails. */
  purge: number;
  /** `rangeset_destroy`: `vpci_deassign_device` frees the sets (the slots that have one). */
  destroy: number;
}

/** A `RangesetOps` with every count 0. */
export function noRangesetOps(): RangesetOps {
  return {
    new: 0,
    addRange: 0,
    removeRange: 0,
    overlapsRange: 0,
    consumeRanges: 0,
    rangesConsumed: 0,
    purge: 0,
    destroy: 0,
  };
}

/** A device's share of Xen's MMIO work (`PciDevice.xenCost`). */
export interface DeviceXenCost extends MmioCost {
  /** Times `vpci_process_pending` returned -ERESTART (preempted) for the device's work. */
  continuations: number;
  /** Xen's rangeset calls on the device's BAR sets, whichever domain owned it (`RangesetOps`). */
  readonly rangesets: RangesetOps;
}

/** A PCI function on the host. */
export class PciDevice {
  // The fields a config access reads (`hw`, `owner`, `state`, `extCfg`) come first: V8 lays an
  // object's fields out in the order they are declared, and over thousands of devices an access meets
  // the device cold, so the fewer cache lines those fields span, the fewer misses (the scale row).
  /** The physical function behind it: its configuration space as the hardware holds it. */
  readonly hw: PhysicalDevice;
  private owner: Domain | undefined;
  private state: VpciState | undefined;
  /**
   * Xen's `pdev->ext_cfg` (`pci_check_extcfg`): Xen can reach the extended configuration space (the
   * device has one and MMCFG covers its bus). Off, Xen reads it as all-ones and drops writes.
   */
  extCfg: boolean;
  /** The function's host address. */
  readonly sbdf: Sbdf;
  /** `ssss:bb:dd.f`. */
  readonly name: string;

  /** Owner; undefined until the hardware domain is set up. */
  get domain(): Domain | undefined {
    return this.owner;
  }

  set domain(value: Domain | undefined) {
    stateChanged();
    this.owner = value;
  }

  /** vPCI state while assigned to a domain with vPCI. */
  get vpci(): VpciState | undefined {
    return this.state;
  }

  set vpci(value: VpciState | undefined) {
    stateChanged();
    this.state = value;
  }
  /** The BARs the registers decoded after `barWrites` BAR register writes (see `hostBars`). */
  decodedBars: { readonly barWrites: number; readonly bars: readonly Bar[] } | undefined;
  /**
   * What vPCI's deferred work for this device has cost Xen so far, whichever domain it mapped into:
   * the p2m calls and leaves (`MmioCost`) of its `map_range` calls, the continuations
   * (`-ERESTART`: `vpci_process_pending` preempted, to be called again) and the rangeset calls.
   */
  readonly xenCost: DeviceXenCost = {
    mapCalls: 0,
    unmapCalls: 0,
    leaves4K: 0,
    leaves2M: 0,
    leaves1G: 0,
    continuations: 0,
    rangesets: noRangesetOps(),
  };
  /** Xen's `pdev->quarantine`: made assignable (given to dom_io); cleared when back with dom0. */
  quarantine = false;
  /** Xen's `pdev->broken`: a phantom-function assignment failed and could not be rolled back. */
  broken = false;
  /** Xen's `phantom_stride` (0: no phantom functions), fixed when the device is added. */
  readonly phantomStride: number;
  /** Xen's `pdev->ignore_bars` (`apply_quirks`): vPCI never sizes, traps or maps its BARs. */
  readonly ignoreBars: boolean;
  /** SR-IOV: the physical function of a virtual function (Xen's `pdev->pf_pdev`, 8fe330a4da). */
  physfn: PciDevice | undefined;
  /** SR-IOV: the VF's index n (routing ID `PF + First VF Offset + n × VF Stride`). */
  vfIndex = 0;
  /**
   * SR-IOV: a physical function's virtual functions, in the order they were added (VF order). Xen's
   * `pdev->vf_list` holds them the other way round: `pci_add_device` links each in at the head.
   */
  readonly virtfns: PciDevice[] = [];
  /**
   * SR-IOV: a physical function's VF BAR sizes by slot (Xen's `pdev->physfn.vf_rlen`), 0 where
   * not sized. `pci_add_device` sizes them when the PF is added with VF Enable and VF MSE both clear
   * (else it warns, `sriov-vfs-enabled-at-add`, and leaves them 0); the series' `size_vf_bars`
   * sizes them again at VF MSE. x86's `read_pci_mem_bar` finds a VF's MSI-X table with them.
   */
  readonly vfRlen: bigint[] = Array.from({ length: 6 }, () => 0n);
  /**
   * What the invariant checks keep for this device (device-check-state.ts), made when they first ask:
   * one field read where each of their caches searched a table keyed by the device. Typed `object`
   * here, as the checks' modules import this one.
   * @internal
   */
  checkState: object | undefined = undefined;

  constructor(hw: PhysicalDevice, quirks: { phantomStride?: number; ignoreBars?: boolean } = {}) {
    this.hw = hw;
    this.sbdf = hw.sbdf;
    this.name = formatSbdf(hw.sbdf);
    this.phantomStride = quirks.phantomStride ?? 0;
    this.ignoreBars = quirks.ignoreBars ?? false;
    this.extCfg = hw.extendedConfig;
  }
}
