/**
 * What the p2m operations report besides their result: the things Xen logs or does on the side
 * (crashing the domain, orphaning RAM, warning about an unexpected MFN). Events are pushed to the
 * log a `P2m` holds (its `events` array, which the caller may supply), never to module state.
 */
import type { Gfn, Mfn } from './frame.js';
import type { P2mType } from './p2m-type.js';

/** Inclusive GFN ranges `[start, end]`, sorted and merged. */
export type FrameRanges = Array<[Gfn, Gfn]>;

/**
 * One event.
 * - `ram-orphaned`: the RAM pages that were at `gfns` were replaced (by an MMIO mapping or by
 *   populating over them). Xen does not free them: they stay owned by the domain, unreachable from
 *   any gfn, and stay mapped by whoever holds foreign mappings of them. `by` names the operation.
 * - `domain-crashed`: an operation tried to replace a special entry (mmio_direct, grant, foreign) at
 *   `gfn` with something else; Xen logs "not permitted" and crashes the domain.
 * - `unmap-mfn-mismatch`: unmapping `gfn` expected machine frame `expected` but the entry maps
 *   `found`; Xen warns and clears the entry anyway.
 * - `unmap-not-mmio`: unmapping `gfn` found no mmio_direct entry (`type`, `mfn` undefined for a hole);
 *   Xen logs the failed lookup and the chunk fails with EINVAL.
 * - `identity-busy`: `addIdentityEntry` found `gfn` already mapped to something else (`mfn`, `type`);
 *   `relaxed` says whether the RDM-relaxed flag turned the EBUSY into success.
 * - `identity-not-cleared`: `removeIdentityEntry` left a non-identity, non-hole entry at `gfn`.
 */
export type P2mEvent =
  | { readonly kind: 'ram-orphaned'; readonly by: 'map-mmio' | 'populate'; readonly gfns: FrameRanges }
  | { readonly kind: 'domain-crashed'; readonly reason: string; readonly gfn: Gfn }
  | {
      readonly kind: 'unmap-mfn-mismatch';
      readonly gfn: Gfn;
      readonly expected: Mfn;
      readonly found: Mfn;
    }
  | {
      readonly kind: 'unmap-not-mmio';
      readonly gfn: Gfn;
      readonly type: P2mType;
      readonly mfn: Mfn | undefined;
    }
  | {
      readonly kind: 'identity-busy';
      readonly gfn: Gfn;
      readonly mfn: Mfn | undefined;
      readonly type: P2mType;
      readonly relaxed: boolean;
    }
  | {
      readonly kind: 'identity-not-cleared';
      readonly gfn: Gfn;
      readonly mfn: Mfn | undefined;
      readonly type: P2mType;
    };

/** Adds `[start, end]` to sorted ranges, merging with the last one when adjacent. */
export function appendRange(ranges: FrameRanges, start: Gfn, end: Gfn): void {
  const last = ranges[ranges.length - 1];
  if (last !== undefined && last[1] + 1 >= start) last[1] = Math.max(last[1], end) as Gfn;
  else ranges.push([start, end]);
}
