/**
 * Memory slots for the VFIO rule sets (`kvm-vfio`, `cloud-hypervisor`): a BAR's page runs
 * (kvm-vfio-pages.ts, cloud-hypervisor-pages.ts) put into and taken out of the owner's p2m at once
 * (KVM's `KVM_SET_USER_MEMORY_REGION` is synchronous: no deferred work), the pages of an enabled BAR
 * that trap kept in `VpciState.withheld` (not mapped by design, as the coverage invariant expects),
 * and a rule-decision event for each change, so a comparison can say which rule made it.
 *
 * Overlapping BARs: a page already mapped keeps its mapping (KVM refuses overlapping slots; QEMU's
 * flat view shows one region per address); when a BAR leaves, the other enabled BARs of its domain
 * take the pages it freed (QEMU renders the flat view again).
 */
import { type Gfn, gfn as toGfn, mfn as toMfn } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import { archMmio } from './arch.js';
import { type EngineContext, mappingDomain } from './context.js';
import type { Bar } from './device.js';
import type { Domain, PciDevice } from './domain.js';
import type { VfioPages } from './kvm-vfio-pages.js';
import { msixBir, msixSize } from './msix.js';
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

/** The MSI-X structure `nr` (0 table, 1 PBA) as a span of `bar`, when `bar` holds it. */
function msixSpan(device: PciDevice, bar: Bar, nr: number): BarSpan | undefined {
  const vpci = device.vpci!;
  if (vpci.msix === undefined || msixBir(vpci, nr) !== bar.index) return undefined;
  const raw = vpci.msix.tables[nr]!;
  return { offset: BigInt((raw & ~7) >>> 0), size: BigInt(msixSize(vpci.msix.maxEntries, nr)) };
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
    for (const other of context.devices()) {
      for (const b of other.vpci?.bars ?? []) {
        if (b === bar || !b.mappable || b.size === 0n) continue;
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
export function decide(
  context: EngineContext,
  ruleSet: string,
  device: PciDevice,
  bar: Bar,
  decision: string,
): void {
  context.events.push({ kind: 'rule-decision', sbdf: device.name, bar: bar.index, ruleSet, decision });
}

/**
 * Maps `bar` at its guest address with the pages `pagesOf` gives it (pages another mapping holds are
 * left to it), marks it enabled, and withholds the pages that trap. Returns the pages' reason.
 */
export function mapSlots(context: EngineContext, device: PciDevice, bar: Bar, pagesOf: PagesOf): string {
  const domain = mappingDomain(context, device);
  const pages = pagesOf(context, device, bar);
  const mapped: Slot[] = [];
  if (domain !== undefined) {
    const guestPage = Number(bar.guestAddr >> PAGE_SHIFT);
    const hostPage = Number(bar.addr >> PAGE_SHIFT);
    for (const run of pages.runs) {
      const offset = Number(run.offset >> PAGE_SHIFT);
      mapFree(context, device, domain, guestPage + offset, hostPage + offset, run.pages, mapped);
    }
  }
  slots.set(bar, mapped);
  bar.enabled = true;
  withholdTrapped(device);
  return pages.why;
}

/** Takes `bar`'s slots out of the p2m and marks it disabled; other BARs take the pages it freed. */
export function unmapSlots(context: EngineContext, device: PciDevice, bar: Bar, pagesOf: PagesOf): void {
  const domain = mappingDomain(context, device);
  const mine = slots.get(bar) ?? [];
  slots.delete(bar);
  bar.enabled = false;
  if (domain !== undefined) {
    for (const slot of mine) runMmio(context, device, domain, false, slot.gfn, slot.mfn, slot.pages);
    if (mine.length > 0) refill(context, domain, mine, pagesOf);
  }
  withholdTrapped(device);
}

/** Maps the pages of `[gfn, gfn + pages)` that nothing maps yet, recording what it mapped. */
function mapFree(
  context: EngineContext,
  device: PciDevice,
  domain: Domain,
  gfn: number,
  mfn: number,
  pages: number,
  into: Slot[],
): void {
  let from = gfn;
  const end = gfn + pages;
  const flush = (to: number): void => {
    if (to > from && runMmio(context, device, domain, true, from, mfn + (from - gfn), to - from)) {
      into.push({ gfn: from, mfn: mfn + (from - gfn), pages: to - from });
    }
  };
  for (const extent of domain.p2m.extentsIn(toGfn(gfn), toGfn(end - 1))) {
    const start = Math.max(extent.gfn, gfn);
    flush(start);
    from = Math.max(from, Math.min(end, extent.gfn + extent.count));
  }
  flush(end);
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
    const rc = archMmio(context.arch, domain.p2m, map, toGfn(gfn + done), pages - done, toMfn(mfn + done));
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
      for (const run of pagesOf(context, device, bar).runs) {
        const offset = Number(run.offset >> PAGE_SHIFT);
        mapFree(context, device, domain, guestPage + offset, hostPage + offset, run.pages, mine);
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
