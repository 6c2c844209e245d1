/**
 * hvmloader's constants for PCI placement (tools/firmware/hvmloader/config.h, pci.c, cacheattr.c),
 * as byte addresses (bigint) and register offsets of its own that the engine's pci-regs.ts lacks.
 */

/** 4 GiB: the end of 32-bit address space. */
export const GB4 = 1n << 32n;

/** `HVM_BELOW_4G_MMIO_START`: where the low MMIO hole starts before hvmloader grows it. */
export const HVM_BELOW_4G_MMIO_START = 0xf000_0000n;

/** `RESERVED_MEMBASE`: the end of the low PCI window; ACPI info and special pages live above it. */
export const RESERVED_MEMBASE = 0xfc00_0000n;

/** `BAR_RELOC_THRESH`: 64-bit BARs larger than this always go above 4 GiB (and do not size the hole). */
export const BAR_RELOC_THRESH = 1n << 30n;

/** First I/O port hvmloader hands to I/O BARs. */
export const PCI_IO_BASE = 0xc000n;

/** One past the last I/O port hvmloader hands out. */
export const PCI_IO_END = 0x10000n;

/** `PCI_VENDOR_ID_XEN`: the Xen platform device ("xenpci", emulated by QEMU). */
export const PCI_VENDOR_ID_XEN = 0x5853;

/** `PCI_CLASS_DEVICE`: the 16-bit class code register (base class, sub-class) hvmloader reads first. */
export const PCI_CLASS_DEVICE = 0x0a;

/** Class code of a VGA-compatible display controller. */
export const PCI_CLASS_DISPLAY_VGA = 0x0300;

/** hvmloader's fallback physical address width when CPUID has no leaf 0x80000008 (`cpu_phys_addr`). */
export const HVMLOADER_DEFAULT_PHYS_BITS = 36;

/** Pages hvmloader's `XENMEM_add_to_physmap` moves at most per call (`(1u << 16) - 1`). */
export const RELOCATE_CHUNK_PAGES = 0xffff;

/** 4 KiB. */
export const PAGE_BYTES = 0x1000n;

/** 2 MiB: a superpage (order-9 leaf). */
export const SUPERPAGE_BYTES = 0x20_0000n;
