/**
 * Renders firmware runs as trace lines (docs/trace-format.md): the accesses as `read` / `write`
 * events of the vCPU that made them, plus the `device`, `domain` and `bar`-assertion lines a trace
 * built around a placement needs. Accesses the engine did not see (the device model's) become
 * comments, so the trace replays exactly what reached the engine.
 */

import type { MtrrState } from '@vpci/p2m';
import { type DeviceSpec, formatSbdf, toSbdf } from '@vpci/vpci';
import type { ConfigAccess } from './bus.js';
import { mtrrLayoutJson } from './mtrr-layout.js';
import type { BarPlacement } from './pci-setup.js';

/** How accesses become lines. */
export interface PlacementTraceOptions {
  /** Give each read the value it returned as `expect`, so a replay checks it (default true). */
  readonly expectReads?: boolean;
  /**
   * Reads of functions where nothing answered (the scan of empty slots, all-ones): `keep` a line each,
   * or `summarize` them in one comment (default; a replay reads all-ones there anyway).
   */
  readonly emptySlots?: 'keep' | 'summarize';
  /**
   * End with a `run` line of the vCPU (default true): the last command write leaves the map deferred,
   * and the firmware's vCPU finishes it before it runs on, as `placeBars` does.
   */
  readonly finish?: boolean;
}

/** `0x…` in lower case. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

/**
 * The accesses of a run as trace lines: `read` / `write` events of `run.vcpu` for those the engine
 * handled, `# device model: …` comments for the others; see `PlacementTraceOptions`.
 */
export function placementTrace(
  run: { readonly vcpu: string; readonly accesses: readonly ConfigAccess[] },
  options: PlacementTraceOptions = {},
): string[] {
  const expectReads = options.expectReads ?? true;
  const summarize = (options.emptySlots ?? 'summarize') === 'summarize';
  // A function is there if any access to it returned or wrote something other than all-ones.
  const present = new Set<number>();
  for (const a of run.accesses) {
    const ones = a.size === 4 ? 0xffffffff : (1 << (8 * a.size)) - 1;
    if (a.op === 'write' || a.value !== ones) present.add(a.devfn);
  }
  const lines: string[] = [];
  let skipped = 0;
  const empty = new Set<number>();
  for (const a of run.accesses) {
    if (summarize && a.op === 'read' && !present.has(a.devfn)) {
      skipped++;
      empty.add(a.devfn);
      continue;
    }
    const what = `${a.sbdf} reg ${hex(a.reg)} size ${a.size}`;
    if (a.via === 'device-model' || a.via === 'none') {
      const who = a.via === 'none' ? 'no device' : 'device model';
      lines.push(`# ${who}: ${a.op} ${what} ${a.op === 'read' ? '->' : '='} ${hex(a.value)}`);
      continue;
    }
    const base = `{"event":"${a.op}","vcpu":"${run.vcpu}","sbdf":"${a.sbdf}","reg":"${hex(a.reg)}","size":${a.size}`;
    if (a.op === 'write') lines.push(`${base},"value":"${hex(a.value)}"}`);
    else lines.push(expectReads ? `${base},"expect":"${hex(a.value)}"}` : `${base}}`);
  }
  if ((options.finish ?? true) && run.accesses.some((a) => a.op === 'write' && a.via === 'machine'))
    lines.push(`{"event":"run","vcpu":"${run.vcpu}"}`);
  if (skipped > 0)
    lines.unshift(
      `# scan: ${skipped} reads of ${empty.size} empty functions (all-ones) left out; a replay reads the same`,
    );
  return lines;
}

/** A `device` line from a description (addresses and sizes in hex). */
export function traceDeviceLine(spec: DeviceSpec): string {
  const bars = (spec.bars ?? []).map((bar) =>
    bar === null || bar === undefined
      ? null
      : {
          type: bar.type,
          size: hex(bar.size),
          ...(bar.addr === undefined ? {} : { addr: hex(bar.addr) }),
          ...(bar.prefetchable === true ? { prefetchable: true } : {}),
        },
  );
  const line = {
    event: 'device',
    sbdf: formatSbdf(toSbdf(spec.sbdf)),
    ...(spec.vendorId === undefined ? {} : { vendorId: hex(spec.vendorId) }),
    ...(spec.deviceId === undefined ? {} : { deviceId: hex(spec.deviceId) }),
    ...(spec.headerType === undefined || spec.headerType === 0 ? {} : { headerType: spec.headerType }),
    ...(spec.command === undefined || spec.command === 0 ? {} : { command: hex(spec.command) }),
    ...(bars.length === 0 ? {} : { bars }),
    ...(spec.rom === undefined
      ? {}
      : {
          rom: {
            size: hex(spec.rom.size),
            ...(spec.rom.addr === undefined ? {} : { addr: hex(spec.rom.addr) }),
            ...(spec.rom.enabled === true ? { enabled: true } : {}),
          },
        }),
    ...(spec.msix === undefined
      ? {}
      : {
          msix: {
            entries: spec.msix.entries,
            table: { bar: spec.msix.table.bar, offset: hex(spec.msix.table.offset) },
            pba: { bar: spec.msix.pba.bar, offset: hex(spec.msix.pba.offset) },
          },
        }),
  };
  return JSON.stringify(line);
}

/** A `domain` line giving guest `id` the MTRR layout `mtrr` (the firmware's, on every vCPU). */
export function traceDomainLine(id: number, mtrr: MtrrState, vcpus = 1): string {
  return JSON.stringify({
    event: 'domain',
    id,
    ...(vcpus === 1 ? {} : { vcpus }),
    mtrr: mtrrLayoutJson(mtrr),
  });
}

/**
 * `bar` assertions for every placed memory BAR and ROM: where it decodes (`addr` for the hardware
 * domain, whose BARs are the host's; `guestAddr` for a guest) and its size, and (BARs, not ROMs) that
 * decoding mapped it. `machineSbdf` names the machine's device behind a devfn (default: bus 0 itself,
 * the hardware domain's view). BARs not on the machine (the device model's) are left out.
 */
export function traceBarAssertions(
  bars: readonly BarPlacement[],
  options: {
    readonly field?: 'addr' | 'guestAddr';
    readonly machineSbdf?: (devfn: number) => string | undefined;
  } = {},
): string[] {
  const field = options.field ?? 'addr';
  const name =
    options.machineSbdf ??
    ((devfn: number) => formatSbdf(toSbdf(`00:${(devfn >> 3).toString(16)}.${devfn & 7}`)));
  const lines: string[] = [];
  for (const bar of bars) {
    if (bar.kind === 'io' || bar.decodes === undefined) continue;
    const sbdf = name(bar.devfn);
    if (sbdf === undefined) continue;
    const enabled = bar.kind === 'rom' ? '' : ',"enabled":true';
    lines.push(
      `{"event":"assert","bar":{"sbdf":"${sbdf}","index":${bar.index},"${field}":"${hex(bar.decodes)}","size":"${hex(bar.size)}"${enabled}}}`,
    );
  }
  return lines;
}
