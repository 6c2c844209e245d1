/**
 * Which config-space accesses reach vPCI, and how: Xen's `vpci_access_allowed` (vpci.c), used by both
 * x86 entry points in xen/arch/x86/hvm/io.c (`vpci_portio_read`/`vpci_portio_write`, the CF8/CFC
 * ports) and by the ECAM/MMCFG ones (`vpci_ecam_read`/`vpci_ecam_write`, reached from x86's
 * `vpci_mmcfg_read`/`vpci_mmcfg_write`). An access must be 1, 2, 4 or 8 bytes and aligned to its size;
 * any other never reaches `vpci_read`/`vpci_write`: a read returns all-ones, a write is dropped. The
 * CF8/CFC ports carry at most 4 bytes; an 8-byte ECAM access is two 4-byte `vpci_read`/`vpci_write`
 * calls, low half first.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { PCI_CFG_SPACE_EXP_SIZE } from './pci-regs.js';

/**
 * How an access reaches Xen: `cf8` through the CF8/CFC I/O ports (1, 2 or 4 bytes), `ecam` through
 * the memory-mapped configuration space (MMCFG on x86; also 8 bytes).
 */
export type ConfigAccessPath = 'cf8' | 'ecam';

/** The access sizes each path carries. */
const SIZES: Readonly<Record<ConfigAccessPath, readonly number[]>> = {
  cf8: [1, 2, 4],
  ecam: [1, 2, 4, 8],
};

/** Xen's `vpci_access_allowed`: a size of 1, 2, 4 or 8 bytes (64-bit builds) and `reg` aligned to it. */
export function vpciAccessAllowed(reg: number, size: number): boolean {
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) return false;
  return (reg & (size - 1)) === 0;
}

/**
 * Throws unless `size` is one `path` carries and `reg` is a config-space offset (0 … 0xfff). An
 * access that is not aligned is valid input: it reaches the machine, which drops it as Xen does.
 */
export function checkAccessShape(path: ConfigAccessPath, reg: unknown, size: unknown): void {
  // Every config access passes here: the common shape is settled without the lists and their search.
  if (
    (size === 1 || size === 2 || size === 4 || (size === 8 && path === 'ecam')) &&
    typeof reg === 'number' &&
    reg >= 0 &&
    reg < PCI_CFG_SPACE_EXP_SIZE &&
    Number.isInteger(reg)
  )
    return;
  const sizes = SIZES[path];
  if (typeof size !== 'number' || !sizes.includes(size))
    throw new InvalidArgumentError('size', size, sizes.join(', ').replace(/, (\d)$/, ' or $1'));
  if (typeof reg !== 'number' || !Number.isInteger(reg) || reg < 0 || reg >= PCI_CFG_SPACE_EXP_SIZE)
    throw new InvalidArgumentError('reg', reg, 'a config-space offset in 0 … 0xfff');
}

/** All-ones of `size` bytes (1 … 4), what a read that reaches nothing returns. */
export function allOnes(size: number): number {
  return size >= 4 ? 0xffffffff : (1 << (8 * size)) - 1;
}
