/**
 * Memory slots for the VFIO rule sets (`kvm-vfio`, `cloud-hypervisor`): a BAR's page runs
 * (kvm-vfio-pages.ts, cloud-hypervisor-pages.ts) put into and taken out of the owner's p2m at once
 * (KVM's `KVM_SET_USER_MEMORY_REGION` is synchronous: no deferred work), the pages of an enabled BAR
 * that trap kept in `VpciState.withheld` (not mapped by design, as the coverage invariant expects),
 * and a rule-decision event for each change, so a comparison can say which rule made it.
 *
 * Overlapping BARs: a page already mapped keeps its mapping (KVM refuses overlapping slots; QEMU's
 * flat view shows one region per address); when a BAR leaves, the other enabled BARs of its domain
 * take the pages it freed (QEMU renders the flat view again). The hardware domain's SR-IOV VFs are
 * mapped by Xen's `modify_bars` under every rule set (`ruleSetMapsDevice`), not by slots: a slot
 * leaving keeps the pages their enabled BARs hold, as Xen's Step C keeps them out of its own unmap.
 */
import { type Gfn, gfn as toGfn, mfn as toMfn } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import { archMmioCalls } from './arch.js';
import { type EngineContext, mappingDomain, ruleSetMapsDevice } from './context.js';
import type { Bar } from './device.js';
import type { Domain, PciDevice } from './domain.js';
import { findCapability } from './hardware.js';
import type { VfioPages } from './kvm-vfio-pages.js';
import { msixBir, msixGuestFrames, msixSize } from './msix.js';
import { hostBars } from './ownership.js';
import {
  PCI_CAP_ID_MSIX,
  PCI_MSIX_BIRMASK,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
} from './pci-regs.js';
import type { BarSpan, VfioBar } from './vfio-mmap.js';

const PAGE_SHIFT = 12n;

/** A run a BAR has mapped: guest frame, machine frame, pages. */
interface Slot {
  readonly gfn: number;
  readonly mfn: number;
  readonly pages: number;
}

/** The runs each BAR has mapped, so that an unmap takes out exactly those. */
const slots = new WeakMap<Bar, Slot[]>();

/** Which rule set's pages a BAR gets: `kvm-vfio`'s or `cloud-hypervisor`'s. */
export type PagesOf = (context: EngineContext, device: PciDevice, bar: Bar) => VfioPages;

/**
 * The MSI-X structure `nr` (0 table, 1 PBA) as a span of `bar`, when `bar` holds it: from vPCI's
 * MSI-X state, or before it is set up (the header is set up first) from the device's capability, as
 * the VMM reads it (`vfio_msix_early_setup`; cloud-hypervisor's `parse_msix_capabilities`).
 */
