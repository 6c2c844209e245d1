import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { formatSbdf, parseSbdf, type Sbdf } from './sbdf.js';

/**
 * The address forms as written out (`ssss:bb:dd.f` or `bb:dd.f`, hexadecimal, device 00 … 1f,
 * function 0 … 7), read the slow, obvious way: the oracle for `parseSbdf`'s digit-by-digit path.
 */
function byPattern(text: string): Sbdf | undefined {
  const m = /^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/.exec(text);
  if (m === null || Number.parseInt(m[3]!, 16) > 31) return undefined;
  return {
    seg: Number.parseInt(m[1] ?? '0', 16),
    bus: Number.parseInt(m[2]!, 16),
    dev: Number.parseInt(m[3]!, 16),
    fn: Number(m[4]),
  };
}

function parsed(text: string): Sbdf | string {
  try {
    const { seg, bus, dev, fn } = parseSbdf(text);
    return { seg, bus, dev, fn };
  } catch (error) {
    return (error as Error).message;
  }
}

/** Addresses as `formatSbdf` writes them, upper-cased or with one character changed or inserted. */
const nearCanonical = fc
  .tuple(
    fc.record({
      seg: fc.integer({ min: 0, max: 0xffff }),
      bus: fc.integer({ min: 0, max: 0xff }),
      dev: fc.integer({ min: 0, max: 31 }),
      fn: fc.integer({ min: 0, max: 7 }),
    }),
    fc.nat(13),
    fc.constantFrom('', 'x', 'g', 'G', ':', '.', '0', 'f', 'F', '8', '\u0010', '/', '@', '`', ' '),
    fc.boolean(),
    fc.boolean(),
  )
  .map(([sbdf, at, change, replace, upper]) => {
    const text = upper ? formatSbdf(sbdf).toUpperCase() : formatSbdf(sbdf);
    return text.slice(0, at) + change + text.slice(replace ? at + 1 : at);
  });

describe('parseSbdf', () => {
  it('reads every address the pattern reads, the same way, and refuses the others (Xen prints %pp as ssss:bb:dd.f)', () => {
    fc.assert(
      fc.property(nearCanonical, (text) => {
        const want = byPattern(text);
        const got = parsed(text);
        if (want === undefined) expect(typeof got).toBe('string');
        else expect(got).toEqual(want);
      }),
      runs(2000),
    );
  });

  it('takes device numbers up to 1f and functions up to 7', () => {
    expect(parsed('0000:00:1f.7')).toEqual({ seg: 0, bus: 0, dev: 31, fn: 7 });
    expect(parsed('ABCD:EF:1F.0')).toEqual({ seg: 0xabcd, bus: 0xef, dev: 31, fn: 0 });
    expect(parsed('0000:00:20.0')).toMatch(/a device number 00 … 1f/);
    expect(parsed('0000:00:02.8')).toMatch(/a PCI address/);
  });
});
