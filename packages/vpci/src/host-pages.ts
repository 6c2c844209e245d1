/**
 * The host pages of a device's BARs (see `hostBars`), for the sharing invariant. A replay checks
 * invariants after every line that changed something, and a line writes one device's registers:
 * remembering each device's pages until its BAR registers are written again or a vPCI BAR's host frames
 * change keeps a check from rebuilding them for every device on the machine.
 */

import { IntervalIndex } from '@vpci/rangeset/internal';
import type { EngineContext } from './context.js';
import type { Bar } from './device.js';
import { DeviceCheckStates } from './device-check-state.js';
import type { PciDevice } from './domain.js';
import { BarWriteLog, type PhysicalDevice } from './hardware.js';
import { effectiveOwner, hostBarFrames } from './ownership.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_HEADER_BRIDGE_NR_BARS,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS1,
} from './pci-regs.js';

/** Inclusive host frames, as `Bar.hostFrames` gives them. */
export type HostFrames = readonly [number, number];

/**
 * A device's host pages and what they were worked out from (updated in place when worked out again;
 * `DeviceCheckState.hostPages`).
 */
interface Remembered {
  /** The device's BAR register write count when made. */
  barWrites: number;
  /**
   * Its vPCI state then, and that state's `barHostChanges()` then: a vPCI BAR whose type, host
   * address or size was set later may move its pages (its enabled flag or guest address cannot).
   */
  vpci: PciDevice['vpci'];
  madeAt: number;
  pages: readonly HostFrames[];
  /**
   * The pages of the last states of its BARs, made when they are first worked out again (most
   * devices' BARs never move after they are first read).
   */
  states: BarStates | undefined;
}

/** The host frames of a device's BARs and the domain that owns it (dom_xen's count as dom0's). */
export interface DevicePages {
  readonly device: PciDevice;
  readonly owner: number | undefined;
  /**
   * The id of the domain that holds the device (`owner` counts dom_xen's and dom_io's as dom0's):
   * a sharing violation names it, so a device moving between those is a move too.
   */
  readonly holder: number | undefined;
  readonly pages: readonly HostFrames[];
}

/** One host page range of a device in the machine-wide index, and where it is in the listing. */
export interface HostPageSpot {
  readonly device: PciDevice;
  readonly owner: number | undefined;
  /** Its place among the device's pages (the order a check reports them in). */
  readonly position: number;
  readonly frames: HostFrames;
}

/** What a scoped check finds of the host pages: the index, and which moved. */
export interface HostPagesNear {
  readonly index: IntervalIndex<HostPageSpot>;
  /**
   * The machine frames of the pages that moved or changed holder since the listing was last brought
   * up to date (where they were and where they are); undefined when the listing was made from
   * scratch just now (what moved is not known).
   */
  readonly moved: [number, number][] | undefined;
}

/** A machine's devices in order with their pages, and where each device is in that order. */
interface Listing {
  /** `EngineContext.deviceListVersion` when the listing was made. */
  readonly version: number;
  readonly entries: DevicePages[];
  /** Where each device is in `entries` (`DeviceCheckState.listing` this listing, at `listingAt`). */
  readonly atHardware: ReadonlyMap<PhysicalDevice, number>;
  /** Every entry's pages by machine frame, made with the listing and changed with its entries. */
  readonly index: IntervalIndex<HostPageSpot>;
  /** The spots of each entry held in `index`. */
  readonly spots: HostPageSpot[][];
}

/**
 * Each device's host pages, and the machine's listing of them with an index by machine frame; one
 * per machine. A scoped check brings the listing up to date where it may have changed (`indexNear`)
 * and searches the index; a whole check lists the pages afresh (whole-check-lists.ts) and drops the
 * listing (`forget`), so the two are compared in every test that compares scoped with whole checks.
 */
