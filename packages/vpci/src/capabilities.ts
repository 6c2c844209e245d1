/**
 * The capability lists as Xen's `cap.c` presents them: the hardware domain sees every capability, a
 * guest only MSI and MSI-X (the list is re-linked to skip the rest, and the status register's
 * capability bit is hidden when none is left); a guest's extended space reads as zero. Then each
 * capability vPCI handles is initialised (MSI, MSI-X; resizable BAR for the hardware domain), and one
 * that fails is cleaned up and hidden from its list (`vpci_capability_hide`,
 * `vpci_ext_capability_hide`); a legacy capability that cannot be hidden fails the whole set-up
 * (ENODEV). The pointers keep the values `pci_find_next_cap_ttl` returns: the raw byte the device
 * holds, its low two bits included.
 */

import type { Result } from '@vpci/rangeset';
import { hasPciMsi } from './arch.js';
import type { EngineContext } from './context.js';
import { deviceRead, deviceWrite } from './device-handlers.js';
import type { AccessorRef, PciDevice } from './domain.js';
import { findCapability, findExtCapability } from './hardware.js';
import { cleanupMsi, initMsi } from './msi.js';
import { cleanupMsix, initMsix } from './msix.js';
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_EXT_CAP_ID_REBAR,
  PCI_EXT_CAP_NEXT_MASK,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_RO_MASK,
  PCI_STATUS_RSVDZ_MASK,
  PCI_STATUS_RW1C_MASK,
} from './pci-regs.js';
import { cleanupRebar, initRebar } from './rebar.js';
import { READ_ZERO, type RegisterRead, type RegisterWrite } from './registers.js';
import { initSriov } from './sriov.js';

const GUEST_CAPS: readonly number[] = [PCI_CAP_ID_MSI, PCI_CAP_ID_MSIX];

// Handlers shared by every device (device-handlers.ts): the device comes as `owner`.
/** A guest's capability ID register: the device's byte (`vpci_hw_read8`). */
const READ_BYTE: RegisterRead = deviceRead((device: PciDevice, offset: number) => device.hw.read(offset, 1));
/** The hardware domain's list pointers, written to the device (`vpci_hw_write8`). */
const WRITE_BYTE: RegisterWrite = deviceWrite(
  (value: number, _bytes: number, device: PciDevice, offset: number) => device.hw.write(offset, 1, value),
);
/** Each vPCI state's list pointers (`initCapabilityList`'s list, re-linked as capabilities hide). */
const capabilityPointers = new WeakMap<object, Pointer[]>();
/** A list pointer: the value the list (`capabilityPointers`) holds for the register at `offset`. */
const READ_POINTER: RegisterRead = deviceRead(
  (device: PciDevice, offset: number) =>
    capabilityPointers.get(device.vpci!)!.find((pointer) => pointer.reg === offset)!.value,
);
/** A guest's status register, read from the device (`vpci_hw_read16`). */
const READ_STATUS: RegisterRead = deviceRead((device: PciDevice) => device.hw.read(PCI_STATUS, 2));
/** A guest's status register, written to the device (`vpci_hw_write16`) after the masks. */
const WRITE_STATUS: RegisterWrite = deviceWrite((value: number, _bytes: number, device: PciDevice) =>
  device.hw.write(PCI_STATUS, 2, value),
);

/** A list pointer register whose value can be re-linked when a capability is hidden. */
interface Pointer {
  /** Offset of the register holding the pointer (0x34 or a capability's next byte). */
  readonly reg: number;
  value: number;
}

/** An extended capability header as the hardware domain reads it (a snapshot; hiding edits it). */
interface ExtHeader {
  /** Offset of the header (0x100 or where the previous header's next field points). */
  readonly reg: number;
  value: number;
}

/**
 * A legacy capability vPCI handles, in Xen's order (`REGISTER_VPCI_CAP`, msi.o before msix.o; the
 * extended ReBAR, rebar.o, is linked before both, so `__start_vpci_array` lists it first).
 */
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
  accessor: AccessorRef,
): Result<CapabilityErrno> {
  const pointers = initCapabilityList(device, isHwdom);
  if (!pointers.ok) return pointers;
  const headers = initExtCapabilityList(device, isHwdom);
  const ext = initExtCapabilities(context, accessor, device, isHwdom, headers);
  if (!ext.ok) return ext;
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
  return { ok: true };
}

