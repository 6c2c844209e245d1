/**
 * Xen's `modify_bars`: work out, per BAR, which guest frames to map or unmap when memory decoding (or
 * the ROM enable bit) changes, then defer the work to the vCPU, or apply it at once while booting.
 */
import { MAX_VALUE, RangeSet } from '@vpci/rangeset';
import { type EngineContext, mappingDomain } from './context.js';
import { checkBar } from './decoding.js';
import { Bar, type PciDevice, type VpciState } from './device.js';
import type { Domain, Vcpu } from './domain.js';
import type { PhysicalDevice } from './hardware.js';
import { msixBir, msixGuestFrames } from './msix.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_BRIDGE_NR_BARS,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_HEADER_TYPE,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS1,
} from './pci-regs.js';
import { applyMap, deferMap } from './pending.js';

/** Outcome of `modifyBars`: deferred or applied, or Xen's error code (nothing mapped, command unchanged). */
export type ModifyBarsResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly code: 'EINVAL' | 'ENOMEM' | 'EBUSY' | 'EPERM' | 'EIO' | 'EOPNOTSUPP' | 'EEXIST';
    };

/**
 * Steps A–D of Xen's `modify_bars(pdev, cmd, rom_only)`; `vcpu` is the vCPU doing the access (the
 * work is deferred to it). See docs/architecture.md (data flow). `immediate` applies the work at once, as while
 * booting (used to unmap a device leaving a domain under `unmapOnDeassign`).
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
    if (policy.purgeOnError) for (const bar of vpci.bars) bar.mem?.purge();
    return { ok: false, code };
  };

  if (map && !romOnly) vpci.withheld = undefined;

  // Step A: one set of guest frames per BAR to change.
  const changing: Bar[] = [];
  for (const bar of vpci.bars) {
    if (bar.mem === undefined) continue;
    if (
      !bar.mappable ||
      (romOnly ? bar.type !== 'rom' : bar.type === 'rom' && !vpci.romEnabled) ||
      bar.enabled === map
    ) {
      continue;
    }
    changing.push(bar);
    checkBar(context, device, bar);
    if (map && policy.refuseProbeAddress && holdsProbe(bar)) {
      context.events.push({
        kind: 'probe-refused',
        sbdf: device.name,
        bar: bar.index,
        guestAddr: bar.guestAddr,
      });
      return fail('EINVAL');
    }
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
    const [gfnStart, gfnEnd] = bar.guestFrames();
    if (map && policy.refuseOverlappingBars) {
      const other = overlappingBar(context, device, bar);
      if (other !== undefined) {
        context.events.push({
          kind: 'overlap-refused',
          sbdf: device.name,
          bar: bar.index,
          gfn: Math.max(gfnStart, other.first),
          other: other.device.name,
        });
        return fail('EINVAL');
      }
    }
    if (!bar.mem.addRange(gfnStart, gfnEnd).ok) return fail('ENOMEM');
    // A page shared by several BARs of the device stays only in the highest slot's set.
    for (const previous of vpci.bars) {
      if (previous.index >= bar.index) break;
      if (previous.mem === undefined || previous.mem.isEmpty()) continue;
      if (!previous.mem.removeRange(gfnStart, gfnEnd).ok) return fail('ENOMEM');
    }
    if (!sanitizeBarMemory(context, bar)) return fail('ENOMEM');
  }

  // Step B: the MSI-X table and PBA pages stay unmapped so accesses trap.
  if (vpci.msix !== undefined) {
    for (let nr = 0; nr < 2; nr++) {
      const [start, end] = msixGuestFrames(vpci, nr);
      for (const bar of vpci.bars) {
        if (bar.mem === undefined || bar.mem.isEmpty()) continue;
        if (!bar.mem.removeRange(start, end).ok) return fail('ENOMEM');
      }
    }
  }

  // Step C: frames of other enabled BARs are mapped already (map) or must stay mapped (unmap).
  // The sets only shrink here, so the BARs whose sets are empty now are passed over from the start:
  // this loop meets every enabled BAR of the domain.
  const owner = device.domain === context.domXen ? context.hardwareDomain : device.domain!;
  const scanned = owner.isHardware ? [owner, context.domXen] : [owner];
  const pending = vpci.bars.filter((bar) => bar.mem !== undefined && !bar.mem.isEmpty());
  for (const domain of scanned) {
    for (const other of domain.devices) {
      if (other.vpci === undefined) continue;
      if (other === device && !romOnly) continue;
      for (const remote of other.vpci.bars) {
        if (!remote.enabled) continue;
        const frames = remote.guestFrames(); // not destructured: that iterates
        const start = frames[0];
        const end = frames[1];
        for (const bar of pending) {
          if (!bar.mem!.overlapsRange(start, end)) continue;
          // Xen tests the local BAR's type here (G7); the intent is to skip the ROM itself.
          const skipped = policy.romOverlapRule ? remote.type === 'rom' : bar.type === 'rom';
          if (romOnly && other === device && skipped) continue;
          if (!removeMapped(bar.mem!, other.vpci, start, end)) return fail('ENOMEM');
        }
      }
    }
  }

  let withheldBefore: RangeSet | undefined;
  if (policy.refuseSubpageSharing && map) {
    if (romOnly && vpci.withheld !== undefined) withheldBefore = RangeSet.from(vpci.withheld);
    dropSharedPages(context, device, changing);
    // A ROM mapped after the rest may now get a page withheld before (no longer shared).
    for (const bar of changing) for (const [first, last] of bar.mem!) vpci.withheld?.removeRange(first, last);
  } else if (policy.refuseSubpageSharing && vpci.withheld !== undefined) {
    // The pages withheld when mapping were never mapped: unmapping them would fail (EINVAL).
    for (const bar of changing) if (!bar.mem!.subtract(vpci.withheld).ok) return fail('ENOMEM');
  }

  // Step D: apply now while building dom0, else defer to the vCPU.
  if (!context.systemActive || immediate) {
    const applied = applyMap(context, device, cmd);
    if (!applied.ok && withheldBefore !== undefined) vpci.withheld = withheldBefore;
    return applied.ok ? applied : { ok: false, code: applied.code as 'ENOMEM' };
  }
  deferMap(vcpu, device, cmd, romOnly, withheldBefore);
  return { ok: true };
}

/**
 * Removes from `mem` the frames `[start, end]` of an enabled BAR of `other`, except those it withheld
 * as shared (hardened): those are not mapped. Its MSI-X pages are removed all the same: they must
 * stay holes while its BAR is enabled, whoever else would map them.
 */
