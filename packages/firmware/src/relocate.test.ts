import { InvalidArgumentError } from '@vpci/p2m';
import { describe, expect, it } from 'vitest';
import { relocateRam } from './relocate.js';

describe("relocateRam (hvmloader pci_setup's RAM relocation)", () => {
  it('moves 0xffff pages, then the last one, from the top of low RAM to the top of high RAM', () => {
    expect(relocateRam(0xe000_0000n, 0xf0000, 0x110000)).toEqual({
      lowMemPgend: 0xe0000,
      highMemPgend: 0x120000,
      moves: [
        { from: 0xe0001, to: 0x110000, count: 0xffff },
        { from: 0xe0000, to: 0x11ffff, count: 1 },
      ],
    });
  });

  it('with no high RAM starts the moved RAM at 4 GiB', () => {
    expect(relocateRam(0xc000_0000n, 0xc8000, 0)).toEqual({
      lowMemPgend: 0xc0000,
      highMemPgend: 0x108000,
      moves: [{ from: 0xc0000, to: 0x100000, count: 0x8000 }],
    });
  });

  it('moves nothing when low RAM ends at or below the hole (and leaves high_mem_pgend 0)', () => {
    expect(relocateRam(0xf000_0000n, 0xf0000, 0)).toEqual({
      lowMemPgend: 0xf0000,
      highMemPgend: 0,
      moves: [],
    });
  });

  it('refuses a low_mem_pgend above 4 GiB', () => {
    expect(() => relocateRam(0xf000_0000n, 0x100001, 0)).toThrow(InvalidArgumentError);
  });
});
