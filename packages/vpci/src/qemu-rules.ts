/**
 * The `qemu` rule set: QEMU's PCI core (hw/pci/pci.c), where a BAR follows its register at once.
 *
 * - `pci_default_write_config`: a write that reaches a BAR (0x10–0x27), the ROM (0x30 or 0x38) or
 *   the command register's low byte calls `pci_update_mappings`; no write is ignored, none deferred.
 * - `pci_update_mappings`: for every BAR with a size, `pci_bar_address` says where it decodes now
 *   (or `PCI_BAR_UNMAPPED`); if that differs from where it is mapped, the old mapping is deleted
 *   (`pci_update_mappings_del`) and the new one added (`pci_update_mappings_add`).
 * - `pci_bar_address`: an I/O BAR decodes (as ports) with `PCI_COMMAND_IO`, a memory BAR or the ROM
 *   with `PCI_COMMAND_MEMORY`, the ROM only with its enable bit; the address is the register (both
 *   halves of a 64-bit BAR, `pci_get_quad`, whatever each holds) cut to the size; it is unmapped when
 *   it is 0, when its last byte wraps or is all-ones (the sizing probe), and, for an I/O or 32-bit
 *   BAR, when its last byte reaches 4 GiB - 1.
 *
 * The engine's side of a decision: a memory BAR or ROM that decodes is `enabled` and its pages are
 * mapped, the MSI-X table and PBA pages left out (QEMU's `msix_init` lays the table and PBA regions
 * over the BAR, so their accesses reach its emulation, not the BAR); a page two decoding BARs share
 * is mapped for the first in device order (QEMU gives overlapping BARs one priority, 1). An I/O BAR
 * that decodes has `portsDecoded`. The hardware domain's registers are the device's; a guest's are
 * its view (`guestAddr`, `guestCmd`), its host frames staying where they are.
 */
import { type Errno, type Gfn, MAX_FRAME, gfn as toGfn, mfn as toMfn } from '@vpci/p2m';
import { RangeSet } from '@vpci/rangeset';
import { archMmioCalls } from './arch.js';
import { type EngineContext, mappingDomain } from './context.js';
import { type Bar, barAddress } from './device.js';
import type { AccessorRef, Domain, PciDevice, Vcpu } from './domain.js';
import type { VpciEvent } from './events.js';
import type { ModifyBarsResult } from './modify-bars.js';
import { msixBir, msixGuestFrames, msixMayLieOutsideBars } from './msix.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS1,
} from './pci-regs.js';
import type { RuleSet } from './rule-set.js';
import { sbdfKey } from './sbdf.js';

const U32 = 0xffffffffn;
const U64 = (1n << 64n) - 1n;

/** What `qemuBarAddress` needs of a BAR: its kind and size. */
export interface QemuRegion {
  /** `io`, a memory BAR (`mem32`, `mem64lo`) or the ROM. */
  readonly type: 'io' | 'mem32' | 'mem64lo' | 'rom';
  /** Size in bytes (a power of two). */
  readonly size: bigint;
}

/**
 * QEMU's `pci_bar_address(d, reg, type, size)` (hw/pci/pci.c, a pc machine: `pci_allow_0_address`
 * false): where the BAR decodes given its register `value` (both halves for a 64-bit BAR; the ROM
 * register with its enable bit) and the command register `cmd`; undefined for `PCI_BAR_UNMAPPED`.
 */
export function qemuBarAddress(region: QemuRegion, value: bigint, cmd: number): bigint | undefined {
  const { type, size } = region;
  const cut = value & ~(size - 1n) & U64;
  const last = (cut + size - 1n) & U64;
  if (type === 'io') {
    if ((cmd & PCI_COMMAND_IO) === 0) return undefined;
    // "Check if 32 bit BAR wraps around explicitly."
    if (last <= cut || last >= U32 || cut === 0n) return undefined;
    return cut;
  }
  if ((cmd & PCI_COMMAND_MEMORY) === 0) return undefined;
  // "the ROM slot has a specific enable bit"
  if (type === 'rom' && (value & BigInt(PCI_ROM_ADDRESS_ENABLE)) === 0n) return undefined;
  // "NOTE: we do not support wrapping"; all-ones is PCI_BAR_UNMAPPED itself.
  if (last <= cut || last === U64 || cut === 0n) return undefined;
  // "Check if 32 bit BAR wraps around explicitly": only a 64-bit BAR may reach past 4 GiB.
  if (type !== 'mem64lo' && last >= U32) return undefined;
  return cut;
}

