/**
 * The count of changes a whole-machine invariant check reads (state-generation.ts): each source of
 * change, made alone, moves it and the counts of the parts of the check it names (`READ_BY`), no
 * other, and a whole check then looks again where those parts are read; config writes that change
 * nothing a check reads leave it, and the check's answer stands.
 * test/whole-check-reuse.property.test.ts compares reused answers with fresh ones over random traces.
 */
import { type Gfn, gfn, mfn, type Paddr } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import { describe, expect, it } from 'vitest';
import { bootedMachine, writeCommand } from '../../../test/support/machine.js';
import { checkInvariants } from './invariants.js';
import {
  barSetGeneration,
  EVERY_PART,
  partsGeneration,
  READ_BY,
  stateGeneration,
} from './state-generation.js';

const MIB = 1n << 20n;

function machineWithGuest() {
  const machine = bootedMachine([
    {
      sbdf: '00:03.0',
      bars: [{ type: 'mem32', size: MIB, addr: 0xf000_0000n }],
      msix: { entries: 4, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x800 } },
    },
    { sbdf: '00:04.0', bars: [{ type: 'mem32', size: MIB, addr: 0xf010_0000n }] },
  ]);
  const guest = machine.createGuest();
  machine.assignDevice('00:04.0', guest.id);
  const dom0 = machine.hardwareDomain;
  const device = machine.device('00:03.0');
  return { machine, guest, dom0, device, vcpu: dom0.vcpus[0]! };
}

/** `change` moves the count. */
function counted(change: () => void): boolean {
  const before = stateGeneration();
  change();
  return stateGeneration() > before;
}

/** The parts of a whole check (`READ_BY`) whose counts `change` moves. */
function readBy(change: () => void): string[] {
  const parts = Object.entries(READ_BY);
  const before = parts.map(([, bit]) => partsGeneration(bit));
  change();
  return parts.filter(([, bit], i) => partsGeneration(bit) > before[i]!).map(([name]) => name);
}

const EVERY = ['hostPages', 'windows', 'rest'];

