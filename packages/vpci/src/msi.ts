/**
 * MSI as Xen's `msi.c` emulates it: the control, address, data and mask registers are vPCI's own
 * (read from its state, written to its state), and only the control register reaches the device,
 * as vPCI composes it after Xen enabled or disabled MSI. The Pending Bits register has no handler:
 * the hardware domain reaches the device there.
 *
 * Interrupt delivery is out of scope: Xen's `vpci_msi_arch_enable` maps a PIRQ and programs the
 * device's address, data and mask registers with the host's own message (arch/x86/msi.c); the model
 * keeps the "MSI enabled" state and the register values the domain sees, assumes the PIRQ mapping
 * succeeds, and leaves the device's address, data and mask registers as they were. What unmapping
 * the PIRQ does to the command register is kept: `__pci_disable_msi` turns INTx back on.
 */

import type { Result } from '@vpci/rangeset';
import type { MsiState } from './device.js';
import type { PciDevice } from './domain.js';
import { findCapability } from './hardware.js';
import {
  PCI_CAP_ID_MSI,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_BIT,
} from './pci-regs.js';

const U32 = 0xffffffffn;

/** Xen's `MASK_INSR`: `value` placed in the field `mask`, with C's unsigned wrap-around. */
function maskInsr(value: number, mask: number): number {
  return (Math.imul(value, mask & -mask) & mask) >>> 0;
}

/** Xen's `fls`: the 1-based position of the highest set bit, 0 for 0. */
function fls(value: number): number {
  return 32 - Math.clz32(value);
}

/** Offset of the Message Data register (`msi_data_reg`). */
export function msiDataReg(pos: number, address64: boolean): number {
  return pos + (address64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32);
}

/** Offset of the Mask Bits register (`msi_mask_bits_reg`). */
export function msiMaskBitsReg(pos: number, address64: boolean): number {
  return pos + PCI_MSI_MASK_BIT - (address64 ? 0 : 4);
}

/** Offset of the Pending Bits register (`msi_pending_bits_reg`). */
export function msiPendingBitsReg(pos: number, address64: boolean): number {
  return pos + PCI_MSI_MASK_BIT + (address64 ? 4 : 0);
}

/**
 * `pci_intx(pdev, false)` for a guest enabling MSI or MSI-X: INTx disabled on the device and in
 * the guest's view of the command register.
 */
export function disableGuestIntx(device: PciDevice): void {
  device.hw.write(PCI_COMMAND, 2, device.hw.read(PCI_COMMAND, 2) | PCI_COMMAND_INTX_DISABLE);
  device.vpci!.guestCmd |= PCI_COMMAND_INTX_DISABLE;
}

/**
 * What `vpci_msi_arch_disable` does to the device's command register: it unmaps the PIRQ
 * (`unmap_domain_pirq`), whose `pci_disable_msi` → `__pci_disable_msi` (arch/x86/msi.c) turns INTx
 * back on (`pci_intx(dev, true)`) because the IRQ is no longer a guest's (`pt_irq_destroy_bind`
 * cleared `IRQ_GUEST`, or it was never bound). For any domain; the guest's view is left as it was.
 */
function msiArchDisableIntx(device: PciDevice): void {
  device.hw.write(PCI_COMMAND, 2, device.hw.read(PCI_COMMAND, 2) & ~PCI_COMMAND_INTX_DISABLE);
}

/** Xen's MSI `control_read`: the control register composed from vPCI's state. */
export function msiControlValue(msi: MsiState): number {
  return (
    maskInsr(fls(msi.maxVectors) - 1, PCI_MSI_FLAGS_QMASK) |
    maskInsr(fls(msi.vectors) - 1, PCI_MSI_FLAGS_QSIZE) |
    (msi.enabled ? PCI_MSI_FLAGS_ENABLE : 0) |
    (msi.masking ? PCI_MSI_FLAGS_MASKBIT : 0) |
    (msi.address64 ? PCI_MSI_FLAGS_64BIT : 0)
  );
}

/**
 * Xen's MSI `control_write`. The vectors asked for are `1 << MME`, at most the device's
 * (`min_t(uint8_t, …)`). With no change of the enable bit, and the device disabled or the same
 * vectors, only the vectors are kept. Otherwise Xen disables MSI if it was on and enables it again
 * with the new vectors (a guest that turns it on gets INTx forced off), or disables it (which turns
 * INTx back on in the device, `__pci_disable_msi`); then the device's control register is written
 * with the composed value.
 */
