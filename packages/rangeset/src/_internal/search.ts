/**
 * Searching a sorted run of numbers stored with a stride (1 for a plain array, 2 for interleaved
 * starts and ends).
 *
 * A plain binary search over a chunk is a chain of dependent probes, each likely a cache miss and a
 * mispredicted branch; that was most of the cost of a lookup. Here the position is first guessed by
 * interpolation between two bounds the caller already holds in cache, then bracketed by galloping
 * (exponential steps) from the guess, then narrowed by binary search inside the bracket. On evenly
 * spread keys the guess lands within a few slots, so a lookup touches one or two cache lines; on
 * skewed keys the gallop costs at most about twice a binary search, so the worst case stays O(log n).
 */

/**
 * Index of the last of the `n` keys `a[base], a[base + stride], …, a[base + stride * (n - 1)]`
 * (ascending) that is <= v. Requires `n >= 1`, `a[base] === first <= v`, and every key `< limit`
 * (`limit > first`): the caller passes bounds it has at hand so that guessing costs no memory access.
 */
export function lastAtOrBelow(
  a: Float64Array,
  base: number,
  stride: number,
  n: number,
  v: number,
  first: number,
  limit: number,
): number {
  // Clamp first (v may lie far past limit), then `| 0` floors the non-negative guess and, as
  // importantly, keeps every index a small integer: a double here would reach the callers' integer
  // fields and make V8 deoptimize them.
  const estimate = ((v - first) / (limit - first)) * n;
  const guess = estimate >= n - 1 ? n - 1 : estimate | 0;
  // Bracket the answer: a[lo] <= v, and hi === n or a[hi] > v.
  let lo: number;
  let hi: number;
  let step = 1;
  if (a[base + stride * guess]! <= v) {
    lo = guess;
    hi = guess + 1;
    while (hi < n && a[base + stride * hi]! <= v) {
      lo = hi;
      step *= 2;
      hi = Math.min(n, lo + step) | 0;
    }
  } else {
    hi = guess;
    lo = guess - 1;
    while (a[base + stride * lo]! > v) {
      hi = lo;
      step *= 2;
      lo = Math.max(0, hi - step) | 0;
    }
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (a[base + stride * mid]! <= v) lo = mid;
    else hi = mid;
  }
  return lo;
}
