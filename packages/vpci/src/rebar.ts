/**
 * Resizable BARs (Xen's `rebar.c`, hardware domain only): a resize is refused while the BAR is
 * mapped; otherwise it is written to the device and the BAR re-sized, the new size used on the next
 * map (and in the MSI-X placement checks that use it).
 */

import type { EngineContext } from './context.js';
import { barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { findExtCapability, rebarDecodedSize } from './hardware.js';
import { refusedMove, refusedWhilePending } from './header.js';
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

/** Xen's `init_rebar`: a control handler per resizable memory BAR. */
export function initRebar(context: EngineContext, device: PciDevice): void {
  const vpci = device.vpci!;
  const hw = device.hw;
  const offset = findExtCapability(hw, PCI_EXT_CAP_ID_REBAR);
  const nbars =
    (hw.read(offset + pciRebarCtrl(0), 4) & PCI_REBAR_CTRL_NBAR_MASK) >>> PCI_REBAR_CTRL_NBAR_SHIFT;
  for (let i = 0; i < nbars; i++) {
    const reg = offset + pciRebarCtrl(i);
    const index = hw.read(reg, 4) & PCI_REBAR_CTRL_BAR_IDX;
    if (index >= PCI_HEADER_NORMAL_NR_BARS) continue;
    const bar = vpci.bars[index]!;
    if (bar.type !== 'mem64lo' && bar.type !== 'mem32') continue;
    vpci.registers.add(
      () => hw.read(reg, 4),
      (value) => ctrlWrite(context, device, index, reg, value),
      reg,
      4,
    );
    const cap = hw.read(offset + pciRebarCap(i), 4);
    const ctrl = hw.read(reg, 4);
    bar.resizableSizes = BigInt((cap & 0xfffffff0) >>> 4) | (BigInt(ctrl >>> 16) << 28n);
  }
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
}
