/**
 * Deferred execution (Xen's `defer_map`, `vpci_process_pending`, `map_range`, `apply_map`): the
 * frames `modifyBars` collected are mapped or unmapped by the vCPU in preemptible steps.
 */
import {
  type Gfn,
  MAX_FRAME,
  type Mfn,
  type MmioCost,
  type Paddr,
  gfn as toGfn,
  mfn as toMfn,
} from '@vpci/p2m';
import { type ConsumeResult, type ConsumeStep, RangeSet, type Result } from '@vpci/rangeset';
import { archMmioCalls, pciCheckBar } from './arch.js';
import type { EngineContext } from './context.js';
import { mappingDomain } from './context.js';
import { modifyDecoding, restoreMsixPages } from './decoding.js';
import { type Bar, hostFrameRange } from './device.js';
import type { Domain, PciDevice, PendingOperation, Vcpu, VfRangeWork } from './domain.js';
import { makeMsixHole } from './msix.js';
import { mappedByOtherDomain, pendingVcpuOf } from './ownership.js';
import { PCI_COMMAND_MEMORY, PCI_SRIOV_CTRL, PCI_SRIOV_CTRL_MSE } from './pci-regs.js';
import { countRangesetOps, purgeBarSets } from './rangeset-ops.js';
import { type VfDecoding, vfDecodingOf } from './sriov-decoding.js';
import { ENABLED_FLAG, stateChanged } from './state-generation.js';

/**
 * Error codes a deferred map can end with: the p2m's (`MmioErrno`: EINVAL or ENOENT for a frame past
 * the address width; on Arm `ArmMmioErrno`, with EILSEQ for RAM in an unmap), `EPERM` for frames the
 * domain may not map, and the MSI-X hole punch's `EEXIST` and `ENOMEM` (`msixHoleFailsMap`).
 */
export type MapErrno = 'EPERM' | 'EINVAL' | 'ENOENT' | 'ENOMEM' | 'EIO' | 'EOPNOTSUPP' | 'EEXIST' | 'EILSEQ';

/**
 * Outcome of `processPending` (Xen returns true to be called again). A status rather than a `Result`:
 * preemption and a dropped operation are not failures; `failed` carries the errno.
 * - `idle`: nothing was pending;
 * - `restart`: preempted, call again (Xen's `-ERESTART`);
 * - `done`: the operation completed and decoding was updated;
 * - `dropped`: the device lost its vPCI state or changed owner; nothing more is done;
 * - `failed`: a map or unmap failed with `code`; decoding is off and the sets are purged.
 */
export type PendingResult =
  | { readonly status: 'idle' | 'restart' | 'done' | 'dropped' }
  | { readonly status: 'failed'; readonly code: MapErrno };

/** Xen's `defer_map`: record the operation in the vCPU (overwriting any other: F2). */
export function deferMap(
  vcpu: Vcpu,
  device: PciDevice,
  cmd: number,
  romOnly: boolean,
  withheldBefore?: RangeSet<Gfn>,
): void {
  // FIXME (Xen, header.c defer_map): while the {un}map is deferred the device's state should not be
  // trusted: the enable bit flips only when the work completes, so a domain that is not well-behaved
  // can start parallel operations on the same device (F2 in docs/xen-gaps.md; `serialOperations`).
  const operation: PendingOperation = { device, cmd, romOnly, done: new Map() };
  // Set only when there is one (no spread of an object made for the purpose on every toggle).
  if (withheldBefore !== undefined) operation.withheldBefore = withheldBefore;
  vcpu.pending = operation;
}

/**
 * Hardened (`mapVfBarRanges`): record a PF's whole-range VF BAR operation in the vCPU, as `deferMap`
 * records a device's (sriov.ts builds it).
 */
export function deferVfRanges(vcpu: Vcpu, pf: PciDevice, cmd: number, work: VfRangeWork): void {
  vcpu.pending = { device: pf, cmd, romOnly: false, done: new Map(), vfRanges: work };
}

/**
 * Xen's `vpci_process_pending(v)`: consume each BAR's set through `mapRange`. `budget` is the number
 * of frames after which the work is preempted (checked, as Xen's `general_preempt_check`, after each
 * partial return of the p2m call); `Infinity` never preempts.
 */
