/**
 * MSI-X table and PBA MMIO as Xen's xen/drivers/vpci/msix.c handles it (`msix_read`, `msix_write`,
 * `adjacent_read`, `adjacent_write`, `get_slot`, `get_table`), reached through the p2m as
 * xen/arch/x86/hvm/hvm.c's `hvm_hap_nested_page_fault` dispatches (commit 8f36bde2b2). Expected
 * values are worked out from those functions.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mfnAt, writeCommand } from '../../../test/support/machine.js';
import type { DeviceSpec } from './hardware.js';
import type { Machine } from './machine.js';

const MEM = 0x2;
const CTRL = 0x42; // MSI-X capability at 0x40
// BAR0 16 KiB at 0xfe000000; the table (4 entries, 64 bytes) at 0x1100, the PBA at 0x1800: one page.
const device: DeviceSpec = {
  sbdf: '0000:01:00.0',
  bars: [{ type: 'mem32', size: 0x4000n, addr: 0xfe00_0000n }],
  msix: { entries: 4, table: { bar: 0, offset: 0x1100 }, pba: { bar: 0, offset: 0x1800 } },
};
const TABLE = 0xfe00_1100n;
const PBA = 0xfe00_1800n;

function dom0Machine(): { machine: Machine; v: ReturnType<Machine['vcpu']> } {
  const machine = bootedMachine([device]);
  const v = machine.hardwareDomain.vcpus[0]!;
  writeCommand(machine, v, '01:00.0', MEM);
  return { machine, v };
}

describe('msix_read / msix_write: the table entries are vPCI state', () => {
  it('a fresh entry reads address 0, data 0 and Vector Control masked (init_msix masks every entry)', () => {
    const { machine, v } = dom0Machine();
    expect(mfnAt(machine.hardwareDomain, 0xfe001)).toBeUndefined(); // the hole vpci_make_msix_hole made
    expect(machine.mmioRead(v, TABLE, 4)).toEqual({ path: 'msix-table', value: 0n });
    expect(machine.mmioRead(v, TABLE + 12n, 4)).toEqual({ path: 'msix-table', value: 1n });
  });

  it('32-bit writes replace half the address; an 8-byte write the whole; reads follow msix_read', () => {
    const { machine, v } = dom0Machine();
    machine.mmioWrite(v, TABLE, 4, 0xfee0_1000n); // PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET
    machine.mmioWrite(v, TABLE + 4n, 4, 0x1n); // PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET
    expect(machine.mmioRead(v, TABLE, 8).value).toBe(0x1_fee0_1000n);
    expect(machine.mmioRead(v, TABLE + 4n, 4).value).toBe(0x1n);
    machine.mmioWrite(v, TABLE + 16n, 8, 0x2_fee0_2000n);
    expect(machine.mmioRead(v, TABLE + 16n, 4).value).toBe(0xfee0_2000n);
    expect(machine.device('01:00.0').vpci!.msix!.entries[1]).toMatchObject({
      addr: 0x2_fee0_2000n,
      updated: true,
    });
    // Nothing reached the device's own table.
    expect(machine.deviceMemory.read(machine.devices(), TABLE, 8)).toBe(0n);
  });

  it('an 8-byte data write falls through to Vector Control with the high half; an 8-byte data read adds the mask bit', () => {
    const { machine, v } = dom0Machine();
    machine.mmioWrite(v, TABLE + 8n, 8, 0x0000_0000_0000_4041n); // data 0x4041, Mask bit 0: unmask
    const entry = machine.device('01:00.0').vpci!.msix!.entries[0]!;
    expect(entry).toMatchObject({ data: 0x4041, masked: false });
    expect(machine.mmioRead(v, TABLE + 8n, 8).value).toBe(0x4041n);
    machine.mmioWrite(v, TABLE + 12n, 4, 1n);
    expect(machine.mmioRead(v, TABLE + 8n, 8).value).toBe(0x1_0000_4041n);
  });

  it('access_allowed: a 2-byte or misaligned access reads all-ones and writes nothing, with an event', () => {
    const { machine, v } = dom0Machine();
    expect(machine.mmioRead(v, TABLE, 2)).toEqual({ path: 'msix-table', value: 0xffffn });
    machine.mmioWrite(v, TABLE + 4n, 8, 0xffff_ffff_ffff_ffffn); // 8 bytes at +4: not 8-aligned
    expect(machine.device('01:00.0').vpci!.msix!.entries[0]!.addr).toBe(0n);
    expect(machine.events.filter((e) => e.kind === 'msix-access-refused')).toHaveLength(2);
  });
});

describe('adjacent_read / adjacent_write: the rest of the page is the device, through the host page', () => {
  it('reads and writes beside the table reach the device at the host address', () => {
    const { machine, v } = dom0Machine();
    expect(machine.mmioWrite(v, 0xfe00_1010n, 4, 0xdead_beefn).path).toBe('msix-adjacent');
    expect(machine.deviceMemory.read(machine.devices(), 0xfe00_1010n, 4)).toBe(0xdead_beefn);
    expect(machine.mmioRead(v, 0xfe00_1010n, 4)).toEqual({ path: 'msix-adjacent', value: 0xdead_beefn });
    // Unaligned: split into bytes, each read on its own.
    expect(machine.mmioRead(v, 0xfe00_1011n, 2).value).toBe(0xadben);
  });

  it('an access that runs into the table reads all-ones (adjacent_handle of its last byte is false)', () => {
    const { machine, v } = dom0Machine();
    expect(machine.mmioRead(v, TABLE - 2n, 4)).toEqual({ path: 'msix-adjacent', value: 0xffff_ffffn });
  });

  it('the PBA: an aligned 8-byte read reaches the device; a 2-byte one reads all-ones', () => {
    const { machine, v } = dom0Machine();
    expect(machine.mmioRead(v, PBA, 8)).toEqual({ path: 'msix-adjacent', value: 0n });
    expect(machine.mmioRead(v, PBA, 2)).toEqual({ path: 'msix-adjacent', value: 0xffffn });
  });

  it('a guest reads the device at the table host address, not at its own guest address (d98df4c531)', () => {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('01:00.0', guest.id);
    const v = guest.vcpus[0]!;
    machine.configWrite(v, '00:00.0', 0x10, 4, 0xe000_0000);
    writeCommand(machine, v, '00:00.0', MEM);
    expect(mfnAt(guest, 0xe0001)).toBeUndefined();
    machine.deviceMemory.write(machine.devices(), 0xfe00_1020n, 4, 0x1234_5678n);
    // get_table: ioremap(round_pgdown(vmsix_table_host_addr)) = 0xfe001000, plus the page offset 0x20.
    expect(machine.mmioRead(v, 0xe000_1020n, 4)).toEqual({ path: 'msix-adjacent', value: 0x1234_5678n });
    // The table through the guest's address is the guest's own vPCI entries.
    machine.mmioWrite(v, 0xe000_1100n, 4, 0xfee0_0000n);
    expect(machine.device('01:00.0').vpci!.msix!.entries[0]!.addr).toBe(0xfee0_0000n);
  });
});

describe('p2m dispatch (hvm_hap_nested_page_fault)', () => {
  it('a page the p2m maps reaches the device directly; a hole no handler takes reads all-ones', () => {
    const { machine, v } = dom0Machine();
    machine.mmioWrite(v, 0xfe00_0010n, 4, 0x55n);
    expect(machine.mmioRead(v, 0xfe00_0010n, 4)).toEqual({ path: 'direct', value: 0x55n });
    expect(machine.mmioRead(v, 0xd000_0000n, 4)).toEqual({ path: 'unhandled', value: 0xffff_ffffn });
  });

  it('a table page left mapped is the device: writes go direct until an entry is bound, then fault into msix_write', () => {
    // Device 0's 32-byte BAR holds its one-entry table and the PBA; device 1's 16-byte BAR shares the
    // page. modify_bars never maps device 0's MSI-X pages; device 1's map does, and device 0's hole
    // punch then fails to remove the entry, which vpci_make_msix_hole ignores.
    let failing = -1; // armed below
    const machine = bootedMachine(
      [
        {
          sbdf: '0000:01:00.0',
          bars: [{ type: 'mem32', size: 0x20n, addr: 0xc000_0000n }],
          msix: { entries: 1, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x10 } },
        },
        { sbdf: '0000:01:01.0', bars: [{ type: 'mem32', size: 0x10n, addr: 0xc000_0020n }] },
      ],
      { hardwareP2m: { failAt: (write) => write === failing || write === failing + 1 } },
    );
    const dom0 = machine.hardwareDomain;
    const v = dom0.vcpus[0]!;
    const msix = machine.device('01:00.0').vpci!.msix!;
    writeCommand(machine, v, '01:00.0', MEM);
    // Through the hole: entry 0 gets an x86 MSI address and is unmasked; MSI-X on binds it
    // (control_write → update_entry; vpci_msi_update accepts 0xfee…).
    machine.mmioWrite(v, 0xc000_0000n, 4, 0xfee0_0000n);
    machine.mmioWrite(v, 0xc000_000cn, 4, 0n);
    machine.configWrite(v, '01:00.0', CTRL, 2, 0x8000);
    expect(msix.entries[0]).toMatchObject({ bound: true, updated: false });
    writeCommand(machine, v, '01:00.0', 0);
    writeCommand(machine, v, '01:01.0', MEM);
    // Device 0 maps nothing itself: its first writes remove the entry, for the table and again for
    // the PBA in the same page; both fail.
    failing = dom0.p2m.writes + 1;
    writeCommand(machine, v, '01:00.0', MEM);
    expect(mfnAt(dom0, 0xc0000)).toBe(0xc0000);
    // The frame is in mmio_ro_ranges (an entry is bound): a write beside the table and the PBA
    // faults into msix_write, whose adjacent_write writes the device through get_table's mapping;
    // reads are direct. (Not the device's own table entry: Xen programs it with the host's message
    // and mask when it binds the entry, which the model does not.)
    expect(machine.mmioWrite(v, 0xc000_0018n, 4, 0x77n).path).toBe('msix-adjacent');
    expect(machine.mmioRead(v, 0xc000_0018n, 4)).toEqual({ path: 'direct', value: 0x77n });
    expect(machine.mmioWrite(v, 0xc000_0008n, 4, 0x4041n).path).toBe('msix-table');
    expect(msix.entries[0]!.data).toBe(0x4041);
    expect(machine.deviceMemory.read(machine.devices(), 0xc000_0008n, 4)).toBe(0n);
    // MSI-X off: the entry is unbound (control_write), the frame leaves mmio_ro_ranges, writes go direct.
    machine.configWrite(v, '01:00.0', CTRL, 2, 0);
    expect(msix.entries[0]).toMatchObject({ bound: false, updated: true });
    expect(machine.mmioWrite(v, 0xc000_0008n, 4, 0x4042n).path).toBe('direct');
    expect(machine.deviceMemory.read(machine.devices(), 0xc000_0008n, 4)).toBe(0x4042n);
    expect(msix.entries[0]!.data).toBe(0x4041);
  });

  it('update_entry with an address that is not an x86 MSI address leaves the entry unbound (EOPNOTSUPP)', () => {
    const { machine, v } = dom0Machine();
    machine.mmioWrite(v, TABLE, 4, 0xfed0_0000n);
    machine.mmioWrite(v, TABLE + 12n, 4, 0n);
    machine.configWrite(v, '01:00.0', CTRL, 2, 0x8000);
    expect(machine.device('01:00.0').vpci!.msix!.entries[0]).toMatchObject({ bound: false, updated: true });
    expect(machine.events).toContainEqual({
      kind: 'msix-entry-failed',
      sbdf: '0000:01:00.0',
      entry: 0,
      addr: 0xfed0_0000n,
    });
  });

  it('checks its arguments: size 1, 2, 4 or 8, inside one page', () => {
    const { machine, v } = dom0Machine();
    expect(() => machine.mmioRead(v, 0xfe00_0ffen, 4)).toThrow(/addr/);
    expect(() => machine.mmioRead(v, 0xfe00_0000n, 3)).toThrow(/size/);
    expect(() => machine.mmioWrite(v, 0xfe00_0000n, 2, 0x1_0000n)).toThrow(/value/);
  });
});
