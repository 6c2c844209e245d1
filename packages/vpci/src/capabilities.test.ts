/**
 * The capability lists (Xen's cap.c) and the ignore_bars quirk (pci.c `apply_quirks`, header.c
 * `vpci_init_header`):
 * - `vpci_init_capability_list` registers each pointer with `vpci_read_val` of what
 *   `pci_find_next_cap_ttl` returned, which is the byte as read (`pos & ~3` is only used to walk on):
 *   a pointer with its low bits set reads back with them, for dom0 and for a guest.
 * - `vpci_capability_hide` finds the pointer to the failed capability by comparing the raw pointers
 *   with `pci_find_cap_offset`'s masked offset and walks on through `next + PCI_CAP_LIST_NEXT`; a raw
 *   pointer with low bits set leads nowhere, so hiding fails (-ENODEV) and, outside the re-init case,
 *   `vpci_init_capabilities` fails and with it `vpci_assign_device`.
 * - A failed extended capability (0ba439b942): `cleanup_rebar(pdev, true)` (ee459aeac0, 9ebba62ca8)
 *   drops the capability's handlers and gives dom0 read-only control registers, then
 *   `vpci_ext_capability_hide` clears the id of the first header (0x100) or unlinks any other.
 */
import { describe, expect, it } from 'vitest';
import { bootedMachine, mmioExtents, writeCommand } from '../../../test/support/machine.js';
import { PhysicalDevice } from './hardware.js';
import { checkInvariants } from './invariants.js';
import { Machine } from './machine.js';
import { PCI_COMMAND_MEMORY } from './pci-regs.js';
import { IGNORE_BARS_DEVICES } from './quirks.js';

const MIB = 0x10_0000n;

/** A config-space image: `words` are [offset, size, value] little-endian writes. */
function image(length: 256 | 4096, words: readonly (readonly [number, number, number])[]): Uint8Array {
  const bytes = new Uint8Array(length);
  for (const [offset, size, value] of words)
    for (let i = 0; i < size; i++) bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  return bytes;
}

function machineWith(hw: PhysicalDevice): Machine {
  const machine = new Machine();
  machine.addDevice(hw);
  machine.boot();
  return machine;
}

const BAR0: readonly [number, number, number] = [0x10, 4, 0xfe00_0000];

describe('capability pointers (vpci_init_capability_list, pci_find_next_cap_ttl)', () => {
  // Status has the capability list; 0x34 = 0x42; an MSI-X capability at 0x40 whose table and PBA
  // are in BAR0.
  const msixAt42 = (table: number): PhysicalDevice =>
    PhysicalDevice.fromImage(
      '0000:03:00.0',
      image(256, [
        [0x00, 2, 0x1234],
        [0x06, 2, 0x0010],
        [0x34, 1, 0x42],
        [0x40, 1, 0x11],
        [0x41, 1, 0x00],
        [0x42, 2, 0x0000],
        [0x44, 4, table],
        [0x48, 4, 0x0000_0800],
        BAR0,
      ]),
      { bars: [MIB] },
    );

  it('the hardware domain reads the raw pointer, low bits included', () => {
    const machine = machineWith(msixAt42(0));
    const v = machine.hardwareDomain.vcpus[0]!;
    expect(machine.configRead(v, '03:00.0', 0x34, 1)).toBe(0x42);
    expect(machine.device('03:00.0').vpci!.msix).toBeDefined();
  });

  it('a guest reads the raw pointer too', () => {
    const machine = machineWith(msixAt42(0));
    const guest = machine.createGuest();
    expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: true });
    expect(machine.configRead(guest.vcpus[0]!, '00:00.0', 0x34, 1)).toBe(0x42);
  });

  it('a failed MSI-X init behind a raw pointer cannot be hidden: the set-up fails (ENODEV), no vPCI', () => {
    // Table BIR 6: the ROM slot, not a memory BAR: init_msix fails with -ENODEV.
    const machine = machineWith(msixAt42(6));
    const device = machine.device('03:00.0');
    expect(device.vpci).toBeUndefined();
    expect(machine.events).toContainEqual({
      kind: 'capability-masked',
      sbdf: '0000:03:00.0',
      cap: 0x11,
      code: 'ENODEV',
    });
    // Without vPCI, dom0 reaches the device itself.
    expect(machine.configRead(machine.hardwareDomain.vcpus[0]!, '03:00.0', 0x34, 1)).toBe(0x42);
  });

  it('behind an aligned pointer the same failure hides MSI-X and vPCI stays', () => {
    const hw = PhysicalDevice.fromImage(
      '0000:03:00.0',
      image(256, [[0x06, 2, 0x0010], [0x34, 1, 0x40], [0x40, 1, 0x11], [0x44, 4, 6], BAR0]),
      { bars: [MIB] },
    );
    const machine = machineWith(hw);
    expect(machine.device('03:00.0').vpci).toBeDefined();
    expect(machine.configRead(machine.hardwareDomain.vcpus[0]!, '03:00.0', 0x34, 1)).toBe(0);
  });
});

