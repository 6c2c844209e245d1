/**
 * PCI configuration-space layout: the register offsets and bits the engine reads and writes (the
 * names follow Linux's and Xen's `pci_regs.h`). Values only; no behaviour.
 */

/** Size of conventional configuration space in bytes. */
export const PCI_CFG_SPACE_SIZE = 256;
/** Size of PCIe extended configuration space in bytes. */
export const PCI_CFG_SPACE_EXP_SIZE = 4096;

/** Vendor ID register (16 bits). */
export const PCI_VENDOR_ID = 0x00;
/** Device ID register (16 bits). */
export const PCI_DEVICE_ID = 0x02;
/** Command register (16 bits). */
export const PCI_COMMAND = 0x04;
/** Status register (16 bits). */
export const PCI_STATUS = 0x06;
/** Header Type register (8 bits): the layout in bits 0–6, multi-function in bit 7. */
export const PCI_HEADER_TYPE = 0x0e;
/** The first BAR register; BAR n is at `PCI_BASE_ADDRESS_0 + 4 * n`. */
export const PCI_BASE_ADDRESS_0 = 0x10;
/** Capabilities Pointer: offset of the first capability in the legacy list. */
export const PCI_CAPABILITY_LIST = 0x34;
/** Expansion ROM register of a type 0 (normal) header. */
export const PCI_ROM_ADDRESS = 0x30;
/** Expansion ROM register of a type 1 (bridge) header. */
export const PCI_ROM_ADDRESS1 = 0x38;

/** Header layout of an endpoint (type 0). */
export const PCI_HEADER_TYPE_NORMAL = 0;
/** Header layout of a PCI-to-PCI bridge (type 1). */
export const PCI_HEADER_TYPE_BRIDGE = 1;
/** BAR slots of a normal header, and of a bridge header. */
export const PCI_HEADER_NORMAL_NR_BARS = 6;
/** BAR slots of a bridge header. */
export const PCI_HEADER_BRIDGE_NR_BARS = 2;

// Command register bits.
/** Command bit: decode I/O space accesses. */
export const PCI_COMMAND_IO = 0x1;
/** Command bit: decode memory space accesses; vPCI maps the BARs when it turns on. */
export const PCI_COMMAND_MEMORY = 0x2;
/** Command bit: bus master (the device may issue DMA). */
export const PCI_COMMAND_MASTER = 0x4;
/** Command bit: respond to special cycles. */
export const PCI_COMMAND_SPECIAL = 0x8;
/** Command bit: use memory write and invalidate. */
export const PCI_COMMAND_INVALIDATE = 0x10;
/** Command bit: VGA palette snooping. */
export const PCI_COMMAND_VGA_PALETTE = 0x20;
/** Command bit: respond to parity errors. */
export const PCI_COMMAND_PARITY = 0x40;
/** Command bit: address/data stepping (obsolete). */
export const PCI_COMMAND_WAIT = 0x80;
/** Command bit: SERR# enable. */
export const PCI_COMMAND_SERR = 0x100;
/** Command bit: fast back-to-back writes. */
export const PCI_COMMAND_FAST_BACK = 0x200;
/** Command bit: INTx emulation disabled. */
export const PCI_COMMAND_INTX_DISABLE = 0x400;
/** Bits 11–15 of the command register are reserved (RsvdP). */
export const PCI_COMMAND_RSVDP_MASK = 0xf800;

// Status register bits.
/** Status bit: the device has a capability list. */
export const PCI_STATUS_CAP_LIST = 0x10;
/** Read-only status bits: immediate readiness, interrupt, capability list, 66 MHz, fast back-to-back, DEVSEL. */
export const PCI_STATUS_RO_MASK = 0x06b9;
/** Write-1-to-clear status bits. */
export const PCI_STATUS_RW1C_MASK = 0xf900;
/** Reserved-zero status bits (bits 1–2 and the obsolete user-definable-features bit 6). */
export const PCI_STATUS_RSVDZ_MASK = 0x0046;

// BAR bits.
/** BAR bit 0: set for an I/O BAR, clear for a memory BAR. */
export const PCI_BASE_ADDRESS_SPACE_IO = 0x1;
/** Memory BAR bits 1–2: the address width. */
export const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x6;
/** Memory BAR type: 32-bit address. */
export const PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x0;
/** Memory BAR type: 64-bit address, the high dword in the next slot. */
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x4;
/** Memory BAR bit 3: prefetchable. */
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x8;
/** Address bits of a memory BAR's low dword. */
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
/** Address bits of an I/O BAR. */
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;
/** ROM register bit 0: the ROM decodes its address. */
export const PCI_ROM_ADDRESS_ENABLE = 0x1;
/** Address bits of the ROM BAR (2 KiB granularity). */
export const PCI_ROM_ADDRESS_MASK = 0xfffff800;

