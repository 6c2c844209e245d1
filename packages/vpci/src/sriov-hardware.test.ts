/**
 * The SR-IOV capability of a physical function as hardware answers it. Expected values come from the
 * PCIe Base Specification 9.3.3 (register layout, which fields are RW), Xen's `pci_size_mem_bar()`
 * (xen/drivers/passthrough/pci.c: the all-ones sizing a VF BAR answers, `PCI_BAR_VF`), Xen's
 * xen/include/xen/pci_regs.h `PCI_SRIOV_*` offsets, and Linux's drivers/pci/iov.c (`virtfn_bus()`,
 * `virtfn_devfn()`, `sriov_init()`).
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { type DeviceSpec, findExtCapability, PhysicalDevice, type SriovSpec } from './hardware.js';
import {
  PCI_EXT_CAP_ID_REBAR,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_SRIOV_BAR,
  PCI_SRIOV_CAP,
  PCI_SRIOV_CTRL,
  PCI_SRIOV_FUNC_LINK,
  PCI_SRIOV_INITIAL_VF,
  PCI_SRIOV_NUM_VF,
  PCI_SRIOV_STATUS,
  PCI_SRIOV_SUP_PGSIZE,
  PCI_SRIOV_SYS_PGSIZE,
  PCI_SRIOV_TOTAL_VF,
  PCI_SRIOV_VF_DID,
  PCI_SRIOV_VF_OFFSET,
  PCI_SRIOV_VF_STRIDE,
  PCI_SRIOV_VFM,
} from './pci-regs.js';
import { sriovPageSize, vfBarAddress, vfIndexOf, vfRoutingId } from './sriov-hardware.js';

const PF: SriovSpec = {
  totalVfs: 8,
  initialVfs: 8,
  firstVfOffset: 0x80,
  vfStride: 2,
  vfDeviceId: 0x10ca,
  supportedPageSizes: 0x553,
  vfBars: [
    { type: 'mem32', size: 0x4000n, addr: 0xe000_0000n },
    null,
    null,
    { type: 'mem64', size: 0x4000n, addr: 0x40_0000_0000n, prefetchable: true },
  ],
};

function pf(sriov: SriovSpec = PF, extra: Partial<DeviceSpec> = {}): { hw: PhysicalDevice; pos: number } {
  const hw = PhysicalDevice.fromSpec({ sbdf: '0000:82:00.0', ...extra, sriov });
  return { hw, pos: findExtCapability(hw, PCI_EXT_CAP_ID_SRIOV) };
}

/**
 * Xen's `pci_size_mem_bar(sbdf, pos, &addr, &size, PCI_BAR_VF)`: all-ones to the register (and the
 * upper half of a 64-bit one), read back, restore; size = -(read & PCI_BASE_ADDRESS_MEM_MASK).
 */
function sizeVfBar(hw: PhysicalDevice, reg: number): { addr: bigint; size: bigint } {
  const bar = hw.read(reg, 4);
  const is64 = (bar & 0x6) === 0x4;
  let hi = 0;
  hw.write(reg, 4, 0xffffffff);
  if (is64) {
    hi = hw.read(reg + 4, 4);
    hw.write(reg + 4, 4, 0xffffffff);
  }
  let size = BigInt((hw.read(reg, 4) & 0xfffffff0) >>> 0);
  if (is64) {
    size |= BigInt(hw.read(reg + 4, 4)) << 32n;
    hw.write(reg + 4, 4, hi);
  } else if (size !== 0n) size |= 0xffff_ffffn << 32n;
  hw.write(reg, 4, bar);
  return { addr: BigInt((bar & 0xfffffff0) >>> 0) | (BigInt(hi) << 32n), size: (1n << 64n) - size };
}

