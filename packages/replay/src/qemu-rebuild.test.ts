/**
 * Bytes a QEMU log never showed: filled from the monitor output, or said unknown, and then never made
 * up (a bridge's window register is not a BAR, an MSI-X structure nobody read makes no hole). The logs
 * are short hand-written ones in QEMU 7.2's format, without region lines (every size inferred).
 */
import { describe, expect, it } from 'vitest';
import { convertQemuLog } from './qemu.js';
import { parseQemuMonitor } from './qemu-monitor.js';
import { replayQemuConversion } from './qemu-oracle.js';
import { textReport } from './text-report.js';

/** An NVMe-like function whose driver read the MSI-X table register but never the PBA's. */
const NVME = [
  'pci_cfg_read nvme 00:02.0 @0x0 -> 0x1b36',
  'pci_cfg_read nvme 00:02.0 @0x2 -> 0x10',
  'pci_cfg_read nvme 00:02.0 @0xe -> 0x0',
  'pci_cfg_read nvme 00:02.0 @0x6 -> 0x10',
  'pci_cfg_read nvme 00:02.0 @0x34 -> 0x40',
  'pci_cfg_read nvme 00:02.0 @0x40 -> 0x11',
  'pci_cfg_read nvme 00:02.0 @0x42 -> 0x40',
  'pci_cfg_read nvme 00:02.0 @0x44 -> 0x2000',
  'pci_cfg_read nvme 00:02.0 @0x4 -> 0x0',
  'pci_cfg_read nvme 00:02.0 @0x10 -> 0x0',
  'pci_cfg_write nvme 00:02.0 @0x10 <- 0xffffffff',
  'pci_cfg_read nvme 00:02.0 @0x10 -> 0xffffc000',
  'pci_cfg_write nvme 00:02.0 @0x10 <- 0xfebf0000',
  'pci_cfg_write nvme 00:02.0 @0x4 <- 0x6',
  'pci_update_mappings_add nvme 00:02.0 0,0xfebf0000+0x4000',
  'pci_cfg_write nvme 00:02.0 @0x42 <- 0x8040',
];

/** A bridge whose header type nobody read, its prefetchable window probed with all-ones (OVMF). */
const BRIDGE = [
  'pci_cfg_read pcie-pci-bridge 00:01.0 @0x0 -> 0x1b36',
  'pci_cfg_read pcie-pci-bridge 00:01.0 @0x2 -> 0xe',
  'pci_cfg_write pcie-pci-bridge 00:01.0 @0x24 <- 0xffffffff',
  'pci_cfg_read pcie-pci-bridge 00:01.0 @0x24 -> 0xfff1fff1',
  'pci_cfg_write pcie-pci-bridge 00:01.0 @0x10 <- 0xffffffff',
  'pci_cfg_read pcie-pci-bridge 00:01.0 @0x10 -> 0xffffff04',
  'pci_cfg_write pcie-pci-bridge 00:01.0 @0x14 <- 0xffffffff',
  'pci_cfg_read pcie-pci-bridge 00:01.0 @0x14 -> 0xffffffff',
];

const BRIDGE_INFO_PCI = `  Bus  0, device   1, function 0:
    PCI bridge: PCI device 1b36:000e
      BUS 0.
      secondary bus 1.
      subordinate bus 1.
      BAR0: 64 bit memory at 0xffffffffffffffff [0x00000000000000fe].
      id "pcie.1"
`;

const replay = (lines: string[], monitor?: string) =>
  replayQemuConversion(
    convertQemuLog(lines, monitor === undefined ? {} : { monitor: parseQemuMonitor(monitor) }),
    'hand-written.log',
  );

