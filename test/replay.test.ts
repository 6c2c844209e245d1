/**
 * Trace replay: every example holds; the report is deterministic; bad input stops at the right line
 * with a message naming the field, the value and the expectation, keeps what came before, and exits 2;
 * the CLI's exit status follows assertions and invariants.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replayCli, replayText, reportJson } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const examples = new URL('../examples/', import.meta.url);
const exampleFiles = readdirSync(examples)
  .filter((f) => f.endsWith('.jsonl'))
  .sort();

/** Runs the CLI in-process and collects what it prints. */
async function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await replayCli(args, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
  });
  return { status, stdout, stderr };
}

function tempTrace(text: string, name = 'trace.jsonl'): string {
  const file = join(mkdtempSync(join(tmpdir(), 'vpci-replay-')), name);
  writeFileSync(file, text);
  return file;
}

const HEADER = [
  '{"event":"host","profile":"xen"}',
  '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x4000","addr":"0xfe000000"}]}',
  '{"event":"boot"}',
];

describe('the examples', () => {
  it('exist for every seed', () => {
    for (const seed of ['000', '001', '002', '003', '004']) {
      expect(exampleFiles.some((f) => f.startsWith(`seed-${seed}`))).toBe(true);
    }
  });

  it.each(exampleFiles)('%s: every assertion holds, no unexpected violation', async (file) => {
    const text = readFileSync(new URL(file, examples), 'utf8');
    const report = replayText(text, file);
    expect(report.error).toBeNull();
    expect(report.assertions.failures).toEqual([]);
    expect(report.assertions.total).toBeGreaterThan(0);
    expect(report.violations.filter((v) => !v.expected)).toEqual([]);
    expect(report.status).toBe('ok');
    const run = await cli([new URL(file, examples).pathname]);
    expect(run.status).toBe(0);
  });
});

describe('determinism (invariant 9)', () => {
  it.each(exampleFiles)('%s: the same trace gives the same JSON bytes', async (file) => {
    const path = new URL(file, examples).pathname;
    const first = await cli(['--json', path]);
    const second = await cli(['--json', path]);
    expect(first.stdout).toBe(second.stdout);
    expect(JSON.parse(first.stdout).format).toBe('vpci-replay-report/1');
  });

  it('names the trace by its file name, not its path', () => {
    const text = `${HEADER.join('\n')}\n`;
    expect(reportJson(replayText(text, 'a.jsonl'))).toBe(reportJson(replayText(text, 'a.jsonl')));
    expect(replayText(text, 'a.jsonl').trace).toBe('a.jsonl');
  });
});

describe('the JSON report', () => {
  it('holds the devices, BARs, p2m extents, events, violations and assertion counts', () => {
    const text = readFileSync(new URL('seed-004-non-identity.jsonl', examples), 'utf8');
    const report = JSON.parse(reportJson(replayText(text, 'seed-004.jsonl')));
    const device = report.devices[0];
    expect(device).toMatchObject({
      sbdf: '0000:03:00.0',
      owner: 1,
      guestSbdf: '0000:00:00.0',
      decoding: true,
    });
    expect(device.bars[0]).toEqual({
      index: 0,
      type: 'mem64',
      addr: '0xfe000000',
      guestAddr: '0xe0000000',
      size: '0x100000',
      prefetchable: false,
      enabled: true,
      gfns: ['0xe0000', '0xe00ff'],
      mfns: ['0xfe000', '0xfe0ff'],
      holes: [
        { gfn: '0xe0002', count: 1, reason: 'msix-table' },
        { gfn: '0xe0003', count: 1, reason: 'msix-pba' },
      ],
      sharesPageWith: [],
    });
    const guest = report.domains.find((d: { id: number }) => d.id === 1);
    expect(guest.p2m[0]).toEqual({ gfn: '0xe0000', mfn: '0xfe000', count: 2, type: 'mmio_direct', order: 0 });
    expect(report.events[0]).toMatchObject({ kind: 'offset-mismatch', bar: 2, guestAddr: '0xe0100200' });
    expect(report.violations[0]).toMatchObject({
      kind: 'rangeset-not-empty',
      expected: true,
      present: false,
    });
    expect(report.assertions.failed).toBe(0);
  });
});

