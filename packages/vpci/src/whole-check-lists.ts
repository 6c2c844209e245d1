/**
 * What a whole-machine invariant check searches, listed from the machine as it stands at every check:
 * per domain its enabled BAR windows and MSI-X pages by guest frame, and every device's host pages by
 * machine frame. The whole check is the reference the scoped checks are compared with, so nothing
 * here is kept between checks, and none of the scoped checks' indexes (window-index.ts,
 * host-pages.ts) or their change detection is read: each list is made from the devices, sorted once,
 * and searched (a walk over every item for every p2m extent cost most of a whole check).
 */
import { type MsixPages, pushDeviceWindows, type Window } from './bar-windows.js';
import type { EngineContext } from './context.js';
import type { PciDevice } from './domain.js';
import { effectiveOwner, hostBarFrames } from './ownership.js';
import { sortSmall } from './small-sort.js';
import { collectMeeting, type DomainLayout } from './window-index.js';

/**
 * Items on inclusive frame spans, sorted by first frame once, with the largest last frame of every
 * prefix of that order: a search finds exactly the items a walk over all of them testing
 * `item.first <= last && first <= item.last` finds (an inverted span, a BAR of size 0 at a page
 * boundary, included), and gives them in the order they were listed in.
 */
export class SortedSpans<T> {
  /** Item indexes (their place in the listing) by first frame. */
  private readonly byFirst: number[] = [];
  private readonly firsts: number[] = [];
  private readonly lasts: number[] = [];
  /** `reach[k]`: the largest last frame of `byFirst[0 … k]`. */
  private readonly reach: number[] = [];

  /** `items` (kept, not copied) on the spans `first(item)` … `last(item)`. */
  constructor(
    private readonly items: readonly T[],
    first: (item: T) => number,
    last: (item: T) => number,
  ) {
    const { byFirst, firsts, lasts, reach } = this;
    // An insertion sort while its moves stay within n log n: on the usual listing, mostly in frame
    // order, the library's sort cost more (DESIGN.md, "Whole checks that reuse their answer": 128
    // host pages, 2,016 moves). Past that, the library's (stable, n log n): devices are listed by
    // SBDF and nothing keeps their BARs in that order; thousands in falling order made it quadratic.
    let movesLeft = 8 * items.length * Math.ceil(Math.log2(items.length + 2));
    for (let i = 0; i < items.length; i++) {
      firsts.push(first(items[i]!));
      lasts.push(last(items[i]!));
      if (movesLeft < 0) {
        byFirst.push(i);
        continue;
      }
      let j = i - 1;
      for (; j >= 0 && firsts[byFirst[j]!]! > firsts[i]!; j--) byFirst[j + 1] = byFirst[j]!;
      byFirst[j + 1] = i;
      movesLeft -= i - 1 - j;
    }
    if (movesLeft < 0) byFirst.sort((a, b) => firsts[a]! - firsts[b]! || a - b);
    let most = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < byFirst.length; k++) {
      most = Math.max(most, lasts[byFirst[k]!]!);
      reach.push(most);
    }
  }

  /** Every item, in listing order. */
  all(): readonly T[] {
    return this.items;
  }

  /** The items meeting `[first, last]`, in listing order. */
  meeting(first: number, last: number): T[] {
    const { byFirst, firsts, lasts, reach } = this;
    // Past the items starting by `last`, then back while some before them still reach `first`.
    let lo = 0;
    let hi = byFirst.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (firsts[byFirst[mid]!]! <= last) lo = mid + 1;
      else hi = mid;
    }
    const found = foundIndexes;
    let count = 0;
    for (let k = lo - 1; k >= 0 && reach[k]! >= first; k--)
      if (lasts[byFirst[k]!]! >= first) found[count++] = byFirst[k]!;
    // Listing order (`sortSmall`: no work array for the few an extent usually meets, and not
    // quadratic when an extent meets thousands).
    sortSmall(found, ascending, count);
    // Made at its length: grown from empty, a list's first push takes a store of 17 (most searches
    // find one item, and the sharing check searches once per extent).
    const out = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = this.items[found[i]!]!;
    return out;
  }

  /** The items meeting any range of `region`, each once, in listing order. */
  meetingAny(region: Region): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.items.length; i++)
      if (meetsRegion(region, this.firsts[i]!, this.lasts[i]!)) out.push(this.items[i]!);
    return out;
  }
}

/**
 * The item indexes one search found (`SortedSpans.meeting`), refilled from the start and never
 * emptied: a whole check makes
 * hundreds of searches, and a list made per search was garbage at once.
 */
const foundIndexes: number[] = [];

const ascending = (a: number, b: number): number => a - b;

type Region = readonly (readonly [number, number])[];

function meetsRegion(region: Region, first: number, last: number): boolean {
  for (let i = 0; i < region.length; i++) if (region[i]![0] <= last && first <= region[i]![1]) return true;
  return false;
}

const spanFirst = (item: { readonly first: number }): number => item.first;
const spanLast = (item: { readonly last: number }): number => item.last;

/**
 * The windows and MSI-X pages of `devices` (a domain's devices with vPCI state, in SBDF order) as
 * they are now, searchable by guest frame: lists in the order a walk over the devices meets them.
 */
export function wholeLayout(devices: readonly PciDevice[]): DomainLayout {
  const listedWindows: Window[] = [];
  const listedMsix: MsixPages[] = [];
  for (let i = 0; i < devices.length; i++) pushDeviceWindows(devices[i]!, listedWindows, listedMsix);
  const windows = new SortedSpans(listedWindows, spanFirst, spanLast);
  const msix = new SortedSpans(listedMsix, spanFirst, spanLast);
  return {
    windowsMeeting: (first, last) => windows.meeting(first, last),
    windowsIn: (region) => (region === undefined ? windows.all() : windows.meetingAny(region)),
    msixMeeting: (first, last) => msix.meeting(first, last),
    msixIn: (region) => (region === undefined ? msix.all() : msix.meetingAny(region)),
    collectWindowsMeeting: (region, into) => collectMeeting(windows.meetingAny(region), region, into),
    collectMsixMeeting: (region, into) => collectMeeting(msix.meetingAny(region), region, into),
  };
}

/** One host page range of a device, with its owner and its place among the device's pages. */
export interface HostPage {
  readonly device: PciDevice;
  /** The domain that owns the device (dom_xen's and dom_io's count as the hardware domain's). */
  readonly owner: number | undefined;
  /** Its place among the device's pages (the order a check reports them in). */
  readonly position: number;
  readonly frames: readonly [number, number];
}

/** Every device's host pages as they are now (`hostBarFrames`), by machine frame, in device order. */
export function wholeHostPages(context: EngineContext): SortedSpans<HostPage> {
  const pages: HostPage[] = [];
  for (const device of context.devices()) {
    const owner = effectiveOwner(context, device);
    const frames = hostBarFrames(device);
    for (let position = 0; position < frames.length; position++)
      pages.push({ device, owner, position, frames: frames[position]! });
  }
  return new SortedSpans(
    pages,
    (page) => page.frames[0],
    (page) => page.frames[1],
  );
}
