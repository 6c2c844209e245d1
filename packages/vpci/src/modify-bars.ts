/**
 * Xen's `modify_bars`: work out, per BAR, which guest frames to map or unmap when memory decoding (or
 * the ROM enable bit) changes, then defer the work to the vCPU, or apply it at once while booting.
 */
import { RangeSet } from '@vpci/rangeset';
import { type EngineContext, mappingDomain } from './context.js';
import { checkBar } from './decoding.js';
import { type Bar, frameRange, type PciDevice } from './device.js';
import type { Vcpu } from './domain.js';
import { msixGuestFrames } from './msix.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
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
 * work is deferred to it). See xen-behaviour.md §5.9. `immediate` applies the work at once, as while
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
  for (const bar of vpci.bars) {
    if (bar.mem === undefined) continue;
    if (
      !bar.mappable ||
      (romOnly ? bar.type !== 'rom' : bar.type === 'rom' && !vpci.romEnabled) ||
      bar.enabled === map
    ) {
      continue;
    }
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
    const [gfnStart, gfnEnd] = frameRange(bar.guestAddr, bar.size);
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
  const owner = device.domain === context.domXen ? context.hardwareDomain : device.domain!;
  const scanned = owner.isHardware ? [owner, context.domXen] : [owner];
  for (const domain of scanned) {
    for (const other of domain.devices) {
      if (other.vpci === undefined) continue;
      if (other === device && !romOnly) continue;
      for (const remote of other.vpci.bars) {
        if (!remote.enabled) continue;
        const [start, end] = frameRange(remote.guestAddr, remote.size);
        for (const bar of vpci.bars) {
          if (bar.mem === undefined || !bar.mem.overlapsRange(start, end)) continue;
          // Xen tests the local BAR's type here (G7); the intent is to skip the ROM itself.
          const skipped = policy.romOverlapRule ? remote.type === 'rom' : bar.type === 'rom';
          if (romOnly && other === device && skipped) continue;
          if (!removeMapped(bar.mem, other.vpci.withheld, start, end)) return fail('ENOMEM');
        }
      }
    }
  }

  if (map && policy.refuseSubpageSharing) dropSharedPages(context, device);

  // Step D: apply now while building dom0, else defer to the vCPU.
  if (!context.systemActive || immediate) {
    const applied = applyMap(context, device, cmd);
    return applied.ok ? applied : { ok: false, code: applied.code as 'ENOMEM' };
  }
  deferMap(vcpu, device, cmd, romOnly);
  return { ok: true };
}

/**
 * Removes from `mem` the frames `[start, end]` of an enabled BAR, except those its device withheld
 * as shared (hardened): those are not mapped.
 */
function removeMapped(mem: RangeSet, withheld: RangeSet | undefined, start: number, end: number): boolean {
  if (withheld === undefined) return mem.removeRange(start, end).ok;
  const mapped = RangeSet.from([[start, end]]);
  mapped.subtract(withheld);
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
    for (const [start, end] of context.e820Frames) if (!mem.removeRange(start, end).ok) return false;
    return true;
  }
  const [hostStart, hostEnd] = frameRange(bar.addr, bar.size);
  const shift = Number(bar.guestAddr >> 12n) - hostStart;
  const failed = context.e820Frames.reportRanges(hostStart, hostEnd, (start, end) =>
    mem.removeRange(start + shift, end + shift).ok ? undefined : true,
  );
  return failed === undefined;
}

/**
 * Hardened (XSA-461): removes from the device's sets every guest frame whose host page also holds a
 * byte of a memory BAR of a device owned by another domain, with an event naming both devices.
 */
function dropSharedPages(context: EngineContext, device: PciDevice): void {
  const vpci = device.vpci!;
  const owner = effectiveOwner(context, device);
  for (const other of context.devices()) {
    if (other === device || other.domain === undefined || effectiveOwner(context, other) === owner) continue;
    for (const remote of hostBars(other)) {
      const [remoteStart, remoteEnd] = frameRange(remote.addr, remote.size);
      for (const bar of vpci.bars) {
        if (bar.mem === undefined || bar.mem.isEmpty()) continue;
        const [hostStart, hostEnd] = frameRange(bar.addr, bar.size);
        const start = Math.max(hostStart, remoteStart);
        const end = Math.min(hostEnd, remoteEnd);
        if (start > end) continue;
        const shift = Number(bar.guestAddr >> 12n) - hostStart;
        if (!bar.mem.overlapsRange(start + shift, end + shift)) continue;
        bar.mem.removeRange(start + shift, end + shift);
        vpci.withheld ??= new RangeSet();
        vpci.withheld.addRange(start + shift, end + shift);
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

/** The memory BARs and ROM of a device as the hardware has them (whether or not vPCI handles it). */
export function hostBars(device: PciDevice): Bar[] {
  if (device.vpci !== undefined) return device.vpci.bars.filter((bar) => bar.mappable && bar.size > 0n);
  return [];
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
  return pendingVcpu(context, device, (other) => other === device);
}

/** Name of a vCPU with a pending operation on a device mapped into the same domain as `device`. */
function pendingInDomain(context: EngineContext, device: PciDevice): string | undefined {
  const domain = mappingDomain(context, device);
  return pendingVcpu(context, device, (other) => mappingDomain(context, other) === domain);
}

function pendingVcpu(
  context: EngineContext,
  device: PciDevice,
  matches: (other: PciDevice) => boolean,
): string | undefined {
  const domains = [
    context.hardwareDomain,
    ...(device.domain && !device.domain.isHardware ? [device.domain] : []),
  ];
  for (const domain of domains) {
    for (const vcpu of domain.vcpus)
      if (vcpu.pending !== undefined && matches(vcpu.pending.device)) return vcpu.name;
  }
  return undefined;
}
