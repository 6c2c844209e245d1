/**
 * The `kvm-vfio` rule set on a machine. Expected values from QEMU's source: `pci_update_mappings` /
 * `pci_bar_address` (hw/pci/pci.c) for when and where a BAR is mapped, `vfio_pci_fixup_msix_region`,
 * `vfio_msix_setup`, `vfio_sub_page_bar_update_mapping`, `vfio_pci_size_rom` (hw/vfio/pci.c) and
 * `kvm_align_section` (accel/kvm/kvm-all.c) for which pages; Xen's for the contrast
 * (xen/drivers/vpci/header.c `bar_write`: ignored while mapped).
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mfnAt } from '../../../test/support/machine.js';
import { checkInvariants } from './invariants.js';
import { KVM_VFIO_RULES } from './kvm-vfio-rules.js';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_MEMORY, PCI_ROM_ADDRESS } from './pci-regs.js';
import { ruleSetFor } from './rule-sets.js';

const SBDF = '0000:01:00.0';

function machine(rules: 'kvm-vfio' | 'xen', spec: Record<string, unknown> = {}) {
  const m = bootedMachine(
    [
      {
        sbdf: SBDF,
        bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf000_0000n }],
        ...spec,
      },
    ],
    { rules },
  );
  return { m, dom0: m.hardwareDomain, vcpu: m.hardwareDomain.vcpus[0]! };
}

describe('kvm-vfio (QEMU vfio-pci on KVM)', () => {
  it('is selected by name and cites its sources', () => {
    expect(ruleSetFor('kvm-vfio')).toBe(KVM_VFIO_RULES);
    expect(KVM_VFIO_RULES.source).toMatch(/pci_update_mappings/);
    expect(KVM_VFIO_RULES.hazards.map((h) => h.violation)).toEqual([
      'msix-mapped',
      'subpage-shared',
      'probe-mapped',
    ]);
  });

  it('pci_update_mappings: decoding on maps the BAR at once, off unmaps it at once (no deferred work)', () => {
    const { m, dom0, vcpu } = machine('kvm-vfio');
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(vcpu.pending).toBeUndefined();
    expect([0, 1, 2, 3].map((i) => mfnAt(dom0, 0xf0000 + i))).toEqual([0xf0000, 0xf0001, 0xf0002, 0xf0003]);
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, 0);
    expect(mfnAt(dom0, 0xf0000)).toBeUndefined();
    expect(checkInvariants(m)).toEqual([]);
  });

  it('a BAR written while decoding is on moves at once under kvm-vfio; Xen ignores the write (bar_write)', () => {
    for (const rules of ['kvm-vfio', 'xen'] as const) {
      const { m, dom0, vcpu } = machine(rules);
      m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
      m.finishPending(vcpu);
      m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf100_0000);
      m.finishPending(vcpu);
      if (rules === 'kvm-vfio') {
        expect(mfnAt(dom0, 0xf1000)).toBe(0xf1000);
        expect(mfnAt(dom0, 0xf0000)).toBeUndefined();
        expect(m.events.some((e) => e.kind === 'rule-decision' && /moved at once/.test(e.decision))).toBe(
          true,
        );
      } else {
        expect(mfnAt(dom0, 0xf0000)).toBe(0xf0000);
        expect(mfnAt(dom0, 0xf1000)).toBeUndefined();
        expect(m.events.some((e) => e.kind === 'bar-write-ignored')).toBe(true);
      }
      expect(checkInvariants(m)).toEqual([]);
    }
  });

  it('pci_bar_address: a 32-bit BAR at the sizing probe is not mapped while decoding', () => {
    const { m, dom0, vcpu } = machine('kvm-vfio');
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xffff_ffff);
    // 0xffffc000 + 0x4000 - 1 = 0xffffffff: last_addr >= UINT32_MAX for a 32-bit BAR.
    expect(mfnAt(dom0, 0xffffc)).toBeUndefined();
    expect(mfnAt(dom0, 0xf0000)).toBeUndefined();
    expect(m.device(SBDF).vpci!.bars[0]!.enabled).toBe(false);
  });

  it('vfio_pci_fixup_msix_region: the table page traps, the PBA page is mapped (a declared hazard)', () => {
    const { m, dom0, vcpu } = machine('kvm-vfio', {
      msix: { entries: 64, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
    });
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect([0, 1, 2, 3].map((i) => mfnAt(dom0, 0xf0000 + i))).toEqual([0xf0000, 0xf0001, undefined, 0xf0003]);
    const kinds = checkInvariants(m).map((v) => v.kind);
    expect(kinds).toEqual(['msix-mapped']);
  });

  it('vfio_sub_page_bar_update_mapping: a sub-page BAR is widened to its page only at a page-aligned address', () => {
    const { m, dom0, vcpu } = machine('kvm-vfio', {
      bars: [{ type: 'mem32', size: 0x100n, addr: 0xf000_2000n }],
    });
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(mfnAt(dom0, 0xf0002)).toBe(0xf0002);
    // Moved (decoding on) to 0xf0003100: not page-aligned, so it keeps its size and traps.
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf000_3100);
    expect(mfnAt(dom0, 0xf0002)).toBeUndefined();
    expect(mfnAt(dom0, 0xf0003)).toBeUndefined();
    expect(m.device(SBDF).vpci!.bars[0]!.enabled).toBe(true);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('vfio_pci_size_rom: the ROM is never mapped, even enabled while decoding (Xen maps it)', () => {
    for (const rules of ['kvm-vfio', 'xen'] as const) {
      const { m, dom0, vcpu } = machine(rules, { rom: { size: 0x1_0000n, addr: 0xf010_0000n } });
      m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
      m.finishPending(vcpu);
      m.configWrite(vcpu, SBDF, PCI_ROM_ADDRESS, 4, 0xf010_0001);
      m.finishPending(vcpu);
      expect(mfnAt(dom0, 0xf0100)).toBe(rules === 'xen' ? 0xf0100 : undefined);
      expect(checkInvariants(m)).toEqual([]);
    }
  });

  it('pci_update_mappings: a 64-bit BAR written one half at a time is mapped in between (a declared hazard)', () => {
    const { m, dom0, vcpu } = machine('kvm-vfio', {
      bars: [{ type: 'mem64', size: 0x4000n, addr: 0x8_0000_0000n }],
    });
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(mfnAt(dom0, 0x800000)).toBe(0x800000);
    // The low half first: 0x8_f000_0000 until the high half is written.
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf000_0000);
    expect(mfnAt(dom0, 0x8f0000)).toBe(0x8f0000);
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0 + 4, 4, 0x9);
    expect(mfnAt(dom0, 0x8f0000)).toBeUndefined();
    expect(mfnAt(dom0, 0x9f0000)).toBe(0x9f0000);
  });
});
