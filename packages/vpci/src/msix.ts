/**
 * MSI-X as the header needs it (Xen's `msix.c` and the `vmsix_table_*` helpers): where the table
 * and PBA are, how big, the control register, and punching holes so Xen can trap accesses.
 */

import {
  addIdentityEntry,
  type Gfn,
  MAX_FRAME,
  type Mfn,
  removeIdentityEntry,
  gfn as toGfn,
} from '@vpci/p2m';
import type { Result } from '@vpci/rangeset';
import type { EngineContext } from './context.js';
import { mappingDomain, ruleSetMapsDevice } from './context.js';
import type { MsixEntry, MsixState, VpciState } from './device.js';
import { deviceRead, deviceWrite } from './device-handlers.js';
import type { PciDevice } from './domain.js';
import type { VpciEvent } from './events.js';
import { findCapability, type PhysicalDevice } from './hardware.js';
import { disableGuestIntx } from './msi.js';
import {
  PCI_CAP_ID_MSIX,
  PCI_MSIX_BIRMASK,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
} from './pci-regs.js';
import type { RegisterRead, RegisterWrite } from './registers.js';

/** Index of the MSI-X table, and of the PBA, in `MsixState.tables`. */
export const VPCI_MSIX_TABLE = 0;
export const VPCI_MSIX_PBA = 1;

/** BAR slot holding structure `nr` (table or PBA). */
export function msixBir(vpci: VpciState, nr: number): number {
  return vpci.msix!.tables[nr]! & PCI_MSIX_BIRMASK;
}

/** Guest address of structure `nr`: the BIR BAR's guest address plus the offset. */
export function msixGuestAddr(vpci: VpciState, nr: number): bigint {
  const raw = vpci.msix!.tables[nr]!;
  return vpci.bars[raw & PCI_MSIX_BIRMASK]!.guestAddr + BigInt((raw & ~PCI_MSIX_BIRMASK) >>> 0);
}

/** Host address of structure `nr`. */
export function msixHostAddr(vpci: VpciState, nr: number): bigint {
  const raw = vpci.msix!.tables[nr]!;
  return vpci.bars[raw & PCI_MSIX_BIRMASK]!.addr + BigInt((raw & ~PCI_MSIX_BIRMASK) >>> 0);
}

/**
 * Size in bytes of structure `nr`: 16 per table entry; the PBA is one bit per entry rounded up to
 * whole quadwords (1–64 entries: 8 bytes).
 */
export function msixSize(maxEntries: number, nr: number): number {
  return nr === VPCI_MSIX_TABLE
    ? maxEntries * PCI_MSIX_ENTRY_SIZE
    : Math.ceil(Math.ceil(maxEntries / 8) / 8) * 8;
}

/**
 * Guest frames `[first, last]` of structure `nr` (past 2^52 - 1 only in a BAR at a sizing probe, as
 * `Bar.guestFrames`).
 */
export function msixGuestFrames(vpci: VpciState, nr: number): [Gfn, Gfn] {
  const raw = vpci.msix!.tables[nr]!;
  const bar = vpci.bars[raw & PCI_MSIX_BIRMASK]!;
  return framesInBar(bar.guestFrames()[0], bar.guestAddr, raw, vpci.msix!.maxEntries, nr) as [Gfn, Gfn];
}

/** Host frames `[first, last]` of structure `nr`. */
export function msixHostFrames(vpci: VpciState, nr: number): [Mfn, Mfn] {
  const raw = vpci.msix!.tables[nr]!;
  const bar = vpci.bars[raw & PCI_MSIX_BIRMASK]!;
  return framesInBar(bar.hostFrames()[0], bar.addr, raw, vpci.msix!.maxEntries, nr) as [Mfn, Mfn];
}

