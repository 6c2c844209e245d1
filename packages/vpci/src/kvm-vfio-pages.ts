/**
 * `kvm-vfio`: which pages of a memory BAR QEMU's vfio-pci device backs with a KVM memory slot, so
 * that the guest reaches them without an exit; every other page of the BAR traps to QEMU.
 *
 * - `hw/vfio/region.c` `vfio_region_setup` / `vfio_region_mmap`: a BAR the kernel lets be `mmap`ed
 *   (`vfioMmapSupported`) is one RAM-device subregion over the whole `mmap`; KVM's memory listener
 *   makes it a memory slot, trimmed inward to whole pages (`accel/kvm/kvm-all.c` `kvm_align_section`).
 * - `hw/vfio/pci.c` `vfio_pci_fixup_msix_region`: the MSI-X table's pages (the table's offset rounded
 *   down, its end rounded up to the host page) are cut out of the `mmap`. When the kernel reports
 *   `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE` (it does for the table's BAR, see `vfio-mmap.ts`) the whole
 *   BAR is `mmap`ed instead, but `vfio_msix_setup` lays QEMU's emulated table over it, and
 *   `kvm_align_section` trims the RAM sections on either side inward to pages: the same pages trap.
 *   The PBA is not cut out: QEMU's PBA region is disabled at set-up (`vfio_msix_setup`), so the PBA's
 *   pages are mapped like the rest of the BAR.
 * - `hw/vfio/pci.c` `vfio_sub_page_bar_update_mapping`: a BAR smaller than a page is widened to the
 *   whole page while its guest address is page-aligned; at any other guest address it keeps its size,
 *   which `kvm_align_section` trims to nothing, so it traps.
 */
import {
  type PageRun,
  pageAligned,
  pageDown,
  pageRuns,
  pageUp,
  VFIO_PAGE_SIZE,
  type VfioBar,
  vfioMmapSupported,
} from './vfio-mmap.js';

/** The pages a rule set maps for a BAR, and why (one sentence, for a comparison's reader). */
export interface VfioPages {
  /** The page runs mapped, in order; empty when every access traps. */
  readonly runs: readonly PageRun[];
  /** Why these pages and no others. */
  readonly why: string;
}

/** The pages of `bar` `kvm-vfio` maps (see the module comment). */
export function kvmVfioPages(bar: VfioBar): VfioPages {
  if (!vfioMmapSupported(bar)) {
    return {
      runs: [],
      why: 'trapped: vfio-pci does not let the BAR be mmapped (a sub-page BAR that does not start its host page alone)',
    };
  }
  let end = bar.size;
  let widened = false;
  if (bar.size < VFIO_PAGE_SIZE) {
    if (!pageAligned(bar.guestAddr)) {
      return {
        runs: [],
        why: 'trapped: a sub-page BAR at a guest address that is not page-aligned is not widened',
      };
    }
    end = VFIO_PAGE_SIZE;
    widened = true;
  }
  const table = bar.msixTable;
  if (table === undefined) {
    return {
      runs: pageRuns([[0n, end]]),
      why: widened
        ? 'mapped: a sub-page BAR at a page-aligned guest address, widened to its page'
        : 'mapped whole',
    };
  }
  return {
    runs: pageRuns([
      [0n, pageDown(table.offset)],
      [pageUp(table.offset + table.size), end],
    ]),
    why: "mapped but the MSI-X table's pages, which trap (the PBA is mapped)",
  };
}
