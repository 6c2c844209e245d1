/**
 * Items on inclusive frame intervals `[first, last]`, found by the intervals they meet. The p2m keeps
 * one of its MMIO extents by machine frame (`P2m.extentsOfTypeMeetingMfns`); vPCI's invariant checks
 * keep one per domain (enabled BAR windows and MSI-X pages by guest frame) and one per machine
 * (devices' host pages by machine frame), so that a check after a line that touched one device looks
 * at the few items near that device instead of at every device of the machine.
 *
 * Intervals may overlap and differ in length by many orders of magnitude (a 4 KiB BAR beside a 1 TiB
 * one), so one list sorted by start does not bound a search on its left. The items are kept in span
 * classes instead, one sorted list each, class k holding the spans of `[4^k, 4^(k+1))` frames
 * (`CLASS_BITS`): in class k an interval meeting `[first, last]` starts in `[first - span + 1, last]`
 * for the class's longest span, a binary search then a walk over what meets or nearly meets.
 *
 * Each class's sorted list is cut into chunks of at most `chunkSize` entries (64 unless a test asks
 * for fewer), each holding its entries' starts and ends in one `Float64Array` beside its items, with
 * the chunks' first starts in a list of their own. A change is two binary searches and a shift within
 * one chunk: its cost does not grow with the class (a machine of 4,096 devices had 500-800 entries in
 * a class of one power of two where one of 64 had about 14; one splice of the whole list each cost
 * that machine 20 times what the small one paid), and a search reads contiguous numbers instead of
 * one object per entry.
 * The entries keep the order one sorted list would have (by start, the earlier added first among
 * equal starts), so a walk finds them in the same order.
 *
 * A removal leaves a hole (its start kept, so the starts stay sorted, its end NaN, its item dropped)
 * instead of shifting the rest of the chunk, and an addition whose place is just after a hole fills
 * it (a BAR whose decoding is turned off and on again comes back to where it was): over a machine of
 * thousands of devices the chunk is cold, and each shift of up to 64 entries' bounds and items read
 * and wrote cache lines that no search needed. A hole is told by its end alone: every comparison
 * with NaN is false, so a walk's test of the end passes it by and a removal's match never takes it,
 * without reading the item (a test of the item against a marker made V8 call its strict-equality
 * builtin, which reads the item's map: one more cold line per entry walked). A chunk is compacted
 * when more than half of it is holes, and when it is full and has any (instead of being split).
 */

/** Entries of a span class in order of start: one piece of its sorted list. */
interface Chunk<T> {
  /** How many entries are held (the arrays' first `length` places), holes included. */
  length: number;
  /** How many of them are holes (an end of NaN, no item). */
  holes: number;
  /**
   * Their starts and ends, interleaved (`first0, last0, first1, last1, …`) in order, then unused
   * places: one array, so that a search and the walk after it read one object's numbers, and an
   * entry's start and end share a cache line (a chunk of a machine-wide index is seldom in the cache).
   */
  bounds: Float64Array;
  /** Their items, in the same order. */
  items: (T | undefined)[];
}

interface SpanClass<T> {
  /** The class's entries sorted by start, cut in chunks; no chunk is empty. */
  readonly chunks: Chunk<T>[];
  /** Each chunk's first start (`chunks[c].bounds[0]`), for the search of a chunk. */
  readonly heads: number[];
  /**
   * At least the longest span (`last - first + 1`) of the entries: it only grows until the class
   * empties, which is all a search needs (a bound, not the exact figure).
   */
  longest: number;
  /** At least the largest `last` of the entries, likewise: a search past it skips the class. */
  reach: number;
}

/** An entry's place: chunk `chunk`, index `index` in it (at most the chunk's length). */
interface Place {
  chunk: number;
  index: number;
}

/** An inverted interval's entry (`first > last`). */
interface Entry<T> {
  readonly first: number;
  readonly last: number;
  readonly item: T;
}

/** The chunk size unless the constructor is given one. */
const DEFAULT_CHUNK_SIZE = 64;
/** A chunk's arrays start this long and double as it fills, up to the chunk size. */
const FIRST_CAPACITY = 4;

