/**
 * Xen's `modify_bars`: work out, per BAR, which guest frames to map or unmap when memory decoding (or
 * the ROM enable bit) changes, then defer the work to the vCPU, or apply it at once while booting.
 */
import type { Gfn, Mfn } from '@vpci/p2m';
import { RangeSet, type Result } from '@vpci/rangeset';
import { sanitizesBarMemory } from './arch.js';
import type { EngineContext } from './context.js';
import { checkBar } from './decoding.js';
import type { Bar, VpciState } from './device.js';
import type { Domain, PciDevice, Vcpu } from './domain.js';
import { reportE820Frames } from './e820.js';
import { msixBir, msixGuestFrames, punchesMsixHoles } from './msix.js';
import { effectiveOwner, hostBars, overlappingBar, pendingInDomain } from './ownership.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import { applyMap, deferMap, type MapErrno } from './pending.js';
import { countRangesetOps, purgeBarSets } from './rangeset-ops.js';
import { sbdfKey } from './sbdf.js';
import { READ_BY, stateChanged } from './state-generation.js';

/**
 * Why `modifyBars` failed: a refused or failed set-up (`EINVAL`, `ENOMEM`), another operation pending
 * (`EBUSY`, hardened), or what an immediate `applyMap` returned.
 */
export type ModifyBarsErrno = MapErrno | 'EBUSY';

/** Outcome of `modifyBars`: deferred or applied, or Xen's error code (nothing mapped, command unchanged). */
export type ModifyBarsResult = Result<ModifyBarsErrno>;

/**
 * Steps A–D of Xen's `modify_bars(pdev, cmd, rom_only)`; `vcpu` is the vCPU doing the access (the
 * work is deferred to it). `immediate` applies the work at once, as while booting (used to unmap a
 * device leaving a domain under `unmapOnDeassign`).
 */
