/**
 * The PCI header as Xen's `header.c` emulates it: BAR discovery and sizing at assignment, and the
 * handlers for the command register, the BARs (hardware domain: host addresses, identity mapped;
 * guests: guest addresses only) and the ROM BAR.
 */
import type { Paddr } from '@vpci/p2m';
import type { Result } from '@vpci/rangeset';
import { guestIoBarReadsZero } from './arch.js';
import { BarSet } from './bar-set.js';
import { pciSizeMemBar } from './bar-sizing.js';
import type { EngineContext } from './context.js';
import { type Bar, barAddress, hostFrameRange, type VpciState } from './device.js';
import { deviceMapping, deviceRead, deviceWrite } from './device-handlers.js';
import type { AccessorRef, PciDevice } from './domain.js';
import { type ModifyBarsErrno, modifyBars } from './modify-bars.js';
import { mappedByOtherDomain, pendingVcpuOf } from './ownership.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_32,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_COMMAND,
  PCI_COMMAND_FAST_BACK,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_RSVDP_MASK,
  PCI_COMMAND_SERR,
  PCI_COMMAND_SPECIAL,
  PCI_COMMAND_VGA_PALETTE,
  PCI_COMMAND_WAIT,
  PCI_DEVICE_ID,
  PCI_HEADER_BRIDGE_NR_BARS,
  PCI_HEADER_NORMAL_NR_BARS,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_NORMAL,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_ROM_ADDRESS1,
  PCI_SRIOV_VF_DID,
  PCI_VENDOR_ID,
} from './pci-regs.js';
import { countRangesetOps } from './rangeset-ops.js';
import { READ_ZERO, type RegisterMapping, type RegisterRead, type RegisterWrite } from './registers.js';
import type { RuleSet } from './rule-set.js';
import { vfInitBars } from './vf-bars.js';

// TODO (Xen, header.c vpci_init_header): PARITY, SERR and FAST_BACK are not emulated for guests; Xen
// will "re-visit how to handle" them "if support for emulated bits is added" (F5 in docs/xen-gaps.md).
/** The guest's command bits Xen keeps from the host (RsvdP for guests: read as 0, written back). */
export const GUEST_CMD_RSVDP_MASK =
  PCI_COMMAND_RSVDP_MASK |
  PCI_COMMAND_IO |
  PCI_COMMAND_PARITY |
  PCI_COMMAND_WAIT |
  PCI_COMMAND_SERR |
  PCI_COMMAND_FAST_BACK;

const U32 = 0xffffffffn;

/**
 * Outcome of `vpciInitHeader`: Xen's error codes as values: `EOPNOTSUPP` for a header type vPCI does
 * not emulate, a handler that could not be added (`EINVAL`, `EEXIST`), or `modifyBars`' failure.
 */
export type InitHeaderResult = Result<'EOPNOTSUPP' | 'EINVAL' | 'EEXIST' | ModifyBarsErrno>;

/**
 * Xen's `vpci_init_header`: registers the command handler, sizes every BAR and the ROM (hardware
 * domain only), registers their handlers, and maps the BARs if decoding is on (hardware domain).
 * `isHwdom` is whether the owner is the hardware domain at this moment; the handlers hand the writes
 * to `rules`, the machine's rule set.
 */
