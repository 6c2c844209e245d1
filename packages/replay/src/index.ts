/**
 * @vpci/replay: trace replay for the vPCI BAR mapping engine — the JSON-lines trace format and its
 * reader, the replayer, text and JSON reports, the SVG/HTML memory map, QEMU trace-log import and the
 * `vpci-replay` CLI. Every public export is listed here by name.
 */
export type { CliIo } from './cli.js';
export { main as replayCli } from './cli.js';
export type { CompareTarget } from './compare.js';
export { CompareReplay, comparableNames, compareTargets, MAX_COMPARE_STEPS } from './compare.js';
export { compareHtml, compareText } from './compare-report.js';
export type {
  CompareMapping,
  CompareRange,
  CompareRun,
  CompareStep,
  ReportCompare,
} from './compare-section.js';
export { TraceError } from './fields.js';
export {
  ByteBlock,
  ByteLines,
  fileLineBlocks,
  fileLineBytes,
  fileLineChunks,
  fileLineSpans,
  LineSpans,
} from './file-lines.js';
export { renderHtml } from './html.js';
export { renderSvg } from './picture.js';
export type {
  QemuAccess,
  QemuCheckpoint,
  QemuConversion,
  QemuCounts,
  QemuDevice,
  QemuDropped,
  QemuMapping,
  QemuOptions,
  QemuWindow,
} from './qemu.js';
export { convertQemuLog, parseInfoPci, parseQemuLog, parseQemuMonitor } from './qemu.js';
export { qemuLogText } from './qemu-log.js';
export type { MonitorBar, MonitorDevice, MonitorWindow, QemuMonitor } from './qemu-monitor.js';
export { QemuOracle, replayQemuConversion } from './qemu-oracle.js';
export type { DivergenceRule, ReportDivergence, ReportQemu } from './qemu-report.js';
export type {
  AssertionFailure,
  LoggedEvent,
  ReplayNote,
  ReplayOptions,
  SeenViolation,
} from './replayer.js';
export { Replayer } from './replayer.js';
export type {
  HoleReason,
  Report,
  ReportBar,
  ReportDevice,
  ReportDomain,
  ReportExtent,
  ReportHole,
  ReportMmio,
  ReportMsi,
  ReportMsix,
  ReportRangesetOps,
  ReportXenCost,
} from './report.js';
export { buildReport, REPORT_FORMAT, reportJson } from './report.js';
export { replayText, TraceReplay } from './run.js';
export type { ReportSriov, ReportVfBar } from './sriov-report.js';
export type { TextReportOptions } from './text-report.js';
export { humanSize, textReport } from './text-report.js';
export type {
  RunStatus,
  TraceAssertion,
  TraceE820,
  TraceEvent,
  TraceMtrr,
  TraceVcpu,
} from './trace.js';
export { ASSERTION_KINDS, EVENT_NAMES, parseTraceLine } from './trace.js';
