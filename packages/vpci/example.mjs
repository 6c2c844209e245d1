import { checkInvariants, Machine, PCI_COMMAND, PCI_COMMAND_MEMORY } from '@vpci/vpci';

// A host with one NIC whose 128 KiB BAR0 the host firmware put at 0xf0000000, decoding off.
const machine = new Machine({ profile: 'xen' });
machine.addDevice({
  sbdf: '0000:03:00.0',
  vendorId: 0x8086,
  deviceId: 0x10d3,
  bars: [{ type: 'mem32', size: 0x20000n, addr: 0xf000_0000n }],
});
machine.boot();

// dom0's driver turns memory decoding on: vPCI defers the map to the vCPU, which then runs it.
const vcpu = machine.vcpu(0);
machine.configWrite(vcpu, '0000:03:00.0', PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
console.log(machine.finishPending(vcpu));
for (const e of machine.hardwareDomain.p2m.extentsIn(0xf0000, 0xf001f)) {
  console.log(`gfn ${e.gfn.toString(16)} -> mfn ${e.mfn.toString(16)}: ${e.count} frames, ${e.type}`);
}
console.log(checkInvariants(machine));
