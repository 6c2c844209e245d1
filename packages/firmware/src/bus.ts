/**
 * The firmware's view of PCI configuration space: bus 0 addressed by devfn, every access recorded in
 * order so a run is also a trace. Three backends: a `Machine` reached from one vCPU (the engine's
 * config-space entry points, replayable), a device model (devices QEMU emulates for a guest, and the
 * ID registers it answers for passed-through ones), and bare hardware (`PhysicalDevice`s, no engine:
 * for property tests and benchmarks).
 */
import { InvalidArgumentError } from '@vpci/p2m';
import {
  type DeviceSpec,
  type Machine,
  makeSbdf,
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_MASK,
  PhysicalDevice,
  type Sbdf,
  type Vcpu,
} from '@vpci/vpci';

/** Width of one config-space access in bytes. */
export type AccessSize = 1 | 2 | 4;

/**
 * Who answered an access.
 * - `machine`: the engine, through `Machine.configRead` / `configWrite` from the bus's vCPU (a trace
 *   line that replays the same way).
 * - `device-model`: the bus's device model (QEMU's part), outside the engine (a comment in a trace).
 * - `hardware`: a bare `PhysicalDevice` (no engine at all).
 * - `none`: a write to an empty slot, dropped (a trace could not replay it: the replay refuses writes
 *   to addresses with no device).
 */
export type AccessPath = 'machine' | 'device-model' | 'hardware' | 'none';

/** One recorded config-space access: what was read (the value returned) or written. */
export interface ConfigAccess {
  /** A read or a write. */
  readonly op: 'read' | 'write';
  /** device << 3 | function on bus 0. */
  readonly devfn: number;
  /** The address as the vCPU sees it, `00:dd.f`. */
  readonly sbdf: string;
  /** Register offset in config space. */
  readonly reg: number;
  /** Access width in bytes. */
  readonly size: AccessSize;
  /** The value read or written (unsigned). */
  readonly value: number;
  /** Who answered the access. */
  readonly via: AccessPath;
}

/** The host (machine) address of BAR `index` (0–5, 6 for the ROM) of the function at `devfn`. */
export interface HostBarAddress {
  /** The function on bus 0, as `device << 3 | function`. */
  readonly devfn: number;
  /** BAR slot 0–5, or 6 for the ROM. */
  readonly index: number;
  /** Host address in bytes. */
  readonly addr: bigint;
}

/** Configuration space of bus 0 as firmware reaches it; every access is recorded. */
export interface ConfigBus {
  /** The vCPU making the accesses, as a trace names it (`d1v0`). */
  readonly vcpu: string;
  /** Reads `size` bytes at `reg` of `devfn`; an empty slot reads all-ones. */
  read(devfn: number, reg: number, size: AccessSize): number;
  /** Writes `size` bytes at `reg` of `devfn`; a write to an empty slot is dropped. */
  write(devfn: number, reg: number, size: AccessSize, value: number): void;
  /** The host address behind BAR `index` of `devfn` when the bus knows one (a guest's passthrough device). */
  hostAddress(devfn: number, index: number): bigint | undefined;
  /** Every access so far, oldest first. */
  readonly accesses: readonly ConfigAccess[];
}

/** How a `Machine` bus reaches devices besides the engine's. */
export interface MachineBusOptions {
  /**
   * Devices the device model emulates (QEMU's VGA, the Xen platform device): physical devices at their
   * bus 0 address as the vCPU sees it. Their accesses never reach the engine.
   */
  readonly emulated?: readonly PhysicalDevice[];
  /**
   * For a guest vCPU: the device model answers reads of the ID and class registers (0x00–0x03,
   * 0x08–0x0b) of passed-through devices from the device, as QEMU's passthrough code does; vPCI does
   * not emulate them for a domU (they read all-ones), so without this a guest finds no device. Default
   * true; ignored for the hardware domain, which reads the device itself.
   */
  readonly deviceModelIds?: boolean;
}

/** How a bare-hardware bus is made. */
export interface HardwareBusOptions {
  /** The vCPU name accesses are recorded under (default `d0v0`). */
  readonly vcpu?: string;
  /**
   * Host addresses of the BARs, for the `congruent` policy: a list, or `initial` to take each BAR's
   * value before the firmware touches it (a guest starts out seeing the host addresses).
   */
  readonly hostAddresses?: 'initial' | readonly HostBarAddress[];
}

/** devfn → `00:dd.f`. */
export function devfnName(devfn: number): string {
  return `00:${(devfn >> 3).toString(16).padStart(2, '0')}.${devfn & 7}`;
}

/** The SBDF of `devfn` on segment 0, bus 0. */
export function devfnSbdf(devfn: number): Sbdf {
  return makeSbdf(0, 0, devfn >> 3, devfn & 7);
}

