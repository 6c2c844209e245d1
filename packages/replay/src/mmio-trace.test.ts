/**
 * `mmio` trace lines: MSI-X table and PBA accesses replayed through the engine. The expected values
 * in the trace are Xen's (xen/drivers/vpci/msix.c: `msix_read` gives an entry's address and Vector
 * Control, masked at `init_msix`; `adjacent_read` reads the device; `access_allowed` refuses a
 * 2-byte table access with all-ones); the report counts the lines by who answered them.
 */
import { describe, expect, it } from 'vitest';
import { reportJson } from './report.js';
import { replayText } from './run.js';
import { textReport } from './text-report.js';

const TRACE = [
  '{"event":"device","sbdf":"0000:01:00.0","command":"0x2","bars":[{"type":"mem32","size":"0x4000","addr":"0xfe000000"}],',
  ' "msix":{"entries":4,"table":{"bar":0,"offset":"0x1100"},"pba":{"bar":0,"offset":"0x1800"}}}',
  '{"event":"boot"}',
  '{"event":"mmio","vcpu":"d0v0","addr":"0xfe00110c","size":4,"expect":"0x1","via":"msix-table"}',
  '{"event":"mmio","addr":"0xfe001100","size":4,"value":"0xfee00000","via":"msix-table"}',
  '{"event":"mmio","addr":"0xfe001108","size":8,"value":"0x4041"}',
  '{"event":"mmio","addr":"0xfe001100","size":8,"expect":"0xfee00000"}',
  '{"event":"mmio","addr":"0xfe001100","size":2,"expect":"0xffff"}',
  '{"event":"mmio","addr":"0xfe001010","size":4,"value":"0xdeadbeef","via":"msix-adjacent"}',
  '{"event":"mmio","addr":"0xfe001010","size":4,"expect":"0xdeadbeef","via":"msix-adjacent"}',
  '{"event":"mmio","addr":"0xfe000010","size":4,"expect":"0x0","via":"direct"}',
  '{"event":"assert","logged":{"kind":"msix-access-refused","size":2}}',
]
  .join('\n')
  .replace(',\n "msix"', ',"msix"');

describe('mmio lines', () => {
  it('replay MSI-X table, adjacent and direct accesses with their expectations', () => {
    const report = replayText(TRACE, 'mmio.jsonl');
    expect(report.assertions.failures).toEqual([]);
    expect(report.status).toBe('ok');
    expect(report.mmio).toEqual({ accesses: 8, paths: { direct: 1, 'msix-table': 5, 'msix-adjacent': 2 } });
    // msix_write of 8 bytes at the data offset: data 0x4041, the high half's Mask bit 0 unmasks.
    expect(report.devices[0]!.msix!.written).toEqual([
      { entry: 0, addr: '0xfee00000', data: '0x4041', masked: false },
    ]);
    const text = textReport(report);
    expect(text).toContain('8 MMIO accesses: direct 1, msix-table 5, msix-adjacent 2');
    expect(text).toContain('entry 0: address 0xfee00000 data 0x4041');
    expect(reportJson(report)).toContain('"mmio": {');
  });

  it('a wrong expectation fails, naming the line, the access and both values', () => {
    const report = replayText(
      TRACE.replace('"expect":"0xdeadbeef","via":"msix-adjacent"', '"expect":"0xdeadbeee","via":"direct"'),
    );
    expect(report.status).toBe('failed');
    expect(report.assertions.failures).toEqual([
      { line: 9, assertion: 'mmio read 0xfe001010/4 via', expected: 'direct', actual: 'msix-adjacent' },
      { line: 9, assertion: 'mmio read 0xfe001010/4', expected: '0xdeadbeee', actual: '0xdeadbeef' },
    ]);
  });

  it('bad mmio lines are refused with the field and the expectation', () => {
    const bad = (line: string): string | undefined =>
      replayText(`{"event":"device","sbdf":"0000:01:00.0"}\n{"event":"boot"}\n${line}`).error?.message;
    expect(bad('{"event":"mmio","addr":"0xffe","size":4}')).toMatch(/mmio\.addr.*within one 4 KiB page/);
    expect(bad('{"event":"mmio","addr":"0x0","size":3}')).toMatch(/mmio\.size' is 3; expected 1, 2, 4 or 8/);
    expect(bad('{"event":"mmio","addr":"0x0","size":2,"value":"0x10000"}')).toMatch(/mmio\.value/);
    expect(bad('{"event":"mmio","addr":"0x0","size":4,"value":1,"expect":1}')).toMatch(/not both/);
    expect(bad('{"event":"mmio","addr":"0x0","size":4,"via":"msix"}')).toMatch(
      /mmio\.via.*direct, msix-table/,
    );
  });
});
