import { checkStep } from '../errors.js';
import type { ConsumeStep, Errno } from '../results.js';
import { lastAtOrBelow, lastAtOrBelowNear } from './search.js';

/**
 * The storage engine behind `RangeSet`: a sorted sequence of inclusive ranges `[s, e]`, kept sorted,
 * disjoint and non-adjacent by its callers, cut into chunks of at most `chunkMax` ranges.
 *
 * A chunk holds its ranges interleaved (`s0, e0, s1, e1, …`) in a fixed slot of a large shared
 * `Float64Array`, a slab: 16 bytes a range, instead of a heap object per range as in Xen's linked
 * list. Three parallel typed arrays, in chunk order, hold each chunk's first start (`firsts`), its
 * slot and its length. So a lookup is a search over `firsts` and one inside the chunk, and reaching a
 * chunk's numbers takes no pointer chasing: the costs that matter at a million ranges are cache misses,
 * and a chunk object, its typed array and its buffer would be three dependent ones.
 *
 * Inserting or deleting moves at most one chunk (`copyWithin`, a memmove); adding or dropping a chunk
 * moves the three chunk arrays, which are about 200 times shorter than the set.
 *
 * Positions are `(chunk index, offset)` pairs. Spans are half-open and an offset may equal the chunk's
 * length, meaning "just past its last range".
 */

/**
 * Ranges a chunk holds by default. 256 ranges keep a memmove within 4 KiB while a million ranges need
 * only about 5,000 chunks.
 */
export const DEFAULT_CHUNK_MAX = 256;

/**
 * Ranges from which a lookup reads a window of cache lines in the chunk at once (`lastAtOrBelowNear`)
 * instead of galloping from its guess: 2^19 ranges, 8 MiB of chunks, beyond what this host's caches
 * hold. At a million ranges the window took a lookup from 300-400 ns to 200-250 ns. In sets whose
 * chunks are mostly in cache it gained nothing measurable (the mixed workload (e) at 100,000 ranges,
 * and (a), whose set grows from 100,000 to 500,000, stayed within the noise), so they keep the gallop.
 */
export const NEAR_SEARCH_FROM = 2 ** 19;

/** Slots per slab, as a shift: 64 slots, 256 KiB at the default chunk size. */
const SLAB_SHIFT = 6;
const SLAB_MASK = (1 << SLAB_SHIFT) - 1;
/** Ranges the first slab has room for in a new set; it doubles as the set grows, up to a full slab. */
const FIRST_SLAB_RANGES = 4;
/** Chunks the chunk arrays have room for once a set holds a range; they double as needed. */
const FIRST_CHUNK_ROOM = 4;
/** The chunk arrays of a set that never held a range (never written: they have no room). */
const NO_FLOATS = new Float64Array(0);
const NO_INTS = new Int32Array(0);

export class ChunkedStore {
  /** Most ranges one chunk holds (small values let tests cross chunk boundaries often). */
  private readonly chunkMax: number;
  /** Neighbouring chunks that together hold no more than this are merged after a deletion. */
  private readonly mergeBelow: number;
  /** Doubles per slot. */
  private readonly slotSize: number;

  private slabs: Float64Array[] = [];
  /** Slots given back by dropped chunks, reused before new ones. */
  private freeSlots: number[] = [];
  /** Slots ever handed out; the next new slot. */
  private slotsUsed = 0;

  /** Number of chunks. */
  private nChunks = 0;
  /**
   * Per chunk, in order: its first start, its slot, its number of ranges, and where in its slot its
   * first range sits (in ranges). A chunk's ranges sit anywhere in its slot, with room before and
   * after them: a delete moves the shorter side of the chunk to close the gap and an insert moves the
   * shorter side that has room, so on average a quarter of a chunk moves instead of half; `consume`
   * moves the first chunk's start instead of moving its ranges down (a memmove per range used up was
   * three quarters of a whole-set consume). A chunk that is handed ranges by a neighbour moves them
   * back to the start of its slot first (`unshift`).
   * Allocated with the first range: a new, empty set costs no typed array.
   */
  private firsts: Float64Array = NO_FLOATS;
  private slots: Int32Array = NO_INTS;
  private lens: Int32Array = NO_INTS;
  private offs: Int32Array = NO_INTS;

