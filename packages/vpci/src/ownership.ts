/**
 * Who owns, maps or is about to map what: the questions the header handlers, the deferred work and
 * the sharing checks ask about the other devices and domains of the machine. Nothing here changes
 * the engine's state (the BARs a device's registers decode are remembered on the device).
 */

import type { Gfn, Mfn } from '@vpci/p2m';
import { type EngineContext, mappingDomain } from './context.js';
import { Bar, barAddress } from './device.js';
import type { Domain, PciDevice } from './domain.js';
import type { PhysicalDevice } from './hardware.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_HEADER_BRIDGE_NR_BARS,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_HEADER_TYPE,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS1,
  PCI_SRIOV_BAR,
  PCI_SRIOV_NUM_BARS,
} from './pci-regs.js';
import { vfBarAddress } from './sriov-hardware.js';

/**
 * Hidden (dom_xen) and quarantined (dom_io) devices count as the hardware domain's for sharing: it
 * reaches both on the hardware.
 */
export function effectiveOwner(context: EngineContext, device: PciDevice): number | undefined {
  if (device.domain?.isPseudo === true) return context.hardwareDomain.id;
  return device.domain?.id;
}

/**
 * The memory BARs and ROM of a device at their host addresses, for what a page shared with it is
 * about: where the hardware has them, whether or not vPCI handles the device (a guest's vPCI has no
 * ROM; a device whose vPCI set-up failed has no vPCI state), and also where vPCI has them when that
 * differs (the hardware domain's BAR writes are kept as written, not cut to the size; a ROM's new
 * address reaches the register only when its deferred map completes).
 */
export function hostBars(device: PciDevice): Bar[] {
  const bars = hardwareBars(device);
  for (const bar of device.vpci?.bars ?? []) {
    if (!bar.mappable || bar.size === 0n) continue;
    if (!bars.some((known) => known.addr === bar.addr && known.size === bar.size)) bars.push(bar);
  }
  return bars;
}

/** The host frames `[first, last]` of each of `hostBars(device)`, in that order. */
export function hostBarFrames(device: PciDevice): (readonly [Mfn, Mfn])[] {
  // `hostBars` without its copies: the checks ask after every line that moved a BAR.
  const decoded = rememberedHardwareBars(device);
  const bars = device.vpci?.bars;
  // The vPCI BARs listed besides the decoded ones, by slot bit; the list is then made at its length
  // (an empty list's first push takes a store of 17, and cutting a list is a call).
  let unlisted = 0;
  let count = decoded.length;
  for (let i = 0; bars !== undefined && i < bars.length; i++) {
    const bar = bars[i]!;
    if (!bar.mappable || bar.size === 0n) continue;
    // Where `hostBars` would find it listed already: a decoded BAR, or a vPCI BAR before it, alike.
    let listed = false;
    for (let k = 0; k < decoded.length && !listed; k++) listed = sameAddrAndSize(decoded[k]!, bar);
    for (let k = 0; k < i && !listed; k++)
      listed = bars[k]!.mappable && bars[k]!.size !== 0n && sameAddrAndSize(bars[k]!, bar);
    if (listed) continue;
    unlisted |= 1 << i;
    count++;
  }
  const frames = new Array<readonly [Mfn, Mfn]>(count);
  let n = 0;
  for (let i = 0; i < decoded.length; i++) frames[n++] = decoded[i]!.hostFrames();
  for (let i = 0; bars !== undefined && i < bars.length; i++)
    if ((unlisted & (1 << i)) !== 0) frames[n++] = bars[i]!.hostFrames();
  return frames;
}

function sameAddrAndSize(a: Bar, b: Bar): boolean {
  return a.addr === b.addr && a.size === b.size;
}

/** The memory BARs and ROM the device's registers decode (not vPCI's view), a copy. */
export function registerBars(device: PciDevice): Bar[] {
  return hardwareBars(device);
}

/**
 * The BARs a device's registers decode, remembered on the device until a BAR register is next written: the
 * sharing checks ask for every device's BARs after every replayed line.
 */
function hardwareBars(device: PciDevice): Bar[] {
  return [...rememberedHardwareBars(device)];
}

/**
 * `hardwareBars` as the device remembers them (not a copy: to read, never to change; the list is
 * rewritten in place by the next decoding, its `Bar`s never).
 */