export class HostPagesCache {
  private listing: Listing | undefined;
  /** The devices whose BARs may have moved since the listing was last brought up to date. */
  private readonly barWrites = new BarWriteLog();
  /** What moved that `indexAhead` found and its caller handed back (`holdMoved`) for the next `indexNear`. */
  private readonly movedHeld: [number, number][] = [];
  /** How many times the index by machine frame was made or changed (`indexVersion`). */
  private indexChanges = 0;

  /** Where each device's pages and its place in the listing are kept (`DeviceCheckState`). */
  constructor(private readonly states = new DeviceCheckStates()) {}

  /**
   * A count of the index's changes (made again, or a device's pages in it replaced): what was found
   * in it stands while the count does (the lean scoped check's answers per window, unshared-windows.ts).
   */
  get indexVersion(): number {
    return this.indexChanges;
  }

  /**
   * The host frames of every BAR `device` decodes or vPCI maps. The same array while they stay the
   * same, even across register writes that did not move them (a listing is kept while its devices'
   * arrays are).
   */
  hostPagesOf(device: PciDevice): readonly HostFrames[] {
    const state = this.states.of(device);
    const known = state.hostPages as Remembered | undefined;
    if (known !== undefined && known.barWrites === device.hw.barWrites && unchangedSince(device, known))
      return known.pages;
    const barWrites = device.hw.barWrites;
    const vpci = device.vpci;
    const madeAt = vpci?.barHostChanges() ?? 0;
    if (known === undefined) {
      const found = hostBarFrames(device);
      state.hostPages = { barWrites, vpci, madeAt, pages: found, states: undefined } satisfies Remembered;
      return found;
    }
    // A state of its BARs met lately gives the pages worked out then (the hardware domain sizing and
    // placing a BAR goes through the same few states reprogramming after reprogramming); a VF's BARs
    // are its PF's registers' business (`BarStates`).
    let found: readonly HostFrames[] | undefined;
    if (device.physfn === undefined) {
      known.states ??= new BarStates();
      found = known.states.pagesOf(device.hw, vpci?.bars);
    }
    if (found === undefined) {
      found = hostBarFrames(device);
      known.states?.keep(device.hw, vpci?.bars, found);
    }
    known.barWrites = barWrites;
    known.vpci = vpci;
    known.madeAt = madeAt;
    if (found !== known.pages && !sameFrames(found, known.pages)) known.pages = found;
    return known.pages;
  }

  /**
   * Drops the listing (a whole check: what changed before it is named to no scoped check, so the
   * next one makes the listing again from the machine).
   */
  forget(): void {
    this.listing = undefined;
  }

  /**
   * The listing's index by machine frame, brought up to date: `changed` names the devices whose
   * vPCI state may have changed since the machine's last check (a scoped check's devices); the
   * devices whose BAR registers were written since are looked at too (the hardware domain moves the
   * BARs of a device vPCI does not handle without any check seeing that device). A device added or
   * removed since the listing was made (a hot plug or an unplug) makes it again.
   */
  indexNear(context: EngineContext, changed: Iterable<PciDevice>): HostPagesNear {
    let listing = this.listing;
    if (listing === undefined || listing.version !== context.deviceListVersion) {
      listing = this.makeListing(context);
      this.indexChanges++;
      this.listing = listing;
      return { index: listing.index, moved: undefined };
    }
    // What moved before, held back by a check not made (`indexAhead`), is reported with the rest.
    const moved: [number, number][] = this.movedHeld.length === 0 ? [] : this.movedHeld.splice(0);
    // (An empty log is the usual case: not even an iterator made for it.)
    const written = this.barWrites.take();
    if (written.size > 0)
      for (const hw of written) {
        const i = listing.atHardware.get(hw);
        // A device no longer on the host (the listing, of this version, has every device that is).
        if (i === undefined) continue;
        this.replace(context, listing, i, moved);
        // An SR-IOV PF's VF BAR registers place its VFs' BARs (a VF counts them in its `barWrites`).
        for (const vf of listing.entries[i]!.device.virtfns) {
          const k = this.placeIn(listing, vf);
          if (k >= 0) this.replace(context, listing, k, moved);
        }
      }
    for (const device of changed) this.bringUpToDate(context, listing, device, moved);
    return { index: listing.index, moved };
  }

