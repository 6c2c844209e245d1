/**
 * `Machine.memoryType`. Expected EPT types and iPAT follow Xen's `epte_get_entry_emt`
 * (xen/arch/x86/mm/p2m-ept.c), step by step; the NPT leaf's cache bits follow `p2m_type_to_flags`
 * (xen/arch/x86/mm/p2m-pt.c) read through Xen's host PAT (WB, WT, UC-, UC, …); the effective type of
 * a type combined with a PAT type follows the Intel SDM's table of effective memory types (vol. 3,
 * "Selecting Memory Types for Pentium III and More Recent Processor Families"; with iPAT clear EPT's
 * type stands in for the MTRR's) and, on AMD, the APM's nested-paging rules (either side UC gives UC,
 * a host WB keeps the guest's type).
 */
import { gfn, type MemoryType, MtrrState, mfn, type P2mType, variableRange } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { Machine, type MachineOptions } from './machine.js';

/** Guest frame and machine frame of the page every case looks at (above 1 MiB: no fixed MTRRs). */
const GFN = 0xc0000;
const MFN = 0xf0000;

/** A booted machine with guest d1 mapping GFN → MFN with `type`; the answer for an access through `pat`. */
function answer(
  options: MachineOptions & { readonly guestMtrr?: MtrrState; readonly p2mType?: P2mType },
  pat: MemoryType,
  setUp: (machine: Machine) => void = () => {},
): ReturnType<Machine['memoryType']> {
  const { guestMtrr, p2mType = 'ram_rw', ...machineOptions } = options;
  const machine = new Machine(machineOptions);
  machine.boot();
  const guest = machine.createGuest(guestMtrr === undefined ? {} : { mtrr: guestMtrr });
  expect(guest.p2m.setEntry(gfn(GFN), 0, mfn(MFN), p2mType).ok).toBe(true);
  setUp(machine);
  return machine.memoryType(guest.id, GFN, pat);
}

const wbGuest = new MtrrState({ enabled: true, defaultType: 'WB' });

describe('Machine.memoryType on Intel (epte_get_entry_emt)', () => {
  it('a frame that maps nothing has no memory type', () => {
    // Xen's lookup of a guest frame with no entry reports p2m_mmio_dm (`ept_get_entry`).
    const machine = new Machine();
    machine.boot();
    const guest = machine.createGuest();
    expect(machine.memoryType(guest.id, GFN, 'WB')).toEqual({
      mapped: false,
      why: 'gfn 0xc0000 is not mapped (mmio_dm)',
    });
  });

  it('no IOMMU and no I/O resources: RAM is WB with iPAT, whatever the PAT says', () => {
    // "type != p2m_mmio_direct && !is_iommu_enabled(d) && !cache_flush_permitted(d)": WB, ipat.
    const found = answer({ iommu: false }, 'UC');
    expect(found).toMatchObject({ mapped: true, type: 'WB', ipat: true });
    expect(found.why).toContain('no-iommu-no-io');
  });

  it('no IOMMU, but MMIO: that step passes mmio_direct by, which is UC without iPAT', () => {
    // Then "case p2m_mmio_direct: return X86_MT_UC" (ipat false); EPT UC with PAT WB is UC.
    const found = answer({ iommu: false, p2mType: 'mmio_direct' }, 'WB');
    expect(found).toMatchObject({ mapped: true, type: 'UC', ipat: false });
    expect(found.why).toContain('mmio-direct');
  });

  it('no IOMMU, but I/O memory permitted: the MTRRs decide (a guest with MTRRs off is UC)', () => {
    // cache_flush_permitted(d) holds, so on to mtrr_get_type: MTRRs disabled give UC for the guest,
    // the host says WB, and "either type is UC" gives UC.
    const found = answer({ iommu: false }, 'WB', (machine) => machine.permitIomem(1, mfn(MFN), mfn(MFN)));
    expect(found).toMatchObject({ mapped: true, type: 'UC', ipat: false });
    expect(found.why).toContain('rule mtrr');
  });

  it('a special page is WB with iPAT', () => {
    // "if ( special_pgs ) { … *ipat = true; return X86_MT_WB; }" (all of a 4K leaf is special).
    const found = answer({}, 'UC', (machine) => machine.specialPages.addRange(mfn(MFN), mfn(MFN)));
    expect(found).toMatchObject({ mapped: true, type: 'WB', ipat: true });
    expect(found.why).toContain('special-page');
  });

  it('a grant mapping is WB with iPAT', () => {
    // "case p2m_grant_map_rw: … *ipat = true; return X86_MT_WB;"
    const found = answer({ p2mType: 'grant_map_rw' }, 'UC');
    expect(found).toMatchObject({ mapped: true, type: 'WB', ipat: true });
  });

  it("RAM of a guest and host both WB is WB without iPAT: the guest's PAT type then applies", () => {
    // "gmtrr_mtype == hmtrr_mtype": WB; EPT WB with PAT WC is WC.
    expect(answer({ guestMtrr: wbGuest }, 'WC')).toMatchObject({ mapped: true, type: 'WC', ipat: false });
  });

  it('guest WT with host WP combine to WP', () => {
    // "The only combination that can be cleanly resolved is WT:WP": WP; EPT WP with PAT WB is WP.
    const found = answer(
      {
        guestMtrr: new MtrrState({ enabled: true, defaultType: 'WT' }),
        hostMtrr: new MtrrState({ enabled: true, defaultType: 'WP' }),
      },
      'WB',
    );
    expect(found).toMatchObject({ mapped: true, type: 'WP', ipat: false });
  });

  it("the host MTRR's UC range over the machine frame wins over the guest's WB", () => {
    const hostMtrr = new MtrrState({
      enabled: true,
      defaultType: 'WB',
      variableRanges: [variableRange(0xf000_0000n, 0x1000_0000n, 'UC')],
    });
    expect(answer({ guestMtrr: wbGuest, hostMtrr }, 'WB')).toMatchObject({
      mapped: true,
      type: 'UC',
      ipat: false,
    });
  });
});

