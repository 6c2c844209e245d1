import { hardwareBus, pciSetup } from '@vpci/firmware';

// hvmloader's pci_setup on bare devices (no engine): a std VGA and a NIC on bus 0.
const result = pciSetup(
  hardwareBus([
    {
      sbdf: '00:02.0',
      vendorId: 0x1234,
      deviceId: 0x1111,
      bars: [
        { type: 'mem32', size: 0x100_0000n, prefetchable: true },
        null,
        { type: 'mem32', size: 0x1000n },
      ],
    },
    {
      sbdf: '00:04.0',
      vendorId: 0x8086,
      deviceId: 0x100e,
      bars: [
        { type: 'mem32', size: 0x2_0000n },
        { type: 'io', size: 0x40n },
      ],
    },
  ]),
);
console.log(`low hole [${result.pciMemStart.toString(16)}, ${result.pciMemEnd.toString(16)})`);
for (const bar of result.bars) {
  console.log(
    `${bar.sbdf} BAR${bar.index} ${bar.kind} size ${bar.size.toString(16)} at ${bar.addr?.toString(16)}`,
  );
}
