/**
 * The replayer keeps what a line's check recorded of a device as the next checked line's snapshot of
 * it (`DeviceSnapshot.takeAgain`), when that line snapshots the same device in the same place and
 * only inert writes came between. Held here in `verify` mode (`InvariantCaches.snapshotReuse`: every
 * kept record is compared with one made afresh, and a difference throws) over the lockstep traces
 * and the replay property's traces, both profiles, with the same violations as a replay that never
 * keeps one, after every line; and on the bench's workload, where a reprogramming's lines must keep it.
 */
import { TraceReplay } from '@vpci/replay';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { header, line, plan, writes } from '../packages/replay/bench/writes-workload.js';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';
import { randomTraces } from './support/random-traces.js';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/** Sets how `replay`'s machine keeps snapshots (once the machine is made: after the first line). */
function setReuse(replay: TraceReplay, reuse: 'on' | 'off' | 'verify'): void {
  replay.replayer.machine!.invariantCaches.snapshotReuse = reuse;
}

function reuses(replay: TraceReplay): number {
  return replay.replayer.machine?.invariantCaches.snapshotReuses ?? 0;
}

describe('snapshots kept from the last check against snapshots taken afresh, line by line', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: lockstep traces, every kept record verified, the same violations`, () => {
      let kept = 0;
      fc.assert(
        fc.property(lockstepPlan(80), (plan) => {
          const keeping = new TraceReplay('t.jsonl');
          const fresh = new TraceReplay('t.jsonl');
          const trace = new LockstepTrace([keeping, fresh]);
          const at = trace.start(plan, profile);
          setReuse(keeping, 'verify');
          setReuse(fresh, 'off');
          for (const c of plan.choices) {
            const text = trace.lineFor(plan, c, at);
            if (text === undefined) continue;
            const fed = trace.feed(text);
            const found = json(keeping.replayer.violations);
            if (!fed || found !== json(fresh.replayer.violations))
              expect.fail(
                `after line ${trace.lines.length}:\n${trace.lines.join('\n')}\nkeeping: ${found} ${json(keeping.error)}\nfresh: ${json(fresh.replayer.violations)} ${json(fresh.error)}`,
              );
          }
          expect(reuses(fresh)).toBe(0);
          kept += reuses(keeping);
        }),
        runs(150),
      );
      expect(kept).toBeGreaterThan(0);
    });

    it(`${profile}: the replay property's traces, every kept record verified, the same violations`, () => {
      let kept = 0;
      fc.assert(
        fc.property(randomTraces({ profile }), ({ lines }) => {
          const keeping = new TraceReplay('t.jsonl');
          const fresh = new TraceReplay('t.jsonl');
          for (const [i, text] of lines.entries()) {
            const fed = keeping.feed(text);
            expect(fresh.feed(text), `${text}: ${json(keeping.error)} ${json(fresh.error)}`).toBe(fed);
            if (!fed) break;
            if (i === 0 && keeping.replayer.machine !== undefined) {
              setReuse(keeping, 'verify');
              setReuse(fresh, 'off');
            }
            const found = json(keeping.replayer.violations);
            if (found !== json(fresh.replayer.violations))
              expect.fail(
                `after line ${i + 1}:\n${lines.join('\n')}\nkeeping: ${found}\nfresh: ${json(fresh.replayer.violations)}`,
              );
          }
          kept += reuses(keeping);
        }),
        runs(100),
      );
      expect(kept).toBeGreaterThan(0);
    });
  }

  it("the bench's workload: a reprogramming's lines keep the record, each verified", () => {
    const planned = plan(8);
    const replay = new TraceReplay('bench.jsonl');
    for (const text of header(planned)) expect(replay.feed(text)).toBe(true);
    setReuse(replay, 'verify');
    let barLines = 0;
    for (const w of writes(planned, 6000)) {
      expect(replay.feed(line(w)), replay.error?.message).toBe(true);
      if (w.reg >= 0x10 && w.reg <= 0x24) barLines++;
    }
    // Of a reprogramming's six BAR lines, all but the one after the line that finished the unmap.
    expect(reuses(replay)).toBeGreaterThan((barLines * 4) / 6);
    expect(replay.replayer.violations).toEqual([]);
  });
});
