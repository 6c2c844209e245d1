/**
 * What the IOMMU side of device assignment decides for vPCI: the requester IDs a device is assigned
 * under (its own function and its phantom functions, Xen's `phantom_stride` from `alloc_pdev` in
 * xen/drivers/passthrough/pci.c) and whether the IOMMU accepts each context assignment. The IOMMU's
 * page tables are not modelled; a context assignment fails only when a test or trace injects a
 * failure for that requester ID (the way the p2m's `failNext` injects ENOMEM).
 */
import { InvalidArgumentError } from '@vpci/p2m';
import type { Result } from '@vpci/rangeset';
import type { PhysicalDevice } from './hardware.js';
import { findCapability } from './hardware.js';
import {
  PCI_CAP_ID_EXP,
  PCI_CLASS_BRIDGE_HOST,
  PCI_CLASS_BRIDGE_PCI,
  PCI_CLASS_DEVICE,
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP_PHANTOM,
} from './pci-regs.js';
import { makeSbdf, type Sbdf, sbdfKey, toSbdf } from './sbdf.js';

/** Error codes an injected IOMMU context failure may carry. */
export type IommuErrno = 'ENOMEM' | 'EPERM' | 'ENODEV' | 'EBUSY';

/**
 * Xen's `phantom_stride` as `alloc_pdev` computes it: a PCI Express endpoint (`pdev_type`: a PCI
 * Express capability, and not a bridge or host bridge by class) whose Device Capabilities advertise
 * phantom functions uses requester IDs `fn + stride`, `fn + 2·stride`, … within its slot, stride
 * `8 >> field`; a function at or past the stride has none (0). Xen's `pci-phantom=` option is not
 * modelled.
 */
export function phantomStride(hw: PhysicalDevice): number {
  const pos = findCapability(hw, PCI_CAP_ID_EXP);
  if (pos === 0) return 0;
  const klass = hw.read(PCI_CLASS_DEVICE, 2);
  if (klass === PCI_CLASS_BRIDGE_PCI || klass === PCI_CLASS_BRIDGE_HOST || klass === 0xffff) return 0;
  const field = (hw.read(pos + PCI_EXP_DEVCAP, 4) & PCI_EXP_DEVCAP_PHANTOM) >>> 3;
  if (field === 0) return 0;
  const stride = 8 >> field;
  return hw.sbdf.fn >= stride ? 0 : stride;
}

/**
 * The requester IDs after the function's own that the IOMMU is programmed for (the loops over
 * `phantom_stride` in `assign_device` and `deassign_device`: `devfn += stride` while in the slot).
 */
export function phantomFunctions(sbdf: Sbdf, stride: number): Sbdf[] {
  const found: Sbdf[] = [];
  if (stride === 0) return found;
  for (let fn = sbdf.fn + stride; fn < 8; fn += stride)
    found.push(makeSbdf(sbdf.seg, sbdf.bus, sbdf.dev, fn));
  return found;
}

/** Injected IOMMU context failures, one-shot per requester ID. */
export class IommuFaults {
  private readonly pending = new Map<number, IommuErrno>();

  /**
   * The next context assignment (or reassignment) of requester `sbdf` fails with `code`, or its
   * `add_device` when a device is hot-plugged (Xen's `iommu_add_device`).
   */
  failNext(sbdf: Sbdf | string, code: IommuErrno = 'ENOMEM'): void {
    if (!['ENOMEM', 'EPERM', 'ENODEV', 'EBUSY'].includes(code))
      throw new InvalidArgumentError('code', code, 'ENOMEM, EPERM, ENODEV or EBUSY');
    this.pending.set(sbdfKey(toSbdf(sbdf)), code);
  }

  /** The IOMMU's `assign_device` / `reassign_device` for requester `sbdf`: fails once if injected. */
  program(sbdf: Sbdf): Result<IommuErrno> {
    const key = sbdfKey(sbdf);
    const code = this.pending.get(key);
    if (code === undefined) return { ok: true };
    this.pending.delete(key);
    return { ok: false, code };
  }
}
