/**
 * Extremes that must finish in seconds: the engine's work is bounded by extents and by Xen's calls,
 * never by frames or 2 MiB leaves, and what Xen refuses beyond the address width is refused as Xen
 * does. Each trace is replayed through `vpci-replay` and its exit status checked; the `assert` lines
 * and `expect` fields in the traces say what got mapped or refused, and a trace whose assertions all
 * hold exits 0 (1 when one fails).
 *
 * Where the numbers come from (Xen's source):
 * - `map_mmio_regions` handles at most MAP_MMIO_MAX_ITER (64) chunks per call, each of `mmio_order`:
 *   2M when gfn | mfn is 2M-aligned and 512 frames remain. A 2M-aligned BAR is mapped 64 × 512 =
 *   0x8000 frames per call; `map_range` runs `general_preempt_check` after each partial call (a `run`
 *   budget of N frames preempts after the call that reaches N).
 * - The p2m has 4-level tables (`ept_p2m_init`: `ept->wl = 3`; p2m-pt walks L4 to L1), so guest
 *   frames below 2^36 (addresses below 2^48). `ept_set_entry` returns -EINVAL for a gfn with
 *   `gfn >> ((ept->wl + 1) * EPT_TABLE_ORDER)` non-zero; `p2m_pt_set_entry` (AMD NPT) returns -ENOENT
 *   from `p2m_next_level` when `p2m_find_entry` finds the L4 index past 512.
 * - The hardware domain may map machine frames below 2^(min(hap_paddr_bits, 48) - 12):
 *   `dom0_setup_permissions` permits `[0, PFN_DOWN(1UL << domain_max_paddr_bits(d)) - 1]`, and
 *   `map_range` refuses a range not wholly permitted with -EPERM before calling the p2m. So for the
 *   hardware domain a BAR beyond the width fails with EPERM; for a guest (whose machine frames the
 *   toolstack permits) with the p2m's EINVAL/ENOENT.
 * - A failed deferred map (`vpci_process_pending`): decoding off, every rangeset purged, the domain
 *   crashed unless it is the hardware domain. A failed map while building dom0 (`apply_map`, called
 *   from `vpci_init_header` through `modify_bars`): `modify_decoding` is skipped, so decoding stays
 *   off (`vpci_init_header` turned it off before sizing), and the error fails the device's set-up.
 * - `p2m_add_page` (populate) returns `p2m_set_entry`'s error: the frames before 2^36 are populated.
 */
import { describe, expect, it } from 'vitest';
import { cli, scratchDirectory, writeTrace } from './support/cli.js';

const dir = scratchDirectory('vpci-bounded-work-');

const HOST = '{"event":"host"}';
const BOOT = '{"event":"boot"}';
const WRITE = (vcpu: string, sbdf: string, reg: string, size: number, value: string) =>
  `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":"${reg}","size":${size},"value":"${value}"}`;
const RUN = (vcpu: string, budget: number | undefined, expect: string) =>
  `{"event":"run","vcpu":"${vcpu}",${budget === undefined ? '' : `"budget":${budget},`}"expect":"${expect}"}`;
const MAPS = (domain: number, gfn: string, count: string, mfn?: string) =>
  `{"event":"assert","maps":{"domain":${domain},"gfn":"${gfn}","count":"${count}"${mfn === undefined ? '' : `,"mfn":"${mfn}"`}}}`;
const LOGGED = (fields: string) => `{"event":"assert","logged":{${fields}}}`;

/** A device whose one BAR is a prefetchable 64-bit BAR of `size` bytes at `addr`, decoding on. */
const BIG_BAR = (size: string, addr: string) =>
  `{"event":"device","sbdf":"0000:03:00.0","command":"0x2","bars":[{"type":"mem64","size":"${size}","addr":"${addr}","prefetchable":true}]}`;

interface Case {
  readonly name: string;
  readonly trace: readonly string[];
  readonly status: 0 | 1;
  /** What the report must say. */
  readonly says?: RegExp;
}

