/**
 * The p2m's extents in gfn order, cut into chunks, so that a write costs the same whatever the number
 * of extents. One sorted list of 3,776 extents (the hardware domain's map at 4,096 devices) moved half
 * of its five arrays on every map and unmap; here a write moves the rest of one chunk.
 *
 * Each chunk holds at most `chunkSize` extents (128 unless a test asks for fewer, so that chunks are
 * split and merged after a few writes) in a fixed slot of one large `Float64Array` shared by all
 * chunks, as the rangeset's chunked store keeps its ranges: per extent its first gfn, frame count,
 * first mfn, and type code and leaf order in one number (`type * 256 + order`), four numbers on one
 * cache line for a lookup. Three arrays in chunk order hold each chunk's first gfn, slot and length.
 * A lookup (`locate`) is the rangeset's interpolation search over the chunks' first gfns, then over
 * one chunk's starts: no allocation, and no object between the search and the numbers (with an
 * object per chunk holding its own typed arrays, 1e6 random lookups among 100,000 extents took 1.66x
 * a page-keyed `Map`; with the slab 1.48x, where the single sorted list took 1.10x, same process).
 *
 * An extent is named by its position, `chunk * 256 + offset`: positions grow with the gfn, so two
 * of them compare as the extents do, and `END`, past every position, stands for "after the last
 * extent". A position holds until the next `replace`.
 */
import { lastAtOrBelow } from '@vpci/rangeset/internal';

/** Bits of a position that hold the offset in the chunk (a chunk holds at most 2^8 extents). */
const OFFSET_BITS = 8;
const OFFSET_MASK = (1 << OFFSET_BITS) - 1;
/** Past every position: "after the last extent" (a small integer, as the positions are). */
export const END = 0x3fff_ffff;
/** No extent: what `find` and `prev` return when there is none. */
export const NONE = -1;
/** Extents a chunk holds unless the constructor is given another size. */
const DEFAULT_CHUNK_SIZE = 128;
/** Numbers per extent in `data`: first gfn, count, first mfn, `type * 256 + order`. */
export const STRIDE = 4;
/** Chunks the chunk arrays have room for at first; they double as needed. */
const FIRST_CHUNK_ROOM = 4;

/**
 * The pieces that replace a run of extents (`ExtentChunks.replace`): parallel arrays, the first `k`
 * places used, in gfn order.
 */
export interface Pieces {
  readonly start: Float64Array;
  readonly count: Float64Array;
  readonly mfn: Float64Array;
  readonly type: Uint8Array;
  readonly order: Uint8Array;
}

/** A p2m's extents (first gfn, count, first mfn, type code, order) sorted by first gfn, in chunks. */
export class ExtentChunks {
  /**
   * Per slot of `chunkSize` extents, `STRIDE` numbers each (`locate` gives the index of an extent's
   * first). Replaced when it grows: read it after `locate`, not before.
   */
  data: Float64Array;
  /** Slots ever handed out (the next new one), and those given back by dropped chunks. */
  private slotsUsed = 0;
  private readonly freeSlots: number[] = [];
  /** Chunks, in gfn order: none is empty. */
  private chunkCount = 0;
  /** Per chunk: its first gfn (for the search of a chunk), its slot and its length. */
  private heads = new Float64Array(FIRST_CHUNK_ROOM);
  private slots = new Int32Array(FIRST_CHUNK_ROOM);
  private lengths = new Int32Array(FIRST_CHUNK_ROOM);
  private extents = 0;
  /** Numbers of one slot. */
  private readonly slotSize: number;
  /** The extents a `replace` rebuilds across chunks (a prefix, the pieces, a suffix), reused. */
  private readonly scratch: Float64Array;