export function modifyBars(
  context: EngineContext,
  vcpu: Vcpu,
  device: PciDevice,
  cmd: number,
  romOnly: boolean,
  immediate = false,
): ModifyBarsResult {
  const vpci = device.vpci!;
  const { policy } = context;
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;

  if (policy.serialOperations) {
    const busy = pendingInDomain(context, device);
    if (busy !== undefined) {
      context.events.push({ kind: 'busy', sbdf: device.name, vcpu: busy });
      return { ok: false, code: 'EBUSY' };
    }
  }

  const fail = (code: 'EINVAL' | 'ENOMEM'): ModifyBarsResult => {
    // G1: Xen returns with the sets as they are; hardened empties them so the next call starts clean.
    if (policy.purgeOnError) purgeBarSets(context, device);
    return { ok: false, code };
  };

  if (map && !romOnly) vpci.withheld = undefined;

  // Step A: one set of guest frames per BAR to change: the device's BARs, or its ROM only (a
  // ROM-only toggle), as guest frames.
  const changing: Bar[] = [];
  for (let i = 0; i < vpci.bars.length; i++) {
    const bar = vpci.bars[i]!;
    if (bar.mem === undefined) continue;
    if (
      !bar.mappable ||
      (romOnly ? bar.type !== 'rom' : bar.type === 'rom' && !vpci.romEnabled) ||
      // Skip BARs already in the requested state.
      bar.enabled === map
    ) {
      continue;
    }
    if (!checkBar(context, device, bar)) continue;
    changing.push(bar);
    if (map && policy.refuseProbeAddress && holdsProbe(bar)) {
      context.events.push({
        kind: 'probe-refused',
        sbdf: device.name,
        bar: bar.index,
        guestAddr: bar.guestAddr,
      });
      return fail('EINVAL');
    }
    // The guest address must have the host address's page offset.
    if ((bar.guestAddr & 0xfffn) !== (bar.addr & 0xfffn)) {
      context.events.push({
        kind: 'offset-mismatch',
        sbdf: device.name,
        bar: bar.index,
        addr: bar.addr,
        guestAddr: bar.guestAddr,
      });
      return fail('EINVAL');
    }
    const [startGuest, endGuest] = bar.guestFrames();
    if (map && policy.refuseOverlappingBars) {
      const other = overlappingBar(context, device, bar);
      if (other !== undefined) {
        context.events.push({
          kind: 'overlap-refused',
          sbdf: device.name,
          bar: bar.index,
          gfn: Math.max(startGuest, other.first),
          other: other.device.name,
        });
        return fail('EINVAL');
      }
    }
    countRangesetOps(context, device, 'addRange');
    if (!bar.mem.addRange(startGuest, endGuest).ok) return fail('ENOMEM');
    if (policy.e820OnHostFrames) {
      // The memory map is cut through each BAR's own host frames, so a page this BAR leaves out
      // for it may be one a lower BAR over it maps: only what this BAR keeps leaves their sets.
      if (!sanitizeBarMemory(context, bar, device)) return fail('ENOMEM');
      for (const [first, last] of bar.mem)
        if (!removeFromLowerBars(context, device, i, first, last)) return fail('ENOMEM');
    } else {
      // A page shared by several BARs of the device stays only in the highest slot's set.
      if (!removeFromLowerBars(context, device, i, startGuest, endGuest)) return fail('ENOMEM');
      if (!sanitizeBarMemory(context, bar, device)) return fail('ENOMEM');
    }
  }

  // Step B: the MSI-X table and PBA pages stay unmapped so accesses trap (x86: Arm has no vPCI MSI-X).
  const msix = vpci.msix;
  for (let i = 0; msix !== undefined && i < msix.tables.length; i++) {
    const [start, end] = msixGuestFrames(vpci, i);
    for (let j = 0; j < vpci.bars.length; j++) {
      const bar = vpci.bars[j]!;
      if (bar.mem === undefined || bar.mem.isEmpty()) continue;
      countRangesetOps(context, device, 'removeRange');
      if (!bar.mem.removeRange(start, end).ok) return fail('ENOMEM');
    }
  }

  // Step C: frames of other enabled BARs are mapped already (map) or must stay mapped (unmap). Only
  // the enabled BARs count; the hardware domain's also include the hidden (dom_xen) devices'.
  const domain = device.domain !== context.domXen ? device.domain! : context.hardwareDomain;
  const walk = overlapWalk(context, domain, device, romOnly);
  // The device's BARs that have a set, in slot order, and their sets: Xen's
  // `rangeset_overlaps_range` of every slot is one `RangeSet.overlappingSets` per BAR met (its range
  // checked once, not once per slot). An empty set (a BAR not changing, or all of it removed)
  // overlaps nothing; each set only shrinks here, and only by its own removes.
  const withSet: Bar[] = [];
  const sets: RangeSet<Gfn>[] = [];
  if (walk.meeting.length > 0) {
    for (const bar of vpci.bars) {
      if (bar.mem === undefined) continue;
      withSet.push(bar);
      sets.push(bar.mem);
    }
  }
  for (const { other, remoteBar, order } of walk.meeting) {
    const frames = remoteBar.guestFrames(); // not destructured: that iterates
    const start = frames[0];
    const end = frames[1];
    const overlapping = RangeSet.overlappingSets(sets, start, end);
    for (let k = 0; k < withSet.length; k++) {
      if ((overlapping & (1 << k)) === 0) continue;
      const bar = withSet[k]!;
      // A ROM-only toggle is checked against the device's other BARs, not against the ROM
      // itself. Xen tests the local BAR's type here (G7); the intent is to skip the ROM.
      const skipped = policy.romOverlapRule ? remoteBar.type === 'rom' : bar.type === 'rom';
      if (romOnly && other === device && skipped) continue;
      if (
        !removeMapped(sets[k]!, other.vpci!, start, end, punchesMsixHoles(context, other), {
          context,
          device,
        })
      ) {
        // Xen asked every slot of each enabled BAR its walk met until this one.
        countRangesetOps(context, device, 'overlapsRange', walk.upTo(order) * vpci.bars.length);
        return fail('ENOMEM');
      }
    }
  }
  // Xen asks every slot, empty sets and slots without one included, for every enabled BAR it meets.
  countRangesetOps(context, device, 'overlapsRange', walk.total * vpci.bars.length);

  let withheldBefore: RangeSet<Gfn> | undefined;
  if (policy.refuseSubpageSharing && map) {
    if (romOnly && vpci.withheld !== undefined) withheldBefore = RangeSet.from<Gfn>(vpci.withheld);
    dropSharedPages(context, device, changing);
    // A ROM mapped after the rest may now get a page withheld before (no longer shared).
    if (vpci.withheld !== undefined) stateChanged(READ_BY.rest);
    for (const bar of changing) for (const [first, last] of bar.mem!) vpci.withheld?.removeRange(first, last);
  } else if (policy.refuseSubpageSharing && vpci.withheld !== undefined) {
    // The pages withheld when mapping were never mapped: unmapping them would fail (EINVAL).
    for (const bar of changing) {
      // As rangeset_subtract would: a remove per range of the other set.
      countRangesetOps(context, device, 'removeRange', vpci.withheld.size);
      if (!bar.mem!.subtract(vpci.withheld).ok) return fail('ENOMEM');
    }
  }

  // Step D: apply now while building dom0, else defer to the vCPU.
  if (!context.systemActive || immediate) {
    const applied = applyMap(context, device, cmd);
    if (!applied.ok && withheldBefore !== undefined) vpci.withheld = withheldBefore;
    return applied;
  }
  deferMap(vcpu, device, cmd, romOnly, withheldBefore);
  return { ok: true };
}

