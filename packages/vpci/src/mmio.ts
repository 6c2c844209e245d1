/**
 * A vCPU's memory access to an MMIO address, as x86 Xen handles it for an HVM/PVH domain: a page
 * its p2m maps `mmio_direct` reaches the device directly, except a write to a machine frame in
 * `mmio_ro_ranges`, which faults into the MMIO handlers (`hvm_hap_nested_page_fault`, commit
 * 8f36bde2b2); a hole (`p2m_invalid`, `p2m_mmio_dm`) always goes to them. The handlers are vPCI's
 * MSI-X table handler (`msix_accept`); an access no handler takes reads all-ones and its write is
 * dropped (no device model serves it). Xen's other handlers (LAPIC, HPET, the sub-page read-only
 * handler) are not modelled.
 */
import { gfn, InvalidArgumentError, type Mfn } from '@vpci/p2m';
import type { EngineContext } from './context.js';
import type { DeviceMemory } from './device-memory.js';
import type { PciDevice, Vcpu } from './domain.js';
import { findCapability, findExtCapability } from './hardware.js';
import { msixHostAddr, msixSize, VPCI_MSIX_PBA, VPCI_MSIX_TABLE } from './msix.js';
import { type MsixHandler, msixFind, msixRead, msixWrite } from './msix-table.js';
import { registerBars } from './ownership.js';
import {
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_CAP_ID_MSIX,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_MSIX_BIRMASK,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_SRIOV_BAR,
  PCI_SRIOV_CTRL,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_NUM_BARS,
  PCI_SRIOV_NUM_VF,
  PCI_SRIOV_VF_OFFSET,
  PCI_SRIOV_VF_STRIDE,
} from './pci-regs.js';
import type { Sbdf } from './sbdf.js';

/**
 * Who answered an MMIO access: `direct` (the device, through the p2m's mapping), `msix-table` or
 * `msix-adjacent` (Xen's MSI-X handlers), `unhandled` (no handler: all-ones, write dropped),
 * `memory` (the page is RAM or another non-MMIO type: its contents are not modelled).
 */
export type MmioPath = 'direct' | MsixHandler | 'unhandled' | 'memory';

/** The outcome of an MMIO access: the path, and for a read the value (none for `memory`). */
export interface MmioResult {
  /** Who answered the access. */
  readonly path: MmioPath;
  /** The value read, cut to the access size; undefined for a write or a `memory` read. */
  readonly value: bigint | undefined;
}

const ALL_ONES = 0xffff_ffff_ffff_ffffn;

/** Throws unless the access is 1, 2, 4 or 8 bytes within one page of the 64-bit address space. */
export function checkMmioAccess(addr: unknown, size: unknown, value?: unknown): void {
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8)
    throw new InvalidArgumentError('size', size, '1, 2, 4 or 8');
  if (
    typeof addr !== 'bigint' ||
    addr < 0n ||
    addr >= 1n << 64n ||
    (addr & 0xfffn) + BigInt(size) > 0x1000n
  ) {
    throw new InvalidArgumentError('addr', addr, `a bigint address with its ${size} bytes in one page`);
  }
  if (value !== undefined && (typeof value !== 'bigint' || value < 0n || value >> BigInt(8 * size) !== 0n)) {
    throw new InvalidArgumentError('value', value, `a bigint of at most ${size} bytes`);
  }
}

/**
 * Machine frames in `mmio_ro_ranges` for MSI-X: the table and PBA frames of each device with an
 * entry Xen has bound (`msix_capability_init` adds them with the first bound entry,
 * `_pci_cleanup_msix` removes them with the last), from the device's BAR registers
 * (`read_pci_mem_bar`; a VF's from its PF's VF BAR registers and `vf_rlen`: `vfMemBar`; vPCI's host
 * address where they give 0). The PBA's last frame is
 * `PFN_DOWN(pba + BITS_TO_LONGS(entries) - 1)`, as Xen computes it.
 */
export function readOnlyMsixFrame(context: EngineContext, frame: Mfn): boolean {
  for (const device of context.devices()) {
    const msix = device.vpci?.msix;
    if (msix === undefined || !msix.entries.some((entry) => entry.bound)) continue;
    const cap = findCapability(device.hw, PCI_CAP_ID_MSIX);
    if (cap === 0) continue;
    for (const [nr, reg] of [
      [VPCI_MSIX_TABLE, PCI_MSIX_TABLE],
      [VPCI_MSIX_PBA, PCI_MSIX_PBA],
    ] as const) {
      const raw = device.hw.read(cap + reg, 4);
      const bir = raw & PCI_MSIX_BIRMASK;
      let barAddr: bigint;
      if (device.physfn !== undefined) barAddr = vfMemBar(device.physfn, device, bir);
      else barAddr = registerBars(device).find((b) => b.index === bir && b.type !== 'rom')?.addr ?? 0n;
      const base =
        barAddr !== 0n ? barAddr + BigInt((raw & ~PCI_MSIX_BIRMASK) >>> 0) : msixHostAddr(device.vpci!, nr);
      const length =
        nr === VPCI_MSIX_TABLE
          ? BigInt(msixSize(msix.maxEntries, nr))
          : BigInt(Math.ceil(msix.maxEntries / 64));
      const f = BigInt(frame);
      if (f >= base >> 12n && f <= (base + length - 1n) >> 12n) return true;
    }
  }
  return false;
}

