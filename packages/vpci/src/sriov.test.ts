/**
 * The hardware domain's SR-IOV handlers and VF devices, as the posted series "vpci: add SR-IOV support
 * for PVH Dom0" has them (docs/sriov.md: v1's `sriov.c` of 2025-07-25 — `control_write`, `map_vf`,
 * `vf_init_bars`, `size_vf_bars`, `vf_init_header` — and the later text's `vpci_vf_init_header` for
 * guests and `cleanup_sriov` for removal), Xen staging's PF↔VF links (`pci_add_device`, 4e18a39056,
 * 8fe330a4da) and the PCIe Base Specification 9.3 (routing IDs 9.3.3.10–11, VF BARs 9.3.3.14, a VF's
 * command register and BARs 9.3.4.1). Expected addresses are worked out by hand: VF n's routing ID is
 * `PF + First VF Offset + n × VF Stride`, its BAR i `VF BAR i + n × size_i`.
 */
import { describe, expect, it } from 'vitest';
import { mfnAt } from '../../../test/support/machine.js';
import { describeEvent } from './events.js';
import type { DeviceSpec } from './hardware.js';
import { checkInvariants } from './invariants.js';
import { Machine, type MachineOptions } from './machine.js';
import {
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_SRIOV_BAR,
  PCI_SRIOV_CTRL,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_NUM_VF,
} from './pci-regs.js';

/** The capability sits at 0x100 (no ReBAR before it). */
const SRIOV = 0x100;
const CTRL = SRIOV + PCI_SRIOV_CTRL;
const VFE = PCI_SRIOV_CTRL_VFE;
const MSE = PCI_SRIOV_CTRL_MSE;
/** VF 0's BAR 0: a 64-bit, 16 KiB VF BAR; VF n's is 0x40_0000_0000 + n × 0x4000 (frame 0x4000000 + 4n). */
const VF_BAR0 = 0x40_0000_0000n;
const VF0_FRAME = 0x400_0000;

/**
 * PF 0000:03:00.0 (routing ID 0x300) with 4 VFs: First VF Offset 0x80, VF Stride 0x40, so VF n is at
 * 0x380 + 0x40n: 03:10.0, 03:18.0, 04:00.0, 04:08.0 — VFs 2 and 3 on the next bus. Each VF's MSI-X
 * table is at 0x2000 and its PBA at 0x3000 in VF BAR 0: its third and fourth pages.
 */
const pf = (numVfs = 4, size = 0x4000n): DeviceSpec => ({
  sbdf: '0000:03:00.0',
  vendorId: 0x8086,
  bars: [{ type: 'mem32', size: 0x10_0000n, addr: 0xfe00_0000n }],
  sriov: {
    totalVfs: 8,
    numVfs,
    firstVfOffset: 0x80,
    vfStride: 0x40,
    vfDeviceId: 0x10ca,
    vfBars: [{ type: 'mem64', size, addr: VF_BAR0, prefetchable: true }, null],
    ...(size >= 0x4000n
      ? { vfMsix: { entries: 4, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } } }
      : {}),
  },
});
const VFS = ['0000:03:10.0', '0000:03:18.0', '0000:04:00.0', '0000:04:08.0'];

function booted(options: MachineOptions = {}, numVfs = 4, size = 0x4000n): Machine {
  const machine = new Machine(options);
  machine.addDevice(pf(numVfs, size));
  machine.boot();
  return machine;
}

/** The hardware domain writes SR-IOV Control from d0v0 and lets the vCPU finish its work. */
function control(machine: Machine, value: number): void {
  const v = machine.hardwareDomain.vcpus[0]!;
  machine.configWrite(v, '03:00.0', CTRL, 2, value);
  machine.finishPending(v);
}

