/**
 * `epteGetEntryEmt`, rule by rule in Xen's order (xen/arch/x86/mm/p2m-ept.c `epte_get_entry_emt`),
 * then the decision order before seed 001 (Xen at ca24b2ffdb^).
 */
import { RangeSet } from '@vpci/rangeset';
import { describe, expect, it } from 'vitest';
import {
  combineGuestHostMtrr,
  type EmtDomain,
  type EmtInput,
  type EmtResult,
  epteGetEntryEmt,
  type Gfn,
  gfn,
  InvalidArgumentError,
  type Mfn,
  MTRR_TYPES,
  MtrrState,
  type MtrrType,
  mfn,
  type P2mType,
  type PageOrder,
  variableRange,
} from './index.js';

const MiB = 0x100000n;

/** Host: default WB, UC over [3 GiB, 4 GiB) (the host MMIO hole). */
const hostMtrr = new MtrrState({
  enabled: true,
  defaultType: 'WB',
  variableRanges: [variableRange(0xc000_0000n, 0x4000_0000n, 'UC')],
});
/** Guest: hvmloader's default, WB with the PCI hole [0xF000_0000, 0xFC00_0000) UC; fixed ranges on. */
const guestMtrr = new MtrrState({
  enabled: true,
  fixedEnabled: true,
  defaultType: 'WB',
  fixedRanges: new Array<MtrrType>(88).fill('WB'),
  variableRanges: [
    variableRange(0xf000_0000n, 128n * MiB, 'UC'),
    variableRange(0xf800_0000n, 64n * MiB, 'UC'),
  ],
});

const noIo: EmtDomain = { iommuEnabled: false, hasIoResources: false, hasPciDevices: false };
const iommu: EmtDomain = { iommuEnabled: true, hasIoResources: false, hasPciDevices: false };
const ioOnly: EmtDomain = { iommuEnabled: false, hasIoResources: true, hasPciDevices: false };
const pciOnly: EmtDomain = { iommuEnabled: false, hasIoResources: false, hasPciDevices: true };

const RAM_GFN = gfn(0x1000); // guest RAM, guest MTRR WB
const HOLE_GFN = gfn(0xf1000); // in the guest PCI hole, guest MTRR UC
const RAM_MFN = mfn(0x23400); // host RAM, host MTRR WB
const MMIO_MFN = mfn(0xe0000); // host MMIO, host MTRR UC

const base = (over: Partial<EmtInput>): EmtInput => ({
  domain: iommu,
  p2mType: 'ram_rw',
  gfn: RAM_GFN,
  mfn: RAM_MFN,
  order: 0,
  guestMtrr,
  hostMtrr,
  ...over,
});

const ok = (emt: MtrrType, ipat: boolean, rule: string): EmtResult => ({ emt, ipat, rule }) as EmtResult;
const split = (rule: string): EmtResult => ({ split: true, rule }) as EmtResult;

