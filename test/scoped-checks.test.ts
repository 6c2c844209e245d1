/**
 * Where the scoped invariant check after a line once disagreed with the whole-machine check (the
 * lockstep property in scoped-checks.property.test.ts found each): the same violations, first seen
 * at the same lines, both ways. Each trace is replayed under `xen`, where Xen's holes give the
 * violations to find.
 */
import { TraceReplay } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/**
 * Replays `lines` with scoped and with whole checks side by side, comparing their violations after
 * every line (the end of a replay checks the whole machine, which would hide a late report at the
 * last line); returns what the whole checks found.
 */
function bothWays(
  lines: readonly string[],
): { line: number; kind: string; count?: unknown; frames?: unknown }[] {
  const scoped = new TraceReplay('t.jsonl');
  const whole = new TraceReplay('t.jsonl', { invariantChecks: 'full' });
  for (const [i, line] of lines.entries()) {
    expect(scoped.feed(line) && whole.feed(line)).toBe(true);
    expect(json(scoped.replayer.violations), `after line ${i + 1}`).toBe(json(whole.replayer.violations));
  }
  return whole.replayer.violations.map(({ line, violation }) => {
    const v = violation as { kind: string; count?: number; frames?: string };
    return { line, kind: v.kind, count: v.count, frames: v.frames };
  });
}

