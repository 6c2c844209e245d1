import { InvalidArgumentError } from '@vpci/p2m';
import { Machine, PhysicalDevice } from '@vpci/vpci';
import { describe, expect, it } from 'vitest';
import { devfnName, hardwareBus, initialBarAddresses, machineBus } from './bus.js';

describe('hardwareBus', () => {
  it('reads all-ones where nothing is, drops writes there and records every access', () => {
    const bus = hardwareBus([{ sbdf: '00:03.0', vendorId: 0x8086 }]);
    expect(bus.read(0x18, 0x00, 2)).toBe(0x8086);
    expect(bus.read(0x20, 0x00, 4)).toBe(0xffffffff);
    bus.write(0x20, 0x04, 2, 0x6);
    expect(bus.accesses.map((a) => [a.op, a.sbdf, a.via])).toEqual([
      ['read', '00:03.0', 'hardware'],
      ['read', '00:04.0', 'hardware'],
      ['write', '00:04.0', 'none'],
    ]);
  });

  it('knows host addresses from a list or from the BARs as they start out', () => {
    const spec = {
      sbdf: '00:01.0',
      bars: [
        { type: 'mem64' as const, size: 0x1000n, addr: 0x70_5000_0000n },
        null,
        { type: 'io' as const, size: 0x20n },
      ],
      rom: { size: 0x800n, addr: 0xfeb0_0000n },
    };
    const bus = hardwareBus([spec], { hostAddresses: 'initial' });
    expect(bus.hostAddress(8, 0)).toBe(0x70_5000_0000n);
    expect(bus.hostAddress(8, 2)).toBeUndefined(); // I/O
    expect(bus.hostAddress(8, 6)).toBe(0xfeb0_0000n);
    expect(initialBarAddresses(PhysicalDevice.fromSpec(spec))).toHaveLength(2);
    expect(
      hardwareBus([spec], { hostAddresses: [{ devfn: 8, index: 0, addr: 0x1000n }] }).hostAddress(8, 0),
    ).toBe(0x1000n);
  });

  it('refuses devices off bus 0, two at one address, and bad accesses', () => {
    expect(() => hardwareBus([{ sbdf: '01:00.0' }])).toThrow(InvalidArgumentError);
    expect(() => hardwareBus([{ sbdf: '00:01.0' }, { sbdf: '00:01.0' }])).toThrow(/devices\[1\]/);
    const bus = hardwareBus([]);
    expect(() => bus.read(256, 0, 4)).toThrow(/devfn/);
    expect(() => bus.read(0, 2, 4)).toThrow(/reg/);
    expect(() => bus.write(0, 0, 1, 0x100)).toThrow(/value/);
  });
});

describe('machineBus', () => {
  it('reaches the machine from dom0; the host addresses are not separate from the BARs', () => {
    const machine = new Machine();
    machine.addDevice({
      sbdf: '00:02.0',
      vendorId: 0x1af4,
      bars: [{ type: 'mem32', size: 0x1000n, addr: 0xfe00_0000n }],
    });
    machine.boot();
    const bus = machineBus(machine, machine.hardwareDomain.vcpus[0]!);
    expect(bus.read(0x10, 0x00, 2)).toBe(0x1af4);
    expect(bus.read(0x10, 0x10, 4)).toBe(0xfe00_0000);
    expect(bus.hostAddress(0x10, 0)).toBeUndefined();
    expect(bus.vcpu).toBe('d0v0');
  });

  it('finishes deferred work before the next access', () => {
    const machine = new Machine();
    machine.addDevice({ sbdf: '00:02.0', bars: [{ type: 'mem32', size: 0x1000n, addr: 0xfe00_0000n }] });
    machine.boot();
    const vcpu = machine.hardwareDomain.vcpus[0]!;
    const bus = machineBus(machine, vcpu);
    bus.write(0x10, 0x04, 2, 0x2);
    expect(vcpu.pending).toBeDefined();
    bus.read(0x10, 0x04, 2);
    expect(vcpu.pending).toBeUndefined();
  });

  it('for a guest: IDs from the device model (or not), BARs through vPCI, host addresses known', () => {
    const machine = new Machine();
    machine.addDevice({
      sbdf: '03:00.0',
      vendorId: 0x8086,
      deviceId: 0x10d3,
      bars: [{ type: 'mem32', size: 0x4000n, addr: 0xfe10_0000n }],
    });
    machine.boot();
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const bus = machineBus(machine, guest.vcpus[0]!);
    expect(bus.read(0, 0x00, 2)).toBe(0x8086);
    expect(bus.read(0, 0x10, 4)).toBe(0xfe10_0000); // vPCI: the guest starts at the host address
    expect(bus.accesses.map((a) => a.via)).toEqual(['device-model', 'machine']);
    expect(bus.hostAddress(0, 0)).toBe(0xfe10_0000n);
    const plain = machineBus(machine, guest.vcpus[0]!, { deviceModelIds: false });
    expect(plain.read(0, 0x00, 2)).toBe(0xffff); // vPCI does not emulate IDs for a domU
  });

  it('refuses an emulated device where the guest already has one, and a foreign vCPU', () => {
    const machine = new Machine();
    machine.addDevice({ sbdf: '03:00.0' });
    machine.boot();
    const guest = machine.createGuest();
    machine.assignDevice('03:00.0', guest.id);
    const clash = PhysicalDevice.fromSpec({ sbdf: '00:00.0' });
    expect(() => machineBus(machine, guest.vcpus[0]!, { emulated: [clash] })).toThrow(/emulated\[0\]/);
    const other = new Machine();
    expect(() => machineBus(other, guest.vcpus[0]!)).toThrow(/vcpu/);
  });
});

describe('devfnName', () => {
  it('prints bus 0 addresses as the trace format writes them', () => {
    expect(devfnName(0x1a)).toBe('00:03.2');
    expect(devfnName(0xff)).toBe('00:1f.7');
  });
});
