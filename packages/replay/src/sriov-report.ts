/**
 * SR-IOV in the report (docs/sriov.md): a physical function's capability as its registers read now
 * (`ReportSriov`), each VF BAR slot's array of per-VF BARs, and which devices on the machine are its
 * virtual functions. The PF↔VF link is the routing-ID arithmetic of PCIe 9.3.3.10-11 (`vfIndexOf`,
 * what Linux's `virtfn_bus()`/`virtfn_devfn()` and the series' `vf_init_bars()` compute): a device at
 * VF n's routing ID while VF Enable is on, whose Vendor ID reads 0xffff as a VF's does (PCIe 9.3.4.1.1).
 */
import {
  type Machine,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_SRIOV_BAR,
  PCI_SRIOV_CTRL,
  PCI_SRIOV_CTRL_ARI,
  PCI_SRIOV_INITIAL_VF,
  PCI_SRIOV_NUM_BARS,
  PCI_SRIOV_NUM_VF,
  PCI_SRIOV_SUP_PGSIZE,
  PCI_SRIOV_SYS_PGSIZE,
  PCI_SRIOV_TOTAL_VF,
  PCI_SRIOV_VF_DID,
  PCI_SRIOV_VF_OFFSET,
  PCI_SRIOV_VF_STRIDE,
  PCI_VENDOR_ID,
  type PciDevice,
  type PhysicalDevice,
  sriovPageSize,
  vfIndexOf,
} from '@vpci/vpci';
import { hex } from './fields.js';
import type { ReportSriov, ReportVfBar } from './report.js';

/** A PF's VFs on the machine and each VF's PF, both ways. */
export interface SriovLinks {
  /** Each PF's VFs on the machine, by VF index. */
  readonly vfs: ReadonlyMap<PciDevice, readonly { readonly index: number; readonly device: PciDevice }[]>;
  /** Each VF's PF and index. */
  readonly pf: ReadonlyMap<PciDevice, { readonly device: PciDevice; readonly index: number }>;
}

/** Routing ID `bus << 8 | devfn` of a device. */
function routingId(device: PciDevice): number {
  return (device.sbdf.bus << 8) | (device.sbdf.dev << 3) | device.sbdf.fn;
}

/**
 * The PF↔VF links among the machine's devices: for each PF with VF Enable on, the devices at its VF
 * routing IDs that read as VFs. Costs NumVFs lookups per PF, never devices × devices.
 */
export function sriovLinks(machine: Machine): SriovLinks {
  const vfs = new Map<PciDevice, { index: number; device: PciDevice }[]>();
  const pf = new Map<PciDevice, { device: PciDevice; index: number }>();
  for (const device of machine.devices()) {
    const sriov = device.hw.sriov;
    if (sriov === undefined || !sriov.vfEnable) continue;
    const pfRid = routingId(device);
    const found: { index: number; device: PciDevice }[] = [];
    sriov.vfRoutingIds(pfRid).forEach((rid, index) => {
      const vf = machine.findDevice({
        seg: device.sbdf.seg,
        bus: rid >> 8,
        dev: (rid >> 3) & 0x1f,
        fn: rid & 7,
      });
      if (vf === undefined || vf === device || vf.hw.read(PCI_VENDOR_ID, 2) !== 0xffff) return;
      // The inverse the series' vf_init_bars() computes must name the same VF.
      const offset = sriov.field16(PCI_SRIOV_VF_OFFSET);
      const stride = sriov.field16(PCI_SRIOV_VF_STRIDE);
      if (vfIndexOf(pfRid, offset, stride, sriov.field16(PCI_SRIOV_NUM_VF), rid) !== index) return;
      found.push({ index, device: vf });
      pf.set(vf, { device, index });
    });
    if (found.length > 0) vfs.set(device, found);
  }
  return { vfs, pf };
}

/**
 * The SR-IOV capability of `hw` as its registers read now, with `vfs` (the VFs on the machine); undefined
 * without one. A VF BAR slot is listed when it is implemented (its size is not 0): VF 0's address, each
 * VF's size under the current System Page Size, and the range the PF decodes for NumVFs VFs.
 */
