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
 * Where among `n` keys spread evenly over [first, limit) the value `v` would sit: an index in
 * [0, n - 1]. Clamped first (v may lie far past limit), then `| 0` floors the non-negative guess and,
 * as importantly, keeps every index a small integer: a double here would reach the callers' integer
 * fields and make V8 deoptimize them.
 */
function interpolatedGuess(n: number, v: number, first: number, limit: number): number {
  const estimate = ((v - first) / (limit - first)) * n;
  return estimate >= n - 1 ? n - 1 : estimate | 0;
}

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
  const guess = interpolatedGuess(n, v, first, limit);
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

/**
 * `lastAtOrBelow` for a run whose keys are likely not in cache (a chunk of a large set): the same
 * answer, found with fewer cache misses one after another. On evenly spread keys the interpolated
 * guess is off by a few places (at 256 keys a chunk: by 4 on average, by more than 8 one time in
 * six, by more than 12 one time in eighteen), and galloping from it reads one cache line after
 * another, each load waiting for the branch on the one before: three or four misses in a row. Here
 * seven keys around the guess, 4 places apart (64 bytes at stride 2, a cache line each), are all read
 * before any is looked at: independent loads, whose misses the processor overlaps, bringing in every
 * line from 12 places before the guess to 12 after. The answer then lies between two of them (a scan
 * of at most 3 keys, already in cache) or outside the window, where `lastAtOrBelow` gallops from its
 * edge, so the worst case stays O(log n). At a million ranges this took a lookup from 300-400 ns to
 * 200-250 ns (one miss into the chunk alone costs about 100 ns there). Same requirements as
 * `lastAtOrBelow`.
 */
export function lastAtOrBelowNear(
  a: Float64Array,
  base: number,
  stride: number,
  n: number,
  v: number,
  first: number,
  limit: number,
): number {
  const guess = interpolatedGuess(n, v, first, limit);
  const last = n - 1;
  const p0 = Math.max(guess - 12, 0);
  const p1 = Math.max(guess - 8, 0);
  const p2 = Math.max(guess - 4, 0);
  const p4 = Math.min(guess + 4, last);
  const p5 = Math.min(guess + 8, last);
  const p6 = Math.min(guess + 12, last);
  const k0 = a[base + stride * p0]!;
  const k1 = a[base + stride * p1]!;
  const k2 = a[base + stride * p2]!;
  const k3 = a[base + stride * guess]!;
  const k4 = a[base + stride * p4]!;
  const k5 = a[base + stride * p5]!;
  const k6 = a[base + stride * p6]!;
  let lo: number;
  let hi: number;
  if (k3 <= v) {
    if (k4 > v) {
      lo = guess;
      hi = p4;
    } else if (k5 > v) {
      lo = p4;
      hi = p5;
    } else if (k6 > v) {
      lo = p5;
      hi = p6;
    } else {
      if (p6 === last) return last;
      return p6 + lastAtOrBelow(a, base + stride * p6, stride, n - p6, v, k6, limit);
    }
  } else if (k2 <= v) {
    lo = p2;
    hi = guess;
  } else if (k1 <= v) {
    lo = p1;
    hi = p2;
  } else if (k0 <= v) {
    lo = p0;
    hi = p1;
  } else return lastAtOrBelow(a, base, stride, p0, v, first, k0);
  // a[lo] <= v < a[hi]: at most 3 keys between, in lines the loads above brought in.
  while (lo + 1 < hi && a[base + stride * (lo + 1)]! <= v) lo++;
  return lo;
}