/**
 * x86 `read_pci_mem_bar(pf, bir, vf)` (xen/arch/x86/msi.c) for VF `vf` of `pf`: VF BAR `bir`'s
 * address, `VF BAR bir + n × vf_rlen[bir]`, from the PF's registers and its `vf_rlen`
 * (`PciDevice.vfRlen`); 0, and Xen falls back to vPCI's table address, unless the PF has VF Enable
 * and VF MSE on, NumVFs and First VF Offset set (and a VF Stride for several VFs), `vf_rlen[bir]` is
 * sized, and the VF's routing ID is one of the NumVFs the registers place.
 */
function vfMemBar(pf: PciDevice, vf: PciDevice, bir: number): bigint {
  const pos = findExtCapability(pf.hw, PCI_EXT_CAP_ID_SRIOV);
  const ctrl = pf.hw.read(pos + PCI_SRIOV_CTRL, 2);
  const numVf = pf.hw.read(pos + PCI_SRIOV_NUM_VF, 2);
  const offset = pf.hw.read(pos + PCI_SRIOV_VF_OFFSET, 2);
  const stride = pf.hw.read(pos + PCI_SRIOV_VF_STRIDE, 2);
  if (
    pos === 0 ||
    (ctrl & PCI_SRIOV_CTRL_VFE) === 0 ||
    (ctrl & PCI_SRIOV_CTRL_MSE) === 0 ||
    numVf === 0 ||
    offset === 0 ||
    (numVf > 1 && stride === 0) ||
    bir >= PCI_SRIOV_NUM_BARS ||
    pf.vfRlen[bir] === 0n
  )
    return 0n;
  const bdf = (sbdf: Sbdf): number => (sbdf.bus << 8) | (sbdf.dev << 3) | sbdf.fn;
  let n = bdf(vf.sbdf) - (bdf(pf.sbdf) + offset);
  if (n < 0) return 0n;
  if (stride !== 0) {
    if (n % stride !== 0) return 0n;
    n /= stride;
  }
  if (n >= numVf) return 0n;
  const reg = pos + PCI_SRIOV_BAR + 4 * bir;
  const low = pf.hw.read(reg, 4);
  const disp = BigInt(n) * pf.vfRlen[bir]!;
  const addr = BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
  if ((low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) !== PCI_BASE_ADDRESS_MEM_TYPE_64) return addr + disp;
  if (bir + 1 >= PCI_SRIOV_NUM_BARS) return 0n;
  return addr + disp + (BigInt(pf.hw.read(reg + 4, 4)) << 32n);
}

/**
 * An MMIO read (`write` undefined) or write by `vcpu` of `size` bytes at its guest-physical address
 * `addr`. The access is checked with `checkMmioAccess` by the caller.
 */
export function mmioAccess(
  context: EngineContext,
  memory: DeviceMemory,
  vcpu: Vcpu,
  addr: bigint,
  size: number,
  write: bigint | undefined,
): MmioResult {
  const domain = vcpu.domain;
  const entry = domain.p2m.lookup(gfn(Number(addr >> 12n)));
  const mask = (1n << BigInt(8 * size)) - 1n;
  if (entry.type === 'mmio_direct' && entry.mfn !== undefined) {
    const host = (BigInt(entry.mfn) << 12n) | (addr & 0xfffn);
    if (write === undefined) return { path: 'direct', value: memory.read(context.devices(), host, size) };
    if (!readOnlyMsixFrame(context, entry.mfn)) {
      memory.write(context.devices(), host, size, write);
      return { path: 'direct', value: undefined };
    }
  } else if (entry.type !== 'invalid' && entry.type !== 'mmio_dm') {
    return { path: 'memory', value: undefined };
  }
  // handle_mmio: vPCI's MSI-X handler if it accepts the address, else nothing takes it.
  const device = msixFind(context, domain, addr);
  if (device === undefined)
    return { path: 'unhandled', value: write === undefined ? ALL_ONES & mask : undefined };
  if (write === undefined) {
    const read = msixRead(context, memory, device, addr, size);
    return { path: read.handler, value: read.value };
  }
  return { path: msixWrite(context, memory, domain, device, addr, size, write), value: undefined };
}
