/**
 * @vpci/fuzz: fuzzing the vPCI BAR mapping engine — random traces as fast-check arbitraries for a test
 * engineer's own properties (`arbTrace`), the engine-level generators the repository's properties use,
 * the campaign runner behind the `vpci-fuzz` command (seeded, sharded, shrinking each failure to a
 * trace `vpci-replay` replays). Every public export is listed here by name.
 */
export type { FuzzTrace } from './arb-trace.js';
export { arbTrace, writeTrace } from './arb-trace.js';
export { barSizeLog2, pow2, traceBarSizeLog2 } from './bar.js';
export type { CampaignOptions, CaseFailure, CaseResult } from './campaign.js';
export { casePlan, caseSeed, reproducer, reproducerName, runCase, shardCases } from './campaign.js';
export type { FailureKind, TraceCheck, TraceFailure } from './check.js';
export { checkTrace, describeViolation } from './check.js';
export type { FuzzCliIo } from './cli.js';
export { main as fuzzCli } from './cli.js';
export type { BarPlan, DevicePlan } from './device.js';
export {
  bootFault,
  bus0Sbdf,
  devicePlan,
  devicePlans,
  deviceSpecs,
  hostSbdf,
  MSIX_CAP,
  ROM_SLOT,
} from './device.js';
export type { SriovPlan, SriovStep, VfBarPlan } from './sriov.js';
export {
  PF_SBDF,
  SRIOV_POS,
  sriovPlan,
  sriovSpec,
  sriovStep,
  vfBarAddress,
  vfBarSize,
} from './sriov.js';
export type {
  Actor,
  BarStep,
  CommandStep,
  EngineBarPlacement,
  EngineStep,
  FaultStep,
  MoveStep,
  MsixStep,
  RawStep,
  RomStep,
  RunStep,
} from './step.js';
export { engineStep, rawValue } from './step.js';
export type { FuzzSummary, SummaryFailure, SummaryHead } from './summary.js';
export {
  MergeError,
  mergeSummaries,
  parseSummary,
  SUMMARY_FORMAT,
  summarize,
  summaryJson,
  summaryText,
} from './summary.js';
export type {
  IommuFaultCode,
  TraceAccess,
  TraceBarPlacement,
  TraceDevicePlan,
  TraceE820Plan,
  TraceFeature,
  TracePlan,
  TracePlanOptions,
  TraceStep,
  TraceVia,
} from './trace-plan.js';
export { arbTracePlan, TRACE_FEATURES } from './trace-plan.js';
export { hostBarAddresses, setupFailingImage, traceLines } from './trace-writer.js';
