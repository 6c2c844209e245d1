/**
 * `cloud-hypervisor`: which pages of a memory BAR cloud-hypervisor's VFIO device backs with a KVM
 * memory slot (`pci/src/vfio.rs` `VfioPciDevice::map_mmio_regions` and `generate_sparse_areas`).
 *
 * - A BAR the kernel does not let be `mmap`ed is not mapped (`VFIO_REGION_INFO_FLAG_MMAP` clear).
 * - A BAR holding the MSI-X table or PBA is not mapped at all unless its region carries
 *   `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`, which the kernel gives the table's BAR only (`vfio-mmap.ts`):
 *   a PBA in another BAR leaves that whole BAR unmapped.
 * - With the capability, the BAR start must be 4 KiB-aligned and its size a multiple of 4 KiB (else
 *   an error and nothing is mapped), and the BAR is mapped in sparse areas around a hole per
 *   structure: offset rounded down, size rounded up, keyed by offset in a `BTreeMap` (so a PBA whose
 *   rounded offset equals the table's replaces it) and skipped when the offset is past the BAR.
 * - An area smaller than a page is widened to a page at offset 0 only (elsewhere: an error).
 * - KVM takes a memory slot only at a page-aligned guest address (`KVM_SET_USER_MEMORY_REGION`).
 */
import type { VfioPages } from './kvm-vfio-pages.js';
import {
  type BarSpan,
  pageAligned,
  pageDown,
  pageRuns,
  pageUp,
  VFIO_PAGE_SIZE,
  type VfioBar,
  vfioMmapSupported,
} from './vfio-mmap.js';

/** A BAR as cloud-hypervisor maps it: the VFIO view, and whether its region is MSI-X mappable. */
export interface CloudHypervisorBar extends VfioBar {
  /** The kernel gave the region `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE` (it holds the MSI-X table). */
  readonly msixMappable: boolean;
}

/** The pages of `bar` cloud-hypervisor maps (see the module comment). */
export function cloudHypervisorPages(bar: CloudHypervisorBar): VfioPages {
  if (!vfioMmapSupported(bar))
    return { runs: [], why: 'not mapped: vfio-pci does not let the BAR be mmapped' };
  const holdsMsix = bar.msixTable !== undefined || bar.msixPba !== undefined;
  if (holdsMsix && !bar.msixMappable) {
    return {
      runs: [],
      why: 'not mapped: the BAR holds MSI-X structures and its region is not MSI-X mappable',
    };
  }
  let areas: [bigint, bigint][];
  if (bar.msixMappable) {
    if (!pageAligned(bar.guestAddr) || !pageAligned(bar.size)) {
      return { runs: [], why: 'not mapped: an MSI-X mappable region must start and end on 4 KiB boundaries' };
    }
    const holes = new Map<bigint, bigint>();
    const hole = (span: BarSpan | undefined): void => {
      if (span === undefined) return;
      const offset = pageDown(span.offset);
      if (offset < bar.size) holes.set(offset, pageUp(span.size));
    };
    hole(bar.msixTable);
    hole(bar.msixPba);
    areas = [];
    let current = 0n;
    for (const [offset, size] of [...holes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (offset > current) areas.push([current, offset]);
      current = pageDown(offset + size);
    }
    if (bar.size > current) areas.push([current, bar.size]);
  } else {
    areas = [[0n, bar.size]];
  }
  const spans: [bigint, bigint][] = [];
  for (const [start, end] of areas) {
    if (end - start >= VFIO_PAGE_SIZE) {
      spans.push([start, end]);
      continue;
    }
    if (start !== 0n) return { runs: [], why: 'not mapped: a sub-page sparse area at a non-zero offset' };
    spans.push([0n, VFIO_PAGE_SIZE]);
  }
  if (!pageAligned(bar.guestAddr)) {
    return {
      runs: [],
      why: 'not mapped: KVM takes no memory slot at a guest address that is not page-aligned',
    };
  }
  return {
    runs: pageRuns(spans),
    why: holdsMsix
      ? "mapped in sparse areas around the MSI-X table's and PBA's pages"
      : bar.size < VFIO_PAGE_SIZE
        ? 'mapped: a sub-page BAR widened to its page'
        : 'mapped whole',
  };
}