/** Whether the device's registers are the hardware's (the hardware domain's view), not a guest's. */
function onHardware(device: PciDevice): boolean {
  return device.domain?.kind !== 'guest';
}

/** The config offset of a BAR slot's register (the ROM's depends on the header type). */
function registerOf(bar: Bar): number {
  if (bar.type !== 'rom') return PCI_BASE_ADDRESS_0 + 4 * bar.index;
  return bar.index === PCI_HEADER_NORMAL_NR_BARS ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1;
}

/**
 * The BAR's register as QEMU reads it in `pci_bar_address` (`pci_get_long`, or `pci_get_quad` for a
 * 64-bit BAR): the device's registers for the hardware domain, the guest's view for a guest.
 */
function registerValue(device: PciDevice, bar: Bar): bigint {
  if (onHardware(device)) {
    const reg = registerOf(bar);
    const low = BigInt(device.hw.read(reg, 4) >>> 0);
    return bar.type === 'mem64lo' ? low | (BigInt(device.hw.read(reg + 4, 4) >>> 0) << 32n) : low;
  }
  const rom = bar.type === 'rom' && device.vpci!.romEnabled ? BigInt(PCI_ROM_ADDRESS_ENABLE) : 0n;
  return bar.guestAddr | rom;
}

/** The command register as QEMU reads it: the device's, or the guest's view. */
function commandOf(device: PciDevice): number {
  return onHardware(device) ? device.hw.read(PCI_COMMAND, 2) : device.vpci!.guestCmd;
}

/** Where the BAR decodes now in the engine's state (undefined: nowhere). */
function decodedAt(bar: Bar): bigint | undefined {
  if (bar.type === 'io') return bar.portsDecoded ? bar.guestAddr : undefined;
  return bar.enabled ? bar.guestAddr : undefined;
}

/** The BARs `pci_update_mappings` walks: every region with a size (64-bit high halves are not). */
function isRegion(bar: Bar): bar is Bar & { type: QemuRegion['type'] } {
  return bar.size > 0n && (bar.mappable || bar.type === 'io');
}

/**
 * QEMU's `pci_update_mappings(d)` with the command register `cmd`: every BAR whose decoding address
 * changed is deleted where it was and added where it is now.
 */
export function qemuUpdateMappings(context: EngineContext, device: PciDevice, cmd = commandOf(device)): void {
  const vpci = device.vpci!;
  for (const bar of vpci.bars) {
    if (!isRegion(bar)) continue;
    const value = registerValue(device, bar);
    const next = qemuBarAddress(bar, value, cmd);
    const now = decodedAt(bar);
    if (next === now) {
      // Not decoding either way: the state still follows the register (the hardware domain's).
      if (now === undefined) follow(device, bar, value);
      continue;
    }
    if (now !== undefined) release(context, device, bar);
    follow(device, bar, value);
    if (next !== undefined) decode(context, device, bar);
  }
  vpci.barsMapped = (cmd & PCI_COMMAND_MEMORY) !== 0;
}

/** The hardware domain's BAR takes its register's address, cut to its size (identity mapped). */
function follow(device: PciDevice, bar: Bar, value: bigint): void {
  if (!onHardware(device)) return;
  const addr = barAddress(value & ~(bar.size - 1n) & U64);
  if (bar.addr !== addr) bar.addr = addr;
  if (bar.guestAddr !== addr) bar.guestAddr = addr;
}

/** `pci_update_mappings_add`: the BAR decodes at its address now. */
function decode(context: EngineContext, device: PciDevice, bar: Bar): void {
  if (bar.type === 'io') {
    bar.portsDecoded = true;
    return;
  }
  bar.enabled = true;
  syncFrames(context, device, bar.guestFrames());
}