/** Which of VFs 0–3 have both their non-MSI-X pages mapped identity in dom0's p2m. */
function mappedVfs(machine: Machine): boolean[] {
  return [0, 1, 2, 3].map((n) => {
    const frame = VF0_FRAME + 4 * n;
    return (
      mfnAt(machine.hardwareDomain, frame) === frame && mfnAt(machine.hardwareDomain, frame + 1) === frame + 1
    );
  });
}

describe('VF Enable: the VFs join at their routing IDs (pci_add_device with is_virtfn)', () => {
  it('xen: v1 sizes the VF BARs only at VF MSE 0→1, so VFs added by VF Enable alone have none yet', () => {
    const machine = booted({ profile: 'xen' });
    control(machine, VFE);
    for (const name of VFS) expect(machine.device(name).vpci!.bars[0]!.type).toBe('empty');
  });

  it.each(['xen', 'hardened'] as const)('%s: four VFs on buses 3 and 4, linked to the PF', (profile) => {
    const machine = booted({ profile });
    // xen sizes the VF BARs at VF MSE (v1), hardened already at VF Enable (the later text).
    control(machine, profile === 'xen' ? VFE | MSE : VFE);
    const parent = machine.device('03:00.0');
    expect(parent.virtfns.map((vf) => vf.name)).toEqual(VFS);
    for (const [n, name] of VFS.entries()) {
      const vf = machine.device(name);
      expect(vf.physfn).toBe(parent);
      expect(vf.vfIndex).toBe(n);
      expect(vf.domain).toBe(machine.hardwareDomain);
      // vf_init_bars: VF n's BAR 0 is VF BAR 0 + n × 16 KiB, 64-bit and prefetchable like the PF's.
      const bar = vf.vpci!.bars[0]!;
      expect([bar.type, bar.addr, bar.size, bar.prefetchable]).toEqual([
        'mem64lo',
        VF_BAR0 + BigInt(n) * 0x4000n,
        0x4000n,
        true,
      ]);
    }
    expect(machine.events.filter((e) => e.kind === 'vf-added')).toHaveLength(4);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it("a VF's command memory bit is read-only zero and its BAR registers read zero (PCIe 9.3.4.1)", () => {
    const machine = booted();
    control(machine, VFE);
    const v = machine.hardwareDomain.vcpus[0]!;
    // v1's vpci_init_header returns early for a VF: the hardware domain reaches the VF itself.
    machine.configWrite(v, VFS[0]!, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    expect(v.pending).toBeUndefined();
    expect(machine.configRead(v, VFS[0]!, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY).toBe(0);
    machine.configWrite(v, VFS[0]!, 0x10, 4, 0xffff_ffff);
    expect(machine.configRead(v, VFS[0]!, 0x10, 4)).toBe(0);
  });

  it.each(['xen', 'hardened'] as const)('%s: VF Enable cleared removes the VFs, last first', (profile) => {
    const machine = booted({ profile });
    control(machine, VFE);
    control(machine, 0);
    expect(machine.device('03:00.0').virtfns).toEqual([]);
    for (const name of VFS) expect(machine.findDevice(name)).toBeUndefined();
    expect(machine.events.filter((e) => e.kind === 'vf-removed').map((e) => e.sbdf)).toEqual(
      [...VFS].reverse(),
    );
  });
});

describe('VF Memory Space Enable (control_write → map_vf per VF)', () => {
  it('xen: v1 maps VF by VF, each defer_map overwriting the last: only VF 0 is mapped', () => {
    // v1 walks `list_for_each_entry(vf_pdev, &pdev->vf_list, vf_list)`; staging's pci_add_device
    // links each VF in at the head (list_add), so the walk goes VF 3, 2, 1, 0 and VF 0's operation
    // is the one left on the vCPU.
    const machine = booted({ profile: 'xen' });
    control(machine, VFE);
    control(machine, VFE | MSE);
    expect(mappedVfs(machine)).toEqual([true, false, false, false]);
    // VFs 1–3 keep their rangesets filled with nothing pending: invariant 23.
    const stale = checkInvariants(machine).filter((v) => v.kind === 'rangeset-not-empty');
    expect(stale.map((v) => (v as { sbdf: string }).sbdf)).toEqual(VFS.slice(1));
  });

  it('hardened (mapVfBarRanges): one operation over the slot range maps every VF, MSI-X pages left as holes', () => {
    const machine = booted({ profile: 'hardened' });
    control(machine, VFE);
    const v = machine.hardwareDomain.vcpus[0]!;
    machine.configWrite(v, '03:00.0', CTRL, 2, VFE | MSE);
    // One operation for all four VFs, on the PF, preemptible like any map.
    expect(v.pending?.device.name).toBe('0000:03:00.0');
    expect(v.pending?.vfRanges?.vfs.map((vf) => vf.name)).toEqual(VFS);
    expect(checkInvariants(machine)).toEqual([]);
    machine.finishPending(v);
    expect(mappedVfs(machine)).toEqual([true, true, true, true]);
    for (let n = 0; n < 4; n++) {
      // Table (0x2000) and PBA (0x3000): frames 2 and 3 of each VF's 16 KiB.
      expect(mfnAt(machine.hardwareDomain, VF0_FRAME + 4 * n + 2)).toBeUndefined();
      expect(mfnAt(machine.hardwareDomain, VF0_FRAME + 4 * n + 3)).toBeUndefined();
      expect(machine.device(VFS[n]!).vpci!.barsMapped).toBe(true);
    }
    expect(checkInvariants(machine)).toEqual([]);
    control(machine, VFE);
    expect(mappedVfs(machine)).toEqual([false, false, false, false]);
    expect([...machine.hardwareDomain.p2m.extents()].filter((e) => e.gfn >= VF0_FRAME)).toEqual([]);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('xen: VF Enable and VF MSE in one write (Linux sriov_enable) maps each VF as dom0 adds it', () => {
    const machine = booted({ profile: 'xen' });
    control(machine, VFE | MSE);
    // vf_init_header maps each VF added with VF MSE on; each add is its own hypercall.
    expect(mappedVfs(machine)).toEqual([true, true, true, true]);
    expect(checkInvariants(machine)).toEqual([]);
  });

  it('hardened: a small budget preempts the whole-range map (vpci_process_pending -ERESTART)', () => {
    // 1 MiB VF BARs: 256 frames each, 252 of them mapped; a p2m call does at most 64 4K chunks.
    const machine = booted({ profile: 'hardened' }, 4, 0x10_0000n);
    control(machine, VFE);
    const v = machine.hardwareDomain.vcpus[0]!;
    machine.configWrite(v, '03:00.0', CTRL, 2, VFE | MSE);
    expect(machine.processPending(v, 1).status).toBe('restart');
    expect(machine.finishPending(v).status).toBe('done');
    // VF 3's last frame: 0x4000000 + 3 × 256 + 255.
    expect(mfnAt(machine.hardwareDomain, VF0_FRAME + 0x3ff)).toBe(VF0_FRAME + 0x3ff);
    expect(machine.device('03:00.0').xenCost.continuations).toBeGreaterThan(0);
    expect(checkInvariants(machine)).toEqual([]);
  });
});

describe("a VF's command register (Bus Master Enable) across VF MSE", () => {
  it.each([
    ['xen', 0],
    ['hardened', 0x4],
  ] as const)('%s: VF 0 reads %s after VF MSE on', (profile, expected) => {
    const machine = booted({ profile });
    control(machine, VFE);
    const v = machine.hardwareDomain.vcpus[0]!;
    for (const vf of [VFS[0]!, VFS[3]!]) machine.configWrite(v, vf, PCI_COMMAND, 2, 0x4);
    control(machine, VFE | MSE);
    // v1: VF 0's deferred map (the last: v1 walks vf_list newest first) ends in modify_decoding,
    // which writes cmd (PCI_COMMAND_MEMORY alone) to the VF's command register: Bus Master Enable is
    // cleared. VF 3's operation was overwritten, so its register keeps Bus Master Enable. The
    // whole-range operation leaves every VF's register alone (VF MSE on the PF decodes its BARs).
    expect(machine.configRead(v, VFS[0]!, PCI_COMMAND, 2)).toBe(expected);
    expect(machine.configRead(v, VFS[3]!, PCI_COMMAND, 2)).toBe(0x4);
  });
});

describe('writes the spec leaves undefined (PCIe 9.3.3.5, 9.3.3.14)', () => {
  it('xen: a VF BAR write while VF MSE is on reaches the device (v1 traps SR-IOV Control only)', () => {
    const machine = booted({ profile: 'xen' });
    control(machine, VFE | MSE);
    const v = machine.hardwareDomain.vcpus[0]!;
    machine.configWrite(v, '03:00.0', SRIOV + PCI_SRIOV_BAR, 4, 0x1000_0000);
    expect(machine.device('03:00.0').hw.read(SRIOV + PCI_SRIOV_BAR, 4) & ~0xf).toBe(0x1000_0000);
  });

  it('hardened: VF BAR writes while VF MSE is on and NumVFs writes while VF Enable is on are ignored', () => {
    const machine = booted({ profile: 'hardened' });
    control(machine, VFE | MSE);
    const v = machine.hardwareDomain.vcpus[0]!;
    const hw = machine.device('03:00.0').hw;
    machine.configWrite(v, '03:00.0', SRIOV + PCI_SRIOV_BAR, 4, 0x1000_0000);
    machine.configWrite(v, '03:00.0', SRIOV + PCI_SRIOV_NUM_VF, 2, 2);
    expect(hw.read(SRIOV + PCI_SRIOV_BAR, 4) & ~0xf).toBe(0);
    expect(hw.read(SRIOV + PCI_SRIOV_NUM_VF, 2)).toBe(4);
    expect(machine.events.filter((e) => e.kind === 'sriov-write-ignored')).toHaveLength(2);
    // With both off they reach the device.
    control(machine, 0);
    machine.configWrite(v, '03:00.0', SRIOV + PCI_SRIOV_NUM_VF, 2, 2);
    expect(hw.read(SRIOV + PCI_SRIOV_NUM_VF, 2)).toBe(2);
  });
});

describe('removing the PF removes its VFs (cleanup_sriov)', () => {
  it.each(['xen', 'hardened'] as const)('%s: the VFs go first, then the PF', (profile) => {
    const machine = booted({ profile });
    control(machine, VFE | MSE);
    expect(machine.removeDevice('03:00.0')).toEqual({ ok: true });
    expect(machine.devices()).toEqual([]);
    if (profile === 'hardened') {
      // Unmapped before they went (mapVfBarRanges then unmapOnDeassign).
      expect(mappedVfs(machine)).toEqual([false, false, false, false]);
      expect(checkInvariants(machine)).toEqual([]);
    }
  });
});

describe('a VF assigned to a guest (the later series text: vpci_vf_init_header)', () => {
  it.each(['xen', 'hardened'] as const)(
    '%s: the guest places its BAR; the map is not identity',
    (profile) => {
      const machine = booted({ profile });
      // VF MSE on and off once sizes the VF BARs under xen (v1 sizes them at VF MSE 0→1 only).
      control(machine, VFE | MSE);
      control(machine, VFE);
      const guest = machine.createGuest();
      expect(machine.assignDevice(VFS[2]!, guest.id)).toEqual({ ok: true });
      const g = guest.vcpus[0]!;
      // Vendor ID from the PF, Device ID from its VF Device ID (a VF's own read 0xffff).
      expect(machine.configRead(g, '00:00.0', 0x00, 4)).toBe((0x10ca << 16) | 0x8086);
      machine.configWrite(g, '00:00.0', 0x10, 4, 0xe000_0000);
      machine.configWrite(g, '00:00.0', 0x14, 4, 0);
      expect(machine.configRead(g, '00:00.0', 0x10, 4)).toBe(0xe000_000c);
      machine.configWrite(g, '00:00.0', PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
      machine.finishPending(g);
      // VF 2's BAR 0 is at 0x40_0000_8000: frames 0x4000008 …; guest frames 0xe0000 … map them.
      expect(mfnAt(guest, 0xe0000)).toBe(VF0_FRAME + 8);
      expect(mfnAt(guest, 0xe0001)).toBe(VF0_FRAME + 9);
      expect(mfnAt(guest, 0xe0002)).toBeUndefined();
      expect(mfnAt(guest, 0xe0003)).toBeUndefined();
      if (profile === 'hardened') expect(checkInvariants(machine)).toEqual([]);
      else {
        // v1's VF MSE 1→0 unmapped only VF 0 (the last defer_map: v1 walks vf_list newest first):
        // VF 2's frames stay in dom0's p2m as it goes to the guest, sharing its pages (XSA-461's
        // hole) with nothing to explain them.
        const kinds = new Set(checkInvariants(machine).map((v) => v.kind));
        expect([...kinds].sort()).toEqual(['rangeset-not-empty', 'subpage-shared', 'unexplained-mapping']);
      }
    },
  );

  it.each(['xen', 'hardened'] as const)(
    '%s: 1 KiB VF BARs take a page each (System Page Size, PCIe 9.3.3.13): a VF given away shares none',
    (profile) => {
      const machine = booted({ profile }, 4, 0x400n);
      control(machine, VFE);
      const guest = machine.createGuest();
      expect(machine.assignDevice(VFS[1]!, guest.id)).toEqual({ ok: true });
      control(machine, VFE | MSE);
      // VF n's BAR is at VF BAR 0 + n × 4 KiB (the size sizing reads back), not + n × 1 KiB.
      expect(machine.device(VFS[2]!).vpci!.bars[0]!.addr).toBe(VF_BAR0 + 0x2000n);
      expect(mfnAt(machine.hardwareDomain, VF0_FRAME + 1)).toBeUndefined();
      const shared = checkInvariants(machine).filter((v) => v.kind === 'subpage-shared');
      expect(shared).toEqual([]);
    },
  );
});

describe("a VF BAR over another device's BAR", () => {
  // A guest's device with a 256-byte BAR at 0x40_0000_4100: in VF 1's first page (frame 0x4000004).
  const other: DeviceSpec = {
    sbdf: '0000:05:00.0',
    bars: [{ type: 'mem64', size: 0x100n, addr: 0x40_0000_4100n }],
  };
  it.each(['xen', 'hardened'] as const)('%s: dom0 maps VF 1 over a page a guest maps', (profile) => {
    const machine = new Machine({ profile });
    machine.addDevice(pf());
    machine.addDevice(other);
    machine.boot();
    const guest = machine.createGuest();
    expect(machine.assignDevice('05:00.0', guest.id)).toEqual({ ok: true });
    const g = guest.vcpus[0]!;
    machine.configWrite(g, '00:00.0', 0x10, 4, 0xe000_0104);
    machine.configWrite(g, '00:00.0', 0x14, 4, 0);
    machine.configWrite(g, '00:00.0', PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
    machine.finishPending(g);
    expect(mfnAt(guest, 0xe0000)).toBe(VF0_FRAME + 4);
    control(machine, profile === 'xen' ? VFE | MSE : VFE);
    if (profile === 'hardened') control(machine, VFE | MSE);
    const kinds = checkInvariants(machine).map((v) => v.kind);
    if (profile === 'hardened') {
      // VF 1 comes up in a page a guest maps: like any device hot-plugged there (refuseSubpageSharing)
      // it joins with no owner, so nothing maps it; VFs 0, 2 and 3 map around it.
      expect(machine.device(VFS[1]!).domain).toBeUndefined();
      expect(machine.events.some((e) => e.kind === 'assign-refused' && e.sbdf === VFS[1])).toBe(true);
      expect(mfnAt(machine.hardwareDomain, VF0_FRAME + 4)).toBeUndefined();
      expect(mfnAt(machine.hardwareDomain, VF0_FRAME + 5)).toBeUndefined();
      expect(mappedVfs(machine)).toEqual([true, false, true, true]);
      expect(kinds).toEqual([]);
    } else {
      // VF Enable and VF MSE in one write: each VF maps as dom0 adds it, VF 1 over the guest's page.
      expect(mfnAt(machine.hardwareDomain, VF0_FRAME + 4)).toBe(VF0_FRAME + 4);
      expect(kinds).toContain('subpage-shared');
    }
  });
});

describe('VFs that VF Enable asks for and that do not come up are counted, with the reason (both profiles)', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: a VF whose routing ID another device has is not added (Xen's pci_add_device finds that device: alloc_pdev)`, () => {
      // PF 01:00.0 (routing ID 0x100), First VF Offset 1, VF Stride 1: VF 0 at 0x101 = 01:00.1 (taken),
      // VF 1 at 0x102 = 01:00.2 (PCIe 9.3.3.10–11).
      const machine = new Machine({ profile });
      machine.addDevice({
        sbdf: '0000:01:00.0',
        sriov: {
          totalVfs: 2,
          numVfs: 2,
          firstVfOffset: 1,
          vfStride: 1,
          vfBars: [{ type: 'mem32', size: 0x1000n, addr: 0xd000_0000n }],
        },
      });
      const other = machine.addDevice({ sbdf: '0000:01:00.1' });
      machine.boot();
      machine.configWrite(machine.hardwareDomain.vcpus[0]!, '01:00.0', 0x108, 2, VFE);
      expect(machine.events.filter((e) => e.kind === 'vf-not-added')).toEqual([
        {
          kind: 'vf-not-added',
          sbdf: '0000:01:00.0',
          index: 0,
          count: 1,
          reason: 'routing-id-taken',
          other: '0000:01:00.1',
        },
      ]);
      expect(machine.events.filter((e) => e.kind === 'vf-added').map((e) => e.sbdf)).toEqual([
        '0000:01:00.2',
      ]);
      expect(other.physfn).toBeUndefined();
    });

    it(`${profile}: VFs whose routing IDs pass 0xffff are not added, counted in one event`, () => {
      // PF ff:00.0 (routing ID 0xff00), First VF Offset 0xf0, VF Stride 4, NumVFs 8: VF n at
      // 0xfff0 + 4n, so VFs 0–3 (0xfff0, 0xfff4, 0xfff8, 0xfffc) fit and VFs 4–7 are past bus 255.
      const machine = new Machine({ profile });
      machine.addDevice({
        sbdf: '0000:ff:00.0',
        sriov: {
          totalVfs: 8,
          numVfs: 8,
          firstVfOffset: 0xf0,
          vfStride: 4,
          vfBars: [{ type: 'mem32', size: 0x1000n, addr: 0xd000_0000n }],
        },
      });
      machine.boot();
      machine.configWrite(machine.hardwareDomain.vcpus[0]!, 'ff:00.0', 0x108, 2, VFE);
      expect(machine.events.filter((e) => e.kind === 'vf-added').map((e) => e.sbdf)).toEqual([
        '0000:ff:1e.0',
        '0000:ff:1e.4',
        '0000:ff:1f.0',
        '0000:ff:1f.4',
      ]);
      expect(machine.events.filter((e) => e.kind === 'vf-not-added')).toEqual([
        { kind: 'vf-not-added', sbdf: '0000:ff:00.0', index: 4, count: 4, reason: 'past-last-bus' },
      ]);
    });
  }
});

describe("a PF added with its VFs already enabled (Xen staging's pci_add_device, both profiles)", () => {
  // xen/drivers/passthrough/pci.c pci_add_device: for a device that is not a VF with
  // `!pdev->physfn.vf_rlen[0]`, it reads SR-IOV Control; if neither PCI_SRIOV_CTRL_VFE (0x1) nor
  // PCI_SRIOV_CTRL_MSE (0x8) is set it sizes each VF BAR into vf_rlen with pci_size_mem_bar (a 64-bit
  // one takes two slots: ret 2), else it prints "SR-IOV device %pp has its virtual functions already
  // enabled (%04x)" with the control value and sizes nothing. pf()'s VF BAR 0 is 64-bit, 16 KiB.
  const withControl = (vfEnable: boolean, vfMemorySpace: boolean): DeviceSpec => {
    const spec = pf();
    return { ...spec, sriov: { ...spec.sriov!, vfEnable, vfMemorySpace } };
  };
  for (const profile of ['xen', 'hardened'] as const) {
    const options: MachineOptions = { profile };
    for (const [vfEnable, vfMemorySpace, control] of [
      [true, false, 0x1],
      [false, true, 0x8],
      [true, true, 0x9],
    ] as const) {
      it(`${profile}: control 0x${control.toString(16)}: the warning, and vf_rlen left 0`, () => {
        const machine = new Machine(options);
        const device = machine.addDevice(withControl(vfEnable, vfMemorySpace));
        expect(machine.events.filter((e) => e.kind === 'sriov-vfs-enabled-at-add')).toEqual([
          { kind: 'sriov-vfs-enabled-at-add', sbdf: '0000:03:00.0', control },
        ]);
        expect(describeEvent(machine.events.find((e) => e.kind === 'sriov-vfs-enabled-at-add')!)).toBe(
          `SR-IOV device 0000:03:00.0 has its virtual functions already enabled (000${control.toString(16)})`,
        );
        expect(device.vfRlen).toEqual([0n, 0n, 0n, 0n, 0n, 0n]);
        // Nothing was written to the VF BAR registers.
        expect(device.hw.read(SRIOV + PCI_SRIOV_BAR, 4)).toBe(Number(VF_BAR0 & 0xffff_ffffn) | 0xc);
        expect(device.hw.read(SRIOV + PCI_SRIOV_BAR + 4, 4)).toBe(Number(VF_BAR0 >> 32n));
      });
    }

    it(`${profile}: control 0: no warning, VF BAR 0 sized into vf_rlen[0] (slot 1 its upper half), registers restored`, () => {
      const machine = new Machine(options);
      const device = machine.addDevice(withControl(false, false));
      expect(machine.events.some((e) => e.kind === 'sriov-vfs-enabled-at-add')).toBe(false);
      expect(device.vfRlen).toEqual([0x4000n, 0n, 0n, 0n, 0n, 0n]);
      expect(device.hw.read(SRIOV + PCI_SRIOV_BAR, 4)).toBe(Number(VF_BAR0 & 0xffff_ffffn) | 0xc);
      expect(device.hw.read(SRIOV + PCI_SRIOV_BAR + 4, 4)).toBe(Number(VF_BAR0 >> 32n));
    });

    it(`${profile}: a hot-plugged PF with VF Enable set warns too, and the series' size_vf_bars sizes vf_rlen at VF MSE`, () => {
      // v1's size_vf_bars: "Update vf_rlen on the PF … always update rlen when enabling VFs".
      const machine = new Machine(options);
      machine.boot();
      const device = machine.addDevice(withControl(true, false));
      expect(machine.events.filter((e) => e.kind === 'sriov-vfs-enabled-at-add')).toHaveLength(1);
      expect(device.vfRlen[0]).toBe(0n);
      const v = machine.hardwareDomain.vcpus[0]!;
      machine.configWrite(v, '03:00.0', CTRL, 2, VFE | MSE);
      machine.finishPending(v);
      expect(device.vfRlen).toEqual([0x4000n, 0n, 0n, 0n, 0n, 0n]);
    });
  }
});