describe('scoped checks see what whole checks see', () => {
  it('work left on a vCPU of a domain that no longer owns the device: its drop ends the busy time', () => {
    // header.c vpci_process_pending drops d1v1's map once the device is dom0's again; until then
    // the device counts as busy in every check, so dom0's probe mapping shows at the drop's line.
    const found = bothWays([
      '{"event":"host","quarantine":false}',
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":"0x100000","addr":"0xc0000000"}]}',
      '{"event":"boot"}',
      '{"event":"domain","id":1,"vcpus":2}',
      '{"event":"assign","sbdf":"0000:01:00.0","domain":1}',
      '{"event":"write","vcpu":"d1v1","sbdf":"00:00.0","reg":"0x4","size":2,"value":"0x2"}',
      '{"event":"deassign","sbdf":"0000:01:00.0"}',
      '{"event":"write","vcpu":"d0v0","sbdf":"01:00.0","reg":"0x10","size":4,"value":"0xffffffff"}',
      '{"event":"write","vcpu":"d0v0","sbdf":"01:00.0","reg":"0x4","size":2,"value":"0x2"}',
      '{"event":"run","vcpu":"d0v0"}',
      '{"event":"run","vcpu":"d1v1","expect":"dropped"}',
    ]);
    expect(found).toContainEqual({ line: 11, kind: 'probe-mapped', count: undefined, frames: undefined });
  });

  it('a map next to a violation splits its extent: the violation is reported again with its new count', () => {
    // Line 14 maps page c0100 for 01:01.0 beside the frames d0 kept of 01:00.0 (pci.c
    // deassign_device leaves them); the p2m extent c0013-c0100 splits, so the unexplained run
    // from c0013 is now 237 pages.
    const found = bothWays([
      '{"event":"host","profile":"xen","quarantine":false,"e820":[{"addr":"0xc000f000","size":"0x1000","type":"reserved"},{"addr":"0xc0012000","size":"0x1000","type":"reserved"}]}',
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem64","size":"0x100000","addr":"0xc0000000"},null,{"type":"mem32","size":"0x200","addr":"0xc0100000"}],"msix":{"entries":2,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":"0x80"}}}',
      '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":"0x800","addr":"0xc0100800"}],"msix":{"entries":2,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":"0x80"}}}',
      '{"event":"boot"}',
      '{"event":"domain","id":1,"vcpus":2}',
      '{"event":"domain","id":2,"vcpus":2}',
      '{"event":"write","vcpu":"d0v1","sbdf":"01:00.0","reg":"0x4","size":2,"value":"0x6"}',
      '{"event":"run","vcpu":"d0v1","budget":140}',
      '{"event":"run","vcpu":"d0v1","budget":159}',
      '{"event":"assign","sbdf":"0000:01:00.0","domain":1}',
      '{"event":"assign","sbdf":"0000:01:01.0","domain":2}',
      '{"event":"write","vcpu":"d0v1","sbdf":"01:01.0","reg":"0x4","size":2,"value":"0x6"}',
      '{"event":"deassign","sbdf":"0000:01:01.0"}',
      '{"event":"run","vcpu":"d0v0","budget":61}',
    ]);
    expect(found).toContainEqual({ line: 14, kind: 'unexplained-mapping', count: 237, frames: undefined });
  });

  it('an unmap beside a shared page makes the extent start inside it: the violation is named anew', () => {
    // 01:00.0 (dom0) has a 64 KiB BAR over the 4 KiB BARs of 02:00.0 and 03:00.0, which d1 maps at
    // e0007 and e0008: one extent from c0007, inside 01:00.0's page, so the sharing violation is
    // named by the extent's first frame, e0007. Line 16 unmaps e0007 (d1 turns 02:00.0's decoding
    // off): the extent starts at e0008 now, a frame the line did not write, on a page that did not
    // move, and the violation is named e0008 from then on.
    const found = bothWays([
      '{"event":"host","profile":"xen"}',
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":"0x10000","addr":"0xc0000000"}]}',
      '{"event":"device","sbdf":"0000:02:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xc0007000"}]}',
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xc0008000"}]}',
      '{"event":"boot"}',
      '{"event":"domain","id":1}',
      '{"event":"assign","sbdf":"0000:02:00.0","domain":1}',
      '{"event":"assign","sbdf":"0000:03:00.0","domain":1}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0xe0007000"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x4","size":2,"value":"0x2"}',
      '{"event":"run","vcpu":"d1v0"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:01.0","reg":"0x10","size":4,"value":"0xe0008000"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:01.0","reg":"0x4","size":2,"value":"0x2"}',
      '{"event":"run","vcpu":"d1v0"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x4","size":2,"value":"0x0"}',
      '{"event":"run","vcpu":"d1v0"}',
    ]);
    expect(found).toContainEqual({ line: 11, kind: 'subpage-shared', count: undefined, frames: undefined });
    expect(found).toContainEqual({ line: 16, kind: 'subpage-shared', count: undefined, frames: undefined });
  });

  it('a set left filled that a later failed modify_bars fills further is a new violation', () => {
    // header.c modify_bars: BAR2's offset mismatch (EINVAL) leaves BAR0's set filled (G1); the
    // second enable adds BAR0's frames at the probe address to it.
    const found = bothWays([
      '{"event":"host","profile":"xen","e820":[{"addr":"0xc000a000","size":"0x1000","type":"reserved"}]}',
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem64","size":"0x100000","addr":"0xc0000000"},null,{"type":"mem32","size":"0x400","addr":"0xc0100000"}],"msix":{"entries":2,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":"0x80"}},"command":"0x2"}',
      '{"event":"boot"}',
      '{"event":"domain","id":1,"vcpus":2}',
      '{"event":"assign","sbdf":"0000:01:00.0","domain":1}',
      '{"event":"write","vcpu":"d1v1","sbdf":"00:00.0","reg":"0x18","size":4,"value":"0xe0001c00"}',
      '{"event":"write","vcpu":"d1v1","sbdf":"00:00.0","reg":"0x4","size":2,"value":"0x6"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0xffffffff"}',
      '{"event":"write","vcpu":"d1v1","sbdf":"00:00.0","reg":"0x4","size":2,"value":"0x6"}',
    ]);
    expect(found).toContainEqual({
      line: 9,
      kind: 'rangeset-not-empty',
      count: undefined,
      frames: '0000:01:00.0:BAR0 { c0000-c0009, c000b-c00ff, fff00-fffff }',
    });
  });
});
