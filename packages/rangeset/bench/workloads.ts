/**
 * Seeded, pre-generated workloads. Every structure replays the same typed arrays, and generating them
 * is never timed. The generator is mulberry32 (32-bit state, period 2^32), which is plenty for streams
 * of a few million draws and makes a run reproducible from its printed seed.
 */

/** Operation codes of a mixed stream. */
export const OP_ADD = 0;
export const OP_REMOVE = 1;
export const OP_CONTAINS = 2;
export const OP_OVERLAPS = 3;

/** mulberry32: a small, fast 32-bit generator. `next()` returns an unsigned 32-bit integer. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in 0 … 2^32 - 1. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in 0 … n - 1 for 1 <= n <= 2^32 (multiply-shift; the bias is below 2^-32 per draw). */
  below(n: number): number {
    return Math.floor((this.next() / 4294967296) * n);
  }

  /** Uniform in 0 … 2^bits - 1 for bits <= 53, from two draws. */
  bits(bits: number): number {
    if (bits <= 32) return bits === 32 ? this.next() : this.next() >>> (32 - bits);
    const high = this.next() >>> (64 - bits);
    return high * 4294967296 + this.next();
  }
}

/** A list of inclusive ranges `[starts[i], ends[i]]`, in the order they are to be applied. */
export interface RangeList {
  readonly starts: Float64Array;
  readonly ends: Float64Array;
  readonly length: number;
}

/** A stream of operations on ranges: `ops[i]` is one of the `OP_*` codes. */
export interface OpStream extends RangeList {
  readonly ops: Uint8Array;
}

/** Workload (a): a set pre-filled with random ranges, then a mixed stream of operations. */
export interface MixedWorkload {
  /** Ranges added before timing starts (random order; they may, rarely, touch or overlap). */
  readonly fill: RangeList;
  readonly stream: OpStream;
}

/** Workload (b): disjoint, non-adjacent ranges in random insertion order, and the same in sorted order. */
export interface BuildWorkload {
  /** The ranges in insertion (shuffled) order. */
  readonly shuffled: RangeList;
  /** The same ranges sorted: exactly the canonical set every structure must end with. */
  readonly sorted: RangeList;
}

/** Workload (c): one big range, holes punched into it, then consumed to empty. */
export interface FragmentWorkload {
  /** The initial range is `[0, span - 1]`. */
  readonly span: number;
  /** Removes, in order. */
  readonly holes: RangeList;
}

function rangeList(n: number): { starts: Float64Array; ends: Float64Array; length: number } {
  return { starts: new Float64Array(n), ends: new Float64Array(n), length: n };
}

/**
 * Mixed workload: `fillCount` random ranges, then `opCount` operations, 40% add, 30% remove,
 * 20% contains, 10% overlaps. Every range holds 1 … `maxLength` values and starts uniformly in
 * `[0, 2^startBits)`.
 */
export function mixedWorkload(
  seed: number,
  fillCount: number,
  opCount: number,
  startBits = 40,
  maxLength = 64,
): MixedWorkload {
  const rng = new Prng(seed);
  return mixedFrom(rng, fillCount, opCount, maxLength, () => rng.bits(startBits));
}

/**
 * The mixed workload with skewed keys: every start falls in one of `clusters` windows of 2^`clusterBits`
 * values placed at random in `[0, 2^40)`. RangeSet's searches guess positions by interpolation, which
 * suits evenly spread keys; this shows what it costs when keys are not.
 */
export function clusteredMixedWorkload(
  seed: number,
  fillCount: number,
  opCount: number,
  clusters = 16,
  clusterBits = 22,
  maxLength = 64,
): MixedWorkload {
  const rng = new Prng(seed);
  const bases = Array.from({ length: clusters }, () => rng.bits(40 - clusterBits) * 2 ** clusterBits);
  return mixedFrom(
    rng,
    fillCount,
    opCount,
    maxLength,
    () => bases[rng.below(clusters)]! + rng.bits(clusterBits),
  );
}

