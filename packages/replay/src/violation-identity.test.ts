/**
 * `ViolationIdentities` against the key the replayer made before (kept here as the model): two
 * violations get the same token exactly when their JSON strings, bigints as hex, are the same.
 */
import type { Violation } from '@vpci/vpci';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { ViolationIdentities } from './violation-identity.js';

/** The replayer's key before: the violation's JSON, bigints as hex. */
function modelKey(violation: unknown): string {
  return JSON.stringify(violation, (_key, value) =>
    typeof value === 'bigint' ? `0x${value.toString(16)}` : value,
  );
}

/**
 * Field values drawn from a few, so that violations often share them, including the values JSON
 * writes alike though they differ (0 and -0; NaN, the infinities and null; a bigint and its hex
 * string) and those it leaves out (undefined).
 */
const value = fc.constantFrom<unknown>(
  0,
  -0,
  1,
  0x1000,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  null,
  undefined,
  5n,
  '0x5',
  '5',
  'subpage-shared',
  '0000:01:00.0',
  true,
  false,
  { nested: 5n },
  { nested: '0x5' },
  [1, 2],
);

/** A violation-like object: a few of a few field names, in any order. */
const violation = fc
  .uniqueArray(fc.tuple(fc.constantFrom('kind', 'domain', 'gfn', 'mfn', 'other'), value), {
    selector: ([name]) => name,
    maxLength: 4,
  })
  .map((fields) => Object.fromEntries(fields) as unknown as Violation);

describe('ViolationIdentities', () => {
  it('gives two violations one token exactly when their JSON (bigints as hex) is the same', () => {
    fc.assert(
      fc.property(fc.array(violation, { minLength: 2, maxLength: 12 }), (violations) => {
        const identities = new ViolationIdentities();
        const tokens = violations.map((v) => identities.of(v));
        for (let i = 0; i < violations.length; i++)
          for (let j = 0; j < violations.length; j++)
            expect(tokens[i] === tokens[j]).toBe(modelKey(violations[i]) === modelKey(violations[j]));
      }),
      runs(300),
    );
  });

  it('a field written as its JSON twin (0 and -0, NaN and null, a bigint and its hex, undefined and none): one token', () => {
    const twins: [unknown, unknown][] = [
      [0, -0],
      [Number.NaN, null],
      [Number.NEGATIVE_INFINITY, null],
      [0x1000n, '0x1000'],
      [{ nested: 5n }, { nested: '0x5' }],
    ];
    fc.assert(
      fc.property(violation, fc.constantFrom(...twins), fc.nat(4), (base, [one, other], at) => {
        const fields: [string, unknown][] = Object.entries(base);
        const place = Math.min(at, fields.length);
        /** The violation with a field `twin` holding `twin` put in at `place`. */
        const withTwin = (twin: unknown): Violation =>
          Object.fromEntries([
            ...fields.slice(0, place),
            ['twin', twin],
            ...fields.slice(place),
          ]) as Violation;
        const withOne = withTwin(one);
        const withOther = withTwin(other);
        const withNone = withTwin(undefined);
        const identities = new ViolationIdentities();
        expect(modelKey(withOne)).toBe(modelKey(withOther));
        expect(identities.of(withOne)).toBe(identities.of(withOther));
        expect(identities.of(withNone)).toBe(identities.of(base));
      }),
      runs(200),
    );
  });

  it('a shared page reported again, as a fresh object, line after line: one token', () => {
    const identities = new ViolationIdentities();
    const page = (gfn: number): Violation => ({
      kind: 'subpage-shared',
      domain: 0,
      gfn,
      mfn: gfn,
      other: '0000:01:00.0',
      otherDomain: 1,
    });
    expect(identities.of(page(0xa0000))).toBe(identities.of(page(0xa0000)));
    expect(identities.of(page(0xa0000))).not.toBe(identities.of(page(0xa0001)));
  });
});