describe('the whole-check change count', () => {
  it('moves on every kind of change a whole check reads', () => {
    const { machine, guest, dom0, device } = machineWithGuest();
    const bar = device.vpci!.bars[0]!;
    expect(counted(() => dom0.p2m.setEntry(gfn(0x100), 0, mfn(0x100), 'ram_rw'))).toBe(true);
    expect(counted(() => dom0.p2m.clearEntry(gfn(0x100), 0))).toBe(true);
    expect(counted(() => (bar.enabled = !bar.enabled))).toBe(true);
    expect(counted(() => (bar.guestAddr = (bar.guestAddr + 0x1000n) as Paddr))).toBe(true);
    expect(counted(() => (device.vpci!.barsMapped = !device.vpci!.barsMapped))).toBe(true);
    const state = device.vpci!;
    const msix = state.msix;
    expect(counted(() => (state.msix = undefined))).toBe(true);
    state.msix = msix;
    expect(counted(() => (device.vpci!.withheld = new RangeSet()))).toBe(true);
    expect(counted(() => (device.vpci = undefined))).toBe(true);
    device.vpci = state;
    const owner = device.domain;
    expect(counted(() => (device.domain = undefined))).toBe(true);
    device.domain = owner;
    expect(counted(() => (guest.vcpus[0]!.pending = undefined))).toBe(true);
    // The hardware domain moves a BAR on the device (decoding off: vPCI keeps the address).
    expect(counted(() => device.hw.write(0x10, 4, 0xf020_0000))).toBe(true);
    expect(counted(() => machine.createGuest())).toBe(true);
    expect(
      counted(() =>
        machine.addDevice({ sbdf: '00:05.0', bars: [{ type: 'mem32', size: MIB, addr: 0xf030_0000n }] }),
      ),
    ).toBe(true);
  });

  it('tells each kind of change to the parts of a whole check that read it', () => {
    const { machine, guest, dom0, device } = machineWithGuest();
    const bar = device.vpci!.bars[0]!;
    const state = device.vpci!;
    expect(bar.enabled).toBe(false);
    expect(readBy(() => dom0.p2m.setEntry(gfn(0x100), 0, mfn(0x100), 'ram_rw'))).toEqual(['rest']);
    expect(readBy(() => (bar.guestAddr = (bar.guestAddr + 0x1000n) as Paddr))).toEqual([]);
    expect(readBy(() => (bar.addr = (bar.addr + 0x1000n) as Paddr))).toEqual(['hostPages']);
    expect(readBy(() => device.hw.write(0x10, 4, 0xf020_0000))).toEqual(['hostPages']);
    expect(readBy(() => (bar.size = bar.size * 2n))).toEqual(EVERY);
    expect(readBy(() => (bar.enabled = true))).toEqual(['windows', 'rest']);
    expect(readBy(() => (bar.guestAddr = (bar.guestAddr + 0x1000n) as Paddr))).toEqual(['windows', 'rest']);
    expect(readBy(() => (bar.addr = (bar.addr + 0x1000n) as Paddr))).toEqual(['hostPages', 'windows']);
    expect(readBy(() => (bar.halfWritten = !bar.halfWritten))).toEqual(['rest']);
    expect(readBy(() => (state.barsMapped = !state.barsMapped))).toEqual(['rest']);
    const msix = state.msix;
    expect(readBy(() => (state.msix = undefined))).toEqual(['windows']);
    state.msix = msix;
    expect(readBy(() => (state.withheld = new RangeSet()))).toEqual(['rest']);
    expect(readBy(() => (guest.vcpus[0]!.pending = undefined))).toEqual(['rest']);
    expect(readBy(() => (device.vpci = undefined))).toEqual(EVERY);
    device.vpci = state;
    const owner = device.domain;
    expect(readBy(() => (device.domain = undefined))).toEqual(EVERY);
    device.domain = owner;
    expect(readBy(() => machine.createGuest())).toEqual(EVERY);
  });

  it("a BAR's host address set while it is not enabled makes the sharing check look again, and nothing else", () => {
    const { machine, guest, device } = machineWithGuest();
    // A guest mapping a machine frame directly (no BAR of its own explains it) …
    guest.p2m.setEntry(gfn(0x5000), 0, mfn(0xf0500), 'mmio_direct');
    checkInvariants(machine);
    const before = checkInvariants(machine);
    expect(before.map((v) => v.kind)).toEqual(['unexplained-mapping']);
    // … where the hardware domain's BAR (decoding off) is now placed by vPCI: the guest maps a host
    // page holding another domain's BAR.
    const bar = device.vpci!.bars[0]!;
    const rest = partsGeneration(READ_BY.windows | READ_BY.rest);
    bar.addr = 0xf050_0000n as Paddr;
    expect(partsGeneration(READ_BY.windows | READ_BY.rest)).toBe(rest);
    expect(checkInvariants(machine).map((v) => v.kind)).toEqual(['subpage-shared', 'unexplained-mapping']);
  });

  it("an enabled BAR's host address set makes the mapping checks look again", () => {
    const { machine, device, vcpu } = machineWithGuest();
    writeCommand(machine, vcpu, device.name, 0x2);
    checkInvariants(machine);
    expect(checkInvariants(machine)).toEqual([]);
    // Its pages now map machine frames the BAR no longer has.
    const bar = device.vpci!.bars[0]!;
    bar.addr = (bar.addr + MIB) as Paddr;
    expect(checkInvariants(machine).map((v) => v.kind)).toContain('wrong-mfn');
  });

  it("a device's MSI-X state set makes the whole check list its domain's MSI-X pages again", () => {
    const { machine, dom0, device, vcpu } = machineWithGuest();
    writeCommand(machine, vcpu, device.name, 0x2);
    // The page of the MSI-X table and PBA (offsets 0 and 0x800) mapped while the device decodes memory.
    const table = device.vpci!.bars[0]!.guestFrames()[0];
    dom0.p2m.setEntry(gfn(table), 0, mfn(table), 'mmio_direct');
    checkInvariants(machine);
    expect(checkInvariants(machine).map((v) => v.kind)).toEqual(['msix-mapped', 'msix-mapped']);
    // Without MSI-X the page is one the BAR needs, mapped as it asks.
    device.vpci!.msix = undefined;
    expect(checkInvariants(machine)).toEqual([]);
  });

  it("an enabled BAR's half-written flag set alone makes the BAR loop look again", () => {
    const { machine, device, vcpu } = machineWithGuest();
    writeCommand(machine, vcpu, device.name, 0x2);
    checkInvariants(machine);
    expect(checkInvariants(machine)).toEqual([]);
    device.vpci!.bars[0]!.halfWritten = true;
    expect(checkInvariants(machine).map((v) => v.kind)).toEqual(['probe-mapped']);
  });

  it("stands over a running driver's writes, and the whole check's answer with it", () => {
    const { machine, device, vcpu } = machineWithGuest();
    const first = checkInvariants(machine);
    const answered = machine.invariantCaches.lastWhole;
    expect(answered).toBeDefined();
    // Interrupt line, status (RW1C), MSI-X Function Mask, INTx disable with decoding kept as it is.
    const cmd = machine.configRead(vcpu, device.name, 0x04, 2);
    expect(
      counted(() => {
        machine.configWrite(vcpu, device.name, 0x3c, 1, 5);
        machine.configWrite(vcpu, device.name, 0x06, 2, 0xf900);
        machine.configWrite(vcpu, device.name, 0x42, 2, 0xc000);
        machine.configWrite(vcpu, device.name, 0x04, 2, cmd | 0x400);
      }),
    ).toBe(false);
    expect(checkInvariants(machine)).toEqual(first);
    expect(machine.invariantCaches.lastWhole).toBe(answered);
  });

  it("a BAR's guest address set while it is not enabled is read as work in flight, as it is", () => {
    const { machine, dom0, device, vcpu } = machineWithGuest();
    const bar = device.vpci!.bars[0]!;
    expect(bar.enabled).toBe(false);
    const parts = partsGeneration(EVERY_PART);
    expect(counted(() => (bar.guestAddr = (bar.guestAddr + 0x1000n) as Paddr))).toBe(true);
    expect(partsGeneration(EVERY_PART)).toBe(parts);
    // A mapping on the BAR's first frame, while a map of the device is pending: work in flight.
    const page = bar.guestFrames()[0];
    dom0.p2m.setEntry(gfn(page), 0, mfn(page), 'mmio_direct');
    vcpu.pending = { device, cmd: 0x2, romOnly: false, done: new Map() };
    expect(checkInvariants(machine)).toEqual([]);
    // The BAR placed elsewhere, no part's count moved: the frame is no longer in flight, and
    // nothing explains its mapping.
    const pending = partsGeneration(EVERY_PART);
    bar.guestAddr = (bar.guestAddr + 0x1000_0000n) as Paddr;
    expect(partsGeneration(EVERY_PART)).toBe(pending);
    expect(checkInvariants(machine).map((v) => v.kind)).toEqual(['unexplained-mapping']);
  });

  it("every change to a BAR's set moves the sets' count, and the whole check looks at the sets again", () => {
    const { machine, device } = machineWithGuest();
    const mem = device.vpci!.bars[0]!.mem!;
    const other = new RangeSet<Gfn>();
    const changes: [string, () => unknown][] = [
      ['addRange', () => mem.addRange(gfn(0x10), gfn(0x11))],
      ['removeRange', () => mem.removeRange(gfn(0x11), gfn(0x11))],
      ['addSingleton', () => mem.addSingleton(gfn(0x20))],
      ['removeSingleton', () => mem.removeSingleton(gfn(0x20))],
      ['claimRange', () => mem.claimRange(1)],
      ['merge', () => mem.merge(other)],
      ['subtract', () => mem.subtract(other)],
      ['swap', () => mem.swap(other)],
      ['consumeRanges', () => mem.consumeRanges((s, e) => ({ consumed: e - s + 1, next: 'continue' }))],
      ['purge', () => mem.purge()],
    ];
    for (const [name, change] of changes) {
      const before = barSetGeneration();
      change();
      expect(barSetGeneration(), name).toBeGreaterThan(before);
    }
    // Twice: the first check decodes the BAR registers written at boot, which counts as a change.
    checkInvariants(machine);
    expect(checkInvariants(machine).filter((v) => v.kind === 'rangeset-not-empty')).toEqual([]);
    // Filled with nothing pending, and nothing else changed: Xen's G1 left-over set.
    const generation = stateGeneration();
    mem.addRange(gfn(0x30), gfn(0x31));
    expect(stateGeneration()).toBe(generation);
    expect(checkInvariants(machine).map((v) => v.kind)).toEqual(['rangeset-not-empty']);
  });

  it('a p2m write alone, then pending work alone, make the whole check look again', () => {
    const { machine, dom0, device, vcpu } = machineWithGuest();
    writeCommand(machine, vcpu, device.name, 0x2);
    expect(checkInvariants(machine)).toEqual([]);
    // RAM over a page of the mapped BAR (past its MSI-X pages): the BAR's page is not mapped.
    const page = device.vpci!.bars[0]!.guestFrames()[0] + 4;
    dom0.p2m.setEntry(gfn(page), 0, mfn(0x1234), 'ram_rw');
    expect(checkInvariants(machine).map((v) => v.kind)).toEqual(['page-unmapped']);
    // Work pending on the device: its BARs may be half done, so their pages are not checked.
    vcpu.pending = { device, cmd: 0x2, romOnly: false, done: new Map() };
    expect(checkInvariants(machine)).toEqual([]);
  });
});
