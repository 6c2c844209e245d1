import { describe, expect, it } from 'vitest';
import { parseInfoPci, parseQemuMonitor } from './qemu-monitor.js';

/** QEMU 7.2's HMP output, as a session transcript (lines from a q35 run). */
const SESSION = `QEMU 7.2.22 monitor - type 'help' for more information
(qemu) info pci
  Bus  0, device   1, function 0:
    PCI bridge: PCI device 1b36:000c
      IRQ 11, pin A
      BUS 0.
      secondary bus 1.
      subordinate bus 1.
      IO range [0xc000, 0xbfff]
      memory range [0xfe600000, 0xfe7fffff]
      prefetchable memory range [0xfea00000, 0xfebfffff]
      BAR0: 32 bit memory at 0xfe888000 [0xfe888fff].
      id "rp1"
  Bus  0, device   2, function 0:
    Ethernet controller: PCI device 8086:10d3
      PCI subsystem 8086:0000
      IRQ 11, pin A
      BAR0: 32 bit memory at 0xfe840000 [0xfe85ffff].
      BAR2: I/O at 0xc040 [0xc05f].
      BAR3: 32 bit memory at 0xfe884000 [0xfe887fff].
      BAR4: 64 bit prefetchable memory at 0xffffffffffffffff [0x0000000000003ffe].
      BAR6: 32 bit memory at 0xffffffffffffffff [0x0003fffe].
      id ""
(qemu) info mtree
address-space: memory
  0000000000000000-ffffffffffffffff (prio 0, i/o): system
    0000000000000000-ffffffffffffffff (prio -1, i/o): pci
      00000000fe884000-00000000fe887fff (prio 1, i/o): e1000e-msix
        00000000fe884000-00000000fe88404f (prio 0, i/o): msix-table
        00000000fe886000-00000000fe886007 (prio 0, i/o): msix-pba
memory-region: pci
  0000000000000000-ffffffffffffffff (prio -1, i/o): pci
    00000000fe884000-00000000fe887fff (prio 1, i/o): e1000e-msix
      00000000fe884000-00000000fe88404f (prio 0, i/o): msix-table
      00000000fe886000-00000000fe886007 (prio 0, i/o): msix-pba
`;

describe("QEMU's monitor output", () => {
  const monitor = parseQemuMonitor(SESSION);

  it('gives each function its ids, bridge windows and BARs, mapped or not', () => {
    const bridge = monitor.devices.get('0000:00:01.0')!;
    expect([bridge.vendorId, bridge.deviceId]).toEqual([0x1b36, 0x000c]);
    expect(bridge.bridge).toEqual({
      secondary: 1,
      subordinate: 1,
      io: { base: 0xc000n, limit: 0xbfffn },
      memory: { base: 0xfe600000n, limit: 0xfe7fffffn },
      prefetchable: { base: 0xfea00000n, limit: 0xfebfffffn },
    });
    const nic = monitor.devices.get('0000:00:02.0')!;
    expect(nic.bridge).toBeNull();
    expect(nic.bars).toEqual([
      { index: 0, kind: 'mem32', prefetchable: false, addr: 0xfe840000n, size: 0x20000n },
      { index: 2, kind: 'io', prefetchable: false, addr: 0xc040n, size: 0x20n },
      { index: 3, kind: 'mem32', prefetchable: false, addr: 0xfe884000n, size: 0x4000n },
      // Not mapped: QEMU prints all-ones and the end wraps past 2^64.
      { index: 4, kind: 'mem64', prefetchable: true, addr: null, size: 0x4000n },
      { index: 6, kind: 'mem32', prefetchable: false, addr: null, size: 0x40000n },
    ]);
  });

  it('gives the MSI-X table and PBA subregions once each', () => {
    expect(monitor.msixTables).toEqual([[0xfe884000n, 0xfe88404fn]]);
    expect(monitor.msixPbas).toEqual([[0xfe886000n, 0xfe886007n]]);
  });

  it('lists the BARs QEMU maps for parseInfoPci', () => {
    expect([...parseInfoPci(SESSION).get('0000:00:02.0')!.keys()]).toEqual([0, 2, 3]);
  });

  it('finds nothing in other text', () => {
    const nothing = parseQemuMonitor('hello\nBAR0: 32 bit memory at 0x1000 [0x1fff].\n');
    expect([nothing.devices.size, nothing.msixTables.length, nothing.msixPbas.length]).toEqual([0, 0, 0]);
  });
});
