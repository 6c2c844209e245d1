/**
 * `msixGuestFrames` / `msixHostFrames` work out the frames of the MSI-X table and PBA in plain numbers
 * from the BAR's remembered frames (asked on every map, unmap and hole punch). The straightforward
 * path is Xen's own arithmetic (`vmsix_table_addr` + `vmsix_table_size`, then `PFN_DOWN` of the first
 * and last byte: header.c's `modify_bars` step B, msix.c): the BIR BAR's address plus the offset as a
 * bigint, and `frameRange` of that. Both must give the same frames for any 64-bit BAR address (sizing
 * probes near 2^64 included), offset (the register's 29 bits) and table size.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { Bar, barAddress, frameRange, type VpciState } from './device.js';
import { msixGuestAddr, msixGuestFrames, msixHostAddr, msixHostFrames, msixSize } from './msix.js';

describe('msixGuestFrames and msixHostFrames against frameRange of the bigint address', () => {
  it('give the frames of vmsix_table_addr … + vmsix_table_size - 1 (modify_bars step B)', () => {
    fc.assert(
      fc.property(
        fc.record({
          bir: fc.integer({ min: 0, max: 5 }),
          guestAddr: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          hostAddr: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          offsets: fc.tuple(fc.nat({ max: 0x1fff_ffff }), fc.nat({ max: 0x1fff_ffff })),
          maxEntries: fc.integer({ min: 1, max: 2048 }),
        }),
        ({ bir, guestAddr, hostAddr, offsets, maxEntries }) => {
          const bars = Array.from({ length: 7 }, (_, i) => new Bar(i));
          const bar = bars[bir]!;
          bar.type = 'mem64lo';
          bar.size = 1n << 12n;
          bar.guestAddr = barAddress(guestAddr);
          bar.addr = barAddress(hostAddr);
          // The offset register keeps the BIR in its low 3 bits (PCI_MSIX_BIRMASK).
          const tables = offsets.map((offset) => ((offset << 3) | bir) >>> 0);
          const vpci = { bars, msix: { tables, maxEntries } } as unknown as VpciState;
          for (const nr of [0, 1]) {
            const size = BigInt(msixSize(maxEntries, nr));
            expect(msixGuestFrames(vpci, nr)).toEqual(frameRange(msixGuestAddr(vpci, nr), size));
            expect(msixHostFrames(vpci, nr)).toEqual(frameRange(msixHostAddr(vpci, nr), size));
          }
        },
      ),
      runs(300),
    );
  });
});
