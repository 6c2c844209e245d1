/**
 * Guest firmware: hvmloader's PCI BAR placement (`pci_setup`) and guest MTRR layout
 * (`cacheattr_init`), run through config-space accesses on a `Machine` (or bare devices), with
 * placement policies to compare. The engine does not depend on this module. Every export by name.
 */
export type { AddressWindow, Allocation, AllocationInput, UnitPlacement, WindowName } from './allocate.js';
export { allocate, highWindowEnd } from './allocate.js';
export type {
  AccessPath,
  AccessSize,
  ConfigAccess,
  ConfigBus,
  HardwareBusOptions,
  HostBarAddress,
  MachineBusOptions,
} from './bus.js';
export { devfnName, devfnSbdf, hardwareBus, initialBarAddresses, machineBus } from './bus.js';
export {
  BAR_RELOC_THRESH,
  GB4,
  HVM_BELOW_4G_MMIO_START,
  HVMLOADER_DEFAULT_PHYS_BITS,
  PCI_IO_BASE,
  PCI_IO_END,
  PCI_VENDOR_ID_XEN,
  RESERVED_MEMBASE,
} from './constants.js';
export type { LowHole, LowHoleInput, MemoryRegion } from './hole.js';
export { checkOverlap, sizeLowHole } from './hole.js';
export type { LayoutMetrics } from './layout-metrics.js';
export {
  barFrames,
  compareLayouts,
  formatMetricsTable,
  metricsOf,
  sharedPages,
  superpageFramesOf,
} from './layout-metrics.js';
export type { DeviceLayout } from './layouts.js';
export { layoutFromInfoPci, SEED_002_LAYOUT_1, SEED_002_LAYOUT_2 } from './layouts.js';
export type { GuestMtrrOptions, MtrrBlock, MtrrCover, MtrrLayoutJson, MtrrWindows } from './mtrr-layout.js';
export { guestMtrrState, mtrrCover, mtrrLayoutJson } from './mtrr-layout.js';
export type {
  BarPlacement,
  Congruence,
  PciSetupOptions,
  PciSetupResult,
  PlacementWindow,
} from './pci-setup.js';
export { congruenceOf, pciSetup, placeBars } from './pci-setup.js';
export type { PlacementPolicyName, PlacementUnit, UnitMember } from './policy.js';
export { hvmloaderOrder, mmioDemand, PLACEMENT_POLICIES, placementUnits } from './policy.js';
export type { RamLayout, RamMove } from './relocate.js';
export { relocateRam } from './relocate.js';
export type { BarKind, ScannedBar, ScannedDevice, ScanOptions, ScanResult, XenpciPlacement } from './scan.js';
export { scanBus } from './scan.js';
export { SECTION_4_7_DEVICES, seed000Trace } from './seed-000.js';
export type { PlacementTraceOptions } from './trace-lines.js';
export { placementTrace, traceBarAssertions, traceDeviceLine, traceDomainLine } from './trace-lines.js';
export { isXenPlatformDevice, xenpciTopOfHole } from './xenpci.js';
