/**
 * Arbitraries for SR-IOV physical functions and what the hardware domain and guests do with them:
 * VF counts, routing-ID layouts that carry VFs onto the next bus, VF BARs of any size from 16 bytes
 * (the hardware rounds each up to the System Page Size), 32- and 64-bit, with or without MSI-X in VF
 * BAR 0, placed in a window of their own or over the other devices' BARs (the overlaps the sharing
 * checks are about); and steps: SR-IOV Control (VF Enable, VF MSE), NumVFs, System Page Size and VF
 * BAR writes, assigning and de-assigning VFs, guests placing and decoding their VF's BARs, deferred
 * work with a budget, and unplugging the PF. The engine-level SR-IOV property
 * (test/sriov.property.test.ts) applies the steps to a `Machine`; `arbTrace` writes them as trace
 * lines (trace-writer.ts).
 */
import type { DeviceSpec, VfBarSpec } from '@vpci/vpci';
import fc from 'fast-check';

/** Where the SR-IOV capability of a generated PF sits (no ReBAR before it). */
export const SRIOV_POS = 0x100;
/** The generated PF's address: bus 2, clear of the generated plain devices on bus 1. */
export const PF_SBDF = '0000:02:00.0';

/** One VF BAR of a plan: slot 0 or 2, its type and its intrinsic size (log2 bytes, 4 … 20). */
export interface VfBarPlan {
  /** The VF BAR slot (a 64-bit one takes the next slot too). */
  readonly slot: 0 | 2;
  /** 32- or 64-bit memory BAR. */
  readonly type: 'mem32' | 'mem64';
  /** log2 of each VF's BAR size in bytes, before the System Page Size rounds it up. */
  readonly sizeLog2: number;
}

/** A physical function: its VFs' layout and BARs, where they go, and each VF's MSI-X. */
export interface SriovPlan {
  /** TotalVFs, 1–12. */
  readonly totalVfs: number;
  /** NumVFs as firmware left it, 1 … `totalVfs`. */
  readonly numVfs: number;
  /** First VF Offset (1, 0x80 or 0x100: VFs at function 0 or on the next bus). */
  readonly firstVfOffset: number;
  /** VF Stride (1, 2, 8 or 0x40). */
  readonly vfStride: number;
  /** System Page Size as firmware left it: bit 0 (4 KiB), 1 (8 KiB) or 4 (64 KiB). */
  readonly pageSizeBit: 0 | 1 | 4;
  /** One or two VF BARs, in slots 0 and 2. */
  readonly bars: readonly VfBarPlan[];
  /** `own`: a window no other device uses; `over`: on top of the plain devices' 32-bit BARs. */
  readonly placement: 'own' | 'over';
  /** MSI-X table entries of each VF (table at 0, PBA at 0x800 of VF BAR 0), or none. */
  readonly msixEntries: number | undefined;
}

/** Physical functions: any layout of up to 12 VFs, VF BARs of 16 bytes to 1 MiB, with or without MSI-X. */
export const sriovPlan: fc.Arbitrary<SriovPlan> = fc
  .record({
    totalVfs: fc.integer({ min: 1, max: 12 }),
    numFraction: fc.double({ min: 0, max: 1, noNaN: true }),
    firstVfOffset: fc.constantFrom(1, 0x80, 0x100),
    vfStride: fc.constantFrom(1, 2, 8, 0x40),
    pageSizeBit: fc.constantFrom(0 as const, 1 as const, 4 as const),
    sizes: fc.array(fc.integer({ min: 4, max: 20 }), { minLength: 1, maxLength: 2 }),
    wide: fc.boolean(),
    placement: fc.constantFrom('own' as const, 'over' as const),
    msixEntries: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
  })
  .map(({ totalVfs, numFraction, sizes, wide, ...rest }) => ({
    ...rest,
    totalVfs,
    numVfs: Math.max(1, Math.round(numFraction * totalVfs)),
    bars: sizes.map((sizeLog2, i) => ({
      slot: (2 * i) as 0 | 2,
      type: wide && rest.placement === 'own' ? ('mem64' as const) : ('mem32' as const),
      sizeLog2,
    })),
  }));

/** The size VF BAR `bar` reads back: its intrinsic size rounded up to the System Page Size. */
export function vfBarSize(plan: SriovPlan, bar: VfBarPlan, pageSizeBit: number = plan.pageSizeBit): bigint {
  const page = 1n << BigInt(pageSizeBit + 12);
  const size = 1n << BigInt(bar.sizeLog2);
  return size > page ? size : page;
}

/**
 * VF BAR `bar`'s address (VF 0's) for a placement: in the PF's own window (32-bit at 0xd000_0000,
 * 64-bit at 0x80_0000_0000, slot 2 after slot 0's whole range), or over the plain devices' 32-bit
 * BARs at 0xc000_0000; `shift` whole sizes further on. Aligned to the size, as the register keeps it.
 */
