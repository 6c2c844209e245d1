/**
 * The storage engine behind `RangeSet`: a sorted sequence of inclusive ranges `[s, e]`, kept sorted,
 * disjoint and non-adjacent by its callers, cut into chunks of at most `chunkMax` ranges.
 *
 * Each chunk holds its ranges interleaved in one `Float64Array` (`s0, e0, s1, e1, …`): 16 bytes a range
 * plus a little slack, instead of a heap object per range as in Xen's linked list. A second
 * `Float64Array` holds the first start of every chunk, so a lookup is two binary searches: one over
 * the chunk starts, one inside the chunk. Inserting or deleting moves at most one chunk's worth of
 * numbers (`copyWithin`, a memmove); splitting or dropping a chunk moves the chunk index, which is
 * `chunk size times shorter than the set.
 *
 * Positions are `(chunk index, offset)` pairs. Spans are half-open and an offset may equal the chunk's
 * length, meaning "just past its last range".
 */

/**
 * Ranges a chunk holds by default. 256 ranges keep a memmove within 4 KiB while a million ranges need
 * only about 5,000 chunks.
 */
export const DEFAULT_CHUNK_MAX = 256;

/** Capacity, in ranges, of the first chunk of a new set; it doubles up to the chunk size. */
const FIRST_CHUNK_CAPACITY = 4;

class Chunk {
  /** Interleaved starts and ends; `data.length / 2` is the capacity in ranges. */
  data: Float64Array;
  /** Ranges in use. */
  len: number;

  constructor(capacity: number) {
    this.data = new Float64Array(2 * capacity);
    this.len = 0;
  }

  /** Capacity in ranges. */
  get capacity(): number {
    return this.data.length >> 1;
  }

  /** Reallocates the buffer with room for `capacity` ranges, keeping the ranges in use. */
  grow(capacity: number): void {
    const data = new Float64Array(2 * capacity);
    data.set(this.data.subarray(0, 2 * this.len));
    this.data = data;
  }

