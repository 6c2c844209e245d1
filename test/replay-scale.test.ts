/**
 * Issue 16's scale target: a replay's cost grows with what a line touches, not with the machine. The
 * work is counted (test/support/work-counter.ts: every block of the packages entered), never timed,
 * over the replay benchmark's workload (packages/replay/bench/writes-workload.ts):
 *
 * - the set-up lines (devices, boot, guests, assignments) of 1,024 devices cost at most 1.5 times per
 *   device what those of 128 cost; with a whole-machine check after every device and assignment
 *   line (as the replayer made) 1,024 devices cost 240 times the blocks of 128 (1,033,538,668
 *   against 4,309,728), and 4,096 devices took two minutes of CPU;
 * - a steady line over 1,024 devices (16 guests) costs at most 1.25 times what the same line costs
 *   over 64 (4 guests): the two machines are planned so that line n over either is the same kind of
 *   work on BARs of the same sizes (`plan`'s `period`), and the lines counted come after one visit to
 *   every device of the larger machine. The searches of the checks' indexes may grow with the log of
 *   what they hold (a binary search of 512 host pages takes a few more steps than one of 32); with a
 *   search of every domain's p2m after each line that moved a host BAR (as the scoped checks made)
 *   the lines over 1,024 devices cost 1.33 times the blocks of those over 64 (2,294,495 against
 *   1,719,268), and more with more guests.
 */
import { TraceReplay } from '@vpci/replay';
import { describe, expect, it } from 'vitest';
import {
  type DevicePlan,
  firstCycle,
  header,
  line,
  plan,
  spacingFor,
  writes,
} from '../packages/replay/bench/writes-workload.js';
import { WorkCounter } from './support/work-counter.js';

function feedAll(replay: TraceReplay, lines: readonly string[]): void {
  for (const text of lines)
    if (!replay.feed(text)) throw new Error(`line ${replay.error?.line}: ${replay.error?.message}`);
}

describe('replay work grows with what a line touches, not with the machine (issue 16)', () => {
  it('set-up lines: 1,024 devices cost per device at most 1.5 times what 128 cost', async () => {
    const counter = new WorkCounter();
    await counter.start();
    try {
      const setUp = async (count: number): Promise<number> => {
        const lines = header(plan(count));
        const replay = new TraceReplay('set-up.jsonl');
        const blocks = await counter.count(() => feedAll(replay, lines));
        expect(replay.end().violations).toEqual([]);
        return blocks;
      };
      const small = await setUp(128);
      const large = await setUp(1024);
      expect(large / 1024, `${large} blocks for 1,024 devices, ${small} for 128`).toBeLessThanOrEqual(
        1.5 * (small / 128),
      );
    } finally {
      await counter.stop();
    }
  }, 600_000);

  it('steady lines: over 1,024 devices at most 1.25 times the work of the same lines over 64', async () => {
    // As the benchmark plans them: the guests' windows clear of the host BARs (`plan`).
    const spacing = { spacing: spacingFor(1024), windowBase: 0xa000_0000 };
    const small = plan(64, spacing);
    const large = plan(1024, { ...spacing, period: 64 });
    const lead = firstCycle(large);
    const counter = new WorkCounter();
    await counter.start();
    try {
      const steady = async (devices: readonly DevicePlan[]): Promise<number> => {
        const lines = [...writes(devices, 2 * lead)].map(line);
        const replay = new TraceReplay('steady.jsonl');
        feedAll(replay, header(devices));
        feedAll(replay, lines.slice(0, lead));
        const blocks = await counter.count(() => feedAll(replay, lines.slice(lead)));
        expect(replay.end().violations).toEqual([]);
        return blocks;
      };
      const work64 = await steady(small);
      const work1024 = await steady(large);
      expect(work1024, `${work1024} blocks over 1,024 devices, ${work64} over 64`).toBeLessThanOrEqual(
        1.25 * work64,
      );
    } finally {
      await counter.stop();
    }
  }, 600_000);
});