/** Items on intervals, by the intervals they meet; each (interval, item) pair is held once. */
export class IntervalIndex<T> {
  private readonly classes: (SpanClass<T> | undefined)[] = [];
  /**
   * Items on an inverted interval (`first > last`: a BAR of size 0 at a page boundary), unsorted. A
   * walk over every item tests `item.first <= last && first <= item.last`, which such an item can
   * pass; these are tested the same way so that a search finds what the walk finds.
   */
  private readonly inverted: Entry<T>[] = [];
  private count = 0;
  /** A search's place, reused (no allocation per change). */
  private readonly place: Place = { chunk: 0, index: 0 };

  /**
   * @param chunkSize - most entries in one chunk (at least 2): the default but in tests, which make
   * it small so that chunks are split and merged after a few changes.
   */
  constructor(private readonly chunkSize = DEFAULT_CHUNK_SIZE) {
    if (!Number.isInteger(chunkSize) || chunkSize < 2)
      throw new RangeError(`IntervalIndex chunkSize: expected an integer of at least 2, got ${chunkSize}`);
  }

  /** How many items are held. */
  get size(): number {
    return this.count;
  }

  /** Adds `item` on `[first, last]` (integers). */
  add(first: number, last: number, item: T): void {
    this.count++;
    if (first > last) {
      this.inverted.push({ first, last, item });
      return;
    }
    const span = last - first + 1;
    const k = spanClassOf(span);
    let spanClass = this.classes[k];
    if (spanClass === undefined) {
      spanClass = { chunks: [], heads: [], longest: 0, reach: Number.NEGATIVE_INFINITY };
      this.classes[k] = spanClass;
    }
    if (span > spanClass.longest) spanClass.longest = span;
    if (last > spanClass.reach) spanClass.reach = last;
    const { chunks, heads } = spanClass;
    if (chunks.length === 0) {
      const chunk = newChunk<T>(FIRST_CAPACITY);
      put(chunk, 0, first, last, item, this.chunkSize);
      chunks.push(chunk);
      heads.push(first);
      return;
    }
    // After every entry starting at or before `first`: the last chunk whose head is at or before it.
    const c = Math.max(0, lastAtOrBelow(heads, first));
    const chunk = chunks[c]!;
    let at = upperBound(chunk.bounds, chunk.length, first);
    // A hole just before the place takes the entry: every entry before it starts at or before
    // `first`, every one after it later, so the order stays a sorted list's with nothing shifted.
    if (at > 0 && Number.isNaN(chunk.bounds[2 * at - 1]!)) {
      chunk.bounds[2 * at - 2] = first;
      chunk.bounds[2 * at - 1] = last;
      chunk.items[at - 1] = item;
      chunk.holes--;
      if (at === 1) heads[c] = first;
      return;
    }
    // A full chunk with holes is compacted instead of split (it has room then).
    if (chunk.holes > 0 && chunk.length === this.chunkSize) {
      compact(chunk);
      at = upperBound(chunk.bounds, chunk.length, first);
      if (chunk.length > 0) heads[c] = chunk.bounds[0]!;
    }
    put(chunk, at, first, last, item, this.chunkSize);
    if (at === 0) heads[c] = first;
    if (chunk.length > this.chunkSize) {
      const half = chunk.length >> 1;
      const rest = newChunk<T>(capacityFor(chunk.length - half, this.chunkSize));
      rest.bounds.set(chunk.bounds.subarray(2 * half, 2 * chunk.length));
      for (let i = half; i < chunk.length; i++) {
        rest.items[i - half] = chunk.items[i];
        chunk.items[i] = undefined;
      }
      rest.length = chunk.length - half;
      chunk.length = half;
      // A chunk is compacted before it would be split (above): neither half holds a hole.
      chunks.splice(c + 1, 0, rest);
      heads.splice(c + 1, 0, rest.bounds[0]!);
    }
  }

