/**
 * Device assignment as xen/drivers/passthrough/pci.c does it: `device_assigned` (only a device of the
 * hardware domain or dom_io may be assigned: anything else, a hidden device of dom_xen included, is
 * EBUSY), `assign_device` (vPCI leaves the old owner, the IOMMU takes the function and then each
 * phantom function, `devfn += phantom_stride` within the slot; a failure after the function's own
 * context is rolled back with `deassign_device`, and if that fails too the device is `broken` and the
 * guest crashed), `deassign_device` (to dom_io when `pdev->quarantine || iommu_quarantine` and the
 * device is not there yet, else to the hardware domain; `vpci_assign_device` does nothing for dom_io,
 * which has no vPCI), `pci_release_devices` and `vpci_reset_device`.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mmioExtents, writeCommand } from '../../../test/support/machine.js';
import type { DeviceSpec } from './hardware.js';
import { phantomFunctions, phantomStride } from './iommu.js';
import { Machine } from './machine.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import { formatSbdf } from './sbdf.js';

const MIB = 0x10_0000n;
const nic = (sbdf: string, addr: bigint, extra: Partial<DeviceSpec> = {}): DeviceSpec => ({
  sbdf,
  bars: [{ type: 'mem32', size: MIB, addr }],
  ...extra,
});

describe('device_assigned', () => {
  it('a hidden device (dom_xen) is refused with EBUSY, not EPERM', () => {
    const machine = new Machine();
    machine.addDevice(nic('0000:03:00.0', 0xfe00_0000n), { hidden: true });
    machine.boot();
    const guest = machine.createGuest();
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: false, code: 'EBUSY' });
    expect(machine.device('03:00.0').domain).toBe(machine.domXen);
  });

  it("another guest's device is refused with EBUSY", () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n)]);
    const one = machine.createGuest();
    const two = machine.createGuest();
    expect(machine.assignDevice('03:00.0', one.id)).toEqual({ ok: true });
    expect(machine.assignDevice('03:00.0', two.id)).toEqual({ ok: false, code: 'EBUSY' });
  });
});

describe('quarantine (iommu_quarantine, pdev->quarantine)', () => {
  it('by default a device leaving a guest goes to dom_io, without vPCI; dom0 then reaches the hardware', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n)]);
    expect(machine.quarantine).toBe(true);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    expect(machine.deassignDevice('03:00.0')).toEqual({ ok: true });
    const device = machine.device('03:00.0');
    expect(device.domain).toBe(machine.domIo);
    expect(device.vpci).toBeUndefined();
    // vpci_write: no pdev of dom0 or dom_xen at the address, so vpci_write_hw: the device itself.
    const v = machine.hardwareDomain.vcpus[0]!;
    machine.configWrite(v, '03:00.0', 0x10, 4, 0xfd00_0000);
    expect(device.hw.read(0x10, 4)).toBe(0xfd00_0000);
    machine.configWrite(v, '03:00.0', 0x04, 2, PCI_COMMAND_MEMORY);
    expect(v.pending).toBeUndefined();
    expect(mmioExtents(machine.hardwareDomain)).toEqual([]);
  });

  it('a quarantined device can be assigned again; de-assigned from dom_io it is the hardware domain’s', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n)]);
    const one = machine.createGuest();
    const two = machine.createGuest();
    machine.assignDevice('03:00.0', one.id);
    machine.deassignDevice('03:00.0');
    expect(machine.assignDevice('03:00.0', two.id)).toEqual({ ok: true });
    expect(machine.device('03:00.0').vpci?.guestSbdf).toBeDefined();
    machine.deassignDevice('03:00.0');
    // xl pci-assignable-remove: deassign_device(dom_io) goes to the hardware domain.
    expect(machine.deassignDevice('03:00.0')).toEqual({ ok: true });
    const device = machine.device('03:00.0');
    expect(device.domain).toBe(machine.hardwareDomain);
    expect(device.vpci!.bars[0]!.size).toBe(MIB);
    expect(device.quarantine).toBe(false);
  });

  it('without quarantine (iommu=no-quarantine) the device goes back to the hardware domain with vPCI', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n)], { quarantine: false });
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    machine.deassignDevice('03:00.0');
    expect(machine.device('03:00.0').domain).toBe(machine.hardwareDomain);
    expect(machine.device('03:00.0').vpci).toBeDefined();
  });

  it('a device made assignable (pci-assignable-add) goes back to dom_io even without iommu_quarantine', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n)], { quarantine: false });
    expect(machine.quarantineDevice('03:00.0')).toEqual({ ok: true });
    const device = machine.device('03:00.0');
    expect(device.domain).toBe(machine.domIo);
    expect(device.quarantine).toBe(true);
    const guest = machine.createGuest();
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: true });
    machine.deassignDevice('03:00.0');
    expect(device.domain).toBe(machine.domIo);
  });

  it('a device the hardware domain owns cannot be de-assigned (EINVAL)', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n)]);
    expect(machine.deassignDevice('03:00.0')).toEqual({ ok: false, code: 'EINVAL' });
  });
});

describe('pci_add_device: iommu_add_device on hot plug', () => {
  // pci.c pci_add_device, the `!pdev->domain` branch: after vpci_assign_device succeeds,
  // iommu_add_device (pci.c) programs the function's own requester ID and returns its error, then
  // each phantom function's (`devfn += phantom_stride` within the slot), whose failure is only
  // logged ("IOMMU: add %pp failed (%d)"); the loop goes on. On the function's own failure
  // pci_add_device calls vpci_deassign_device, list_del, `pdev->domain = NULL` and returns the error.
  // Without an IOMMU (`!is_iommu_enabled(hardware_domain)`) iommu_add_device returns 0 at once.
  it("the function's own context refused: vPCI torn down, the device has no owner, its deferred map dropped", () => {
    const machine = bootedMachine([]);
    const dom0 = machine.hardwareDomain;
    const v = dom0.vcpus[0]!;
    machine.iommuFaults.failNext('03:00.0', 'EPERM');
    const device = machine.addDevice(nic('0000:03:00.0', 0xfe00_0000n, { command: PCI_COMMAND_MEMORY }));
    expect(device.domain).toBeUndefined();
    expect(device.vpci).toBeUndefined();
    expect(dom0.devices).not.toContain(device);
    expect(machine.events).toContainEqual({
      kind: 'iommu-add-failed',
      sbdf: '0000:03:00.0',
      device: '0000:03:00.0',
      code: 'EPERM',
    });
    // vpci_init_header deferred the map (decoding on); vpci_process_pending drops it (no vPCI).
    expect(machine.finishPending(v)).toEqual({ status: 'dropped' });
    expect(mmioExtents(dom0)).toEqual([]);
    expect(device.hw.read(0x04, 2) & PCI_COMMAND_MEMORY).toBe(0);
    const guest = machine.createGuest();
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: false, code: 'EBUSY' });
  });

  it("a phantom function's refusal is only logged and the loop goes on: the device is dom0's", () => {
    const machine = bootedMachine([]);
    machine.iommuFaults.failNext('03:00.4');
    machine.iommuFaults.failNext('03:00.6', 'EBUSY');
    const device = machine.addDevice(nic('0000:03:00.0', 0xfe00_0000n, { phantomFunctions: 2 }));
    expect(device.domain).toBe(machine.hardwareDomain);
    expect(device.vpci).toBeDefined();
    expect(machine.events.filter((event) => event.kind === 'iommu-add-failed')).toEqual([
      { kind: 'iommu-add-failed', sbdf: '0000:03:00.4', device: '0000:03:00.0', code: 'ENOMEM' },
      { kind: 'iommu-add-failed', sbdf: '0000:03:00.6', device: '0000:03:00.0', code: 'EBUSY' },
    ]);
  });

  it("without an IOMMU nothing is programmed: the device is dom0's", () => {
    const machine = bootedMachine([], { iommu: false });
    machine.iommuFaults.failNext('03:00.0');
    const device = machine.addDevice(nic('0000:03:00.0', 0xfe00_0000n));
    expect(device.domain).toBe(machine.hardwareDomain);
    expect(machine.events.some((event) => event.kind === 'iommu-add-failed')).toBe(false);
  });
});

describe('phantom functions (phantom_stride)', () => {
  // alloc_pdev: stride = 8 >> MASK_EXTR(devcap, PCI_EXP_DEVCAP_PHANTOM), 0 for a function >= stride.
  it.each([
    ['0000:03:00.0', 1, 4, ['0000:03:00.4']],
    ['0000:03:00.0', 2, 2, ['0000:03:00.2', '0000:03:00.4', '0000:03:00.6']],
    ['0000:03:00.1', 3, 0, []],
    ['0000:03:00.2', 2, 0, []],
    ['0000:03:00.0', 0, 0, []],
  ] as const)(
    '%s with Phantom Functions Supported %i: stride %i, phantoms %j',
    (sbdf, field, stride, phantoms) => {
      const machine = bootedMachine([nic(sbdf, 0xfe00_0000n, { phantomFunctions: field })]);
      const device = machine.device(sbdf);
      expect(phantomStride(device.hw)).toBe(stride);
      expect(device.phantomStride).toBe(stride);
      expect(phantomFunctions(device.sbdf, stride).map(formatSbdf)).toEqual(phantoms);
    },
  );

  it('a phantom function the IOMMU refuses fails the assignment, rolled back to dom_io', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n, { phantomFunctions: 2 })]);
    const guest = machine.createGuest();
    machine.iommuFaults.failNext('03:00.4');
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: false, code: 'ENOMEM' });
    const device = machine.device('03:00.0');
    expect(device.domain).toBe(machine.domIo); // deassign_device(d): quarantine on, so dom_io
    expect(device.broken).toBe(false);
    expect(guest.crashed).toBe(false);
    expect(guest.devices).toEqual([]);
  });

  it('a rollback that fails too marks the device broken and crashes the guest', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n, { phantomFunctions: 2 })]);
    const guest = machine.createGuest();
    machine.iommuFaults.failNext('03:00.4'); // assign_device, third requester
    machine.iommuFaults.failNext('03:00.6'); // deassign_device's phantom loop: fails before vPCI
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: false, code: 'ENOMEM' });
    const device = machine.device('03:00.0');
    expect(device.broken).toBe(true);
    expect(device.domain).toBe(guest);
    expect(guest.crashed).toBe(true);
    expect(machine.events).toContainEqual(
      expect.objectContaining({ kind: 'domain-crashed', domain: guest.id }),
    );
  });

  it("the function's own context refused: the device stays with dom0, without vPCI (no rollback)", () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n, { phantomFunctions: 2 })]);
    const guest = machine.createGuest();
    machine.iommuFaults.failNext('03:00.0', 'EPERM');
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: false, code: 'EPERM' });
    const device = machine.device('03:00.0');
    expect(device.domain).toBe(machine.hardwareDomain);
    expect(device.vpci).toBeUndefined(); // vpci_deassign_device ran before the IOMMU was asked
  });

  it('a broken device is refused to guests (EBADF)', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n, { phantomFunctions: 2 })]);
    const one = machine.createGuest();
    machine.iommuFaults.failNext('03:00.4');
    machine.iommuFaults.failNext('03:00.6');
    machine.assignDevice('03:00.0', one.id);
    // Still the guest's: its release (the domain dying) goes through deassign_device.
    expect(machine.releaseDevices(one.id)).toEqual({ ok: true });
    const two = machine.createGuest();
    expect(machine.assignDevice('03:00.0', two.id)).toEqual({ ok: false, code: 'EBADF' });
  });
});

describe('pci_release_devices', () => {
  it('every device of the dying guest is de-assigned (to dom_io); the first error is returned', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n), nic('0000:04:00.0', 0xfd00_0000n)]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    machine.assignDevice('04:00.0', guest.id);
    machine.iommuFaults.failNext('03:00.0', 'ENODEV');
    expect(machine.releaseDevices(guest.id)).toEqual({ ok: false, code: 'ENODEV' });
    // 03:00.0's reassign failed after vpci_deassign_device: it stays the guest's, without vPCI.
    expect(machine.device('03:00.0').domain).toBe(guest);
    expect(machine.device('03:00.0').vpci).toBeUndefined();
    expect(machine.device('04:00.0').domain).toBe(machine.domIo);
  });
});

describe('vpci_reset_device (PHYSDEVOP_pci_device_reset)', () => {
  const device = nic('0000:03:00.0', 0xfe00_0000n);

  for (const unmapOnDeassign of [false, true]) {
    it(`a guest's device is set up again, decoding off; its mappings ${unmapOnDeassign ? 'are unmapped first' : 'stay (xen)'}`, () => {
      const machine = bootedMachine([device], { policy: { unmapOnDeassign } });
      const guest = machine.createGuest();
      machine.assignDevice('03:00.0', guest.id);
      const v = guest.vcpus[0]!;
      machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
      writeCommand(machine, v, '00:00.0', PCI_COMMAND_MEMORY);
      const before = machine.device('03:00.0').vpci;
      expect(machine.resetDevice('03:00.0')).toEqual({ ok: true });
      const after = machine.device('03:00.0').vpci!;
      expect(after).not.toBe(before);
      expect(after.barsMapped).toBe(false);
      expect(after.bars[0]!.enabled).toBe(false);
      expect(after.guestSbdf).toEqual(before!.guestSbdf); // the slot freed is the first free again
      expect(mmioExtents(guest)).toEqual(unmapOnDeassign ? [] : [[0xe0000, 0xfe000, 256]]);
    });
  }

  it('a hidden device is left alone: dom_xen has no vPCI (vpci_deassign_device returns at once)', () => {
    const machine = new Machine();
    machine.addDevice(device, { hidden: true });
    machine.boot();
    const before = machine.device('03:00.0').vpci;
    expect(machine.resetDevice('03:00.0')).toEqual({ ok: true });
    expect(machine.device('03:00.0').vpci).toBe(before);
  });

  it("the hardware domain's device decoding on is mapped again through the toolstack's vCPU", () => {
    const machine = bootedMachine([{ ...device, command: PCI_COMMAND_MEMORY }]);
    expect(mmioExtents(machine.hardwareDomain)).toEqual([[0xfe000, 0xfe000, 256]]);
    expect(machine.resetDevice('03:00.0')).toEqual({ ok: true });
    const toolstack = machine.hardwareDomain.vcpus[0]!;
    expect(toolstack.pending?.device).toBe(machine.device('03:00.0'));
    machine.finishPending(toolstack);
    expect(machine.device('03:00.0').vpci!.barsMapped).toBe(true);
  });
});

describe('without an IOMMU', () => {
  it('the assignment domctls are refused (iommu_do_domctl: EOPNOTSUPP)', () => {
    const machine = bootedMachine([nic('0000:03:00.0', 0xfe00_0000n)], { iommu: false });
    const guest = machine.createGuest();
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: false, code: 'EOPNOTSUPP' });
    expect(machine.quarantineDevice('03:00.0')).toEqual({ ok: false, code: 'EOPNOTSUPP' });
    expect(machine.deassignDevice('03:00.0')).toEqual({ ok: false, code: 'EOPNOTSUPP' });
    expect(machine.device('03:00.0').domain).toBe(machine.hardwareDomain);
  });
});
