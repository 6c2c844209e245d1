/**
 * A trace `device` line with an `lspci -xxxx` image of an SR-IOV physical function
 * (docs/trace-format.md, `device.image` and `device.sizes.vfBars`): the capability comes from the
 * image's bytes, the VF BAR sizes, which no image holds, from `sizes.vfBars`, and the replay says in a
 * note what it read and what it did not see. The dump is pciutils' test case of an Intel 82576
 * (test/fixtures/lspci/intel-82576-sriov.xxxx.txt); the expected values are what lspci decoded from
 * the same bytes (quoted in the fixture's header) and the PCIe 9.3.3 layout.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { replayText } from './run.js';
import { textReport } from './text-report.js';

const DUMP = readFileSync(
  new URL('../../../test/fixtures/lspci/intel-82576-sriov.xxxx.txt', import.meta.url),
  'utf8',
);
const LINES = DUMP.split('\n').filter((l) => !l.startsWith('#') && l !== '');
// The PF's own BAR and ROM sizes are lspci's ([size=…] in the same test file); the VF BARs are
// 16 KiB each (the 82576's VF BAR0 and BAR3; VF BAR3 starts TotalVFs × 16 KiB after VF BAR0).
const SIZES = {
  bars: ['0x20000', '0x400000', '0x20', '0x4000'],
  rom: '0x400000',
  vfBars: ['0x4000', null, null, '0x4000'],
};

function device(lines: readonly string[], sizes: object = SIZES): string {
  return JSON.stringify({ event: 'device', sbdf: '0000:01:00.0', image: lines, sizes });
}

function replay(...lines: string[]) {
  return replayText(
    ['{"event":"host","profile":"xen"}', ...lines, '{"event":"boot"}'].join('\n'),
    'sriov.jsonl',
  );
}

describe('an SR-IOV PF from an lspci -xxxx image in a trace', () => {
  it('reports the capability as lspci decoded it, with the VF BAR arrays from the given sizes', () => {
    const report = replay(device(LINES));
    expect(report.error).toBeNull();
    const pf = report.devices.find((d) => d.sbdf === '0000:01:00.0')!;
    expect(pf.sriov).toEqual({
      pos: '0x160',
      totalVfs: 8,
      initialVfs: 8,
      numVfs: 1,
      vfEnable: true,
      vfMemorySpace: true,
      ari: false,
      firstVfOffset: 384,
      vfStride: 2,
      vfDeviceId: '0x10ca',
      supportedPageSizes: '0x553',
      systemPageSize: '0x1',
      pageSize: '0x1000',
      vfBars: [
        // 0xd2840004: type 10 (64-bit), not prefetchable; NumVFs 1 decodes one 16 KiB BAR.
        {
          index: 0,
          type: 'mem64',
          prefetchable: false,
          addr: '0xd2840000',
          size: '0x4000',
          span: ['0xd2840000', '0xd2843fff'],
        },
        {
          index: 3,
          type: 'mem64',
          prefetchable: false,
          addr: '0xd2860000',
          size: '0x4000',
          span: ['0xd2860000', '0xd2863fff'],
        },
      ],
      vfs: [],
    });
  });

  it('says in a note what the image gave and what it could not', () => {
    const report = replay(device(LINES));
    const note = report.notes.find((n) => n.text.includes('SR-IOV capability at 0x160 read from the image'));
    expect(note?.line).toBe(2);
    expect(note?.text).toMatch(/TotalVFs 8, InitialVFs 8, NumVFs 1, VF Enable on, VF MSE on/);
    expect(note?.text).toMatch(/VF BAR0 mem64 16 KiB each, VF 0 at 0xd2840000/);
    expect(note?.text).toMatch(/Not in the image: the VF BAR sizes \(taken from device\.sizes\.vfBars/);
    expect(textReport(report)).toMatch(/SR-IOV at 0x160: TotalVFs 8/);
  });

  it('leaves a VF BAR in use without a size unimplemented, and names it in the note (existing traces keep working)', () => {
    const report = replay(device(LINES, { ...SIZES, vfBars: ['0x4000'] }));
    expect(report.error).toBeNull();
    expect(report.devices[0]!.sriov?.vfBars.map((b) => b.index)).toEqual([0]);
    const note = report.notes.find((n) => n.text.includes('read from the image'))!;
    expect(note.text).toMatch(
      /In use in the image but without a size in device\.sizes\.vfBars, so left unimplemented \(the VFs get no such BAR\): VF BAR3 \(register 0xd2860004\)/,
    );
    // Without any sizes (a trace written before device.sizes.vfBars): the same, for both slots.
    const none = replay(device(LINES, { bars: SIZES.bars, rom: SIZES.rom }));
    expect(none.error).toBeNull();
    expect(
      none.notes.some((n) => /VF BAR0 \(register 0xd2840004\), VF BAR3 \(register 0xd2860004\)/.test(n.text)),
    ).toBe(true);
  });

  it('refuses malformed capability bytes, naming the field, the register and the line', () => {
    // TotalVFs (0x16e) 8 -> 0: the 0x160 line's last two bytes.
    const broken = LINES.map((l) => (l.startsWith('160:') ? l.replace(/08 00 08 00$/, '08 00 00 00') : l));
    const report = replay(device(broken));
    expect(report.status).toBe('error');
    expect(report.error?.line).toBe(2);
    expect(report.error?.message).toMatch(/'device\.image\.sriov\.totalVfs' is 0; expected an integer in 1/);
    expect(report.error?.message).toMatch(/SR-IOV capability at 0x160, register 0x16e/);
  });

  it('refuses VF BAR sizes for an image without an SR-IOV capability', () => {
    const plain = LINES.map((l) => (l.startsWith('160:') ? l.replace(/^160: 10 00/, '160: 00 00') : l));
    const report = replay(device(plain));
    expect(report.status).toBe('error');
    expect(report.error?.message).toMatch(/'device\.sizes\.vfBars' .*no SR-IOV capability/);
  });
});