/** `pci_update_mappings_del`: the BAR no longer decodes where it did. */
function release(context: EngineContext, device: PciDevice, bar: Bar): void {
  if (bar.type === 'io') {
    bar.portsDecoded = false;
    return;
  }
  bar.enabled = false;
  syncFrames(context, device, bar.guestFrames());
}

/** A run of guest frames and the decoding BAR whose machine frames it maps. */
interface Wanted {
  readonly first: number;
  readonly last: number;
  readonly bar: Bar;
}

/** A decoding BAR and its device. */
interface DecodingBar {
  readonly device: PciDevice;
  readonly bar: Bar;
}

/** Every decoding memory BAR and ROM mapped into `domain`, in device order: a walk over every device. */
function walkDecodingBars(context: EngineContext, domain: Domain): DecodingBar[] {
  const walked: DecodingBar[] = [];
  for (const other of context.devices()) {
    if (other.vpci === undefined || mappingDomain(context, other) !== domain) continue;
    for (const bar of other.vpci.bars) if (bar.enabled && bar.mappable) walked.push({ device: other, bar });
  }
  return walked;
}

/**
 * The decoding memory BARs and ROMs mapped into `domain` whose guest frames meet `[first, last]`, in
 * device order (by SBDF, as `devices()` lists them, then by slot): the order that picks which of
 * several overlapping BARs maps a page. With the machine's index of enabled BARs
 * (`EngineContext.enabledBars`) a search, sorted (the index gives `modify_bars`' walk order, by
 * `pdev_list`, not by SBDF); without it (a fake context) the walk. Walking every device on every sync
 * was quadratic over a trace turning thousands on.
 */
function decodingBarsMeeting(
  context: EngineContext,
  domain: Domain,
  first: number,
  last: number,
): DecodingBar[] {
  const index = context.enabledBars;
  if (index === undefined)
    return walkDecodingBars(context, domain).filter(({ bar }) => {
      const [start, end] = bar.guestFrames();
      return start <= last && end >= first;
    });
  const found = index.enabledMeeting(context, domain, [[first, last]]).filter((entry) => entry.bar.mappable);
  if (found.length < 2) return found;
  return found.sort((a, b) =>
    a.device === b.device ? a.order - b.order : sbdfKey(a.device.sbdf) - sbdfKey(b.device.sbdf),
  );
}

/**
 * The devices whose MSI-X structures may lie over frames that `decoding` (the decoding BARs meeting
 * them) cover: theirs, as a structure lies inside its BAR; on a machine where one may lie outside
 * (a BAR resized since, `msixMayLieOutsideBars`) every device of the domain with a decoding BAR.
 */
function msixHoleOwners(
  context: EngineContext,
  domain: Domain,
  decoding: readonly DecodingBar[],
): readonly DecodingBar[] {
  return msixMayLieOutsideBars(context) ? walkDecodingBars(context, domain) : decoding;
}

/**
 * Makes the domain's p2m over guest frames `[first, last]` what the decoding BARs want: each page
 * of a decoding memory BAR or ROM maps that BAR's machine frame (the first such BAR in device order
 * where several overlap), except the MSI-X table and PBA pages of decoding BARs; every other MMIO
 * page there is unmapped. Bounded by the p2m's extents and the BARs meeting the frames, not by frames
 * or by the machine's devices (`decodingBarsMeeting`, `msixHoleOwners`). Exported for
 * qemu-sync.property.test.ts, which holds it to the walk it replaced.
 * @internal
 */
