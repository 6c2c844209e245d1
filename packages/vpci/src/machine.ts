/**
 * The machine: host memory map, CPU vendor, IOMMU, policy, domains, devices and vCPUs, and the entry
 * points a guest's config-space accesses and the toolstack's device assignment come through.
 */
import {
  armP2mAddressBits,
  gfn,
  hardwareDomainMtrr,
  InvalidArgumentError,
  type MemoryType,
  type Mfn,
  MtrrState,
  mfn,
  P2M_ADDRESS_BITS,
  type P2mOptions,
} from '@vpci/p2m';
import { RangeSet, type Result } from '@vpci/rangeset';
import { ARCHES, type Arch, type GuestVpci, guestVpciFor } from './arch.js';
import {
  type HostBridge,
  hostBridgeFrames,
  type ResolvedHostBridge,
  resolveHostBridges,
} from './arm-pci-host.js';
import { type CapabilityErrno, initCapabilities, reinitExtCapabilities } from './capabilities.js';
import { allOnes, checkAccessShape, vpciAccessAllowed } from './config-access.js';
import { type EngineContext, ruleSetMapsDevice } from './context.js';
import { hostFrameRange, VpciState } from './device.js';
import { DeviceMemory } from './device-memory.js';
import {
  type AccessorRef,
  DOMID_IO,
  DOMID_XEN,
  Domain,
  PciDevice,
  type Vcpu,
  VPCI_MAX_VIRT_DEV,
} from './domain.js';
import { EnabledBarIndex } from './enabled-bars.js';
import type { VpciEvent } from './events.js';
import { type DeviceSpec, PhysicalDevice } from './hardware.js';
import { vpciInitHeader } from './header.js';
import { HostBarIndex } from './host-bar-index.js';
import { InvariantCaches } from './invariants.js';
import { type IommuErrno, IommuFaults, phantomFunctions, phantomStride } from './iommu.js';
import { type MemoryTypeAnswer, memoryTypeOf } from './memory-type.js';
import { checkMmioAccess, type MmioResult, mmioAccess } from './mmio.js';
import { type ModifyBarsErrno, modifyBars } from './modify-bars.js';
import { resetInitialMsixState } from './msix.js';
import { decodedBars, hostBarFrames, hostBars, mappedByOtherDomain } from './ownership.js';
import { PCI_CFG_SPACE_SIZE, PCI_COMMAND_MEMORY } from './pci-regs.js';
import { type PendingResult, processPending } from './pending.js';
import { PendingVcpus } from './pending-vcpus.js';
import { type Policy, type Profile, policyFor } from './policy.js';
import { ignoresBars } from './quirks.js';
import { countRangesetOps, purgeBarSets } from './rangeset-ops.js';
import { type HardwareAccess, sharedRegistersOf } from './registers.js';
import type { RuleSet, RuleSetName } from './rule-set.js';
import { ruleSetFor } from './rule-sets.js';
import { formatSbdf, makeSbdf, type Sbdf, sbdfKey, toSbdf } from './sbdf.js';
import { sizePfVfBars, unmapVirtualFunctions } from './sriov.js';
import { keepVfDecoding } from './sriov-decoding.js';
import { stateChanged } from './state-generation.js';

/** One entry of the host memory map (e820): `size` bytes at `addr`. */
export interface E820Entry {
  /** Start address in bytes. */
  readonly addr: bigint;
  /** Length in bytes. */
  readonly size: bigint;
  /** The e820 type; the engine treats every type alike (see `Machine.e820Frames`). */
  readonly type: 'ram' | 'reserved' | 'acpi' | 'nvs' | 'unusable';
}

/** How a machine is built. */
export interface MachineOptions {
  /**
   * The architecture whose Xen build the engine follows (arch.ts): `x86` or `arm`. Not given: x86,
   * with guest vPCI assumed (see `x86GuestVpci`), as before the option existed.
   */
  readonly arch?: Arch;
  /**
   * x86 only: guests get vPCI, anticipating x86 domU vPCI support, which Xen staging does not have
   * (`emulation_flags_ok` refuses `X86_EMU_VPCI` for a domU). Default: false with `arch: 'x86'`, true
   * (assumed) when `arch` is not given, so callers that predate `arch` keep their behaviour.
   */
  readonly x86GuestVpci?: boolean;
  /**
   * Arm only: the PCI host bridges (segment, buses, windows). Arm's `pci_check_bar` maps a BAR only
   * inside a window of its device's bridge, and the hardware domain is permitted the windows' frames.
   */
  readonly hostBridges?: readonly HostBridge[];
  /**
   * Whose rules decide what the header writes do to the mappings (rule-set.ts): `xen` (default).
   * The profile and its switches are Xen's; the `xen` and `hardened` profiles both run the `xen` rules.
   */
  readonly rules?: RuleSetName;
  /** `xen` (default) or `hardened`. */
  readonly profile?: Profile;
  /** Individual safer behaviours, overriding the profile's. */
  readonly policy?: Partial<Policy>;
  /** CPU vendor; decides the memory-type rules (default `intel`). x86 only: refused with `arch: 'arm'`. */
  readonly vendor?: 'intel' | 'amd';
  /**
   * An IOMMU is enabled (Xen's `iommu_enabled`; default true): the hardware domain then has an IOMMU
   * context, and guests have one unless created without (`GuestOptions.iommu`).
   */
  readonly iommu?: boolean;
  /**
   * The host's physical address width as Xen reads it for HAP (`hap_paddr_bits`: CPUID 0x80000008,
   * the guest-physical size in EAX[23:16], else the physical size in EAX[7:0]), 36 … 52 bits, default
   * 48. It bounds the machine frames the hardware domain may map; every domain's p2m holds guest
   * frames below 2^48 whatever it is (`P2M_ADDRESS_BITS`).
   */
  readonly physAddrBits?: number;
  /** The host memory map. */
  readonly e820?: readonly E820Entry[];
  /** vCPUs of the hardware domain (default 2). */
  readonly hardwareVcpus?: number;
  /**
   * Options of the hardware domain's p2m (fault injection, superpages; `hap: false` is Xen's
   * `dom0=shadow`).
   */
  readonly hardwareP2m?: P2mOptions;
  /** The host's MTRRs (default: enabled, everything WB). x86 only: refused with `arch: 'arm'`. */
  readonly hostMtrr?: MtrrState;
  /**
   * Xen's `iommu_quarantine` (default true, as Xen's default `IOMMU_QUARANTINE_BASIC`; false is
   * `iommu=no-quarantine`): a device leaving a guest goes to dom_io, not back to the hardware domain.
   */
  readonly quarantine?: boolean;
  /**
   * The hardware domain's MTRRs, as dom0 reprogrammed them. Default: the copy of `hostMtrr` its vCPUs
   * start with (`hvm_vcpu_cacheattr_init`, see `hardwareDomainMtrr`).
   */
  readonly hardwareMtrr?: MtrrState;
  /**
   * HAP may use 2 MiB leaves (Xen's `hap_has_2mb`: the hardware has them and the `hap_2mb` command-line
   * option is not off); a global setting, so the default of every domain's p2m. Default true.
   */
  readonly superpages2M?: boolean;
}

/** Options of a new guest. */
export interface GuestOptions {
  /** Domain id (default: the next free one from 1). */
  readonly id?: number;
  /** vCPUs (default 1). */
  readonly vcpus?: number;
  /** Options of the guest's p2m (fault injection, superpages). */
  readonly p2m?: P2mOptions;
  /** The guest's MTRRs, as its firmware set them up (default: disabled, everything UC). */
  readonly mtrr?: MtrrState;
  /**
   * The guest has an IOMMU context (`XEN_DOMCTL_CDF_iommu`). Default: whether the host has one. A
   * host without an IOMMU refuses a guest that asks for one (domain creation's EINVAL, "IOMMU
   * requested but not available"): this throws.
   */
  readonly iommu?: boolean;
}

/**
 * Outcome of assigning or removing a device: refused (`EBUSY` for a device neither the hardware
 * domain nor dom_io owns — a guest's, or a hidden one — or one that shares a page another domain maps;
 * `EBADF` for a broken device; `EINVAL` for de-assigning a device no guest or dom_io owns;
 * `EOPNOTSUPP` for a guest without an IOMMU), no virtual slot (`EOPNOTSUPP` for a function other than 0,
 * `ENOSPC`), a capability that cannot be hidden (`ENODEV`), an IOMMU context failure (`IommuErrno`),
 * or the failure of the vPCI set-up (`InitHeaderResult`, the capabilities') or of the unmap on
 * leaving (`ModifyBarsResult`).
 */
export type AssignResult = Result<AssignErrno>;

/**
 * Why an assignment was refused: modify_bars' errors, a capability set-up that failed (`ENODEV`,
 * `ERANGE`, …: one that could not be hidden included), no vPCI / no free slot for the device, a
 * broken device (`EBADF`) or the IOMMU's refusal.
 */
export type AssignErrno = ModifyBarsErrno | CapabilityErrno | IommuErrno | 'EOPNOTSUPP' | 'ENOSPC' | 'EBADF';

