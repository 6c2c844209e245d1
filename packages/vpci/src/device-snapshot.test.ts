/**
 * `writeMayChangeDevice` decides from the register dispatch (Xen's `vpci_write`: handlers, and the
 * gaps between them going to the hardware for the hardware domain) whether a write can change what
 * the invariant checks read. The command register's handler maps or unmaps only when decoding flips:
 * Xen's `cmd_write` calls `modify_bars` when `header->bars_mapped != !!(cmd & PCI_COMMAND_MEMORY)`,
 * and otherwise only writes the register through.
 */
import { gfn, mfn } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { DeviceSnapshot, type FrameRange, writeMayChangeDevice } from './device-snapshot.js';
import type { PciDevice } from './domain.js';
import { checkInvariants } from './invariants.js';
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

describe('DeviceSnapshot.leftUnmappedFindsNothing (vpci_process_pending with decoding off)', () => {
  /**
   * The hardware domain's 01:00.0 mapped (decoding on at boot), its domain's window index kept (a
   * scoped check made it), snapshotted, then decoding turned off and the unmap finished: Xen's
   * `vpci_process_pending` removes `bar->mem` from the p2m and `modify_decoding` disables the BAR.
   */
  function unmapped(prepare?: (m: Machine) => void): {
    m: Machine;
    own: PciDevice;
    snapshot: DeviceSnapshot;
    before: string[];
  } {
    const m = machine();
    prepare?.(m);
    const own = m.device('0000:01:00.0');
    const dom0 = m.hardwareDomain;
    // The whole check first: it drops the scoped checks' indexes, which the scoped check makes again.
    const before = checkInvariants(m).map((v) => JSON.stringify(v));
    const frames = own.vpci!.bars[0]!.guestFrames();
    checkInvariants(m, { devices: new Set([own]), frames: new Map([[dom0, [frames]]]) });
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, own);
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0000);
    m.finishPending(m.vcpu(0, 0));
    expect(own.vpci!.bars[0]!.enabled).toBe(false);
    expect(snapshot.change(m)).toBe('frames');
    return { m, own, snapshot, before };
  }

  /** What the whole check finds now that it did not find before the line. */
  const found = (m: Machine, before: readonly string[]): string[] =>
    checkInvariants(m)
      .map((v) => JSON.stringify(v))
      .filter((v) => !before.includes(v));

  it('nothing mapped where the BAR was and no other BAR there: nothing to find', () => {
    const { m, snapshot, before } = unmapped();
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(true);
    expect(found(m, before)).toEqual([]);
  });

  it("an MMIO mapping left on the BAR's frames (another machine frame): checked", () => {
    // Not the device's own host page, so no domain maps MMIO on its pages: only the search of the
    // p2m on its frames sees it. A whole check finds the mapping unexplained (no enabled BAR there).
    const { m, snapshot, before } = unmapped();
    m.hardwareDomain.p2m.setEntry(gfn(0xc0001), 0, mfn(0xd0000), 'mmio_direct');
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(false);
    expect(found(m, before).map((v) => JSON.parse(v).kind)).toEqual(['unexplained-mapping']);
  });

  it('another domain mapping a host page the device has had since the snapshot: nothing new', () => {
    // Guest 1 maps 01:00.0's first host page (a hardware domain's device) before the line: a whole
    // check found the page shared then, and finds it the same after the unmap (the same page of the
    // same owner, mapped by the same extent), so the pages the device had at the snapshot are not
    // asked about.
    const { m, snapshot, before } = unmapped((m) =>
      m.domain(1).p2m.setEntry(gfn(0x80000), 0, mfn(0xc0000), 'mmio_direct'),
    );
    expect(before.map((v) => JSON.parse(v).kind)).toContain('subpage-shared');
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(true);
    expect(found(m, before)).toEqual([]);
  });

  it('another domain mapping a host page the device moved onto in the line: checked', () => {
    // The hardware domain places 01:00.0's BAR (decoding off: the unmap finished) on host frame
    // 0xd0000, which guest 1 maps: a whole check finds the page newly shared; only the search of who
    // maps the device's host pages new since the snapshot sees it, as nothing is mapped on the
    // device's guest frames in the hardware domain.
    const { m, snapshot, before } = unmapped((m) =>
      m.domain(1).p2m.setEntry(gfn(0x80000), 0, mfn(0xd0000), 'mmio_direct'),
    );
    // Asked before the move too: the answer then (remembered while no MMIO mapping changes) must
    // not stand after it.
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(true);
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x10, 4, 0xd000_0000);
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(false);
    expect(found(m, before).map((v) => JSON.parse(v).kind)).toContain('subpage-shared');
  });

  it("another device's enabled BAR on the device's frames, its pages unmapped: checked", () => {
    // 03:00.0 decodes the same host frames (a hardware domain's BARs over each other): its window
    // covers 01:00.0's frames. Its pages there cleared (as a failed map would leave them), a whole
    // check finds them unmapped; only the search of the domain's windows sees it, as nothing is
    // mapped there and no domain maps 01:00.0's host pages.
    const m = new Machine();
    for (const sbdf of ['0000:01:00.0', '0000:03:00.0'])
      m.addDevice({ sbdf, command: 0x0002, bars: [{ type: 'mem32', size: 0x4000n, addr: 0xc000_0000n }] });
    m.boot();
    const own = m.device('0000:01:00.0');
    const other = m.device('0000:03:00.0');
    const dom0 = m.hardwareDomain;
    const before = checkInvariants(m).map((v) => JSON.stringify(v));
    checkInvariants(m, {
      devices: new Set([own, other]),
      frames: new Map([[dom0, [own.vpci!.bars[0]!.guestFrames()]]]),
    });
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, own);
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0000);
    m.finishPending(m.vcpu(0, 0));
    for (let frame = 0xc0000; frame <= 0xc0003; frame++) dom0.p2m.clearEntry(gfn(frame), 0);
    expect(other.vpci!.bars[0]!.enabled).toBe(true);
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(false);
    expect(found(m, before).map((v) => JSON.parse(v).kind)).toContain('page-unmapped');
  });

  it("another device's BAR placed on the device's frames since an earlier unmap: checked", () => {
    // That no other device's window is on 01:00.0's frames, found at its first unmap, stands only
    // while the domain's index has no window put or dropped: 03:00.0 then placed over those frames
    // (a scoped check naming it puts its window there), the next unmap must see it. Its pages there
    // cleared (as a failed map would leave them), a whole check finds them unmapped; nothing is
    // mapped there and no host page moved, so only the search of the domain's windows sees it.
    const m = new Machine();
    for (const [sbdf, addr] of [
      ['0000:01:00.0', 0xc000_0000n],
      ['0000:03:00.0', 0xc100_0000n],
    ] as const)
      m.addDevice({ sbdf, command: 0x0002, bars: [{ type: 'mem32', size: 0x4000n, addr }] });
    m.boot();
    const own = m.device('0000:01:00.0');
    const other = m.device('0000:03:00.0');
    const dom0 = m.hardwareDomain;
    const vcpu = m.vcpu(0, 0);
    const frames = own.vpci!.bars[0]!.guestFrames();
    const scoped = () =>
      checkInvariants(m, { devices: new Set([own, other]), frames: new Map([[dom0, [frames]]]) });
    const command = (sbdf: string, value: number) => {
      m.configWrite(vcpu, sbdf, 0x04, 2, value);
      m.finishPending(vcpu);
    };
    scoped();
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, own);
    command('0000:01:00.0', 0x0000);
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(true);
    command('0000:01:00.0', 0x0002);
    command('0000:03:00.0', 0x0000);
    m.configWrite(vcpu, '0000:03:00.0', 0x10, 4, 0xc000_0000);
    command('0000:03:00.0', 0x0002);
    scoped();
    snapshot.take(m, own);
    command('0000:01:00.0', 0x0000);
    expect(snapshot.change(m)).toBe('frames');
    for (let frame = 0xc0000; frame <= 0xc0003; frame++) dom0.p2m.clearEntry(gfn(frame), 0);
    expect(other.vpci!.bars[0]!.enabled).toBe(true);
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(false);
    expect(checkInvariants(m).map((v) => v.kind)).toContain('page-unmapped');
  });

  it('the BAR enabled again, or work pending on the device: checked', () => {
    const { m, own, snapshot } = unmapped();
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0002);
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(false); // a map pending
    m.finishPending(m.vcpu(0, 0));
    expect(own.vpci!.bars[0]!.enabled).toBe(true);
    expect(snapshot.leftUnmappedFindsNothing(m)).toBe(false);
  });
});

