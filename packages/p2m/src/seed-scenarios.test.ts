/**
 * The seed scenarios 000 and 001: a grant-table frame (a Xen-heap "special" page, p2m
 * type ram_rw) that the guest placed inside the Xen platform device's ("xenpci") 16 MiB BAR at the top
 * of the low MMIO hole, 0xFB00_0000. Seeds: 000 (hvmloader keeps the xenpci BAR out of the UC MTRRs)
 * and 001 (Xen sets iPAT for special pages).
 *
 * Guest: hvmloader's MTRRs, default WB, UC variable ranges over the PCI hole
 *   - by default [0xF000_0000, 0xFC00_0000): F000_0000/128M + F800_0000/64M, so the BAR is UC;
 *   - with seed 000 (`xen_platform_pci_bar_uc=0`) [0xF000_0000, 0xFB00_0000): F000_0000/128M +
 *     F800_0000/32M + FA00_0000/16M, so the BAR falls under the default WB.
 * Host: MTRR default WB (the grant-table frame is host RAM), UC over [3 GiB, 4 GiB) (host MMIO).
 * Linux maps the grant table with memremap(WB); its PAT layer downgrades to UC when the guest MTRR
 * says UC, so "Linux's PAT choice" is UC under a UC MTRR and WB otherwise.
 */
import { RangeSet } from '@vpci/rangeset';
import { describe, expect, it } from 'vitest';
import {
  amdEffectiveType,
  type EmtDomain,
  type EmtInput,
  epteGetEntryEmt,
  frameAddress,
  type Gfn,
  gfn,
  gfnOfAddress,
  intelEffectiveType,
  isSplit,
  MEMORY_TYPES,
  type MemoryType,
  type Mfn,
  MtrrState,
  type MtrrType,
  mfn,
  mtrrGetType,
  nptLeafFor,
  paddr,
  variableRange,
} from './index.js';

const MiB = 0x100000n;
const XENPCI_BAR = paddr(0xfb00_0000n); // 16 MiB, top of the low hole
const GRANT_GFN = gfnOfAddress(XENPCI_BAR); // first page of the BAR
const GRANT_MFN = mfn(0x23400); // a Xen-heap page in host RAM
const PASSTHROUGH_GFN = gfn(0xf0000); // a passthrough device BAR at 0xF000_0000 in the guest
const PASSTHROUGH_MFN = mfn(0xe0000); // its host address 0xE000_0000 (host MMIO, host MTRR UC)

const hvmloaderFixed = new Array<MtrrType>(88).fill('WB');
/** hvmloader's guest MTRRs with the default `xen_platform_pci_bar_uc=1`. */
const guestDefault = new MtrrState({
  enabled: true,
  fixedEnabled: true,
  defaultType: 'WB',
  fixedRanges: hvmloaderFixed,
  variableRanges: [
    variableRange(0xf000_0000n, 128n * MiB, 'UC'),
    variableRange(0xf800_0000n, 64n * MiB, 'UC'),
  ],
});
/** With seed 000 and `xen_platform_pci_bar_uc=0`: the xenpci BAR is left out of the UC ranges. */
const guestSeed000 = new MtrrState({
  enabled: true,
  fixedEnabled: true,
  defaultType: 'WB',
  fixedRanges: hvmloaderFixed,
  variableRanges: [
    variableRange(0xf000_0000n, 128n * MiB, 'UC'),
    variableRange(0xf800_0000n, 32n * MiB, 'UC'),
    variableRange(0xfa00_0000n, 16n * MiB, 'UC'),
  ],
});
const hostMtrr = new MtrrState({
  enabled: true,
  defaultType: 'WB',
  variableRanges: [variableRange(0xc000_0000n, 0x4000_0000n, 'UC')],
});
const specialPages = RangeSet.from<Mfn>([[GRANT_MFN, GRANT_MFN]]);

const iommuOff: EmtDomain = { iommuEnabled: false, hasIoResources: false, hasPciDevices: false };
const iommuOn: EmtDomain = { iommuEnabled: true, hasIoResources: false, hasPciDevices: true };

/** Linux's PAT choice for memremap(WB) of the frame at `gfn`: UC where its MTRR says UC, else WB. */
const linuxPat = (guestMtrr: MtrrState, frame: Gfn): MemoryType =>
  mtrrGetType(guestMtrr, frameAddress(frame), 0) === 'UC' ? 'UC' : 'WB';

const intel = (over: Partial<EmtInput>): EmtInput => ({
  domain: iommuOn,
  p2mType: 'ram_rw',
  gfn: GRANT_GFN,
  mfn: GRANT_MFN,
  order: 0,
  guestMtrr: guestDefault,
  hostMtrr,
  specialPages,
  ...over,
});

