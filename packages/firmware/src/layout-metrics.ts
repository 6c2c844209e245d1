/**
 * What each placement policy does to a layout: how many pages end up holding BARs of two devices
 * (XSA-461's hazard), how many BARs keep their host page offset (vPCI refuses to map the others), how
 * many frames a p2m maps with 2 MiB pages (each placed BAR mapped on a fresh p2m, guest address to
 * host address, with `mapMmio`), and how much of the low hole the placement spans.
 */
import { gfn, type MmioCost, mapMmio, mfn, P2m } from '@vpci/p2m';
import { type DeviceSpec, PhysicalDevice, type RangesetOps, VPCI_MAX_VIRT_DEV } from '@vpci/vpci';
import { hardwareBus, initialBarAddresses } from './bus.js';
import { PAGE_BYTES } from './constants.js';
import type { DeviceLayout } from './layouts.js';
import { type BarPlacement, type PciSetupOptions, type PciSetupResult, pciSetup } from './pci-setup.js';
import { placementRangesetOps } from './placement-rangesets.js';
import { PLACEMENT_POLICIES, type PlacementPolicyName } from './policy.js';

/** One layout under one policy. */
export interface LayoutMetrics {
  /** The layout's name. */
  readonly layout: string;
  /** The placement policy. */
  readonly policy: PlacementPolicyName;
  /** Memory BARs and ROMs. */
  readonly memoryBars: number;
  /** Memory BARs and ROMs given an address. */
  readonly placed: number;
  /** Guest pages holding memory BARs of two or more devices. */
  readonly sharedPages: number;
  /** Placed memory BARs with a host address whose page offset the placement kept. */
  readonly offsetKept: number;
  /** Placed memory BARs with a host address. */
  readonly withHost: number;
  /** Guest frames those BARs span. */
  readonly frames: number;
  /** Of them, frames a p2m maps with 2 MiB leaves. */
  readonly superpageFrames: number;
  /**
   * Xen's cost of mapping those BARs (each on a fresh p2m, as vPCI's `map_range` does: calls until
   * done): `map_mmio_regions` calls and the leaves they write by size (`P2m.mmioCost`); and, when
   * the layout's devices were given (`compareLayouts` always gives them) and fit one guest (at most
   * `VPCI_MAX_VIRT_DEV`, 32), the rangeset calls vPCI makes when the firmware turns decoding on
   * (`placementRangesetOps`; the table shows `-` without them).
   */
  readonly xenCost: {
    readonly mapMmioRegions: number;
    readonly leaves4K: number;
    readonly leaves2M: number;
    readonly rangesets?: Readonly<RangesetOps>;
  };
  /** Bytes from `pci_mem_start` to the end of the highest BAR in the low hole (0n: none there). */
  readonly lowSpan: bigint;
  /** `pci_mem_end - pci_mem_start`. */
  readonly holeSize: bigint;
}

/** The guest frames a BAR touches and the host frame under its first one. */
export function barFrames(bar: BarPlacement): { gfn: number; mfn: number; count: number } | undefined {
  if (bar.decodes === undefined || bar.hostAddr === undefined || bar.kind === 'io') return undefined;
  const first = bar.decodes / PAGE_BYTES;
  const last = (bar.decodes + bar.size - 1n) / PAGE_BYTES;
  return { gfn: Number(first), mfn: Number(bar.hostAddr / PAGE_BYTES), count: Number(last - first + 1n) };
}

/**
 * Frames of `bar` a fresh p2m maps in 2 MiB leaves when its guest frames are mapped to its host frames
 * (`mapMmio` to the end, then the order-9 extents counted), and what that cost Xen (`P2m.mmioCost`);
 * undefined without a host address.
 */
export function superpageFramesOf(
  bar: BarPlacement,
): { frames: number; superpage: number; cost: MmioCost } | undefined {
  const range = barFrames(bar);
  if (range === undefined) return undefined;
  const p2m = new P2m();
  let g = range.gfn;
  let m = range.mfn;
  let left = range.count;
  while (left > 0) {
    const result = mapMmio(p2m, gfn(g), left, mfn(m));
    if (!result.ok) break;
    if (result.done) break;
    g += result.progress;
    m += result.progress;
    left -= result.progress;
  }
  let superpage = 0;
  for (const extent of p2m.extents()) if (extent.order === 9) superpage += extent.count;
  return { frames: range.count, superpage, cost: { ...p2m.mmioCost } };
}

/** Guest pages holding memory BARs of two or more devices. */
export function sharedPages(bars: readonly BarPlacement[]): number {
  const owners = new Map<bigint, Set<number>>();
  for (const bar of bars) {
    if (bar.kind === 'io' || bar.decodes === undefined) continue;
    // Only pages at a BAR's ends can be shared: a BAR is naturally aligned, so its inner pages are its own.
    const first = bar.decodes / PAGE_BYTES;
    const last = (bar.decodes + bar.size - 1n) / PAGE_BYTES;
    for (const page of first === last ? [first] : [first, last]) {
      const set = owners.get(page) ?? new Set<number>();
      set.add(bar.devfn);
      owners.set(page, set);
    }
  }
  let shared = 0;
  for (const set of owners.values()) if (set.size > 1) shared++;
  return shared;
}

/**
 * The metrics of one setup result (see `LayoutMetrics`); with the layout's `devices` (at their host
 * addresses), also the rangeset calls of its decoding writes.
 */