describe('Machine.memoryType on AMD (p2m_type_to_flags, guest PAT, host MTRR)', () => {
  const amd = { vendor: 'amd' } as const;

  it("RAM has no cache bits (host WB): the guest's PAT type stands, its MTRRs take no part", () => {
    // Guest MTRRs off would make it UC on Intel; NPT WB keeps the guest's WC; host MTRR WB keeps it.
    const found = answer(amd, 'WC');
    expect(found).toMatchObject({ mapped: true, type: 'WC', ipat: false });
    expect(found.why).toBe('AMD: NPT WB, host MTRR WB');
  });

  it('MMIO gets PCD (host UC-); a UC access stays UC', () => {
    // "case p2m_mmio_direct: … flags |= _PAGE_RW | _PAGE_UCM": host PAT entry 2, UC-.
    const found = answer({ ...amd, p2mType: 'mmio_direct' }, 'UC');
    expect(found).toMatchObject({ mapped: true, type: 'UC', ipat: false });
    expect(found.why).toBe('AMD: NPT UC-, host MTRR WB');
  });

  it("the host MTRR's UC range over the machine frame makes a WB access UC", () => {
    const hostMtrr = new MtrrState({
      enabled: true,
      defaultType: 'WB',
      variableRanges: [variableRange(0xf000_0000n, 0x1000_0000n, 'UC')],
    });
    expect(answer({ ...amd, hostMtrr }, 'WB')).toMatchObject({ mapped: true, type: 'UC', ipat: false });
  });
});

