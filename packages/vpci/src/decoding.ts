/**
 * Xen's `modify_decoding`: after a map or unmap completes, flag the BARs enabled or not, punch the
 * MSI-X holes, and write the command register (or the ROM register for a ROM-only toggle).
 */

import { type Gfn, gfn, MAX_FRAME, type MmioErrno, mapMmio, mfn, unmapMmio } from '@vpci/p2m';
import type { Failure, Ok, Result } from '@vpci/rangeset';
import { pciCheckBar } from './arch.js';
import { type EngineContext, mappingDomain } from './context.js';
import type { Bar } from './device.js';
import type { PciDevice } from './domain.js';
import { e820Excludes } from './e820.js';
import { makeMsixHole, msixBir, msixGuestFrames } from './msix.js';
import {
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS1,
} from './pci-regs.js';

/**
 * `map` is `cmd & MEMORY`. ROM-only: the ROM's `enabled`, `romEnabled` and the ROM register follow
 * `map`. Otherwise every mappable BAR (the ROM only if its enable bit is set) follows `map`; then when
 * mapping, the MSI-X holes are punched, and if that fails (EEXIST) the command register is not
 * written and `barsMapped` not set, with the BARs left flagged enabled (gap G4); the failure is
 * returned. `restore`: under `restoreMsixPages`, map the device's MSI-X pages again for other BARs
 * when it stops decoding (off when the caller has done so).
 */
export function modifyDecoding(
  context: EngineContext,
  device: PciDevice,
  cmd: number,
  romOnly: boolean,
  restore = true,
): Result<'EEXIST' | 'ENOMEM'> {
  const vpci = device.vpci!;
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;
  const flipped: Bar[] = [];
  for (const bar of vpci.bars) {
    if (!bar.mappable) continue;
    if (romOnly && bar.type === 'rom') {
      const reg = bar.index === PCI_HEADER_NORMAL_NR_BARS ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1;
      if (pciCheckBar(context, device, bar)) bar.enabled = map; // always on x86
      vpci.romEnabled = map;
      device.hw.write(reg, 4, (Number(bar.addr & 0xffffffffn) | (map ? PCI_ROM_ADDRESS_ENABLE : 0)) >>> 0);
      return { ok: true };
    }
    if (!romOnly && (bar.type !== 'rom' || vpci.romEnabled) && pciCheckBar(context, device, bar)) {
      if (bar.enabled !== map) flipped.push(bar);
      bar.enabled = map;
    }
  }
  // FIXME (Xen, header.c modify_decoding): "punching holes after the p2m has been set up might be
  // racy for DomU usage, needs to be revisited" (F1 in docs/xen-gaps.md). Each step here runs whole,
  // so no other vCPU changes the p2m between the check and the removal.
  if (map && !romOnly) {
    const holes = makeMsixHole(context, device);
    if (!holes.ok) {
      // G4: Xen returns with the BARs flagged enabled; msixHoleFailsMap hands the failure to the
      // caller, to be handled as the map's own failure, with the BARs as they were.
      if (context.policy.msixHoleFailsMap) for (const bar of flipped) bar.enabled = !map;
      return holes;
    }
  }
  if (!romOnly) {
    device.hw.write(PCI_COMMAND, 2, cmd);
    vpci.barsMapped = map;
    if (!map && restore && context.policy.restoreMsixPages) restoreMsixPages(context, device);
  }
  return { ok: true };
}

/**
 * Hardened: the device's MSI-X pages that another enabled BAR of the domain covers are mapped
 * again for that BAR, now that nothing needs to trap them; unless the page also holds the MSI-X
 * table or PBA of another device whose BAR is enabled, which must keep trapping. A map that fails
 * stops it: the pages restored so far are unmapped again and the failure returned, with the frame.
 */