function msixSpan(device: PciDevice, bar: Bar, nr: number): BarSpan | undefined {
  const vpci = device.vpci!;
  let raw: number;
  let entries: number;
  if (vpci.msix !== undefined) {
    raw = vpci.msix.tables[nr]!;
    entries = vpci.msix.maxEntries;
  } else {
    const cap = findCapability(device.hw, PCI_CAP_ID_MSIX);
    if (cap === 0) return undefined;
    raw = device.hw.read(cap + (nr === 0 ? PCI_MSIX_TABLE : PCI_MSIX_PBA), 4);
    entries = (device.hw.read(cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
  }
  if ((raw & PCI_MSIX_BIRMASK) !== bar.index) return undefined;
  return { offset: BigInt((raw & ~PCI_MSIX_BIRMASK) >>> 0), size: BigInt(msixSize(entries, nr)) };
}

/**
 * `bar` as the VFIO page rules see it: its size, host and guest address, its MSI-X structures, and
 * whether another BAR (of any device) lies in the rest of its host page (a sub-page BAR's).
 */
export function vfioBarOf(context: EngineContext, device: PciDevice, bar: Bar): VfioBar {
  const table = msixSpan(device, bar, 0);
  const pba = msixSpan(device, bar, 1);
  let hostPageShared = false;
  if (bar.size < 1n << PAGE_SHIFT) {
    const page = bar.addr >> PAGE_SHIFT;
    // Every resource on the host counts (the kernel reserves the page's rest at vfio-pci's probe,
    // when the host's BARs are all placed), whether or not vPCI handles the device.
    for (const other of context.devices()) {
      for (const b of hostBars(other)) {
        if (b === bar || (other === device && b.index === bar.index) || b.size === 0n) continue;
        if (b.addr >> PAGE_SHIFT <= page && page <= (b.addr + b.size - 1n) >> PAGE_SHIFT)
          hostPageShared = true;
      }
    }
  }
  return {
    size: bar.size,
    hostAddr: bar.addr,
    guestAddr: bar.guestAddr,
    hostPageShared,
    ...(table === undefined ? {} : { msixTable: table }),
    ...(pba === undefined ? {} : { msixPba: pba }),
  };
}

/** Logs a rule set's decision about `bar` (see events.ts, `rule-decision`). */
/**
 * QEMU aborts when KVM refuses a memory slot change (`kvm_set_phys_mem` in accel/kvm/kvm-all.c):
 * the VM is gone. The engine crashes the domain, with an event.
 */
export function abortVm(context: EngineContext, device: PciDevice, reason: string): void {
  const domain = mappingDomain(context, device);
  if (domain === undefined || domain.crashed) return;
  domain.crash();
  context.events.push({ kind: 'domain-crashed', domain: domain.id, reason });
}

export function decide(
  context: EngineContext,
  ruleSet: string,
  device: PciDevice,
  bar: Bar,
  decision: string,
): void {
  context.events.push({ kind: 'rule-decision', sbdf: device.name, bar: bar.index, ruleSet, decision });
}

/** What `mapSlots` did: the pages' reason, and whether every slot was made. */
export interface Mapped {
  /** Why these pages (the page rules' sentence). */
  readonly why: string;
  /** False when a slot could not be made (a `map-failed` event says which). */
  readonly ok: boolean;
}

/**
 * Maps `bar` at its guest address with the pages `pagesOf` gives it (pages another mapping holds are
 * left to it; those an enabled BAR on Xen's path maps to the same frames are the slot's as well,
 * `xenPathFrames`), marks it enabled, and withholds the pages that trap.
 */
export function mapSlots(context: EngineContext, device: PciDevice, bar: Bar, pagesOf: PagesOf): Mapped {
  const domain = mappingDomain(context, device);
  const pages = pagesOf(context, device, bar);
  const mapped: Slot[] = [];
  let ok = true;
  if (domain !== undefined) {
    const guestPage = Number(bar.guestAddr >> PAGE_SHIFT);
    const hostPage = Number(bar.addr >> PAGE_SHIFT);
    for (const run of pages.runs) {
      const offset = Number(run.offset >> PAGE_SHIFT);
      const gfn = guestPage + offset;
      const shared = xenPathFrames(context, domain, device, gfn, gfn + run.pages - 1);
      ok = mapFree(context, device, domain, gfn, hostPage + offset, run.pages, mapped, shared) && ok;
    }
  }
  slots.set(bar, mapped);
  bar.enabled = true;
  withholdTrapped(device);
  return { why: pages.why, ok };
}

/**
 * Takes `bar`'s slots out of the p2m and marks it disabled; other BARs take the pages it freed.
 * When a removal fails (a slot goes whole or not at all), `failed` says what becomes of the slot:
 * `keep` leaves the BAR enabled with the slots that could not be removed still in; `drop` forgets
 * them all the same, as cloud-hypervisor's `unmap_mmio_regions` does (it logs the error and frees
 * the slot), their pages left mapped with no BAR behind them. Returns false when a removal failed.
 */
export function unmapSlots(
  context: EngineContext,
  device: PciDevice,
  bar: Bar,
  pagesOf: PagesOf,
  failed: 'keep' | 'drop' = 'keep',
): boolean {
  const domain = mappingDomain(context, device);
  const mine = slots.get(bar) ?? [];
  const kept = domain === undefined ? [] : mine.filter((slot) => !unmapOwn(context, device, domain, slot));
  if (kept.length > 0 && failed === 'keep') {
    slots.set(bar, kept);
    withholdTrapped(device);
    return false;
  }
  slots.delete(bar);
  bar.enabled = false;
  const freed = kept.length === 0 ? mine : mine.filter((slot) => !kept.includes(slot));
  if (domain !== undefined && freed.length > 0) refill(context, domain, freed, pagesOf);
  withholdTrapped(device);
  return kept.length === 0;
}

/**
 * Maps the pages of `[gfn, gfn + pages)` that nothing maps yet, recording what it mapped; the pages
 * of `shared` already mapped to these machine frames are recorded as well, unmapped or not.
 */
function mapFree(
  context: EngineContext,
  device: PciDevice,
  domain: Domain,
  gfn: number,
  mfn: number,
  pages: number,
  into: Slot[],
  shared?: RangeSet<Gfn>,
): boolean {
  let from = gfn;
  let ok = true;
  const end = gfn + pages;
  const flush = (to: number): void => {
    if (to <= from) return;
    if (runMmio(context, device, domain, true, from, mfn + (from - gfn), to - from))
      into.push({ gfn: from, mfn: mfn + (from - gfn), pages: to - from });
    else ok = false;
  };
  for (const extent of domain.p2m.extentsIn(toGfn(gfn), toGfn(end - 1))) {
    const start = Math.max(extent.gfn, gfn);
    flush(start);
    const stop = Math.min(end, extent.gfn + extent.count);
    if (shared !== undefined && extent.type === 'mmio_direct' && extent.mfn - extent.gfn === mfn - gfn) {
      for (const [first, last] of shared.toArray()) {
        const a = Math.max(first, start);
        const b = Math.min(last + 1, stop);
        if (a < b) into.push({ gfn: a, mfn: mfn + (a - gfn), pages: b - a });
      }
    }
    from = Math.max(from, stop);
  }
  flush(end);
  return ok;
}

/**
 * Unmaps the pages of `slot` that still map its machine frames: something else may have taken a page
 * out meanwhile (Xen's MSI-X set-up punches its holes in whatever the header mapped).
 */
function unmapOwn(context: EngineContext, device: PciDevice, domain: Domain, slot: Slot): boolean {
  const shift = slot.mfn - slot.gfn;
  const end = slot.gfn + slot.pages;
  const removed: [number, number][] = [];
  const leaving = new RangeSet<Gfn>({ name: `${device.name}:slot` });
  for (const extent of domain.p2m.extentsIn(toGfn(slot.gfn), toGfn(end - 1))) {
    if (extent.type !== 'mmio_direct' || extent.mfn - extent.gfn !== shift) continue;
    leaving.addRange(
      toGfn(Math.max(extent.gfn, slot.gfn)),
      toGfn(Math.min(extent.gfn + extent.count, end) - 1),
    );
  }
  removeXenPathFrames(context, domain, device, leaving);
  for (const [first, last] of leaving.toArray()) {
    if (!runMmio(context, device, domain, false, first, first + shift, last + 1 - first)) {
      // Put back what this slot's removal took out: the slot stays whole.
      for (const [from, to] of removed) runMmio(context, device, domain, true, from, from + shift, to - from);
      return false;
    }
    removed.push([first, last + 1]);
  }
  return true;
}

/**
 * Takes out of `leaving` (guest frames of `device`'s slots) the frames an enabled BAR of a
 * hardware-domain VF holds mapped: those BARs are mapped by Xen's `modify_bars` (the SR-IOV series'
 * VF Memory Space Enable path, `ruleSetMapsDevice`), and Xen's Step C (`removeMapped`) keeps another
 * enabled BAR's frames out of an unmap. Their MSI-X pages are not kept: Xen punched them as holes. In the hardware domain a guest frame is its host frame, so
 * a page a slot shares with such a VF maps the VF's frame. Without this a slot's unmap took a page
 * the VF's enabled BAR decodes (`page-unmapped`), which Xen's Step C would not.
 */
function removeXenPathFrames(
  context: EngineContext,
  domain: Domain,
  device: PciDevice,
  leaving: RangeSet<Gfn>,
): void {
  if (leaving.isEmpty() || domain !== context.hardwareDomain) return;
  const keep = (other: PciDevice, bar: Bar): void => {
    if (other === device || !bar.enabled || ruleSetMapsDevice(context, other)) return;
    const [first, last] = bar.guestFrames();
    if (!leaving.overlapsRange(first, last)) return;
    // What Xen's path has mapped of the BAR: not the pages it withheld (hardened), nor its MSI-X
    // holes (`vpci_make_msix_hole`), which a slot that mapped them must take out again.
    const vpci = other.vpci!;
    const held = RangeSet.from<Gfn>([[first, last]]);
    if (vpci.withheld !== undefined) held.subtract(vpci.withheld);
    if (vpci.msix !== undefined)
      for (let nr = 0; nr < 2; nr++)
        if (vpci.bars[msixBir(vpci, nr)]!.enabled) held.removeRange(...msixGuestFrames(vpci, nr));
    leaving.subtract(held);
  };
  const index = context.enabledBars;
  if (index !== undefined) {
    for (const entry of index.enabledMeeting(context, domain, leaving.toArray()))
      keep(entry.device, entry.bar);
    return;
  }
  for (const other of context.devices())
    if (other.vpci !== undefined && mappingDomain(context, other) === domain)
      for (const bar of other.vpci.bars) keep(other, bar);
}

/**
 * The frames of `[first, last]` an enabled BAR on Xen's path holds mapped (`removeXenPathFrames`), or
 * undefined for none: a slot made over them records them as its own, so that when that BAR goes Xen's
 * Step C leaves them to the slot (an enabled BAR of this device), and the slot's unmap takes them.
 */
function xenPathFrames(
  context: EngineContext,
  domain: Domain,
  device: PciDevice,
  first: number,
  last: number,
): RangeSet<Gfn> | undefined {
  if (domain !== context.hardwareDomain) return undefined;
  const rest = RangeSet.from<Gfn>([[toGfn(first), toGfn(last)]]);
  removeXenPathFrames(context, domain, device, rest);
  const held = RangeSet.from<Gfn>([[toGfn(first), toGfn(last)]]);
  held.subtract(rest);
  return held.isEmpty() ? undefined : held;
}

/** Maps or unmaps a whole run (x86's calls return after 64 chunks: called again until done). */
function runMmio(
  context: EngineContext,
  device: PciDevice,
  domain: Domain,
  map: boolean,
  gfn: number,
  mfn: number,
  pages: number,
): boolean {
  let done = 0;
  while (done < pages) {
    // Runs of whole calls at once (bounded by extents, not calls; the same p2m and counts).
    const rc = archMmioCalls(
      context.arch,
      domain.p2m,
      map,
      toGfn(gfn + done),
      pages - done,
      toMfn(mfn + done),
      Number.POSITIVE_INFINITY,
    );
    if (!rc.ok) {
      context.events.push({
        kind: 'map-failed',
        sbdf: device.name,
        domain: domain.id,
        operation: map ? 'map' : 'unmap',
        gfn: gfn + done,
        mfn: mfn + done,
        code: rc.code,
        crashed: domain.crashed,
      });
      // A memory slot is made or removed whole (KVM_SET_USER_MEMORY_REGION): a map that failed part
      // way takes out what it had put in.
      if (done > 0) runMmio(context, device, domain, !map, gfn, mfn, done);
      return false;
    }
    done += rc.done ? pages - done : rc.progress;
  }
  return true;
}

/** The other enabled BARs of `domain` map again what they should where `freed` runs were. */
function refill(context: EngineContext, domain: Domain, freed: readonly Slot[], pagesOf: PagesOf): void {
  for (const device of context.devices()) {
    if (device.vpci === undefined || mappingDomain(context, device) !== domain) continue;
    for (const bar of device.vpci.bars) {
      if (!bar.enabled || !slots.has(bar)) continue;
      const [first, last] = bar.guestFrames();
      if (!freed.some((s) => s.gfn <= last && first < s.gfn + s.pages)) continue;
      const guestPage = Number(bar.guestAddr >> PAGE_SHIFT);
      const hostPage = Number(bar.addr >> PAGE_SHIFT);
      const mine = slots.get(bar)!;
      // Only the pages freed: the rest of the BAR's pages are as they were (a hole another device
      // punched there stays one), and the line's scoped checks look at the freed pages only.
      for (const run of pagesOf(context, device, bar).runs) {
        const offset = Number(run.offset >> PAGE_SHIFT);
        const first = guestPage + offset;
        const end = first + run.pages;
        for (const slot of freed) {
          const from = Math.max(first, slot.gfn);
          const to = Math.min(end, slot.gfn + slot.pages);
          if (from < to)
            mapFree(context, device, domain, from, hostPage + offset + (from - first), to - from, mine);
        }
      }
    }
  }
}

/** `withheld`: the pages of the device's enabled BARs that no slot of theirs maps (they trap). */
function withholdTrapped(device: PciDevice): void {
  const vpci = device.vpci!;
  let trapped: RangeSet<Gfn> | undefined;
  for (const bar of vpci.bars) {
    if (!bar.enabled) continue;
    const [first, last] = bar.guestFrames();
    const pages = RangeSet.from<Gfn>([[first, last]]);
    for (const slot of slots.get(bar) ?? [])
      pages.removeRange(toGfn(slot.gfn), toGfn(slot.gfn + slot.pages - 1));
    if (pages.isEmpty()) continue;
    trapped ??= new RangeSet<Gfn>({ name: `${device.name}:trapped` });
    for (const [s, e] of pages) trapped.addRange(s, e);
  }
  vpci.withheld = trapped;
}