describe('DeviceSnapshot.leftMappedFindsNothing (vpci_process_pending with decoding on)', () => {
  /**
   * The hardware domain's 01:00.0 (16 KiB at 0xc0000000) and 03:00.0 (16 KiB at 0xc1000000, its MSI-X
   * table and PBA on its last two pages), decoding at boot, the scoped checks' indexes made; `prepare`
   * runs with 01:00.0's decoding off, and `unchecked` after the indexes are made (on lines no check
   * followed); then 01:00.0 is snapshotted, decoding turned on and the map finished (Xen's
   * `vpci_process_pending` maps `bar->mem`, `modify_decoding` enables the BAR).
   */
  function mapped(
    prepare?: (m: Machine, command: (sbdf: string, value: number) => void) => void,
    unchecked?: (m: Machine) => void,
  ): {
    m: Machine;
    own: PciDevice;
    other: PciDevice;
    snapshot: DeviceSnapshot;
    before: string[];
  } {
    const m = new Machine();
    m.addDevice({
      sbdf: '0000:01:00.0',
      command: 0x0002,
      bars: [{ type: 'mem32', size: 0x4000n, addr: 0xc000_0000n }],
    });
    m.addDevice({
      sbdf: '0000:03:00.0',
      command: 0x0002,
      bars: [{ type: 'mem32', size: 0x4000n, addr: 0xc100_0000n }],
      msix: { entries: 4, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
    });
    m.boot();
    const own = m.device('0000:01:00.0');
    const other = m.device('0000:03:00.0');
    const dom0 = m.hardwareDomain;
    const vcpu = m.vcpu(0, 0);
    const command = (sbdf: string, value: number) => {
      m.configWrite(vcpu, sbdf, 0x04, 2, value);
      m.finishPending(vcpu);
    };
    const scoped = () =>
      checkInvariants(m, {
        devices: new Set([own, other]),
        frames: new Map([[dom0, [own.vpci!.bars[0]!.guestFrames(), other.vpci!.bars[0]!.guestFrames()]]]),
      });
    command('0000:01:00.0', 0x0000);
    prepare?.(m, command);
    // The whole check first: it drops the scoped checks' indexes, which the scoped check makes again.
    const before = checkInvariants(m).map((v) => JSON.stringify(v));
    scoped();
    unchecked?.(m);
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, own);
    command('0000:01:00.0', 0x0002);
    expect(own.vpci!.bars[0]!.enabled).toBe(true);
    expect(snapshot.change(m)).toBe('frames');
    return { m, own, other, snapshot, before };
  }

  /** What the whole check finds now that it did not find before the line. */
  const found = (m: Machine, before: readonly string[]): string[] =>
    checkInvariants(m)
      .map((v) => JSON.stringify(v))
      .filter((v) => !before.includes(v));

  it('mapped as its BAR asks where no other BAR is: nothing to find', () => {
    const { m, snapshot, before } = mapped();
    expect(snapshot.leftMappedFindsNothing(m, [])).toBe(true);
    expect(found(m, before)).toEqual([]);
  });

  it('a mapping left beside the BAR, or a leftover frame in its set: checked', () => {
    const { m, own, snapshot } = mapped();
    m.hardwareDomain.p2m.setEntry(gfn(0xc0004), 0, mfn(0xd0000), 'mmio_direct');
    expect(snapshot.leftMappedFindsNothing(m, [])).toBe(false);
    m.hardwareDomain.p2m.clearEntry(gfn(0xc0004), 0);
    own.vpci!.bars[0]!.mem!.addRange(gfn(0xc0000), gfn(0xc0000));
    expect(snapshot.leftMappedFindsNothing(m, [])).toBe(false);
  });

  it('its host pages moved since the last check, onto a page another domain maps: checked, and the check sees them', () => {
    // The hardware domain places 01:00.0's BAR (decoding off) on host frames 0xc2000–0xc2003, on a
    // line no check followed, and guest 1 maps 0xc2000 (as a toolstack's mapping would): the page is
    // shared with the hardware domain's device. Bringing the host-page index up to date finds the
    // device's pages moved, which the check made instead must see (its scope's host frames where
    // pages moved): the moves are handed back to it.
    const { m, own, snapshot } = mapped(
      (m) => m.createGuest({ id: 1 }),
      (m) => {
        m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x10, 4, 0xc200_0000);
        m.domain(1).p2m.setEntry(gfn(0x80000), 0, mfn(0xc2000), 'mmio_direct');
      },
    );
    expect(snapshot.leftMappedFindsNothing(m, [])).toBe(false);
    const guest: FrameRange[] = [];
    const host: FrameRange[] = [];
    snapshot.scopeFrames(m, guest, host);
    const scoped = checkInvariants(m, {
      devices: new Set([own]),
      frames: new Map([[m.hardwareDomain, guest]]),
      hostFrames: host,
    });
    expect(scoped.map((v) => v.kind)).toContain('subpage-shared');
  });

  it('the devices named since brought up to date in both indexes: none needs naming to the next check', () => {
    // 03:00.0's unmap finished on a line no check followed: the window index keeps its window until
    // the next check names it (`defer`). 01:00.0's map, answered with 03:00.0 named, does what that
    // check would: the index holds 03:00.0 as it is (no window), so the replayer names neither again.
    const other = new DeviceSnapshot();
    const { m, snapshot } = mapped(undefined, (m) => {
      other.take(m, m.device('0000:03:00.0'));
      m.configWrite(m.vcpu(0, 0), '0000:03:00.0', 0x04, 2, 0x0000);
      m.finishPending(m.vcpu(0, 0));
      expect(other.change(m)).toBe('frames');
      expect(other.leftUnmappedFindsNothing(m)).toBe(true);
    });
    const indexes = m.invariantCaches.windowIndexes;
    const unmappedDevice = m.device('0000:03:00.0');
    expect(indexes.awaitsUpdate(unmappedDevice)).toBe(true);
    expect(snapshot.leftMappedFindsNothing(m, [unmappedDevice])).toBe(true);
    expect(indexes.awaitsUpdate(unmappedDevice)).toBe(false);
    const [first, last] = unmappedDevice.vpci!.bars[0]!.guestFrames();
    expect(indexes.kept(m.hardwareDomain)!.windowsMeeting(first, last)).toEqual([]);
  });

  it("two devices' maps finished on one line: what moved since the last check reaches the second answer", () => {
    // 03:00.0 placed (decoding off) on host frames 0xc2000–0xc2003 on a line no check followed, and
    // guest 1 maps 0xc2000. One line then finishes 01:00.0's map and 03:00.0's: the first answer
    // brings the host-page index up to date and finds 03:00.0's pages moved, not its own; the second
    // must still see them (they meet its pages), so it answers false and its check looks there.
    const { m, own, other } = mapped(
      (m, command) => {
        m.createGuest({ id: 1 });
        command('0000:03:00.0', 0x0000);
      },
      (m) => {
        m.configWrite(m.vcpu(0, 0), '0000:03:00.0', 0x10, 4, 0xc200_0000);
        m.domain(1).p2m.setEntry(gfn(0x80000), 0, mfn(0xc2000), 'mmio_direct');
      },
    );
    const first = new DeviceSnapshot();
    const second = new DeviceSnapshot();
    // 01:00.0's map is already finished (`mapped`): snapshotted as it is, as a line changing nothing
    // of it would be; 03:00.0's map is finished in the line.
    first.take(m, own);
    second.take(m, other);
    m.configWrite(m.vcpu(0, 0), '0000:03:00.0', 0x04, 2, 0x0002);
    m.finishPending(m.vcpu(0, 0));
    expect(second.change(m)).toBe('frames');
    expect(first.leftMappedFindsNothing(m, [], true)).toBe(true);
    expect(second.leftMappedFindsNothing(m, [], false)).toBe(false);
  });
});