export function processPending(context: EngineContext, vcpu: Vcpu, budget: number): PendingResult {
  const pending = vcpu.pending;
  if (pending === undefined) return { status: 'idle' };
  const { device, cmd, romOnly } = pending;
  if (device.vpci === undefined || device.domain !== vcpu.domain) {
    vcpu.pending = undefined;
    // Xen drops the work with the sets as they are (a hidden device's, owned by dom_xen, every
    // time): the device's next modify_bars adds to them. purgeOnError empties them, unless work
    // of the device's new owner is pending on them.
    if (context.policy.purgeOnError && pendingVcpuOf(context, device) === undefined)
      purgeBarSets(context, device);
    context.events.push({ kind: 'pending-dropped', sbdf: device.name, vcpu: vcpu.name });
    return { status: 'dropped' };
  }
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;
  const meter: Meter = { left: budget, failure: undefined };
  const domain = vcpu.domain;
  // The hardened whole-range VF sets are the engine's own, not Xen's: their calls are not counted.
  const counted = pending.vfRanges === undefined ? device : undefined;
  // One map_range callback for every BAR of the call, on the BAR at hand (a callback and a
  // `charged` closure made per BAR were garbage on every decoding toggle).
  let bar: Bar | undefined;
  let done: RangeSet<Gfn> | undefined;
  const step = (s: Gfn, e: Gfn): ConsumeStep<MapErrno> =>
    mapRange(context, domain, bar!, map, s, e, meter, done);
  const cost = domain.p2m.mmioCost;
  for (const each of operationBars(pending)) {
    if (each.mem === undefined || each.mem.isEmpty()) continue;
    bar = each;
    done = doneSet(context, pending.done, device, each);
    const { mapCalls, unmapCalls, leaves4K, leaves2M, leaves1G } = cost;
    const result = consumeBarSet(context, counted, each, step);
    chargeSince(device, cost, mapCalls, unmapCalls, leaves4K, leaves2M, leaves1G);
    if (result.ok && result.status === 'restart') {
      device.xenCost.continuations++;
      return { status: 'restart' };
    }
    if (!result.ok) {
      failPending(context, vcpu, result.code, meter);
      return { status: 'failed', code: result.code };
    }
  }
  if (pending.vfRanges !== undefined) {
    const decoded = vfDecoding(context, pending.vfRanges, device, cmd);
    if (!decoded.ok) {
      meter.failure = decoded.failure ?? meter.failure;
      failPending(context, vcpu, decoded.code, meter);
      return { status: 'failed', code: decoded.code };
    }
    vcpu.pending = undefined;
    return { status: 'done' };
  }
  if (!map && !romOnly && context.policy.restoreMsixPages) {
    // Mapped again before decoding goes off, so that a failure still finds the device as it was:
    // it is then the unmap's failure (rolled back under rollbackFailedMap).
    const restored = restoreMsixPages(context, device);
    if (!restored.ok) {
      meter.failure = { gfn: restored.gfn, mfn: restored.mfn };
      failPending(context, vcpu, restored.code, meter);
      return { status: 'failed', code: restored.code };
    }
  }
  // The ROM's unmap completes where the ROM was mapped, and only then does it move: moved first,
  // modify_decoding's pci_check_bar would look at its new place, and on Arm a ROM moved out of its
  // bridge's windows would stay flagged enabled over nothing mapped (as Xen's rom_write leaves it;
  // serialOperations holds the move, docs/xen-gaps.md G11). Moved, its register is written again
  // at the new address, as modify_decoding writes it.
  const decoded = modifyDecoding(context, device, cmd, romOnly, false);
  if (moveRom(context, device, pending.romMove)) modifyDecoding(context, device, cmd, true, false);
  if (!decoded.ok && context.policy.msixHoleFailsMap) {
    failPending(context, vcpu, decoded.code, meter);
    return { status: 'failed', code: decoded.code };
  }
  vcpu.pending = undefined;
  return { status: 'done' };
}