/** Whose `RangesetOps` a helper counts its calls for (the device whose BAR sets `modifyBars` builds). */
interface CountedFor {
  readonly context: EngineContext;
  readonly device: PciDevice;
}

/**
 * Xen's Step C walk (`for_each_pdev` over the domain's devices, then dom_xen's for the hardware
 * domain; every enabled BAR of each, by slot; not the device's own when decoding is toggled): the
 * BARs it meets whose guest frames meet a frame of the sets of `device`'s BARs, in its order (the
 * walk does nothing with any other: the sets only shrink during it, so a BAR that misses them at the
 * start misses them throughout), how many BARs it meets in all, and how many up to a BAR's place
 * (for Xen's count of `rangeset_overlaps_range` calls). With the machine's index
 * (`EngineContext.enabledBars`) the first two are searches; without it (a fake context), the walk.
 */
function overlapWalk(
  context: EngineContext,
  domain: Domain,
  device: PciDevice,
  romOnly: boolean,
): {
  meeting: { other: PciDevice; remoteBar: Bar; order: number }[];
  total: number;
  upTo(order: number): number;
} {
  const vpci = device.vpci!;
  // Toggling decoding: not against the device itself, or an unmap would keep nothing out.
  const walked = (other: PciDevice): boolean => romOnly || other !== device;
  const index = context.enabledBars;
  if (index !== undefined) {
    // Loops, not spreads, filters and maps: this runs for every decoding toggle, and nearly always
    // meets nothing.
    const ranges: (readonly [number, number])[] = [];
    for (const bar of vpci.bars) {
      if (bar.mem === undefined || bar.mem.isEmpty()) continue;
      for (const range of bar.mem.toArray()) ranges.push(range);
    }
    const meeting: { other: PciDevice; remoteBar: Bar; order: number }[] = [];
    for (const entry of index.enabledMeeting(context, domain, ranges, device))
      if (walked(entry.device))
        meeting.push({ other: entry.device, remoteBar: entry.bar, order: entry.order });
    let own = 0;
    if (!romOnly) for (const bar of vpci.bars) if (bar.enabled) own++;
    return {
      meeting,
      total: index.enabledCount(context, domain) - own,
      upTo: (order) => index.enabledUpTo(context, domain, order, walked),
    };
  }
  const all: { other: PciDevice; remoteBar: Bar; order: number }[] = [];
  for (let d = domain; ; d = context.domXen) {
    for (const other of d.pdevList()) {
      // The hardware domain may own devices vPCI does not handle (its set-up failed).
      if (other.vpci === undefined || !walked(other)) continue;
      for (const remoteBar of other.vpci.bars)
        if (remoteBar.enabled) all.push({ other, remoteBar, order: all.length });
    }
    if (!d.isHardware) break;
  }
  return { meeting: all, total: all.length, upTo: (order) => order + 1 };
}

/**
 * Removes from `mem` the frames `[start, end]` of an enabled BAR of `other`, except those it withheld
 * as shared (hardened) or as trapping (a rule set's pages): those are not mapped. Its MSI-X pages
 * are removed all the same when Xen punched them (`xenHoles`, `punchesMsixHoles`): they must stay
 * holes while its BAR is enabled, whoever else would map them. A rule set that leaves them out
 * itself withholds them as it does any page that traps: another BAR's mapping there is that BAR's
 * to remove.
 */
export function removeMapped(
  mem: RangeSet<Gfn>,
  other: VpciState,
  start: Gfn,
  end: Gfn,
  xenHoles: boolean,
  counted?: CountedFor,
): boolean {
  if (other.withheld === undefined) {
    if (counted !== undefined) countRangesetOps(counted.context, counted.device, 'removeRange');
    return mem.removeRange(start, end).ok;
  }
  const unmapped = RangeSet.from<Gfn>(other.withheld);
  if (other.msix !== undefined && xenHoles) {
    for (let nr = 0; nr < 2; nr++)
      if (other.bars[msixBir(other, nr)]!.enabled) unmapped.removeRange(...msixGuestFrames(other, nr));
  }
  const mapped = RangeSet.from<Gfn>([[start, end]]);
  mapped.subtract(unmapped);
  for (const [first, last] of mapped) {
    if (counted !== undefined) countRangesetOps(counted.context, counted.device, 'removeRange');
    if (!mem.removeRange(first, last).ok) return false;
  }
  return true;
}

