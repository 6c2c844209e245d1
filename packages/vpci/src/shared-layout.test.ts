/**
 * State shared by the devices of one layout (the scale row's cold state, issue 16): register handlers
 * shared by every device of a machine (each gets the device it serves, as Xen's handlers get `pdev`
 * and `reg`: vpci.c `vpci_read`/`vpci_write` call `r->read(pdev, r->offset, r->private)`), and write
 * masks shared by devices described alike, copied before one changes. Sharing must change no answer:
 * each access still reaches only its own device.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine } from '../../../test/support/machine.js';
import { type DeviceSpec, PhysicalDevice } from './hardware.js';
import type { Machine } from './machine.js';
import { PCI_COMMAND, PCI_STATUS } from './pci-regs.js';

const MIB = 1n << 20n;
/** Two devices described alike but for their address and BAR0's place (the bench's kind of device). */
const pair = (kind: 'mem32' | 'mem64'): DeviceSpec[] =>
  [0, 1].map((i) => ({
    sbdf: `0000:0${5 + i}:00.0`,
    bars: [{ type: kind, size: MIB, addr: 0xf000_0000n + BigInt(i) * 16n * MIB }],
    msix: { entries: 4, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x800 } },
  }));

/** Machine with `pair(kind)` passed through to one guest (virtual slots 0 and 1). */
function guestPair(kind: 'mem32' | 'mem64'): { machine: Machine; guestId: number } {
  const machine = bootedMachine(pair(kind));
  const guest = machine.createGuest();
  machine.assignDevice('05:00.0', guest.id);
  machine.assignDevice('06:00.0', guest.id);
  return { machine, guestId: guest.id };
}

describe('register handlers shared by the devices of one layout', () => {
  it('two devices of one layout hold one list of the same handlers (header, capability list, status, MSI-X control)', () => {
    const { machine } = guestPair('mem64');
    const [a, b] = [machine.device('05:00.0').vpci!, machine.device('06:00.0').vpci!];
    // header.c vpci_init_header (guest): command, BAR0 and its high half, BARs 2-5 and ROM read zero;
    // cap.c: the capability pointer, the MSI-X capability's ID and next pointer, the status register;
    // msix.c init_msix: the control register.
    expect(a.registers.list().map((r) => r.offset)).toEqual([
      PCI_COMMAND,
      PCI_STATUS,
      0x10,
      0x14,
      0x18,
      0x1c,
      0x20,
      0x24,
      0x30,
      0x34,
      0x40,
      0x41,
      0x42,
    ]);
    expect(b.registers.list()).toBe(a.registers.list());
  });

  it("a table whose handlers change gets its own list; the others' stay (vpci.c vpci_remove_registers)", () => {
    const { machine, guestId } = guestPair('mem32');
    const v = machine.domain(guestId).vcpus[0]!;
    const [a, b] = [machine.device('05:00.0').vpci!, machine.device('06:00.0').vpci!];
    const before = b.registers.list();
    expect(a.registers.remove(0x42, 2)).toEqual({ ok: true });
    expect(b.registers.list()).toBe(before);
    expect(b.registers.list().some((r) => r.offset === 0x42)).toBe(true);
    expect(a.registers.list().some((r) => r.offset === 0x42)).toBe(false);
    // The guest's write now reaches no handler on 05:00.0 (dropped, reads all-ones), still 06:00.0's.
    machine.configWrite(v, '00:00.0', 0x42, 2, 0x8000);
    machine.configWrite(v, '00:01.0', 0x42, 2, 0x8000);
    expect(machine.configRead(v, '00:00.0', 0x42, 2)).toBe(0xffff);
    expect(machine.configRead(v, '00:01.0', 0x42, 2)).toBe(0x8003);
    expect(a.msix?.enabled).toBe(false);
    expect(b.msix?.enabled).toBe(true);
  });

  it('machines do not share handlers (each holds its own rule set, accessor and events)', () => {
    const one = guestPair('mem32').machine;
    const two = guestPair('mem32').machine;
    const commandOf = (machine: Machine) =>
      machine
        .device('05:00.0')
        .vpci!.registers.list()
        .find((r) => r.offset === PCI_COMMAND);
    expect(commandOf(one)).not.toBe(commandOf(two));
  });

  it("a guest's writes through shared handlers reach only the device written (header.c guest_mem_bar_write, cmd_write)", () => {
    const { machine, guestId } = guestPair('mem64');
    const v = machine.domain(guestId).vcpus[0]!;
    // Slot 0 is 05:00.0, slot 1 is 06:00.0.
    machine.configWrite(v, '00:01.0', 0x10, 4, 0xffff_ffff);
    machine.configWrite(v, '00:01.0', 0x14, 4, 0x12);
    expect(machine.configRead(v, '00:01.0', 0x10, 4)).toBe(0xfff0_0004); // sized: 1 MiB, 64-bit
    expect(machine.configRead(v, '00:01.0', 0x14, 4)).toBe(0x12);
    expect(machine.configRead(v, '00:00.0', 0x10, 4)).toBe(0xf000_0004); // as assigned
    expect(machine.configRead(v, '00:00.0', 0x14, 4)).toBe(0);
    expect(machine.device('06:00.0').vpci!.bars[0]!.guestAddr).toBe(0x12_fff0_0000n);
    expect(machine.device('05:00.0').vpci!.bars[0]!.guestAddr).toBe(0xf000_0000n);
    // guest_cmd_write keeps each guest view apart; the MSI-X control is each device's own state.
    machine.configWrite(v, '00:00.0', PCI_COMMAND, 2, 0x0400);
    expect(machine.configRead(v, '00:00.0', PCI_COMMAND, 2)).toBe(0x0400);
    expect(machine.configRead(v, '00:01.0', PCI_COMMAND, 2)).toBe(0);
    machine.configWrite(v, '00:01.0', 0x42, 2, 0xc000);
    // msix.c control_write turns INTx off for a guest enabling MSI-X: in that device's view only.
    expect(machine.configRead(v, '00:01.0', PCI_COMMAND, 2)).toBe(0x0400);
    expect(machine.device('06:00.0').vpci!.msix).toMatchObject({ enabled: true, masked: true });
    expect(machine.device('05:00.0').vpci!.msix).toMatchObject({ enabled: false, masked: false });
    expect(machine.configRead(v, '00:00.0', 0x42, 2)).toBe(3);
    expect(machine.configRead(v, '00:01.0', 0x42, 2)).toBe(0xc003);
  });

  it("the hardware domain's BAR writes through shared handlers move only the device written (header.c bar_write)", () => {
    const machine = bootedMachine(pair('mem32'));
    const v = machine.hardwareDomain.vcpus[0]!;
    machine.configWrite(v, '05:00.0', 0x10, 4, 0xe000_0000);
    expect(machine.device('05:00.0').vpci!.bars[0]!.addr).toBe(0xe000_0000n);
    expect(machine.device('06:00.0').vpci!.bars[0]!.addr).toBe(0xf100_0000n);
    expect(machine.device('05:00.0').hw.read(0x10, 4)).toBe(0xe000_0000);
    expect(machine.device('06:00.0').hw.read(0x10, 4)).toBe(0xf100_0000);
  });
});

