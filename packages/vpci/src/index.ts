/**
 * @vpci/vpci: the vPCI BAR mapping engine after Xen's `xen/drivers/vpci`: devices and their config
 * space, the header handlers, MSI-X holes, per-BAR preemptible map/unmap, the two profiles and the
 * invariants. Every public export is listed here by name.
 */
// The workspace's result vocabulary, from @vpci/rangeset, so the engine's users need not import it from there.
export type { Errno, Failure, Ok, Result } from '@vpci/rangeset';
export type { Arch, GuestVpci, GuestVpciReason } from './arch.js';
export { ARCHES, describeGuestVpci } from './arch.js';
export type { HostBridge, HostBridgeWindow, ResolvedHostBridge } from './arm-pci-host.js';
export type { BarMet } from './bar-frames.js';
export { enabledBarMeeting } from './bar-frames.js';
export type { CapabilityErrno } from './capabilities.js';
export type { CloudHypervisorBar } from './cloud-hypervisor-pages.js';
export { cloudHypervisorPages } from './cloud-hypervisor-pages.js';
export { CLOUD_HYPERVISOR_RULES } from './cloud-hypervisor-rules.js';
export type { ConfigAccessPath } from './config-access.js';
export { vpciAccessAllowed } from './config-access.js';
export type { EngineContext } from './context.js';
export { mappingDomain } from './context.js';
export type { BarType, MsiState, MsixEntry, MsixState, SriovState } from './device.js';
export { Bar, VpciState } from './device.js';
export { DeviceMemory } from './device-memory.js';
export type { FrameRange, FrameSink } from './device-snapshot.js';
export {
  type DeviceChange,
  DeviceSnapshot,
  framesOf,
  writeMayChangeDevice,
  writeReachesDevice,
} from './device-snapshot.js';
export type {
  AccessorRef,
  DeviceXenCost,
  DomainKind,
  PendingOperation,
  RangesetOps,
  VfRangeWork,
} from './domain.js';
export { DOMID_IO, Domain, noRangesetOps, PciDevice, Vcpu, VPCI_MAX_VIRT_DEV } from './domain.js';
export { reportE820Frames } from './e820.js';
export type { MapOperation, VfNotAddedReason, VpciEvent } from './events.js';
export { describeEvent } from './events.js';
export type {
  BarSpec,
  DeviceSpec,
  ImageSizes,
  MsiSpec,
  MsixPlacement,
  MsixSpec,
  RebarSpec,
  RomSpec,
  SriovSpec,
} from './hardware.js';
export { PhysicalDevice, parseHexDump } from './hardware.js';
export type { InvariantContext, InvariantScope, Violation } from './invariants.js';
export { checkInvariants, describeViolation } from './invariants.js';
export type { IommuErrno } from './iommu.js';
export { IommuFaults, phantomFunctions, phantomStride } from './iommu.js';
export type { VfioPages } from './kvm-vfio-pages.js';
export { kvmVfioPages } from './kvm-vfio-pages.js';
export { KVM_VFIO_RULES } from './kvm-vfio-rules.js';
export type { AssignErrno, AssignResult, E820Entry, GuestOptions, MachineOptions } from './machine.js';
export { Machine } from './machine.js';
export type { MemoryTypeAnswer } from './memory-type.js';
export type { MmioPath, MmioResult } from './mmio.js';
export type { ModifyBarsErrno, ModifyBarsResult } from './modify-bars.js';
export { msixBir, msixGuestFrames, msixHostFrames, msixSize } from './msix.js';
export type { MsixHandler } from './msix-table.js';
// The PCI vocabulary the engine, the firmware model and the replayer share (pci_regs.h's names).
export {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_32,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_FAST_BACK,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_RSVDP_MASK,
  PCI_COMMAND_SERR,
  PCI_COMMAND_SPECIAL,
  PCI_COMMAND_VGA_PALETTE,
  PCI_COMMAND_WAIT,
  PCI_DEVICE_ID,
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP_PHANTOM,
  PCI_EXT_CAP_ID_REBAR,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_EXT_CAP_NEXT_MASK,
  PCI_HEADER_BRIDGE_NR_BARS,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_NORMAL,
  PCI_MSIX_BIRMASK,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_REBAR_CTRL_BAR_IDX,
  PCI_REBAR_CTRL_NBAR_MASK,
  PCI_REBAR_CTRL_NBAR_SHIFT,
  PCI_REBAR_CTRL_SIZE_MASK,
  PCI_REBAR_CTRL_SIZE_SHIFT,
  PCI_REBAR_SIZE_BIAS,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS1,
  PCI_SRIOV_BAR,
  PCI_SRIOV_CAP,
  PCI_SRIOV_CTRL,
  PCI_SRIOV_CTRL_ARI,
  PCI_SRIOV_CTRL_INTR,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_CTRL_VFM,
  PCI_SRIOV_FUNC_LINK,
  PCI_SRIOV_INITIAL_VF,
  PCI_SRIOV_NUM_BARS,
  PCI_SRIOV_NUM_VF,
  PCI_SRIOV_SIZEOF,
  PCI_SRIOV_STATUS,
  PCI_SRIOV_SUP_PGSIZE,
  PCI_SRIOV_SYS_PGSIZE,
  PCI_SRIOV_TOTAL_VF,
  PCI_SRIOV_VF_DID,
  PCI_SRIOV_VF_OFFSET,
  PCI_SRIOV_VF_STRIDE,
  PCI_SRIOV_VFM,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_RO_MASK,
  PCI_STATUS_RSVDZ_MASK,
  PCI_STATUS_RW1C_MASK,
  PCI_VENDOR_ID,
  pciRebarCap,
  pciRebarCtrl,
} from './pci-regs.js';
export type { MapErrno, PendingResult } from './pending.js';
export { type OrderedVcpu, PendingVcpus } from './pending-vcpus.js';
export type { Policy, Profile } from './policy.js';
export { POLICY_SWITCHES, policyFor } from './policy.js';
export type { QemuRegion } from './qemu-rules.js';
export { QEMU_RULES, qemuBarAddress, qemuUpdateMappings } from './qemu-rules.js';
export { IGNORE_BARS_DEVICES, ignoresBars } from './quirks.js';
export type { RuleSet, RuleSetHazard, RuleSetName } from './rule-set.js';
export { RULE_SET_NAMES } from './rule-set.js';
export { ruleSetFor } from './rule-sets.js';
export type { Sbdf } from './sbdf.js';
export { formatSbdf, makeSbdf, parseSbdf, toSbdf } from './sbdf.js';
export type { ConfigBytes, SriovCapabilitySpec, VfBarSpec } from './sriov-hardware.js';
export { SriovHardware, sriovPageSize, vfBarAddress, vfIndexOf, vfRoutingId } from './sriov-hardware.js';
export type { BarSpan, PageRun, VfioBar } from './vfio-mmap.js';
export { VFIO_PAGE_SIZE, vfioMmapSupported } from './vfio-mmap.js';
export { XEN_RULES } from './xen-rules.js';