/** The machine. Implements the context the header code runs in. */
export class Machine implements EngineContext {
  /** The architecture whose Xen build the engine follows. */
  readonly arch: Arch;
  /** Whether guests get vPCI, and why (x86 needs `x86GuestVpci`, assumed for callers without `arch`). */
  readonly guestVpci: GuestVpci;
  /** Arm: the PCI host bridges, defaults filled in (empty on x86). */
  readonly hostBridges: readonly ResolvedHostBridge[];
  /** Whose rules decide what the header writes do to the mappings. */
  readonly rules: RuleSet;
  /** The profile the machine was built with. */
  readonly profile: Profile;
  /** The safer behaviours in force: the profile's, with the overrides given. */
  readonly policy: Policy;
  /** CPU vendor, which decides the memory-type rules. */
  readonly vendor: 'intel' | 'amd';
  /** Whether an IOMMU is enabled. */
  readonly iommu: boolean;
  /** The host's physical address width in bits (36 … 52): the hardware domain may map below it. */
  readonly physAddrBits: number;
  /** HAP may use 2 MiB leaves (`hap_has_2mb`): the default of every domain's p2m. */
  readonly superpages2M: boolean;
  /** The event log: every outcome Xen would log, in order. */
  readonly events: VpciEvent[] = [];
  /** The host memory map. */
  readonly e820: readonly E820Entry[];
  /** Host frames covered by an entry of the host memory map (e820), every type. */
  readonly e820Frames: RangeSet<Mfn>;
  /** Entries of `e820` with a size (`EngineContext.e820Removals`). */
  readonly e820Removals: number;
  /** The host's MTRRs (Xen's `mtrr_state`). */
  readonly hostMtrr: MtrrState;
  /**
   * Machine frames that are special pages (Xen-heap: grant table, shared info): EPT gives them WB
   * with iPAT. Whoever puts such a page in a p2m adds it here.
   */
  readonly specialPages = new RangeSet<Mfn>({ name: 'special pages', hex: true });
  /** The hardware domain (dom0). */
  readonly hardwareDomain: Domain;
  /** dom_xen, which owns the devices hidden from dom0; their BARs map into dom0's p2m. */
  readonly domXen: Domain;
  /** dom_io, which owns quarantined devices: no vPCI; the hardware domain reaches them on the hardware. */
  readonly domIo: Domain;
  /** Xen's `iommu_quarantine`: devices leaving a guest go to dom_io. */
  readonly quarantine: boolean;
  /** IOMMU context failures to inject (see `IommuFaults.failNext`). */
  readonly iommuFaults = new IommuFaults();
  /** Xen's `ro_map`: the addresses `pci_ro_device` marked read-only (`sbdfKey`s). */
  private readonly readOnlyDevices = new Set<number>();
  /** False while the hardware domain is being built (before `boot`): mappings are then applied at once. */
  systemActive = false;
  /** What the devices' memory BARs hold (what direct and MSI-X page accesses read and write). */
  readonly deviceMemory = new DeviceMemory();
  /**
   * What `checkInvariants` remembers of this machine between checks.
   * @internal
   */
  readonly invariantCaches = new InvariantCaches();
  /**
   * The vCPUs of every domain with pending map/unmap work, in domain then vCPU order, and per device
   * the vCPUs holding work on it: kept as each vCPU's work is set or cleared (`Vcpu.pending`).
   */
  readonly pendingVcpus = new PendingVcpus<Vcpu, PciDevice>();
  /**
   * See `EngineContext.enabledBars`; told whenever a device joins or leaves a domain's list or gets a
   * new vPCI state, so that it is kept as devices come and go. A test may take it away to compare
   * with Xen's walk.
   * @internal
   */
  readonly enabledBars: EnabledBarIndex | undefined = new EnabledBarIndex();
  /**
   * See `EngineContext.hostBarIndex`; told whenever a device is plugged or unplugged (the rest it
   * watches itself). A test may take it away to compare with the walk over every device.
   * @internal
   */
  readonly hostBarIndex: HostBarIndex | undefined = new HostBarIndex();
  /** See `EngineContext.packVfDecoding`. @internal */
  readonly packVfDecoding: boolean = true;
  private readonly deviceMap = new Map<number, PciDevice>();
  /** Each device's place in `deviceMap`'s order (the order devices were plugged in). */
  private readonly plugOrder = new WeakMap<PciDevice, number>();
  private plugs = 0;
  /** MMCFG regions the hardware domain reported, by `segment:start-end`: usable or not. */
  private readonly mmcfgRegions = new Map<string, boolean>();
  private readonly domainMap = new Map<number, Domain>();
  /** `devices()` and `domains()` in order, kept until a device or domain comes or goes. */
  private sortedDevices: PciDevice[] | undefined;
  /** See `EngineContext.deviceListVersion`. */
  private deviceListChanges = 0;
  /** See `accessTargetsVersion`. */
  private accessTargetChanges = 0;
  private sortedDomains: Domain[] | undefined;
  /** The vCPU whose access is being handled: deferred work lands on it. */
  private readonly accessor: AccessorRef;
  /** `resolve`'s answer, one object for every access. */
  private readonly resolved: { device: PciDevice | undefined; hardware: HardwareAccess } = {
    device: undefined,
    hardware: NO_HARDWARE,
  };

  constructor(options: MachineOptions = {}) {
    this.arch = options.arch ?? 'x86';
    if (!ARCHES.includes(this.arch)) throw new InvalidArgumentError('arch', this.arch, "'x86' or 'arm'");
    if (options.x86GuestVpci !== undefined && typeof options.x86GuestVpci !== 'boolean')
      throw new InvalidArgumentError('x86GuestVpci', options.x86GuestVpci, 'true or false');
    if (this.arch === 'arm' && options.x86GuestVpci !== undefined)
      throw new InvalidArgumentError(
        'x86GuestVpci',
        options.x86GuestVpci,
        "no value with arch 'arm' (x86 only)",
      );
    // What only x86 has (the vendor's EPT/NPT rules, MTRRs, EPT/NPT 2M leaves) would be ignored on
    // Arm: refused instead.
    for (const name of ['vendor', 'hostMtrr', 'hardwareMtrr', 'superpages2M'] as const)
      if (this.arch === 'arm' && options[name] !== undefined)
        throw new InvalidArgumentError(name, options[name], "no value with arch 'arm' (x86 only)");
    if (this.arch === 'x86' && options.hostBridges !== undefined)
      throw new InvalidArgumentError('hostBridges', 'with x86', "host bridges with arch 'arm' only");
    this.guestVpci = guestVpciFor(options.arch, options.x86GuestVpci);
    this.hostBridges = Object.freeze(resolveHostBridges(options.hostBridges ?? []));
    this.rules = ruleSetFor(options.rules ?? 'xen');
    this.profile = options.profile ?? 'xen';
    this.policy = policyFor(this.profile, options.policy ?? {});
    this.vendor = options.vendor ?? 'intel';
    if (this.vendor !== 'intel' && this.vendor !== 'amd')
      throw new InvalidArgumentError('vendor', this.vendor, "'intel' or 'amd'");
    this.iommu = options.iommu ?? true;
    this.hostMtrr = options.hostMtrr ?? new MtrrState({ enabled: true, defaultType: 'WB' });
    if (!(this.hostMtrr instanceof MtrrState))
      throw new InvalidArgumentError('hostMtrr', this.hostMtrr, 'an MtrrState');
    this.superpages2M = options.superpages2M ?? true;
    if (typeof this.superpages2M !== 'boolean')
      throw new InvalidArgumentError('superpages2M', this.superpages2M, 'true or false');
    this.physAddrBits = options.physAddrBits ?? 48;
    if (!Number.isInteger(this.physAddrBits) || this.physAddrBits < 36 || this.physAddrBits > 52)
      throw new InvalidArgumentError('physAddrBits', this.physAddrBits, 'an integer in 36 … 52');
    if (this.arch === 'arm') armP2mAddressBits(this.physAddrBits); // throws for a size Arm64 lacks
    if (this.arch === 'arm' && (options.e820?.length ?? 0) > 0)
      throw new InvalidArgumentError('e820', 'with arch arm', 'no e820 on Arm (an x86 memory map)');
    this.e820 = Object.freeze([...(options.e820 ?? [])]);
    this.e820Frames = new RangeSet<Mfn>({ name: 'e820', hex: true });
    this.e820.forEach((entry, i) => {
      if (
        typeof entry.addr !== 'bigint' ||
        typeof entry.size !== 'bigint' ||
        entry.addr < 0n ||
        entry.size < 0n ||
        entry.addr + entry.size > 1n << 64n
      ) {
        throw new InvalidArgumentError(`e820[${i}]`, entry, '{ addr, size } bigints within 2^64');
      }
      if (entry.size > 0n) this.e820Frames.addRange(...hostFrameRange(entry.addr, entry.size));
    });
    this.e820Removals = this.e820.filter((entry) => entry.size > 0n).length;
    // hvm_vcpu_cacheattr_init: the hardware domain's vCPUs start with a copy of the host's MTRRs.
    const hardwareMtrr = options.hardwareMtrr ?? hardwareDomainMtrr(this.hostMtrr);
    if (!(hardwareMtrr instanceof MtrrState))
      throw new InvalidArgumentError('hardwareMtrr', hardwareMtrr, 'an MtrrState');
    // create_dom0: XEN_DOMCTL_CDF_iommu whenever iommu_enabled.
    this.hardwareDomain = this.addDomain(
      new Domain(
        0,
        'hardware',
        checkVcpus(options.hardwareVcpus ?? 2),
        this.p2mOptions(options.hardwareP2m),
        hardwareMtrr,
        this.iommu,
        this.pendingVcpus,
      ),
    );
    if (this.arch === 'arm') {
      // Arm: dom0 is permitted what the device tree gives it; of PCI, its host bridges' windows.
      for (const [first, last] of hostBridgeFrames(this.hostBridges))
        this.hardwareDomain.iomem.addRange(first, last);
    } else {
      // dom0_setup_permissions: "initially permitted full I/O capabilities", up to the address width.
      const bits = domainMaxPaddrBits(this.physAddrBits, this.hardwareDomain.p2m.hap);
      this.hardwareDomain.iomem.addRange(mfn(0), mfn(2 ** (bits - 12) - 1));
    }
    this.domXen = this.addDomain(
      new Domain(DOMID_XEN, 'dom_xen', 0, {}, new MtrrState(), true, this.pendingVcpus),
    );
    // dom_io has an IOMMU context whenever the host has an IOMMU (iommu_setup).
    this.domIo = this.addDomain(
      new Domain(DOMID_IO, 'dom_io', 0, {}, new MtrrState(), this.iommu, this.pendingVcpus),
    );
    this.quarantine = options.quarantine ?? true;
    if (typeof this.quarantine !== 'boolean')
      throw new InvalidArgumentError('quarantine', this.quarantine, 'true or false');
    this.accessor = { current: this.hardwareDomain.vcpus[0]! };
  }

  // ---- topology ------------------------------------------------------------------------------

