/**
 * The report's count of Xen's own MMIO work (`xenCost`), against counts derived by hand from Xen's
 * loops: xen/drivers/vpci/header.c `map_range` calls `map_mmio_regions` / `unmap_mmio_regions` on what
 * is left of a range until one returns 0 (done), checking `general_preempt_check()` after each partial
 * return (-ERESTART: a continuation); xen/arch/x86/mm/p2m.c `map_mmio_regions` does at most
 * `MAP_MMIO_MAX_ITER` (64) chunks a call, each chunk one leaf of `mmio_order(d, gfn | mfn, nr)`:
 * 2 MiB (order 9) under HAP when gfn | mfn is 2 MiB aligned and at least 512 frames remain, else 4 KiB;
 * 1 GiB never (its test begins `if ( 0 && …`). `unmap_mmio_regions` chunks the same way.
 */
import { replayText } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const GIB = 2 ** 30;
/** Frames a full map_mmio_regions call of 2 MiB chunks covers: 64 chunks of 512 frames. */
const FRAMES_PER_2M_CALL = 64 * 512;

/** A trace: one device, the given BAR, booted with decoding off, then decoding on by dom0. */
function trace(bar: string, msix: string, more: string[]): string {
  return [
    '{"event":"host"}',
    `{"event":"device","sbdf":"0000:01:00.0","command":"0x0000","bars":[${bar}]${msix}}`,
    '{"event":"boot"}',
    '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":4,"size":2,"value":2}',
    ...more,
  ].join('\n');
}

describe('xenCost: map_mmio_regions / unmap_mmio_regions calls and leaves as Xen chunks them', () => {
  it('a 64 GiB BAR, 2 MiB aligned (map_range, map_mmio_regions, mmio_order): 512 calls of 64 2 MiB leaves', () => {
    // 64 GiB = 2^24 frames; gfn = mfn = 0x4000000 (2 MiB aligned), so every chunk is order 9 and every
    // call but the last returns 64 * 512 frames of progress: 2^24 / 2^15 = 512 calls, 2^24 / 512 =
    // 32,768 leaves. Unmapping (decoding off) walks the same chunks.
    const report = replayText(
      trace(`{"type":"mem64","size":"0x1000000000","addr":"0x4000000000"}`, '', [
        '{"event":"run","vcpu":"d0v0"}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":4,"size":2,"value":0}',
        '{"event":"run","vcpu":"d0v0"}',
      ]),
    );
    const calls = (64 * GIB) / 4096 / FRAMES_PER_2M_CALL;
    expect(calls).toBe(512);
    const cost = { mapMmioRegions: 512, unmapMmioRegions: 512, leaves: { '4K': 0, '2M': 65536, '1G': 0 } };
    expect(report.domains.find((d) => d.id === 0)!.xenCost).toEqual(cost);
    expect(report.devices[0]!.xenCost).toEqual({ ...cost, continuations: 0 });
  });

  it('preempted (general_preempt_check): a budget of 32 calls makes 15 continuations of the 64 GiB map', () => {
    // processPending's budget stands for general_preempt_check: 2^20 frames = 32 calls of 2^15; it
    // is checked after each partial return, so calls 32, 64, … 480 end in -ERESTART and the 16th run
    // finishes (the 512th call returns 0, no check).
    const runs = Array.from({ length: 16 }, (_, i) =>
      JSON.stringify({ event: 'run', vcpu: 'd0v0', budget: 2 ** 20, expect: i < 15 ? 'restart' : 'done' }),
    );
    const report = replayText(
      trace(`{"type":"mem64","size":"0x1000000000","addr":"0x4000000000"}`, '', runs),
    );
    expect(report.assertions).toMatchObject({ total: 16, failed: 0 });
    expect(report.devices[0]!.xenCost).toEqual({
      mapMmioRegions: 512,
      unmapMmioRegions: 0,
      leaves: { '4K': 0, '2M': 32768, '1G': 0 },
      continuations: 15,
    });
  });

  it('a 1 MiB BAR (mmio_order: fewer than 512 frames): 4 calls of 64 4 KiB leaves', () => {
    // 256 frames, nr < 512: order 0 for every chunk; 64 chunks a call: 4 calls, 256 leaves.
    const report = replayText(trace(`{"type":"mem32","size":"0x100000","addr":"0xc0000000"}`, '', []));
    expect(report.devices[0]!.xenCost).toEqual({
      mapMmioRegions: 4,
      unmapMmioRegions: 0,
      leaves: { '4K': 256, '2M': 0, '1G': 0 },
      continuations: 0,
    });
  });

  it('a 2 MiB BAR with its MSI-X table and PBA in the first page (modify_bars removes it): 511 4 KiB leaves in 8 calls', () => {
    // modify_bars takes the MSI-X page out of the BAR's rangeset: map_range gets frames 1 … 511 (511
    // frames, fewer than 512: order 0), 64 chunks a call: 7 calls of 64 and one of 63.
    const report = replayText(
      trace(
        `{"type":"mem64","size":"0x200000","addr":"0x4000000000"}`,
        ',"msix":{"entries":16,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":2048}}',
        [],
      ),
    );
    expect(report.devices[0]!.xenCost).toEqual({
      mapMmioRegions: 8,
      unmapMmioRegions: 0,
      leaves: { '4K': 511, '2M': 0, '1G': 0 },
      continuations: 0,
    });
  });
});
