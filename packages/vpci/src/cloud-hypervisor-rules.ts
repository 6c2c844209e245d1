/**
 * The `cloud-hypervisor` rule set: a device assigned with cloud-hypervisor's VFIO device
 * (docs/rule-sets.md). cloud-hypervisor keeps its own copy of the device's BARs and never writes a
 * BAR to the device (`VfioCommon::write_config_register`); the host BARs stay where they are.
 *
 * - The BARs are mapped when the device is added, whatever the command register says, and clearing
 *   memory decoding unmaps nothing (`vmm/src/device_manager.rs` `add_vfio_device` →
 *   `VfioPciDevice::map_mmio_regions`); they are unmapped when the device goes (`eject_device`, the
 *   `VfioPciDevice` `Drop`: `unmap_mmio_regions`), which is never refused: a slot KVM would not
 *   remove is logged and dropped, its pages left mapped.
 * - A BAR write is a move when `detect_bar_reprogramming` (pci/src/configuration.rs) says so: not a
 *   size probe (every address bit set; a 64-bit BAR's high half all ones), not the low half of a
 *   64-bit BAR (the high half's write moves it to the address both registers spell), not the address
 *   it is at. A move is made at once while Memory Space Enable is set; otherwise it is queued and made
 *   at the first later command write with the bit set (`pending_bar_reprogram`).
 * - A move takes the slots out and puts them in again at the new base (`VfioPciDevice::move_bar`);
 *   when KVM refuses the new slot (a guest address that is not page-aligned) the BAR register is
 *   restored (`restore_bar_addr`, pci/src/bus.rs) but the slots stay out.
 * - Which pages get a slot: cloud-hypervisor-pages.ts. The ROM and I/O BARs are never mapped.
 *
 * The engine keeps `Bar.guestAddr` where cloud-hypervisor has the BAR (its `bars[i].addr`) and the
 * register as written beside it (its `registers`); the device's own register is never written. A
 * read is the engine's (Xen's handlers): a guest reads `guestAddr`, the hardware domain the device's
 * register, not cloud-hypervisor's copy of what was written.
 */

