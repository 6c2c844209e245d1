/**
 * Which device a QEMU log line means. QEMU prints a device's address with the bus number its bus has
 * at that moment: the secondary bus number register of the bridge above it, which firmware and Linux
 * program, reset and program again. A device is therefore known by where it sits, not by the number:
 * the root bus (bus 0 on pc and q35) or the secondary bus of a bridge, itself known the same way. A
 * line's bus number is the bus of the bridge whose secondary register holds that number now (the most
 * recently set, if two do).
 *
 * A log that starts after the numbers were programmed names buses no bridge was seen to take: such a
 * bus stands alone under its number until a read of some bridge's secondary bus register shows that
 * bridge had it before the log began; the bridge then adopts the bus and its devices.
 *
 * At the end each device is named by the number its bus had last (a bridge's last non-zero secondary
 * bus number, so a bridge reset at the end keeps its numbering), which is what `info pci` shows.
 */

/** A bus and the devices seen on it, by `dev << 3 | fn`. */
interface Bus<T> {
  /** The bus number now. */
  number: number;
  /** The number it is named by at the end. */
  final: number;
  /** When the number was last set (to prefer the newer of two bridges claiming a number). */
  setAt: number;
  devices: Map<number, T>;
}

/** The devices of a log, by where they sit. `T` is the importer's record of a device. */
export class DeviceIdentities<T> {
  private readonly root: Bus<T> = { number: 0, final: 0, setAt: 0, devices: new Map() };
  /** Each bridge's secondary bus. */
  private readonly bridges = new Map<T, Bus<T>>();
  /** Buses no bridge is known to have, by number (a log that started late). */
  private readonly unowned = new Map<number, Bus<T>>();
  private clock = 0;

  /** The device QEMU printed as `bus:dev.fn` now, made with `create` the first time. */
  at(bus: number, dev: number, fn: number, create: () => T): T {
    const devices = this.busNumbered(bus, true)!.devices;
    const devfn = (dev << 3) | fn;
    let device = devices.get(devfn);
    if (device === undefined) {
      device = create();
      devices.set(devfn, device);
    }
    return device;
  }

  /** The device QEMU printed as `bus:dev.fn` now, if the log has shown it. */
  find(bus: number, dev: number, fn: number): T | undefined {
    return this.busNumbered(bus, false)?.devices.get((dev << 3) | fn);
  }

  /**
   * `bridge` has secondary bus number `number`: written now, or seen by a read (then it may have had
   * it since before the log began, and adopts a bus of that number no bridge had).
   */
  secondary(bridge: T, number: number, seenBy: 'read' | 'write'): void {
    let bus = this.bridges.get(bridge);
    if (bus === undefined) {
      const adopted = seenBy === 'read' ? this.unowned.get(number) : undefined;
      if (adopted !== undefined) this.unowned.delete(number);
      bus = adopted ?? { number, final: number, setAt: 0, devices: new Map() };
      this.bridges.set(bridge, bus);
    }
    if (bus.number === number && seenBy === 'read') return;
    bus.number = number;
    bus.setAt = ++this.clock;
    if (number !== 0) bus.final = number;
  }

  /** Every device with the bus number it is named by at the end, in the order first seen per bus. */
  named(): { bus: number; dev: number; fn: number; device: T }[] {
    const out: { bus: number; dev: number; fn: number; device: T }[] = [];
    for (const bus of [this.root, ...this.bridges.values(), ...this.unowned.values()]) {
      for (const [devfn, device] of bus.devices)
        out.push({ bus: bus.final, dev: devfn >> 3, fn: devfn & 7, device });
    }
    return out;
  }

  /** The bus that has `number` now; with `make`, a bus of its own when no bridge has it. */
  private busNumbered(number: number, make: boolean): Bus<T> | undefined {
    if (number === 0) return this.root;
    let found: Bus<T> | undefined;
    for (const bus of this.bridges.values()) {
      if (bus.number === number && (found === undefined || bus.setAt > found.setAt)) found = bus;
    }
    if (found !== undefined) return found;
    found = this.unowned.get(number);
    if (found === undefined && make) {
      found = { number, final: number, setAt: 0, devices: new Map() };
      this.unowned.set(number, found);
    }
    return found;
  }
}
