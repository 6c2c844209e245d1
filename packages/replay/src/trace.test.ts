import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runs } from '../../../test/support/fast-check-setup.js';
import { AddressTexts, CompactWrite, compactLineEnd, readCompactWrite } from './compact-bytes.js';
import { TraceError } from './fields.js';
import { compactWrite, parseEvent, parseTraceLine, plainWrite, type TraceEvent } from './trace.js';

/** Values a write line's field may hold: the plain ones and the ones only the general reader takes. */
const anyValue = fc.oneof(
  fc.integer({ min: -2, max: 2 ** 32 + 1 }),
  fc.constantFrom(0, 4, 4095, 4096, 0xffff, 0xffff_ffff, 1.5, -0, Number.NaN, null, true),
  fc.constantFrom('0x10', '16', 'd1v0', 'd0v1', 'dv0', 'd1v', '0000:00:02.0', '00:02.0', ''),
);

/** A write line the fast path should take: every field present and plain. */
const plain = fc.record({
  event: fc.constant('write'),
  vcpu: fc.tuple(fc.nat(40), fc.nat(8)).map(([d, v]) => `d${d}v${v}`),
  sbdf: fc.constant('0000:00:02.0'),
  reg: fc.integer({ min: 0, max: 4092 }),
  size: fc.constantFrom(1, 2, 4),
  value: fc.integer({ min: 0, max: 0xff }),
});

const odd = fc.record(
  {
    event: fc.constant('write'),
    vcpu: fc.oneof(fc.constantFrom('d0v0', 'd12v3', 'd1v0x', 'x1v0'), anyValue),
    sbdf: fc.oneof(fc.constant('0000:00:02.0'), anyValue),
    reg: fc.oneof(fc.integer({ min: 0, max: 4096 }), anyValue),
    size: fc.oneof(fc.constantFrom(1, 2, 4), anyValue),
    value: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), anyValue),
    extra: anyValue,
  },
  { requiredKeys: ['event'] },
);

/** Plain lines, odd ones, and plain ones with one field made odd. */
const writeLike = fc.oneof(
  plain,
  odd,
  fc
    .tuple(plain, fc.constantFrom('vcpu', 'sbdf', 'reg', 'size', 'value', 'extra'), anyValue)
    .map(([json, key, value]) => ({ ...json, [key]: value })),
);

/** What the field-by-field reader makes of `json`, or the message it rejects it with. */
function general(json: Record<string, unknown>): unknown {
  try {
    return parseEvent(1, 'write', json);
  } catch (error) {
    if (error instanceof TraceError) return error.message;
    throw error;
  }
}

describe('plainWrite, the fast path for write lines', () => {
  it('gives what the general reader gives, or leaves the line to it', () => {
    let taken = 0;
    let tried = 0;
    fc.assert(
      fc.property(writeLike, (json) => {
        tried++;
        const fast = plainWrite(json);
        if (fast === undefined) return;
        taken++;
        expect(fast).toEqual(general(json));
      }),
      runs(2000),
    );
    expect(taken).toBeGreaterThan(tried / 40); // the fast path was exercised: 50 of the 2,000 runs by default
  });

  it('is what parseTraceLine uses for a plain write line, and errors still name the field', () => {
    const line = '{"event":"write","vcpu":"d1v0","sbdf":"00:02.0","reg":16,"size":4,"value":4294967295}';
    expect(parseTraceLine(line, 1)).toEqual({
      event: 'write',
      vcpu: { domain: 1, vcpu: 0 },
      sbdf: '00:02.0',
      reg: 16,
      size: 4,
      value: 0xffff_ffff,
    });
    expect(() => parseTraceLine(line.replace('4294967295', '4294967296'), 7)).toThrow(
      /'write\.value' is 4294967296/,
    );
    // A 4-byte access at 4093 is valid input (Xen's vpci_access_allowed drops it: not aligned); 4096
    // is past the config space.
    expect(parseTraceLine(line.replace('"reg":16', '"reg":4093'), 7)).toMatchObject({ reg: 4093 });
    expect(() => parseTraceLine(line.replace('"reg":16', '"reg":4096'), 7)).toThrow(/'write\.reg' is 4096/);
    expect(() => parseTraceLine(line.replace('}', ',"x":1}'), 7)).toThrow(/'write\.x' is not a field/);
  });
});

