/**
 * `holdInOrder` against a set made afresh from the wanted entries: the same entries in the same
 * order, whatever the set held before.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { holdInOrder } from './scope-set.js';

/** Distinct entries, in the order given (as the replayer names a scope's devices: each once). */
const entries = fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { maxLength: 5 });

describe('holdInOrder', () => {
  it('holds what a set made afresh holds, in its order', () => {
    fc.assert(
      fc.property(fc.array(entries, { minLength: 1, maxLength: 6 }), (scopes) => {
        const set = new Set<number>();
        let held: number[] = [];
        for (const wanted of scopes) {
          holdInOrder(set, wanted, held);
          expect([...set]).toEqual([...new Set(wanted)]);
          held = wanted;
        }
      }),
      runs(300),
    );
  });

  it('an entry in both, named in another order: the new order', () => {
    const set = new Set(['a', 'b']);
    holdInOrder(set, ['b', 'a'], ['a', 'b']);
    expect([...set]).toEqual(['b', 'a']);
  });

  it('none in both: the old ones taken out after the new ones are in', () => {
    const set = new Set(['a']);
    holdInOrder(set, ['b', 'c'], ['a']);
    expect([...set]).toEqual(['b', 'c']);
  });
});