describe('current Xen, step by step', () => {
  const ro = RangeSet.from<Mfn>([
    [mfn(0x200), mfn(0x3ff)],
    [mfn(0x5000), mfn(0x5000)],
  ]);
  const special = RangeSet.from<Mfn>([
    [mfn(0x8000), mfn(0x81ff)],
    [mfn(0x9000), mfn(0x9000)],
  ]);
  const cases: ReadonlyArray<readonly [string, Partial<EmtInput>, EmtResult]> = [
    // 1. mmio_ro_ranges: checked first, even before the no-IOMMU rule.
    [
      '1: 4K MFN in mmio_ro → UC + iPAT',
      { mfn: mfn(0x5000), mmioRo: ro, domain: noIo },
      ok('UC', true, 'mmio-ro'),
    ],
    [
      '1: 2M block wholly in mmio_ro → UC + iPAT',
      { mfn: mfn(0x200), order: 9, mmioRo: ro },
      ok('UC', true, 'mmio-ro'),
    ],
    ['1: 2M block partly in mmio_ro → split', { mfn: mfn(0x5000), order: 9, mmioRo: ro }, split('mmio-ro')],
    // Xen ORs the order mask in: mfn 0x201 at order 9 looks at [0x201, 0x3ff], all inside {0x200-0x3ff}.
    [
      '1: unaligned MFN, block end by OR',
      { mfn: mfn(0x201), order: 9, mmioRo: ro },
      ok('UC', true, 'mmio-ro'),
    ],
    // 2. No IOMMU, no I/O resources, no PCI device, not mmio_direct: WB + iPAT, even in the UC hole.
    [
      '2: RAM, no IOMMU, no I/O → WB + iPAT',
      { domain: noIo, gfn: HOLE_GFN },
      ok('WB', true, 'no-iommu-no-io'),
    ],
    [
      '2: grant, no IOMMU, no I/O → WB + iPAT',
      { domain: noIo, p2mType: 'grant_map_rw' },
      ok('WB', true, 'no-iommu-no-io'),
    ],
    // ...not for mmio_direct (goes on to step 4)...
    [
      '2: skipped for mmio_direct',
      { domain: noIo, p2mType: 'mmio_direct', mfn: MMIO_MFN },
      ok('UC', false, 'mmio-direct'),
    ],
    // ...nor when the domain has I/O resources or a PCI device (goes on to step 7: guest UC).
    ['2: skipped with I/O resources', { domain: ioOnly, gfn: HOLE_GFN }, ok('UC', false, 'mtrr')],
    ['2: skipped with a PCI device', { domain: pciOnly, gfn: HOLE_GFN }, ok('UC', false, 'mtrr')],
    // 3. Special pages (set form): all → WB + iPAT, some → split.
    [
      '3: special 4K page in the UC hole → WB + iPAT',
      { gfn: HOLE_GFN, mfn: mfn(0x9000), specialPages: special },
      ok('WB', true, 'special-page'),
    ],
    [
      '3: 2M block all special → WB + iPAT',
      { gfn: gfn(0xf1200), mfn: mfn(0x8000), order: 9, specialPages: special },
      ok('WB', true, 'special-page'),
    ],
    [
      '3: 2M block partly special → split',
      { mfn: mfn(0x9000), order: 9, specialPages: special },
      split('special-page'),
    ],
    // Predicate form: the same answers.
    [
      '3: predicate, one page',
      { mfn: mfn(7), specialPages: (m: number) => m === 7 },
      ok('WB', true, 'special-page'),
    ],
    [
      '3: predicate, some of a 2M block',
      { mfn: mfn(0x200), order: 9, specialPages: (m: number) => m === 0x3ff },
      split('special-page'),
    ],
    [
      '3: predicate, all of a 2M block',
      { mfn: mfn(0x200), order: 9, specialPages: () => true },
      ok('WB', true, 'special-page'),
    ],
    // Special pages win over the p2m type (e.g. the APIC access page, mapped mmio_direct).
    [
      '3: special page mapped mmio_direct → WB + iPAT',
      { p2mType: 'mmio_direct', mfn: mfn(0x9000), specialPages: special },
      ok('WB', true, 'special-page'),
    ],
    [
      '3: no special page in the block → on to 7',
      { mfn: RAM_MFN, specialPages: special },
      ok('WB', false, 'mtrr'),
    ],
    // 4. mmio_direct: UC without iPAT (guest PAT still combines).
    ['4: mmio_direct → UC', { p2mType: 'mmio_direct', mfn: MMIO_MFN }, ok('UC', false, 'mmio-direct')],
    [
      '4: mmio_direct 2M → UC',
      { p2mType: 'mmio_direct', mfn: MMIO_MFN, order: 9 },
      ok('UC', false, 'mmio-direct'),
    ],
    // 5. Grants and foreign maps: WB + iPAT, even in the UC hole with an IOMMU.
    [
      '5: grant_map_rw → WB + iPAT',
      { p2mType: 'grant_map_rw', gfn: HOLE_GFN },
      ok('WB', true, 'grant-or-foreign'),
    ],
    [
      '5: grant_map_ro → WB + iPAT',
      { p2mType: 'grant_map_ro', gfn: HOLE_GFN },
      ok('WB', true, 'grant-or-foreign'),
    ],
    [
      '5: map_foreign → WB + iPAT',
      { p2mType: 'map_foreign', gfn: HOLE_GFN },
      ok('WB', true, 'grant-or-foreign'),
    ],
    // 6. Pinned: full → its type + iPAT (UC- stored as UC); partial → split.
    [
      '6: pinned WC',
      { pinned: [{ gfnStart: RAM_GFN, gfnEnd: RAM_GFN, type: 'WC' }] },
      ok('WC', true, 'pinned'),
    ],
    [
      '6: pinned UC- → UC',
      { pinned: [{ gfnStart: gfn(0), gfnEnd: gfn(0xfffff), type: 'UC-' }] },
      ok('UC', true, 'pinned'),
    ],
    [
      '6: pinned partly over a 2M block → split',
      { order: 9, pinned: [{ gfnStart: RAM_GFN, gfnEnd: RAM_GFN, type: 'WB' }] },
      split('pinned'),
    ],
    [
      '6: pinned elsewhere → on to 7',
      { pinned: [{ gfnStart: gfn(0x50000), gfnEnd: gfn(0x50000), type: 'WC' }] },
      ok('WB', false, 'mtrr'),
    ],
    // 7. Guest MTRR with host MTRR.
    ['7: guest WB, host WB → WB', {}, ok('WB', false, 'mtrr')],
    ['7: guest UC (PCI hole), host WB → UC', { gfn: HOLE_GFN }, ok('UC', false, 'mtrr')],
    ['7: guest WB, host UC → UC', { mfn: MMIO_MFN }, ok('UC', false, 'mtrr')],
    ['7: no vCPU counts as guest WB', { gfn: HOLE_GFN, guestMtrr: undefined }, ok('WB', false, 'mtrr')],
    [
      '7: 2M in the guest hole → UC',
      { gfn: gfn(0xf0000), mfn: mfn(0x23400), order: 9 },
      ok('UC', false, 'mtrr'),
    ],
    // A 2M block at gfn 0 covers the guest's fixed ranges: guest split → split.
    ['7: guest MTRR split → split', { gfn: gfn(0), order: 9, mfn: mfn(0x23400) }, split('mtrr')],
    // A 1G host block [3 GiB, 4 GiB) is UC; [2 GiB, 3 GiB) is WB; a block mixing... host split:
    [
      '7: host MTRR split → split',
      {
        order: 9,
        mfn: mfn(0x23400),
        hostMtrr: new MtrrState({
          enabled: true,
          defaultType: 'WB',
          variableRanges: [
            variableRange(0x2340_0000n, 2n * MiB, 'WB'),
            variableRange(0x2340_0000n, 0x1000n, 'UC'),
          ],
        }),
      },
      split('mtrr'),
    ],
  ];
  it.each(cases)('%s', (_name, over, expected) => {
    expect(epteGetEntryEmt(base(over))).toEqual(expected);
  });
});