describe('pci_add_device: a hot-plugged device whose vPCI set-up fails', () => {
  // The device of the ENODEV case above (MSI-X table BIR 6 behind the raw pointer 0x42), plugged
  // after boot with memory decoding on. Derived from Xen (pci.c pci_add_device, the `!pdev->domain`
  // branch; vpci.c vpci_assign_device; header.c vpci_init_header and modify_bars; cap.c
  // vpci_init_capabilities):
  // - `pdev->domain = hardware_domain`, `list_add` to its `pdev_list`, then `vpci_assign_device`;
  // - `vpci_init_header` writes the command register without MEMORY before sizing, makes a rangeset
  //   for each of the six memory BAR slots (`bar_add_rangeset` before `pci_size_mem_bar`: the five
  //   unimplemented ones read 0, a 32-bit memory type), and, decoding being on, `modify_bars` fills
  //   BAR0's set and defers the map to the current vCPU (`defer_map`: the system is active);
  // - `vpci_init_capabilities`: `init_msix` fails (ENODEV), `vpci_capability_hide` cannot find the
  //   pointer (ENODEV), so the set-up fails; `vpci_deassign_device` destroys the six sets and frees
  //   the vPCI state;
  // - back in `pci_add_device`: `list_del`, `pdev->domain = NULL`, "Setup of vPCI failed: %d", the
  //   error returned; the `pci_dev` is not freed;
  // - the deferred map is dropped by `vpci_process_pending` (`!pdev->vpci`): nothing is mapped and
  //   the device's command register keeps MEMORY cleared.
  const plugged = (): PhysicalDevice =>
    PhysicalDevice.fromImage(
      '0000:03:00.0',
      image(256, [
        [0x00, 2, 0x1234],
        [0x04, 2, PCI_COMMAND_MEMORY],
        [0x06, 2, 0x0010],
        [0x34, 1, 0x42],
        [0x40, 1, 0x11],
        [0x44, 4, 6],
        [0x48, 4, 0x0000_0800],
        BAR0,
      ]),
      { bars: [MIB] },
    );

  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: the device leaves the hardware domain's list with no owner, nothing mapped`, () => {
      const machine = new Machine({ profile });
      machine.boot();
      const hw = plugged();
      const device = machine.addDevice(hw);
      const dom0 = machine.hardwareDomain;
      const v = dom0.vcpus[0]!;
      expect(device.domain).toBeUndefined();
      expect(device.vpci).toBeUndefined();
      expect(dom0.devices).not.toContain(device);
      expect(machine.events).toContainEqual({
        kind: 'vpci-setup-failed',
        sbdf: '0000:03:00.0',
        domain: 0,
        code: 'ENODEV',
        hotPlug: true,
      });
      expect(device.xenCost.rangesets.new).toBe(6);
      expect(device.xenCost.rangesets.destroy).toBe(6);
      // The map vpci_init_header deferred is dropped: no vPCI state.
      expect(v.pending?.device).toBe(device);
      machine.finishPending(v);
      expect(machine.events).toContainEqual({ kind: 'pending-dropped', sbdf: '0000:03:00.0', vcpu: v.name });
      expect(mmioExtents(dom0)).toEqual([]);
      expect(hw.read(0x04, 2) & PCI_COMMAND_MEMORY).toBe(0);
      // Nobody's: dom0 reaches the hardware, device_assigned refuses it (EBUSY), it can be unplugged.
      machine.configWrite(v, '03:00.0', 0x04, 2, PCI_COMMAND_MEMORY);
      expect(hw.read(0x04, 2)).toBe(PCI_COMMAND_MEMORY);
      expect(mmioExtents(dom0)).toEqual([]);
      const guest = machine.createGuest();
      expect(machine.assignDevice('03:00.0', guest.id)).toEqual({ ok: false, code: 'EBUSY' });
      expect(machine.removeDevice('03:00.0')).toEqual({ ok: true });
      expect(checkInvariants(machine)).toEqual([]);
    });
  }

  it("at boot (setup_one_hwdom_device) the same failure is only logged: the device stays dom0's", () => {
    const machine = new Machine();
    const device = machine.addDevice(plugged());
    machine.boot();
    expect(device.domain).toBe(machine.hardwareDomain);
    expect(device.vpci).toBeUndefined();
    expect(machine.events).toContainEqual({
      kind: 'vpci-setup-failed',
      sbdf: '0000:03:00.0',
      domain: 0,
      code: 'ENODEV',
      hotPlug: false,
    });
  });
});