/**
 * Xen's `vpci_reinit_ext_capabilities` (d734babf8b), after MMCFG availability changed: every handler
 * of the extended space goes, the extended capabilities are cleaned up (`cleanup_rebar(pdev, false)`
 * does nothing) and set up again from what Xen can now reach (`vpci_init_capabilities(pdev, true)`:
 * a capability that cannot be hidden is reported, not fatal).
 */
export function reinitExtCapabilities(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
): Result<'ENODEV'> {
  const vpci = device.vpci;
  if (vpci === undefined) return { ok: true };
  vpci.registers.remove(PCI_CFG_SPACE_SIZE, PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE);
  const isHwdom = device.domain?.isHardware === true;
  return initExtCapabilities(context, accessor, device, isHwdom, initExtCapabilityList(device, isHwdom));
}

/**
 * The extended capabilities' part of `vpci_init_capabilities`: resizable BAR for the hardware domain
 * (guests get none). A failed init is cleaned up (`cleanup_rebar(pdev, true)`) and the capability
 * hidden from the extended list; `ENODEV` when it cannot be.
 */
function initExtCapabilities(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
  isHwdom: boolean,
  headers: ExtHeader[],
): Result<'ENODEV'> {
  if (!isHwdom || !device.extCfg) return { ok: true };
  // SR-IOV (the posted series' `init_sriov`): the physical function's handlers. Its only failure is
  // a handler overlap, which an SR-IOV capability laid out by the hardware model cannot have.
  initSriov(context, accessor, device);
  const rebar = findExtCapability(device.hw, PCI_EXT_CAP_ID_REBAR);
  if (rebar === 0) return { ok: true };
  const rc = initRebar(context, device);
  if (rc.ok) return rc;
  const cap = PCI_EXT_CAP_ID_REBAR;
  context.events.push({ kind: 'capability-masked', sbdf: device.name, cap, code: rc.code, extended: true });
  // A failed cleanup is logged; the hardware domain's set-up goes on (extended ones are only its).
  const cleaned = cleanupRebar(device, true);
  if (!cleaned.ok)
    context.events.push({
      kind: 'capability-cleanup-failed',
      sbdf: device.name,
      cap,
      code: cleaned.code,
      extended: true,
    });
  return hideExtCapability(device, headers, rebar) ? { ok: true } : { ok: false, code: 'ENODEV' };
}

/**
 * Xen's `pci_find_next_cap_ttl`: the pointer read at `reg`, followed while its capability's id is not
 * in `ids` (any id when empty). Returned as read, low two bits included: only the walk masks them.
 */
function nextCapability(
  device: PciDevice,
  reg: number,
  ids: readonly number[],
  ttl: { left: number },
): number {
  let pos = reg;
  while (ttl.left-- > 0) {
    pos = device.hw.read(pos, 1);
    if (pos < 0x40) break;
    const id = device.hw.read((pos & ~3) + PCI_CAP_LIST_ID, 1);
    if (id === 0xff) break;
    if (ids.length === 0 || ids.includes(id)) return pos;
    pos = (pos & ~3) + PCI_CAP_LIST_NEXT;
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
    capabilityPointers.set(device.vpci!, list);
    const link = (reg: number, value: number): boolean => {
      list.push({ reg, value });
      return registers.add(READ_POINTER, isHwdom ? WRITE_BYTE : undefined, reg, 1).ok;
    };
    let next = nextCapability(device, PCI_CAPABILITY_LIST, ids, ttl);
    if (!link(PCI_CAPABILITY_LIST, next)) return { ok: false, code: 'EEXIST' };
    next &= ~3;
    if (next === 0 && !isHwdom) maskCapList = true;
    while (next !== 0 && ttl.left > 0) {
      const pos = next;
      next = nextCapability(device, pos + PCI_CAP_LIST_NEXT, ids, ttl);
      if (!isHwdom && !registers.add(READ_BYTE, undefined, pos + PCI_CAP_LIST_ID, 1).ok) {
        return { ok: false, code: 'EEXIST' };
      }
      if (!link(pos + PCI_CAP_LIST_NEXT, next)) return { ok: false, code: 'EEXIST' };
      next &= ~3;
    }
  }
  if (isHwdom) return { ok: true, list };
  // The guest's status register: the capability bit hidden (RsvdP) when nothing is left to show.
  const capBit = maskCapList ? PCI_STATUS_CAP_LIST : 0;
  const added = registers.add(READ_STATUS, WRITE_STATUS, PCI_STATUS, 2, {
    ro: PCI_STATUS_RO_MASK & ~capBit,
    rw1c: PCI_STATUS_RW1C_MASK,
    rsvdp: capBit,
    rsvdz: PCI_STATUS_RSVDZ_MASK,
  });
  return added.ok ? { ok: true, list } : { ok: false, code: added.code };
}

