/**
 * The report's count of Xen's own MMIO work (`xenCost`), against counts derived by hand from Xen's
 * loops: xen/drivers/vpci/header.c `map_range` calls `map_mmio_regions` / `unmap_mmio_regions` on what
 * is left of a range until one returns 0 (done), checking `general_preempt_check()` after each partial
 * return (-ERESTART: a continuation); xen/arch/x86/mm/p2m.c `map_mmio_regions` does at most
 * `MAP_MMIO_MAX_ITER` (64) chunks a call, each chunk one leaf of `mmio_order(d, gfn | mfn, nr)`:
 * 2 MiB (order 9) under HAP when gfn | mfn is 2 MiB aligned and at least 512 frames remain, else 4 KiB;
 * 1 GiB never (its test begins `if ( 0 && …`). `unmap_mmio_regions` chunks the same way.
 */
import { renderHtml, replayText, textReport } from '@vpci/replay';
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

// The MMIO counts only (toMatchObject): the rangeset counts of these traces are in the next block.
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
    expect(report.domains.find((d) => d.id === 0)!.xenCost).toMatchObject(cost);
    expect(report.devices[0]!.xenCost).toMatchObject({ ...cost, continuations: 0 });
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
    expect(report.devices[0]!.xenCost).toMatchObject({
      mapMmioRegions: 512,
      unmapMmioRegions: 0,
      leaves: { '4K': 0, '2M': 32768, '1G': 0 },
      continuations: 15,
    });
  });

  it('a 1 MiB BAR (mmio_order: fewer than 512 frames): 4 calls of 64 4 KiB leaves', () => {
    // 256 frames, nr < 512: order 0 for every chunk; 64 chunks a call: 4 calls, 256 leaves.
    const report = replayText(trace(`{"type":"mem32","size":"0x100000","addr":"0xc0000000"}`, '', []));
    expect(report.devices[0]!.xenCost).toMatchObject({
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
    expect(report.devices[0]!.xenCost).toMatchObject({
      mapMmioRegions: 8,
      unmapMmioRegions: 0,
      leaves: { '4K': 511, '2M': 0, '1G': 0 },
      continuations: 0,
    });
  });
});

/**
 * `xenCost.rangesets`: Xen's calls on vPCI's BAR rangesets, derived by hand from
 * xen/drivers/vpci/header.c (`vpci_init_header`, `bar_add_rangeset`, `modify_bars`,
 * `vpci_process_pending`, `map_range`), xen/drivers/vpci/vpci.c (`vpci_deassign_device`),
 * xen/arch/x86/pci.c (`pci_sanitize_bar_memory`) and xen/common/rangeset.c
 * (`rangeset_consume_ranges`). Facts the derivations use:
 * - `vpci_init_header` calls `bar_add_rangeset` (one `rangeset_new`) for every slot whose register
 *   reads as memory, before sizing it: a slot that sizes to 0 (no BAR: reads 0, a 32-bit memory
 *   type) keeps its set as `VPCI_BAR_EMPTY`; the upper half of a 64-bit BAR and I/O BARs get none;
 *   the ROM gets one only for the hardware domain and only if it has a size.
 * - `modify_bars` step 1 skips slots without a set, and slots that are not `MAPPABLE_BAR` (EMPTY);
 *   for each BAR it changes: one `rangeset_add_range`, one `rangeset_remove_range` per lower slot
 *   with a non-empty set, then `pci_sanitize_bar_memory`: one `rangeset_remove_range` per e820 entry
 *   with a size, whether or not it touches the BAR.
 * - Its overlap loop: for every enabled BAR of every other device of the domain (and of dom_xen for
 *   the hardware domain), `rangeset_overlaps_range` on all 7 slots (`ARRAY_SIZE(header->bars)`), and a
 *   `rangeset_remove_range` where it overlaps.
 * - `vpci_process_pending`: one `rangeset_consume_ranges` per non-empty set (every call, so again
 *   after each -ERESTART); a range is used up when `map_range` consumed all of it; on failure,
 *   `rangeset_purge` of each set still non-empty.
 * - `vpci_deassign_device`: `rangeset_destroy` on the 7 slots; a slot without a set returns at once
 *   (not counted).
 */
