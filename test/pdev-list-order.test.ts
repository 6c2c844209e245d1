/**
 * The order in which Xen walks a domain's devices, where it shows: `modify_bars`' overlap loop
 * (xen/drivers/vpci/header.c) walks `for_each_pdev(d, tmp)` over `d->pdev_list`, then dom_xen's list
 * for the hardware domain. A BAR it meets removes its frames from the set being built
 * (`rangeset_remove_range`) only while the set still overlaps it (`rangeset_overlaps_range`), so when
 * two enabled BARs cover the same frames the number of removals says which came first: the one met
 * first takes all of them, the other none, or each takes a part.
 *
 * Every place Xen links a device into a `pdev_list` uses `list_add`, which puts it at the head
 * (xen/drivers/passthrough/pci.c at the mirror's HEAD c447b7308b):
 * - `_setup_hwdom_pci_devices` (boot: bus 0 … 255, devfn 0 … 255, `list_add` each), line 1313;
 * - `pci_add_device` (a device dom0 reports after boot, a VF among them), line 785;
 * - `_pci_hide_device` (dom_xen's list, in the order Xen hides them), line 475;
 * - `reassign_device_ownership` (xen/drivers/passthrough/vtd/iommu.c, line 2813) and AMD's
 *   `reassign_device` (amd/pci_amd_iommu.c, line 495): `list_del` from the old owner, `list_add` to
 *   the new one, for `assign_device` and `deassign_device` alike;
 * and `pci_release_devices` (pci.c, line 979) de-assigns `list_first_entry` until the list is empty:
 * the device assigned last goes first.
 * So the walk meets the device that joined the domain last first. In each trace below three BARs
 * sit on guest frames 0xc0000 (4 KiB, one frame) and 0xc0000 … 0xc0001 (8 KiB): the last device to
 * enable decoding (T) has frames 0xc0000 … 0xc0001 in its set. When the walk meets an 8 KiB BAR first
 * it removes both frames and the 4 KiB BAR overlaps nothing: one `rangeset_remove_range`. When it
 * meets the 4 KiB BAR first, that removes 0xc0000 and the 8 KiB one removes 0xc0001: two.
 *
 * T's other counts, the same in every trace: `vpci_init_header` gives its one 32-bit BAR and the five
 * slots that read 0 a set each (6 `rangeset_new`); `modify_bars` adds BAR0 (1 `rangeset_add_range`;
 * no lower slot, no e820 entry, no MSI-X); the loop asks T's 7 slots about each of the two other
 * enabled BARs (14 `rangeset_overlaps_range`); the set is then empty, so `vpci_process_pending`
 * makes no `rangeset_consume_ranges` call.
 */
import { type Report, replayText } from '@vpci/replay';
import { Machine } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { mfnAt } from './support/machine.js';

const PROFILES = ['xen', 'hardened'] as const;

/** T's rangeset calls, with `removeRange` removals in the overlap loop. */
function tCost(removeRange: number) {
  return {
    new: 6,
    addRange: 1,
    removeRange,
    overlapsRange: 14,
    consumeRanges: 0,
    rangesConsumed: 0,
    purge: 0,
    destroy: 0,
  };
}

function device(sbdf: string, size: number, addr: number, more = '', command = '0x0000'): string {
  const bar = `{"type":"mem32","size":"0x${size.toString(16)}","addr":"0x${addr.toString(16)}"}`;
  return `{"event":"device","sbdf":"${sbdf}","command":"${command}","bars":[${bar}]${more}}`;
}

/** dom0 turns memory decoding on and runs the map. */
function enable(sbdf: string): string[] {
  return [
    `{"event":"write","vcpu":"d0v0","sbdf":"${sbdf}","reg":4,"size":2,"value":2}`,
    '{"event":"run","vcpu":"d0v0","expect":"done"}',
  ];
}

/** dom0 moves BAR0 (decoding off) to 0xc0000000. */
function moveToC(sbdf: string): string {
  return `{"event":"write","vcpu":"d0v0","sbdf":"${sbdf}","reg":"0x10","size":4,"value":"0xc0000000"}`;
}

