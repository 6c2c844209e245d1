/**
 * `HostPagesCache.hostPagesOf` keeps a device's host pages until something `hostBarFrames` reads can
 * have moved them: the hardware's BAR registers (`barWrites`), or a vPCI BAR's type, host address or
 * size (`VpciState.barHostChanges`). Not its enabled flag or guest address: Xen's `map_range`
 * (xen/drivers/vpci/header.c) maps `PFN_DOWN(bar->addr)` onwards whatever the guest address, and
 * `modify_decoding` flips `bar->enabled` on every map and unmap that finishes, neither touching the host
 * frames. Each input is changed alone here, so a key that left it out keeps stale pages and fails.
 */
import { describe, expect, it } from 'vitest';
import { type Bar, barAddress } from './device.js';
import { Machine } from './machine.js';
import { hostBarFrames } from './ownership.js';
import { PCI_SRIOV_BAR, PCI_SRIOV_CTRL, PCI_SRIOV_CTRL_VFE } from './pci-regs.js';

const HOST = 0xc000_0000n;

/** A device given to a guest, its BAR 0 (16 KiB) at `HOST` on the hardware. */
function guestDevice() {
  const m = new Machine();
  m.addDevice({
    sbdf: '0000:01:00.0',
    command: 0x0002,
    bars: [{ type: 'mem32', size: 0x4000n, addr: HOST }],
  });
  m.boot();
  m.createGuest({ id: 1 });
  m.assignDevice('0000:01:00.0', 1);
  const device = m.device('0000:01:00.0');
  return {
    m,
    device,
    bar: device.vpci!.bars[0]!,
    pagesOf: () => m.invariantCaches.hostPages.hostPagesOf(device),
  };
}

describe('HostPagesCache.hostPagesOf: every input of hostBarFrames moves the key', () => {
  it('a vPCI BAR host address set alone (modify_bars maps from PFN_DOWN(bar->addr))', () => {
    const { device, bar, pagesOf } = guestDevice();
    expect(pagesOf()).toEqual(hostBarFrames(device));
    bar.addr = barAddress(HOST + 0x10_0000n);
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toContainEqual([0xc0100, 0xc0103]);
  });

  it('a vPCI BAR size set alone (a resizable BAR: rebar_ctrl_write sets bar->size)', () => {
    const { device, bar, pagesOf } = guestDevice();
    bar.addr = barAddress(HOST + 0x10_0000n);
    expect(pagesOf()).toEqual(hostBarFrames(device));
    bar.size = 0x8000n;
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toContainEqual([0xc0100, 0xc0107]);
  });

  it('a vPCI BAR type set alone (no longer a memory BAR: left out of the pages)', () => {
    const { device, bar, pagesOf } = guestDevice();
    bar.addr = barAddress(HOST + 0x10_0000n);
    expect(pagesOf()).toHaveLength(2);
    bar.type = 'io';
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toEqual([[0xc0000, 0xc0003]]);
  });

  it("the hardware's BAR register written alone (the hardware domain moving it, past vPCI)", () => {
    const { device, pagesOf } = guestDevice();
    expect(pagesOf()).toEqual(hostBarFrames(device));
    device.hw.write(0x10, 4, 0xd000_0000);
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toContainEqual([0xd0000, 0xd0003]);
  });

  it('the vPCI state replaced or dropped (a device deassigned: its guest vPCI state goes with it)', () => {
    const { m, device, bar, pagesOf } = guestDevice();
    bar.addr = barAddress(HOST + 0x10_0000n);
    expect(pagesOf()).toHaveLength(2);
    m.deassignDevice('0000:01:00.0');
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toEqual([[0xc0000, 0xc0003]]);
  });

  it('a new vPCI state whose BARs were set as often as the old one (the state itself is in the key)', () => {
    const { m, device, bar, pagesOf } = guestDevice();
    bar.addr = barAddress(HOST + 0x10_0000n);
    const old = device.vpci!.barHostChanges();
    expect(pagesOf()).toHaveLength(2);
    const writes = device.hw.barWrites;
    m.deassignDevice('0000:01:00.0');
    m.assignDevice('0000:01:00.0', 1);
    // The set-up sizes the BARs (register writes, which alone would move the key): the count is put
    // back, so only the state itself tells the old pages from the new ones here.
    device.hw.barWrites = writes;
    // The new state's BAR 0 set once more, where the hardware has it: its count is the old state's.
    const again = device.vpci!.bars[0]!;
    expect(again).not.toBe(bar);
    again.addr = barAddress(HOST);
    expect(device.vpci!.barHostChanges()).toBe(old);
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toEqual([[0xc0000, 0xc0003]]);
  });

  it('the enabled flag and the guest address leave the pages as they were, the same array', () => {
    const { device, bar, pagesOf } = guestDevice();
    const pages = pagesOf();
    const changes = device.vpci!.barChanges();
    const hostChanges = device.vpci!.barHostChanges();
    bar.enabled = !bar.enabled;
    bar.guestAddr = barAddress(0xe000_0000n);
    bar.halfWritten = false;
    expect(device.vpci!.barChanges()).toBe(changes + 3);
    expect(device.vpci!.barHostChanges()).toBe(hostChanges);
    expect(pagesOf()).toBe(pages);
    expect(pages).toEqual(hostBarFrames(device));
  });
});