/** What the reader without the character fast path makes of a line, or the message it rejects it with. */
function viaJson(text: string): unknown {
  try {
    return parseTraceLine(` ${text}`, 1); // a leading space keeps the line off compactWrite
  } catch (error) {
    if (error instanceof TraceError) return error.message;
    throw error;
  }
}

/** Texts near a compact write line: spaces, escapes, leading zeros, big numbers, other key orders. */
const nearCompact = fc.oneof(
  writeLike.map((json) => JSON.stringify(json)),
  fc
    .tuple(
      plain.map((json) => JSON.stringify(json)),
      fc.nat(200),
      fc.constantFrom(
        ' ',
        '0',
        '00',
        '9',
        '1e2',
        '.5',
        '-',
        '\\u0030',
        '\\"',
        '"',
        ',',
        '}',
        '\t',
        '1234567890123456',
        'v',
        'd',
        'x',
        '\u0001',
        '\u007f',
        'é',
        '€',
        '\ufffd',
      ),
    )
    .map(([text, at, insert]) => {
      const i = at % (text.length + 1);
      return text.slice(0, i) + insert + text.slice(i);
    }),
  plain.map((json) =>
    JSON.stringify({ ...json, reg: json.reg, event: 'write' }).replace(
      /"reg":(\d+),"size":(\d)/,
      '"size":$2,"reg":$1',
    ),
  ),
);

describe('compactWrite, the fast path for compact write lines', () => {
  it('reads what JSON.parse and the readers behind it read, or leaves the line to them', () => {
    let taken = 0;
    let tried = 0;
    fc.assert(
      fc.property(nearCompact, (text) => {
        tried++;
        const fast = compactWrite(text);
        if (fast === undefined) return;
        taken++;
        expect(fast).toEqual(viaJson(text));
      }),
      runs(3000),
    );
    // One line in ten at least is taken (300 of the 3,000 runs by default; FC_RUNS scales both).
    expect(taken).toBeGreaterThan(tried / 10);
  });

  it('takes every write line in the compact form (its shape is one regular expression)', () => {
    const compact = fc.record({
      event: fc.constant('write'),
      vcpu: fc.tuple(fc.nat(), fc.nat()).map(([d, v]) => `d${d}v${v}`),
      sbdf: fc.string({ unit: 'binary', maxLength: 16 }),
      reg: fc.integer({ min: 0, max: 4095 }),
      size: fc.constantFrom(1, 2, 4),
      value: fc.nat(0xffff_ffff),
    });
    fc.assert(
      fc.property(compact, (json) => {
        const value = json.value % 2 ** (8 * json.size);
        const text = JSON.stringify({ ...json, value });
        // An address JSON.stringify had to escape (a quote, backslash, control character) is the
        // general reader's; every other line is the fast path's.
        expect(compactWrite(text)).toEqual(text.includes('\\') ? undefined : viaJson(text));
      }),
      runs(1000),
    );
  });

  it('reads a line where it stands in a longer text as it reads the line cut out', () => {
    const around = fc.constantFrom('', '}', '\n', '0', '"', '\r\n{"event":"write"}', ',"x":1}');
    fc.assert(
      fc.property(nearCompact, around, around, (text, before, after) => {
        const whole = before + text + after;
        expect(compactWrite(whole, before.length, before.length + text.length)).toEqual(compactWrite(text));
      }),
      runs(2000),
    );
  });

  it('takes the lines a long trace has, and no line with a space, escape, leading zero or extra key', () => {
    const line =
      '{"event":"write","vcpu":"d12v3","sbdf":"0000:00:02.0","reg":16,"size":4,"value":4294967295}';
    expect(compactWrite(line)).toEqual({
      event: 'write',
      vcpu: { domain: 12, vcpu: 3 },
      sbdf: '0000:00:02.0',
      reg: 16,
      size: 4,
      value: 0xffff_ffff,
    });
    for (const odd of [
      line.replace('"reg":16', '"reg": 16'),
      line.replace('"reg":16', '"reg":016'),
      line.replace('0000:00', '0000\\u003a00'),
      line.replace('}', ',"x":1}'),
      `${line} `,
      line.replace('4294967295', '4294967296'),
      line.replace('"size":4', '"size":3'),
      line.replace('d12v3', 'd12'),
    ])
      expect(compactWrite(odd)).toBeUndefined();
  });
});