describe('SR-IOV capability layout (PCIe 9.3.3, pci_regs.h PCI_SRIOV_*)', () => {
  it('sits in extended config space with ID 0x10, version 1, and reads back its description', () => {
    const { hw, pos } = pf();
    expect(hw.extendedConfig).toBe(true);
    expect(pos).toBe(0x100);
    expect(hw.read(pos, 4) & 0xfffff).toBe(0x10010);
    expect(hw.read(pos + PCI_SRIOV_TOTAL_VF, 2)).toBe(8);
    expect(hw.read(pos + PCI_SRIOV_INITIAL_VF, 2)).toBe(8);
    expect(hw.read(pos + PCI_SRIOV_NUM_VF, 2)).toBe(0);
    expect(hw.read(pos + PCI_SRIOV_VF_OFFSET, 2)).toBe(0x80);
    expect(hw.read(pos + PCI_SRIOV_VF_STRIDE, 2)).toBe(2);
    expect(hw.read(pos + PCI_SRIOV_VF_DID, 2)).toBe(0x10ca);
    expect(hw.read(pos + PCI_SRIOV_SUP_PGSIZE, 4)).toBe(0x553);
    expect(hw.read(pos + PCI_SRIOV_SYS_PGSIZE, 4)).toBe(1);
    expect(hw.read(pos + PCI_SRIOV_CTRL, 2)).toBe(0);
    // VF BAR0: 32-bit, non-prefetchable; VF BAR3/4: 64-bit prefetchable (type 0x4 | prefetch 0x8).
    expect(hw.read(pos + PCI_SRIOV_BAR, 4)).toBe(0xe000_0000);
    expect(hw.read(pos + PCI_SRIOV_BAR + 12, 4)).toBe(0x0000_000c);
    expect(hw.read(pos + PCI_SRIOV_BAR + 16, 4)).toBe(0x40);
  });

  it('chains behind a resizable-BAR capability at 0x100 (extended capability next pointer)', () => {
    const { hw, pos } = pf(PF, {
      bars: [{ type: 'mem32', size: 1n << 20n }],
      rebar: [{ bar: 0, sizes: [1n << 20n] }],
    });
    expect(findExtCapability(hw, PCI_EXT_CAP_ID_REBAR)).toBe(0x100);
    expect(pos).toBe(0x160);
    expect(hw.read(0x100, 4) >>> 20).toBe(0x160);
  });

  it('keeps the read-only fields read-only (PCIe 9.3.3: TotalVFs, InitialVFs, offset, stride, DID, page sizes)', () => {
    const { hw, pos } = pf();
    const ro: [number, 2 | 4 | 1][] = [
      [PCI_SRIOV_CAP, 4],
      [PCI_SRIOV_STATUS, 2],
      [PCI_SRIOV_INITIAL_VF, 2],
      [PCI_SRIOV_TOTAL_VF, 2],
      [PCI_SRIOV_FUNC_LINK, 1],
      [PCI_SRIOV_VF_OFFSET, 2],
      [PCI_SRIOV_VF_STRIDE, 2],
      [PCI_SRIOV_VF_DID, 2],
      [PCI_SRIOV_SUP_PGSIZE, 4],
      [PCI_SRIOV_VFM, 4],
    ];
    for (const [off, size] of ro) {
      const before = hw.read(pos + off, size);
      hw.write(pos + off, size, size === 4 ? 0xffffffff : (1 << (8 * size)) - 1);
      expect(hw.read(pos + off, size), `offset 0x${off.toString(16)}`).toBe(before);
    }
  });

  it('SR-IOV Control: VF Enable, VF MSE and ARI Capable Hierarchy are RW; VF Migration bits RO zero', () => {
    const { hw, pos } = pf();
    hw.write(pos + PCI_SRIOV_CTRL, 2, 0xffff);
    expect(hw.read(pos + PCI_SRIOV_CTRL, 2)).toBe(0x19);
    hw.write(pos + PCI_SRIOV_CTRL, 2, 0);
    expect(hw.read(pos + PCI_SRIOV_CTRL, 2)).toBe(0);
  });

  it('NumVFs is RW', () => {
    const { hw, pos } = pf();
    hw.write(pos + PCI_SRIOV_NUM_VF, 2, 5);
    expect(hw.read(pos + PCI_SRIOV_NUM_VF, 2)).toBe(5);
  });

  it('System Page Size takes only supported sizes (PCIe 9.3.3.13)', () => {
    const { hw, pos } = pf();
    hw.write(pos + PCI_SRIOV_SYS_PGSIZE, 4, 0x10);
    expect(hw.read(pos + PCI_SRIOV_SYS_PGSIZE, 4)).toBe(0x10);
    hw.write(pos + PCI_SRIOV_SYS_PGSIZE, 4, 0x4); // bit 2 (16 KiB) is not in 0x553
    expect(hw.read(pos + PCI_SRIOV_SYS_PGSIZE, 4)).toBe(0);
  });
});