function controlWrite(device: PciDevice, msi: MsiState, reg: number, value: number): void {
  const vectors = Math.min((1 << ((value & PCI_MSI_FLAGS_QSIZE) >>> 4)) & 0xff, msi.maxVectors & 0xff);
  const enabled = (value & PCI_MSI_FLAGS_ENABLE) !== 0;
  if (enabled === msi.enabled && (vectors === msi.vectors || !msi.enabled)) {
    msi.vectors = vectors & 0x3f;
    return;
  }
  if (enabled) {
    const wasEnabled = msi.enabled;
    // A change of vectors while enabled: vpci_msi_arch_disable first (INTx back on, and not forced
    // off again below since MSI was on), then vpci_msi_arch_enable (which the model takes to succeed).
    if (wasEnabled) msiArchDisableIntx(device);
    msi.enabled = false;
    if (!wasEnabled && device.domain?.kind !== 'hardware') disableGuestIntx(device);
  } else {
    msiArchDisableIntx(device); // vpci_msi_arch_disable
  }
  msi.vectors = vectors & 0x3f;
  msi.enabled = enabled;
  device.hw.write(reg, 2, msiControlValue(msi));
}

/**
 * Xen's `init_msi`: the state (one vector enabled, as after reset) and the handlers for the
 * control, address, data, upper address (64-bit) and mask (with masking) registers, added in that
 * order. A handler that cannot be added fails the init (`EEXIST`, `EINVAL`); the caller cleans up
 * (`cleanupMsi`) and hides the capability.
 */
export function initMsi(device: PciDevice): Result<'EINVAL' | 'EEXIST'> {
  const vpci = device.vpci!;
  const hw = device.hw;
  const pos = findCapability(hw, PCI_CAP_ID_MSI);
  if (pos === 0) return { ok: true };
  const control = hw.read(pos + PCI_MSI_FLAGS, 2);
  const msi: MsiState = {
    capOffset: pos,
    // pdev_msi_init: multi_msi_capable(ctrl).
    maxVectors: 1 << ((control & PCI_MSI_FLAGS_QMASK) >>> 1),
    address64: (control & PCI_MSI_FLAGS_64BIT) !== 0,
    masking: (control & PCI_MSI_FLAGS_MASKBIT) !== 0,
    address: 0n,
    data: 0,
    mask: 0,
    vectors: 1,
    enabled: false,
  };
  vpci.msi = msi;
  const handlers: [() => number, (value: number) => void, number, number][] = [
    [
      () => msiControlValue(msi),
      (v) => controlWrite(device, msi, pos + PCI_MSI_FLAGS, v),
      pos + PCI_MSI_FLAGS,
      2,
    ],
    [
      () => Number(msi.address & U32),
      (v) => {
        msi.address = (msi.address & ~U32) | BigInt(v >>> 0);
      },
      pos + PCI_MSI_ADDRESS_LO,
      4,
    ],
    [
      () => msi.data,
      (v) => {
        msi.data = v & 0xffff;
      },
      msiDataReg(pos, msi.address64),
      2,
    ],
  ];
  if (msi.address64) {
    handlers.push([
      () => Number(msi.address >> 32n),
      (v) => {
        msi.address = (msi.address & U32) | (BigInt(v >>> 0) << 32n);
      },
      pos + PCI_MSI_ADDRESS_HI,
      4,
    ]);
  }
  if (msi.masking) {
    // mask_write: with MSI on, Xen also masks the changed enabled vectors' PIRQs (delivery, not
    // modelled); the register keeps what was written.
    handlers.push([
      () => msi.mask,
      (v) => {
        msi.mask = v >>> 0;
      },
      msiMaskBitsReg(pos, msi.address64),
      4,
    ]);
  }
  for (const [read, write, offset, size] of handlers) {
    const added = vpci.registers.add(read, write, offset, size);
    if (!added.ok) return added;
  }
  return { ok: true };
}

/**
 * Xen's `cleanup_msi(pdev, hide)` (commit fa475aa88c). Without `hide` (de-assignment) the state is
 * dropped. With `hide` (a failed init), when the state exists its handlers from the control
 * register to the end of the capability's registers are removed (`ERANGE` if one straddles the end:
 * the cleanup stops there) and the state dropped; then, for the hardware domain only, the control
 * register is made read-only from the device, so a driver that does not walk the list cannot
 * enable MSI behind Xen (`EEXIST` if that handler cannot be added).
 */
export function cleanupMsi(
  device: PciDevice,
  pos: number,
  hide: boolean,
): Result<'ERANGE' | 'EINVAL' | 'EEXIST'> {
  const vpci = device.vpci!;
  const ctrl = pos + PCI_MSI_FLAGS;
  if (!hide) {
    vpci.msi = undefined;
    return { ok: true };
  }
  if (vpci.msi !== undefined) {
    const control = device.hw.read(ctrl, 2);
    const address64 = (control & PCI_MSI_FLAGS_64BIT) !== 0;
    // Without masking, "-2" cuts the reserved 2 bytes after the Message Data.
    const end =
      (control & PCI_MSI_FLAGS_MASKBIT) !== 0
        ? msiPendingBitsReg(pos, address64)
        : msiMaskBitsReg(pos, address64) - 2;
    const removed = vpci.registers.remove(ctrl, end - ctrl);
    if (!removed.ok) return removed;
    vpci.msi = undefined;
  }
  if (device.domain?.kind !== 'hardware') return { ok: true };
  return vpci.registers.add(() => device.hw.read(ctrl, 2), undefined, ctrl, 2);
}
