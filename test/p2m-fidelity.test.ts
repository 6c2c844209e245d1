/**
 * The p2m and memory types as Xen has them, replayed from traces: kept page-table splits and the
 * preemption points they move, shadow paging, HAP without 2 MiB leaves, per-domain IOMMU, and the
 * hardware domain's MTRRs. Expected values from Xen's source:
 * - `map_mmio_regions` (xen/arch/x86/mm/p2m.c) does at most 64 chunks a call; `mmio_order` gives 2M
 *   when gfn | mfn is 2M-aligned, 512 frames remain, HAP is on (`hap_enabled`) and `hap_has_2mb`,
 *   else 4K; it never looks at the existing mapping. `set_typed_p2m_entry` retries a chunk at
 *   `cur_order` when `get_entry` reports a smaller one: inside a 2M region that kept its L1 table
 *   (`ept_set_entry` / `p2m_pt_set_entry` never free it when its 4K entries are cleared), 0.
 * - vPCI's `map_range` (xen/drivers/vpci/header.c) checks `general_preempt_check` after each partial
 *   call (a `run` budget of 1 frame preempts after every call).
 * - `dom0_setup_permissions` permits dom0 machine frames below 2^(domain_max_paddr_bits − 12):
 *   `domain_max_paddr_bits` caps a shadow-paging domain at 32 + PAGE_SHIFT = 44 bits.
 * - `hvm_vcpu_cacheattr_init` (xen/arch/x86/hvm/mtrr.c) gives dom0's vCPUs the host's MTRRs; then
 *   `epte_get_entry_emt` combines dom0's (guest) MTRR type with the host's.
 * - `iommu_do_domctl` (xen/drivers/passthrough/iommu.c): EOPNOTSUPP for a domain without an IOMMU
 *   context; domain creation refuses one when the host has no IOMMU.
 */
import { type Report, replayText } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const BOOT = '{"event":"boot"}';
const hexOf = (value: number) => `0x${value.toString(16)}`;
const write = (vcpu: string, sbdf: string, reg: string, size: number, value: string) =>
  `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":"${reg}","size":${size},"value":"${value}"}`;
const run = (vcpu: string, budget: number | undefined, expect: string) =>
  `{"event":"run","vcpu":"${vcpu}",${budget === undefined ? '' : `"budget":${budget},`}"expect":"${expect}"}`;
const maps = (domain: number, gfn: string, count: string, mfn?: string, order?: number) =>
  `{"event":"assert","maps":{"domain":${domain},"gfn":"${gfn}","count":"${count}"${mfn === undefined ? '' : `,"mfn":"${mfn}"`}${order === undefined ? '' : `,"order":${order}`}}}`;

/** Replays `lines`; every assertion must hold and nothing may be a bad line. */
function replayOk(lines: readonly string[]): Report {
  const report = replayText(`${lines.join('\n')}\n`, 'p2m-fidelity.jsonl');
  expect(report.error).toBeNull();
  expect(report.assertions.failures).toEqual([]);
  expect(report.assertions.total).toBeGreaterThan(0);
  return report;
}

/** A 4 MiB prefetchable 64-bit BAR at 4 GiB, decoding off: dom0 moves it to 0xe0000000 and enables it. */
const BIG =
  '{"event":"device","sbdf":"0000:04:00.0","bars":[{"type":"mem64","size":"0x400000","addr":"0x100000000","prefetchable":true}]}';
const MOVE_BIG_AND_ENABLE = [
  write('d0v0', '04:00.0', '0x10', 4, '0xe000000c'),
  write('d0v0', '04:00.0', '0x14', 4, '0x0'),
  write('d0v0', '04:00.0', '0x04', 2, '0x2'),
];

describe.each(['intel', 'amd'] as const)('a 2 MiB region that once held a 4K MMIO entry (%s)', (vendor) => {
  it('is mapped again in 4K leaves, 64 frames a call, so the work is preempted after 64 frames', () => {
    replayOk([
      `{"event":"host","vendor":"${vendor}"}`,
      // A 4 KiB BAR decoding at boot: mapped at 0xe0000 with one 4K leaf (an L1 table there).
      '{"event":"device","sbdf":"0000:03:00.0","command":"0x2","bars":[{"type":"mem32","size":"0x1000","addr":"0xe0000000"}]}',
      BIG,
      BOOT,
      maps(0, '0xe0000', '0x1', '0xe0000', 0),
      write('d0v0', '03:00.0', '0x04', 2, '0x0'),
      run('d0v0', undefined, 'done'),
      maps(0, '0xe0000', '0x1'),
      write('d0v0', '03:00.0', '0x10', 4, '0xf0000000'),
      ...MOVE_BIG_AND_ENABLE,
      // mmio_order says 2M, get_entry says 0 (the L1 table is kept): 4K chunks, 64 in the first call.
      run('d0v0', 1, 'restart'),
      maps(0, '0xe0000', '0x40', '0xe0000', 0),
      maps(0, '0xe0040', '0x1'),
      run('d0v0', undefined, 'done'),
      maps(0, '0xe0000', '0x200', '0xe0000', 0),
      maps(0, '0xe0200', '0x200', '0xe0200', 9),
    ]);
  });

  it('the contrast: a region that never held one is mapped with 2M leaves, both in the first call', () => {
    replayOk([
      `{"event":"host","vendor":"${vendor}"}`,
      BIG,
      BOOT,
      ...MOVE_BIG_AND_ENABLE,
      run('d0v0', 1, 'done'),
      maps(0, '0xe0000', '0x400', '0xe0000', 9),
    ]);
  });
});