/**
 * Hardened: the ROM takes the address its deferred unmap was asked to move it to, unless another
 * domain has mapped a page there meanwhile (`refuseSubpageSharing`, checked again: an event, and
 * the ROM stays). Whether it moved.
 */
function moveRom(context: EngineContext, device: PciDevice, address: Paddr | undefined): boolean {
  if (address === undefined) return false;
  const rom = device.vpci!.bars[device.vpci!.romSlot]!;
  if (context.policy.refuseSubpageSharing) {
    const mapped = mappedByOtherDomain(context, device, ...hostFrameRange(address, rom.size));
    if (mapped !== undefined) {
      context.events.push({ kind: 'move-refused', sbdf: device.name, bar: rom.index, ...mapped });
      return false;
    }
  }
  rom.addr = address;
  rom.guestAddr = address;
  return true;
}

/**
 * Xen's failure path: decoding off for the whole device (even for a ROM-only toggle: G6), every set
 * purged, a guest crashed; frames already done stay (F8). Hardened: the frames done are first put
 * back (`rollbackFailedMap`), and a ROM-only failure touches only the ROM (`romFailureKeepsBars`).
 */
function failPending(context: EngineContext, vcpu: Vcpu, code: MapErrno, meter: Meter): void {
  const pending = vcpu.pending!;
  const { device, cmd, romOnly } = pending;
  const vpci = device.vpci!;
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;
  const domain = vcpu.domain;
  let restored = false;
  if (context.policy.rollbackFailedMap)
    restored = rollback(context, domain, device, map, pending.done, operationBars(pending));
  if (pending.vfRanges !== undefined) {
    failVfRanges(context, pending.vfRanges, device, restored && !map);
  } else if (!(restored && !map)) {
    // A rolled-back unmap leaves the BARs mapped as before; anything else ends with decoding off.
    moveRom(context, device, pending.romMove);
    if (romOnly && context.policy.romFailureKeepsBars) modifyDecoding(context, device, 0, true);
    else modifyDecoding(context, device, cmd & ~PCI_COMMAND_MEMORY, false);
  }
  if (pending.vfRanges === undefined) purgeBarSets(context, device);
  // The hardened whole-range VF sets are the engine's own (not Xen's `bar->mem`): not counted.
  else for (const bar of pending.vfRanges.bars) bar.mem?.purge();
  if (pending.withheldBefore !== undefined) vpci.withheld = pending.withheldBefore;
  vcpu.pending = undefined;
  const crashed = !domain.isHardware;
  const failed = meter.failure ?? { gfn: 0, mfn: 0 };
  context.events.push({
    kind: 'map-failed',
    sbdf: device.name,
    domain: domain.id,
    operation: map ? 'map' : 'unmap',
    gfn: failed.gfn,
    mfn: failed.mfn,
    code,
    crashed,
  });
  if (crashed) {
    domain.crash();
    context.events.push({
      kind: 'domain-crashed',
      domain: domain.id,
      reason: `vPCI ${map ? 'map' : 'unmap'} of ${device.name} failed: ${code}`,
    });
  }
}

/**
 * Runs `work` (map_range calls on `domain`'s p2m for `device`) and adds what its p2m calls cost
 * (`P2m.mmioCost`) to the device's `xenCost`.
 */
function charged<T>(device: PciDevice, domain: Domain, work: () => T): T {
  const cost = domain.p2m.mmioCost;
  const { mapCalls, unmapCalls, leaves4K, leaves2M, leaves1G } = cost;
  const result = work();
  chargeSince(device, cost, mapCalls, unmapCalls, leaves4K, leaves2M, leaves1G);
  return result;
}

/** Adds to the device's `xenCost` what `cost` (a p2m's) grew by since it read the given counts. */
function chargeSince(
  device: PciDevice,
  cost: MmioCost,
  mapCalls: number,
  unmapCalls: number,
  leaves4K: number,
  leaves2M: number,
  leaves1G: number,
): void {
  const tally = device.xenCost;
  tally.mapCalls += cost.mapCalls - mapCalls;
  tally.unmapCalls += cost.unmapCalls - unmapCalls;
  tally.leaves4K += cost.leaves4K - leaves4K;
  tally.leaves2M += cost.leaves2M - leaves2M;
  tally.leaves1G += cost.leaves1G - leaves1G;
}