  /** Number of ranges stored. */
  count = 0;
  /** Outputs of `locate`, to avoid allocating on every lookup: the offset, the slab and the index there. */
  private foundOffset = 0;
  private foundSlab: Float64Array = NO_FLOATS;
  private foundAt = 0;
  /** `consume` has used up ranges that `count` and the first chunk's entries do not show yet (see `settle`). */
  private lagging = false;
  /** While `lagging`: the front chunk's real offset, its first range not yet used up. */
  private front = 0;
  /** While `lagging`: chunks at the start of the chunk arrays that `consume` used up (the front chunk's index). */
  private usedChunks = 0;
  /**
   * The first range, held in fields for `RangeSet.consumeRanges` while `firstAt` is not -1: a budgeted
   * consumer's calls, one after the other, read it and write its new start in two fields of their own,
   * instead of finding the first chunk's slab and base and writing the slab and `firsts` each call.
   * Where it sits: `firstAt` in `firstHeldBy`. While held, `firstStart` is the truth and the slab and
   * `firsts[0]` may be behind it: every other use of the store puts it back first (`putFirstBack`, from
   * `add`, `remove`, `consume` and `settle`, which every read calls). The fields start as NaN, a double.
   */
  firstStart = Number.NaN;
  firstEnd = Number.NaN;
  private firstAt = -1;
  private firstHeldBy: Float64Array = NO_FLOATS;

  constructor(chunkMax: number = DEFAULT_CHUNK_MAX) {
    this.chunkMax = chunkMax;
    this.mergeBelow = chunkMax >> 1;
    this.slotSize = 2 * chunkMax;
  }

  // ---- addressing ------------------------------------------------------------------------------

  /** The slab that holds chunk ci. */
  private slabOf(ci: number): Float64Array {
    return this.slabs[this.slots[ci]! >>> SLAB_SHIFT]!;
  }

  /** Where chunk ci's numbers start in its slab. */
  private baseOf(ci: number): number {
    return (this.slots[ci]! & SLAB_MASK) * this.slotSize + 2 * this.offs[ci]!;
  }

  /** Moves chunk ci's ranges to the start of its slot (before a neighbour hands it ranges). */
  private unshift(ci: number): void {
    const off = this.offs[ci]!;
    if (off === 0) return;
    const slab = this.slabOf(ci);
    const start = (this.slots[ci]! & SLAB_MASK) * this.slotSize;
    slab.copyWithin(start, start + 2 * off, start + 2 * (off + this.lens[ci]!));
    this.offs[ci] = 0;
  }

  /** Ranges chunk ci has room for: a full chunk, except while the first slab is still small. */
  private capacityOf(ci: number): number {
    const slot = this.slots[ci]!;
    if (slot !== 0) return this.chunkMax;
    return Math.min(this.chunkMax, this.slabs[0]!.length >> 1);
  }

  /** A slot for a new chunk, reusing a freed one if any. */
  private allocSlot(): number {
    const reused = this.freeSlots.pop();
    if (reused !== undefined) {
      // Slot 0 may still be a small first chunk; a chunk that is handed ranges needs a full slot.
      if (reused === 0) this.growFirstSlab(this.slotSize);
      return reused;
    }
    const slot = this.slotsUsed++;
    const slab = slot >>> SLAB_SHIFT;
    // The first chunk of a set starts small; later slots of the first slab are full size.
    if (slab === 0)
      this.growFirstSlab(
        slot === 0 ? 2 * Math.min(FIRST_SLAB_RANGES, this.chunkMax) : (slot + 1) * this.slotSize,
      );
    else if (slab === this.slabs.length) this.slabs.push(new Float64Array((SLAB_MASK + 1) * this.slotSize));
    return slot;
  }

  /** Grows the first slab (doubling) to hold at least `doubles` numbers. */
  private growFirstSlab(doubles: number): void {
    const old = this.slabs[0];
    if (old !== undefined && old.length >= doubles) return;
    let size = old === undefined ? 2 * Math.min(FIRST_SLAB_RANGES, this.chunkMax) : old.length;
    while (size < doubles) size *= 2;
    const grown = new Float64Array(Math.min(size, (SLAB_MASK + 1) * this.slotSize));
    if (old !== undefined) grown.set(old);
    this.slabs[0] = grown;
  }

  // ---- lookups ---------------------------------------------------------------------------------

  /** Index of the last chunk whose first start is <= v; -1 if none. */
  private chunkFor(v: number): number {
    const f = this.firsts;
    const n = this.nChunks;
    if (n === 0 || f[0]! > v) return -1;
    return lastAtOrBelow(f, 0, 1, n, v, f[0]!, f[n - 1]! + 1);
  }

