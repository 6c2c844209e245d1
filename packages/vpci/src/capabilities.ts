/**
 * The capability lists as Xen's `cap.c` presents them: the hardware domain sees every capability, a
 * guest only MSI and MSI-X (the list is re-linked to skip the rest, and the status register's
 * capability bit is hidden when none is left); a guest's extended space reads as zero. Then each
 * capability vPCI handles is initialised (MSI, MSI-X; resizable BAR for the hardware domain), and one
 * that fails is cleaned up and hidden from the list.
 */

import type { Result } from '@vpci/rangeset';
import { hasPciMsi } from './arch.js';
import type { EngineContext } from './context.js';
import type { PciDevice } from './domain.js';
import { findCapability, findExtCapability } from './hardware.js';
import { cleanupMsi, initMsi } from './msi.js';
import { cleanupMsix, initMsix } from './msix.js';
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_SIZE,
  PCI_EXT_CAP_ID_REBAR,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_RO_MASK,
  PCI_STATUS_RSVDZ_MASK,
  PCI_STATUS_RW1C_MASK,
} from './pci-regs.js';
import { initRebar } from './rebar.js';

const GUEST_CAPS: readonly number[] = [PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX];

/** A list pointer register whose value can be re-linked when a capability is hidden. */
interface Pointer {
  /** Offset of the register holding the pointer (0x34 or a capability's next byte). */
  readonly reg: number;
  value: number;
}

/** A legacy capability vPCI handles, in Xen's order (`REGISTER_VPCI_CAP`, msi.o before msix.o). */
interface LegacyCapability {
  readonly id: number;
  readonly init: (context: EngineContext, device: PciDevice) => Result<CapabilityErrno>;
  readonly cleanup: (device: PciDevice, pos: number, hide: boolean) => Result<CapabilityErrno>;
}

/** Why setting up the capabilities failed. */
export type CapabilityErrno = 'EINVAL' | 'EEXIST' | 'ENODEV' | 'ENOMEM' | 'ERANGE';

const LEGACY_CAPABILITIES: readonly LegacyCapability[] = [
  { id: PCI_CAP_ID_MSI, init: (_context, device) => initMsi(device), cleanup: cleanupMsi },
  { id: PCI_CAP_ID_MSIX, init: initMsix, cleanup: cleanupMsix },
];

/**
 * Xen's `vpci_init_capabilities`: the list handlers, then each supported capability's init. One
 * whose init fails is cleaned up with `hide` (a failed cleanup fails a guest's set-up; the hardware
 * domain's goes on) and hidden from the list (a failed hide fails the set-up).
 */
export function initCapabilities(
  context: EngineContext,
  device: PciDevice,
  isHwdom: boolean,
): Result<CapabilityErrno> {
  const pointers = initCapabilityList(device, isHwdom);
  if (!pointers.ok) return pointers;
  initExtCapabilityList(device, isHwdom);
  // The capability inits are those built in (REGISTER_VPCI_CAP): msi.o and msix.o only with
  // CONFIG_HAS_PCI_MSI, which Arm does not select (arch.ts).
  for (const capability of hasPciMsi(context.arch) ? LEGACY_CAPABILITIES : []) {
    const pos = findCapability(device.hw, capability.id);
    if (pos === 0) continue;
    const rc = capability.init(context, device);
    if (rc.ok) continue;
    context.events.push({ kind: 'capability-masked', sbdf: device.name, cap: capability.id, code: rc.code });
    const cleaned = capability.cleanup(device, pos, true);
    if (!cleaned.ok) {
      context.events.push({
        kind: 'capability-cleanup-failed',
        sbdf: device.name,
        cap: capability.id,
        code: cleaned.code,
      });
      if (!isHwdom) return cleaned;
    }
    const hidden = hideCapability(device, pointers.list, pos, isHwdom);
    if (!hidden.ok) return hidden;
  }
  if (isHwdom && findExtCapability(device.hw, PCI_EXT_CAP_ID_REBAR) !== 0) initRebar(context, device);
  return { ok: true };
}