describe('bad input', () => {
  // Each case: a line appended after the header, and what the message must say.
  it.each([
    ['not JSON', '{"event":"write",', 'not JSON'],
    ['an unknown event', '{"event":"poke"}', '\'event\' is "poke"; expected one of: host, device'],
    ['an unknown field', '{"event":"boot","when":"now"}', "'boot.when' is not a field of boot"],
    [
      'a value out of range',
      '{"event":"write","sbdf":"03:00.0","reg":"0x1000","size":4,"value":0}',
      '\'write.reg\' is "0x1000"; expected an integer in 0 … 4095',
    ],
    [
      'a bad access size',
      '{"event":"read","sbdf":"03:00.0","reg":0,"size":3}',
      "'read.size' is 3; expected 1, 2 or 4",
    ],
    [
      'a device that does not exist',
      '{"event":"write","sbdf":"0000:09:00.0","reg":4,"size":2,"value":2}',
      '\'write.sbdf\' is "0000:09:00.0", which is not a device on the machine',
    ],
    [
      'a domain that does not exist',
      '{"event":"assign","sbdf":"03:00.0","domain":7}',
      "'assign.domain' 7 is not a domain",
    ],
    [
      'a vCPU that does not exist',
      '{"event":"run","vcpu":"d0v5"}',
      "'vcpu' d0v5 does not exist; expected d0v0 … d0v1",
    ],
    ['a second boot', '{"event":"boot"}', "a second 'boot'"],
    ['a late host line', '{"event":"host"}', "'host' after the machine was set up"],
    [
      'two checks in one assertion',
      '{"event":"assert","noViolations":true,"crashed":{"domain":0}}',
      'expected exactly one of',
    ],
  ])(
    '%s: stops at that line, says what was expected, keeps what came before',
    async (_name, line, message) => {
      const text = `${[...HEADER, '{"event":"write","sbdf":"03:00.0","reg":"0x10","size":4,"value":"0xfe000000"}', line].join('\n')}\n`;
      const report = replayText(text, 'bad.jsonl');
      expect(report.status).toBe('error');
      expect(report.error?.line).toBe(5);
      expect(report.error?.message).toContain(message);
      expect(report.applied).toBe(4);
      expect(report.devices.map((d) => d.sbdf)).toEqual(['0000:03:00.0']);
      const file = tempTrace(text, 'bad.jsonl');
      const run = await cli([file]);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(`${file}:5: `);
      expect(run.stderr).toContain(message);
      expect(run.stdout).toContain('stopped at line 5');
    },
  );

  it('an access before boot is refused', () => {
    const report = replayText('{"event":"read","sbdf":"00:00.0","reg":0,"size":2}\n');
    expect(report.error).toEqual({ line: 1, message: expect.stringContaining("'read' before 'boot'") });
  });

  it('reading an empty slot is how buses are scanned: all-ones, not an error', () => {
    const report = replayText(
      `${HEADER.join('\n')}\n{"event":"read","sbdf":"00:1f.7","reg":0,"size":4,"expect":"0xffffffff"}\n`,
    );
    expect(report.status).toBe('ok');
  });
});

/** Guest 1 takes 03:00.0 and maps its BAR at guest address 0xe0000000 (five lines). */
const GUEST_1_MAPS_03 = [
  '{"event":"domain","id":1}',
  '{"event":"assign","sbdf":"03:00.0","domain":1}',
  '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0xe0000000"}',
  '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x04","size":2,"value":2}',
  '{"event":"run","vcpu":"d1v0"}',
];

/** The violations of `text` replayed with scoped checks, once held equal to the whole check's. */
function violationsScopedAndWhole(text: string): ReturnType<typeof replayText>['violations'] {
  const scoped = replayText(text, 't.jsonl').violations;
  expect(replayText(text, 't.jsonl', { invariantChecks: 'full' }).violations).toEqual(scoped);
  return scoped;
}