function replay(profile: string, lines: string[]): Report {
  const report = replayText(
    [`{"event":"host","profile":"${profile}","quarantine":false}`, ...lines].join('\n'),
  );
  expect(report.assertions.failed, JSON.stringify(report.assertions)).toBe(0);
  expect(report.error, 'no error').toBeNull();
  return report;
}

function costOf(report: Report, sbdf: string) {
  return report.devices.find((d) => d.sbdf === sbdf)!.xenCost.rangesets;
}

describe("modify_bars' overlap loop walks each pdev_list newest first (list_add)", () => {
  for (const profile of PROFILES) {
    it(`${profile}: boot (_setup_hwdom_pci_devices, list_add in bus/devfn order): the highest SBDF first`, () => {
      // dom0's list after boot: [03:00.0 (T), 02:00.0 (8 KiB), 01:00.0 (4 KiB)]. T is skipped
      // (tmp == pdev), 02:00.0 removes both frames, 01:00.0 overlaps nothing: 1 removal.
      const report = replay(profile, [
        device('0000:01:00.0', 0x1000, 0xc000_0000),
        device('0000:02:00.0', 0x2000, 0xc000_0000),
        device('0000:03:00.0', 0x2000, 0xc000_0000),
        '{"event":"boot"}',
        ...enable('0000:01:00.0'),
        ...enable('0000:02:00.0'),
        ...enable('0000:03:00.0'),
      ]);
      expect(costOf(report, '0000:03:00.0')).toEqual(tCost(1));
    });

    it(`${profile}: hot plug (pci_add_device, list_add): the new device first, below a lower SBDF's`, () => {
      // Boot: [02:00.0 (T), 01:00.0 (4 KiB)]; 00:03.0 (8 KiB) plugged after boot goes to the head:
      // [00:03.0, 02:00.0, 01:00.0], although its SBDF is the lowest. 00:03.0 removes both frames,
      // 01:00.0 then overlaps nothing: 1 removal (2 if the walk went by SBDF, or plugged last).
      const report = replay(profile, [
        device('0000:01:00.0', 0x1000, 0xc000_0000),
        device('0000:02:00.0', 0x2000, 0xc000_0000),
        '{"event":"boot"}',
        device('0000:00:03.0', 0x2000, 0xc000_0000),
        ...enable('0000:01:00.0'),
        ...enable('0000:00:03.0'),
        ...enable('0000:02:00.0'),
      ]);
      expect(costOf(report, '0000:02:00.0')).toEqual(tCost(1));
    });

    it(`${profile}: a device assigned to a guest and back (reassign_device: list_add) is walked first`, () => {
      // Boot: [03:00.0 (T), 02:00.0 (8 KiB), 01:00.0]. 01:00.0 goes to d1 and back (quarantine off:
      // deassign_device's target is the hardware domain), to the head: [01:00.0, 03:00.0, 02:00.0].
      // dom0 moves its BAR onto 0xc0000 (apart while it was assigned: hardened refuses to assign a
      // device whose page another domain maps). 01:00.0 removes 0xc0000, 02:00.0 then 0xc0001: 2.
      const report = replay(profile, [
        device('0000:01:00.0', 0x1000, 0xd000_0000),
        device('0000:02:00.0', 0x2000, 0xc000_0000),
        device('0000:03:00.0', 0x2000, 0xc000_0000),
        '{"event":"boot"}',
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"0000:01:00.0","domain":1,"expect":"ok"}',
        '{"event":"deassign","sbdf":"0000:01:00.0","expect":"ok"}',
        moveToC('0000:01:00.0'),
        ...enable('0000:01:00.0'),
        ...enable('0000:02:00.0'),
        ...enable('0000:03:00.0'),
      ]);
      expect(report.devices.find((d) => d.sbdf === '0000:01:00.0')!.owner).toBe(0);
      expect(costOf(report, '0000:03:00.0')).toEqual(tCost(2));
    });

    it(`${profile}: pci_release_devices gives back the device assigned last first (list_first_entry)`, () => {
      // d1's list after assigning 01:00.0 then 02:00.0: [02:00.0, 01:00.0]. Release takes 02:00.0
      // back first (dom0: [02:00.0, 03:00.0]), then 01:00.0 ([01:00.0, 02:00.0, 03:00.0]). Both BARs
      // are moved onto 0xc0000; T's walk meets 01:00.0 (4 KiB) first, then 02:00.0 (8 KiB): 2.
      // Released in assignment order instead, 02:00.0 would be met first: 1.
      const report = replay(profile, [
        device('0000:01:00.0', 0x1000, 0xd000_0000),
        device('0000:02:00.0', 0x2000, 0xd000_2000),
        device('0000:03:00.0', 0x2000, 0xc000_0000),
        '{"event":"boot"}',
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"0000:01:00.0","domain":1,"expect":"ok"}',
        '{"event":"assign","sbdf":"0000:02:00.0","domain":1,"expect":"ok"}',
        '{"event":"release","domain":1,"expect":"ok"}',
        moveToC('0000:01:00.0'),
        moveToC('0000:02:00.0'),
        ...enable('0000:01:00.0'),
        ...enable('0000:02:00.0'),
        ...enable('0000:03:00.0'),
      ]);
      expect(costOf(report, '0000:03:00.0')).toEqual(tCost(2));
    });

    it(`${profile}: dom_xen's list (_pci_hide_device, list_add) is walked after dom0's, the last hidden first`, () => {
      // Hidden 01:00.0 then 02:00.0, both decoding at boot: `setup_one_hwdom_device` maps them then
      // (apply_map; after boot vpci_process_pending drops a hidden device's work, as its domain is
      // not the vCPU's). dom0's list: [03:00.0 (T)], skipped; dom_xen's: [02:00.0 (8 KiB), 01:00.0
      // (4 KiB)]. 02:00.0 removes both frames from T's set: 1 removal.
      const hidden = ',"hidden":true';
      const report = replay(profile, [
        device('0000:01:00.0', 0x1000, 0xc000_0000, hidden, '0x0002'),
        device('0000:02:00.0', 0x2000, 0xc000_0000, hidden, '0x0002'),
        device('0000:03:00.0', 0x2000, 0xc000_0000),
        '{"event":"boot"}',
        '{"event":"assert","bar":{"sbdf":"0000:01:00.0","index":0,"enabled":true}}',
        '{"event":"assert","bar":{"sbdf":"0000:02:00.0","index":0,"enabled":true}}',
        ...enable('0000:03:00.0'),
      ]);
      expect(costOf(report, '0000:03:00.0')).toEqual(tCost(1));
    });

    it(`${profile}: a VF dom0 reports after VF Enable (pci_add_device, list_add) is walked before the boot devices`, () => {
      // PF 04:00.0, one VF at 04:00.1 (First VF Offset 1) with an 8 KiB VF BAR0 at 0xc0000000; 01:00.0
      // (4 KiB) and T (02:00.0) at 0xc0000000 too. Boot: [04:00.0, 02:00.0, 01:00.0]; the VF joins at
      // the head: [04:00.1, 04:00.0, 02:00.0, 01:00.0]. VF MSE maps the VF (its BAR enabled; the PF
      // has no BAR of its own). T's walk: the VF removes both frames, 01:00.0 nothing: 1 removal.
      const sriov =
        ',"sriov":{"totalVfs":1,"numVfs":1,"firstVfOffset":1,"vfStride":1,"vfBars":[{"type":"mem32","size":"0x2000","addr":"0xc0000000"}]}';
      const report = replay(profile, [
        device('0000:01:00.0', 0x1000, 0xc000_0000),
        device('0000:02:00.0', 0x2000, 0xc000_0000),
        `{"event":"device","sbdf":"0000:04:00.0","command":"0x0000","bars":[]${sriov}}`,
        '{"event":"boot"}',
        ...enable('0000:01:00.0'),
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:04:00.0","reg":"0x108","size":2,"value":"0x1"}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:04:00.0","reg":"0x108","size":2,"value":"0x9"}',
        '{"event":"run","vcpu":"d0v0","expect":"done"}',
        '{"event":"assert","bar":{"sbdf":"0000:04:00.1","index":0,"addr":"0xc0000000","enabled":true}}',
        ...enable('0000:02:00.0'),
      ]);
      expect(costOf(report, '0000:02:00.0')).toEqual(tCost(1));
    });
  }
});

