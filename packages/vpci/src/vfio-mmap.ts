/**
 * What the Linux vfio-pci driver lets a VMM `mmap` of an assigned device's BARs, which both VFIO rule
 * sets (`kvm-vfio`, `cloud-hypervisor`) start from, and the page runs a rule set maps. Host pages are
 * 4 KiB (x86).
 *
 * Linux `drivers/vfio/pci/vfio_pci_core.c`:
 * - `vfio_pci_probe_mmaps`: a memory BAR of a page or more can be mapped; a smaller one only when it
 *   starts a host page and the rest of that page can be reserved for it (`request_resource` of a
 *   "vfio sub-page reserved" dummy fails when another resource already lies there); an I/O BAR never.
 * - `vfio_pci_ioctl_get_region_info`: the MSI-X table's BAR, when mappable, carries
 *   `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE` (`msix_mmappable_cap`); no other BAR does; the ROM region has
 *   no `VFIO_REGION_INFO_FLAG_MMAP` (its flags are 0), so it is never mapped.
 */

/** The host page size the VFIO rule sets assume (x86). */
export const VFIO_PAGE_SIZE = 0x1000n;

/** A range of a BAR, in bytes from its start. */
export interface BarSpan {
  /** Offset from the BAR's start. */
  readonly offset: bigint;
  /** Length in bytes. */
  readonly size: bigint;
}

/**
 * A run of pages a rule set maps for a BAR: the guest page at `guest address + offset` maps the host
 * page at `host address + offset`, and the `pages - 1` pages after it likewise.
 */
export interface PageRun {
  /** Offset from the BAR's start, page-aligned. */
  readonly offset: bigint;
  /** Pages in the run. */
  readonly pages: number;
}

/** A memory BAR as the VFIO rule sets see it. */
export interface VfioBar {
  /** Size in bytes. */
  readonly size: bigint;
  /** Host (machine) address. */
  readonly hostAddr: bigint;
  /** Guest address (the hardware domain's is the host address). */
  readonly guestAddr: bigint;
  /**
   * Another resource (a BAR of another device, or another BAR of this one) lies in the rest of this
   * BAR's host page, so the kernel cannot reserve it (matters for a sub-page BAR only).
   */
  readonly hostPageShared: boolean;
  /** The MSI-X table, when this BAR holds it. */
  readonly msixTable?: BarSpan;
  /** The MSI-X PBA, when this BAR holds it. */
  readonly msixPba?: BarSpan;
}

/** `value` rounded down to a page. */
export function pageDown(value: bigint): bigint {
  return value & ~(VFIO_PAGE_SIZE - 1n);
}

/** `value` rounded up to a page. */
export function pageUp(value: bigint): bigint {
  return pageDown(value + VFIO_PAGE_SIZE - 1n);
}

/** Whether `value` is page-aligned. */
export function pageAligned(value: bigint): boolean {
  return (value & (VFIO_PAGE_SIZE - 1n)) === 0n;
}

/**
 * Whether vfio-pci lets the BAR be `mmap`ed (`vfio_pci_probe_mmaps`): a page or more, or a sub-page
 * BAR that starts a host page whose rest no other resource holds.
 */
export function vfioMmapSupported(bar: VfioBar): boolean {
  if (bar.size === 0n) return false;
  if (bar.size >= VFIO_PAGE_SIZE) return true;
  return pageAligned(bar.hostAddr) && !bar.hostPageShared;
}

/** Byte spans (`[start, end)`, page-aligned, in order, non-empty) as page runs. */
export function pageRuns(spans: readonly (readonly [bigint, bigint])[]): PageRun[] {
  return spans
    .filter(([start, end]) => end > start)
    .map(([start, end]) => ({ offset: start, pages: Number((end - start) / VFIO_PAGE_SIZE) }));
}
