/**
 * Eleven ways a random-trace campaign broke an invariant under `hardened` (and a twelfth found while
 * closing the eleventh), each rewritten as a short
 * trace and replayed under both profiles. Under `hardened` none may show a violation; under `xen`
 * the violation shows where Xen has the hole (the comment names the Xen function), and the trace
 * replays clean where the hole was only in a hardened switch.
 */
import { type Report, replayText } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

type Profile = 'xen' | 'hardened';

const WRITE = (vcpu: string, sbdf: string, reg: string, size: number, value: string): string =>
  `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":"${reg}","size":${size},"value":"${value}"}`;
const RUN = (vcpu: string, expect?: string): string =>
  `{"event":"run","vcpu":"${vcpu}"${expect === undefined ? '' : `,"expect":"${expect}"`}}`;
const DEVICE = (sbdf: string, bars: string, extra = ''): string =>
  `{"event":"device","sbdf":"${sbdf}","bars":[${bars}]${extra}}`;
const MEM32 = (size: string, addr: string): string => `{"type":"mem32","size":"${size}","addr":"${addr}"}`;

function replay(lines: readonly string[], profile: Profile): Report {
  const report = replayText(`${lines.join('\n')}\n`, `hole-${profile}.jsonl`, { profile });
  expect(report.error).toBeNull();
  expect(report.assertions.failures).toEqual([]);
  return report;
}

const kinds = (report: Report): string[] => report.violations.map((v) => String(v.kind));
/** The devices whose BAR `pci_check_bar` refused (`bar-invalid-position`), each once, sorted. */
const refusedVfs = (report: Report): string[] =>
  [
    ...new Set(report.events.filter((e) => e.kind === 'bar-invalid-position').map((e) => String(e.sbdf))),
  ].sort();
/** A 16 KiB 64-bit VF BAR 0 at 0xe0280000: VF n's at 0xe0280000 + n × 0x4000. */
const VF_BAR0 = '{"type":"mem64","size":"0x4000","addr":"0xe0280000"}';
const eventKinds = (report: Report): string[] => report.events.map((e) => String(e.kind));

/** A guest (d1) given 0000:02:00.0, its 256-byte BAR at guest 0xe0000000, decoding on. */
const GUEST_MAPS_02 = [
  '{"event":"domain","id":1}',
  '{"event":"assign","sbdf":"0000:02:00.0","domain":1,"expect":"ok"}',
  WRITE('d1v0', '00:00.0', '0x10', 4, '0xe0000000'),
  WRITE('d1v0', '00:00.0', '0x04', 2, '0x2'),
  RUN('d1v0', 'done'),
];