  /**
   * `indexNear` for `changed` and `device`, for a check that may not be made (`DeviceSnapshot.leftMappedFindsNothing`
   * decides whether one must be): what moved is reported to no one until the caller hands it back
   * (`holdMoved`) for the next `indexNear` to report, as the check made then must see it. Undefined,
   * with nothing done, when the listing would be made from scratch (what moved is not known).
   */
  indexAhead(
    context: EngineContext,
    changed: readonly PciDevice[],
    device: PciDevice,
  ): { readonly index: IntervalIndex<HostPageSpot>; readonly moved: [number, number][] } | undefined {
    const listing = this.listing;
    if (listing === undefined || listing.version !== context.deviceListVersion) return undefined;
    const near = this.indexNear(context, changed);
    const moved = near.moved!;
    this.bringUpToDate(context, listing, device, moved);
    return { index: near.index, moved };
  }

  /** Hands back what `indexAhead` found moved, for the next `indexNear` to report. */
  holdMoved(moved: readonly (readonly [number, number])[]): void {
    for (let i = 0; i < moved.length; i++) this.movedHeld.push([moved[i]![0], moved[i]![1]]);
  }

  /** `device`'s entry of the listing taken again where its owner, holder or pages changed. */
  private bringUpToDate(
    context: EngineContext,
    listing: Listing,
    device: PciDevice,
    moved: [number, number][],
  ): void {
    const i = this.placeIn(listing, device);
    if (i < 0) return;
    const entry = listing.entries[i]!;
    if (
      entry.owner !== effectiveOwner(context, device) ||
      entry.holder !== device.domain?.id ||
      entry.pages !== this.hostPagesOf(device)
    )
      this.replace(context, listing, i, moved);
  }

  /**
   * The pages the index holds as the last scoped check left it; undefined when no index is kept (none
   * made yet, or a whole check dropped it since). For the model tests.
   */
  indexedPages(): readonly HostPageSpot[] | undefined {
    return this.listing?.index?.all();
  }

  /**
   * Whether BAR registers were written since the listing was last brought up to date: a line no check
   * followed (the replay skips one that cannot have made a violation) leaves its devices' pages to the
   * next check. For the model tests, which compare the index only when it is up to date.
   */
  awaitsMoves(): boolean {
    return this.barWrites.noted;
  }

  private makeListing(context: EngineContext): Listing {
    // What the log noted before is in the listing being made, and so is what moved before.
    this.barWrites.take();
    this.movedHeld.length = 0;
    const entries: DevicePages[] = [];
    const atHardware = new Map<PhysicalDevice, number>();
    const listing: Listing = {
      version: context.deviceListVersion,
      entries,
      atHardware,
      index: new IntervalIndex(),
      spots: [],
    };
    for (const device of context.devices()) {
      device.hw.watchBarWrites(this.barWrites);
      const state = this.states.of(device);
      state.listing = listing;
      state.listingAt = entries.length;
      atHardware.set(device.hw, entries.length);
      entries.push(this.pagesNow(context, device));
    }
    for (let i = 0; i < entries.length; i++) listing.spots.push(spotsOf(listing.index, entries[i]!));
    return listing;
  }

  /** Where `device` is in `listing`'s entries; -1 when it is not there (no longer on the host). */
  private placeIn(listing: Listing, device: PciDevice): number {
    const state = this.states.of(device);
    return state.listing === listing ? state.listingAt : -1;
  }