/**
 * A device whose BARs were worked out again keeps the pages of their last states (`BarStates`): the
 * decoded `Bar`s (one per slot and register words, kept by the device) and the host address and size
 * of each vPCI BAR listed. Here the hardware's BAR 0 moves and comes back, so the pages of the state
 * it came back to are kept; then one vPCI input alone moves, the decoded `Bar`s the same objects as in
 * that state: a key that left the input out gives the kept pages, and fails.
 */
describe('HostPagesCache.hostPagesOf: a state of the BARs met again', () => {
  /**
   * `guestDevice` with the pages of its BARs kept (the hardware's BAR 0 moved and back, twice), its
   * vPCI BAR 0 at `vpciAddr` (listed besides the decoded BAR where that is not `HOST`).
   */
  function stateKept(vpciAddr = HOST) {
    const kept = guestDevice();
    const { device, bar, pagesOf } = kept;
    if (vpciAddr !== HOST) bar.addr = barAddress(vpciAddr);
    pagesOf();
    device.hw.write(0x10, 4, 0xd000_0000);
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toContainEqual([0xd0000, 0xd0003]);
    device.hw.write(0x10, 4, Number(HOST));
    const pages = pagesOf();
    expect(pages).toEqual(hostBarFrames(device));
    // Away and back again: the same array, kept.
    device.hw.write(0x10, 4, 0xd000_0000);
    pagesOf();
    device.hw.write(0x10, 4, Number(HOST));
    expect(pagesOf()).toBe(pages);
    return { ...kept, pages };
  }

  it('a vPCI BAR no longer listed is another state (how many are listed is in the key)', () => {
    const { device, bar, pagesOf, pages } = stateKept(HOST + 0x10_0000n);
    expect(pages).toEqual([
      [0xc0000, 0xc0003],
      [0xc0100, 0xc0103],
    ]);
    bar.type = 'io';
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toEqual([[0xc0000, 0xc0003]]);
  });

  it.each([
    [
      'host address',
      (bar: Bar): void => {
        bar.addr = barAddress(HOST + 0x10_0000n);
      },
      [
        [0xc0000, 0xc0003],
        [0xc0100, 0xc0103],
      ],
    ],
    [
      'size',
      (bar: Bar): void => {
        bar.size = 0x8000n;
      },
      [
        [0xc0000, 0xc0003],
        [0xc0000, 0xc0007],
      ],
    ],
    [
      'type',
      (bar: Bar): void => {
        bar.type = 'io';
      },
      [[0xc0000, 0xc0003]],
    ],
  ] as const)('a vPCI BAR %s set alone is another state', (_, set, expected) => {
    const { device, bar, pagesOf } = stateKept();
    set(bar);
    expect(pagesOf()).toEqual(hostBarFrames(device));
    expect(pagesOf()).toEqual(expected);
  });
});

describe("HostPagesCache.hostPagesOf: a VF's BARs, where its PF's VF BAR registers put them", () => {
  it('follow the VF BAR register as it moves away and back, twice (no state of the VF kept)', () => {
    const sriov = 0x100; // the capability's place: the first extended capability
    const m = new Machine();
    m.addDevice({
      sbdf: '0000:03:00.0',
      bars: [{ type: 'mem32', size: 0x10_0000n, addr: 0xfe00_0000n }],
      sriov: {
        totalVfs: 8,
        numVfs: 2,
        firstVfOffset: 0x80,
        vfStride: 0x40,
        vfDeviceId: 0x10ca,
        vfBars: [{ type: 'mem64', size: 0x4000n, addr: 0x40_0000_0000n, prefetchable: true }, null],
      },
    });
    m.boot();
    const pf = m.device('0000:03:00.0');
    const v = m.hardwareDomain.vcpus[0]!;
    m.configWrite(v, '03:00.0', sriov + PCI_SRIOV_CTRL, 2, PCI_SRIOV_CTRL_VFE);
    m.finishPending(v);
    const vf = m.device('0000:03:10.0');
    const pagesOf = () => m.invariantCaches.hostPages.hostPagesOf(vf);
    // VF 0's BAR 0 is the VF BAR's address, its 16 KiB four frames; the high half stays 0x40.
    const at = (low: number) => [
      [0x40_0000_0000 / 0x1000 + low / 0x1000, 0x40_0000_0000 / 0x1000 + low / 0x1000 + 3],
    ];
    expect(pagesOf()).toEqual(at(0));
    for (const low of [0x10_0000, 0, 0x10_0000, 0]) {
      pf.hw.write(sriov + PCI_SRIOV_BAR, 4, low | 0xc);
      expect(pagesOf()).toEqual(at(low));
    }
  });
});
