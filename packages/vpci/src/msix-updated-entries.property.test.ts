/**
 * MSI-X `control_write` walks the table entries for those to set up again only while some entry is
 * `updated` (`MsixState.updatedEntries`, kept by `setEntryUpdated`): a running driver's mask toggles
 * then read no entry. Against a naive model of xen/drivers/vpci/msix.c (`msix_write` marks an entry
 * updated on an address or data write and sets it up when unmasked with MSI-X on and the function
 * unmasked; `control_write` sets up the unmasked updated entries on enabling or unmasking and tears
 * the bound ones down on disabling; `update_entry` binds an x86 MSI address, 0xfeexxxxx, and clears
 * `updated`), any sequence of table and control writes leaves every entry as the model does, and
 * the count equal to the entries the model has updated.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { bootedMachine, writeCommand } from '../../../test/support/machine.js';

const CTRL = 0x42; // the MSI-X capability at 0x40
const TABLE = 0xfe00_1100n;
const ENTRIES = 2;

interface ModelEntry {
  addr: bigint;
  masked: boolean;
  updated: boolean;
  bound: boolean;
}

/** Xen's `update_entry` with `vpci_msi_update`'s check of the address. */
function updateEntry(entry: ModelEntry): void {
  entry.bound = false;
  if ((entry.addr & 0xffff_ffff_fff0_0000n) !== 0xfee0_0000n) return;
  entry.bound = true;
  entry.updated = false;
}

type Op =
  | { kind: 'table'; nr: number; field: 0 | 4 | 8 | 12; value: bigint }
  | { kind: 'control'; value: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('table' as const),
    nr: fc.nat({ max: ENTRIES - 1 }),
    field: fc.constantFrom<0 | 4 | 8 | 12>(0, 4, 8, 12),
    // An x86 MSI address or not (low half), 0 or not (high half), any data, the Mask bit set or not.
    value: fc.constantFrom(0xfee0_1000n, 0xfed0_0000n, 0n, 1n, 0x4041n),
  }),
  // MSI-X Enable (bit 15) and Function Mask (bit 14) in each combination.
  fc.record({ kind: fc.constant('control' as const), value: fc.constantFrom(0, 0x4000, 0x8000, 0xc000) }),
);

describe('control_write skips the entries walk while no entry is updated', () => {
  it('table and control writes leave the entries as a naive msix.c model does, the count of updated ones kept', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const machine = bootedMachine([
          {
            sbdf: '0000:01:00.0',
            bars: [{ type: 'mem32', size: 0x4000n, addr: 0xfe00_0000n }],
            msix: { entries: ENTRIES, table: { bar: 0, offset: 0x1100 }, pba: { bar: 0, offset: 0x1800 } },
          },
        ]);
        const v = machine.hardwareDomain.vcpus[0]!;
        writeCommand(machine, v, '01:00.0', 0x2);
        const msix = machine.device('01:00.0').vpci!.msix!;
        const model = {
          enabled: false,
          masked: false,
          entries: Array.from({ length: ENTRIES }, () => ({
            addr: 0n,
            masked: true,
            updated: false,
            bound: false,
          })),
        };
        for (const op of ops) {
          if (op.kind === 'table') {
            machine.mmioWrite(v, TABLE + BigInt(16 * op.nr + op.field), 4, op.value);
            const entry = model.entries[op.nr]!;
            if (op.field === 0) entry.addr = (entry.addr & ~0xffff_ffffn) | op.value;
            if (op.field === 4) entry.addr = (entry.addr & 0xffff_ffffn) | (op.value << 32n);
            if (op.field !== 12) entry.updated = true;
            else if (entry.masked !== ((op.value & 1n) !== 0n)) {
              entry.masked = (op.value & 1n) !== 0n;
              if (!entry.masked && model.enabled && !model.masked && entry.updated) updateEntry(entry);
            }
          } else {
            machine.configWrite(v, '01:00.0', CTRL, 2, op.value);
            const enabled = (op.value & 0x8000) !== 0;
            const masked = (op.value & 0x4000) !== 0;
            if (enabled && !masked && (!model.enabled || model.masked)) {
              for (const entry of model.entries) if (!entry.masked && entry.updated) updateEntry(entry);
            } else if (!enabled && model.enabled) {
              for (const entry of model.entries)
                if (entry.bound) {
                  entry.bound = false;
                  entry.updated = true;
                }
            }
            model.enabled = enabled;
            model.masked = masked;
          }
          expect(
            msix.entries.map(({ addr, masked, updated, bound }) => ({ addr, masked, updated, bound })),
          ).toEqual(model.entries);
          expect(msix.updatedEntries).toBe(model.entries.filter((entry) => entry.updated).length);
        }
      }),
      runs(100),
    );
  });
});