  /**
   * @param chunkSize - most extents in one chunk, 2 … 256: the default but in tests, which make it
   * small so that chunks are split and merged after a few writes.
   * @param maxPieces - most pieces one `replace` is given.
   */
  constructor(
    private readonly chunkSize = DEFAULT_CHUNK_SIZE,
    maxPieces = 16,
  ) {
    if (!Number.isInteger(chunkSize) || chunkSize < 2 || chunkSize > OFFSET_MASK + 1)
      throw new RangeError(`ExtentChunks chunkSize: expected an integer in 2 … 256, got ${chunkSize}`);
    this.slotSize = chunkSize * STRIDE;
    // Room for one chunk: a p2m of a few extents (most guests') costs one slot.
    this.data = new Float64Array(this.slotSize);
    this.scratch = new Float64Array((2 * chunkSize + maxPieces) * STRIDE);
  }

  /** Extents held. */
  get size(): number {
    return this.extents;
  }

  /** Index in `data` of the extent at `p`. */
  at(p: number): number {
    return this.slots[p >> OFFSET_BITS]! * this.slotSize + (p & OFFSET_MASK) * STRIDE;
  }

  /** First gfn of the extent at `p`. */
  start(p: number): number {
    return this.data[this.at(p)]!;
  }
  /** Frame count of the extent at `p`. */
  count(p: number): number {
    return this.data[this.at(p) + 1]!;
  }
  /** First mfn of the extent at `p`. */
  mfn(p: number): number {
    return this.data[this.at(p) + 2]!;
  }
  /** Type code of the extent at `p`. */
  type(p: number): number {
    return this.data[this.at(p) + 3]! >> 8;
  }
  /** Leaf order of the extent at `p`. */
  order(p: number): number {
    return this.data[this.at(p) + 3]! & 0xff;
  }

  /** Position of the first extent, or `END` when there is none. */
  first(): number {
    return this.extents === 0 ? END : 0;
  }

  /** Position after `p` (`END` after the last). */
  next(p: number): number {
    const c = p >> OFFSET_BITS;
    if ((p & OFFSET_MASK) + 1 < this.lengths[c]!) return p + 1;
    return c + 1 < this.chunkCount ? (c + 1) << OFFSET_BITS : END;
  }

  /** Position before `p` (the last extent before `END`), or `NONE` before the first. */
  prev(p: number): number {
    let c: number;
    if (p === END) c = this.chunkCount;
    else if ((p & OFFSET_MASK) > 0) return p - 1;
    else c = p >> OFFSET_BITS;
    return c === 0 ? NONE : ((c - 1) << OFFSET_BITS) + this.lengths[c - 1]! - 1;
  }

  /** Position of the last extent whose first gfn is at or below `gfn`, or `NONE`. */
  find(gfn: number): number {
    const c = this.chunkOf(gfn);
    if (c < 0) return NONE;
    const length = this.lengths[c]!;
    if (length === 1) return c << OFFSET_BITS;
    const base = this.slots[c]! * this.slotSize;
    const data = this.data;
    return (c << OFFSET_BITS) + lastAtOrBelow(data, base, STRIDE, length, gfn, data[base]!, this.limitOf(c));
  }

  /**
   * `find` for a lookup: the index in `data` of the last extent whose first gfn is at or below `gfn`
   * (its first gfn, count, mfn and tag there and in the next three places), or -1.
   */
  locate(gfn: number): number {
    const c = this.chunkOf(gfn);
    if (c < 0) return -1;
    const length = this.lengths[c]!;
    const base = this.slots[c]! * this.slotSize;
    if (length === 1) return base;
    const data = this.data;
    return base + STRIDE * lastAtOrBelow(data, base, STRIDE, length, gfn, data[base]!, this.limitOf(c));
  }

  /** The chunk holding the last extent whose first gfn is at or below `gfn`, or -1. */
  private chunkOf(gfn: number): number {
    const n = this.chunkCount;
    const heads = this.heads;
    if (n === 0 || heads[0]! > gfn) return -1;
    if (n === 1) return 0;
    // Sequential work happens at the end; otherwise every head is below the last one plus one.
    const lastHead = heads[n - 1]!;
    return lastHead <= gfn ? n - 1 : lastAtOrBelow(heads, 0, 1, n, gfn, heads[0]!, lastHead + 1);
  }

