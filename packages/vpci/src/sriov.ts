/**
 * The hardware domain's vPCI handlers for an SR-IOV physical function, as the posted series "vpci:
 * add SR-IOV support for PVH Dom0" has them (v1's `sriov.c`, docs/sriov.md): a write to SR-IOV
 * Control sizes the VF BARs and maps or unmaps every VF's BARs when VF Memory Space Enable changes
 * (`control_write`, `map_vf`, `size_vf_bars`); VFs come and go with VF Enable, as dom0 reports them.
 * Under `mapVfBarRanges` the map is one deferred operation over each VF BAR slot's whole range, and
 * the registers it is built from are kept still while it stands.
 */
import { type Gfn, type Mfn, mfn } from '@vpci/p2m';
import { RangeSet, type Result } from '@vpci/rangeset';
import { BarSet } from './bar-set.js';
import { pciSizeMemBar } from './bar-sizing.js';
import type { EngineContext } from './context.js';
import { checkBar } from './decoding.js';
import { Bar, barAddress, PACKED_MAPPED, type SriovState } from './device.js';
import type { AccessorRef, PciDevice, Vcpu } from './domain.js';
import type { VpciEvent } from './events.js';
import { findExtCapability } from './hardware.js';
import { devicesNear, modifyBars, removeMapped, sanitizeBarMemory } from './modify-bars.js';
import { msixGuestFrames, punchesMsixHoles } from './msix.js';
import { effectiveOwner, hostBars, pendingInDomain } from './ownership.js';
import {
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_COMMAND_MEMORY,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_SRIOV_BAR,
  PCI_SRIOV_CTRL,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_NUM_BARS,
  PCI_SRIOV_NUM_VF,
  PCI_SRIOV_SYS_PGSIZE,
} from './pci-regs.js';
import { deferVfRanges } from './pending.js';
import {
  barCount,
  keepVfDecoding,
  VF_ATTACHED,
  VF_MSIX,
  VF_WITHHELD,
  type VfDecoding,
  vfDecodingOf,
} from './sriov-decoding.js';
import { READ_BY, stateChanged } from './state-generation.js';
import { firstVfProbe, vfBar, vfInitBars } from './vf-bars.js';

/**
 * The series' `init_sriov` for a physical function of the hardware domain: the SR-IOV state (VF
 * BAR cache) and the SR-IOV Control handler; under `mapVfBarRanges` also the NumVFs, System Page
 * Size and VF BAR handlers that keep those registers still while the VFs decode. The state survives
 * a re-init of the extended capabilities (`vpci_reinit_ext_capabilities`): the VFs were carved from it.
 */
export function initSriov(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
): Result<'EINVAL' | 'EEXIST'> {
  const pos = findExtCapability(device.hw, PCI_EXT_CAP_ID_SRIOV);
  const vpci = device.vpci!;
  if (pos === 0) return { ok: true };
  vpci.sriov ??= {
    pos,
    vfBars: Array.from({ length: PCI_SRIOV_NUM_BARS }, (_, i) => new Bar(i)),
    numVfs: 0,
    generation: 0,
  };
  const hw = device.hw;
  const read = (reg: number, size: number) => () => hw.read(reg, size);
  const control = pos + PCI_SRIOV_CTRL;
  const added = vpci.registers.add(
    read(control, 2),
    (value) => controlWrite(context, accessor, device, value),
    control,
    2,
    {},
    true,
  );
  if (!added.ok || !context.policy.mapVfBarRanges) return added;
  // VFs already there (a PF's state made again) are kept per VF BAR array with this state's.
  keepVfDecoding(context, device);
  const guarded: [number, 2 | 4, 'vf-memory-space' | 'vf-enable'][] = [
    [pos + PCI_SRIOV_NUM_VF, 2, 'vf-enable'],
    [pos + PCI_SRIOV_SYS_PGSIZE, 4, 'vf-enable'],
  ];
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++)
    guarded.push([pos + PCI_SRIOV_BAR + 4 * i, 4, 'vf-memory-space']);
  for (const [reg, size, reason] of guarded) {
    const rc = vpci.registers.add(
      read(reg, size),
      (value) => guardedWrite(context, device, reg, size, value, reason),
      reg,
      size,
      {},
      true,
    );
    if (!rc.ok) return rc;
  }
  return { ok: true };
}