/**
 * Xen's `rangeset_consume_ranges(bar->mem, map_range, …)`: one call, counted for `device` (unless
 * undefined) with the ranges it used up (the set only loses ranges from its front, whole, so the drop
 * in its size is that number).
 */
function consumeBarSet(
  context: EngineContext,
  device: PciDevice | undefined,
  bar: Bar,
  mapRange: (s: Gfn, e: Gfn) => ConsumeStep<MapErrno>,
): ConsumeResult<MapErrno> {
  const mem = bar.mem!;
  const before = mem.size;
  const result = mem.consumeRanges(mapRange);
  if (device !== undefined) {
    countRangesetOps(context, device, 'consumeRanges');
    countRangesetOps(context, device, 'rangesConsumed', before - mem.size);
  }
  return result;
}

/**
 * The set of `bar`'s frames done so far in `done`, made on first use; undefined unless
 * `rollbackFailedMap` (only its rollback reads them: without it, keeping them would cost a set per
 * BAR and a range added per p2m call of every map and unmap, for nothing).
 */
function doneSet(
  context: EngineContext,
  done: Map<number, RangeSet<Gfn>>,
  device: PciDevice,
  bar: Bar,
): RangeSet<Gfn> | undefined {
  if (!context.policy.rollbackFailedMap) return undefined;
  let set = done.get(bar.index);
  if (set === undefined) {
    set = new RangeSet<Gfn>({ name: `${device.name}:done${bar.index}` });
    done.set(bar.index, set);
  }
  return set;
}

/** The preemption budget of one `processPending` call, and where a failure happened. */
interface Meter {
  /** Frames left before preempting. */
  left: number;
  /** First guest frame and machine frame of the call that failed. */
  failure: { gfn: number; mfn: number } | undefined;
}

/**
 * Xen's `map_range(s, e)`: guest frames `s … e` of `bar` map machine frames from
 * `PFN_DOWN(addr) + (s - PFN_DOWN(guestAddr))`. Refused with EPERM unless the domain may use every
 * machine frame of the rest of the range. Partial progress is consumed; after each partial call the
 * budget is checked and the work preempted when spent.
 */
function mapRange(
  context: EngineContext,
  domain: Domain,
  bar: Bar,
  map: boolean,
  first: Gfn,
  last: Gfn,
  meter: Meter,
  done: RangeSet<Gfn> | undefined,
): ConsumeStep<MapErrno> {
  let s = first;
  let consumed = 0;
  for (;;) {
    const size = last - s + 1;
    const mfn = bar.hostFrameOf(s);
    // A guest address moved while the work was pending (F2) can put the machine frames below 0 or
    // past 2^52: Xen's unsigned arithmetic wraps them, and no domain is permitted such frames.
    // Inside that range they are machine frames.
    const inRange = mfn >= 0 && mfn + size - 1 <= MAX_FRAME;
    if (!inRange || !domain.iomem.containsRange(mfn as Mfn, (mfn + size - 1) as Mfn)) {
      context.events.push({ kind: 'iomem-denied', domain: domain.id, start: mfn, end: mfn + size - 1 });
      meter.failure = { gfn: s, mfn };
      return { consumed, next: 'fail', code: 'EPERM' };
    }
    // x86 returns after 64 chunks with the progress made (runs of such calls at once, bounded by
    // extents, not calls); Arm does all or fails (arch.ts).
    const rc = archMmioCalls(context.arch, domain.p2m, map, toGfn(s), size, toMfn(mfn), meter.left);
    if (!rc.ok) {
      meter.failure = { gfn: s, mfn };
      // Arm keeps the blocks written before a failure without counting them: not consumed, but
      // done for the hardened rollback.
      if (rc.written > 0) done?.addRange(s, (s + rc.written - 1) as Gfn);
      return { consumed, next: 'fail', code: rc.code };
    }
    const progress = rc.done ? size : rc.progress;
    // Frames of [s, last], so guest frames.
    done?.addRange(s, (s + progress - 1) as Gfn);
    consumed += progress;
    if (rc.done) return { consumed, next: 'continue' };
    s = (s + progress) as Gfn;
    meter.left -= progress;
    if (meter.left <= 0) return { consumed, next: 'restart' };
  }
}

