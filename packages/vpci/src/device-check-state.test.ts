/**
 * `DeviceCheckStates`: what one owner's caches keep on a device is theirs alone. A machine's caches
 * keep their parts on the device; a cache made beside them (test/check-indexes.property.test.ts asks
 * a fresh `DeviceWindowsCache` for the windows the machine's cache keeps, to compare the two) must
 * neither see the machine's parts, which would compare the machine's windows with themselves, nor
 * take the device's place from them, which would make the machine's caches forget what they hold.
 */
import { describe, expect, it } from 'vitest';
import { DeviceWindowsCache } from './bar-windows.js';
import { DeviceCheckStates } from './device-check-state.js';
import { HostPagesCache } from './host-pages.js';
import { Machine } from './machine.js';

/** The hardware domain's 01:00.0, its 16 KiB BAR decoded at 0xc0000000. */
function machine(): Machine {
  const m = new Machine();
  m.addDevice({
    sbdf: '0000:01:00.0',
    command: 0x0002,
    bars: [{ type: 'mem32', size: 0x4000n, addr: 0xc000_0000n }],
  });
  m.boot();
  return m;
}

describe('DeviceCheckStates', () => {
  it("one owner's state of a device is the same object, kept on the device", () => {
    const device = machine().device('0000:01:00.0');
    const states = new DeviceCheckStates();
    const state = states.of(device);
    expect(states.of(device)).toBe(state);
    expect(device.checkState).toBe(state);
  });

  it("a cache made beside the machine's makes its own windows and host pages, and the machine's keep theirs", () => {
    const m = machine();
    const device = m.device('0000:01:00.0');
    const caches = m.invariantCaches;
    const windows = caches.windows.windowsOf(device);
    const pages = caches.hostPages.hostPagesOf(device);
    const beside = new DeviceCheckStates();
    const otherWindows = new DeviceWindowsCache(beside).windowsOf(device);
    const otherPages = new HostPagesCache(beside).hostPagesOf(device);
    // Made afresh (another object), of the same BARs.
    expect(otherWindows).not.toBe(windows);
    expect(otherWindows.windows.map((w) => [w.first, w.last, w.shift])).toEqual(
      windows.windows.map((w) => [w.first, w.last, w.shift]),
    );
    expect(otherPages).not.toBe(pages);
    expect(otherPages).toEqual(pages);
    // The machine's caches still hold what they made (the same objects: nothing moved).
    expect(caches.windows.windowsOf(device)).toBe(windows);
    expect(caches.hostPages.hostPagesOf(device)).toBe(pages);
    expect(beside.of(device)).not.toBe(device.checkState);
  });
});