/** The fill and the operation stream of a mixed workload, with starts drawn by `start()`. */
function mixedFrom(
  rng: Prng,
  fillCount: number,
  opCount: number,
  maxLength: number,
  start: () => number,
): MixedWorkload {
  const fill = rangeList(fillCount);
  for (let i = 0; i < fillCount; i++) {
    const s = start();
    fill.starts[i] = s;
    fill.ends[i] = s + rng.below(maxLength);
  }
  const base = rangeList(opCount);
  const ops = new Uint8Array(opCount);
  for (let i = 0; i < opCount; i++) {
    const r = rng.below(100);
    ops[i] = r < 40 ? OP_ADD : r < 70 ? OP_REMOVE : r < 90 ? OP_CONTAINS : OP_OVERLAPS;
    const s = start();
    base.starts[i] = s;
    base.ends[i] = s + rng.below(maxLength);
  }
  return { fill, stream: { ...base, ops } };
}

/**
 * Build workload: `count` disjoint ranges of 1 … `maxLength` values separated by gaps of 1 … `maxGap`
 * values (so no two are adjacent and nothing merges), then shuffled with Fisher–Yates.
 */
export function buildWorkload(seed: number, count: number, maxLength = 64, maxGap = 64): BuildWorkload {
  const rng = new Prng(seed);
  const sorted = rangeList(count);
  let next = 0;
  for (let i = 0; i < count; i++) {
    const s = next + 1 + rng.below(maxGap);
    const e = s + rng.below(maxLength);
    sorted.starts[i] = s;
    sorted.ends[i] = e;
    next = e + 1;
  }
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const shuffled = rangeList(count);
  for (let i = 0; i < count; i++) {
    shuffled.starts[i] = sorted.starts[order[i]!]!;
    shuffled.ends[i] = sorted.ends[order[i]!]!;
  }
  return { shuffled, sorted };
}

/**
 * Fragmentation workload: the range `[0, span - 1]` and `holeCount` removes of 1 … `maxHole` values
 * starting uniformly in `[0, span)` (a hole may run past the end of the range; only its part inside
 * matters).
 */
export function fragmentWorkload(
  seed: number,
  span: number,
  holeCount: number,
  maxHole = 16,
): FragmentWorkload {
  const rng = new Prng(seed);
  const holes = rangeList(holeCount);
  for (let i = 0; i < holeCount; i++) {
    const s = rng.below(span);
    holes.starts[i] = s;
    holes.ends[i] = s + rng.below(maxHole);
  }
  return { span, holes };
}

/** The first `n` entries of a range list (views, no copy). */
export function prefix<T extends RangeList>(list: T, n: number): RangeList {
  const m = Math.min(n, list.length);
  return { starts: list.starts.subarray(0, m), ends: list.ends.subarray(0, m), length: m };
}

/** The first `n` operations of a stream (views, no copy). */
export function streamPrefix(stream: OpStream, n: number): OpStream {
  const m = Math.min(n, stream.length);
  return { ...prefix(stream, m), ops: stream.ops.subarray(0, m) };
}

/**
 * Workload (e): a mixed stream whose removes and lookups hit stored ranges, as a user's set sees them
 * (vPCI removes and asks about ranges it put there). `fillCount` random ranges of 1 … `maxLength`
 * values (starts uniform in `[0, 2^startBits)`, none touching another), then `opCount` operations:
 * 30% add (a new range that touches no stored one), 40% remove, 20% contains, 10% overlaps, each of
 * the last three aimed at a stored range drawn uniformly from the set as it stands at that point. A
 * remove takes the whole range (three times in four) or its first or last part, a contains asks about
 * a part inside it, an overlaps about a window that reaches into it from one side. Adds and removes of
 * whole ranges balance (30% each), so the set stays near `fillCount` ranges. The generator tracks the set exactly
 * (an unordered list of the stored ranges, and a `RangeSet` to keep new ranges off the old ones).
 */