/**
 * A bus reaching `machine` from `vcpu` (the hardware domain's or a guest's): accesses go through
 * `configRead` / `configWrite`, so they are what a trace of this vCPU replays. A vCPU left with
 * deferred map/unmap work by a command write finishes it before its next access, as the replay does
 * (it could not run guest code until then).
 */
export function machineBus(machine: Machine, vcpu: Vcpu, options: MachineBusOptions = {}): ConfigBus {
  if (machine.domains().every((d) => d !== vcpu.domain)) {
    throw new InvalidArgumentError('vcpu', vcpu, 'a vCPU of this machine');
  }
  const guest = !vcpu.domain.isHardware;
  const ids = guest && (options.deviceModelIds ?? true);
  const emulated = new Map<number, PhysicalDevice>();
  (options.emulated ?? []).forEach((device, i) => {
    if (!(device instanceof PhysicalDevice)) {
      throw new InvalidArgumentError(`emulated[${i}]`, device, 'a PhysicalDevice');
    }
    const { seg, bus, dev, fn } = device.sbdf;
    const devfn = (dev << 3) | fn;
    if (seg !== 0 || bus !== 0 || emulated.has(devfn) || passthrough(machine, vcpu, devfn) !== undefined) {
      throw new InvalidArgumentError(
        `emulated[${i}].sbdf`,
        device.toString(),
        'a free address on bus 0 of segment 0, as the vCPU sees it',
      );
    }
    emulated.set(devfn, device);
  });
  const ready = (): void => {
    if (vcpu.pending !== undefined) machine.finishPending(vcpu);
  };
  return recordingBus(vcpu.name, {
    read(devfn, reg, size) {
      const model = emulated.get(devfn);
      if (model !== undefined) return { value: model.read(reg, size), via: 'device-model' };
      if (ids && isIdRegister(reg, size)) {
        const device = passthrough(machine, vcpu, devfn);
        if (device !== undefined) return { value: device.read(reg, size), via: 'device-model' };
      }
      ready();
      return { value: machine.configRead(vcpu, devfnSbdf(devfn), reg, size) >>> 0, via: 'machine' };
    },
    write(devfn, reg, size, value) {
      const model = emulated.get(devfn);
      if (model !== undefined) {
        model.write(reg, size, value);
        return 'device-model';
      }
      ready();
      if (!present(machine, vcpu, devfn)) return 'none'; // nothing there: dropped, as on real buses
      machine.configWrite(vcpu, devfnSbdf(devfn), reg, size, value);
      return 'machine';
    },
    hostAddress(devfn, index) {
      if (!guest) return undefined; // the hardware domain's BARs are the host's: placing moves them
      const device = vcpu.domain.devices.find((d) => sameSlot(d.vpci?.guestSbdf, devfn));
      const bar = device?.vpci?.bars[index];
      if (bar === undefined || (bar.type !== 'mem32' && bar.type !== 'mem64lo' && bar.type !== 'rom'))
        return undefined;
      return bar.addr;
    },
  });
}

/**
 * A bus over bare devices (no engine, no p2m): every device must sit on bus 0 of segment 0. Accepts
 * device descriptions or `PhysicalDevice`s (used as they are, so the caller sees what was written).
 */
export function hardwareBus(
  devices: readonly (PhysicalDevice | DeviceSpec)[],
  options: HardwareBusOptions = {},
): ConfigBus {
  const slots = new Map<number, PhysicalDevice>();
  devices.forEach((entry, i) => {
    const device = entry instanceof PhysicalDevice ? entry : PhysicalDevice.fromSpec(entry);
    const { seg, bus, dev, fn } = device.sbdf;
    const devfn = (dev << 3) | fn;
    if (seg !== 0 || bus !== 0 || slots.has(devfn)) {
      throw new InvalidArgumentError(`devices[${i}].sbdf`, device.toString(), 'a free address on bus 0');
    }
    slots.set(devfn, device);
  });
  const given = options.hostAddresses ?? [];
  const hosts = new Map<string, bigint>();
  const list = given === 'initial' ? [...slots.values()].flatMap((d) => initialBarAddresses(d)) : given;
  if (!Array.isArray(list)) {
    throw new InvalidArgumentError('hostAddresses', given, "'initial' or a list of { devfn, index, addr }");
  }
  for (const host of list) hosts.set(`${host.devfn}:${host.index}`, host.addr);
  return recordingBus(options.vcpu ?? 'd0v0', {
    read(devfn, reg, size) {
      const device = slots.get(devfn);
      return { value: device === undefined ? allOnes(size) : device.read(reg, size), via: 'hardware' };
    },
    write(devfn, reg, size, value) {
      const device = slots.get(devfn);
      if (device === undefined) return 'none';
      device.write(reg, size, value);
      return 'hardware';
    },
    hostAddress: (devfn, index) => hosts.get(`${devfn}:${index}`),
  });
}

