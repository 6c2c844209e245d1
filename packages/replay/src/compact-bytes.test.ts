/**
 * The byte reader of compact write lines against the general parser, line after line through one
 * reader: the reader keeps the last line's key (domain, vCPU, address) and takes a line whose first
 * bytes are that key again without reading them (`CompactWrite.keyLength`), so what a line reads to
 * can depend on the line before it. Every line here is read as a replay reads it (`compactLineEnd`,
 * and for a line it leaves, the text path `parseTraceLine`) and by the general parser alone
 * (`parseGeneralLine`: `JSON.parse` and the field readers), and both must give the same event or the
 * same error, word for word.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { AddressTexts, CompactWrite, compactLineEnd } from './compact-bytes.js';
import { TraceError } from './fields.js';
import { parseGeneralLine, parseTraceLine } from './trace.js';

const utf8 = new TextEncoder();
const decoder = new TextDecoder();

/** An event, or the message of the `TraceError` reading the line ended in. */
function outcome(read: () => unknown): unknown {
  try {
    return read() ?? 'no event';
  } catch (error) {
    if (error instanceof TraceError) return `error: ${error.message}`;
    throw error;
  }
}

/**
 * Reads `lines` (each ended by `\n`, or `\r\n` where `crlf` says) from one block of bytes as a replay
 * does, with one reader and one address cache for them all: each line's outcome, and how many the
 * byte reader took.
 */
function readAsReplay(
  lines: readonly string[],
  crlf: readonly boolean[],
): { outcomes: unknown[]; taken: number } {
  const text = lines.map((line, i) => line + (crlf[i] ? '\r\n' : '\n')).join('');
  const bytes = Buffer.from(utf8.encode(text));
  const write = new CompactWrite();
  const addresses = new AddressTexts();
  const outcomes: unknown[] = [];
  let taken = 0;
  let at = 0;
  lines.forEach((line, i) => {
    const lineBytes = utf8.encode(line).length;
    const after = at + lineBytes + (crlf[i] ? 2 : 1);
    const next = compactLineEnd(bytes, at, bytes.length, write);
    if (next >= 0) {
      taken++;
      expect(next).toBe(after);
      outcomes.push({
        event: 'write',
        vcpu: { domain: write.domain, vcpu: write.vcpu },
        sbdf: addresses.textOf(bytes, write),
        reg: write.reg,
        size: write.size,
        value: write.value,
      });
    } else {
      outcomes.push(outcome(() => parseTraceLine(decoder.decode(bytes.subarray(at, at + lineBytes)), i + 1)));
    }
    at = after;
  });
  expect(at).toBe(bytes.length);
  return { outcomes, taken };
}

/** What the general parser makes of each line. */
const general = (lines: readonly string[]): unknown[] =>
  lines.map((line, i) => outcome(() => parseGeneralLine(line, i + 1)));

/** A compact write line of these fields, as `JSON.stringify` writes one (keys in their order). */
const compactLine = (vcpu: string, sbdf: string, reg: string, size: string, value: string): string =>
  `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":${reg},"size":${size},"value":${value}}`;

/** Numbers as a line may spell them: in range, at and past each bound, leading zeros, huge, not numbers. */
const number = (largest: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 12, arbitrary: fc.nat(largest).map(String) },
    fc.constantFrom(
      '0',
      '00',
      '01',
      String(largest),
      String(largest + 1),
      '255',
      '256',
      '65535',
      '65536',
      '4095',
      '4096',
      '4294967295',
      '4294967296',
      '9999999999',
      '99999999999',
      '999999999999999',
      '1234567890123456',
      '1e2',
      '-1',
      '1.5',
      '"4"',
      '"0x10"',
    ),
  );

/** vCPUs: the usual few, leading zeros, long ones (a key past 64 bytes is read every time), bad ones. */
const vcpuText = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('d0v0', 'd1v0', 'd2v1', 'd12v3') },
  fc.tuple(fc.nat(40000), fc.nat(300)).map(([d, v]) => `d${d}v${v}`),
  fc.constantFrom('d00v0', 'd0v00', 'd123456789012345v1', 'dv0', 'd1v', 'd1x0', 'x0v0', ''),
);

/** Addresses: the bench's and Xen's form, short and long ones, escapes, non-ASCII, quotes. */
const sbdfText = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('0000:01:05.0', '0000:00:02.0', '0000:01:06.0', '00:02.0') },
  fc
    .tuple(fc.nat(0xffff), fc.nat(255), fc.nat(31), fc.nat(7))
    .map(
      ([s, b, d, f]) =>
        `${s.toString(16).padStart(4, '0')}:${b.toString(16).padStart(2, '0')}:${d.toString(16).padStart(2, '0')}.${f}`,
    ),
  fc.constantFrom(
    '',
    '0000:00:02.0a',
    '0000:00:02.0 ',
    'x'.repeat(40),
    '0000\\u003a00:02.0',
    '0000:é0:02.0',
    '0000:00:02.0\u007f',
    'Aa',
    'BB',
  ),
);

