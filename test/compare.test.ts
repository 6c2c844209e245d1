/**
 * `vpci-replay --compare`: one trace replayed under several rule sets, and the steps at which their
 * mappings part. The expected differences come from the rules' texts (docs/rule-sets.md,
 * docs/xen-gaps.md), not from running the tool: e.g. under `hardened`, `refuseSubpageSharing` leaves
 * out a guest frame whose host page holds another domain's BAR (XSA-461), which `xen` maps
 * (header.c `modify_bars` maps every page of the BAR); `xen` defers a map to the vCPU (`defer_map`)
 * where `qemu` and `kvm-vfio` map in the write (`pci_update_mappings`); `xen` ignores a BAR written
 * while mapped (`bar_write`) where they move it; `kvm-vfio` never maps a sub-page BAR whose host page
 * holds another BAR (Linux `vfio_pci_probe_mmaps`) nor the ROM (QEMU `vfio_pci_size_rom`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { traceDeviceLine } from '@vpci/firmware';
import type { CompareStep, Report } from '@vpci/replay';
import { describe, expect, it } from 'vitest';
import { SEED_002_LAYOUT_2 } from './fixtures/seed-layouts.js';
import { cli, scratchDirectory, writeTrace } from './support/cli.js';

const EXAMPLES = join(import.meta.dirname, '..', 'examples');
const QEMU_FIXTURES = join(import.meta.dirname, 'fixtures', 'qemu');

/** The `--json` output's comparison. */
async function compared(args: string[]): Promise<{ status: number; report: Report }> {
  const run = await cli([...args, '--json']);
  expect(run.stderr).toBe('');
  return { status: run.status, report: JSON.parse(run.stdout) as Report };
}

/** Every range of every step, with its step. */
function ranges(steps: readonly CompareStep[]) {
  return steps.flatMap((step) => step.ranges.map((range) => ({ step, range })));
}
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

describe('--compare xen,qemu,kvm-vfio on seed 002 layout 1', () => {
  it('xen maps at the run line (defer_map), qemu and kvm-vfio in the command write; page 0xd1924 no one maps', async () => {
    const { status, report } = await compared([
      '--compare',
      'xen,qemu,kvm-vfio',
      join(EXAMPLES, 'seed-002-layout1-msix-subpage.jsonl'),
    ]);
    expect(status).toBe(0);
    const all = ranges(report.compare!.steps);
    // Line 10 turns decoding on: qemu and kvm-vfio map BAR3–5 there, xen not yet.
    const parted = all.filter(({ step }) => step.line === 10);
    expect(parted.length).toBeGreaterThan(0);
    for (const { range } of parted) {
      expect(range.agree).toBe(false);
      expect(range.mapped.xen).toBeNull();
      expect(range.mapped.qemu).not.toBeNull();
      expect(range.mapped['kvm-vfio']).toEqual(range.mapped.qemu);
    }
    // Line 11 runs xen's deferred map: they agree again.
    expect(all.filter(({ step }) => step.line === 11).every(({ range }) => range.agree)).toBe(true);
    // Page 0xd1924 (BAR0–2 and the MSI-X table): Xen's MSI-X hole, QEMU's table region, and a
    // sub-page BAR vfio-pci will not mmap (its page holds other BARs): never mapped, never a step.
    const page = 0xd1924;
    for (const { range } of all) {
      const first = Number(range.gfn);
      expect(page < first || page >= first + range.count).toBe(true);
    }
  });
});

describe('--compare xen,kvm-vfio on seed 002 layout 2 (XSA-461)', () => {
  it('kvm-vfio never maps the page the functions share: vfio-pci will not mmap a sub-page BAR there', async () => {
    const { report } = await compared([
      '--compare',
      'xen,kvm-vfio',
      join(EXAMPLES, 'seed-002-layout2-xsa461.jsonl'),
    ]);
    for (const domain of [1, 2]) {
      const part = ranges(report.compare!.steps).find(
        ({ step, range }) => step.domain === domain && range.gfn === '0x8000000',
      );
      expect(part, `d${domain}`).toBeDefined();
      expect(part!.range.mapped.xen).toMatchObject({ mfn: '0x7050000' });
      expect(part!.range.mapped['kvm-vfio']).toBeNull();
      expect(
        part!.step.rules['kvm-vfio']!.some((r) =>
          /BAR2: kvm-vfio: .*trapped: vfio-pci does not let the BAR be mmapped/.test(r),
        ),
      ).toBe(true);
    }
    // kvm-vfio breaks no invariant here: the page it leaves to QEMU is withheld, not missing.
    expect(report.compare!.runs[1]!.violations).toEqual([]);
  });
});