describe('VF BAR sizing (Xen pci_size_mem_bar with PCI_BAR_VF)', () => {
  it('answers the all-ones protocol with the VF BAR size and restores the address', () => {
    const { hw, pos } = pf();
    expect(sizeVfBar(hw, pos + PCI_SRIOV_BAR)).toEqual({ addr: 0xe000_0000n, size: 0x4000n });
    expect(hw.read(pos + PCI_SRIOV_BAR, 4)).toBe(0xe000_0000);
    expect(sizeVfBar(hw, pos + PCI_SRIOV_BAR + 12)).toEqual({ addr: 0x40_0000_0000n, size: 0x4000n });
    expect(hw.sriov?.vfBarSize(0)).toBe(0x4000n);
    expect(hw.sriov?.vfBarSize(1)).toBe(0n);
  });

  it('reads all-ones writes to an unimplemented VF BAR back as zero: size 0 (VPCI_BAR_EMPTY in size_vf_bars)', () => {
    const { hw, pos } = pf();
    hw.write(pos + PCI_SRIOV_BAR + 4, 4, 0xffffffff);
    expect(hw.read(pos + PCI_SRIOV_BAR + 4, 4)).toBe(0);
  });

  it('rounds each VF BAR up to the System Page Size once it is written (PCIe 9.3.3.13; Linux sriov_init)', () => {
    const { hw, pos } = pf();
    hw.write(pos + PCI_SRIOV_SYS_PGSIZE, 4, 0x10); // bit 4: 2^(4+12) = 64 KiB
    expect(sizeVfBar(hw, pos + PCI_SRIOV_BAR).size).toBe(0x1_0000n);
    expect(sizeVfBar(hw, pos + PCI_SRIOV_BAR + 12).size).toBe(0x1_0000n);
    hw.write(pos + PCI_SRIOV_SYS_PGSIZE, 4, 0x1);
    expect(sizeVfBar(hw, pos + PCI_SRIOV_BAR).size).toBe(0x4000n);
  });

  it('clears the address bits below a larger page size, as a BAR reads its low bits as zero', () => {
    const { hw, pos } = pf({ ...PF, vfBars: [{ type: 'mem32', size: 0x4000n, addr: 0xe000_4000n }] });
    hw.write(pos + PCI_SRIOV_SYS_PGSIZE, 4, 0x10);
    expect(hw.read(pos + PCI_SRIOV_BAR, 4)).toBe(0xe000_0000);
  });

  it('keeps resizing VF BARs in a copy of the device, and the copy is independent', () => {
    const { hw, pos } = pf();
    const copy = hw.copy();
    copy.write(pos + PCI_SRIOV_SYS_PGSIZE, 4, 0x10);
    expect(sizeVfBar(copy, pos + PCI_SRIOV_BAR).size).toBe(0x1_0000n);
    expect(copy.sriov?.vfBarSize(0)).toBe(0x1_0000n);
    expect(sizeVfBar(hw, pos + PCI_SRIOV_BAR).size).toBe(0x4000n);
  });

  it('keeps a VF BAR larger than the page size at its own size', () => {
    const { hw, pos } = pf({ ...PF, vfBars: [{ type: 'mem32', size: 0x10_0000n }] });
    hw.write(pos + PCI_SRIOV_SYS_PGSIZE, 4, 0x10);
    expect(sizeVfBar(hw, pos + PCI_SRIOV_BAR).size).toBe(0x10_0000n);
  });
});