/**
 * `frameRange(address + offset, size)` of structure `nr` in a BAR at `address`, whose first frame is
 * `first` (the BAR's remembered frames), in plain numbers: `(address + offset) >> 12` is `first` plus
 * the page offset and the structure's offset in pages, exactly (a frame is below 2^52 and an offset
 * below 2^32, so every sum is an exact double). Asked for every map, unmap and MSI-X hole; the bigint
 * arithmetic was a visible part of each.
 */
function framesInBar(
  first: number,
  address: bigint,
  raw: number,
  maxEntries: number,
  nr: number,
): [number, number] {
  const from = Number(address & 0xfffn) + ((raw & ~PCI_MSIX_BIRMASK) >>> 0);
  return [first + Math.floor(from / 4096), first + Math.floor((from + msixSize(maxEntries, nr) - 1) / 4096)];
}

/**
 * Xen's `pdev_msi_init` when a device is added (`pci_add_device`, before any vPCI): a device found
 * with MSI-X enabled or masked gets both bits cleared on the hardware (`pci_reset_msix_state` relies
 * on MASKALL being clear), with an event.
 */
export function resetInitialMsixState(events: VpciEvent[], hw: PhysicalDevice): void {
  const cap = findCapability(hw, PCI_CAP_ID_MSIX);
  if (cap === 0) return;
  const control = hw.read(cap + PCI_MSIX_FLAGS, 2);
  if ((control & (PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE)) === 0) return;
  events.push({
    kind: 'msix-initial-state',
    sbdf: hw.toString(),
    maskall: (control & PCI_MSIX_FLAGS_MASKALL) !== 0,
    enable: (control & PCI_MSIX_FLAGS_ENABLE) !== 0,
  });
  hw.write(cap + PCI_MSIX_FLAGS, 2, control & ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL));
}

/**
 * Xen's `init_msix`, after the header: reads the capability, checks that table and PBA lie in a
 * memory BAR (`ENODEV` otherwise: MSI-X is then hidden, an event says why), registers the control
 * register (`EEXIST` when another handler is there), and punches the holes. Returns the hole punch's
 * result.
 */
export function initMsix(
  context: EngineContext,
  device: PciDevice,
): Result<'ENODEV' | 'EINVAL' | 'EEXIST' | 'ENOMEM'> {
  const vpci = device.vpci!;
  const cap = findCapability(device.hw, PCI_CAP_ID_MSIX);
  if (cap === 0) return { ok: true };
  const control = device.hw.read(cap + PCI_MSIX_FLAGS, 2);
  const maxEntries = (control & PCI_MSIX_FLAGS_QSIZE) + 1;
  const tables: [number, number] = [
    device.hw.read(cap + PCI_MSIX_TABLE, 4),
    device.hw.read(cap + PCI_MSIX_PBA, 4),
  ];
  for (let nr = 0; nr < 2; nr++) {
    const name = nr === VPCI_MSIX_TABLE ? 'vector' : 'PBA';
    const bir = tables[nr]! & PCI_MSIX_BIRMASK;
    const offset = (tables[nr]! & ~PCI_MSIX_BIRMASK) >>> 0;
    const bar = vpci.bars[bir];
    let reason: string | undefined;
    if (bir >= vpci.bars.length || bar === undefined) reason = `${name} table with out of range BIR ${bir}`;
    else if (bar.type !== 'mem32' && bar.type !== 'mem64lo')
      reason = `${name} table at invalid BAR${bir} with type ${bar.type}`;
    else if (BigInt(offset + msixSize(maxEntries, nr)) > bar.size) {
      reason = `${name} table offset 0x${offset.toString(16)} outside of BAR${bir} size 0x${bar.size.toString(16)}`;
    }
    if (reason !== undefined) {
      context.events.push({ kind: 'msix-invalid', sbdf: device.name, reason });
      return { ok: false, code: 'ENODEV' };
    }
  }
  // The fields the control register's handlers read first: V8 lays them out in this order, and over
  // thousands of devices a write meets the state cold (fewer cache lines, fewer misses).
  const msix: MsixState = {
    maxEntries,
    enabled: false,
    masked: false,
    capOffset: cap,
    tables,
    // Every entry starts masked (init_msix), with no PIRQ (vpci_msix_arch_init_entry).
    entries: Array.from({ length: maxEntries }, () => ({
      addr: 0n,
      data: 0,
      masked: true,
      updated: false,
      bound: false,
    })),
    updatedEntries: 0,
  };
  const added = vpci.registers.add(CONTROL_READ, controlWriteOf(context), cap + PCI_MSIX_FLAGS, 2);
  // Another handler there already (MSI's, in a capability list that makes them overlap): EEXIST.
  if (!added.ok) return added;
  vpci.msix = msix;
  msixLinked.set(msix, msixLinks++);
  // The header may have mapped the whole BAR before MSI-X was known: carve the holes now.
  return makeMsixHole(context, device);
}