/** Next capability at or after the pointer in `reg` with an id in `ids` (any id when empty). */
function nextCapability(
  device: PciDevice,
  reg: number,
  ids: readonly number[],
  ttl: { left: number },
): number {
  let pos = device.hw.read(reg, 1);
  while (ttl.left-- > 0 && pos >= 0x40) {
    pos &= ~3;
    const id = device.hw.read(pos + PCI_CAP_LIST_ID, 1);
    if (id === 0xff) break;
    if (ids.length === 0 || ids.includes(id)) return pos;
    pos = device.hw.read(pos + PCI_CAP_LIST_NEXT, 1);
  }
  return 0;
}

function initCapabilityList(
  device: PciDevice,
  isHwdom: boolean,
): Result<'EINVAL' | 'EEXIST', { list: Pointer[] }> {
  const registers = device.vpci!.registers;
  const hw = device.hw;
  const list: Pointer[] = [];
  let maskCapList = false;
  if ((hw.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST) !== 0) {
    const ids = isHwdom ? [] : GUEST_CAPS;
    const ttl = { left: 48 };
    const link = (reg: number, value: number): boolean => {
      const pointer: Pointer = { reg, value };
      list.push(pointer);
      return registers.add(() => pointer.value, isHwdom ? (v) => hw.write(reg, 1, v) : undefined, reg, 1).ok;
    };
    let next = nextCapability(device, PCI_CAPABILITY_LIST, ids, ttl);
    if (!link(PCI_CAPABILITY_LIST, next)) return { ok: false, code: 'EEXIST' };
    next &= ~3;
    if (next === 0 && !isHwdom) maskCapList = true;
    while (next !== 0 && ttl.left > 0) {
      const pos = next;
      next = nextCapability(device, pos + PCI_CAP_LIST_NEXT, ids, ttl);
      if (
        !isHwdom &&
        !registers.add(() => hw.read(pos + PCI_CAP_LIST_ID, 1), undefined, pos + PCI_CAP_LIST_ID, 1).ok
      ) {
        return { ok: false, code: 'EEXIST' };
      }
      if (!link(pos + PCI_CAP_LIST_NEXT, next)) return { ok: false, code: 'EEXIST' };
      next &= ~3;
    }
  }
  if (isHwdom) return { ok: true, list };
  // The guest's status register: the capability bit hidden (RsvdP) when nothing is left to show.
  const capBit = maskCapList ? PCI_STATUS_CAP_LIST : 0;
  const added = registers.add(
    () => hw.read(PCI_STATUS, 2),
    (v) => hw.write(PCI_STATUS, 2, v),
    PCI_STATUS,
    2,
    {
      ro: PCI_STATUS_RO_MASK & ~capBit,
      rw1c: PCI_STATUS_RW1C_MASK,
      rsvdp: capBit,
      rsvdz: PCI_STATUS_RSVDZ_MASK,
    },
  );
  return added.ok ? { ok: true, list } : { ok: false, code: added.code };
}

/** A guest's extended space reads as zero; the hardware domain's headers are read-only snapshots. */
function initExtCapabilityList(device: PciDevice, isHwdom: boolean): void {
  if (!device.hw.extendedConfig) return;
  const registers = device.vpci!.registers;
  if (!isHwdom) {
    registers.add(() => 0, undefined, PCI_CFG_SPACE_SIZE, 4);
    return;
  }
  let pos = PCI_CFG_SPACE_SIZE;
  do {
    const header = device.hw.read(pos, 4);
    if (header === 0xffffffff) return;
    if (!registers.add(() => header, undefined, pos, 4).ok) return;
    pos = (header >>> 20) & 0xffc;
  } while (pos >= PCI_CFG_SPACE_SIZE);
}

/**
 * Xen's `vpci_capability_hide`: the previous pointer skips the capability at `offset` (`ENODEV` when
 * either pointer register is missing); a guest's ID register handler goes too.
 */
function hideCapability(
  device: PciDevice,
  list: Pointer[],
  offset: number,
  isHwdom: boolean,
): Result<'ENODEV' | 'ERANGE'> {
  const previous = list.find((pointer) => (pointer.value & ~3) === offset);
  const own = list.find((pointer) => pointer.reg === offset + PCI_CAP_LIST_NEXT);
  if (previous === undefined || own === undefined) return { ok: false, code: 'ENODEV' };
  previous.value = own.value;
  device.vpci!.registers.remove(offset + PCI_CAP_LIST_NEXT, 1);
  if (!isHwdom) return device.vpci!.registers.remove(offset + PCI_CAP_LIST_ID, 1);
  return { ok: true };
}