  /** Removes `item` added on `[first, last]`; false when it is not held there. */
  remove(first: number, last: number, item: T): boolean {
    if (first > last) {
      const i = this.inverted.findIndex(
        (entry) => entry.item === item && entry.first === first && entry.last === last,
      );
      if (i < 0) return false;
      this.inverted.splice(i, 1);
      this.count--;
      return true;
    }
    const spanClass = this.classes[spanClassOf(last - first + 1)];
    if (spanClass === undefined || spanClass.chunks.length === 0) return false;
    const { chunks, heads } = spanClass;
    const place = this.firstStartingFrom(spanClass, first);
    for (let c = place.chunk, i = place.index; c < chunks.length; c++, i = 0) {
      const chunk = chunks[c]!;
      for (; i < chunk.length && chunk.bounds[2 * i] === first; i++) {
        if (chunk.items[i] !== item || chunk.bounds[2 * i + 1] !== last) continue;
        this.count--;
        chunk.bounds[2 * i + 1] = Number.NaN;
        chunk.items[i] = undefined;
        chunk.holes++;
        // The hole keeps its start: the chunk's head and the order of the starts stand.
        if (2 * chunk.holes <= chunk.length && chunk.holes < chunk.length) return true;
        compact(chunk);
        if (chunk.length === 0) {
          chunks.splice(c, 1);
          heads.splice(c, 1);
          if (chunks.length === 0) {
            spanClass.longest = 0;
            spanClass.reach = Number.NEGATIVE_INFINITY;
          }
        } else {
          heads[c] = chunk.bounds[0]!;
          this.mergeSmall(spanClass, c);
        }
        return true;
      }
      if (i < chunk.length) return false;
    }
    return false;
  }

  /**
   * Appends to `out` every item whose interval meets `[first, last]`, each once, in no particular
   * order (the callers put them in the order they report in).
   */
  meeting(first: number, last: number, out: T[]): T[] {
    this.collect(first, last, out, out.length);
    return out;
  }

  /**
   * `meeting`, the items written into `out` from place `at` on (over what is there) instead of added
   * at its end; returns the place after the last one written. For a list refilled from its start
   * search after search: emptied by `length = 0`, an array gives up its store, made again at the next
   * item.
   */
  collect(first: number, last: number, out: T[], at: number): number {
    let n = at;
    for (const entry of this.inverted) if (entry.first <= last && first <= entry.last) out[n++] = entry.item;
    for (let k = 0; k < this.classes.length; k++) {
      const spanClass = this.classes[k];
      // A class whose intervals all start after the search or end before it is passed by.
      if (spanClass === undefined || spanClass.reach < first) continue;
      const { chunks, heads } = spanClass;
      if (chunks.length === 0 || heads[0]! > last) continue;
      const place = this.firstStartingFrom(spanClass, first - spanClass.longest + 1);
      walk: for (let c = place.chunk, i = place.index; c < chunks.length; c++, i = 0) {
        const { bounds, items, length } = chunks[c]!;
        for (; i < length; i++) {
          if (bounds[2 * i]! > last) break walk;
          if (bounds[2 * i + 1]! >= first) out[n++] = items[i] as T;
        }
      }
    }
    return n;
  }

  /** Every item held, in no particular order. */
  all(): T[] {
    const out: T[] = this.inverted.map((entry) => entry.item);
    for (const spanClass of this.classes)
      for (const chunk of spanClass?.chunks ?? [])
        for (let i = 0; i < chunk.length; i++)
          if (!Number.isNaN(chunk.bounds[2 * i + 1]!)) out.push(chunk.items[i] as T);
    return out;
  }

  /**
   * The place of the first entry of the class starting at or after `frame` (the end of a chunk when
   * the next chunk starts there, the end of the last chunk when none does), in `this.place`.
   */
  private firstStartingFrom(spanClass: SpanClass<T>, frame: number): Place {
    const { chunks, heads } = spanClass;
    // The last chunk with a head before `frame` holds the place, or ends just before it.
    const c = Math.max(0, lastBelow(heads, frame));
    const chunk = chunks[c]!;
    this.place.chunk = c;
    this.place.index = lowerBound(chunk.bounds, chunk.length, frame);
    return this.place;
  }

  /**
   * Merges chunk `c` with a neighbour when it has fallen to a quarter of the chunk size and the two
   * fit in one chunk, so that removals cannot leave many near-empty chunks behind.
   */
  private mergeSmall(spanClass: SpanClass<T>, c: number): void {
    const { chunks, heads } = spanClass;
    if (chunks[c]!.length * 4 > this.chunkSize) return;
    const left = c + 1 < chunks.length ? c : c - 1;
    if (left < 0) return;
    const into = chunks[left]!;
    const from = chunks[left + 1]!;
    if (into.length + from.length > this.chunkSize) return;
    const grown = ensureCapacity(into, into.length + from.length, this.chunkSize);
    grown.bounds.set(from.bounds.subarray(0, 2 * from.length), 2 * grown.length);
    for (let i = 0; i < from.length; i++) grown.items[grown.length + i] = from.items[i];
    grown.length += from.length;
    grown.holes += from.holes;
    chunks[left] = grown;
    chunks.splice(left + 1, 1);
    heads.splice(left + 1, 1);
  }
}

