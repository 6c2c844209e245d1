/**
 * A compact write line's key keeps the vCPU and device its write reached (write-target.ts) while
 * the machine's `accessTargetsVersion` stands, and forgets them when its slot takes another key.
 * Each case replays its trace from bytes (`feedLine`, the CLI's way: targets kept in the keys' slots)
 * and as text (`replayText`: each line looked up afresh, the reference) and wants the same report,
 * after a change that takes the kept device away, or a key that takes the slot.
 */
import { describe, expect, it } from 'vitest';
import { reportJson } from './report.js';
import { replayText, TraceReplay } from './run.js';

const HOST = '{"event":"host","profile":"xen"}';
/** A device; `readOnly` ones have no vPCI and each write to one is an event naming it. */
const device = (sbdf: string, bar: number, readOnly = false): string =>
  `{"event":"device","sbdf":"${sbdf}",${readOnly ? '"readOnly":true,' : ''}"bars":[{"type":"mem32","size":"0x4000","addr":"0x${bar.toString(16)}"}]}`;
/** A compact write line (the byte reader's form; every key below is long enough to be kept). */
const write = (vcpu: string, sbdf: string, reg: number, size: number, value: number): string =>
  `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":${reg},"size":${size},"value":${value}}`;
/** Writes to the interrupt line (0x3c): inert for the hardware domain and for a guest. */
const pokes = (vcpu: string, sbdf: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) => write(vcpu, sbdf, 0x3c, 1, i));

/** The JSON report of `lines` replayed from bytes, the whole trace as one block of lines. */
function viaKeys(lines: readonly string[]): string {
  const bytes = Buffer.from(`${lines.join('\n')}\n`);
  const replay = new TraceReplay('trace.jsonl');
  for (let at = 0; at < bytes.length && at >= 0; ) at = replay.feedLine(bytes, at, bytes.length);
  return reportJson(replay.end());
}

/** `viaKeys` and the reference agree; the reference's report, parsed. */
function sameAsFresh(lines: readonly string[]): {
  error: { line: number; message: string } | null;
  events: { kind: string; sbdf?: string }[];
} {
  const expected = reportJson(replayText(`${lines.join('\n')}\n`, 'trace.jsonl'));
  expect(viaKeys(lines)).toBe(expected);
  return JSON.parse(expected);
}

describe("a key's kept write target", () => {
  it('is dropped when its device is removed: a write after the unplug finds no device', () => {
    // A read-only device has no vPCI state: only its leaving the address map moves the count.
    const lines = [HOST, device('0000:00:05.0', 0xe000_0000, true), '{"event":"boot"}'];
    lines.push(...pokes('d0v0', '0000:00:05.0', 3), '{"event":"unplug","sbdf":"0000:00:05.0"}');
    lines.push(...pokes('d0v0', '0000:00:05.0', 1));
    expect(sameAsFresh(lines).error).toMatchObject({
      line: lines.length,
      message: /not a device on the machine/,
    });
  });

  it("is dropped when its device's vPCI state goes: a guest's write after the deassign finds no device", () => {
    const lines = [
      HOST,
      device('0000:00:04.0', 0xe000_0000),
      '{"event":"boot"}',
      '{"event":"domain","id":1}',
    ];
    lines.push('{"event":"assign","sbdf":"0000:00:04.0","domain":1}', ...pokes('d1v0', '0000:00:00.0', 3));
    lines.push('{"event":"deassign","sbdf":"0000:00:04.0"}', ...pokes('d1v0', '0000:00:00.0', 1));
    expect(sameAsFresh(lines).error).toMatchObject({ line: lines.length, message: /not a device of d1/ });
  });

  it('is forgotten when its slot takes another key: two devices whose keys share a slot each get their writes', () => {
    // The segment is not hashed (`keySlot`): these two keys take turns in one slot.
    const lines = [
      HOST,
      device('0000:00:02.0', 0xe000_0000, true),
      device('0001:00:02.0', 0xe010_0000, true),
    ];
    lines.push('{"event":"boot"}');
    for (let i = 0; i < 3; i++)
      lines.push(...pokes('d0v0', '0000:00:02.0', 2), ...pokes('d0v0', '0001:00:02.0', 2));
    const dropped = sameAsFresh(lines).events.filter((e) => e.kind === 'access-dropped');
    expect(dropped.map((e) => e.sbdf)).toEqual(
      Array.from({ length: 12 }, (_, i) => ((i >> 1) % 2 === 0 ? '0000:00:02.0' : '0001:00:02.0')),
    );
  });
});
