/**
 * PAT: the reset and host values, entry selection, and the MTRR (or EPT) × PAT table (the SDM's, as
 * Xen's `mm_type_tbl` in xen/arch/x86/hvm/mtrr.c holds it), every cell.
 */
import { describe, expect, it } from 'vitest';
import {
  combineEptWithPat,
  combineMtrrWithPat,
  createPat,
  InvalidArgumentError,
  intelEffectiveType,
  MEMORY_TYPES,
  type MemoryType,
  MTRR_TYPES,
  type MtrrType,
  PAT_POWER_ON,
  patFromMsr,
  patIndex,
  patToMsr,
  patType,
  XEN_HOST_PAT,
} from './index.js';

describe('PAT values', () => {
  it('power-on value, as Xen gives each HVM vCPU', () => {
    expect(PAT_POWER_ON).toEqual(['WB', 'WT', 'UC-', 'UC', 'WB', 'WT', 'UC-', 'UC']);
    expect(patToMsr(PAT_POWER_ON)).toBe(0x0007_0406_0007_0406n);
  });

  it("Xen's host PAT (XEN_MSR_PAT)", () => {
    expect(XEN_HOST_PAT).toEqual(['WB', 'WT', 'UC-', 'UC', 'WC', 'WP', 'UC', 'UC']);
    expect(patToMsr(XEN_HOST_PAT)).toBe(0x0000_0501_0007_0406n);
  });

  it('round-trips through the MSR value', () => {
    expect(patFromMsr(0x0007_0406_0007_0406n)).toEqual(PAT_POWER_ON);
    expect(patFromMsr(patToMsr(createPat(['WC', 'WP', 'UC', 'UC-', 'WB', 'WT', 'WC', 'WB'])))).toEqual([
      'WC',
      'WP',
      'UC',
      'UC-',
      'WB',
      'WT',
      'WC',
      'WB',
    ]);
  });

  it.each([
    // entry 3 = 2 (reserved), entry 7 = 8 (out of range), entry 0 = 0xff
    [0x0000_0000_0200_0000n, 'pat[3]: expected a PAT memory type encoding: 0, 1, 4, 5, 6 or 7, got 2'],
    [0x0800_0000_0000_0000n, 'pat[7]: expected a PAT memory type encoding: 0, 1, 4, 5, 6 or 7, got 8'],
    [0xffn, 'pat[0]: expected a PAT memory type encoding: 0, 1, 4, 5, 6 or 7, got 255'],
  ])('patFromMsr(%s) throws naming the bad entry', (msr, message) => {
    expect(() => patFromMsr(msr)).toThrow(InvalidArgumentError);
    expect(() => patFromMsr(msr)).toThrow(message);
  });

  it('createPat validates entries and length', () => {
    expect(() => createPat(['WB'])).toThrow('entries: expected an array of 8 memory types');
    expect(() => createPat([...PAT_POWER_ON.slice(0, 7), 'XX' as MemoryType])).toThrow(
      'entries[7]: expected a memory type',
    );
  });
});

describe('patIndex: PAT*4 + PCD*2 + PWT', () => {
  it.each([
    // pat, pcd, pwt → index → power-on type
    [false, false, false, 0, 'WB'],
    [false, false, true, 1, 'WT'],
    [false, true, false, 2, 'UC-'],
    [false, true, true, 3, 'UC'],
    [true, false, false, 4, 'WB'],
    [true, false, true, 5, 'WT'],
    [true, true, false, 6, 'UC-'],
    [true, true, true, 7, 'UC'],
  ] as const)('PAT=%s PCD=%s PWT=%s → %i (%s)', (pat, pcd, pwt, index, type) => {
    expect(patIndex({ pat, pcd, pwt })).toBe(index);
    expect(patType(PAT_POWER_ON, { pat, pcd, pwt })).toBe(type);
  });

  it('refuses non-boolean bits', () => {
    expect(() => patIndex({ pat: 1 as unknown as boolean, pcd: false, pwt: false })).toThrow(
      'pat: expected true or false, got 1',
    );
  });
});

describe('MTRR/EPT × PAT (SDM table, Xen mm_type_tbl)', () => {
  // Rows: MTRR or EPT type; columns: PAT UC, WC, WT, WP, WB, UC-.
  const table: Record<MtrrType, readonly MtrrType[]> = {
    UC: ['UC', 'WC', 'UC', 'UC', 'UC', 'UC'],
    WC: ['UC', 'WC', 'UC', 'UC', 'WC', 'WC'],
    WT: ['UC', 'WC', 'WT', 'WP', 'WT', 'UC'],
    WP: ['UC', 'WC', 'WT', 'WP', 'WP', 'WC'],
    WB: ['UC', 'WC', 'WT', 'WP', 'WB', 'UC'],
  };
  const cells = MTRR_TYPES.flatMap((row) =>
    MEMORY_TYPES.map((col, i) => [row, col, table[row][i]!] as const),
  );

  it.each(cells)('%s × PAT %s = %s', (row, col, expected) => {
    expect(combineMtrrWithPat(row, col)).toBe(expected);
    expect(combineEptWithPat(row, col)).toBe(expected);
    // iPAT clear: the table; iPAT set: the EPT type alone.
    expect(intelEffectiveType({ emt: row, ipat: false }, col)).toBe(expected);
    expect(intelEffectiveType({ emt: row, ipat: true }, col)).toBe(row);
  });

  it('refuses UC- as an MTRR or EPT type', () => {
    expect(() => combineMtrrWithPat('UC-' as MtrrType, 'WB')).toThrow('mtrr: expected an MTRR type');
    expect(() => combineEptWithPat('UC-' as MtrrType, 'WB')).toThrow('emt: expected an MTRR type');
    expect(() => intelEffectiveType({ emt: 'WB', ipat: false }, 'X' as MemoryType)).toThrow(
      'guestPat: expected a memory type',
    );
  });
});
