/**
 * The `@vpci/rangeset/internal` entry: what the workspace's packages share of this one's internals
 * and is not part of its public API (no compatibility promise): the interpolation search the p2m's
 * lookup uses, and the interval index the p2m keeps its extents by machine frame in (and the vPCI
 * checks their BAR windows and host pages).
 */
export { IntervalIndex } from './interval-index.js';
export { lastAtOrBelow } from './search.js';
