/**
 * The host pages the invariant checks remember per device (packages/vpci/src/host-pages.ts,
 * `HostPagesCache.hostPagesOf`) are worked out again only when their host-side key moved: the
 * hardware's BAR register writes (`barWrites`, a VF's counting its PF's), the vPCI state, and its
 * BARs' type, host address and size (`VpciState.barHostChanges`), not the enabled flag or guest
 * address that every finishing map or unmap (Xen's `modify_decoding`,
 * xen/drivers/vpci/header.c) and every guest BAR move sets. A key missing an input would keep stale
 * pages silently: after every line of random traces of every kind (test/support/lockstep-traces.ts),
 * both profiles, with the replay's own scoped checks reading and refreshing the cache, every
 * device's remembered pages must equal `hostBarFrames` worked out afresh. Lines that set only what
 * the key leaves out (the cache kept, `barChanges` moved) and lines that moved the key must both
 * come up, so neither half of the claim holds only because it was never put to the test.
 */
import { TraceReplay } from '@vpci/replay';
import type { Machine, PciDevice } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostBarFrames } from '../packages/vpci/src/ownership.js';
import { runs } from './support/fast-check-setup.js';
import { LockstepTrace, lockstepPlan } from './support/lockstep-traces.js';

describe('HostPagesCache.hostPagesOf against hostBarFrames worked out afresh, line by line', () => {
  for (const profile of ['xen', 'hardened'] as const) {
    it(`${profile}: every device's remembered host pages after every line`, () => {
      const seen = { compared: 0, keptAcrossFlags: 0, keyMoved: 0 };
      fc.assert(
        fc.property(lockstepPlan(60), (plan) => {
          const replay = new TraceReplay('t.jsonl', { invariantChecks: 'scoped' });
          const trace = new LockstepTrace([replay]);
          const at = trace.start(plan, profile);
          // Each device's vPCI change counts when last compared.
          const counts = new Map<PciDevice, { all: number; host: number }>();
          for (const c of plan.choices) {
            const line = trace.lineFor(plan, c, at);
            if (line === undefined) continue;
            if (!trace.feed(line)) return;
            const machine: Machine = replay.replayer.machine!;
            for (const device of machine.devices()) {
              const cached = machine.invariantCaches.hostPages.hostPagesOf(device);
              const fresh = hostBarFrames(device);
              seen.compared++;
              if (JSON.stringify(cached) !== JSON.stringify(fresh))
                expect.fail(
                  `line ${trace.lines.length}, ${device.name}:\n${trace.lines.join('\n')}\nremembered ${JSON.stringify(cached)}, afresh ${JSON.stringify(fresh)}`,
                );
              const now = { all: device.vpci?.barChanges() ?? 0, host: device.vpci?.barHostChanges() ?? 0 };
              const then = counts.get(device);
              if (then !== undefined && now.all !== then.all) {
                if (now.host === then.host) seen.keptAcrossFlags++;
                else seen.keyMoved++;
              }
              counts.set(device, now);
            }
          }
        }),
        runs(80),
      );
      expect(seen.keptAcrossFlags, JSON.stringify(seen)).toBeGreaterThan(0);
      expect(seen.keyMoved, JSON.stringify(seen)).toBeGreaterThan(0);
    });
  }
});