describe('hardened holds where the campaign broke it', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    describe(profile, () => {
      it('1: dom0 moves the BAR of a device it gave to a guest into a page it maps itself', () => {
        // vpci.c vpci_write: dom0 finds no vPCI state of its own for a device a guest owns, so the
        // write goes to the hardware (vpci_write_hw) and the guest's p2m keeps the old frames.
        const report = replay(
          [
            '{"event":"host"}',
            DEVICE('0000:01:00.0', MEM32('0x100', '0xc0000000'), ',"command":"0x2"'),
            DEVICE('0000:02:00.0', MEM32('0x100', '0xd0000000')),
            '{"event":"boot"}',
            ...GUEST_MAPS_02,
            WRITE('d0v0', '02:00.0', '0x10', 4, '0xc0000100'),
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('subpage-shared');
        else expect(kinds(report)).toEqual([]);
        expect(eventKinds(report).includes('assigned-write-refused')).toBe(profile === 'hardened');
      });

      it('2: a map dropped for a hidden device leaves its frame set filled', () => {
        // header.c vpci_process_pending: `v->domain != pdev->domain` drops the work without
        // purging the sets (a debug Xen trips ASSERT(rangeset_is_empty) in the next modify_bars).
        const report = replay(
          [
            '{"event":"host"}',
            DEVICE('0000:01:00.0', MEM32('0x1000', '0xc0000000'), ',"hidden":true'),
            '{"event":"boot"}',
            WRITE('d0v0', '01:00.0', '0x04', 2, '0x2'),
            RUN('d0v0', 'dropped'),
            WRITE('d0v0', '01:00.0', '0x10', 4, '0xc0001000'),
            WRITE('d0v0', '01:00.0', '0x04', 2, '0x0'),
            WRITE('d0v0', '01:00.0', '0x04', 2, '0x2'),
            RUN('d0v0', 'dropped'),
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('rangeset-not-empty');
        else expect(kinds(report)).toEqual([]);
      });

      it('3: a hidden device hot-plugged with decoding on', () => {
        // The engine sets a hidden device added after boot up as dom0's (Xen hides devices only at
        // boot, pci_hide_device being __init, and its pci_add_device leaves a device dom_xen owns
        // to iommu_enable_device: docs/xen-gaps.md G9): modify_bars defers the map, which
        // vpci_process_pending drops once the device is dom_xen's again (sets left filled).
        const report = replay(
          [
            '{"event":"host"}',
            '{"event":"boot"}',
            DEVICE('0000:01:00.0', MEM32('0x1000', '0xc0000000'), ',"command":"0x2","hidden":true'),
            RUN('d0v0'),
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('rangeset-not-empty');
        else expect(kinds(report)).toEqual([]);
      });

      it("4: a device hot-plugged with a BAR in a page a guest maps for another owner's device", () => {
        // pci.c pci_add_device gives the new device to dom0 whatever a guest maps of its page.
        const report = replay(
          [
            '{"event":"host"}',
            DEVICE('0000:02:00.0', MEM32('0x100', '0xc0000000')),
            '{"event":"boot"}',
            ...GUEST_MAPS_02,
            DEVICE('0000:03:00.0', MEM32('0x100', '0xc0000800')),
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('subpage-shared');
        else expect(kinds(report)).toEqual([]);
        expect(eventKinds(report).includes('assign-refused')).toBe(profile === 'hardened');
      });

      it('5: MSI-X pages restored after the hole is closed keep the e820 exclusions', () => {
        // Xen restores nothing (restoreMsixPages is hardened's): both devices leave page c0000 out
        // (x86 pci.c pci_sanitize_bar_memory), and it must stay out when 01:00.0 stops decoding.
        const report = replay(
          [
            '{"event":"host","e820":[{"addr":"0xc0000000","size":"0x1000","type":"reserved"}]}',
            DEVICE(
              '0000:01:00.0',
              MEM32('0x100', '0xc0000000'),
              ',"command":"0x2","msix":{"entries":1,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":16}}',
            ),
            DEVICE('0000:02:00.0', MEM32('0x100', '0xc0000100'), ',"command":"0x2"'),
            '{"event":"boot"}',
            WRITE('d0v0', '01:00.0', '0x04', 2, '0x0'),
            RUN('d0v0', 'done'),
            WRITE('d0v0', '02:00.0', '0x04', 2, '0x0'),
            RUN('d0v0', 'done'),
            '{"event":"assert","maps":{"domain":0,"gfn":"0xc0000","count":1}}',
          ],
          profile,
        );
        expect(kinds(report)).toEqual([]);
      });

      it('6: BARs of a guest over each other and an e820 hole at once', () => {
        // Xen removes e820 frames from guest frame numbers (G5), the same for both BARs; hardened
        // removes the host frames each BAR maps, so the page the higher BAR leaves out for the
        // memory map must stay in the lower BAR's set.
        const report = replay(
          [
            '{"event":"host","e820":[{"addr":"0xc0001000","size":"0x1000","type":"reserved"}]}',
            DEVICE('0000:02:00.0', `${MEM32('0x1000', '0xc0000000')},${MEM32('0x1000', '0xc0001000')}`),
            '{"event":"boot"}',
            '{"event":"domain","id":1}',
            '{"event":"assign","sbdf":"0000:02:00.0","domain":1,"expect":"ok"}',
            WRITE('d1v0', '00:00.0', '0x10', 4, '0xe0000000'),
            WRITE('d1v0', '00:00.0', '0x14', 4, '0xe0000000'),
            WRITE('d1v0', '00:00.0', '0x04', 2, '0x2'),
            RUN('d1v0', 'done'),
          ],
          profile,
        );
        expect(kinds(report)).toEqual([]);
      });

      it('7: a ReBAR resize grows a BAR onto a page a guest maps', () => {
        // rebar.c rebar_ctrl_write checks only that the BAR is not mapped, then resizes it in place
        // (pci_size_mem_bar): dom0's BAR now covers the page d1 maps for 02:00.0.
        const report = replay(
          [
            '{"event":"host"}',
            DEVICE(
              '0000:01:00.0',
              MEM32('0x100000', '0xc0000000'),
              ',"rebar":[{"bar":0,"sizes":["0x100000","0x200000"]}]',
            ),
            DEVICE('0000:02:00.0', MEM32('0x1000', '0xc0100000')),
            '{"event":"boot"}',
            ...GUEST_MAPS_02,
            WRITE('d0v0', '01:00.0', '0x108', 4, '0x100'),
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('subpage-shared');
        else expect(kinds(report)).toEqual([]);
        expect(eventKinds(report).includes('move-refused')).toBe(profile === 'hardened');
      });

      it('8: a ReBAR resize while a map of that BAR is pending on a vCPU', () => {
        // rebar.c rebar_ctrl_write: `bar->enabled` is set only when the deferred map completes
        // (header.c modify_decoding), so a resize from another vCPU goes through meanwhile.
        const report = replay(
          [
            '{"event":"host"}',
            DEVICE(
              '0000:01:00.0',
              MEM32('0x100000', '0xc0000000'),
              ',"rebar":[{"bar":0,"sizes":["0x100000","0x200000"]}]',
            ),
            '{"event":"boot"}',
            WRITE('d0v0', '01:00.0', '0x04', 2, '0x2'),
            WRITE('d0v1', '01:00.0', '0x108', 4, '0x100'),
            RUN('d0v0', 'done'),
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('page-unmapped');
        else expect(kinds(report)).toEqual([]);
        expect(eventKinds(report).includes('busy')).toBe(profile === 'hardened');
      });

      it('9: unplugging a device whose unmap fails', () => {
        // pci.c pci_remove_device → vpci_deassign_device frees the vPCI state and leaves the
        // guest's mappings; hardened unmaps first, and here the unmap fails.
        const report = replay(
          [
            '{"event":"host"}',
            DEVICE('0000:02:00.0', MEM32('0x1000', '0xc0000000')),
            '{"event":"boot"}',
            ...GUEST_MAPS_02,
            // map_range refuses frames the domain may no longer map (EPERM), unmapping too.
            '{"event":"iomem","domain":1,"permit":false,"first":"0xc0000","last":"0xc0000"}',
            `{"event":"unplug","sbdf":"0000:02:00.0","expect":"${profile === 'xen' ? 'ok' : 'EPERM'}"}`,
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('unexplained-mapping');
        else expect(kinds(report)).toEqual([]);
        // hardened (unmapOnDeassign): the removal is refused, the device stays the guest's.
        const left = report.devices.find((d) => d.sbdf === '0000:02:00.0');
        expect(left?.owner).toBe(profile === 'xen' ? undefined : 1);
      });

      it('10 (camp4): Arm, a mapped ROM disabled and moved out of its bridge window in one write', () => {
        // header.c rom_write defers the ROM-only unmap (modify_bars) and moves rom->addr at once;
        // when the unmap is done, modify_decoding flags the ROM off only if pci_check_bar passes at
        // its current address, and Arm's (pci-host-common.c is_bar_valid) refuses 0xfffff800,
        // outside the one window: the ROM stays enabled with nothing mapped. Hardened
        // (serialOperations) moves the ROM once its unmap is done, so it is flagged off first.
        const report = replay(
          [
            '{"event":"host","arch":"arm","hostBridges":[{"windows":[{"addr":"0xe0000000","size":"0x1000000"}]}]}',
            '{"event":"device","sbdf":"0000:00:02.0","rom":{"size":"0x2000","addr":"0xe00d6000","enabled":true},"command":"0x2"}',
            '{"event":"boot"}',
            '{"event":"assert","maps":{"domain":0,"gfn":"0xe00d6","count":2,"mfn":"0xe00d6","type":"mmio_direct"}}',
            WRITE('d0v0', '00:02.0', '0x30', 4, '0xfffff800'),
            RUN('d0v0', 'done'),
            '{"event":"assert","maps":{"domain":0,"gfn":"0xe00d6","count":2}}',
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('page-unmapped');
        else expect(kinds(report)).toEqual([]);
        const rom = report.devices[0]!.bars.find((b) => b.type === 'rom')!;
        expect([rom.addr, rom.enabled]).toEqual(['0xfffff800', profile === 'xen']);
      });

      it('11 (camp4): Arm, VF Enable with VF MSE set, the VFs on a bus no host bridge holds', () => {
        // Arm's pci_check_bar (pci-host-common.c is_bar_valid) asks the device's own host bridge,
        // found by its bus (pci_find_host_bridge): none holds bus 0xff, so the series' per-VF
        // modify_bars logs each VF BAR ("invalid position") and maps nothing. Hardened's
        // whole-range map (mapVfBarRanges) checked the range against the PF's bridge and mapped
        // all 24 pages, each VF flagged off. xen: VF MSE was on before, v1's control_write maps
        // only when VF MSE changes, so nothing is mapped or logged.
        const report = replay(
          [
            '{"event":"host","arch":"arm","hostBridges":[{"busStart":0,"busEnd":1,"windows":[{"addr":"0xe0000000","size":"0x4000000"}]}]}',
            `{"event":"device","sbdf":"0000:00:00.0","sriov":{"totalVfs":6,"firstVfOffset":"0xff00","vfStride":2,"numVfs":6,"vfBars":[${VF_BAR0},null],"vfMemorySpace":true}}`,
            '{"event":"boot"}',
            WRITE('d0v0', '00:00.0', '0x108', 2, '0x9'),
            RUN('d0v0', 'done'),
            '{"event":"assert","maps":{"domain":0,"gfn":"0xe0280","count":24}}',
          ],
          profile,
        );
        expect(kinds(report)).toEqual([]);
        expect(refusedVfs(report)).toEqual(
          profile === 'xen'
            ? []
            : [
                '0000:ff:00.0',
                '0000:ff:00.2',
                '0000:ff:00.4',
                '0000:ff:00.6',
                '0000:ff:01.0',
                '0000:ff:01.2',
              ],
        );
      });

      it("12: Arm, VFs across two buses, one under a bridge other than the PF's and one under none", () => {
        // The PF's bridge (bus 0) has no window over the VF BARs; VFs 0 and 1 (bus 1) are under a
        // bridge whose window holds theirs, VFs 2-5 (bus 2) under none: is_bar_valid takes VF 0's
        // and VF 1's BARs alone. Hardened maps exactly those 8 pages and unmaps them at VF MSE off
        // (it had checked the whole range against the PF's bridge, mapped nothing and flagged VFs
        // 0 and 1 on). xen: v1's map_vf calls overwrite each other's operation (F9): VF 0 alone is
        // mapped, VF 1's set stays filled; VFs 2-5 are logged and never mapped either way.
        const report = replay(
          [
            '{"event":"host","arch":"arm","hostBridges":[{"busStart":0,"busEnd":0,"windows":[{"addr":"0xe0000000","size":"0x100000"}]},{"busStart":1,"busEnd":1,"windows":[{"addr":"0xe0200000","size":"0x100000"}]}]}',
            `{"event":"device","sbdf":"0000:00:00.0","sriov":{"totalVfs":6,"firstVfOffset":"0x1fc","vfStride":2,"numVfs":6,"vfBars":[${VF_BAR0},null]}}`,
            '{"event":"boot"}',
            WRITE('d0v0', '00:00.0', '0x108', 2, '0x1'),
            WRITE('d0v0', '00:00.0', '0x108', 2, '0x9'),
            RUN('d0v0', 'done'),
            `{"event":"assert","maps":{"domain":0,"gfn":"0xe0280","count":${profile === 'xen' ? 4 : 8},"mfn":"0xe0280","type":"mmio_direct"}}`,
            `{"event":"assert","maps":{"domain":0,"gfn":"${profile === 'xen' ? '0xe0284","count":20' : '0xe0288","count":16'}}}`,
            ...(profile === 'xen'
              ? []
              : [
                  WRITE('d0v0', '00:00.0', '0x108', 2, '0x1'),
                  RUN('d0v0', 'done'),
                  '{"event":"assert","maps":{"domain":0,"gfn":"0xe0280","count":24}}',
                ]),
          ],
          profile,
        );
        if (profile === 'xen') expect(kinds(report)).toContain('rangeset-not-empty');
        else expect(kinds(report)).toEqual([]);
        expect(refusedVfs(report)).toEqual(['0000:02:00.0', '0000:02:00.2', '0000:02:00.4', '0000:02:00.6']);
      });
    });
  }
});