describe('HAP off or without 2 MiB leaves: mmio_order gives 4K', () => {
  it.each([
    [
      'shadow paging for dom0 (hardwareHap: false, Xen’s dom0=shadow)',
      '{"event":"host","hardwareHap":false}',
    ],
    ['HAP without 2 MiB leaves (hap2mb: false, Xen’s hap_2mb=0)', '{"event":"host","hap2mb":false}'],
  ])('%s', (_name, host) => {
    replayOk([
      host,
      BIG,
      BOOT,
      ...MOVE_BIG_AND_ENABLE,
      run('d0v0', 1, 'restart'),
      maps(0, '0xe0000', '0x40', '0xe0000', 0),
      maps(0, '0xe0040', '0x1'),
      run('d0v0', undefined, 'done'),
      maps(0, '0xe0000', '0x400', '0xe0000', 0),
    ]);
  });

  it('a guest with shadow paging (domain hap: false) maps its BAR in 4K leaves', () => {
    replayOk([
      '{"event":"host"}',
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x200000","addr":"0x4000000000","prefetchable":true}]}',
      BOOT,
      '{"event":"domain","id":1,"hap":false}',
      '{"event":"assign","sbdf":"03:00.0","domain":1,"expect":"ok"}',
      write('d1v0', '00:00.0', '0x10', 4, '0xe000000c'),
      write('d1v0', '00:00.0', '0x14', 4, '0x0'),
      write('d1v0', '00:00.0', '0x04', 2, '0x2'),
      run('d1v0', undefined, 'done'),
      maps(1, '0xe0000', '0x200', '0x4000000', 0),
    ]);
  });

  it('dom0 under shadow paging may map machine frames below 2^44 only (domain_max_paddr_bits)', () => {
    const bar = (addr: string) =>
      `{"event":"device","sbdf":"0000:03:00.0","command":"0x2","bars":[{"type":"mem64","size":"0x1000","addr":"${addr}"}]}`;
    // With HAP, 48 bits: a BAR at 2^44 is mapped at boot.
    replayOk(['{"event":"host"}', bar('0x100000000000'), BOOT, maps(0, '0x100000000', '0x1', '0x100000000')]);
    // With shadow, 44 bits: map_range refuses it (EPERM), as iomem_access_permitted fails.
    replayOk([
      '{"event":"host","hardwareHap":false}',
      bar('0x100000000000'),
      BOOT,
      maps(0, '0x100000000', '0x1'),
      '{"event":"assert","logged":{"kind":"iomem-denied","domain":0,"start":"0x100000000"}}',
    ]);
  });
});

describe('per-domain IOMMU', () => {
  it('assigning a device to a guest created without one is EOPNOTSUPP (iommu_do_domctl)', () => {
    replayOk([
      '{"event":"host"}',
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"}]}',
      BOOT,
      '{"event":"domain","id":1,"iommu":false}',
      '{"event":"domain","id":2}',
      '{"event":"assign","sbdf":"03:00.0","domain":1,"expect":"EOPNOTSUPP"}',
      '{"event":"assign","sbdf":"03:00.0","domain":2,"expect":"ok"}',
    ]);
  });

  it('a guest asking for an IOMMU the host lacks is a bad line (domain creation fails)', () => {
    const report = replayText('{"event":"host","iommu":false}\n{"event":"domain","id":1,"iommu":true}\n');
    expect(report.error?.line).toBe(2);
    expect(report.error?.message).toMatch(/'domain\.iommu' is true; expected false: the host has no IOMMU/);
  });
});