  /**
   * Chunk index of the last range whose start is <= v; -1 if none. Its offset in the chunk is left in
   * `foundOffset`, and where its start sits in `foundSlab[foundAt]` (its end is the next number): the
   * callers read the range from there rather than find the chunk's slab and base again.
   */
  private locate(v: number): number {
    const ci = this.chunkFor(v);
    if (ci >= 0) {
      const slab = this.slabOf(ci);
      const base = this.baseOf(ci);
      const len = this.lens[ci]!;
      // The next chunk's first start bounds this chunk's starts and is already in cache; only the last
      // chunk has to read its own last start. In a set too large for the caches the chunk is most
      // likely not in cache, and the search reads a window of lines around its guess at once
      // (`lastAtOrBelowNear`); in a smaller set its probes mostly hit, and galloping reads fewer.
      const limit = ci + 1 < this.nChunks ? this.firsts[ci + 1]! : slab[base + 2 * len - 2]! + 1;
      const first = this.firsts[ci]!;
      const k =
        this.count >= NEAR_SEARCH_FROM
          ? lastAtOrBelowNear(slab, base, 2, len, v, first, limit)
          : lastAtOrBelow(slab, base, 2, len, v, first, limit);
      this.foundOffset = k;
      this.foundSlab = slab;
      this.foundAt = base + 2 * k;
    }
    return ci;
  }

  /** True iff one stored range covers all of `[s, e]`. */
  contains(s: number, e: number): boolean {
    // `settle` only when it has something to do: a query of a set that is not being consumed (nearly
    // every query) then makes one call, to `locate`.
    if (this.firstAt >= 0 || this.lagging) this.settle();
    return this.locate(s) >= 0 && this.foundSlab[this.foundAt + 1]! >= e;
  }

  /** True iff some stored range intersects `[s, e]`. */
  overlaps(s: number, e: number): boolean {
    if (this.firstAt >= 0 || this.lagging) this.settle();
    return this.locate(e) >= 0 && this.foundSlab[this.foundAt + 1]! >= s;
  }

  /** Start of range k of chunk ci. */
  private startAt(ci: number, k: number): number {
    return this.slabOf(ci)[this.baseOf(ci) + 2 * k]!;
  }

  /** End of range k of chunk ci. */
  private endAt(ci: number, k: number): number {
    return this.slabOf(ci)[this.baseOf(ci) + 2 * k + 1]!;
  }

  /** Sets the start of range k of chunk ci, keeping `firsts` in step. */
  private setStart(ci: number, k: number, v: number): void {
    this.slabOf(ci)[this.baseOf(ci) + 2 * k] = v;
    if (k === 0) this.firsts[ci] = v;
  }

  /** Sets the end of range k of chunk ci. */
  private setEnd(ci: number, k: number, v: number): void {
    this.slabOf(ci)[this.baseOf(ci) + 2 * k + 1] = v;
  }

  // ---- updates ---------------------------------------------------------------------------------

  /**
   * Adds `[s, e]`, merging every range it overlaps or touches. Returns false, changing nothing, when
   * that needs one more stored range and `canGrow` is false.
   */
  add(s: number, e: number, canGrow: boolean): boolean {
    this.putFirstBack();
    if (this.nChunks === 0) {
      if (!canGrow) return false;
      this.insertChunk(0, this.allocSlot());
      this.insertAt(0, 0, s, e);
      return true;
    }
    // lo: the first range ending at or after s - 1, i.e. the first that may touch [s, e].
    // ins: where [s, e] goes if nothing touches it (just after the last range starting before s - 1).
    let loC: number;
    let loK: number;
    let insC: number;
    let insK: number;
    // Whether lo starts past e + 1, so that nothing touches [s, e].
    let apart: boolean;
    const leftC = this.locate(s - 1);
    if (leftC < 0) {
      loC = insC = 0;
      loK = insK = 0;
      apart = this.firsts[0]! > e + 1;
    } else {
      const k = this.foundOffset;
      insC = leftC;
      insK = k + 1;
      if (this.foundSlab[this.foundAt + 1]! >= s - 1) {
        // It starts at or before s - 1 and reaches s - 1: it touches.
        loC = leftC;
        loK = k;
        apart = false;
      } else if (k + 1 < this.lens[leftC]!) {
        loC = leftC;
        loK = k + 1;
        apart = this.foundSlab[this.foundAt + 2]! > e + 1;
      } else {
        // The next chunk's first range: its start is in `firsts`, no need to touch that chunk.
        loC = leftC + 1;
        loK = 0;
        apart = loC === this.nChunks || this.firsts[loC]! > e + 1;
      }
    }
    if (apart) {
      if (!canGrow) return false;
      this.insertAt(insC, insK, s, e);
      return true;
    }
    // Merge lo … hi (the last range starting at or before e + 1) into one range.
    const hiC = this.locate(e + 1);
    const hiK = this.foundOffset;
    const end = Math.max(this.endAt(hiC, hiK), e);
    if (this.startAt(loC, loK) > s) this.setStart(loC, loK, s);
    this.setEnd(loC, loK, end);
    this.deleteSpan(loC, loK + 1, hiC, hiK + 1);
    return true;
  }

