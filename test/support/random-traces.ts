/**
 * Random traces for property tests: devices with sub-page BARs packed by natural alignment into shared
 * pages and MSI-X anywhere, two guests they may be assigned to, and steps: config writes of every size
 * at any offset, BAR probes and moves, decoding toggles, preempted work, injected faults, moves between
 * domains. `trace(plans, steps, profile)` writes one; `plans` and `steps` are their arbitraries.
 */
import fc from 'fast-check';

interface DevicePlan {
  sizes: number[];
  msix: boolean;
  owner: number;
}

const device = fc.record({
  sizes: fc.array(fc.oneof(fc.integer({ min: 4, max: 13 }), fc.integer({ min: 14, max: 22 })), {
    minLength: 1,
    maxLength: 3,
  }),
  msix: fc.boolean(),
  owner: fc.integer({ min: 0, max: 2 }),
});

type Step =
  | { kind: 'command'; device: number; vcpu: number; memory: boolean }
  | {
      kind: 'bar';
      device: number;
      vcpu: number;
      bar: number;
      where: 'probe' | 'own' | 'host' | 'shift' | 'neighbour';
    }
  | { kind: 'raw'; device: number; vcpu: number; reg: number; size: 1 | 2 | 4; value: number }
  | { kind: 'run'; device: number; vcpu: number; budget: number | undefined }
  | { kind: 'fault'; domain: number; after: number }
  | { kind: 'move'; device: number; to: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('command' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      memory: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('bar' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      bar: fc.nat(2),
      where: fc.constantFrom(
        'probe' as const,
        'own' as const,
        'host' as const,
        'shift' as const,
        'neighbour' as const,
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('raw' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      reg: fc.integer({ min: 0, max: 0x4f }),
      size: fc.constantFrom(1 as const, 2 as const, 4 as const),
      value: fc.nat(0xffff_ffff),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('run' as const),
      device: fc.nat(5),
      vcpu: fc.nat(1),
      budget: fc.option(fc.integer({ min: 1, max: 300 }), { nil: undefined }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      domain: fc.nat(2),
      after: fc.integer({ min: 1, max: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('move' as const), device: fc.nat(5), to: fc.nat(2) }),
  },
);

/** A trace from plans and steps: sub-page BARs packed by natural alignment so they share pages. */
export function trace(plans: DevicePlan[], steps: Step[], profile: 'xen' | 'hardened'): string {
  const lines = [`{"event":"host","profile":"${profile}"}`];
  let next = 0xc000_0000;
  const sbdf = (i: number): string => `0000:01:${i.toString(16).padStart(2, '0')}.0`;
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
    lines.push(`{"event":"device","sbdf":"${sbdf(i)}","bars":[${specs}]${msix}}`);
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
    lines.push(`{"event":"assign","sbdf":"${sbdf(i)}","domain":${to}}`);
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
    if (owner[i] === 0) return sbdf(i);
    return `00:${slots.get(owner[i]!)!.indexOf(i).toString(16).padStart(2, '0')}.0`;
  };
  for (const s of steps) {
    if (s.kind === 'fault') {
      lines.push(`{"event":"fault","domain":${s.domain},"after":${s.after}}`);
      continue;
    }
    const i = s.device % plans.length;
    if (s.kind === 'move') {
      if (owner[i] !== 0) {
        lines.push(`{"event":"deassign","sbdf":"${sbdf(i)}"}`);
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
      [reg, size, value] = [s.reg, s.size, s.size === 4 ? s.value : s.value % 2 ** (8 * s.size)];
      if (reg + size > 0x50) reg = 0x50 - size;
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
      }[s.where];
      [reg, size, value] = [0x10 + 4 * b, 4, where >>> 0];
    }
    lines.push(
      `{"event":"write","vcpu":"${vcpu}","sbdf":"${address(i)}","reg":${reg},"size":${size},"value":${value}}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export const plans = fc.array(device, { minLength: 1, maxLength: 4 });
export const steps = fc.array(step, { maxLength: 50 });