const utf8 = new TextEncoder();

/** What `readCompactWrite` reads from `bytes[from … to)`, as the event `compactWrite` gives, or undefined. */
function fromBytes(bytes: Uint8Array, from: number, to: number): TraceEvent | undefined {
  const w = new CompactWrite();
  if (!readCompactWrite(bytes, from, to, w)) return undefined;
  const sbdf = new TextDecoder().decode(bytes.subarray(w.sbdfFrom, w.sbdfTo));
  return {
    event: 'write',
    vcpu: { domain: w.domain, vcpu: w.vcpu },
    sbdf,
    reg: w.reg,
    size: w.size,
    value: w.value,
  };
}

/** Whether the byte path should take a line `compactWrite` takes: ASCII, no number of 16 digits. */
const byteReadable = (text: string): boolean => /^[\x20-\x7f]*$/.test(text) && !/[0-9]{16}/.test(text);

describe('readCompactWrite, the compact write line read from its bytes', () => {
  it('takes from the bytes what compactWrite (and JSON.parse) take from the text, with the same fields, and reads no byte past the line', () => {
    const around = fc.constantFrom('', '}', '\n', '0', '"', '\r\n{"event":"write"}', ',"x":1}', 'é');
    let taken = 0;
    let tried = 0;
    fc.assert(
      fc.property(nearCompact, around, around, (text, before, after) => {
        tried++;
        const head = utf8.encode(before);
        const line = utf8.encode(text);
        const bytes = utf8.encode(before + text + after);
        const fast = fromBytes(bytes, head.length, head.length + line.length);
        const reference = compactWrite(text);
        if (fast !== undefined) {
          taken++;
          expect(fast).toEqual(reference);
          // And what JSON.parse and the general reader make of the line.
          expect(fast).toEqual(viaJson(text));
        } else if (reference !== undefined) {
          // Left to the text path only for what the bytes do not show at once.
          expect(byteReadable(text)).toBe(false);
        }
      }),
      runs(3000),
    );
    // One line in ten at least is taken (300 of the 3,000 runs by default; FC_RUNS scales both).
    expect(taken).toBeGreaterThan(tried / 10);
  });

  it('takes every ASCII write line in the compact form, and leaves any other address to the text path', () => {
    const compact = fc.record({
      event: fc.constant('write'),
      vcpu: fc.tuple(fc.nat(), fc.nat()).map(([d, v]) => `d${d}v${v}`),
      sbdf: fc.string({ unit: 'binary', maxLength: 16 }),
      reg: fc.integer({ min: 0, max: 4095 }),
      size: fc.constantFrom(1, 2, 4),
      // Values in range and, at each size's bound, out of it (the text path refuses those too).
      value: fc.oneof(
        fc.nat(0xffff_ffff),
        fc.constantFrom(0xff, 0x100, 0xffff, 0x1_0000, 0xffff_ffff, 2 ** 32),
      ),
      inRange: fc.boolean(),
    });
    fc.assert(
      fc.property(compact, ({ inRange, ...json }) => {
        const value = inRange ? json.value % 2 ** (8 * json.size) : json.value;
        const text = JSON.stringify({ ...json, value });
        const bytes = utf8.encode(text);
        const fast = fromBytes(bytes, 0, bytes.length);
        if (byteReadable(text) && !text.includes('\\')) expect(fast).toEqual(compactWrite(text));
        else expect(fast).toBeUndefined();
      }),
      runs(1000),
    );
  });

  it('reads the lines a long trace has, and no line with a space, escape, leading zero, extra key or other character', () => {
    const line =
      '{"event":"write","vcpu":"d12v3","sbdf":"0000:00:02.0","reg":16,"size":4,"value":4294967295}';
    const read = (text: string) => fromBytes(utf8.encode(text), 0, utf8.encode(text).length);
    expect(read(line)).toEqual(compactWrite(line));
    for (const odd of [
      line.replace('"reg":16', '"reg": 16'),
      line.replace('"reg":16', '"reg":016'),
      line.replace('0000:00', '0000\\u003a00'),
      line.replace('}', ',"x":1}'),
      `${line} `,
      `${line}\r`,
      line.replace('4294967295', '4294967296'),
      line.replace('"size":4', '"size":3'),
      line.replace('d12v3', 'd12'),
      line.replace('0000:00', '0000:é0'),
      line.replace('"value":4294967295', '"value":1234567890123456'),
      line.replace('"size":4,"value":4294967295', '"size":2,"value":65536'),
      line.replace('"size":4,"value":4294967295', '"size":1,"value":256'),
      line.replace('"reg":16', '"reg":4096'),
    ])
      expect(read(odd)).toBeUndefined();
    // A non-ASCII address is the text path's, which takes it.
    expect(compactWrite(line.replace('0000:00', '0000:é0'))).toMatchObject({ sbdf: '0000:é0:02.0' });
  });
});

