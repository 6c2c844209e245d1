/**
 * The physical device: its configuration space as the hardware answers it. Each byte has a value
 * and a write mask (which bits software can change), as QEMU models a device; a BAR's write mask is
 * what makes the all-ones sizing protocol reveal its size. This is what Xen's `pci_conf_read*` and
 * `pci_conf_write*` reach; the engine's handlers sit in front of it.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { checkBarAddress } from './bar-address.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_EXP_DEVCAP,
  PCI_EXT_CAP_ID_REBAR,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_HEADER_TYPE,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_BIT,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_REBAR_CTRL_NBAR_SHIFT,
  PCI_REBAR_CTRL_SIZE_MASK,
  PCI_REBAR_CTRL_SIZE_SHIFT,
  PCI_REBAR_SIZE_BIAS,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS1,
  PCI_SRIOV_SIZEOF,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_VENDOR_ID,
  pciRebarCap,
  pciRebarCtrl,
} from './pci-regs.js';
import { formatSbdf, type Sbdf, toSbdf } from './sbdf.js';
import { type ConfigBytes, type SriovCapabilitySpec, SriovHardware } from './sriov-hardware.js';
import { READ_BY, stateChanged } from './state-generation.js';

/** One BAR of a device description. A 64-bit BAR takes two slots: leave the next one empty. */
export interface BarSpec {
  /** `io`: I/O space; `mem32` / `mem64`: memory space with 32- or 64-bit addresses. */
  readonly type: 'io' | 'mem32' | 'mem64';
  /** Size in bytes: a power of two, at least 16 for memory and 4 for I/O. */
  readonly size: bigint;
  /** Address the host firmware gave it (default 0), aligned to the size. */
  readonly addr?: bigint;
  /** Prefetchable (memory BARs only). */
  readonly prefetchable?: boolean;
}

/** The expansion ROM of a device description. */
export interface RomSpec {
  /** Size in bytes: a power of two, at least 2 KiB. */
  readonly size: bigint;
  /** Address (default 0), aligned to the size, below 4 GiB. */
  readonly addr?: bigint;
  /** The ROM enable bit (default off). */
  readonly enabled?: boolean;
}

/** Where an MSI-X structure lives: the BAR indicator (BIR) and the byte offset in that BAR. */
export interface MsixPlacement {
  /** BAR indicator, 0 … 7 (values above 5 are invalid; the engine refuses them as Xen does). */
  readonly bar: number;
  /** Byte offset in the BAR, a multiple of 8. */
  readonly offset: number;
}

/** An MSI-X capability. */
export interface MsixSpec {
  /** Table entries, 1 … 2048. */
  readonly entries: number;
  /** Where the MSI-X table lives (Table Offset/BIR). */
  readonly table: MsixPlacement;
  /** Where the Pending Bit Array lives (PBA Offset/BIR). */
  readonly pba: MsixPlacement;
}

/** An MSI capability (placed at 0x50, after MSI-X when there is one). */
export interface MsiSpec {
  /** Vectors the device supports (Multiple Message Capable): 1, 2, 4, 8, 16 or 32. */
  readonly vectors: number;
  /** The capability holds 64-bit addresses (default false). */
  readonly address64?: boolean;
  /** Per-vector masking: Mask Bits and Pending Bits registers (default false). */
  readonly masking?: boolean;
}

/** A resizable BAR (extended capability 0x15): the BAR slot and the sizes the hardware supports. */
export interface RebarSpec {
  /** BAR slot, 0 … 5. */
  readonly bar: number;
  /** Supported sizes in bytes: powers of two from 1 MiB to 2^47; the BAR's current size among them. */
  readonly sizes: readonly bigint[];
}

/** A device described field by field; everything not given reads as zero. */
export interface DeviceSpec {
  /** The function's host address, as an `Sbdf` or text such as `0000:03:00.0`. */
  readonly sbdf: Sbdf | string;
  /** Vendor ID register (default 0). */
  readonly vendorId?: number;
  /** Device ID register (default 0). */
  readonly deviceId?: number;
  /** 0: endpoint (6 BARs, ROM at 0x30); 1: bridge (2 BARs, ROM at 0x38). Default 0. */
  readonly headerType?: 0 | 1;
  /** Initial command register (default 0: decoding off). */
  readonly command?: number;
  /** BARs by slot; `null` or missing slots are unimplemented. */
  readonly bars?: readonly (BarSpec | null | undefined)[];
  /** The expansion ROM; none if missing. */
  readonly rom?: RomSpec;
  /** The MSI-X capability; none if missing. */
  readonly msix?: MsixSpec;
  /** The MSI capability; none if missing. */
  readonly msi?: MsiSpec;
  /** Resizable BAR entries (one extended capability); none if missing. */
  readonly rebar?: readonly RebarSpec[];
  /**
   * A PCI Express capability (endpoint) whose Device Capabilities advertise phantom functions: the
   * Phantom Functions Supported field, 0 … 3 (Xen's `phantom_stride` is `8 >> field` for a function
   * below the stride). None if missing.
   */
  readonly phantomFunctions?: 0 | 1 | 2 | 3;
  /** The SR-IOV capability of a physical function; none if missing. */
  readonly sriov?: SriovSpec;
}

/** A physical function's SR-IOV capability and what each of its VFs has of its own. */
export interface SriovSpec extends SriovCapabilitySpec {
  /** Each VF's MSI-X capability (its table and PBA in VF BARs); none if missing. */
  readonly vfMsix?: MsixSpec;
}

/** Sizes the image of a device cannot tell: each implemented BAR's size, and the ROM's. */
export interface ImageSizes {
  /** Size per BAR slot (for a 64-bit BAR, in its low slot); missing: unimplemented. */
  readonly bars?: readonly (bigint | null | undefined)[];
  /** Size of the expansion ROM; missing: no ROM. */
  readonly rom?: bigint;
  /**
   * Size of each VF BAR of the image's SR-IOV capability, by slot (for a 64-bit VF BAR, in its low
   * slot), as sizing reads it back under the image's System Page Size; missing: unimplemented. Only
   * for an image with an SR-IOV capability.
   */
  readonly vfBars?: readonly (bigint | null | undefined)[];
}

