/**
 * The `kvm-vfio` rule set: a device assigned with QEMU's vfio-pci on KVM (docs/rule-sets.md).
 *
 * When and where a BAR is mapped is QEMU's PCI core: every write to a BAR or the command register
 * (`vfio_pci_write_config` hands both to `pci_default_write_config`) recomputes each BAR's address
 * (`pci_update_mappings` / `pci_bar_address` in hw/pci/pci.c) and moves the mapping at once when it
 * changed: a BAR written while decoding is on follows its register, a 64-bit BAR written one half at
 * a time is mapped in between at the address the halves spell. How a BAR becomes frames is VFIO's
 * and KVM's (kvm-vfio-pages.ts): a memory slot over the part of the BAR QEMU could `mmap`, the MSI-X
 * table's pages left out, a sub-page BAR widened to its page only at a page-aligned guest address
 * (`vfio_sub_page_bar_update_mapping`, which `vfio_pci_write_config` calls when a sub-page BAR moved).
 * The ROM is never mapped (`vfio_pci_size_rom` registers it as an I/O region read through the
 * region), nor are I/O BARs (no handler: the engine leaves them to the device).
 */
import type { EngineContext } from './context.js';
import { type Bar, barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { kvmVfioPages } from './kvm-vfio-pages.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import { qemuBarAddress } from './qemu-rules.js';
import type { RuleSet } from './rule-set.js';
import { writeBarRegister, writeCommandRegister, writeDecoding, writeRomRegister } from './vfio-registers.js';
import { abortVm, decide, mapSlots, type PagesOf, unmapSlots, vfioBarOf } from './vfio-slots.js';

const NAME = 'kvm-vfio';

/** kvm-vfio's pages of a BAR (kvm-vfio-pages.ts) for the slots module. */
const pagesOf: PagesOf = (context, device, bar) => kvmVfioPages(vfioBarOf(context, device, bar));

/** Where each enabled BAR is mapped, so that a change of address is seen as a move. */
const mappedAt = new WeakMap<Bar, bigint>();

/**
 * QEMU's `pci_update_mappings` for a VFIO device: every memory BAR whose address changed is unmapped
 * from the old one and mapped at the new one, with kvm-vfio's pages; each change logged with the rule.
 */
function updateMappings(context: EngineContext, device: PciDevice): boolean {
  const vpci = device.vpci!;
  let ok = true;
  for (const bar of vpci.bars) {
    if (!bar.mappable || bar.size === 0n || bar.type === 'rom') continue;
    // pci_bar_address (the `qemu` rule set's): the register cut to the size, or PCI_BAR_UNMAPPED.
    const cmd = vpci.barsMapped ? PCI_COMMAND_MEMORY : 0;
    const want =
      qemuBarAddress({ type: bar.type as 'mem32' | 'mem64lo', size: bar.size }, bar.guestAddr, cmd) ?? null;
    const have = bar.enabled ? (mappedAt.get(bar) ?? null) : null;
    if (want === have) continue;
    if (have !== null) {
      if (!unmapSlots(context, device, bar, pagesOf)) {
        // The slot stays at the old address: so does the BAR, and the VM is gone.
        bar.guestAddr = barAddress(have);
        if (device.domain?.kind === 'hardware' || device.domain?.isPseudo === true) bar.addr = bar.guestAddr;
        abortVm(context, device, 'QEMU aborts: KVM refused to remove a memory slot (kvm_set_phys_mem)');
        ok = false;
        continue;
      }
      mappedAt.delete(bar);
      if (want === null) {
        const why = vpci.barsMapped
          ? 'its address is one pci_bar_address refuses (0, wrapping, or a 32-bit BAR reaching 4 GiB)'
          : 'memory decoding is off';
        decide(context, NAME, device, bar, `unmapped at once: ${why} (pci_update_mappings)`);
      }
    }
    if (want !== null) {
      const mapped = mapSlots(context, device, bar, pagesOf);
      mappedAt.set(bar, want);
      const how = have === null ? 'decodes' : 'moved at once with its register';
      decide(
        context,
        NAME,
        device,
        bar,
        `${how} at 0x${want.toString(16)} (pci_update_mappings); ${mapped.why}`,
      );
      if (!mapped.ok) {
        abortVm(context, device, 'QEMU aborts: KVM refused a memory slot (kvm_set_phys_mem)');
        ok = false;
      }
    }
  }
  return ok;
}

/** QEMU's vfio-pci on KVM (see the module comment). */
export const KVM_VFIO_RULES: RuleSet = Object.freeze({
  name: NAME,
  source:
    'QEMU hw/pci/pci.c: pci_update_mappings, pci_bar_address; hw/vfio/pci.c: vfio_pci_write_config, ' +
    'vfio_sub_page_bar_update_mapping, vfio_pci_fixup_msix_region, vfio_msix_setup, vfio_pci_size_rom; ' +
    'hw/vfio/region.c: vfio_region_mmap; accel/kvm/kvm-all.c: kvm_align_section; ' +
    'Linux drivers/vfio/pci/vfio_pci_core.c: vfio_pci_probe_mmaps',
  hazards: Object.freeze([
    {
      violation: 'msix-mapped',
      why:
        "the MSI-X PBA's pages are mapped: vfio_pci_fixup_msix_region cuts only the table out of the mmap, " +
        "and vfio_msix_setup disables QEMU's PBA region until a masked vector fires (hw/vfio/pci.c)",
    },
    {
      violation: 'subpage-shared',
      why:
        'a BAR is mapped wherever its register says: pci_update_mappings has no notion of another ' +
        "device's or another VM's BAR, so a host BAR moved onto a page of another device's BAR is mapped there (hw/pci/pci.c)",
    },
    {
      violation: 'probe-mapped',
      why:
        'a 64-bit BAR written one half at a time is mapped at the address the two halves spell in ' +
        'between: pci_update_mappings maps whatever pci_bar_address accepts (hw/pci/pci.c)',
    },
  ]),
  // A device removed from the VM takes its memory slots with it.
  unmapsLeavingDevice: true,
  // The page rules leave the MSI-X pages out (or not) themselves.
  ownsMsixPages: true,
  cmdWrite: (context, _accessor, device, value) => {
    writeCommandRegister(device, value);
    updateMappings(context, device);
  },
  commandMaps: (device, value) => device.vpci!.barsMapped !== ((value & PCI_COMMAND_MEMORY) !== 0),
  barWrite: (context, _accessor, device, bar, reg, value) => {
    writeBarRegister(device, bar, value, reg);
    updateMappings(context, device);
  },
  guestBarWrite: (context, _accessor, device, bar, value) => {
    writeBarRegister(device, bar, value);
    updateMappings(context, device);
  },
  romWrite: (context, _accessor, device, reg, value) => {
    const vpci = device.vpci!;
    const was = vpci.romEnabled;
    const rom = writeRomRegister(device, reg, value);
    if (vpci.barsMapped && vpci.romEnabled && !was) {
      decide(
        context,
        NAME,
        device,
        rom,
        'not mapped: the ROM is an I/O region read through the region (vfio_pci_size_rom, vfio_rom_read)',
      );
    }
  },
  modifyBars: (context, _vcpu, device, cmd, romOnly) => {
    if (romOnly) return { ok: true };
    writeDecoding(device, cmd);
    return updateMappings(context, device) ? { ok: true } : { ok: false, code: 'ENOMEM' };
  },
} satisfies RuleSet);