describe('compactLineEnd, a compact write line read and its end found in one pass', () => {
  /** The line ends the line splitting (`lineBytes`) knows, and what it keeps of them in the line. */
  const ending = fc.constantFrom('\n', '\r\n', '\r\r\n', ' \n', '\r', '', '\r\n\n');
  /** Lines near the compact form (most of them malformed or not compact), and compact ones. */
  const anyLine = fc.oneof(
    nearCompact,
    plain.map((json) => JSON.stringify(json)),
  );

  it('walks a block of lines as the line splitting then the general reader (JSON.parse) do: the same lines, the same fields, every other line left to the text path', () => {
    let taken = 0;
    let tried = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(anyLine, ending), { minLength: 1, maxLength: 6 }), (lines) => {
        const text = lines.map(([line, end]) => line + end).join('');
        const bytes = utf8.encode(text);
        // The lines as the splitting cuts them: at each newline, one `\r` before it dropped; a last
        // line without a newline (with a `\r` at its end dropped too).
        const raw = text.split('\n');
        if (raw.at(-1) === '') raw.pop();
        const w = new CompactWrite();
        let at = 0;
        raw.forEach((piece, i) => {
          tried++;
          const line = piece.endsWith('\r') ? piece.slice(0, -1) : piece;
          const lineBytes = utf8.encode(line).length;
          // Where the next line starts: past the newline, or at the end of the last line.
          const after = at + utf8.encode(piece).length + (i < raw.length - 1 || text.endsWith('\n') ? 1 : 0);
          const next = compactLineEnd(bytes, at, bytes.length, w);
          if (next < 0) {
            // Left to the text path: the byte reader leaves the line as cut too.
            expect(readCompactWrite(bytes, at, at + lineBytes, new CompactWrite())).toBe(false);
          } else {
            taken++;
            expect(next).toBe(after);
            const sbdf = new TextDecoder().decode(bytes.subarray(w.sbdfFrom, w.sbdfTo));
            const read = {
              event: 'write',
              vcpu: { domain: w.domain, vcpu: w.vcpu },
              sbdf,
              reg: w.reg,
              size: w.size,
              value: w.value,
            };
            expect(read).toEqual(viaJson(line));
            expect(read).toEqual(compactWrite(line));
          }
          at = after;
        });
        expect(at).toBe(bytes.length);
      }),
      runs(1000),
    );
    // One line in ten at least is taken (FC_RUNS scales both).
    expect(taken).toBeGreaterThan(tried / 10);
  });

  it('finds the end of a compact line at a newline, a CRLF or the end, and leaves a line with anything else after its brace', () => {
    const line = '{"event":"write","vcpu":"d0v0","sbdf":"0000:00:02.0","reg":4,"size":2,"value":6}';
    const n = line.length;
    const end = (text: string): number => {
      const bytes = utf8.encode(text);
      return compactLineEnd(bytes, 0, bytes.length, new CompactWrite());
    };
    expect(end(line)).toBe(n);
    expect(end(`${line}\n{}`)).toBe(n + 1);
    expect(end(`${line}\r\n{}`)).toBe(n + 2);
    expect(end(`${line}\r`)).toBe(n + 1);
    for (const odd of [`${line} \n`, `${line}\r\r\n`, `${line}\r{}`, `${line}}`, `${line},`])
      expect(end(odd)).toBe(-1);
    // Reads nothing past `to`: a line cut short is not a compact line.
    const bytes = utf8.encode(`${line}\n`);
    for (let to = 0; to < n; to++) expect(compactLineEnd(bytes, 0, to, new CompactWrite())).toBe(-1);
  });
});