/**
 * Hardened rollback of a failed operation: unmap what a map did, or map again what an unmap did.
 * Returns whether every frame was restored (a failure is reported by the caller's event).
 */
function rollback(
  context: EngineContext,
  domain: Domain,
  device: PciDevice,
  map: boolean,
  done: Map<number, RangeSet<Gfn>>,
  bars: readonly Bar[],
): boolean {
  let frames = 0;
  let complete = true;
  for (const [index, set] of done) {
    const bar = bars.find((b) => b.index === index)!;
    const result = charged(device, domain, () =>
      set.consumeRanges((s, e) => {
        const mfn = bar.hostFrameOf(s);
        const size = e - s + 1;
        let offset = 0;
        const undo = (from: number) =>
          archMmioCalls(
            context.arch,
            domain.p2m,
            !map,
            toGfn(s + from),
            size - from,
            toMfn(mfn + from),
            Number.POSITIVE_INFINITY,
          );
        while (offset < size) {
          // A p2m call that fails (ENOMEM: no memory for a page table, as an injected fault says) is
          // tried once more: the operation's own failure may have been that same shortage, and a
          // rollback left half done leaves frames mapped with no BAR enabled, or the other way round.
          let rc = undo(offset);
          if (!rc.ok) rc = undo(offset);
          if (!rc.ok) return { consumed: offset, next: 'fail', code: rc.code };
          offset += rc.done ? size - offset : rc.progress;
        }
        frames += size;
        return { consumed: size, next: 'continue' };
      }),
    );
    if (!result.ok) complete = false;
  }
  context.events.push({ kind: 'rollback', sbdf: device.name, domain: domain.id, frames });
  return complete;
}

/**
 * Xen's `apply_map` (building dom0): consume every set at once, restarting after preemption. Only
 * the last non-empty BAR's result counts (G3) unless `applyMapKeepsErrors`, which stops at the first
 * failure; on success decoding is updated. A failed map is undone under `rollbackFailedMap` (the
 * caller then tears the device's vPCI down, and nothing would explain the frames left). Xen only maps
 * here; the engine also unmaps this way when a device leaves a domain under `unmapOnDeassign`, where
 * every BAR is tried whatever fails (the device is leaving; nothing is put back).
 */
export function applyMap(context: EngineContext, device: PciDevice, cmd: number): Result<MapErrno> {
  const domain = mappingDomain(context, device)!;
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;
  const done = new Map<number, RangeSet<Gfn>>();
  let rc: Result<MapErrno> = { ok: true };
  for (const bar of device.vpci!.bars) {
    if (bar.mem === undefined || bar.mem.isEmpty()) continue;
    const frames = doneSet(context, done, device, bar);
    for (;;) {
      const meter: Meter = { left: Number.POSITIVE_INFINITY, failure: undefined };
      const result = charged(device, domain, () =>
        consumeBarSet(context, device, bar, (s, e) =>
          mapRange(context, domain, bar, map, s, e, meter, frames),
        ),
      );
      if (result.ok && result.status === 'restart') continue;
      rc = result.ok ? { ok: true } : { ok: false, code: result.code };
      break;
    }
    // G3: Xen goes on with the next BAR, whose result overwrites this one's.
    if (!rc.ok && context.policy.applyMapKeepsErrors) break;
  }
  if (rc.ok && !map && context.policy.restoreMsixPages) {
    // As in processPending: mapped again before decoding goes off, a failure failing the unmap
    // (modifyDecoding would restore them and drop the failure).
    const restored = restoreMsixPages(context, device);
    if (!restored.ok) rc = { ok: false, code: restored.code };
  }
  if (rc.ok) {
    modifyDecoding(context, device, cmd, false, false);
    return rc;
  }
  if (context.policy.rollbackFailedMap) rollback(context, domain, device, map, done, device.vpci!.bars);
  // G1: what the failed call left in the sets would be taken for work still to do.
  if (context.policy.purgeOnError) purgeBarSets(context, device);
  return rc;
}