const cases: Case[] = [
  {
    // 2^28 frames below 2^36: mapped, 8192 calls of 64 2M chunks.
    name: 'a 2^40-byte BAR decoding at boot is mapped',
    trace: [
      HOST,
      BIG_BAR('0x10000000000', '0x100000000000'),
      BOOT,
      MAPS(0, '0x100000000', '0x10000000', '0x100000000'),
    ],
    status: 0,
  },
  {
    // 2^28 frames in 4K leaves (hap_2mb=0): 2^22 calls of 64 chunks at boot (2^28 leaves), and as
    // many again when the reset maps the decoding BAR over its own mapping, where every chunk finds
    // its own entry (`set_typed_p2m_entry` returns 0 without a write). Chunk by chunk (before branch
    // `remap`) this took about 140 s.
    name: 'a 2^40-byte BAR in 4K leaves is mapped again over itself by a reset',
    trace: [
      '{"event":"host","hap2mb":false}',
      BIG_BAR('0x10000000000', '0x100000000000'),
      BOOT,
      '{"event":"reset","sbdf":"0000:03:00.0","type":"flr","expect":"ok"}',
      MAPS(0, '0x100000000', '0x10000000', '0x100000000'),
    ],
    status: 0,
    says: /8388608 map_mmio_regions, 0 unmap_mmio_regions, leaves 536870912 × 4K, 0 × 2M/,
  },
  {
    // Frames 2^35 … 2^36 - 1: the last ones the 4-level tables hold; 2^20 calls.
    name: 'a 2^47-byte BAR decoding at boot, up to the end of the address width, is mapped',
    trace: [
      HOST,
      BIG_BAR('0x800000000000', '0x800000000000'),
      BOOT,
      MAPS(0, '0x800000000', '0x800000000', '0x800000000'),
    ],
    status: 0,
  },
  {
    // Frames from 2^51: beyond dom0's iomem permission (2^36 frames), so map_range refuses the
    // range (EPERM) and nothing reaches the p2m; the boot-time map fails, decoding stays off.
    name: 'a 2^63-byte BAR decoding at boot, beyond the address width, fails to map (EPERM)',
    trace: [
      HOST,
      BIG_BAR('0x8000000000000000', '0x8000000000000000'),
      BOOT,
      LOGGED('"kind":"iomem-denied","domain":0,"start":"0x8000000000000","end":"0xfffffffffffff"'),
      MAPS(0, '0x8000000000000', '0x8000000000000'),
      '{"event":"read","vcpu":"d0v0","sbdf":"03:00.0","reg":"0x04","size":2,"expect":"0x0"}',
    ],
    status: 0,
  },
  {
    // The frames below 2^36 are populated in one extent; the first beyond fails with EINVAL.
    name: 'populating 2^40 frames populates up to the address width, then fails (EINVAL)',
    trace: [
      HOST,
      '{"event":"domain","id":1}',
      '{"event":"populate","domain":1,"gfn":"0x0","count":"0x10000000000","mfn":"0x0","expect":"EINVAL"}',
      MAPS(1, '0x0', '0x1000000000', '0x0'),
      MAPS(1, '0x1000000000', '0x1000'),
    ],
    status: 0,
  },
  {
    name: 'asserting a map of 2^40 frames over an empty p2m fails, at once',
    trace: [
      HOST,
      '{"event":"domain","id":1}',
      '{"event":"assert","maps":{"domain":1,"gfn":"0x0","count":"0x10000000000","mfn":"0x0"}}',
    ],
    status: 1,
    says: /FAILED maps d1 gfn 0x0 \+1099511627776: expected mfn 0x0, got gfn 0x0: no frame/,
  },
  {
    // 2^28 frames, 0x8000 a call: a budget of 1 frame preempts after one call, one of 0x10000 after
    // two; the unmap the same way.
    name: 'a 1 TiB BAR turned on and off by dom0, preempted every 64 chunks',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x10000000000","addr":"0x100000000000","prefetchable":true}]}',
      BOOT,
      WRITE('d0v0', '03:00.0', '0x04', 2, '0x2'),
      RUN('d0v0', 1, 'restart'),
      MAPS(0, '0x100000000', '0x8000', '0x100000000'),
      MAPS(0, '0x100008000', '0x1'),
      RUN('d0v0', 0x10000, 'restart'),
      MAPS(0, '0x100000000', '0x18000', '0x100000000'),
      MAPS(0, '0x100018000', '0x1'),
      RUN('d0v0', undefined, 'done'),
      MAPS(0, '0x100000000', '0x10000000', '0x100000000'),
      WRITE('d0v0', '03:00.0', '0x04', 2, '0x0'),
      RUN('d0v0', 1, 'restart'),
      MAPS(0, '0x100000000', '0x8000'),
      MAPS(0, '0x100008000', '0xfff8000', '0x100008000'),
      RUN('d0v0', undefined, 'done'),
      MAPS(0, '0x100000000', '0x10000000'),
      '{"event":"assert","noViolations":true}',
    ],
    status: 0,
  },
  {
    // ReBAR control: size field 29 selects 2^(29 + 20) bytes; resizing clears the address bits below
    // the new size (pci_size_mem_bar), so the BAR sits at 0 and covers frames 0 … 2^37 - 1, past dom0's
    // permission: map_range refuses it (EPERM), decoding goes off, dom0 is not crashed.
    name: 'a ReBAR resize to 2^49 bytes, then decoding on, fails to map (EPERM)',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x100000","addr":"0x200000000000"}],"rebar":[{"bar":0,"sizes":["0x100000","0x2000000000000"]}]}',
      BOOT,
      WRITE('d0v0', '03:00.0', '0x108', 4, '0x1d00'),
      '{"event":"assert","bar":{"sbdf":"0000:03:00.0","index":0,"addr":"0x0","size":"0x2000000000000"}}',
      WRITE('d0v0', '03:00.0', '0x04', 2, '0x2'),
      RUN('d0v0', undefined, 'failed'),
      LOGGED('"kind":"iomem-denied","domain":0,"start":"0x0","end":"0x1fffffffff"'),
      LOGGED('"kind":"map-failed","domain":0,"code":"EPERM","crashed":false'),
      MAPS(0, '0x0', '0x2000000000'),
      '{"event":"read","vcpu":"d0v0","sbdf":"03:00.0","reg":"0x04","size":2,"expect":"0x0"}',
      '{"event":"assert","crashed":{"domain":0,"expect":false}}',
    ],
    status: 0,
  },
  ...(['xen', 'hardened'] as const).map(
    (profile): Case => ({
      // A guest places a 2^52-byte BAR at 0: guest frames 0 … 2^40 - 1. The toolstack permits the
      // machine frames, so map_range hands the whole range to the p2m, which maps the 2^36 frames
      // its tables hold (2^21 calls of 64 2M chunks) and fails at 2^36 with EINVAL; the guest
      // is crashed. Xen leaves those frames mapped (F8, declared); hardened's rollback unmaps them.
      name: `a 2^52-byte guest BAR mapped up to the tables' end, then ${profile === 'xen' ? 'left mapped (xen)' : 'unmapped by the rollback (hardened)'}`,
      trace: [
        `{"event":"host","profile":"${profile}","physAddrBits":52}`,
        '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x10000000000000","addr":"0x10000000000000","prefetchable":true}]}',
        BOOT,
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"03:00.0","domain":1,"expect":"ok"}',
        WRITE('d1v0', '00:00.0', '0x10', 4, '0x0'),
        WRITE('d1v0', '00:00.0', '0x14', 4, '0x0'),
        WRITE('d1v0', '00:00.0', '0x04', 2, '0x2'),
        RUN('d1v0', undefined, 'failed'),
        LOGGED('"kind":"map-failed","domain":1,"gfn":"0x1000000000","code":"EINVAL","crashed":true'),
        profile === 'xen' ? MAPS(1, '0x0', '0x1000000000', '0x10000000000') : MAPS(1, '0x0', '0x1000000000'),
        ...(profile === 'xen'
          ? ['{"event":"assert","violation":{"kind":"unexplained-mapping","domain":1}}']
          : []),
        '{"event":"assert","crashed":{"domain":1}}',
      ],
      status: 0,
    }),
  ),
  ...(['intel', 'amd'] as const).map(
    (vendor): Case => ({
      // The guest sizes its 64-bit BAR (all ones: guest address 2^64 - 2^20, gfn 2^52 - 256) and turns
      // decoding on: the host frames are permitted, the guest frames are past the tables' reach.
      name: `a guest BAR left at its sizing value, decoding on (${vendor}): ${vendor === 'intel' ? 'EINVAL' : 'ENOENT'}, the guest crashed`,
      trace: [
        `{"event":"host","vendor":"${vendor}"}`,
        '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x100000","addr":"0x4000000000"}]}',
        BOOT,
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"03:00.0","domain":1,"expect":"ok"}',
        WRITE('d1v0', '00:00.0', '0x10', 4, '0xffffffff'),
        WRITE('d1v0', '00:00.0', '0x14', 4, '0xffffffff'),
        WRITE('d1v0', '00:00.0', '0x04', 2, '0x2'),
        RUN('d1v0', undefined, 'failed'),
        LOGGED(
          `"kind":"map-failed","domain":1,"gfn":"0xfffffffffff00","code":"${vendor === 'intel' ? 'EINVAL' : 'ENOENT'}","crashed":true`,
        ),
        MAPS(1, '0xfffffffffff00', '0x100'),
        '{"event":"assert","crashed":{"domain":1}}',
      ],
      status: 0,
    }),
  ),
];

describe('vpci-replay bounds its work by extents and refuses what Xen refuses', () => {
  it.each(cases)(
    '$name',
    async ({ name, trace, status, says }) => {
      const path = writeTrace(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.jsonl`, trace);
      const run = await cli([path]);
      expect(run.stderr).toBe('');
      expect(run.status, run.stdout).toBe(status);
      if (says !== undefined) expect(run.stdout).toMatch(says);
    },
    30_000,
  );
});
