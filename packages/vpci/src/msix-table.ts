/**
 * Xen's MSI-X table MMIO handlers (`msix.c`: `msix_find`, `msix_accept`, `msix_read`, `msix_write`,
 * `adjacent_read`, `adjacent_write`, `get_slot`, `get_table`): an access to a page holding an MSI-X
 * table or PBA of one of the domain's devices whose BAR is mapped. Table entries are vPCI's; the
 * PBA and the rest of those pages are read and written on the device, through Xen's own mapping of
 * the page at the table's host address (commit d98df4c531: `vmsix_table_host_addr`, not the guest
 * address).
 */
import { type EngineContext, mappingDomain } from './context.js';
import type { MsixEntry, VpciState } from './device.js';
import type { DeviceMemory } from './device-memory.js';
import type { Domain, PciDevice } from './domain.js';
import {
  msixBir,
  msixGuestAddr,
  msixHostAddr,
  msixListRank,
  msixSize,
  setEntryUpdated,
  updateEntry,
  VPCI_MSIX_PBA,
  VPCI_MSIX_TABLE,
} from './msix.js';
import {
  PCI_MSIX_ENTRY_DATA_OFFSET,
  PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET,
  PCI_MSIX_VECTOR_BITMASK,
} from './pci-regs.js';

/** Which of the handlers took an access: the table entries, or the rest of the page (`adjacent_*`). */
export type MsixHandler = 'msix-table' | 'msix-adjacent';

const ALL_ONES = 0xffff_ffff_ffff_ffffn;
const U32 = 0xffff_ffffn;
const pfn = (addr: bigint): bigint => addr >> 12n;
const pageOffset = (addr: bigint): bigint => addr & 0xfffn;

/** `vmsix_table_size` as a bigint. */
function size(vpci: VpciState, nr: number): bigint {
  return BigInt(msixSize(vpci.msix!.maxEntries, nr));
}

/** `VMSIX_ADDR_IN_RANGE`: `addr` inside structure `nr` (guest addresses). */
function inRange(addr: bigint, vpci: VpciState, nr: number): boolean {
  const start = msixGuestAddr(vpci, nr);
  return addr >= start && addr < start + size(vpci, nr);
}

/** `VMSIX_ADDR_SAME_PAGE`: `addr` in a page structure `nr` touches (guest addresses). */
function samePage(addr: bigint, vpci: VpciState, nr: number): boolean {
  const start = msixGuestAddr(vpci, nr);
  return pfn(addr) >= pfn(start) && pfn(addr) <= pfn(start + size(vpci, nr) - 1n);
}

/**
 * Xen's `msix_find` (and `msix_accept`): the device of `domain`'s MSI-X list with a table or PBA in
 * the page of `addr` whose BAR is mapped. The list (`d->arch.hvm.msix_tables`) holds the devices set
 * up in the domain (a hidden device's is dom0's: Xen sets it up as dom0's), each linked in at the
 * head by `init_msix` (`list_add`, xen/drivers/vpci/msix.c), so Xen meets the one set up last first:
 * when two devices' structures share the page, that one answers (`msixListRank`).
 */
export function msixFind(context: EngineContext, domain: Domain, addr: bigint): PciDevice | undefined {
  let found: PciDevice | undefined;
  let foundRank = -1;
  for (const device of context.devices()) {
    const vpci = device.vpci;
    if (vpci?.msix === undefined || mappingDomain(context, device) !== domain) continue;
    const rank = msixListRank(vpci.msix);
    if (rank < foundRank) continue;
    for (let nr = 0; nr < 2; nr++) {
      if (vpci.bars[msixBir(vpci, nr)]!.enabled && samePage(addr, vpci, nr)) {
        found = device;
        foundRank = rank;
        break;
      }
    }
  }
  return found;
}

/** Xen's `access_allowed`: only aligned 4- and 8-byte accesses (an event for the others). */
function accessAllowed(context: EngineContext, device: PciDevice, addr: bigint, len: number): boolean {
  if ((len === 4 || len === 8) && (addr & BigInt(len - 1)) === 0n) return true;
  context.events.push({ kind: 'msix-access-refused', sbdf: device.name, addr, size: len });
  return false;
}