function removeMapped(mem: RangeSet, other: VpciState, start: number, end: number): boolean {
  if (other.withheld === undefined) return mem.removeRange(start, end).ok;
  const unmapped = RangeSet.from(other.withheld);
  if (other.msix !== undefined) {
    for (let nr = 0; nr < 2; nr++)
      if (other.bars[msixBir(other, nr)]!.enabled) unmapped.removeRange(...msixGuestFrames(other, nr));
  }
  const mapped = RangeSet.from([[start, end]]);
  mapped.subtract(unmapped);
  for (const [first, last] of mapped) if (!mem.removeRange(first, last).ok) return false;
  return true;
}

/**
 * x86 `pci_sanitize_bar_memory`: removes the frames of every host memory-map entry from the BAR's
 * set. Xen removes them as guest frames (G5); with `e820OnHostFrames` the host frames of the BAR
 * that the memory map covers are translated to the guest frames that would map them.
 */
function sanitizeBarMemory(context: EngineContext, bar: Bar): boolean {
  const mem = bar.mem!;
  if (!context.policy.e820OnHostFrames) {
    const failed = context.e820Frames.reportRanges(0, MAX_VALUE, (start, end) =>
      mem.removeRange(start, end).ok ? undefined : true,
    );
    return failed === undefined;
  }
  const [hostStart, hostEnd] = bar.hostFrames();
  const shift = bar.guestFrames()[0] - hostStart;
  const failed = context.e820Frames.reportRanges(hostStart, hostEnd, (start, end) =>
    mem.removeRange(start + shift, end + shift).ok ? undefined : true,
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
  for (const other of context.devices()) {
    if (other === device || other.domain === undefined || effectiveOwner(context, other) === owner) continue;
    for (const remote of hostBars(other)) {
      const [remoteStart, remoteEnd] = remote.hostFrames();
      for (const bar of changing) {
        const [hostStart, hostEnd] = bar.hostFrames();
        const start = Math.max(hostStart, remoteStart);
        const end = Math.min(hostEnd, remoteEnd);
        if (start > end) continue;
        const shift = bar.guestFrames()[0] - hostStart;
        vpci.withheld ??= new RangeSet();
        vpci.withheld.addRange(start + shift, end + shift);
        if (!bar.mem!.overlapsRange(start + shift, end + shift)) continue;
        bar.mem!.removeRange(start + shift, end + shift);
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
 * The memory BARs and ROM of a device at their host addresses, for what a page shared with it is
 * about: where the hardware has them, whether or not vPCI handles the device (a guest's vPCI has no
 * ROM; a device whose vPCI set-up failed has no vPCI state), and also where vPCI has them when that
 * differs (the hardware domain's BAR writes are kept as written, not cut to the size; a ROM's new
 * address reaches the register only when its deferred map completes).
 */
export function hostBars(device: PciDevice): Bar[] {
  const bars = hardwareBars(device);
  for (const bar of device.vpci?.bars ?? []) {
    if (!bar.mappable || bar.size === 0n) continue;
    if (!bars.some((known) => known.addr === bar.addr && known.size === bar.size)) bars.push(bar);
  }
  return bars;
}

/**
 * The BARs a device's registers decode, remembered on the device until a BAR register is next written: the
 * sharing checks ask for every device's BARs after every replayed line.
 */
function hardwareBars(device: PciDevice): Bar[] {
  const hw = device.hw;
  const cached = device.decodedBars;
  if (cached !== undefined && cached.barWrites === hw.barWrites) return [...cached.bars];
  const bars = decodedBars(hw);
  device.decodedBars = { barWrites: hw.barWrites, bars };
  return [...bars];
}

/** The memory BARs and ROM the device decodes, read from its registers (nothing is written). */
function decodedBars(hw: PhysicalDevice): Bar[] {
  const headerType = hw.read(PCI_HEADER_TYPE, 1) & 0x7f;
  if (headerType > 1) return [];
  const slots = headerType === 0 ? PCI_HEADER_NORMAL_NR_BARS : PCI_HEADER_BRIDGE_NR_BARS;
  const bars: Bar[] = [];
  for (let i = 0; i < slots; i++) {
    const size = hw.barSize(i);
    const low = hw.read(PCI_BASE_ADDRESS_0 + 4 * i, 4);
    if (size === 0n || (low & PCI_BASE_ADDRESS_SPACE_IO) !== 0) continue;
    const is64 = (low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
    if (is64 && i + 1 >= slots) continue; // no high half: sizing finds nothing there (as Xen does)
    const bar = new Bar(i);
    bar.type = is64 ? 'mem64lo' : 'mem32';
    bar.size = size;
    bar.addr = BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
    if (is64) bar.addr |= BigInt(hw.read(PCI_BASE_ADDRESS_0 + 4 * i + 4, 4)) << 32n;
    bar.guestAddr = bar.addr;
    bars.push(bar);
  }
  const romSize = hw.romSize();
  if (romSize > 0n) {
    const rom = new Bar(slots);
    rom.type = 'rom';
    rom.size = romSize;
    rom.addr = BigInt(
      (hw.read(headerType === 0 ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1, 4) & PCI_ROM_ADDRESS_MASK) >>> 0,
    );
    rom.guestAddr = rom.addr;
    bars.push(rom);
  }
  return bars;
}

/**
 * Hardened (XSA-461): a machine frame of `[start, end]` that a domain other than the one `device` is
 * mapped into maps (through any device's BAR), or that a pending map there is about to map, and that
 * domain; undefined when there is none.
 */
export function mappedByOtherDomain(
  context: EngineContext,
  device: PciDevice,
  start: number,
  end: number,
): { mfn: number; domain: number } | undefined {
  const own = mappingDomain(context, device);
  const seen = new Set<Domain>();
  for (const other of context.devices()) {
    const domain = mappingDomain(context, other);
    if (domain === undefined || domain === own) continue;
    for (const bar of other.vpci?.bars ?? []) {
      if (bar.mem === undefined || bar.mem.isEmpty()) continue;
      const [first, last] = bar.hostFrames();
      if (first <= end && start <= last) return { mfn: Math.max(start, first), domain: domain.id };
    }
    if (seen.has(domain)) continue;
    seen.add(domain);
    for (const extent of domain.p2m.extents()) {
      if (extent.type !== 'mmio_direct') continue;
      const mfn = Math.max(start, extent.mfn);
      if (mfn <= Math.min(end, extent.mfn + extent.count - 1)) return { mfn, domain: domain.id };
    }
  }
  return undefined;
}

/**
 * Hardened: an enabled BAR of another device mapped into the same domain whose guest frames meet
 * `bar`'s with a different guest → machine shift (two BARs a guest put over each other).
 */
function overlappingBar(
  context: EngineContext,
  device: PciDevice,
  bar: Bar,
): { device: PciDevice; first: number } | undefined {
  const domain = mappingDomain(context, device);
  const [start, end] = bar.guestFrames();
  const shift = bar.hostFrames()[0] - start;
  for (const other of context.devices()) {
    if (other === device || other.vpci === undefined || mappingDomain(context, other) !== domain) continue;
    for (const remote of other.vpci.bars) {
      if (!remote.enabled) continue;
      const [first, last] = remote.guestFrames();
      if (first <= end && start <= last && remote.hostFrames()[0] - first !== shift)
        return { device: other, first };
    }
  }
  return undefined;
}

/** Hidden devices (dom_xen) count as the hardware domain's for sharing. */
export function effectiveOwner(context: EngineContext, device: PciDevice): number | undefined {
  if (device.domain === context.domXen) return context.hardwareDomain.id;
  return device.domain?.id;
}

/**
 * Hardened (invariant 8): the BAR holds a sizing probe (every address bit above the size set), or a
 * 64-bit BAR had only one half written since its address was last whole.
 */
function holdsProbe(bar: Bar): boolean {
  if (bar.type === 'rom') return false;
  const width = bar.type === 'mem64lo' ? 64n : 32n;
  return bar.halfWritten || bar.guestAddr >= (1n << width) - bar.size;
}

/** Name of a vCPU with a pending operation on `device`, if any. */
export function pendingVcpuOf(context: EngineContext, device: PciDevice): string | undefined {
  return pendingVcpu(context, device, undefined);
}

/** Name of a vCPU with a pending operation on a device mapped into the same domain as `device`. */
function pendingInDomain(context: EngineContext, device: PciDevice): string | undefined {
  return pendingVcpu(context, device, mappingDomain(context, device));
}

/**
 * A vCPU of the hardware domain or of the device's owner with work pending on `device`, or with
 * `domain` given, on any device mapped into `domain`. Asked after every replayed line: no closures
 * or arrays are made.
 */
function pendingVcpu(
  context: EngineContext,
  device: PciDevice,
  domain: Domain | undefined,
): string | undefined {
  const found = pendingIn(context, context.hardwareDomain, device, domain);
  if (found !== undefined || device.domain === undefined || device.domain.isHardware) return found;
  return pendingIn(context, device.domain, device, domain);
}

function pendingIn(
  context: EngineContext,
  vcpusOf: Domain,
  device: PciDevice,
  domain: Domain | undefined,
): string | undefined {
  for (const vcpu of vcpusOf.vcpus) {
    const other = vcpu.pending?.device;
    if (other === undefined) continue;
    if (domain === undefined ? other === device : mappingDomain(context, other) === domain) return vcpu.name;
  }
  return undefined;
}