  /** See `EngineContext.hardwareDomainOwnsEveryDevice`. @internal */
  get hardwareDomainOwnsEveryDevice(): boolean {
    return this.ownedByHardwareDomains() === this.deviceMap.size;
  }

  /** How many devices dom0's and dom_xen's lists hold (their lengths, not a walk). */
  private ownedByHardwareDomains(): number {
    return this.hardwareDomain.devices.length + this.domXen.devices.length;
  }

  /** Counts the devices added and removed: a listing of `devices()` holds while it stays the same. */
  get deviceListVersion(): number {
    return this.deviceListChanges;
  }

  /**
   * Counts the changes that can take away a device a config access reached: a device removed (a VF
   * included) and a vPCI state taken away (and with it a guest's virtual slot). While it stands, a
   * domain's vCPU and the device `findDevice` or `findGuestDevice` found are what they would find
   * again, so a caller may keep them and hand them to `configWriteIfInertTo` (the replay keeps them
   * per trace key). Nothing else can: a look-up that found nothing is not kept, and what only adds an
   * answer (a device plugged, a domain made, a vPCI state set up at a free slot) changes none found;
   * domains are never removed, their ids never reused, their vCPUs made with them; a device's owner
   * changes only with its vPCI state taken away first (`assignTo`, `deassignFrom`, `removeDevice`),
   * and the hardware domain's look-up is by address alone (the owner is read at each access).
   */
  get accessTargetsVersion(): number {
    return this.accessTargetChanges;
  }

  /** Every device, ordered by SBDF (a copy: the caller may change it). */
  devices(): PciDevice[] {
    this.sortedDevices ??= [...this.deviceMap.values()].sort((a, b) => sbdfKey(a.sbdf) - sbdfKey(b.sbdf));
    return this.sortedDevices.slice();
  }

  /** The domains, by id (a copy). */
  domains(): Domain[] {
    this.sortedDomains ??= [...this.domainMap.values()].sort((a, b) => a.id - b.id);
    return this.sortedDomains.slice();
  }

  /** The device at `sbdf`; throws if there is none. */
  device(sbdf: Sbdf | string): PciDevice {
    const address = toSbdf(sbdf);
    const device = this.deviceMap.get(sbdfKey(address));
    if (device === undefined)
      throw new InvalidArgumentError('sbdf', formatSbdf(address), 'the address of a device on the machine');
    return device;
  }

  /** The device at `sbdf`, or undefined. */
  findDevice(sbdf: Sbdf | string): PciDevice | undefined {
    return this.deviceMap.get(sbdfKey(toSbdf(sbdf)));
  }

  /**
   * The device `guest` sees at `sbdf` (the virtual address it was given, `0000:00:dd.0`), or
   * undefined: what a guest's config access reaches (Xen's `translate_virtual_device`).
   */
  findGuestDevice(guest: Domain, sbdf: Sbdf | string): PciDevice | undefined {
    return this.guestDevice(guest, toSbdf(sbdf));
  }

  /** The domain `id`, or undefined. */
  findDomain(id: number): Domain | undefined {
    return this.domainMap.get(id);
  }

  /** The domain `id`; throws if there is none. */
  domain(id: number): Domain {
    const domain = this.domainMap.get(id);
    if (domain === undefined)
      throw new InvalidArgumentError(
        'domain',
        id,
        `an existing domain id (${[...this.domainMap.keys()].join(', ')})`,
      );
    return domain;
  }

  /** vCPU `vcpu` of domain `domain`. */
  vcpu(domain: number, vcpu = 0): Vcpu {
    const found = this.domain(domain).vcpus[vcpu];
    if (found === undefined)
      throw new InvalidArgumentError(
        'vcpu',
        vcpu,
        `a vCPU of d${domain} (0 … ${this.domain(domain).vcpus.length - 1})`,
      );
    return found;
  }

  /**
   * Adds a physical device. Before `boot` it waits for the hardware domain's set-up; after, it is
   * hot-plugged into the hardware domain (Xen's `pci_add_device`). `hidden`: owned by dom_xen (the
   * hardware domain reaches it, as Xen's hidden devices). `readOnly`: Xen's `pci_ro_device` (implies
   * `hidden`): the address joins the segment's `ro_map`, so the device gets no vPCI
   * (`vpci_assign_device`: "No vPCI for r/o devices") and the hardware domain's writes to it are
   * dropped (`vpci_write`), with an `access-dropped` event; the mark outlives the device, as Xen's
   * `free_pdev` leaves `ro_map` alone. Under `refuseSubpageSharing` a device
   * hot-plugged with a BAR in a page another domain maps (or is about to) joins with no owner, with
   * an `assign-refused` event: no domain reaches it through vPCI and it cannot be assigned.
   */
  addDevice(
    device: DeviceSpec | PhysicalDevice,
    options: { readonly hidden?: boolean; readonly readOnly?: boolean } = {},
  ): PciDevice {
    const hw = device instanceof PhysicalDevice ? device : PhysicalDevice.fromSpec(device);
    const key = sbdfKey(hw.sbdf);
    if (this.deviceMap.has(key))
      throw new InvalidArgumentError('sbdf', formatSbdf(hw.sbdf), 'an address no other device has');
    if (options.readOnly === true) this.readOnlyDevices.add(key);
    return this.plug(hw, options.hidden === true || options.readOnly === true, undefined);
  }

  /**
   * Xen's `pci_add_device`: `alloc_pdev` (phantom stride, quirks, MSI-X state), a VF's links to its
   * PF (`pf_pdev`, `vf_list`: 4e18a39056), then the owner and vPCI.
   */
  private plug(
    hw: PhysicalDevice,
    hidden: boolean,
    physfn: { pf: PciDevice; index: number } | undefined,
  ): PciDevice {
    const key = sbdfKey(hw.sbdf);
    // alloc_pdev: the phantom stride and apply_quirks, read from the device as Xen finds it.
    const pdev = new PciDevice(hw, { phantomStride: phantomStride(hw), ignoreBars: ignoresBars(hw) });
    if (physfn !== undefined) {
      pdev.physfn = physfn.pf;
      pdev.vfIndex = physfn.index;
      physfn.pf.virtfns.push(pdev);
    }
    resetInitialMsixState(this.events, hw);
    if (physfn === undefined) sizePfVfBars(this.events, pdev);
    stateChanged();
    this.deviceMap.set(key, pdev);
    this.plugOrder.set(pdev, this.plugs++);
    this.hostBarIndex?.plugged(pdev);
    this.sortedDevices = undefined;
    this.deviceListChanges++;
    // Hardened: a device hot-plugged into a page another domain maps would be the hardware
    // domain's (or dom_xen's) under that domain's mapping: it joins with no owner.
    if (this.systemActive && this.refusedAsShared(pdev, this.hardwareDomain)) return pdev;
    if (hidden) this.setOwner(pdev, this.domXen);
    if (!this.systemActive) return pdev;
    if (hidden) this.setUpHardwareDevice(pdev);
    else this.hotPlugVpci(pdev);
    return pdev;
  }

  /**
   * Xen's `pci_add_device` for a device no domain owns (pci.c, the `!pdev->domain` branch): it joins
   * the hardware domain's list and gets vPCI (`vpci_assign_device`, which tears down what it set up
   * when it fails). On failure the device leaves the list again (`list_del`, `pdev->domain = NULL`),
   * "Setup of vPCI failed" is logged and the error goes back to dom0; the `pci_dev` stays allocated,
   * a VF on its PF's `vf_list`. So the device is nobody's: dom0 reaches its hardware (`vpci_write`
   * finds no `pci_dev` of its own), it can be unplugged, and it cannot be assigned
   * (`device_assigned`: EBUSY). Work its header set-up deferred is dropped by `vpci_process_pending`
   * (no vPCI state). Then `iommu_add_device` (with an IOMMU): the function's own context failing
   * (`iommuFaults`) undoes the same way, after `vpci_deassign_device`; a phantom function's is only
   * logged ("IOMMU: add … failed").
   */
  private hotPlugVpci(device: PciDevice): void {
    this.setOwner(device, this.hardwareDomain);
    const rc = this.assignVpci(device);
    if (!rc.ok) {
      this.moveOwner(device, undefined);
      this.events.push({
        kind: 'vpci-setup-failed',
        sbdf: device.name,
        domain: this.hardwareDomain.id,
        code: rc.code,
        hotPlug: true,
      });
      return;
    }
    if (!this.hardwareDomain.iommu) return; // iommu_add_device: !is_iommu_enabled(d)
    const own = this.iommuFaults.program(device.sbdf);
    if (!own.ok) {
      // As a failed set-up (`failAssign`): what the set-up mapped at once (a rule set's, whose VMM
      // takes the slots with the device) goes first; Xen's own set-up only deferred its map, which
      // `vpci_process_pending` drops.
      this.unmapLeaving(device);
      this.deassignVpci(device);
      this.moveOwner(device, undefined);
      this.events.push({ kind: 'iommu-add-failed', sbdf: device.name, device: device.name, code: own.code });
      return;
    }
    for (const phantom of phantomFunctions(device.sbdf, device.phantomStride)) {
      const added = this.iommuFaults.program(phantom);
      if (!added.ok)
        this.events.push({
          kind: 'iommu-add-failed',
          sbdf: formatSbdf(phantom),
          device: device.name,
          code: added.code,
        });
    }
  }

  /** A new guest domain. */
  createGuest(options: GuestOptions = {}): Domain {
    let id = options.id;
    if (id === undefined) for (id = 1; this.domainMap.has(id); id++);
    if (!Number.isInteger(id) || id < 1 || id >= DOMID_IO || this.domainMap.has(id)) {
      throw new InvalidArgumentError('id', id, 'an unused domain id in 1 … 0x7ff0');
    }
    const mtrr = options.mtrr ?? new MtrrState();
    if (!(mtrr instanceof MtrrState)) throw new InvalidArgumentError('mtrr', mtrr, 'an MtrrState');
    const iommu = options.iommu ?? this.iommu;
    if (typeof iommu !== 'boolean') throw new InvalidArgumentError('iommu', iommu, 'true or false');
    if (iommu && !this.iommu) {
      throw new InvalidArgumentError('iommu', iommu, 'false: the host has no IOMMU (Xen refuses the domain)');
    }
    return this.addDomain(
      new Domain(
        id,
        'guest',
        checkVcpus(options.vcpus ?? 1),
        this.p2mOptions(options.p2m),
        mtrr,
        iommu,
        this.pendingVcpus,
      ),
    );
  }