export function syncFrames(
  context: EngineContext,
  device: PciDevice,
  frames: readonly [number, number],
): void {
  const domain = mappingDomain(context, device);
  if (domain === undefined) return;
  const first = frames[0];
  const last = Math.min(frames[1], MAX_FRAME);
  if (first > last) return;
  const decoding = decodingBarsMeeting(context, domain, first, last);
  // What no BAR may map: the MSI-X structures of the decoding BARs.
  const free = RangeSet.from<Gfn>([[first as Gfn, last as Gfn]]);
  for (const { device: other } of msixHoleOwners(context, domain, decoding)) {
    const vpci = other.vpci!;
    for (let nr = 0; vpci.msix !== undefined && nr < 2; nr++) {
      if (!vpci.bars[msixBir(vpci, nr)]!.enabled) continue;
      const [start, end] = msixGuestFrames(vpci, nr);
      if (start <= last && end >= first)
        free.removeRange(Math.max(start, first) as Gfn, Math.min(end, last) as Gfn);
    }
  }
  // Each BAR takes the free frames it covers, in device order; they are free no more.
  const wanted: Wanted[] = [];
  for (const { bar } of decoding) {
    const [start, end] = bar.guestFrames();
    const s = Math.max(start, first) as Gfn;
    const e = Math.min(end, last) as Gfn;
    free.reportRanges(s, e, (fs, fe) => {
      wanted.push({ first: fs, last: fe, bar });
    });
    free.removeRange(s, e);
  }
  wanted.sort((a, b) => a.first - b.first);
  const p2m = domain.p2m;
  // Unmap what is mapped there and not wanted as it is: the extents and the wanted runs (disjoint,
  // both in frame order) merged, each run passed once.
  let next = 0;
  for (const extent of p2m.extentsIn(first as Gfn, last as Gfn)) {
    if (extent.type !== 'mmio_direct') continue;
    const s = Math.max(extent.gfn, first);
    const e = Math.min(extent.gfn + extent.count - 1, last);
    const shift = extent.mfn - extent.gfn;
    while (next < wanted.length && wanted[next]!.last < s) next++;
    let at = s;
    for (let k = next; k < wanted.length && wanted[k]!.first <= e; k++) {
      const w = wanted[k]!;
      const keep = w.bar.hostFrameOf(w.first as Gfn) - w.first === shift;
      if (w.first > at) p2mRun(context, device, domain, false, at, w.first - 1, at + shift);
      const to = Math.min(w.last, e);
      if (!keep)
        p2mRun(context, device, domain, false, Math.max(w.first, at), to, Math.max(w.first, at) + shift);
      at = to + 1;
    }
    if (at <= e) p2mRun(context, device, domain, false, at, e, at + shift);
  }
  // Map what is wanted (a page already mapping that frame is left as it is: setMmioEntry's "identical").
  for (const w of wanted)
    p2mRun(context, device, domain, true, w.first, w.last, w.bar.hostFrameOf(w.first as Gfn));
}

/**
 * One map or unmap of guest frames `[first, last]` onto machine frames from `mfn`, repeated until
 * done (x86 stops after 64 chunks with its progress). A failure (frames past the p2m's reach: QEMU's
 * memory API takes any address below 2^64) is an event, and the rest of the run is left.
 */
function p2mRun(
  context: EngineContext,
  device: PciDevice,
  domain: Domain,
  map: boolean,
  first: number,
  last: number,
  mfn: number,
): void {
  let at = first;
  while (at <= last) {
    const machine = mfn + (at - first);
    if (machine < 0 || machine + (last - at) > MAX_FRAME) {
      context.events.push(mapFailed(device, domain, map, at, machine, 'EINVAL'));
      return;
    }
    // Runs of whole calls at once (bounded by extents, not calls; the same p2m and counts).
    const rc = archMmioCalls(
      context.arch,
      domain.p2m,
      map,
      toGfn(at),
      last - at + 1,
      toMfn(machine),
      Number.POSITIVE_INFINITY,
    );
    if (!rc.ok) {
      context.events.push(mapFailed(device, domain, map, at, machine, rc.code));
      return;
    }
    at += rc.done ? last - at + 1 : rc.progress;
  }
}

function mapFailed(
  device: PciDevice,
  domain: Domain,
  map: boolean,
  gfn: number,
  mfn: number,
  code: Errno,
): VpciEvent {
  return {
    kind: 'map-failed' as const,
    sbdf: device.name,
    domain: domain.id,
    operation: map ? ('map' as const) : ('unmap' as const),
    gfn,
    mfn,
    code,
    crashed: domain.crashed,
  };
}

/**
 * `pci_default_write_config` on the command register: the value is stored (the guest's view, and
 * the device) and the mappings updated.
 */
function cmdWrite(context: EngineContext, _accessor: AccessorRef, device: PciDevice, value: number): void {
  if (!onHardware(device)) device.vpci!.guestCmd = value;
  device.hw.write(PCI_COMMAND, 2, value);
  qemuUpdateMappings(context, device);
}