/** An empty chunk with room for `capacity` entries. */
function newChunk<T>(capacity: number): Chunk<T> {
  return {
    length: 0,
    holes: 0,
    bounds: new Float64Array(2 * capacity),
    items: new Array<T | undefined>(capacity).fill(undefined),
  };
}

/** The capacity to allocate for `length` entries: the next power of two, within one past the chunk size. */
function capacityFor(length: number, chunkSize: number): number {
  let capacity = FIRST_CAPACITY;
  while (capacity < length) capacity *= 2;
  return Math.min(capacity, chunkSize + 1);
}

/** `chunk` with room for `length` entries: itself, its arrays grown when they are too short. */
function ensureCapacity<T>(chunk: Chunk<T>, length: number, chunkSize: number): Chunk<T> {
  if (2 * length <= chunk.bounds.length) return chunk;
  const capacity = Math.max(length, capacityFor(length, chunkSize));
  const bounds = new Float64Array(2 * capacity);
  bounds.set(chunk.bounds.subarray(0, 2 * chunk.length));
  chunk.bounds = bounds;
  for (let i = chunk.items.length; i < capacity; i++) chunk.items.push(undefined);
  return chunk;
}

/**
 * Inserts an entry at `at` in `chunk`, growing its arrays if need be: it may hold one more than the
 * chunk size until it is split.
 */
function put<T>(chunk: Chunk<T>, at: number, first: number, last: number, item: T, chunkSize: number): void {
  ensureCapacity(chunk, chunk.length + 1, chunkSize);
  const { bounds, items } = chunk;
  bounds.copyWithin(2 * at + 2, 2 * at, 2 * chunk.length);
  for (let i = chunk.length; i > at; i--) items[i] = items[i - 1];
  bounds[2 * at] = first;
  bounds[2 * at + 1] = last;
  items[at] = item;
  chunk.length++;
}

/** Drops `chunk`'s holes, the entries after each moved up in order. */
function compact<T>(chunk: Chunk<T>): void {
  const { bounds, items } = chunk;
  let kept = 0;
  for (let i = 0; i < chunk.length; i++) {
    if (Number.isNaN(bounds[2 * i + 1]!)) continue;
    if (kept !== i) {
      bounds[2 * kept] = bounds[2 * i]!;
      bounds[2 * kept + 1] = bounds[2 * i + 1]!;
      items[kept] = items[i];
    }
    kept++;
  }
  for (let i = kept; i < chunk.length; i++) items[i] = undefined;
  chunk.length = kept;
  chunk.holes = 0;
}

/**
 * Powers of two a span class covers: class k holds the spans of `[2^(CLASS_BITS k), 2^(CLASS_BITS (k
 * + 1)))` frames. Each class a search meets costs a binary search of its chunk list and of one chunk,
 * and over a machine of thousands of devices that chunk is seldom in the cache: fewer, wider classes
 * are fewer cold searches per `meeting`. The price is a walk that may start up to 2^CLASS_BITS times
 * a short entry's span early, over entries that end before the search; in the indexes the engine
 * keeps (BARs, windows and MSI-X pages of devices spread over the address space) that is at most a
 * neighbour or two.
 */
const CLASS_BITS = 2;

/**
 * The class of a span of `span` frames: the position of its highest set bit (frames go up to 2^52,
 * past 32-bit integer arithmetic, hence the division for the high part), over `CLASS_BITS`.
 */
function spanClassOf(span: number): number {
  const bit = span < 2 ** 32 ? 31 - Math.clz32(span) : 32 + (31 - Math.clz32(Math.floor(span / 2 ** 32)));
  return Math.floor(bit / CLASS_BITS);
}

/** Index of the first of the starts of `bounds`' first `length` entries (sorted) at or above `value`. */
function lowerBound(bounds: Float64Array, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[2 * mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first of the starts of `bounds`' first `length` entries (sorted) above `value`. */
function upperBound(bounds: Float64Array, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[2 * mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the last of `values` (sorted) at or below `value`; -1 when none is. */
function lastAtOrBelow(values: readonly number[], value: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Index of the last of `values` (sorted) below `value`; -1 when none is. */
function lastBelow(values: readonly number[], value: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
