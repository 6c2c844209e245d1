/**
 * @vpci/firmware: guest firmware for the vPCI BAR mapping engine. hvmloader's PCI BAR placement
 * (`pci_setup`) and three other placement policies, the guest MTRR layout hvmloader programs
 * (`cacheattr_init`), metrics to compare layouts, and the trace lines that replay a placement. It runs
 * through config-space accesses on a `Machine` (or on bare devices); the engine does not depend on it.
 * Every public export is listed here by name.
 */
export type {
  AccessPath,
  AccessSize,
  ConfigAccess,
  ConfigBus,
  HardwareBusOptions,
  HostBarAddress,
  MachineBusOptions,
} from './bus.js';
export { hardwareBus, machineBus } from './bus.js';
export type { MemoryRegion } from './hole.js';
export type { LayoutMetrics } from './layout-metrics.js';
export { compareLayouts, formatMetricsTable, metricsOf } from './layout-metrics.js';
export type { DeviceLayout } from './layouts.js';
export { layoutFromInfoPci } from './layouts.js';
export type { GuestMtrrOptions, MtrrBlock, MtrrCover, MtrrLayoutJson, MtrrWindows } from './mtrr-layout.js';
export { guestMtrrState, mtrrCover, mtrrLayoutJson } from './mtrr-layout.js';
export type {
  BarPlacement,
  Congruence,
  PciSetupOptions,
  PciSetupResult,
  PlacementWindow,
} from './pci-setup.js';
export { pciSetup, placeBars } from './pci-setup.js';
export { placementRangesetOps } from './placement-rangesets.js';
export type { PlacementPolicyName } from './policy.js';
export { PLACEMENT_POLICIES } from './policy.js';
export type { RamLayout, RamMove } from './relocate.js';
export type { BarKind, ScannedBar, ScannedDevice } from './scan.js';
export type { PlacementTraceOptions } from './trace-lines.js';
export { placementTrace, traceBarAssertions, traceDeviceLine, traceDomainLine } from './trace-lines.js';
