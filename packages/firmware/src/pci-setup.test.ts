import { InvalidArgumentError, mtrrGetType, paddr } from '@vpci/p2m';
import { checkInvariants, type DeviceSpec, Machine, PhysicalDevice } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { hardwareBus } from './bus.js';
import { guestMtrrState } from './mtrr-layout.js';
import { type PciSetupResult, pciSetup, placeBars } from './pci-setup.js';
import { SECTION_4_7_DEVICES } from './seed-000.js';

const MIB = 1n << 20n;
const GIB = 1n << 30n;

/** `[sbdf, index, address]` of every BAR, in placement order. */
const placed = (r: PciSetupResult): [string, number, bigint | undefined][] =>
  r.bars.map((b) => [b.sbdf, b.index, b.addr]);

function dom0Run(devices: readonly DeviceSpec[], options: Parameters<typeof placeBars>[2] = {}) {
  const machine = new Machine();
  for (const spec of devices) machine.addDevice(spec);
  machine.boot();
  const result = placeBars(machine, machine.hardwareDomain.vcpus[0]!, options);
  return { machine, result };
}

describe("three devices placed by hvmloader's pci_setup, through a Machine from dom0", () => {
  it('default (xen-platform-pci-bar-uc = 1): sorted by size, packed from 0xf0000000', () => {
    const { machine, result } = dom0Run(SECTION_4_7_DEVICES);
    expect(placed(result)).toEqual([
      ['00:02.0', 0, 0xf000_0000n], // VGA BAR0 16 MiB
      ['00:03.0', 1, 0xf100_0000n], // xenpci BAR1 16 MiB (after VGA: equal sizes keep discovery order)
      ['00:04.0', 6, 0xf200_0000n], // NIC ROM 256 KiB
      ['00:04.0', 0, 0xf204_0000n], // NIC BAR0 128 KiB
      ['00:02.0', 6, 0xf206_0000n], // VGA ROM 64 KiB
      ['00:02.0', 2, 0xf207_0000n], // VGA BAR2 4 KiB
      ['00:03.0', 0, 0xc000n], // xenpci BAR0 I/O 0x100
      ['00:04.0', 1, 0xc100n], // NIC BAR1 I/O 0x40
    ]);
    expect(result).toMatchObject({
      pciMemStart: 0xf000_0000n,
      pciMemEnd: 0xfc00_0000n,
      pciHiMemStart: 0n,
      pciHiMemEnd: 0n,
      mmioTotal: 32n * MIB + 452n * 1024n,
      bar64Relocate: false,
    });
    // The engine saw it: the BARs are where hvmloader put them, mapped, with decoding on.
    expect(machine.device('00:03.0').vpci!.bars[1]).toMatchObject({ addr: 0xf100_0000n, enabled: true });
    expect(machine.device('00:04.0').vpci!.bars[6]).toMatchObject({ addr: 0xf200_0000n, enabled: false });
    expect(machine.device('00:03.0').hw.read(0x10, 4)).toBe(0xc001);
    expect(result.commands).toEqual([
      { devfn: 0x10, value: 0x6 }, // memory + bus master (no I/O BAR; class 0 here, so no VGA I/O)
      { devfn: 0x18, value: 0x7 },
      { devfn: 0x20, value: 0x7 },
    ]);
    expect(checkInvariants(machine)).toEqual([]);
    // cacheattr_init's cover of the default hole: the whole hole UC; the xenpci BAR with it.
    const mtrr = guestMtrrState(result);
    expect(mtrr.variableRanges.filter((r) => r.valid).map((r) => [r.base, r.mask & -r.mask])).toEqual([
      [0xf000_0000n, 128n * MIB],
      [0xf800_0000n, 64n * MIB],
    ]);
    expect(mtrrGetType(mtrr, paddr(0xf100_0000n), 0)).toBe('UC');
  });

  it('xen-platform-pci-bar-uc = 0: the xenpci BAR at 0xfb000000, the rest packed below, WB in the MTRRs', () => {
    const { machine, result } = dom0Run(SECTION_4_7_DEVICES, { xenpciBarUc: false });
    expect(placed(result)).toEqual([
      ['00:03.0', 1, 0xfb00_0000n],
      ['00:02.0', 0, 0xf000_0000n],
      ['00:04.0', 6, 0xf100_0000n],
      ['00:04.0', 0, 0xf104_0000n],
      ['00:02.0', 6, 0xf106_0000n],
      ['00:02.0', 2, 0xf107_0000n],
      ['00:03.0', 0, 0xc000n],
      ['00:04.0', 1, 0xc100n],
    ]);
    expect(result.bars[0]!.window).toBe('xenpci');
    expect(result).toMatchObject({
      pciMemStart: 0xf000_0000n,
      pciMemEnd: 0xfb00_0000n,
      mmioTotal: 16n * MIB + 452n * 1024n,
    });
    expect(machine.device('00:03.0').vpci!.bars[1]).toMatchObject({ addr: 0xfb00_0000n, enabled: true });
    // The cover stops short of the xenpci BAR (invariant 38): no UC range meets it.
    const mtrr = guestMtrrState(result);
    expect(mtrr.variableRanges.filter((r) => r.valid).map((r) => [r.base, r.mask & -r.mask])).toEqual([
      [0xf000_0000n, 128n * MIB],
      [0xf800_0000n, 32n * MIB],
      [0xfa00_0000n, 16n * MIB],
    ]);
    for (let a = 0xfb00_0000n; a < 0xfc00_0000n; a += 2n * MIB)
      expect(mtrrGetType(mtrr, paddr(a), 9)).toBe('WB');
  });

  it('bare hardware gives the same placement and the same accesses as the Machine', () => {
    const { result } = dom0Run(SECTION_4_7_DEVICES);
    const bare = pciSetup(hardwareBus(SECTION_4_7_DEVICES));
    expect(placed(bare)).toEqual(placed(result));
    const strip = (r: PciSetupResult) => r.accesses.map(({ via: _via, ...rest }) => rest);
    expect(strip(bare)).toEqual(strip(result));
  });

  it('prints what hvmloader prints for each BAR', () => {
    const { result } = dom0Run(SECTION_4_7_DEVICES);
    expect(result.log).toContain('pci dev 02:0 bar 10 size 001000000: 0f0000008');
    expect(result.log).toContain('pci dev 03:0 bar 10 size 000000100: 00000c001');
  });
});

