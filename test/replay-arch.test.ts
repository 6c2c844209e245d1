/**
 * The host line's `arch` through the replayer: examples/seed-004-arm.jsonl against the x86 seed 004,
 * x86 guests with and without the anticipating switch, the report's words, and bad host lines. The
 * expected values come from Xen's source:
 * - Arm's p2m_set_entry (xen/arch/arm/mmu/p2m.c): the block order from `mfn | gfn | nr`, whole
 *   ranges, no partial progress, so vPCI's map_range is never preempted (header.c "ARM TODOs");
 * - Arm's pci_check_bar (xen/arch/arm/pci/pci-host-common.c, is_bar_valid): whole pages in one
 *   window of the device's host bridge;
 * - no CONFIG_HAS_PCI_MSI on Arm (xen/drivers/vpci/Makefile: msi.o msix.o): no MSI-X holes;
 * - x86's emulation_flags_ok (xen/arch/x86/domain.c): no X86_EMU_VPCI for a domU.
 */
import { readFileSync } from 'node:fs';
import { type Report, replayText } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const examples = new URL('../examples/', import.meta.url);
const replayExample = (file: string): Report =>
  replayText(readFileSync(new URL(file, examples), 'utf8'), file);

/** A domain's p2m extents as `[gfn, mfn, count, order]`. */
function extents(report: Report, domain: number): [string, string, number, number][] {
  const found = report.domains.find((d) => d.id === domain);
  return (found?.p2m ?? []).map((e) => [e.gfn, e.mfn, e.count, e.order]);
}

const ARM_HOST =
  '{"event":"host","arch":"arm","hostBridges":[{"windows":[{"addr":"0x40000000","size":"0x80000000"}]}]}';

/** A guest maps a 1 GiB BAR at host 0x40000000 to guest 0x80000000 under `host`. */
function oneGigBar(host: string): Report {
  return replayText(
    [
      host,
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem64","size":"0x40000000","addr":"0x40000000"}]}',
      '{"event":"boot"}',
      '{"event":"domain","id":1}',
      '{"event":"assign","sbdf":"0000:01:00.0","domain":1,"expect":"ok"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0x80000000"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x14","size":4,"value":"0x0"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x04","size":2,"value":"0x0002"}',
      '{"event":"run","vcpu":"d1v0"}',
    ].join('\n'),
    'one-gig.jsonl',
  );
}

describe('examples/seed-004-arm.jsonl: seed 004 on Arm', () => {
  const arm = replayExample('seed-004-arm.jsonl');
  const x86 = replayExample('seed-004-non-identity.jsonl');

  it('replays with every assertion holding', () => {
    expect(arm.status).toBe('ok');
    expect(arm.assertions.failures).toEqual([]);
    expect(arm.machine).toMatchObject({ arch: 'arm', guestVpci: { enabled: true, reason: 'arm' } });
    expect(arm.machine!.hostBridges).toEqual([
      { segment: 0, buses: [0, 255], windows: [['0xfd000000', '0xfeffffff']] },
    ]);
  });

  it('no MSI-X holes: BAR0 maps all 256 frames, table and PBA pages included, in 4K blocks (nr 0x100)', () => {
    expect(extents(arm, 1)).toEqual([
      ['0xe0000', '0xfe000', 256, 0],
      ['0xe0100', '0xfd000', 1, 0],
    ]);
    const bar0 = arm.devices.find((d) => d.sbdf === '0000:03:00.0')!.bars.find((b) => b.index === 0)!;
    expect(bar0.holes).toEqual([]);
    // On x86 (MSI-X emulated) the same trace leaves the table (0xe0002) and PBA (0xe0003) pages out.
    expect(extents(x86, 1)).toEqual([
      ['0xe0000', '0xfe000', 2, 0],
      ['0xe0004', '0xfe004', 252, 0],
      ['0xe0100', '0xfd000', 1, 0],
    ]);
  });

  it("dom0's BAR outside the bridge window is logged at boot and never mapped (pci_check_bar)", () => {
    expect(arm.events).toContainEqual(
      expect.objectContaining({ line: 16, kind: 'bar-invalid-position', sbdf: '0000:04:00.0', bar: 0 }),
    );
    expect(extents(arm, 0)).toEqual([]);
  });

  it('names the anticipation in the text of the machine', () => {
    expect(arm.machine!.guestVpci.text).toMatch(/has_vpci\(\).*false in Xen staging/);
  });
});

describe('block sizes: Arm maps 1G blocks where x86 never does', () => {
  it('Arm: a 1 GiB BAR, 1G-aligned on both sides, is one 1G block (FIRST_ORDER)', () => {
    const report = oneGigBar(ARM_HOST);
    expect(report.status).toBe('ok');
    expect(extents(report, 1)).toEqual([['0x80000', '0x40000', 0x40000, 18]]);
  });

  it('x86 (mmio_order: "don\'t use 1Gb pages"): the same BAR in 2M leaves', () => {
    const report = oneGigBar('{"event":"host","arch":"x86","x86GuestVpci":true}');
    expect(report.status).toBe('ok');
    expect(extents(report, 1)).toEqual([['0x80000', '0x40000', 0x40000, 9]]);
  });
});