describe('AddressTexts, the texts of the addresses a byte reader met', () => {
  const write = (bytes: Uint8Array): CompactWrite => {
    const w = new CompactWrite();
    expect(readCompactWrite(bytes, 0, bytes.length, w)).toBe(true);
    return w;
  };
  const line = (sbdf: string): Uint8Array =>
    utf8.encode(`{"event":"write","vcpu":"d0v0","sbdf":"${sbdf}","reg":4,"size":2,"value":6}`);

  it('gives the same text object for the same bytes, and each address its own text', () => {
    const texts = new AddressTexts();
    const a = line('0000:00:02.0');
    const first = texts.textOf(a, write(a));
    expect(first).toBe('0000:00:02.0');
    const b = line('0000:00:03.0');
    expect(texts.textOf(b, write(b))).toBe('0000:00:03.0');
    const again = line('0000:00:02.0');
    expect(texts.textOf(again, write(again))).toBe(first);
    // "Aa" and "BB" hash alike (31 * 65 + 97 = 31 * 66 + 66): told apart by their bytes.
    const aa = line('Aa');
    const bb = line('BB');
    expect(write(aa).sbdfHash).toBe(write(bb).sbdfHash);
    expect([texts.textOf(aa, write(aa)), texts.textOf(bb, write(bb)), texts.textOf(aa, write(aa))]).toEqual([
      'Aa',
      'BB',
      'Aa',
    ]);
    // Past the 12 characters packed into two numbers, the bytes tell them apart.
    const long = [line('0000:00:02.0a'), line('0000:00:02.0b'), line('0000:00:02.0a')];
    expect(long.map((bytes) => texts.textOf(bytes, write(bytes)))).toEqual([
      '0000:00:02.0a',
      '0000:00:02.0b',
      '0000:00:02.0a',
    ]);
  });
});

describe('a device line with an MSI capability', () => {
  it('reads msi.vectors, address64 and masking, and names what is wrong', () => {
    const line = (msi: string): string => `{"event":"device","sbdf":"0000:01:00.0","msi":${msi}}`;
    expect(parseTraceLine(line('{"vectors":4,"address64":true,"masking":true}'), 1)).toMatchObject({
      event: 'device',
      spec: { msi: { vectors: 4, address64: true, masking: true } },
    });
    expect(parseTraceLine(line('{"vectors":1}'), 1)).toMatchObject({ spec: { msi: { vectors: 1 } } });
    expect(() => parseTraceLine(line('{"vectors":3}'), 5)).toThrow(
      /'device\.msi\.vectors' is 3; expected 1, 2, 4/,
    );
    expect(() => parseTraceLine(line('{"vectors":64}'), 5)).toThrow(/msi\.vectors/);
    expect(() => parseTraceLine(line('{"vectors":2,"masked":true}'), 5)).toThrow(
      /msi\.masked' is not a field/,
    );
  });
});
