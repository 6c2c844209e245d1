/**
 * Arm's PCI host bridges as vPCI consults them (xen/arch/arm/pci/pci-host-common.c): which bridge a
 * device sits behind (`pci_find_host_bridge`: its segment and bus range), and `pci_check_bar`, true
 * only when a BAR's whole pages lie in one window of the bridge's device-tree "ranges"
 * (`is_bar_valid`). The windows are also what the hardware domain is permitted to map
 * (`map_device_children` → `map_range_to_domain` → `iomem_permit_access` for each range).
 */
import { InvalidArgumentError, type Mfn, mfn } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import type { Sbdf } from './sbdf.js';

/** One window of a host bridge: `size` bytes of CPU addresses from `addr` (a "ranges" entry). */
export interface HostBridgeWindow {
  /** First CPU (host physical) address of the window. */
  readonly addr: bigint;
  /** Length in bytes. */
  readonly size: bigint;
}

/** An Arm PCI host bridge (Xen's `struct pci_host_bridge` with its device-tree node's "ranges"). */
export interface HostBridge {
  /** PCI segment (default 0). */
  readonly segment?: number;
  /** First bus number behind the bridge (`busn_start`, default 0). */
  readonly busStart?: number;
  /** Last bus number behind the bridge (`busn_end`, default 255). */
  readonly busEnd?: number;
  /** The windows of its "ranges" property, in CPU addresses (memory and I/O alike). */
  readonly windows: readonly HostBridgeWindow[];
}

/** A host bridge with every default filled in, as the machine keeps it. */
export interface ResolvedHostBridge {
  /** PCI segment. */
  readonly segment: number;
  /** First bus number behind the bridge. */
  readonly busStart: number;
  /** Last bus number behind the bridge. */
  readonly busEnd: number;
  /** The windows, in CPU addresses. */
  readonly windows: readonly HostBridgeWindow[];
}

/** Checks and fills in the bridges a machine is given; throws `InvalidArgumentError` naming the bad one. */
export function resolveHostBridges(bridges: readonly HostBridge[]): ResolvedHostBridge[] {
  return bridges.map((bridge, i) => {
    const name = `hostBridges[${i}]`;
    const segment = bridge.segment ?? 0;
    const busStart = bridge.busStart ?? 0;
    const busEnd = bridge.busEnd ?? 255;
    if (!Number.isInteger(segment) || segment < 0 || segment > 0xffff)
      throw new InvalidArgumentError(`${name}.segment`, segment, 'an integer in 0 … 0xffff');
    if (
      !Number.isInteger(busStart) ||
      !Number.isInteger(busEnd) ||
      busStart < 0 ||
      busEnd > 255 ||
      busStart > busEnd
    )
      throw new InvalidArgumentError(
        `${name}.busStart/busEnd`,
        [busStart, busEnd],
        'buses 0 … 255, start <= end',
      );
    if (!Array.isArray(bridge.windows))
      throw new InvalidArgumentError(`${name}.windows`, bridge.windows, 'an array of { addr, size }');
    bridge.windows.forEach((w, j) => {
      if (
        typeof w.addr !== 'bigint' ||
        typeof w.size !== 'bigint' ||
        w.addr < 0n ||
        w.size < 1n ||
        w.addr + w.size > 1n << 64n
      )
        throw new InvalidArgumentError(
          `${name}.windows[${j}]`,
          w,
          '{ addr, size } bigints, size >= 1, within 2^64',
        );
    });
    return { segment, busStart, busEnd, windows: Object.freeze([...bridge.windows]) };
  });
}

/** Xen's `pci_find_host_bridge(segment, bus)`: the first bridge of that segment whose buses hold `bus`. */
export function findHostBridge(
  bridges: readonly ResolvedHostBridge[],
  sbdf: Sbdf,
): ResolvedHostBridge | undefined {
  return bridges.find((b) => b.segment === sbdf.seg && b.busStart <= sbdf.bus && sbdf.bus <= b.busEnd);
}

/**
 * Arm's `pci_check_bar(pdev, start, end)`: the byte range of machine frames `[start, end]`, from the
 * first byte of `start` to the last of `end` (so a window must hold the BAR's whole pages), lies in
 * one window of the device's host bridge. No bridge: false.
 */
export function armPciCheckBar(
  bridges: readonly ResolvedHostBridge[],
  sbdf: Sbdf,
  start: Mfn,
  end: Mfn,
): boolean {
  const s = BigInt(start) << 12n;
  const e = ((BigInt(end) + 1n) << 12n) - 1n;
  if (s > e) return false;
  const bridge = findHostBridge(bridges, sbdf);
  if (bridge === undefined) return false;
  // is_bar_valid: (s >= addr) && (e <= addr + len - 1), for any one range.
  return bridge.windows.some((w) => s >= w.addr && e <= w.addr + w.size - 1n);
}

/**
 * The machine frames the hardware domain is permitted on Arm: every page a host bridge window
 * touches (`iomem_permit_access(d, paddr_to_pfn(addr), paddr_to_pfn(addr + len - 1))`).
 */
export function hostBridgeFrames(bridges: readonly ResolvedHostBridge[]): RangeSet<Mfn> {
  const frames = new RangeSet<Mfn>({ name: 'host bridge windows', hex: true });
  for (const bridge of bridges)
    for (const w of bridge.windows)
      frames.addRange(mfn(Number(w.addr >> 12n)), mfn(Number((w.addr + w.size - 1n) >> 12n)));
  return frames;
}