describe('DeviceSnapshot.scopeFrames (the guest frames a scoped check looks at)', () => {
  /** The union of `ranges`, frame by frame (a few pages). */
  const union = (ranges: readonly (readonly [number, number])[]): number[] => {
    const frames = new Set<number>();
    for (const [first, last] of ranges) for (let f = first; f <= last; f++) frames.add(f);
    return [...frames].sort((a, b) => a - b);
  };
  const pages = (first: number, count: number): number[] =>
    Array.from({ length: count }, (_, i) => first + i);

  it('a BAR moved since the snapshot: its frames where it was and where it is (bar_write, decoding off)', () => {
    const m = machine();
    const own = m.device('0000:01:00.0');
    // Decoding off and the unmap finished (vpci_process_pending), so the hardware domain may move BAR0.
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0000);
    m.finishPending(m.vcpu(0, 0));
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, own);
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x10, 4, 0xd000_0000);
    const guest: (readonly [number, number])[] = [];
    snapshot.scopeFrames(m, guest, []);
    expect(union(guest)).toEqual([...pages(0xc0000, 4), ...pages(0xd0000, 4)]);
  });

  it("a BAR where it was: listed once, not once for the snapshot and again for now (vpci_process_pending's map)", () => {
    const m = machine();
    const own = m.device('0000:01:00.0');
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0000);
    m.finishPending(m.vcpu(0, 0));
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0002);
    // The map is pending: its set holds the BAR's frames, within the BAR's, so not listed apart.
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, own);
    m.finishPending(m.vcpu(0, 0));
    expect(snapshot.change(m)).toBe('frames');
    const guest: (readonly [number, number])[] = [];
    snapshot.scopeFrames(m, guest, []);
    expect(guest).toEqual([[0xc0000, 0xc0003]]);
  });
});

