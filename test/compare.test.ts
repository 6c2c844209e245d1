/**
 * `vpci-replay --compare`: one trace replayed under several rule sets, and the steps at which their
 * mappings part. The expected differences come from the rules' texts (docs/rule-sets.md,
 * docs/xen-gaps.md), not from running the tool: e.g. under `hardened`, `refuseSubpageSharing` leaves
 * out a guest frame whose host page holds another domain's BAR (XSA-461), which `xen` maps
 * (header.c `modify_bars` maps every page of the BAR).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Report } from '@vpci/replay';
import { describe, expect, it } from 'vitest';
import { cli, scratchDirectory } from './support/cli.js';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');
const dir = scratchDirectory('vpci-compare-');

describe('--compare on seed 002 layout 2 (XSA-461: four functions whose 32-byte BARs share one host page)', () => {
  const trace = join(EXAMPLES, 'seed-002-layout2-xsa461.jsonl');

  it('shows xen mapping the shared page into both guests and hardened leaving it out, with the rule', async () => {
    const run = await cli(['--compare', 'xen,hardened', '--json', trace]);
    expect(run.stderr).toBe('');
    const report = JSON.parse(run.stdout) as Report;
    // The report format is extended, not changed: the first rule set's report, plus `compare`.
    expect(report.format).toBe('vpci-replay-report/1');
    expect(report.machine?.profile).toBe('xen');
    const compare = report.compare!;
    expect(compare.ruleSets).toEqual(['xen', 'hardened']);
    // d1 (00:01.0 → 0000:01:00.0) and d2 (0000:01:01.0) each map their 64-bit BAR2 at guest frame
    // 0x8000000; host page 0x7050000 holds the BARs of 01:00.0, 01:01.0 (d2) and 01:02.0 (d0).
    const parts = compare.steps.flatMap((step) =>
      step.ranges.map((range) => ({ domain: step.domain, range, rules: step.rules })),
    );
    for (const domain of [1, 2]) {
      const part = parts.find((p) => p.domain === domain && p.range.gfn === '0x8000000');
      expect(part, `d${domain}`).toBeDefined();
      expect(part!.range.agree).toBe(false);
      expect(part!.range.mapped.xen).toMatchObject({ mfn: '0x7050000', type: 'mmio_direct' });
      expect(part!.range.mapped.hardened).toBeNull();
      expect(part!.rules.hardened!.some((r) => r.includes('subpage-shared'))).toBe(true);
      expect(part!.rules.xen).toEqual([]);
    }
    // xen's violations are the ones the trace declares (invariant 4, subpage-shared): no finding.
    expect(run.status).toBe(0);
    expect(compare.runs[0]!.violations.every((v) => v.kind === 'subpage-shared' && v.expected)).toBe(true);
    expect(compare.runs[1]!.violations).toEqual([]);
  });

  it('prints the same steps as text, and writes them as a page with --html', async () => {
    const html = join(dir, 'compare.html');
    const run = await cli(['--compare', 'xen,hardened', '--html', html, trace]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^vpci-replay --compare seed-002-layout2-xsa461\.jsonl: \d+ trace lines under xen, hardened/,
    );
    expect(run.stdout).toMatch(/d1 gfn 0x8000000 \(1 page\) 0000:01:00\.0 BAR2: differ/);
    expect(run.stdout).toMatch(/xen +mfn 0x7050000 mmio_direct \(0000:01:00\.0 BAR2\); was not mapped/);
    expect(run.stdout).toMatch(/hardened +not mapped; unchanged/);
    const page = readFileSync(html, 'utf8');
    expect(page).toMatch(/^<!DOCTYPE html>/);
    expect(page).toContain('d2 gfn 0x8000000 (1 page) 0000:01:01.0 BAR2: differ');
  });
});

describe('--compare on seed 002 layout 1 (one device, sub-page BARs and the MSI-X table in one page)', () => {
  it('finds no step: hardened changes nothing for a device alone in its pages', async () => {
    // Every switch of `hardened` guards against another domain or a failure; this trace has neither.
    const run = await cli([
      '--compare',
      'xen,hardened',
      join(EXAMPLES, 'seed-002-layout1-msix-subpage.jsonl'),
    ]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('The rule sets map every frame alike at every step.');
  });
});

describe('--compare refuses bad values with exit status 2 and a message naming the option', () => {
  const trace = join(EXAMPLES, 'seed-002-layout1-msix-subpage.jsonl');
  it.each([
    [
      ['--compare', 'xen,bhyve'],
      /--compare is 'xen,bhyve': 'bhyve' is not a rule set; expected two or more of xen, hardened/,
    ],
    [['--compare', 'xen'], /--compare is 'xen': one rule set; expected two or more of/],
    [['--compare', 'xen,xen'], /--compare is 'xen,xen': 'xen' is named twice/],
    [['--compare', ''], /--compare is '': an empty name/],
    [['--compare', 'xen,hardened', '--profile', 'xen'], /--profile cannot be combined with --compare/],
    [['--compare', 'xen,hardened', '--svg', '-'], /--svg cannot be combined with --compare/],
  ])('%j', async (args, message) => {
    const run = await cli([...args, trace]);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
