/**
 * Each safer behaviour, tested both ways: under Xen's behaviour (the switch off) the hole shows, as
 * a violation or a leftover; with the switch on it does not.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceSpec } from './hardware.js';
import { checkInvariants } from './invariants.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import { POLICY_SWITCHES, policyFor } from './policy.js';
import { bootedMachine, mfnAt, mmioExtents, writeCommand } from './test-support.js';

const MEM = PCI_COMMAND_MEMORY;
const MIB = 1n << 20n;
const kinds = (machine: Parameters<typeof checkInvariants>[0]): string[] =>
  checkInvariants(machine).map((v) => v.kind);

describe('profiles', () => {
  it('xen turns every switch off, hardened every switch on; a switch can be set alone', () => {
    expect(Object.values(policyFor('xen')).every((on) => !on)).toBe(true);
    expect(Object.values(policyFor('hardened')).every((on) => on)).toBe(true);
    expect(Object.keys(policyFor('xen')).sort()).toEqual([...POLICY_SWITCHES].sort());
    expect(policyFor('xen', { purgeOnError: true }).purgeOnError).toBe(true);
    expect(() => policyFor('xen', { nonsense: true } as never)).toThrow(/policy/);
    expect(() => policyFor('strict' as never)).toThrow(/profile/);
  });
});

describe('purgeOnError (G1)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:01:00.0',
    bars: [
      { type: 'mem32', size: 0x4000n, addr: 0xf000_0000n },
      null,
      { type: 'mem32', size: 0x100n, addr: 0xf000_4600n },
    ],
  };
  for (const purgeOnError of [false, true]) {
    it(`${purgeOnError ? 'purges' : 'xen leaves'} BAR0's set after BAR2's offset mismatch`, () => {
      const machine = bootedMachine([device], { policy: { purgeOnError } });
      const guest = machine.createGuest();
      machine.assignDevice('01:00.0', guest.id);
      const v = guest.vcpus[0]!;
      machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
      machine.configWrite(v, '00:00.0', 0x18, 4, 0xe001_0000); // offset 0x000, host has 0x600
      machine.configWrite(v, '00:00.0', 0x04, 2, MEM);
      expect(v.pending).toBeUndefined();
      expect(machine.device('01:00.0').vpci!.bars[0]!.mem!.isEmpty()).toBe(purgeOnError);
      expect(kinds(machine).includes('rangeset-not-empty')).toBe(!purgeOnError);
    });
  }
});

describe('e820OnHostFrames (G5)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:01:00.0',
    bars: [{ type: 'mem32', size: 0x2000n, addr: 0xfe00_0000n }],
  };
  const e820 = [
    { addr: 0xfe00_0000n, size: 0x1000n, type: 'reserved' as const },
    { addr: 0xe000_1000n, size: 0x1000n, type: 'ram' as const },
  ];
  for (const e820OnHostFrames of [false, true]) {
    it(`${e820OnHostFrames ? 'drops host-reserved frames' : 'xen drops guest frames'} from a guest BAR`, () => {
      const machine = bootedMachine([device], { e820, policy: { e820OnHostFrames } });
      const guest = machine.createGuest();
      machine.assignDevice('01:00.0', guest.id);
      const v = guest.vcpus[0]!;
      machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
      writeCommand(machine, v, '00:00.0', MEM);
      // Host page fe000 is in the memory map; guest page e0001 happens to be host RAM's address.
      expect(mfnAt(guest, 0xe0000)).toBe(e820OnHostFrames ? undefined : 0xfe000);
      expect(mfnAt(guest, 0xe0001)).toBe(e820OnHostFrames ? 0xfe001 : undefined);
    });
  }
});

describe('romFailureKeepsBars (G6)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:04:00.0',
    command: MEM,
    bars: [{ type: 'mem32', size: MIB, addr: 0xfe00_0000n }],
    rom: { size: 0x10000n, addr: 0xfe10_0000n },
  };
  for (const romFailureKeepsBars of [false, true]) {
    it(`a failed ROM map ${romFailureKeepsBars ? 'leaves BAR0 alone' : 'turns the whole device off (xen)'}`, () => {
      let failing = false;
      const machine = bootedMachine([device], {
        policy: { romFailureKeepsBars },
        hardwareP2m: { failAt: () => failing },
      });
      const v = machine.hardwareDomain.vcpus[0]!;
      const pdev = machine.device('04:00.0');
      expect(pdev.vpci!.bars[0]!.enabled).toBe(true);
      failing = true;
      machine.configWrite(v, '04:00.0', 0x30, 4, 0xfe10_0001);
      expect(machine.finishPending(v)).toEqual({ status: 'failed', code: 'ENOMEM' });
      expect(pdev.vpci!.bars[0]!.enabled).toBe(romFailureKeepsBars);
      expect(pdev.vpci!.barsMapped).toBe(romFailureKeepsBars);
      expect(pdev.hw.read(0x04, 2) & MEM).toBe(romFailureKeepsBars ? MEM : 0);
    });
  }
});

describe('rollbackFailedMap (F8)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:02:00.0',
    bars: [{ type: 'mem32', size: MIB, addr: 0xf010_0000n }],
  };
  for (const rollbackFailedMap of [false, true]) {
    it(`a map failing half-way ${rollbackFailedMap ? 'is undone' : 'leaves its frames mapped (xen)'}`, () => {
      const machine = bootedMachine([device], { policy: { rollbackFailedMap } });
      // Write 100 fails, and write 101 (the retry of the same frame), so the error surfaces.
      const guest = machine.createGuest({ p2m: { failAt: (write) => write === 100 || write === 101 } });
      machine.assignDevice('02:00.0', guest.id);
      const v = guest.vcpus[0]!;
      machine.configWrite(v, '00:00.0', 0x10, 4, 0xc030_0000);
      expect(writeCommand(machine, v, '00:00.0', MEM)).toEqual({ status: 'failed', code: 'ENOMEM' });
      expect(guest.crashed).toBe(true);
      expect(mmioExtents(guest)).toEqual(rollbackFailedMap ? [] : [[0xc0300, 0xf0100, 99]]);
      expect(kinds(machine).includes('unexplained-mapping')).toBe(!rollbackFailedMap);
    });
  }
});

describe('refuseProbeAddress (invariant 8)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:02:00.0',
    bars: [
      { type: 'mem32', size: MIB, addr: 0xf010_0000n },
      null,
      { type: 'mem64', size: 0x4000n, addr: 0x40_0000_0000n },
    ],
  };
  for (const refuseProbeAddress of [false, true]) {
    it(`decoding with a probe in a BAR ${refuseProbeAddress ? 'is refused' : 'maps the probe (xen)'}`, () => {
      const machine = bootedMachine([device], { policy: { refuseProbeAddress } });
      const guest = machine.createGuest();
      machine.assignDevice('02:00.0', guest.id);
      const v = guest.vcpus[0]!;
      machine.configWrite(v, '00:00.0', 0x10, 4, 0xffff_ffff);
      expect(machine.configRead(v, '00:00.0', 0x10, 4)).toBe(0xfff0_0000); // the size mask reads back
      writeCommand(machine, v, '00:00.0', MEM);
      expect(mfnAt(guest, 0xfff00)).toBe(refuseProbeAddress ? undefined : 0xf0100);
      expect(kinds(machine).includes('probe-mapped')).toBe(!refuseProbeAddress);
      expect(machine.events.some((e) => e.kind === 'probe-refused')).toBe(refuseProbeAddress);
    });

    it(`a 64-bit BAR with one half written ${refuseProbeAddress ? 'is refused' : 'is mapped (xen)'}`, () => {
      const machine = bootedMachine([device], { policy: { refuseProbeAddress } });
      const guest = machine.createGuest();
      machine.assignDevice('02:00.0', guest.id);
      const v = guest.vcpus[0]!;
      machine.configWrite(v, '00:00.0', 0x10, 4, 0xc000_0000);
      machine.configWrite(v, '00:00.0', 0x18, 4, 0xd000_0000); // the high half still says 0x40
      writeCommand(machine, v, '00:00.0', MEM);
      expect(mfnAt(guest, 0x40d_0000)).toBe(refuseProbeAddress ? undefined : 0x400_0000);
    });
  }
});

describe('serialOperations (F2)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:02:00.0',
    bars: [{ type: 'mem32', size: MIB, addr: 0xf010_0000n }],
  };
  for (const serialOperations of [false, true]) {
    it(`a BAR moved while a map is pending ${serialOperations ? 'stays put' : 'ends enabled where nothing is mapped (xen)'}`, () => {
      const machine = bootedMachine([device], { policy: { serialOperations } });
      const [v0, v1] = machine.hardwareDomain.vcpus as [never, never];
      machine.configWrite(v0, '02:00.0', 0x04, 2, MEM);
      machine.configWrite(v1, '02:00.0', 0x10, 4, 0xf020_0000);
      machine.finishPending(v0);
      // The deferred work maps the frames collected before the move.
      expect(mfnAt(machine.hardwareDomain, 0xf0100)).toBe(0xf0100);
      expect(machine.device('02:00.0').vpci!.bars[0]!.addr).toBe(
        serialOperations ? 0xf010_0000n : 0xf020_0000n,
      );
      expect(checkInvariants(machine).length > 0).toBe(!serialOperations);
    });
  }
});

describe('unmapOnDeassign', () => {
  const device: DeviceSpec = {
    sbdf: '0000:02:00.0',
    bars: [{ type: 'mem32', size: MIB, addr: 0xf010_0000n }],
  };
  for (const unmapOnDeassign of [false, true]) {
    it(`a device taken from a guest ${unmapOnDeassign ? 'is unmapped from it' : 'stays mapped in it (xen)'}`, () => {
      const machine = bootedMachine([device], { policy: { unmapOnDeassign } });
      const guest = machine.createGuest();
      machine.assignDevice('02:00.0', guest.id);
      const v = guest.vcpus[0]!;
      machine.configWrite(v, '00:00.0', 0x10, 4, 0xc030_0000);
      writeCommand(machine, v, '00:00.0', MEM);
      expect(machine.deassignDevice('02:00.0')).toEqual({ ok: true });
      expect(mmioExtents(guest)).toEqual(unmapOnDeassign ? [] : [[0xc0300, 0xf0100, 256]]);
    });
  }
});

describe('restoreMsixPages', () => {
  // Device 0's MSI-X table shares page c0000 with device 1's 16-byte BAR (sub-page BARs, hardware domain).
  const devices: DeviceSpec[] = [
    {
      sbdf: '0000:01:00.0',
      bars: [{ type: 'mem32', size: 0x20n, addr: 0xc000_0000n }],
      msix: { entries: 1, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x10 } },
    },
    { sbdf: '0000:01:01.0', bars: [{ type: 'mem32', size: 0x10n, addr: 0xc000_0020n }] },
  ];
  for (const restoreMsixPages of [false, true]) {
    it(`the MSI-X hole ${restoreMsixPages ? 'is mapped again' : 'stays (xen)'} when its device stops decoding`, () => {
      const machine = bootedMachine(devices, { policy: { restoreMsixPages } });
      const v = machine.hardwareDomain.vcpus[0]!;
      writeCommand(machine, v, '01:01.0', MEM);
      writeCommand(machine, v, '01:00.0', MEM);
      expect(mfnAt(machine.hardwareDomain, 0xc0000)).toBeUndefined(); // the hole for the table
      writeCommand(machine, v, '01:00.0', 0);
      expect(mfnAt(machine.hardwareDomain, 0xc0000)).toBe(restoreMsixPages ? 0xc0000 : undefined);
      expect(kinds(machine).includes('page-unmapped')).toBe(!restoreMsixPages);
    });
  }
});