describe("the hardware domain's MTRRs (hvm_vcpu_cacheattr_init copies the host's)", () => {
  /** dom0's RAM at gfn = mfn `frame`, and the answer for an access to it through `pat`. */
  function dom0Answer(options: MachineOptions, frame: number, pat: MemoryType) {
    const machine = new Machine(options);
    machine.boot();
    expect(machine.hardwareDomain.p2m.setEntry(gfn(frame), 0, mfn(frame), 'ram_rw').ok).toBe(true);
    return machine.memoryType(0, frame, pat);
  }
  const hostMtrr = new MtrrState({
    enabled: true,
    defaultType: 'WB',
    variableRanges: [variableRange(0xd000_0000n, 0x1000_0000n, 'WC')],
  });

  it('ordinary dom0 RAM is WB, as the host says: guest (copied) WB and host WB agree', () => {
    // epte_get_entry_emt: dom0 may use I/O memory (cache_flush_permitted), so on to the MTRRs:
    // mtrr_get_type of dom0's vCPU (the host's copy) WB, of the host WB: "gmtrr_mtype ==
    // hmtrr_mtype", WB, no iPAT. Before the copy dom0's MTRRs were off and this was UC.
    expect(dom0Answer({ hostMtrr }, 0x1000, 'WB')).toMatchObject({ mapped: true, type: 'WB', ipat: false });
  });

  it("dom0 RAM under the host's WC range is WC (both sides WC)", () => {
    expect(dom0Answer({ hostMtrr }, 0xd0000, 'WB')).toMatchObject({ mapped: true, type: 'WC', ipat: false });
  });

  it('MTRRs dom0 reprogrammed (hardwareMtrr) are used instead of the copy', () => {
    // Guest UC (MTRRs off) against host WB: "either type is UC" gives UC.
    expect(dom0Answer({ hostMtrr, hardwareMtrr: new MtrrState() }, 0x1000, 'WB')).toMatchObject({
      type: 'UC',
      ipat: false,
    });
  });

  it("a guest's vCPUs do not get the copy: their MTRRs start disabled (UC)", () => {
    const machine = new Machine({ hostMtrr });
    expect(machine.hardwareDomain.mtrr.enabled).toBe(true);
    expect(machine.createGuest().mtrr.enabled).toBe(false);
  });
});

describe('per-domain IOMMU (is_iommu_enabled(d))', () => {
  it('a guest without an IOMMU on a host with one: RAM is WB with iPAT (epte_get_entry_emt)', () => {
    // "!is_iommu_enabled(d) && !cache_flush_permitted(d)": WB + iPAT, whatever the MTRRs (off: UC).
    const machine = new Machine();
    machine.boot();
    const guest = machine.createGuest({ iommu: false });
    guest.p2m.setEntry(gfn(GFN), 0, mfn(MFN), 'ram_rw');
    expect(machine.memoryType(guest.id, GFN, 'UC')).toMatchObject({ type: 'WB', ipat: true });
    // The same guest with an IOMMU (the default here) goes on to its MTRRs: off, so UC.
    expect(answer({}, 'WB')).toMatchObject({ type: 'UC', ipat: false });
  });

  it('assigning a device to a guest without an IOMMU is EOPNOTSUPP (iommu_do_domctl)', () => {
    const machine = new Machine();
    machine.addDevice({ sbdf: '00:03.0', bars: [{ type: 'mem32', size: 0x1000n, addr: 0xfe000000n }] });
    machine.boot();
    const guest = machine.createGuest({ iommu: false });
    expect(machine.assignDevice('00:03.0', guest.id)).toEqual({ ok: false, code: 'EOPNOTSUPP' });
    expect(machine.device('00:03.0').domain).toBe(machine.hardwareDomain);
    const withIommu = machine.createGuest();
    expect(machine.assignDevice('00:03.0', withIommu.id)).toEqual({ ok: true });
  });

  it('a host without an IOMMU: guests have none, and one asking for it is refused (domain creation EINVAL)', () => {
    const machine = new Machine({ iommu: false });
    machine.boot();
    expect(machine.hardwareDomain.iommu).toBe(false);
    expect(machine.createGuest().iommu).toBe(false);
    expect(() => machine.createGuest({ iommu: true })).toThrow(/iommu.*the host has no IOMMU/);
  });
});

describe('shadow paging (hap: false)', () => {
  it('memory types are not modelled: asking throws rather than answer with the EPT rules', () => {
    const machine = new Machine();
    machine.boot();
    const guest = machine.createGuest({ p2m: { hap: false } });
    guest.p2m.setEntry(gfn(GFN), 0, mfn(MFN), 'ram_rw');
    expect(() => machine.memoryType(guest.id, GFN, 'WB')).toThrow(/shadow paging are not modelled/);
  });
});
