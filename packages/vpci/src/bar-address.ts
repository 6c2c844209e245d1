/**
 * The check every memory BAR description shares (a BAR of `DeviceSpec.bars`, a VF BAR of
 * `SriovSpec.vfBars`): its address is a bigint aligned to its size (a BAR decodes naturally aligned),
 * and the BAR ends within the address width its type gives (32-bit BARs below 4 GiB).
 */
import { InvalidArgumentError } from '@vpci/p2m';

/**
 * Returns `addr` (default 0n) when it is a bigint aligned to `size` with `addr + size` at most 2^64
 * for a 64-bit BAR (`wide`), 2^32 otherwise; throws naming `argument` and `what` (the size it must
 * be aligned to, as the message says it).
 */
export function checkBarAddress(
  argument: string,
  addr: unknown,
  size: bigint,
  wide: boolean,
  what = 'the size',
): bigint {
  const value = addr ?? 0n;
  const limit = wide ? 1n << 64n : 1n << 32n;
  if (typeof value !== 'bigint' || value < 0n || value % size !== 0n || value + size > limit) {
    throw new InvalidArgumentError(
      argument,
      value,
      `a bigint aligned to ${what}, below ${wide ? '2^64' : '2^32'}`,
    );
  }
  return value;
}
