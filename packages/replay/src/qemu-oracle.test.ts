/**
 * QEMU's mapping decisions as the oracle of a replayed log: hand-written logs in QEMU 7.2's format
 * where QEMU and Xen agree, where Xen's rules part them, and where nothing explains the difference.
 * What Xen does is `bar_write` in xen/drivers/vpci/header.c (a hardware domain's BAR write while the
 * BAR is mapped is ignored) and vPCI's handling of I/O BARs (none: the hardware domain has the ports).
 */
import { describe, expect, it } from 'vitest';
import { renderHtml } from './html.js';
import { convertQemuLog } from './qemu.js';
import { replayQemuConversion } from './qemu-oracle.js';
import { reportJson } from './report.js';
import { textReport } from './text-report.js';

/** A device with a 16 KiB memory BAR0 and a 32-byte I/O BAR1, sized as firmware does. */
const SIZED = [
  'pci_cfg_read testdev 00:03.0 @0x0 -> 0x1b36',
  'pci_cfg_read testdev 00:03.0 @0x2 -> 0x5',
  'pci_cfg_read testdev 00:03.0 @0xe -> 0x0',
  'pci_cfg_read testdev 00:03.0 @0x6 -> 0x0',
  'pci_cfg_read testdev 00:03.0 @0x4 -> 0x0',
  'pci_cfg_read testdev 00:03.0 @0x10 -> 0x0',
  'pci_cfg_write testdev 00:03.0 @0x10 <- 0xffffffff',
  'pci_cfg_read testdev 00:03.0 @0x10 -> 0xffffc000',
  'pci_cfg_read testdev 00:03.0 @0x14 -> 0x1',
  'pci_cfg_write testdev 00:03.0 @0x14 <- 0xffffffff',
  'pci_cfg_read testdev 00:03.0 @0x14 -> 0xffffffe1',
  'pci_cfg_write testdev 00:03.0 @0x10 <- 0xfe000000',
  'pci_cfg_write testdev 00:03.0 @0x14 <- 0xc001',
];

const replay = (lines: string[], rules?: 'qemu') =>
  replayQemuConversion(convertQemuLog(lines), 'hand-written.log', rules === undefined ? {} : { rules });

/** Moved while decoding, then decoding off and on again: what Xen's bar_write ignores and QEMU follows. */
const MOVED = [
  ...SIZED,
  'pci_cfg_write testdev 00:03.0 @0x4 <- 0x3',
  'pci_update_mappings_add testdev 00:03.0 0,0xfe000000+0x4000',
  'pci_update_mappings_add testdev 00:03.0 1,0xc000+0x20',
  'pci_cfg_write testdev 00:03.0 @0x10 <- 0xfd000000',
  'pci_update_mappings_del testdev 00:03.0 0,0xfe000000+0x4000',
  'pci_update_mappings_add testdev 00:03.0 0,0xfd000000+0x4000',
  'pci_cfg_write testdev 00:03.0 @0x4 <- 0x0',
  'pci_update_mappings_del testdev 00:03.0 0,0xfd000000+0x4000',
  'pci_update_mappings_del testdev 00:03.0 1,0xc000+0x20',
];