/**
 * The machines (their `EngineContext`s) where an MSI-X table or PBA may lie outside its BAR.
 * `initMsix` refuses one that does, so only a BAR resized after it (`rebar.ts`) can leave one out:
 * noted by `barResized`, for good. Where none lies out, a structure meeting some frames is its BAR's
 * meeting them, which lets a search of the BARs there find every structure there (qemu-rules.ts).
 */
const structuresOutside = new WeakSet<EngineContext>();

/** `device`'s BARs were resized: notes the machine if one of its MSI-X structures lies outside its BAR now. */
export function barResized(context: EngineContext, device: PciDevice): void {
  const vpci = device.vpci;
  for (let nr = 0; vpci?.msix !== undefined && nr < 2; nr++) {
    const offset = (vpci.msix.tables[nr]! & ~PCI_MSIX_BIRMASK) >>> 0;
    if (BigInt(offset + msixSize(vpci.msix.maxEntries, nr)) > vpci.bars[msixBir(vpci, nr)]!.size)
      structuresOutside.add(context);
  }
}

/** Whether an MSI-X structure of the machine may lie outside its BAR (`barResized`). */
export function msixMayLieOutsideBars(context: EngineContext): boolean {
  return structuresOutside.has(context);
}

/**
 * When `init_msix` linked each MSI-X state into its domain's `d->arch.hvm.msix_tables`: with
 * `list_add`, at the head (xen/drivers/vpci/msix.c), so `msix_find` meets the one linked last first.
 * Only compared between states of one machine; `cleanup_msix`'s `list_del` is the state going.
 */
const msixLinked = new WeakMap<MsixState, number>();
let msixLinks = 0;

/** Where `msix` sits in its domain's `msix_tables` walk: a higher number is met earlier. */
export function msixListRank(msix: MsixState): number {
  return msixLinked.get(msix) ?? -1;
}

/**
 * Xen's `cleanup_msix(pdev, hide)`. The MSI-X state, if any, is dropped (nothing is trapped for it
 * any more). Without `hide` (de-assignment) that is all. With `hide` (a failed init, whatever the
 * reason, even one that failed before any state existed, such as a table BIR naming an I/O or
 * unimplemented BAR) the control register's handler is removed, and for the hardware domain the
 * register is made read-only from the device, so a driver that does not walk the capability list
 * cannot enable MSI-X behind Xen (`EEXIST` if that handler cannot be added).
 */
export function cleanupMsix(
  device: PciDevice,
  pos: number,
  hide: boolean,
): Result<'ERANGE' | 'EINVAL' | 'EEXIST'> {
  const vpci = device.vpci!;
  vpci.msix = undefined;
  if (!hide) return { ok: true };
  const ctrl = pos + PCI_MSIX_FLAGS;
  const removed = vpci.registers.remove(ctrl, 2);
  if (!removed.ok) return removed;
  if (device.domain?.kind !== 'hardware') return { ok: true };
  return vpci.registers.add(() => device.hw.read(ctrl, 2), undefined, ctrl, 2);
}

