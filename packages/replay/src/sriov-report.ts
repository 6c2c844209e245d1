/**
 * SR-IOV in the report (docs/sriov.md): a physical function's capability as its registers read now
 * (`ReportSriov`), each VF BAR slot's array of per-VF BARs, and which devices on the machine are its
 * virtual functions (the engine's PF↔VF links, set when VF Enable brings the VFs up).
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
  type PciDevice,
  type PhysicalDevice,
  sriovPageSize,
} from '@vpci/vpci';
import { hex } from './fields.js';

/**
 * One VF BAR slot of an SR-IOV physical function: the array of per-VF BARs it holds, VF n's BAR at
 * `addr + n × size` (PCIe 9.3.3.14).
 */
export interface ReportVfBar {
  /** VF BAR slot, 0 … 5 (a 64-bit VF BAR: its low slot). */
  readonly index: number;
  /** 32- or 64-bit memory (VFs have no I/O space). */
  readonly type: 'mem32' | 'mem64';
  /** Prefetchable memory. */
  readonly prefetchable: boolean;
  /** VF 0's BAR address: the VF BAR register, hexadecimal. */
  readonly addr: string;
  /** Each VF's BAR size under the current System Page Size, hexadecimal. */
  readonly size: string;
  /** The byte range `[first, last]` NumVFs VFs' BARs take (decoded while VF MSE is on); null while NumVFs is 0. */
  readonly span: readonly [string, string] | null;
}

/** A physical function's SR-IOV capability (extended capability 0x10) as its registers read now. */
export interface ReportSriov {
  /** Offset of the capability in configuration space, hexadecimal. */
  readonly pos: string;
  /** TotalVFs. */
  readonly totalVfs: number;
  /** InitialVFs. */
  readonly initialVfs: number;
  /** NumVFs. */
  readonly numVfs: number;
  /** SR-IOV Control's VF Enable. */
  readonly vfEnable: boolean;
  /** SR-IOV Control's VF Memory Space Enable. */
  readonly vfMemorySpace: boolean;
  /** SR-IOV Control's ARI Capable Hierarchy. */
  readonly ari: boolean;
  /** First VF Offset: VF 0's routing ID minus the PF's. */
  readonly firstVfOffset: number;
  /** VF Stride. */
  readonly vfStride: number;
  /** VF Device ID, hexadecimal. */
  readonly vfDeviceId: string;
  /** Supported Page Sizes (bit n: 2^(n+12) bytes), hexadecimal. */
  readonly supportedPageSizes: string;
  /** System Page Size register, hexadecimal. */
  readonly systemPageSize: string;
  /** The page size it selects in bytes, hexadecimal (0x0 when no bit is set). */
  readonly pageSize: string;
  /** The implemented VF BAR slots. */
  readonly vfBars: readonly ReportVfBar[];
  /** The VFs on the machine (`devices` lists them too, each with `physfn`), by VF index. */
  readonly vfs: readonly { readonly index: number; readonly sbdf: string }[];
}

/** A PF's VFs on the machine and each VF's PF, both ways. */
export interface SriovLinks {
  /** Each PF's VFs on the machine, by VF index. */
  readonly vfs: ReadonlyMap<PciDevice, readonly { readonly index: number; readonly device: PciDevice }[]>;
  /** Each VF's PF and index. */
  readonly pf: ReadonlyMap<PciDevice, { readonly device: PciDevice; readonly index: number }>;
}

/**
 * The PF↔VF links among the machine's devices, as the engine keeps them (Xen's `pdev->pf_pdev` and
 * `vf_list`): each PF's VFs in VF order, and each VF's PF.
 */
export function sriovLinks(machine: Machine): SriovLinks {
  const vfs = new Map<PciDevice, { index: number; device: PciDevice }[]>();
  const pf = new Map<PciDevice, { device: PciDevice; index: number }>();
  for (const device of machine.devices()) {
    if (device.virtfns.length > 0)
      vfs.set(
        device,
        device.virtfns.map((vf) => ({ index: vf.vfIndex, device: vf })),
      );
    if (device.physfn !== undefined) pf.set(device, { device: device.physfn, index: device.vfIndex });
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

/** One VF BAR slot in words: `VF BAR0 mem64 prefetchable 16 KiB each, VF 0 at 0x…, NumVFs span 0x…-0x…`. */
export function vfBarText(bar: ReportVfBar): string {
  return (
    `VF BAR${bar.index} ${bar.type}${bar.prefetchable ? ' prefetchable' : ''} ${bytes(BigInt(bar.size))} each, ` +
    `VF 0 at ${bar.addr}${bar.span === null ? '' : `, NumVFs span ${bar.span[0]}-${bar.span[1]}`}`
  );
}

/**
 * The replay note for a PF read from an image: what the image gave, and what it could not give: the
 * VF BAR sizes (taken from `sizes.vfBars`; a VF BAR register in use without one is named, and left
 * unimplemented rather than given an invented size) and the VFs' own configuration space.
 */
export function imageSriovNote(sbdf: string, hw: PhysicalDevice): string | undefined {
  const sriov = reportSriov(hw);
  if (sriov === undefined || hw.sriov === undefined) return undefined;
  const bars = sriov.vfBars.map(vfBarText);
  const unsized: string[] = [];
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const register = hw.read(hw.sriov.pos + PCI_SRIOV_BAR + 4 * i, 4);
    if (register !== 0 && hw.sriov.vfBarSize(i) === 0n)
      unsized.push(`VF BAR${i} (register ${hex(register >>> 0)})`);
    if ((register & 0x7) === PCI_BASE_ADDRESS_MEM_TYPE_64) i++;
  }
  return (
    `${sbdf}: SR-IOV capability at ${sriov.pos} read from the image: ${sriovFieldsText(sriov)}; ` +
    `${bars.length === 0 ? 'no VF BARs implemented' : bars.join('; ')}. ` +
    (unsized.length === 0
      ? ''
      : `In use in the image but without a size in device.sizes.vfBars, so left unimplemented (the VFs get no such BAR): ${unsized.join(', ')}. `) +
    'Not in the image: the VF BAR sizes (taken from device.sizes.vfBars; a slot without one is ' +
    "unimplemented) and the VFs' own configuration space (so the VFs get no MSI-X capability)"
  );
}
