/** p2m types and their classes, as xen/arch/x86/include/asm/p2m.h defines them. */
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  isAnyRam,
  isForeign,
  isGrant,
  isHole,
  isMmio,
  isP2mType,
  isPod,
  isRam,
  isReadonly,
  isSpecial,
  P2M_TYPES,
  type P2mType,
  p2mTypeCode,
} from './index.js';

// Each row: type, Xen's value, then membership in ram, hole, grant, mmio, special, readonly, anyRam.
const rows: ReadonlyArray<readonly [P2mType, number, string]> = [
  ['ram_rw', 0, 'ram anyRam'],
  ['invalid', 1, 'hole'],
  ['ram_logdirty', 2, 'ram readonly anyRam'],
  ['ram_ro', 3, 'ram readonly anyRam'],
  ['mmio_dm', 4, 'hole mmio'],
  ['mmio_direct', 5, 'mmio special'],
  ['populate_on_demand', 6, 'pod'],
  ['grant_map_rw', 7, 'grant special anyRam'],
  ['grant_map_ro', 8, 'grant special readonly anyRam'],
  ['ram_paging_out', 9, 'ram anyRam'],
  ['ram_paged', 10, 'ram hole anyRam'],
  ['ram_paging_in', 11, 'ram hole anyRam'],
  ['ram_shared', 12, 'ram readonly anyRam'],
  ['ram_broken', 13, ''],
  ['map_foreign', 14, 'special foreign anyRam'],
  ['ioreq_server', 15, 'ram anyRam'],
];

describe('p2m types', () => {
  it('lists all 16 in Xen order', () => {
    expect(P2M_TYPES).toEqual(rows.map(([t]) => t));
  });

  it.each(rows)('%s = %i, classes: %s', (type, code, classes) => {
    const has = (c: string): boolean => classes.split(' ').includes(c);
    expect(p2mTypeCode(type)).toBe(code);
    expect(isP2mType(type)).toBe(true);
    expect(isRam(type)).toBe(has('ram'));
    expect(isHole(type)).toBe(has('hole'));
    expect(isGrant(type)).toBe(has('grant'));
    expect(isMmio(type)).toBe(has('mmio'));
    expect(isSpecial(type)).toBe(has('special'));
    expect(isReadonly(type)).toBe(has('readonly'));
    expect(isAnyRam(type)).toBe(has('anyRam'));
    expect(isPod(type)).toBe(has('pod'));
    expect(isForeign(type)).toBe(has('foreign'));
  });

  it('refuses an unknown type, naming it', () => {
    expect(isP2mType('ram')).toBe(false);
    expect(() => isRam('ram' as P2mType)).toThrow(InvalidArgumentError);
    expect(() => p2mTypeCode('mmio' as P2mType)).toThrow('type: expected a p2m type');
  });
});
