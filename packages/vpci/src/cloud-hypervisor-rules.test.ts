/**
 * The `cloud-hypervisor` rule set on a machine. Expected values from cloud-hypervisor's source:
 * `map_mmio_regions` at device add (vmm/src/device_manager.rs `add_vfio_device`),
 * `detect_bar_reprogramming` / `is_bar_size_probe` / `write_config_register`
 * (pci/src/configuration.rs), `VfioCommon::write_config_register`, `move_bar` and
 * `unmap_mmio_regions` (pci/src/vfio.rs), `eject_device` (vmm/src/device_manager.rs).
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mfnAt } from '../../../test/support/machine.js';
import { CLOUD_HYPERVISOR_RULES } from './cloud-hypervisor-rules.js';
import { checkInvariants } from './invariants.js';
import { Machine } from './machine.js';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_MEMORY } from './pci-regs.js';
import { ruleSetFor } from './rule-sets.js';

const SBDF = '0000:01:00.0';

function machine(spec: Record<string, unknown> = {}) {
  const m = bootedMachine(
    [{ sbdf: SBDF, bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf000_0000n }], ...spec }],
    { rules: 'cloud-hypervisor' },
  );
  return { m, dom0: m.hardwareDomain, vcpu: m.hardwareDomain.vcpus[0]! };
}

describe('cloud-hypervisor (its VFIO device)', () => {
  it('is selected by name and cites its sources', () => {
    expect(ruleSetFor('cloud-hypervisor')).toBe(CLOUD_HYPERVISOR_RULES);
    expect(CLOUD_HYPERVISOR_RULES.source).toMatch(/detect_bar_reprogramming/);
  });

  it('map_mmio_regions: the BARs are mapped when the device is added, decoding off, and stay when it goes off', () => {
    const { m, dom0, vcpu } = machine();
    expect(mfnAt(dom0, 0xf0000)).toBe(0xf0000);
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, 0);
    expect(mfnAt(dom0, 0xf0003)).toBe(0xf0003);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('write_config_register: a move with Memory Space Enable clear waits for the command write that sets it', () => {
    const { m, dom0, vcpu } = machine();
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf100_0000);
    expect(mfnAt(dom0, 0xf0000)).toBe(0xf0000);
    expect(mfnAt(dom0, 0xf1000)).toBeUndefined();
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(mfnAt(dom0, 0xf0000)).toBeUndefined();
    // Only the guest address moves: the host BAR stays at 0xf0000000.
    expect(mfnAt(dom0, 0xf1000)).toBe(0xf0000);
    expect(checkInvariants(m)).toEqual([]);
  });

  it('detect_bar_reprogramming: a BAR write of other than 4 bytes is no move ("if data.len() != 4 { return None; }")', () => {
    // Found by the rule-set property once its traces had dom0's raw writes: the high 16 bits of a
    // 16 KiB BAR written alone, then Memory Space Enable. cloud-hypervisor stores the bytes
    // (write_reg) and moves nothing; the engine had moved the BAR to the merged 0xffff0000.
    const { m, dom0, vcpu } = machine();
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0 + 2, 2, 0xffff);
    m.configWrite(vcpu, SBDF, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(mfnAt(dom0, 0xf0000)).toBe(0xf0000);
    expect(mfnAt(dom0, 0xffff0)).toBeUndefined();
    expect(checkInvariants(m)).toEqual([]);
    // A whole-register write after it is a move, as before.
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf200_0000);
    expect(mfnAt(dom0, 0xf2000)).toBe(0xf0000);
  });

  it('detect_bar_reprogramming: with decoding on a move is made at once; a size probe is no move', () => {
    const { m, dom0, vcpu } = machine({ command: PCI_COMMAND_MEMORY });
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xffff_ffff);
    expect(mfnAt(dom0, 0xf0000)).toBe(0xf0000);
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf200_0000);
    expect(mfnAt(dom0, 0xf2000)).toBe(0xf0000);
    expect(mfnAt(dom0, 0xf0000)).toBeUndefined();
  });

  it('detect_bar_reprogramming: the low half of a 64-bit BAR waits for the high half', () => {
    const { m, dom0, vcpu } = machine({
      command: PCI_COMMAND_MEMORY,
      bars: [{ type: 'mem64', size: 0x4000n, addr: 0x8_0000_0000n }],
    });
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf000_0000);
    expect(mfnAt(dom0, 0x800000)).toBe(0x800000);
    expect(mfnAt(dom0, 0x8f0000)).toBeUndefined();
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0 + 4, 4, 0x9);
    expect(mfnAt(dom0, 0x9f0000)).toBe(0x800000);
    expect(mfnAt(dom0, 0x800000)).toBeUndefined();
  });

  it('generate_sparse_areas: the MSI-X table and PBA pages are cut out of the table BAR', () => {
    const { dom0 } = machine({
      msix: { entries: 64, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
    });
    expect([0, 1, 2, 3].map((i) => mfnAt(dom0, 0xf0000 + i))).toEqual([
      0xf0000,
      0xf0001,
      undefined,
      undefined,
    ]);
  });

  it('move_bar: a sub-page BAR moved off a page boundary loses its slot; the register is restored', () => {
    const { m, dom0, vcpu } = machine({
      command: PCI_COMMAND_MEMORY,
      bars: [{ type: 'mem32', size: 0x100n, addr: 0xf000_2000n }],
    });
    expect(mfnAt(dom0, 0xf0002)).toBe(0xf0002);
    m.configWrite(vcpu, SBDF, PCI_BASE_ADDRESS_0, 4, 0xf000_3100);
    expect(mfnAt(dom0, 0xf0002)).toBeUndefined();
    expect(mfnAt(dom0, 0xf0003)).toBeUndefined();
    expect(m.device(SBDF).vpci!.bars[0]!.guestAddr).toBe(0xf000_2000n);
    expect(m.events.some((e) => e.kind === 'rule-decision' && /restore_bar_addr/.test(e.decision))).toBe(
      true,
    );
  });

  // Found by the rule-set property once @vpci/fuzz injected IOMMU faults: the device is mapped when
  // it is added (map_mmio_regions), then Xen's pci_add_device undoes the add when iommu_add_device
  // fails (vpci_deassign_device, no owner); the VMM's device goes with it (unmapsLeavingDevice),
  // slots included, where the engine left them mapped with no BAR behind them.
  it('a hot plug the IOMMU refuses (iommu_add_device) takes the slots made at add with it', () => {
    const m = new Machine({ rules: 'cloud-hypervisor' });
    m.boot();
    m.iommuFaults.failNext(SBDF, 'EPERM');
    const device = m.addDevice({ sbdf: SBDF, bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf000_0000n }] });
    expect(m.events).toContainEqual(expect.objectContaining({ kind: 'iommu-add-failed', code: 'EPERM' }));
    expect(device.domain).toBeUndefined();
    expect(mfnAt(m.hardwareDomain, 0xf0000)).toBeUndefined();
    expect(checkInvariants(m)).toEqual([]);
  });

  // eject_device (vmm/src/device_manager.rs) drops the VfioPciDevice, whose Drop runs
  // unmap_mmio_regions (pci/src/vfio.rs): every region is drained, a slot KVM would not remove is
  // logged ("Could not remove the userspace memory region") and freed, and nothing refuses the
  // removal. The engine had refused the unplug, the device left in place with its slots.
  describe('unmap_mmio_regions: a device that goes takes its slots with it, and is never refused', () => {
    for (const removalFails of [false, true]) {
      it(`unplugged${removalFails ? ', a slot KVM will not remove stays mapped with no device behind it' : ': every slot goes'}`, () => {
        const { m, dom0 } = machine();
        expect(mfnAt(dom0, 0xf0000)).toBe(0xf0000);
        if (removalFails) dom0.p2m.failNext(1);
        expect(m.removeDevice(SBDF)).toEqual({ ok: true });
        expect(m.findDevice(SBDF)).toBeUndefined();
        expect(mfnAt(dom0, 0xf0000)).toBe(removalFails ? 0xf0000 : undefined);
        const decisions = m.events.flatMap((e) => (e.kind === 'rule-decision' ? [e.decision] : []));
        expect(decisions.at(-1)).toMatch(
          removalFails ? /could not be removed: logged and dropped/ : /^unmapped: the device left/,
        );
        expect(m.events.some((e) => e.kind === 'map-failed' && e.operation === 'unmap')).toBe(removalFails);
        // The slot left behind is the declared hazard.
        expect(checkInvariants(m).map((v) => v.kind)).toEqual(removalFails ? ['unexplained-mapping'] : []);
        expect(CLOUD_HYPERVISOR_RULES.hazards.map((h) => h.violation)).toContain('unexplained-mapping');
      });
    }

    it('taken from its guest (de-assigned) with a slot KVM will not remove: the device goes back all the same', () => {
      const { m } = machine();
      const guest = m.createGuest();
      expect(m.assignDevice(SBDF, guest.id)).toEqual({ ok: true });
      const v = guest.vcpus[0]!;
      m.configWrite(v, '00:00.0', PCI_BASE_ADDRESS_0, 4, 0xe000_0000);
      m.configWrite(v, '00:00.0', PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
      expect(mfnAt(guest, 0xe0000)).toBe(0xf0000);
      guest.p2m.failNext(1);
      expect(m.deassignDevice(SBDF)).toEqual({ ok: true });
      expect(m.device(SBDF).domain).not.toBe(guest);
      expect(mfnAt(guest, 0xe0000)).toBe(0xf0000);
      expect(checkInvariants(m)).toContainEqual(
        expect.objectContaining({ kind: 'unexplained-mapping', domain: guest.id, gfn: 0xe0000 }),
      );
    });
  });
});