export function storedMixedWorkload(
  seed: number,
  fillCount: number,
  opCount: number,
  check: {
    addRange(s: number, e: number): unknown;
    removeRange(s: number, e: number): unknown;
    overlapsRange(s: number, e: number): boolean;
  },
  startBits = 40,
  maxLength = 64,
): MixedWorkload {
  const rng = new Prng(seed);
  // The stored ranges, unordered: a uniform draw is one index, a removal a swap with the last.
  let liveS = new Float64Array(2 * fillCount + 16);
  let liveE = new Float64Array(2 * fillCount + 16);
  let live = 0;
  const fresh = (): [number, number] => {
    for (;;) {
      const s = rng.bits(startBits);
      const e = s + rng.below(maxLength);
      if (s > 0 && !check.overlapsRange(s - 1, e + 1)) return [s, e];
    }
  };
  const store = (s: number, e: number): void => {
    if (live === liveS.length) {
      const grownS = new Float64Array(2 * live);
      const grownE = new Float64Array(2 * live);
      grownS.set(liveS);
      grownE.set(liveE);
      liveS = grownS;
      liveE = grownE;
    }
    liveS[live] = s;
    liveE[live] = e;
    live++;
    check.addRange(s, e);
  };
  const fill = rangeList(fillCount);
  for (let i = 0; i < fillCount; i++) {
    const [s, e] = fresh();
    fill.starts[i] = s;
    fill.ends[i] = e;
    store(s, e);
  }
  const base = rangeList(opCount);
  const ops = new Uint8Array(opCount);
  for (let i = 0; i < opCount; i++) {
    const r = rng.below(100);
    let op = r < 30 ? OP_ADD : r < 70 ? OP_REMOVE : r < 90 ? OP_CONTAINS : OP_OVERLAPS;
    if (live === 0) op = OP_ADD;
    let s: number;
    let e: number;
    if (op === OP_ADD) {
      [s, e] = fresh();
      store(s, e);
    } else {
      const k = rng.below(live);
      const rs = liveS[k]!;
      const re = liveE[k]!;
      const len = re - rs + 1;
      if (op === OP_REMOVE) {
        const how = rng.below(4);
        if (how < 3 || len === 1) {
          // The whole range: it leaves the set.
          s = rs;
          e = re;
          live--;
          liveS[k] = liveS[live]!;
          liveE[k] = liveE[live]!;
        } else {
          // Its first or its last part; the rest stays.
          const cut = 1 + rng.below(len - 1);
          if (rng.below(2) === 0) {
            s = rs;
            e = rs + cut - 1;
            liveS[k] = e + 1;
          } else {
            s = re - cut + 1;
            e = re;
            liveE[k] = s - 1;
          }
        }
        check.removeRange(s, e);
      } else if (op === OP_CONTAINS) {
        s = rs + rng.below(len);
        e = s + rng.below(re - s + 1);
      } else {
        // A window of up to maxLength values that reaches into the range from its left or its right.
        const reach = rng.below(maxLength);
        if (rng.below(2) === 0) {
          e = rs + rng.below(len);
          s = Math.max(0, e - reach);
        } else {
          s = rs + rng.below(len);
          e = s + reach;
        }
      }
    }
    ops[i] = op;
    base.starts[i] = s;
    base.ends[i] = e;
  }
  return { fill, stream: { ...base, ops } };
}

