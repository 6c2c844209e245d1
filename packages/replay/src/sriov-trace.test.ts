/**
 * The trace's `device.sriov` field (docs/trace-format.md): parsed into the engine's `SriovSpec`, and
 * replayed so that dom0's accesses reach the PF's SR-IOV capability. Under `xen` the posted series'
 * v1 traps SR-IOV Control only, so the hardware domain's other accesses go to the hardware
 * (vpci_read/vpci_write fall through to pci_conf_read/write for a register no handler covers); the
 * values read back are the PCIe spec's (9.3.3) and Xen's `pci_size_mem_bar()` sizing answer.
 */
import { describe, expect, it } from 'vitest';
import { replayText } from './run.js';
import { parseTraceLine } from './trace.js';

const DEVICE =
  '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x4000","addr":"0xf0000000"}],' +
  '"sriov":{"totalVfs":8,"firstVfOffset":"0x80","vfStride":1,"vfDeviceId":"0x10ca",' +
  '"vfBars":[{"type":"mem32","size":"0x4000","addr":"0xe0000000"}]}}';
const READ = (reg: string, size: number, expect: string) =>
  `{"event":"read","vcpu":"d0v0","sbdf":"03:00.0","reg":"${reg}","size":${size},"expect":"${expect}"}`;
const WRITE = (reg: string, size: number, value: string) =>
  `{"event":"write","vcpu":"d0v0","sbdf":"03:00.0","reg":"${reg}","size":${size},"value":"${value}"}`;

describe('device.sriov in a trace', () => {
  it('parses into an SriovSpec with the documented defaults', () => {
    const event = parseTraceLine(DEVICE, 1);
    expect(event).toMatchObject({
      event: 'device',
      spec: {
        sriov: {
          totalVfs: 8,
          initialVfs: 8,
          numVfs: 0,
          firstVfOffset: 0x80,
          vfStride: 1,
          vfDeviceId: 0x10ca,
          supportedPageSizes: 0x553,
          systemPageSize: 1,
          vfBars: [{ type: 'mem32', size: 0x4000n, addr: 0xe000_0000n, prefetchable: false }],
          vfEnable: false,
          vfMemorySpace: false,
        },
      },
    });
  });

  it('refuses unknown fields and I/O VF BARs naming the field', () => {
    expect(() => parseTraceLine(DEVICE.replace('"vfStride":1', '"vfStride":1,"x":1'), 3)).toThrow(
      /'device\.sriov\.x' is not a field/,
    );
    expect(() =>
      parseTraceLine(
        DEVICE.replace(
          '"type":"mem32","size":"0x4000","addr":"0xe0',
          '"type":"io","size":"0x4000","addr":"0xe0',
        ),
        3,
      ),
    ).toThrow(/device\.sriov\.vfBars\[0\]\.type/);
  });

  it('reports a cross-field error of the description as a bad line naming the field', () => {
    const report = replayText(
      ['{"event":"host"}', DEVICE.replace('"vfStride":1', '"vfStride":0')].join('\n'),
    );
    expect(report.status).toBe('error');
    expect(report.error?.line).toBe(2);
    expect(report.error?.message).toMatch(/sriov\.vfStride/);
  });

  it('lets dom0 size a VF BAR and set System Page Size through to the hardware (v1 traps SR-IOV Control only)', () => {
    const trace = [
      '{"event":"host"}',
      DEVICE,
      '{"event":"boot"}',
      READ('0x100', 4, '0x10010'), // PCI_EXT_CAP_ID_SRIOV, version 1, no next capability
      READ('0x10e', 2, '0x8'), // TotalVFs
      WRITE('0x124', 4, '0xffffffff'), // VF BAR0 all ones: 16 KiB reads back as ~(16K - 1)
      READ('0x124', 4, '0xffffc000'),
      WRITE('0x124', 4, '0xe0000000'),
      WRITE('0x120', 4, '0x10'), // System Page Size: 64 KiB
      WRITE('0x124', 4, '0xffffffff'),
      READ('0x124', 4, '0xffff0000'),
      WRITE('0x10e', 2, '0xffff'), // TotalVFs is read-only
      READ('0x10e', 2, '0x8'),
    ].join('\n');
    const report = replayText(trace);
    expect(report.error, JSON.stringify(report.assertions)).toBeNull();
    expect(report.status).toBe('ok');
    expect(report.assertions.total).toBe(5);
  });
});