describe('--compare on seed 002 layout 2 of test/fixtures/seed-layouts.ts, as the hardware domain', () => {
  // The four pci-testdev functions as the host has them; dom0's driver turns decoding on for 00:01.0,
  // whose 32-byte BAR2 shares host page 0x7050000 with 00:02.0's and 00:03.0's.
  const trace = writeTrace(dir, 'seed-002-layout-2-dom0.jsonl', [
    '{"event":"host"}',
    ...SEED_002_LAYOUT_2.devices.map((device) => traceDeviceLine(device)),
    '{"event":"boot"}',
    '{"event":"write","vcpu":"d0v0","sbdf":"00:01.0","reg":"0x04","size":2,"value":"0x2"}',
    '{"event":"run","vcpu":"d0v0"}',
  ]);

  it('xen maps the shared page; kvm-vfio and cloud-hypervisor do not: vfio-pci will not mmap the BAR', async () => {
    const { report } = await compared(['--compare', 'xen,kvm-vfio,cloud-hypervisor', trace]);
    const shared = ranges(report.compare!.steps).filter(
      ({ step, range }) => step.domain === 0 && range.gfn === '0x7050000',
    );
    expect(shared.length).toBeGreaterThan(0);
    const last = shared.at(-1)!.range;
    // header.c modify_bars maps every page of the BAR (the page's sharing is XSA-461's hazard).
    expect(last.mapped.xen).toMatchObject({ mfn: '0x7050000', bar: expect.stringMatching(/BAR2$/) });
    // vfio_pci_probe_mmaps: a sub-page BAR is mmapped only with its page's rest reserved for it.
    expect(last.mapped['kvm-vfio']).toBeNull();
    expect(last.mapped['cloud-hypervisor']).toBeNull();
    // cloud-hypervisor maps the functions' 4 KiB BAR0s when they are added (map_mmio_regions), before
    // any command write: a step at the boot line where only it maps them.
    const added = ranges(report.compare!.steps).find(
      ({ step, range }) => step.line === 6 && range.gfn === '0xfe800',
    );
    expect(added?.range.mapped['cloud-hypervisor']).toMatchObject({ mfn: '0xfe800' });
    expect(added?.range.mapped.xen).toBeNull();
  });
});

describe('--compare on a BAR written while decoding is on', () => {
  const trace = writeTrace(dir, 'bar-while-decoding.jsonl', [
    '{"event":"host"}',
    '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x4000","addr":"0xfe000000"}]}',
    '{"event":"boot"}',
    '{"event":"write","vcpu":"d0v0","sbdf":"03:00.0","reg":"0x04","size":2,"value":"0x2"}',
    '{"event":"run","vcpu":"d0v0"}',
    '{"event":"write","vcpu":"d0v0","sbdf":"03:00.0","reg":"0x10","size":4,"value":"0xfd000000"}',
  ]);

  it('xen ignores it (bar_write), qemu and kvm-vfio move the mapping at once (pci_update_mappings)', async () => {
    const { report } = await compared(['--compare', 'xen,qemu,kvm-vfio', trace]);
    const moved = ranges(report.compare!.steps).filter(({ step }) => step.line === 6);
    const at = (gfn: string) => moved.find(({ range }) => range.gfn === gfn)!;
    // The new address: qemu and kvm-vfio map it, xen does not.
    expect(at('0xfd000').range.mapped.xen).toBeNull();
    expect(at('0xfd000').range.mapped.qemu).toMatchObject({ mfn: '0xfd000' });
    expect(at('0xfd000').range.mapped['kvm-vfio']).toMatchObject({ mfn: '0xfd000' });
    // The old one: xen keeps it, the others took it out.
    expect(at('0xfe000').range.mapped.xen).toMatchObject({ mfn: '0xfe000' });
    expect(at('0xfe000').range.mapped.qemu).toBeNull();
    const rules = moved[0]!.step.rules;
    expect(rules.xen!.some((r) => r.startsWith('bar-write-ignored'))).toBe(true);
    expect(rules['kvm-vfio']!.some((r) => /moved at once with its register/.test(r))).toBe(true);
  });
});

describe('--compare on a QEMU log (test/fixtures/qemu)', () => {
  const log = join(QEMU_FIXTURES, 'msix-linux.trace.log.gz');

  it('xen and qemu part only while a Xen map is deferred: every part meets again, and they end alike', async () => {
    // Linux turns decoding off before it moves a BAR, so no write of this log is one Xen ignores
    // (the QEMU oracle explains none as bar-write-ignored): what is left is defer_map's timing.
    const { status, report } = await compared(['--qemu', '--compare', 'xen,qemu', log]);
    expect(status).toBe(0);
    const open = new Map<string, number>();
    for (const { step, range } of ranges(report.compare!.steps)) {
      const key = `${step.domain}:${range.gfn}`;
      if (range.agree) open.delete(key);
      else open.set(key, step.line);
    }
    expect([...open]).toEqual([]);
    expect(report.compare!.steps.every((step) => step.source === null || step.source > 0)).toBe(true);
  });

  it('kvm-vfio never maps the ROM that qemu maps once its enable bit is set (vfio_pci_size_rom)', async () => {
    const { report } = await compared(['--qemu', '--compare', 'qemu,kvm-vfio', log]);
    const rom = ranges(report.compare!.steps).find(
      ({ range }) => range.bars.some((bar) => bar.endsWith(' ROM')) && range.mapped.qemu !== null,
    );
    expect(rom).toBeDefined();
    expect(rom!.range.mapped['kvm-vfio']).toBeNull();
    expect(
      rom!.step.rules['kvm-vfio']!.some((r) => /ROM: kvm-vfio: not mapped.*vfio_pci_size_rom/.test(r)),
    ).toBe(true);
    // Every other page both map alike: the fixture's MSI-X PBAs share the table's page.
    expect(
      ranges(report.compare!.steps).every(({ range }) => range.bars.some((bar) => bar.endsWith(' ROM'))),
    ).toBe(true);
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
    [['--compare', 'xen,qemu', '--rules', 'qemu'], /--rules cannot be combined with --compare/],
    [['--compare', 'xen,hardened', '--svg', '-'], /--svg cannot be combined with --compare/],
  ])('%j', async (args, message) => {
    const run = await cli([...args, trace]);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(message);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