describe('a failed extended capability is cleaned up and hidden (0ba439b942, ee459aeac0, 9ebba62ca8)', () => {
  // ReBAR whose header's next pointer (0x108) is its own control register: the extended list traps
  // 0x108 as a header, so init_rebar's control handler clashes (-EEXIST).
  const rebarHeader = 0x15 | (1 << 16);
  const ctrl = 0x20; // BAR index 0, one resizable BAR, size 1 MiB

  it('the first header (0x100) keeps its place with its id cleared; the control register turns read-only', () => {
    const hw = PhysicalDevice.fromImage(
      '0000:03:00.0',
      image(4096, [BAR0, [0x100, 4, rebarHeader | (0x108 << 20)], [0x104, 4, 0x10], [0x108, 4, ctrl]]),
      { bars: [MIB] },
    );
    const machine = machineWith(hw);
    const v = machine.hardwareDomain.vcpus[0]!;
    const device = machine.device('03:00.0');
    expect(device.vpci).toBeDefined();
    expect(machine.events).toContainEqual({
      kind: 'capability-masked',
      sbdf: '0000:03:00.0',
      extended: true,
      cap: 0x15,
      code: 'EEXIST',
    });
    // header & ~PCI_EXT_CAP_ID(header): version and next kept.
    expect(machine.configRead(v, '03:00.0', 0x100, 4)).toBe(((0x108 << 20) | (1 << 16)) >>> 0);
    // cleanup_rebar: vpci_hw_read32, no write handler.
    expect(machine.configRead(v, '03:00.0', 0x108, 4)).toBe(ctrl);
    machine.configWrite(v, '03:00.0', 0x108, 4, ctrl | (1 << 8));
    expect(hw.read(0x108, 4)).toBe(ctrl);
    expect(device.vpci!.bars[0]!.resizableSizes).toBe(0n);
  });

  it('ReBAR is set up before MSI and MSI-X: rebar.o is linked before msi.o and msix.o (__start_vpci_array)', () => {
    const hw = PhysicalDevice.fromImage(
      '0000:03:00.0',
      image(4096, [
        BAR0,
        [0x06, 2, 0x0010],
        [0x34, 1, 0x40],
        [0x40, 1, 0x11],
        [0x44, 4, 6], // MSI-X table in BAR6: init_msix fails (ENODEV)
        [0x100, 4, rebarHeader | (0x108 << 20)],
        [0x104, 4, 0x10],
        [0x108, 4, ctrl],
      ]),
      { bars: [MIB] },
    );
    const machine = machineWith(hw);
    const masked = machine.events.filter((e) => e.kind === 'capability-masked').map((e) => e.cap);
    expect(masked).toEqual([0x15, 0x11]);
  });

  it('a later header is unlinked: the previous one takes its next pointer', () => {
    const first = 0x0001 | (1 << 16) | (0x140 << 20); // power management, next 0x140
    const hw = PhysicalDevice.fromImage(
      '0000:03:00.0',
      image(4096, [
        BAR0,
        [0x100, 4, first],
        [0x140, 4, rebarHeader | (0x148 << 20)],
        [0x144, 4, 0x10],
        [0x148, 4, ctrl],
      ]),
      { bars: [MIB] },
    );
    const machine = machineWith(hw);
    const v = machine.hardwareDomain.vcpus[0]!;
    expect(machine.configRead(v, '03:00.0', 0x100, 4)).toBe(((first & 0x000f_ffff) | (0x148 << 20)) >>> 0);
    // The ReBAR header is no longer trapped: dom0 reads the device.
    expect(machine.configRead(v, '03:00.0', 0x140, 4)).toBe((rebarHeader | (0x148 << 20)) >>> 0);
  });
});

