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

type Width = 1 | 2 | 4;
/** Register widths by offset. */
type Widths = ReadonlyMap<number, Width>;

/** A width table from the offsets of its byte, word and dword registers. */
function widths(registers: { byte?: number[]; word?: number[]; dword?: number[] }, base?: Widths): Widths {
  const out = new Map(base);
  for (const reg of registers.byte ?? []) out.set(reg, 1);
  for (const reg of registers.word ?? []) out.set(reg, 2);
  for (const reg of registers.dword ?? []) out.set(reg, 4);
  return out;
}

/**
 * Registers both header layouts share. Revision and class code are read as one dword (Linux's
 * PCI_CLASS_REVISION), and so are cache line size, latency timer, header type and BIST (OVMF).
 */
const COMMON = widths({
  byte: [0x09, 0x0b, 0x0d, 0x0e, 0x0f, 0x34, 0x3c, 0x3d],
  word: [0x00, 0x02, 0x04, 0x06, 0x0a],
  dword: [0x08, 0x0c, 0x10, 0x14],
});

const ENDPOINT = widths(
  { byte: [0x3e, 0x3f], word: [0x2c, 0x2e], dword: [0x18, 0x1c, 0x20, 0x24, 0x28, 0x30] },
  COMMON,
);

/** Bus numbers (Linux and OVMF write the dword at 0x18), windows, the ROM at 0x38, bridge control. */
const BRIDGE = widths(
  {
    byte: [0x19, 0x1a, 0x1b, 0x1c, 0x1d],
    word: [0x1e, 0x20, 0x22, 0x24, 0x26, 0x30, 0x32, 0x3e],
    dword: [0x18, 0x28, 0x2c, 0x38],
  },
  COMMON,
);

/** The id and next pointer every capability starts with. */
const CAPABILITY_HEADER = widths({ byte: [0x00, 0x01] });

/** Capability registers by capability id, offsets from the capability's start. */
const CAPABILITIES = new Map<number, Widths>([
  // Power management
  [0x01, widths({ byte: [0x06, 0x07], word: [0x02, 0x04] }, CAPABILITY_HEADER)],
  // MSI
  [0x05, widths({ word: [0x02], dword: [0x04, 0x08, 0x0c, 0x10, 0x14] }, CAPABILITY_HEADER)],
  // Vendor-specific, as virtio's capabilities lay it out
  [0x09, widths({ byte: [0x02, 0x03, 0x04], dword: [0x08, 0x0c, 0x10] }, CAPABILITY_HEADER)],
  // Standard hot-plug controller
  [0x0c, widths({ byte: [0x02, 0x03], dword: [0x04] }, CAPABILITY_HEADER)],
  // Bridge subsystem vendor and device id
  [0x0d, widths({ word: [0x04, 0x06] }, CAPABILITY_HEADER)],
  // PCI Express
  [
    0x10,
    widths(
      {
        word: [0x02, 0x08, 0x0a, 0x10, 0x12, 0x18, 0x1a, 0x1c, 0x1e, 0x28, 0x2a, 0x30, 0x32, 0x38, 0x3a],
        dword: [0x04, 0x0c, 0x14, 0x20, 0x24, 0x2c, 0x34],
      },
      CAPABILITY_HEADER,
    ),
  ],
  // MSI-X
  [0x11, widths({ word: [0x02], dword: [0x04, 0x08] }, CAPABILITY_HEADER)],
  // SATA
  [0x12, widths({ word: [0x02], dword: [0x04] }, CAPABILITY_HEADER)],
]);

/** The width software uses for the register at `reg`, or undefined where nothing says. */
export function registerWidth(layout: RegisterLayout, reg: number): Width | undefined {
  if (reg >= 0x100) return reg % 4 === 0 ? 4 : undefined;
  // A bridge's header type byte is 1, so any read that covered it showed it; an endpoint's is 0,
  // which an inferred read may leave unshown: an unknown header type is taken as an endpoint's.
  if (reg < 0x40) return (layout.headerType === 1 ? BRIDGE : ENDPOINT).get(reg);
  let start = -1;
  for (const offset of layout.capabilities.keys()) if (offset <= reg && offset > start) start = offset;
  if (start < 0) return undefined;
  const id = layout.capabilities.get(start)!;
  return (CAPABILITIES.get(id) ?? CAPABILITY_HEADER).get(reg - start);
}

/** The number of bytes `value` needs: 1, 2 or 4. */
export function valueWidth(value: number): Width {
  return value > 0xffff ? 4 : value > 0xff ? 2 : 1;
}

/** The size of an access at `reg` of `value` by the rule of the module comment. */
export function inferSize(reg: number, value: number, width: Width | undefined): Width {
  const needed = valueWidth(value);
  const aligned = reg % 4 === 0 ? 4 : reg % 2 === 0 ? 2 : 1;
  return Math.max(Math.min(width ?? needed, aligned), needed) as Width;
}