/**
 * Hardened (`mapVfBarRanges`): a write to NumVFs or System Page Size while VF Enable is on, or to a
 * VF BAR while VF Memory Space Enable is on (or VF Enable: the VFs were carved from them), is ignored
 * with an event; PCIe 9.3.3.5, 9.3.3.13 and 9.3.3.14 leave such a change undefined, and what is
 * mapped (and the VFs Xen knows) would no longer match what the hardware decodes.
 */
function guardedWrite(
  context: EngineContext,
  pf: PciDevice,
  reg: number,
  size: number,
  value: number,
  reason: 'vf-memory-space' | 'vf-enable',
): void {
  const sriov = pf.hw.sriov!;
  const on = reason === 'vf-enable' ? sriov.vfEnable : sriov.vfMemorySpace || sriov.vfEnable;
  if (on && pf.hw.read(reg, size) !== value) {
    const why = reason === 'vf-enable' || !sriov.vfMemorySpace ? 'vf-enable' : 'vf-memory-space';
    context.events.push({ kind: 'sriov-write-ignored', sbdf: pf.name, reg, value, reason: why });
    return;
  }
  pf.hw.write(reg, size, value);
}

/**
 * The series' `control_write` (v1): VF MSE 0→1 sizes the VF BARs and maps every VF's BARs, 1→0
 * unmaps them, then the value reaches the device. VF Enable is where dom0 adds or removes the VFs
 * (Linux's `sriov_enable()` writes VF Enable with VF MSE and then reports each VF with
 * `PHYSDEVOP_pci_device_add`; `sriov_disable()` reports their removal before it clears them).
 */
function controlWrite(context: EngineContext, accessor: AccessorRef, pf: PciDevice, value: number): void {
  const sriov = pf.vpci!.sriov!;
  const reg = sriov.pos + PCI_SRIOV_CTRL;
  const control = pf.hw.read(reg, 2);
  const was = { vfe: (control & PCI_SRIOV_CTRL_VFE) !== 0, mse: (control & PCI_SRIOV_CTRL_MSE) !== 0 };
  const now = { vfe: (value & PCI_SRIOV_CTRL_VFE) !== 0, mse: (value & PCI_SRIOV_CTRL_MSE) !== 0 };
  if (context.policy.mapVfBarRanges) {
    controlWriteRanges(context, accessor.current, pf, sriov, value, was, now);
    return;
  }
  if (was.vfe && !now.vfe) context.removeVirtualFunctions(pf);
  if (now.mse !== was.mse) {
    if (now.mse) sizeVfBars(context, pf, sriov);
    mapVfs(context, accessor.current, pf, now.mse ? PCI_COMMAND_MEMORY : 0);
  }
  pf.hw.write(reg, 2, value);
  if (!was.vfe && now.vfe) {
    sriov.numVfs = pf.hw.read(sriov.pos + PCI_SRIOV_NUM_VF, 2);
    context.addVirtualFunctions(pf);
  }
}

/**
 * Hardened (`mapVfBarRanges`): VF MSE 1→0 queues one unmap of the VFs' whole ranges; VF Enable 1→0
 * removes the VFs (which lets that unmap finish first, under `unmapOnDeassign`); VF Enable 0→1 sizes
 * the VF BARs (the later series text) and adds the VFs with VF MSE still off on the device, so none
 * maps itself; VF MSE on then queues one map of the ranges of every VF not yet mapped. A map or unmap
 * refused (EBUSY under `serialOperations`) leaves VF MSE as it was on the device.
 */
