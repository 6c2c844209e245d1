/**
 * PCI configuration-space layout: the register offsets and bits the engine reads and writes (the
 * names follow Linux's and Xen's `pci_regs.h`). Values only; no behaviour.
 */

/** Size of conventional configuration space in bytes. */
export const PCI_CFG_SPACE_SIZE = 256;
/** Size of PCIe extended configuration space in bytes. */
export const PCI_CFG_SPACE_EXP_SIZE = 4096;

export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_CAPABILITY_LIST = 0x34;
/** Expansion ROM register of a type 0 (normal) header. */
export const PCI_ROM_ADDRESS = 0x30;
/** Expansion ROM register of a type 1 (bridge) header. */
export const PCI_ROM_ADDRESS1 = 0x38;

export const PCI_HEADER_TYPE_NORMAL = 0;
export const PCI_HEADER_TYPE_BRIDGE = 1;
/** BAR slots of a normal header, and of a bridge header. */
export const PCI_HEADER_NORMAL_NR_BARS = 6;
export const PCI_HEADER_BRIDGE_NR_BARS = 2;

// Command register bits.
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_SPECIAL = 0x8;
export const PCI_COMMAND_INVALIDATE = 0x10;
export const PCI_COMMAND_VGA_PALETTE = 0x20;
export const PCI_COMMAND_PARITY = 0x40;
export const PCI_COMMAND_WAIT = 0x80;
export const PCI_COMMAND_SERR = 0x100;
export const PCI_COMMAND_FAST_BACK = 0x200;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
/** Bits 11–15 of the command register are reserved (RsvdP). */
export const PCI_COMMAND_RSVDP_MASK = 0xf800;

// Status register bits.
export const PCI_STATUS_CAP_LIST = 0x10;
/** Read-only status bits: immediate readiness, interrupt, capability list, 66 MHz, fast back-to-back, DEVSEL. */
export const PCI_STATUS_RO_MASK = 0x06b9;
/** Write-1-to-clear status bits. */
export const PCI_STATUS_RW1C_MASK = 0xf900;
/** Reserved-zero status bits (bits 1–2 and the obsolete user-definable-features bit 6). */
export const PCI_STATUS_RSVDZ_MASK = 0x0046;

// BAR bits.
export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
export const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x6;
export const PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x0;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;
/** Address bits of a memory BAR's low dword. */
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
/** Address bits of an I/O BAR. */
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;
export const PCI_ROM_ADDRESS_ENABLE = 0x1;
/** Address bits of the ROM BAR (2 KiB granularity). */
export const PCI_ROM_ADDRESS_MASK = 0xfffff800;

// Capabilities.
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_CAP_LIST_ID = 0;
export const PCI_CAP_LIST_NEXT = 1;
/** MSI-X: message control at cap + 2, table offset/BIR at cap + 4, PBA offset/BIR at cap + 8. */
export const PCI_MSIX_FLAGS = 2;
export const PCI_MSIX_TABLE = 4;
export const PCI_MSIX_PBA = 8;
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_BIRMASK = 0x7;
export const PCI_MSIX_ENTRY_SIZE = 16;

// Resizable BAR extended capability.
export const PCI_EXT_CAP_ID_REBAR = 0x15;
/** Capability dword of resizable BAR `i`: supported sizes in bits 4–31 (bit n+4: 2^(n+20) bytes). */
export const pciRebarCap = (i: number): number => 4 + 8 * i;
/** Control dword of resizable BAR `i`: BAR index (bits 0–2), count (5–7, entry 0), size (8–13). */
export const pciRebarCtrl = (i: number): number => 8 + 8 * i;
export const PCI_REBAR_CTRL_BAR_IDX = 0x7;
export const PCI_REBAR_CTRL_NBAR_MASK = 0xe0;
export const PCI_REBAR_CTRL_NBAR_SHIFT = 5;
export const PCI_REBAR_CTRL_SIZE_MASK = 0x3f00;
export const PCI_REBAR_CTRL_SIZE_SHIFT = 8;
/** Resizable BAR sizes are powers of two from 1 MiB: size = 2^(field + 20). */
export const PCI_REBAR_SIZE_BIAS = 20;
