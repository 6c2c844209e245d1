/**
 * `writeMayChangeDevice` decides from the register dispatch (Xen's `vpci_write`: handlers, and the
 * gaps between them going to the hardware for the hardware domain) whether a write can change what
 * the invariant checks read. The command register's handler maps or unmaps only when decoding flips:
 * Xen's `cmd_write` calls `modify_bars` when `header->bars_mapped != !!(cmd & PCI_COMMAND_MEMORY)`,
 * and otherwise only writes the register through.
 */
import { describe, expect, it } from 'vitest';
import { writeMayChangeDevice } from './device-snapshot.js';
import { Machine } from './machine.js';

function machine(): Machine {
  const m = new Machine();
  for (const sbdf of ['0000:01:00.0', '0000:02:00.0'])
    m.addDevice({
      sbdf,
      command: 0x0002,
      bars: [
        { type: 'mem32', size: 0x4000n, addr: sbdf.startsWith('0000:01') ? 0xc000_0000n : 0xc001_0000n },
      ],
    });
  m.boot();
  m.createGuest({ id: 1 });
  m.assignDevice('0000:02:00.0', 1);
  return m;
}

describe('writeMayChangeDevice (vpci_write dispatch, cmd_write)', () => {
  const m = machine();
  const dom0 = m.vcpu(0, 0);
  const own = m.device('0000:01:00.0');
  const guests = m.device('0000:02:00.0');
  const may = (reg: number, size: number, value: number, device = own, vcpu = dom0) =>
    writeMayChangeDevice(m, vcpu, device, reg, size, value);

  it('a command write that keeps decoding cannot; one that flips it can', () => {
    expect(own.vpci!.barsMapped).toBe(true);
    expect(may(0x04, 2, 0x0406)).toBe(false); // INTx disable, memory kept on
    expect(may(0x04, 2, 0x0000)).toBe(true); // memory off: modify_bars unmaps
    expect(may(0x04, 1, 0x06)).toBe(false); // the low byte, memory kept
    expect(may(0x05, 1, 0x04)).toBe(false); // the high byte: merged with the current low byte
  });

  it('a BAR or ROM register write can; status, interrupt line and cache line size cannot', () => {
    expect(may(0x10, 4, 0xffff_ffff)).toBe(true);
    expect(may(0x30, 4, 0)).toBe(true); // the hardware's ROM register, past vPCI's handlers
    expect(may(0x06, 2, 0xf900)).toBe(false);
    expect(may(0x3c, 1, 5)).toBe(false);
    expect(may(0x0c, 1, 0x10)).toBe(false);
  });

  it("the hardware domain reaches another domain's device's hardware: its BAR registers can change it", () => {
    expect(may(0x10, 4, 0xffff_ffff, guests)).toBe(true);
    expect(may(0x04, 2, 0x0000, guests)).toBe(false); // straight to the hardware, no vPCI handler
  });

  it("a guest's writes go through its own handlers; the rest is dropped", () => {
    const vcpu = m.vcpu(1, 0);
    expect(may(0x10, 4, 0xe000_0000, guests, vcpu)).toBe(true);
    expect(may(0x04, 2, 0x0002, guests, vcpu)).toBe(true); // guests start with decoding off
    expect(may(0x04, 2, 0x0400, guests, vcpu)).toBe(false);
    expect(may(0x3c, 1, 5, guests, vcpu)).toBe(false);
  });
});
