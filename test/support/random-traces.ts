/**
 * Random traces for the property tests of packages that may not depend on @vpci/fuzz themselves
 * (packages/replay's picture-layout test): @vpci/fuzz's `arbTrace`, reached from test/, where the
 * cross-package tests may use it.
 */
import { arbTrace, type FuzzTrace, type TracePlanOptions } from '@vpci/fuzz';
import type fc from 'fast-check';

/** Random traces (`arbTrace`) of at most 50 steps. */
export function randomTraces(options: TracePlanOptions = {}): fc.Arbitrary<FuzzTrace> {
  return arbTrace({ maxSteps: 50, ...options });
}
