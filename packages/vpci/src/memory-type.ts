/**
 * The memory type a guest access gets through a domain's p2m: on Intel the type and iPAT Xen writes
 * into the EPT leaf (`epte_get_entry_emt`, xen/arch/x86/mm/p2m-ept.c) with the guest's PAT type; on
 * AMD the NPT leaf's host type (`p2m_type_to_flags`, xen/arch/x86/mm/p2m-pt.c) with the guest's PAT
 * type and the host MTRR. The rules are @vpci/p2m's; this gathers what they read from the machine.
 */
import {
  amdEffectiveType,
  epteGetEntryEmt,
  frameAddress,
  type Gfn,
  InvalidArgumentError,
  intelEffectiveType,
  isMemoryType,
  isSplit,
  type MemoryType,
  type Mfn,
  type MtrrState,
  type MtrrType,
  mtrrGetType,
  nptLeafFor,
} from '@vpci/p2m';
import type { RangeSet } from '@vpci/rangeset';
import type { Domain } from './domain.js';

/**
 * What an access to a guest frame gets: the effective `type`, whether the guest PAT was ignored
 * (`ipat`, Intel only) and `why` in words (the rule, or the NPT and MTRR types); or, when the frame
 * maps no machine frame (or AMD has no leaf for its p2m type), `why` says so.
 */
export type MemoryTypeAnswer =
  | { readonly mapped: true; readonly type: MtrrType; readonly ipat: boolean; readonly why: string }
  | { readonly mapped: false; readonly why: string };

/** What the memory type depends on beyond the domain: the CPU and the host's state. */
export interface HostMemoryState {
  readonly vendor: 'intel' | 'amd';
  /** The host's MTRRs (Xen's global `mtrr_state`). */
  readonly hostMtrr: MtrrState;
  /** Machine frames that are special pages (Xen-heap: grant table, shared info). */
  readonly specialPages: RangeSet<Mfn>;
}

/**
 * The memory type of an access to guest frame `frame` of `domain` whose guest PAT type is `pat`.
 * Xen reads the guest MTRRs of the domain's vCPU (`Domain.mtrr` here), and no pinned cache
 * attributes or read-only MMIO ranges are modelled on a machine.
 */
export function memoryTypeOf(
  host: HostMemoryState,
  domain: Domain,
  frame: Gfn,
  pat: MemoryType,
): MemoryTypeAnswer {
  if (!isMemoryType(pat))
    throw new InvalidArgumentError('pat', pat, 'a memory type (UC, WC, WT, WP, WB, UC-)');
  if (!domain.p2m.hap) {
    // Shadow paging writes cache bits into shadow PTEs (`_sh_propagate`, `get_pat_flags`): neither the
    // EPT nor the NPT rules apply, and that path is not modelled.
    throw new InvalidArgumentError(
      'domain',
      domain.id,
      'a domain with HAP: memory types under shadow paging are not modelled',
    );
  }
  const entry = domain.p2m.lookup(frame);
  const gfnText = `gfn 0x${frame.toString(16)}`;
  if (entry.mfn === undefined) return { mapped: false, why: `${gfnText} is not mapped (${entry.type})` };
  if (host.vendor === 'amd') {
    const leaf = nptLeafFor({ p2mType: entry.type, mfn: entry.mfn });
    if (!leaf.present) return { mapped: false, why: `${gfnText} has no NPT leaf (${entry.type})` };
    // At order 0 the host MTRR type is never a split.
    const hostMtrr = mtrrGetType(host.hostMtrr, frameAddress(entry.mfn), 0) as MtrrType;
    const effective = amdEffectiveType({ guestPat: pat, nptHostType: leaf.hostType, hostMtrr });
    return {
      mapped: true,
      type: effective.type,
      ipat: false,
      why: `AMD: NPT ${leaf.hostType}, host MTRR ${hostMtrr}`,
    };
  }
  const leaf = epteGetEntryEmt({
    domain: {
      iommuEnabled: domain.iommu,
      hasIoResources: !domain.iomem.isEmpty(),
      hasPciDevices: domain.devices.length > 0,
    },
    p2mType: entry.type,
    gfn: frame,
    mfn: entry.mfn,
    order: 0,
    guestMtrr: domain.mtrr,
    hostMtrr: host.hostMtrr,
    specialPages: host.specialPages,
  });
  // A 4K leaf is always uniform: every rule answers for one frame.
  if (isSplit(leaf)) throw new Error(`epteGetEntryEmt split a 4K leaf (rule ${leaf.rule})`);
  return {
    mapped: true,
    type: intelEffectiveType(leaf, pat),
    ipat: leaf.ipat,
    why: `Intel: EPT ${leaf.emt}${leaf.ipat ? ' + iPAT' : ''} by rule ${leaf.rule}`,
  };
}
