/**
 * Xen's `modify_decoding`: after a map or unmap completes, flag the BARs enabled or not, punch the
 * MSI-X holes, and write the command register (or the ROM register for a ROM-only toggle).
 */
import { gfn, mapMmio, mfn } from '@vpci/p2m';
import { type EngineContext, mappingDomain } from './context.js';
import { type Bar, frameRange, type PciDevice } from './device.js';
import { makeMsixHole, msixGuestFrames } from './msix.js';
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
 * written and `barsMapped` not set, with the BARs left flagged enabled (gap G4).
 */
export function modifyDecoding(
  context: EngineContext,
  device: PciDevice,
  cmd: number,
  romOnly: boolean,
): void {
  const vpci = device.vpci!;
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;
  for (const bar of vpci.bars) {
    if (!bar.mappable) continue;
    if (romOnly && bar.type === 'rom') {
      const reg = bar.index === PCI_HEADER_NORMAL_NR_BARS ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1;
      bar.enabled = map; // pci_check_bar is always true on x86
      vpci.romEnabled = map;
      device.hw.write(reg, 4, (Number(bar.addr & 0xffffffffn) | (map ? PCI_ROM_ADDRESS_ENABLE : 0)) >>> 0);
      return;
    }
    if (!romOnly && (bar.type !== 'rom' || vpci.romEnabled)) bar.enabled = map;
  }
  if (map && !romOnly && !makeMsixHole(context, device).ok) return;
  if (!romOnly) {
    device.hw.write(PCI_COMMAND, 2, cmd);
    vpci.barsMapped = map;
    if (!map && context.policy.restoreMsixPages) restoreMsixPages(context, device);
  }
}

/**
 * Hardened: the device's MSI-X pages that another enabled BAR of the domain covers are mapped
 * again for that BAR, now that nothing needs to trap them.
 */
function restoreMsixPages(context: EngineContext, device: PciDevice): void {
  const vpci = device.vpci!;
  const domain = mappingDomain(context, device);
  if (vpci.msix === undefined || domain === undefined) return;
  for (let nr = 0; nr < 2; nr++) {
    const [first, last] = msixGuestFrames(vpci, nr);
    for (let frame = first; frame <= last; frame++) {
      if (domain.p2m.lookup(gfn(frame)).mfn !== undefined) continue;
      const owner = enabledBarAt(context, device, frame);
      if (owner === undefined) continue;
      const machineFrame = Number(owner.bar.addr >> 12n) + (frame - Number(owner.bar.guestAddr >> 12n));
      if (mapMmio(domain.p2m, gfn(frame), 1, mfn(machineFrame)).ok) {
        context.events.push({
          kind: 'msix-page-restored',
          sbdf: device.name,
          gfn: frame,
          for: owner.device.name,
        });
      }
    }
  }
}

/** An enabled BAR of another device mapped into the same domain whose guest frames hold `frame`. */
function enabledBarAt(
  context: EngineContext,
  device: PciDevice,
  frame: number,
): { device: PciDevice; bar: Bar } | undefined {
  const domain = mappingDomain(context, device);
  for (const other of context.devices()) {
    if (other === device || other.vpci === undefined || mappingDomain(context, other) !== domain) continue;
    for (const bar of other.vpci.bars) {
      if (!bar.enabled || (other.vpci.withheld?.containsRange(frame, frame) ?? false)) continue;
      const [start, end] = frameRange(bar.guestAddr, bar.size);
      if (start <= frame && frame <= end) return { device: other, bar };
    }
  }
  return undefined;
}

/**
 * x86 `pci_check_bar`: always true; logs when the BAR's host frames overlap the host memory map
 * (those frames are dropped from the rangeset instead).
 */
export function checkBar(context: EngineContext, device: PciDevice, bar: Bar): boolean {
  const [start, end] = frameRange(bar.addr, bar.size);
  if (context.e820Frames.overlapsRange(start, end)) {
    context.events.push({ kind: 'bar-not-in-hole', sbdf: device.name, bar: bar.index, start, end });
  }
  return true;
}