function rememberedHardwareBars(device: PciDevice): readonly Bar[] {
  // A VF's BAR registers read zero: its BARs are where its PF's VF BAR registers put them.
  const hw = device.physfn?.hw ?? device.hw;
  const cached = device.decodedBars;
  if (cached !== undefined && cached.barWrites === hw.barWrites) return cached.bars;
  if (device.physfn !== undefined) {
    const bars = vfDecodedBars(hw, device.vfIndex);
    device.decodedBars = { barWrites: hw.barWrites, bars };
    return bars;
  }
  if (cached instanceof DecodedBars) {
    cached.decodeAgain(hw);
    return cached.bars;
  }
  const decoded = new DecodedBars();
  decoded.decodeAgain(hw);
  device.decodedBars = decoded;
  return decoded.bars;
}

/**
 * VF `n`'s memory BARs as its PF's SR-IOV capability places them (`VF BAR i + n × size_i`, the size
 * under the current System Page Size; PCIe 9.3.3.14), read from the registers (nothing written).
 */
function vfDecodedBars(pf: PhysicalDevice, n: number): Bar[] {
  const sriov = pf.sriov;
  const bars: Bar[] = [];
  if (sriov === undefined) return bars;
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const size = sriov.vfBarSize(i);
    if (size === 0n) continue;
    const reg = sriov.pos + PCI_SRIOV_BAR + 4 * i;
    const low = pf.read(reg, 4);
    const is64 = (low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
    const high = is64 && i + 1 < PCI_SRIOV_NUM_BARS ? BigInt(pf.read(reg + 4, 4)) << 32n : 0n;
    const addr = barAddress(vfBarAddress(BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0) | high, size, n));
    bars.push(Bar.decoded(i, is64 ? 'mem64lo' : 'mem32', size, addr));
  }
  return bars;
}

/** The memory BARs and ROM the device decodes, read from its registers (nothing is written). */
export function decodedBars(hw: PhysicalDevice): Bar[] {
  const decoded = new DecodedBars();
  decoded.decodeAgain(hw);
  return decoded.bars;
}

/** How many slots a device decodes at most: six BARs and the ROM (a bridge's ROM is its slot 2). */
const SLOTS = PCI_HEADER_NORMAL_NR_BARS + 1;
/**
 * How many decodings of a slot are kept: a 64-bit BAR sized and placed half by half goes through
 * four pairs of words (placed, low half probed, both, high half still probed) and back.
 */
const KEPT_PER_SLOT = 4;

/**
 * A device's decoded BARs (`PciDevice.decodedBars`), decoded again in place after its BAR registers
 * are written. The checks decode a device again after every line that wrote a BAR register, and the
 * hardware domain sizing and placing a BAR writes the same few words into it reprogramming after
 * reprogramming: so once a device's registers were written, the last `KEPT_PER_SLOT` `Bar`s of each
 * slot are kept with the register words each was made of (its address's low and high halves; a
 * ROM's register and the register's writable address bits, which give its size), and a slot whose
 * words and size are one of those gives that `Bar` again, which has its frames worked out already.
 * A new `Bar` and its frames are bigint arithmetic, most of such a line's checks. Only
 * `rememberedHardwareBars` holds one, and what it hands out is read at once or copied
 * (`hardwareBars`): nothing changes a decoded `Bar`.
 */
class DecodedBars {
  barWrites = -1;
  readonly bars: Bar[] = [];
  private headerType = -1;
  /**
   * Per slot (`KEPT_PER_SLOT` places from `slot * KEPT_PER_SLOT`), the `Bar`s kept and the words
   * each was made of (two per place), and the place of each slot to fill next. Made at the first
   * decoding after a register write: most devices' BARs are never written after they are first read.
   */
  private kept:
    | { readonly bars: (Bar | undefined)[]; readonly words: Float64Array; readonly next: Uint8Array }
    | undefined;

  /** `bars` as `hw`'s registers decode them now (nothing is written). */
  decodeAgain(hw: PhysicalDevice): void {
    if (this.barWrites !== -1)
      this.kept ??= {
        bars: [],
        words: new Float64Array(2 * SLOTS * KEPT_PER_SLOT),
        next: new Uint8Array(SLOTS),
      };
    const headerType = hw.read(PCI_HEADER_TYPE, 1) & 0x7f;
    // Another layout (other slots): nothing kept holds.
    if (headerType !== this.headerType) this.kept?.bars.fill(undefined);
    this.headerType = headerType;
    this.barWrites = hw.barWrites;
    // Overwritten in place, then cut where it got shorter (emptied first, the list would give its
    // store back and take a new one at the first push).
    const bars = this.bars;
    let n = 0;
    if (headerType <= 1) n = this.decodeSlots(hw, headerType);
    if (bars.length !== n) bars.length = n;
  }