/** Removes guest frames `[first, last]` from the sets of the device's BARs below slot `slot`. */
function removeFromLowerBars(
  context: EngineContext,
  device: PciDevice,
  slot: number,
  first: Gfn,
  last: Gfn,
): boolean {
  const vpci = device.vpci!;
  for (let j = 0; j < slot; j++) {
    const prevBar = vpci.bars[j]!;
    if (prevBar.mem === undefined || prevBar.mem.isEmpty()) continue;
    countRangesetOps(context, device, 'removeRange');
    if (!prevBar.mem.removeRange(first, last).ok) return false;
  }
  return true;
}

/**
 * x86 `pci_sanitize_bar_memory`: removes the frames the host memory map takes out from the BAR's set;
 * its calls are counted for `counted` when given (`modifyBars`; not the hardened whole-range VF sets).
 */
export function sanitizeBarMemory(context: EngineContext, bar: Bar, counted?: PciDevice): boolean {
  // Arm's pci_sanitize_bar_memory returns 0 without touching the set (arch.ts).
  if (!sanitizesBarMemory(context.arch)) return true;
  // Xen removes every e820 entry with a size, one call each, wherever the BAR is (the engine
  // removes the merged map's ranges instead).
  if (counted !== undefined) countRangesetOps(context, counted, 'removeRange', context.e820Removals);
  const mem = bar.mem!;
  const failed = reportE820Frames(context, bar, (first, last) =>
    mem.removeRange(first, last).ok ? undefined : true,
  );
  return failed === undefined;
}

/**
 * Hardened (XSA-461): removes from the sets of the BARs being mapped every guest frame whose host
 * page also holds a byte of a memory BAR of a device owned by another domain, with an event naming
 * both devices. Such a page is withheld even when it was not in the set (an MSI-X hole, or left to
 * another enabled BAR by Step C): nothing may map it for this device later, nor count on it mapped.
 */
function dropSharedPages(context: EngineContext, device: PciDevice, changing: readonly Bar[]): void {
  const vpci = device.vpci!;
  const owner = effectiveOwner(context, device);
  for (const other of devicesNear(context, changing)) {
    if (other === device || other.domain === undefined || effectiveOwner(context, other) === owner) continue;
    for (const remote of hostBars(other)) {
      const [remoteStart, remoteEnd] = remote.hostFrames();
      for (const bar of changing) {
        const [hostStart, hostEnd] = bar.hostFrames();
        // The machine frames both BARs touch (the larger start, the smaller end).
        const start = Math.max(hostStart, remoteStart) as Mfn;
        const end = Math.min(hostEnd, remoteEnd) as Mfn;
        if (start > end) continue;
        // The guest frames through which this BAR would map them.
        const first = bar.guestFrameOf(start);
        const last = bar.guestFrameOf(end);
        vpci.withheld ??= new RangeSet<Gfn>();
        stateChanged(READ_BY.rest);
        vpci.withheld.addRange(first, last);
        countRangesetOps(context, device, 'overlapsRange');
        if (!bar.mem!.overlapsRange(first, last)) continue;
        countRangesetOps(context, device, 'removeRange');
        bar.mem!.removeRange(first, last);
        context.events.push({
          kind: 'subpage-shared',
          sbdf: device.name,
          bar: bar.index,
          mfn: start,
          other: other.name,
          otherDomain: other.domain.id,
        });
      }
    }
  }
}

/**
 * The devices `dropSharedPages` and sriov.ts' `withholdSharedPages` walk, in the machine's order (by
 * SBDF, `EngineContext.devices`): with the index of BARs by host frame, those with a BAR on a host
 * page of `changing` (the only ones either walk acts on), or none while dom0 and dom_xen own every
 * device (either walk acts on devices of an owner other than the asker's, which is then dom0:
 * `effectiveOwner`); without the index (a fake context, or the walk it is tested against), every
 * device.
 */
export function devicesNear(context: EngineContext, changing: readonly Bar[]): Iterable<PciDevice> {
  const index = context.hostBarIndex;
  if (index === undefined) return context.devices();
  if (context.hardwareDomainOwnsEveryDevice === true) return [];
  const near = index.devicesMeeting(changing.map((bar) => bar.hostFrames()));
  return near.length < 2 ? near : near.sort((a, b) => sbdfKey(a.sbdf) - sbdfKey(b.sbdf));
}

/**
 * Hardened (invariant 8): the BAR holds a sizing probe (every address bit above the size set), or a
 * 64-bit BAR had only one half written since its address was last whole.
 */
export function holdsProbe(bar: Bar): boolean {
  if (bar.type === 'rom') return false;
  const width = bar.type === 'mem64lo' ? 64n : 32n;
  return bar.halfWritten || bar.guestAddr >= (1n << width) - bar.size;
}