describe('write masks shared by devices described alike', () => {
  const resizable = (sbdf: string): DeviceSpec => ({
    sbdf,
    bars: [{ type: 'mem32', size: MIB, addr: 0xf000_0000n }],
    rebar: [{ bar: 0, sizes: [MIB, 2n * MIB] }],
  });
  /** What sizing BAR0 reads back: all-ones written, the register read, the address put back. */
  const sized = (hw: PhysicalDevice): number => {
    const address = hw.read(0x10, 4);
    hw.write(0x10, 4, 0xffff_ffff);
    const mask = hw.read(0x10, 4);
    hw.write(0x10, 4, address);
    return mask;
  };
  const REBAR_CTRL = 0x100 + 8;

  it('a resize (PCIe ReBAR control) changes the writable bits of that device only', () => {
    const a = PhysicalDevice.fromSpec(resizable('0000:05:00.0'));
    const b = PhysicalDevice.fromSpec(resizable('0000:06:00.0'));
    expect(sized(a)).toBe(0xfff0_0000);
    a.write(REBAR_CTRL, 4, (a.read(REBAR_CTRL, 4) & ~0x3f00) | (1 << 8)); // 2 MiB
    expect(a.barSize(0)).toBe(2n * MIB);
    expect(sized(a)).toBe(0xffe0_0000);
    expect(b.barSize(0)).toBe(MIB);
    expect(sized(b)).toBe(0xfff0_0000);
    // A device described alike later still takes the masks as described.
    expect(sized(PhysicalDevice.fromSpec(resizable('0000:07:00.0')))).toBe(0xfff0_0000);
  });

  it('a copy (to try a write on) and its original resize apart', () => {
    const original = PhysicalDevice.fromSpec(resizable('0000:05:00.0'));
    const copy = original.copy();
    copy.write(REBAR_CTRL, 4, (copy.read(REBAR_CTRL, 4) & ~0x3f00) | (1 << 8));
    expect(sized(copy)).toBe(0xffe0_0000);
    expect(sized(original)).toBe(0xfff0_0000);
    original.write(REBAR_CTRL, 4, (original.read(REBAR_CTRL, 4) & ~0x3f00) | (1 << 8));
    const again = original.copy();
    original.write(REBAR_CTRL, 4, original.read(REBAR_CTRL, 4) & ~0x3f00); // back to 1 MiB
    expect(sized(original)).toBe(0xfff0_0000);
    expect(sized(again)).toBe(0xffe0_0000);
  });
});