  /**
   * Entry `i` taken again, in the index too when its pages or owner changed; its pages before and
   * after are then added to `moved`.
   */
  private replace(context: EngineContext, listing: Listing, i: number, moved: [number, number][]): void {
    const before = listing.entries[i]!;
    const device = before.device;
    const pages = this.hostPagesOf(device);
    const owner = effectiveOwner(context, device);
    const holder = device.domain?.id;
    // Most devices named are unchanged here (their pages are the same array while they stay): the
    // entry is kept, and nothing is made.
    if (before.pages === pages && before.owner === owner && before.holder === holder) return;
    // Pages moved and back since (the hardware domain sizing BARs and placing them where they were,
    // on lines no check followed) are a new array on the same frames: the entry takes the array,
    // and the index, its spots on those frames, stays as it is (nothing moved).
    if (before.owner === owner && before.holder === holder && sameFrames(before.pages, pages)) {
      listing.entries[i] = { device, owner, holder, pages };
      return;
    }
    const now = this.pagesNow(context, device);
    listing.entries[i] = now;
    this.indexChanges++;
    const index = listing.index;
    for (const spot of listing.spots[i]!) index.remove(spot.frames[0], spot.frames[1], spot);
    listing.spots[i] = spotsOf(index, now);
    for (const frames of before.pages) moved.push([frames[0], frames[1]]);
    for (const frames of now.pages) moved.push([frames[0], frames[1]]);
  }

  private pagesNow(context: EngineContext, device: PciDevice): DevicePages {
    return {
      device,
      owner: effectiveOwner(context, device),
      holder: device.domain?.id,
      pages: this.hostPagesOf(device),
    };
  }
}

/**
 * How many states of a device's BARs `BarStates` keeps: the hardware domain sizing and placing a
 * 32-bit BAR and a 64-bit one half by half goes through five.
 */
const KEPT_STATES = 8;

/**
 * The host pages (`hostBarFrames`) of the last `KEPT_STATES` states of one device's BARs, each with
 * what `hostBarFrames` made it of: what decoding its registers reads (`hardwareKey`: the header type,
 * the BAR and ROM registers' words, the ROM's writable address bits, and the count of changes to the
 * slots' sizes) and, of each vPCI BAR it lists (a memory BAR of some size) in slot order, the host
 * address and size, all it reads of them (the frames are worked out of the address and size; the
 * slot only orders them). A state met again gives the same array, without decoding the registers
 * (ownership.ts `DecodedBars`: the kept decodings of every slot searched, most of such a line's host
 * pages when they are not in the cache, the hardware domain's first BAR line of a reprogramming) nor
 * the bigint compares of every vPCI BAR with every decoded one, the list and the frames of a moved
 * vPCI BAR that `hostBarFrames` makes. Not for a VF: its BARs are where its PF's VF BAR registers put
 * them, which its own registers do not tell.
 */
class BarStates {
  /** Per state, `HARDWARE_WORDS` numbers (`hardwareKey`), in one array searched first. */
  private readonly words = new Float64Array(KEPT_STATES * HARDWARE_WORDS);
  /** Per state: the host address and size of each vPCI BAR listed. */
  private readonly vpciBars: bigint[][] = [];
  private readonly pages: (readonly HostFrames[])[] = [];
  private next = 0;

  /** The pages kept for these BARs, or undefined. */
  pagesOf(hw: PhysicalDevice, bars: readonly Bar[] | undefined): readonly HostFrames[] | undefined {
    const now = hardwareKey(hw);
    const words = this.words;
    for (let s = 0; s < this.vpciBars.length; s++) {
      const at = s * HARDWARE_WORDS;
      let w = 0;
      while (w < HARDWARE_WORDS && words[at + w] === now[w]) w++;
      if (w === HARDWARE_WORDS && vpciBarsAre(this.vpciBars[s]!, bars)) return this.pages[s];
    }
    return undefined;
  }

  /** Keeps `pages` as those of these BARs, in place of the oldest state kept. */
  keep(hw: PhysicalDevice, bars: readonly Bar[] | undefined, pages: readonly HostFrames[]): void {
    const vpciBars: bigint[] = [];
    for (let i = 0; bars !== undefined && i < bars.length; i++) {
      const bar = bars[i]!;
      if (bar.mappable && bar.size !== 0n) vpciBars.push(bar.addr, bar.size);
    }
    const at = this.next;
    this.next = (at + 1) % KEPT_STATES;
    this.words.set(hardwareKey(hw), at * HARDWARE_WORDS);
    this.vpciBars[at] = vpciBars;
    this.pages[at] = pages;
  }
}

