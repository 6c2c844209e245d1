/**
 * A virtual function's BARs as vPCI keeps them: carved from its physical function's VF BARs (the
 * series' `vf_init_bars()`, docs/sriov.md). A VF's own BAR registers read zero (PCIe 9.3.4.1.11); VF
 * n's BAR i is the PF's VF BAR i plus n times its size, as `size_vf_bars()` last sized it.
 */
import type { Paddr } from '@vpci/p2m';
import type { Result } from '@vpci/rangeset';
import { BarSet } from './bar-set.js';
import type { EngineContext } from './context.js';
import { Bar, barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { holdsProbe } from './modify-bars.js';
import { PCI_SRIOV_NUM_BARS } from './pci-regs.js';
import { countRangesetOps } from './rangeset-ops.js';
import { vfDecodingOf } from './sriov-decoding.js';
import { vfBarAddress } from './sriov-hardware.js';

/**
 * The series' `vf_init_bars(vf)`: each BAR slot of the VF from the PF's sized VF BAR (type,
 * prefetch, size; address `VF BAR i + n × size_i`, the guest address the same), with a rangeset for
 * each memory BAR. `EINVAL` when the VF has no PF or the PF no SR-IOV state in vPCI.
 */
export function vfInitBars(context: EngineContext, vf: PciDevice): Result<'EINVAL'> {
  const sriov = vf.physfn?.vpci?.sriov;
  const vpci = vf.vpci;
  if (sriov === undefined || vpci === undefined) return { ok: false, code: 'EINVAL' };
  // Made from the same sizing already (VF MSE asks this of every VF each time it is set).
  if (vpci.vfBarsGeneration === sriov.generation) return { ok: true };
  vpci.vfBarsGeneration = sriov.generation;
  vfDecodingOf(vf.physfn!)?.madeCurrent(vf.vfIndex);
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const from = sriov.vfBars[i]!;
    const bar = vpci.bars[i]!;
    const addr = barAddress(vfBarAddress(from.addr, from.size, vf.vfIndex));
    bar.prefetchable = from.prefetchable;
    bar.type = from.type;
    bar.size = from.size;
    bar.addr = addr;
    bar.guestAddr = addr;
    if (bar.mappable && bar.mem === undefined) {
      countRangesetOps(context, vf, 'new');
      bar.mem = new BarSet({ name: `${vf.name}:BAR${i}`, hex: true });
    }
  }
  return { ok: true };
}

/** A VF BAR found holding a sizing probe (`firstVfProbe`): the VF's index, the slot and its address. */
export interface VfProbe {
  readonly vfIndex: number;
  readonly slot: number;
  readonly guestAddr: Paddr;
}

const TWO_32 = 1n << 32n;
const TWO_64 = 1n << 64n;

/**
 * Hardened (`refuseProbeAddress`, invariant 8): the first VF of `runs` (runs of consecutive VF indexes,
 * in the order given, each ascending) whose BAR in one of `slots` (the PF's VF BAR slots, in slot
 * order) `holdsProbe`, as that test finds it on the BARs `vfInitBars` makes (`VF BAR i + n × size_i`),
 * and the lowest such slot of that VF; undefined when none does. Worked out per slot and run from a
 * few candidate VFs, not VF by VF: a VF BAR holds the probe when its address is in the top `size` bytes
 * of the 32- or 64-bit space, or (64-bit) when exactly one half of it is all ones above the size, which
 * along an array of steps no larger than the low half's probe first happens at the VF before a 4 GiB
 * boundary (the low half). Each candidate is tested with `holdsProbe` itself; a size that is not a
 * power of two (no sizing makes one) is tested VF by VF.
 */
export function firstVfProbe(
  slots: readonly Bar[],
  runs: readonly (readonly [number, number])[],
): VfProbe | undefined {
  for (const [a, b] of runs) {
    let found: VfProbe | undefined;
    for (const slot of slots) {
      if (!slot.mappable) continue;
      for (const n of probeCandidates(slot, a, b)) {
        if (found !== undefined && n >= found.vfIndex) break;
        const bar = vfBar(slot, n);
        if (holdsProbe(bar)) {
          found = { vfIndex: n, slot: slot.index, guestAddr: bar.guestAddr };
          break;
        }
      }
    }
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * VF `n`'s BAR of `slot` as `vfInitBars` makes it (the fields `holdsProbe` and `checkBar` read), without
 * loading the VF.
 */
export function vfBar(slot: Bar, n: number): Bar {
  const bar = new Bar(slot.index);
  bar.type = slot.type;
  bar.size = slot.size;
  bar.addr = barAddress(vfBarAddress(slot.addr, slot.size, n));
  bar.guestAddr = bar.addr;
  return bar;
}

/**
 * The VFs of `[a, b]` among which the first whose BAR of `slot` holds a probe is, ascending: every one
 * for a size that is not a power of two, else at most three.
 */
function probeCandidates(slot: Bar, a: number, b: number): number[] {
  const size = slot.size;
  if (size !== 0n && (size & (size - 1n)) !== 0n) return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  const start = vfBarAddress(slot.addr, size, a);
  // The first VF of the run at or above `limit` (a size of 0 puts every VF at `start`).
  const firstFrom = (limit: bigint): number | undefined => {
    if (start >= limit) return a;
    if (size === 0n) return undefined;
    const n = a + Number((limit - start + size - 1n) / size);
    return n <= b ? n : undefined;
  };
  const found = new Set<number>([a]);
  const add = (n: number | undefined): void => {
    if (n !== undefined && n <= b) found.add(n);
  };
  // The whole address in the top `size` bytes of its width.
  add(firstFrom((slot.type === 'mem64lo' ? TWO_64 : TWO_32) - size));
  if (slot.type === 'mem64lo' && size !== 0n) {
    // The low half all ones above the size: the top `max(size, 16)` bytes of a 4 GiB window.
    const top = size > 16n ? size : 16n;
    if (top < TWO_32) {
      const offset = start % TWO_32;
      add(offset >= TWO_32 - top ? a : a + Number((TWO_32 - top - offset + size - 1n) / size));
    }
    // The high half all ones (the top 4 GiB; a size above 4 GiB has fewer high mask bits, met only in
    // the top `size` bytes, found above) with the low half not: a run that starts there has its first
    // VF as a candidate already, and one that climbs there from below meets the VF before that 4 GiB
    // boundary first, whose low half alone is all ones.
  }
  return [...found].sort((x, y) => x - y);
}