describe('the xenpci BAR under both hvmloader MTRR layouts', () => {
  it('is UC by default and WB with seed 000', () => {
    expect(mtrrGetType(guestDefault, XENPCI_BAR, 0)).toBe('UC');
    expect(mtrrGetType(guestDefault, paddr(XENPCI_BAR + 16n * MiB - 0x1000n), 0)).toBe('UC');
    expect(mtrrGetType(guestSeed000, XENPCI_BAR, 0)).toBe('WB');
    // The rest of the hole stays UC with seed 000.
    expect(mtrrGetType(guestSeed000, paddr(XENPCI_BAR - 0x1000n), 0)).toBe('UC');
  });
});

describe('seeds 000 and 001: grant-table frame in the xenpci BAR', () => {
  // (a) Intel, no IOMMU and no I/O resources: step 2, WB + iPAT; every guest PAT type gives WB.
  it('(a) Intel, IOMMU off: WB + iPAT → WB whatever the guest PAT', () => {
    const leaf = epteGetEntryEmt(intel({ domain: iommuOff }));
    expect(leaf).toEqual({ emt: 'WB', ipat: true, rule: 'no-iommu-no-io' });
    if (isSplit(leaf)) throw new Error('unexpected split');
    for (const pat of MEMORY_TYPES) expect(intelEffectiveType(leaf, pat)).toBe('WB');
  });

  // (b1) IOMMU on, current Xen: step 2 is skipped; step 3 (the frame is special): WB + iPAT.
  it('(b1) Intel, IOMMU on, current Xen: special page → WB + iPAT → WB', () => {
    const leaf = epteGetEntryEmt(intel({}));
    expect(leaf).toEqual({ emt: 'WB', ipat: true, rule: 'special-page' });
    if (isSplit(leaf)) throw new Error('unexpected split');
    for (const pat of MEMORY_TYPES) expect(intelEffectiveType(leaf, pat)).toBe('WB');
  });

  // (b2) Before seed 001: no special-page rule; step 7: guest UC (BAR in the UC range) × host WB = UC.
  it('(b2) Intel, IOMMU on, Xen before seed 001: UC without iPAT → Linux UC → UC', () => {
    const leaf = epteGetEntryEmt(intel({ specialPageRule: false }));
    expect(leaf).toEqual({ emt: 'UC', ipat: false, rule: 'mtrr' });
    if (isSplit(leaf)) throw new Error('unexpected split');
    expect(linuxPat(guestDefault, GRANT_GFN)).toBe('UC');
    expect(intelEffectiveType(leaf, linuxPat(guestDefault, GRANT_GFN))).toBe('UC');
    // Row UC of the table: only a guest PAT of WC escapes.
    expect(intelEffectiveType(leaf, 'WB')).toBe('UC');
    expect(intelEffectiveType(leaf, 'WC')).toBe('WC');
  });

  // (b3) As b2 with seed 000: guest WB (default type) × host WB = WB, no iPAT; the guest PAT decides.
  it('(b3) as b2 with the xenpci BAR not UC: WB without iPAT → Linux WB → WB', () => {
    const leaf = epteGetEntryEmt(intel({ specialPageRule: false, guestMtrr: guestSeed000 }));
    expect(leaf).toEqual({ emt: 'WB', ipat: false, rule: 'mtrr' });
    if (isSplit(leaf)) throw new Error('unexpected split');
    expect(linuxPat(guestSeed000, GRANT_GFN)).toBe('WB');
    expect(intelEffectiveType(leaf, linuxPat(guestSeed000, GRANT_GFN))).toBe('WB');
    expect(intelEffectiveType(leaf, 'UC')).toBe('UC'); // a guest asking for UC still gets it
  });

  // (c) AMD: the NPT leaf of ram_rw is WB, the host MTRR of the frame WB; the guest PAT decides, and
  // Linux picks UC (or UC-) under the UC MTRR: 1.1 Gb/s in the seed.
  it('(c) AMD, PCI hole UC: NPT WB, Linux UC → UC', () => {
    const leaf = nptLeafFor({ p2mType: 'ram_rw', mfn: GRANT_MFN });
    expect(leaf).toMatchObject({ present: true, writable: true, hostType: 'WB' });
    const host = mtrrGetType(hostMtrr, frameAddress(GRANT_MFN), 0) as MtrrType;
    expect(host).toBe('WB');
    const pat = linuxPat(guestDefault, GRANT_GFN);
    expect(amdEffectiveType({ guestPat: pat, nptHostType: 'WB', hostMtrr: host })).toEqual({
      type: 'UC',
      combined: 'UC',
      verified: true,
    });
    // UC- (what Linux may pick instead) gives UC too under host MTRR WB.
    expect(amdEffectiveType({ guestPat: 'UC-', nptHostType: 'WB', hostMtrr: host }).type).toBe('UC');
  });

  // (d) AMD with seed 000: the BAR is default WB in the guest MTRR, Linux picks WB: 4.5 Gb/s.
  it('(d) AMD, seed 000: Linux WB → WB', () => {
    const pat = linuxPat(guestSeed000, GRANT_GFN);
    expect(pat).toBe('WB');
    expect(amdEffectiveType({ guestPat: pat, nptHostType: 'WB', hostMtrr: 'WB' })).toEqual({
      type: 'WB',
      combined: 'WB',
      verified: true,
    });
  });

  // No seed changes anything on AMD's NPT side: the leaf is the same in (c) and (d).
  it('seed 001 does nothing on AMD: the NPT leaf does not depend on special pages', () => {
    expect(nptLeafFor({ p2mType: 'ram_rw', mfn: GRANT_MFN })).toEqual(
      nptLeafFor({ p2mType: 'ram_rw', mfn: mfn(1) }),
    );
  });
});

