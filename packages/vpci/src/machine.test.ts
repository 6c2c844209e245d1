/**
 * The machine's address width. Xen: `dom0_setup_permissions` permits the hardware domain machine
 * frames `[0, PFN_DOWN(1UL << domain_max_paddr_bits(d)) - 1]`, where `domain_max_paddr_bits` is
 * `hap_paddr_bits` with HAP (else `paddr_bits`), at most 48 ("both p2m-ept and p2m-pt only support
 * 4-level page tables"), and at most 44 under shadow paging (CONFIG_BIGMEM off). Every p2m is EPT on
 * Intel with HAP and p2m-pt otherwise (`p2m_initialise`), with 4-level tables (guest frames < 2^36).
 */
import { describe, expect, it } from 'vitest';
import { Machine } from './machine.js';

describe('Machine physAddrBits', () => {
  it.each([
    [{}, 2 ** 36 - 1],
    [{ physAddrBits: 39 }, 2 ** 27 - 1],
    [{ physAddrBits: 52 }, 2 ** 36 - 1],
    [{ physAddrBits: 52, hardwareP2m: { hap: false } }, 2 ** 32 - 1],
    [{ physAddrBits: 40, hardwareP2m: { hap: false } }, 2 ** 28 - 1],
  ])('%j: the hardware domain may map machine frames 0 … %i', (options, last) => {
    const machine = new Machine(options);
    expect(machine.hardwareDomain.iomem.toArray()).toEqual([[0, last]]);
  });

  it('every domain has 4-level tables: EPT on Intel with HAP, p2m-pt on AMD or without HAP', () => {
    const tables = (machine: Machine, id: number) => {
      const p2m = machine.domain(id).p2m;
      return [p2m.frameLimit, p2m.tables];
    };
    const intel = new Machine({ physAddrBits: 39 });
    intel.createGuest({ id: 1 });
    intel.createGuest({ id: 2, p2m: { hap: false } });
    expect(tables(intel, 0)).toEqual([2 ** 36, 'ept']);
    expect(tables(intel, 1)).toEqual([2 ** 36, 'ept']);
    expect(tables(intel, 2)).toEqual([2 ** 36, 'pt']);
    const amd = new Machine({ vendor: 'amd' });
    amd.createGuest({ id: 1 });
    expect(tables(amd, 0)).toEqual([2 ** 36, 'pt']);
    expect(tables(amd, 1)).toEqual([2 ** 36, 'pt']);
  });

  it.each([35, 53, 40.5])('physAddrBits %j is refused', (bits) => {
    expect(() => new Machine({ physAddrBits: bits })).toThrow('physAddrBits');
  });
});
