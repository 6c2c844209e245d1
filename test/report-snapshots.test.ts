/**
 * One committed report per example trace: `reportJson` of the replay of examples/<trace>.jsonl must
 * equal test/fixtures/reports/<trace>.json byte for byte, so that any change to what a replay
 * reports shows in review as a diff of these files. The same bytes from every run, in every process,
 * are the determinism invariant (9) too.
 *
 * `UPDATE_SNAPSHOTS=1 npx vitest run test/report-snapshots.test.ts` rewrites them (and writes one for
 * a new trace; delete the snapshot of a removed trace by hand). Read a rewritten snapshot against its
 * trace before committing it.
 *
 * Checked by hand against each trace's assertions and comments when the snapshots were first written:
 * - all: status ok, no failure; `lines` is the trace's line count, `applied` its non-comment lines,
 *   `assertions.total` its assert lines plus its `expect` fields (runs, assigns, reads, populates).
 * - seed-000-xenpci-bar-{amd,intel}: no devices; each guest maps its grant frame (0x23400, 0x23401) at
 *   gfn 0xfb000 as ram_rw, Intel's guest 1 also the plain RAM page 0xfb001 → 0x30000.
 * - seed-001: the guest's BAR at 0xf0000000 maps 0xf0000-0xf0003 → 0xfe000-0xfe003 (4K leaves, four
 *   frames), beside the two special frames 0xf8000-0xf8001 and the RAM page 0xf8002: 7 frames.
 * - seed-002-layout1: page 0xd1924 is a hole of BAR0, 1 and 2 (the MSI-X page); dom0 maps
 *   0xd1800-0xd1923 (BAR5, BAR4, BAR3: 256 + 32 + 4 = 292 frames, 4K leaves, fewer than 512).
 * - seed-002-layout2-hardened: each guest maps only its BAR0 page; BAR2's page 0x7050000 is a
 *   `shared-page` hole with a `subpage-shared` event naming the other guest's device (lines 17, 21).
 * - seed-002-layout2-xsa461: both guests map gfn 0x8000000 → 0x7050000; four expected
 *   `subpage-shared` violations (each guest against the other guest's device and dom0's 01:02.0).
 * - seed-003: guest 1 holds 512 RAM frames from 0x120000 and a note that 0xffe00-0xffe0f were
 *   orphaned; guest 2 is crashed and keeps its 16 framebuffer frames, the 240 frames populated before
 *   the foreign page at 0xfff00, and that page: 257 frames.
 * - seed-004: guest frames 0xe0000-0xe0001 and 0xe0004-0xe00ff → 0xfe000…, 0xe0100 → 0xfd000 (255);
 *   BAR0's holes are the MSI-X table (0xe0002) and PBA (0xe0003) pages; the offset-mismatch event and
 *   the expected, no longer present `rangeset-not-empty` violation are at line 17.
 * - seed-004-arm (written with the host arch): machine arch `arm`, vendor `arm`, guestVpci reason
 *   `arm`, one bridge 0000:00-ff with window [0xfd000000, 0xfeffffff]; guest frames 0xe0000-0xe00ff →
 *   0xfe000… (256 frames, no MSI-X holes, order 0: nr 0x100 is not 2M) and 0xe0100 → 0xfd000; dom0
 *   maps nothing (04:00.0's BAR is outside the window: `bar-invalid-position` at line 16); the
 *   offset-mismatch and the expected `rangeset-not-empty` at line 32; no notes.
 * - x86 traces since `arch`: `arch: x86`, `hostBridges: []`, guestVpci `x86-assumed` (no trace gives
 *   `arch`), and those that assign a device to a guest have the note saying so at that line.
 * - issue18-sriov-{xen,hardened}: 8 VFs 81:10.0-81:17.0 appear at line 13 (vf-added events); guest 1
 *   maps 0xe0000-0xe0001 -> 0xfa000 and 0xe0100-0xe0101 -> 0xfa004, guest 2 0xe0000-0xe0001 -> 0xfa008
 *   and 0xe0200-0xe0201 -> 0xfa00c (4K leaves, MSI-X table and PBA pages as holes), guest 1's VF 0
 *   MSI-X entry 0 at 0xfee00000; dom0 maps nothing at the end. xen: VFs added before VF MSE get their
 *   MSI-X masked (`capability-masked` ENODEV, line 13) and seven expected `rangeset-not-empty`
 *   violations from line 24, those of VFs 0-3 gone by the end; hardened: no violation.
 * - firmware-seed-000{,-intel}: run 2's layout (VGA BAR0 0xf0000000, NIC ROM 0xf1000000 and BAR0
 *   0xf1040000, VGA ROM 0xf1060000 and BAR2 0xf1070000, xenpci BAR1 0xfb000000); dom0 maps the two
 *   16 MiB BARs in 2M leaves and the NIC's and VGA BAR2's frames in 4K leaves (8225 frames), nothing
 *   of the old layout or of the disabled ROMs; guest 1's grant frame at 0xf1000, guest 2's at 0xfb000.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { replayText, reportJson } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const examples = new URL('../examples/', import.meta.url);
const snapshots = new URL('./fixtures/reports/', import.meta.url);
const traces = readdirSync(examples)
  .filter((f) => f.endsWith('.jsonl'))
  .sort();
const update = process.env.UPDATE_SNAPSHOTS === '1';

/** The snapshot file of a trace: its name with `.json` for `.jsonl`. */
const snapshotOf = (trace: string): string => trace.replace(/\.jsonl$/, '.json');

describe('report snapshots', () => {
  it.each(traces)('%s: the report is the committed one, byte for byte', (trace) => {
    const text = readFileSync(new URL(trace, examples), 'utf8');
    const json = reportJson(replayText(text, trace));
    const file = new URL(snapshotOf(trace), snapshots);
    if (update) writeFileSync(file, json);
    expect(json).toBe(readFileSync(file, 'utf8'));
  });

  it('there is a snapshot for every trace and none for a trace that is gone', () => {
    const files = readdirSync(snapshots).filter((f) => f.endsWith('.json'));
    expect(files.sort()).toEqual(traces.map(snapshotOf));
  });
});
