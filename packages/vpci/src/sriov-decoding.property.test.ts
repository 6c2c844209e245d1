/**
 * `VfDecoding`'s shortcuts for a whole-array VF MSE flip (sriov-decoding.ts) against a naive model of
 * its bytes: `allFlipAlone` answered from a count of the VFs that flip alone (not a pass over their
 * flags), `flipAll` filling the bytes at once when they are all the same, and `wholeCover` handing out
 * one answer until a VF is attached or detached. The model keeps each
 * VF's bits and flags as plain values and answers every question by a pass over them, as the array
 * did before the shortcuts. After every step of random attaches, detaches, MSI-X and withheld-page
 * notes, sizings (`sizedAnew`, `madeCurrent`), single-VF flips and whole-array flips: the same bytes,
 * the same BAR and decoding counts, the same `allFlipAlone` answer for every count, and `wholeCover`
 * of VFs 0 … the highest attached (when all are) those VFs, their indexes and a 1 for each by index.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { PACKED_MAPPED, type SriovState, type VpciState } from './device.js';
import type { PciDevice } from './domain.js';
import { VfDecoding } from './sriov-decoding.js';

/** VF indexes the steps use: enough for gaps, few enough that VFs 0 … n are often all attached. */
const VFS = 4;

type Step =
  /** `n` `'next'`: the lowest VF not attached (VFs come in order, as VF Enable adds them). */
  | { kind: 'attach'; n: number | 'next'; enabled: number; mapped: boolean; msix: boolean; current: boolean }
  | { kind: 'detach'; n: number }
  | { kind: 'note'; n: number; what: 'msix' | 'withheld'; present: boolean }
  | { kind: 'sizedAnew' }
  | { kind: 'madeCurrent'; n: number }
  | { kind: 'setBits' | 'flipVf'; n: number; mask: number; on: boolean }
  /** `'all'`: every VF up to the highest attached (the engine's one whole-array flip). */
  | { kind: 'flipAll'; count: number | 'all'; mask: number; map: boolean };

const n = fc.nat(VFS - 1);
const mask = fc.nat(0x3f);
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('attach' as const),
    n: fc.oneof(n, fc.constant('next' as const), fc.constant('next' as const)),
    enabled: mask,
    mapped: fc.boolean(),
    msix: fc.boolean(),
    current: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('detach' as const), n }),
  fc.record({
    kind: fc.constant('note' as const),
    n,
    what: fc.constantFrom('msix' as const, 'withheld' as const),
    present: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('sizedAnew' as const) }),
  fc.record({ kind: fc.constant('madeCurrent' as const), n }),
  fc.record({ kind: fc.constantFrom('setBits' as const, 'flipVf' as const), n, mask, on: fc.boolean() }),
  fc.record({ kind: fc.constant('flipAll' as const), count: fc.nat(VFS), mask, map: fc.boolean() }),
  // Whole-array flips weighted up, with the slots of the VF BARs: they are what the shortcuts serve.
  ...Array.from({ length: 6 }, () =>
    fc.record({
      kind: fc.constant('flipAll' as const),
      count: fc.constant('all' as const),
      mask: fc.constantFrom(0b101, 0x3f),
      map: fc.boolean(),
    }),
  ),
);

/** VFs 0 … the highest attached: a whole-array flip's count. */
function wholeCount(model: readonly (ModelVf | undefined)[]): number {
  let count = 0;
  for (let i = 0; i < model.length; i++) if (model[i] !== undefined) count = i + 1;
  return count;
}

/** The VF an attach step is of. */
function attachedAt(model: readonly (ModelVf | undefined)[], s: Extract<Step, { kind: 'attach' }>): number {
  if (s.n !== 'next') return s.n;
  let i = 0;
  while (model[i] !== undefined) i++;
  return i;
}

/** One VF as the model keeps it: undefined when not attached. */
interface ModelVf {
  device: PciDevice;
  bits: number;
  msix: boolean;
  withheld: boolean;
  current: boolean;
}

const GENERATION = 3;

/** A VF and its vPCI state, as much of them as `attach` reads. */
function fakeVf(s: Extract<Step, { kind: 'attach' }>, at: number): { vf: PciDevice; vpci: VpciState } {
  const vpci = {
    barsMapped: s.mapped,
    bars: Array.from({ length: 6 }, (_, i) => ({ enabled: (s.enabled & (1 << i)) !== 0 })),
    msix: s.msix ? {} : undefined,
    withheld: undefined,
    vfBarsGeneration: s.current ? GENERATION : GENERATION - 1,
    pack: () => undefined,
  };
  return { vf: { vfIndex: at } as unknown as PciDevice, vpci: vpci as unknown as VpciState };
}

const popcount = (b: number): number => [...b.toString(2)].filter((c) => c === '1').length;