export function restoreMsixPages(
  context: EngineContext,
  device: PciDevice,
): Ok | (Failure<MmioErrno> & { gfn: number; mfn: number }) {
  const vpci = device.vpci!;
  const domain = mappingDomain(context, device);
  if (vpci.msix === undefined || domain === undefined) return { ok: true };
  const restored: { gfn: number; mfn: number; for: string }[] = [];
  for (let nr = 0; nr < 2; nr++) {
    const [first, last] = msixGuestFrames(vpci, nr);
    // A BAR at a probe address can put the structure past 2^64 - 1: no frame there can be mapped.
    for (let frame = first; frame <= Math.min(last, MAX_FRAME); frame++) {
      if (domain.p2m.lookup(gfn(frame)).mfn !== undefined || msixPageOfOther(context, device, frame))
        continue;
      const owner = enabledBarAt(context, device, frame);
      // A page that BAR leaves out for the host memory map was never its to map.
      if (owner === undefined || e820Excludes(context, owner.bar, frame)) continue;
      const machineFrame = owner.bar.hostFrameOf(frame);
      const rc = mapMmio(domain.p2m, gfn(frame), 1, mfn(machineFrame));
      if (!rc.ok) {
        for (const page of restored) unmapMmio(domain.p2m, gfn(page.gfn), 1, mfn(page.mfn));
        return { ok: false, code: rc.code, gfn: frame, mfn: machineFrame };
      }
      restored.push({ gfn: frame, mfn: machineFrame, for: owner.device.name });
    }
  }
  for (const page of restored)
    context.events.push({ kind: 'msix-page-restored', sbdf: device.name, gfn: page.gfn, for: page.for });
  return { ok: true };
}

/** Another device mapped into the same domain has its MSI-X table or PBA at `frame`, in an enabled BAR. */
function msixPageOfOther(context: EngineContext, device: PciDevice, frame: Gfn): boolean {
  const domain = mappingDomain(context, device);
  for (const other of context.devices()) {
    const vpci = other.vpci;
    if (other === device || vpci?.msix === undefined || mappingDomain(context, other) !== domain) continue;
    for (let nr = 0; nr < 2; nr++) {
      if (!vpci.bars[msixBir(vpci, nr)]!.enabled) continue;
      const [first, last] = msixGuestFrames(vpci, nr);
      if (first <= frame && frame <= last) return true;
    }
  }
  return false;
}

/** An enabled BAR of another device mapped into the same domain whose guest frames hold `frame`. */
function enabledBarAt(
  context: EngineContext,
  device: PciDevice,
  frame: Gfn,
): { device: PciDevice; bar: Bar } | undefined {
  const domain = mappingDomain(context, device);
  for (const other of context.devices()) {
    if (other === device || other.vpci === undefined || mappingDomain(context, other) !== domain) continue;
    for (const bar of other.vpci.bars) {
      if (!bar.enabled || (other.vpci.withheld?.containsRange(frame, frame) ?? false)) continue;
      const frames = bar.guestFrames();
      if (frames[0] <= frame && frame <= frames[1]) return { device: other, bar };
    }
  }
  return undefined;
}

/**
 * `pci_check_bar` as `modify_bars` calls it, with the logs: false on Arm for a BAR outside its host
 * bridge's windows (arch.ts), logged as modify_bars does ("not mapping BAR … invalid position"); x86's
 * is always true and logs when the BAR's host frames overlap the host memory map (those frames are
 * dropped from the rangeset instead, by `pci_sanitize_bar_memory`).
 */
export function checkBar(context: EngineContext, device: PciDevice, bar: Bar): boolean {
  const [start, end] = bar.hostFrames();
  if (!pciCheckBar(context, device, bar)) {
    context.events.push({ kind: 'bar-invalid-position', sbdf: device.name, bar: bar.index, start, end });
    return false;
  }
  if (context.e820Frames.overlapsRange(start, end)) {
    context.events.push({ kind: 'bar-not-in-hole', sbdf: device.name, bar: bar.index, start, end });
  }
  return true;
}