  /** A bound above every first gfn of chunk `c`: the next chunk's head, or past the last extent. */
  private limitOf(c: number): number {
    if (c + 1 < this.chunkCount) return this.heads[c + 1]!;
    return this.data[this.slots[c]! * this.slotSize + (this.lengths[c]! - 1) * STRIDE]! + 1;
  }

  /**
   * Replaces the `removed` extents from position `from` (`END`, or the position of the extent the
   * pieces go before, when none is removed) by the first `k` of `pieces`. The caller keeps the list
   * sorted and its extents apart. A change within one chunk that fits in it moves the rest of that
   * chunk; any other (a chunk overflowing, or extents removed across chunks) rebuilds the chunks it
   * touches: work in proportion to the chunk size and the extents removed, never to the list.
   */
  replace(from: number, removed: number, pieces: Pieces, k: number): void {
    if (this.chunkCount === 0) {
      if (k === 0) return;
      this.insertChunks(0, 1);
      this.lengths[0] = 0;
      from = 0;
    }
    let c: number;
    let j: number;
    if (from === END) {
      c = this.chunkCount - 1;
      j = this.lengths[c]!;
    } else {
      c = from >> OFFSET_BITS;
      j = from & OFFSET_MASK;
    }
    const old = this.lengths[c]!;
    const length = old - removed + k;
    this.extents += k - removed;
    if (removed > old - j || length > this.chunkSize) {
      this.rebuild(c, j, removed, pieces, k);
      return;
    }
    // Within one chunk: shift its tail, write the pieces in place.
    const base = this.slots[c]! * this.slotSize;
    const data = this.data;
    if (k !== removed)
      data.copyWithin(base + (j + k) * STRIDE, base + (j + removed) * STRIDE, base + old * STRIDE);
    putPieces(data, base + j * STRIDE, pieces, k);
    this.lengths[c] = length;
    if (length === 0) this.dropChunks(c, 1);
    else {
      this.heads[c] = data[base]!;
      this.mergeSmall(c);
    }
  }

  /**
   * `replace` across chunks: the extents of chunk `c` before offset `j`, the pieces, and what is left
   * of the chunk where the removed extents end, gathered in the scratch arrays and dealt out to as few
   * chunks as hold them: evenly, or, when nothing follows them (a map filled in gfn order), full
   * chunks and the rest in the last, so that such a map's chunks end up full.
   */
  private rebuild(c: number, j: number, removed: number, pieces: Pieces, k: number): void {
    const scratch = this.scratch;
    const { data, slotSize } = this;
    const base = this.slots[c]! * slotSize;
    scratch.set(data.subarray(base, base + j * STRIDE));
    putPieces(scratch, j * STRIDE, pieces, k);
    let n = j + k;
    // Skip `removed` extents from (c, j), whole chunks at a time.
    let last = c;
    let at = j;
    let left = removed;
    while (left > 0 && left >= this.lengths[last]! - at) {
      left -= this.lengths[last]! - at;
      last++;
      at = 0;
    }
    // Chunks [c, last) are used up; chunk `last` (if any) keeps its extents from `at + left`.
    let used = last - c;
    if (last < this.chunkCount) {
      const from = at + left;
      const tail = this.lengths[last]! - from;
      const tailBase = this.slots[last]! * slotSize + from * STRIDE;
      scratch.set(data.subarray(tailBase, tailBase + tail * STRIDE), n * STRIDE);
      n += tail;
      used++;
    }
    const atEnd = c + used === this.chunkCount;
    this.dropChunks(c, used);
    const parts = Math.ceil(n / this.chunkSize);
    this.insertChunks(c, parts);
    for (let part = 0, i = 0; part < parts; part++) {
      const size = atEnd
        ? Math.min(this.chunkSize, n - i)
        : Math.floor((n * (part + 1)) / parts) - Math.floor((n * part) / parts);
      const slot = this.slots[c + part]!;
      // `data` may have grown in `insertChunks`: read the field again.
      this.data.set(scratch.subarray(i * STRIDE, (i + size) * STRIDE), slot * slotSize);
      this.lengths[c + part] = size;
      this.heads[c + part] = scratch[i * STRIDE]!;
      i += size;
    }
    if (parts > 0) {
      this.mergeSmall(c + parts - 1);
      if (parts > 1) this.mergeSmall(c);
    } else if (c > 0) this.mergeSmall(c - 1);
  }