export function vfBarAddress(plan: SriovPlan, bar: VfBarPlan, placement: 'own' | 'over', shift = 0): bigint {
  const size = vfBarSize(plan, bar);
  let base = placement === 'over' ? 0xc000_0000n : bar.type === 'mem64' ? 0x80_0000_0000n : 0xd000_0000n;
  if (bar.slot === 2 && placement === 'own') {
    const first = plan.bars[0]!;
    base += BigInt(plan.totalVfs) * vfBarSize(plan, first) + 0x1000_0000n;
  }
  return ((base + size - 1n) & ~(size - 1n)) + BigInt(shift) * size;
}

/** The PF's device description. */
export function sriovSpec(plan: SriovPlan): DeviceSpec {
  const vfBars: (VfBarSpec | null)[] = [];
  for (const bar of plan.bars) {
    vfBars[bar.slot] = {
      type: bar.type,
      size: 1n << BigInt(bar.sizeLog2),
      addr: vfBarAddress(plan, bar, plan.placement),
    };
    if (bar.type === 'mem64') vfBars[bar.slot + 1] = null;
  }
  return {
    sbdf: PF_SBDF,
    vendorId: 0x8086,
    sriov: {
      totalVfs: plan.totalVfs,
      numVfs: plan.numVfs,
      firstVfOffset: plan.firstVfOffset,
      vfStride: plan.vfStride,
      vfDeviceId: 0x10ca,
      systemPageSize: 1 << plan.pageSizeBit,
      vfBars,
      ...(plan.msixEntries === undefined
        ? {}
        : {
            vfMsix: {
              entries: plan.msixEntries,
              table: { bar: 0, offset: 0 },
              pba: { bar: 0, offset: 0x800 },
            },
          }),
    },
  };
}

/** What happens next to the PF, its VFs, and the guests that get them. */
export type SriovStep =
  /** The hardware domain writes SR-IOV Control: VF Enable `vfe`, VF MSE `mse`, from its vCPU `vcpu`. */
  | { readonly kind: 'control'; readonly vfe: boolean; readonly mse: boolean; readonly vcpu: number }
  /** The hardware domain writes NumVFs: `fraction` of TotalVFs, rounded (0 included). */
  | { readonly kind: 'numVfs'; readonly fraction: number }
  /** The hardware domain places VF BAR `bar` (modulo the PF's): `vfBarAddress(…, placement, shift)`. */
  | {
      readonly kind: 'vfBar';
      readonly bar: number;
      readonly placement: 'own' | 'over';
      readonly shift: number;
    }
  /** The hardware domain writes System Page Size: bit `bit` (4 KiB, 8 KiB or 64 KiB pages). */
  | { readonly kind: 'pageSize'; readonly bit: 0 | 1 | 4 }
  /** VF `vf` (modulo the VFs there are) goes to guest `to`. */
  | { readonly kind: 'assign'; readonly vf: number; readonly to: 1 | 2 }
  /** VF `vf` (modulo the VFs there are) comes back from its guest. */
  | { readonly kind: 'deassign'; readonly vf: number }
  /** The guest that has VF `vf` places its first BAR at guest slot `slot` and turns decoding on or off. */
  | { readonly kind: 'guest'; readonly vf: number; readonly memory: boolean; readonly slot: number }
  /** Domain `domain`'s vCPU `vcpu` runs its deferred work with `budget` frames. */
  | { readonly kind: 'run'; readonly domain: 0 | 1 | 2; readonly vcpu: number; readonly budget: number }
  /** The PF is unplugged (its VFs first). */
  | { readonly kind: 'unplug' };

/** What happens next to a PF: SR-IOV Control most often, then VF moves, guests' accesses, deferred work. */
export const sriovStep: fc.Arbitrary<SriovStep> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('control' as const),
      vfe: fc.boolean(),
      mse: fc.boolean(),
      vcpu: fc.integer({ min: 0, max: 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('numVfs' as const),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('vfBar' as const),
      bar: fc.integer({ min: 0, max: 1 }),
      placement: fc.constantFrom('own' as const, 'over' as const),
      shift: fc.integer({ min: 0, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pageSize' as const),
      bit: fc.constantFrom(0 as const, 1 as const, 4 as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('assign' as const),
      vf: fc.nat(15),
      to: fc.constantFrom(1 as const, 2 as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deassign' as const), vf: fc.nat(15) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('guest' as const),
      vf: fc.nat(15),
      memory: fc.boolean(),
      slot: fc.nat(3),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('run' as const),
      domain: fc.constantFrom(0 as const, 1 as const, 2 as const),
      vcpu: fc.integer({ min: 0, max: 1 }),
      budget: fc.integer({ min: 1, max: 300 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'unplug' as const }) },
);
