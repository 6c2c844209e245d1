/**
 * `cloud-hypervisor`'s pages of a BAR. Expected values from cloud-hypervisor's `pci/src/vfio.rs`
 * (`map_mmio_regions`, `generate_sparse_areas`), worked by hand from its code.
 */
import { describe, expect, it } from 'vitest';
import { type CloudHypervisorBar, cloudHypervisorPages } from './cloud-hypervisor-pages.js';

const bar = (fields: Partial<CloudHypervisorBar>): CloudHypervisorBar => ({
  size: 0x4000n,
  hostAddr: 0xfe00_0000n,
  guestAddr: 0xc000_0000n,
  hostPageShared: false,
  msixMappable: false,
  ...fields,
});

describe('cloudHypervisorPages (map_mmio_regions)', () => {
  it('maps a BAR without MSI-X whole (generate_sparse_areas: one area over the region)', () => {
    expect(cloudHypervisorPages(bar({})).runs).toEqual([{ offset: 0n, pages: 4 }]);
  });

  it('leaves a BAR with the MSI-X table unmapped when its region is not MSIX_MAPPABLE', () => {
    const pages = cloudHypervisorPages(bar({ msixTable: { offset: 0x2000n, size: 0x400n } }));
    expect(pages.runs).toEqual([]);
    expect(pages.why).toMatch(/not MSI-X mappable/);
  });

  it('leaves a BAR holding only the PBA unmapped: the kernel gives MSIX_MAPPABLE to the table BAR only', () => {
    expect(cloudHypervisorPages(bar({ msixPba: { offset: 0n, size: 8n } })).runs).toEqual([]);
  });

  it('maps an MSIX_MAPPABLE BAR in sparse areas around the table page and the PBA page', () => {
    // Table 0x2000 + 0x400 → hole [0x2000, 0x3000); PBA 0x3000 + 8 → hole [0x3000, 0x4000).
    const pages = cloudHypervisorPages(
      bar({
        msixMappable: true,
        msixTable: { offset: 0x2000n, size: 0x400n },
        msixPba: { offset: 0x3000n, size: 8n },
      }),
    );
    expect(pages.runs).toEqual([{ offset: 0n, pages: 2 }]);
  });

  it('keys the holes by rounded offset: a PBA in the table page replaces the table hole, one page cut', () => {
    const pages = cloudHypervisorPages(
      bar({
        msixMappable: true,
        msixTable: { offset: 0n, size: 0x20n },
        msixPba: { offset: 0x800n, size: 8n },
      }),
    );
    expect(pages.runs).toEqual([{ offset: 0x1000n, pages: 3 }]);
  });

  it('refuses an MSIX_MAPPABLE region that does not start on 4 KiB', () => {
    const pages = cloudHypervisorPages(
      bar({
        size: 0x1000n,
        guestAddr: 0xc000_0800n,
        msixMappable: true,
        msixTable: { offset: 0n, size: 0x20n },
      }),
    );
    expect(pages.runs).toEqual([]);
  });

  it('widens a sub-page BAR to its page at offset 0, and KVM takes it only at a page-aligned guest address', () => {
    const aligned = cloudHypervisorPages(
      bar({ size: 0x100n, hostAddr: 0xfe00_1000n, guestAddr: 0xc000_2000n }),
    );
    expect(aligned.runs).toEqual([{ offset: 0n, pages: 1 }]);
    const unaligned = cloudHypervisorPages(
      bar({ size: 0x100n, hostAddr: 0xfe00_1000n, guestAddr: 0xc000_2100n }),
    );
    expect(unaligned.runs).toEqual([]);
    expect(unaligned.why).toMatch(/page-aligned/);
  });
});
