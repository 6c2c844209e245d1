/**
 * Seed 000 end to end through the firmware module: hvmloader's placement (run on a Machine, recorded
 * as a trace), its MTRR layout and a grant-table page (a special page, ram_rw) in the xenpci BAR,
 * replayed with memoryType assertions. With the default layout the page is UC on AMD (the guest PAT
 * follows the UC MTRR) and WB on Intel (iPAT); with xen_platform_pci_bar_uc=0 it is WB on both. The
 * committed examples are what the code writes (FIRMWARE_UPDATE=1 rewrites them).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { guestMtrrState, placeBars } from '@vpci/firmware';
import {
  amdEffectiveType,
  epteGetEntryEmt,
  gfn,
  intelEffectiveType,
  MtrrState,
  mfn,
  mtrrGetType,
  nptLeafFor,
  paddr,
} from '@vpci/p2m';
import { replayText } from '@vpci/replay';
import { Machine } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { seed000Trace } from './fixtures/seed-000-trace.js';
import { SECTION_4_7_DEVICES } from './fixtures/seed-layouts.js';

const EXAMPLES = {
  amd: new URL('../examples/firmware-seed-000.jsonl', import.meta.url),
  intel: new URL('../examples/firmware-seed-000-intel.jsonl', import.meta.url),
} as const;

describe.each(['amd', 'intel'] as const)('seed 000 on %s', (vendor) => {
  const text = seed000Trace(vendor);

  it('replays with every assertion holding and no violation', () => {
    const report = replayText(text, `firmware-seed-000-${vendor}.jsonl`);
    expect(report.error).toBeNull();
    expect(report.assertions.failures).toEqual([]);
    expect(report.violations).toEqual([]);
    expect(report.status).toBe('ok');
  });

  it('asserts UC on AMD / WB on Intel for the default layout, WB for both with the switch off', () => {
    const asserted = text
      .split('\n')
      .filter((l) => l.includes('"memoryType"'))
      .map((l) => JSON.parse(l).memoryType);
    expect(asserted).toEqual([
      {
        domain: 1,
        gfn: '0xf1000',
        pat: 'UC',
        expect: vendor === 'amd' ? 'UC' : 'WB',
        ...(vendor === 'intel' ? { ipat: true } : {}),
      },
      { domain: 2, gfn: '0xfb000', pat: 'WB', expect: 'WB', ...(vendor === 'intel' ? { ipat: true } : {}) },
    ]);
  });

  it('is the committed example', () => {
    if (process.env.FIRMWARE_UPDATE === '1') writeFileSync(EXAMPLES[vendor], text);
    expect(readFileSync(EXAMPLES[vendor], 'utf8')).toBe(text);
  });
});

describe('seed 000 with the p2m functions directly', () => {
  /** The memory type of a special ram_rw page at the xenpci BAR, for a guest PAT chosen as Linux does. */
  function grantPageType(vendor: 'intel' | 'amd', xenpciBarUc: boolean) {
    const machine = new Machine();
    for (const spec of SECTION_4_7_DEVICES) machine.addDevice(spec);
    machine.boot();
    const result = placeBars(machine, machine.hardwareDomain.vcpus[0]!, { xenpciBarUc });
    const bar = result.bars.find((b) => b.devfn === 0x18 && b.kind === 'mem32')!;
    const guestMtrr = guestMtrrState(result);
    const pat = mtrrGetType(guestMtrr, paddr(bar.addr!), 0) === 'UC' ? 'UC' : 'WB';
    const frame = mfn(0x23400);
    const hostMtrr = new MtrrState({ enabled: true, defaultType: 'WB' });
    if (vendor === 'amd') {
      const leaf = nptLeafFor({ p2mType: 'ram_rw', mfn: frame });
      if (!leaf.present) throw new Error('no NPT leaf');
      return amdEffectiveType({ guestPat: pat, nptHostType: leaf.hostType, hostMtrr: 'WB' }).type;
    }
    const leaf = epteGetEntryEmt({
      domain: { iommuEnabled: true, hasIoResources: false, hasPciDevices: false },
      p2mType: 'ram_rw',
      gfn: gfn(Number(bar.addr! >> 12n)),
      mfn: frame,
      order: 0,
      guestMtrr,
      hostMtrr,
      specialPages: (m) => m === frame, // the grant frame is a Xen-heap page
    });
    if ('split' in leaf) throw new Error('split');
    return intelEffectiveType(leaf, pat);
  }

  it.each([
    ['amd', true, 'UC'],
    ['intel', true, 'WB'],
    ['amd', false, 'WB'],
    ['intel', false, 'WB'],
  ] as const)('%s, xenpciBarUc %s: %s', (vendor, uc, expected) => {
    expect(grantPageType(vendor, uc)).toBe(expected);
  });
});