describe('x86 guests and vPCI', () => {
  const trace = (host: string): Report =>
    replayText(
      [
        host,
        '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x4000","addr":"0xfe000000"}]}',
        '{"event":"boot"}',
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"0000:03:00.0","domain":1,"expect":"ok"}',
        '{"event":"read","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x0","size":4}',
      ].join('\n'),
      'x86.jsonl',
    );

  it('arch x86 without the switch: as Xen, the guest gets no vPCI and the log says so', () => {
    const report = trace('{"event":"host","arch":"x86"}');
    expect(report.status).toBe('ok');
    expect(report.machine!.guestVpci).toMatchObject({ enabled: false, reason: 'x86-off' });
    expect(report.events).toContainEqual(
      expect.objectContaining({ line: 5, kind: 'no-vpci', sbdf: '0000:03:00.0', domain: 1 }),
    );
    expect(report.notes).toEqual([]);
  });

  it('a guest write with no vPCI to take it is bad input naming the switch (exit 2, not a silent drop)', () => {
    const report = replayText(
      [
        '{"event":"host","arch":"x86"}',
        '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x4000","addr":"0xfe000000"}]}',
        '{"event":"boot"}',
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"0000:03:00.0","domain":1}',
        '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x4","size":2,"value":"0x2"}',
      ].join('\n'),
      'x86-off.jsonl',
    );
    expect(report.status).toBe('error');
    expect(report.error).toEqual({
      line: 6,
      message: expect.stringMatching(
        /d1 has no vPCI \(x86: Xen gives guests none\); expected "x86GuestVpci": true/,
      ),
    });
  });

  it('x86GuestVpci: the guest gets vPCI, and a note says this anticipates what Xen staging lacks', () => {
    const report = trace('{"event":"host","arch":"x86","x86GuestVpci":true}');
    expect(report.machine!.guestVpci).toMatchObject({ enabled: true, reason: 'x86-switch' });
    expect(report.notes).toEqual([
      {
        line: 5,
        text: expect.stringMatching(
          /^x86GuestVpci: .*anticipating x86 domU vPCI support, not in Xen staging/,
        ),
      },
    ]);
  });

  it('a trace without arch replays as before, the switch assumed, and the note says "assumed"', () => {
    const report = trace('{"event":"host","profile":"xen"}');
    expect(report.machine).toMatchObject({
      arch: 'x86',
      guestVpci: { enabled: true, reason: 'x86-assumed' },
    });
    expect(report.notes).toEqual([
      { line: 5, text: expect.stringMatching(/^x86GuestVpci assumed \(no arch given\)/) },
    ]);
    const seed004 = replayExample('seed-004-non-identity.jsonl');
    expect(seed004.notes.map((n) => n.text)).toContainEqual(expect.stringMatching(/^x86GuestVpci assumed/));
  });
});

describe('bad host lines', () => {
  it("a guest's shadow paging or MTRRs under arm are x86's: refused naming the field", () => {
    for (const [field, value] of [
      ['hap', 'false'],
      ['mtrr', '{"enabled":true}'],
    ]) {
      const report = replayText(`${ARM_HOST}\n{"event":"domain","id":1,"${field}":${value}}`, 'bad.jsonl');
      expect(report.error).toEqual({
        line: 2,
        message: expect.stringContaining(`'domain.${field}' is x86's`),
      });
    }
  });

  it.each([
    ['{"event":"host","arch":"riscv"}', /'host\.arch'.*'x86', 'arm'/],
    ['{"event":"host","hostBridges":[{"windows":[]}]}', /'host\.hostBridges' are Arm's/],
    ['{"event":"host","arch":"arm","e820":[{"addr":"0x0","size":"0x1000"}]}', /'host\.e820' is x86's/],
    ['{"event":"host","arch":"arm","vendor":"amd"}', /'host\.vendor' is x86's/],
    ['{"event":"host","arch":"arm","x86GuestVpci":true}', /'host\.x86GuestVpci' is x86's/],
    [
      '{"event":"host","arch":"arm","hostBridges":[{"windows":[{"addr":"0x0","size":"0x0"}]}]}',
      /windows\[0\]\.size/,
    ],
    [
      '{"event":"host","arch":"arm","hostBridges":[{"busStart":4,"busEnd":2,"windows":[]}]}',
      /busEnd.*busStart <= busEnd/,
    ],
    ['{"event":"host","arch":"arm","physAddrBits":39}', /physAddrBits.*on Arm one of 36, 40, 42, 44, 48, 52/],
    ['{"event":"host","arch":"arm","hap2mb":false}', /'host\.hap2mb' is x86's/],
    ['{"event":"host","arch":"arm","hardwareHap":false}', /'host\.hardwareHap' is x86's/],
  ])('%s is refused at line 1', (line, message) => {
    const report = replayText(line, 'bad.jsonl');
    expect(report.status).toBe('error');
    expect(report.error!.line).toBe(1);
    expect(report.error!.message).toMatch(message);
  });
});
