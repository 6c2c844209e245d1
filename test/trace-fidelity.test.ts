/**
 * The trace lines for what Xen staging does beyond the header: accesses through ECAM (`via: "ecam"`,
 * up to 8 bytes, split as `vpci_ecam_read`/`vpci_ecam_write` do), misaligned accesses dropped
 * (`vpci_access_allowed`), quarantine (`iommu_quarantine`, `pci-assignable-add` / `-remove`),
 * `pci_release_devices`, the device-reset hypercall (`vpci_reset_device`), IOMMU faults on phantom
 * functions (`assign_device`), and `notLogged` assertions over a window of lines.
 */
import { parseTraceLine, replayText } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const HOST = [
  '{"event":"host","profile":"xen"}',
  '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x100000","addr":"0xfe000000"},null]}',
  '{"event":"boot"}',
  '{"event":"domain","id":1}',
  '{"event":"assign","sbdf":"0000:03:00.0","domain":1,"expect":"ok"}',
];

function replay(lines: readonly string[]) {
  return replayText(`${lines.join('\n')}\n`, 'fidelity.jsonl');
}

describe('ECAM accesses and alignment', () => {
  it('an 8-byte ECAM write sets a 64-bit BAR; a misaligned write is dropped with an event', () => {
    const report = replay([
      ...HOST,
      '{"event":"write","via":"ecam","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":8,"value":"0x1e0000000"}',
      '{"event":"read","via":"ecam","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":8,"expect":"0x1e0000004"}',
      '{"event":"assert","bar":{"sbdf":"0000:03:00.0","index":0,"guestAddr":"0x1e0000000"}}',
      '{"event":"assert","notLogged":{"kind":"access-dropped"}}',
      // vpci_portio_write: reg 0x03, 2 bytes is not aligned: cmd_write never sees the MEMORY bit.
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x03","size":2,"value":"0x200"}',
      '{"event":"read","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x03","size":2,"expect":"0xffff"}',
      '{"event":"assert","logged":{"kind":"access-dropped","reg":3,"size":2,"reason":"misaligned"},"from":11}',
      '{"event":"assert","notLogged":{"kind":"access-dropped"},"from":6,"to":9}',
      '{"event":"assert","maps":{"domain":1,"gfn":"0x1e0000","count":256}}',
    ]);
    expect(report.error).toBeNull();
    expect(report.assertions.failures).toEqual([]);
    expect(report.assertions.total).toBe(8); // the assign line's expect is one
  });

  it('a notLogged assertion that finds an event fails, naming its line and message', () => {
    const report = replay([
      ...HOST,
      '{"event":"read","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x01","size":2}',
      '{"event":"assert","notLogged":{"kind":"access-dropped"}}',
    ]);
    expect(report.assertions.failures).toEqual([
      {
        line: 7,
        assertion: 'notLogged so far',
        expected: '{"kind":"access-dropped"}',
        actual: 'line 6: d1: 2-byte config access to 0000:00:00.0 at 0x1 not aligned to its size: dropped',
      },
    ]);
  });

  it.each([
    [
      '{"event":"read","sbdf":"03:00.0","reg":"0x10","size":8}',
      'expected 1, 2 or 4 (8 only with "via":"ecam")',
    ],
    [
      '{"event":"write","via":"ecam","sbdf":"03:00.0","reg":"0x10","size":8,"value":"0x10000000000000000"}',
      "'write.value'",
    ],
    ['{"event":"write","via":"pci","sbdf":"03:00.0","reg":"0x10","size":4,"value":0}', "'write.via'"],
    ['{"event":"read","sbdf":"03:00.0","reg":"0x1000","size":1}', 'expected an integer in 0 … 4095'],
    ['{"event":"assert","notLogged":{"bar":1}}', "'assert.notLogged.kind' is missing"],
    [
      '{"event":"assert","logged":{"kind":"busy"},"from":9}',
      "'assert.from' is 9; expected a trace line number in 1 … 3 (at most the assertion’s own line)",
    ],
    [
      '{"event":"assert","notLogged":{"kind":"busy"},"from":3,"to":2}',
      "'assert.to' is 2; expected a trace line number in 3 … 3 (at least 'from')",
    ],
  ])('%s is refused: %s', (line, message) => {
    expect(() => parseTraceLine(line, 3)).toThrow(message);
  });
});

