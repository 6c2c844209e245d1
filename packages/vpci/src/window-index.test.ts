/**
 * A domain's window index with devices kept late (`DomainWindowIndex.replaceLater`): more devices
 * moved than it keeps late, so that it enters them all on the way, and two late devices leaving it,
 * against a walk over the devices' windows as they are (`walkedLayout`). test/check-indexes.property.test.ts compares the index so
 * after every line of random traces, whose domains hold a few devices.
 */
import { describe, expect, it } from 'vitest';
import { DeviceWindowsCache } from './bar-windows.js';
import { Machine } from './machine.js';
import { walkedLayout } from './window-index.js';

/** More than the index keeps late (`LATE_KEPT`). */
const DEVICES = 20;
const SIZE = 0x1_0000;
const before = (i: number): number => 0xc000_0000 + i * SIZE;
const after = (i: number): number => 0xd000_0000 + i * SIZE;
const frames = (address: number): [number, number] => [address / 0x1000, (address + SIZE) / 0x1000 - 1];

describe('DomainWindowIndexes: devices moved, kept late', () => {
  it('othersMayMeet and the searches answer as the walk over the devices as they are', () => {
    const m = new Machine();
    const sbdfs = Array.from({ length: DEVICES }, (_, i) => `0000:01:${i.toString(16).padStart(2, '0')}.0`);
    for (const [i, sbdf] of sbdfs.entries())
      m.addDevice({
        sbdf,
        command: 0x0002,
        bars: [{ type: 'mem32', size: BigInt(SIZE), addr: BigInt(before(i)) }],
      });
    m.boot();
    const devices = sbdfs.map((sbdf) => m.device(sbdf));
    const dom0 = m.hardwareDomain;
    const indexes = m.invariantCaches.windowIndexes;
    indexes.of(m, dom0, () => devices);
    const vcpu = m.vcpu(0, 0);
    // Each device's BAR moved (decoding off, placed, decoding on), then brought up to date as a
    // finishing map's answer does; the first half twice, back where they were and on again.
    const move = (i: number, address: number): void => {
      m.configWrite(vcpu, sbdfs[i]!, 0x04, 2, 0x0000);
      m.finishPending(vcpu);
      m.configWrite(vcpu, sbdfs[i]!, 0x10, 4, address);
      m.configWrite(vcpu, sbdfs[i]!, 0x04, 2, 0x0002);
      m.finishPending(vcpu);
      indexes.updateDevice(m, devices[i]!);
    };
    for (let i = 0; i < DEVICES; i++) move(i, after(i));
    for (let i = 0; i < DEVICES / 2; i++) move(i, before(i));
    for (let i = 0; i < DEVICES / 2; i++) move(i, after(i));
    // Two late devices leave the index (passed through to a guest): the others keep their places.
    m.createGuest({ id: 1 });
    const leaving = [17, 3];
    for (const i of leaving) {
      m.assignDevice(sbdfs[i]!, 1);
      indexes.updateDevice(m, devices[i]!);
    }
    const stays = (i: number): boolean => !leaving.includes(i);

    const walked = walkedLayout(
      devices.filter((_, i) => stays(i)).map((device) => new DeviceWindowsCache().windowsOf(device)),
    );
    // Before any search: `othersMayMeet` reads the late devices as they are.
    for (const [i, device] of devices.entries())
      for (let k = 0; k < DEVICES; k++) {
        const where = `${device.name} over ${sbdfs[k]}'s frames`;
        expect(indexes.othersMayMeet(m, dom0, device, ...frames(after(k))), `${where} now`).toBe(
          k !== i && stays(k),
        );
        expect(indexes.othersMayMeet(m, dom0, device, ...frames(before(k))), `${where} before`).toBe(false);
      }
    const names = (windows: readonly { device: { name: string }; first: number }[]) =>
      windows.map((w) => `${w.device.name} ${w.first}`);
    const kept = indexes.kept(dom0)!;
    expect(names(kept.windowsIn(undefined))).toEqual(names(walked.windowsIn(undefined)));
    for (let k = 0; k < DEVICES; k++)
      expect(names(kept.windowsMeeting(...frames(before(k)))), sbdfs[k]).toEqual([]);
  });
});
