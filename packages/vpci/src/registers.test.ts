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

describe('RegisterTable.writeIfInert', () => {
  /**
   * A table with the cases the one-step path must tell apart: a handler whose `mapping` depends on the
   * merged value (bit 0 of the whole register, with RO bits to merge), one that never maps, one that
   * always does, a one-byte handler with a gap after it, and gaps where `barRegisters` places a BAR
   * (0x18 … 0x1b) or nothing.
   */
  function table(log: string[], stored: { command: number }): RegisterTable {
    const made = new RegisterTable();
    made.add(
      () => stored.command,
      (value) => {
        log.push(`command ${value}`);
        stored.command = value;
      },
      0x04,
      2,
      { ro: 0xff00 },
      (value) => (value & 1) !== 0,
    );
    made.add(
      () => 0x1234,
      (value) => log.push(`status ${value}`),
      0x06,
      2,
      { rw1c: 0xf900 },
      false,
    );
    made.add(
      () => 0,
      (value) => log.push(`bar ${value}`),
      0x10,
      4,
      {},
      true,
    );
    made.add(
      () => 0x5a,
      (value) => log.push(`line ${value}`),
      0x1c,
      1,
      {},
      false,
    );
    return made;
  }
  const barRegisters = { placesBars: (reg: number, size: number) => reg < 0x1c && reg + size > 0x18 };

  it('makes a write exactly when writeTargets calls it inert, as write makes it (Xen vpci_write)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 4),
        fc.integer({ min: 0, max: 0x1f }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.boolean(),
        (size, start, data, command, placing) => {
          const reg = start - (start % size);
          const value = size === 4 ? data : data & ((1 << (8 * size)) - 1);
          const bars = placing ? barRegisters : undefined;
          // The model: the general walk's decision (`writeTargets`), then Xen's `vpci_write` (`write`).
          const wantLog: string[] = [];
          const want = table(wantLog, { command });
          const wantHardware = fakeHardware();
          const targets = want.writeTargets(reg, size, value);
          const inert = !targets.mapping && !(targets.hardware && bars?.placesBars(reg, size) === true);
          if (inert) want.write(reg, size, value, wantHardware);
          const gotLog: string[] = [];
          const gotHardware = fakeHardware();
          expect(table(gotLog, { command }).writeIfInert(reg, size, value, bars, gotHardware)).toBe(inert);
          expect(gotLog).toEqual(wantLog);
          expect(gotHardware.log).toEqual(wantHardware.log);
          expect(gotHardware.bytes).toEqual(wantHardware.bytes);
        },
      ),
    );
  });
});
