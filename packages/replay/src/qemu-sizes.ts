/**
 * The size of a config access whose QEMU log line has no region line to say it (a log captured with
 * `-trace 'pci_cfg_*'` alone, or an access whose region line was filtered out). The rule, in order:
 *
 * 1. The value must fit: more than 0xffff needs 4 bytes, more than 0xff at least 2.
 * 2. Accesses are naturally aligned: at most 4 bytes at a multiple of 4, 2 at an even offset, 1
 *    elsewhere.
 * 3. Within those bounds the access is as wide as the register at that offset, as firmware and Linux
 *    access it: the PCI header's registers by header type (an endpoint's while the log has not shown
 *    it), the registers of the common capabilities
 *    (power management, MSI, MSI-X, PCI Express, vendor-specific as virtio uses it, SHPC, bridge
 *    subsystem ids), dwords in extended config space. Where no register is known, the value's width.
 *
 * A read's low bytes are right whatever its real size (the value fits it), so only the bytes the
 * value needs are taken as known from an inferred read (`certainBytes`); the size matters more for a
 * write, where the rule's register widths are what software writes (a word to the MSI-X control
 * register even when its high byte is zero).
 */

/** What the importer knows of a function's layout when it sizes an access. */
export interface RegisterLayout {
  /** 0 (endpoint), 1 (PCI-to-PCI bridge), or undefined when the log has not shown it yet. */
  readonly headerType: 0 | 1 | undefined;
  /** The capability list as far as known: offset → capability id. */
  readonly capabilities: ReadonlyMap<number, number>;
}

type Widths = Readonly<Record<number, 1 | 2 | 4>>;

/** Registers both header layouts share. */
const COMMON: Widths = {
  0: 2,
  2: 2,
  4: 2,
  6: 2,
  // Revision and class code are read as one dword (Linux's PCI_CLASS_REVISION).
  8: 4,
  9: 1,
  10: 2,
  11: 1,
  // Cache line size, latency timer, header type and BIST: OVMF reads the dword.
  12: 4,
  13: 1,
  14: 1,
  15: 1,
  16: 4,
  20: 4,
  52: 1,
  60: 1,
  61: 1,
};

const ENDPOINT: Widths = {
  ...COMMON,
  24: 4,
  28: 4,
  32: 4,
  36: 4,
  40: 4,
  44: 2,
  46: 2,
  48: 4,
  62: 1,
  63: 1,
};

const BRIDGE: Widths = {
  ...COMMON,
  // Primary, secondary and subordinate bus and the latency timer: Linux and OVMF write the dword.
  24: 4,
  25: 1,
  26: 1,
  27: 1,
  28: 1,
  29: 1,
  30: 2,
  32: 2,
  34: 2,
  36: 2,
  38: 2,
  40: 4,
  44: 4,
  48: 2,
  50: 2,
  56: 4,
  62: 2,
};

/** Capability registers by capability id, offsets from the capability's start. */
const CAPABILITIES: Readonly<Record<number, Widths>> = {
  // Power management
  1: { 0: 1, 1: 1, 2: 2, 4: 2, 6: 1, 7: 1 },
  // MSI
  5: { 0: 1, 1: 1, 2: 2, 4: 4, 8: 4, 12: 4, 16: 4, 20: 4 },
  // Vendor-specific, as virtio's capabilities lay it out
  9: { 0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 8: 4, 12: 4, 16: 4 },
  // Standard hot-plug controller
  12: { 0: 1, 1: 1, 2: 1, 3: 1, 4: 4 },
  // Bridge subsystem vendor and device id
  13: { 0: 1, 1: 1, 4: 2, 6: 2 },
  // PCI Express
  16: {
    0: 1,
    1: 1,
    2: 2,
    4: 4,
    8: 2,
    10: 2,
    12: 4,
    16: 2,
    18: 2,
    20: 4,
    24: 2,
    26: 2,
    28: 2,
    30: 2,
    32: 4,
    36: 4,
    40: 2,
    42: 2,
    44: 4,
    48: 2,
    50: 2,
    52: 4,
    56: 2,
    58: 2,
  },
  // MSI-X
  17: { 0: 1, 1: 1, 2: 2, 4: 4, 8: 4 },
  // SATA
  18: { 0: 1, 1: 1, 2: 2, 4: 4 },
};

/** The width software uses for the register at `reg`, or undefined where nothing says. */
export function registerWidth(layout: RegisterLayout, reg: number): 1 | 2 | 4 | undefined {
  if (reg >= 0x100) return reg % 4 === 0 ? 4 : undefined;
  // A bridge's header type byte is 1, so any read that covered it showed it; an endpoint's is 0,
  // which an inferred read may leave unshown: an unknown header type is taken as an endpoint's.
  if (reg < 0x40) return (layout.headerType === 1 ? BRIDGE : ENDPOINT)[reg];
  let start = -1;
  for (const offset of layout.capabilities.keys()) if (offset <= reg && offset > start) start = offset;
  if (start < 0) return undefined;
  const id = layout.capabilities.get(start)!;
  return (CAPABILITIES[id] ?? { 0: 1, 1: 1 })[reg - start];
}

/** The number of bytes `value` needs: 1, 2 or 4. */
export function valueWidth(value: number): 1 | 2 | 4 {
  return value > 0xffff ? 4 : value > 0xff ? 2 : 1;
}

/** The size of an access at `reg` of `value` by the rule of the module comment. */
export function inferSize(reg: number, value: number, width: 1 | 2 | 4 | undefined): 1 | 2 | 4 {
  const needed = valueWidth(value);
  const aligned = reg % 4 === 0 ? 4 : reg % 2 === 0 ? 2 : 1;
  return Math.max(Math.min(width ?? needed, aligned), needed) as 1 | 2 | 4;
}