describe('step 7: guest × host MTRR combination (Xen, not the SDM table)', () => {
  const expected = (g: MtrrType, h: MtrrType): MtrrType => {
    if (g === h) return g;
    if (g === 'UC' || h === 'UC') return 'UC';
    if (g === 'WB') return h;
    if (h === 'WB') return g;
    return (g === 'WT' && h === 'WP') || (g === 'WP' && h === 'WT') ? 'WP' : 'UC';
  };
  const cells = MTRR_TYPES.flatMap((g) => MTRR_TYPES.map((h) => [g, h] as const));
  it.each(cells)('guest %s × host %s', (g, h) => {
    expect(combineGuestHostMtrr(g, h)).toBe(expected(g, h));
  });
  it('spot checks', () => {
    expect(combineGuestHostMtrr('WT', 'WP')).toBe('WP');
    expect(combineGuestHostMtrr('WC', 'WT')).toBe('UC'); // WC with WT or WP: UC
    expect(combineGuestHostMtrr('WB', 'WC')).toBe('WC');
  });
});

describe('before seed 001 (specialPageRule: false)', () => {
  const special = RangeSet.from<Mfn>([[mfn(0x9000), mfn(0x9000)]]);
  const old = (over: Partial<EmtInput>): EmtInput => base({ specialPageRule: false, ...over });
  const cases: ReadonlyArray<readonly [string, Partial<EmtInput>, EmtResult]> = [
    // mmio_ro still first.
    [
      'mmio_ro first',
      { mfn: mfn(0x5000), mmioRo: RangeSet.from<Mfn>([[mfn(0x5000), mfn(0x5000)]]) },
      ok('UC', true, 'mmio-ro'),
    ],
    // No special-page rule: a special page in the UC hole with an IOMMU ends in step 7 → UC.
    [
      'special page in the UC hole → UC (no iPAT)',
      { gfn: HOLE_GFN, mfn: mfn(0x9000), specialPages: special },
      ok('UC', false, 'mtrr'),
    ],
    // mmio_direct: UC, except the APIC access page.
    ['mmio_direct → UC', { p2mType: 'mmio_direct', mfn: MMIO_MFN }, ok('UC', false, 'mmio-direct')],
    [
      'mmio_direct of the APIC page → WB + iPAT',
      { p2mType: 'mmio_direct', mfn: mfn(0xfee00), apicAccessMfn: mfn(0xfee00) },
      ok('WB', true, 'apic-access-page'),
    ],
    [
      '2M mmio_direct holding the APIC page → split',
      { p2mType: 'mmio_direct', mfn: mfn(0xfee00), order: 9, apicAccessMfn: mfn(0xfee05) },
      split('apic-access-page'),
    ],
    [
      '2M mmio_direct not holding it → UC',
      { p2mType: 'mmio_direct', mfn: mfn(0xfe000), order: 9, apicAccessMfn: mfn(0xfee05) },
      ok('UC', false, 'mmio-direct'),
    ],
    // mmio_direct is decided before the no-IOMMU rule.
    [
      'mmio_direct with no IOMMU → UC',
      { domain: noIo, p2mType: 'mmio_direct', mfn: MMIO_MFN },
      ok('UC', false, 'mmio-direct'),
    ],
    // MFN without a frame-table entry → UC + iPAT, before the no-IOMMU rule.
    ['MFN not valid → UC + iPAT', { domain: noIo, isValidMfn: () => false }, ok('UC', true, 'mfn-not-valid')],
    // No IOMMU and no I/O → WB + iPAT.
    ['no IOMMU, no I/O → WB + iPAT', { domain: noIo, gfn: HOLE_GFN }, ok('WB', true, 'no-iommu-no-io')],
    // No grant rule: a grant in the UC hole with an IOMMU → UC via the MTRRs.
    ['grant in the UC hole → UC', { p2mType: 'grant_map_rw', gfn: HOLE_GFN }, ok('UC', false, 'mtrr')],
    // Pinned and MTRR as now.
    ['pinned', { pinned: [{ gfnStart: RAM_GFN, gfnEnd: RAM_GFN, type: 'WT' }] }, ok('WT', true, 'pinned')],
    ['MTRR', {}, ok('WB', false, 'mtrr')],
  ];
  it.each(cases)('%s', (_name, over, expected) => {
    expect(epteGetEntryEmt(old(over))).toEqual(expected);
  });
});

