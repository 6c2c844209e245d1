/**
 * The SR-IOV extended capability as a physical function's hardware answers it (PCIe Base
 * Specification 9.3.3): which fields are read-only, which software may write, and how the VF BAR
 * registers answer the all-ones sizing protocol, their size depending on System Page Size. Also the
 * routing-ID and VF BAR arithmetic every user of the capability shares (Linux's `virtfn_bus()` /
 * `virtfn_devfn()` and `sriov_init()` in drivers/pci/iov.c; the series' `vf_init_bars()`).
 * docs/sriov.md has the register table and the sources.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { checkBarAddress } from './bar-address.js';
import {
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_SRIOV_BAR,
  PCI_SRIOV_CTRL,
  PCI_SRIOV_CTRL_ARI,
  PCI_SRIOV_CTRL_MSE,
  PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_INITIAL_VF,
  PCI_SRIOV_NUM_BARS,
  PCI_SRIOV_NUM_VF,
  PCI_SRIOV_SUP_PGSIZE,
  PCI_SRIOV_SYS_PGSIZE,
  PCI_SRIOV_TOTAL_VF,
  PCI_SRIOV_VF_DID,
  PCI_SRIOV_VF_OFFSET,
  PCI_SRIOV_VF_STRIDE,
} from './pci-regs.js';

/** One VF BAR of an SR-IOV description: VFs have memory BARs only. */
export interface VfBarSpec {
  /** `mem32` / `mem64`: 32- or 64-bit addresses; a 64-bit VF BAR takes two slots. */
  readonly type: 'mem32' | 'mem64';
  /**
   * Each VF's BAR size in bytes as the function needs it: a power of two of at least 16. The PF
   * rounds it up to the System Page Size (PCIe 9.3.3.13), so the size sizing reads back is the
   * larger of the two.
   */
  readonly size: bigint;
  /** VF 0's address: the VF BAR register's value (default 0), aligned to the size. */
  readonly addr?: bigint;
  /** Prefetchable. */
  readonly prefetchable?: boolean;
}

/**
 * A physical function's SR-IOV capability registers, described field by field (`SriovSpec` adds
 * the VFs' MSI-X capability).
 */
export interface SriovCapabilitySpec {
  /** TotalVFs: how many VFs the PF can have, 1 … 0xffff. */
  readonly totalVfs: number;
  /** InitialVFs (default TotalVFs), at most TotalVFs. */
  readonly initialVfs?: number;
  /** NumVFs as firmware left it (default 0), at most TotalVFs. */
  readonly numVfs?: number;
  /** First VF Offset: VF 0's routing ID minus the PF's, 1 … 0xffff. */
  readonly firstVfOffset: number;
  /** VF Stride: routing-ID distance between consecutive VFs, 0 … 0xffff (0 only with one VF). */
  readonly vfStride: number;
  /** VF Device ID (default 0). */
  readonly vfDeviceId?: number;
  /** Supported Page Sizes: bit n means 2^(n+12) bytes (default 0x553, a common value); bit 0 set. */
  readonly supportedPageSizes?: number;
  /** System Page Size: one supported bit (default 1: 4 KiB). */
  readonly systemPageSize?: number;
  /** VF BARs by slot; `null` or missing slots are unimplemented. */
  readonly vfBars?: readonly (VfBarSpec | null | undefined)[];
  /** VF Enable as firmware left it (default off). */
  readonly vfEnable?: boolean;
  /** VF Memory Space Enable as firmware left it (default off). */
  readonly vfMemorySpace?: boolean;
}

/** The byte-level access a physical device gives its capability models. */
export interface ConfigBytes {
  /** Reads `size` bytes at `reg` regardless of masks. */
  peek(reg: number, size: number): number;
  /** Stores `size` bytes at `reg` regardless of masks. */
  poke(reg: number, size: number, value: number): void;
  /** The writable bits of the dword at `reg`. */
  peekMask(reg: number): number;
  /** Sets which bits of `size` bytes at `reg` software may change. */
  setMask(reg: number, size: number, mask: number): void;
}

