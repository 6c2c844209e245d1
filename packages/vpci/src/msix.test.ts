/**
 * MSI-X set-up failures as Xen's xen/drivers/vpci handles them: `init_msix` returns ENODEV for a
 * table or PBA whose BIR is out of range, names a BAR that is not 32/64-bit memory, or lies beyond
 * the BAR; `vpci_init_capabilities` then calls `cleanup_msix(pdev, true)`, which (whether or not any
 * MSI-X state was allocated) removes the control register's handler and, for the hardware domain,
 * adds a read-only `vpci_hw_read16` handler in its place, so dom0 cannot enable MSI-X behind Xen;
 * `vpci_capability_hide` then unlinks the capability.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine } from '../../../test/support/machine.js';
import { type DeviceSpec, type MsixSpec, PhysicalDevice } from './hardware.js';
import { Machine } from './machine.js';

const CTRL = 0x42; // MSI-X at 0x40 (hardware.ts), Message Control at +2

const bars: DeviceSpec['bars'] = [
  { type: 'mem32', size: 0x4000n, addr: 0xf100_0000n },
  { type: 'io', size: 0x20n, addr: 0xc000n },
];
const invalid: [string, MsixSpec][] = [
  [
    'the table BIR names an I/O BAR',
    { entries: 4, table: { bar: 1, offset: 0 }, pba: { bar: 0, offset: 0x1000 } },
  ],
  [
    'the table BIR names an unimplemented BAR',
    { entries: 4, table: { bar: 2, offset: 0 }, pba: { bar: 0, offset: 0x1000 } },
  ],
  [
    'the PBA BIR names the ROM slot (6)',
    { entries: 4, table: { bar: 0, offset: 0 }, pba: { bar: 6, offset: 0 } },
  ],
  [
    'the table BIR is out of range (7)',
    { entries: 4, table: { bar: 7, offset: 0 }, pba: { bar: 0, offset: 0x1000 } },
  ],
  [
    'the table lies beyond its BAR',
    { entries: 4, table: { bar: 0, offset: 0x3ff8 }, pba: { bar: 0, offset: 0x1000 } },
  ],
];

describe('cleanup_msix after a failed init_msix (hardware domain)', () => {
  for (const [why, msix] of invalid) {
    it(`${why}: ENODEV, the control register is read-only from the device and MSI-X is hidden`, () => {
      const machine = bootedMachine([{ sbdf: '0000:02:00.0', bars, msix }]);
      const d0 = machine.hardwareDomain.vcpus[0]!;
      const pdev = machine.device('02:00.0');
      expect(pdev.vpci!.msix).toBeUndefined();
      expect(machine.events).toContainEqual({
        kind: 'capability-masked',
        sbdf: '0000:02:00.0',
        cap: 0x11,
        code: 'ENODEV',
      });
      // Xen: vpci_add_register(vpci, vpci_hw_read16, NULL, msix_control_reg(pos), 2, NULL).
      const handler = pdev.vpci!.registers.list().find((r) => r.offset === CTRL);
      expect(handler?.size).toBe(2);
      machine.configWrite(d0, '02:00.0', CTRL, 2, 0xc000); // enable + mask all
      expect(pdev.hw.read(CTRL, 2)).toBe(3);
      expect(machine.configRead(d0, '02:00.0', CTRL, 2)).toBe(3);
      // A dword write over the control register and the capability header is dropped there too.
      machine.configWrite(d0, '02:00.0', 0x40, 4, 0x8000_0011);
      expect(pdev.hw.read(CTRL, 2)).toBe(3);
      expect(machine.configRead(d0, '02:00.0', 0x34, 1)).toBe(0);
    });
  }

  it('a valid MSI-X keeps its emulated control register, and the device gets the enable', () => {
    const machine = bootedMachine([
      {
        sbdf: '0000:02:00.0',
        bars,
        msix: { entries: 4, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x1000 } },
      },
    ]);
    const d0 = machine.hardwareDomain.vcpus[0]!;
    machine.configWrite(d0, '02:00.0', CTRL, 2, 0x8000);
    expect(machine.device('02:00.0').hw.read(CTRL, 2)).toBe(0x8003);
  });
});

describe('cleanup_msix after a failed init_msix (guest)', () => {
  it('ENODEV: the handler is removed and none added (deny by default): the guest reads all-ones there', () => {
    const machine = bootedMachine([{ sbdf: '0000:02:00.0', bars, msix: invalid[0]![1] }]);
    const guest = machine.createGuest();
    expect(machine.assignDevice('02:00.0', guest.id).ok).toBe(true);
    const v = guest.vcpus[0]!;
    const pdev = machine.device('02:00.0');
    expect(pdev.vpci!.registers.list().some((r) => r.offset === CTRL)).toBe(false);
    expect(machine.configRead(v, '00:00.0', CTRL, 2)).toBe(0xffff);
    machine.configWrite(v, '00:00.0', CTRL, 2, 0x8000);
    expect(pdev.hw.read(CTRL, 2)).toBe(3);
    // Hidden: the list pointer takes the capability's next (none). The status bit was decided when
    // the list was built, before the hide, so it still says there is a list.
    expect(machine.configRead(v, '00:00.0', 0x34, 1)).toBe(0);
    expect(machine.configRead(v, '00:00.0', 0x06, 2) & 0x10).toBe(0x10);
  });
});

describe('cleanup_msix after a failed hole punch at set-up (msixHoleFailsMap)', () => {
  it('MSI-X dropped: the control register is read-only for dom0 as after any failed init_msix', () => {
    // Decoding on at boot: writes 1–4 map the BAR, 5 and 6 punch the table and PBA holes; 6 fails.
    const machine = bootedMachine(
      [
        {
          sbdf: '0000:03:00.0',
          command: 0x2,
          bars: [{ type: 'mem32', size: 0x4000n, addr: 0xfe00_0000n }],
          msix: { entries: 4, table: { bar: 0, offset: 0x1000 }, pba: { bar: 0, offset: 0x2000 } },
        },
      ],
      { policy: { msixHoleFailsMap: true }, hardwareP2m: { failAt: (write) => write === 6 } },
    );
    const pdev = machine.device('03:00.0');
    expect(pdev.vpci!.msix).toBeUndefined();
    expect(machine.events).toContainEqual({
      kind: 'capability-masked',
      sbdf: '0000:03:00.0',
      cap: 0x11,
      code: 'ENOMEM',
    });
    machine.configWrite(machine.hardwareDomain.vcpus[0]!, '03:00.0', CTRL, 2, 0x8000);
    expect(pdev.hw.read(CTRL, 2)).toBe(3);
  });
});

describe('pdev_msi_init when a device is added', () => {
  it("MSI-X found enabled and masked: both bits are cleared on the device, with Xen's warning", () => {
    const image = new Uint8Array(256);
    image.set([0x34, 0x12, 0x01, 0x00], 0);
    image[0x06] = 0x10; // capability list
    image[0x13] = 0xf3; // BAR0 at 0xf3000000
    image[0x34] = 0x40;
    image.set([0x11, 0x00, 0x03, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00], 0x40);
    const machine = new Machine();
    machine.addDevice(PhysicalDevice.fromImage('0000:05:00.0', image, { bars: [0x4000n] }));
    expect(machine.device('05:00.0').hw.read(CTRL, 2)).toBe(0x0003);
    expect(machine.events).toEqual([
      { kind: 'msix-initial-state', sbdf: '0000:05:00.0', maskall: true, enable: true },
    ]);
  });
});
