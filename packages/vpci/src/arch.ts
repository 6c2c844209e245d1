/**
 * What differs between Xen's x86 and Arm builds of vPCI, asked by the handlers (header.c's logic
 * stays in header.ts, modify-bars.ts, decoding.ts and pending.ts; each place that differs asks here):
 * - which domains get vPCI: x86 gives it to the hardware domain only (`emulation_flags_ok`: a domU's
 *   flags may not include `X86_EMU_VPCI`), Arm builds the guest side (`HAS_VPCI_GUEST_SUPPORT` with
 *   `PCI_PASSTHROUGH`);
 * - MSI and MSI-X emulation (`msi.o msix.o` only with `CONFIG_HAS_PCI_MSI`, which x86 selects and Arm
 *   does not): no MSI-X holes on Arm, the table is mapped like the rest of its BAR;
 * - a guest's I/O BAR: no handler on x86 (all-ones), read as zero elsewhere (`vpci_init_header`);
 * - `pci_check_bar`: always true on x86 (it only logs e820 overlaps), the host bridge windows on Arm;
 * - `pci_sanitize_bar_memory`: the e820 removal on x86, nothing on Arm;
 * - the p2m's `{un}map_mmio_regions`: x86's partial progress (preemptible), Arm's whole range in
 *   block mappings, never preempted (@vpci/p2m `armMapMmioRegions`).
 */
import {
  type ArmMmioErrno,
  armMapMmioRegions,
  armUnmapMmioRegions,
  type Gfn,
  type Mfn,
  type MmioErrno,
  mapMmio,
  mmioCallRun,
  type P2m,
  unmapMmio,
} from '@vpci/p2m';
import type { Failure } from '@vpci/rangeset';
import { armPciCheckBar, type ResolvedHostBridge } from './arm-pci-host.js';
import type { Bar } from './device.js';
import type { PciDevice } from './domain.js';

/** The host architecture whose Xen build the engine follows: `x86` (default) or `arm` (arm64). */
export type Arch = 'x86' | 'arm';

/** Every architecture, in documentation order. */
export const ARCHES: readonly Arch[] = Object.freeze(['x86', 'arm'] as const);

/**
 * Whether guests get vPCI on this machine, and why:
 * - `arm`: Arm builds guest vPCI (`HAS_VPCI_GUEST_SUPPORT`); Xen staging still defines Arm's
 *   `has_vpci(d)` as false ("vPCI is not available on Arm"), so choosing `arm` anticipates it being
 *   turned on, for the hardware domain and guests alike;
 * - `x86-switch`: x86 with `x86GuestVpci: true`, anticipating x86 domU vPCI support, which Xen
 *   staging does not have;
 * - `x86-assumed`: x86 for a caller that predates `arch` (no `arch` given): the same anticipation,
 *   assumed so that such callers and traces keep working as before;
 * - `x86-off`: x86 as Xen is: a device given to a guest gets no vPCI.
 */
export type GuestVpciReason = 'arm' | 'x86-switch' | 'x86-assumed' | 'x86-off';

/** Whether guests get vPCI (`enabled`), and the reason. */
export interface GuestVpci {
  /** A device assigned to a guest gets vPCI. */
  readonly enabled: boolean;
  /** Why (see `GuestVpciReason`). */
  readonly reason: GuestVpciReason;
}

/**
 * The guest-vPCI decision for a machine: `arch` as given (undefined: a caller that predates it),
 * `x86GuestVpci` as given. Arm always has it (the switch is x86's, and means nothing there).
 */
export function guestVpciFor(arch: Arch | undefined, x86GuestVpci: boolean | undefined): GuestVpci {
  if (arch === 'arm') return { enabled: true, reason: 'arm' };
  if (x86GuestVpci === true) return { enabled: true, reason: 'x86-switch' };
  if (x86GuestVpci === false) return { enabled: false, reason: 'x86-off' };
  return arch === undefined
    ? { enabled: true, reason: 'x86-assumed' }
    : { enabled: false, reason: 'x86-off' };
}

