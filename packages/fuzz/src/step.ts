/**
 * Steps for properties that drive the engine's `Machine` directly (what a guest or the toolstack does
 * next); the traces' steps are in trace-plan.ts. A step's `device` is taken modulo the machine's
 * devices and its `vcpu` modulo the vCPUs of the device's owner.
 */
import fc from 'fast-check';
import { MSIX_CAP } from './device.js';

/** Who makes a step: a device (modulo the machine's) and a vCPU of its owner (modulo its vCPUs). */
export interface Actor {
  /** The device, modulo the machine's devices. */
  device: number;
  /** The vCPU, modulo the vCPUs of the domain that makes the access. */
  vcpu: number;
}

/** Turn memory decoding on or off (the command register): `memory` is the new Memory Space bit. */
export type CommandStep = Actor & { kind: 'command'; memory: boolean };
/** Write a BAR (`bar`: which of the device's memory BARs) with an address chosen by `placement`. */
export type BarStep<P extends string> = Actor & { kind: 'bar'; bar: number; placement: P };
/** Write the ROM BAR: at its own place, over one of the device's BARs, or all-ones (a probe). */
export type RomStep = Actor & { kind: 'rom'; enable: boolean; placement: 'own' | 'bar' | 'probe' };
/** Write the MSI-X control word. */
export type MsixStep = Actor & { kind: 'msix'; enable: boolean; mask: boolean };
/** Write any value of `size` bytes at `reg`. */
export type RawStep = Actor & { kind: 'raw'; size: 1 | 2 | 4; reg: number; value: number };
/** Run the vCPU's pending work with `budget` frames before preemption. */
export type RunStep<B> = Actor & { kind: 'run'; budget: B };
/** Give the device to guest `to` (from the hardware domain) or back (from a guest). */
export type MoveStep = { kind: 'move'; device: number; to: number };
/** Fail domain `domain`'s p2m entry write `after` writes from now (ENOMEM), once. */
export type FaultStep = { kind: 'fault'; domain: number; after: number };

/**
 * Where the engine property puts a BAR: its own slot in the guest's space, all-ones (a probe), the
 * host address, another guest slot, or page offset 0 where every device's BAR goes (overlaps).
 */
export type EngineBarPlacement = 'own' | 'probe' | 'identity' | 'other' | 'zero';
/** One step of an engine property. */
export type EngineStep =
  | CommandStep
  | BarStep<EngineBarPlacement>
  | RomStep
  | MsixStep
  | RawStep
  | RunStep<number>
  | MoveStep
  | FaultStep;

const actor = { device: fc.nat(5), vcpu: fc.nat(1) };

const commandStep: fc.Arbitrary<CommandStep> = fc.record({
  kind: fc.constant('command' as const),
  ...actor,
  memory: fc.boolean(),
});

function barStep<P extends string>(placements: readonly [P, ...P[]]): fc.Arbitrary<BarStep<P>> {
  return fc.record({
    kind: fc.constant('bar' as const),
    ...actor,
    bar: fc.nat(2),
    placement: fc.constantFrom(...placements),
  });
}

function runStep<B>(budget: fc.Arbitrary<B>): fc.Arbitrary<RunStep<B>> {
  return fc.record({ kind: fc.constant('run' as const), ...actor, budget });
}

const moveStep: fc.Arbitrary<MoveStep> = fc.record({
  kind: fc.constant('move' as const),
  device: fc.nat(5),
  to: fc.nat(2),
});

function faultStep(after: fc.Arbitrary<number>): fc.Arbitrary<FaultStep> {
  return fc.record({ kind: fc.constant('fault' as const), domain: fc.nat(2), after });
}

/** A value for a raw write of `size` bytes: anything, with all-ones, zero and memory-on likelier. */
export function rawValue(size: 1 | 2 | 4): fc.Arbitrary<number> {
  const max = size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
  return fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max }) },
    { weight: 1, arbitrary: fc.constantFrom(0, max, 0x0006 & max, 0x0002 & max) },
  );
}

/** A raw write below `end`, aligned to its size as Xen's config-space entry points require. */
function alignedRawStep(end: number): fc.Arbitrary<RawStep> {
  return fc
    .record({
      device: fc.nat(5),
      vcpu: fc.nat(1),
      size: fc.constantFrom(1 as const, 2 as const, 4 as const),
      index: fc.nat(end - 1),
    })
    .chain(({ device, vcpu, size, index }) =>
      rawValue(size).map((value) => ({
        kind: 'raw' as const,
        device,
        vcpu,
        size,
        reg: Math.min(index - (index % size), end - size),
        value,
      })),
    );
}

/**
 * The engine property's steps. The raw writes cover the header and the MSI-X capability (ID, next,
 * control, table, PBA). Budgets up to 700 frames, or none; faults mostly soon (small BARs take a write
 * or two), sometimes deep into a large map.
 */
export const engineStep: fc.Arbitrary<EngineStep> = fc.oneof(
  { weight: 4, arbitrary: commandStep },
  { weight: 3, arbitrary: barStep(['own', 'probe', 'identity', 'other', 'zero']) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('rom' as const),
      ...actor,
      enable: fc.boolean(),
      placement: fc.constantFrom('own' as const, 'bar' as const, 'probe' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('msix' as const),
      ...actor,
      enable: fc.boolean(),
      mask: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: alignedRawStep(MSIX_CAP + 12) },
  {
    weight: 3,
    arbitrary: runStep(fc.oneof(fc.integer({ min: 1, max: 700 }), fc.constant(Number.POSITIVE_INFINITY))),
  },
  { weight: 1, arbitrary: moveStep },
  {
    weight: 1,
    arbitrary: faultStep(
      fc.oneof(
        { weight: 3, arbitrary: fc.integer({ min: 1, max: 8 }) },
        { weight: 1, arbitrary: fc.integer({ min: 9, max: 600 }) },
      ),
    ),
  },
);
