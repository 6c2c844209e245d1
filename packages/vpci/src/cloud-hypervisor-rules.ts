/**
 * The `cloud-hypervisor` rule set: a device assigned with cloud-hypervisor's VFIO device
 * (docs/rule-sets.md). cloud-hypervisor keeps its own copy of the device's BARs and never writes a
 * BAR to the device (`VfioCommon::write_config_register`); the host BARs stay where they are.
 *
 * - The BARs are mapped when the device is added, whatever the command register says, and clearing
 *   memory decoding unmaps nothing (`vmm/src/device_manager.rs` `add_vfio_device` →
 *   `VfioPciDevice::map_mmio_regions`); they are unmapped when the device goes.
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
 * register as written in the device's register (the hardware domain's) or, for a guest, beside it;
 * a guest reading its BAR reads `guestAddr` (the engine's read handler is Xen's), not the register.
 */

import type { Paddr } from '@vpci/p2m';
import { type CloudHypervisorBar, cloudHypervisorPages } from './cloud-hypervisor-pages.js';
import type { EngineContext } from './context.js';
import { type Bar, barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { lowSlot, withHalf } from './header.js';
import { msixBir } from './msix.js';
import {
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_32,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_ROM_ADDRESS_ENABLE,
} from './pci-regs.js';
import type { RuleSet } from './rule-set.js';
import { decide, mapSlots, type PagesOf, unmapSlots, vfioBarOf } from './vfio-slots.js';

const NAME = 'cloud-hypervisor';

/** cloud-hypervisor's pages of a BAR: its region is MSI-X mappable when it holds the table. */
const pagesOf: PagesOf = (context, device, bar) => {
  const vpci = device.vpci!;
  const view: CloudHypervisorBar = {
    ...vfioBarOf(context, device, bar),
    msixMappable: vpci.msix !== undefined && msixBir(vpci, 0) === bar.index,
  };
  return cloudHypervisorPages(view);
};

/** The BAR registers as written (cloud-hypervisor's `registers`), per BAR's low slot. */
const registers = new WeakMap<Bar, Paddr>();

/** The moves queued while Memory Space Enable was clear (`pending_bar_reprogram`), per device. */
const queued = new WeakMap<PciDevice, Set<Bar>>();

/** Maps every memory BAR not mapped yet (`map_mmio_regions`). */
function mapAll(context: EngineContext, device: PciDevice): void {
  for (const bar of device.vpci!.bars) {
    if (!bar.mappable || bar.size === 0n || bar.type === 'rom' || bar.enabled) continue;
    registers.set(bar, bar.guestAddr);
    const pages = mapSlots(context, device, bar, pagesOf);
    decide(context, NAME, device, bar, `mapped when the device was added: ${pages} (map_mmio_regions)`);
  }
}

/** Unmaps every mapped BAR (the device goes: `unmap_mmio_regions`). */
function unmapAll(context: EngineContext, device: PciDevice): void {
  for (const bar of device.vpci!.bars) {
    if (!bar.enabled) continue;
    unmapSlots(context, device, bar, pagesOf);
    decide(context, NAME, device, bar, 'unmapped: the device left (unmap_mmio_regions)');
  }
  queued.delete(device);
}

/** Moves `bar` to the address its register holds (`move_bar`), or restores the register. */
function move(context: EngineContext, device: PciDevice, bar: Bar): void {
  const to = registers.get(bar) ?? bar.guestAddr;
  if (to === bar.guestAddr) return;
  const from = bar.guestAddr;
  const wasMapped = bar.enabled;
  if (wasMapped) unmapSlots(context, device, bar, pagesOf);
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
 * at once with Memory Space Enable set, else queued.
 */
function barWritten(context: EngineContext, device: PciDevice, bar: Bar, value: number, reg?: number): void {
  const vpci = device.vpci!;
  const { target, hi } = lowSlot(vpci, bar);
  const low = hi ? value : (value & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  const register = barAddress(
    withHalf(registers.get(target) ?? target.guestAddr, hi, low) & ~(target.size - 1n),
  );
  registers.set(target, register);
  if (reg !== undefined) {
    let raw = low;
    if (!hi) {
      raw |= target.type === 'mem32' ? PCI_BASE_ADDRESS_MEM_TYPE_32 : PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (target.prefetchable) raw |= PCI_BASE_ADDRESS_MEM_PREFETCH;
    }
    device.hw.write(reg, 4, raw >>> 0);
  }
  // is_bar_size_probe: every address bit of a low register set, or a high half of all ones.
  const probe = hi
    ? value >>> 0 === 0xffffffff
    : (value & PCI_BASE_ADDRESS_MEM_MASK) >>> 0 === PCI_BASE_ADDRESS_MEM_MASK;
  if (probe) return;
  // The low half of a 64-bit BAR waits for the high half.
  if (target.type === 'mem64lo' && !hi) return;
  if (register === target.guestAddr) return;
  if ((device.hw.read(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) !== 0) {
    move(context, device, target);
    return;
  }
  const moves = queued.get(device) ?? new Set<Bar>();
  moves.add(target);
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
    'generate_sparse_areas, move_bar; pci/src/bus.rs: restore_bar_addr; vmm/src/device_manager.rs: ' +
    'add_vfio_device, AddressManager::move_bar',
  hazards: Object.freeze([]),
  cmdWrite: (context, _accessor, device, value) => {
    const vpci = device.vpci!;
    if (device.domain?.kind !== 'hardware') vpci.guestCmd = value;
    device.hw.write(PCI_COMMAND, 2, value);
    vpci.barsMapped = (value & PCI_COMMAND_MEMORY) !== 0;
    if (!vpci.barsMapped) return;
    const moves = queued.get(device);
    queued.delete(device);
    for (const bar of moves ?? []) move(context, device, bar);
  },
  commandMaps: (device, value) => (value & PCI_COMMAND_MEMORY) !== 0 && (queued.get(device)?.size ?? 0) > 0,
  barWrite: (context, _accessor, device, bar, reg, value) => barWritten(context, device, bar, value, reg),
  guestBarWrite: (context, _accessor, device, bar, value) => barWritten(context, device, bar, value),
  // The register only: the ROM is never mapped, and never written to the device's BAR.
  romWrite: (_context, _accessor, device, reg, value) => {
    device.hw.write(reg, 4, value >>> 0);
    device.vpci!.romEnabled = (value & PCI_ROM_ADDRESS_ENABLE) !== 0;
  },
  modifyBars: (context, _vcpu, device, cmd, romOnly) => {
    if (romOnly) return { ok: true };
    device.hw.write(PCI_COMMAND, 2, cmd);
    device.vpci!.barsMapped = (cmd & PCI_COMMAND_MEMORY) !== 0;
    if (device.vpci!.barsMapped) mapAll(context, device);
    else unmapAll(context, device);
    return { ok: true };
  },
  setUp: (context, _accessor, device, cmd) => {
    device.hw.write(PCI_COMMAND, 2, cmd);
    device.vpci!.barsMapped = (cmd & PCI_COMMAND_MEMORY) !== 0;
    mapAll(context, device);
  },
} satisfies RuleSet);
