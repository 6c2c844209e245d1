/**
 * @vpci/p2m: the memory type of a guest frame after Xen's x86 code (MTRR, PAT, EPT memory type and
 * iPAT, AMD NPT), the p2m types, and the per-domain GFN → MFN map with Xen's MMIO mapping calls (x86's,
 * and Arm's in arm-mmio.ts). Guest
 * frames, machine frames and byte addresses are the distinct types `Gfn`, `Mfn` and `Paddr`, made by
 * `gfn()`, `mfn()` and `paddr()`. Every public export is listed here by name.
 */

// The workspace's result vocabulary, from @vpci/rangeset, so p2m's users need not import it from there.
export type { Errno, Failure, Ok, Result } from '@vpci/rangeset';
export type { AmdCombination, AmdEffective, NptLeaf, NptLeafInput } from './amd-npt.js';
export { amdEffectiveType, combineAmdGuestHost, nptLeafFor } from './amd-npt.js';
export type { ArmMmioErrno, ArmMmioResult } from './arm-mmio.js';
export {
  ARM_PA_BITS,
  armBlockOrder,
  armMapMmioRegions,
  armP2mAddressBits,
  armUnmapMmioRegions,
} from './arm-mmio.js';
export type { EmtDomain } from './emt-domain.js';
export type { EmtAnswer, EmtInput, EmtResult, EmtRule, EmtSplit } from './ept-emt.js';
export { combineGuestHostMtrr, epteGetEntryEmt } from './ept-emt.js';
export type { PageOrder } from './errors.js';
export { InvalidArgumentError, MAX_FRAME, PAGE_ORDERS } from './errors.js';
export type { FrameRanges, P2mEvent } from './events.js';
export type { Gfn, Mfn, Paddr } from './frame.js';
export {
  frameAddress,
  gfn,
  gfnAdd,
  gfnOfAddress,
  mfn,
  mfnAdd,
  mfnOfAddress,
  PAGE_SHIFT,
  PAGE_SIZE,
  paddr,
  pageOffset,
} from './frame.js';
export type { MemoryType, MtrrType } from './memory-type.js';
export {
  decodeMtrrType,
  decodePatType,
  encodeMemoryType,
  isMemoryType,
  isMtrrType,
  MEMORY_TYPES,
  MTRR_TYPES,
} from './memory-type.js';
export type { IdentityResult, MmioErrno, MmioResult } from './mmio.js';
export {
  addIdentityEntry,
  MAP_MMIO_MAX_ITER,
  mapMmio,
  mmioCallRun,
  removeIdentityEntry,
  unmapMmio,
} from './mmio.js';
export type { MtrrStateInit, VariableRange } from './mtrr.js';
export {
  DEFAULT_PHYS_ADDR_BITS,
  fixedRangesFrom,
  fixedRangesFromMsrs,
  MTRR_VCNT,
  MTRR_VCNT_MAX,
  MtrrState,
  mtrrGetType,
  NUM_FIXED_RANGES,
  variableRange,
  variableRangeFromMsrs,
  variableRangeToMsrs,
} from './mtrr.js';
export type { MmioCost, P2mEntry, P2mExtent, P2mOptions, P2mTables, WriteResult } from './p2m.js';
export { P2M_ADDRESS_BITS, P2m } from './p2m.js';
export { P2mExtentRecord } from './p2m-extent-record.js';
export { INVALID_MFN, P2mLookup } from './p2m-lookup.js';
export type { P2mType } from './p2m-type.js';
export {
  isAnyRam,
  isForeign,
  isGrant,
  isHole,
  isMmio,
  isP2mType,
  isPod,
  isRam,
  isReadonly,
  isSpecial,
  P2M_TYPES,
  p2mTypeCode,
} from './p2m-type.js';
export type { Pat, PatBits } from './pat.js';
export {
  combineEptWithPat,
  combineMtrrWithPat,
  createPat,
  intelEffectiveType,
  PAT_POWER_ON,
  patFromMsr,
  patIndex,
  patToMsr,
  patType,
  XEN_HOST_PAT,
} from './pat.js';
export type {
  AddressWidthError,
  PinnedCacheAttrsOptions,
  PinnedLookup,
  PinnedRange,
  PinResult,
  PinType,
  UnpinResult,
} from './pinned.js';
export {
  checkPinnedRanges,
  DELETE_MEM_CACHEATTR,
  getPinnedCacheAttr,
  MAX_PINNED_RANGES,
  PinnedCacheAttrs,
} from './pinned.js';
export type { AddEntriesResult, PopulatePolicy, PopulateResult } from './populate.js';
export { addEntries, populateRam } from './populate.js';
export type { Split } from './split.js';
export { isSplit } from './split.js';
export { hardwareDomainMtrr } from './vcpu-mtrr.js';
