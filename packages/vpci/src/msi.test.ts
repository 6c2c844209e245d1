/**
 * MSI as Xen's xen/drivers/vpci/msi.c emulates it. Every expected value is worked out from the C
 * function named in the test: `control_read` composes QMASK from `fls(msi_maxvec) - 1`, QSIZE from
 * `fls(vectors) - 1`, and the enable, mask-bit and 64-bit flags; `control_write` takes
 * `min(1 << MME, msi_maxvec)` vectors and writes the device only when the enable bit or (while
 * enabled) the vectors change; the address, data and mask handlers keep what was written.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, writeCommand } from '../../../test/support/machine.js';
import type { DeviceSpec } from './hardware.js';
import { PhysicalDevice } from './hardware.js';
import { Machine } from './machine.js';

const MSI_CAP = 0x50; // where hardware.ts places the MSI capability
const CTRL = MSI_CAP + 2;

const device64: DeviceSpec = {
  sbdf: '0000:02:00.0',
  bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf100_0000n }],
  msi: { vectors: 4, address64: true, masking: true },
};
const device32: DeviceSpec = {
  sbdf: '0000:03:00.0',
  bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf200_0000n }],
  msi: { vectors: 1 },
};

describe('MSI for the hardware domain (msi.c)', () => {
  it('control_read: QMASK fls(4)-1=2, QSIZE fls(1)-1=0, 64-bit 0x80, mask bit 0x100', () => {
    const machine = bootedMachine([device64]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    expect(machine.configRead(d0, '02:00.0', 0x34, 1)).toBe(MSI_CAP);
    expect(machine.configRead(d0, '02:00.0', MSI_CAP, 1)).toBe(0x05);
    expect(machine.configRead(d0, '02:00.0', CTRL, 2)).toBe(0x0184);
    expect(machine.device('02:00.0').vpci!.msi).toMatchObject({ maxVectors: 4, vectors: 1, enabled: false });
  });

  it('control_write: MME 3 asks 8 vectors, min_t with msi_maxvec 4 keeps 4; enabling writes the device', () => {
    const machine = bootedMachine([device64]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    const hw = machine.device('02:00.0').hw;
    machine.configWrite(d0, '02:00.0', CTRL, 2, (3 << 4) | 1);
    // QMASK 0x4 | QSIZE fls(4)-1=2 → 0x20 | ENABLE | 64BIT | MASKBIT.
    expect(machine.configRead(d0, '02:00.0', CTRL, 2)).toBe(0x01a5);
    expect(hw.read(CTRL, 2)).toBe(0x01a5);
    expect(machine.device('02:00.0').vpci!.msi).toMatchObject({ vectors: 4, enabled: true });
    // The hardware domain's INTx is left alone (pci_intx only for domUs).
    expect(hw.read(0x04, 2) & 0x400).toBe(0);
  });

  it('control_write: with MSI off a new MME is only recorded, the device is not written', () => {
    const machine = bootedMachine([device64]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    const hw = machine.device('02:00.0').hw;
    machine.configWrite(d0, '02:00.0', CTRL, 2, 1 << 4); // 2 vectors, enable clear
    expect(machine.configRead(d0, '02:00.0', CTRL, 2)).toBe(0x0184 | (1 << 4));
    expect(hw.read(CTRL, 2)).toBe(0x0184);
  });

  it('control_write: a vector change while enabled re-enables and writes; disabling writes the enable off', () => {
    const machine = bootedMachine([device64]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    const hw = machine.device('02:00.0').hw;
    machine.configWrite(d0, '02:00.0', CTRL, 2, 1);
    expect(hw.read(CTRL, 2)).toBe(0x0185);
    machine.configWrite(d0, '02:00.0', CTRL, 2, (1 << 4) | 1);
    expect(hw.read(CTRL, 2)).toBe(0x0195);
    machine.configWrite(d0, '02:00.0', CTRL, 2, 0);
    expect(hw.read(CTRL, 2)).toBe(0x0184);
    expect(machine.device('02:00.0').vpci!.msi!.enabled).toBe(false);
  });

  it('disabling MSI turns INTx back on in the device (vpci_msi_arch_disable → unmap_domain_pirq → __pci_disable_msi: pci_intx(dev, true))', () => {
    const machine = bootedMachine([device64]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    const hw = machine.device('02:00.0').hw;
    // Dom0 disables INTx itself (cmd_write lets it play with that bit), then enables MSI:
    // control_write does no pci_intx for the hardware domain, and msi_capability_init none once
    // hardware_domain exists, so INTx stays off.
    machine.configWrite(d0, '02:00.0', 0x04, 2, 0x0400);
    expect(hw.read(0x04, 2) & 0x400).toBe(0x400);
    machine.configWrite(d0, '02:00.0', CTRL, 2, 1);
    expect(hw.read(0x04, 2) & 0x400).toBe(0x400);
    // A vector change while enabled: vpci_msi_arch_disable first (INTx on), then enable with
    // old_enabled true, so nothing forces it off again.
    machine.configWrite(d0, '02:00.0', CTRL, 2, (1 << 4) | 1);
    expect(hw.read(CTRL, 2)).toBe(0x0195);
    expect(hw.read(0x04, 2) & 0x400).toBe(0);
    // Dom0 turns it off again, then disables MSI: INTx on again.
    machine.configWrite(d0, '02:00.0', 0x04, 2, 0x0400);
    machine.configWrite(d0, '02:00.0', CTRL, 2, 0);
    expect(hw.read(CTRL, 2)).toBe(0x0184);
    expect(hw.read(0x04, 2) & 0x400).toBe(0);
  });

  it('address, upper address, data and mask are vPCI state: read back, never written to the device', () => {
    const machine = bootedMachine([device64]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    const hw = machine.device('02:00.0').hw;
    machine.configWrite(d0, '02:00.0', MSI_CAP + 4, 4, 0xfee0_100c); // address_write
    machine.configWrite(d0, '02:00.0', MSI_CAP + 8, 4, 0x1); // address_hi_write
    machine.configWrite(d0, '02:00.0', MSI_CAP + 12, 2, 0x4041); // data_write (msi_data_reg, 64-bit: +12)
    machine.configWrite(d0, '02:00.0', MSI_CAP + 16, 4, 0xffff_fffe); // mask_write (msi_mask_bits_reg: +16)
    expect(machine.configRead(d0, '02:00.0', MSI_CAP + 4, 4)).toBe(0xfee0_100c);
    expect(machine.configRead(d0, '02:00.0', MSI_CAP + 8, 4)).toBe(0x1);
    expect(machine.configRead(d0, '02:00.0', MSI_CAP + 12, 2)).toBe(0x4041);
    expect(machine.configRead(d0, '02:00.0', MSI_CAP + 16, 4)).toBe(0xffff_fffe);
    expect(machine.device('02:00.0').vpci!.msi!.address).toBe(0x1_fee0_100cn);
    for (const reg of [4, 8, 12, 16]) expect(hw.read(MSI_CAP + reg, 4)).toBe(0);
    // The low address bits are not masked by vPCI (address_write stores the value as written).
    machine.configWrite(d0, '02:00.0', MSI_CAP + 4, 4, 0xfee0_0003);
    expect(machine.configRead(d0, '02:00.0', MSI_CAP + 4, 4)).toBe(0xfee0_0003);
  });

  it('the Pending Bits register has no handler: the hardware domain reads the device (msi_pending_bits_reg +20)', () => {
    const machine = bootedMachine([device64]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    const registers = machine
      .device('02:00.0')
      .vpci!.registers.list()
      .map((r) => r.offset);
    expect(registers).not.toContain(MSI_CAP + 20);
    expect(registers).toEqual(
      expect.arrayContaining([CTRL, MSI_CAP + 4, MSI_CAP + 8, MSI_CAP + 12, MSI_CAP + 16]),
    );
    expect(machine.configRead(d0, '02:00.0', MSI_CAP + 20, 4)).toBe(0);
  });

  it('a 32-bit capability without masking: data at +8 (PCI_MSI_DATA_32), no upper address or mask handler', () => {
    const machine = bootedMachine([device32]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    expect(machine.configRead(d0, '03:00.0', CTRL, 2)).toBe(0x0000);
    machine.configWrite(d0, '03:00.0', MSI_CAP + 8, 2, 0x0031);
    expect(machine.configRead(d0, '03:00.0', MSI_CAP + 8, 2)).toBe(0x0031);
    expect(machine.device('03:00.0').hw.read(MSI_CAP + 8, 2)).toBe(0);
    const offsets = machine
      .device('03:00.0')
      .vpci!.registers.list()
      .map((r) => r.offset);
    expect(offsets.filter((o) => o >= CTRL)).toEqual([CTRL, MSI_CAP + 4, MSI_CAP + 8]);
    // One vector: MME 5 asks 32, min_t keeps 1; QSIZE stays fls(1)-1 = 0.
    machine.configWrite(d0, '03:00.0', CTRL, 2, (5 << 4) | 1);
    expect(machine.configRead(d0, '03:00.0', CTRL, 2)).toBe(0x0001);
  });
});

describe('MSI for a guest (msi.c, header.c cmd_write)', () => {
  it('enabling MSI forces INTx off on the device and in the guest view; cmd_write keeps it off while enabled', () => {
    const machine = bootedMachine([device64]);
    const guest = machine.createGuest();
    expect(machine.assignDevice('02:00.0', guest.id).ok).toBe(true);
    const v = guest.vcpus[0]!;
    const hw = machine.device('02:00.0').hw;
    expect(machine.configRead(v, '00:00.0', 0x34, 1)).toBe(MSI_CAP);
    machine.configWrite(v, '00:00.0', CTRL, 2, 1);
    expect(machine.configRead(v, '00:00.0', CTRL, 2)).toBe(0x0185);
    expect(hw.read(0x04, 2) & 0x400).toBe(0x400);
    expect(machine.configRead(v, '00:00.0', 0x04, 2) & 0x400).toBe(0x400);
    writeCommand(machine, v, '00:00.0', 0x2);
    expect(machine.configRead(v, '00:00.0', 0x04, 2) & 0x400).toBe(0x400);
    // Disabling MSI turns INTx on in the device (__pci_disable_msi: pci_intx(dev, true)); the
    // guest's view (guest_cmd) keeps the bit until the guest writes the command register.
    machine.configWrite(v, '00:00.0', CTRL, 2, 0);
    expect(hw.read(0x04, 2) & 0x400).toBe(0);
    expect(machine.configRead(v, '00:00.0', 0x04, 2) & 0x400).toBe(0x400);
    // With MSI off again the guest may clear it.
    writeCommand(machine, v, '00:00.0', 0x2);
    expect(machine.configRead(v, '00:00.0', 0x04, 2) & 0x400).toBe(0);
  });
});

/** A 256-byte config space with the given bytes, a memory BAR0 of 16 KiB, and the capability list bit. */
function image(bytes: Record<number, number>): Uint8Array {
  const config = new Uint8Array(256);
  config[0] = 0x34;
  config[1] = 0x12;
  config[0x06] = 0x10; // PCI_STATUS_CAP_LIST
  config[0x10] = 0x00;
  config[0x13] = 0xf3; // BAR0 at 0xf3000000, 32-bit memory
  for (const [offset, value] of Object.entries(bytes)) config[Number(offset)] = value;
  return config;
}

