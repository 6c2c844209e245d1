/**
 * The `qemu` rule set's decisions, with expected values from QEMU's hw/pci/pci.c: `pci_bar_address`
 * (where a BAR decodes, or PCI_BAR_UNMAPPED), `pci_update_mappings` (a BAR follows its register at
 * once) and `pci_default_write_config` (which writes update the mappings); hw/pci/msix.c `msix_init`
 * (the table and PBA regions over the BAR trap).
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mfnAt, mmioExtents } from '../../../test/support/machine.js';
import type { DeviceSpec } from './hardware.js';
import { checkInvariants } from './invariants.js';
import { PCI_COMMAND_IO, PCI_COMMAND_MEMORY } from './pci-regs.js';
import { QEMU_RULES, qemuBarAddress } from './qemu-rules.js';

const MEM = PCI_COMMAND_MEMORY;
const IO = PCI_COMMAND_IO;

describe('pci_bar_address', () => {
  const mem32 = { type: 'mem32', size: 0x4000n } as const;
  const mem64 = { type: 'mem64lo', size: 0x4000n } as const;
  const rom = { type: 'rom', size: 0x10000n } as const;
  const io = { type: 'io', size: 0x20n } as const;

  it('a memory BAR decodes at its register cut to its size, only with PCI_COMMAND_MEMORY', () => {
    expect(qemuBarAddress(mem32, 0xfe00_0000n, MEM)).toBe(0xfe00_0000n);
    // The type and prefetch bits are below the size: `new_addr &= ~(size - 1)`.
    expect(qemuBarAddress(mem32, 0xfe00_0008n, MEM)).toBe(0xfe00_0000n);
    expect(qemuBarAddress(mem32, 0xfe00_0000n, IO)).toBeUndefined();
  });

  it('"we do not support wrapping": address 0, a last byte of all-ones, a 32-bit BAR reaching 4 GiB - 1', () => {
    // !allow_0_address && new_addr == 0 (a pc machine's pci_allow_0_address is false).
    expect(qemuBarAddress(mem32, 0n, MEM)).toBeUndefined();
    // The 32-bit sizing probe: last_addr = 0xffffffff >= UINT32_MAX.
    expect(qemuBarAddress(mem32, 0xffff_c000n, MEM)).toBeUndefined();
    expect(qemuBarAddress(mem32, 0xffff_8000n, MEM)).toBe(0xffff_8000n);
    // The 64-bit probe: last_addr == PCI_BAR_UNMAPPED.
    expect(qemuBarAddress(mem64, 0xffff_ffff_ffff_c00cn, MEM)).toBeUndefined();
    // Only a 64-bit BAR may pass 4 GiB.
    expect(qemuBarAddress(mem64, 0x8_0000_0000n, MEM)).toBe(0x8_0000_0000n);
  });

  it("a 64-bit BAR's two halves are read as one (pci_get_quad): a half-written BAR decodes at the mixed address", () => {
    // Low half probed, high half 0: 0xffffc000 … 0xffffffff, below all-ones, not a 32-bit BAR.
    expect(qemuBarAddress(mem64, 0xffff_c00cn, MEM)).toBe(0xffff_c000n);
    // High half probed, low half a real address.
    expect(qemuBarAddress(mem64, 0xffff_ffff_fe00_000cn, MEM)).toBe(0xffff_ffff_fe00_0000n);
  });

  it('the ROM decodes only with its enable bit ("the ROM slot has a specific enable bit") and the memory bit', () => {
    expect(qemuBarAddress(rom, 0xfeb0_0000n, MEM)).toBeUndefined();
    expect(qemuBarAddress(rom, 0xfeb0_0001n, MEM)).toBe(0xfeb0_0000n);
    expect(qemuBarAddress(rom, 0xfeb0_0001n, IO)).toBeUndefined();
  });

  it('an I/O BAR decodes as ports with PCI_COMMAND_IO, not at 0, not reaching 0xffffffff', () => {
    expect(qemuBarAddress(io, 0xc001n, IO)).toBe(0xc000n);
    expect(qemuBarAddress(io, 0xc001n, MEM)).toBeUndefined();
    expect(qemuBarAddress(io, 0x1n, IO)).toBeUndefined();
    // The I/O sizing probe: last_addr >= UINT32_MAX.
    expect(qemuBarAddress(io, 0xffff_ffe1n, IO)).toBeUndefined();
  });
});

describe('pci_update_mappings under the qemu rules (hardware domain, identity mapped)', () => {
  const device: DeviceSpec = {
    sbdf: '0000:00:03.0',
    bars: [
      { type: 'mem32', size: 0x4000n, addr: 0xfe00_0000n },
      { type: 'io', size: 0x20n, addr: 0xc000n },
      { type: 'mem64', size: 0x4000n, addr: 0x8_0000_0000n },
    ],
    rom: { size: 0x10000n, addr: 0xfeb0_0000n },
  };
  const booted = () => {
    const machine = bootedMachine([device], { rules: 'qemu' });
    const dom0 = machine.hardwareDomain;
    return { machine, dom0, v: dom0.vcpus[0]!, bars: machine.device('00:03.0').vpci!.bars };
  };

  it('the command register: memory BARs map with the memory bit, the I/O BAR decodes with the I/O bit', () => {
    const { machine, dom0, v, bars } = booted();
    machine.configWrite(v, '00:03.0', 0x04, 2, IO);
    expect(bars[1]!.portsDecoded).toBe(true);
    expect(bars[1]!.addr).toBe(0xc000n);
    expect(bars[0]!.enabled).toBe(false);
    expect(mfnAt(dom0, 0xfe000)).toBeUndefined();
    machine.configWrite(v, '00:03.0', 0x04, 2, MEM);
    expect(bars[1]!.portsDecoded).toBe(false);
    expect(bars[0]!.enabled && bars[2]!.enabled).toBe(true);
    expect(v.pending).toBeUndefined(); // nothing deferred
    expect(mmioExtents(dom0)).toEqual([
      [0xfe000, 0xfe000, 4],
      [0x800000, 0x800000, 4],
    ]);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('a BAR written while decoding moves at once (Xen ignores the write: bar_write)', () => {
    const { machine, dom0, v, bars } = booted();
    machine.configWrite(v, '00:03.0', 0x04, 2, MEM);
    machine.configWrite(v, '00:03.0', 0x10, 4, 0xfd00_0000);
    expect(bars[0]!.addr).toBe(0xfd00_0000n);
    expect(bars[0]!.enabled).toBe(true);
    expect(mfnAt(dom0, 0xfe000)).toBeUndefined();
    expect(mfnAt(dom0, 0xfd000)).toBe(0xfd000);
    expect(machine.events.some((e) => e.kind === 'bar-write-ignored')).toBe(false);
    expect(checkInvariants(machine)).toEqual([]);

    const xen = bootedMachine([device]);
    const x0 = xen.hardwareDomain.vcpus[0]!;
    xen.configWrite(x0, '00:03.0', 0x04, 2, MEM);
    xen.finishPending(x0);
    xen.configWrite(x0, '00:03.0', 0x10, 4, 0xfd00_0000);
    expect(xen.device('00:03.0').vpci!.bars[0]!.addr).toBe(0xfe00_0000n);
    expect(xen.events.some((e) => e.kind === 'bar-write-ignored')).toBe(true);
  });

  it('sizing a 32-bit BAR while decoding unmaps it (the probe is PCI_BAR_UNMAPPED) and the restore maps it again', () => {
    const { machine, dom0, v, bars } = booted();
    machine.configWrite(v, '00:03.0', 0x04, 2, MEM);
    machine.configWrite(v, '00:03.0', 0x10, 4, 0xffff_ffff);
    expect(bars[0]!.enabled).toBe(false);
    expect(mfnAt(dom0, 0xfe000)).toBeUndefined();
    machine.configWrite(v, '00:03.0', 0x10, 4, 0xfe00_0000);
    expect(bars[0]!.enabled).toBe(true);
    expect(mfnAt(dom0, 0xfe000)).toBe(0xfe000);
  });

  it('a 64-bit BAR moved one half at a time while decoding is mapped at the mixed address in between (pci_get_quad)', () => {
    const { machine, dom0, v, bars } = booted();
    machine.configWrite(v, '00:03.0', 0x04, 2, MEM);
    // Low half first: 0x8_fe00_0000 (high 8, new low), then the high half: 0xfe00_0000.
    machine.configWrite(v, '00:03.0', 0x18, 4, 0xfe10_0000);
    expect(bars[2]!.addr).toBe(0x8_fe10_0000n);
    expect(bars[2]!.enabled).toBe(true);
    expect(mfnAt(dom0, 0x8fe100)).toBe(0x8fe100);
    machine.configWrite(v, '00:03.0', 0x1c, 4, 0);
    expect(bars[2]!.addr).toBe(0xfe10_0000n);
    expect(mfnAt(dom0, 0x8fe100)).toBeUndefined();
    expect(mfnAt(dom0, 0xfe100)).toBe(0xfe100);
  });

  it('the ROM maps with its enable bit while memory decoding is on, and unmaps without it', () => {
    const { machine, dom0, v, bars } = booted();
    const rom = bars.find((b) => b.type === 'rom')!;
    machine.configWrite(v, '00:03.0', 0x04, 2, MEM);
    expect(rom.enabled).toBe(false);
    machine.configWrite(v, '00:03.0', 0x30, 4, 0xfeb0_0001);
    expect(rom.enabled).toBe(true);
    expect(mfnAt(dom0, 0xfeb00)).toBe(0xfeb00);
    // Moved while enabled: it follows (Xen's rom_write ignores it).
    machine.configWrite(v, '00:03.0', 0x30, 4, 0xfea0_0001);
    expect(rom.addr).toBe(0xfea0_0000n);
    expect(mfnAt(dom0, 0xfeb00)).toBeUndefined();
    expect(mfnAt(dom0, 0xfea00)).toBe(0xfea00);
    machine.configWrite(v, '00:03.0', 0x30, 4, 0xfea0_0000);
    expect(rom.enabled).toBe(false);
    expect(mfnAt(dom0, 0xfea00)).toBeUndefined();
  });

  it("msix_init's table and PBA regions trap: their pages stay unmapped while the BAR decodes, wherever it moves", () => {
    const machine = bootedMachine(
      [
        {
          sbdf: '0000:00:04.0',
          bars: [{ type: 'mem32', size: 0x4000n, addr: 0xfe00_0000n }],
          msix: { entries: 4, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
        },
      ],
      { rules: 'qemu' },
    );
    const dom0 = machine.hardwareDomain;
    const v = dom0.vcpus[0]!;
    machine.configWrite(v, '00:04.0', 0x04, 2, MEM);
    expect(mmioExtents(dom0)).toEqual([[0xfe000, 0xfe000, 2]]);
    machine.configWrite(v, '00:04.0', 0x10, 4, 0xfd00_0000);
    expect(mmioExtents(dom0)).toEqual([[0xfd000, 0xfd000, 2]]);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('a command value that changes nothing still counts as a mapping write (commandMaps), as pci_default_write_config updates on any', () => {
    const { machine } = booted();
    const pdev = machine.device('00:03.0');
    expect(QEMU_RULES.commandMaps(pdev, 0)).toBe(true);
    expect(QEMU_RULES.commandMaps(pdev, MEM)).toBe(true);
    expect(QEMU_RULES.ioBarWrite).toBeDefined();
  });
});

describe('qemu rules for a guest', () => {
  it("a guest's BAR follows its view at once: the old guest frames unmapped, the new ones mapping the BAR's host frames", () => {
    const machine = bootedMachine(
      [{ sbdf: '0000:01:00.0', bars: [{ type: 'mem32', size: 0x4000n, addr: 0xf000_0000n }] }],
      { rules: 'qemu' },
    );
    const guest = machine.createGuest();
    machine.assignDevice('01:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    machine.configWrite(v, '00:00.0', 0x04, 2, MEM);
    expect(mmioExtents(guest)).toEqual([[0xe0000, 0xf0000, 4]]);
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe100_0000);
    expect(mmioExtents(guest)).toEqual([[0xe1000, 0xf0000, 4]]);
    machine.configWrite(v, '00:00.0', 0x04, 2, 0);
    expect(mmioExtents(guest)).toEqual([]);
    expect(checkInvariants(machine)).toEqual([]);
  });
});