describe("msix_find walks the domain's msix_tables newest first (init_msix: list_add)", () => {
  // xen/drivers/vpci/msix.c: init_msix links the device's MSI-X state in with
  // `list_add(&msix->next, &d->arch.hvm.msix_tables)` (the head), and msix_find returns the first
  // entry whose table or PBA page holds the address, with its BAR enabled. Two dom0 devices with a
  // 4 KiB BAR0 at 0xc0000000, decoding at boot: 01:00.0's table (4 entries) at offset 0, 02:00.0's at
  // 0x400. Boot sets up 01:00.0 first, then 02:00.0, so the list is [02:00.0, 01:00.0] and 02:00.0
  // answers for the whole page: 0xc0000000 is outside its table, so its adjacent handler takes the
  // access (`msix-adjacent`); 0xc0000400 is its table's entry 0 (`msix-table`).
  const msix = (table: string, pba: string) =>
    `,"msix":{"entries":4,"table":{"bar":0,"offset":"${table}"},"pba":{"bar":0,"offset":"${pba}"}}`;
  for (const profile of PROFILES) {
    it(`${profile}: the device set up last answers for a page both devices' tables share`, () => {
      const report = replay(profile, [
        device('0000:01:00.0', 0x1000, 0xc000_0000, msix('0x0', '0x800'), '0x0002'),
        device('0000:02:00.0', 0x1000, 0xc000_0000, msix('0x400', '0xc00'), '0x0002'),
        '{"event":"boot"}',
        '{"event":"mmio","vcpu":"d0v0","addr":"0xc0000000","size":4,"value":"0xfee00000","via":"msix-adjacent"}',
        '{"event":"mmio","vcpu":"d0v0","addr":"0xc0000400","size":4,"value":"0xfee00000","via":"msix-table"}',
      ]);
      expect(report.assertions.total).toBe(2);
    });
  }
});

