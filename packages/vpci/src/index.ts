/**
 * @vpci/vpci: the vPCI BAR mapping engine after Xen's `xen/drivers/vpci`: devices and their config
 * space, the header handlers, MSI-X holes, per-BAR preemptible map/unmap, the two profiles and the
 * invariants. Every public export is listed here by name.
 */
export type { EngineContext } from './context.js';
export type { BarType, MsixState } from './device.js';
export { Bar, frameRange, PciDevice, VpciState } from './device.js';
export type { DomainKind, PendingOperation } from './domain.js';
export { DOMID_XEN, Domain, Vcpu } from './domain.js';
export type { MapOperation, VpciEvent } from './events.js';
export { describeEvent } from './events.js';
export type {
  AccessPath,
  AccessSize,
  AddressWindow,
  Allocation,
  AllocationInput,
  BarKind,
  BarPlacement,
  ConfigAccess,
  ConfigBus,
  Congruence,
  DeviceLayout,
  GuestMtrrOptions,
  HardwareBusOptions,
  HostBarAddress,
  LayoutMetrics,
  LowHole,
  LowHoleInput,
  MachineBusOptions,
  MemoryRegion,
  MtrrBlock,
  MtrrCover,
  MtrrLayoutJson,
  MtrrWindows,
  PciSetupOptions,
  PciSetupResult,
  PlacementPolicyName,
  PlacementTraceOptions,
  PlacementUnit,
  PlacementWindow,
  RamLayout,
  RamMove,
  ScannedBar,
  ScannedDevice,
  ScanOptions,
  ScanResult,
  UnitMember,
  UnitPlacement,
  WindowName,
  XenpciPlacement,
} from './firmware/index.js';
export {
  allocate,
  BAR_RELOC_THRESH,
  barFrames,
  checkOverlap,
  compareLayouts,
  congruenceOf,
  devfnName,
  devfnSbdf,
  formatMetricsTable,
  GB4,
  guestMtrrState,
  HVM_BELOW_4G_MMIO_START,
  HVMLOADER_DEFAULT_PHYS_BITS,
  hardwareBus,
  highWindowEnd,
  hvmloaderOrder,
  initialBarAddresses,
  isXenPlatformDevice,
  layoutFromInfoPci,
  machineBus,
  metricsOf,
  mmioDemand,
  mtrrCover,
  mtrrLayoutJson,
  PCI_IO_BASE,
  PCI_IO_END,
  PCI_VENDOR_ID_XEN,
  PLACEMENT_POLICIES,
  pciSetup,
  placeBars,
  placementTrace,
  placementUnits,
  RESERVED_MEMBASE,
  relocateRam,
  SECTION_4_7_DEVICES,
  SEED_002_LAYOUT_1,
  SEED_002_LAYOUT_2,
  scanBus,
  seed000Trace,
  sharedPages,
  sizeLowHole,
  superpageFramesOf,
  traceBarAssertions,
  traceDeviceLine,
  traceDomainLine,
  xenpciTopOfHole,
} from './firmware/index.js';
export type {
  BarSpec,
  DeviceSpec,
  ImageSizes,
  MsixPlacement,
  MsixSpec,
  RebarSpec,
  RomSpec,
} from './hardware.js';
export { findCapability, findExtCapability, PhysicalDevice, parseHexDump } from './hardware.js';
export type { Violation } from './invariants.js';
export { checkInvariants, describeViolation } from './invariants.js';
export type { AssignResult, E820Entry, GuestOptions, MachineOptions } from './machine.js';
export { Machine } from './machine.js';
export type { ModifyBarsResult } from './modify-bars.js';
export { msixGuestFrames, msixHostFrames, msixSize } from './msix.js';
export type { MapErrno, PendingResult } from './pending.js';
export type { Policy, Profile } from './policy.js';
export { POLICY_SWITCHES, policyFor } from './policy.js';
export type { AddRegisterResult, Register, RegisterMasks } from './registers.js';
export { RegisterTable } from './registers.js';
export type { CliIo } from './replay/cli.js';
export { main as replayCli } from './replay/cli.js';
export { TraceError } from './replay/fields.js';
export { fileLineChunks } from './replay/file-lines.js';
export { renderHtml } from './replay/html.js';
export { renderSvg } from './replay/picture.js';
export type { QemuAccess, QemuConversion, QemuMapping, QemuOptions } from './replay/qemu.js';
export { convertQemuLog, parseInfoPci, parseQemuLog } from './replay/qemu.js';
export type {
  AssertionFailure,
  LoggedEvent,
  ReplayNote,
  ReplayOptions,
  SeenViolation,
} from './replay/replayer.js';
export { Replayer } from './replay/replayer.js';
export type {
  HoleReason,
  Report,
  ReportBar,
  ReportDevice,
  ReportDomain,
  ReportExtent,
  ReportHole,
  ReportMsix,
} from './replay/report.js';
export { buildReport, REPORT_FORMAT, reportJson } from './replay/report.js';
export { replayText, TraceReplay } from './replay/run.js';
export { humanSize, textReport } from './replay/text-report.js';
export type {
  RunStatus,
  TraceAssertion,
  TraceE820,
  TraceEvent,
  TraceMtrr,
  TraceVcpu,
} from './replay/trace.js';
export { ASSERTION_KINDS, EVENT_NAMES, parseTraceLine } from './replay/trace.js';
export type { Sbdf } from './sbdf.js';
export { formatSbdf, makeSbdf, parseSbdf } from './sbdf.js';