/** One sentence on the guest-vPCI decision, for reports. */
export function describeGuestVpci(guestVpci: GuestVpci): string {
  switch (guestVpci.reason) {
    case 'arm':
      return "Arm: guests get vPCI (HAS_VPCI_GUEST_SUPPORT with PCI_PASSTHROUGH), anticipating has_vpci(), which Arm's asm/domain.h keeps false in Xen staging";
    case 'x86-switch':
      return 'x86GuestVpci: guests get vPCI, anticipating x86 domU vPCI support, not in Xen staging';
    case 'x86-assumed':
      return 'x86GuestVpci assumed (no arch given): guests get vPCI, anticipating x86 domU vPCI support, not in Xen staging';
    case 'x86-off':
      return 'x86 as Xen is: guests get no vPCI (has_vpci() is false for a domU)';
  }
}

/** `CONFIG_HAS_PCI_MSI`: vPCI emulates MSI and MSI-X (x86 only: Arm builds no msi.c, msix.c). */
export function hasPciMsi(arch: Arch): boolean {
  return arch === 'x86';
}

/**
 * `vpci_init_header`, an I/O BAR of a guest: `!IS_ENABLED(CONFIG_X86)` gets a read-as-zero handler
 * (writes ignored); x86 registers none, so the guest reads all-ones.
 */
export function guestIoBarReadsZero(arch: Arch): boolean {
  return arch !== 'x86';
}

/** `pci_sanitize_bar_memory` does something: x86 removes the e820 entries; Arm's returns 0. */
export function sanitizesBarMemory(arch: Arch): boolean {
  return arch === 'x86';
}

/** What the architecture's answers need of the machine (the `EngineContext` has both). */
export interface ArchHost {
  /** The architecture. */
  readonly arch: Arch;
  /** Arm: the PCI host bridges; empty on x86. */
  readonly hostBridges: readonly ResolvedHostBridge[];
}

/**
 * `pci_check_bar(pdev, PFN_DOWN(addr), PFN_DOWN(addr + size - 1))` as a predicate, without x86's log
 * (modifyBars logs): true on x86, the host bridge windows on Arm.
 */
export function pciCheckBar(context: ArchHost, device: PciDevice, bar: Bar): boolean {
  if (context.arch === 'x86') return true;
  const [start, end] = bar.hostFrames();
  return armPciCheckBar(context.hostBridges, device.sbdf, start, end);
}

/** What one `{un}map_mmio_regions` call did, in the terms vPCI's `map_range` needs. */
export type ArchMmioResult =
  | { readonly ok: true; readonly done: true }
  | { readonly ok: true; readonly done: false; readonly progress: number }
  | (Failure<MmioErrno | ArmMmioErrno> & { readonly written: number });

/**
 * `map_mmio_regions` (`map`) or `unmap_mmio_regions` of the machine's architecture: x86's returns
 * after at most 64 chunks with the progress made; Arm's does the whole range or fails (`written`:
 * the frames its blocks changed before the failure, which Xen does not report and keeps).
 */
export function archMmio(
  arch: Arch,
  p2m: P2m,
  map: boolean,
  gfn: Gfn,
  count: number,
  mfn: Mfn,
): ArchMmioResult {
  if (arch === 'arm') {
    const rc = map ? armMapMmioRegions(p2m, gfn, count, mfn) : armUnmapMmioRegions(p2m, gfn, count, mfn);
    return rc.ok ? { ok: true, done: true } : rc;
  }
  const rc = map ? mapMmio(p2m, gfn, count, mfn) : unmapMmio(p2m, gfn, count, mfn);
  return rc.ok ? rc : { ok: false, code: rc.code, written: 0 };
}

/**
 * `archMmio` over the start of a range, with the leading whole calls done in closed form (@vpci/p2m
 * `mmioCallRun`): on x86 the calls that would each return the progress of 64 chunks, up to the call
 * that brings the frames done to `atLeast`, are made as one p2m write and reported as their progress
 * together (never `done`: the run stops before the last call); where there is no such run (Arm, whose
 * one call does the whole range, or a call that would do less or fail), one `archMmio` call. The p2m,
 * the counts and where a loop over it would preempt are those of calling once per 64 chunks.
 */
export function archMmioCalls(
  arch: Arch,
  p2m: P2m,
  map: boolean,
  gfn: Gfn,
  count: number,
  mfn: Mfn,
  atLeast: number,
): ArchMmioResult {
  const run = arch === 'arm' ? 0 : mmioCallRun(p2m, map, gfn, count, mfn, atLeast);
  return run > 0 ? { ok: true, done: false, progress: run } : archMmio(arch, p2m, map, gfn, count, mfn);
}
