/**
 * `DeviceWindowsCache.windowsOf` against `deviceWindows` (the windows made afresh from the BARs), after
 * the BAR changes a reprogramming makes: the cache compares the BARs with the windows it remembers
 * before making any, and keeps them (the same object) only where they would be made the same.
 */
import { describe, expect, it } from 'vitest';
import { type DeviceWindows, DeviceWindowsCache, deviceWindows } from './bar-windows.js';
import { Machine } from './machine.js';

/** The windows and MSI-X pages as text: device, slot, frames and shift, compared by value. */
const text = (part: DeviceWindows): string[] => [
  ...part.windows.map((w) => `${w.device.name}/${w.bar.index} ${w.first}-${w.last}+${w.shift}`),
  ...part.msixPages.map((p) => `${p.device.name}#${p.position} ${p.first}-${p.last}`),
];

/** The hardware domain's 01:00.0 (16 KiB at 0xc0000000, decoding) and guest 1's 02:00.0 (decoding off). */
function machine(): Machine {
  const m = new Machine();
  for (const [sbdf, addr] of [
    ['0000:01:00.0', 0xc000_0000n],
    ['0000:02:00.0', 0xc001_0000n],
  ] as const)
    m.addDevice({ sbdf, command: 0x0002, bars: [{ type: 'mem32', size: 0x4000n, addr }] });
  m.boot();
  m.createGuest({ id: 1 });
  m.assignDevice('0000:02:00.0', 1);
  return m;
}

/**
 * Domain `domain`'s vCPU 0 turns decoding off, writes BAR0 as `bar0` and turns decoding on, each
 * toggle's work finished, at `sbdf` as the domain sees it (a guest's first device at its first
 * virtual slot, 00:00.0).
 */
function reprogram(m: Machine, domain: number, sbdf: string, bar0: number): void {
  const vcpu = m.vcpu(domain, 0);
  m.configWrite(vcpu, sbdf, 0x04, 2, 0x0000);
  m.finishPending(vcpu);
  m.configWrite(vcpu, sbdf, 0x10, 4, bar0);
  m.configWrite(vcpu, sbdf, 0x04, 2, 0x0002);
  m.finishPending(vcpu);
}

describe('DeviceWindowsCache.windowsOf', () => {
  it('a map finished where the BAR was: the windows it remembers, the same object', () => {
    const m = machine();
    const device = m.device('0000:01:00.0');
    const cache = new DeviceWindowsCache();
    const before = cache.windowsOf(device);
    reprogram(m, 0, '0000:01:00.0', 0xc000_0000);
    expect(cache.windowsOf(device)).toBe(before);
    expect(text(cache.windowsOf(device))).toEqual(text(deviceWindows(device)));
  });

  it("the hardware domain's BAR mapped elsewhere (the same shift, other frames): made again", () => {
    const m = machine();
    const device = m.device('0000:01:00.0');
    const cache = new DeviceWindowsCache();
    const before = text(cache.windowsOf(device));
    reprogram(m, 0, '0000:01:00.0', 0xc010_0000);
    expect(text(cache.windowsOf(device))).toEqual(text(deviceWindows(device)));
    expect(text(cache.windowsOf(device))).not.toEqual(before);
  });

  it("a guest's BAR mapped, then moved (other frames and shift): made again each time", () => {
    const m = machine();
    const device = m.device('0000:02:00.0');
    const cache = new DeviceWindowsCache();
    expect(cache.windowsOf(device).windows).toEqual([]);
    reprogram(m, 1, '0000:00:00.0', 0xe000_0000);
    expect(text(cache.windowsOf(device))).toEqual(text(deviceWindows(device)));
    expect(cache.windowsOf(device).windows).toHaveLength(1);
    reprogram(m, 1, '0000:00:00.0', 0xe010_0000);
    expect(text(cache.windowsOf(device))).toEqual(text(deviceWindows(device)));
  });

  it('a BAR left disabled: no window', () => {
    const m = machine();
    const device = m.device('0000:01:00.0');
    const cache = new DeviceWindowsCache();
    cache.windowsOf(device);
    m.configWrite(m.vcpu(0, 0), '0000:01:00.0', 0x04, 2, 0x0000);
    m.finishPending(m.vcpu(0, 0));
    expect(cache.windowsOf(device).windows).toEqual([]);
  });
});
