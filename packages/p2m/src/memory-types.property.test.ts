/**
 * Seed-free properties of the memory-type functions, under the workspace's global fast-check
 * configuration (test/support/fast-check-setup.ts seeds every run; FC_SEED explores others).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  amdEffectiveType,
  combineMtrrWithPat,
  type EmtDomain,
  epteGetEntryEmt,
  gfn,
  intelEffectiveType,
  isSplit,
  MEMORY_TYPES,
  MTRR_TYPES,
  MtrrState,
  mfn,
  mtrrGetType,
  P2M_TYPES,
  paddr,
  type VariableRange,
  variableRange,
} from './index.js';

const memoryType = fc.constantFrom(...MEMORY_TYPES);
const mtrrType = fc.constantFrom(...MTRR_TYPES);

/** A power-of-two variable range (4 KiB … 2^40) at a multiple of its size below 2^52. */
const range: fc.Arbitrary<VariableRange> = fc.integer({ min: 12, max: 40 }).chain((k) =>
  fc.tuple(fc.bigInt(0n, (1n << BigInt(52 - k)) - 1n), mtrrType, fc.boolean()).map(([slot, type, valid]) => {
    const size = 1n << BigInt(k);
    return { ...variableRange(slot * size, size, type), valid };
  }),
);

/** Addresses biased to the interesting places: the first MiB, and near the ranges. */
const address = fc
  .oneof(fc.bigInt(0n, 0xfffffn), fc.bigInt(0n, (1n << 52n) - 1n), fc.bigInt(0n, (1n << 64n) - 1n))
  .map((a) => paddr(a));

const mtrrState: fc.Arbitrary<MtrrState> = fc
  .record({
    enabled: fc.boolean(),
    fixedEnabled: fc.boolean(),
    defaultType: mtrrType,
    fixedRanges: fc.array(mtrrType, { minLength: 88, maxLength: 88 }),
    variableRanges: fc.array(range, { maxLength: 8 }),
  })
  .map((init) => new MtrrState(init));

describe('properties', () => {
  it('with iPAT the effective type is the EPT type, whatever the guest PAT', () => {
    fc.assert(
      fc.property(mtrrType, memoryType, memoryType, (emt, pat1, pat2) => {
        const leaf = { emt, ipat: true };
        expect(intelEffectiveType(leaf, pat1)).toBe(emt);
        expect(intelEffectiveType(leaf, pat1)).toBe(intelEffectiveType(leaf, pat2));
      }),
    );
  });

  it('a guest PAT of UC always gives UC (Intel without iPAT, native, and AMD)', () => {
    fc.assert(
      fc.property(mtrrType, memoryType, mtrrType, (emt, nptHost, hostMtrr) => {
        expect(intelEffectiveType({ emt, ipat: false }, 'UC')).toBe('UC');
        expect(combineMtrrWithPat(emt, 'UC')).toBe('UC');
        expect(amdEffectiveType({ guestPat: 'UC', nptHostType: nptHost, hostMtrr }).type).toBe('UC');
      }),
    );
  });

  it('mtrrGetType at order 0 never asks for a split', () => {
    fc.assert(
      fc.property(mtrrState, address, (state, addr) => {
        expect(isSplit(mtrrGetType(state, addr, 0))).toBe(false);
      }),
    );
  });

  it('without variable ranges, a 2M answer that is not a split holds for each of its 4K pages', () => {
    // Variable ranges are left out because of the QUIRK (a small range decides a whole superpage).
    fc.assert(
      fc.property(
        mtrrState.map((s) => new MtrrState({ ...s, variableRanges: [] })),
        fc.bigInt(0n, (1n << 40n) - 1n),
        fc.integer({ min: 0, max: 511 }),
        (state, addr, page) => {
          const big = mtrrGetType(state, paddr(addr), 9);
          if (isSplit(big)) return;
          const block = addr & ~0x1fffffn;
          expect(mtrrGetType(state, paddr(block + BigInt(page) * 0x1000n), 0)).toBe(big);
        },
      ),
    );
  });

  it('epteGetEntryEmt at order 0 never asks for a split, in either decision order', () => {
    const domain: fc.Arbitrary<EmtDomain> = fc.record({
      iommuEnabled: fc.boolean(),
      hasIoResources: fc.boolean(),
      hasPciDevices: fc.boolean(),
    });
    fc.assert(
      fc.property(
        domain,
        fc.constantFrom(...P2M_TYPES),
        fc.integer({ min: 0, max: 2 ** 40 }).map((g) => gfn(g)),
        fc.integer({ min: 0, max: 2 ** 40 }).map((m) => mfn(m)),
        fc.option(mtrrState, { nil: undefined }),
        mtrrState,
        fc.boolean(),
        fc.boolean(),
        (d, p2mType, g, m, guestMtrr, hostMtrr, specialPageRule, special) => {
          const result = epteGetEntryEmt({
            domain: d,
            p2mType,
            gfn: g,
            mfn: m,
            order: 0,
            guestMtrr,
            hostMtrr,
            specialPages: () => special,
            specialPageRule,
            apicAccessMfn: m,
          });
          expect(isSplit(result)).toBe(false);
        },
      ),
    );
  });
});
