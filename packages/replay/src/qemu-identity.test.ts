import { describe, expect, it } from 'vitest';
import { DeviceIdentities } from './qemu-identity.js';

/** A device record: its name, for reading the results. */
const device = (name: string) => () => ({ name });
/** Every line is of the device already there (the tests below are about bus numbers, not hot plug). */
const any = (): boolean => true;

describe('devices of a QEMU log, by where they sit', () => {
  it('keep their identity when the bridge above them changes its secondary bus number', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const bridge = ids.at(0, 1, 0, any, device('bridge')).device;
    ids.secondary(bridge, 1, 'write');
    const nic = ids.at(1, 0, 0, any, device('nic')).device;
    ids.secondary(bridge, 0, 'write'); // reset (OVMF does this)
    ids.secondary(bridge, 5, 'write');
    expect(ids.at(5, 0, 0, any, device('another')).device).toBe(nic);
    expect(ids.find(1, 0, 0)).toBeUndefined();
    expect(
      ids.named().map(({ bus, dev, fn, occupants }) => `${bus}:${dev}.${fn} ${occupants[0]!.name}`),
    ).toEqual(['0:1.0 bridge', '5:0.0 nic']);
  });

  it('name a bus by its last number that was not 0, and a number by its newest bridge', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const a = ids.at(0, 1, 0, any, device('a')).device;
    const b = ids.at(0, 2, 0, any, device('b')).device;
    ids.secondary(a, 1, 'write');
    ids.at(1, 0, 0, any, device('behind a')).device;
    ids.secondary(b, 1, 'write'); // b takes number 1 too: lines now mean b's bus
    expect(ids.at(1, 0, 0, any, device('behind b')).device.name).toBe('behind b');
    ids.secondary(a, 0, 'write');
    expect(ids.named().find((n) => n.occupants[0]!.name === 'behind a')!.bus).toBe(1);
  });

  it('let a bridge adopt the bus of a log that started after the numbers were set', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const early = ids.at(3, 0, 0, any, device('seen first')).device;
    const bridge = ids.at(0, 4, 0, any, device('bridge')).device;
    ids.secondary(bridge, 3, 'read');
    expect(ids.at(3, 0, 0, any, device('again')).device).toBe(early);
    ids.secondary(bridge, 7, 'write');
    expect(ids.at(7, 0, 0, any, device('renumbered')).device).toBe(early);
  });
});

describe('a slot that holds one device after another (hot plug)', () => {
  const sameName = (name: string) => (d: { name: string }) => d.name === name;
  const at = (ids: DeviceIdentities<{ name: string }>, bus: number, name: string) =>
    ids.at(bus, 0, 0, sameName(name), device(name));

  it('a device answering where a read found nothing arrived while the log ran', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    expect(ids.absent(0, 0, 0)).toBeUndefined();
    const nic = at(ids, 0, 'nic');
    expect(nic.hotPlugged).toBe(true);
    expect(nic.replaced).toBeUndefined();
    // Lines of it afterwards are of it, not of another arrival.
    expect(at(ids, 0, 'nic')).toEqual({ device: nic.device, hotPlugged: false, replaced: undefined });
  });

  it('a device never seen missing was there from the start', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    expect(at(ids, 0, 'nvme').hotPlugged).toBe(false);
  });

  it('an unanswered read of a device makes it leave; the next one there is another device', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const first = at(ids, 0, 'nic').device;
    expect(ids.absent(0, 0, 0)).toBe(first);
    expect(ids.absent(0, 0, 0)).toBeUndefined(); // gone already
    const second = at(ids, 0, 'nic');
    expect(second.device).not.toBe(first);
    expect(second.hotPlugged).toBe(true);
    expect(ids.find(0, 0, 0)).toBe(second.device);
    expect(ids.named()).toEqual([{ bus: 0, dev: 0, fn: 0, occupants: [first, second.device] }]);
  });

  it('another device model answering replaces the one there, which leaves', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const nic = at(ids, 0, 'virtio-net-pci').device;
    const next = at(ids, 0, 'e1000e');
    expect(next.replaced).toBe(nic);
    expect(next.hotPlugged).toBe(true);
    expect(next.device.name).toBe('e1000e');
  });

  it("a bridge's slot powered off: every device on its bus leaves, none elsewhere", () => {
    const ids = new DeviceIdentities<{ name: string }>();
    const port = ids.at(0, 5, 0, sameName('port'), device('port')).device;
    ids.secondary(port, 1, 'write');
    const behind = at(ids, 1, 'nic').device;
    const root = ids.at(0, 6, 0, sameName('other'), device('other')).device;
    expect(ids.poweredOff(port)).toEqual([behind]);
    expect(ids.poweredOff(port)).toEqual([]);
    // The root bus's device is still there: a line of it is of it.
    expect(ids.at(0, 6, 0, sameName('other'), device('other')).device).toBe(root);
    // The device QEMU still names there (its unmapping is logged after the power-off) is the one that left.
    expect(ids.find(1, 0, 0)).toBe(behind);
    expect(at(ids, 1, 'nic').hotPlugged).toBe(true);
  });

  it('an unanswered read on a bus no bridge is known to have tells nothing', () => {
    const ids = new DeviceIdentities<{ name: string }>();
    expect(ids.absent(7, 0, 0)).toBeUndefined();
    expect(at(ids, 7, 'nic').hotPlugged).toBe(false);
  });
});