  /**
   * Builds the hardware domain: every device not hidden becomes its own and gets vPCI; BARs with
   * decoding on are mapped at once (Xen's `apply_map`). Then the system is active.
   */
  boot(): void {
    if (this.systemActive) throw new InvalidArgumentError('boot', 'again', 'one boot per machine');
    for (const device of this.devices()) this.setUpHardwareDevice(device);
    this.systemActive = true;
  }

  /** Gives domain `domain` permission to map machine frames `[first, last]` (Xen's iomem_permit). */
  permitIomem(domain: number, first: Mfn, last: Mfn): void {
    this.domain(domain).iomem.addRange(first, last);
  }

  /** Takes away the permission for machine frames `[first, last]`. */
  denyIomem(domain: number, first: Mfn, last: Mfn): void {
    this.domain(domain).iomem.removeRange(first, last);
  }

  /**
   * Assigns a device of the hardware domain or dom_io to guest `domain`, as the toolstack does (Xen's
   * `device_assigned` then `assign_device`): vPCI leaves the old owner (its mappings stay there unless
   * `unmapOnDeassign`), the IOMMU takes the function and its phantom functions, the guest is
   * permitted the BARs' machine frames, and vPCI is set up for the guest (virtual slot, decoding off).
   */
  assignDevice(sbdf: Sbdf | string, domain: number): AssignResult {
    this.requireBooted('assignDevice');
    const device = this.device(sbdf);
    const target = this.domain(domain);
    if (target.kind !== 'guest') throw new InvalidArgumentError('domain', domain, 'a guest domain');
    // iommu_do_domctl: a domain without an IOMMU context gets EOPNOTSUPP before the device is looked at.
    if (!target.iommu) return { ok: false, code: 'EOPNOTSUPP' };
    return this.assignTo(device, target);
  }

  /**
   * Makes a device assignable (`xl pci-assignable-add`: `XEN_DOMCTL_assign_device` to dom_io): it
   * leaves the hardware domain for dom_io, without vPCI, and is marked quarantined (`pdev->quarantine`)
   * so that it goes back to dom_io whenever it leaves a guest, whatever `quarantine` says.
   */
  quarantineDevice(sbdf: Sbdf | string): AssignResult {
    this.requireBooted('quarantineDevice');
    const device = this.device(sbdf);
    if (!this.domIo.iommu) return { ok: false, code: 'EOPNOTSUPP' }; // iommu_do_domctl
    return this.assignTo(device, this.domIo);
  }

  /**
   * Takes a device from its owner (Xen's `deassign_device`): from a guest it goes to dom_io when
   * quarantining (`iommu_quarantine` or the device's own `quarantine` mark), else back to the
   * hardware domain with vPCI set up again; from dom_io (`xl pci-assignable-remove`) it goes back to
   * the hardware domain and loses its quarantine mark.
   */
  deassignDevice(sbdf: Sbdf | string): AssignResult {
    this.requireBooted('deassignDevice');
    const device = this.device(sbdf);
    // iommu_do_domctl: without an IOMMU no domain has a context, so the domctl is refused first.
    if (!this.iommu) return { ok: false, code: 'EOPNOTSUPP' };
    this.settleBeforeMove();
    const owner = device.domain;
    if (owner === undefined || (owner.kind !== 'guest' && owner !== this.domIo))
      return { ok: false, code: 'EINVAL' };
    if (!owner.iommu) return { ok: false, code: 'EOPNOTSUPP' };
    return this.deassignFrom(device, owner);
  }

  /**
   * Xen's `pci_release_devices` (a dying domain gives up its devices): each device of guest `domain`
   * is de-assigned in the order of its `pdev_list` (`list_first_entry` each time: the device assigned
   * last goes first, as `reassign_device` links a device in at the list's head); one that fails stays
   * (Xen moves it to `failed_pdevs` and splices it back, in the same order). Returns the first error.
   */
  releaseDevices(domain: number): AssignResult {
    this.requireBooted('releaseDevices');
    const owner = this.domain(domain);
    if (owner.kind !== 'guest') throw new InvalidArgumentError('domain', domain, 'a guest domain');
    this.settleBeforeMove();
    let combined: AssignResult = { ok: true };
    for (const device of owner.pdevList()) {
      const rc = this.deassignFrom(device, owner);
      if (!rc.ok && combined.ok) combined = rc;
    }
    return combined;
  }

  /**
   * The device-reset hypercall (`PHYSDEVOP_pci_device_reset`, Xen's `vpci_reset_device`): the device
   * was reset by the hardware domain, so vPCI drops its state and sets it up again from the device
   * (`vpci_deassign_device` then `vpci_assign_device`) for the same owner. Mappings the old state had
   * made stay in the owner's p2m (unmapped first under `unmapOnDeassign`). A device of dom_xen or
   * dom_io is left alone (those domains have no vPCI).
   */
  resetDevice(sbdf: Sbdf | string): AssignResult {
    this.requireBooted('resetDevice');
    const device = this.device(sbdf);
    const owner = device.domain;
    if (owner === undefined || owner.isPseudo) return { ok: true };
    this.settleBeforeMove();
    const unmapped = this.unmapLeaving(device);
    if (!unmapped.ok) return unmapped;
    this.deassignVpci(device);
    return this.assignVpci(device);
  }

  /**
   * Removes a device from the machine (hot unplug, Xen's `pci_remove_device`). Under
   * `unmapOnDeassign` its enabled BARs are unmapped first, and if that fails the removal is refused
   * with the unmap's error (the device stays, still its owner's, its frames mapped as before):
   * removing it anyway would leave mappings that no device explains.
   */
  removeDevice(sbdf: Sbdf | string): AssignResult {
    const device = this.device(sbdf);
    if (device.virtfns.length > 0) {
      // An SR-IOV PF goes with its VFs (the later series text's `cleanup_sriov`: `map_vfs(pdev, 0)`,
      // then each VF removed, last first); a VF that stays (its unmap failed) keeps the PF.
      const toolstack = this.toolstackVcpu();
      unmapVirtualFunctions(this, toolstack, device);
      this.removeVirtualFunctions(device);
      if (device.virtfns.length > 0) return { ok: false, code: 'EBUSY' };
    }
    this.settleBeforeMove();
    // Under unmapOnDeassign an unmap that fails refuses the removal: the device stays.
    const unmapped = this.unmapLeaving(device);
    if (!unmapped.ok) return unmapped;
    this.deassignVpci(device);
    this.moveOwner(device, undefined);
    const pf = device.physfn;
    if (pf !== undefined) {
      // VFs go last first (removeVirtualFunctions): found from the end, each is a pop.
      pf.virtfns.splice(pf.virtfns.lastIndexOf(device), 1);
      this.events.push({ kind: 'vf-removed', sbdf: device.name, pf: pf.name });
    }
    stateChanged();
    this.deviceMap.delete(sbdfKey(device.sbdf));
    this.hostBarIndex?.unplugged(device);
    this.sortedDevices = undefined;
    this.deviceListChanges++;
    this.accessTargetChanges++;
    return { ok: true };
  }

  /**
   * SR-IOV (`EngineContext.addVirtualFunctions`): the VFs NumVFs brings up on `pf` join at their
   * routing IDs (possibly on higher bus numbers), each linked to `pf` and set up as a hot-plugged
   * device of the hardware domain (Xen's `pci_add_device` with `is_virtfn`; 8fe330a4da: the PF must
   * be known first, as it is here). A routing ID where a device already is is skipped, as Xen's
   * `pci_add_device` finds that device (`alloc_pdev` returns the one on `alldevs_list`) and only
   * updates its links; the VFs from the first whose routing ID is past 0xffff on have no bus to sit
   * on and are never brought up. Neither goes unsaid: a `vf-not-added` event each, with its reason
   * (one for all the VFs past the last bus, with their count). Work in proportion to the VFs: one
   * routing ID and one look-up each.
   */
  addVirtualFunctions(pf: PciDevice): void {
    const sriov = pf.hw.sriov;
    if (sriov === undefined) return;
    const pfRid = (pf.sbdf.bus << 8) | (pf.sbdf.dev << 3) | pf.sbdf.fn;
    const requested = sriov.requestedVfs;
    for (let n = 0; n < requested; n++) {
      const rid = sriov.vfRoutingIdAt(pfRid, n);
      if (rid === undefined) {
        this.events.push({
          kind: 'vf-not-added',
          sbdf: pf.name,
          index: n,
          count: requested - n,
          reason: 'past-last-bus',
        });
        return;
      }
      const sbdf = makeSbdf(pf.sbdf.seg, rid >> 8, (rid >> 3) & 0x1f, rid & 7);
      const there = this.deviceMap.get(sbdfKey(sbdf));
      if (there !== undefined) {
        this.events.push({
          kind: 'vf-not-added',
          sbdf: pf.name,
          index: n,
          count: 1,
          reason: 'routing-id-taken',
          other: there.name,
        });
        continue;
      }
      // Each add is its own hypercall: the toolstack's vCPU finished the previous VF's work first
      // (assignVpci), so each VF mapped on its way in is mapped whole.
      const vf = this.plug(PhysicalDevice.virtualFunction(pf.hw, n), false, { pf, index: n });
      this.events.push({ kind: 'vf-added', sbdf: vf.name, pf: pf.name, index: n });
    }
  }

  /** SR-IOV (`EngineContext.removeVirtualFunctions`): `pf`'s VFs are removed, last first. */
  removeVirtualFunctions(pf: PciDevice): void {
    for (const vf of [...pf.virtfns].reverse()) this.removeDevice(vf.sbdf);
  }