export function metricsOf(
  layout: string,
  result: PciSetupResult,
  devices?: readonly DeviceSpec[],
): LayoutMetrics {
  const memory = result.bars.filter((b) => b.kind !== 'io');
  const placed = memory.filter((b) => b.decodes !== undefined);
  const withHost = placed.filter((b) => b.hostAddr !== undefined);
  let frames = 0;
  let superpageFrames = 0;
  const xenCost: { mapMmioRegions: number; leaves4K: number; leaves2M: number; rangesets?: RangesetOps } = {
    mapMmioRegions: 0,
    leaves4K: 0,
    leaves2M: 0,
  };
  // One guest has VPCI_MAX_VIRT_DEV virtual slots: a larger layout cannot be given to one guest.
  if (devices !== undefined && devices.length <= VPCI_MAX_VIRT_DEV)
    xenCost.rangesets = placementRangesetOps(devices, result);
  for (const bar of withHost) {
    const counted = superpageFramesOf(bar)!;
    frames += counted.frames;
    superpageFrames += counted.superpage;
    xenCost.mapMmioRegions += counted.cost.mapCalls;
    xenCost.leaves4K += counted.cost.leaves4K;
    xenCost.leaves2M += counted.cost.leaves2M;
  }
  let lowEnd = result.pciMemStart;
  for (const bar of placed)
    if (bar.window === 'low' && bar.decodes! + bar.size > lowEnd) lowEnd = bar.decodes! + bar.size;
  return {
    layout,
    policy: result.policy,
    memoryBars: memory.length,
    placed: placed.length,
    sharedPages: sharedPages(result.bars),
    offsetKept: withHost.filter((b) => b.congruence !== 'none').length,
    withHost: withHost.length,
    frames,
    superpageFrames,
    xenCost,
    lowSpan: lowEnd - result.pciMemStart,
    holeSize: result.pciMemEnd - result.pciMemStart,
  };
}

/**
 * Runs every policy (or `policies`) on every layout, on bare hardware, and measures each result. The
 * BARs' addresses in the layout are the host's; the firmware sees the devices as after a reset (every
 * BAR at 0, as QEMU presents them), so hvmloader's unwritten upper dwords read 0.
 */
export function compareLayouts(
  layouts: readonly DeviceLayout[],
  options: Omit<PciSetupOptions, 'policy' | 'hostAddresses'> = {},
  policies: readonly PlacementPolicyName[] = PLACEMENT_POLICIES,
): LayoutMetrics[] {
  const rows: LayoutMetrics[] = [];
  for (const layout of layouts) {
    for (const policy of policies) {
      const hosts = layout.devices.flatMap((spec) => initialBarAddresses(PhysicalDevice.fromSpec(spec)));
      const bus = hardwareBus(layout.devices.map(atReset), { hostAddresses: hosts });
      rows.push(metricsOf(layout.name, pciSetup(bus, { ...options, policy }), layout.devices));
    }
  }
  return rows;
}

/** A device description with every BAR and the ROM at address 0. */
function atReset(spec: DeviceSpec): DeviceSpec {
  const { rom, bars, ...rest } = spec;
  return {
    ...rest,
    ...(bars === undefined ? {} : { bars: bars.map((b) => (b ? { ...b, addr: 0n } : b)) }),
    ...(rom === undefined ? {} : { rom: { ...rom, addr: 0n, enabled: false } }),
  };
}

/** Bytes as `192 MiB`, `1.14 MiB`, `12 KiB`. */
function size(bytes: bigint): string {
  const mib = Number(bytes) / 2 ** 20;
  if (bytes >= 1n << 20n) return `${Number.isInteger(mib) ? mib : mib.toFixed(2)} MiB`;
  const kib = Number(bytes) / 1024;
  return `${Number.isInteger(kib) ? kib : kib.toFixed(1)} KiB`;
}

/** The rangeset column: `6 / 15 / 0 / 3 (3)`, or `-` for a row measured without the devices. */
function rangesetCell(ops: Readonly<RangesetOps> | undefined): string {
  if (ops === undefined) return '-';
  return `${ops.addRange} / ${ops.removeRange} / ${ops.overlapsRange} / ${ops.consumeRanges} (${ops.rangesConsumed})`;
}

/** `rows` as a Markdown table (the README's). */
export function formatMetricsTable(rows: readonly LayoutMetrics[]): string {
  const lines = [
    '| layout | policy | placed | pages shared by 2+ devices | page offset kept | 2 MiB-mapped frames | low hole spanned | map_mmio_regions calls (4K / 2M leaves) | rangeset calls: add / remove / overlaps / consume (ranges) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const share =
      r.frames === 0
        ? '0 / 0'
        : `${r.superpageFrames} / ${r.frames} (${((100 * r.superpageFrames) / r.frames).toFixed(1)} %)`;
    lines.push(
      `| ${r.layout} | ${r.policy} | ${r.placed} / ${r.memoryBars} | ${r.sharedPages} | ${r.offsetKept} / ${r.withHost} | ${share} | ${size(r.lowSpan)} of ${size(r.holeSize)} | ${r.xenCost.mapMmioRegions} (${r.xenCost.leaves4K} / ${r.xenCost.leaves2M}) | ${rangesetCell(r.xenCost.rangesets)} |`,
    );
  }
  return lines.join('\n');
}