  /** Removes `n` chunks from `c`, giving their slots back. */
  private dropChunks(c: number, n: number): void {
    if (n === 0) return;
    for (let i = c; i < c + n; i++) this.freeSlots.push(this.slots[i]!);
    const count = this.chunkCount;
    this.heads.copyWithin(c, c + n, count);
    this.slots.copyWithin(c, c + n, count);
    this.lengths.copyWithin(c, c + n, count);
    this.chunkCount = count - n;
  }

  /** Makes room for `n` chunks at `c`, each given a slot (their heads and lengths are the caller's). */
  private insertChunks(c: number, n: number): void {
    if (n === 0) return;
    const count = this.chunkCount;
    if (count + n > this.heads.length) {
      let room = this.heads.length * 2;
      while (room < count + n) room *= 2;
      const heads = new Float64Array(room);
      const slots = new Int32Array(room);
      const lengths = new Int32Array(room);
      heads.set(this.heads.subarray(0, count));
      slots.set(this.slots.subarray(0, count));
      lengths.set(this.lengths.subarray(0, count));
      this.heads = heads;
      this.slots = slots;
      this.lengths = lengths;
    }
    this.heads.copyWithin(c + n, c, count);
    this.slots.copyWithin(c + n, c, count);
    this.lengths.copyWithin(c + n, c, count);
    for (let i = c; i < c + n; i++) this.slots[i] = this.newSlot();
    this.chunkCount = count + n;
  }

  /** A free slot: one given back, else a new one (the slot arrays double when full). */
  private newSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    const slot = this.slotsUsed++;
    if ((slot + 1) * this.slotSize > this.data.length) {
      const room = Math.max(slot + 1, (this.data.length / this.slotSize) * 2);
      const data = new Float64Array(room * this.slotSize);
      data.set(this.data);
      this.data = data;
    }
    return slot;
  }

  /**
   * Merges chunk `c` with a neighbour when it holds no more than a quarter of the chunk size and the
   * two fit in one chunk, so that writes cannot leave many near-empty chunks behind.
   */
  private mergeSmall(c: number): void {
    const lengths = this.lengths;
    if (lengths[c]! * 4 > this.chunkSize) return;
    const left = c + 1 < this.chunkCount ? c : c - 1;
    if (left < 0) return;
    const into = lengths[left]!;
    const from = lengths[left + 1]!;
    if (into + from > this.chunkSize) return;
    const intoSlot = this.slots[left]!;
    const fromSlot = this.slots[left + 1]!;
    const size = this.slotSize;
    this.data.copyWithin(intoSlot * size + into * STRIDE, fromSlot * size, fromSlot * size + from * STRIDE);
    lengths[left] = into + from;
    this.dropChunks(left + 1, 1);
  }
}

/** Writes the first `k` pieces into `data` from index `at`, `STRIDE` numbers each. */
function putPieces(data: Float64Array, at: number, pieces: Pieces, k: number): void {
  for (let p = 0; p < k; p++, at += STRIDE) {
    data[at] = pieces.start[p]!;
    data[at + 1] = pieces.count[p]!;
    data[at + 2] = pieces.mfn[p]!;
    data[at + 3] = pieces.type[p]! * 256 + pieces.order[p]!;
  }
}
