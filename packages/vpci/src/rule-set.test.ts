/**
 * The rule-set axis: a machine picks whose rules decide what the header writes do (rule-set.ts),
 * independently of the policy. Xen's rule set is header.c's handlers (`cmd_write`, `bar_write`,
 * `guest_mem_bar_write`, `rom_write`) and `modify_bars`, under either profile.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, writeCommand } from '../../../test/support/machine.js';
import { writeMayChangeDevice } from './device-snapshot.js';
import { Machine } from './machine.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import { QEMU_RULES } from './qemu-rules.js';
import { RULE_SET_NAMES } from './rule-set.js';
import { ruleSetFor } from './rule-sets.js';
import { XEN_RULES } from './xen-rules.js';

describe('rule sets', () => {
  it('xen is the default, under both profiles; an unknown name is refused, naming the option', () => {
    expect(new Machine().rules).toBe(XEN_RULES);
    expect(new Machine({ profile: 'hardened' }).rules).toBe(XEN_RULES);
    expect(ruleSetFor()).toBe(XEN_RULES);
    expect(RULE_SET_NAMES).toEqual(['xen', 'qemu', 'kvm-vfio', 'cloud-hypervisor']);
    expect(ruleSetFor('qemu')).toBe(QEMU_RULES);
    expect(new Machine({ rules: 'qemu', profile: 'hardened' }).rules).toBe(QEMU_RULES);
    expect(() => new Machine({ rules: 'bhyve' as never })).toThrow(
      /rules: expected one of xen, qemu, kvm-vfio, cloud-hypervisor, got.*bhyve/,
    );
  });

  it("Xen's rules name header.c's functions, and declare no hazard (Xen's holes are the policy's gaps)", () => {
    expect(XEN_RULES.source).toMatch(
      /header\.c: cmd_write, bar_write, guest_mem_bar_write, rom_write, modify_bars/,
    );
    expect(XEN_RULES.hazards).toEqual([]);
  });

  it("cmd_write: only a command value that flips memory decoding can change the mappings (Xen's commandMaps)", () => {
    const machine = bootedMachine([
      { sbdf: '0000:01:00.0', bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf000_0000n }] },
    ]);
    const device = machine.device('01:00.0');
    const dom0 = machine.hardwareDomain.vcpus[0]!;
    expect(XEN_RULES.commandMaps(device, PCI_COMMAND_MEMORY)).toBe(!device.vpci!.barsMapped);
    writeCommand(machine, dom0, '01:00.0', 0);
    expect(XEN_RULES.commandMaps(device, PCI_COMMAND_MEMORY)).toBe(true);
    expect(XEN_RULES.commandMaps(device, 0)).toBe(false);
    writeCommand(machine, dom0, '01:00.0', PCI_COMMAND_MEMORY);
    expect(device.vpci!.barsMapped).toBe(true);
    expect(XEN_RULES.commandMaps(device, PCI_COMMAND_MEMORY)).toBe(false);
    expect(XEN_RULES.commandMaps(device, 0)).toBe(true);
  });

  // Found by rule-sets.property.test.ts: cloud-hypervisor's command write changes no mapping unless a
  // move is queued, but decoding follows the bit (VfioCommon::write_config_register), and the checks
  // read decoding (msix-mapped); its commandMaps alone called such a write inert, so no check ran.
  for (const rules of RULE_SET_NAMES)
    it(`${rules}: a command write that flips memory decoding is never inert (writeMayChangeDevice)`, () => {
      const machine = bootedMachine(
        [{ sbdf: '0000:01:00.0', bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf000_0000n }] }],
        { rules },
      );
      const device = machine.device('01:00.0');
      const dom0 = machine.hardwareDomain.vcpus[0]!;
      const inert = (cmd: number) => !writeMayChangeDevice(machine, dom0, device, 0x04, 2, cmd);
      writeCommand(machine, dom0, '01:00.0', 0);
      expect(device.vpci!.barsMapped).toBe(false);
      expect(inert(PCI_COMMAND_MEMORY)).toBe(false);
      writeCommand(machine, dom0, '01:00.0', PCI_COMMAND_MEMORY);
      expect(device.vpci!.barsMapped).toBe(true);
      expect(inert(0)).toBe(false);
    });
});
