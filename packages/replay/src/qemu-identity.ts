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
 *
 * A slot may hold one device after another (hot plug): a device leaves it when a read of its address
 * goes unanswered (no device there now), when the slot's power is turned off, or when another device
 * model answers there; the next device to answer is a new one. A device that answers where the log
 * already found the slot empty, or held another device, arrived while the log ran (hot plugged).
 */

/** A slot (`dev.fn` on a bus): the devices that answered there in turn, and whether the last still does. */
interface Slot<T> {
  readonly occupants: T[];
  /** The last occupant is still there. */
  present: boolean;
}

/** A bus and the slots seen on it, by `dev << 3 | fn`. */
interface Bus<T> {
  /** The bus number now. */
  number: number;
  /** The number it is named by at the end. */
  final: number;
  /** When the number was last set (to prefer the newer of two bridges claiming a number). */
  setAt: number;
  slots: Map<number, Slot<T>>;
}

/** The device answering at an address, and how it came to be there. */
export interface Occupant<T> {
  readonly device: T;
  /** It arrived while the log ran: the slot was seen empty, or held another device, before it. */
  readonly hotPlugged: boolean;
  /** The device it replaced without the log showing that one leave (another model answered). */
  readonly replaced: T | undefined;
}

/** The devices of a log, by where they sit. `T` is the importer's record of a device. */
export class DeviceIdentities<T> {
  private readonly root: Bus<T> = { number: 0, final: 0, setAt: 0, slots: new Map() };
  /** Each bridge's secondary bus. */
  private readonly bridges = new Map<T, Bus<T>>();
  /** Buses no bridge is known to have, by number (a log that started late). */
  private readonly unowned = new Map<number, Bus<T>>();
  private clock = 0;

  /**
   * The device QEMU printed as `bus:dev.fn` now: the slot's present occupant if `same` says the line
   * is of it, else a new one made with `create`.
   */
  at(bus: number, dev: number, fn: number, same: (device: T) => boolean, create: () => T): Occupant<T> {
    const slots = this.busNumbered(bus, true)!.slots;
    const devfn = (dev << 3) | fn;
    let slot = slots.get(devfn);
    if (slot === undefined) {
      slot = { occupants: [], present: false };
      slots.set(devfn, slot);
      // Never seen empty: it was there when the log began.
      const device = create();
      slot.occupants.push(device);
      slot.present = true;
      return { device, hotPlugged: false, replaced: undefined };
    }
    const last = slot.occupants.at(-1);
    if (slot.present && last !== undefined && same(last))
      return { device: last, hotPlugged: false, replaced: undefined };
    const replaced = slot.present ? last : undefined;
    const device = create();
    slot.occupants.push(device);
    slot.present = true;
    return { device, hotPlugged: true, replaced };
  }

  /** The device QEMU printed as `bus:dev.fn` now, or last (one that left is still named), if any. */
  find(bus: number, dev: number, fn: number): T | undefined {
    return this.busNumbered(bus, false)
      ?.slots.get((dev << 3) | fn)
      ?.occupants.at(-1);
  }

  /**
   * No device answered a read of `bus:dev.fn`: the slot is empty now. The device that was there, if
   * the log showed one, has left. A bus number no bridge is known to have tells nothing.
   */
  absent(bus: number, dev: number, fn: number): T | undefined {
    const slots = this.busNumbered(bus, false)?.slots;
    if (slots === undefined) return undefined;
    const devfn = (dev << 3) | fn;
    const slot = slots.get(devfn);
    if (slot === undefined) {
      slots.set(devfn, { occupants: [], present: false });
      return undefined;
    }
    return this.vacate(slot);
  }

  /** `bridge` turned its slot's power off: every device on its secondary bus has left. */
  poweredOff(bridge: T): T[] {
    const bus = this.bridges.get(bridge);
    if (bus === undefined) return [];
    const gone: T[] = [];
    for (const slot of bus.slots.values()) {
      const device = this.vacate(slot);
      if (device !== undefined) gone.push(device);
    }
    return gone;
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
      bus = adopted ?? { number, final: number, setAt: 0, slots: new Map() };
      this.bridges.set(bridge, bus);
    }
    if (bus.number === number && seenBy === 'read') return;
    bus.number = number;
    bus.setAt = ++this.clock;
    if (number !== 0) bus.final = number;
  }

  /**
   * Every slot that held a device, with the bus number it is named by at the end and its occupants
   * in turn (they share the address), in the order first seen per bus.
   */
  named(): { bus: number; dev: number; fn: number; occupants: readonly T[] }[] {
    const out: { bus: number; dev: number; fn: number; occupants: readonly T[] }[] = [];
    for (const bus of [this.root, ...this.bridges.values(), ...this.unowned.values()]) {
      for (const [devfn, slot] of bus.slots) {
        if (slot.occupants.length > 0)
          out.push({ bus: bus.final, dev: devfn >> 3, fn: devfn & 7, occupants: slot.occupants });
      }
    }
    return out;
  }

  /** Empties `slot`; its present occupant, if any, has left. */
  private vacate(slot: Slot<T>): T | undefined {
    const left = slot.present ? slot.occupants.at(-1) : undefined;
    slot.present = false;
    return left;
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
      found = { number, final: number, setAt: 0, slots: new Map() };
      this.unowned.set(number, found);
    }
    return found;
  }
}