/**
 * Xen's MSI-X `control_read`, shared by every device (device-handlers.ts): the state is the
 * device's (`init_msix` sets it once its handler is in).
 */
const CONTROL_READ: RegisterRead = deviceRead((device: PciDevice) => {
  const msix = device.vpci!.msix!;
  return (
    (msix.maxEntries - 1) |
    (msix.enabled ? PCI_MSIX_FLAGS_ENABLE : 0) |
    (msix.masked ? PCI_MSIX_FLAGS_MASKALL : 0)
  );
});

const controlWrites = new WeakMap<EngineContext, RegisterWrite>();

/** `controlWrite` as the shared handler of `context`'s machine, made on first use. */
function controlWriteOf(context: EngineContext): RegisterWrite {
  let write = controlWrites.get(context);
  if (write === undefined) {
    write = deviceWrite((value: number, _bytes: number, device: PciDevice, offset: number) =>
      controlWrite(context, device, offset, value),
    );
    controlWrites.set(context, write);
  }
  return write;
}

/**
 * Xen's MSI-X `control_write`: on enabling (or unmasking all) the entries written since they were
 * last set up are set up again (`update_entry`); on disabling the bound ones are torn down. Then it
 * records the enable and mask-all bits, forces INTx off for a guest that enables MSI-X, and writes
 * the register through (`pci_msi_conf_write_intercept` passes it: the host's own mask-all,
 * `host_maskall`, is Xen's interrupt state and taken as clear).
 */
function controlWrite(context: EngineContext, device: PciDevice, reg: number, value: number): void {
  const vpci = device.vpci!;
  const msix = vpci.msix!;
  const masked = (value & PCI_MSIX_FLAGS_MASKALL) !== 0;
  const enabled = (value & PCI_MSIX_FLAGS_ENABLE) !== 0;
  if (masked === msix.masked && enabled === msix.enabled) return;
  if (enabled && !masked && (!msix.enabled || msix.masked)) {
    // Switching on (or unmasking): entries written since Xen last set them up are set up again. With
    // none written (`updatedEntries`, a running driver's usual case) the walk would find none: it is
    // skipped, since over thousands of devices it read each entry's object from memory, a cache miss
    // apiece (16 a walk in the scale row).
    if (msix.updatedEntries !== 0)
      msix.entries.forEach((entry, nr) => {
        if (!entry.masked && entry.updated) updateEntry(context, device, entry, nr);
      });
  } else if (!enabled && msix.enabled) {
    // Switching off: every entry with a PIRQ is torn down and marked for set-up on the next enable.
    for (const entry of msix.entries) {
      if (!entry.bound) continue; // vpci_msix_arch_disable_entry: ENOENT, ignored
      entry.bound = false;
      setEntryUpdated(msix, entry, true);
    }
  }
  if (enabled && !msix.enabled && device.domain?.kind !== 'hardware') disableGuestIntx(device);
  msix.masked = masked;
  msix.enabled = enabled;
  device.hw.write(
    reg,
    2,
    (msix.maxEntries - 1) | (enabled ? PCI_MSIX_FLAGS_ENABLE : 0) | (masked ? PCI_MSIX_FLAGS_MASKALL : 0),
  );
}

/** x86 MSI addresses (`MSI_ADDR_BASE_MASK`, `MSI_ADDR_HEADER`): 0xfeexxxxx, upper half zero. */
const MSI_ADDR_BASE_MASK = 0xffff_ffff_fff0_0000n;
const MSI_ADDR_HEADER = 0xfee0_0000n;

/**
 * Xen's `update_entry`: the entry's PIRQ, if any, is unbound (`vpci_msix_arch_disable_entry`; ENOENT
 * ignored) and bound again with the entry's address and data (`vpci_msix_arch_enable_entry`). The
 * model takes the PIRQ mapping to succeed; the binding fails (EOPNOTSUPP, an event, `updated` kept)
 * for an address that is not an x86 MSI address, as `vpci_msi_update` checks.
 */