/**
 * The addresses a device's memory BARs and ROM hold now (decoded from the registers, 64-bit BARs
 * whole): what a guest sees before its firmware runs, i.e. the host's placement.
 */
export function initialBarAddresses(device: PhysicalDevice): HostBarAddress[] {
  const devfn = (device.sbdf.dev << 3) | device.sbdf.fn;
  const out: HostBarAddress[] = [];
  for (let i = 0; i < 6; i++) {
    if (device.barSize(i) === 0n) continue;
    const low = device.read(PCI_BASE_ADDRESS_0 + 4 * i, 4);
    if ((low & PCI_BASE_ADDRESS_SPACE_IO) !== 0) continue;
    let addr = BigInt((low & 0xfffffff0) >>> 0);
    if ((low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64 && i < 5)
      addr |= BigInt(device.read(PCI_BASE_ADDRESS_0 + 4 * (i + 1), 4)) << 32n;
    out.push({ devfn, index: i, addr });
  }
  if (device.romSize() > 0n)
    out.push({
      devfn,
      index: 6,
      addr: BigInt((device.read(PCI_ROM_ADDRESS, 4) & PCI_ROM_ADDRESS_MASK) >>> 0),
    });
  return out;
}

// ---- internals -------------------------------------------------------------------------------

interface Backend {
  read(devfn: number, reg: number, size: AccessSize): { value: number; via: AccessPath };
  write(devfn: number, reg: number, size: AccessSize, value: number): AccessPath;
  hostAddress(devfn: number, index: number): bigint | undefined;
}

/** Wraps a backend so every access is checked and recorded. */
function recordingBus(vcpu: string, backend: Backend): ConfigBus {
  const accesses: ConfigAccess[] = [];
  return {
    vcpu,
    accesses,
    read(devfn, reg, size) {
      checkAccess(devfn, reg, size);
      const { value, via } = backend.read(devfn, reg, size);
      accesses.push({ op: 'read', devfn, sbdf: devfnName(devfn), reg, size, value, via });
      return value;
    },
    write(devfn, reg, size, value) {
      checkAccess(devfn, reg, size);
      const max = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
      if (!Number.isInteger(value) || value < 0 || value > max) {
        throw new InvalidArgumentError('value', value, `an unsigned ${8 * size}-bit integer`);
      }
      const via = backend.write(devfn, reg, size, value);
      accesses.push({ op: 'write', devfn, sbdf: devfnName(devfn), reg, size, value, via });
    },
    hostAddress(devfn, index) {
      return backend.hostAddress(devfn, index);
    },
  };
}

function checkAccess(devfn: number, reg: number, size: number): void {
  if (!Number.isInteger(devfn) || devfn < 0 || devfn > 0xff)
    throw new InvalidArgumentError('devfn', devfn, 'an integer in 0 … 255');
  if (size !== 1 && size !== 2 && size !== 4) throw new InvalidArgumentError('size', size, '1, 2 or 4');
  if (!Number.isInteger(reg) || reg < 0 || reg + size > 0x100 || reg % size !== 0) {
    throw new InvalidArgumentError('reg', reg, 'an aligned offset in the 256-byte header space');
  }
}

function allOnes(size: AccessSize): number {
  return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
}

/** The vendor/device ID and revision/class dwords: what QEMU answers for a passed-through device. */
function isIdRegister(reg: number, size: number): boolean {
  return reg + size <= 0x04 || (reg >= 0x08 && reg + size <= 0x0c);
}

function sameSlot(sbdf: Sbdf | undefined, devfn: number): boolean {
  return sbdf !== undefined && sbdf.seg === 0 && sbdf.bus === 0 && ((sbdf.dev << 3) | sbdf.fn) === devfn;
}

/** The physical device a guest sees at `devfn` (its virtual slot), or undefined. */
function passthrough(machine: Machine, vcpu: Vcpu, devfn: number): PhysicalDevice | undefined {
  if (vcpu.domain.isHardware) return machine.findDevice(devfnSbdf(devfn))?.hw;
  return vcpu.domain.devices.find((d) => sameSlot(d.vpci?.guestSbdf, devfn))?.hw;
}

/** Whether the vCPU's domain has a device at `devfn` (writes elsewhere are dropped, not recorded as errors). */
function present(machine: Machine, vcpu: Vcpu, devfn: number): boolean {
  return passthrough(machine, vcpu, devfn) !== undefined;
}
