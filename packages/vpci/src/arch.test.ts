/**
 * The host architecture (arch.ts), each expectation from Xen's source:
 * - x86 gives guests no vPCI (xen/arch/x86/domain.c `emulation_flags_ok`: a domU's flags may not hold
 *   `X86_EMU_VPCI`, so `has_vpci(d)` is false and `vpci_assign_device` returns 0 at once), unless the
 *   anticipating switch `x86GuestVpci` is on (assumed for a caller that gives no `arch`);
 * - Arm (xen/drivers/vpci/header.c under `!CONFIG_X86`, xen/arch/arm/pci/pci-host-common.c
 *   `pci_check_bar`, xen/arch/arm/p2m.c `map_mmio_regions`, no `CONFIG_HAS_PCI_MSI`).
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mfnAt, mmioExtents, writeCommand } from '../../../test/support/machine.js';
import { describeGuestVpci, guestVpciFor } from './arch.js';
import type { Vcpu } from './domain.js';
import { type DeviceSpec, findCapability } from './hardware.js';
import { checkInvariants } from './invariants.js';
import { Machine, type MachineOptions } from './machine.js';
import { PCI_COMMAND, PCI_COMMAND_MEMORY } from './pci-regs.js';

const MEM = PCI_COMMAND_MEMORY;
/** Seed 004's device: BAR0 1 MiB at 0xfe000000 with MSI-X at +0x2000/+0x3000, BAR2 256 bytes at 0xfd000100. */
const SEED_004: DeviceSpec = {
  sbdf: '0000:03:00.0',
  bars: [
    { type: 'mem64', size: 0x100000n, addr: 0xfe000000n },
    null,
    { type: 'mem32', size: 0x100n, addr: 0xfd000100n },
  ],
  msix: { entries: 64, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
};
/** One host bridge, buses 0-255 of segment 0, with one 32 MiB window over both BARs. */
const ARM: MachineOptions = {
  arch: 'arm',
  hostBridges: [{ windows: [{ addr: 0xfd000000n, size: 0x2000000n }] }],
};

/** Boots `options` with `device`, assigns it to a new guest; returns the machine, guest and its vCPU. */
function assigned(options: MachineOptions, device: DeviceSpec = SEED_004) {
  const machine = bootedMachine([device], options);
  const guest = machine.createGuest();
  const rc = machine.assignDevice(device.sbdf as string, guest.id);
  return { machine, guest, vcpu: guest.vcpus[0]!, rc };
}

/** The guest places seed 004's BARs as the trace does: BAR0 (both halves) at 0xe0000000, BAR2 at 0xe0100100. */
function placeBars(machine: Machine, vcpu: Vcpu): void {
  machine.configWrite(vcpu, '00:00.0', 0x10, 4, 0xe0000000);
  machine.configWrite(vcpu, '00:00.0', 0x14, 4, 0);
  machine.configWrite(vcpu, '00:00.0', 0x18, 4, 0xe0100100);
}

describe('which guests get vPCI (guestVpciFor)', () => {
  it.each([
    [undefined, undefined, true, 'x86-assumed'],
    ['x86', undefined, false, 'x86-off'],
    ['x86', true, true, 'x86-switch'],
    ['x86', false, false, 'x86-off'],
    [undefined, false, false, 'x86-off'],
    ['arm', undefined, true, 'arm'],
  ] as const)('arch %s, x86GuestVpci %s: enabled %s (%s)', (arch, x86GuestVpci, enabled, reason) => {
    expect(guestVpciFor(arch, x86GuestVpci)).toEqual({ enabled, reason });
  });

  it('the report sentence says what is anticipated, and whether it was assumed', () => {
    expect(describeGuestVpci(guestVpciFor(undefined, undefined))).toMatch(
      /^x86GuestVpci assumed.*anticipating x86 domU vPCI support, not in Xen staging/,
    );
    expect(describeGuestVpci(guestVpciFor('x86', true))).toMatch(/^x86GuestVpci: .*not in Xen staging/);
    expect(describeGuestVpci(guestVpciFor('x86', undefined))).toMatch(/has_vpci\(\) is false/);
  });
});

describe('x86 as Xen is: a guest gets no vPCI (has_vpci false for a domU)', () => {
  it('assignment succeeds with no vPCI state; the guest finds nothing at 00:00.0; the event says why', () => {
    const { machine, guest, vcpu, rc } = assigned({ arch: 'x86' });
    expect(rc).toEqual({ ok: true });
    const device = machine.device('0000:03:00.0');
    expect(device.domain).toBe(guest);
    expect(device.vpci).toBeUndefined();
    expect(machine.events).toContainEqual({ kind: 'no-vpci', sbdf: '0000:03:00.0', domain: guest.id });
    expect(machine.configRead(vcpu, '00:00.0', 0x00, 4)).toBe(0xffffffff);
    machine.configWrite(vcpu, '00:00.0', PCI_COMMAND, 2, MEM);
    expect(vcpu.pending).toBeUndefined();
    expect(guest.p2m.mappedFrames).toBe(0);
    // The toolstack still permits the BARs' frames (XEN_DOMCTL_iomem_permission is not vPCI's).
    expect(guest.iomem.containsRange(0xfe000 as never, 0xfe0ff as never)).toBe(true);
    expect(machine.guestVpci).toEqual({ enabled: false, reason: 'x86-off' });
  });

  it('with x86GuestVpci the guest gets vPCI, as a machine without arch does (assumed)', () => {
    for (const options of [{ arch: 'x86', x86GuestVpci: true }, {}] as MachineOptions[]) {
      const { machine, vcpu } = assigned(options);
      expect(machine.device('0000:03:00.0').vpci?.guestSbdf).toBeDefined();
      expect(machine.configRead(vcpu, '00:00.0', 0x10, 4)).toBe(0xfe000004);
    }
  });

  it('a guest I/O BAR has no handler on x86: the guest reads all-ones', () => {
    const io: DeviceSpec = { sbdf: '0000:04:00.0', bars: [{ type: 'io', size: 0x20n, addr: 0xc000n }] };
    const { machine, vcpu } = assigned({ arch: 'x86', x86GuestVpci: true }, io);
    expect(machine.configRead(vcpu, '00:00.0', 0x10, 4)).toBe(0xffffffff);
  });
});

describe('arm: vpci_init_header under !CONFIG_X86', () => {
  it("a guest's I/O BAR reads as zero (vpci_read_val), writes ignored", () => {
    const io: DeviceSpec = { sbdf: '0000:04:00.0', bars: [{ type: 'io', size: 0x20n, addr: 0xc000n }] };
    const { machine, vcpu } = assigned(ARM, io);
    expect(machine.configRead(vcpu, '00:00.0', 0x10, 4)).toBe(0);
    machine.configWrite(vcpu, '00:00.0', 0x10, 4, 0xffffffff);
    expect(machine.configRead(vcpu, '00:00.0', 0x10, 4)).toBe(0);
  });

  it('the hardware domain still reaches an I/O BAR on the device', () => {
    const machine = bootedMachine(
      [{ sbdf: '0000:04:00.0', bars: [{ type: 'io', size: 0x20n, addr: 0xc000n }] }],
      ARM,
    );
    expect(machine.configRead(machine.vcpu(0), '0000:04:00.0', 0x10, 4)).toBe(0xc001);
  });
});

describe('arm: no MSI/MSI-X emulation (msi.o msix.o need CONFIG_HAS_PCI_MSI)', () => {
  it('no holes: the MSI-X table and PBA pages are mapped like the rest of BAR0', () => {
    const { machine, guest, vcpu } = assigned(ARM);
    const device = machine.device('0000:03:00.0');
    expect(device.vpci!.msix).toBeUndefined();
    placeBars(machine, vcpu);
    expect(writeCommand(machine, vcpu, '00:00.0', MEM)).toEqual({ status: 'done' });
    expect(mfnAt(guest, 0xe0002)).toBe(0xfe002); // the table page
    expect(mfnAt(guest, 0xe0003)).toBe(0xfe003); // the PBA page
    // map_mmio_regions per range: [e0000, e00ff] (nr 0x100: 4K blocks) and [e0100] for BAR2.
    expect(mmioExtents(guest)).toEqual([
      [0xe0000, 0xfe000, 0x100],
      [0xe0100, 0xfd000, 1],
    ]);
    expect([...guest.p2m.extents()].map((e) => e.order)).toEqual([0, 0]);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('the capability is still listed for the guest (cap.c), but its registers have no handler: all-ones', () => {
    const { machine, vcpu } = assigned(ARM);
    expect(machine.configRead(vcpu, '00:00.0', 0x34, 1)).toBe(0x40);
    expect(machine.configRead(vcpu, '00:00.0', 0x40, 1)).toBe(0x11); // PCI_CAP_ID_MSIX
    expect(machine.configRead(vcpu, '00:00.0', 0x42, 2)).toBe(0xffff); // vpci_read_hw refuses a guest
  });
});

describe('arm: no MSI emulation either (msi.o needs CONFIG_HAS_PCI_MSI)', () => {
  const withMsi: DeviceSpec = { ...SEED_004, msi: { vectors: 4 } };

  it('x86 sets MSI up for the hardware domain; Arm does not, and dom0 writes the control register through', () => {
    const x86 = bootedMachine([withMsi], { arch: 'x86' });
    expect(x86.device('0000:03:00.0').vpci!.msi).toBeDefined();
    const arm = bootedMachine([withMsi], ARM);
    const device = arm.device('0000:03:00.0');
    expect(device.vpci!.msi).toBeUndefined();
    expect(device.vpci!.msix).toBeUndefined();
    const cap = findCapability(device.hw, 0x05); // PCI_CAP_ID_MSI
    expect(cap).toBeGreaterThan(0);
    expect(arm.configRead(arm.vcpu(0), '0000:03:00.0', cap, 1)).toBe(0x05); // listed, read from the device
    // No handler: the hardware domain's write reaches the device, MSI enable included.
    arm.configWrite(arm.vcpu(0), '0000:03:00.0', cap + 2, 2, 0x0001);
    expect(device.hw.read(cap + 2, 2) & 1).toBe(1);
  });
});

describe('arm: pci_check_bar against the host bridge windows', () => {
  it('a BAR outside every window is not mapped (logged), and stays not enabled while the device decodes', () => {
    const options: MachineOptions = {
      arch: 'arm',
      hostBridges: [{ windows: [{ addr: 0xfe000000n, size: 0x100000n }] }],
    };
    const { machine, guest, vcpu } = assigned(options);
    placeBars(machine, vcpu);
    expect(writeCommand(machine, vcpu, '00:00.0', MEM)).toEqual({ status: 'done' });
    expect(machine.events).toContainEqual({
      kind: 'bar-invalid-position',
      sbdf: '0000:03:00.0',
      bar: 2,
      start: 0xfd000,
      end: 0xfd000,
    });
    const vpci = machine.device('0000:03:00.0').vpci!;
    // modify_decoding flips `enabled` only where pci_check_bar holds; the command is written anyway.
    expect(vpci.bars[0]!.enabled).toBe(true);
    expect(vpci.bars[2]!.enabled).toBe(false);
    expect(vpci.barsMapped).toBe(true);
    expect(mfnAt(guest, 0xe0100)).toBeUndefined();
    expect(mmioExtents(guest)).toEqual([[0xe0000, 0xfe000, 0x100]]);
  });

  it('the check is on whole pages: a window starting inside the BAR page refuses it', () => {
    // BAR2's page is [0xfd000000, 0xfd000fff]; a window from 0xfd000100 does not hold its start.
    const options: MachineOptions = {
      arch: 'arm',
      hostBridges: [
        {
          windows: [
            { addr: 0xfd000100n, size: 0x1000000n },
            { addr: 0xfe000000n, size: 0x100000n },
          ],
        },
      ],
    };
    const machine = bootedMachine([{ ...SEED_004, command: MEM }], options);
    const vpci = machine.device('0000:03:00.0').vpci!;
    expect(vpci.bars[0]!.enabled).toBe(true);
    expect(vpci.bars[2]!.enabled).toBe(false);
  });

  it('a BAR across two windows is refused: one window must hold it all (is_bar_valid)', () => {
    const options: MachineOptions = {
      arch: 'arm',
      hostBridges: [
        {
          windows: [
            { addr: 0xfe000000n, size: 0x80000n },
            { addr: 0xfe080000n, size: 0x80000n },
          ],
        },
      ],
    };
    const machine = bootedMachine([{ ...SEED_004, bars: [SEED_004.bars![0]!], command: MEM }], options);
    expect(machine.device('0000:03:00.0').vpci!.bars[0]!.enabled).toBe(false);
    expect(machine.hardwareDomain.p2m.mappedFrames).toBe(0);
  });

  it('a device on a bus no host bridge covers: pci_find_host_bridge_node finds none, false', () => {
    const options: MachineOptions = {
      arch: 'arm',
      hostBridges: [{ busStart: 0, busEnd: 1, windows: [{ addr: 0xfd000000n, size: 0x2000000n }] }],
    };
    const machine = bootedMachine([{ ...SEED_004, command: MEM }], options);
    expect(machine.hardwareDomain.p2m.mappedFrames).toBe(0);
    expect(machine.events.filter((e) => e.kind === 'bar-invalid-position').length).toBe(2);
  });
});

describe('arm: the p2m and the hardware domain', () => {
  it('the hardware domain maps its BAR at boot in 2M blocks where all is 2M-aligned, and is permitted the windows only', () => {
    const options: MachineOptions = {
      arch: 'arm',
      hostBridges: [{ windows: [{ addr: 0x40000000n, size: 0x40000000n }] }],
    };
    const machine = bootedMachine(
      [{ sbdf: '0000:01:00.0', bars: [{ type: 'mem64', size: 0x400000n, addr: 0x40000000n }], command: MEM }],
      options,
    );
    // mask 0x40000 | 0x40000 | 0x400: 2M (the count keeps it from 1G).
    expect([...machine.hardwareDomain.p2m.extents()].map((e) => [e.gfn, e.count, e.order])).toEqual([
      [0x40000, 0x400, 9],
    ]);
    expect([...machine.hardwareDomain.iomem]).toEqual([[0x40000, 0x7ffff]]);
  });

  it('a deferred map is never preempted: map_mmio_regions does all or fails, so one budget-1 run is done', () => {
    const { machine, guest, vcpu } = assigned(ARM);
    placeBars(machine, vcpu);
    machine.configWrite(vcpu, '00:00.0', PCI_COMMAND, 2, MEM);
    expect(machine.processPending(vcpu, 1)).toEqual({ status: 'done' });
    expect(guest.p2m.mappedFrames).toBe(0x101);
  });

  it('a guest BAR past the stage-2 root fails with EINVAL and the guest is crashed', () => {
    // 40-bit PA: GFNs below 2^28 (root order 1 at level 1); BAR0 at 2^40 has none.
    const { machine, guest, vcpu } = assigned({ ...ARM, physAddrBits: 40 });
    machine.configWrite(vcpu, '00:00.0', 0x10, 4, 0);
    machine.configWrite(vcpu, '00:00.0', 0x14, 4, 0x100);
    machine.configWrite(vcpu, '00:00.0', 0x18, 4, 0xe0100100);
    expect(writeCommand(machine, vcpu, '00:00.0', MEM)).toEqual({ status: 'failed', code: 'EINVAL' });
    expect(guest.crashed).toBe(true);
  });

  it('refuses what Arm does not have: an e820 map, memory types, x86GuestVpci, a PA size pa_range_info lacks', () => {
    expect(() => new Machine({ ...ARM, e820: [{ addr: 0n, size: 0x1000n, type: 'ram' }] })).toThrow(
      /no e820 on Arm/,
    );
    expect(() => new Machine({ ...ARM, x86GuestVpci: true })).toThrow(/x86 only/);
    expect(() => new Machine({ ...ARM, superpages2M: false })).toThrow(/^superpages2M: .*x86 only/);
    expect(() => new Machine({ ...ARM, vendor: 'amd' })).toThrow(
      /^vendor: expected no value with arch 'arm' \(x86 only\)/,
    );
    expect(() => new Machine({ ...ARM, physAddrBits: 39 })).toThrow(/on Arm one of/);
    expect(() => new Machine({ arch: 'x86', hostBridges: [] })).toThrow(/arm' only/);
    expect(() => new Machine(ARM).memoryType(0, 0, 'WB')).toThrow(/an x86 machine/);
  });
});