describe('routing IDs and VF BAR arithmetic', () => {
  it('System Page Size bit n selects 2^(n+12) bytes (PCI_SRIOV_SYS_PGSIZE; Linux iov.c pgsz)', () => {
    expect(sriovPageSize(0x1)).toBe(0x1000n);
    expect(sriovPageSize(0x10)).toBe(0x1_0000n);
    expect(sriovPageSize(0x400)).toBe(0x40_0000n);
    expect(sriovPageSize(0)).toBe(0n);
  });

  it('VF n sits at PF RID + offset + n × stride (Linux virtfn_bus/virtfn_devfn)', () => {
    // Intel 82576: PF 82:00.1, First VF Offset 0x80, stride 2 → VF 0 is 82:10.1.
    expect(vfRoutingId(0x8201, 0x80, 2, 0)).toBe(0x8281);
    expect(vfRoutingId(0x8201, 0x80, 2, 3)).toBe(0x8287);
    // PF 03:00.0, offset 0x80, stride 1: VF 127 is 03:1f.7 and VF 128 carries into bus 04.
    expect(vfRoutingId(0x0300, 0x80, 1, 127)).toBe(0x03ff);
    expect(vfRoutingId(0x0300, 0x80, 1, 128)).toBe(0x0400);
    expect(vfRoutingId(0xff00, 0x80, 1, 128)).toBeUndefined();
  });

  it('inverts the routing ID as the series vf_init_bars does', () => {
    expect(vfIndexOf(0x8201, 0x80, 2, 8, 0x8287)).toBe(3);
    expect(vfIndexOf(0x8201, 0x80, 2, 8, 0x8288)).toBeUndefined(); // off the stride
    expect(vfIndexOf(0x8201, 0x80, 2, 8, 0x8280)).toBeUndefined(); // below VF 0
    expect(vfIndexOf(0x8201, 0x80, 2, 4, 0x8289)).toBeUndefined(); // VF 4 of 4
    expect(vfIndexOf(0x0300, 0x80, 0, 1, 0x0380)).toBe(0);
    expect(vfIndexOf(0x0300, 0x80, 0, 2, 0x0380)).toBeUndefined(); // stride 0 with two VFs
  });

  it('VF n BAR i is VF BAR i + n × size_i (PCIe 9.3.3.14)', () => {
    expect(vfBarAddress(0xe000_0000n, 0x4000n, 0)).toBe(0xe000_0000n);
    expect(vfBarAddress(0xe000_0000n, 0x4000n, 7)).toBe(0xe001_c000n);
  });
});

