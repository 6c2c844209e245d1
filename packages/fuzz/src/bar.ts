/**
 * BAR size generators: the sizes of the BARs a machine's devices have, from 16 bytes (sub-page,
 * packed into shared pages) to 64 GiB.
 */
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
