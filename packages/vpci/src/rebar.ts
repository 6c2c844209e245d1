/**
 * Resizable BARs (Xen's `rebar.c`, hardware domain only): a resize is refused while the BAR is
 * mapped; otherwise it is written to the device and the BAR re-sized, the new size used on the next
 * map (and in the MSI-X placement checks that use it).
 */

import type { Result } from '@vpci/rangeset';
import type { EngineContext } from './context.js';
import { barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { findExtCapability, rebarDecodedSize } from './hardware.js';
import { refusedMove, refusedWhilePending } from './header.js';
import { barResized } from './msix.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_EXT_CAP_ID_REBAR,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_REBAR_CTRL_BAR_IDX,
  PCI_REBAR_CTRL_NBAR_MASK,
  PCI_REBAR_CTRL_NBAR_SHIFT,
  PCI_REBAR_CTRL_SIZE_MASK,
  PCI_REBAR_CTRL_SIZE_SHIFT,
  PCI_REBAR_SIZE_BIAS,
  pciRebarCap,
  pciRebarCtrl,
} from './pci-regs.js';

/** Size in bytes a control value selects: 2^(field + 20). */
export function rebarCtrlSize(value: number): bigint {
  return (
    1n << BigInt(((value & PCI_REBAR_CTRL_SIZE_MASK) >>> PCI_REBAR_CTRL_SIZE_SHIFT) + PCI_REBAR_SIZE_BIAS)
  );
}

/**
 * Xen's `init_rebar` (hardware domain): a control handler per resizable memory BAR, its sizes kept on
 * the BAR; the capability's offset and count are cached for the cleanup (9ebba62ca8). An entry naming
 * a BAR index past 5 or a BAR not in memory space is skipped; a handler that cannot be added fails
 * the init with its error.
 */
export function initRebar(context: EngineContext, device: PciDevice): Result<'EINVAL' | 'EEXIST'> {
  const vpci = device.vpci!;
  const hw = device.hw;
  const offset = device.extCfg ? findExtCapability(hw, PCI_EXT_CAP_ID_REBAR) : 0;
  if (offset === 0) return { ok: true };
  const nbars =
    (hw.read(offset + pciRebarCtrl(0), 4) & PCI_REBAR_CTRL_NBAR_MASK) >>> PCI_REBAR_CTRL_NBAR_SHIFT;
  vpci.rebar = { offset, nbars };
  for (let i = 0; i < nbars; i++) {
    const reg = offset + pciRebarCtrl(i);
    const ctrl = hw.read(reg, 4);
    const index = ctrl & PCI_REBAR_CTRL_BAR_IDX;
    if (index >= PCI_HEADER_NORMAL_NR_BARS) continue;
    const bar = vpci.bars[index]!;
    if (bar.type !== 'mem64lo' && bar.type !== 'mem32') continue;
    const added = vpci.registers.add(
      () => hw.read(reg, 4),
      (value) => ctrlWrite(context, device, index, reg, value),
      reg,
      4,
      {},
      true,
    );
    if (!added.ok) return added;
    const cap = hw.read(offset + pciRebarCap(i), 4);
    bar.resizableSizes = BigInt((cap & 0xfffffff0) >>> 4) | (BigInt(ctrl >>> 16) << 28n);
  }
  return { ok: true };
}

/**
 * Xen's `cleanup_rebar(pdev, hide)` (ee459aeac0, 9ebba62ca8): only when hiding a capability whose
 * init failed, from the cached offset and count (nothing when there is no capability or no BAR):
 * every handler of the capability's registers goes, and the hardware domain gets the control
 * registers back read-only (reads from the device, writes dropped), so a driver that assumes the
 * capability cannot resize a BAR behind vPCI's back.
 */
export function cleanupRebar(device: PciDevice, hide: boolean): Result<'ERANGE' | 'EINVAL' | 'EEXIST'> {
  const vpci = device.vpci!;
  const { offset, nbars } = vpci.rebar ?? { offset: 0, nbars: 0 };
  if (offset === 0 || nbars === 0 || !hide) return { ok: true };
  const removed = vpci.registers.remove(offset + pciRebarCap(0), pciRebarCtrl(nbars - 1));
  if (!removed.ok) return removed;
  if (device.domain?.isHardware !== true) return { ok: true };
  for (let i = 0; i < nbars; i++) {
    const reg = offset + pciRebarCtrl(i);
    const added = vpci.registers.add(() => device.hw.read(reg, 4), undefined, reg, 4);
    if (!added.ok) return added;
  }
  return { ok: true };
}

/** Xen's `rebar_ctrl_write`. */
function ctrlWrite(
  context: EngineContext,
  device: PciDevice,
  index: number,
  reg: number,
  value: number,
): void {
  const bar = device.vpci!.bars[index]!;
  const size = rebarCtrlSize(value);
  if (bar.enabled) {
    if (size !== bar.size)
      context.events.push({ kind: 'rebar-refused', sbdf: device.name, bar: index, size });
    return;
  }
  // Hardened: not while a map or unmap of the device is pending (serialOperations), nor onto a page
  // another domain maps (refuseSubpageSharing); the size the device will take (a reserved encoding
  // leaves it as it was).
  if (refusedWhilePending(context, device)) return;
  if (refusedMove(context, device, bar, bar.addr, rebarDecodedSize(value) ?? bar.size)) return;
  if (((size >> BigInt(PCI_REBAR_SIZE_BIAS)) & bar.resizableSizes) === 0n) {
    context.events.push({ kind: 'rebar-unsupported', sbdf: device.name, bar: index, size });
  }
  device.hw.write(reg, 4, value);
  // pci_size_mem_bar again: the address bits below the new size now read as zero.
  const barReg = PCI_BASE_ADDRESS_0 + 4 * index;
  const low = device.hw.read(barReg, 4);
  const is64 = (low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
  const high = is64 ? device.hw.read(barReg + 4, 4) : 0;
  bar.addr = barAddress(BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0) | (BigInt(high) << 32n));
  bar.size = device.hw.barSize(index);
  bar.guestAddr = bar.addr;
  barResized(context, device);
}
