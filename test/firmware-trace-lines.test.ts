import {
  guestMtrrState,
  placeBars,
  placementTrace,
  traceBarAssertions,
  traceDeviceLine,
  traceDomainLine,
} from '@vpci/firmware';
import { parseTraceLine, replayText } from '@vpci/replay';
import { Machine, PhysicalDevice } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { SECTION_4_7_DEVICES } from './fixtures/seed-layouts.js';

function run() {
  const machine = new Machine();
  for (const spec of SECTION_4_7_DEVICES) machine.addDevice(spec);
  machine.boot();
  return placeBars(machine, machine.hardwareDomain.vcpus[0]!);
}

const header = ['{"event":"host"}', ...SECTION_4_7_DEVICES.map(traceDeviceLine), '{"event":"boot"}'];

describe('placementTrace', () => {
  it('replays to the same placement, every read returning what it returned the first time', () => {
    const result = run();
    const lines = [...header, ...placementTrace(result), ...traceBarAssertions(result.bars)];
    const report = replayText(`${lines.join('\n')}\n`, 'placement.jsonl');
    expect(report.error).toBeNull();
    expect(report.assertions.failures).toEqual([]);
    const reads = result.accesses.filter((a) => a.op === 'read' && a.value !== 0xffff).length;
    expect(report.assertions.total).toBe(reads + 6); // every read checked, plus the 6 BAR assertions
    expect(report.status).toBe('ok');
  });

  it('renders reads with expect and writes with value, as docs/trace-format.md shows', () => {
    const lines = placementTrace(run());
    expect(lines[0]).toBe(
      '# scan: 759 reads of 253 empty functions (all-ones) left out; a replay reads the same',
    );
    expect(lines[1]).toBe(
      '{"event":"read","vcpu":"d0v0","sbdf":"00:02.0","reg":"0xa","size":2,"expect":"0x0"}',
    );
    expect(lines).toContain(
      '{"event":"write","vcpu":"d0v0","sbdf":"00:03.0","reg":"0x14","size":4,"value":"0xf1000008"}',
    );
    expect(lines.at(-1)).toBe('{"event":"run","vcpu":"d0v0"}');
    for (const line of lines.slice(1)) expect(() => parseTraceLine(line, 1)).not.toThrow();
  });

  it('keeps every empty-slot read or leaves out expects when asked', () => {
    const result = run();
    const all = placementTrace(result, { emptySlots: 'keep', finish: false });
    expect(all).toHaveLength(result.accesses.length);
    expect(placementTrace(result, { expectReads: false }).some((l) => l.includes('"expect"'))).toBe(false);
  });

  it('turns device-model accesses into comments', () => {
    const machine = new Machine();
    machine.boot();
    const guest = machine.createGuest();
    const xenpci = PhysicalDevice.fromSpec({
      sbdf: '00:02.0',
      vendorId: 0x5853,
      deviceId: 0x0001,
      bars: [{ type: 'mem32', size: 0x100_0000n }],
    });
    const result = placeBars(machine, guest.vcpus[0]!, { bus: { emulated: [xenpci] } });
    const lines = placementTrace(result);
    expect(lines).toContain('# device model: read 00:02.0 reg 0x0 size 2 -> 0x5853');
    expect(lines).toContain('# device model: write 00:02.0 reg 0x10 size 4 = 0xf0000000');
    expect(lines.filter((l) => l.startsWith('{'))).toEqual([]); // nothing reached the engine
  });
});

describe('trace helpers', () => {
  it('traceDeviceLine parses back to the same device', () => {
    for (const spec of SECTION_4_7_DEVICES) {
      const event = parseTraceLine(traceDeviceLine(spec), 1);
      expect(event).toMatchObject({
        event: 'device',
        spec: { vendorId: spec.vendorId, deviceId: spec.deviceId },
      });
    }
    const msix = traceDeviceLine({
      sbdf: '01:00.0',
      bars: [{ type: 'mem64', size: 0x4000n, addr: 0xfe00_0000n }, null],
      msix: { entries: 4, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } },
    });
    expect(msix).toBe(
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem64","size":"0x4000","addr":"0xfe000000"},null],"msix":{"entries":4,"table":{"bar":0,"offset":"0x2000"},"pba":{"bar":0,"offset":"0x3000"}}}',
    );
    expect(() => parseTraceLine(msix, 1)).not.toThrow();
  });

  it('traceDomainLine gives a domain event with the MTRR layout', () => {
    const result = run();
    const line = traceDomainLine(3, guestMtrrState(result), 2);
    expect(parseTraceLine(line, 1)).toMatchObject({
      event: 'domain',
      id: 3,
      vcpus: 2,
      mtrr: { enabled: true, defaultType: 'WB', variable: [{ base: 0xf000_0000n }, { base: 0xf800_0000n }] },
    });
  });

  it('traceBarAssertions names the machine device and skips I/O BARs and BARs with no space', () => {
    const lines = traceBarAssertions(run().bars, {
      field: 'guestAddr',
      machineSbdf: (d) => (d === 0x18 ? '0000:05:00.0' : undefined),
    });
    expect(lines).toEqual([
      '{"event":"assert","bar":{"sbdf":"0000:05:00.0","index":1,"guestAddr":"0xf1000000","size":"0x1000000","enabled":true}}',
    ]);
  });
});
