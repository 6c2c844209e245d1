import { describe, expect, it } from 'vitest';
import { DeviceIdentities } from './qemu-identity.js';

/** A device record: its name, for reading the results. */
const device = (name: string) => () => ({ name });

describe('devices of a QEMU log, by where they sit', () => {
  it('keep their identity when the bridge above them changes its secondary bus number', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const bridge = ids.at(0, 1, 0, device('bridge'));
    ids.secondary(bridge, 1, 'write');
    const nic = ids.at(1, 0, 0, device('nic'));
    ids.secondary(bridge, 0, 'write'); // reset (OVMF does this)
    ids.secondary(bridge, 5, 'write');
    expect(ids.at(5, 0, 0, device('another'))).toBe(nic);
    expect(ids.find(1, 0, 0)).toBeUndefined();
    expect(ids.named().map(({ bus, dev, fn, device }) => `${bus}:${dev}.${fn} ${device.name}`)).toEqual([
      '0:1.0 bridge',
      '5:0.0 nic',
    ]);
  });

  it('name a bus by its last number that was not 0, and a number by its newest bridge', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const a = ids.at(0, 1, 0, device('a'));
    const b = ids.at(0, 2, 0, device('b'));
    ids.secondary(a, 1, 'write');
    ids.at(1, 0, 0, device('behind a'));
    ids.secondary(b, 1, 'write'); // b takes number 1 too: lines now mean b's bus
    expect(ids.at(1, 0, 0, device('behind b')).name).toBe('behind b');
    ids.secondary(a, 0, 'write');
    expect(ids.named().find((n) => n.device.name === 'behind a')!.bus).toBe(1);
  });

  it('let a bridge adopt the bus of a log that started after the numbers were set', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const early = ids.at(3, 0, 0, device('seen first'));
    const bridge = ids.at(0, 4, 0, device('bridge'));
    ids.secondary(bridge, 3, 'read');
    expect(ids.at(3, 0, 0, device('again'))).toBe(early);
    ids.secondary(bridge, 7, 'write');
    expect(ids.at(7, 0, 0, device('renumbered'))).toBe(early);
  });
});