describe('VF Enable: the VFs at their routing IDs, and their config space (PCIe 9.3.4)', () => {
  const withVfs = (numVfs: number, sbdf = '0000:82:00.0', offset = 0x80, stride = 2) =>
    PhysicalDevice.fromSpec({
      sbdf,
      sriov: {
        ...PF,
        totalVfs: 256,
        numVfs,
        firstVfOffset: offset,
        vfStride: stride,
        vfEnable: true,
        vfMsix: { entries: 4, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
      },
    });

  it('lists NumVFs routing IDs, PF + offset + n × stride, carrying into the next bus', () => {
    const hw = withVfs(3);
    expect(hw.sriov?.vfEnable).toBe(true);
    expect(hw.sriov?.vfMemorySpace).toBe(false);
    expect(hw.sriov?.vfRoutingIds(0x8200)).toEqual([0x8280, 0x8282, 0x8284]);
    const wide = withVfs(200, '0000:03:00.0', 0x80, 1);
    const ids = wide.sriov?.vfRoutingIds(0x0300) ?? [];
    expect(ids.length).toBe(200);
    expect(ids[127]).toBe(0x03ff);
    expect(ids[128]).toBe(0x0400); // 04:00.0
  });

  it('stops the list at the last bus (Linux sriov_enable refuses VFs beyond the bus range)', () => {
    const hw = withVfs(200, '0000:ff:00.0', 0x80, 1);
    expect(hw.sriov?.vfRoutingIds(0xff00).length).toBe(128);
  });

  it('gives each VF its own config space: IDs 0xffff, memory bit RO zero, BARs read zero, MSI-X', () => {
    const pfHw = withVfs(200, '0000:03:00.0', 0x80, 1);
    const vf = PhysicalDevice.virtualFunction(pfHw, 128);
    expect(vf.toString()).toBe('0000:04:00.0');
    expect(vf.extendedConfig).toBe(true);
    expect(vf.read(0x00, 4)).toBe(0xffffffff);
    vf.write(0x04, 2, 0x0007); // I/O, memory, bus master
    expect(vf.read(0x04, 2)).toBe(0x0004); // only bus master sticks
    for (let i = 0; i < 6; i++) {
      vf.write(0x10 + 4 * i, 4, 0xffffffff);
      expect(vf.read(0x10 + 4 * i, 4)).toBe(0);
    }
    expect(findExtCapability(vf, PCI_EXT_CAP_ID_SRIOV)).toBe(0);
    // MSI-X capability at 0x40: table in BAR 0 at 0x2000, PBA at 0x3000, 4 entries (Table Size 3).
    expect(vf.read(0x40, 1)).toBe(0x11);
    expect(vf.read(0x42, 2)).toBe(3);
    expect(vf.read(0x44, 4)).toBe(0x2000);
    expect(vf.read(0x48, 4)).toBe(0x3000);
  });

  it('refuses a VF index NumVFs does not bring up, and a function without SR-IOV', () => {
    expect(() => PhysicalDevice.virtualFunction(withVfs(3), 3)).toThrow(InvalidArgumentError);
    expect(() => PhysicalDevice.virtualFunction(PhysicalDevice.fromSpec({ sbdf: '00:01.0' }), 0)).toThrow(
      /^pf: expected an SR-IOV physical function/,
    );
  });
});

describe('SR-IOV description errors name the field', () => {
  it.each<[string, Partial<SriovSpec>]>([
    ['spec.sriov.vfStride', { vfStride: 0 }],
    ['spec.sriov.numVfs', { numVfs: 9 }],
    ['spec.sriov.systemPageSize', { systemPageSize: 0x4 }],
    ['spec.sriov.supportedPageSizes', { supportedPageSizes: 0x2, systemPageSize: 0x2 }],
    ['spec.sriov.vfBars[0].type', { vfBars: [{ type: 'io' as 'mem32', size: 16n }] }],
    ['spec.sriov.vfBars[5].type', { vfBars: [null, null, null, null, null, { type: 'mem64', size: 16n }] }],
    ['spec.sriov.vfBars[0].addr', { vfBars: [{ type: 'mem32', size: 0x4000n, addr: 0x2000n }] }],
    [
      'spec.sriov.vfBars[1]',
      {
        vfBars: [
          { type: 'mem64', size: 16n },
          { type: 'mem32', size: 16n },
        ],
      },
    ],
    [
      'spec.sriov.vfMsix.table.offset',
      { vfMsix: { entries: 1, table: { bar: 0, offset: 3 }, pba: { bar: 0, offset: 8 } } },
    ],
  ])('%s', (argument, change) => {
    const attempt = () => PhysicalDevice.fromSpec({ sbdf: '0000:82:00.0', sriov: { ...PF, ...change } });
    expect(attempt).toThrow(InvalidArgumentError);
    expect(attempt).toThrow(argument);
  });
});
