/**
 * `sortSmall`: a stable sort in place for the few items a scoped check sorts (the windows, MSI-X pages,
 * host pages or extents meeting a handful of frames). `Array.prototype.sort` copies its array into a
 * work array on every call, which for lists of one to a few items was the checks' largest source of
 * garbage; an insertion sort moves nothing it does not have to. Both are stable, so the order is
 * the same either way.
 */

/** Lists longer than this go to `Array.prototype.sort`. */
const INSERTION_LIMIT = 16;

/**
 * Sorts `items` in place by `order`, stably, and returns them; only the first `n` when given (a list
 * refilled from its start, whose tail is stale), the rest left as it is.
 */
export function sortSmall<T>(items: T[], order: (a: T, b: T) => number, n = items.length): T[] {
  if (n < 2) return items;
  if (n > INSERTION_LIMIT) {
    if (n === items.length) return items.sort(order);
    const sorted = items.slice(0, n).sort(order);
    for (let i = 0; i < n; i++) items[i] = sorted[i]!;
    return items;
  }
  for (let i = 1; i < n; i++) {
    const item = items[i]!;
    let j = i - 1;
    for (; j >= 0 && order(items[j]!, item) > 0; j--) items[j + 1] = items[j]!;
    items[j + 1] = item;
  }
  return items;
}