function controlWriteRanges(
  context: EngineContext,
  vcpu: Vcpu,
  pf: PciDevice,
  sriov: SriovState,
  value: number,
  was: { vfe: boolean; mse: boolean },
  now: { vfe: boolean; mse: boolean },
): void {
  const reg = sriov.pos + PCI_SRIOV_CTRL;
  let written = value;
  if (was.mse && !now.mse && !queueVfRanges(context, vcpu, pf, 0)) written |= PCI_SRIOV_CTRL_MSE;
  if (was.vfe && !now.vfe) context.removeVirtualFunctions(pf);
  if (!was.vfe && now.vfe) {
    pf.hw.write(reg, 2, written & ~PCI_SRIOV_CTRL_MSE);
    sizeVfBars(context, pf, sriov);
    sriov.numVfs = pf.hw.read(sriov.pos + PCI_SRIOV_NUM_VF, 2);
    context.addVirtualFunctions(pf);
  } else if (!was.mse && now.mse) {
    sizeVfBars(context, pf, sriov);
  }
  if (now.mse && !queueVfRanges(context, vcpu, pf, PCI_COMMAND_MEMORY)) written &= ~PCI_SRIOV_CTRL_MSE;
  pf.hw.write(reg, 2, written);
}

/**
 * Xen staging's `pci_add_device` (xen/drivers/passthrough/pci.c), for a device that is not a VF and
 * whose VF BARs are not sized yet (`!pdev->physfn.vf_rlen[0]`): with an SR-IOV capability whose
 * control has neither VF Enable nor VF MSE set, each VF BAR register is sized with
 * `pci_size_mem_bar(…, PCI_BAR_VF | last?)` into `vf_rlen` (a 64-bit one takes two slots); with
 * either bit set Xen only warns "SR-IOV device … has its virtual functions already enabled (ctrl)"
 * (a `sriov-vfs-enabled-at-add` event with the control value) and leaves `vf_rlen` at 0: sizing
 * would disturb VFs that decode. (Xen also skips an I/O VF BAR with a warning; the hardware model
 * has none: a VF BAR register's bit 0 reads 0, docs/sriov.md.)
 */
export function sizePfVfBars(events: VpciEvent[], pf: PciDevice): void {
  if (pf.vfRlen[0] !== 0n) return;
  const pos = findExtCapability(pf.hw, PCI_EXT_CAP_ID_SRIOV);
  if (pos === 0) return;
  const control = pf.hw.read(pos + PCI_SRIOV_CTRL, 2);
  if ((control & (PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE)) !== 0) {
    events.push({ kind: 'sriov-vfs-enabled-at-add', sbdf: pf.name, control });
    return;
  }
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; ) {
    const reg = pos + PCI_SRIOV_BAR + 4 * i;
    const last = i === PCI_SRIOV_NUM_BARS - 1;
    const is64 = (pf.hw.read(reg, 4) & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
    pf.vfRlen[i] = pciSizeMemBar(pf, reg, last ? 'last' : 'bar').size;
    // pci_size_mem_bar returns 2 for a 64-bit BAR, 1 otherwise (and for one in the last slot).
    i += is64 && !last ? 2 : 1;
  }
}

/**
 * The series' `size_vf_bars()`: each VF BAR register sized with the all-ones protocol
 * (`pci_size_mem_bar(…, PCI_BAR_VF | last?)`) into the PF's VF BAR cache; a 64-bit VF BAR takes two
 * slots, one in the last slot sizes as 0 (Xen's warning "SR-IOV device … with 64-bit vf BAR in last
 * slot"); an empty slot is marked so and keeps its old address and size, as v1 does.
 */