describe('quarantine, release, reset, IOMMU faults', () => {
  it('a device leaving a guest goes to dom_io; pci-assignable-remove gives it back to dom0', () => {
    const report = replay([
      ...HOST,
      '{"event":"deassign","sbdf":"0000:03:00.0","expect":"ok"}',
      // No vPCI for dom_io: the hardware domain's write reaches the device, nothing is mapped.
      '{"event":"write","vcpu":"d0v0","sbdf":"03:00.0","reg":"0x04","size":2,"value":"0x2"}',
      '{"event":"assert","maps":{"domain":0,"gfn":"0xfe000","count":256}}',
      '{"event":"deassign","sbdf":"0000:03:00.0","expect":"ok"}',
      '{"event":"assert","bar":{"sbdf":"0000:03:00.0","index":0,"addr":"0xfe000000","enabled":false}}',
    ]);
    expect(report.assertions.failures).toEqual([]);
    expect(report.devices[0]!.owner).toBe(0);
  });

  it('host quarantine false: the device goes straight back; the quarantine line marks it', () => {
    const report = replay([
      '{"event":"host","quarantine":false}',
      ...HOST.slice(1),
      '{"event":"deassign","sbdf":"0000:03:00.0"}',
      '{"event":"assert","bar":{"sbdf":"0000:03:00.0","index":0,"addr":"0xfe000000"}}',
      '{"event":"quarantine","sbdf":"0000:03:00.0","expect":"ok"}',
      '{"event":"assign","sbdf":"0000:03:00.0","domain":1,"expect":"ok"}',
      '{"event":"release","domain":1,"expect":"ok"}',
    ]);
    expect(report.assertions.failures).toEqual([]);
    expect(report.devices[0]!.owner).toBe(0x7ff1);
  });

  it('a reset sets vPCI up again; the guest mapping made before stays (xen)', () => {
    const report = replay([
      ...HOST,
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0xe0000000"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x14","size":4,"value":"0"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x04","size":2,"value":"0x2"}',
      '{"event":"run","vcpu":"d1v0"}',
      '{"event":"reset","sbdf":"0000:03:00.0","type":"flr","expect":"ok"}',
      '{"event":"assert","bar":{"sbdf":"0000:03:00.0","index":0,"enabled":false}}',
      '{"event":"assert","maps":{"domain":1,"gfn":"0xe0000","count":256,"mfn":"0xfe000","type":"mmio_direct"}}',
    ]);
    expect(report.assertions.failures).toEqual([]);
  });

  it('a phantom function the IOMMU refuses fails the assignment', () => {
    const report = replay([
      '{"event":"device","sbdf":"0000:03:00.0","phantomFunctions":1,"bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"}]}',
      '{"event":"boot"}',
      '{"event":"domain","id":1}',
      '{"event":"fault","requester":"0000:03:00.4","code":"EPERM"}',
      '{"event":"assign","sbdf":"0000:03:00.0","domain":1,"expect":"EPERM"}',
      '{"event":"assign","sbdf":"0000:03:00.0","domain":1,"expect":"ok"}',
    ]);
    expect(report.assertions.failures).toEqual([]);
  });

  it('a device hot-plugged whose own IOMMU context is refused has no owner (pci_add_device, iommu_add_device)', () => {
    const report = replay([
      '{"event":"boot"}',
      '{"event":"fault","requester":"0000:03:00.0","code":"EPERM"}',
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"}]}',
      '{"event":"domain","id":1}',
      '{"event":"assign","sbdf":"0000:03:00.0","domain":1,"expect":"EBUSY"}',
    ]);
    expect(report.assertions.failures).toEqual([]);
    expect(report.events.filter((event) => event.kind === 'iommu-add-failed')).toMatchObject([
      { line: 3, kind: 'iommu-add-failed', sbdf: '0000:03:00.0', device: '0000:03:00.0', code: 'EPERM' },
    ]);
  });

  it("a read-only device (pci_ro_device) gets no vPCI and drops dom0's writes (vpci_write, ro_map)", () => {
    const report = replay([
      '{"event":"device","sbdf":"0000:00:1f.0","command":"0x2","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"}],"readOnly":true}',
      '{"event":"boot"}',
      '{"event":"write","vcpu":"d0v0","sbdf":"00:1f.0","reg":"0x04","size":2,"value":"0x0"}',
      '{"event":"read","sbdf":"00:1f.0","reg":"0x04","size":2,"expect":"0x2"}',
    ]);
    expect(report.assertions.failures).toEqual([]);
    expect(report.devices.find((device) => device.sbdf === '0000:00:1f.0')).toMatchObject({ hidden: true });
    expect(report.events.filter((event) => event.kind === 'access-dropped')).toMatchObject([
      { line: 3, kind: 'access-dropped', sbdf: '0000:00:1f.0', reg: 4, size: 2, reason: 'read-only' },
    ]);
  });

  it('an MMCFG region made unusable hides the extended space from the hardware domain', () => {
    const report = replay([
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x100000","addr":"0xfe000000"}],"rebar":[{"bar":0,"sizes":["0x100000"]}]}',
      '{"event":"boot"}',
      '{"event":"read","sbdf":"03:00.0","reg":"0x100","size":2,"expect":"0x15"}',
      '{"event":"mmcfg","segment":0,"startBus":0,"endBus":255,"reserved":false}',
      '{"event":"read","sbdf":"03:00.0","reg":"0x100","size":2,"expect":"0xffff"}',
      '{"event":"mmcfg","reserved":true}',
      '{"event":"read","sbdf":"03:00.0","reg":"0x100","size":2,"expect":"0x15"}',
    ]);
    expect(report.assertions.failures).toEqual([]);
    expect(report.assertions.total).toBe(3);
  });
});