const MSIX_CAP_OFFSET = 0x40;
const EXP_CAP_OFFSET = 0x80;
const MSI_CAP_OFFSET = 0x50;
const REBAR_CAP_OFFSET = 0x100;
/** Where SR-IOV goes behind a resizable-BAR capability (which ends by 0x134). */
const SRIOV_AFTER_REBAR_OFFSET = 0x160;
/** The largest BAR Size encoding of a Resizable BAR Control register: 43, 2^63 bytes. */
const REBAR_LARGEST_FIELD = 43;
const U32 = 0xffffffffn;

/** Whether `[reg, reg + size)` meets the BARs (0x10–0x27), the ROM register (0x30) or a bridge's (0x38). */
function touchesBarRegisters(reg: number, size: number): boolean {
  const end = reg + size;
  return (
    (reg < PCI_BASE_ADDRESS_0 + 24 && end > PCI_BASE_ADDRESS_0) ||
    (reg < PCI_ROM_ADDRESS + 4 && end > PCI_ROM_ADDRESS) ||
    (reg < PCI_ROM_ADDRESS1 + 4 && end > PCI_ROM_ADDRESS1)
  );
}

/**
 * The BAR size in bytes a device takes from Resizable BAR Control value `value`: 2^(field + 20), or
 * undefined for a reserved encoding (field above 43), which the device does not take (see
 * `PhysicalDevice.write`).
 */
export function rebarDecodedSize(value: number): bigint | undefined {
  const field = (value & PCI_REBAR_CTRL_SIZE_MASK) >>> PCI_REBAR_CTRL_SIZE_SHIFT;
  return field > REBAR_LARGEST_FIELD ? undefined : 1n << BigInt(field + PCI_REBAR_SIZE_BIAS);
}

/**
 * The devices whose BARs may have moved (a BAR or ROM register or a resizable-BAR control written, or
 * the vPCI state replaced) since the log was last taken: the sharing check's listing of every
 * device's host pages re-reads these instead of asking every device of the machine whether its
 * `barWrites` moved.
 * @internal
 */
export class BarWriteLog {
  private written = new Set<PhysicalDevice>();

  /** Notes `device` (once, however often). */
  note(device: PhysicalDevice): void {
    this.written.add(device);
  }

  /** Whether a device was noted since the last `take`. */
  get noted(): boolean {
    return this.written.size > 0;
  }

  /** The devices noted since the last `take`, and an empty log. */
  take(): ReadonlySet<PhysicalDevice> {
    const written = this.written;
    if (written.size > 0) this.written = new Set();
    return written;
  }
}