export function vpciInitHeader(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
  isHwdom: boolean,
  rules: RuleSet,
): InitHeaderResult {
  const vpci = device.vpci!;
  const hw = device.hw;
  let numBars: number;
  let romReg: number;
  switch (hw.read(PCI_HEADER_TYPE, 1) & 0x7f) {
    case PCI_HEADER_TYPE_NORMAL:
      numBars = PCI_HEADER_NORMAL_NR_BARS;
      romReg = PCI_ROM_ADDRESS;
      break;
    case PCI_HEADER_TYPE_BRIDGE:
      numBars = PCI_HEADER_BRIDGE_NR_BARS;
      romReg = PCI_ROM_ADDRESS1;
      break;
    default:
      return { ok: false, code: 'EOPNOTSUPP' };
  }
  vpci.romSlot = numBars;
  // A virtual function (the series): the hardware domain gets no header handlers (v1's
  // `vpci_init_header` returns early for `is_virtfn`: the command register's memory bit and the BAR
  // registers reach the VF, read-only zero); its BARs come from the PF's VF BARs, mapped now if the
  // PF's VF Memory Space Enable is on (`vf_init_header`). A guest gets the guest handlers below.
  if (device.physfn !== undefined && isHwdom) return vfInitHardwareHeader(context, accessor, device);
  // The writes go to the machine's rule set (rule-set.ts): under Xen's, the handlers below.
  const handlers = headerHandlers(context, accessor, rules);
  const added = vpci.registers.add(
    isHwdom ? handlers.hwCmdRead : handlers.guestCmdRead,
    handlers.cmdWrite,
    PCI_COMMAND,
    2,
    { rsvdp: isHwdom ? 0 : GUEST_CMD_RSVDP_MASK },
    handlers.cmdMaps,
  );
  if (!added.ok) return added;
  // Xen's ignore_bars quirk (apply_quirks): no BAR is sized, trapped or mapped, and the command
  // register's view stays as allocated (zero); decoding changes then map nothing.
  if (device.ignoreBars) return { ok: true };

  let cmd = hw.read(PCI_COMMAND, 2);
  // Guests start with decoding off, so modifyBars is not called at the end for them.
  if (!isHwdom) {
    cmd &= ~(
      PCI_COMMAND_VGA_PALETTE |
      PCI_COMMAND_INVALIDATE |
      PCI_COMMAND_SPECIAL |
      PCI_COMMAND_MASTER |
      PCI_COMMAND_MEMORY |
      PCI_COMMAND_IO
    );
  }
  vpci.guestCmd = cmd;
  // Decoding off while sizing.
  if (!isHwdom || (cmd & PCI_COMMAND_MEMORY) !== 0) hw.write(PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY);

  const fail = (code: 'EEXIST'): InitHeaderResult => {
    hw.write(PCI_COMMAND, 2, cmd);
    return { ok: false, code };
  };

  if (device.physfn !== undefined) return vfInitGuestHeader(context, accessor, rules, device, cmd);
  for (let i = 0; i < numBars; i++) {
    const reg = PCI_BASE_ADDRESS_0 + i * 4;
    const bar = vpci.bars[i]!;
    if (i > 0 && vpci.bars[i - 1]!.type === 'mem64lo') {
      bar.type = 'mem64hi';
      const ok = addBarHandlers(context, accessor, rules, device, reg, isHwdom);
      if (!ok) return fail('EEXIST');
      continue;
    }
    const value = hw.read(reg, 4);
    if ((value & PCI_BASE_ADDRESS_SPACE_IO) !== 0) {
      // x86: no handler; the hardware domain reaches the device, a guest reads all-ones. Elsewhere
      // (`!IS_ENABLED(CONFIG_X86)`) a guest's I/O BAR reads as zero.
      bar.type = 'io';
      if (isHwdom && rules.ioBarWrite !== undefined) {
        // A rule set that decodes I/O BARs (not Xen's) sizes and traps them.
        if (!addIoBarHandler(context, accessor, device, bar, reg, rules.ioBarWrite)) return fail('EEXIST');
        continue;
      }
      if (
        !isHwdom &&
        guestIoBarReadsZero(context.arch) &&
        !vpci.registers.add(READ_ZERO, undefined, reg, 4).ok
      )
        return fail('EEXIST');
      continue;
    }
    bar.type =
      (value & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64 ? 'mem64lo' : 'mem32';
    barAddRangeset(context, device, bar);
    const sized = pciSizeMemBar(device, reg, i === numBars - 1 ? 'last' : 'bar');
    if (sized.size === 0n) {
      bar.type = 'empty';
      if (!isHwdom && !vpci.registers.add(READ_ZERO, undefined, reg, 4).ok) return fail('EEXIST');
      continue;
    }
    bar.addr = sized.addr;
    bar.guestAddr = sized.addr;
    bar.size = sized.size;
    bar.prefetchable = (value & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0;
    if (!addBarHandlers(context, accessor, rules, device, reg, isHwdom)) return fail('EEXIST');
  }

  const romBar = vpci.bars[numBars]!;
  const rom = isHwdom ? pciSizeMemBar(device, romReg, 'rom') : undefined;
  if (rom !== undefined && rom.size > 0n) {
    romBar.type = 'rom';
    romBar.size = rom.size;
    romBar.addr = rom.addr;
    romBar.guestAddr = rom.addr;
    vpci.romEnabled = (hw.read(romReg, 4) & PCI_ROM_ADDRESS_ENABLE) !== 0;
    const added = vpci.registers.add(handlers.hwRead, handlers.romWrite, romReg, 4, {}, true);
    if (!added.ok) romBar.type = 'empty';
    else barAddRangeset(context, device, romBar);
  } else if (!isHwdom) {
    // ROMs are not offered to guests: the register reads as zero.
    // TODO (Xen, header.c vpci_init_header): "Check expansion ROM, we do not handle ROM for guests for
    // now" (F5 in docs/xen-gaps.md).
    romBar.type = 'empty';
    if (!vpci.registers.add(READ_ZERO, undefined, romReg, 4).ok) return fail('EEXIST');
  }

  if (rules.setUp !== undefined) {
    // A rule set that maps at device add, decoding or not (rule-set.ts).
    rules.setUp(context, accessor, device, cmd);
    return { ok: true };
  }
  if ((cmd & PCI_COMMAND_MEMORY) === 0) return { ok: true };
  const result = rules.modifyBars(context, accessor.current, device, cmd, false);
  return result.ok ? result : { ok: false, code: result.code };
}

/**
 * A VF of the hardware domain (v1's `vf_init_header`): its BARs from the PF's VF BARs, mapped when
 * the PF's VF Memory Space Enable is on and the PF has the same owner. The series' own path, Xen's
 * `modify_bars` under every rule set (a VF's BAR registers are read-only zero: no rule set's register
 * rules apply to them; docs/rule-sets.md).
 */
function vfInitHardwareHeader(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
): InitHeaderResult {
  const bars = vfInitBars(context, device);
  if (!bars.ok) return bars;
  const pf = device.physfn!;
  if (pf.domain !== device.domain || pf.hw.sriov?.vfMemorySpace !== true) return { ok: true };
  const result = modifyBars(context, accessor.current, device, PCI_COMMAND_MEMORY, false);
  return result.ok ? result : { ok: false, code: result.code };
}

/**
 * A VF of a guest (the later series text's `vpci_vf_init_header`): Vendor ID and Device ID read the
 * PF's vendor and its VF Device ID (a VF's own read 0xffff), and each BAR slot the PF's VF BARs give
 * it gets the guest BAR handlers (placed by the guest, non-identity), an empty slot reads zero. The
 * guest's command register view starts with decoding off, like any guest device's.
 */
function vfInitGuestHeader(
  context: EngineContext,
  accessor: AccessorRef,
  rules: RuleSet,
  device: PciDevice,
  cmd: number,
): InitHeaderResult {
  const vpci = device.vpci!;
  const pf = device.physfn!;
  const fail = (code: 'EINVAL' | 'EEXIST'): InitHeaderResult => {
    device.hw.write(PCI_COMMAND, 2, cmd);
    return { ok: false, code };
  };
  const bars = vfInitBars(context, device);
  if (!bars.ok) return fail(bars.code);
  const vendor = pf.hw.read(PCI_VENDOR_ID, 2);
  const vfDevice = pf.hw.sriov?.field16(PCI_SRIOV_VF_DID) ?? 0xffff;
  if (!vpci.registers.add(() => vendor, undefined, PCI_VENDOR_ID, 2).ok) return fail('EEXIST');
  if (!vpci.registers.add(() => vfDevice, undefined, PCI_DEVICE_ID, 2).ok) return fail('EEXIST');
  for (let i = 0; i < PCI_HEADER_NORMAL_NR_BARS; i++) {
    const reg = PCI_BASE_ADDRESS_0 + i * 4;
    const bar = vpci.bars[i]!;
    const added =
      bar.type === 'empty'
        ? vpci.registers.add(READ_ZERO, undefined, reg, 4).ok
        : addBarHandlers(context, accessor, rules, device, reg, false);
    if (!added) return fail('EEXIST');
  }
  // VFs have no expansion ROM: the register reads zero, as a guest's ROM does.
  vpci.bars[vpci.romSlot]!.type = 'empty';
  if (!vpci.registers.add(READ_ZERO, undefined, PCI_ROM_ADDRESS, 4).ok) return fail('EEXIST');
  return { ok: true };
}

/** Xen's `bar_add_rangeset`: the set of guest frames the BAR's map or unmap will consume. */
function barAddRangeset(context: EngineContext, device: PciDevice, bar: Bar): void {
  countRangesetOps(context, device, 'new');
  bar.mem = new BarSet({ name: `${device.name}:BAR${bar.index}`, hex: true });
}

/**
 * Registers the handlers of the memory BAR slot whose register is `reg` (both halves of a 64-bit BAR
 * use them); the writes go to the machine's rule set. The handlers find the slot from the register's
 * offset (`barAt`).
 */
function addBarHandlers(
  context: EngineContext,
  accessor: AccessorRef,
  rules: RuleSet,
  device: PciDevice,
  reg: number,
  isHwdom: boolean,
): boolean {
  const registers = device.vpci!.registers;
  const handlers = headerHandlers(context, accessor, rules);
  if (isHwdom) return registers.add(handlers.hwRead, handlers.barWrite, reg, 4, {}, true).ok;
  return registers.add(handlers.guestBarRead, handlers.guestBarWrite, reg, 4, {}, true).ok;
}

/**
 * The header's handlers of one machine (its context, accessor and rule set), shared by every device
 * (device-handlers.ts): each finds the device it serves, and the BAR from the register's offset, as Xen's
 * handlers get `pdev` and `reg`, instead of a closure per device and register holding them.
 */
interface HeaderHandlers {
  /** The device's own command register (the hardware domain's). */
  readonly hwCmdRead: RegisterRead;
  /** The device's own 32-bit register (the hardware domain's BAR and ROM registers). */
  readonly hwRead: RegisterRead;
  /** Xen's `guest_cmd_read`. */
  readonly guestCmdRead: RegisterRead;
  /** The rule set's `cmdWrite`. */
  readonly cmdWrite: RegisterWrite;
  /**
   * Whether a command value can change the mappings: a write that flips memory decoding changes what
   * the checks read (`barsMapped`: an MSI-X page mapped while the device decodes) under every rule
   * set, whether or not the rule set maps anything then (cloud-hypervisor's only follows the bit):
   * never inert, whatever `commandMaps` says.
   */
  readonly cmdMaps: RegisterMapping;
  /** The rule set's `barWrite` (hardware domain). */
  readonly barWrite: RegisterWrite;
  /** Xen's `guest_mem_bar_read`. */
  readonly guestBarRead: RegisterRead;
  /** The rule set's `guestBarWrite`. */
  readonly guestBarWrite: RegisterWrite;
  /** The rule set's `romWrite` (hardware domain). */
  readonly romWrite: RegisterWrite;
}

const headerHandlerSets = new WeakMap<EngineContext, HeaderHandlers>();

/** The header's shared handlers for `context`'s machine, made on first use. */
function headerHandlers(context: EngineContext, accessor: AccessorRef, rules: RuleSet): HeaderHandlers {
  const known = headerHandlerSets.get(context);
  if (known !== undefined) return known;
  const made: HeaderHandlers = {
    hwCmdRead: deviceRead((device: PciDevice) => device.hw.read(PCI_COMMAND, 2)),
    hwRead: deviceRead((device: PciDevice, offset: number) => device.hw.read(offset, 4)),
    guestCmdRead: deviceRead((device: PciDevice) => guestCmdRead(device.vpci!)),
    cmdWrite: deviceWrite((value: number, _bytes: number, device: PciDevice) =>
      rules.cmdWrite(context, accessor, device, value),
    ),
    cmdMaps: deviceMapping(
      (value: number, device: PciDevice) =>
        flipsDecoding(device.vpci!, value) || rules.commandMaps(device, value),
    ),
    barWrite: deviceWrite((value: number, bytes: number, device: PciDevice, offset: number) =>
      rules.barWrite(context, accessor, device, barAt(device, offset), offset, value, bytes),
    ),
    guestBarRead: deviceRead((device: PciDevice, offset: number) =>
      guestMemBarRead(device.vpci!, barAt(device, offset)),
    ),
    guestBarWrite: deviceWrite((value: number, bytes: number, device: PciDevice, offset: number) =>
      rules.guestBarWrite(context, accessor, device, barAt(device, offset), value, bytes),
    ),
    romWrite: deviceWrite((value: number, _bytes: number, device: PciDevice, offset: number) =>
      rules.romWrite(context, accessor, device, offset, value),
    ),
  };
  headerHandlerSets.set(context, made);
  return made;
}

/** The BAR slot whose register is at `offset` (0x10 + 4 × slot, both header layouts). */
function barAt(device: PciDevice, offset: number): Bar {
  return device.vpci!.bars[(offset - PCI_BASE_ADDRESS_0) >> 2]!;
}

/**
 * For a rule set that decodes I/O BARs (`RuleSet.ioBarWrite`): sizes the hardware domain's I/O BAR
 * as `pci_size_mem_bar` sizes a memory BAR (all-ones, read back, restore; the I/O address mask) and
 * registers the handler its writes go to.
 */
function addIoBarHandler(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
  bar: Bar,
  reg: number,
  write: NonNullable<RuleSet['ioBarWrite']>,
): boolean {
  const hw = device.hw;
  const value = hw.read(reg, 4);
  hw.write(reg, 4, 0xffffffff);
  const mask = BigInt((hw.read(reg, 4) & PCI_BASE_ADDRESS_IO_MASK) >>> 0);
  hw.write(reg, 4, value);
  // The lowest writable address bit is the size (a device may decode only 16 address bits).
  bar.size = mask & -mask;
  bar.addr = barAddress(BigInt((value & PCI_BASE_ADDRESS_IO_MASK) >>> 0));
  bar.guestAddr = bar.addr;
  return device.vpci!.registers.add(
    () => hw.read(reg, 4),
    (written) => write(context, accessor, device, bar, reg, written),
    reg,
    4,
    {},
    true,
  ).ok;
}

/**
 * Xen's `cmd_write`. A guest's value gets INTx disabled while MSI or MSI-X is on and is stored as the
 * guest's view first (so it reads back even if mapping fails: G2). A change of the memory bit goes
 * to modifyBars, whose error is ignored (the guest is expected to retry); the register is then
 * written when the deferred work completes. Other changes are written at once.
 */
export function cmdWrite(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
  value: number,
): void {
  const vpci = device.vpci!;
  let cmd = value;
  if (device.domain?.kind !== 'hardware') {
    if (vpci.msi?.enabled === true || vpci.msix?.enabled === true) cmd |= PCI_COMMAND_INTX_DISABLE;
    vpci.guestCmd = cmd;
  }
  if (flipsDecoding(vpci, cmd)) {
    const result = modifyBars(context, accessor.current, device, cmd, false);
    if (!result.ok && result.code !== 'EINVAL' && result.code !== 'EBUSY') {
      context.events.push({ kind: 'modify-bars-failed', sbdf: device.name, code: result.code });
    }
  } else {
    device.hw.write(PCI_COMMAND, 2, cmd);
  }
}

/**
 * Whether a command register value turns memory decoding on while the BARs are unmapped, or off while
 * they are mapped: `cmd_write` then maps or unmaps them (`modify_bars`); any other value only reaches
 * the hardware.
 */
function flipsDecoding(vpci: VpciState, cmd: number): boolean {
  return vpci.barsMapped !== ((cmd & PCI_COMMAND_MEMORY) !== 0);
}

/** `flipsDecoding` for a device: Xen's `RuleSet.commandMaps`. */
export function commandFlipsDecoding(device: PciDevice, cmd: number): boolean {
  return flipsDecoding(device.vpci!, cmd);
}

/** Xen's `guest_cmd_read`: a guest reads its own view of the command register. */
function guestCmdRead(vpci: VpciState): number {
  return vpci.guestCmd;
}

/**
 * Hardened (F2): while a map or unmap of the device is pending, its BARs must not move, or the
 * deferred work would map frames from the new address. The write is ignored with an event.
 */
export function refusedWhilePending(context: EngineContext, device: PciDevice): boolean {
  if (!context.policy.serialOperations) return false;
  const vcpu = pendingVcpuOf(context, device);
  if (vcpu === undefined) return false;
  context.events.push({ kind: 'busy', sbdf: device.name, vcpu });
  return true;
}

/**
 * Hardened (XSA-461): the hardware domain may not move a BAR or the ROM to `addr`, or resize it to
 * `size` (ReBAR), onto a host page another domain maps, or that domain would map a page holding this
 * device's registers. The write is ignored with an event.
 */
export function refusedMove(
  context: EngineContext,
  device: PciDevice,
  bar: Bar,
  addr: Paddr,
  size = bar.size,
): boolean {
  if (!context.policy.refuseSubpageSharing || (addr === bar.addr && size === bar.size) || size === 0n)
    return false;
  // The device decodes at the address cut to its size; vPCI keeps (and maps) the value as written.
  const [first] = hostFrameRange(addr & ~(size - 1n), size);
  const [, last] = hostFrameRange(addr, size);
  const mapped = mappedByOtherDomain(context, device, first, last);
  if (mapped === undefined) return false;
  context.events.push({ kind: 'move-refused', sbdf: device.name, bar: bar.index, ...mapped });
  return true;
}

/** The low slot holding a 64-bit BAR's state, and whether `bar` is the high half. */
export function lowSlot(vpci: VpciState, bar: Bar): { target: Bar; hi: boolean } {
  return bar.type === 'mem64hi'
    ? { target: vpci.bars[bar.index - 1]!, hi: true }
    : { target: bar, hi: false };
}

/** Replaces the low or high 32 bits of a 64-bit address. */
export function withHalf(addr: Paddr, hi: boolean, value: number): Paddr {
  const shift = hi ? 32n : 0n;
  return barAddress((addr & ~(U32 << shift)) | (BigInt(value >>> 0) << shift));
}

/**
 * Xen's `bar_write` (hardware domain): ignored while the BAR is mapped (an event when the value
 * differs); otherwise the host address half is replaced, the guest address follows (identity), and
 * the value goes to the device with the type and prefetch bits put back.
 */
export function barWrite(
  context: EngineContext,
  device: PciDevice,
  bar: Bar,
  reg: number,
  value: number,
): void {
  if (refusedWhilePending(context, device)) return;
  const { target, hi } = lowSlot(device.vpci!, bar);
  let val = hi ? value : (value & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  if (target.enabled) {
    if (val !== Number((target.addr >> (hi ? 32n : 0n)) & U32)) {
      context.events.push({ kind: 'bar-write-ignored', sbdf: device.name, bar: bar.index, value });
    }
    return;
  }
  const addr = withHalf(target.addr, hi, val);
  if (refusedMove(context, device, target, addr)) return;
  target.addr = addr;
  target.guestAddr = target.addr;
  if (!hi) {
    val |= target.type === 'mem32' ? PCI_BASE_ADDRESS_MEM_TYPE_32 : PCI_BASE_ADDRESS_MEM_TYPE_64;
    if (target.prefetchable) val |= PCI_BASE_ADDRESS_MEM_PREFETCH;
  }
  device.hw.write(reg, 4, val >>> 0);
}

/**
 * Xen's `guest_mem_bar_write`: the guest address half is replaced and cut to the BAR's size (so
 * all-ones reads back the size mask); ignored while mapped (an event when it differs). The device
 * is never written.
 */
export function guestMemBarWrite(context: EngineContext, device: PciDevice, bar: Bar, value: number): void {
  if (refusedWhilePending(context, device)) return;
  const { target, hi } = lowSlot(device.vpci!, bar);
  const val = hi ? value : (value & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
  // Cut to the size: still a 64-bit address.
  const guestAddr = barAddress(withHalf(target.guestAddr, hi, val) & ~(target.size - 1n));
  if (target.enabled) {
    if (guestAddr !== target.guestAddr) {
      context.events.push({ kind: 'bar-write-ignored', sbdf: device.name, bar: bar.index, value });
    }
    return;
  }
  target.guestAddr = guestAddr;
}

/** Xen's `guest_mem_bar_read`: the guest address with the type and prefetch bits. */
function guestMemBarRead(vpci: VpciState, bar: Bar): number {
  const { target, hi } = lowSlot(vpci, bar);
  if (hi) return Number(target.guestAddr >> 32n);
  let value = Number(target.guestAddr & U32);
  value |= target.type === 'mem32' ? PCI_BASE_ADDRESS_MEM_TYPE_32 : PCI_BASE_ADDRESS_MEM_TYPE_64;
  if (target.prefetchable) value |= PCI_BASE_ADDRESS_MEM_PREFETCH;
  return value >>> 0;
}

/**
 * Xen's `rom_write` (hardware domain): enabling while mapped is ignored; while unmapped the address
 * follows the value. With decoding off, or no change of the enable bit, the value is just written;
 * otherwise a ROM-only modifyBars maps or unmaps it (on error nothing changes), and the register is
 * written when the deferred work completes.
 */
export function romWrite(
  context: EngineContext,
  accessor: AccessorRef,
  device: PciDevice,
  reg: number,
  value: number,
): void {
  const vpci = device.vpci!;
  if (refusedWhilePending(context, device)) return;
  const rom = vpci.bars[vpci.romSlot]!;
  const newEnabled = (value & PCI_ROM_ADDRESS_ENABLE) !== 0;
  if (rom.enabled && newEnabled) {
    context.events.push({ kind: 'rom-write-ignored', sbdf: device.name });
    return;
  }
  const address = barAddress(BigInt((value & PCI_ROM_ADDRESS_MASK) >>> 0));
  if (refusedMove(context, device, rom, address)) return;
  if (!rom.enabled) {
    rom.addr = address;
    rom.guestAddr = address;
  }
  if (!vpci.barsMapped || rom.enabled === newEnabled) {
    vpci.romEnabled = newEnabled;
    device.hw.write(reg, 4, value);
  } else if (!modifyBars(context, accessor.current, device, newEnabled ? PCI_COMMAND_MEMORY : 0, true).ok) {
    return;
  } else if (!newEnabled && context.policy.serialOperations) {
    // The ROM stays where it is mapped until the unmap is done (or rolled back).
    const pending = accessor.current.pending;
    if (pending?.device === device) pending.romMove = address;
    return;
  }
  if (!newEnabled) {
    rom.addr = address;
    rom.guestAddr = address;
  }
}
