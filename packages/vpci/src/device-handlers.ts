/**
 * Register handlers shared by every device of a machine (registers.ts `sharedHandler`), typed for
 * devices: a device's `RegisterTable` is bound to it (machine.ts, at assignment) and calls each
 * handler with it, as Xen's handlers get `pdev` (vpci.c `vpci_read`/`vpci_write`). A handler made
 * here keeps no device's state: it finds the device's through the device it is handed.
 */
import type { PciDevice } from './domain.js';
import { type RegisterMapping, type RegisterRead, type RegisterWrite, sharedHandler } from './registers.js';

/** A shared read handler of the device's register at `offset`. */
export function deviceRead(read: (device: PciDevice, offset: number) => number): RegisterRead {
  // The table is bound to a device, so `owner` is one.
  return sharedHandler(read as RegisterRead);
}

/** A shared write handler (`bytes` as for `RegisterWrite`). */
export function deviceWrite(
  write: (value: number, bytes: number, device: PciDevice, offset: number) => void,
): RegisterWrite {
  return sharedHandler(write as RegisterWrite);
}

/** A shared `Register.mapping`. */
export function deviceMapping(mapping: (value: number, device: PciDevice) => boolean): RegisterMapping {
  return sharedHandler(mapping as RegisterMapping);
}
