/**
 * One input dimension of issue 16 at one size, for a scaling table (not a test): builds a trace of
 * size `n` along `dimension`, replays it (`TraceReplay`, checks `scoped` or `full`, profile `xen` or
 * `hardened`) and prints the CPU time of the feed, of `end()` (finishing and the report) and, with
 * `--picture`, of `renderSvg` and `renderHtml`. Run it at n, 2n, 4n, 8n in fresh processes; a cost
 * that grows more than about twice per doubling is superlinear. With `--compare <names>` the trace is
 * replayed under those rule sets side by side (`CompareReplay`, as `vpci-replay --compare` does), the
 * checks the default's. With `--rules <name>` the trace's host line names that rule set (`qemu`, …; as
 * `vpci-replay --rules` does). Dimensions:
 * - `falling`: n devices of six 4 KiB BARs decoding at boot, device i at 0xe0000000 − i × 32 KiB
 *   (BARs in falling frame order by SBDF), each then turned off and on again;
 * - `adjacent-enable`: n devices of one 16 KiB BAR touching the next, in falling order, decoding off
 *   at boot and turned on one device at a time (the hardware domain's extents merge into one);
 * - `guests`: n guests of one device each, each guest turning its device's decoding on.
 *
 *   pnpm build && node --import tsx packages/replay/bench/input-scaling.ts falling 4096 scoped xen --picture
 *   node --import tsx packages/replay/bench/input-scaling.ts falling 2048 scoped xen --compare xen,hardened
 *   node --import tsx packages/replay/bench/input-scaling.ts falling 2048 scoped xen --rules qemu
 */
import { CompareReplay, compareTargets, type Report, renderHtml, renderSvg, TraceReplay } from '@vpci/replay';

const [dimension, size, checks = 'scoped', profile = 'xen'] = process.argv.slice(2);
const n = Number(size);
if (!Number.isSafeInteger(n) || (checks !== 'scoped' && checks !== 'full'))
  throw new Error(
    'usage: input-scaling.ts <falling|adjacent-enable|guests> <n> [scoped|full] [xen|hardened] [--picture | --compare <names>] [--rules <name>]',
  );
const hex = (x: number): string => `0x${x.toString(16)}`;
const h2 = (x: number): string => x.toString(16).padStart(2, '0');
/** Device i's address: function i % 8 of slot (i / 8) % 32 of bus 1 + i / 256 (guests: function 0). */
const sbdf = (i: number): string =>
  dimension === 'guests'
    ? `0000:${h2(1 + (i >> 5))}:${h2(i & 31)}.0`
    : `0000:${h2(1 + (i >> 8))}:${h2((i >> 3) & 31)}.${i & 7}`;
const write = (i: number, value: number, vcpu = 'd0v0', at = sbdf(i)): string =>
  JSON.stringify({ event: 'write', vcpu, sbdf: at, reg: 4, size: 2, value });

const rulesAt = process.argv.indexOf('--rules');
const rules = rulesAt < 0 ? {} : { rules: process.argv[rulesAt + 1] };
const lines = [JSON.stringify({ event: 'host', profile, ...rules })];
const device = (i: number, bars: object[], command?: string): void => {
  lines.push(
    JSON.stringify({ event: 'device', sbdf: sbdf(i), bars, ...(command === undefined ? {} : { command }) }),
  );
};
if (dimension === 'falling') {
  for (let i = 0; i < n; i++) {
    const base = 0xe000_0000 - i * 0x8000;
    device(
      i,
      [0, 1, 2, 3, 4, 5].map((b) => ({ type: 'mem32', size: '0x1000', addr: hex(base + b * 0x1000) })),
      '0x0006',
    );
  }
  lines.push('{"event":"boot"}');
  for (let i = 0; i < n; i++) lines.push(write(i, 0), write(i, 6));
} else if (dimension === 'adjacent-enable') {
  for (let i = 0; i < n; i++)
    device(i, [{ type: 'mem32', size: '0x4000', addr: hex(0xe000_0000 - i * 0x4000) }]);
  lines.push('{"event":"boot"}');
  for (let i = 0; i < n; i++) lines.push(write(i, 2));
} else if (dimension === 'guests') {
  for (let i = 0; i < n; i++)
    device(i, [{ type: 'mem32', size: '0x1000', addr: hex(0xa000_0000 + i * 0x1000) }], '0x0006');
  lines.push('{"event":"boot"}');
  for (let g = 1; g <= n; g++) lines.push(JSON.stringify({ event: 'domain', id: g }));
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ event: 'assign', sbdf: sbdf(i), domain: i + 1 }));
  for (let i = 0; i < n; i++) lines.push(write(i, 6, `d${i + 1}v0`, '0000:00:00.0'));
} else {
  throw new Error(`unknown dimension ${dimension}`);
}

const ms = (since: NodeJS.CpuUsage): string => {
  const { user, system } = process.cpuUsage(since);
  return ((user + system) / 1000).toFixed(0);
};
const compareAt = process.argv.indexOf('--compare');
let at = process.cpuUsage();
let feed: string;
let report: Report;
if (compareAt < 0) {
  const replay = new TraceReplay(`${dimension}-${n}`, { invariantChecks: checks });
  for (const line of lines) if (!replay.feed(line)) throw new Error(`${replay.error?.message}`);
  feed = ms(at);
  at = process.cpuUsage();
  report = replay.end();
} else {
  const targets = compareTargets(process.argv[compareAt + 1] ?? '');
  const replay = new CompareReplay(`${dimension}-${n}`, targets);
  for (const line of lines) if (!replay.feed(line)) throw new Error(`${replay.first.error?.message}`);
  feed = ms(at);
  at = process.cpuUsage();
  const { reports, compare } = replay.end();
  report = reports[0]!;
  console.log(`compare: ${compare.stepsFound} steps`);
}
const end = ms(at);
let picture = '';
if (process.argv.includes('--picture')) {
  at = process.cpuUsage();
  renderSvg(report);
  const svg = ms(at);
  at = process.cpuUsage();
  renderHtml(report);
  picture = ` svg=${svg}ms html=${ms(at)}ms`;
}
console.log(
  `${dimension} n=${n} ${checks} ${profile}: ${lines.length} lines, feed=${feed}ms end=${end}ms${picture}, ${report.violations.length} violations`,
);
