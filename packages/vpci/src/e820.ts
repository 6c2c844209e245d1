/**
 * The host memory map (e820) as the BAR sets see it: which guest frames of a BAR it takes out, the
 * one rule shared by `modifyBars` (x86 `pci_sanitize_bar_memory`), the hardened MSI-X page restore
 * and the report.
 */
import { type Gfn, MAX_FRAME, mfn } from '@vpci/p2m';
import type { EngineContext } from './context.js';
import type { Bar } from './device.js';

/**
 * Calls `visit(first, last)` for each range of guest frames of `bar` that the host memory map takes
 * out, in ascending order, until it returns something other than `undefined` (returned). The map
 * (`e820Frames`) holds host frames:
 * - Xen (G5) removes them from the guest frames unchanged, every entry wherever the BAR is: a machine
 *   frame read as the guest frame with the same number, right only for identity-mapped BARs;
 * - `e820OnHostFrames`: the BAR's host frames the map covers, translated through the BAR's shift to
 *   the guest frames that would map them.
 */
export function reportE820Frames<R>(
  context: EngineContext,
  bar: Bar,
  visit: (first: Gfn, last: Gfn) => R | undefined,
): R | undefined {
  if (!context.policy.e820OnHostFrames) {
    // G5, the one place the engine reads a host frame as a guest frame, on purpose.
    return context.e820Frames.reportRanges(mfn(0), mfn(MAX_FRAME), (start, end) =>
      visit(start as number as Gfn, end as number as Gfn),
    );
  }
  const [hostStart, hostEnd] = bar.hostFrames();
  return context.e820Frames.reportRanges(hostStart, hostEnd, (start, end) =>
    visit(bar.guestFrameOf(start), bar.guestFrameOf(end)),
  );
}

/** Whether the host memory map takes guest frame `frame` out of `bar`'s set (`reportE820Frames`). */
export function e820Excludes(context: EngineContext, bar: Bar, frame: Gfn): boolean {
  if (!context.policy.e820OnHostFrames) return context.e820Frames.containsRange(mfn(frame), mfn(frame));
  const machineFrame = bar.hostFrameOf(frame);
  return (
    machineFrame >= 0 &&
    machineFrame <= MAX_FRAME &&
    context.e820Frames.containsRange(mfn(machineFrame), mfn(machineFrame))
  );
}
