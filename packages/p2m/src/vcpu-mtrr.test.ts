/**
 * `hvm_vcpu_cacheattr_init` (xen/arch/x86/hvm/mtrr.c): the hardware domain's vCPUs start with the
 * host's MTRRs (VCNT from the host's MTRRcap, each fixed and variable MSR set from `mtrr_state`, then
 * MTRRdefType with the host's type, FE and E); a domU's start zeroed (disabled, default UC, 8 pairs).
 */
import { describe, expect, it } from 'vitest';
import { paddr } from './frame.js';
import type { MtrrType } from './memory-type.js';
import { MTRR_VCNT, MtrrState, mtrrGetType, NUM_FIXED_RANGES, variableRange } from './mtrr.js';
import { hardwareDomainMtrr } from './vcpu-mtrr.js';

const fixed = Array.from({ length: NUM_FIXED_RANGES }, (_, i): MtrrType => (i < 16 ? 'WB' : 'UC'));
const host = new MtrrState({
  enabled: true,
  fixedEnabled: true,
  defaultType: 'WB',
  fixedRanges: fixed,
  // A host with 10 variable pairs (MTRRcap.VCNT = 10), more than a domU's 8.
  variableCount: 10,
  variableRanges: [
    variableRange(0xc0000000n, 0x40000000n, 'UC', 46),
    variableRange(0xe0000000n, 0x10000000n, 'WC', 46),
    ...Array(7)
      .fill(undefined)
      .map(() => variableRange(0x0n, 0x1000n, 'WB', 46)),
    variableRange(0x2000000000n, 0x1000000000n, 'WT', 46),
  ],
  physAddrBits: 46,
});

describe('hardwareDomainMtrr (hvm_vcpu_cacheattr_init for the hardware domain)', () => {
  const copy = hardwareDomainMtrr(host);

  it('copies E, FE and the default type (mtrr_def_type_msr_set with the host def_type | FE | E)', () => {
    expect([copy.enabled, copy.fixedEnabled, copy.defaultType]).toEqual([true, true, 'WB']);
  });

  it('copies the 88 fixed types (mtrr_fix_range_msr_set per fixed MSR)', () => {
    expect(copy.fixedRanges).toEqual(fixed);
  });

  it("copies every variable pair, with the host's VCNT (MASK_EXTR(mtrr_state.mtrr_cap, MTRRcap_VCNT))", () => {
    expect(copy.variableCount).toBe(10);
    expect(copy.variableRanges).toEqual(host.variableRanges);
    expect(copy.overlapped).toBe(host.overlapped);
  });

  it("so mtrr_get_type answers as on the host: RAM WB, the UC hole, the overlap's UC, the 10th pair's WT", () => {
    for (const address of [0x1000n, 0x10000000n, 0xd0000000n, 0xe8000000n, 0x2000001000n, 0xa0000n]) {
      expect(mtrrGetType(copy, paddr(address), 0)).toBe(mtrrGetType(host, paddr(address), 0));
    }
    expect(mtrrGetType(copy, paddr(0x10000000n), 0)).toBe('WB');
    expect(mtrrGetType(copy, paddr(0xe8000000n), 0)).toBe('UC');
    expect(mtrrGetType(copy, paddr(0x2000001000n), 0)).toBe('WT');
  });

  it("a domU's vCPU starts zeroed instead (memset): disabled, so everything UC, with MTRR_VCNT pairs", () => {
    const domU = new MtrrState();
    expect([domU.enabled, domU.fixedEnabled, domU.defaultType, domU.variableCount]).toEqual([
      false,
      false,
      'UC',
      MTRR_VCNT,
    ]);
    expect(mtrrGetType(domU, paddr(0x1000n), 0)).toBe('UC');
  });

  it('refuses what is not an MtrrState', () => {
    expect(() => hardwareDomainMtrr({} as MtrrState)).toThrow(/host: expected an MtrrState/);
  });
});
