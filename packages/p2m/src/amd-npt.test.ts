/** AMD NPT leaves (`p2m_type_to_flags`, xen/arch/x86/mm/p2m-pt.c) and the AMD effective type. */
import { RangeSet } from '@vpci/rangeset';
import { describe, expect, it } from 'vitest';
import {
  amdEffectiveType,
  combineAmdGuestHost,
  InvalidArgumentError,
  MEMORY_TYPES,
  type MemoryType,
  type Mfn,
  mfn,
  nptLeafFor,
  type P2mType,
  type PageOrder,
} from './index.js';

describe('nptLeafFor', () => {
  const ro = RangeSet.from<Mfn>([[mfn(0xfed00), mfn(0xfed00)]]);
  // type, extra input, expected leaf (W = writable, X = NX), host type
  const present: ReadonlyArray<readonly [P2mType, object, boolean, boolean, number, MemoryType]> = [
    ['ram_rw', {}, true, false, 0, 'WB'],
    ['ram_ro', {}, false, false, 0, 'WB'],
    ['ram_logdirty', {}, false, false, 0, 'WB'],
    ['ram_shared', {}, false, false, 0, 'WB'],
    ['grant_map_rw', {}, true, true, 0, 'WB'],
    ['map_foreign', {}, true, true, 0, 'WB'],
    ['grant_map_ro', {}, false, true, 0, 'WB'],
    ['ioreq_server', {}, true, true, 0, 'WB'],
    // ioreq_server with writes forwarded: read-only.
    ['ioreq_server', { ioreqWritesForwarded: true }, false, true, 0, 'WB'],
    // mmio_direct: PCD → host PAT entry 2 = UC-.
    ['mmio_direct', { mmioRo: ro }, true, false, 2, 'UC-'],
    // mmio_direct of a read-only MFN: PCD+PWT → entry 3 = UC, read-only.
    ['mmio_direct', { mmioRo: ro, mfn: mfn(0xfed00) }, false, false, 3, 'UC'],
  ];
  it.each(present)('%s %o → present', (p2mType, extra, writable, noExecute, index, hostType) => {
    const leaf = nptLeafFor({ p2mType, mfn: mfn(0xe0000), ...extra });
    expect(leaf).toMatchObject({ present: true, writable, noExecute, hostPatIndex: index, hostType });
  });

  it.each([
    'invalid',
    'mmio_dm',
    'populate_on_demand',
    'ram_paging_out',
    'ram_paged',
    'ram_paging_in',
    'ram_broken',
  ] as const)('%s → not present', (p2mType) => {
    expect(nptLeafFor({ p2mType, mfn: mfn(0) })).toEqual({ present: false });
  });

  it('uses the host PAT given', () => {
    const pat = ['WB', 'WT', 'UC', 'UC', 'WC', 'WP', 'UC', 'UC'] as const;
    expect(nptLeafFor({ p2mType: 'mmio_direct', mfn: mfn(1), hostPat: pat })).toMatchObject({
      hostType: 'UC',
    });
  });

  it('throws for a superpage of read-only MMIO (Xen asserts 4K) and bad arguments', () => {
    expect(() => nptLeafFor({ p2mType: 'mmio_direct', mfn: mfn(0xfed00), order: 9, mmioRo: ro })).toThrow(
      'order: expected 0: Xen maps read-only MMIO in 4K leaves only, got 9',
    );
    expect(() => nptLeafFor({ p2mType: 'ram_rw', mfn: mfn(0), order: 3 as PageOrder })).toThrow(
      InvalidArgumentError,
    );
    expect(() => nptLeafFor({ p2mType: 'x' as P2mType, mfn: mfn(0) })).toThrow('p2mType');
    expect(() => nptLeafFor({ p2mType: 'ram_rw', mfn: 1.5 as Mfn })).toThrow('mfn: expected a frame number');
  });
});

describe('combineAmdGuestHost', () => {
  it.each(MEMORY_TYPES)('verified: guest %s × host UC → UC, host UC × guest → UC', (t) => {
    expect(combineAmdGuestHost(t, 'UC')).toEqual({ type: 'UC', verified: true });
    expect(combineAmdGuestHost('UC', t)).toEqual({ type: 'UC', verified: true });
  });

  it.each(MEMORY_TYPES.filter((t) => t !== 'UC'))('verified: guest %s × host WB → the guest type', (t) => {
    expect(combineAmdGuestHost(t, 'WB')).toEqual({ type: t, verified: true });
  });

  it.each([
    // Our choices for UNVERIFIED cells: equal → it; guest WB → host; other mixes → UC.
    ['WC', 'WC', 'WC'],
    ['UC-', 'UC-', 'UC-'],
    ['WB', 'UC-', 'UC-'],
    ['WB', 'WT', 'WT'],
    ['WC', 'UC-', 'UC'],
    ['WT', 'WP', 'UC'],
  ] as const)('UNVERIFIED: guest %s × host %s → %s (our choice)', (g, h, type) => {
    expect(combineAmdGuestHost(g, h)).toEqual({ type, verified: false });
  });
});

describe('amdEffectiveType', () => {
  it.each([
    // guest PAT, NPT host type, host MTRR → effective, combined, verified
    ['WB', 'WB', 'WB', 'WB', 'WB', true], // RAM with a WB guest mapping
    ['UC', 'WB', 'WB', 'UC', 'UC', true], // guest chose UC: UC
    ['UC-', 'WB', 'WB', 'UC', 'UC-', true], // UC- with MTRR WB: UC
    ['WC', 'WB', 'WB', 'WC', 'WC', true], // guest WC survives host WB
    ['UC-', 'WB', 'WC', 'WC', 'UC-', true], // UC- lets an MTRR WC through
    ['WB', 'UC-', 'UC', 'UC', 'UC-', false], // passthrough MMIO, guest WB: UC (via our guest-WB choice)
    ['WC', 'UC-', 'UC', 'UC', 'UC', false], // guest WC × UC-: UNVERIFIED, we say UC
  ] as const)(
    'guest %s, NPT %s, host MTRR %s → %s',
    (guestPat, nptHostType, hostMtrr, type, combined, verified) => {
      expect(amdEffectiveType({ guestPat, nptHostType, hostMtrr })).toEqual({ type, combined, verified });
    },
  );

  it('validates its inputs', () => {
    expect(() => amdEffectiveType({ guestPat: 'WB', nptHostType: 'WB', hostMtrr: 'UC-' as 'UC' })).toThrow(
      'hostMtrr: expected an MTRR type',
    );
  });
});
