/**
 * Xen's "−1: this block is not uniform" answer. A caller that asked about a superpage must split it and
 * ask again for each part; at order 0 the functions here never give it.
 */
export interface Split {
  /** Always true: the block must be split. */
  readonly split: true;
}

/** The shared, frozen split answer. */
export const SPLIT: Split = Object.freeze({ split: true });

/** True if `value` is a split answer rather than a type. */
export function isSplit(value: unknown): value is Split {
  return typeof value === 'object' && value !== null && (value as { split?: unknown }).split === true;
}