function sizeVfBars(context: EngineContext, pf: PciDevice, sriov: SriovState): void {
  const before = sriov.vfBars.reduce((sum, bar) => sum + bar.changes, 0);
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; ) {
    const reg = sriov.pos + PCI_SRIOV_BAR + 4 * i;
    const value = pf.hw.read(reg, 4);
    const last = i === PCI_SRIOV_NUM_BARS - 1;
    const is64 = (value & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64 && !last;
    const sized = pciSizeMemBar(pf, reg, last ? 'last' : 'bar');
    // v1: "Update vf_rlen on the PF … always update rlen when enabling VFs".
    pf.vfRlen[i] = sized.size;
    const bar = sriov.vfBars[i]!;
    if (sized.size === 0n) {
      if (bar.type !== 'empty') bar.type = 'empty';
    } else {
      const type = is64 ? 'mem64lo' : 'mem32';
      if (bar.addr !== sized.addr) bar.addr = sized.addr;
      if (bar.guestAddr !== sized.addr) bar.guestAddr = sized.addr;
      if (bar.size !== sized.size) bar.size = sized.size;
      if (bar.type !== type) bar.type = type;
      bar.prefetchable = (value & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0;
      if (is64 && sriov.vfBars[i + 1]!.type !== 'mem64hi') sriov.vfBars[i + 1]!.type = 'mem64hi';
    }
    i += is64 ? 2 : 1;
  }
  if (sriov.vfBars.reduce((sum, bar) => sum + bar.changes, 0) === before) return;
  sriov.generation++;
  // The VFs' BARs must be made again; one decoding where the new sizing does not put it goes back to
  // its own objects.
  vfDecodingOf(pf)?.sizedAnew();
  keepVfDecoding(context, pf);
}

/**
 * The series' `map_vf()` for each VF on the PF's list (v1: `list_for_each_entry(vf_pdev,
 * &pdev->vf_list, vf_list)`): `vf_init_bars()` then `vpci_modify_bars(vf, cmd)`, whose result v1
 * ignores. Staging's `pci_add_device` links each VF in at the head of that list (`list_add`), so the
 * walk meets the VF added last first: `virtfns` from its end. Each call's `defer_map` overwrites the
 * vCPU's one pending operation (F2), so only the last call's work is done, the first-added VF's,
 * and the others keep their rangesets filled: the flaw Roger Pau Monné pointed out in his review of
 * v1. VFs another domain owns, or without vPCI state (quarantined), are left alone (v1 has no DomU
 * support; Xen would dereference the missing state).
 */
function mapVfs(context: EngineContext, vcpu: Vcpu, pf: PciDevice, cmd: number): void {
  for (let i = pf.virtfns.length - 1; i >= 0; i--) {
    const vf = pf.virtfns[i]!;
    if (vf.vpci === undefined || vf.domain !== pf.domain) continue;
    if (!vfInitBars(context, vf).ok) continue;
    modifyBars(context, vcpu, vf, cmd, false);
  }
}

/**
 * The PF's VFs' BARs mapped or unmapped as the PF goes (the later series text's `cleanup_sriov`:
 * `map_vfs(pdev, 0)` before it removes the VFs), by the policy's way of doing it.
 */
export function unmapVirtualFunctions(context: EngineContext, vcpu: Vcpu, pf: PciDevice): void {
  if (pf.vpci?.sriov === undefined) return;
  if (context.policy.mapVfBarRanges) queueVfRanges(context, vcpu, pf, 0);
  else mapVfs(context, vcpu, pf, 0);
}

/**
 * Hardened (`mapVfBarRanges`): one deferred operation mapping (or unmapping) the BARs of every VF of
 * the PF's domain not already in that state, as one range per VF BAR slot: `VF BAR i + first × size_i
 * … VF BAR i + (last + 1) × size_i`, holding the frames of those VFs' runs (a VF another domain owns
 * breaks a run; on Arm, a VF BAR its own host bridge refuses: `addVfBarsTheirBridgesTake`). From
 * those sets go, as `modify_bars` takes them from a device's: the host memory
 * map (x86), each VF's MSI-X table and PBA pages, the frames other enabled BARs of the domain map,
 * and under `refuseSubpageSharing` pages shared with another domain's BAR (withheld from the VFs
 * there). The work is bounded by VF BAR slots, VFs and other BARs, never by frames, and the p2m
 * calls chunk it as any map (`vpci_process_pending`). False when refused (`serialOperations`: work
 * pending in the domain; `refuseProbeAddress`: a VF's BAR at a sizing-probe address).
 */
function queueVfRanges(context: EngineContext, vcpu: Vcpu, pf: PciDevice, cmd: number): boolean {
  const map = (cmd & PCI_COMMAND_MEMORY) !== 0;
  const sriov = pf.vpci!.sriov!;
  if (context.policy.serialOperations) {
    const busy = pendingInDomain(context, pf);
    if (busy !== undefined) {
      context.events.push({ kind: 'busy', sbdf: pf.name, vcpu: busy });
      return false;
    }
  }
  // The VFs to change, their runs of consecutive indexes, whether any has MSI-X or withholds pages:
  // read from the PF's VF BAR arrays' decoding where its VFs are kept there (`coveredVfs`, which
  // loads none of them), else one pass over the VFs.
  const decoding = context.packVfDecoding === true ? vfDecodingOf(pf) : undefined;
  const covered = decoding === undefined ? coveredVfsOneByOne(pf, map) : coveredVfs(pf, decoding, map);
  const { vfs, indexes, runs, msix } = covered;
  /** Whether the `i`th VF's flags are kept in `decoding`. */
  const packedAt = (i: number): boolean => covered.packed?.[indexes[i]!] === 1;
  if (vfs.length === 0) return true;
  if (map) {
    // Invariant 8 (`refuseProbeAddress`) as `modify_bars` holds it for any device: a VF BAR register
    // left holding the sizing probe (dom0 wrote all-ones and not the address back) puts VF 0's BAR at
    // the top of the address space; VF MSE is refused (EINVAL, an event), as decoding would be. Found
    // over the VF BAR arrays, not VF by VF (`firstVfProbe`); the VFs before the one refused are made
    // up to date and lose their withheld pages as the walk VF by VF left them.
    const probe = context.policy.refuseProbeAddress ? firstVfProbe(sriov.vfBars, runs) : undefined;
    const refused = probe === undefined ? -1 : vfs.findIndex((vf) => vf.vfIndex === probe.vfIndex);
    for (let i = 0; i < vfs.length && (refused < 0 || i <= refused); i++) {
      const vf = vfs[i]!;
      // A VF kept in `decoding` is loaded only when it has something to do.
      const packed = packedAt(i);
      const n = indexes[i]!;
      if (packed ? !decoding!.current(n) : vf.vpci!.vfBarsGeneration !== sriov.generation)
        vfInitBars(context, vf);
      // What a VF withheld at its last map (`refuseSubpageSharing`) is worked out anew, as
      // `modifyBars` does for any device: a page no longer shared is mapped now, and must be
      // unmapped with the rest when VF MSE goes off.
      if (i !== refused && (packed ? decoding!.withholds(n) : vf.vpci!.withheld !== undefined))
        vf.vpci!.withheld = undefined;
    }
    if (probe !== undefined) {
      context.events.push({
        kind: 'probe-refused',
        sbdf: vfs[refused]!.name,
        bar: probe.slot,
        guestAddr: probe.guestAddr,
      });
      return false;
    }
  }
  const bars: Bar[] = [];
  for (const slot of sriov.vfBars) {
    if (!slot.mappable || slot.size === 0n) continue;
    const bar = new Bar(slot.index);
    bar.type = slot.type;
    bar.prefetchable = slot.prefetchable;
    bar.addr = barAddress(slot.addr + BigInt(runs[0]![0]) * slot.size);
    bar.guestAddr = bar.addr;
    bar.size = BigInt(runs[runs.length - 1]![1] + 1 - runs[0]![0]) * slot.size;
    bar.mem = new BarSet({ name: `${pf.name}:VF BAR${slot.index}`, hex: true });
    if (context.arch === 'x86') {
      // x86's pci_check_bar passes every BAR: the range is checked once (for the host memory map).
      for (const [first, last] of runs) {
        const start = slot.addr + BigInt(first) * slot.size;
        const end = slot.addr + BigInt(last + 1) * slot.size - 1n;
        bar.mem.addRange(Number(start >> 12n) as Gfn, Number(end >> 12n) as Gfn);
      }
      if (!checkBar(context, pf, bar)) continue;
    } else if (!addVfBarsTheirBridgesTake(context, vfs, slot, bar.mem)) continue;
    if (!sanitizeBarMemory(context, bar)) continue;
    bars.push(bar);
  }
  // Step B: each VF's MSI-X table and PBA pages stay holes, so that accesses trap.
  for (const vf of msix ? vfs : []) {
    const vpci = vf.vpci!;
    for (let nr = 0; vpci.msix !== undefined && nr < vpci.msix.tables.length; nr++) {
      const [start, end] = msixGuestFrames(vpci, nr);
      for (const bar of bars) bar.mem!.removeRange(start, end);
    }
  }
  // Step C: frames other enabled BARs of the domain map already (map) or still need (unmap). The
  // VFs covered are the PF's in its domain not yet in the requested state (as found above).
  for (const [other, remote] of otherEnabledBars(context, pf, bars, covered, decoding, map)) {
    const [start, end] = remote.guestFrames();
    for (const bar of bars)
      if (bar.mem!.overlapsRange(start, end))
        removeMapped(bar.mem!, other.vpci!, start, end, punchesMsixHoles(context, other));
  }
  if (context.policy.refuseSubpageSharing) {
    if (map) withholdSharedPages(context, pf, vfs, bars);
    else if (covered.withheld)
      for (let i = 0; i < vfs.length; i++) {
        const vpci = vfs[i]!.vpci!;
        if (packedAt(i) && !decoding!.withholds(indexes[i]!)) continue;
        if (vpci.withheld !== undefined) for (const bar of bars) bar.mem!.subtract(vpci.withheld);
      }
  }
  deferVfRanges(
    vcpu,
    pf,
    cmd,
    decoding === undefined
      ? { bars, vfs }
      : covered.whole === undefined
        ? { bars, vfs, packed: { decoding, indexes } }
        : { bars, vfs, packed: { decoding, indexes, whole: covered.whole } },
  );
  return true;
}

/**
 * Arm (`mapVfBarRanges`): adds to `set` the frames of `slot`'s BAR of each VF of `vfs` that passes
 * `checkBar` on its own: Arm's `pci_check_bar` (`pci-host-common.c` `is_bar_valid`) asks the VF's host
 * bridge, found by the VF's bus, which may be another bridge's than the PF's or none. That is the
 * series' per-VF `modify_bars`, which logs a refused VF BAR and leaves it out; the whole range
 * checked against the PF's bridge mapped VFs their own bridge refuses (and whose flags `vfFlags` then
 * left off), and left out VFs it takes. The same VFs are left out of an unmap. False when none passes.
 */
function addVfBarsTheirBridgesTake(
  context: EngineContext,
  vfs: readonly PciDevice[],
  slot: Bar,
  set: BarSet,
): boolean {
  let taken = false;
  for (const vf of vfs) {
    const bar = vfBar(slot, vf.vfIndex);
    if (!checkBar(context, vf, bar)) continue;
    const [start, end] = bar.guestFrames();
    set.addRange(start, end);
    taken = true;
  }
  return taken;
}

/** The VFs a whole-range operation covers, with what the operation asks of them. */
interface Covered {
  readonly vfs: readonly PciDevice[];
  /** Each VF's index, ascending. */
  readonly indexes: readonly number[];
  /** Runs of consecutive indexes. */
  readonly runs: [number, number][];
  /** Whether any has MSI-X state, or withholds pages. */
  readonly msix: boolean;
  readonly withheld: boolean;
  /** By VF index, 1 for a covered VF kept in the PF's VF BAR arrays' decoding (`coveredVfs` only). */
  readonly packed: Uint8Array | undefined;
  /** The covered VFs not kept there. */
  readonly loose: ReadonlySet<PciDevice>;
  /** Every enabled BAR kept in the PF's VF BAR arrays' decoding is a covered VF's. */
  readonly wholeArray: boolean;
  /** VFs 0 … `count` - 1 are covered and are all the attached VFs, as of `attachments`. */
  readonly whole?: { readonly count: number; readonly attachments: number };
}

/** No VFs (a whole-array operation's loose ones: made once, read only). */
const NO_VFS: ReadonlySet<PciDevice> = new Set();

/** Appends VF index `n` to `runs` of consecutive indexes. */
function extendRuns(runs: [number, number][], n: number): void {
  const run = runs[runs.length - 1];
  if (run !== undefined && run[1] + 1 === n) run[1] = n;
  else runs.push([n, n]);
}

/**
 * The PF's VFs of its domain with vPCI state not yet in the requested state (`barsMapped` not `map`),
 * in VF order, one by one.
 */
function coveredVfsOneByOne(pf: PciDevice, map: boolean): Covered {
  const vfs: PciDevice[] = [];
  const indexes: number[] = [];
  const covered: Covered = {
    vfs,
    indexes,
    runs: [],
    msix: false,
    withheld: false,
    packed: undefined,
    loose: new Set(),
    wholeArray: false,
  };
  let msix = false;
  let withheld = false;
  for (const vf of pf.virtfns) {
    const vpci = vf.vpci;
    if (vpci === undefined || vf.domain !== pf.domain || vpci.barsMapped === map) continue;
    vfs.push(vf);
    indexes.push(vf.vfIndex);
    extendRuns(covered.runs, vf.vfIndex);
    msix ||= vpci.msix !== undefined;
    withheld ||= vpci.withheld !== undefined;
  }
  return { ...covered, msix, withheld, loose: new Set(covered.vfs), wholeArray: false };
}

/**
 * `coveredVfsOneByOne` from the PF's VF BAR arrays' decoding: the attached VFs from their bits, the
 * few others (`VfDecoding.loose`) one by one, merged in VF order. No attached VF is loaded.
 */
function coveredVfs(pf: PciDevice, decoding: VfDecoding, map: boolean): Covered {
  const others: PciDevice[] = [];
  for (const vf of decoding.loose) {
    // Gone from the PF (removed): pruned here.
    if (vf.physfn !== pf) {
      decoding.loose.delete(vf);
      continue;
    }
    const vpci = vf.vpci;
    if (vpci === undefined || vf.domain !== pf.domain || vpci.barsMapped === map) continue;
    others.push(vf);
  }
  others.sort((a, b) => a.vfIndex - b.vfIndex);
  const length = decoding.length;
  // Nearly always: VFs 0 … n - 1 are all attached and all to change (none loose), one run.
  const all = others.length === 0 ? decoding.uniform(!map) : -1;
  if (all > 0) {
    const { vfs, indexes, packed } = decoding.wholeCover(all);
    return {
      vfs,
      indexes,
      runs: [[0, all - 1]],
      msix: decoding.withMsix !== 0,
      withheld: decoding.withWithheld !== 0,
      packed,
      loose: NO_VFS,
      wholeArray: true,
      whole: { count: all, attachments: decoding.attachments },
    };
  }
  // Made at their largest size and cut to what is found (no growing on the way: a PF has thousands).
  const vfs = new Array<PciDevice>(length + others.length);
  const indexes = new Array<number>(length + others.length);
  let count = 0;
  const runs: [number, number][] = [];
  const packed = new Uint8Array(length);
  const { bits, flags, devices } = decoding;
  const want = map ? 0 : PACKED_MAPPED;
  let msix = false;
  let withheld = false;
  let onBars = 0;
  let k = 0;
  for (let n = 0; n < length || k < others.length; n++) {
    if (k < others.length && others[k]!.vfIndex === n) {
      const vf = others[k++]!;
      vfs[count] = vf;
      indexes[count++] = n;
      extendRuns(runs, n);
      msix ||= vf.vpci!.msix !== undefined;
      withheld ||= vf.vpci!.withheld !== undefined;
      continue;
    }
    if (n >= length || (flags[n]! & VF_ATTACHED) === 0 || (bits[n]! & PACKED_MAPPED) !== want) continue;
    vfs[count] = devices[n]!;
    indexes[count++] = n;
    extendRuns(runs, n);
    packed[n] = 1;
    msix ||= (flags[n]! & VF_MSIX) !== 0;
    withheld ||= (flags[n]! & VF_WITHHELD) !== 0;
    onBars += barCount(bits[n]!);
  }
  vfs.length = count;
  indexes.length = count;
  // Every enabled BAR of the array is a covered VF's: a search passes over the whole array.
  const wholeArray = onBars === decoding.onBars;
  return { vfs, indexes, runs, msix, withheld, packed, loose: new Set(others), wholeArray };
}

/**
 * Step C's other enabled BARs for a whole-range VF BAR operation: every enabled BAR of the PF's domain
 * (with dom_xen's for the hardware domain) but the covered VFs', with its device. From the enabled-BAR
 * index when the machine keeps one (a search over the operation's ranges: the covered VFs held in
 * their array are passed over by index, never loaded), else a walk over the devices, as `modify_bars`
 * walks them. The order does not matter: each BAR's frames are taken out of the sets.
 */
function otherEnabledBars(
  context: EngineContext,
  pf: PciDevice,
  bars: readonly Bar[],
  covered: Covered,
  decoding: VfDecoding | undefined,
  map: boolean,
): [PciDevice, Bar][] {
  const domain = pf.domain!;
  const found: [PciDevice, Bar][] = [];
  const index = context.enabledBars;
  // dom_xen's devices are held in the hardware domain's index: a dom_xen PF walks.
  if (index !== undefined && domain !== context.domXen) {
    if (bars.length === 0) return found;
    const except = {
      decoding,
      covered: covered.packed ?? new Uint8Array(0),
      devices: covered.loose,
      wholeArray: covered.wholeArray,
    };
    const ranges = bars.map((bar) => bar.guestFrames());
    for (const entry of index.enabledMeeting(context, domain, ranges, undefined, except))
      found.push([entry.device, entry.bar]);
    return found;
  }
  for (const owner of domain.isHardware ? [domain, context.domXen] : [domain]) {
    for (const other of owner.devices) {
      if (other.vpci === undefined) continue;
      if (other.physfn === pf && other.domain === domain && other.vpci.barsMapped !== map) continue;
      for (const remote of other.vpci.bars) if (remote.enabled) found.push([other, remote]);
    }
  }
  return found;
}

/**
 * Hardened (`refuseSubpageSharing`, XSA-461): the host pages of the ranges that also hold a BAR of a
 * device another domain owns are not mapped; each VF whose BAR touches one withholds it (so the
 * checks that ask what a device left unmapped find it), with a `subpage-shared` event per slot.
 */
function withholdSharedPages(
  context: EngineContext,
  pf: PciDevice,
  vfs: readonly PciDevice[],
  bars: readonly Bar[],
): void {
  const owner = effectiveOwner(context, pf);
  for (const other of devicesNear(context, bars)) {
    if (other.domain === undefined || effectiveOwner(context, other) === owner) continue;
    for (const remote of hostBars(other)) {
      const [remoteStart, remoteEnd] = remote.hostFrames();
      for (const bar of bars) {
        const [hostStart, hostEnd] = bar.hostFrames();
        const start = Math.max(hostStart, remoteStart);
        const end = Math.min(hostEnd, remoteEnd);
        if (start > end) continue;
        for (const vf of vfs) {
          const [first, last] = vf.vpci!.bars[bar.index]!.hostFrames();
          if (first > end || last < start) continue;
          vf.vpci!.withheld ??= new RangeSet<Gfn>();
          stateChanged(READ_BY.rest);
          vf.vpci!.withheld.addRange(Math.max(first, start) as Gfn, Math.min(last, end) as Gfn);
        }
        if (!bar.mem!.overlapsRange(start as Gfn, end as Gfn)) continue;
        bar.mem!.removeRange(start as Gfn, end as Gfn);
        context.events.push({
          kind: 'subpage-shared',
          sbdf: pf.name,
          bar: bar.index,
          mfn: mfn(start) as Mfn,
          other: other.name,
          otherDomain: other.domain.id,
        });
      }
    }
  }
}