import type { Paddr } from '@vpci/p2m';
import { cloudHypervisorPages } from './cloud-hypervisor-pages.js';
import { type EngineContext, mappingDomain } from './context.js';
import { type Bar, barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { lowSlot, withHalf } from './header.js';
import {
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_ROM_ADDRESS_ENABLE,
} from './pci-regs.js';
import type { RuleSet } from './rule-set.js';
import { writeCommandRegister, writeDecoding } from './vfio-registers.js';
import { decide, mapSlots, type PagesOf, unmapSlots, vfioBarOf } from './vfio-slots.js';

const NAME = 'cloud-hypervisor';

/**
 * cloud-hypervisor's pages of a BAR: its region is MSI-X mappable when it holds the table (the kernel
 * gives the capability to the table's BAR only, `msix_mmappable_cap`).
 */
const pagesOf: PagesOf = (context, device, bar) => {
  const view = vfioBarOf(context, device, bar);
  return cloudHypervisorPages({ ...view, msixMappable: view.msixTable !== undefined });
};

/** The BAR registers as written (cloud-hypervisor's `registers`), per BAR's low slot. */
const registers = new WeakMap<Bar, Paddr>();

/**
 * The moves queued while Memory Space Enable was clear (`pending_bar_reprogram`), per device, in
 * order: each BAR with the address detected then.
 */
const queued = new WeakMap<PciDevice, { readonly bar: Bar; readonly to: Paddr }[]>();

/** Maps every memory BAR not mapped yet (`map_mmio_regions`). */
function mapAll(context: EngineContext, device: PciDevice): void {
  for (const bar of device.vpci!.bars) {
    if (!bar.mappable || bar.size === 0n || bar.type === 'rom' || bar.enabled) continue;
    registers.set(bar, bar.guestAddr);
    if (atProbe(bar)) {
      // cloud-hypervisor places a device's BARs itself (allocate_bars); the engine takes the address
      // the device was found at, which a sizing probe can have left behind: none it would choose.
      decide(
        context,
        NAME,
        device,
        bar,
        'no slot: the BAR was found at a sizing-probe address (allocate_bars never places one there)',
      );
      continue;
    }
    const pages = mapSlots(context, device, bar, pagesOf);
    decide(
      context,
      NAME,
      device,
      bar,
      `slots made when the device was added (map_mmio_regions); ${pages.why}`,
    );
  }
}

/** A BAR at a sizing-probe or half-written address (every address bit above its size set). */
function atProbe(bar: Bar): boolean {
  return bar.halfWritten || bar.guestAddr >= (1n << (bar.type === 'mem64lo' ? 64n : 32n)) - bar.size;
}

/**
 * Unmaps every mapped BAR: the device goes (`eject_device` drops the `VfioPciDevice`, whose `Drop`
 * runs `unmap_mmio_regions`). The removal is never refused: `unmap_mmio_regions` drains every region,
 * logs a slot KVM would not remove ("Could not remove the userspace memory region") and frees it all
 * the same, so such a slot's pages stay mapped with no device behind them (the declared hazard
 * `unexplained-mapping`).
 */
function unmapAll(context: EngineContext, device: PciDevice): void {
  for (const bar of device.vpci!.bars) {
    if (!bar.enabled) continue;
    const removed = unmapSlots(context, device, bar, pagesOf, 'drop');
    decide(
      context,
      NAME,
      device,
      bar,
      removed
        ? 'unmapped: the device left (unmap_mmio_regions)'
        : 'a slot could not be removed: logged and dropped, its pages left mapped as the device left (unmap_mmio_regions)',
    );
  }
  queued.delete(device);
}

/** The BAR of the same domain whose guest range meets `[to, to + size)`, named; undefined if none. */
function takenBy(context: EngineContext, device: PciDevice, bar: Bar, to: bigint): string | undefined {
  const domain = mappingDomain(context, device);
  const end = to + bar.size;
  for (const other of context.devices()) {
    if (other.vpci === undefined || mappingDomain(context, other) !== domain) continue;
    for (const b of other.vpci.bars) {
      if (b === bar || !b.enabled) continue;
      if (b.guestAddr < end && to < b.guestAddr + b.size) return `${other.name} BAR${b.index}`;
    }
  }
  return undefined;
}

/** Moves `bar` to `to` (`move_bar`), or restores the register. */
function move(context: EngineContext, device: PciDevice, bar: Bar, to: Paddr): void {
  if (to === bar.guestAddr) return;
  const from = bar.guestAddr;
  const wasMapped = bar.enabled;
  const taken = takenBy(context, device, bar, to);
  if (taken !== undefined) {
    // AddressManager::move_bar: the allocator refuses a range another BAR holds; the register is
    // restored and the BAR stays.
    registers.set(bar, from);
    decide(
      context,
      NAME,
      device,
      bar,
      `move to 0x${to.toString(16)} refused: ${taken} holds that range (AddressManager::move_bar, restore_bar_addr)`,
    );
    return;
  }
  if (wasMapped && !unmapSlots(context, device, bar, pagesOf)) {
    registers.set(bar, from);
    return;
  }
  // Only the guest address moves: cloud-hypervisor never writes a BAR to the device.
  bar.guestAddr = to;
  if (!wasMapped) return;
  if ((to & 0xfffn) !== 0n) {
    bar.guestAddr = from;
    registers.set(bar, from);
    decide(
      context,
      NAME,
      device,
      bar,
      `move to 0x${to.toString(16)} failed: KVM takes no memory slot at a guest address that is not page-aligned; the register is restored and the slots stay out (move_bar, restore_bar_addr)`,
    );
    return;
  }
  const pages = mapSlots(context, device, bar, pagesOf);
  decide(
    context,
    NAME,
    device,
    bar,
    `moved to 0x${to.toString(16)}: ${pages} (detect_bar_reprogramming, move_bar)`,
  );
}

/**
 * A BAR register write (`detect_bar_reprogramming`): the register takes the value; a move is made
 * at once with Memory Space Enable set, else queued. A write of other than 4 bytes (`bytes`) only
 * changes the register: `detect_bar_reprogramming` returns `None` when `data.len() != 4`, and
 * `write_config_register` then just stores the bytes (`write_reg`).
 */
function barWritten(context: EngineContext, device: PciDevice, bar: Bar, value: number, bytes: number): void {
  const vpci = device.vpci!;
  const { target, hi } = lowSlot(vpci, bar);
  const low = hi ? value : (value & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  const register = barAddress(
    withHalf(registers.get(target) ?? target.guestAddr, hi, low) & ~(target.size - 1n),
  );
  registers.set(target, register);
  if (bytes !== 4) return;
  // is_bar_size_probe: every address bit of a low register set, or a high half of all ones.
  const probe = hi
    ? value >>> 0 === 0xffffffff
    : (value & PCI_BASE_ADDRESS_MEM_MASK) >>> 0 === PCI_BASE_ADDRESS_MEM_MASK;
  if (probe) return;
  // The low half of a 64-bit BAR waits for the high half.
  if (target.type === 'mem64lo' && !hi) return;
  if (register === target.guestAddr) return;
  if ((device.hw.read(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) !== 0) {
    move(context, device, target, register);
    return;
  }
  const moves = queued.get(device) ?? [];
  moves.push({ bar: target, to: register });
  queued.set(device, moves);
  decide(
    context,
    NAME,
    device,
    target,
    `move to 0x${register.toString(16)} queued: Memory Space Enable is clear (write_config_register, pending_bar_reprogram)`,
  );
}

/** cloud-hypervisor's VFIO device (see the module comment). */
export const CLOUD_HYPERVISOR_RULES: RuleSet = Object.freeze({
  name: NAME,
  source:
    'cloud-hypervisor pci/src/configuration.rs: write_config_register, detect_bar_reprogramming, ' +
    'is_bar_size_probe; pci/src/vfio.rs: VfioCommon::write_config_register, map_mmio_regions, ' +
    'generate_sparse_areas, move_bar, unmap_mmio_regions; pci/src/bus.rs: restore_bar_addr; ' +
    'vmm/src/device_manager.rs: add_vfio_device, eject_device, AddressManager::move_bar',
  hazards: Object.freeze([
    {
      violation: 'msix-mapped',
      why:
        "holes are cut per BAR: generate_sparse_areas leaves the MSI-X table's and PBA's pages out of " +
        'their own BAR only, so another BAR placed over those pages (by the host) is mapped whole there (pci/src/vfio.rs)',
    },
    {
      violation: 'subpage-shared',
      why:
        "the BARs are mapped at device add and stay mapped whatever the host then does to other devices' " +
        "BARs (a resize or move onto a page this BAR is mapped from): map_mmio_regions checks no other device's BAR (pci/src/vfio.rs)",
    },
    {
      violation: 'unexplained-mapping',
      why:
        'a memory slot KVM refuses to remove stays when the device goes: unmap_mmio_regions logs "Could not ' +
        'remove the userspace memory region" and drops the region all the same (the VfioPciDevice Drop, ' +
        'pci/src/vfio.rs; eject_device never refuses the removal), so a device that goes (unplugged, taken ' +
        'from its VM, or whose add failed after its slots were made) leaves such a slot mapped',
    },
    {
      violation: 'wrong-mfn',
      why:
        "a slot left behind that way keeps its guest pages: a BAR later placed over them decodes the old slot's " +
        'frames there (KVM refuses a slot overlapping another, and cloud-hypervisor restores the BAR address ' +
        'on a failed move_bar without removing the stale slot)',
    },
  ]),
  // A device removed from the VM takes its memory slots with it.
  unmapsLeavingDevice: true,
  // The page rules leave the MSI-X pages out (or not) themselves.
  ownsMsixPages: true,
  cmdWrite: (context, _accessor, device, value) => {
    if (!writeCommandRegister(device, value)) return;
    const moves = queued.get(device);
    queued.delete(device);
    for (const { bar, to } of moves ?? []) move(context, device, bar, to);
  },
  commandMaps: (device, value) => (value & PCI_COMMAND_MEMORY) !== 0 && (queued.get(device)?.length ?? 0) > 0,
  barWrite: (context, _accessor, device, bar, _reg, value, bytes) =>
    barWritten(context, device, bar, value, bytes ?? 4),
  guestBarWrite: (context, _accessor, device, bar, value, bytes) =>
    barWritten(context, device, bar, value, bytes ?? 4),
  // The ROM is never mapped, and its register never written to the device.
  romWrite: (_context, _accessor, device, _reg, value) => {
    device.vpci!.romEnabled = (value & PCI_ROM_ADDRESS_ENABLE) !== 0;
  },
  modifyBars: (context, _vcpu, device, cmd, romOnly) => {
    if (romOnly) return { ok: true };
    if (writeDecoding(device, cmd)) {
      mapAll(context, device);
      return { ok: true };
    }
    unmapAll(context, device);
    return { ok: true };
  },
  setUp: (context, _accessor, device, cmd) => {
    writeDecoding(device, cmd);
    mapAll(context, device);
  },
} satisfies RuleSet);