describe('DeviceSnapshot.change: a guest moving its BAR (guest_bar_write, the BAR not enabled)', () => {
  /**
   * Domain 1 with two vCPUs and 02:00.0, at its virtual address. A BAR's guest frames excuse the
   * mappings in flight while work is pending on its device (so their moving is looked at with every
   * check, `frames`), and nothing while the BAR is not enabled and no work is pending (no check reads
   * them: `none`).
   */
  function guest(): {
    m: Machine;
    device: PciDevice;
    write: (vcpu: number, reg: number, value: number) => void;
  } {
    const m = new Machine();
    m.addDevice({ sbdf: '0000:02:00.0', bars: [{ type: 'mem32', size: 0x4000n, addr: 0xc001_0000n }] });
    m.boot();
    m.createGuest({ id: 1, vcpus: 2 });
    m.assignDevice('0000:02:00.0', 1);
    const device = m.device('0000:02:00.0');
    const at = device.vpci!.guestSbdf!;
    return { m, device, write: (vcpu, reg, value) => m.configWrite(m.vcpu(1, vcpu), at, reg, 4, value) };
  }

  it('while the map decoding on left is pending (another vCPU writes it): frames', () => {
    const { m, device, write } = guest();
    write(0, 0x10, 0xe000_0000);
    write(0, 0x04, 0x0002); // decoding on: modify_bars defers the map to vCPU 0
    expect(m.vcpu(1, 0).pending).toBeDefined();
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, device);
    write(1, 0x10, 0xe010_0000);
    expect(device.vpci!.bars[0]!.guestAddr).toBe(0xe010_0000n);
    expect(snapshot.change(m)).toBe('frames');
  });

  it('with decoding off and no work pending: none', () => {
    const { m, device, write } = guest();
    write(0, 0x10, 0xe000_0000);
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, device);
    write(0, 0x10, 0xe010_0000);
    expect(device.vpci!.bars[0]!.guestAddr).toBe(0xe010_0000n);
    expect(snapshot.change(m)).toBe('none');
  });
});

