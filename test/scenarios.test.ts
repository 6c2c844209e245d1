/**
 * The worked examples V1–V7 of docs/xen-gaps.md and the seed scenarios 002 and 004, each
 * with its expected outcome.
 */

import { SEED_002_LAYOUT_1 } from '@vpci/firmware';
import { gfn, mapMmio, mfn, populateRam } from '@vpci/p2m';
import {
  checkInvariants,
  type DeviceSpec,
  Machine,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
} from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { bootedMachine, mfnAt, mmioExtents, writeCommand } from './support/machine.js';

const MEM = PCI_COMMAND_MEMORY;
const MIB = 1n << 20n;

/** V1's device: BAR0 64-bit 1 MiB with MSI-X table at +0x2000 and PBA at +0x3000, BAR2 16 KiB. */
const V1_DEVICE: DeviceSpec = {
  sbdf: '0000:03:00.0',
  bars: [
    { type: 'mem64', size: MIB, addr: 0xfe00_0000n },
    null,
    { type: 'mem32', size: 0x4000n, addr: 0xfd00_0000n },
  ],
  msix: { entries: 64, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
};

describe('V1: the hardware domain enables decoding; MSI-X pages carved out', () => {
  it('maps BAR0 minus frames fe002 and fe003, and BAR2, identity', () => {
    const machine = bootedMachine([V1_DEVICE]);
    const dom0 = machine.hardwareDomain;
    const v = dom0.vcpus[0]!;
    machine.configWrite(v, '03:00.0', 0x04, 2, 0x0006);
    expect(v.pending).toBeDefined();
    expect(mfnAt(dom0, 0xfe000)).toBeUndefined(); // nothing before the vCPU runs the work
    expect(machine.finishPending(v)).toEqual({ status: 'done' });
    expect(mmioExtents(dom0)).toEqual([
      [0xfd000, 0xfd000, 4],
      [0xfe000, 0xfe000, 2],
      [0xfe004, 0xfe004, 252],
    ]);
    const device = machine.device('03:00.0');
    expect(device.vpci!.barsMapped).toBe(true);
    expect(device.hw.read(0x04, 2)).toBe(0x0006);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('unmaps everything when decoding is turned off again', () => {
    const machine = bootedMachine([V1_DEVICE]);
    const v = machine.hardwareDomain.vcpus[0]!;
    writeCommand(machine, v, '03:00.0', 0x0006);
    writeCommand(machine, v, '03:00.0', 0x0004);
    expect(mmioExtents(machine.hardwareDomain)).toEqual([]);
    expect(machine.device('03:00.0').vpci!.bars.every((bar) => !bar.enabled)).toBe(true);
    expect(checkInvariants(machine)).toEqual([]);
  });
});

describe('V2: a guest maps the device at its own address (non-identity)', () => {
  it('maps guest frames e0000… to machine frames fe000…, MSI-X pages left out', () => {
    const machine = bootedMachine([V1_DEVICE]);
    const guest = machine.createGuest();
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: true });
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    machine.configWrite(v, '00:00.0', 0x14, 4, 0);
    expect(machine.configRead(v, '00:00.0', 0x10, 4)).toBe(0xe000_0004);
    writeCommand(machine, v, '00:00.0', MEM);
    expect(mfnAt(guest, 0xe0000)).toBe(0xfe000);
    expect(mfnAt(guest, 0xe0001)).toBe(0xfe001);
    expect(mfnAt(guest, 0xe0002)).toBeUndefined();
    expect(mfnAt(guest, 0xe0003)).toBeUndefined();
    expect(mfnAt(guest, 0xe0004)).toBe(0xfe004);
    expect(mfnAt(guest, 0xe00ff)).toBe(0xfe0ff);
    expect(checkInvariants(machine).filter((x) => 'domain' in x && x.domain === guest.id)).toEqual([]);
  });
});

describe('V3: page-offset mismatch', () => {
  const device: DeviceSpec = {
    sbdf: '0000:01:00.0',
    bars: [{ type: 'mem32', size: 0x100n, addr: 0xd192_4600n }],
  };

  it('refuses EINVAL, maps nothing, and the guest still reads MEMORY back (G2)', () => {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('01:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    machine.configWrite(v, '00:00.0', 0x04, 2, MEM);
    expect(v.pending).toBeUndefined();
    expect(machine.events.at(-1)).toMatchObject({
      kind: 'offset-mismatch',
      bar: 0,
      addr: 0xd192_4600n,
      guestAddr: 0xe000_0000n,
    });
    expect(mmioExtents(guest)).toEqual([]);
    expect(machine.configRead(v, '00:00.0', 0x04, 2) & MEM).toBe(MEM);
    expect(machine.device('01:00.0').hw.read(0x04, 2) & MEM).toBe(0);
  });

  it('maps once the guest keeps the host page offset', () => {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('01:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0600);
    writeCommand(machine, v, '00:00.0', MEM);
    expect(mfnAt(guest, 0xe0000)).toBe(0xd1924);
  });
});

/** Seed 002, first layout: BAR0/1/2 share page d1924 with the MSI-X table at BAR0 + 0x80. */
const SEED_002_DEVICE: DeviceSpec = { ...SEED_002_LAYOUT_1.devices[0]!, sbdf: '0000:01:00.0' };

describe('V4 / seed 002 layout 1: sub-page BARs and the MSI-X table in one page', () => {
  it('never maps page d1924; maps BAR3, BAR4 and BAR5', () => {
    const machine = bootedMachine([SEED_002_DEVICE]);
    const v = machine.hardwareDomain.vcpus[0]!;
    writeCommand(machine, v, '01:00.0', MEM);
    // d1800–d18ff (BAR5), d1900–d191f (BAR4) and d1920–d1923 (BAR3) are one identity run.
    expect(mmioExtents(machine.hardwareDomain)).toEqual([[0xd1800, 0xd1800, 0x124]]);
    expect(mfnAt(machine.hardwareDomain, 0xd1924)).toBeUndefined();
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('maps decoding at boot at once when the firmware left it on', () => {
    const machine = bootedMachine([{ ...SEED_002_DEVICE, command: MEM }]);
    expect(machine.hardwareDomain.vcpus.every((v) => v.pending === undefined)).toBe(true);
    expect(mmioExtents(machine.hardwareDomain)).toEqual([[0xd1800, 0xd1800, 0x124]]);
    expect(machine.device('01:00.0').vpci!.barsMapped).toBe(true);
  });
});

/** Seed 002, second layout: four pci-testdev functions whose 32-byte BAR2s share page 0x7050000. */
function testdevs(command: number): DeviceSpec[] {
  return [0, 1, 2, 3].map((i) => ({
    sbdf: `0000:01:0${i}.0`,
    command,
    bars: [
      { type: 'mem32', size: 0x1000n, addr: 0xfe80_0000n + BigInt(i) * 0x1000n },
      { type: 'io', size: 0x100n, addr: 0xc000n + BigInt(i) * 0x100n },
      i < 3
        ? { type: 'mem64', size: 0x20n, addr: 0x70_5000_0000n + BigInt(i) * 0x20n, prefetchable: true }
        : { type: 'mem64', size: 0x1000_0000n, addr: 0x70_4000_0000n, prefetchable: true },
    ],
  }));
}

describe('seed 002 layout 2: pci-testdev BARs of different guests in one page (XSA-461)', () => {
  it('xen: the guest maps the page holding the other devices registers, a violation', () => {
    const machine = bootedMachine(testdevs(0));
    const a = machine.createGuest();
    const b = machine.createGuest();
    expect(machine.assignDevice('01:00.0', a.id)).toEqual({ ok: true });
    expect(machine.assignDevice('01:01.0', b.id)).toEqual({ ok: true });
    const v = a.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x18, 4, 0xe000_000c);
    machine.configWrite(v, '00:00.0', 0x1c, 4, 0);
    writeCommand(machine, v, '00:00.0', MEM);
    expect(mfnAt(a, 0xe0000)).toBe(0x7050000);
    const shared = checkInvariants(machine).filter((x) => x.kind === 'subpage-shared');
    expect(shared.map((x) => x.kind === 'subpage-shared' && x.other)).toEqual([
      '0000:01:01.0',
      '0000:01:02.0',
    ]);
  });

  it('hardened: the shared page is not mapped, with an event naming both devices', () => {
    const machine = bootedMachine(testdevs(0), { profile: 'hardened' });
    const a = machine.createGuest();
    const b = machine.createGuest();
    machine.assignDevice('01:00.0', a.id);
    machine.assignDevice('01:01.0', b.id);
    const v = a.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xd000_0000);
    machine.configWrite(v, '00:00.0', 0x18, 4, 0xe000_000c);
    machine.configWrite(v, '00:00.0', 0x1c, 4, 0);
    writeCommand(machine, v, '00:00.0', MEM);
    expect(mfnAt(a, 0xd0000)).toBe(0xfe800); // BAR0 has its own page
    expect(mfnAt(a, 0xe0000)).toBeUndefined();
    expect(machine.events.filter((e) => e.kind === 'subpage-shared')).toEqual([
      // The first device found sharing the page is named; the page is gone from the set after it.
      {
        kind: 'subpage-shared',
        sbdf: '0000:01:00.0',
        bar: 2,
        mfn: 0x7050000,
        other: '0000:01:01.0',
        otherDomain: b.id,
      },
    ]);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('hardened: assigning a device whose page another domain maps is refused', () => {
    const machine = bootedMachine(testdevs(MEM), { profile: 'hardened' });
    const a = machine.createGuest();
    expect(machine.assignDevice('01:00.0', a.id)).toEqual({ ok: false, code: 'EBUSY' });
    expect(machine.events.at(-1)).toMatchObject({
      kind: 'assign-refused',
      sbdf: '0000:01:00.0',
      mfn: 0x7050000,
    });
  });
});

describe('seed 004: non-identity mapping, preempted anywhere', () => {
  const device: DeviceSpec = {
    sbdf: '0000:02:00.0',
    bars: [{ type: 'mem32', size: MIB, addr: 0xf010_0000n }],
  };

  function run(budget: number): { extents: [number, number, number][]; restarts: number } {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('02:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xc030_0000);
    machine.configWrite(v, '00:00.0', 0x04, 2, MEM);
    let restarts = 0;
    while (machine.processPending(v, budget).status === 'restart') restarts++;
    expect(checkInvariants(machine)).toEqual([]);
    return { extents: mmioExtents(guest), restarts };
  }

  it('maps the 1 MiB BAR in 64-frame calls, resumable after each', () => {
    const whole = run(Number.POSITIVE_INFINITY);
    expect(whole.extents).toEqual([[0xc0300, 0xf0100, 256]]);
    expect(whole.restarts).toBe(0);
    for (const budget of [1, 63, 64, 65, 128, 255]) {
      const preempted = run(budget);
      expect(preempted.extents).toEqual(whole.extents);
      expect(preempted.restarts).toBe(Math.ceil(256 / Math.max(64, Math.ceil(budget / 64) * 64)) - 1);
    }
  });

  it('a guest cannot run while its vCPU has work pending', () => {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('02:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x04, 2, MEM);
    expect(() => machine.configRead(v, '00:00.0', 0x04, 2)).toThrow(/pending/);
  });
});

describe('V5: ROM toggle while decoding is on (hardware domain)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:04:00.0',
    bars: [{ type: 'mem32', size: MIB, addr: 0xfe00_0000n }],
    rom: { size: 0x10000n, addr: 0xfe10_0000n },
  };

  it('maps the ROM alone and writes the enable bit when the work completes', () => {
    const machine = bootedMachine([device]);
    const v = machine.hardwareDomain.vcpus[0]!;
    writeCommand(machine, v, '04:00.0', MEM);
    machine.configWrite(v, '04:00.0', 0x30, 4, 0xfe10_0001);
    expect(machine.device('04:00.0').hw.read(0x30, 4)).toBe(0xfe10_0000);
    machine.finishPending(v);
    expect(machine.device('04:00.0').hw.read(0x30, 4)).toBe(0xfe10_0001);
    expect(mfnAt(machine.hardwareDomain, 0xfe100)).toBe(0xfe100);
    expect(mfnAt(machine.hardwareDomain, 0xfe10f)).toBe(0xfe10f);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('G7: a ROM overlapping BAR0 unmaps BAR0 frames on disable under xen, not under romOverlapRule', () => {
    for (const romOverlapRule of [false, true]) {
      const machine = bootedMachine([{ ...device, rom: { size: 0x10000n, addr: 0xfe0f_0000n } }], {
        policy: { romOverlapRule },
      });
      const v = machine.hardwareDomain.vcpus[0]!;
      writeCommand(machine, v, '04:00.0', MEM);
      machine.configWrite(v, '04:00.0', 0x30, 4, 0xfe0f_0001);
      machine.finishPending(v);
      machine.configWrite(v, '04:00.0', 0x30, 4, 0xfe0f_0000);
      machine.finishPending(v);
      expect(mfnAt(machine.hardwareDomain, 0xfe0f0)).toBe(romOverlapRule ? 0xfe0f0 : undefined);
      expect(checkInvariants(machine).length > 0).toBe(!romOverlapRule);
    }
  });
});

describe('V6: a permission failure crashes a guest', () => {
  it('turns decoding off, purges the sets and crashes the domain', () => {
    const machine = bootedMachine([V1_DEVICE]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    machine.denyIomem(guest.id, mfn(0xfe0ff), mfn(0xfe0ff));
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    machine.configWrite(v, '00:00.0', 0x14, 4, 0);
    const result = writeCommand(machine, v, '00:00.0', MEM);
    expect(result).toEqual({ status: 'failed', code: 'EPERM' });
    expect(guest.crashed).toBe(true);
    const vpci = machine.device('03:00.0').vpci!;
    expect(vpci.bars.every((bar) => !bar.enabled && (bar.mem === undefined || bar.mem.isEmpty()))).toBe(true);
    expect(
      machine.events.some((e) => e.kind === 'iomem-denied' && e.start === 0xfe004 && e.end === 0xfe0ff),
    ).toBe(true);
  });
});

describe('V7: a guest command write with reserved bits', () => {
  it('keeps the host value of the RsvdP bits and reads them as zero', () => {
    const machine = bootedMachine([{ ...V1_DEVICE, command: 0x0147 }]);
    const guest = machine.createGuest();
    // dom0 turns decoding off before handing the device over.
    writeCommand(machine, machine.hardwareDomain.vcpus[0]!, '03:00.0', 0x0145);
    machine.assignDevice('03:00.0', guest.id);
    const v = guest.vcpus[0]!;
    const vpci = machine.device('03:00.0').vpci!;
    expect(vpci.guestCmd).toBe(0x0140);
    expect(machine.configRead(v, '00:00.0', 0x04, 2)).toBe(0x0000);
    writeCommand(machine, v, '00:00.0', 0xffff);
    expect(vpci.guestCmd).toBe(0x057e);
    expect(machine.configRead(v, '00:00.0', 0x04, 2)).toBe(0x043e);
    expect(machine.device('03:00.0').hw.read(0x04, 2)).toBe(0x057e);
  });
});

describe('a machine built empty', () => {
  it('boots once', () => {
    const machine = new Machine();
    machine.boot();
    expect(() => machine.boot()).toThrow(/boot/);
    expect(PCI_COMMAND_IO | PCI_COMMAND_MASTER).toBe(5);
  });
});

describe('invariant 5: turning one device off keeps a page another enabled BAR needs', () => {
  it('keeps the page two devices share when one of them stops decoding', () => {
    for (const profile of ['xen', 'hardened'] as const) {
      const machine = bootedMachine(
        [
          { sbdf: '0000:01:00.0', bars: [{ type: 'mem32', size: 0x20n, addr: 0xc000_0000n }] },
          { sbdf: '0000:01:01.0', bars: [{ type: 'mem32', size: 0x20n, addr: 0xc000_0020n }] },
        ],
        { profile },
      );
      const v = machine.hardwareDomain.vcpus[0]!;
      writeCommand(machine, v, '01:00.0', MEM);
      writeCommand(machine, v, '01:01.0', MEM);
      writeCommand(machine, v, '01:00.0', 0);
      expect(mfnAt(machine.hardwareDomain, 0xc0000)).toBe(0xc0000);
      expect(checkInvariants(machine)).toEqual([]);
    }
  });
});

describe("F2: defer_map's FIXME, two vCPUs on one device", () => {
  const device: DeviceSpec = {
    sbdf: '0000:02:00.0',
    bars: [{ type: 'mem32', size: MIB, addr: 0xf010_0000n }],
  };

  it('xen: a disable written while the enable is pending is overtaken by it', () => {
    const machine = bootedMachine([device]);
    const [v0, v1] = machine.hardwareDomain.vcpus as [never, never];
    machine.configWrite(v0, '02:00.0', 0x04, 2, MEM);
    // bars_mapped is still false, so the disable looks like "no change" and goes straight to hardware.
    machine.configWrite(v1, '02:00.0', 0x04, 2, 0);
    expect(machine.device('02:00.0').hw.read(0x04, 2) & MEM).toBe(0);
    machine.finishPending(v0);
    // The guest's last word was "off"; the device ends up decoding, mapped.
    expect(machine.device('02:00.0').hw.read(0x04, 2) & MEM).toBe(MEM);
    expect(mfnAt(machine.hardwareDomain, 0xf0100)).toBe(0xf0100);
  });

  it('xen: a second enable from another vCPU fills the same sets again; both complete', () => {
    const machine = bootedMachine([device]);
    const [v0, v1] = machine.hardwareDomain.vcpus as [never, never];
    machine.configWrite(v0, '02:00.0', 0x04, 2, MEM);
    machine.configWrite(v1, '02:00.0', 0x04, 2, MEM);
    expect(machine.finishPending(v1)).toEqual({ status: 'done' });
    expect(machine.finishPending(v0)).toEqual({ status: 'done' });
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('hardened: the second operation is refused while the first is pending', () => {
    const machine = bootedMachine([device], { profile: 'hardened' });
    const [v0, v1] = machine.hardwareDomain.vcpus as [never, never];
    machine.configWrite(v0, '02:00.0', 0x04, 2, MEM);
    machine.configWrite(v1, '02:00.0', 0x04, 2, MEM);
    expect((v1 as { pending: unknown }).pending).toBeUndefined();
    expect(machine.events.at(-1)).toMatchObject({ kind: 'busy', sbdf: '0000:02:00.0', vcpu: 'd0v0' });
  });
});

describe('G4: an existing mapping clobbers the MSI-X area when decoding is enabled', () => {
  it("xen: the BARs stay mapped and flagged enabled, but the device never decodes and the guest can't unmap them", () => {
    const machine = bootedMachine([V1_DEVICE]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    machine.configWrite(v, '00:00.0', 0x14, 4, 0);
    machine.configWrite(v, '00:00.0', 0x18, 4, 0xd000_0000);
    // A RAM page sits at the guest frame of the MSI-X table (BAR0 + 0x2000).
    expect(populateRam(guest.p2m, gfn(0xe0002), 1, mfn(0x12345)).ok).toBe(true);
    expect(writeCommand(machine, v, '00:00.0', MEM)).toEqual({ status: 'done' });
    expect(machine.events.filter((e) => e.kind === 'msix-clobber')).toEqual([
      { kind: 'msix-clobber', sbdf: '0000:03:00.0', gfn: 0xe0002, mfn: 0x12345, type: 'ram_rw' },
    ]);
    const pdev = machine.device('03:00.0');
    const vpci = pdev.vpci!;
    expect([vpci.bars[0]!.enabled, vpci.bars[2]!.enabled]).toEqual([true, true]);
    expect(vpci.barsMapped).toBe(false);
    expect(pdev.hw.read(0x04, 2) & MEM).toBe(0); // the command register was not written
    expect(machine.configRead(v, '00:00.0', 0x04, 2) & MEM).toBe(MEM); // the guest's view says on
    expect(mmioExtents(guest)).toEqual([
      [0xd0000, 0xfd000, 4],
      [0xe0000, 0xfe000, 2],
      [0xe0004, 0xfe004, 252],
    ]);
    // No invariant sees it: every enabled BAR is mapped, and MSI-X pages only count while decoding.
    expect(checkInvariants(machine)).toEqual([]);

    // Turning decoding off agrees with barsMapped, so it goes straight to the device: nothing is unmapped.
    writeCommand(machine, v, '00:00.0', 0);
    expect(mmioExtents(guest)).toHaveLength(3);
    expect(vpci.bars[0]!.enabled).toBe(true);
    // Turning it on again maps nothing (the BARs are "enabled") and fails the same way.
    writeCommand(machine, v, '00:00.0', MEM);
    expect(machine.events.filter((e) => e.kind === 'msix-clobber')).toHaveLength(2);
    expect(pdev.hw.read(0x04, 2) & MEM).toBe(0);
  });

  it('xen: for the hardware domain a non-identity entry at the table page does the same', () => {
    const machine = bootedMachine([V1_DEVICE]);
    const dom0 = machine.hardwareDomain;
    expect(mapMmio(dom0.p2m, gfn(0xfe002), 1, mfn(0x1000)).ok).toBe(true);
    writeCommand(machine, dom0.vcpus[0]!, '03:00.0', MEM);
    expect(machine.events.at(-1)).toEqual({
      kind: 'msix-clobber',
      sbdf: '0000:03:00.0',
      gfn: 0xfe002,
      mfn: 0x1000,
      type: 'mmio_direct',
    });
    const vpci = machine.device('03:00.0').vpci!;
    expect(vpci.bars[0]!.enabled).toBe(true);
    expect(vpci.barsMapped).toBe(false);
    expect(machine.device('03:00.0').hw.read(0x04, 2) & MEM).toBe(0);
    // The foreign entry lies inside BAR0 with another shift: the checker reports it as a wrong mfn.
    expect(checkInvariants(machine)).toEqual([
      { kind: 'wrong-mfn', domain: 0, sbdf: '0000:03:00.0', bar: 0, gfn: 0xfe002, mfn: 0x1000, count: 1 },
    ]);
  });
});