describe('a failed MSI init (vpci_init_capabilities, cleanup_msi of fa475aa88c)', () => {
  // MSI at 0x40, 64-bit with masking: control 0x42, address 0x44, upper 0x48, data 0x4c, mask 0x50–0x53.
  // MSI-X at 0x50: the hardware domain's next-pointer handler at 0x51 is inside MSI's mask register.
  const overlapping = image({
    52: 0x40,
    64: 0x05,
    65: 0x50,
    66: 0x80,
    67: 0x01, // control: 64-bit, mask bit, 1 vector
    80: 0x11,
    81: 0x00,
    82: 0x03, // MSI-X: 4 entries
    84: 0x00, // table in BAR0 at 0
    88: 0x00,
    89: 0x10, // PBA in BAR0 at 0x1000
  });

  it('the mask handler cannot be added (EEXIST): MSI is cleaned up, made read-only for dom0 and hidden', () => {
    const machine = new Machine();
    machine.addDevice(PhysicalDevice.fromImage('0000:04:00.0', overlapping, { bars: [0x4000n] }));
    machine.boot();
    const d0 = machine.hardwareDomain.vcpus[0]!;
    const pdev = machine.device('04:00.0');
    expect(machine.events).toContainEqual({
      kind: 'capability-masked',
      sbdf: '0000:04:00.0',
      cap: 5,
      code: 'EEXIST',
    });
    expect(pdev.vpci!.msi).toBeUndefined();
    // cleanup_msi removed every handler in [0x42, msi_pending_bits_reg = 0x54): MSI's, and MSI-X's
    // next pointer at 0x51 with them. The control register is read from the device, writes dropped.
    const offsets = pdev.vpci!.registers.list().map((r) => r.offset);
    expect(offsets).not.toContain(0x51);
    expect(offsets.filter((o) => o >= 0x42 && o < 0x54)).toEqual([0x42, 0x52]);
    machine.configWrite(d0, '04:00.0', 0x42, 2, 0x0001);
    expect(pdev.hw.read(0x42, 2) & 1).toBe(0);
    expect(machine.configRead(d0, '04:00.0', 0x42, 2)).toBe(0x0180);
    // vpci_capability_hide: the list pointer at 0x34 now skips to MSI-X, which set up normally.
    expect(machine.configRead(d0, '04:00.0', 0x34, 1)).toBe(0x50);
    expect(pdev.vpci!.msix).toBeDefined();
  });
});