  /** The hardware domain's first vCPU, which the toolstack's hypercalls run on. */
  private toolstackVcpu(): Vcpu {
    return this.hardwareDomain.vcpus[0]!;
  }

  /**
   * The hardware domain tells Xen whether an MMCFG region is usable (`PHYSDEVOP_pci_mmcfg_reserved`,
   * `reserved` is `XEN_PCI_MMCFG_RESERVED`). Every region starts usable. When the state changes, each
   * device on `segment`'s buses `startBus … endBus` has its `extCfg` checked again
   * (`pci_check_extcfg`: reachable only through a usable region) and its extended capabilities set up
   * again (`vpci_reinit_ext_capabilities`, d734babf8b); a re-init that fails is not acted upon, as
   * in Xen. No change: nothing happens (`pci_mmcfg_reserved`'s "no change").
   */
  mmcfgReserved(segment: number, startBus: number, endBus: number, reserved: boolean): void {
    for (const [name, value, max] of [
      ['segment', segment, 0xffff],
      ['startBus', startBus, 0xff],
      ['endBus', endBus, 0xff],
    ] as const) {
      if (!Number.isInteger(value) || value < 0 || value > max)
        throw new InvalidArgumentError(name, value, `an integer in 0 … 0x${max.toString(16)}`);
    }
    if (endBus < startBus)
      throw new InvalidArgumentError('endBus', endBus, `at least startBus (${startBus})`);
    const key = `${segment}:${startBus}-${endBus}`;
    if ((this.mmcfgRegions.get(key) ?? true) === reserved) return;
    this.mmcfgRegions.set(key, reserved);
    for (const device of this.devices()) {
      const { seg, bus } = device.sbdf;
      if (seg !== segment || bus < startBus || bus > endBus) continue;
      device.extCfg = reserved && device.hw.extendedConfig;
      reinitExtCapabilities(this, this.accessor, device);
    }
  }

  // ---- guest accesses ------------------------------------------------------------------------

  /**
   * A config-space read of `size` (1, 2 or 4) bytes at `reg` by `vcpu` through the CF8/CFC ports
   * (Xen's `vpci_portio_read`). `sbdf` is the address as the domain sees it (virtual for a guest). An
   * access not aligned to its size never reaches `vpci_read` (`vpci_access_allowed`): it reads
   * all-ones, with an `access-dropped` event.
   */
  configRead(vcpu: Vcpu, sbdf: Sbdf | string, reg: number, size: number): number {
    checkAccessShape('cf8', reg, size);
    const address = toSbdf(sbdf);
    if (!this.canAccess(vcpu, address) || !this.accessAllowed(vcpu, address, reg, size)) return allOnes(size);
    return this.vpciRead(vcpu, address, reg, size);
  }

  /** A config-space write through the CF8/CFC ports (Xen's `vpci_portio_write`); not aligned: dropped. */
  configWrite(vcpu: Vcpu, sbdf: Sbdf | string, reg: number, size: number, value: number): void {
    checkPortWrite(reg, size, value);
    const address = toSbdf(sbdf);
    if (!this.canAccess(vcpu, address) || !this.accessAllowed(vcpu, address, reg, size)) return;
    this.vpciWrite(vcpu, address, reg, size, value);
  }

  /**
   * `configWrite`, made only when it is inert: it can change nothing a `DeviceSnapshot` records
   * (`writeMayChangeDevice` says false for it). Returns true when the write was made, or dropped
   * (a crashed domain's, one not aligned: `configWrite` drops those with an event, as here); false,
   * with nothing done, when it may change what the device maps or where its BARs are, when `vcpu`
   * has pending work, or when no device the domain sees is at `sbdf` (`configWrite` then takes the
   * write). What a replay makes of most of a running driver's writes: the device and the register
   * handlers are looked up once for the decision and the write.
   */
  configWriteIfInert(vcpu: Vcpu, sbdf: Sbdf | string, reg: number, size: number, value: number): boolean {
    checkPortWrite(reg, size, value);
    if (vcpu instanceof Object && vcpu.pending !== undefined) return false;
    const address = toSbdf(sbdf);
    this.checkRunnable(vcpu);
    // The device the domain sees there (the replay's write target): any device at the address for
    // the hardware domain, the one at the virtual address for a guest.
    const target = vcpu.domain.isHardware
      ? this.deviceMap.get(sbdfKey(address))
      : this.guestDevice(vcpu.domain, address);
    return this.inertWriteTo(vcpu, target, address, reg, size, value);
  }

  /**
   * `configWriteIfInert` with what it looks up given: `vcpu`, one of this machine's (as `vcpu` or a
   * domain's `vcpus` gives it), and `target`, what `findDevice(address)` (the hardware domain) or
   * `findGuestDevice(vcpu.domain, address)` (a guest) answered while `accessTargetsVersion` has not
   * moved since. A replay's line names the same vCPU and device as thousands before it: the look-ups
   * of the address and the domain (cold hash buckets over thousands of devices) are made once.
   */
  configWriteIfInertTo(
    vcpu: Vcpu,
    target: PciDevice | undefined,
    address: Sbdf,
    reg: number,
    size: number,
    value: number,
  ): boolean {
    checkPortWrite(reg, size, value);
    if (vcpu.pending !== undefined) return false;
    return this.inertWriteTo(vcpu, target, address, reg, size, value);
  }

  /**
   * `configWriteIfInert` past its look-ups: the write of `vcpu` (runnable) to `target`, the device
   * its domain sees at `address`, made only when it is inert.
   */
  private inertWriteTo(
    vcpu: Vcpu,
    target: PciDevice | undefined,
    address: Sbdf,
    reg: number,
    size: number,
    value: number,
  ): boolean {
    if (target === undefined) return false;
    const hardwareDomain = vcpu.domain.isHardware;
    const handled =
      target.vpci !== undefined &&
      (!hardwareDomain || target.domain === vcpu.domain || target.domain === this.domXen);
    if (handled) {
      const registers = target.vpci!.registers;
      const barRegisters = hardwareDomain ? target.hw : undefined;
      // Decided before the access checks drop it with an event, whatever it would do.
      if (vcpu.domain.crashed || !vpciAccessAllowed(reg, size)) {
        if (!registers.isInertWrite(reg, size, value, barRegisters)) return false;
        if (!this.crashedAccess(vcpu, address)) this.accessAllowed(vcpu, address, reg, size);
        return true;
      }
      // Nothing drops it: decided and made in one search of the handlers. The accessor is set
      // before the decision, which reads nothing of it: only write handlers do, and every access
      // sets it before its writes.
      this.accessor.current = vcpu;
      return registers.writeIfInert(
        reg,
        size,
        value,
        barRegisters,
        hardwareDomain ? xenView(target) : NO_HARDWARE,
      );
    }
    // Past vPCI, the hardware domain writes the device's hardware (inert unless the bytes place a
    // BAR); a guest reaches nothing.
    if (hardwareDomain && target.hw.placesBars(reg, size)) return false;
    if (this.crashedAccess(vcpu, address) || !this.accessAllowed(vcpu, address, reg, size)) return true;
    this.accessor.current = vcpu;
    this.writeUnhandled(vcpu, hardwareDomain ? target : undefined, reg, size, value);
    return true;
  }

  /**
   * A read of `size` (1, 2, 4 or 8) bytes through the memory-mapped configuration space (x86's
   * `vpci_mmcfg_read`, Xen's `vpci_ecam_read`): an 8-byte read is two 4-byte `vpci_read`s, the low
   * half first. Not aligned to its size: all-ones (`~0UL`), with an `access-dropped` event.
   */
  ecamRead(vcpu: Vcpu, sbdf: Sbdf | string, reg: number, size: number): bigint {
    checkAccessShape('ecam', reg, size);
    const address = toSbdf(sbdf);
    if (!this.canAccess(vcpu, address) || !this.accessAllowed(vcpu, address, reg, size))
      return (1n << BigInt(8 * size)) - 1n;
    const low = BigInt(this.vpciRead(vcpu, address, reg, Math.min(4, size)));
    return size === 8 ? low | (BigInt(this.vpciRead(vcpu, address, reg + 4, 4)) << 32n) : low;
  }

  /**
   * A write through the memory-mapped configuration space (x86's `vpci_mmcfg_write`, Xen's
   * `vpci_ecam_write`): an 8-byte write is two 4-byte `vpci_write`s in one trap, the low half first
   * (the second runs even when the first deferred work). Not aligned to its size: dropped.
   */
  ecamWrite(vcpu: Vcpu, sbdf: Sbdf | string, reg: number, size: number, value: bigint): void {
    checkAccessShape('ecam', reg, size);
    checkAccessValue(value, (1n << BigInt(8 * size)) - 1n);
    const address = toSbdf(sbdf);
    if (!this.canAccess(vcpu, address) || !this.accessAllowed(vcpu, address, reg, size)) return;
    const data = BigInt(value);
    this.vpciWrite(vcpu, address, reg, Math.min(4, size), Number(data & 0xffffffffn));
    if (size === 8) this.vpciWrite(vcpu, address, reg + 4, 4, Number(data >> 32n));
  }

  /**
   * A memory read of `size` (1, 2, 4 or 8) bytes at guest-physical address `addr` (within one page)
   * by `vcpu`: through the p2m to the device, or to Xen's MSI-X handlers (mmio.ts). A crashed
   * domain's access is dropped (all-ones).
   */
  mmioRead(vcpu: Vcpu, addr: bigint, size: number): MmioResult {
    checkMmioAccess(addr, size);
    if (!this.canAccessMmio(vcpu, addr)) return { path: 'unhandled', value: (1n << BigInt(8 * size)) - 1n };
    return mmioAccess(this, this.deviceMemory, vcpu, addr, size, undefined);
  }

  /** A memory write of `value` (`size` bytes) at guest-physical address `addr` by `vcpu`. */
  mmioWrite(vcpu: Vcpu, addr: bigint, size: number, value: bigint): MmioResult {
    checkMmioAccess(addr, size, value);
    if (!this.canAccessMmio(vcpu, addr)) return { path: 'unhandled', value: undefined };
    return mmioAccess(this, this.deviceMemory, vcpu, addr, size, value);
  }