/** The page size (bytes) a System Page Size value selects: its highest set bit n gives 2^(n+12). */
export function sriovPageSize(systemPageSize: number): bigint {
  const value = systemPageSize >>> 0;
  if (value === 0) return 0n;
  return 1n << BigInt(31 - Math.clz32(value) + 12);
}

/**
 * VF `n`'s routing ID (`bus << 8 | devfn`): the PF's plus First VF Offset plus `n` × VF Stride
 * (PCIe 9.3.3.10–11; Linux `virtfn_bus()` / `virtfn_devfn()`). A sum past 0xffff has no bus to sit
 * on: `undefined`.
 */
export function vfRoutingId(
  pfRoutingId: number,
  offset: number,
  stride: number,
  n: number,
): number | undefined {
  const rid = pfRoutingId + offset + n * stride;
  return rid > 0xffff ? undefined : rid;
}

/**
 * Which VF a routing ID is, as the series' `vf_init_bars()` inverts `vfRoutingId`: `undefined`
 * for an ID below VF 0's, off the stride, at or past `numVfs`, or any VF but the first with stride 0.
 */
export function vfIndexOf(
  pfRoutingId: number,
  offset: number,
  stride: number,
  numVfs: number,
  vfRoutingIdValue: number,
): number | undefined {
  let index = vfRoutingIdValue - (pfRoutingId + offset);
  if (index < 0 || (numVfs > 1 && stride === 0)) return undefined;
  if (stride !== 0) {
    if (index % stride !== 0) return undefined;
    index /= stride;
  }
  return index < numVfs ? index : undefined;
}

/** VF `n`'s address in VF BAR slot: VF 0's address plus `n` times the VF BAR size (PCIe 9.3.3.14). */
export function vfBarAddress(vf0: bigint, size: bigint, n: number): bigint {
  return vf0 + BigInt(n) * size;
}