export function updateEntry(context: EngineContext, device: PciDevice, entry: MsixEntry, nr: number): void {
  entry.bound = false;
  if ((entry.addr & MSI_ADDR_BASE_MASK) !== MSI_ADDR_HEADER) {
    context.events.push({ kind: 'msix-entry-failed', sbdf: device.name, entry: nr, addr: entry.addr });
    return;
  }
  entry.bound = true;
  setEntryUpdated(device.vpci!.msix!, entry, false);
}

/**
 * Sets `entry`'s `updated` flag (address or data written since Xen last set it up), counted in
 * `msix.updatedEntries`: every change of the flag comes here.
 */
export function setEntryUpdated(msix: MsixState, entry: MsixEntry, updated: boolean): void {
  if (entry.updated === updated) return;
  entry.updated = updated;
  msix.updatedEntries += updated ? 1 : -1;
}

/**
 * Whether Xen's `vpci_make_msix_hole` punches `device`'s MSI-X holes: not when a rule set whose page
 * rules leave the MSI-X pages out themselves (`ownsMsixPages`) maps the device; its trapped pages are
 * then withheld (`VpciState.withheld`) like any other page it leaves out.
 */
export function punchesMsixHoles(context: EngineContext, device: PciDevice): boolean {
  return context.rules?.ownsMsixPages !== true || !ruleSetMapsDevice(context, device);
}

/**
 * Xen's `vpci_make_msix_hole`: for the table and the PBA whose BAR is enabled, every guest frame must
 * be a hole (invalid or mmio_dm); an identity mmio_direct entry is removed; anything else is
 * `EEXIST` ("existing mapping clobbers MSIX MMIO area"). Xen ignores a removal that fails, leaving
 * the page mapped; `msixHoleFailsMap` fails the hole punch then (`ENOMEM`, the same event), and
 * a failing punch first puts back the identity entries it removed (its caller fails the map).
 */
export function makeMsixHole(context: EngineContext, device: PciDevice): Result<'EEXIST' | 'ENOMEM'> {
  const vpci = device.vpci!;
  const domain = mappingDomain(context, device);
  if (vpci.msix === undefined || domain === undefined) return { ok: true };
  if (!punchesMsixHoles(context, device)) return { ok: true };
  const punched: Gfn[] = [];
  for (let nr = 0; nr < 2; nr++) {
    if (!vpci.bars[msixBir(vpci, nr)]!.enabled) continue;
    const [first, last] = msixGuestFrames(vpci, nr);
    // A BAR at a probe address can put the structure past 2^64 - 1: no frame there can be mapped.
    for (let frame = first; frame <= Math.min(last, MAX_FRAME); frame++) {
      const gfn = toGfn(frame);
      const entry = domain.p2m.lookup(gfn);
      if (entry.type === 'mmio_dm' || entry.type === 'invalid') continue;
      // An identity entry maps the machine frame with the guest frame's number (Xen compares
      // `mfn_x(mfn) == gfn_x(gfn)`), so the two are compared as plain numbers.
      const identity = entry.type === 'mmio_direct' && entry.mfn === (frame as number);
      const removed = identity ? removeIdentityEntry(domain.p2m, gfn).ok : false;
      if (removed) punched.push(gfn);
      if (removed || (identity && !context.policy.msixHoleFailsMap)) continue;
      context.events.push({
        kind: 'msix-clobber',
        sbdf: device.name,
        gfn: frame,
        mfn: entry.mfn,
        type: entry.type,
      });
      // Hardened: a failed punch leaves the pages as it found them (at set-up, MSI-X is then dropped
      // and nothing traps them: a hole would just leave the BAR part unmapped).
      if (context.policy.msixHoleFailsMap) for (const hole of punched) addIdentityEntry(domain.p2m, hole);
      return { ok: false, code: identity ? 'ENOMEM' : 'EEXIST' };
    }
  }
  return { ok: true };
}