describe('what a QEMU log never showed', () => {
  it('an MSI-X PBA nobody read: said unknown, no hole of its own', () => {
    const report = replay(NVME);
    const nvme = report.devices.find((d) => d.sbdf === '0000:00:02.0')!;
    expect(nvme.msix?.enabled).toBe(true);
    expect(nvme.bars[0]!.holes).toEqual([{ gfn: '0xfebf2', count: 1, reason: 'msix-table' }]);
    const q = report.qemu!.devices.find((d) => d.sbdf === '0000:00:02.0')!;
    expect(q.unknown.map((u) => u.what)).toEqual(['MSI-X PBA']);
    expect(textReport(report)).toContain('PBA unknown');
    expect(report.qemu!.decisions).toEqual({
      compared: true,
      total: 1,
      matched: 1,
      explained: 0,
      unexplained: 0,
    });
    expect(report.status).toBe('ok');
  });

  it('an MSI-X PBA info mtree has: filled from the monitor output', () => {
    const mtree = `(qemu) info pci
  Bus  0, device   2, function 0:
    Class 0264: PCI device 1b36:0010
      BAR0: 32 bit memory at 0xfebf0000 [0xfebf3fff].
(qemu) info mtree
      00000000febf2000-00000000febf240f (prio 0, i/o): msix-table
      00000000febf3000-00000000febf300f (prio 0, i/o): msix-pba
`;
    const nvme = replay(NVME, mtree).devices.find((d) => d.sbdf === '0000:00:02.0')!;
    expect(nvme.msix?.pba).toMatchObject({ bar: 0, offset: '0x3000' });
    expect(nvme.bars[0]!.holes.map((h) => h.reason)).toEqual(['msix-table', 'msix-pba']);
  });

  it('an MSI-X table nobody read: the capability is left out, no hole', () => {
    const report = replay(NVME.filter((l) => !l.includes('@0x44')));
    const nvme = report.devices.find((d) => d.sbdf === '0000:00:02.0')!;
    expect(nvme.msix).toBeNull();
    expect(nvme.bars[0]!.holes).toEqual([]);
    expect(report.qemu!.devices.find((d) => d.sbdf === '0000:00:02.0')!.unknown.map((u) => u.what)).toEqual([
      'MSI-X table',
    ]);
  });

  it('a capability list nobody read: an lspci image stands in for it', () => {
    const bytes = new Uint8Array(256);
    bytes.set([0x36, 0x1b, 0x10, 0x00], 0); // ids
    bytes[0x06] = 0x10; // status: capability list
    bytes[0x34] = 0x40;
    bytes.set([0x11, 0x00, 0x40, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00], 0x40); // MSI-X
    const dump = Array.from(
      { length: 16 },
      (_, row) =>
        `${(row * 16).toString(16).padStart(2, '0')}: ${[...bytes.subarray(row * 16, row * 16 + 16)].map((b) => b.toString(16).padStart(2, '0')).join(' ')}`,
    ).join('\n');
    const lines = NVME.filter((l) => !/@0x(6|34|40|42|44) /.test(l));
    const conversion = convertQemuLog(lines, { images: new Map([['0000:00:02.0', dump]]) });
    const report = replayQemuConversion(conversion, 'hand-written.log');
    const nvme = report.devices.find((d) => d.sbdf === '0000:00:02.0')!;
    expect(nvme.msix).toMatchObject({
      entries: 65,
      table: { bar: 0, offset: '0x2000' },
      pba: { offset: '0x3000' },
    });
    expect(nvme.bars[0]!.holes.map((h) => h.reason)).toEqual(['msix-table', 'msix-pba']);
    expect(report.qemu!.devices[0]!.filled).toEqual([
      { what: 'MSI-X entries', from: 'image' },
      { what: 'MSI-X table', from: 'image' },
      { what: 'MSI-X PBA', from: 'image' },
    ]);
  });

  it('ids nobody read: said unknown, shown as ????:????', () => {
    const report = replay(NVME.filter((l) => !/@0x[02] /.test(l)));
    expect(report.qemu!.devices[0]!.unknown.map((u) => u.what)).toContain('ids');
    expect(textReport(report)).toContain('0000:00:02.0 [????:????]');
  });

  it('a header type nobody read: BAR0-1 only, so the window register probed at 0x24 is no BAR5', () => {
    const report = replay(BRIDGE);
    const bridge = report.devices[0]!;
    expect(bridge.bars.map((b) => `${b.index} ${b.type} ${b.size}`)).toEqual(['0 mem64 0x100']);
    expect(report.qemu!.devices[0]!.unknown.map((u) => u.what)).toEqual(['header type', 'command register']);
  });

  it('a header type info pci gives: a bridge, with windows and no BAR2-5', () => {
    const report = replay(BRIDGE, BRIDGE_INFO_PCI);
    const q = report.qemu!.devices[0]!;
    expect(q.headerType).toBe(1);
    expect(q.filled).toContainEqual({ what: 'header type', from: 'monitor' });
    expect(q.windows.map((w) => w.kind)).toEqual(['io', 'memory', 'prefetchable']);
    expect(report.devices[0]!.bars.map((b) => b.index)).toEqual([0]);
    expect(textReport(report)).toContain('window prefetchable');
  });
});

describe('the bus numbers of a QEMU log', () => {
  it('a device keeps its identity when the bridge above it is renumbered', () => {
    const lines = [
      'pci_cfg_read pcie-root-port 00:05.0 @0xe -> 0x1',
      'pci_cfg_write pcie-root-port 00:05.0 @0x18 <- 0x10100',
      'pci_cfg_read e1000e 01:00.0 @0x0 -> 0x8086',
      'pci_cfg_write pcie-root-port 00:05.0 @0x18 <- 0x0',
      'pci_cfg_write pcie-root-port 00:05.0 @0x18 <- 0x50500',
      'pci_cfg_read e1000e 05:00.0 @0x2 -> 0x10d3',
    ];
    const conversion = convertQemuLog(lines);
    expect(conversion.devices.map((d) => `${d.sbdf} ${d.name} ${d.seenAt.join(',')}`)).toEqual([
      '0000:00:05.0 pcie-root-port 00:05.0',
      '0000:05:00.0 e1000e 01:00.0,05:00.0',
    ]);
    expect(replayQemuConversion(conversion, 'renumbered.log').devices[1]).toMatchObject({
      vendorId: '0x8086',
      deviceId: '0x10d3',
    });
  });
});
