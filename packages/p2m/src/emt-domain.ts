/**
 * What Xen knows about a domain when it picks a memory type or lets it pin one: whether it may
 * flush caches (`cache_flush_permitted`: I/O resources or a PCI device) and whether it has an IOMMU.
 * Both the EPT memory-type rules and the pinned cache attributes read it.
 */
import { checkBoolean, InvalidArgumentError } from './errors.js';

/** What Xen knows about the domain when it picks a memory type. */
export interface EmtDomain {
  /** The domain has an IOMMU context (`is_iommu_enabled`), i.e. may have devices doing DMA. */
  readonly iommuEnabled: boolean;
  /** The domain may access some I/O memory or I/O ports (`iomem_caps` or `ioport_caps` not empty). */
  readonly hasIoResources: boolean;
  /** A PCI device is assigned to the domain (`has_arch_pdevs`). */
  readonly hasPciDevices: boolean;
}

/** Throws `InvalidArgumentError` naming the field unless `domain` is an `EmtDomain`. */
export function checkEmtDomain(domain: unknown): asserts domain is EmtDomain {
  if (typeof domain !== 'object' || domain === null) {
    throw new InvalidArgumentError('domain', domain, '{ iommuEnabled, hasIoResources, hasPciDevices }');
  }
  const facts = domain as Record<keyof EmtDomain, unknown>;
  checkBoolean('domain.iommuEnabled', facts.iommuEnabled);
  checkBoolean('domain.hasIoResources', facts.hasIoResources);
  checkBoolean('domain.hasPciDevices', facts.hasPciDevices);
}