/** The BARs whose sets an operation consumes: a PF's whole VF BAR ranges, or the device's own. */
function operationBars(pending: PendingOperation): readonly Bar[] {
  return pending.vfRanges?.bars ?? pending.device.vpci?.bars ?? [];
}

/**
 * The end of a PF's whole-range VF BAR operation (`mapVfBarRanges`): each VF it covers that is
 * still the domain's starts or stops decoding as `modify_decoding` has a device do (its BARs'
 * enabled flags, `barsMapped`, the MSI-X holes), except that its command register is not written:
 * VF MSE on the PF is what decodes a VF's BARs, and the VF's own Memory Space Enable is read-only
 * zero (v1's per-VF `modify_decoding` writes `cmd` there, clearing the VF's Bus Master Enable). After
 * an unmap, under `restoreMsixPages`, a VF's MSI-X pages another enabled BAR of the domain needs are
 * mapped again. A hole punch or restore that fails fails the operation under `msixHoleFailsMap` (as
 * for any device), with the frame where that is known.
 */
function vfDecoding(
  context: EngineContext,
  work: VfRangeWork,
  pf: PciDevice,
  cmd: number,
): Result<MapErrno> & { failure?: { gfn: number; mfn: number } } {
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;
  const decoding = bulkDecoding(context, work, pf);
  const indexes = work.packed?.indexes;
  let mask = 0;
  for (const bar of work.bars) mask |= 1 << bar.index;
  // Nearly always: the operation covers VFs 0 … n - 1, still all the attached VFs and none changed
  // since, each flipping alone (no MSI-X: nothing to restore or punch): one pass over their bytes.
  const whole = work.packed?.whole;
  if (
    decoding !== undefined &&
    whole !== undefined &&
    whole.attachments === decoding.attachments &&
    decoding.uniform(!map) === whole.count &&
    decoding.allFlipAlone(whole.count)
  ) {
    decoding.flipAll(whole.count, mask, map);
    stateChanged(ENABLED_FLAG);
    return { ok: true };
  }
  // Only a VF's MSI-X pages can be restored: asked once, and only when a VF has MSI-X (none of those
  // kept per VF BAR array when it counts none).
  const restore =
    !map &&
    context.policy.restoreMsixPages &&
    work.vfs.some(
      (vf, i) =>
        (decoding === undefined || decoding.withMsix > 0 || decoding.devices[indexes![i]!] !== vf) &&
        vf.vpci?.msix !== undefined,
    ) &&
    othersMeetRanges(context, work, pf);
  const slots = work.bars.map((bar) => bar.index);
  let flipped = false;
  const vfs = work.vfs;
  for (let i = 0; i < vfs.length; i++) {
    // A VF still kept in the PF's VF BAR arrays, with BARs of the current sizing and no MSI-X, flips
    // there: what `vfFlags` does to it, without loading it.
    if (decoding !== undefined) {
      const n = indexes![i]!;
      if (decoding.devices[n] === vfs[i] && decoding.flipsAlone(n)) {
        decoding.flipVf(n, mask, map);
        flipped = true;
        continue;
      }
    }
    const vf = vfs[i]!;
    if (vf.vpci === undefined || vf.domain !== pf.domain) continue;
    if (restore) {
      const restored = restoreMsixPages(context, vf);
      if (!restored.ok) {
        if (flipped) stateChanged(ENABLED_FLAG);
        return { ok: false, code: restored.code, failure: { gfn: restored.gfn, mfn: restored.mfn } };
      }
    }
    const decoded = vfFlags(context, vf, map, work.bars, slots);
    if (!decoded.ok && context.policy.msixHoleFailsMap) {
      if (flipped) stateChanged(ENABLED_FLAG);
      return decoded;
    }
  }
  if (flipped) stateChanged(ENABLED_FLAG);
  return { ok: true };
}

/**
 * The PF's VF BAR arrays' decoding a whole-range operation can flip VFs in: the one it was queued with,
 * still the PF's, on x86 (`pci_check_bar` passes every BAR there; Arm's asks per VF), with every slot
 * of the operation laid out in whole pages (so that the index finds each VF's BAR from the array).
 */
