/**
 * What a whole-machine invariant check searches, listed from the machine as it stands at every check:
 * per domain its enabled BAR windows and MSI-X pages by guest frame, and every device's host pages by
 * machine frame. The whole check is the reference the scoped checks are compared with, so none of
 * the scoped checks' indexes (window-index.ts, host-pages.ts) or their change detection is read: each
 * list is made from the devices, sorted once, and searched (a walk over every item for every p2m
 * extent cost most of a whole check). An earlier listing's order may be where a sort starts from:
 * the sort's answer is the same from any start.
 */
import { type MsixPages, pushDeviceWindows, type Window } from './bar-windows.js';
import type { EngineContext } from './context.js';
import type { PciDevice } from './domain.js';
import { effectiveOwner, hostBarFrames } from './ownership.js';
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

  /**
   * `items` (kept, not copied) on the spans `first(item)` … `last(item)`. `earlier`, the same list as
   * an earlier check made it, only speeds the sort: with as many items, its order is where the sort
   * starts from.
   */
  constructor(
    private readonly items: readonly T[],
    first: (item: T) => number,
    last: (item: T) => number,
    earlier?: SortedSpans<T>,
  ) {
    const { byFirst, firsts, lasts, reach } = this;
    for (let i = 0; i < items.length; i++) {
      firsts.push(first(items[i]!));
      lasts.push(last(items[i]!));
    }
    // An insertion sort (a domain's items are a few hundred at most) of the indexes taken in listing
    // order, or in the order an earlier listing of as many items sorted to: a device's BARs are listed
    // low and high in turn (BAR0 below 4 GiB, BAR2 above), so listing order costs a move per pair of
    // devices (2,016 for the bench's 64), and one change since the earlier listing a few.
    const start =
      earlier !== undefined && earlier.byFirst.length === items.length ? earlier.byFirst : undefined;
    for (let i = 0; i < items.length; i++) {
      const index = start === undefined ? i : start[i]!;
      const from = firsts[index]!;
      let j = i - 1;
      for (; j >= 0 && firsts[byFirst[j]!]! > from; j--) byFirst[j + 1] = byFirst[j]!;
      byFirst[j + 1] = index;
    }
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
    const out: T[] = [];
    this.collect(first, last, out);
    return out;
  }

  /**
   * `meeting` written into `into` from its start; returns how many (the items past them are left as
   * they were): for a search made per extent, whose answer is read before the next.
   */
  collect(first: number, last: number, into: T[]): number {
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
    // Listing order: an insertion sort of the few found (`Array.prototype.sort` allocates).
    for (let i = 1; i < count; i++) {
      const v = found[i]!;
      let j = i - 1;
      for (; j >= 0 && found[j]! > v; j--) found[j + 1] = found[j]!;
      found[j + 1] = v;
    }
    for (let i = 0; i < count; i++) into[i] = this.items[found[i]!]!;
    return count;
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
 * emptied: a whole check makes hundreds of searches, and a list made per search was garbage at once.
 */
const foundIndexes: number[] = [];

type Region = readonly (readonly [number, number])[];

function meetsRegion(region: Region, first: number, last: number): boolean {
  for (let i = 0; i < region.length; i++) if (region[i]![0] <= last && first <= region[i]![1]) return true;
  return false;
}

const spanFirst = (item: { readonly first: number }): number => item.first;
const spanLast = (item: { readonly last: number }): number => item.last;

/**
 * The windows and MSI-X pages of a domain's devices as a whole check listed them, searchable by guest
 * frame: lists in the order a walk over the devices meets them.
 */
export class WholeLayout implements DomainLayout {
  private readonly windows: SortedSpans<Window>;
  private readonly msix: SortedSpans<MsixPages>;

  /**
   * Those of `devices` (a domain's devices with vPCI state, in SBDF order) as they are now; `earlier`,
   * the same domain's as an earlier check listed them, only speeds the sorts (`SortedSpans`).
   */
  constructor(devices: readonly PciDevice[], earlier?: WholeLayout) {
    const listedWindows: Window[] = [];
    const listedMsix: MsixPages[] = [];
    for (let i = 0; i < devices.length; i++) pushDeviceWindows(devices[i]!, listedWindows, listedMsix);
    this.windows = new SortedSpans(listedWindows, spanFirst, spanLast, earlier?.windows);
    this.msix = new SortedSpans(listedMsix, spanFirst, spanLast, earlier?.msix);
  }

  windowsMeeting(first: number, last: number): readonly Window[] {
    return this.windows.meeting(first, last);
  }
  windowsIn(region: Region | undefined): readonly Window[] {
    return region === undefined ? this.windows.all() : this.windows.meetingAny(region);
  }
  msixMeeting(first: number, last: number): readonly MsixPages[] {
    return this.msix.meeting(first, last);
  }
  msixIn(region: Region | undefined): readonly MsixPages[] {
    return region === undefined ? this.msix.all() : this.msix.meetingAny(region);
  }
  collectWindowsMeeting(region: Region, into: Window[]): number {
    return collectMeeting(this.windows.meetingAny(region), region, into);
  }
  collectMsixMeeting(region: Region, into: MsixPages[]): number {
    return collectMeeting(this.msix.meetingAny(region), region, into);
  }
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

/**
 * Every device's host pages as they are now (`hostBarFrames`), by machine frame, in device order;
 * `earlier`, as an earlier check listed them, only speeds the sort (`SortedSpans`).
 */
export function wholeHostPages(
  context: EngineContext,
  earlier?: SortedSpans<HostPage>,
): SortedSpans<HostPage> {
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
    earlier,
  );
}
