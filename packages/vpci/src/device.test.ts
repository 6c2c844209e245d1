/**
 * A BAR's addresses and frames: byte addresses are `Paddr`, the host address gives machine frames
 * (`Mfn`), the guest address guest frames (`Gfn`), and the BAR's own shift is the only way between
 * them. The `@ts-expect-error` lines fail the typecheck if a mix ever compiles.
 */
import { type Gfn, gfn, type Mfn, mfn, paddr } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { Bar, type BarType } from './device.js';

/** A 12 KiB memory BAR at host 0xf000_1000, which the guest sees at 0xe000_1000. */
function movedBar(): Bar {
  const bar = new Bar(0);
  bar.type = 'mem32';
  bar.size = 0x3000n;
  bar.addr = paddr(0xf000_1000n);
  bar.guestAddr = paddr(0xe000_1000n);
  return bar;
}

describe('Bar frames', () => {
  it('takes machine frames from the host address and guest frames from the guest address', () => {
    const bar = movedBar();
    // PFN_DOWN of the first and last byte: 0xf000_1000 >> 12 = 0xf0001, 0xf000_3fff >> 12 = 0xf0003.
    expect(bar.hostFrames()).toEqual([0xf0001, 0xf0003]);
    expect(bar.guestFrames()).toEqual([0xe0001, 0xe0003]);
  });

  it('converts between them through its shift, each way (map_range: mfn = PFN_DOWN(addr) + gfn - PFN_DOWN(guest_addr))', () => {
    const bar = movedBar();
    expect(bar.hostFrameOf(gfn(0xe0002))).toBe(0xf0002);
    expect(bar.guestFrameOf(mfn(0xf0003))).toBe(0xe0003);
    // A guest frame before the BAR (a moved guest address, F2) is not clamped: Xen's arithmetic.
    expect(bar.hostFrameOf(gfn(0xe0000))).toBe(0xf0000);
  });

  it('keeps guest and machine frames apart at compile time', () => {
    const bar = movedBar();
    bar.mem = new RangeSet<Gfn>();
    const host: readonly [Mfn, Mfn] = bar.hostFrames();
    // @ts-expect-error machine frames are not guest frames: the set holds the guest frames to map
    bar.mem.addRange(host[0], host[1]);
    // @ts-expect-error a guest frame is not a machine frame either
    bar.guestFrameOf(bar.guestFrames()[0]);
    // @ts-expect-error an address is a Paddr, made by paddr() or read from a BAR, not any bigint
    bar.addr = 0xf000_0000n;
    const plain = new RangeSet();
    // @ts-expect-error the per-BAR set is invariant: a set of plain numbers is not a set of guest frames
    bar.mem = plain;
    // The lines ran all the same (the brands exist only for the compiler).
    expect(bar.mem).toBe(plain);
    expect(bar.addr).toBe(0xf000_0000n);
  });
});

describe('Bar.halfWritten', () => {
  /**
   * The rule as bigints, the straightforward way: the address bits above the size (a 64-bit memory
   * BAR's low 4 bits are its type), per 32-bit half; a half holds the sizing probe when every such
   * bit of it is set (Xen's `bar_write` keeps what was written, so a sizing shows all-ones there).
   */
  function naive(type: BarType, size: bigint, guestAddr: bigint): boolean {
    if (type !== 'mem64lo' || size === 0n) return false;
    const U32 = 0xffffffffn;
    const bits = ~(size - 1n) & ~0xfn & ((1n << 64n) - 1n);
    const probe = (half: bigint, mask: bigint): boolean => mask !== 0n && (half & mask) === mask;
    return probe(guestAddr & U32, bits & U32) !== probe(guestAddr >> 32n, bits >> 32n);
  }

  /** Sizes: powers of two from 16 B to 2^63, a few others; addresses near the probe in either half. */
  const size = fc.oneof(
    fc.integer({ min: 4, max: 63 }).map((n) => 1n << BigInt(n)),
    fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
  );
  const half = fc.oneof(
    fc.constantFrom(0n, 0xffffffffn, 0xfffffff0n, 0xffff0000n, 0x8000_0000n),
    fc.bigInt({ min: 0n, max: 0xffffffffn }),
  );

  it('is the rule worked out in bigints, for any size and address, sizes in any order (its masks are kept per size)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            type: fc.constantFrom<BarType>('mem64lo', 'mem32', 'mem64lo'),
            size,
            high: half,
            low: half,
          }),
          { minLength: 1, maxLength: 6 },
        ),
        (steps) => {
          const bar = new Bar(0);
          for (const { type, size, high, low } of steps) {
            bar.type = type;
            bar.size = size;
            bar.guestAddr = paddr((high << 32n) | low);
            expect(bar.halfWritten, `${type} size ${size} at ${bar.guestAddr}`).toBe(
              naive(type, size, bar.guestAddr),
            );
          }
        },
      ),
      runs(200),
    );
  });
});

describe('Bar.decoded (decodedBars)', () => {
  /** The BAR as each setter would make it, one after the other (decodedBars before `Bar.decoded`). */
  function bySetters(index: number, type: BarType, size: bigint, addr: bigint): Bar {
    const bar = new Bar(index);
    bar.type = type;
    bar.size = size;
    bar.addr = paddr(addr);
    bar.guestAddr = bar.addr;
    return bar;
  }

  /** Everything a BAR tells of itself. */
  function fields(bar: Bar): unknown[] {
    return [
      bar.index,
      bar.type,
      bar.size,
      bar.addr,
      bar.guestAddr,
      bar.halfWritten,
      bar.changes,
      bar.enabled,
      bar.mappable,
      bar.prefetchable,
      bar.mem,
      bar.resizableSizes,
      bar.portsDecoded,
      [...bar.guestFrames()],
      [...bar.hostFrames()],
    ];
  }

  it('is the BAR the setters make, for any memory type, size and address (halfWritten and the change count too)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 6 }),
        fc.constantFrom<BarType>('mem32', 'mem64lo', 'rom'),
        fc.oneof(
          fc.integer({ min: 4, max: 63 }).map((n) => 1n << BigInt(n)),
          fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }),
        ),
        fc.oneof(
          // The probe in either half or both (a sizing in progress), and anywhere.
          fc.constantFrom(0xffff_ffff_ffff_fff0n, 0xffff_ffff_0000_0000n, 0x0000_0000_ffff_fff0n),
          fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        ),
        (index, type, size, addr) => {
          expect(fields(Bar.decoded(index, type, size, paddr(addr)))).toEqual(
            fields(bySetters(index, type, size, addr)),
          );
        },
      ),
      runs(300),
    );
  });
});

describe('Bar.mappable (a flag set with the type)', () => {
  // Xen's header.c maps memory BARs (VPCI_BAR_MEM32, VPCI_BAR_MEM64_LO) and the ROM; I/O, empty
  // slots and 64-bit high halves are not mapped.
  const mapped: Record<BarType, boolean> = {
    empty: false,
    io: false,
    mem32: true,
    mem64lo: true,
    mem64hi: false,
    rom: true,
  };

  it.each(Object.entries(mapped))('%s: %s, set by the type setter and by a decoding', (type, expected) => {
    const bar = new Bar(0);
    expect(bar.mappable).toBe(false);
    bar.type = type as BarType;
    expect(bar.mappable).toBe(expected);
    expect(Bar.decoded(0, type as BarType, 0x1000n, paddr(0xf000_0000n)).mappable).toBe(expected);
  });
});
