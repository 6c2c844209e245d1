/**
 * The issue-18 example traces (examples/issue18-sriov-{xen,hardened}.jsonl): an SR-IOV PF with 8 VFs
 * of 16 KiB 64-bit BARs with MSI-X (table +0x2000, PBA +0x3000), VF Enable then VF Memory Space Enable
 * from dom0, VFs 0–3 given to two guests that place their BARs and program MSI-X through the hole,
 * then VF MSE off. Every `assert` line's value was worked out by hand from VF n's BAR 0 =
 * 0xfa000000 + n × 0x4000 and the guests' placements (the trace comments show the arithmetic); this
 * test replays both and checks that they hold, and what each profile is expected to show:
 * - xen: the series' v1 maps VF by VF, each `defer_map` overwriting the last (gap F9), so only VF 7
 *   is mapped and VFs 0–6 keep filled rangesets — seven expected `rangeset-not-empty` violations;
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
    // VFs 0–6 (81:10.0 … 81:16.0), each BAR 0, first seen after the VF MSE write.
    const stale = report.violations.filter((v) => v.kind === 'rangeset-not-empty' && v.bar === 0);
    expect(stale.map((v) => v.sbdf)).toEqual(
      ['10', '11', '12', '13', '14', '15', '16'].map((dev) => `0000:81:${dev}.0`),
    );
    expect(report.violations).toHaveLength(7);
    expect(report.violations.every((v) => v.expected === true && v.line === 24)).toBe(true);
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