function bulkDecoding(context: EngineContext, work: VfRangeWork, pf: PciDevice): VfDecoding | undefined {
  const packed = work.packed;
  if (packed === undefined || context.arch !== 'x86') return undefined;
  const decoding = vfDecodingOf(pf);
  if (decoding === undefined || decoding !== packed.decoding) return undefined;
  for (const bar of work.bars) if (decoding.layout(bar.index) === undefined) return undefined;
  return decoding;
}

/**
 * `modify_decoding` for a VF of a whole-range operation, the command register left alone: its BARs
 * in the operation's slots (`ranges`, the PF's VF BAR slots: every other slot of a VF is empty; their
 * indexes `slots`) flip.
 */
function vfFlags(
  context: EngineContext,
  vf: PciDevice,
  map: boolean,
  ranges: readonly Bar[],
  slots: readonly number[],
): Result<'EEXIST' | 'ENOMEM'> {
  const vpci = vf.vpci!;
  const bars = vpci.bars;
  // Which BARs flip, as bits by slot (no list per VF: a whole-range operation flips thousands). The
  // state count and the enabled-BAR index are told once per VF, not once per BAR, and the index
  // directly (`decodingFlipped`), while the VF's BARs are at hand, not through their watcher: that
  // put every VF on the index's list of devices to look at again.
  let flipped = 0;
  for (let r = 0; r < ranges.length; r++) {
    const i = ranges[r]!.index;
    const bar = bars[i]!;
    if (bar.enabled === map || !bar.mappable || !pciCheckBar(context, vf, bar)) continue;
    bar.setEnabledUntold(map);
    flipped |= 1 << i;
  }
  if (flipped !== 0) {
    stateChanged(ENABLED_FLAG);
    context.enabledBars?.decodingFlipped(context, vf, slots);
  }
  if (map && vpci.msix !== undefined) {
    const holes = makeMsixHole(context, vf);
    if (!holes.ok) {
      if (context.policy.msixHoleFailsMap)
        for (let i = 0; i < bars.length; i++) if ((flipped & (1 << i)) !== 0) bars[i]!.enabled = !map;
      return holes;
    }
  }
  vpci.barsMapped = map;
  return { ok: true };
}

/**
 * Whether an enabled BAR of a device the operation does not cover, mapped into the PF's domain,
 * meets one of its ranges: only then can a VF's MSI-X page be another BAR's to map again (asked
 * once per operation, not per VF and frame).
 */
function othersMeetRanges(context: EngineContext, work: VfRangeWork, pf: PciDevice): boolean {
  const covered = new Set(work.vfs);
  for (const other of context.devices()) {
    if (other.vpci === undefined || covered.has(other) || mappingDomain(context, other) !== pf.domain)
      continue;
    for (const remote of other.vpci.bars) {
      if (!remote.enabled) continue;
      const [first, last] = remote.guestFrames();
      for (const bar of work.bars) {
        const [start, end] = bar.guestFrames();
        if (first <= end && start <= last) return true;
      }
    }
  }
  return false;
}

/**
 * A failed whole-range VF BAR operation: the VFs stop decoding (none was flagged mapped by a failed
 * map), unless an unmap was wholly rolled back, and VF Memory Space Enable goes off on the PF as a
 * failed device's memory decoding does (the hardware domain is not crashed).
 */
function failVfRanges(context: EngineContext, work: VfRangeWork, pf: PciDevice, keptMapped: boolean): void {
  if (keptMapped) return;
  const slots = work.bars.map((bar) => bar.index);
  for (const vf of work.vfs)
    if (vf.vpci !== undefined && vf.domain === pf.domain) vfFlags(context, vf, false, work.bars, slots);
  const sriov = pf.vpci?.sriov;
  if (sriov === undefined) return;
  const reg = sriov.pos + PCI_SRIOV_CTRL;
  pf.hw.write(reg, 2, pf.hw.read(reg, 2) & ~PCI_SRIOV_CTRL_MSE);
}