  /**
   * Removes `[s, e]`, trimming or splitting the ranges it meets. Returns false, changing nothing, when
   * a range must split in two and `canGrow` is false.
   */
  remove(s: number, e: number, canGrow: boolean): boolean {
    this.putFirstBack();
    // lo: the first range ending at or after s.
    let loC = this.locate(s);
    let loK = this.foundOffset;
    let loStart: number;
    let loEnd: number;
    if (loC >= 0 && this.foundSlab[this.foundAt + 1]! >= s) {
      // The common case: s lies in a stored range, read where the search left it.
      loStart = this.foundSlab[this.foundAt]!;
      loEnd = this.foundSlab[this.foundAt + 1]!;
    } else {
      if (loC < 0) {
        loC = 0;
        loK = 0;
      } else if (++loK === this.lens[loC]!) {
        loC++;
        loK = 0;
      }
      if (loC === this.nChunks) return true;
      // Most removes of a sparse set meet no range (workload (a)): the next range's start answers
      // that from what is already at hand, without finding a chunk's slab and base again.
      if (loK > 0) {
        // The next range of the chunk the search read, beside the range it found.
        loStart = this.foundSlab[this.foundAt + 2]!;
        if (loStart > e) return true;
        loEnd = this.foundSlab[this.foundAt + 3]!;
      } else {
        // The first range of chunk loC: its start is in `firsts`, so the chunk is read only on a hit.
        loStart = this.firsts[loC]!;
        if (loStart > e) return true;
        loEnd = this.endAt(loC, 0);
      }
    }
    // hi: the last range starting at or before e; lo <= hi. When lo reaches e (a remove inside or at
    // the end of one range, the common case) it is hi: the next range starts past e. A second search
    // was a fifth of such a remove.
    let hiC = loC;
    let hiK = loK;
    let hiEnd = loEnd;
    if (loEnd < e) {
      hiC = this.locate(e);
      hiK = this.foundOffset;
      hiEnd = this.foundSlab[this.foundAt + 1]!;
    }
    const keepLeft = loStart < s;
    const keepRight = hiEnd > e;
    if (loC === hiC && loK === hiK && keepLeft && keepRight) {
      if (!canGrow) return false;
      this.setEnd(loC, loK, s - 1);
      this.insertAt(loC, loK + 1, e + 1, hiEnd);
      return true;
    }
    if (keepLeft) this.setEnd(loC, loK, s - 1);
    if (keepRight) this.setStart(hiC, hiK, e + 1);
    this.deleteSpan(loC, keepLeft ? loK + 1 : loK, hiC, keepRight ? hiK : hiK + 1);
    return true;
  }

  /** Drops every range and the memory that held them. */
  clear(): void {
    this.firstAt = -1;
    this.slabs = [];
    this.freeSlots = [];
    this.slotsUsed = 0;
    this.nChunks = 0;
    this.firsts = NO_FLOATS;
    this.slots = NO_INTS;
    this.lens = NO_INTS;
    this.offs = NO_INTS;
    this.count = 0;
    this.lagging = false;
    this.usedChunks = 0;
  }

  // ---- the front, for consumeRanges --------------------------------------------------------------

  /**
   * Hands the first range to `take` and removes the values its step consumed, until a step says
   * other than `continue` (returned) or the store is empty (`undefined`). Each step is checked before
   * it is applied: a bad one throws and changes nothing.
   */
  consume<S extends ConsumeStep<Errno>>(take: (start: number, end: number) => S): S | undefined {
    // Chunks used up stay in the chunk arrays, counted by `usedChunks`, until `settle` drops them all
    // at once: dropping each as it emptied made a new view of each of the four chunk arrays per chunk,
    // which tied the cost of a whole-set consume (f) to the chunk size. `count` may lag too.
    this.putFirstBack();
    let ci = this.usedChunks;
    while (ci < this.nChunks) {
      // The front chunk's slab, where its first range is and where its ranges end stay in locals
      // while the loop uses them up: a callback may read the set (which settles it, dropping the used
      // chunks and so renumbering the front chunk 0) but not change it.
      const slab = this.slabOf(ci);
      let base = this.baseOf(ci);
      let off = this.offs[ci]!;
      const stop = off + this.lens[ci]!;
      for (;;) {
        const start = slab[base]!;
        const end = slab[base + 1]!;
        const step = take(start, end);
        const consumed = step.consumed;
        const next = step.next;
        checkStep(step, start, end);
        if (consumed === end - start + 1) {
          // Used up: only the front moves (`settle` brings the rest up to it when someone looks).
          off++;
          base += 2;
          this.front = off;
          this.lagging = true;
          if (off === stop) {
            ci = this.usedChunks + 1;
            this.usedChunks = ci;
            if (ci < this.nChunks) this.front = this.offs[ci]!;
            if (next !== 'continue') return step;
            break;
          }
        } else if (consumed > 0) {
          slab[base] = start + consumed;
          // Right unless ranges were used up before it in this chunk; then `settle` rewrites it.
          this.firsts[this.usedChunks] = start + consumed;
        }
        if (next !== 'continue') return step;
      }
    }
    return undefined;
  }

