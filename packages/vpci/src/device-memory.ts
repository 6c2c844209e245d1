/**
 * What the devices' memory BARs hold, as far as the model knows it: the bytes written to them, kept
 * per device, BAR and offset (so they move with the BAR). A byte never written reads as 0, except
 * the Mask bit of each MSI-X table entry's Vector Control, which reads as 1 (its reset value, PCI
 * Local Bus Specification 3.0, 6.8.2.9). Writes to the Pending Bit Array are ignored (read-only). An
 * address no decoding BAR covers reads all-ones and drops writes (master abort). Expansion ROMs are
 * not modelled as memory.
 *
 * This is the "hardware" behind Xen's direct mappings and behind its own `ioremap` of MSI-X pages.
 */
import type { PciDevice } from './domain.js';
import { findCapability, type PhysicalDevice } from './hardware.js';
import { msixSize, VPCI_MSIX_PBA, VPCI_MSIX_TABLE } from './msix.js';
import { registerBars } from './ownership.js';
import {
  PCI_CAP_ID_MSIX,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_BIRMASK,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_MSIX_VECTOR_BITMASK,
} from './pci-regs.js';

/** Where a host address lands: a device's memory BAR and the offset in it. */
interface Decoded {
  readonly device: PhysicalDevice;
  readonly bar: number;
  readonly offset: bigint;
}

/** The bytes written to the devices' memory BARs. One per machine. */
export class DeviceMemory {
  private readonly written = new Map<PhysicalDevice, Map<bigint, number>>();

  /** `size` bytes (1–8) at host address `addr`, little-endian, as the devices answer. */
  read(devices: Iterable<PciDevice>, addr: bigint, size: number): bigint {
    let value = 0n;
    for (let i = size - 1; i >= 0; i--)
      value = (value << 8n) | BigInt(this.readByte(devices, addr + BigInt(i)));
    return value;
  }

  /** Writes `size` bytes (1–8) of `value` at host address `addr`. */
  write(devices: Iterable<PciDevice>, addr: bigint, size: number, value: bigint): void {
    for (let i = 0; i < size; i++) {
      const at = decode(devices, addr + BigInt(i));
      if (at === undefined || inPba(at)) continue;
      let bytes = this.written.get(at.device);
      if (bytes === undefined) {
        bytes = new Map();
        this.written.set(at.device, bytes);
      }
      bytes.set(key(at), Number((value >> BigInt(8 * i)) & 0xffn));
    }
  }

  private readByte(devices: Iterable<PciDevice>, addr: bigint): number {
    const at = decode(devices, addr);
    if (at === undefined) return 0xff;
    const byte = this.written.get(at.device)?.get(key(at));
    if (byte !== undefined) return byte;
    return isVectorControlMask(at) ? PCI_MSIX_VECTOR_BITMASK : 0;
  }
}

function key(at: Decoded): bigint {
  return (BigInt(at.bar) << 64n) | at.offset;
}

/** The device BAR decoding host address `addr`: memory decoding on, the address inside the BAR. */
function decode(devices: Iterable<PciDevice>, addr: bigint): Decoded | undefined {
  for (const device of devices) {
    if ((device.hw.read(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY) === 0) continue;
    for (const bar of registerBars(device)) {
      if (bar.type === 'rom') continue;
      if (addr >= bar.addr && addr < bar.addr + bar.size)
        return { device: device.hw, bar: bar.index, offset: addr - bar.addr };
    }
  }
  return undefined;
}

/** The device's own MSI-X structure `which` (table or PBA): BAR, offset and size, from its registers. */
function msixStructure(
  hw: PhysicalDevice,
  which: 'table' | 'pba',
): { bar: number; start: bigint; end: bigint } | undefined {
  const cap = findCapability(hw, PCI_CAP_ID_MSIX);
  if (cap === 0) return undefined;
  const entries = (hw.read(cap + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_QSIZE) + 1;
  const raw = hw.read(cap + (which === 'table' ? PCI_MSIX_TABLE : PCI_MSIX_PBA), 4);
  const start = BigInt((raw & ~PCI_MSIX_BIRMASK) >>> 0);
  const size = msixSize(entries, which === 'table' ? VPCI_MSIX_TABLE : VPCI_MSIX_PBA);
  return { bar: raw & PCI_MSIX_BIRMASK, start, end: start + BigInt(size) };
}

function inPba(at: Decoded): boolean {
  const pba = msixStructure(at.device, 'pba');
  return pba !== undefined && pba.bar === at.bar && at.offset >= pba.start && at.offset < pba.end;
}

function isVectorControlMask(at: Decoded): boolean {
  const table = msixStructure(at.device, 'table');
  return (
    table !== undefined &&
    table.bar === at.bar &&
    at.offset >= table.start &&
    at.offset < table.end &&
    (at.offset - table.start) % BigInt(PCI_MSIX_ENTRY_SIZE) === BigInt(PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET)
  );
}