/**
 * A BAR register of the hardware domain's device, memory or I/O alike (QEMU's
 * `pci_default_write_config` does not tell them apart): the device takes the value, the mappings
 * follow. The rule set's `barWrite` and `ioBarWrite` both.
 */
function barWrite(
  context: EngineContext,
  _accessor: AccessorRef,
  device: PciDevice,
  _bar: Bar,
  reg: number,
  value: number,
): void {
  device.hw.write(reg, 4, value >>> 0);
  qemuUpdateMappings(context, device);
}

/**
 * A guest's BAR register: its view takes the value (either half of a 64-bit BAR) cut to the size,
 * so all-ones reads back the size mask; the mappings follow. The BAR is deleted from where it was
 * first, since its view is where it is mapped.
 */
function guestBarWrite(
  context: EngineContext,
  _accessor: AccessorRef,
  device: PciDevice,
  bar: Bar,
  value: number,
): void {
  const vpci = device.vpci!;
  const hi = bar.type === 'mem64hi';
  const target = hi ? vpci.bars[bar.index - 1]! : bar;
  const shift = hi ? 32n : 0n;
  const half = BigInt((hi ? value : value & ~0xf) >>> 0) << shift;
  const guestAddr = barAddress(((target.guestAddr & ~(U32 << shift)) | half) & ~(target.size - 1n) & U64);
  if (guestAddr === target.guestAddr) return;
  if (target.enabled) release(context, device, target);
  target.guestAddr = guestAddr;
  qemuUpdateMappings(context, device);
}

/** The ROM register: the device takes the value, the enable bit is noted, the mappings follow. */
function romWrite(
  context: EngineContext,
  _accessor: AccessorRef,
  device: PciDevice,
  reg: number,
  value: number,
): void {
  device.hw.write(reg, 4, value >>> 0);
  device.vpci!.romEnabled = (value & PCI_ROM_ADDRESS_ENABLE) !== 0;
  qemuUpdateMappings(context, device);
}

/**
 * Decoding set at once to `cmd` (at set-up, and when a device leaves its owner): the command
 * register is written and `pci_update_mappings` run with it. Nothing is deferred, nothing refused.
 */
function modifyBars(
  context: EngineContext,
  _vcpu: Vcpu,
  device: PciDevice,
  cmd: number,
  romOnly: boolean,
): ModifyBarsResult {
  if (!romOnly) {
    if (!onHardware(device)) device.vpci!.guestCmd = cmd;
    device.hw.write(PCI_COMMAND, 2, cmd);
  }
  qemuUpdateMappings(context, device, romOnly ? commandOf(device) : cmd);
  return { ok: true };
}

/** QEMU's rule set (see the module comment). */
export const QEMU_RULES: RuleSet = Object.freeze({
  name: 'qemu',
  source:
    'qemu hw/pci/pci.c: pci_default_write_config, pci_update_mappings, pci_bar_address; hw/pci/msix.c: msix_init',
  hazards: Object.freeze([
    Object.freeze({
      violation: 'probe-mapped' as const,
      why: "pci_bar_address reads a 64-bit BAR's two halves as one (pci_get_quad): between the writes of a sizing or a move made one half at a time while decoding, the BAR is mapped at the mixed address",
    }),
    Object.freeze({
      violation: 'page-unmapped' as const,
      why: 'pci_bar_address accepts any 64-bit address whose last byte is below 2^64 - 1; the p2m holds guest frames below its address width, so a BAR past it (or one whose p2m call fails) decodes with its pages unmapped (a map-failed event)',
    }),
    Object.freeze({
      violation: 'subpage-shared' as const,
      why: 'QEMU maps a BAR as one memory region with no page rule: a page it shares with a BAR of a device of another domain is mapped whole',
    }),
  ]),
  cmdWrite,
  // Any command write can change the I/O or memory decoding (pci_default_write_config).
  commandMaps: () => true,
  barWrite,
  guestBarWrite,
  romWrite,
  // An I/O BAR's register is written as a memory BAR's (pci_default_write_config, then pci_update_mappings).
  ioBarWrite: barWrite,
  modifyBars,
} satisfies RuleSet);