  /** `decodeAgain` of a header with BARs: writes them into `bars` from 0, returns how many. */
  private decodeSlots(hw: PhysicalDevice, headerType: number): number {
    const bars = this.bars;
    let n = 0;
    const slots = headerType === 0 ? PCI_HEADER_NORMAL_NR_BARS : PCI_HEADER_BRIDGE_NR_BARS;
    for (let i = 0; i < slots; i++) {
      const size = hw.barSize(i);
      const low = hw.read(PCI_BASE_ADDRESS_0 + 4 * i, 4);
      if (size === 0n || (low & PCI_BASE_ADDRESS_SPACE_IO) !== 0) continue;
      const is64 = (low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (is64 && i + 1 >= slots) continue; // no high half: sizing finds nothing there (as Xen does)
      const highWord = is64 ? hw.read(PCI_BASE_ADDRESS_0 + 4 * i + 4, 4) : 0;
      let bar = this.keptBar(i, low, highWord, size);
      if (bar === undefined) {
        const high = is64 ? BigInt(highWord) << 32n : 0n;
        const addr = barAddress(BigInt((low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0) | high);
        bar = this.keep(i, low, highWord, Bar.decoded(i, is64 ? 'mem64lo' : 'mem32', size, addr));
      }
      bars[n++] = bar;
    }
    const romMask = hw.romAddressMask();
    if (romMask === 0) return n;
    const romWord = hw.read(headerType === 0 ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1, 4);
    // The mask gives the size (`romSize`): the same mask, the same size.
    const rom =
      this.keptBar(slots, romWord, romMask, undefined) ??
      this.keep(
        slots,
        romWord,
        romMask,
        Bar.decoded(slots, 'rom', hw.romSize(), barAddress(BigInt((romWord & PCI_ROM_ADDRESS_MASK) >>> 0))),
      );
    bars[n++] = rom;
    return n;
  }

  /** The `Bar` kept of slot `slot` made of words `low` and `high` and of `size` (any, undefined). */
  private keptBar(slot: number, low: number, high: number, size: bigint | undefined): Bar | undefined {
    const kept = this.kept;
    if (kept === undefined) return undefined;
    for (let at = slot * KEPT_PER_SLOT; at < (slot + 1) * KEPT_PER_SLOT; at++) {
      const bar = kept.bars[at];
      if (bar === undefined) continue;
      if (
        kept.words[2 * at] === low &&
        kept.words[2 * at + 1] === high &&
        (size === undefined || bar.size === size)
      )
        return bar;
    }
    return undefined;
  }

  /** `bar`, kept (when keeping) as slot `slot`'s made of `low` and `high`, in place of its oldest. */
  private keep(slot: number, low: number, high: number, bar: Bar): Bar {
    const kept = this.kept;
    if (kept === undefined) return bar;
    const at = slot * KEPT_PER_SLOT + kept.next[slot]!;
    kept.next[slot] = (kept.next[slot]! + 1) % KEPT_PER_SLOT;
    kept.bars[at] = bar;
    kept.words[2 * at] = low;
    kept.words[2 * at + 1] = high;
    return bar;
  }
}

/**
 * Hardened (XSA-461): a machine frame of `[start, end]` that a domain other than the one `device` is
 * mapped into maps (through any device's BAR), or that a pending map there is about to map, and that
 * domain; undefined when there is none. The first found walking the devices by SBDF: per device its
 * BARs' pending sets by slot, then, at the first device of a domain, the domain's MMIO mappings of
 * those frames in gfn order (a search of the p2m's index by machine frame, not a pass over it).
 */
export function mappedByOtherDomain(
  context: EngineContext,
  device: PciDevice,
  start: Mfn,
  end: Mfn,
): { mfn: Mfn; domain: number } | undefined {
  const own = mappingDomain(context, device);
  const seen = new Set<Domain>();
  for (const other of context.devices()) {
    const domain = mappingDomain(context, other);
    if (domain === undefined || domain === own) continue;
    for (const bar of other.vpci?.bars ?? []) {
      if (bar.mem === undefined || bar.mem.isEmpty()) continue;
      const [first, last] = bar.hostFrames();
      // The larger of two machine frames.
      if (first <= end && start <= last) return { mfn: Math.max(start, first) as Mfn, domain: domain.id };
    }
    if (seen.has(domain)) continue;
    seen.add(domain);
    const extent = domain.p2m.extentsOfTypeMeetingMfns('mmio_direct', start, end)[0];
    // The larger of two machine frames.
    if (extent !== undefined) return { mfn: Math.max(start, extent.mfn) as Mfn, domain: domain.id };
  }
  return undefined;
}

/**
 * Hardened: an enabled BAR of another device mapped into the same domain whose guest frames meet
 * `bar`'s with a different guest → machine shift (two BARs a guest put over each other); of those, one
 * of the device first in the machine's device order, its lowest slot. Asked for every BAR mapped:
 * with the machine's index of enabled BARs (`EngineContext.enabledBars`) a search of the BARs meeting
 * `bar`'s frames, as `modifyBars`' Step C makes; a walk over every device's BARs made it quadratic in
 * the devices over a trace (4,096 devices mapped one by one: 27 s).
 */
export function overlappingBar(
  context: EngineContext,
  device: PciDevice,
  bar: Bar,
): { device: PciDevice; first: Gfn } | undefined {
  const domain = mappingDomain(context, device);
  const [start, end] = bar.guestFrames();
  const shift = bar.hostFrames()[0] - start;
  const index = context.enabledBars;
  if (index === undefined || domain === undefined)
    return overlappingBarByWalk(context, device, domain, start, end, shift);
  // The index gives them by device in the domain's list order, each device's by slot: a device's
  // first is the walk's. Nearly always none.
  let found: { device: PciDevice; first: Gfn } | undefined;
  for (const entry of index.enabledMeeting(context, domain, [[start, end]])) {
    const first = entry.bar.guestFrames()[0];
    if (entry.device === device || entry.bar.hostFrames()[0] - first === shift) continue;
    if (found === undefined) found = { device: entry.device, first };
    // Two devices' (the list's order is not the machine's): the walk says which comes first.
    else if (entry.device !== found.device)
      return overlappingBarByWalk(context, device, domain, start, end, shift);
  }
  return found;
}

/** `overlappingBar` by a walk over every device of the machine and its BARs, in the machine's order. */
function overlappingBarByWalk(
  context: EngineContext,
  device: PciDevice,
  domain: Domain | undefined,
  start: Gfn,
  end: Gfn,
  shift: number,
): { device: PciDevice; first: Gfn } | undefined {
  for (const other of context.devices()) {
    if (other === device || other.vpci === undefined || mappingDomain(context, other) !== domain) continue;
    for (const remote of other.vpci.bars) {
      if (!remote.enabled) continue;
      const [first, last] = remote.guestFrames();
      if (first <= end && start <= last && remote.hostFrames()[0] - first !== shift)
        return { device: other, first };
    }
  }
  return undefined;
}

/** Name of a vCPU with a pending operation on `device`, if any. */
export function pendingVcpuOf(context: EngineContext, device: PciDevice): string | undefined {
  return pendingVcpu(context, device, undefined);
}

/** Name of a vCPU with a pending operation on a device mapped into the same domain as `device`. */
export function pendingInDomain(context: EngineContext, device: PciDevice): string | undefined {
  return pendingVcpu(context, device, mappingDomain(context, device));
}

/**
 * A vCPU of the hardware domain or of the device's owner with work pending on `device`, or with
 * `domain` given, on any device mapped into `domain`: the first of the hardware domain's vCPUs, else
 * of the owner's, by id. Read from the machine's record of the vCPUs with pending work (few), not
 * from a walk over the vCPUs. Asked after every replayed line: no closures or arrays are made.
 */
function pendingVcpu(
  context: EngineContext,
  device: PciDevice,
  domain: Domain | undefined,
): string | undefined {
  const hardware = context.hardwareDomain;
  const owner = device.domain;
  const record = hardware.pendingVcpus;
  // The record is in domain id order, and the hardware domain's id (0) is the lowest: its vCPUs come
  // before the owner's.
  for (const vcpu of domain === undefined ? record.on(device) : record.vcpus()) {
    if (vcpu.domain !== hardware && vcpu.domain !== owner) continue;
    if (domain === undefined || mappingDomain(context, vcpu.pending!.device) === domain) return vcpu.name;
  }
  return undefined;
}
