/**
 * The issue-18 example traces (examples/issue18-sriov-{xen,hardened}.jsonl): an SR-IOV PF with 8 VFs
 * of 16 KiB 64-bit BARs with MSI-X (table +0x2000, PBA +0x3000), VF Enable then VF Memory Space Enable
 * from dom0, VFs 0–3 given to two guests that place their BARs and program MSI-X through the hole,
 * then VF MSE off. Every `assert` line's value was worked out by hand from VF n's BAR 0 =
 * 0xfa000000 + n × 0x4000 and the guests' placements (the trace comments show the arithmetic); this
 * test replays both and checks that they hold, and what each profile is expected to show:
 * - xen: the series' v1 maps VF by VF, each `defer_map` overwriting the last (gap F9), walking the
 *   PF's `vf_list`, where staging's `pci_add_device` links each VF in at the head (`list_add`): VF 7
 *   first, VF 0 last, so only VF 0 is mapped and VFs 1–7 keep filled rangesets — seven expected
 *   `rangeset-not-empty` violations; VF 0's frames then stay in dom0's p2m when it goes to guest 1
 *   (`assign_device` leaves them, G3): an expected `unexplained-mapping` and `subpage-shared`;
 * - hardened (`mapVfBarRanges`): every VF is mapped by one operation, and nothing is violated.
 */
import { readFileSync } from 'node:fs';
import { replayText } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const replay = (name: string) =>
  replayText(readFileSync(new URL(`../examples/${name}`, import.meta.url), 'utf8'), name);

describe('issue 18 example traces', () => {
  it('xen: the assertions hold and the v1 flaw shows as expected violations only', () => {
    const report = replay('issue18-sriov-xen.jsonl');
    expect(report.error).toBeNull();
    expect(report.assertions.failures).toEqual([]);
    expect(report.status).toBe('ok');
    // VFs 1–7 (81:11.0 … 81:17.0), each BAR 0, first seen after the VF MSE write (line 26).
    const stale = report.violations.filter((v) => v.kind === 'rangeset-not-empty' && v.bar === 0);
    expect(stale.map((v) => v.sbdf)).toEqual(
      ['11', '12', '13', '14', '15', '16', '17'].map((dev) => `0000:81:${dev}.0`),
    );
    expect(stale.every((v) => v.line === 26)).toBe(true);
    // VF 0's four frames, left in dom0's p2m by its assignment to guest 1 (line 41).
    const left = report.violations.filter((v) => v.kind !== 'rangeset-not-empty');
    expect(left.map((v) => [v.kind, v.line]).sort()).toEqual([
      ['subpage-shared', 41],
      ['unexplained-mapping', 41],
    ]);
    expect(report.violations).toHaveLength(9);
    expect(report.violations.every((v) => v.expected === true)).toBe(true);
  });

  it('hardened: the assertions hold and nothing is violated', () => {
    const report = replay('issue18-sriov-hardened.jsonl');
    expect(report.error).toBeNull();
    expect(report.assertions.failures).toEqual([]);
    expect(report.status).toBe('ok');
    expect(report.violations).toEqual([]);
    expect(report.assertions.total).toBeGreaterThanOrEqual(39);
  });
});