describe("the hardware domain's MTRRs", () => {
  const host =
    '{"event":"host","mtrr":{"defaultType":"WB","variable":[{"base":"0xd0000000","size":"0x10000000","type":"WC"}]}}';
  const ram = [
    '{"event":"p2m","domain":0,"gfn":"0x1000","mfn":"0x1000","count":1,"type":"ram_rw"}',
    '{"event":"p2m","domain":0,"gfn":"0xd0000","mfn":"0xd0000","count":1,"type":"ram_rw"}',
  ];
  const memoryType = (frame: string, expect: string) =>
    `{"event":"assert","memoryType":{"domain":0,"gfn":"${frame}","pat":"WB","expect":"${expect}","ipat":false}}`;

  it("start as the host's: ordinary RAM WB, the host's WC range WC (hvm_vcpu_cacheattr_init, epte_get_entry_emt)", () => {
    replayOk([host, BOOT, ...ram, memoryType('0x1000', 'WB'), memoryType('0xd0000', 'WC')]);
  });

  it("a host with 10 variable pairs (VCNT 10): dom0's copy has all 10, and no more can be given", () => {
    const ranges = Array.from(
      { length: 10 },
      (_, i) =>
        `{"base":"${hexOf(0x100000000 * (i + 1))}","size":"0x100000000","type":"${i === 9 ? 'WT' : 'WC'}"}`,
    );
    const tenPairs = `{"event":"host","mtrr":{"defaultType":"WB","variable":[${ranges.join(',')}]}}`;
    replayOk([
      tenPairs,
      BOOT,
      '{"event":"p2m","domain":0,"gfn":"0xa00000","mfn":"0xa00000","count":1,"type":"ram_rw"}',
      memoryType('0xa00000', 'WT'),
    ]);
    const eleven = tenPairs.replace(
      '}]}}',
      `}]},"hardwareMtrr":{"variable":[${[...ranges, ranges[0]].join(',')}]}}`,
    );
    const report = replayText(`${eleven}\n`);
    expect(report.error?.message).toMatch(
      /'host\.hardwareMtrr\.variableRanges' .*at most variableCount \(10\)/,
    );
  });

  it('are what hardwareMtrr says when dom0 reprogrammed them (MTRRs off: UC against the host’s WB)', () => {
    const reprogrammed = host.replace('}}', '},"hardwareMtrr":{"enabled":false}}');
    replayOk([reprogrammed, BOOT, ...ram, memoryType('0x1000', 'UC')]);
  });
});

describe('the order of a maps assertion', () => {
  const lines = ['{"event":"host"}', BIG, BOOT, ...MOVE_BIG_AND_ENABLE, run('d0v0', undefined, 'done')];

  it('fails when the leaves have another order, naming both', () => {
    const report = replayText(`${[...lines, maps(0, '0xe0000', '0x400', '0xe0000', 0)].join('\n')}\n`);
    expect(report.assertions.failures).toHaveLength(1);
    expect(JSON.stringify(report.assertions.failures[0])).toMatch(/order 0.*order 9/);
  });

  it.each([
    [
      maps(0, '0xe0000', '0x1', '0xe0000', 5),
      /'assert\.maps\.order' is not a leaf order; expected 0 \(4 KiB\), 9/,
    ],
    [maps(0, '0xe0000', '0x1', undefined, 0), /'assert\.maps\.order' is given without mfn/],
  ])('refuses %s', (line, message) => {
    const report = replayText(`${[...lines, line].join('\n')}\n`);
    expect(report.error?.line).toBe(lines.length + 1);
    expect(report.error?.message).toMatch(message);
  });
});

describe('the examples of docs/trace-format.md for these fields', () => {
  it('replay: the host with hardwareMtrr, hardwareHap, hap2mb and physAddrBits, and a guest without HAP or IOMMU', () => {
    const hostExample =
      '{"event":"host","vendor":"intel","physAddrBits":46,"hardwareHap":false,"hap2mb":false,' +
      '"mtrr":{"defaultType":"WB","variable":[{"base":"0xc0000000","size":"0x40000000","type":"UC"}]},' +
      '"hardwareMtrr":{"enabled":true,"defaultType":"WB","variable":[{"base":"0xc0000000","size":"0x40000000","type":"UC"}]}}';
    const report = replayOk([
      hostExample,
      // Shadow caps dom0 at 44 bits: a BAR at 16 TiB is refused although the host has 46.
      '{"event":"device","sbdf":"0000:03:00.0","command":"0x2","bars":[{"type":"mem64","size":"0x1000","addr":"0x100000000000"}]}',
      BOOT,
      '{"event":"domain","id":2,"hap":false,"iommu":false}',
      maps(0, '0x100000000', '0x1'),
      '{"event":"assert","logged":{"kind":"iomem-denied","domain":0}}',
    ]);
    expect(report.machine?.vendor).toBe('intel');
  });
});
