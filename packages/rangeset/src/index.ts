/**
 * @vpci/rangeset: compressed sets of inclusive integer ranges with preemptible iteration, after Xen's
 * `xen/common/rangeset.c`. Every public export is listed here by name.
 */

export { lastAtOrBelow } from './_internal/search.js';
export { InvalidArgumentError, MAX_VALUE, RangeSetBusyError } from './errors.js';
export { formatRangeSet } from './format.js';
export type { Range, RangeSetOptions } from './rangeset.js';
export { RangeSet } from './rangeset.js';
export type {
  ClaimResult,
  ConsumeResult,
  ConsumeStep,
  Errno,
  Failure,
  Ok,
  RangeSetCode,
  Result,
} from './results.js';