/** Xen's `adjacent_handle`: the PBA, or a table/PBA page outside the table itself. */
function adjacentHandle(vpci: VpciState, addr: bigint): boolean {
  if (inRange(addr, vpci, VPCI_MSIX_PBA)) return true;
  if (inRange(addr, vpci, VPCI_MSIX_TABLE)) return false;
  return samePage(addr, vpci, VPCI_MSIX_TABLE) || samePage(addr, vpci, VPCI_MSIX_PBA);
}

/**
 * Xen's `get_slot` and `get_table`: the host page Xen maps for the page of `addr`. The slots are the
 * table's first and last page and the PBA's (guest pages); the host page is the table's (or PBA's)
 * host address, plus its size for a last page (Xen adds the size, not size − 1: a structure ending on
 * a page boundary maps the page after it, never reached for the table, whose last page is then all
 * table). Undefined when no slot matches (Xen's `ASSERT_UNREACHABLE`: the access is dropped).
 */
function hostPage(vpci: VpciState, addr: bigint): bigint | undefined {
  const page = pfn(addr);
  const table = msixGuestAddr(vpci, VPCI_MSIX_TABLE);
  const pba = msixGuestAddr(vpci, VPCI_MSIX_PBA);
  let host: bigint;
  if (page === pfn(table)) host = msixHostAddr(vpci, VPCI_MSIX_TABLE);
  else if (page === pfn(table + size(vpci, VPCI_MSIX_TABLE) - 1n))
    host = msixHostAddr(vpci, VPCI_MSIX_TABLE) + size(vpci, VPCI_MSIX_TABLE);
  else if (page === pfn(pba)) host = msixHostAddr(vpci, VPCI_MSIX_PBA);
  else if (page === pfn(pba + size(vpci, VPCI_MSIX_PBA) - 1n))
    host = msixHostAddr(vpci, VPCI_MSIX_PBA) + size(vpci, VPCI_MSIX_PBA);
  else return undefined;
  return host & ~0xfffn;
}

function lenMask(len: number): bigint {
  return (1n << BigInt(8 * len)) - 1n;
}

/** Xen's `adjacent_read`: the device's bytes through Xen's mapping; all-ones where Xen refuses. */
function adjacentRead(
  context: EngineContext,
  memory: DeviceMemory,
  device: PciDevice,
  addr: bigint,
  len: number,
): bigint {
  const vpci = device.vpci!;
  // An access running into the table reads all-ones.
  if (!adjacentHandle(vpci, addr + BigInt(len) - 1n)) return ALL_ONES;
  // PBA accesses must be aligned and 4 or 8 bytes in size.
  if (inRange(addr, vpci, VPCI_MSIX_PBA) && !accessAllowed(context, device, addr, len)) return ALL_ONES;
  const page = hostPage(vpci, addr);
  if (page === undefined) return ALL_ONES;
  if (addr % BigInt(len) !== 0n) {
    // Unaligned: split into bytes, each handled as an access of its own.
    let data = ALL_ONES;
    for (let i = 0; i < len; i++) {
      const partial = adjacentRead(context, memory, device, addr + BigInt(i), 1);
      const shift = BigInt(8 * i);
      data = (data & ~(0xffn << shift)) | ((partial & 0xffn) << shift);
    }
    return data;
  }
  return memory.read(context.devices(), page + pageOffset(addr), len);
}

/**
 * Xen's `adjacent_write`: to the device through Xen's mapping; the PBA only by the hardware domain
 * (the accessing domain `domain`, so dom0 writes a hidden device's PBA too).
 */
function adjacentWrite(
  context: EngineContext,
  memory: DeviceMemory,
  domain: Domain,
  device: PciDevice,
  addr: bigint,
  len: number,
  data: bigint,
): void {
  const vpci = device.vpci!;
  if (!adjacentHandle(vpci, addr + BigInt(len) - 1n)) return;
  if (inRange(addr, vpci, VPCI_MSIX_PBA)) {
    // Ignore writes to the PBA by domUs ("undefined behavior"), and unaligned or odd-sized ones.
    if (!accessAllowed(context, device, addr, len) || !domain.isHardware) return;
  }
  const page = hostPage(vpci, addr);
  if (page === undefined) return;
  if (addr % BigInt(len) !== 0n) {
    for (let i = 0; i < len; i++)
      adjacentWrite(context, memory, domain, device, addr + BigInt(i), 1, data >> BigInt(8 * i));
    return;
  }
  memory.write(context.devices(), page + pageOffset(addr), len, data & lenMask(len));
}