describe('invariants after each line', () => {
  it('sees a hardware-domain BAR moved into a page a guest maps, at that line, scoped or not', () => {
    const text = [
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"}]}',
      '{"event":"device","sbdf":"0000:04:00.0","bars":[{"type":"mem32","size":"0x100","addr":"0xfd000000"}]}',
      '{"event":"boot"}',
      ...GUEST_1_MAPS_03,
      // dom0 moves 04:00.0's (unmapped) 256-byte BAR into host page 0xfe000, which guest 1 maps.
      '{"event":"write","vcpu":"d0v0","sbdf":"04:00.0","reg":"0x10","size":4,"value":"0xfe000800"}',
      '{"event":"write","vcpu":"d0v0","sbdf":"04:00.0","reg":"0x3c","size":1,"value":5}',
    ].join('\n');
    expect(violationsScopedAndWhole(text)).toMatchObject([
      { line: 9, kind: 'subpage-shared', domain: 1, mfn: '0xfe000', other: '0000:04:00.0', otherDomain: 0 },
    ]);
  });

  it('sees the hardware domain move a BAR vPCI does not handle into a page a guest maps, at that line', () => {
    // 01:00.0's vPCI set-up fails at boot (its map is the first p2m write, made to fail), so its BAR
    // is only the hardware's; dom0 then moves it into host page 0xfe000, which guest 1 maps.
    const text = [
      '{"event":"device","sbdf":"0000:01:00.0","command":6,"bars":[{"type":"mem32","size":"0x10","addr":"0xc0000000"}]}',
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"}]}',
      '{"event":"fault","domain":0,"after":1}',
      '{"event":"boot"}',
      ...GUEST_1_MAPS_03,
      '{"event":"write","vcpu":"d0v0","sbdf":"01:00.0","reg":"0x04","size":2,"value":0}',
      '{"event":"write","vcpu":"d0v0","sbdf":"01:00.0","reg":"0x10","size":4,"value":"0xfe000800"}',
      '{"event":"write","vcpu":"d0v0","sbdf":"01:00.0","reg":"0x3c","size":1,"value":5}',
    ].join('\n');
    expect(violationsScopedAndWhole(text)).toMatchObject([
      {
        line: 11,
        kind: 'subpage-shared',
        domain: 1,
        mfn: '0xfe000',
        other: '0000:01:00.0',
        otherDomain: 0,
      },
    ]);
  });

  it('checks after a read whose vCPU first finished its pending map, scoped or not', () => {
    // 04:00.0 shares host page 0xfe000 with guest 1's device; dom0's map of it is finished by a read.
    const text = [
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x800","addr":"0xfe000000"}]}',
      '{"event":"device","sbdf":"0000:04:00.0","bars":[{"type":"mem32","size":"0x100","addr":"0xfe000800"}]}',
      '{"event":"boot"}',
      ...GUEST_1_MAPS_03,
      '{"event":"write","vcpu":"d0v0","sbdf":"04:00.0","reg":"0x04","size":2,"value":2}',
      '{"event":"read","vcpu":"d0v0","sbdf":"04:00.0","reg":"0x00","size":4}',
    ].join('\n');
    expect(violationsScopedAndWhole(text).map((v) => [v.line, v.domain])).toEqual([
      [8, 1],
      [10, 0],
    ]);
  });

  // Found by the replay property (FC_SEED=1460509594): a guest's map preempted, then another of its
  // vCPUs moves the BAR (Xen allows it): the frames already mapped are no longer the BAR's.
  it('sees a BAR moved while its map is pending, at that line, scoped or not', () => {
    const text = [
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x80000","addr":"0xc0000000"}]}',
      '{"event":"boot"}',
      '{"event":"domain","id":1,"vcpus":2}',
      '{"event":"assign","sbdf":"03:00.0","domain":1}',
      '{"event":"write","vcpu":"d1v1","sbdf":"00:00.0","reg":"0x04","size":2,"value":6}',
      '{"event":"run","vcpu":"d1v1","budget":1}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0x08000000"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x3c","size":1,"value":5}',
    ].join('\n');
    expect(violationsScopedAndWhole(text)).toMatchObject([
      { line: 7, kind: 'unexplained-mapping', domain: 1, gfn: '0xc0000' },
    ]);
  });
});

describe('the CLI', () => {
  it('exits 1 when an assertion fails, and says which', async () => {
    const file = tempTrace(
      `${HEADER.join('\n')}\n{"event":"assert","maps":{"domain":0,"gfn":"0xfe000","mfn":"0xfe000"}}\n`,
    );
    const run = await cli([file]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(
      'line 4: FAILED maps d0 gfn 0xfe000: expected mfn 0xfe000, got gfn 0xfe000: no frame (mmio_dm)',
    );
  });

  it('exits 1 when an invariant is violated and no assertion expects it', async () => {
    // G1: a refused enable leaves BAR0's set filled (xen), a violation nobody declared.
    const file = tempTrace(
      [
        '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"},{"type":"mem32","size":"0x100","addr":"0xfd000100"}]}',
        '{"event":"boot"}',
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"03:00.0","domain":1}',
        '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x14","size":4,"value":"0xe0000200"}',
        '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x04","size":2,"value":2}',
      ].join('\n'),
    );
    const xen = await cli(['--json', file]);
    expect(xen.status).toBe(1);
    expect(JSON.parse(xen.stdout).violations).toMatchObject([
      { kind: 'rangeset-not-empty', line: 6, expected: false },
    ]);
    const hardened = await cli(['--profile', 'hardened', file]);
    expect(hardened.status).toBe(0);
  });

  it('exits 2 for a file it cannot read and for bad options, 0 for --help', async () => {
    expect((await cli(['/nonexistent/trace.jsonl'])).stderr).toContain(
      'cannot read /nonexistent/trace.jsonl: no such file or directory',
    );
    expect((await cli(['/nonexistent/trace.jsonl'])).status).toBe(2);
    expect((await cli(['--frobnicate', 'x'])).status).toBe(2);
    expect((await cli(['--profile', 'paranoid', 'x'])).stderr).toContain(
      "--profile is 'paranoid'; expected xen or hardened",
    );
    expect((await cli([])).stderr).toContain('no trace file given');
    const help = await cli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: vpci-replay');
  });
});