describe('validation', () => {
  const bad: ReadonlyArray<readonly [string, Partial<EmtInput>, string]> = [
    ['p2m type', { p2mType: 'ram' as P2mType }, 'p2mType: expected a p2m type'],
    ['order', { order: 10 as PageOrder }, 'order: expected a page order: 0 (4K), 9 (2M) or 18 (1G), got 10'],
    // The casts stand for untyped JavaScript callers: the checks stay at run time.
    ['gfn ≥ 2^52', { gfn: (2 ** 52) as Gfn }, 'gfn: expected a frame number'],
    ['negative mfn', { mfn: -1 as Mfn }, 'mfn: expected a frame number'],
    ['host MTRR', { hostMtrr: {} as MtrrState }, 'hostMtrr: expected an MtrrState'],
    ['guest MTRR', { guestMtrr: null as unknown as MtrrState }, 'guestMtrr: expected an MtrrState'],
    [
      'domain flag',
      { domain: { iommuEnabled: true } as EmtDomain },
      'domain.hasIoResources: expected true or false',
    ],
    [
      'special pages',
      { specialPages: [1, 2] as unknown as RangeSet<Mfn> },
      'specialPages: expected a RangeSet of MFNs or a predicate',
    ],
    ['mmio_ro', { mmioRo: [] as unknown as RangeSet<Mfn> }, 'mmioRo: expected a RangeSet of MFNs'],
    ['switch', { specialPageRule: 'yes' as unknown as boolean }, 'specialPageRule: expected true or false'],
    ['pinned list', { pinned: [{ gfnStart: gfn(2), gfnEnd: gfn(1), type: 'WB' }] }, 'ranges[0].gfnEnd'],
  ];
  it.each(bad)('throws for a bad %s', (_name, over, message) => {
    expect(() => epteGetEntryEmt(base(over))).toThrow(InvalidArgumentError);
    expect(() => epteGetEntryEmt(base(over))).toThrow(message);
  });
});
