import { arbTrace, checkTrace } from '@vpci/fuzz';
import { replayText } from '@vpci/replay';
import fc from 'fast-check';

// A property of your own over random traces: every trace replays without a bad line, and its report
// names no more devices than the plan has (an SR-IOV PF counts with all its VFs).
fc.assert(
  fc.property(arbTrace({ profile: 'xen', maxSteps: 20 }), (trace) => {
    const report = replayText(trace.text, 'random.jsonl');
    const sriov = trace.plan.sriov === undefined ? 0 : 1 + trace.plan.sriov.totalVfs;
    return report.error === null && report.devices.length <= trace.plan.devices.length + sriov;
  }),
  { seed: 42, numRuns: 25 },
);
console.log('25 random traces replayed');

// One trace as a file holds it, and what vpci-fuzz checks of it: the scoped and the whole invariant
// checks agree after every line, nothing throws, and (under hardened) no invariant breaks.
const [trace] = fc.sample(arbTrace({ profile: 'xen', maxSteps: 4, maxDevices: 1 }), { seed: 25, numRuns: 1 });
console.log(trace.lines.join('\n'));
const checked = checkTrace(trace.plan);
console.log(
  `${checked.steps} steps, ${checked.lines.length} lines: ${checked.failure?.kind ?? 'no failure'}`,
);
