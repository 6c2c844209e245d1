/**
 * The rule sets by name (rule-set.ts says what a rule set is and how to add one): the one place that
 * knows them all, so that the interface module stays free of their code.
 */
import { InvalidArgumentError } from '@vpci/p2m';
import { QEMU_RULES } from './qemu-rules.js';
import { RULE_SET_NAMES, type RuleSet, type RuleSetName } from './rule-set.js';
import { XEN_RULES } from './xen-rules.js';

/** The rule set of a name (default `xen`). Throws for an unknown name, naming the option. */
export function ruleSetFor(name: RuleSetName = 'xen'): RuleSet {
  switch (name) {
    case 'xen':
      return XEN_RULES;
    case 'qemu':
      return QEMU_RULES;
    default:
      throw new InvalidArgumentError('rules', name, `one of ${RULE_SET_NAMES.join(', ')}`);
  }
}