/** The SR-IOV capability of one physical function. */
export class SriovHardware {
  /** Offset of the capability in the function's configuration space. */
  readonly pos: number;
  private readonly raw: ConfigBytes;
  /** The size each VF BAR slot's function asks for before page rounding (0n: none or upper half). */
  private readonly intrinsic: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n];
  private readonly wide: boolean[] = [false, false, false, false, false, false];

  private constructor(raw: ConfigBytes, pos: number) {
    this.raw = raw;
    this.pos = pos;
  }

  /**
   * Lays the capability out at `pos` (header `next` 0) from `spec`. Throws naming the field that is
   * wrong, as `spec.sriov.<field>`.
   */
  static define(raw: ConfigBytes, pos: number, spec: SriovCapabilitySpec): SriovHardware {
    return SriovHardware.lay(raw, pos, spec, 'spec.sriov', true);
  }

  /**
   * The capability a configuration-space image holds at `pos` (an `lspci -xxxx` dump): every field
   * is read from the image's bytes, which stay as they are (the header's `next`, the ARI bit and the
   * other control bits included); only the writable bits are set up, as `define` sets them. An image
   * holds each VF BAR's address and type, never its size (sizing needs all-ones writes): `vfBarSizes`
   * gives them by slot, as sizing reads them back under the image's System Page Size; a slot without
   * a size is unimplemented. Throws naming the field as `image.sriov.<field>` (or
   * `sizes.vfBars[i]`), the register's place in the image in the expectation.
   */
  static fromImage(
    raw: ConfigBytes,
    pos: number,
    vfBarSizes: readonly (bigint | null | undefined)[],
  ): SriovHardware {
    const where = (offset: number): string =>
      ` (the image's SR-IOV capability at 0x${pos.toString(16)}, register 0x${(pos + offset).toString(16)})`;
    // The register each field of `lay`'s messages comes from.
    const registers: Record<string, number> = {
      totalVfs: PCI_SRIOV_TOTAL_VF,
      initialVfs: PCI_SRIOV_INITIAL_VF,
      numVfs: PCI_SRIOV_NUM_VF,
      firstVfOffset: PCI_SRIOV_VF_OFFSET,
      vfStride: PCI_SRIOV_VF_STRIDE,
      supportedPageSizes: PCI_SRIOV_SUP_PGSIZE,
      systemPageSize: PCI_SRIOV_SYS_PGSIZE,
    };
    const registerOf = (argument: string): number => {
      const bar = /^image\.sriov\.vfBars\[(\d)\]/.exec(argument);
      if (bar !== null) return PCI_SRIOV_BAR + 4 * Number(bar[1]);
      return registers[argument.replace(/^image\.sriov\./, '')] ?? 0;
    };
    if (!Array.isArray(vfBarSizes) || vfBarSizes.length > PCI_SRIOV_NUM_BARS) {
      throw new InvalidArgumentError('sizes.vfBars', vfBarSizes, 'an array of at most 6 VF BAR sizes');
    }
    const page = sriovPageSize(raw.peek(pos + PCI_SRIOV_SYS_PGSIZE, 4));
    const vfBars: (VfBarSpec | null)[] = [];
    for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
      const size = vfBarSizes[i];
      const reg = pos + PCI_SRIOV_BAR + 4 * i;
      const low = raw.peek(reg, 4);
      if (vfBars[i - 1]?.type === 'mem64') {
        if (size !== null && size !== undefined) {
          throw new InvalidArgumentError(
            `sizes.vfBars[${i}]`,
            size,
            `null: slot ${i} holds the upper half of the 64-bit VF BAR${i - 1}${where(PCI_SRIOV_BAR + 4 * i)}`,
          );
        }
        vfBars.push(null);
        continue;
      }
      if (size === null || size === undefined) {
        vfBars.push(null);
        continue;
      }
      if ((low & 1) !== 0 || (low & 0x6) === 0x2 || (low & 0x6) === 0x6) {
        throw new InvalidArgumentError(
          `image.sriov.vfBars[${i}]`,
          low,
          `a memory VF BAR register: bit 0 clear (VFs have no I/O space) and type bits 2:1 00 (32-bit) or 10 (64-bit)${where(PCI_SRIOV_BAR + 4 * i)}`,
        );
      }
      const type = (low & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64 ? 'mem64' : 'mem32';
      if (type === 'mem64' && i === PCI_SRIOV_NUM_BARS - 1) {
        throw new InvalidArgumentError(
          `image.sriov.vfBars[${i}]`,
          low,
          `a 32-bit VF BAR: a 64-bit one takes two slots and VF BAR5 is the last${where(PCI_SRIOV_BAR + 4 * i)}`,
        );
      }
      const max = type === 'mem32' ? 1n << 31n : 1n << 63n;
      if (typeof size !== 'bigint' || size < 16n || size > max || (size & (size - 1n)) !== 0n) {
        throw new InvalidArgumentError(
          `sizes.vfBars[${i}]`,
          size,
          `a power of two from 16 bytes to 2^${max.toString(2).length - 1}: the size of ${type === 'mem64' ? '64' : '32'}-bit VF BAR${i}${where(PCI_SRIOV_BAR + 4 * i)}`,
        );
      }
      if (page !== 0n && size < page) {
        throw new InvalidArgumentError(
          `sizes.vfBars[${i}]`,
          size,
          `at least the System Page Size ${page} bytes the image selects: the PF rounds each VF BAR up to it (PCIe 9.3.3.13), so sizing never reads less${where(PCI_SRIOV_SYS_PGSIZE)}`,
        );
      }
      const high = type === 'mem64' ? BigInt(raw.peek(reg + 4, 4)) << 32n : 0n;
      vfBars.push({
        type,
        size,
        addr: high | BigInt((low & ~0xf) >>> 0),
        prefetchable: (low & PCI_BASE_ADDRESS_MEM_PREFETCH) !== 0,
      });
    }
    const spec: SriovCapabilitySpec = {
      totalVfs: raw.peek(pos + PCI_SRIOV_TOTAL_VF, 2),
      initialVfs: raw.peek(pos + PCI_SRIOV_INITIAL_VF, 2),
      numVfs: raw.peek(pos + PCI_SRIOV_NUM_VF, 2),
      firstVfOffset: raw.peek(pos + PCI_SRIOV_VF_OFFSET, 2),
      vfStride: raw.peek(pos + PCI_SRIOV_VF_STRIDE, 2),
      vfDeviceId: raw.peek(pos + PCI_SRIOV_VF_DID, 2),
      supportedPageSizes: raw.peek(pos + PCI_SRIOV_SUP_PGSIZE, 4),
      systemPageSize: raw.peek(pos + PCI_SRIOV_SYS_PGSIZE, 4),
      vfBars,
    };
    try {
      return SriovHardware.lay(raw, pos, spec, 'image.sriov', false);
    } catch (error) {
      if (!(error instanceof InvalidArgumentError)) throw error;
      throw new InvalidArgumentError(
        error.argument,
        error.received,
        `${error.expected}${where(registerOf(error.argument))}`,
      );
    }
  }

  /**
   * The capability at `pos` from `spec`, each field checked under `name` (`spec.sriov`,
   * `image.sriov`); `write` lays out the registers (a description), else they are already there (an
   * image) and only the writable bits are set up.
   */
  private static lay(
    raw: ConfigBytes,
    pos: number,
    spec: SriovCapabilitySpec,
    name: string,
    write: boolean,
  ): SriovHardware {
    if (typeof spec !== 'object' || spec === null) {
      throw new InvalidArgumentError(name, spec, 'an SR-IOV description object');
    }
    const hw = new SriovHardware(raw, pos);
    const total = integer(`${name}.totalVfs`, spec.totalVfs, 1, 0xffff);
    const initial = integer(`${name}.initialVfs`, spec.initialVfs ?? total, 0, total);
    const numVfs = integer(`${name}.numVfs`, spec.numVfs ?? 0, 0, total);
    const offset = integer(`${name}.firstVfOffset`, spec.firstVfOffset, 1, 0xffff);
    const stride = integer(`${name}.vfStride`, spec.vfStride, 0, 0xffff);
    if (stride === 0 && total > 1) {
      throw new InvalidArgumentError(`${name}.vfStride`, stride, 'at least 1 when totalVfs is above 1');
    }
    const supported = integer(`${name}.supportedPageSizes`, spec.supportedPageSizes ?? 0x553, 1, 0xffffffff);
    if ((supported & 1) === 0) {
      // PCIe 9.3.3.12: a PF must support 4 KiB, 8 KiB, 64 KiB, 256 KiB, 1 MiB and 4 MiB; 4 KiB at least.
      throw new InvalidArgumentError(
        `${name}.supportedPageSizes`,
        supported,
        'a mask with bit 0 (4 KiB) set',
      );
    }
    const system = integer(`${name}.systemPageSize`, spec.systemPageSize ?? 1, 1, 0xffffffff);
    if ((system & (system - 1)) !== 0 || (system & supported) === 0) {
      throw new InvalidArgumentError(
        `${name}.systemPageSize`,
        system,
        `one bit of supportedPageSizes (0x${supported.toString(16)})`,
      );
    }
    if (write) {
      raw.poke(pos, 4, PCI_EXT_CAP_ID_SRIOV | (1 << 16));
      raw.poke(pos + PCI_SRIOV_INITIAL_VF, 2, initial);
      raw.poke(pos + PCI_SRIOV_TOTAL_VF, 2, total);
      raw.poke(pos + PCI_SRIOV_NUM_VF, 2, numVfs);
      raw.poke(pos + PCI_SRIOV_VF_OFFSET, 2, offset);
      raw.poke(pos + PCI_SRIOV_VF_STRIDE, 2, stride);
      raw.poke(pos + PCI_SRIOV_VF_DID, 2, integer(`${name}.vfDeviceId`, spec.vfDeviceId ?? 0, 0, 0xffff));
      raw.poke(pos + PCI_SRIOV_SUP_PGSIZE, 4, supported);
      raw.poke(pos + PCI_SRIOV_SYS_PGSIZE, 4, system);
      const control =
        (spec.vfEnable === true ? PCI_SRIOV_CTRL_VFE : 0) |
        (spec.vfMemorySpace === true ? PCI_SRIOV_CTRL_MSE : 0);
      raw.poke(pos + PCI_SRIOV_CTRL, 2, control);
    }
    raw.setMask(pos + PCI_SRIOV_NUM_VF, 2, 0xffff);
    raw.setMask(pos + PCI_SRIOV_SYS_PGSIZE, 4, supported);
    // VF Migration is not modelled (SR-IOV Capabilities reads 0), so VFM and its interrupt stay RO zero.
    raw.setMask(pos + PCI_SRIOV_CTRL, 2, PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE | PCI_SRIOV_CTRL_ARI);
    hw.defineVfBars(spec.vfBars ?? [], name);
    return hw;
  }

  /** The VF BAR size slot `i` reads back under the current System Page Size (0n: unimplemented). */
  vfBarSize(i: number): bigint {
    const intrinsic = this.intrinsic[i] ?? 0n;
    if (intrinsic === 0n) return 0n;
    const page = sriovPageSize(this.raw.peek(this.pos + PCI_SRIOV_SYS_PGSIZE, 4));
    return intrinsic > page ? intrinsic : page;
  }

  /** The same capability in a copy of the device's configuration space (`PhysicalDevice.copy`). */
  copyOnto(raw: ConfigBytes): SriovHardware {
    const copy = new SriovHardware(raw, this.pos);
    for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
      copy.intrinsic[i] = this.intrinsic[i]!;
      copy.wide[i] = this.wide[i]!;
    }
    return copy;
  }

  /** A 16-bit field of the capability, at `PCI_SRIOV_*` offset `offset`. */
  field16(offset: number): number {
    return this.raw.peek(this.pos + offset, 2);
  }

  /** SR-IOV Control's VF Enable. */
  get vfEnable(): boolean {
    return (this.field16(PCI_SRIOV_CTRL) & PCI_SRIOV_CTRL_VFE) !== 0;
  }

  /** SR-IOV Control's VF Memory Space Enable. */
  get vfMemorySpace(): boolean {
    return (this.field16(PCI_SRIOV_CTRL) & PCI_SRIOV_CTRL_MSE) !== 0;
  }

  /** How many VFs VF Enable asks for: NumVFs, at most TotalVFs (PCIe 9.3.3.7). */
  get requestedVfs(): number {
    return Math.min(this.field16(PCI_SRIOV_NUM_VF), this.field16(PCI_SRIOV_TOTAL_VF));
  }

  /**
   * VF `n`'s routing ID from the PF's (`bus << 8 | devfn`), as the hardware brings it up when VF
   * Enable is set: `undefined` for `n` not below `requestedVfs`, or for a routing ID past 0xffff (no
   * bus 256: such a VF, and every later one, is never brought up). One sum, so a caller asking for
   * every VF does work in proportion to the VFs.
   */
  vfRoutingIdAt(pfRoutingId: number, n: number): number | undefined {
    if (!Number.isInteger(n) || n < 0 || n >= this.requestedVfs) return undefined;
    return vfRoutingId(pfRoutingId, this.field16(PCI_SRIOV_VF_OFFSET), this.field16(PCI_SRIOV_VF_STRIDE), n);
  }

  /**
   * The routing IDs of VFs 0 … NumVFs − 1 from the PF's routing ID (`bus << 8 | devfn`), as the
   * hardware brings them up when VF Enable is set; a VF past bus 255 stops the list there (Linux's
   * `sriov_enable()` refuses such a NumVFs: `pci_iov_bus_range()` beyond the bus range).
   */
  vfRoutingIds(pfRoutingId: number): number[] {
    const ids: number[] = [];
    for (let n = 0; ; n++) {
      const rid = this.vfRoutingIdAt(pfRoutingId, n);
      if (rid === undefined) break;
      ids.push(rid);
    }
    return ids;
  }

  /** Whether a write to `[reg, reg + size)` reached System Page Size, which resizes the VF BARs. */
  touchesPageSize(reg: number, size: number): boolean {
    const at = this.pos + PCI_SRIOV_SYS_PGSIZE;
    return reg < at + 4 && reg + size > at;
  }

  /** Whether `[reg, reg + size)` meets a VF BAR register. */
  touchesVfBars(reg: number, size: number): boolean {
    const at = this.pos + PCI_SRIOV_BAR;
    return reg < at + 4 * PCI_SRIOV_NUM_BARS && reg + size > at;
  }

  /** After a write: a new System Page Size resizes every VF BAR (PCIe 9.3.3.13). */
  afterWrite(reg: number, size: number): void {
    if (!this.touchesPageSize(reg, size)) return;
    for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) if (this.intrinsic[i] !== 0n) this.applyMask(i);
  }

  private defineVfBars(bars: readonly (VfBarSpec | null | undefined)[], prefix: string): void {
    if (!Array.isArray(bars) || bars.length > PCI_SRIOV_NUM_BARS) {
      throw new InvalidArgumentError(`${prefix}.vfBars`, bars, 'an array of at most 6 VF BAR slots');
    }
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i];
      if (bar === null || bar === undefined) continue;
      const name = `${prefix}.vfBars[${i}]`;
      if (bars[i - 1]?.type === 'mem64') {
        throw new InvalidArgumentError(name, bar, `null: slot ${i} holds the upper half of VF BAR ${i - 1}`);
      }
      if (typeof bar !== 'object' || (bar.type !== 'mem32' && bar.type !== 'mem64')) {
        throw new InvalidArgumentError(
          `${name}.type`,
          bar?.type,
          "'mem32' or 'mem64' (VFs have no I/O space)",
        );
      }
      if (bar.type === 'mem64' && i === PCI_SRIOV_NUM_BARS - 1) {
        throw new InvalidArgumentError(`${name}.type`, bar.type, "'mem32': a 64-bit VF BAR takes two slots");
      }
      const max = bar.type === 'mem32' ? 1n << 31n : 1n << 63n;
      if (
        typeof bar.size !== 'bigint' ||
        bar.size < 16n ||
        bar.size > max ||
        (bar.size & (bar.size - 1n)) !== 0n
      ) {
        throw new InvalidArgumentError(
          `${name}.size`,
          bar.size,
          `a power of two from 16 bytes to 2^${max.toString(2).length - 1}`,
        );
      }
      this.intrinsic[i] = bar.size;
      this.wide[i] = bar.type === 'mem64';
      const size = this.vfBarSize(i);
      const addr = checkBarAddress(
        `${name}.addr`,
        bar.addr,
        size,
        bar.type === 'mem64',
        `the VF BAR size ${size} (after System Page Size)`,
      );
      const reg = this.pos + PCI_SRIOV_BAR + 4 * i;
      const flags =
        (bar.type === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
        (bar.prefetchable === true ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
      this.raw.poke(reg, 4, (Number(addr & 0xffffffffn) | flags) >>> 0);
      if (bar.type === 'mem64') this.raw.poke(reg + 4, 4, Number(addr >> 32n));
      this.applyMask(i);
    }
  }

  /** Writable address bits above the VF BAR's current size; the bits below it read as zero. */
  private applyMask(i: number): void {
    const reg = this.pos + PCI_SRIOV_BAR + 4 * i;
    const mask = ~(this.vfBarSize(i) - 1n);
    this.raw.setMask(reg, 4, Number(mask & 0xfffffff0n));
    this.raw.poke(reg, 4, (this.raw.peek(reg, 4) & (this.raw.peekMask(reg) | 0xf)) >>> 0);
    if (this.wide[i]) {
      this.raw.setMask(reg + 4, 4, Number((mask >> 32n) & 0xffffffffn));
      this.raw.poke(reg + 4, 4, (this.raw.peek(reg + 4, 4) & this.raw.peekMask(reg + 4)) >>> 0);
    }
  }
}

function integer(argument: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(argument, value, `an integer in ${min} … 0x${max.toString(16)}`);
  }
  return value;
}