describe('the low hole, RAM relocation and the high window', () => {
  it('grows the hole for 300 MiB of 32-bit BARs and moves the RAM it covers above high RAM', () => {
    const devices: DeviceSpec[] = [
      { sbdf: '00:02.0', bars: [{ type: 'mem32', size: 256n * MIB }] },
      { sbdf: '00:03.0', bars: [{ type: 'mem32', size: 64n * MIB }] },
    ];
    const result = pciSetup(hardwareBus(devices));
    expect(result.pciMemStart).toBe(0xe000_0000n);
    expect(result.ram).toEqual({
      lowMemPgend: 0xe0000,
      highMemPgend: 0x120000,
      moves: [
        { from: 0xe0001, to: 0x110000, count: 0xffff },
        { from: 0xe0000, to: 0x11ffff, count: 1 },
      ],
    });
    expect(placed(result)).toEqual([
      ['00:02.0', 0, 0xe000_0000n],
      ['00:03.0', 0, 0xf000_0000n],
    ]);
  });

  it('puts a 64-bit BAR over 1 GiB high: 4 GiB BAR at 0x200000000, window end 0x400000000, one UC MTRR over it', () => {
    const result = pciSetup(
      hardwareBus([{ sbdf: '00:04.0', bars: [{ type: 'mem64', size: 4n * GIB, prefetchable: true }] }]),
    );
    expect(placed(result)).toEqual([['00:04.0', 0, 0x2_0000_0000n]]);
    expect(result).toMatchObject({
      pciHiMemStart: 0x2_0000_0000n,
      pciHiMemEnd: 0x4_0000_0000n,
      bar64Relocate: true,
    });
    const mtrr = guestMtrrState(result);
    expect(mtrr.variableRanges.filter((r) => r.valid).map((r) => [r.base, r.mask & -r.mask])).toEqual([
      [0xf000_0000n, 128n * MIB],
      [0xf800_0000n, 64n * MIB],
      [0x2_0000_0000n, 8n * GIB],
    ]);
  });

  it('rounds the high window end up to its start alignment: start 0x140000000, last end 0x160000000', () => {
    // No relocation: the hole stays 192 MiB, so mmio_total (640 MiB) sends the 64-bit BAR high.
    const result = pciSetup(
      hardwareBus([
        { sbdf: '00:02.0', bars: [{ type: 'mem64', size: 512n * MIB }] },
        { sbdf: '00:03.0', bars: [{ type: 'mem32', size: 128n * MIB }] },
      ]),
      { allowMemoryRelocate: false, highMemPgend: 0x140000 },
    );
    expect(placed(result)).toEqual([
      ['00:02.0', 0, 0x1_4000_0000n],
      ['00:03.0', 0, 0xf000_0000n],
    ]);
    expect(result).toMatchObject({ pciHiMemStart: 0x1_4000_0000n, pciHiMemEnd: 0x1_8000_0000n });
  });

  it('steps past an RMRR in the hole (invariant 36)', () => {
    const reserved = [{ addr: 0xf000_0000n, size: 0x1000n }];
    const result = pciSetup(
      hardwareBus([
        { sbdf: '00:02.0', bars: [{ type: 'mem32', size: 16n * MIB }] },
        { sbdf: '00:03.0', bars: [{ type: 'mem32', size: 0x1000n }] },
      ]),
      { reserved, lowMemPgend: 0xf0000 },
    );
    // The RMRR is in the hole, but low RAM ends where the hole starts: the start does not move.
    expect(result.pciMemStart).toBe(0xf000_0000n);
    expect(placed(result)).toEqual([
      ['00:02.0', 0, 0xf100_0000n],
      ['00:03.0', 0, 0xf200_0000n],
    ]);
  });

  it('leaves a BAR that does not fit unprogrammed ("no space")', () => {
    const devices: DeviceSpec[] = [1, 2, 3].map((i) => ({
      sbdf: `00:0${i}.0`,
      bars: [{ type: 'mem32', size: 1n * GIB }],
    }));
    const hw = devices.map((d) => PhysicalDevice.fromSpec(d));
    const result = pciSetup(hardwareBus(hw));
    expect(result.pciMemStart).toBe(0x8000_0000n);
    expect(placed(result)).toEqual([
      ['00:01.0', 0, 0x8000_0000n],
      ['00:02.0', 0, undefined],
      ['00:03.0', 0, undefined],
    ]);
    expect(result.log).toContain('pci dev 02:0 bar 10 size 040000000: no space for resource!');
    expect(hw[1]!.read(0x10, 4)).toBe(0); // untouched after sizing
  });

  it('writes only the low dword of a 64-bit BAR it places low: the old upper dword stays (hvmloader)', () => {
    const spec: DeviceSpec = {
      sbdf: '00:02.0',
      bars: [{ type: 'mem64', size: 16n * MIB, addr: 0x80_0000_0000n }],
    };
    const xen = pciSetup(hardwareBus([spec]));
    expect(xen.bars[0]).toMatchObject({ window: 'low', addr: 0xf000_0000n, decodes: 0x80_f000_0000n });
    // The other policies write the upper dword (as SeaBIOS does).
    const seabios = pciSetup(hardwareBus([spec]), { policy: 'seabios' });
    expect(seabios.bars[0]).toMatchObject({ addr: 0xf000_0000n, decodes: 0xf000_0000n });
  });

  it('places a ROM whose enable bit is set in I/O space, as hvmloader would', () => {
    const result = pciSetup(hardwareBus([{ sbdf: '00:02.0', rom: { size: 0x800n, enabled: true } }]));
    expect(result.bars[0]).toMatchObject({ kind: 'rom', window: 'io', addr: 0xc000n });
    expect(result.commands).toEqual([{ devfn: 0x10, value: 0x6 }]); // still memory decode (a ROM)
  });

  it('gives the primary VGA I/O decoding even without an I/O BAR', () => {
    const bytes = new Uint8Array(256);
    bytes.set([0x34, 0x12, 0x11, 0x11], 0);
    bytes.set([0x00, 0x00, 0x00, 0x03], 8); // class 0x0300
    const vga = PhysicalDevice.fromImage('00:02.0', bytes, {});
    expect(pciSetup(hardwareBus([vga])).commands).toEqual([{ devfn: 0x10, value: 0x5 }]);
  });

  it('refuses bad options, naming them', () => {
    const bus = hardwareBus([]);
    expect(() => pciSetup(bus, { policy: 'linux' as 'hvmloader' })).toThrow(InvalidArgumentError);
    expect(() => pciSetup(bus, { physAddrBits: 60 })).toThrow(/physAddrBits/);
    expect(() => pciSetup(bus, { lowMemPgend: -1 })).toThrow(/lowMemPgend/);
    expect(() => pciSetup(bus, { reserved: [{ addr: 0n, size: 0n }] })).toThrow(/reserved\[0\]/);
  });
});

