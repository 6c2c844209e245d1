import { replayText } from '@vpci/replay';

// A trace, one JSON object per line: a NIC with a 128 KiB BAR at 0xf0000000; dom0 turns memory
// decoding on, its vCPU runs the deferred map, and the trace asserts what dom0's p2m then holds.
const trace = [
  { event: 'host', profile: 'xen' },
  {
    event: 'device',
    sbdf: '0000:03:00.0',
    vendorId: '0x8086',
    deviceId: '0x10d3',
    bars: [{ type: 'mem32', size: '0x20000', addr: '0xf0000000' }],
  },
  { event: 'boot' },
  { event: 'write', vcpu: 'd0v0', sbdf: '0000:03:00.0', reg: '0x04', size: 2, value: '0x0002' },
  { event: 'run', vcpu: 'd0v0', expect: 'done' },
  { event: 'assert', maps: { domain: 0, gfn: '0xf0000', count: 32, mfn: '0xf0000', type: 'mmio_direct' } },
  { event: 'assert', noViolations: true },
]
  .map((line) => JSON.stringify(line))
  .join('\n');

const report = replayText(trace, 'nic.jsonl');
console.log(report.status, `${report.assertions.passed}/${report.assertions.total} assertions hold`);
for (const e of report.domains[0].p2m) {
  console.log(`gfn ${e.gfn} -> mfn ${e.mfn}: ${e.count} frames, ${e.type}`);
}