  /** Last offset whose start is <= v. Requires `len > 0` and `data[0] <= v`. */
  offsetFor(v: number): number {
    const d = this.data;
    let lo = 0;
    let hi = this.len - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (d[2 * mid] <= v) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

export class ChunkedStore {
  /** Most ranges one chunk holds (small values let tests cross chunk boundaries often). */
  private readonly chunkMax: number;
  /** Neighbouring chunks that together hold no more than this are merged after a deletion. */
  private readonly mergeBelow: number;
  private chunks: Chunk[] = [];
  /** `firsts[i]` is the first start of `chunks[i]`; capacity grows as chunks are added. */
  private firsts: Float64Array = new Float64Array(16);
  /** Number of ranges stored. */
  count = 0;
  /** Offset output of `locate`, to avoid allocating a pair on every lookup. */
  private foundOffset = 0;

  constructor(chunkMax: number = DEFAULT_CHUNK_MAX) {
    this.chunkMax = chunkMax;
    this.mergeBelow = chunkMax >> 1;
  }

  // ---- lookups ---------------------------------------------------------------------------------

  /** Index of the last chunk whose first start is <= v; -1 if none. */
  private chunkFor(v: number): number {
    const f = this.firsts;
    let hi = this.chunks.length - 1;
    if (hi < 0 || f[0] > v) return -1;
    let lo = 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (f[mid] <= v) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Chunk index of the last range whose start is <= v (offset in `foundOffset`); -1 if none. */
  private locate(v: number): number {
    const ci = this.chunkFor(v);
    if (ci >= 0) this.foundOffset = this.chunks[ci]!.offsetFor(v);
    return ci;
  }

  /** True iff one stored range covers all of `[s, e]`. */
  contains(s: number, e: number): boolean {
    const ci = this.locate(s);
    return ci >= 0 && this.chunks[ci]!.data[2 * this.foundOffset + 1]! >= e;
  }

  /** True iff some stored range intersects `[s, e]`. */
  overlaps(s: number, e: number): boolean {
    const ci = this.locate(e);
    return ci >= 0 && this.chunks[ci]!.data[2 * this.foundOffset + 1]! >= s;
  }

  // ---- updates ---------------------------------------------------------------------------------

  /**
   * Adds `[s, e]`, merging every range it overlaps or touches. Returns false, changing nothing, when
   * that needs one more stored range and `canGrow` is false.
   */
  add(s: number, e: number, canGrow: boolean): boolean {
    const chunks = this.chunks;
    if (chunks.length === 0) {
      if (!canGrow) return false;
      const first = new Chunk(Math.min(FIRST_CHUNK_CAPACITY, this.chunkMax));
      first.data[0] = s;
      first.data[1] = e;
      first.len = 1;
      this.insertChunk(0, first);
      this.count = 1;
      return true;
    }
    // lo: the first range ending at or after s - 1, i.e. the first that may touch [s, e].
    // ins: where [s, e] goes if nothing touches it (just after the last range starting before s - 1).
    let loC: number;
    let loK: number;
    let insC: number;
    let insK: number;
    const leftC = this.locate(s - 1);
    if (leftC < 0) {
      loC = insC = 0;
      loK = insK = 0;
    } else {
      const left = chunks[leftC]!;
      const k = this.foundOffset;
      insC = leftC;
      insK = k + 1;
      if (left.data[2 * k + 1]! >= s - 1) {
        loC = leftC;
        loK = k;
      } else if (k + 1 < left.len) {
        loC = leftC;
        loK = k + 1;
      } else {
        loC = leftC + 1;
        loK = 0;
      }
    }
    if (loC === chunks.length || chunks[loC]!.data[2 * loK]! > e + 1) {
      if (!canGrow) return false;
      this.insertAt(insC, insK, s, e);
      return true;
    }
    // Merge lo … hi (the last range starting at or before e + 1) into one range.
    const hiC = this.locate(e + 1);
    const hiK = this.foundOffset;
    const lo = chunks[loC]!.data;
    const hiEnd = chunks[hiC]!.data[2 * hiK + 1]!;
    if (lo[2 * loK]! > s) {
      lo[2 * loK] = s;
      if (loK === 0) this.firsts[loC] = s;
    }
    lo[2 * loK + 1] = Math.max(hiEnd, e);
    this.deleteSpan(loC, loK + 1, hiC, hiK + 1);
    return true;
  }

  /**
   * Removes `[s, e]`, trimming or splitting the ranges it meets. Returns false, changing nothing, when
   * a range must split in two and `canGrow` is false.
   */
  remove(s: number, e: number, canGrow: boolean): boolean {
    const chunks = this.chunks;
    // lo: the first range ending at or after s.
    let loC = this.locate(s);
    let loK = this.foundOffset;
    if (loC < 0) {
      loC = 0;
      loK = 0;
    } else if (chunks[loC]!.data[2 * loK + 1]! < s) {
      loK++;
      if (loK === chunks[loC]!.len) {
        loC++;
        loK = 0;
      }
    }
    if (loC === chunks.length || chunks[loC]!.data[2 * loK]! > e) return true;
    // hi: the last range starting at or before e; lo <= hi.
    const hiC = this.locate(e);
    const hiK = this.foundOffset;
    const loData = chunks[loC]!.data;
    const hiData = chunks[hiC]!.data;
    const keepLeft = loData[2 * loK]! < s;
    const keepRight = hiData[2 * hiK + 1]! > e;
    if (loC === hiC && loK === hiK && keepLeft && keepRight) {
      if (!canGrow) return false;
      const tailEnd = loData[2 * loK + 1]!;
      loData[2 * loK + 1] = s - 1;
      this.insertAt(loC, loK + 1, e + 1, tailEnd);
      return true;
    }
    if (keepLeft) loData[2 * loK + 1] = s - 1;
    if (keepRight) {
      hiData[2 * hiK] = e + 1;
      if (hiK === 0) this.firsts[hiC] = e + 1;
    }
    this.deleteSpan(loC, keepLeft ? loK + 1 : loK, hiC, keepRight ? hiK : hiK + 1);
    return true;
  }

  /** Drops every range. */
  clear(): void {
    this.chunks = [];
    this.firsts = new Float64Array(16);
    this.count = 0;
  }

  // ---- the front, for consumeRanges --------------------------------------------------------------

  /** Start of the first range. Requires `count > 0`. */
  firstStart(): number {
    return this.chunks[0]!.data[0]!;
  }

  /** End of the first range. Requires `count > 0`. */
  firstEnd(): number {
    return this.chunks[0]!.data[1]!;
  }

  /** Removes the first `n` values of the first range (all of it when `n` is its length). */
  consumeFront(n: number): void {
    const first = this.chunks[0]!;
    const start = first.data[0]! + n;
    if (start > first.data[1]!) this.deleteSpan(0, 0, 0, 1);
    else {
      first.data[0] = start;
      this.firsts[0] = start;
    }
  }

  // ---- traversal -------------------------------------------------------------------------------

  /**
   * Calls `visit(s, e)` for every range that intersects `[s, e]`, clipped to it, in ascending order,
   * until `visit` returns something other than `undefined`; returns that value.
   */
  visitWindow<R>(s: number, e: number, visit: (start: number, end: number) => R | undefined): R | undefined {
    const chunks = this.chunks;
    let ci = this.locate(s);
    let k = this.foundOffset;
    if (ci < 0) {
      ci = 0;
      k = 0;
    }
    for (; ci < chunks.length; ci++, k = 0) {
      const chunk = chunks[ci]!;
      for (; k < chunk.len; k++) {
        const rs = chunk.data[2 * k]!;
        const re = chunk.data[2 * k + 1]!;
        if (rs > e) return undefined;
        if (re < s) continue;
        const stop = visit(Math.max(rs, s), Math.min(re, e));
        if (stop !== undefined) return stop;
      }
    }
    return undefined;
  }

  /** Calls `visit(s, e)` for every range in ascending order. */
  forEach(visit: (start: number, end: number) => void): void {
    for (const chunk of this.chunks) {
      const d = chunk.data;
      for (let k = 0; k < chunk.len; k++) visit(d[2 * k]!, d[2 * k + 1]!);
    }
  }

  /** The ranges as one flat array `s0, e0, s1, e1, …` (a snapshot). */
  toFlat(): Float64Array {
    const out = new Float64Array(2 * this.count);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk.data.subarray(0, 2 * chunk.len), at);
      at += 2 * chunk.len;
    }
    return out;
  }

  /** Lowest `start` such that `[start, start + size - 1]` holds no stored value and ends <= max; -1 if none. */
  firstFit(size: number, max: number): number {
    let start = 0;
    for (const chunk of this.chunks) {
      const d = chunk.data;
      for (let k = 0; k < chunk.len; k++) {
        if (d[2 * k]! - start >= size) return start;
        start = d[2 * k + 1]! + 1;
      }
    }
    return max - start + 1 >= size ? start : -1;
  }

  // ---- chunk maintenance -----------------------------------------------------------------------

  /** Inserts `[s, e]` at offset k of chunk ci (k may equal the chunk's length). */
  private insertAt(ci: number, k: number, s: number, e: number): void {
    let chunk = this.chunks[ci]!;
    if (chunk.len === chunk.capacity) {
      if (chunk.capacity < this.chunkMax) chunk.grow(Math.min(this.chunkMax, 2 * chunk.capacity));
      else {
        ci = this.makeRoom(ci, k);
        k = this.foundOffset;
        chunk = this.chunks[ci]!;
      }
    }
    const d = chunk.data;
    d.copyWithin(2 * k + 2, 2 * k, 2 * chunk.len);
    d[2 * k] = s;
    d[2 * k + 1] = e;
    chunk.len++;
    if (k === 0) this.firsts[ci] = s;
    this.count++;
  }

  /**
   * Makes room for one insertion at offset k of the full chunk ci, and returns the chunk index where
   * it now goes (offset in `foundOffset`). Allocation is what costs here, so chunks are allocated at
   * full size once and never reallocated: first a neighbour with room takes some ranges (as a B*-tree
   * does, which keeps chunks about 80% full under random inserts); otherwise an append past the last
   * chunk (or before the first) starts a new chunk, so sequential fills leave full chunks behind;
   * otherwise the chunk splits in halves.
   */
  private makeRoom(ci: number, k: number): number {
    const chunks = this.chunks;
    const chunk = chunks[ci]!;
    const len = chunk.len;
    const next = chunks[ci + 1];
    const prev = chunks[ci - 1];
    const worthMoving = Math.max(2, this.chunkMax >> 3);
    if (next !== undefined && next.capacity - next.len >= worthMoving) {
      // Move m ranges from the tail of this chunk to the head of the next one.
      const m = (next.capacity - next.len) >> 1;
      next.data.copyWithin(2 * m, 0, 2 * next.len);
      next.data.set(chunk.data.subarray(2 * (len - m), 2 * len), 0);
      next.len += m;
      chunk.len -= m;
      this.firsts[ci + 1] = next.data[0]!;
      if (k > chunk.len) {
        this.foundOffset = k - chunk.len;
        return ci + 1;
      }
      this.foundOffset = k;
      return ci;
    }
    if (prev !== undefined && prev.capacity - prev.len >= worthMoving) {
      // Move m ranges from the head of this chunk to the tail of the previous one.
      const m = (prev.capacity - prev.len) >> 1;
      prev.data.set(chunk.data.subarray(0, 2 * m), 2 * prev.len);
      chunk.data.copyWithin(0, 2 * m, 2 * len);
      prev.len += m;
      chunk.len -= m;
      this.firsts[ci] = chunk.data[0]!;
      if (k < m) {
        this.foundOffset = prev.len - m + k;
        return ci - 1;
      }
      this.foundOffset = k - m;
      return ci;
    }
    const fresh = new Chunk(this.chunkMax);
    this.foundOffset = 0;
    if (next === undefined && k === len) {
      this.insertChunk(ci + 1, fresh);
      return ci + 1;
    }
    if (prev === undefined && k === 0) {
      this.insertChunk(ci, fresh);
      return ci;
    }
    const half = len >> 1;
    fresh.data.set(chunk.data.subarray(2 * half, 2 * len));
    fresh.len = len - half;
    chunk.len = half;
    this.insertChunk(ci + 1, fresh);
    if (k > half) {
      this.foundOffset = k - half;
      return ci + 1;
    }
    this.foundOffset = k;
    return ci;
  }

  /**
   * Deletes the ranges from (ciA, kA) up to, not including, (ciB, kB); requires (ciA, kA) <= (ciB, kB).
   * Empty chunks are dropped and small neighbours merged.
   */
  private deleteSpan(ciA: number, kA: number, ciB: number, kB: number): void {
    const chunks = this.chunks;
    if (ciA === ciB) {
      const n = kB - kA;
      if (n <= 0) return;
      const chunk = chunks[ciA]!;
      chunk.data.copyWithin(2 * kA, 2 * kB, 2 * chunk.len);
      chunk.len -= n;
      this.count -= n;
    } else {
      const a = chunks[ciA]!;
      const b = chunks[ciB]!;
      this.count -= a.len - kA;
      a.len = kA;
      for (let c = ciA + 1; c < ciB; c++) this.count -= chunks[c]!.len;
      this.count -= kB;
      b.data.copyWithin(0, 2 * kB, 2 * b.len);
      b.len -= kB;
      this.removeChunks(ciA + 1, ciB - ciA - 1);
      this.firsts[ciA + 1] = b.data[0]!;
    }
    this.tidy(ciA + 1);
    this.tidy(ciA);
  }

  /** After a deletion: drops chunk ci if empty, else refreshes its first start and merges a small pair. */
  private tidy(ci: number): void {
    const chunk = this.chunks[ci];
    if (chunk === undefined) return;
    if (chunk.len === 0) {
      this.removeChunks(ci, 1);
      return;
    }
    this.firsts[ci] = chunk.data[0]!;
    const next = this.chunks[ci + 1];
    if (next !== undefined && chunk.len + next.len <= this.mergeBelow) {
      if (chunk.len + next.len > chunk.capacity) chunk.grow(this.chunkMax);
      chunk.data.set(next.data.subarray(0, 2 * next.len), 2 * chunk.len);
      chunk.len += next.len;
      this.removeChunks(ci + 1, 1);
    }
  }

  /** Inserts a chunk at index ci, keeping `firsts` in step. */
  private insertChunk(ci: number, chunk: Chunk): void {
    const n = this.chunks.length;
    if (n === this.firsts.length) {
      const grown = new Float64Array(2 * n);
      grown.set(this.firsts);
      this.firsts = grown;
    }
    this.firsts.copyWithin(ci + 1, ci, n);
    this.firsts[ci] = chunk.data[0]!;
    this.chunks.splice(ci, 0, chunk);
  }

  /** Removes `n` chunks starting at index ci, keeping `firsts` in step. */
  private removeChunks(ci: number, n: number): void {
    if (n === 0) return;
    this.firsts.copyWithin(ci, ci + n, this.chunks.length);
    this.chunks.splice(ci, n);
  }
}
