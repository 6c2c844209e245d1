/**
 * Whether the machine frames an enabled BAR's window maps to hold no other domain's host page, for
 * the lean scoped check (`regionFindsNothing`, condition 2): remembered per BAR while the machine's
 * index of host pages stands (`HostPagesCache.indexVersion`) and the window maps the same machine
 * frames for the same domain.
 *
 * The lean check asked the index once per p2m extent of the region, on every line that finished a
 * map. An extent the region's windows explain (condition 3: each of its frames lies in a window with
 * the extent's guest → machine shift) lies, by machine frame, within those windows' machine frames;
 * so when none of those holds another domain's page, no extent does. Those frames and the pages
 * stay from one reprogramming to the next (the hardware domain maps its BARs back where they were, a
 * guest moves its BAR's guest address, not the host one), so the answer found for a BAR last time
 * is the answer now.
 */

import type { IntervalIndex } from '@vpci/rangeset/internal';
import type { Window } from './bar-windows.js';
import type { DeviceCheckStates } from './device-check-state.js';
import type { HostPageSpot } from './host-pages.js';

/**
 * A BAR's last answer: its window's machine frames, for which domain, at which index version, all
 * the answer depends on. Kept in its device's state by slot (`DeviceCheckState.unshared`).
 */
interface Answer {
  first: number;
  last: number;
  domain: number;
  version: number;
}

/** The pages one search found, refilled from the start (`length = 0` gives an array's store up). */
const found: HostPageSpot[] = [];

/** The answers of one machine's checks, per BAR (`InvariantCaches.unsharedWindows`). */
export class UnsharedWindows {
  /** Where each BAR's last window found to hold no other domain's page is kept, by slot. */
  constructor(private readonly states: DeviceCheckStates) {}

  /**
   * Whether no page of `pages` (the host-page index, at `version`) on the machine frames of any of
   * the first `count` of `windows` belongs to a domain other than `domain` (a page of no domain is
   * no one's to share, as in the sharing check).
   */
  noneShared(
    windows: readonly Window[],
    count: number,
    domain: number,
    pages: IntervalIndex<HostPageSpot>,
    version: number,
  ): boolean {
    for (let i = 0; i < count; i++) if (!this.unshared(windows[i]!, domain, pages, version)) return false;
    return true;
  }

  private unshared(w: Window, domain: number, pages: IntervalIndex<HostPageSpot>, version: number): boolean {
    const first = w.first + w.shift;
    const last = w.last + w.shift;
    const state = this.states.of(w.device);
    if (state.unshared === undefined) state.unshared = [];
    const answers = state.unshared as (Answer | undefined)[];
    const known = answers[w.bar.index];
    if (
      known !== undefined &&
      known.version === version &&
      known.domain === domain &&
      known.first === first &&
      known.last === last
    )
      return true;
    const n = pages.collect(first, last, found, 0);
    for (let k = 0; k < n; k++) {
      const owner = found[k]!.owner;
      if (owner !== undefined && owner !== domain) return false;
    }
    // Only a window found unshared is remembered: one that is not sends the check to its extents.
    if (known === undefined) answers[w.bar.index] = { first, last, domain, version };
    else {
      known.first = first;
      known.last = last;
      known.domain = domain;
      known.version = version;
    }
    return true;
  }
}