/** Sizes: 1, 2 and 4 mostly, and some no access has. */
const sizeText = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('1', '2', '4') },
  fc.constantFrom('3', '0', '8', '12', '"4"'),
);

/** A compact write line with every field varied. */
const someCompactLine = fc
  .tuple(vcpuText, sbdfText, number(4095), sizeText, number(0xffff_ffff))
  .map(([vcpu, sbdf, reg, size, value]) => compactLine(vcpu, sbdf, reg, size, value));

/** Bytes that may stand in for one of a line's: its own neighbours, digits, quotes, spaces, non-ASCII. */
const replacement = fc.oneof(
  fc.constantFrom(
    '0',
    '1',
    '9',
    '"',
    ':',
    ',',
    '{',
    '}',
    ' ',
    '\t',
    '\\',
    'v',
    'd',
    'é',
    '€',
    '\u0000',
    '\u007f',
  ),
  fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
);

/** How the next line comes from the one before: the same key and another tail, or changed anywhere. */
type Change =
  | { kind: 'fresh'; line: string }
  | { kind: 'retail'; reg: string; size: string; value: string }
  | { kind: 'replace'; at: number; by: string }
  | { kind: 'insert'; at: number; by: string }
  | { kind: 'delete'; at: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'reorder' }
  | { kind: 'spaced' };

const change: fc.Arbitrary<Change> = fc.oneof(
  { weight: 3, arbitrary: someCompactLine.map((line) => ({ kind: 'fresh' as const, line })) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(number(4095), sizeText, number(0xffff_ffff))
      .map(([reg, size, value]) => ({ kind: 'retail' as const, reg, size, value })),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.nat(200), replacement).map(([at, by]) => ({ kind: 'replace' as const, at, by })),
  },
  fc.tuple(fc.nat(200), replacement).map(([at, by]) => ({ kind: 'insert' as const, at, by })),
  fc.nat(200).map((at) => ({ kind: 'delete' as const, at })),
  fc.nat(200).map((at) => ({ kind: 'truncate' as const, at })),
  fc.constant({ kind: 'reorder' as const }),
  fc.constant({ kind: 'spaced' as const }),
);

