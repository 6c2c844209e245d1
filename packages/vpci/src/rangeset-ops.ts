/**
 * Counting Xen's rangeset calls on vPCI's BAR sets (`RangesetOps`) where Xen makes them: each call
 * site of the engine that stands for one adds to the device's tally and to its domain's. Counters
 * only, so the cost is a few additions per call Xen makes, none per frame.
 */
import { type EngineContext, mappingDomain } from './context.js';
import type { PciDevice, RangesetOps } from './domain.js';

/**
 * Adds `n` calls of `op` to `device.xenCost.rangesets` and to the `rangesetOps` of the domain the
 * device's sets belong to: its owner, or the hardware domain for one hidden in dom_xen (the domain
 * `modify_bars` walks for it, and the one its BARs map into: `mappingDomain`).
 */
export function countRangesetOps(
  context: EngineContext,
  device: PciDevice,
  op: keyof RangesetOps,
  n = 1,
): void {
  addOps(device.xenCost.rangesets, op, n);
  const domain = mappingDomain(context, device);
  if (domain !== undefined) addOps(domain.rangesetOps, op, n);
}

/**
 * `ops[op] += n` with each count named: a store keyed by a variable name is a generic keyed store in
 * V8 (a lookup by name each time), and `modifyBars` makes a dozen of these per decoding toggle.
 */
function addOps(ops: RangesetOps, op: keyof RangesetOps, n: number): void {
  switch (op) {
    case 'new':
      ops.new += n;
      return;
    case 'addRange':
      ops.addRange += n;
      return;
    case 'removeRange':
      ops.removeRange += n;
      return;
    case 'overlapsRange':
      ops.overlapsRange += n;
      return;
    case 'consumeRanges':
      ops.consumeRanges += n;
      return;
    case 'rangesConsumed':
      ops.rangesConsumed += n;
      return;
    case 'purge':
      ops.purge += n;
      return;
    case 'destroy':
      ops.destroy += n;
      return;
  }
}

/**
 * Empties every BAR set of the device, counting a `rangeset_purge` for each one that held something:
 * Xen's failure path in `vpci_process_pending` purges only the non-empty sets, and the hardened
 * purges (`purgeOnError`, `unmapOnDeassign`) are counted by the same rule.
 */
export function purgeBarSets(context: EngineContext, device: PciDevice): void {
  for (const bar of device.vpci?.bars ?? []) {
    const mem = bar.mem;
    if (mem === undefined || mem.isEmpty()) continue;
    countRangesetOps(context, device, 'purge');
    mem.purge();
  }
}