describe('where the overlap loop stops: a rangeset_remove_range that fails part-way (ENOMEM)', () => {
  // T (03:00.0): a 16 KiB BAR at 0xc0000000, its set { c0000-c0003 } limited to one range (as an
  // allocation failure would make a split fail). B (02:00.0): 8 KiB at 0xc0000000, { c0000-c0001 };
  // A (01:00.0): 4 KiB at 0xc0001000, { c0001 }, both decoding at boot. dom0's list after boot is
  // [T, B, A] (list_add in bus order). T's walk meets B first: removing c0000-c0001 trims the set to
  // { c0002-c0003 } (still one range); A's c0001 then overlaps nothing. The map goes ahead: frames
  // c0002-c0003 mapped, 14 rangeset_overlaps_range (7 slots × 2 BARs), 1 rangeset_remove_range.
  // Walking A first would split { c0000-c0003 } at c0001 and fail with ENOMEM after 7 asks.
  for (const profile of PROFILES) {
    it(`${profile}: B, walked first, trims the set; A's removal, which would split it, never happens`, () => {
      const machine = new Machine({ profile });
      machine.addDevice({
        sbdf: '0000:01:00.0',
        command: 2,
        bars: [{ type: 'mem32', size: 0x1000n, addr: 0xc000_1000n }],
      });
      machine.addDevice({
        sbdf: '0000:02:00.0',
        command: 2,
        bars: [{ type: 'mem32', size: 0x2000n, addr: 0xc000_0000n }],
      });
      const t = machine.addDevice({
        sbdf: '0000:03:00.0',
        bars: [{ type: 'mem32', size: 0x4000n, addr: 0xc000_0000n }],
      });
      machine.boot();
      t.vpci!.bars[0]!.mem!.limit(1);
      const v = machine.hardwareDomain.vcpus[0]!;
      machine.configWrite(v, '03:00.0', 4, 2, 2);
      machine.finishPending(v);
      expect(machine.events.filter((e) => e.kind === 'modify-bars-failed')).toEqual([]);
      expect(t.vpci!.bars[0]!.enabled).toBe(true);
      expect(mfnAt(machine.hardwareDomain, 0xc0002)).toBe(0xc0002);
      expect(mfnAt(machine.hardwareDomain, 0xc0003)).toBe(0xc0003);
      expect(t.xenCost.rangesets).toMatchObject({ addRange: 1, removeRange: 1, overlapsRange: 14 });
    });
  }
});