describe('ignore_bars (apply_quirks, vpci_init_header)', () => {
  const quirky = (deviceId: number) => ({
    sbdf: '0000:7f:12.0',
    vendorId: 0x8086,
    deviceId,
    command: PCI_COMMAND_MEMORY,
    bars: [{ type: 'mem32' as const, size: MIB, addr: 0xfe00_0000n }],
  });

  it.each(IGNORE_BARS_DEVICES.map((d) => d.device))('8086:%s: BARs never sized, trapped or mapped', (id) => {
    const machine = bootedMachine([quirky(id)]);
    const device = machine.device('7f:12.0');
    expect(device.ignoreBars).toBe(true);
    expect(device.vpci!.bars.every((bar) => bar.type === 'empty')).toBe(true);
    expect(mmioExtents(machine.hardwareDomain)).toEqual([]);
    const v = machine.hardwareDomain.vcpus[0]!;
    // No BAR handler: dom0 reaches the register itself, and sizing it sizes the device.
    machine.configWrite(v, '7f:12.0', 0x10, 4, 0xffff_ffff);
    expect(device.hw.read(0x10, 4)).toBe(0xfff0_0000);
    expect(machine.configRead(v, '7f:12.0', 0x10, 4)).toBe(0xfff0_0000);
  });

  it('another Intel device id is handled as usual', () => {
    const machine = bootedMachine([quirky(0x6f61)]);
    expect(machine.device('7f:12.0').ignoreBars).toBe(false);
    expect(mmioExtents(machine.hardwareDomain)).toEqual([[0xfe000, 0xfe000, 256]]);
  });

  it('a guest reads all-ones from the BAR and turning decoding on maps nothing', () => {
    const machine = bootedMachine([quirky(0x6fa0)]);
    const guest = machine.createGuest();
    expect(machine.assignDevice('7f:12.0', guest.id)).toEqual({ ok: true });
    const v = guest.vcpus[0]!;
    expect(machine.configRead(v, '00:00.0', 0x10, 4)).toBe(0xffff_ffff);
    // The command handler exists (guest view zero from the start); decoding on maps no BAR.
    expect(machine.configRead(v, '00:00.0', 0x04, 2)).toBe(0);
    writeCommand(machine, v, '00:00.0', PCI_COMMAND_MEMORY);
    expect(machine.device('7f:12.0').vpci!.barsMapped).toBe(true);
    expect(mmioExtents(guest)).toEqual([]);
  });
});

describe('MMCFG availability changes (PHYSDEVOP_pci_mmcfg_reserved, vpci_reinit_ext_capabilities)', () => {
  // d734babf8b: physdev_check_pci_extcfg runs pci_check_extcfg (ext_cfg needs a usable MMCFG region:
  // pci_conf_read past 255 without one is ~0) and vpci_reinit_ext_capabilities for each device of the
  // region: the extended handlers go and vpci_init_capabilities(pdev, true) runs again.
  const device = {
    sbdf: '0000:03:00.0',
    bars: [{ type: 'mem64' as const, size: MIB, addr: 0xfe00_0000n }, null],
    rebar: [{ bar: 0, sizes: [MIB, 2n * MIB] }],
  };
  const CTRL = 0x108;

  it('unusable: dom0 reads the extended space as all-ones and cannot resize; usable again: back', () => {
    const machine = bootedMachine([device]);
    const v = machine.hardwareDomain.vcpus[0]!;
    const pdev = machine.device('03:00.0');
    const header = machine.configRead(v, '03:00.0', 0x100, 4);
    expect(header & 0xffff).toBe(0x15);
    machine.mmcfgReserved(0, 0, 0xff, false);
    expect(pdev.extCfg).toBe(false);
    expect(machine.configRead(v, '03:00.0', 0x100, 4)).toBe(0xffff_ffff);
    const ctrl = pdev.hw.read(CTRL, 4);
    machine.configWrite(v, '03:00.0', CTRL, 4, (ctrl & ~0x3f00) | (1 << 8));
    expect(pdev.hw.read(CTRL, 4)).toBe(ctrl); // pci_conf_write32 past 255 without MMCFG: dropped
    machine.mmcfgReserved(0, 0, 0xff, true);
    expect(pdev.extCfg).toBe(true);
    expect(machine.configRead(v, '03:00.0', 0x100, 4)).toBe(header);
    machine.configWrite(v, '03:00.0', CTRL, 4, (ctrl & ~0x3f00) | (1 << 8));
    expect(pdev.vpci!.bars[0]!.size).toBe(2n * MIB); // rebar_ctrl_write handled it
  });

  it("a region that does not cover the device's bus, or no change, leaves it alone", () => {
    const machine = bootedMachine([device]);
    machine.mmcfgReserved(0, 0x04, 0xff, false);
    expect(machine.device('03:00.0').extCfg).toBe(true);
    const registers = machine.device('03:00.0').vpci!.registers.list().length;
    machine.mmcfgReserved(0, 0, 0xff, true); // already usable: "no change"
    expect(machine.device('03:00.0').vpci!.registers.list().length).toBe(registers);
  });

  it("a guest's extended space: zero while reachable, all-ones once not", () => {
    const machine = bootedMachine([device]);
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const v = guest.vcpus[0]!;
    expect(machine.configRead(v, '00:00.0', 0x100, 4)).toBe(0);
    machine.mmcfgReserved(0, 0, 0xff, false);
    expect(machine.configRead(v, '00:00.0', 0x100, 4)).toBe(0xffff_ffff);
  });
});
