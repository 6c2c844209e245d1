/**
 * `kvm-vfio`'s pages of a BAR. Expected values from QEMU's `hw/vfio/pci.c`
 * (`vfio_pci_fixup_msix_region`, `vfio_sub_page_bar_update_mapping`), `accel/kvm/kvm-all.c`
 * (`kvm_align_section`) and Linux's `vfio_pci_probe_mmaps`, worked by hand from their code.
 */
import { describe, expect, it } from 'vitest';
import { kvmVfioPages } from './kvm-vfio-pages.js';
import type { VfioBar } from './vfio-mmap.js';

const bar = (fields: Partial<VfioBar>): VfioBar => ({
  size: 0x4000n,
  hostAddr: 0xfe00_0000n,
  guestAddr: 0xc000_0000n,
  hostPageShared: false,
  ...fields,
});

describe('kvmVfioPages (vfio_region_mmap: one mmap over the BAR, one memory slot)', () => {
  it('maps every page of a BAR without MSI-X', () => {
    expect(kvmVfioPages(bar({})).runs).toEqual([{ offset: 0n, pages: 4 }]);
  });

  it('vfio_pci_fixup_msix_region, table inside: splits the mmap around the table page, PBA mapped', () => {
    // Table at 0x2000, 64 entries (0x400 bytes): start = 0x2000, end = REAL_HOST_PAGE_ALIGN(0x2400) = 0x3000.
    const pages = kvmVfioPages(
      bar({ msixTable: { offset: 0x2000n, size: 0x400n }, msixPba: { offset: 0x3000n, size: 8n } }),
    );
    expect(pages.runs).toEqual([
      { offset: 0n, pages: 2 },
      { offset: 0x3000n, pages: 1 },
    ]);
  });

  it('vfio_pci_fixup_msix_region, table at the start: the mmap starts at the table end ("!start")', () => {
    expect(kvmVfioPages(bar({ msixTable: { offset: 0n, size: 0x20n } })).runs).toEqual([
      { offset: 0x1000n, pages: 3 },
    ]);
  });

  it('vfio_pci_fixup_msix_region, table at the end: the mmap stops at the table start', () => {
    expect(kvmVfioPages(bar({ size: 0x2000n, msixTable: { offset: 0x1000n, size: 0x100n } })).runs).toEqual([
      { offset: 0n, pages: 1 },
    ]);
  });

  it('vfio_pci_fixup_msix_region, table over the whole BAR: nr_mmaps = 0, nothing mapped', () => {
    expect(kvmVfioPages(bar({ size: 0x1000n, msixTable: { offset: 0n, size: 0x80n } })).runs).toEqual([]);
  });

  it('vfio_sub_page_bar_update_mapping: a sub-page BAR at a page-aligned guest address is widened to its page', () => {
    const pages = kvmVfioPages(bar({ size: 0x100n, hostAddr: 0xfe00_1000n, guestAddr: 0xc000_2000n }));
    expect(pages.runs).toEqual([{ offset: 0n, pages: 1 }]);
    expect(pages.why).toMatch(/widened/);
  });

  it('kvm_align_section: a sub-page BAR at any other guest address keeps its size and gets no slot', () => {
    expect(kvmVfioPages(bar({ size: 0x100n, hostAddr: 0xfe00_1000n, guestAddr: 0xc000_2600n })).runs).toEqual(
      [],
    );
  });

  it('vfio_pci_probe_mmaps: a sub-page BAR not starting its host page, or sharing it, is never mmapped', () => {
    // Seed 002 layout 1: BAR0 (256 B at 0xd1924600) and BAR2 (1 KiB at 0xd1924000) share one page.
    expect(kvmVfioPages(bar({ size: 0x100n, hostAddr: 0xd192_4600n, guestAddr: 0xd192_4600n })).runs).toEqual(
      [],
    );
    const shared = kvmVfioPages(
      bar({ size: 0x400n, hostAddr: 0xd192_4000n, guestAddr: 0xd192_4000n, hostPageShared: true }),
    );
    expect(shared.runs).toEqual([]);
    expect(shared.why).toMatch(/^trapped/);
  });
});