/** A physical PCI function's configuration space. */
export class PhysicalDevice {
  // The fields a config access reads (`read`, `write`) come first, declared in the order V8 lays
  // them out: over thousands of devices an access meets the device cold, and the fewer cache lines
  // those fields span, the fewer misses (the scale row).
  /** Whether the device has PCIe extended configuration space (4 KiB instead of 256 bytes). */
  readonly extendedConfig: boolean;
  /**
   * The array holding the configuration space's bytes, from `base` on: 256 for a conventional device
   * (accesses past them `read` answers with all-ones and `write` drops), 4 KiB with extended space.
   * A device's bytes are cut from a slab that the devices made before and after it share
   * (`cutConfigSpace`): an array of its own is an object of 80 bytes, two cache lines that every
   * access reads before the bytes and that over thousands of devices are cold, and 4 KiB of its own
   * allocation even for a conventional device; the slab's array object is one for them all.
   */
  private readonly config: Uint8Array;
  /** Where the device's bytes start in `config`. */
  private readonly base: number;
  /**
   * The writable bits of each byte. Devices described alike have the same masks, so once described
   * a device shares its masks with an equal earlier device's (`shareMasks`) and copies them before
   * changing one (`maskShared`): a write then reads mask bytes other devices keep in the cache, and a
   * machine of thousands of devices holds a few masks instead of 4 KiB a device.
   */
  private wmask: Uint8Array = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE);
  /**
   * Each resizable-BAR control's BAR, fixed once described (`NO_REBAR_SLOTS` for the many devices
   * without: one map every write's check reads, in the cache, instead of an empty map a device).
   */
  private rebarSlots: ReadonlyMap<number, number> = NO_REBAR_SLOTS;
  /** The SR-IOV capability of a physical function described with one (`DeviceSpec.sriov`). */
  private sriovCap: SriovHardware | undefined;
  /** The function's host address. */
  readonly sbdf: Sbdf;
  /** This function's own writes counted by `barWrites`. */
  private ownBarWrites = 0;
  /** The physical function of a virtual function (`virtualFunction`), whose VF BARs are its BARs. */
  private physfn: PhysicalDevice | undefined;
  /** The logs `barWritten` notes this device in (see `BarWriteLog`). */
  private readonly barWriteLogs: BarWriteLog[] = [];
  /** Whether `wmask` may be another device's too (copied before it changes). */
  private maskShared = false;
  /** Current size of each BAR slot (0n: unimplemented or the high half of a 64-bit BAR). */
  private readonly barSizes: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n];
  /** How many times a slot's size changed (`barSizeChanges`). */
  private sizeChanges = 0;
  /** The MSI-X capability each VF of this SR-IOV physical function has (`SriovSpec.vfMsix`). */
  private vfMsix: MsixSpec | undefined;

  /** `slab` false: bytes of its own, for a device used for a moment (a trial copy, a check). */
  private constructor(sbdf: Sbdf, extendedConfig: boolean, slab = true) {
    this.sbdf = sbdf;
    this.extendedConfig = extendedConfig;
    const length = extendedConfig ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
    this.base = slab ? cutConfigSpace(length) : 0;
    this.config = slab ? configSlab : new Uint8Array(length);
  }

  /** A device from a description. Throws naming the field that is wrong. */
  static fromSpec(spec: DeviceSpec): PhysicalDevice {
    if (typeof spec !== 'object' || spec === null) {
      throw new InvalidArgumentError('spec', spec, 'a device description object');
    }
    const device = new PhysicalDevice(
      toSbdf(spec.sbdf, 'spec.sbdf'),
      spec.rebar !== undefined || spec.sriov !== undefined,
    );
    const headerType = spec.headerType ?? 0;
    if (headerType !== 0 && headerType !== 1) {
      throw new InvalidArgumentError('spec.headerType', headerType, '0 (endpoint) or 1 (bridge)');
    }
    device.poke(PCI_VENDOR_ID, 2, checkU16('spec.vendorId', spec.vendorId ?? 0x1234));
    device.poke(PCI_DEVICE_ID, 2, checkU16('spec.deviceId', spec.deviceId ?? 0x0001));
    device.poke(PCI_HEADER_TYPE, 1, headerType);
    device.poke(PCI_COMMAND, 2, checkU16('spec.command', spec.command ?? 0));
    device.setMask(PCI_COMMAND, 2, 0x07ff);
    const slots = headerType === 0 ? 6 : 2;
    const bars = spec.bars ?? [];
    if (!Array.isArray(bars) || bars.length > slots) {
      throw new InvalidArgumentError('spec.bars', bars, `an array of at most ${slots} BAR slots`);
    }
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i];
      if (bar === null || bar === undefined) continue;
      if (bars[i - 1]?.type === 'mem64') {
        throw new InvalidArgumentError(
          `spec.bars[${i}]`,
          bar,
          `null: slot ${i} holds the upper half of the 64-bit BAR in slot ${i - 1}`,
        );
      }
      device.defineBar(i, bar, slots);
    }
    if (spec.rom !== undefined)
      device.defineRom(spec.rom, headerType === 0 ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1);
    if (spec.msix !== undefined) device.defineMsix(spec.msix);
    if (spec.msi !== undefined) device.defineMsi(spec.msi, spec.msix !== undefined);
    if (spec.rebar !== undefined) device.defineRebar(spec.rebar);
    if (spec.sriov !== undefined) device.defineSriov(spec.sriov, spec.rebar !== undefined);
    if (spec.phantomFunctions !== undefined) device.defineExpress(spec.phantomFunctions);
    device.shareMasks();
    return device;
  }

  /**
   * A device from a raw configuration-space image (256 or 4096 bytes, or the hex dump `lspci -xxx`
   * or `-xxxx` prints), with the BAR and ROM sizes an image cannot hold. Each BAR that has a size
   * becomes writable in its address bits; the command register, the MSI-X control bits and the MSI
   * registers' writable bits are writable as on real hardware; everything else is read-only.
   */
  static fromImage(sbdf: Sbdf | string, image: Uint8Array | string, sizes: ImageSizes = {}): PhysicalDevice {
    const bytes = typeof image === 'string' ? parseHexDump(image) : image;
    if (!(bytes instanceof Uint8Array) || (bytes.length !== 256 && bytes.length !== 4096)) {
      throw new InvalidArgumentError('image', image, 'a 256- or 4096-byte configuration space image');
    }
    const device = new PhysicalDevice(toSbdf(sbdf), bytes.length === 4096);
    device.config.set(bytes, device.base);
    device.setMask(PCI_COMMAND, 2, 0x07ff);
    const headerType = bytes[PCI_HEADER_TYPE]! & 0x7f;
    const slots = headerType === 1 ? 2 : 6;
    const barSizes = sizes.bars ?? [];
    for (let i = 0; i < slots; i++) {
      const size = barSizes[i];
      if (size === null || size === undefined) continue;
      const low = device.peek(PCI_BASE_ADDRESS_0 + 4 * i, 4);
      const type =
        (low & PCI_BASE_ADDRESS_SPACE_IO) !== 0
          ? 'io'
          : (low & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64
            ? 'mem64'
            : 'mem32';
      device.setBarMask(i, type, checkBarSize(`sizes.bars[${i}]`, size, type));
    }
    if (sizes.rom !== undefined && headerType <= 1) {
      const reg = headerType === 0 ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1;
      device.setMask(reg, 4, Number(~(checkSize('sizes.rom', sizes.rom, 2048n) - 1n) & 0xfffff800n) | 1);
    }
    const msix = findCapability(device, PCI_CAP_ID_MSIX);
    if (msix !== 0) device.setMask(msix + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    const msi = findCapability(device, PCI_CAP_ID_MSI);
    if (msi !== 0) device.setMsiMasks(msi);
    device.readSriov(sizes.vfBars);
    device.shareMasks();
    return device;
  }

  /**
   * Virtual function `n` of SR-IOV physical function `pf`, at its routing ID, as PCIe 9.3.4 makes a
   * VF's configuration space: Vendor and Device ID read 0xffff (software takes them from the PF and
   * its VF Device ID), the command register's I/O and Memory Space Enable bits are read-only zero
   * (VF MSE in the PF's SR-IOV Control decodes the VF BARs), the BAR registers read zero (VF BARs
   * live in the PF), extended configuration space is present, and the MSI-X capability is the
   * PF's `vfMsix`. Throws when `pf` has no SR-IOV capability or VF `n` has no routing ID.
   */
  static virtualFunction(pf: PhysicalDevice, n: number): PhysicalDevice {
    const sriov = pf.sriov;
    if (sriov === undefined)
      throw new InvalidArgumentError('pf', pf.toString(), 'an SR-IOV physical function');
    const pfRid = (pf.sbdf.bus << 8) | (pf.sbdf.dev << 3) | pf.sbdf.fn;
    const rid = sriov.vfRoutingIdAt(pfRid, n);
    if (rid === undefined) {
      throw new InvalidArgumentError(
        'n',
        n,
        `a VF index below the ${sriov.vfRoutingIds(pfRid).length} NumVFs bring up`,
      );
    }
    const sbdf: Sbdf = { seg: pf.sbdf.seg, bus: rid >> 8, dev: (rid >> 3) & 0x1f, fn: rid & 7 };
    const vf = new PhysicalDevice(sbdf, true);
    vf.physfn = pf;
    vf.poke(PCI_VENDOR_ID, 2, 0xffff);
    vf.poke(PCI_DEVICE_ID, 2, 0xffff);
    vf.setMask(PCI_COMMAND, 2, 0x07ff & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
    if (pf.vfMsix !== undefined) vf.defineMsix(pf.vfMsix);
    vf.shareMasks();
    return vf;
  }

  /**
   * Notes this device in `log` from now on whenever `barWrites` moves.
   * @internal
   */
  watchBarWrites(log: BarWriteLog): void {
    if (!this.barWriteLogs.includes(log)) this.barWriteLogs.push(log);
  }

  /**
   * Notes this device in the logs watching it without a register write: its vPCI state was
   * replaced, so what was made from its BARs must be made again.
   * @internal
   */
  noteBarsChanged(): void {
    for (const log of this.barWriteLogs) log.note(this);
  }

  private barWritten(): void {
    stateChanged(READ_BY.hostPages);
    this.ownBarWrites++;
    this.noteBarsChanged();
  }

  /** Reads `size` (1, 2 or 4) bytes at `reg`, little-endian, as the hardware answers. */
  read(reg: number, size: number): number {
    checkAccess(reg, size);
    if (reg >= PCI_CFG_SPACE_SIZE && !this.extendedConfig)
      return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    return this.peek(reg, size);
  }

  /**
   * The 32-bit register at `reg` of the header (below 0x40: a BAR's, the ROM's), as `read` gives it
   * but without its argument checks: the checks read a device's BAR and ROM registers again after
   * every line that wrote one (host-pages.ts `hardwareKey`), where those checks were a tenth of the line's.
   * @internal
   */
  headerDword(reg: number): number {
    return this.peek(reg, 4);
  }

  /**
   * The header type register's layout (0 a device, 1 a bridge; the multi-function bit cleared), as
   * `read(PCI_HEADER_TYPE, 1) & 0x7f` gives it without its argument checks (`headerDword`).
   * @internal
   */
  headerLayout(): number {
    return this.peek(PCI_HEADER_TYPE, 1) & 0x7f;
  }

  /** Writes `size` bytes at `reg`: only the writable bits change, as on the real device. */
  write(reg: number, size: number, value: number): void {
    checkAccess(reg, size);
    if (reg >= PCI_CFG_SPACE_SIZE && !this.extendedConfig) return;
    // A resizable-BAR control counts in afterWrite, once the size it sets is known.
    if (touchesBarRegisters(reg, size) || this.placesVfBars(reg, size)) this.barWritten();
    // The resizable-BAR controls the write reaches, as they were (most devices have none).
    let before: number[] | undefined;
    // Checked first: an iterator per write over an empty map is most writes' only allocation here.
    if (this.rebarSlots.size !== 0)
      for (const ctrl of this.rebarSlots.keys()) {
        if (reg >= ctrl + 4 || reg + size <= ctrl) continue;
        before ??= [];
        before.push(this.peek(ctrl, 4));
      }
    const config = this.config;
    const at = this.base + reg;
    for (let i = 0; i < size; i++) {
      const byte = (value >>> (8 * i)) & 0xff;
      const mask = this.wmask[reg + i]!;
      config[at + i] = (config[at + i]! & ~mask) | (byte & mask);
    }
    if (before !== undefined) this.afterWrite(reg, size, before);
    // A new System Page Size resizes the VF BARs (PCIe 9.3.3.13).
    this.sriovCap?.afterWrite(reg, size);
  }

  /**
   * A copy of the device as it is now (registers, write masks, BAR sizes, resizable BARs), to try a
   * write on and see what it would decode after it.
   */
  copy(): PhysicalDevice {
    const copy = new PhysicalDevice(this.sbdf, this.extendedConfig, false);
    copy.config.set(this.image());
    // The masks are shared until either changes one (`setMask` copies a shared array first).
    copy.wmask = this.wmask;
    copy.maskShared = true;
    this.maskShared = true;
    for (let i = 0; i < this.barSizes.length; i++) copy.barSizes[i] = this.barSizes[i]!;
    copy.sizeChanges = this.sizeChanges;
    copy.rebarSlots = this.rebarSlots;
    copy.sriovCap = this.sriovCap?.copyOnto(copy.configBytes());
    copy.vfMsix = this.vfMsix;
    copy.physfn = this.physfn;
    copy.ownBarWrites = this.ownBarWrites;
    return copy;
  }

  /**
   * Writes that may have moved or resized a BAR or the ROM: to a BAR or ROM register (either header
   * layout's), to a resizable-BAR control, or to a PF's VF BAR registers or System Page Size (a VF
   * counts its PF's too: they place its BARs). What is derived from the BARs alone holds until this
   * changes (a driver's many other config writes leave it be).
   */
  get barWrites(): number {
    return this.ownBarWrites + (this.physfn?.barWrites ?? 0);
  }

  set barWrites(value: number) {
    stateChanged(READ_BY.hostPages);
    this.ownBarWrites = value - (this.physfn?.barWrites ?? 0);
    this.noteBarsChanged();
  }

  /** A copy of the whole configuration space (256 or 4096 bytes). */
  image(): Uint8Array {
    const length = this.extendedConfig ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
    return this.config.slice(this.base, this.base + length);
  }

  /** The SR-IOV capability, when the device was described with one. */
  get sriov(): SriovHardware | undefined {
    return this.sriovCap;
  }

  /**
   * Whether a write of `size` bytes at `reg` reaches a register that places or sizes a BAR or the
   * ROM: a BAR or ROM register (either header layout's), a resizable-BAR control, or an SR-IOV
   * physical function's VF BAR registers or System Page Size.
   */
  placesBars(reg: number, size: number): boolean {
    if (touchesBarRegisters(reg, size)) return true;
    if (this.rebarSlots.size !== 0)
      for (const ctrl of this.rebarSlots.keys()) if (reg < ctrl + 4 && reg + size > ctrl) return true;
    return this.placesVfBars(reg, size);
  }

  /** A PF's VF BAR registers place its VFs' BARs; System Page Size resizes them (PCIe 9.3.3.13). */
  private placesVfBars(reg: number, size: number): boolean {
    const sriov = this.sriovCap;
    return sriov !== undefined && (sriov.touchesVfBars(reg, size) || sriov.touchesPageSize(reg, size));
  }

  /** The current size of BAR slot `i` in bytes (0n when unimplemented). */
  barSize(i: number): bigint {
    return this.barSizes[i] ?? 0n;
  }

  /**
   * A count of the changes to the BAR slots' sizes (`barSize`: a resizable BAR resized): every size
   * is what it was while the count stands, a number to compare instead of six bigints
   * (host-pages.ts `BarStates`, after every line that wrote a BAR register).
   * @internal
   */
  get barSizeChanges(): number {
    return this.sizeChanges;
  }

  /**
   * The size of the expansion ROM in bytes (0n when there is none), from its register's writable
   * address bits, as sizing would find it, without writing the register.
   */
  romSize(): bigint {
    const mask = this.romAddressMask();
    return mask === 0 ? 0n : (1n << 32n) - BigInt(mask);
  }

  /**
   * The expansion ROM register's writable address bits (0 when there is no ROM), what `romSize` is
   * worked out from: a number, for telling without bigint arithmetic whether the size can have changed.
   * @internal
   */
  romAddressMask(): number {
    const headerType = this.headerLayout();
    if (headerType > 1) return 0;
    return (this.peekMask(headerType === 0 ? PCI_ROM_ADDRESS : PCI_ROM_ADDRESS1) & 0xfffff800) >>> 0;
  }

  // ---- construction helpers ------------------------------------------------------------------

  private defineBar(i: number, bar: BarSpec, slots: number): void {
    const name = `spec.bars[${i}]`;
    if (typeof bar !== 'object') throw new InvalidArgumentError(name, bar, 'a { type, size, addr? } object');
    if (bar.type !== 'io' && bar.type !== 'mem32' && bar.type !== 'mem64') {
      throw new InvalidArgumentError(`${name}.type`, bar.type, "'io', 'mem32' or 'mem64'");
    }
    const size = checkBarSize(`${name}.size`, bar.size, bar.type);
    const addr = checkBarAddress(`${name}.addr`, bar.addr, size, bar.type === 'mem64');
    if (bar.type === 'mem64' && i + 1 >= slots) {
      throw new InvalidArgumentError(
        `${name}.type`,
        bar.type,
        `'mem32' or 'io': a 64-bit BAR takes two slots, and slot ${i} is the last of ${slots}`,
      );
    }
    const reg = PCI_BASE_ADDRESS_0 + 4 * i;
    let flags = 0;
    if (bar.type === 'io') flags = PCI_BASE_ADDRESS_SPACE_IO;
    else {
      if (bar.type === 'mem64') flags |= PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (bar.prefetchable === true) flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;
    }
    this.poke(reg, 4, Number(addr & U32) | flags);
    if (bar.type === 'mem64') this.poke(reg + 4, 4, Number(addr >> 32n));
    this.setBarMask(i, bar.type, size);
  }

  private setBarMask(i: number, type: 'io' | 'mem32' | 'mem64', size: bigint): void {
    const reg = PCI_BASE_ADDRESS_0 + 4 * i;
    const mask = ~(size - 1n);
    if (this.barSizes[i] !== size) this.sizeChanges++;
    this.barSizes[i] = size;
    this.setMask(reg, 4, Number(mask & (type === 'io' ? 0xfffffffcn : 0xfffffff0n)));
    if (type === 'mem64') this.setMask(reg + 4, 4, Number((mask >> 32n) & U32));
    // Address bits below the size read as zero on real hardware.
    const low = this.peek(reg, 4);
    this.poke(reg, 4, (low & (this.peekMask(reg) | (type === 'io' ? 0x3 : 0xf))) >>> 0);
    if (type === 'mem64') this.poke(reg + 4, 4, (this.peek(reg + 4, 4) & this.peekMask(reg + 4)) >>> 0);
  }

  private defineRom(rom: RomSpec, reg: number): void {
    const size = checkSize('spec.rom.size', rom.size, 2048n);
    const addr = rom.addr ?? 0n;
    if (typeof addr !== 'bigint' || addr < 0n || addr % size !== 0n || addr + size > 1n << 32n) {
      throw new InvalidArgumentError('spec.rom.addr', addr, 'a bigint aligned to the size, below 2^32');
    }
    this.poke(reg, 4, Number(addr) | (rom.enabled === true ? 1 : 0));
    this.setMask(reg, 4, (Number(~(size - 1n) & 0xfffff800n) | 1) >>> 0);
  }

  private defineMsix(msix: MsixSpec, name = 'spec.msix'): void {
    if (typeof msix !== 'object' || msix === null) {
      throw new InvalidArgumentError(name, msix, 'an MSI-X description { entries, table, pba }');
    }
    if (!Number.isInteger(msix.entries) || msix.entries < 1 || msix.entries > 2048) {
      throw new InvalidArgumentError(`${name}.entries`, msix.entries, 'an integer in 1 … 2048');
    }
    const placement = (field: string, p: MsixPlacement): number => {
      if (!Number.isInteger(p.bar) || p.bar < 0 || p.bar > 7) {
        throw new InvalidArgumentError(`${name}.${field}.bar`, p.bar, 'a BAR indicator 0 … 7');
      }
      if (!Number.isInteger(p.offset) || p.offset < 0 || p.offset > 0xfffffff8 || p.offset % 8 !== 0) {
        throw new InvalidArgumentError(`${name}.${field}.offset`, p.offset, 'a multiple of 8 below 2^32');
      }
      return (p.offset | p.bar) >>> 0;
    };
    this.poke(PCI_STATUS, 2, this.peek(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
    this.poke(PCI_CAPABILITY_LIST, 1, MSIX_CAP_OFFSET);
    this.poke(MSIX_CAP_OFFSET, 1, PCI_CAP_ID_MSIX);
    this.poke(MSIX_CAP_OFFSET + 1, 1, 0);
    this.poke(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, msix.entries - 1);
    this.setMask(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    this.poke(MSIX_CAP_OFFSET + PCI_MSIX_TABLE, 4, placement('table', msix.table));
    this.poke(MSIX_CAP_OFFSET + PCI_MSIX_PBA, 4, placement('pba', msix.pba));
  }

  /** A PCI Express endpoint capability, appended to the capability list, with its phantom field. */
  private defineExpress(phantom: number): void {
    if (!Number.isInteger(phantom) || phantom < 0 || phantom > 3)
      throw new InvalidArgumentError('spec.phantomFunctions', phantom, 'an integer in 0 … 3');
    let link = PCI_CAPABILITY_LIST;
    if ((this.peek(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST) !== 0)
      for (let pos = this.peek(link, 1); pos !== 0; pos = this.peek(link, 1)) link = pos + 1;
    this.poke(PCI_STATUS, 2, this.peek(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
    this.poke(link, 1, EXP_CAP_OFFSET);
    this.poke(EXP_CAP_OFFSET, 1, PCI_CAP_ID_EXP);
    this.poke(EXP_CAP_OFFSET + 1, 1, 0);
    this.poke(EXP_CAP_OFFSET + 2, 2, 2); // capability version 2, device/port type 0: an endpoint
    this.poke(EXP_CAP_OFFSET + PCI_EXP_DEVCAP, 4, phantom << 3);
  }

  private defineMsi(msi: MsiSpec, afterMsix: boolean): void {
    if (typeof msi !== 'object' || msi === null || ![1, 2, 4, 8, 16, 32].includes(msi.vectors)) {
      throw new InvalidArgumentError('spec.msi.vectors', msi?.vectors, '1, 2, 4, 8, 16 or 32');
    }
    for (const flag of ['address64', 'masking'] as const) {
      if (msi[flag] !== undefined && typeof msi[flag] !== 'boolean') {
        throw new InvalidArgumentError(`spec.msi.${flag}`, msi[flag], 'true or false');
      }
    }
    this.poke(PCI_STATUS, 2, this.peek(PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
    this.poke(afterMsix ? MSIX_CAP_OFFSET + 1 : PCI_CAPABILITY_LIST, 1, MSI_CAP_OFFSET);
    this.poke(MSI_CAP_OFFSET, 1, PCI_CAP_ID_MSI);
    this.poke(MSI_CAP_OFFSET + 1, 1, 0);
    const control =
      ((Math.log2(msi.vectors) << 1) & PCI_MSI_FLAGS_QMASK) |
      (msi.address64 === true ? PCI_MSI_FLAGS_64BIT : 0) |
      (msi.masking === true ? PCI_MSI_FLAGS_MASKBIT : 0);
    this.poke(MSI_CAP_OFFSET + PCI_MSI_FLAGS, 2, control);
    this.setMsiMasks(MSI_CAP_OFFSET);
  }

  /**
   * The bits software can change in the MSI capability at `cap`: Enable and Multiple Message Enable,
   * the address (dword aligned), the data, and one mask bit per supported vector. Pending Bits and
   * the capability bits are read-only.
   */
  private setMsiMasks(cap: number): void {
    const control = this.peek(cap + PCI_MSI_FLAGS, 2);
    const address64 = (control & PCI_MSI_FLAGS_64BIT) !== 0;
    const vectors = Math.min(32, 1 << ((control & PCI_MSI_FLAGS_QMASK) >>> 1));
    this.setMask(cap + PCI_MSI_FLAGS, 2, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
    this.setMask(cap + PCI_MSI_ADDRESS_LO, 4, 0xfffffffc);
    if (address64) this.setMask(cap + PCI_MSI_ADDRESS_HI, 4, 0xffffffff);
    this.setMask(cap + (address64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2, 0xffff);
    if ((control & PCI_MSI_FLAGS_MASKBIT) !== 0) {
      const mask = cap + PCI_MSI_MASK_BIT - (address64 ? 0 : 4);
      this.setMask(mask, 4, vectors === 32 ? 0xffffffff : (1 << vectors) - 1);
    }
  }

  private defineRebar(rebar: readonly RebarSpec[]): void {
    if (!Array.isArray(rebar) || rebar.length < 1 || rebar.length > 6) {
      throw new InvalidArgumentError('spec.rebar', rebar, 'an array of 1 … 6 resizable BARs');
    }
    this.poke(REBAR_CAP_OFFSET, 4, PCI_EXT_CAP_ID_REBAR | (1 << 16));
    rebar.forEach((entry, i) => {
      const name = `spec.rebar[${i}]`;
      const size = this.barSizes[entry.bar];
      if (!Number.isInteger(entry.bar) || entry.bar < 0 || entry.bar > 5 || !size) {
        throw new InvalidArgumentError(`${name}.bar`, entry.bar, 'the slot of an implemented memory BAR');
      }
      let supported = 0n;
      for (const s of entry.sizes) supported |= 1n << BigInt(rebarField(`${name}.sizes`, s));
      if ((supported & (1n << BigInt(rebarField(`${name}.bar size`, size)))) === 0n) {
        throw new InvalidArgumentError(
          `${name}.sizes`,
          entry.sizes.map(String).join(','),
          `a list holding the BAR's size ${size}`,
        );
      }
      const cap = REBAR_CAP_OFFSET + pciRebarCap(i);
      const ctrl = REBAR_CAP_OFFSET + pciRebarCtrl(i);
      this.poke(cap, 4, Number((supported & 0xfffffffn) << 4n) >>> 0);
      const nbars = i === 0 ? rebar.length << PCI_REBAR_CTRL_NBAR_SHIFT : 0;
      const upper = Number((supported >> 28n) & 0xffffn) << 16;
      this.poke(
        ctrl,
        4,
        (entry.bar | nbars | (rebarField(name, size) << PCI_REBAR_CTRL_SIZE_SHIFT) | upper) >>> 0,
      );
      this.setMask(ctrl, 4, PCI_REBAR_CTRL_SIZE_MASK);
      if (this.rebarSlots === NO_REBAR_SLOTS) this.rebarSlots = new Map();
      (this.rebarSlots as Map<number, number>).set(ctrl, entry.bar);
    });
  }

  /** Byte access for a capability model (SR-IOV) living in this configuration space. */
  private configBytes(): ConfigBytes {
    return {
      peek: (reg, size) => this.peek(reg, size),
      poke: (reg, size, value) => this.poke(reg, size, value),
      peekMask: (reg) => this.peekMask(reg),
      setMask: (reg, size, mask) => this.setMask(reg, size, mask),
    };
  }

  /**
   * An image's SR-IOV capability (`fromImage`), with the VF BAR sizes the image cannot hold. VF BAR
   * sizes for an image without the capability are refused: they would be used for nothing.
   */
  private readSriov(vfBarSizes: readonly (bigint | null | undefined)[] | undefined): void {
    const pos = findExtCapability(this, PCI_EXT_CAP_ID_SRIOV);
    const given = (vfBarSizes ?? []).some((size) => size !== null && size !== undefined);
    if (pos === 0) {
      if (given) {
        throw new InvalidArgumentError(
          'sizes.vfBars',
          vfBarSizes,
          this.extendedConfig
            ? 'none: the image has no SR-IOV capability (extended capability 0x10)'
            : 'none: a 256-byte image (lspci -xxx) has no extended capabilities; give the 4096-byte one (lspci -xxxx)',
        );
      }
      return;
    }
    if (pos + PCI_SRIOV_SIZEOF > PCI_CFG_SPACE_EXP_SIZE) {
      throw new InvalidArgumentError(
        'image.sriov',
        `at 0x${pos.toString(16)}`,
        `a capability of 0x${PCI_SRIOV_SIZEOF.toString(16)} bytes inside the 4096-byte configuration space`,
      );
    }
    this.sriovCap = SriovHardware.fromImage(this.configBytes(), pos, vfBarSizes ?? []);
  }

  private defineSriov(sriov: SriovSpec, behindRebar: boolean): void {
    const pos = behindRebar ? SRIOV_AFTER_REBAR_OFFSET : REBAR_CAP_OFFSET;
    if (behindRebar)
      this.poke(REBAR_CAP_OFFSET + 2, 2, (this.peek(REBAR_CAP_OFFSET + 2, 2) & 0xf) | (pos << 4));
    this.sriovCap = SriovHardware.define(this.configBytes(), pos, sriov);
    // Each VF gets this MSI-X capability (virtualFunction): check it now, naming the field.
    if (sriov.vfMsix !== undefined) {
      new PhysicalDevice(this.sbdf, true, false).defineMsix(sriov.vfMsix, 'spec.sriov.vfMsix');
      this.vfMsix = sriov.vfMsix;
    }
  }

  /**
   * Side effects of a write beyond storing bits: a resizable BAR's new size. A reserved size encoding
   * (above 43, 2^63 bytes: the PCIe Resizable BAR Control register lists none beyond) is not taken:
   * the spec leaves writing an unsupported value undefined, and this device keeps the size it had
   * (the field reads back as before), as a BAR cannot decode 2^64 bytes or more.
   */
  private afterWrite(reg: number, size: number, before: readonly number[]): void {
    let k = 0;
    for (const [ctrl, bar] of this.rebarSlots) {
      if (reg + size <= ctrl || reg >= ctrl + 4) continue;
      let field = (this.peek(ctrl, 4) & PCI_REBAR_CTRL_SIZE_MASK) >>> PCI_REBAR_CTRL_SIZE_SHIFT;
      const old = before[k++]!;
      if (field > REBAR_LARGEST_FIELD) {
        this.poke(
          ctrl,
          4,
          ((this.peek(ctrl, 4) & ~PCI_REBAR_CTRL_SIZE_MASK) | (old & PCI_REBAR_CTRL_SIZE_MASK)) >>> 0,
        );
        field = (old & PCI_REBAR_CTRL_SIZE_MASK) >>> PCI_REBAR_CTRL_SIZE_SHIFT;
      }
      const low = this.peek(PCI_BASE_ADDRESS_0 + 4 * bar, 4);
      const type = (low & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64 ? 'mem64' : 'mem32';
      this.setBarMask(bar, type, 1n << BigInt(field + PCI_REBAR_SIZE_BIAS));
      this.barWritten();
    }
  }

  private peek(reg: number, size: number): number {
    const config = this.config;
    const at = this.base + reg;
    // A register's bytes joined by shifts (little-endian; `>>> 0` reads the 32 bits unsigned): the
    // checks decode a device's BAR registers again after every line that wrote one, and a loop of
    // multiplications in floating point over the bytes was most of that decoding.
    if (size === 4)
      return (config[at]! | (config[at + 1]! << 8) | (config[at + 2]! << 16) | (config[at + 3]! << 24)) >>> 0;
    if (size === 2) return config[at]! | (config[at + 1]! << 8);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + config[at + i]!;
    return value;
  }

  private peekMask(reg: number): number {
    return (
      (this.wmask[reg]! |
        (this.wmask[reg + 1]! << 8) |
        (this.wmask[reg + 2]! << 16) |
        (this.wmask[reg + 3]! << 24)) >>>
      0
    );
  }

  private poke(reg: number, size: number, value: number): void {
    for (let i = 0; i < size; i++) this.config[this.base + reg + i] = (value >>> (8 * i)) & 0xff;
  }

  private setMask(reg: number, size: number, mask: number): void {
    if (this.maskShared) {
      this.wmask = this.wmask.slice();
      this.maskShared = false;
    }
    for (let i = 0; i < size; i++) this.wmask[reg + i] = (mask >>> (8 * i)) & 0xff;
  }

  /**
   * Takes an equal earlier device's masks instead of its own (`wmask`) when `SHARED_MASKS` has them,
   * else offers its own to later devices there.
   */
  private shareMasks(): void {
    // Shared from now on either way: kept in `SHARED_MASKS`, this device's own array is the next's.
    this.wmask = sharedMasks(this.wmask);
    this.maskShared = true;
  }

  /** For error messages. */
  toString(): string {
    return formatSbdf(this.sbdf);
  }
}

/** `PhysicalDevice.rebarSlots` of a device without resizable BARs. */
const NO_REBAR_SLOTS: ReadonlyMap<number, number> = new Map();

/**
 * Write masks devices share (`PhysicalDevice.shareMasks`), by a hash of their bytes; at most
 * `SHARED_MASKS_KEPT` of them (the oldest go first: a device then keeps masks of its own), so that
 * what is kept is bounded whatever devices a process describes. An array here is never changed (a
 * device copies it before changing a mask).
 */
/**
 * The slab devices' configuration spaces are cut from now (`PhysicalDevice.config`), and how much
 * of it is cut. 64 KiB: 256 conventional devices or 16 with extended space; a new one when the next
 * device does not fit. A slab is freed once no device cut from it is left.
 */
const CONFIG_SLAB_BYTES = 0x1_0000;
let configSlab = new Uint8Array(CONFIG_SLAB_BYTES);
let configSlabUsed = 0;

/** Where `length` bytes cut for a new device start in `configSlab` (a new slab when they do not fit). */
function cutConfigSpace(length: number): number {
  if (configSlabUsed + length > CONFIG_SLAB_BYTES) {
    configSlab = new Uint8Array(CONFIG_SLAB_BYTES);
    configSlabUsed = 0;
  }
  const base = configSlabUsed;
  configSlabUsed += length;
  return base;
}

const SHARED_MASKS = new Map<number, Uint8Array[]>();
let sharedMaskCount = 0;
const SHARED_MASKS_KEPT = 1024;

/** `masks`, or an equal array in `SHARED_MASKS` (`masks` is kept there when none is). */
function sharedMasks(masks: Uint8Array): Uint8Array {
  const words = new Uint32Array(masks.buffer, masks.byteOffset, masks.length >> 2);
  let hash = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) hash = Math.imul(hash ^ words[i]!, 0x01000193);
  const known = SHARED_MASKS.get(hash);
  if (known !== undefined)
    for (const other of known) {
      const otherWords = new Uint32Array(other.buffer, other.byteOffset, other.length >> 2);
      let equal = true;
      for (let i = 0; i < words.length && equal; i++) equal = words[i] === otherWords[i];
      if (equal) return other;
    }
  if (sharedMaskCount >= SHARED_MASKS_KEPT) {
    const [oldest] = SHARED_MASKS.keys();
    sharedMaskCount -= SHARED_MASKS.get(oldest!)!.length;
    SHARED_MASKS.delete(oldest!);
  }
  if (known !== undefined && SHARED_MASKS.has(hash)) known.push(masks);
  else SHARED_MASKS.set(hash, [masks]);
  sharedMaskCount++;
  return masks;
}

/** Offset of the first capability with `id` in the legacy list, or 0. */
export function findCapability(device: PhysicalDevice, id: number): number {
  if ((device.read(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST) === 0) return 0;
  let pos = device.read(PCI_CAPABILITY_LIST, 1) & ~3;
  for (let ttl = 48; pos >= 0x40 && ttl > 0; ttl--) {
    if (device.read(pos, 1) === id) return pos;
    pos = device.read(pos + 1, 1) & ~3;
  }
  return 0;
}

/** Offset of the extended capability with `id`, or 0. */
export function findExtCapability(device: PhysicalDevice, id: number): number {
  if (!device.extendedConfig) return 0;
  let pos = PCI_CFG_SPACE_SIZE;
  for (let ttl = 480; pos >= PCI_CFG_SPACE_SIZE && ttl > 0; ttl--) {
    const header = device.read(pos, 4);
    if (header === 0 || header === 0xffffffff) return 0;
    if ((header & 0xffff) === id) return pos;
    pos = (header >>> 20) & 0xffc;
  }
  return 0;
}

/**
 * Parses the hex dump `lspci -xxx` prints: lines `OFFSET: b0 b1 … b15`, other lines (the device
 * title) ignored. Returns 256 or 4096 bytes.
 */
export function parseHexDump(text: string): Uint8Array {
  const bytes: number[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, n) => {
    const match = /^\s*([0-9a-fA-F]+):((?:\s+[0-9a-fA-F]{2})+)\s*$/.exec(line);
    if (match === null) return;
    const offset = Number.parseInt(match[1]!, 16);
    if (offset !== bytes.length) {
      throw new InvalidArgumentError(`image line ${n + 1}`, line, `offset ${bytes.length.toString(16)} next`);
    }
    for (const byte of match[2]!.trim().split(/\s+/)) bytes.push(Number.parseInt(byte, 16));
  });
  if (bytes.length !== 256 && bytes.length !== 4096) {
    throw new InvalidArgumentError(
      'image',
      `${bytes.length} bytes`,
      'a hex dump of 256 or 4096 bytes (lspci -xxx / -xxxx)',
    );
  }
  return Uint8Array.from(bytes);
}

function checkAccess(reg: number, size: number): void {
  if (size !== 1 && size !== 2 && size !== 4) throw new InvalidArgumentError('size', size, '1, 2 or 4');
  if (!Number.isInteger(reg) || reg < 0 || reg + size > PCI_CFG_SPACE_EXP_SIZE) {
    throw new InvalidArgumentError('reg', reg, `an offset with reg + size <= 4096`);
  }
}

function checkU16(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new InvalidArgumentError(argument, value, 'an integer in 0 … 0xffff');
  }
  return value;
}

function checkSize(argument: string, value: unknown, min: bigint, max = 1n << 63n): bigint {
  if (typeof value !== 'bigint' || value < min || value > max || (value & (value - 1n)) !== 0n) {
    throw new InvalidArgumentError(argument, value, `a power of two from ${bytes(min)} to ${bytes(max)}`);
  }
  return value;
}

/** A power-of-two byte count as a message shows it: `256 bytes`, `2^31 bytes`. */
const bytes = (size: bigint): string =>
  size <= 4096n ? `${size} bytes` : `2^${size.toString(2).length - 1} bytes`;

/**
 * A BAR's size: a power of two of at least 16 bytes for memory, and 4 to 256 bytes for I/O (PCI Local
 * Bus Specification 3.0, 6.2.5.1: an I/O Base Address register requests at most 256 bytes).
 */
function checkBarSize(argument: string, value: unknown, type: 'io' | 'mem32' | 'mem64'): bigint {
  if (type === 'io') {
    const size = typeof value === 'bigint' ? value : -1n;
    if (size > 256n) {
      throw new InvalidArgumentError(
        argument,
        value,
        'a power of two from 4 bytes to 256 bytes (an I/O BAR requests at most 256)',
      );
    }
    return checkSize(argument, value, 4n, 256n);
  }
  return checkSize(argument, value, 16n, type === 'mem32' ? 1n << 31n : 1n << 63n);
}

function rebarField(argument: string, size: bigint): number {
  const field = size.toString(2).length - 1 - PCI_REBAR_SIZE_BIAS;
  if (typeof size !== 'bigint' || (size & (size - 1n)) !== 0n || field < 0 || field > REBAR_LARGEST_FIELD) {
    throw new InvalidArgumentError(argument, size, 'a power of two from 1 MiB (2^20) to 2^63');
  }
  return field;
}
