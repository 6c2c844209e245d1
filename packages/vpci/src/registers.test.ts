/**
 * The config-space dispatch of Xen's vpci.c: handler registration rules, and accesses of every size at
 * every offset against a byte-level model (invariants 33 and 34).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HardwareAccess, RegisterTable } from './registers.js';

/** Hardware as a byte array, recording every access. */
function fakeHardware(): HardwareAccess & { bytes: Uint8Array; log: string[] } {
  const bytes = new Uint8Array(4096).map((_, i) => (i * 7 + 3) & 0xff);
  const log: string[] = [];
  return {
    bytes,
    log,
    read(reg, size) {
      log.push(`r${reg}/${size}`);
      let value = 0;
      for (let i = size - 1; i >= 0; i--) value = value * 256 + bytes[reg + i]!;
      return value;
    },
    write(reg, size, value) {
      log.push(`w${reg}/${size}`);
      for (let i = 0; i < size; i++) bytes[reg + i] = (value >>> (8 * i)) & 0xff;
    },
  };
}

describe('RegisterTable.add', () => {
  it.each([
    ['size 3', 0x10, 3, {}],
    ['offset beyond 4 KiB', 4096, 4, {}],
    ['offset not aligned to the size', 0x11, 2, {}],
    ['masks sharing a bit', 0x10, 4, { ro: 1, rw1c: 1 }],
    ['a mask wider than the register', 0x10, 1, { ro: 0x100 }],
  ])('refuses %s with EINVAL', (_name, offset, size, masks) => {
    expect(new RegisterTable().add(() => 0, undefined, offset, size, masks)).toEqual({
      ok: false,
      code: 'EINVAL',
    });
  });

  it('refuses a register without handlers, and an overlap with EEXIST', () => {
    const table = new RegisterTable();
    expect(table.add(undefined, undefined, 0x10, 4)).toEqual({ ok: false, code: 'EINVAL' });
    expect(table.add(() => 0, undefined, 0x10, 4)).toEqual({ ok: true });
    expect(table.add(() => 0, undefined, 0x12, 2)).toEqual({ ok: false, code: 'EEXIST' });
    expect(table.add(() => 0, undefined, 0x14, 2)).toEqual({ ok: true });
  });

  it('removes whole registers inside a window, ERANGE on a straddling one', () => {
    const table = new RegisterTable();
    table.add(() => 0, undefined, 0x10, 4);
    table.add(() => 0, undefined, 0x14, 2);
    expect(table.remove(0x10, 5)).toEqual({ ok: false, code: 'ERANGE' });
    expect(table.list().map((r) => r.offset)).toEqual([0x14]); // 0x10 went before the straddle
    expect(table.remove(0x14, 2)).toEqual({ ok: true });
    expect(table.list()).toEqual([]);
  });
});

describe('dispatch', () => {
  it('reads a 3-byte gap as 1 + 2 or 2 + 1 aligned hardware accesses', () => {
    const hardware = fakeHardware();
    const table = new RegisterTable();
    table.add(() => 0xaa, undefined, 0x13, 1);
    table.read(0x10, 4, hardware);
    expect(hardware.log).toEqual(['r16/2', 'r18/1']);
    const odd = new RegisterTable();
    odd.add(() => 0xaa, undefined, 0x10, 1);
    hardware.log.length = 0;
    odd.read(0x10, 4, hardware);
    expect(hardware.log).toEqual(['r17/1', 'r18/2']);
  });

  it('any read equals the bytes of the enclosing dword; reserved bits read 0; RO/RsvdP kept, RsvdZ written 0, RW1C not echoed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.constantFrom(1, 2, 4),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (stored, masksSeed, size, start, data) => {
          const ro = masksSeed & 0x000f;
          const rw1c = masksSeed & 0x00f0;
          const rsvdp = masksSeed & 0x0f00;
          const rsvdz = masksSeed & 0xf000;
          let register = stored;
          const written: number[] = [];
          const table = new RegisterTable();
          table.add(
            () => register,
            (value) => {
              written.push(value);
              register = value;
            },
            0x14,
            2,
            { ro, rw1c, rsvdp, rsvdz },
          );
          const hardware = fakeHardware();
          const reg = 0x10 + start - (start % size);
          // Reads: byte by byte against the emulated register with reserved bits cleared.
          const visible = stored & ~(rsvdp | rsvdz);
          const expected = (offset: number): number =>
            offset === 0x14 ? visible & 0xff : offset === 0x15 ? visible >>> 8 : hardware.bytes[offset]!;
          let want = 0;
          for (let i = size - 1; i >= 0; i--) want = want * 256 + expected(reg + i);
          expect(table.read(reg, size, hardware)).toBe(want);
          // Writes: the handler sees RO/RsvdP bits unchanged, RsvdZ bits as 0 and RW1C bits only as written.
          const value = size === 4 ? data >>> 0 : data & ((1 << (8 * size)) - 1);
          table.write(reg, size, value, hardware);
          const touches = reg <= 0x15 && reg + size > 0x14;
          expect(written.length).toBe(touches ? 1 : 0);
          if (touches) {
            const w = written[0]!;
            expect(w & (ro | rsvdp)).toBe(stored & (ro | rsvdp));
            expect(w & rsvdz).toBe(0);
            const lowWritten = reg <= 0x14 && reg + size > 0x14;
            const highWritten = reg <= 0x15 && reg + size > 0x15;
            const writtenMask = (lowWritten ? 0xff : 0) | (highWritten ? 0xff00 : 0);
            expect(w & rw1c & ~writtenMask).toBe(0);
          }
        },
      ),
    );
  });
});
