/**
 * A set changed to hold given entries in a given order, from what it held before, without emptying
 * it: the replayer's scoped check names its devices in a `Set` (`InvariantScope.devices`) after one
 * line in fifty, and a `Set` cleared, or left empty by a delete, is a new table each time.
 */

/**
 * Makes `set`, which holds `held` (in that order), hold `wanted` (each once) in `wanted`'s order:
 * the new entries put in before the old ones are taken out, so it is never left empty. A set keeps
 * an entry where it was first put, so where an entry is in both (its place would be the old one) the
 * set is emptied and filled anew.
 */
export function holdInOrder<T>(set: Set<T>, wanted: readonly T[], held: readonly T[]): void {
  let kept = false;
  for (let i = 0; i < wanted.length && !kept; i++) kept = set.has(wanted[i]!);
  if (kept) set.clear();
  for (let i = 0; i < wanted.length; i++) set.add(wanted[i]!);
  if (kept) return;
  for (let i = 0; i < held.length; i++) set.delete(held[i]!);
}