/**
 * Workload (g): many tiny sets in the pattern of Xen's `modify_bars` (xen/drivers/vpci/header.c).
 * `devices` devices of 6 BARs each: per BAR `[start, end]` in guest frames (1 … 4096 frames, BARs of
 * a device side by side, devices spread over `[0, 2^36)`), the BAR holding the MSI-X table and the
 * table's frame in it, and the 4 other devices whose BARs each `modify_bars` checks for overlaps.
 *
 * The BARs each device is checked against are also laid out in the order the check reads them
 * (`checkFrom`, `checkStart`, `checkEnd`), as Xen reads them walking its device list: each
 * `tmp->vpci->header.bars` in turn. Read through `neighbours` at random devices, they cost a cache
 * miss per neighbour at 100,000 devices (9.6 MB of BARs), the same for every structure, and that,
 * not the structures, was most of the time there (see the kernel in bench/rangeset.bench.ts).
 */
export interface TinySetsWorkload {
  readonly devices: number;
  /** 6 per device: BAR i of device d at index 6d + i. */
  readonly barStart: Float64Array;
  readonly barEnd: Float64Array;
  /** Per device: the BAR (0 … 5) holding the MSI-X table, and the table's frame. */
  readonly msixBar: Uint8Array;
  readonly msixFrame: Float64Array;
  /** 4 per device: the devices whose BARs `modify_bars` checks against. */
  readonly neighbours: Uint32Array;
  /**
   * The BARs device `d` is checked against, in the order of `neighbours` (a device drawn as its own
   * neighbour is skipped, as Xen skips `tmp == pdev`), at `checkFrom[d]` up to `checkFrom[d + 1]` of
   * `checkStart`/`checkEnd`.
   */
  readonly checkFrom: Uint32Array;
  readonly checkStart: Float64Array;
  readonly checkEnd: Float64Array;
}

export const TINY_BARS = 6;
export const TINY_NEIGHBOURS = 4;

export function tinySetsWorkload(seed: number, devices: number): TinySetsWorkload {
  const rng = new Prng(seed);
  const barStart = new Float64Array(TINY_BARS * devices);
  const barEnd = new Float64Array(TINY_BARS * devices);
  const msixBar = new Uint8Array(devices);
  const msixFrame = new Float64Array(devices);
  const neighbours = new Uint32Array(TINY_NEIGHBOURS * devices);
  for (let d = 0; d < devices; d++) {
    let at = rng.bits(36 - 15) * 2 ** 15;
    for (let i = 0; i < TINY_BARS; i++) {
      const frames = 2 ** rng.below(13);
      at += rng.below(4);
      barStart[TINY_BARS * d + i] = at;
      barEnd[TINY_BARS * d + i] = at + frames - 1;
      at += frames;
    }
    const bar = rng.below(TINY_BARS);
    msixBar[d] = bar;
    const s = barStart[TINY_BARS * d + bar]!;
    msixFrame[d] = s + rng.below(barEnd[TINY_BARS * d + bar]! - s + 1);
    for (let k = 0; k < TINY_NEIGHBOURS; k++) neighbours[TINY_NEIGHBOURS * d + k] = rng.below(devices);
  }
  const checkFrom = new Uint32Array(devices + 1);
  const checkStart = new Float64Array(TINY_NEIGHBOURS * TINY_BARS * devices);
  const checkEnd = new Float64Array(TINY_NEIGHBOURS * TINY_BARS * devices);
  let at = 0;
  for (let d = 0; d < devices; d++) {
    checkFrom[d] = at;
    for (let k = 0; k < TINY_NEIGHBOURS; k++) {
      const other = neighbours[TINY_NEIGHBOURS * d + k]!;
      if (other === d) continue;
      for (let b = 0; b < TINY_BARS; b++) {
        checkStart[at] = barStart[TINY_BARS * other + b]!;
        checkEnd[at] = barEnd[TINY_BARS * other + b]!;
        at++;
      }
    }
  }
  checkFrom[devices] = at;
  return {
    devices,
    barStart,
    barEnd,
    msixBar,
    msixFrame,
    neighbours,
    checkFrom,
    checkStart: checkStart.subarray(0, at),
    checkEnd: checkEnd.subarray(0, at),
  };
}