  /**
   * Runs `vcpu`'s pending map/unmap for at most `budget` frames before preempting (Xen's
   * `vpci_process_pending`); `restart` means call again.
   */
  processPending(vcpu: Vcpu, budget = Number.POSITIVE_INFINITY): PendingResult {
    if (typeof budget !== 'number' || !(budget >= 1))
      throw new InvalidArgumentError('budget', budget, 'a frame count >= 1 (or Infinity)');
    return processPending(this, vcpu, budget);
  }

  /** Runs `vcpu`'s pending work to the end; returns the last result. */
  finishPending(vcpu: Vcpu): PendingResult {
    let result = this.processPending(vcpu);
    while (result.status === 'restart') result = this.processPending(vcpu);
    return result;
  }

  // ---- memory types --------------------------------------------------------------------------

  /**
   * The memory type of an access by domain `domain` to its guest frame `frame` through guest PAT type
   * `pat`: on Intel the EPT type and iPAT Xen gives the frame (`epte_get_entry_emt`) with the PAT, on
   * AMD the NPT leaf's type with the PAT and the host MTRR. `mapped: false` when the frame maps no
   * machine frame.
   */
  memoryType(domain: number, frame: number, pat: MemoryType): MemoryTypeAnswer {
    if (this.arch !== 'x86')
      throw new InvalidArgumentError(
        'memoryType',
        this.arch,
        'an x86 machine (the rules are EPT/NPT and MTRR)',
      );
    return memoryTypeOf(this, this.domain(domain), gfn(frame), pat);
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * A domain's p2m options: Xen's 4-level tables, EPT on Intel with HAP and p2m-pt otherwise
   * (`p2m_initialise`: `hap_enabled(d) && using_vmx()`), unless `options` say otherwise.
   */
  private p2mOptions(options: P2mOptions = {}): P2mOptions {
    // Arm: the stage-2 root covers the GFNs armP2mAddressBits says; a block past them fails (EINVAL).
    // Which x86 tables does not matter: Arm's map checks the limit itself.
    if (this.arch === 'arm') return { addressBits: armP2mAddressBits(this.physAddrBits), ...options };
    const ept = this.vendor === 'intel' && options.hap !== false;
    return {
      addressBits: P2M_ADDRESS_BITS,
      tables: ept ? 'ept' : 'pt',
      superpages2M: this.superpages2M,
      ...options,
    };
  }

  private addDomain(domain: Domain): Domain {
    stateChanged();
    // The checks' index of who maps which machine frames (`InvariantCaches.mmioHolders`).
    const caches = this.invariantCaches;
    const holders = caches.mmioHolders;
    domain.p2m.watchMmioByMfn({
      added: (first, last) => {
        holders.add(first, last, domain);
        caches.mmioHoldersChanges++;
      },
      removed: (first, last) => {
        holders.remove(first, last, domain);
        caches.mmioHoldersChanges++;
      },
    });
    this.domainMap.set(domain.id, domain);
    this.sortedDomains = undefined;
    return domain;
  }

  private requireBooted(operation: string): void {
    if (!this.systemActive)
      throw new InvalidArgumentError(operation, 'before boot', 'a machine after boot()');
  }

  /** `canAccess` for a memory access: a crashed domain's is dropped with an `mmio-dropped` event. */
  private canAccessMmio(vcpu: Vcpu, addr: bigint): boolean {
    this.checkRunnable(vcpu);
    if (!vcpu.domain.crashed) return true;
    this.events.push({ kind: 'crashed-domain-mmio', domain: vcpu.domain.id, addr });
    return false;
  }

  /** A vCPU with pending work cannot run guest code; a crashed domain's accesses are dropped. */
  private canAccess(vcpu: Vcpu, sbdf: Sbdf): boolean {
    this.checkRunnable(vcpu);
    return !this.crashedAccess(vcpu, sbdf);
  }

  /** Whether `vcpu`'s domain has crashed: its access is then dropped, with an event. */
  private crashedAccess(vcpu: Vcpu, sbdf: Sbdf): boolean {
    if (!vcpu.domain.crashed) return false;
    this.events.push({ kind: 'crashed-domain-access', domain: vcpu.domain.id, sbdf: formatSbdf(sbdf) });
    return true;
  }

  /** Throws unless `vcpu` is one of this machine's and has no pending work (it could not run). */
  private checkRunnable(vcpu: Vcpu): void {
    if (!(vcpu instanceof Object) || this.domainMap.get(vcpu.domain.id) !== vcpu.domain) {
      throw new InvalidArgumentError('vcpu', vcpu, 'a vCPU of this machine');
    }
    if (vcpu.pending !== undefined) {
      throw new InvalidArgumentError(
        'vcpu',
        vcpu.name,
        'a vCPU with no pending map/unmap (run processPending until it is done)',
      );
    }
  }

  /** Xen's `vpci_access_allowed`; an access it refuses is logged as dropped (Xen is silent). */
  private accessAllowed(vcpu: Vcpu, sbdf: Sbdf, reg: number, size: number): boolean {
    if (vpciAccessAllowed(reg, size)) return true;
    this.events.push({
      kind: 'access-dropped',
      domain: vcpu.domain.id,
      sbdf: formatSbdf(sbdf),
      reg,
      size,
      reason: 'misaligned',
    });
    return false;
  }

  /** Xen's `vpci_read` (1, 2 or 4 bytes, aligned). */
  private vpciRead(vcpu: Vcpu, sbdf: Sbdf, reg: number, size: number): number {
    const { device, hardware } = this.resolve(vcpu, sbdf);
    this.accessor.current = vcpu;
    if (device === undefined) return hardware.read(reg, size);
    return device.vpci!.registers.read(reg, size, hardware);
  }

  /** Xen's `vpci_write` (1, 2 or 4 bytes, aligned). */
  private vpciWrite(vcpu: Vcpu, sbdf: Sbdf, reg: number, size: number, value: number): void {
    const { device, hardware } = this.resolve(vcpu, sbdf);
    this.accessor.current = vcpu;
    if (device === undefined) {
      this.writeUnhandled(
        vcpu,
        vcpu.domain.isHardware ? this.deviceMap.get(sbdfKey(sbdf)) : undefined,
        reg,
        size,
        value,
      );
      return;
    }
    // An ignore_bars device has no BAR handlers: its BAR registers are the hardware's, as for a
    // device vPCI does not handle.
    if (device.ignoreBars && this.refusedHardwareMove(vcpu, device, reg, size, value)) return;
    device.vpci!.registers.write(reg, size, value, hardware);
  }

  /**
   * A write no vPCI handler takes: to `device`'s hardware (the hardware domain's write to the device
   * at the address), unless a hardened switch refuses it; dropped when there is no `device` (a guest,
   * or an empty address).
   */
  private writeUnhandled(
    vcpu: Vcpu,
    device: PciDevice | undefined,
    reg: number,
    size: number,
    value: number,
  ): void {
    if (device === undefined) return;
    // vpci_write: "Ignore writes to read-only devices, which have no ->vpci."
    if (this.readOnlyDevices.size > 0 && this.readOnlyDevices.has(sbdfKey(device.sbdf))) {
      this.events.push({
        kind: 'access-dropped',
        domain: vcpu.domain.id,
        sbdf: device.name,
        reg,
        size,
        reason: 'read-only',
      });
      return;
    }
    if (this.refusedForeignWrite(vcpu, device, reg, size)) return;
    if (this.refusedHardwareMove(vcpu, device, reg, size, value)) return;
    xenView(device).write(reg, size, value);
  }

  /**
   * Xen's device lookup (`handledDevice`: the device with vPCI state the access reaches, or undefined)
   * and what the bytes past its handlers reach (`hardwareOf`), with one look-up of the address. The
   * answer is one object, reused: read it before the next call.
   */
  private resolve(vcpu: Vcpu, sbdf: Sbdf): { device: PciDevice | undefined; hardware: HardwareAccess } {
    const found = this.resolved;
    const domain = vcpu.domain;
    if (domain.isHardware) {
      const device = this.deviceMap.get(sbdfKey(sbdf));
      found.device =
        device?.vpci !== undefined && (device.domain === domain || device.domain === this.domXen)
          ? device
          : undefined;
      found.hardware = device === undefined ? NO_HARDWARE : xenView(device);
    } else {
      const device = this.guestDevice(domain, sbdf);
      found.device = device?.vpci === undefined ? undefined : device;
      found.hardware = NO_HARDWARE;
    }
    return found;
  }

  /**
   * The device a guest sees at `sbdf` (its virtual address), or undefined: Xen's
   * `translate_virtual_device`, a walk of the guest's devices for the one whose `guest_sbdf` is
   * `sbdf`. A guest's devices are seen at `0000:00:dd.0`, each at a slot of its own
   * (`vpci_assign_device` takes a free one and `vpci_deassign_device` frees it, `virtualSlots`), so
   * the device the walk finds is the one the domain's slot index holds. The index is trusted only
   * while that device is still the guest's and still seen there; otherwise, and for any other
   * address, the walk answers.
   */
  private guestDevice(domain: Domain, sbdf: Sbdf): PciDevice | undefined {
    if (sbdf.seg === 0 && sbdf.bus === 0 && sbdf.fn === 0) {
      const slotted = domain.slotDevices[sbdf.dev];
      const seen = slotted?.vpci?.guestSbdf;
      if (slotted?.domain === domain && seen !== undefined && seen.dev === sbdf.dev)
        if (seen.seg === 0 && seen.bus === 0 && seen.fn === 0) return slotted;
    }
    // A loop, not `find`: this runs for every access of a guest's, and a closure per access adds up.
    for (const d of domain.devices) {
      const seen = d.vpci?.guestSbdf;
      if (
        seen !== undefined &&
        seen.fn === sbdf.fn &&
        seen.dev === sbdf.dev &&
        seen.bus === sbdf.bus &&
        seen.seg === sbdf.seg
      )
        return d;
    }
    return undefined;
  }

  /**
   * Hardened (`protectAssignedBars`): the hardware domain may not move or resize the BARs of a device
   * it gave to a guest by writing the hardware under it (Xen's `vpci_write_hw`); the write is
   * ignored with an event.
   */
  private refusedForeignWrite(vcpu: Vcpu, device: PciDevice, reg: number, size: number): boolean {
    if (!this.policy.protectAssignedBars || !vcpu.domain.isHardware) return false;
    const owner = device.domain;
    if (owner?.kind !== 'guest' || !device.hw.placesBars(reg, size)) return false;
    this.events.push({ kind: 'assigned-write-refused', sbdf: device.name, reg, domain: owner.id });
    return true;
  }

  /**
   * Hardened (`refuseSubpageSharing`): the hardware domain's write to the hardware of a device vPCI
   * does not handle (its set-up failed), or to the BAR registers of an `ignoreBars` device (Xen's
   * quirk: no BAR handlers), may not move or resize a BAR or the ROM onto a page another domain maps
   * or is about to map; the write is tried on a copy of the device first, and ignored with a
   * `move-refused` event. (Other devices vPCI handles are checked by their BAR and ROM handlers.)
   */
  private refusedHardwareMove(
    vcpu: Vcpu,
    device: PciDevice,
    reg: number,
    size: number,
    value: number,
  ): boolean {
    if (!this.policy.refuseSubpageSharing || !vcpu.domain.isHardware) return false;
    if (device.domain === undefined || !device.hw.placesBars(reg, size)) return false;
    const before = decodedBars(device.hw).map((bar) => bar.hostFrames());
    const trial = device.hw.copy();
    trial.write(reg, size, value);
    for (const bar of decodedBars(trial)) {
      const [first, last] = bar.hostFrames();
      if (before.some((frames) => frames[0] === first && frames[1] === last)) continue;
      const mapped = mappedByOtherDomain(this, device, first, last);
      if (mapped === undefined) continue;
      this.events.push({ kind: 'move-refused', sbdf: device.name, bar: bar.index, ...mapped });
      return true;
    }
    return false;
  }

  private setOwner(device: PciDevice, domain: Domain): void {
    device.domain = domain;
    domain.devices.push(device);
    this.enabledBars?.joined(this, device);
    keepVfDecoding(this, device);
  }

  /**
   * Hardened (`unmapOnDeassign`): before a device changes hands, every vCPU's pending vPCI work runs
   * to its end, as if the toolstack waited for the machine to settle. Xen lets it run on: work
   * pending on the device lands on its next vPCI state when it is back with the same owner by the
   * time the vCPU resumes (BARs flagged enabled, nothing mapped), a map finishing after the sharing
   * checks can map a page the device's new owner now holds, and `serialOperations` would refuse the
   * unmap below while another device's work is pending.
   */
  private settleBeforeMove(): void {
    if (!this.policy.unmapOnDeassign || !this.systemActive) return;
    // In the walk's order over the domains and their vCPUs: work one vCPU finishes can be another's.
    for (
      let vcpu = this.pendingVcpus.after(undefined);
      vcpu !== undefined;
      vcpu = this.pendingVcpus.after(vcpu)
    )
      this.finishPending(vcpu);
  }

  /**
   * Hardened (`unmapOnDeassign`), or a rule set that always does (`RuleSet.unmapsLeavingDevice`): the
   * device's enabled BARs are unmapped from its owner before its vPCI state goes; if that fails
   * (rolled back under `rollbackFailedMap`), the error is returned and the device stays. Xen leaves
   * the mappings in place.
   */
  private unmapLeaving(device: PciDevice): AssignResult {
    if (device.domain === undefined) return { ok: true };
    const unmaps = this.policy.unmapOnDeassign || this.rules.unmapsLeavingDevice === true;
    if (unmaps && device.vpci?.bars.some((bar) => bar.enabled)) {
      purgeBarSets(this, device);
      // Xen's modify_bars mapped the hardware domain's VFs under every rule set, so it unmaps them:
      // another rule set's would not find what it never mapped (a sub-page VF BAR, say).
      const unmapBars = ruleSetMapsDevice(this, device) ? this.rules.modifyBars : modifyBars;
      const unmapped = unmapBars(this, this.accessor.current, device, 0, false, true);
      if (!unmapped.ok) return unmapped;
    }
    return { ok: true };
  }

  /** The device leaves its owner's list and joins `target`'s (the IOMMU's reassignment). */
  private moveOwner(device: PciDevice, target: Domain | undefined): void {
    const owner = device.domain;
    // From the end: the VFs of a PF leave last first, the last devices to have joined.
    if (owner !== undefined) {
      owner.devices.splice(owner.devices.lastIndexOf(device), 1);
      this.enabledBars?.left(this, device, owner);
    }
    device.domain = undefined;
    if (target !== undefined) this.setOwner(device, target);
    else keepVfDecoding(this, device);
  }

  /** dom_io's devices count as the hardware domain's for page sharing, as dom_xen's do. */
  private sharingDomain(domain: Domain): Domain {
    return domain.isPseudo ? this.hardwareDomain : domain;
  }

  /**
   * Xen's `device_assigned` and `assign_device(target)`: `vpci_deassign_device` on the old owner,
   * the IOMMU context of the function (on failure the device stays with its old owner, without
   * vPCI), then of each phantom function, then `vpci_assign_device`. After the function's own
   * context, any failure of a device with phantom functions is rolled back with `deassign_device`;
   * if that fails too the device is marked broken and a guest target crashed.
   */
  private assignTo(device: PciDevice, target: Domain): AssignResult {
    this.settleBeforeMove();
    if (device.domain !== this.hardwareDomain && device.domain !== this.domIo)
      return { ok: false, code: 'EBUSY' };
    if (this.refusedAsShared(device, this.sharingDomain(target))) return { ok: false, code: 'EBUSY' };
    if (device.broken && target.kind === 'guest') return { ok: false, code: 'EBADF' };
    const unmapped = this.unmapLeaving(device);
    if (!unmapped.ok) return unmapped;
    this.deassignVpci(device);
    const own = this.iommuFaults.program(device.sbdf);
    if (!own.ok) return own;
    this.moveOwner(device, target);
    let rc: AssignResult = { ok: true };
    for (const phantom of phantomFunctions(device.sbdf, device.phantomStride)) {
      rc = this.iommuFaults.program(phantom);
      if (!rc.ok) break;
    }
    // x86: has_vpci() is false for a domU, so vpci_assign_device returns 0 without setting anything up.
    if (rc.ok)
      rc =
        target.kind === 'guest' && !this.guestVpci.enabled
          ? this.noVpci(device, target)
          : this.assignVpci(device);
    if (!rc.ok) {
      if (device.phantomStride !== 0 && !this.deassignFrom(device, target).ok) {
        device.broken = true;
        if (target.kind === 'guest')
          this.crashDomain(target, `assignment of ${device.name} could not be rolled back`);
      }
      return rc;
    }
    if (target === this.domIo) device.quarantine = true;
    else for (const bar of hostBars(device)) target.iomem.addRange(...bar.hostFrames());
    // Guests get no ROM: the toolstack still permits its frames, from the hardware.
    return { ok: true };
  }

  /**
   * Xen's `deassign_device(owner)`: to dom_io when quarantining and the device is not already there,
   * else to the hardware domain. The phantom functions' contexts move first (a failure leaves the
   * device where it was, vPCI intact), then vPCI leaves, then the function's own context (a failure
   * leaves the device with its owner, without vPCI), then vPCI is set up for the new owner.
   */
  private deassignFrom(device: PciDevice, owner: Domain): AssignResult {
    if (!owner.iommu) return { ok: false, code: 'EINVAL' }; // deassign_device: !is_iommu_enabled(d)
    const target =
      (device.quarantine || this.quarantine) && owner !== this.domIo ? this.domIo : this.hardwareDomain;
    if (this.refusedAsShared(device, this.sharingDomain(target))) return { ok: false, code: 'EBUSY' };
    for (const phantom of phantomFunctions(device.sbdf, device.phantomStride)) {
      const moved = this.iommuFaults.program(phantom);
      if (!moved.ok) return moved;
    }
    const bars = hostBarFrames(device);
    const unmapped = this.unmapLeaving(device);
    if (!unmapped.ok) return unmapped;
    this.deassignVpci(device);
    const own = this.iommuFaults.program(device.sbdf);
    if (!own.ok) return own;
    // The toolstack takes back the frames it permitted for the BARs.
    if (owner.kind === 'guest') for (const range of bars) owner.iomem.removeRange(...range);
    this.moveOwner(device, target);
    if (target === this.hardwareDomain) device.quarantine = false;
    return this.assignVpci(device);
  }

  private crashDomain(domain: Domain, reason: string): void {
    if (domain.crashed) return;
    domain.crash();
    this.events.push({ kind: 'domain-crashed', domain: domain.id, reason });
  }

  /**
   * Xen's `setup_one_hwdom_device` (building the hardware domain): `vpci_assign_device` as the
   * hardware domain's; a failure is only logged ("setup of vPCI for d0 failed") and the device stays
   * in the list, without vPCI.
   */
  private setUpHardwareDevice(device: PciDevice): void {
    let rc: AssignResult;
    if (device.domain === this.domXen) {
      // Xen sets hidden devices up as the hardware domain's, then hands them back to dom_xen.
      device.domain = this.hardwareDomain;
      rc = this.assignVpci(device);
      device.domain = this.domXen;
    } else {
      if (device.domain === undefined) this.setOwner(device, this.hardwareDomain);
      rc = this.assignVpci(device);
    }
    if (!rc.ok)
      this.events.push({
        kind: 'vpci-setup-failed',
        sbdf: device.name,
        domain: this.hardwareDomain.id,
        code: rc.code,
        hotPlug: false,
      });
  }

  /** A guest without vPCI (x86 as Xen is): the device is the guest's, with no vPCI state. */
  private noVpci(device: PciDevice, target: Domain): AssignResult {
    this.events.push({ kind: 'no-vpci', sbdf: device.name, domain: target.id });
    return { ok: true };
  }

  /**
   * Xen's `vpci_assign_device`: nothing for a domain without vPCI (dom_io); else virtual slot
   * (guests), header, capabilities; torn down on error.
   */
  private assignVpci(device: PciDevice): AssignResult {
    const domain = device.domain!;
    if (domain.isPseudo) return { ok: true };
    // No vPCI for r/o devices.
    if (this.readOnlyDevices.has(sbdfKey(device.sbdf))) return { ok: true };
    const isHwdom = domain.isHardware;
    device.vpci = new VpciState();
    device.vpci.registers.bind(device, sharedRegistersOf(this));
    // What was made from the old state's BARs: the host pages vPCI adds, the enabled BARs.
    device.hw.noteBarsChanged();
    this.enabledBars?.renewed(device);
    keepVfDecoding(this, device);
    if (!isHwdom) {
      if (device.sbdf.fn !== 0) return this.failAssign(device, 'EOPNOTSUPP');
      const slot = domain.virtualSlots.indexOf(false);
      if (slot < 0 || slot >= VPCI_MAX_VIRT_DEV) return this.failAssign(device, 'ENOSPC');
      domain.virtualSlots[slot] = true;
      domain.slotDevices[slot] = device;
      device.vpci.guestSbdf = makeSbdf(0, 0, slot, 0);
    }
    // Work the set-up defers lands on the hardware domain's first vCPU (the toolstack's), which must
    // have finished what it was doing, as it would have before making the hypercall.
    const toolstack = this.hardwareDomain.vcpus[0]!;
    if (this.systemActive && toolstack.pending !== undefined) this.finishPending(toolstack);
    this.accessor.current = toolstack;
    let rc: AssignResult = vpciInitHeader(this, this.accessor, device, isHwdom, this.rules);
    if (rc.ok) rc = initCapabilities(this, device, isHwdom, this.accessor);
    return rc.ok ? rc : this.failAssign(device, rc.code);
  }

  /**
   * A set-up that failed: Xen's `vpci_assign_device` calls `vpci_deassign_device`, which frees the
   * vPCI state and leaves the p2m as it is, so a BAR the header's set-up mapped (`apply_map` at boot,
   * decoding on) stays mapped with no vPCI BAR behind it. Hardened (`unmapOnDeassign`), and a rule
   * set whose VMM takes a device's slots with it (`unmapsLeavingDevice`: its set-up mapped at once),
   * unmap it first, as for a device leaving its owner (`unmapLeaving`; the set-up's error is returned
   * whatever the unmap does).
   */
  private failAssign(device: PciDevice, code: AssignErrno): AssignResult {
    this.unmapLeaving(device);
    this.deassignVpci(device);
    return { ok: false, code };
  }

  /** Xen's `vpci_deassign_device`: frees the virtual slot, the handlers and the rangesets. */
  private deassignVpci(device: PciDevice): void {
    const vpci = device.vpci;
    if (vpci === undefined) return;
    if (vpci.guestSbdf !== undefined && device.domain !== undefined) {
      device.domain.virtualSlots[vpci.guestSbdf.dev] = false;
      device.domain.slotDevices[vpci.guestSbdf.dev] = undefined;
    }
    vpci.registers.clear();
    // rangeset_destroy on every slot; a slot without a set returns at once (not counted).
    for (const bar of vpci.bars) if (bar.mem !== undefined) countRangesetOps(this, device, 'destroy');
    device.vpci = undefined;
    this.accessTargetChanges++;
    device.hw.noteBarsChanged();
    this.enabledBars?.renewed(device);
    keepVfDecoding(this, device);
  }

  /**
   * Hardened: a device may not move to `target` while another domain maps a page holding one of its
   * BARs (an event names the page and the device mapping it).
   */
  private refusedAsShared(device: PciDevice, target: Domain): boolean {
    if (!this.policy.refuseSubpageSharing) return false;
    const shared = this.sharedMappedPage(device, target);
    if (shared === undefined) return false;
    this.events.push({
      kind: 'assign-refused',
      sbdf: device.name,
      domain: target.id,
      mfn: shared.mfn,
      other: shared.other,
    });
    return true;
  }

  /**
   * A host page holding a BAR of `device` that a domain other than `target` maps through an enabled
   * BAR of another device, or is about to map through pending work (hardened check before
   * assignment and hot-plug). The devices looked at are those of the other domains' lists (a device
   * with vPCI state always has an owner), not every device of the machine: a VF joining the
   * hardware domain looks at the guests' devices only. When several meet, the answer is the one
   * plugged first (the machine's device order), as a walk over every device would give. With the
   * index of BARs by host frame (`hostBarIndex`) only the devices with a BAR on those pages are asked.
   */
  private sharedMappedPage(device: PciDevice, target: Domain): { mfn: number; other: string } | undefined {
    const frames = hostBarFrames(device);
    let found: { mfn: number; other: PciDevice } | undefined;
    const consider = (other: PciDevice): void => {
      if (other === device || other.vpci === undefined) return;
      if (found !== undefined && this.plugOrder.get(other)! > this.plugOrder.get(found.other)!) return;
      const mfn = this.sharedPageWith(frames, other);
      if (mfn !== undefined) found = { mfn, other };
    };
    // dom_xen's devices count as the hardware domain's.
    const counted = (domain: Domain): boolean =>
      (domain === this.domXen ? this.hardwareDomain : domain) !== target;
    if (this.hostBarIndex !== undefined) {
      // Every device but this one (owned or not yet) dom0's or dom_xen's: none is counted for dom0,
      // and the index is not brought up to date for none (a VF joining dom0 at VF Enable).
      const others = this.deviceMap.size - (device.domain === undefined ? 1 : 0);
      if (target === this.hardwareDomain && this.ownedByHardwareDomains() === others) return undefined;
      // A device is on its owner's list while it has one (`setOwner`, `moveOwner`).
      for (const other of this.hostBarIndex.devicesMeeting(frames))
        if (other.domain !== undefined && counted(other.domain)) consider(other);
    } else
      for (const domain of this.domainMap.values())
        if (counted(domain)) for (const other of domain.devices) consider(other);
    return found === undefined ? undefined : { mfn: found.mfn, other: found.other.name };
  }

  /**
   * The first host page of `frames` (a device's `hostBarFrames`) that `other` maps or is about to map
   * (`sharedMappedPage`).
   */
  private sharedPageWith(
    frames: readonly (readonly [number, number])[],
    other: PciDevice,
  ): number | undefined {
    // A map part done (preempted) has mapped frames its BARs' sets no longer hold, and flags the
    // BARs enabled only when it completes: every BAR it may map counts (a ROM-only map, the ROM).
    const mapping = this.pendingVcpus
      .on(other)
      .find((vcpu) => vcpu.pending !== undefined && (vcpu.pending.cmd & PCI_COMMAND_MEMORY) !== 0)?.pending;
    for (const remote of other.vpci!.bars) {
      const mayMap = mapping !== undefined && remote.mappable && (!mapping.romOnly || remote.type === 'rom');
      // Mapped, or with frames about to be mapped (or unmapped) by pending work.
      if (!remote.enabled && !mayMap && (remote.mem === undefined || remote.mem.isEmpty())) continue;
      const [remoteStart, remoteEnd] = remote.hostFrames();
      for (const [start, end] of frames)
        if (start <= remoteEnd && remoteStart <= end) return Math.max(start, remoteStart);
    }
    return undefined;
  }
}

/** "Hardware" for a guest, or for an address with no device: reads all-ones, writes dropped. */
const NO_HARDWARE: HardwareAccess = {
  read: (_reg, size) => allOnes(size),
  write: () => {},
};

/**
 * The device as Xen's `pci_conf_read`/`pci_conf_write` reach it: without MMCFG for its bus
 * (`extCfg` off) an offset past 255 reads all-ones and a write there is dropped.
 */
function xenView(device: PciDevice): HardwareAccess {
  if (device.extCfg || !device.hw.extendedConfig) return device.hw;
  // Made once per device, not per access (the hardware domain's every access to such a device asks).
  let view = conventionalViews.get(device);
  if (view === undefined) {
    view = {
      read: (reg, size) => (reg >= PCI_CFG_SPACE_SIZE ? allOnes(size) : device.hw.read(reg, size)),
      write: (reg, size, value) => {
        if (reg < PCI_CFG_SPACE_SIZE) device.hw.write(reg, size, value);
      },
    };
    conventionalViews.set(device, view);
  }
  return view;
}

/** `xenView`'s view of a device reached without MMCFG, per device (it reads `device.hw` when used). */
const conventionalViews = new WeakMap<PciDevice, HardwareAccess>();

/**
 * Throws unless a CF8/CFC write of `value` (`size` bytes at `reg`) has a shape and value the ports
 * take. The common case without a bigint per write (the bound as a bigint only for a value out of it).
 */
function checkPortWrite(reg: number, size: number, value: number): void {
  checkAccessShape('cf8', reg, size);
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= allOnes(size)))
    checkAccessValue(value, BigInt(allOnes(size)));
}

/** Throws unless `value` is an integer (number or bigint) in `0 … max`. */
function checkAccessValue(value: unknown, max: bigint): void {
  const ok =
    (typeof value === 'number' && Number.isInteger(value) && value >= 0 && BigInt(value) <= max) ||
    (typeof value === 'bigint' && value >= 0n && value <= max);
  if (!ok) throw new InvalidArgumentError('value', value, `an integer in 0 … 0x${max.toString(16)}`);
}

function checkVcpus(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 128) {
    throw new InvalidArgumentError('vcpus', value, 'an integer in 1 … 128');
  }
  return value;
}

/**
 * Xen's `domain_max_paddr_bits` for a translated domain: the host's width, at most 48 with HAP ("both
 * p2m-ept and p2m-pt only support 4-level page tables") and at most 44 with shadow paging (GFNs in
 * 32-bit fields, CONFIG_BIGMEM off as by default).
 */
function domainMaxPaddrBits(physAddrBits: number, hap: boolean): number {
  return Math.min(physAddrBits, hap ? P2M_ADDRESS_BITS : 32 + 12);
}