  /**
   * For `RangeSet.consumeRanges`' first step: true when the first range is held in `firstStart` and
   * `firstEnd` (taken there if need be); false when the store is empty or a consume loop lags (then
   * `consume` does it all).
   */
  holdsFirst(): boolean {
    return this.firstAt >= 0 || this.holdFirst();
  }

  /** `holdsFirst` when the first range is not held: takes it into the fields (out of line, rare). */
  private holdFirst(): boolean {
    if (this.lagging || this.nChunks === 0) return false;
    const at = this.baseOf(0);
    const slab = this.slabOf(0);
    this.firstStart = slab[at]!;
    this.firstEnd = slab[at + 1]!;
    this.firstHeldBy = slab;
    this.firstAt = at;
    return true;
  }

  /** Writes the held first range's start back where it sits and lets it go (see `firstStart`). */
  private putFirstBack(): void {
    const at = this.firstAt;
    if (at < 0) return;
    this.firstAt = -1;
    this.firstHeldBy[at] = this.firstStart;
    this.firsts[0] = this.firstStart;
  }

  /**
   * A consume step took part of the held first range, which now starts at `start`. A callback that
   * read the set put the range back (`settle`); nothing changed it, so it is taken again, where it was.
   */
  consumedPart(start: number): void {
    if (this.firstAt < 0) this.holdFirst();
    this.firstStart = start;
  }

  /** A consume step used up the held first range (`holdsFirst`, nothing changed since). */
  consumedFirst(): void {
    // Its start need not be written back: the range is gone.
    this.firstAt = -1;
    // As `consume` does when a range is used up, then brought up to date at once.
    const off = this.offs[0]! + 1;
    this.lagging = true;
    this.front = off;
    if (off === this.offs[0]! + this.lens[0]!) {
      this.usedChunks = 1;
      if (this.nChunks > 1) this.front = this.offs[1]!;
    }
    this.endConsume();
  }

  /**
   * Ends a lag of `consume` (see `settle`): `RangeSet.consumeRanges` calls it when `consume` returns or
   * throws. (A `try … finally` in `consume` itself made every call of the fragmentation workload (c)
   * slower.)
   */
  endConsume(): void {
    if (!this.lagging) return;
    this.settle();
    this.lagging = false;
  }

  /**
   * Brings the store up to `consume`'s loop while it lags (a no-op otherwise): drops the chunks it used
   * up (`usedChunks`), and brings `count` and the front chunk's length, offset and first start up to
   * `front`. `consume` writes only `front` per range it uses up, where it used to keep four fields
   * current for a callback that might read the set (a fifth of a whole-set consume); every read of the
   * store settles first, and the consume ends with `endConsume`.
   */
  settle(): void {
    this.putFirstBack();
    if (!this.lagging) return;
    const usedChunks = this.usedChunks;
    if (usedChunks > 0) {
      // Every range these chunks held when last settled is gone.
      for (let c = 0; c < usedChunks; c++) this.count -= this.lens[c]!;
      this.usedChunks = 0;
      this.removeChunks(0, usedChunks);
    }
    if (this.nChunks === 0) return;
    const used = this.front - this.offs[0]!;
    if (used === 0) return;
    const len = this.lens[0]! - used;
    this.count -= used;
    this.lens[0] = len;
    this.offs[0] = this.front;
    if (len > 0) this.firsts[0] = this.slabOf(0)[this.baseOf(0)]!;
  }

  // ---- traversal -------------------------------------------------------------------------------