describe('a guest vCPU (the device model answers IDs; vPCI handles the BARs)', () => {
  /** Seed 002's layout 1 device passed through to guest 1, the Xen platform device emulated. */
  function guestRun(policy: 'hvmloader' | 'seabios' | 'congruent') {
    const machine = new Machine();
    machine.addDevice({
      sbdf: '0000:01:00.0',
      vendorId: 0x104c,
      deviceId: 0xb00d,
      bars: [
        { type: 'mem32', size: 0x100n, addr: 0xd192_4600n },
        { type: 'mem32', size: 0x200n, addr: 0xd192_4400n },
        { type: 'mem32', size: 0x400n, addr: 0xd192_4000n },
        { type: 'mem32', size: 0x4000n, addr: 0xd192_0000n },
      ],
    });
    machine.boot();
    const guest = machine.createGuest();
    expect(machine.assignDevice('01:00.0', guest.id)).toEqual({ ok: true });
    const xenpci = PhysicalDevice.fromSpec({
      sbdf: '00:02.0',
      vendorId: 0x5853,
      deviceId: 0x0001,
      bars: [
        { type: 'io', size: 0x100n },
        { type: 'mem32', size: 16n * MIB, prefetchable: true },
      ],
    });
    const result = placeBars(machine, guest.vcpus[0]!, { policy, bus: { emulated: [xenpci] } });
    return { machine, guest, result };
  }

  it('finds the passed-through device and the emulated one; vPCI sees only the former', () => {
    const { result } = guestRun('hvmloader');
    expect(result.devices.map((d) => [d.devfn, d.vendorId])).toEqual([
      [0x00, 0x104c],
      [0x10, 0x5853],
    ]);
    const via = new Set(result.accesses.filter((a) => a.devfn === 0x10).map((a) => a.via));
    expect([...via]).toEqual(['device-model']);
    expect(result.accesses.some((a) => a.devfn === 0 && a.reg === 0x10 && a.via === 'machine')).toBe(true);
  });

  it('congruent keeps the host page offsets, so vPCI maps the sub-page BARs', () => {
    const { machine, guest, result } = guestRun('congruent');
    const bars = result.bars.filter((b) => b.devfn === 0);
    expect(bars.every((b) => b.congruence === 'superpage')).toBe(true);
    expect(machine.events.filter((e) => e.kind === 'offset-mismatch')).toEqual([]);
    expect(guest.p2m.mappedFrames).toBe(5);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('seabios (4 KiB per BAR) loses the offsets: vPCI refuses the device (offset mismatch)', () => {
    const { machine, guest, result } = guestRun('seabios');
    expect(result.bars.filter((b) => b.devfn === 0 && b.congruence === 'none')).toHaveLength(2);
    expect(machine.events.some((e) => e.kind === 'offset-mismatch')).toBe(true);
    expect(guest.p2m.mappedFrames).toBe(0);
  });

  it('hvmloader leaves a 64-bit BAR at the host upper dword: vPCI starts a guest BAR at the host address', () => {
    // Xen's init_header sets guest_addr = addr for every domain; hvmloader writes only the low dword of
    // a BAR it places below 4 GiB, so the guest address ends up 0x80_f000_0000, outside the hole.
    const machine = new Machine();
    machine.addDevice({
      sbdf: '03:00.0',
      bars: [{ type: 'mem64', size: 0x4000n, addr: 0x80_0000_0000n }, null],
    });
    machine.boot();
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const xen = placeBars(machine, guest.vcpus[0]!);
    expect(xen.bars[0]).toMatchObject({ window: 'low', addr: 0xf000_0000n, decodes: 0x80_f000_0000n });
    expect(machine.device('03:00.0').vpci!.bars[0]!.guestAddr).toBe(0x80_f000_0000n);
    // The other policies write the upper dword too.
    placeBars(machine, guest.vcpus[0]!, { policy: 'congruent' });
    expect(machine.device('03:00.0').vpci!.bars[0]!.guestAddr).toBe(0xf000_0000n);
  });
});
