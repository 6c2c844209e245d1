/**
 * Xen's `rangeset_printk` form: the name left-justified in 10 columns, ` {`, then each range as a space
 * and `s` or `s-e`, separated by commas, then ` }`. Values are decimal, or lowercase hexadecimal
 * without `0x` when `hex` is set. An empty set prints `name       { }`.
 */
export function formatRangeSet(
  name: string,
  ranges: ReadonlyArray<readonly [number, number]>,
  hex: boolean,
): string {
  const radix = hex ? 16 : 10;
  const items = ranges.map(([s, e]) =>
    s === e ? ` ${s.toString(radix)}` : ` ${s.toString(radix)}-${e.toString(radix)}`,
  );
  return `${name.padEnd(10)} {${items.join(',')} }`;
}