/** The table entry `addr` falls in (`get_entry`) and its number. */
function entryAt(vpci: VpciState, addr: bigint): [MsixEntry, number] {
  const nr = Number((addr - msixGuestAddr(vpci, VPCI_MSIX_TABLE)) / BigInt(PCI_MSIX_ENTRY_SIZE));
  return [vpci.msix!.entries[nr]!, nr];
}

/**
 * Xen's `msix_read` for `device` (found by `msixFind`): `len` bytes at guest address `addr`. Returns
 * the value (cut to `len` bytes) and which handler took it.
 */
export function msixRead(
  context: EngineContext,
  memory: DeviceMemory,
  device: PciDevice,
  addr: bigint,
  len: number,
): { value: bigint; handler: MsixHandler } {
  const vpci = device.vpci!;
  if (adjacentHandle(vpci, addr)) {
    return {
      value: adjacentRead(context, memory, device, addr, len) & lenMask(len),
      handler: 'msix-adjacent',
    };
  }
  if (!accessAllowed(context, device, addr, len)) return { value: lenMask(len), handler: 'msix-table' };
  const [entry] = entryAt(vpci, addr);
  let data: bigint;
  switch (Number(addr & BigInt(PCI_MSIX_ENTRY_SIZE - 1))) {
    case PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET:
      data = entry.addr;
      break;
    case PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET:
      data = entry.addr >> 32n;
      break;
    case PCI_MSIX_ENTRY_DATA_OFFSET:
      data = BigInt(entry.data >>> 0);
      if (len === 8) data |= BigInt(entry.masked ? PCI_MSIX_VECTOR_BITMASK : 0) << 32n;
      break;
    default: // PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET: access_allowed leaves no other offset
      data = BigInt(entry.masked ? PCI_MSIX_VECTOR_BITMASK : 0);
  }
  return { value: data & lenMask(len), handler: 'msix-table' };
}

/**
 * Xen's `msix_write` for `device`: `len` bytes of `data` at guest address `addr` by `domain`. Address and data
 * are stored even while the entry is unmasked (made effective on the next mask/unmask cycle, as Xen
 * and QEMU do); unmasking an updated entry while MSI-X is on and the function not masked sets it up
 * again (`update_entry`).
 */
export function msixWrite(
  context: EngineContext,
  memory: DeviceMemory,
  domain: Domain,
  device: PciDevice,
  addr: bigint,
  len: number,
  data: bigint,
): MsixHandler {
  const vpci = device.vpci!;
  const msix = vpci.msix!;
  if (adjacentHandle(vpci, addr)) {
    adjacentWrite(context, memory, domain, device, addr, len, data);
    return 'msix-adjacent';
  }
  if (!accessAllowed(context, device, addr, len)) return 'msix-table';
  const [entry, nr] = entryAt(vpci, addr);
  let value = data;
  switch (Number(addr & BigInt(PCI_MSIX_ENTRY_SIZE - 1))) {
    case PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET:
      setEntryUpdated(msix, entry, true);
      entry.addr = len === 8 ? value : (entry.addr & ~U32) | (value & U32);
      return 'msix-table';
    case PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET:
      setEntryUpdated(msix, entry, true);
      entry.addr = (entry.addr & U32) | ((value & U32) << 32n);
      return 'msix-table';
    case PCI_MSIX_ENTRY_DATA_OFFSET:
      setEntryUpdated(msix, entry, true);
      entry.data = Number(value & U32);
      if (len === 4) return 'msix-table';
      value >>= 32n;
      break;
    default: // PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET: access_allowed leaves no other offset
  }
  const masked = (value & BigInt(PCI_MSIX_VECTOR_BITMASK)) !== 0n;
  if (entry.masked === masked) return 'msix-table';
  entry.masked = masked;
  // Otherwise vpci_msix_arch_mask_entry masks the PIRQ: interrupt state, not modelled.
  if (!masked && msix.enabled && !msix.masked && entry.updated) updateEntry(context, device, entry, nr);
  return 'msix-table';
}