describe("DeviceSnapshot.takeAgain: the take's record with what change found different written over it", () => {
  /**
   * The hardware domain's 01:00.0 with decoding off and the unmap finished, one frame left in BAR 0's
   * set (as an unmap that failed part-way leaves it: a `rangeset-not-empty` violation), snapshotted.
   * Kept in `verify` mode: the record `takeAgain` keeps is compared with one made afresh.
   */
  function leftover(): { m: Machine; own: PciDevice; snapshot: DeviceSnapshot } {
    const m = machine();
    const own = m.device('0000:01:00.0');
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0000);
    m.finishPending(m.vcpu(0, 0));
    own.vpci!.bars[0]!.mem!.addRange(gfn(0xc0000), gfn(0xc0000));
    m.invariantCaches.snapshotReuse = 'verify';
    const snapshot = new DeviceSnapshot();
    snapshot.take(m, own);
    return { m, own, snapshot };
  }

  it('the BAR moved: kept, and equal to the device afterwards', () => {
    const { m, snapshot } = leftover();
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x10, 4, 0xd000_0000);
    expect(snapshot.change(m)).toBe('host');
    expect(snapshot.takeAgain(m)).toBe(true);
    expect(snapshot.change(m)).toBe('none');
  });

  it("the set's frame moved, as many ranges as before: kept, and equal to the device afterwards", () => {
    const { m, own, snapshot } = leftover();
    const set = own.vpci!.bars[0]!.mem!;
    set.removeRange(gfn(0xc0000), gfn(0xc0000));
    set.addRange(gfn(0xc0002), gfn(0xc0002));
    expect(snapshot.change(m)).toBe('host');
    expect(snapshot.takeAgain(m)).toBe(true);
    expect(snapshot.change(m)).toBe('none');
  });

  it('the set grew by a range: recorded afresh', () => {
    const { m, own, snapshot } = leftover();
    own.vpci!.bars[0]!.mem!.addRange(gfn(0xc0002), gfn(0xc0002));
    expect(snapshot.change(m)).toBe('host');
    expect(snapshot.takeAgain(m)).toBe(false);
  });
});