/**
 * How many numbers `hardwareKey` gives: the header type, a word per BAR slot, the ROM's writable
 * address bits and its register, and the count of size changes.
 */
const HARDWARE_WORDS = PCI_HEADER_NORMAL_NR_BARS + 4;
/** What `hardwareKey` writes (reused: read at once). */
const hardwareWords = new Float64Array(HARDWARE_WORDS);

/**
 * The numbers decoding `hw`'s registers reads (ownership.ts `DecodedBars`): the header type (which
 * slots there are, where the ROM register is), every BAR slot's register (a 64-bit BAR's high half
 * is the next slot's), the ROM register's writable address bits (its size) and the register, -1
 * where there is no such register; and for the slots' sizes (a resizable BAR changes one without
 * its register) the count of their changes (`barSizeChanges`: while it stands, every size is what
 * it was; sizes changed and changed back are a state not met again, worked out afresh). Numbers,
 * to be compared without a bigint.
 */
function hardwareKey(hw: PhysicalDevice): Float64Array {
  const words = hardwareWords;
  const headerType = hw.headerLayout();
  const slots =
    headerType === 0 ? PCI_HEADER_NORMAL_NR_BARS : headerType === 1 ? PCI_HEADER_BRIDGE_NR_BARS : 0;
  words[0] = headerType;
  for (let i = 0; i < PCI_HEADER_NORMAL_NR_BARS; i++)
    words[1 + i] = i < slots ? hw.headerDword(PCI_BASE_ADDRESS_0 + 4 * i) : -1;
  const romMask = hw.romAddressMask();
  words[PCI_HEADER_NORMAL_NR_BARS + 1] = romMask;
  words[PCI_HEADER_NORMAL_NR_BARS + 2] =
    romMask === 0 ? -1 : hw.headerDword(headerType === 0 ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1);
  words[PCI_HEADER_NORMAL_NR_BARS + 3] = hw.barSizeChanges;
  return words;
}

/** Whether `kept` (`BarStates`) are the host address and size of each listed vPCI BAR of `bars`. */
function vpciBarsAre(kept: readonly bigint[], bars: readonly Bar[] | undefined): boolean {
  let k = 0;
  for (let i = 0; bars !== undefined && i < bars.length; i++) {
    const bar = bars[i]!;
    if (!bar.mappable || bar.size === 0n) continue;
    if (kept[k] !== bar.addr || kept[k + 1] !== bar.size) return false;
    k += 2;
  }
  return k === kept.length;
}

/** `entry`'s pages added to `index`, as spots. */
function spotsOf(index: IntervalIndex<HostPageSpot>, entry: DevicePages): HostPageSpot[] {
  const spots: HostPageSpot[] = [];
  for (let position = 0; position < entry.pages.length; position++) {
    const frames = entry.pages[position]!;
    const spot = { device: entry.device, owner: entry.owner, position, frames };
    index.add(frames[0], frames[1], spot);
    spots.push(spot);
  }
  return spots;
}

/**
 * Whether nothing `hostBarFrames` reads of the vPCI state changed since `known` was made: the same
 * state (its seven `Bar`s are fixed), and no BAR's type, host address or size set since. What it
 * reads of the hardware (the decoded BARs, a VF's from its PF's registers) is the caller's
 * `barWrites` comparison.
 */
function unchangedSince(device: PciDevice, known: Remembered): boolean {
  return device.vpci === known.vpci && (device.vpci?.barHostChanges() ?? 0) === known.madeAt;
}

function sameFrames(a: readonly HostFrames[], b: readonly HostFrames[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]![0] !== b[i]![0] || a[i]![1] !== b[i]![1]) return false;
  return true;
}
