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
          // The keeping replay first, alone: a kept record also needs the machines' count of changes
          // to stand since it was made (state-generation.ts), which a second replay fed line by line
          // beside it would move.
          const keeping = new TraceReplay('t.jsonl');
          const trace = new LockstepTrace([keeping]);
          const at = trace.start(plan, profile);
          setReuse(keeping, 'verify');
          const afterEach: string[] = [];
          for (const c of plan.choices) {
            const text = trace.lineFor(plan, c, at);
            if (text === undefined) continue;
            if (!trace.feed(text)) expect.fail(`${trace.lines.join('\n')}\n${json(keeping.error)}`);
            afterEach.push(json(keeping.replayer.violations));
          }
          const fresh = new TraceReplay('t.jsonl');
          const header = trace.lines.length - afterEach.length;
          for (const [i, text] of trace.lines.entries()) {
            expect(fresh.feed(text), `${text}: ${json(fresh.error)}`).toBe(true);
            if (i === 0) setReuse(fresh, 'off');
            if (i < header) continue;
            const found = json(fresh.replayer.violations);
            if (found !== afterEach[i - header])
              expect.fail(
                `after line ${i + 1}:\n${trace.lines.join('\n')}\nkeeping: ${afterEach[i - header]}\nfresh: ${found}`,
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
          // One replay after the other (as in the lockstep case): the keeping one alone.
          const keeping = new TraceReplay('t.jsonl');
          const afterEach: (string | undefined)[] = [];
          for (const [i, text] of lines.entries()) {
            const fed = keeping.feed(text);
            afterEach.push(fed ? json(keeping.replayer.violations) : undefined);
            if (!fed) break;
            if (i === 0 && keeping.replayer.machine !== undefined) setReuse(keeping, 'verify');
          }
          const fresh = new TraceReplay('t.jsonl');
          for (const [i, text] of lines.entries()) {
            if (i >= afterEach.length) break;
            const fed = fresh.feed(text);
            expect(fed, `${text}: ${json(keeping.error)} ${json(fresh.error)}`).toBe(
              afterEach[i] !== undefined,
            );
            if (!fed) break;
            if (i === 0 && fresh.replayer.machine !== undefined) setReuse(fresh, 'off');
            const found = json(fresh.replayer.violations);
            if (found !== afterEach[i])
              expect.fail(
                `after line ${i + 1}:\n${lines.join('\n')}\nkeeping: ${afterEach[i]}\nfresh: ${found}`,
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

  it('a write made on the machine between two lines, not through the replay, has the next line record afresh', () => {
    const planned = plan(8);
    const replay = new TraceReplay('bench.jsonl');
    for (const text of header(planned)) expect(replay.feed(text)).toBe(true);
    setReuse(replay, 'verify');
    const machine = replay.replayer.machine!;
    const all = [...writes(planned, 3000)];
    let poked = 0;
    for (const [i, w] of all.entries()) {
      expect(replay.feed(line(w)), replay.error?.message).toBe(true);
      const next = all[i + 1];
      // The hardware domain's BAR line followed by another on the same device (the next line would
      // keep this one's record): the same register written again with the same value directly on
      // the machine, which counts as a BAR register write (what the record holds) and nothing else.
      if (
        w.device.owner === 0 &&
        w.reg >= 0x10 &&
        w.reg <= 0x24 &&
        next?.device === w.device &&
        next.reg >= 0x10 &&
        next.reg <= 0x24
      ) {
        machine.configWrite(machine.vcpu(0, 0), w.device.address, w.reg, w.size, w.value);
        poked++;
      }
    }
    // In verify mode a kept record that differs from a fresh one throws: none was kept after a poke.
    expect(poked).toBeGreaterThan(10);
    expect(replay.replayer.violations).toEqual([]);
  });
});