// Capabilities.
/** Capability ID of MSI. */
export const PCI_CAP_ID_MSI = 0x05;
/** Capability ID of MSI-X. */
export const PCI_CAP_ID_MSIX = 0x11;
/** Offset of the ID byte in a capability. */
export const PCI_CAP_LIST_ID = 0;
/** Offset of the next-capability pointer in a capability. */
export const PCI_CAP_LIST_NEXT = 1;
/** MSI: message control at cap + 2 (16 bits). */
export const PCI_MSI_FLAGS = 2;
/** MSI message control: MSI Enable. */
export const PCI_MSI_FLAGS_ENABLE = 0x01;
/** MSI message control: Multiple Message Capable (log2 of the vectors the device supports). */
export const PCI_MSI_FLAGS_QMASK = 0x0e;
/** MSI message control: Multiple Message Enable (log2 of the vectors enabled). */
export const PCI_MSI_FLAGS_QSIZE = 0x70;
/** MSI message control: 64-bit addresses. */
export const PCI_MSI_FLAGS_64BIT = 0x80;
/** MSI message control: per-vector masking. */
export const PCI_MSI_FLAGS_MASKBIT = 0x100;
/** MSI: Message Address (low 32 bits) at cap + 4. */
export const PCI_MSI_ADDRESS_LO = 4;
/** MSI: Message Upper Address at cap + 8 (64-bit capability only). */
export const PCI_MSI_ADDRESS_HI = 8;
/** MSI: Message Data of a 32-bit capability, at cap + 8. */
export const PCI_MSI_DATA_32 = 8;
/** MSI: Message Data of a 64-bit capability, at cap + 12. */
export const PCI_MSI_DATA_64 = 12;
/** MSI: Mask Bits at cap + 16 (64-bit) or cap + 12 (32-bit); Pending Bits 4 bytes after. */
export const PCI_MSI_MASK_BIT = 16;
/** MSI-X: message control at cap + 2, table offset/BIR at cap + 4, PBA offset/BIR at cap + 8. */
export const PCI_MSIX_FLAGS = 2;
/** MSI-X: offset of the Table Offset/BIR dword in the capability. */
export const PCI_MSIX_TABLE = 4;
/** MSI-X: offset of the PBA Offset/BIR dword in the capability. */
export const PCI_MSIX_PBA = 8;
/** MSI-X message control: Table Size, the number of entries minus one. */
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
/** MSI-X message control: Function Mask. */
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
/** MSI-X message control: MSI-X Enable. */
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
/** MSI-X Table/PBA dword: the BAR indicator (BIR) bits; the rest is the offset. */
export const PCI_MSIX_BIRMASK = 0x7;
/** Bytes of one MSI-X table entry. */
export const PCI_MSIX_ENTRY_SIZE = 16;
/** MSI-X table entry: Message Address (low 32 bits). */
export const PCI_MSIX_ENTRY_LOWER_ADDR_OFFSET = 0;
/** MSI-X table entry: Message Upper Address. */
export const PCI_MSIX_ENTRY_UPPER_ADDR_OFFSET = 4;
/** MSI-X table entry: Message Data. */
export const PCI_MSIX_ENTRY_DATA_OFFSET = 8;
/** MSI-X table entry: Vector Control. */
export const PCI_MSIX_ENTRY_VECTOR_CTRL_OFFSET = 12;
/** MSI-X Vector Control: the entry's Mask bit. */
export const PCI_MSIX_VECTOR_BITMASK = 0x1;

// Resizable BAR extended capability.
/** Extended capability ID of Resizable BAR. */
export const PCI_EXT_CAP_ID_REBAR = 0x15;
/** Capability dword of resizable BAR `i`: supported sizes in bits 4–31 (bit n+4: 2^(n+20) bytes). */
export const pciRebarCap = (i: number): number => 4 + 8 * i;
/** Control dword of resizable BAR `i`: BAR index (bits 0–2), count (5–7, entry 0), size (8–13). */
export const pciRebarCtrl = (i: number): number => 8 + 8 * i;
/** Resizable BAR control: the BAR index bits. */
export const PCI_REBAR_CTRL_BAR_IDX = 0x7;
/** Resizable BAR control (entry 0): the number of resizable BARs. */
export const PCI_REBAR_CTRL_NBAR_MASK = 0xe0;
/** Shift of `PCI_REBAR_CTRL_NBAR_MASK`. */
export const PCI_REBAR_CTRL_NBAR_SHIFT = 5;
/** Resizable BAR control: the current size, as 2^(field + 20) bytes. */
export const PCI_REBAR_CTRL_SIZE_MASK = 0x3f00;
/** Shift of `PCI_REBAR_CTRL_SIZE_MASK`. */
export const PCI_REBAR_CTRL_SIZE_SHIFT = 8;
/** Resizable BAR sizes are powers of two from 1 MiB: size = 2^(field + 20). */
export const PCI_REBAR_SIZE_BIAS = 20;