/** The line `c` makes of `previous`. */
function applyChange(previous: string, c: Change): string {
  const i = 'at' in c ? c.at % (previous.length + 1) : 0;
  switch (c.kind) {
    case 'fresh':
      return c.line;
    case 'retail': {
      const key = /^.*?"reg":/.exec(previous)?.[0];
      return key === undefined ? previous : `${key}${c.reg},"size":${c.size},"value":${c.value}}`;
    }
    case 'replace':
      return previous.slice(0, i) + c.by + previous.slice(i + 1);
    case 'insert':
      return previous.slice(0, i) + c.by + previous.slice(i);
    case 'delete':
      return previous.slice(0, i) + previous.slice(i + 1);
    case 'truncate':
      return previous.slice(0, i);
    case 'reorder':
      return previous.replace(/"reg":([^,]*),"size":([^,]*)/, '"size":$2,"reg":$1');
    case 'spaced':
      return previous.replace(/,"/g, ', "');
  }
}

/**
 * Runs of lines, each made from the one before it (so the reader's kept key meets near misses): a
 * change of one byte, a truncation and the like is made to the last line with a new key or tail,
 * so that the run does not drift away from the compact form.
 */
const lineRuns = fc
  .tuple(someCompactLine, fc.array(fc.tuple(change, fc.boolean()), { minLength: 1, maxLength: 24 }))
  .map(([first, changes]) => {
    const lines = [first];
    const crlf = [false];
    let base = first;
    for (const [c, cr] of changes) {
      // A line holds no newline (the splitting cuts there) and does not end in `\r` (it would be
      // read without it): a change that makes one is not made.
      const next = applyChange(base, c);
      const line = /[\n\r]/.test(next) ? base : next;
      if (c.kind === 'fresh' || c.kind === 'retail') base = line;
      lines.push(line);
      crlf.push(cr);
    }
    return { lines, crlf };
  });

describe('the compact-line byte reader against the general parser, line after line', () => {
  it('gives every line the event or the error the general parser gives it, whatever the lines before', () => {
    let taken = 0;
    let tried = 0;
    fc.assert(
      fc.property(lineRuns, ({ lines, crlf }) => {
        const read = readAsReplay(lines, crlf);
        expect(read.outcomes).toEqual(general(lines));
        taken += read.taken;
        tried += lines.length;
      }),
      runs(400),
    );
    // The runs reach the reader's fast path and its fallback both: one line in ten at least is taken from its bytes.
    expect(taken).toBeGreaterThan(tried / 10);
    expect(taken).toBeLessThan(tried);
  });

  it('names the address of the key now in a slot, not the one it pushed out (the text kept with the key)', () => {
    // Keys that differ in the address's segment alone land in one slot (`keySlot` hashes the vCPU,
    // bus, device and function): each pushes the other out, and its text must go with it.
    const lines = [
      compactLine('d0v0', '0000:00:02.0', '4', '2', '6'),
      compactLine('d0v0', '0001:00:02.0', '4', '2', '6'),
      compactLine('d0v0', '0000:00:02.0', '4', '2', '7'),
      compactLine('d0v0', '0001:00:02.0', '4', '2', '7'),
      compactLine('d0v0', '0001:00:02.0', '4', '2', '8'),
    ];
    const bytes = Buffer.from(utf8.encode(lines.map((line) => `${line}\n`).join('')));
    const write = new CompactWrite();
    const addresses = new AddressTexts();
    const slots: unknown[] = [];
    const named: string[] = [];
    for (let at = 0; at < bytes.length; ) {
      at = compactLineEnd(bytes, at, bytes.length, write);
      expect(at).toBeGreaterThan(0);
      slots.push(write.key);
      named.push(addresses.textOf(bytes, write));
    }
    expect(new Set(slots).size).toBe(1);
    expect(named).toEqual(lines.map((line) => (JSON.parse(line) as { sbdf: string }).sbdf));
  });

  it('keeps the keys of a machine of 4,096 devices, each met again from its slot (the table grows)', () => {
    // Every device of the scale row's larger machine, as the hardware domain's and a guest's.
    const lines: string[] = [];
    for (let i = 0; i < 4096; i++) {
      const sbdf = `0000:${(1 + (i >> 5)).toString(16).padStart(2, '0')}:${(i & 31).toString(16).padStart(2, '0')}.0`;
      lines.push(compactLine(i % 2 === 0 ? 'd0v0' : 'd3v0', sbdf, String(i % 4096), '4', String(i)));
    }
    const bytes = Buffer.from(utf8.encode(lines.map((line) => `${line}\n`).join('')));
    const write = new CompactWrite();
    const addresses = new AddressTexts();
    let metAgain = 0;
    // The table grows in the first two passes (each growth empties it): the last one meets them kept.
    for (let pass = 0; pass < 4; pass++) {
      let at = 0;
      for (const line of lines) {
        at = compactLineEnd(bytes, at, bytes.length, write);
        expect(at).toBeGreaterThan(0);
        // A key read again (not met in its slot) has no text yet.
        if (pass === 3 && write.key >= 0 && write.keys.text(write.key) !== undefined) metAgain++;
        const event = JSON.parse(line) as { vcpu: string; sbdf: string; reg: number; value: number };
        expect([
          `d${write.domain}v${write.vcpu}`,
          addresses.textOf(bytes, write),
          write.reg,
          write.value,
        ]).toEqual([event.vcpu, event.sbdf, event.reg, event.value]);
      }
    }
    // 4,096 keys in 65,536 slots: a key shares its slot with another for about 6 % of them (with
    // 1,024 slots, nearly all of them).
    expect(metAgain).toBeGreaterThan(0.85 * lines.length);
  });

  it('meets a key again exactly when no other key took its slot since (a map of slot to key as the model)', () => {
    // Keys of 2,048 devices seen from two vCPUs each, in a seeded order: the model is a map from slot
    // (where the reader put the line's key) to the last key put there, emptied when the table grows.
    // A key is met when its text is kept (`textOf` keeps it for every line; a key read again has
    // none). A slot's numbers or references spilling into another's, or one left behind at a growth,
    // makes the reader meet a key the model does not, or miss one the model meets.
    const keys: string[] = [];
    for (let i = 0; i < 2048; i++)
      for (const vcpu of ['d0v0', 'd12v3']) {
        const sbdf = `0000:${(i >> 5).toString(16).padStart(2, '0')}:${(i & 31).toString(16).padStart(2, '0')}.${i & 7}`;
        keys.push(compactLine(vcpu, sbdf, '4', '2', '6'));
      }
    const sbdfs = keys.map((line) => (JSON.parse(line) as { sbdf: string }).sbdf);
    // A seeded order of the keys (Park-Miller's generator, seed 16): the same lines on every run.
    let state = 16;
    const order = Array.from({ length: 6 * keys.length }, () => {
      state = (state * 48271) % 0x7fff_ffff;
      return state % keys.length;
    });
    const bytes = Buffer.from(utf8.encode(order.map((k) => `${keys[k]}\n`).join('')));
    const write = new CompactWrite();
    const addresses = new AddressTexts();
    const model = new Map<number, number>();
    let shift = write.keys.shift;
    // Lines whose outcome differs from the model's: [line, met, model's met, address named].
    const wrong: [number, boolean, boolean, string][] = [];
    let met = 0;
    let at = 0;
    order.forEach((k, line) => {
      at = compactLineEnd(bytes, at, bytes.length, write);
      if (write.keys.shift !== shift) {
        shift = write.keys.shift;
        model.clear();
      }
      const isMet = write.key >= 0 && write.keys.text(write.key) !== undefined;
      const modelMet = model.get(write.key) === k;
      const named = addresses.textOf(bytes, write);
      if (isMet) met++;
      if (at < 0 || isMet !== modelMet || named !== sbdfs[k]) wrong.push([line, isMet, modelMet, named]);
      model.set(write.key, k);
    });
    expect(wrong).toEqual([]);
    expect(met).toBeGreaterThan(order.length / 2);
  });

  it('reads a domain or vCPU past 2^31 on every line of its key (such a key is not kept: the slot holds int32s)', () => {
    // Keys of 56 to 64 bytes, the length kept, with a short address to make room for the digits.
    const lines: string[] = [];
    for (const vcpu of ['d4294967297v0', 'd2147483648v1', 'd1v2147483648', 'd2147483647v2147483647'])
      for (const value of ['1', '2', '3']) lines.push(compactLine(vcpu, '00:02.0', '4', '2', value));
    const { outcomes, taken } = readAsReplay(
      lines,
      lines.map(() => false),
    );
    expect(taken).toBe(lines.length);
    expect(outcomes).toEqual(general(lines));
  });

  it('reads a line one byte away from the last one (anywhere in it) as the general parser does', () => {
    const base = compactLine('d12v3', '0000:00:02.0', '16', '4', '4294967295');
    for (let at = 0; at <= base.length; at++)
      for (const by of ['0', '1', '"', ' ', 'é', '\u007f', 'x', '']) {
        const near = base.slice(0, at) + by + base.slice(at + 1);
        if (near.includes('\n')) continue;
        const lines = [base, near, base, near];
        expect(readAsReplay(lines, [false, true, false, false]).outcomes).toEqual(general(lines));
      }
  });

  it('takes a long run of one device from its bytes, each line with its own register and value', () => {
    const lines = [
      compactLine('d0v0', '0000:01:05.0', '4', '2', '1030'),
      compactLine('d0v0', '0000:01:05.0', '66', '2', '49152'),
      compactLine('d0v0', '0000:01:05.0', '6', '2', '63744'),
      compactLine('d0v0', '0000:01:05.0', '60', '1', '7'),
      compactLine('d0v0', '0000:01:05.0', '16', '4', '4294967295'),
      compactLine('d0v0', '0000:01:05.0', '4095', '4', '0'),
      compactLine('d0v0', '0000:01:05.0', '4096', '4', '0'),
      compactLine('d0v0', '0000:01:05.0', '16', '1', '256'),
      compactLine('d0v0', '0000:01:05.0', '16', '4', '4294967296'),
      compactLine('d0v0', '0000:01:05.0', '016', '4', '0'),
      compactLine('d0v0', '0000:01:05.0', '16', '4', '00'),
      compactLine('d1v0', '0000:00:02.0', '4', '2', '6'),
      compactLine('d0v0', '0000:01:05.0', '4', '2', '6'),
    ];
    const read = readAsReplay(
      lines,
      lines.map(() => false),
    );
    expect(read.outcomes).toEqual(general(lines));
    // The five bad ones (register or value out of range, leading zeros) go to the general parser.
    expect(read.taken).toBe(lines.length - 5);
    expect(read.outcomes[6]).toMatch(/^error: .*'write\.reg' is 4096/);
  });

  it('reads the lines of docs/trace-format.md, and their compact forms, as the general parser does', () => {
    const doc = readFileSync(new URL('../../../docs/trace-format.md', import.meta.url), 'utf8');
    const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].flatMap((block) =>
      block[1]!.split('\n').filter((line) => line.startsWith('{')),
    );
    const writes = examples.filter((line) => line.includes('"event":"write"'));
    expect(writes.length).toBeGreaterThan(0);
    // Each example write with its hex strings as numbers: the compact form a long trace has.
    const compact = writes.map((line) =>
      line.replace(
        /"(reg|value)":"0x([0-9a-f]+)"/g,
        (_, key: string, hex: string) => `"${key}":${Number.parseInt(hex, 16)}`,
      ),
    );
    const lines = [...examples, ...compact];
    const read = readAsReplay(
      lines,
      lines.map((_, i) => i % 2 === 1),
    );
    expect(read.outcomes).toEqual(general(lines));
    expect(read.taken).toBeGreaterThan(0);
  });
});
