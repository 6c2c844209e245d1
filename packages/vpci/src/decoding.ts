/**
 * Xen's `modify_decoding`: after a map or unmap completes, flag the BARs enabled or not, punch the
 * MSI-X holes, and write the command register (or the ROM register for a ROM-only toggle).
 */
import type { EngineContext } from './context.js';
import { type Bar, frameRange, type PciDevice } from './device.js';
import { makeMsixHole } from './msix.js';
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
  }
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