describe('xenCost.rangesets: rangeset calls as xen/drivers/vpci/header.c makes them', () => {
  const zero = {
    new: 0,
    addRange: 0,
    removeRange: 0,
    overlapsRange: 0,
    consumeRanges: 0,
    rangesConsumed: 0,
    purge: 0,
    destroy: 0,
  };

  it('pci_sanitize_bar_memory removes every e820 entry, one call each, even two adjacent ones', () => {
    // vpci_init_header: slot 0 is a 64-bit BAR (rangeset_new), slot 1 its upper half (none), slots
    // 2–5 read 0 and get a set each before sizing to 0: 5 rangeset_new; no ROM. modify_bars (decoding
    // on): slot 0 changes: rangeset_add_range; no lower slot; pci_sanitize_bar_memory: 2 e820 entries,
    // 2 rangeset_remove_range (Xen walks the entries; the engine's merged map has one range here). No
    // MSI-X; the overlap loop meets no other device (itself is skipped, dom_xen has none).
    // vpci_process_pending: one rangeset_consume_ranges on slot 0; map_range maps its one range of 512
    // frames whole (one map_mmio_regions call of one 2 MiB chunk): 1 range consumed.
    const report = replayText(
      [
        '{"event":"host","e820":[{"addr":"0x0","size":"0x9f000","type":"ram"},{"addr":"0x9f000","size":"0x61000","type":"reserved"}]}',
        '{"event":"device","sbdf":"0000:01:00.0","command":"0x0000","bars":[{"type":"mem64","size":"0x200000","addr":"0x4000000000"}]}',
        '{"event":"boot"}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":4,"size":2,"value":2}',
        '{"event":"run","vcpu":"d0v0","expect":"done"}',
      ].join('\n'),
    );
    const ops = { ...zero, new: 5, addRange: 1, removeRange: 2, consumeRanges: 1, rangesConsumed: 1 };
    expect(report.devices[0]!.xenCost.rangesets).toEqual(ops);
    expect(report.domains.find((d) => d.id === 0)!.xenCost.rangesets).toEqual(ops);
  });

  it('modify_bars: a BAR sharing a page with a lower one, and an enabled BAR of another device (overlap loop)', () => {
    // Three 256-byte BARs in guest frame 0xc0000: A's BAR0, B's BAR0 and BAR1. vpci_init_header: A
    // and B each have 6 memory slots (BAR0, and BAR1 … BAR5 or BAR2 … BAR5 sized to 0): 6 rangeset_new
    // each. No e820, so pci_sanitize_bar_memory removes nothing.
    // A on: rangeset_add_range (BAR0); the overlap loop meets B, whose BARs are not enabled; one
    // rangeset_consume_ranges, its one range used up.
    // B on: BAR0: rangeset_add_range; BAR1: rangeset_add_range and rangeset_remove_range from BAR0's
    // set (lower, non-empty), which empties it. Overlap loop: A's enabled BAR0: rangeset_overlaps_range
    // on B's 7 slots; BAR1's set overlaps: rangeset_remove_range, which empties it. Every set is empty:
    // vpci_process_pending makes no rangeset_consume_ranges call.
    const report = replayText(
      [
        '{"event":"host"}',
        '{"event":"device","sbdf":"0000:01:00.0","command":"0x0000","bars":[{"type":"mem32","size":"0x100","addr":"0xc0000000"}]}',
        '{"event":"device","sbdf":"0000:02:00.0","command":"0x0000","bars":[{"type":"mem32","size":"0x100","addr":"0xc0000100"},{"type":"mem32","size":"0x100","addr":"0xc0000200"}]}',
        '{"event":"boot"}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":4,"size":2,"value":2}',
        '{"event":"run","vcpu":"d0v0","expect":"done"}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:02:00.0","reg":4,"size":2,"value":2}',
        '{"event":"run","vcpu":"d0v0","expect":"done"}',
      ].join('\n'),
    );
    const a = { ...zero, new: 6, addRange: 1, consumeRanges: 1, rangesConsumed: 1 };
    const b = { ...zero, new: 6, addRange: 2, removeRange: 2, overlapsRange: 7 };
    const [deviceA, deviceB] = report.devices;
    expect(deviceA!.xenCost.rangesets).toEqual(a);
    expect(deviceB!.xenCost.rangesets).toEqual(b);
    expect(report.domains.find((d) => d.id === 0)!.xenCost.rangesets).toEqual({
      ...zero,
      new: 12,
      addRange: 3,
      removeRange: 2,
      overlapsRange: 7,
      consumeRanges: 1,
      rangesConsumed: 1,
    });
  });

  it('modify_bars: the MSI-X table and PBA page taken out of the BAR set (one removal per structure)', () => {
    // One 64-bit 2 MiB BAR (5 rangeset_new, as in the first case), table and PBA both in its first
    // page. modify_bars: rangeset_add_range; no e820; the MSI-X loop runs for the table and the PBA,
    // each a rangeset_remove_range on the one non-empty set (the second removes nothing more). The
    // set is then one range, frames 1 … 511: one rangeset_consume_ranges, map_range maps it in 8
    // map_mmio_regions calls without preemption and uses it up.
    const report = replayText(
      trace(
        `{"type":"mem64","size":"0x200000","addr":"0x4000000000"}`,
        ',"msix":{"entries":16,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":2048}}',
        ['{"event":"run","vcpu":"d0v0","expect":"done"}'],
      ),
    );
    expect(report.devices[0]!.xenCost.rangesets).toEqual({
      ...zero,
      new: 5,
      addRange: 1,
      removeRange: 2,
      consumeRanges: 1,
      rangesConsumed: 1,
    });
  });

  it('vpci_process_pending calls rangeset_consume_ranges again after each -ERESTART: 16 calls, 1 range', () => {
    // The 64 GiB map preempted 15 times (above): each of the 16 vpci_process_pending calls finds slot
    // 0's set non-empty and calls rangeset_consume_ranges once; map_range returns -ERESTART with the
    // range partly consumed (it stays) 15 times, and the 16th call uses it up.
    const runs = Array.from({ length: 16 }, (_, i) =>
      JSON.stringify({ event: 'run', vcpu: 'd0v0', budget: 2 ** 20, expect: i < 15 ? 'restart' : 'done' }),
    );
    const report = replayText(
      trace(`{"type":"mem64","size":"0x1000000000","addr":"0x4000000000"}`, '', runs),
    );
    expect(report.assertions).toMatchObject({ total: 16, failed: 0 });
    expect(report.devices[0]!.xenCost.rangesets).toEqual({
      ...zero,
      new: 5,
      addRange: 1,
      consumeRanges: 16,
      rangesConsumed: 1,
    });
  });

  it('vpci_deassign_device destroys the sets, vpci_process_pending purges them after a failed map (per domain)', () => {
    // dom0's vpci_init_header: a 32-bit BAR in slot 0 and slots 1–5 sized to 0: 6 rangeset_new.
    // assign to d1: vpci_deassign_device on dom0 destroys the 6 sets; vpci_init_header for d1 makes 6
    // again (a guest has no ROM set). d1 may not map the BAR's first frame. Decoding on: modify_bars
    // adds slot 0's range (no e820; the overlap loop meets no other device of d1, and d1 is not the
    // hardware domain). vpci_process_pending: rangeset_consume_ranges; map_range is refused
    // (iomem_access_permitted, -EPERM) with nothing consumed, so the range stays and is purged.
    const report = replayText(
      [
        '{"event":"host"}',
        '{"event":"device","sbdf":"0000:03:00.0","command":"0x0000","bars":[{"type":"mem32","size":"0x2000","addr":"0xc0000000"}]}',
        '{"event":"boot"}',
        '{"event":"domain","id":1}',
        '{"event":"assign","sbdf":"0000:03:00.0","domain":1,"expect":"ok"}',
        '{"event":"iomem","domain":1,"permit":false,"first":"0xc0000","last":"0xc0000"}',
        '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":4,"size":2,"value":2}',
        '{"event":"run","vcpu":"d1v0","expect":"failed"}',
      ].join('\n'),
    );
    const domain = (id: number) => report.domains.find((d) => d.id === id)!.xenCost.rangesets;
    expect(domain(0)).toEqual({ ...zero, new: 6, destroy: 6 });
    expect(domain(1)).toEqual({ ...zero, new: 6, addRange: 1, consumeRanges: 1, purge: 1 });
    expect(report.devices[0]!.xenCost.rangesets).toEqual({
      ...zero,
      new: 12,
      addRange: 1,
      consumeRanges: 1,
      purge: 1,
      destroy: 6,
    });
  });

  it('the text report and the HTML page show the counts; a report written before them renders as before', () => {
    // The second case's device A: 6 rangeset_new, 1 rangeset_add_range, 1 rangeset_consume_ranges
    // using up its range (derived there).
    const report = replayText(
      [
        '{"event":"host"}',
        '{"event":"device","sbdf":"0000:01:00.0","command":"0x0000","bars":[{"type":"mem32","size":"0x100","addr":"0xc0000000"}]}',
        '{"event":"boot"}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":4,"size":2,"value":2}',
        '{"event":"run","vcpu":"d0v0","expect":"done"}',
      ].join('\n'),
    );
    const line =
      "Xen's rangeset work: 6 rangeset_new, 1 rangeset_add_range, 0 rangeset_remove_range, " +
      '0 rangeset_overlaps_range, 1 rangeset_consume_ranges (1 range consumed), 0 rangeset_purge, ' +
      '0 rangeset_destroy';
    const text = textReport(report);
    expect(text).toContain(`  ${line}`); // the domain's
    expect(text).toContain(`    ${line}`); // the device's
    expect(renderHtml(report)).toContain(`; rangesets: ${line.slice("Xen's rangeset work: ".length)}`);
    const before = {
      ...report,
      domains: report.domains.map(({ xenCost: { rangesets: _, ...cost }, ...d }) => ({
        ...d,
        xenCost: cost,
      })),
      devices: report.devices.map(({ xenCost: { rangesets: _, ...cost }, ...d }) => ({
        ...d,
        xenCost: cost,
      })),
    };
    expect(textReport(before)).not.toContain('rangeset');
    expect(renderHtml(before)).not.toContain('rangesets:');
  });
});