  /**
   * Calls `visit(s, e)` for every range that intersects `[s, e]`, clipped to it, in ascending order,
   * until `visit` returns something other than `undefined`; returns that value.
   */
  visitWindow<R>(s: number, e: number, visit: (start: number, end: number) => R | undefined): R | undefined {
    this.settle();
    let ci = this.locate(s);
    let k = this.foundOffset;
    if (ci < 0) {
      ci = 0;
      k = 0;
    }
    for (; ci < this.nChunks; ci++, k = 0) {
      for (; k < this.lens[ci]!; k++) {
        const rs = this.startAt(ci, k);
        const re = this.endAt(ci, k);
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
    this.settle();
    for (let ci = 0; ci < this.nChunks; ci++) {
      const slab = this.slabOf(ci);
      const base = this.baseOf(ci);
      const len = this.lens[ci]!;
      for (let k = 0; k < len; k++) visit(slab[base + 2 * k]!, slab[base + 2 * k + 1]!);
    }
  }

  /** The ranges as one flat array `s0, e0, s1, e1, …` (a snapshot). */
  toFlat(): Float64Array {
    this.settle();
    const out = new Float64Array(2 * this.count);
    let at = 0;
    for (let ci = 0; ci < this.nChunks; ci++) {
      const base = this.baseOf(ci);
      const n = 2 * this.lens[ci]!;
      out.set(this.slabOf(ci).subarray(base, base + n), at);
      at += n;
    }
    return out;
  }

  /** Lowest `start` such that `[start, start + size - 1]` holds no stored value and ends <= max; -1 if none. */
  firstFit(size: number, max: number): number {
    this.settle();
    let start = 0;
    for (let ci = 0; ci < this.nChunks; ci++) {
      for (let k = 0; k < this.lens[ci]!; k++) {
        if (this.startAt(ci, k) - start >= size) return start;
        start = this.endAt(ci, k) + 1;
      }
    }
    return max - start + 1 >= size ? start : -1;
  }

  // ---- chunk maintenance -----------------------------------------------------------------------

  /**
   * Inserts `[s, e]` at offset k of chunk ci (k may equal the chunk's length). The gap opens on the
   * side of k with fewer ranges to move (a chunk's ranges may sit anywhere in its slot, see `offs`):
   * a quarter of a chunk moved on average instead of half, and the memmove was a fifth of the mixed
   * workload (e) at a million ranges. When that side has no room left, the chunk is first re-centred:
   * every range moves once, in the same pass that opens the gap, so that half the free room lies on
   * each side. Until 2026-12-06 the other (longer) side moved instead, and a chunk that only ever
   * grew (random inserts, holes punched into a range) had its room behind it alone: half of those
   * inserts moved the longer side, 108 ranges an insert on average in workloads (a), (b) and the
   * punch of (c); re-centred, 64 (in (e), 55 and 64 became 52 and 56).
   */
  private insertAt(ci: number, k: number, s: number, e: number): void {
    let len = this.lens[ci]!;
    let cap = this.capacityOf(ci);
    if (len === cap) {
      if (this.slots[ci] === 0 && cap < this.chunkMax) {
        this.growFirstSlab(2 * this.slabs[0]!.length);
        cap = this.capacityOf(ci);
      } else {
        ci = this.makeRoom(ci, k);
        k = this.foundOffset;
        len = this.lens[ci]!;
        cap = this.capacityOf(ci);
      }
    }
    const slab = this.slabOf(ci);
    const off = this.offs[ci]!;
    const base = (this.slots[ci]! & SLAB_MASK) * this.slotSize + 2 * off;
    // How many places the k ranges before the gap move (negative: down); the ranges from k on move
    // one place further, which opens the gap. The chunk is not full, so one side has room.
    let head: number;
    if (2 * k < len) head = off > 0 ? -1 : ((cap - len + 1) >> 1) - 1;
    else head = off + len < cap ? 0 : -((off + 1) >> 1);
    const at = base + 2 * k;
    const end = base + 2 * len;
    // Moving up, the ranges from k on go first; moving down, the ranges before k: neither pass
    // overwrites a range the other has yet to move.
    if (head >= 0) {
      moveWithin(slab, at + 2 * head + 2, at, end);
      if (head > 0) moveWithin(slab, base + 2 * head, base, at);
    } else {
      moveWithin(slab, base + 2 * head, base, at);
      if (head < -1) moveWithin(slab, at + 2 * head + 2, at, end);
    }
    if (head !== 0) this.offs[ci] = off + head;
    const put = at + 2 * head;
    slab[put] = s;
    slab[put + 1] = e;
    this.lens[ci] = len + 1;
    if (k === 0) this.firsts[ci] = s;
    this.count++;
  }

  /**
   * Makes room for one insertion at offset k of the full chunk ci, and returns the chunk index where
   * it now goes (offset in `foundOffset`). Fresh memory is what costs most here, so full chunks first
   * hand ranges to a neighbour with room, as a B*-tree does, which keeps chunks about 80% full under
   * random inserts; otherwise an append past the last chunk (or before the first) starts a new chunk,
   * so sequential fills leave full chunks behind; otherwise the chunk splits in halves.
   */
  private makeRoom(ci: number, k: number): number {
    const len = this.lens[ci]!;
    const worthMoving = Math.max(2, this.chunkMax >> 3);
    // A neighbour's room does not depend on its offset: moveRanges first moves its ranges to the slot's start.
    const nextFree = ci + 1 < this.nChunks ? this.capacityOf(ci + 1) - this.lens[ci + 1]! : 0;
    const prevFree = ci > 0 ? this.capacityOf(ci - 1) - this.lens[ci - 1]! : 0;
    if (nextFree >= worthMoving) {
      // Move m ranges from the tail of this chunk to the head of the next one.
      const m = nextFree >> 1;
      this.moveRanges(ci, len - m, ci + 1, 0, m);
      if (k > len - m) {
        this.foundOffset = k - (len - m);
        return ci + 1;
      }
      this.foundOffset = k;
      return ci;
    }
    if (prevFree >= worthMoving) {
      // Move m ranges from the head of this chunk to the tail of the previous one.
      const m = prevFree >> 1;
      this.moveRanges(ci, 0, ci - 1, this.lens[ci - 1]!, m);
      if (k < m) {
        this.foundOffset = this.lens[ci - 1]! - m + k;
        return ci - 1;
      }
      this.foundOffset = k - m;
      return ci;
    }
    this.foundOffset = 0;
    if (ci + 1 === this.nChunks && k === len) {
      this.insertChunk(ci + 1, this.allocSlot());
      return ci + 1;
    }
    if (ci === 0 && k === 0) {
      this.insertChunk(0, this.allocSlot());
      return 0;
    }
    const half = len >> 1;
    this.insertChunk(ci + 1, this.allocSlot());
    this.moveRanges(ci, half, ci + 1, 0, len - half);
    if (k > half) {
      this.foundOffset = k - half;
      return ci + 1;
    }
    this.foundOffset = k;
    return ci;
  }

  /**
   * Moves the m ranges at offset `from` of chunk `src` to offset `to` of the neighbouring chunk `dst`,
   * where `from` is the head or the tail of `src` and `to` the tail or the head of `dst`.
   */
  private moveRanges(src: number, from: number, dst: number, to: number, m: number): void {
    this.unshift(dst);
    const srcSlab = this.slabOf(src);
    const srcBase = this.baseOf(src);
    const dstSlab = this.slabOf(dst);
    const dstBase = this.baseOf(dst);
    const srcLen = this.lens[src]!;
    const dstLen = this.lens[dst]!;
    // Open a gap of m ranges at `to` in dst, copy the ranges in, then close the gap they leave in src.
    dstSlab.copyWithin(dstBase + 2 * (to + m), dstBase + 2 * to, dstBase + 2 * dstLen);
    dstSlab.set(srcSlab.subarray(srcBase + 2 * from, srcBase + 2 * (from + m)), dstBase + 2 * to);
    // Ranges taken from the head of src leave room in front of it; from the tail, nothing to move.
    if (from === 0) this.offs[src] = this.offs[src]! + m;
    this.lens[src] = srcLen - m;
    this.lens[dst] = dstLen + m;
    this.firsts[src] = srcSlab[srcBase + 2 * (from === 0 ? m : 0)]!;
    this.firsts[dst] = dstSlab[dstBase]!;
  }

  /**
   * Deletes the ranges from (ciA, kA) up to, not including, (ciB, kB); requires (ciA, kA) <= (ciB, kB).
   * Inside one chunk, the side of the span with fewer ranges moves to close it (the ranges before it
   * move up, leaving room in front); ranges cut from the head of a chunk leave room in front with
   * nothing moved. Empty chunks are dropped and small neighbours merged.
   */
  private deleteSpan(ciA: number, kA: number, ciB: number, kB: number): void {
    if (ciA === ciB) {
      const n = kB - kA;
      if (n <= 0) return;
      const len = this.lens[ciA]!;
      const slab = this.slabOf(ciA);
      const base = this.baseOf(ciA);
      if (kA < len - kB) {
        moveWithin(slab, base + 2 * n, base, base + 2 * kA);
        this.offs[ciA] = this.offs[ciA]! + n;
        if (kA === 0) this.firsts[ciA] = slab[base + 2 * n]!;
      } else {
        moveWithin(slab, base + 2 * kA, base + 2 * kB, base + 2 * len);
        if (kA === 0 && kB < len) this.firsts[ciA] = slab[base]!;
      }
      this.lens[ciA] = len - n;
      this.count -= n;
      // Only this chunk changed: no other chunk's numbers need to be read (refreshing the next
      // chunk's first start from its slot, as the general case below does, was a cache miss per delete).
      if (len === n) this.removeChunks(ciA, 1);
      else this.mergeNext(ciA);
      return;
    }
    this.count -= this.lens[ciA]! - kA;
    this.lens[ciA] = kA;
    for (let c = ciA + 1; c < ciB; c++) this.count -= this.lens[c]!;
    this.count -= kB;
    this.offs[ciB] = this.offs[ciB]! + kB;
    this.lens[ciB] = this.lens[ciB]! - kB;
    this.removeChunks(ciA + 1, ciB - ciA - 1);
    this.tidy(ciA + 1);
    this.tidy(ciA);
  }

  /** After a deletion: drops chunk ci if empty, else refreshes its first start and merges a small pair. */
  private tidy(ci: number): void {
    if (ci >= this.nChunks) return;
    const len = this.lens[ci]!;
    if (len === 0) {
      this.removeChunks(ci, 1);
      return;
    }
    this.firsts[ci] = this.slabOf(ci)[this.baseOf(ci)]!;
    this.mergeNext(ci);
  }

  /** Merges chunk ci's successor into it when together they hold no more than `mergeBelow` ranges. */
  private mergeNext(ci: number): void {
    const len = this.lens[ci]!;
    if (ci + 1 < this.nChunks && len + this.lens[ci + 1]! <= Math.min(this.mergeBelow, this.capacityOf(ci))) {
      this.moveRanges(ci + 1, 0, ci, len, this.lens[ci + 1]!);
      this.removeChunks(ci + 1, 1);
    }
  }

  /** Inserts an empty chunk held in `slot` at index ci. */
  private insertChunk(ci: number, slot: number): void {
    const n = this.nChunks;
    if (n === this.firsts.length) {
      if (this.firsts.byteOffset > 0) this.rebase();
      else {
        const room = Math.max(FIRST_CHUNK_ROOM, 2 * n);
        this.firsts = grownCopy(this.firsts, new Float64Array(room));
        this.slots = grownCopy(this.slots, new Int32Array(room));
        this.lens = grownCopy(this.lens, new Int32Array(room));
        this.offs = grownCopy(this.offs, new Int32Array(room));
      }
    }
    this.firsts.copyWithin(ci + 1, ci, n);
    this.slots.copyWithin(ci + 1, ci, n);
    this.lens.copyWithin(ci + 1, ci, n);
    this.offs.copyWithin(ci + 1, ci, n);
    this.slots[ci] = slot;
    this.lens[ci] = 0;
    this.offs[ci] = 0;
    this.nChunks = n + 1;
  }

  /**
   * Removes `n` chunks starting at index ci and frees their slots. Chunks dropped from the front (as
   * `consume` drops each chunk it used up) are dropped by narrowing the chunk arrays' views, not by
   * moving every other entry down: that was a quarter of a whole-set consume. The room left in front
   * is taken back when the arrays are full (`rebase`) or the set is empty.
   */
  private removeChunks(ci: number, n: number): void {
    if (n === 0) return;
    for (let c = ci; c < ci + n; c++) this.freeSlots.push(this.slots[c]!);
    const end = this.nChunks;
    this.nChunks = end - n;
    if (this.nChunks === 0) {
      // Empty again: slots are handed out from 0 as in a new set, so the next range goes back into
      // the first slab as it is (a reused slot 0 would be grown to a full slot first: 4 KiB of fresh
      // memory each time a small set is filled and consumed). The slabs are kept, and the chunk
      // arrays view their whole buffers again.
      this.freeSlots.length = 0;
      this.slotsUsed = 0;
      this.firsts = new Float64Array(this.firsts.buffer);
      this.slots = new Int32Array(this.slots.buffer);
      this.lens = new Int32Array(this.lens.buffer);
      this.offs = new Int32Array(this.offs.buffer);
    } else if (ci === 0) {
      this.firsts = this.firsts.subarray(n);
      this.slots = this.slots.subarray(n);
      this.lens = this.lens.subarray(n);
      this.offs = this.offs.subarray(n);
    } else {
      this.firsts.copyWithin(ci, ci + n, end);
      this.slots.copyWithin(ci, ci + n, end);
      this.lens.copyWithin(ci, ci + n, end);
      this.offs.copyWithin(ci, ci + n, end);
    }
  }

  /** Moves the chunk arrays' entries back to the start of their buffers, which `removeChunks` left room before. */
  private rebase(): void {
    const n = this.nChunks;
    const at = this.firsts.byteOffset / Float64Array.BYTES_PER_ELEMENT;
    this.firsts = rebased(new Float64Array(this.firsts.buffer), at, n);
    this.slots = rebased(new Int32Array(this.slots.buffer), at, n);
    this.lens = rebased(new Int32Array(this.lens.buffer), at, n);
    this.offs = rebased(new Int32Array(this.offs.buffer), at, n);
  }
}

/** `whole` with its `n` entries from index `at` moved to its start. */
function rebased<T extends Float64Array | Int32Array>(whole: T, at: number, n: number): T {
  whole.copyWithin(0, at, at + n);
  return whole;
}

/** `into` with `from` copied to its start. */
function grownCopy<T extends Float64Array | Int32Array>(from: T, into: T): T {
  into.set(from);
  return into;
}

/**
 * `a.copyWithin(to, from, end)`. `copyWithin` is a call into the runtime that costs about 23 ns
 * before it moves anything, as much as a loop moving 16 numbers; an insert or delete at a million
 * ranges mostly moves fewer (the shorter side of a chunk), so short moves take the loop.
 */
function moveWithin(a: Float64Array, to: number, from: number, end: number): void {
  const n = end - from;
  if (n > 16) a.copyWithin(to, from, end);
  else if (to < from) for (let i = 0; i < n; i++) a[to + i] = a[from + i]!;
  else for (let i = n - 1; i >= 0; i--) a[to + i] = a[from + i]!;
}
