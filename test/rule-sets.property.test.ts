/**
 * The other hypervisors' rule sets (`kvm-vfio`, `cloud-hypervisor`; docs/rule-sets.md) over random
 * traces (@vpci/fuzz's `arbTrace`, as replay.property.test.ts): every line replays (none is bad under
 * any rule set), the scoped invariant checks find what whole checks find, and every violation is of
 * a kind the rule set declares as a known hazard (`RuleSet.hazards`), the way Xen's gaps are declared.
 */
import { replayText } from '@vpci/replay';
import { ruleSetFor } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from './support/fast-check-setup.js';
import { randomTraces } from './support/random-traces.js';

describe('rule-set properties', () => {
  for (const rules of ['kvm-vfio', 'cloud-hypervisor'] as const) {
    it(`${rules}: replays every random trace; scoped checks find what whole checks find; only declared hazards`, () => {
      const declared = new Set<string>(ruleSetFor(rules).hazards.map((h) => h.violation));
      fc.assert(
        fc.property(randomTraces({ profile: 'xen', rules }), ({ text }) => {
          const scoped = replayText(text, 't.jsonl', { rules });
          const full = replayText(text, 't.jsonl', { rules, invariantChecks: 'full' });
          expect(scoped.error).toBeNull();
          expect(scoped.violations).toEqual(full.violations);
          for (const v of scoped.violations) expect(declared, String(v.message)).toContain(v.kind);
        }),
        runs(100),
      );
    });
  }
});
