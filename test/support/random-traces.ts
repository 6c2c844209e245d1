/**
 * Random traces for property tests: devices with sub-page BARs packed by natural alignment into shared
 * pages and MSI-X anywhere, two guests they may be assigned to, and steps: config writes of every size
 * at any offset, BAR probes and moves, decoding toggles, preempted work, injected faults, moves between
 * domains. `trace(plans, steps, profile)` writes one; `plans` and `steps` are their arbitraries.
 */
import fc from 'fast-check';
import { bus0Sbdf, hostSbdf, type TraceDevicePlan } from '../arbitraries/device.js';
import { traceDevicePlans } from '../arbitraries/machine.js';
import { type TraceStep, traceStep } from '../arbitraries/step.js';

/** A trace from plans and steps: sub-page BARs packed by natural alignment so they share pages. */
export function trace(plans: TraceDevicePlan[], steps: TraceStep[], profile: 'xen' | 'hardened'): string {
  const lines = [`{"event":"host","profile":"${profile}"}`];
  let next = 0xc000_0000;
  const bars: { size: number; addr: number }[][] = [];
  plans.forEach((plan, i) => {
    const list = plan.sizes.map((log2) => {
      const size = 2 ** log2;
      next = Math.ceil(next / size) * size;
      const addr = next;
      next += size;
      return { size, addr };
    });
    bars.push(list);
    const msix =
      plan.msix && list[0]!.size >= 32
        ? `,"msix":{"entries":1,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":16}}`
        : '';
    const specs = list.map((b) => `{"type":"mem32","size":${b.size},"addr":${b.addr}}`).join(',');
    lines.push(`{"event":"device","sbdf":"${hostSbdf(i)}","bars":[${specs}]${msix}}`);
  });
  lines.push(
    '{"event":"boot"}',
    '{"event":"domain","id":1,"vcpus":2}',
    '{"event":"domain","id":2,"vcpus":2}',
  );
  const owner = plans.map(() => 0);
  const slots = new Map<number, number[]>([
    [1, []],
    [2, []],
  ]);
  const assign = (i: number, to: number): void => {
    lines.push(`{"event":"assign","sbdf":"${hostSbdf(i)}","domain":${to}}`);
    owner[i] = to;
    const list = slots.get(to)!;
    const free = list.indexOf(-1);
    if (free >= 0) list[free] = i;
    else list.push(i);
  };
  plans.forEach((plan, i) => {
    if (plan.owner !== 0) assign(i, plan.owner);
  });
  const address = (i: number): string => {
    if (owner[i] === 0) return hostSbdf(i);
    return bus0Sbdf(slots.get(owner[i]!)!.indexOf(i) << 3);
  };
  for (const s of steps) {
    if (s.kind === 'fault') {
      lines.push(`{"event":"fault","domain":${s.domain},"after":${s.after}}`);
      continue;
    }
    const i = s.device % plans.length;
    if (s.kind === 'move') {
      if (owner[i] !== 0) {
        lines.push(`{"event":"deassign","sbdf":"${hostSbdf(i)}"}`);
        const list = slots.get(owner[i]!)!;
        list[list.indexOf(i)] = -1;
        owner[i] = 0;
      } else if (s.to !== 0) {
        assign(i, s.to);
      }
      continue;
    }
    const vcpu = `d${owner[i]}v${s.vcpu}`;
    if (s.kind === 'run') {
      lines.push(`{"event":"run","vcpu":"${vcpu}"${s.budget === undefined ? '' : `,"budget":${s.budget}`}}`);
      continue;
    }
    let reg: number;
    let size: 1 | 2 | 4;
    let value: number;
    if (s.kind === 'command') {
      [reg, size, value] = [4, 2, s.memory ? 6 : 4];
    } else if (s.kind === 'raw') {
      [reg, size, value] = [s.reg, s.size, s.value];
    } else {
      const b = s.bar % bars[i]!.length;
      const host = bars[i]![b]!.addr;
      // neighbour: the page of the next device's first BAR (for dom0, moving its BAR next to a page a
      // guest may map).
      const neighbour = bars[(i + 1) % bars.length]![0]!.addr;
      const where = {
        probe: 0xffff_ffff,
        own: 0xe000_0000 + (host % 0x100_0000),
        host,
        shift: host + 0x1000,
        neighbour: neighbour - (neighbour % 0x1000) + (host % 0x1000),
      }[s.placement];
      [reg, size, value] = [0x10 + 4 * b, 4, where >>> 0];
    }
    lines.push(
      `{"event":"write","vcpu":"${vcpu}","sbdf":"${address(i)}","reg":${reg},"size":${size},"value":${value}}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const plans = traceDevicePlans;
export const steps = fc.array(traceStep, { maxLength: 50 });
