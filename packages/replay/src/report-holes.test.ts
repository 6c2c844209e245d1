/**
 * The report's holes of a machine of many BARs (issue 16): each BAR's holes come from the extents over
 * that BAR, found by search, not from a walk of its domain's whole map (which made the report
 * quadratic in the BARs: 4,096 devices of 6 BARs took 5 s to report). The walk is counted: each
 * domain's map is read whole once (its `p2m` list), whatever the number of BARs.
 */
import { P2m } from '@vpci/p2m';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TraceReplay } from './run.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const hex = (n: number): string => `0x${n.toString(16)}`;
const sbdf = (i: number): string =>
  `0000:${(1 + (i >> 5)).toString(16).padStart(2, '0')}:${(i & 31).toString(16).padStart(2, '0')}.0`;

describe('the report of many BARs in falling address order', () => {
  it('reads each domain map whole once, and finds each hole where the machine puts it', () => {
    const devices = 300;
    // Device i: two 4 KiB BARs at 0xe0000000 - i * 64 KiB (and 4 KiB above), decoding at boot, so
    // their frames are mapped one to one; device 0 has its MSI-X table in BAR0's page (Xen leaves that
    // page unmapped), device 1's BAR2 lies on a page the host memory map reserves (left unmapped).
    const base = (i: number): number => 0xe000_0000 - i * 0x1_0000;
    const lines = [
      JSON.stringify({
        event: 'host',
        e820: [{ addr: hex(base(1) + 0x1000), size: '0x1000', type: 'reserved' }],
      }),
    ];
    for (let i = 0; i < devices; i++) {
      lines.push(
        JSON.stringify({
          event: 'device',
          sbdf: sbdf(i),
          command: '0x0002',
          bars: [
            { type: 'mem32', size: '0x1000', addr: hex(base(i)) },
            null,
            { type: 'mem32', size: '0x1000', addr: hex(base(i) + 0x1000) },
          ],
          ...(i === 0
            ? { msix: { entries: 4, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x800 } } }
            : {}),
        }),
      );
    }
    lines.push('{"event":"boot"}');
    const replay = new TraceReplay('many-bars');
    for (const line of lines) expect(replay.feed(line), replay.error?.message).toBe(true);
    const walks = vi.spyOn(P2m.prototype, 'extents');
    const report = replay.end();
    expect(walks.mock.calls.length).toBeLessThanOrEqual(report.domains.length);

    const holes = new Map(
      report.devices.flatMap((d) => d.bars.map((b) => [`${d.sbdf} ${b.index}`, b.holes])),
    );
    expect(holes.get(`${sbdf(0)} 0`)).toEqual([
      { gfn: hex(base(0) / 0x1000), count: 1, reason: 'msix-table' },
    ]);
    expect(holes.get(`${sbdf(1)} 2`)).toEqual([{ gfn: hex(base(1) / 0x1000 + 1), count: 1, reason: 'e820' }]);
    const others = [...holes].filter(([name]) => name !== `${sbdf(0)} 0` && name !== `${sbdf(1)} 2`);
    expect(others).toHaveLength(2 * devices - 2);
    for (const [name, found] of others) expect(found, name).toEqual([]);
  });
});