export function reportSriov(
  hw: PhysicalDevice,
  vfs: readonly { readonly index: number; readonly device: PciDevice }[] = [],
): ReportSriov | undefined {
  const sriov = hw.sriov;
  if (sriov === undefined) return undefined;
  const at = (offset: number, size: number): number => hw.read(sriov.pos + offset, size);
  const numVfs = sriov.field16(PCI_SRIOV_NUM_VF);
  const vfBars: ReportVfBar[] = [];
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const size = sriov.vfBarSize(i);
    if (size === 0n) continue;
    const low = at(PCI_SRIOV_BAR + 4 * i, 4);
    const wide = (low & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64;
    const addr =
      BigInt((low & 0xfffffff0) >>> 0) | (wide ? BigInt(at(PCI_SRIOV_BAR + 4 * i + 4, 4)) << 32n : 0n);
    vfBars.push({
      index: i,
      type: wide ? 'mem64' : 'mem32',
      prefetchable: (low & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0,
      addr: hex(addr),
      size: hex(size),
      span: numVfs === 0 ? null : [hex(addr), hex(addr + BigInt(numVfs) * size - 1n)],
    });
    if (wide) i++;
  }
  const system = at(PCI_SRIOV_SYS_PGSIZE, 4);
  return {
    pos: hex(sriov.pos),
    totalVfs: sriov.field16(PCI_SRIOV_TOTAL_VF),
    initialVfs: sriov.field16(PCI_SRIOV_INITIAL_VF),
    numVfs,
    vfEnable: sriov.vfEnable,
    vfMemorySpace: sriov.vfMemorySpace,
    ari: (sriov.field16(PCI_SRIOV_CTRL) & PCI_SRIOV_CTRL_ARI) !== 0,
    firstVfOffset: sriov.field16(PCI_SRIOV_VF_OFFSET),
    vfStride: sriov.field16(PCI_SRIOV_VF_STRIDE),
    vfDeviceId: hex(sriov.field16(PCI_SRIOV_VF_DID)),
    supportedPageSizes: hex(at(PCI_SRIOV_SUP_PGSIZE, 4)),
    systemPageSize: hex(system),
    pageSize: hex(sriovPageSize(system)),
    vfBars,
    vfs: vfs.map((vf) => ({ index: vf.index, sbdf: vf.device.name })),
  };
}

/** A byte count as `16 KiB`, `2 MiB`, or hexadecimal when it is no whole KiB. */
function bytes(size: bigint): string {
  const units: [bigint, string][] = [
    [1n << 40n, 'TiB'],
    [1n << 30n, 'GiB'],
    [1n << 20n, 'MiB'],
    [1n << 10n, 'KiB'],
  ];
  for (const [unit, name] of units) if (size >= unit && size % unit === 0n) return `${size / unit} ${name}`;
  return `${hex(size)} bytes`;
}

/** The capability's fields in one line, as the text report and the image note print them. */
export function sriovFieldsText(sriov: ReportSriov): string {
  return (
    `TotalVFs ${sriov.totalVfs}, InitialVFs ${sriov.initialVfs}, NumVFs ${sriov.numVfs}, ` +
    `VF Enable ${sriov.vfEnable ? 'on' : 'off'}, VF MSE ${sriov.vfMemorySpace ? 'on' : 'off'}` +
    `${sriov.ari ? ', ARI' : ''}, First VF Offset ${sriov.firstVfOffset}, VF Stride ${sriov.vfStride}, ` +
    `VF Device ID ${sriov.vfDeviceId}, page sizes ${sriov.supportedPageSizes} ` +
    `(system ${sriov.systemPageSize}: ${bytes(BigInt(sriov.pageSize))})`
  );
}

/** One VF BAR slot in words: `VF BAR0 mem64 prefetchable 16 KiB each, VF 0 at 0x…, 8 VFs 0x…-0x…`. */
export function vfBarText(bar: ReportVfBar): string {
  return (
    `VF BAR${bar.index} ${bar.type}${bar.prefetchable ? ' prefetchable' : ''} ${bytes(BigInt(bar.size))} each, ` +
    `VF 0 at ${bar.addr}${bar.span === null ? '' : `, decoding ${bar.span[0]}-${bar.span[1]}`}`
  );
}

/**
 * The replay note for a PF read from an image: what the image gave, and what it could not give (the
 * VF BAR sizes, taken from `sizes.vfBars`; the VFs' own configuration space).
 */
export function imageSriovNote(sbdf: string, hw: PhysicalDevice): string | undefined {
  const sriov = reportSriov(hw);
  if (sriov === undefined) return undefined;
  const bars = sriov.vfBars.map(vfBarText);
  return (
    `${sbdf}: SR-IOV capability at ${sriov.pos} read from the image: ${sriovFieldsText(sriov)}; ` +
    `${bars.length === 0 ? 'no VF BARs implemented' : bars.join('; ')}. ` +
    'Not in the image: the VF BAR sizes (taken from device.sizes.vfBars; a slot without one is ' +
    "unimplemented) and the VFs' own configuration space (so the VFs get no MSI-X capability)"
  );
}