/**
 * Xen's `vpci_init_ext_capability_list`: a guest's extended space reads as zero; the hardware
 * domain's headers are read-only snapshots (returned, so a failed capability can be hidden).
 */
function initExtCapabilityList(device: PciDevice, isHwdom: boolean): ExtHeader[] {
  const headers: ExtHeader[] = [];
  if (!device.extCfg) return headers;
  const registers = device.vpci!.registers;
  if (!isHwdom) {
    registers.add(READ_ZERO, undefined, PCI_CFG_SPACE_SIZE, 4);
    return headers;
  }
  let pos = PCI_CFG_SPACE_SIZE;
  do {
    const header: ExtHeader = { reg: pos, value: device.hw.read(pos, 4) };
    if (header.value === 0xffffffff) return headers;
    if (!registers.add(() => header.value, undefined, pos, 4).ok) return headers;
    headers.push(header);
    pos = extCapNext(header.value);
  } while (pos >= PCI_CFG_SPACE_SIZE);
  return headers;
}

/** `PCI_EXT_CAP_NEXT`: the next header's offset, from bits 20–31. */
function extCapNext(header: number): number {
  return (header >>> 20) & 0xffc;
}

/**
 * Xen's `vpci_capability_hide`: the pointer naming the capability at `offset` (followed from 0x34
 * through the next pointers, raw, as `vpci_get_previous_cap_register` does) takes the capability's
 * own next pointer; a guest's ID register handler goes too. `ENODEV` when no pointer leads there —
 * one with its low bits set leads nowhere — or the capability has no next-pointer register.
 */
function hideCapability(
  device: PciDevice,
  list: Pointer[],
  offset: number,
  isHwdom: boolean,
): Result<'ENODEV' | 'ERANGE'> {
  let previous = list.find((pointer) => pointer.reg === PCI_CAPABILITY_LIST);
  while (previous !== undefined && previous.value !== offset) {
    const next = previous.value;
    previous = next >= 0x40 ? list.find((pointer) => pointer.reg === next + PCI_CAP_LIST_NEXT) : undefined;
  }
  const own = list.find((pointer) => pointer.reg === offset + PCI_CAP_LIST_NEXT);
  if (previous === undefined || own === undefined) return { ok: false, code: 'ENODEV' };
  previous.value = own.value;
  list.splice(list.indexOf(own), 1);
  device.vpci!.registers.remove(offset + PCI_CAP_LIST_NEXT, 1);
  if (!isHwdom) return device.vpci!.registers.remove(offset + PCI_CAP_LIST_ID, 1);
  return { ok: true };
}

/**
 * Xen's `vpci_ext_capability_hide` (hardware domain): the first header (0x100) cannot leave the list,
 * so it reads as zero when it is the only one and with its id cleared otherwise; any other is dropped
 * and the previous header's next field takes its own. False (ENODEV) when its header is not trapped
 * or no header leads to it.
 */
function hideExtCapability(device: PciDevice, headers: ExtHeader[], offset: number): boolean {
  const trapped = (reg: number): ExtHeader | undefined =>
    device.vpci!.registers.list().some((r) => r.offset === reg && r.size === 4)
      ? headers.find((header) => header.reg === reg)
      : undefined;
  const own = trapped(offset);
  if (own === undefined) return false;
  if (offset === PCI_CFG_SPACE_SIZE) {
    own.value = extCapNext(own.value) <= PCI_CFG_SPACE_SIZE ? 0 : (own.value & ~(own.value & 0xffff)) >>> 0;
    return true;
  }
  // vpci_get_previous_ext_cap_register: from 0x100 along the trapped headers' next fields.
  let previous = trapped(PCI_CFG_SPACE_SIZE);
  while (previous !== undefined) {
    const pos = extCapNext(previous.value);
    if (pos === offset) break;
    previous = pos > PCI_CFG_SPACE_SIZE ? trapped(pos) : undefined;
  }
  if (previous === undefined) return false;
  previous.value = ((previous.value & ~PCI_EXT_CAP_NEXT_MASK) | (own.value & PCI_EXT_CAP_NEXT_MASK)) >>> 0;
  headers.splice(headers.indexOf(own), 1);
  device.vpci!.registers.remove(offset, 4);
  return true;
}
