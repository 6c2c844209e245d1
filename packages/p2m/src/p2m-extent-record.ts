/**
 * A caller-owned extent for `P2m.extentsInto`: the same facts as a `P2mExtent`, written into objects
 * the caller keeps and reuses, so a checker that asks about the same few frames line after line
 * makes no object per extent. `P2m.extentsIn` stays as it was and returns fresh extents each time.
 */
import type { PageOrder } from './errors.js';
import type { Gfn, Mfn } from './frame.js';
import type { P2mType } from './p2m-type.js';

/**
 * Where `P2m.extentsInto` writes one extent; every field is overwritten each time. It has a
 * `P2mExtent`'s fields (not declared with `implements`: p2m.ts, which defines that interface, imports
 * this class, and the packages keep no import cycle); callers pass records where extents are read.
 */
export class P2mExtentRecord {
  /** First guest frame. */
  gfn = 0 as Gfn;
  /** Number of frames. */
  count = 0;
  /** Machine frame of the first guest frame; the others follow contiguously. */
  mfn = 0 as Mfn;
  /** The type of every frame of the run. */
  type: P2mType = 'mmio_dm';
  /** The order of the leaves the run was written with. */
  order: PageOrder = 0;
}