/** The model's step: each VF's values changed one by one. */
function modelStep(model: (ModelVf | undefined)[], s: Step, attached: PciDevice | undefined): void {
  switch (s.kind) {
    case 'attach':
      model[attachedAt(model, s)] = {
        device: attached!,
        bits: s.enabled | (s.mapped ? PACKED_MAPPED : 0),
        msix: s.msix,
        withheld: false,
        current: s.current,
      };
      return;
    case 'detach':
      model[s.n] = undefined;
      return;
    case 'note':
      if (model[s.n] !== undefined) model[s.n]![s.what] = s.present;
      return;
    case 'sizedAnew':
      for (const vf of model) if (vf !== undefined) vf.current = false;
      return;
    case 'madeCurrent':
      if (model[s.n] !== undefined) model[s.n]!.current = true;
      return;
    case 'setBits':
    case 'flipVf': {
      const vf = model[s.n]!;
      const flip = s.kind === 'setBits' ? s.mask : s.mask | PACKED_MAPPED;
      vf.bits = s.on ? vf.bits | flip : vf.bits & ~flip;
      return;
    }
    case 'flipAll':
      for (let i = 0; i < (s.count === 'all' ? wholeCount(model) : s.count); i++) {
        const vf = model[i]!;
        vf.bits = s.map ? vf.bits | s.mask | PACKED_MAPPED : vf.bits & ~s.mask & ~PACKED_MAPPED;
      }
  }
}

/**
 * The array's step, where the model can take it (flips only of attached VFs, as the engine asks): what
 * it attached, or undefined when not taken.
 */
function arrayStep(
  array: VfDecoding,
  model: readonly (ModelVf | undefined)[],
  s: Step,
): { attached?: PciDevice } | undefined {
  switch (s.kind) {
    case 'attach': {
      const at = attachedAt(model, s);
      if (model[at] !== undefined) return undefined;
      const { vf, vpci } = fakeVf(s, at);
      array.attach(vf, vpci);
      return { attached: vf };
    }
    case 'detach':
      array.detach(s.n);
      return {};
    case 'note':
      if (model[s.n] === undefined) return undefined;
      array.noted(s.n, s.what, s.present);
      return {};
    case 'sizedAnew':
      array.sizedAnew();
      return {};
    case 'madeCurrent':
      array.madeCurrent(s.n);
      return {};
    case 'setBits':
      if (model[s.n] === undefined) return undefined;
      array.setBits(s.n, s.mask, s.on);
      return {};
    case 'flipVf':
      if (model[s.n] === undefined) return undefined;
      array.flipVf(s.n, s.mask, s.on);
      return {};
    case 'flipAll': {
      const count = s.count === 'all' ? wholeCount(model) : s.count;
      for (let i = 0; i < count; i++) if (model[i] === undefined) return undefined;
      array.flipAll(count, s.mask, s.map);
      return {};
    }
  }
}

describe('VfDecoding: whole-array shortcuts against a pass over each VF', () => {
  it('the same bytes, counts and allFlipAlone answers after every step', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 20, maxLength: 60 }), (steps) => {
        const sriov = { generation: GENERATION, vfBars: [] } as unknown as SriovState;
        const context = { policy: { mapVfBarRanges: true } };
        const array = new VfDecoding(context, {} as PciDevice, sriov);
        const model: (ModelVf | undefined)[] = [];
        for (const [at, s] of steps.entries()) {
          const done = arrayStep(array, model, s);
          if (done === undefined) continue;
          modelStep(model, s, done.attached);
          const where = `after step ${at} (${JSON.stringify(s)})`;
          const attached = model.flatMap((vf) => (vf === undefined ? [] : [vf]));
          for (let i = 0; i < VFS; i++)
            expect(i < array.length ? array.bits[i] : 0, `${where}: VF ${i}'s bits`).toBe(
              model[i]?.bits ?? 0,
            );
          expect(array.onBars, `${where}: enabled BARs`).toBe(
            attached.reduce((sum, vf) => sum + popcount(vf.bits & 0x3f), 0),
          );
          expect(array.mappedCount, `${where}: VFs decoding`).toBe(
            attached.filter((vf) => (vf.bits & PACKED_MAPPED) !== 0).length,
          );
          const noMsix = attached.every((vf) => !vf.msix);
          for (let count = 0; count <= VFS; count++) {
            let alone = noMsix;
            for (let i = 0; i < count; i++)
              alone &&= model[i] !== undefined && model[i]!.current && !model[i]!.msix;
            expect(array.allFlipAlone(count), `${where}: VFs 0 … ${count - 1} flip alone`).toBe(alone);
          }
          const whole = wholeCount(model);
          if (whole === attached.length && whole > 0) {
            const cover = array.wholeCover(whole);
            expect(cover.vfs, `${where}: the whole cover's VFs`).toHaveLength(whole);
            for (let i = 0; i < whole; i++)
              expect(cover.vfs[i], `${where}: covered VF ${i}`).toBe(model[i]!.device);
            expect(cover.indexes, `${where}: covered indexes`).toEqual(
              Array.from({ length: whole }, (_, i) => i),
            );
            expect([...cover.packed], `${where}: covered by index`).toEqual(
              Array.from({ length: array.length }, (_, i) => (i < whole ? 1 : 0)),
            );
          }
        }
      }),
      runs(300),
    );
  });
});
