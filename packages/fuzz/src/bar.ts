/**
 * BAR generators for the property tests: the sizes of the BARs a machine's devices have, from 16
 * bytes (sub-page, packed into shared pages) to 64 GiB.
 */
import type { BarSpec } from '@vpci/vpci';
import fc from 'fast-check';

/** log2 of a memory BAR's size for the engine's devices: mostly small (sub-page included), some large, 64 GiB rarely. */
export const barSizeLog2: fc.Arbitrary<number> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 4, max: 14 }) },
  { weight: 3, arbitrary: fc.integer({ min: 15, max: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom(30, 36) },
);

/** log2 of a 32-bit memory BAR's size in a replayed trace: 16 bytes to 4 MiB, half of them sub-page. */
export const traceBarSizeLog2: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 4, max: 13 }),
  fc.integer({ min: 14, max: 22 }),
);

/** A power of two `2^min … 2^max`, as a bigint. */
export const pow2 = (min: number, max: number): fc.Arbitrary<bigint> =>
  fc.integer({ min, max }).map((e) => 1n << BigInt(e));

/**
 * One BAR slot's contents for the firmware's placement, its address not set yet (a 64-bit BAR also
 * takes the next slot). Two profiles: mostly registers (small BARs, the common case),
 * or apertures (`large`), which overflow the low hole and, with a 36-bit guest, the high window.
 */
export function firmwareBar(large: boolean): fc.Arbitrary<BarSpec> {
  return fc.oneof(
    {
      weight: 3,
      arbitrary: pow2(large ? 22 : 4, large ? 28 : 16).map((size) => ({ type: 'mem32' as const, size })),
    },
    { weight: 1, arbitrary: pow2(20, 28).map((size) => ({ type: 'mem32' as const, size })) },
    {
      weight: 3,
      arbitrary: pow2(large ? 24 : 4, 34).map((size) => ({
        type: 'mem64' as const,
        size,
        prefetchable: true,
      })),
    },
    { weight: 2, arbitrary: pow2(2, 8).map((size) => ({ type: 'io' as const, size })) },
  );
}
