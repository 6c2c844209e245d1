/**
 * A virtual function's BARs as vPCI keeps them: carved from its physical function's VF BARs (the
 * series' `vf_init_bars()`, docs/sriov.md). A VF's own BAR registers read zero (PCIe 9.3.4.1.11); VF
 * n's BAR i is the PF's VF BAR i plus n times its size, as `size_vf_bars()` last sized it.
 */
import type { Gfn } from '@vpci/p2m';
import { RangeSet, type Result } from '@vpci/rangeset';
import type { EngineContext } from './context.js';
import { barAddress } from './device.js';
import type { PciDevice } from './domain.js';
import { PCI_SRIOV_NUM_BARS } from './pci-regs.js';
import { countRangesetOps } from './rangeset-ops.js';
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
      bar.mem = new RangeSet<Gfn>({ name: `${vf.name}:BAR${i}`, hex: true });
    }
  }
  return { ok: true };
}