describe('seeds 000 and 001: contrast cases', () => {
  // Another domain's page mapped by grant into the same BAR (not a special page of this domain).
  it('grant_map_rw in the BAR, Intel current Xen with IOMMU: step 5 → WB + iPAT', () => {
    const leaf = epteGetEntryEmt(intel({ p2mType: 'grant_map_rw', mfn: mfn(0x45600) }));
    expect(leaf).toEqual({ emt: 'WB', ipat: true, rule: 'grant-or-foreign' });
  });

  it('grant_map_rw in the BAR, Intel before seed 001: no grant rule → UC via the MTRRs', () => {
    const leaf = epteGetEntryEmt(
      intel({ p2mType: 'grant_map_rw', mfn: mfn(0x45600), specialPageRule: false }),
    );
    expect(leaf).toEqual({ emt: 'UC', ipat: false, rule: 'mtrr' });
  });

  it('grant_map_rw in the BAR, AMD: NPT WB (RW, NX); the guest PAT decides', () => {
    const leaf = nptLeafFor({ p2mType: 'grant_map_rw', mfn: mfn(0x45600) });
    expect(leaf).toMatchObject({ present: true, writable: true, noExecute: true, hostType: 'WB' });
    expect(
      amdEffectiveType({ guestPat: linuxPat(guestDefault, GRANT_GFN), nptHostType: 'WB', hostMtrr: 'WB' })
        .type,
    ).toBe('UC');
    expect(amdEffectiveType({ guestPat: 'WB', nptHostType: 'WB', hostMtrr: 'WB' }).type).toBe('WB');
  });

  it('passthrough BAR (mmio_direct), Intel: UC without iPAT; the guest can still get WC', () => {
    const leaf = epteGetEntryEmt(
      intel({ p2mType: 'mmio_direct', gfn: PASSTHROUGH_GFN, mfn: PASSTHROUGH_MFN }),
    );
    expect(leaf).toEqual({ emt: 'UC', ipat: false, rule: 'mmio-direct' });
    if (isSplit(leaf)) throw new Error('unexpected split');
    expect(intelEffectiveType(leaf, 'WC')).toBe('WC'); // a framebuffer mapped WC
    expect(intelEffectiveType(leaf, 'WB')).toBe('UC');
    expect(intelEffectiveType(leaf, 'UC-')).toBe('UC');
  });

  it('passthrough BAR (mmio_direct), AMD: NPT UC-, host MTRR UC → uncached for guest WB or UC', () => {
    const leaf = nptLeafFor({ p2mType: 'mmio_direct', mfn: PASSTHROUGH_MFN });
    expect(leaf).toMatchObject({ present: true, writable: true, hostPatIndex: 2, hostType: 'UC-' });
    const host = mtrrGetType(hostMtrr, frameAddress(PASSTHROUGH_MFN), 0) as MtrrType;
    expect(host).toBe('UC');
    expect(amdEffectiveType({ guestPat: 'UC', nptHostType: 'UC-', hostMtrr: host })).toEqual({
      type: 'UC',
      combined: 'UC',
      verified: true,
    });
    // Guest WB × host UC-: the cell is UNVERIFIED; with our choice (UC-) and host MTRR UC it is UC.
    expect(amdEffectiveType({ guestPat: 'WB', nptHostType: 'UC-', hostMtrr: host })).toEqual({
      type: 'UC',
      combined: 'UC-',
      verified: false,
    });
    // Guest WC × host UC-: UNVERIFIED (see DESIGN.md); our conservative choice gives UC.
    expect(amdEffectiveType({ guestPat: 'WC', nptHostType: 'UC-', hostMtrr: host }).verified).toBe(false);
  });
});
