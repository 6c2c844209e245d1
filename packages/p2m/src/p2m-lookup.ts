/**
 * A caller-owned answer to `P2m.lookupInto`: the same three facts as `P2mEntry` (Xen's `get_entry`),
 * written into one object the caller keeps and reuses, so a loop of a million lookups allocates
 * nothing. `P2m.lookup` stays as it was and returns a fresh `P2mEntry` each time.
 */
import type { PageOrder } from './errors.js';
import type { Mfn } from './frame.js';
import type { P2mType } from './p2m-type.js';

/** The `mfn` of a hole in a `P2mLookup`: Xen's INVALID_MFN, which no frame number equals. */
export const INVALID_MFN = -1;

/**
 * Where `P2m.lookupInto` writes its answer. Every field is overwritten by each lookup; the object is
 * the caller's, so it can be reused across lookups and p2ms. `mfn` is always a number (never
 * `undefined`, which would make the engine box it): a hole reads `INVALID_MFN`, and `mapped` says which.
 */
export class P2mLookup {
  /** True when the gfn is mapped; false for a hole. */
  mapped = false;
  /** The machine frame of the gfn (leaf MFN + offset in the leaf), or `INVALID_MFN` for a hole. */
  mfn: Mfn | typeof INVALID_MFN = INVALID_MFN;
  /** The entry's type; a hole reads as `mmio_dm`, as in `P2mEntry`. */
  type: P2mType = 'mmio_dm';
  /** The order of the leaf holding the gfn, or of the empty block around a hole. */
  order: PageOrder = 0;
}