describe("QEMU's mapping decisions", () => {
  it('agree with the replay: matched; an I/O BAR QEMU maps is explained by Xen handing out ports', () => {
    const report = replay([
      ...SIZED,
      'pci_cfg_write testdev 00:03.0 @0x4 <- 0x3',
      'pci_update_mappings_add testdev 00:03.0 0,0xfe000000+0x4000',
      'pci_update_mappings_add testdev 00:03.0 1,0xc000+0x20',
    ]);
    const qemu = report.qemu!;
    expect(qemu.decisions).toEqual({ compared: true, total: 2, matched: 1, explained: 1, unexplained: 0 });
    expect(qemu.divergences).toMatchObject([
      {
        line: 14,
        sbdf: '0000:00:03.0',
        bar: 1,
        qemu: '0xc000',
        engine: null,
        decisions: [16],
        rule: 'io-bar',
      },
    ]);
    expect(report.status).toBe('ok');
  });

  it('part where Xen ignored a BAR write while it was mapped, until the BAR is written again', () => {
    const report = replay([
      ...SIZED,
      'pci_cfg_write testdev 00:03.0 @0x4 <- 0x2',
      'pci_update_mappings_add testdev 00:03.0 0,0xfe000000+0x4000',
      // Moved while decoding: QEMU follows, Xen keeps the BAR where it is mapped.
      'pci_cfg_write testdev 00:03.0 @0x10 <- 0xfd000000',
      'pci_update_mappings_del testdev 00:03.0 0,0xfe000000+0x4000',
      'pci_update_mappings_add testdev 00:03.0 0,0xfd000000+0x4000',
      'pci_cfg_write testdev 00:03.0 @0x4 <- 0x0',
      'pci_update_mappings_del testdev 00:03.0 0,0xfd000000+0x4000',
      'pci_cfg_write testdev 00:03.0 @0x4 <- 0x2',
      'pci_update_mappings_add testdev 00:03.0 0,0xfd000000+0x4000',
      // Written with decoding off, the write is taken: they agree again.
      'pci_cfg_write testdev 00:03.0 @0x4 <- 0x0',
      'pci_update_mappings_del testdev 00:03.0 0,0xfd000000+0x4000',
      'pci_cfg_write testdev 00:03.0 @0x10 <- 0xfd000000',
      'pci_cfg_write testdev 00:03.0 @0x4 <- 0x2',
      'pci_update_mappings_add testdev 00:03.0 0,0xfd000000+0x4000',
    ]);
    const qemu = report.qemu!;
    expect(qemu.decisions).toEqual({ compared: true, total: 7, matched: 4, explained: 3, unexplained: 0 });
    expect(qemu.divergences.map((d) => [d.line, d.qemu, d.engine, d.rule])).toEqual([
      [16, '0xfd000000', '0xfe000000', 'bar-write-ignored'],
      [21, '0xfd000000', '0xfe000000', 'bar-write-ignored'],
    ]);
    expect(qemu.divergences[1]!.message).toContain(
      'Xen ignored the write of line 16 while the BAR was mapped',
    );
    expect(report.status).toBe('ok');
  });

  it('part where no Xen rule explains it: listed as unexplained, and the replay fails', () => {
    const report = replay([
      ...SIZED,
      'pci_cfg_write testdev 00:03.0 @0x4 <- 0x2',
      'pci_update_mappings_add testdev 00:03.0 0,0xfc000000+0x4000',
    ]);
    const qemu = report.qemu!;
    expect(qemu.decisions).toMatchObject({ total: 1, matched: 0, explained: 0, unexplained: 1 });
    expect(qemu.divergences).toMatchObject([
      { line: 14, bar: 0, qemu: '0xfc000000', engine: '0xfe000000', explained: false, rule: null },
    ]);
    expect(report.status).toBe('failed');
    const text = textReport(report);
    expect(text).toContain(
      "QEMU's 1 mapping decisions: 0 matched, 0 explained by Xen's rules, 1 unexplained",
    );
    expect(text).toContain(
      'line 14: 0000:00:03.0 BAR0: QEMU maps it at 0xfc000000, the replay maps it at 0xfe000000',
    );
    expect(text).toContain('[UNEXPLAINED]');
    expect(text).toContain('1 unexplained divergence from QEMU');
    expect(renderHtml(report)).toContain('Divergences from QEMU&#39;s mapping decisions — 1 unexplained');
    expect(JSON.parse(reportJson(report)).qemu.divergences[0].qemu).toBe('0xfc000000');
  });

  it("under the qemu rules: what Xen's rules explain (the I/O BAR's ports, the ignored move) is matched", () => {
    // Xen: the I/O BAR's add (io-bar) and the move's del and add (bar-write-ignored) are explained;
    // both unmapped at the end, the last two match.
    const xen = replay(MOVED);
    expect(xen.qemu!.decisions).toEqual({
      compared: true,
      total: 6,
      matched: 3,
      explained: 3,
      unexplained: 0,
    });
    const qemu = replay(MOVED, 'qemu');
    expect(qemu.qemu!.decisions).toEqual({
      compared: true,
      total: 6,
      matched: 6,
      explained: 0,
      unexplained: 0,
    });
    expect(qemu.qemu!.divergences).toEqual([]);
    expect(qemu.status).toBe('ok');
    expect(textReport(qemu)).toContain('rules qemu, profile xen');
  });

  it('under the qemu rules nothing is explained: a decision they do not reproduce fails the replay', () => {
    // QEMU would never map BAR0 at 0xfc000000 here: the register holds 0xfe000000.
    const report = replay(
      [
        ...SIZED,
        'pci_cfg_write testdev 00:03.0 @0x4 <- 0x3',
        'pci_update_mappings_add testdev 00:03.0 0,0xfc000000+0x4000',
        'pci_update_mappings_add testdev 00:03.0 1,0xd000+0x20',
      ],
      'qemu',
    );
    expect(report.qemu!.decisions).toEqual({
      compared: true,
      total: 2,
      matched: 0,
      explained: 0,
      unexplained: 2,
    });
    expect(report.qemu!.divergences.map((d) => [d.bar, d.qemu, d.engine, d.rule])).toEqual([
      [0, '0xfc000000', '0xfe000000', null],
      [1, '0xd000', '0xc000', null],
    ]);
    expect(report.qemu!.divergences[0]!.message).toContain('the qemu rules should have decided as QEMU did');
    expect(report.status).toBe('failed');
  });

  it('are not compared when the log has none (traced without pci_update_mappings_*)', () => {
    const report = replay([...SIZED, 'pci_cfg_write testdev 00:03.0 @0x4 <- 0x2']);
    expect(report.qemu!.decisions.compared).toBe(false);
    expect(report.qemu!.divergences).toEqual([]);
    expect(textReport(report)).toContain(
      'none in the log (traced without pci_update_mappings_*), nothing compared',
    );
  });
});
