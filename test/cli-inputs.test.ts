/**
 * `vpci-replay` on malformed and extreme inputs: every one is answered within seconds with exit 0, 1 or
 * 2, a message that names the file and line (or the argument) and says what was expected, and never a
 * stack trace. The expected messages are the tool's documented contract (docs/trace-format.md, the
 * CLI's usage text), and the limits come from the PCI spec (an I/O BAR is at most 256 bytes) and from
 * JSON (integers beyond 2^53 lose digits as numbers).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { replayCli } from '@vpci/replay';
import { describe, expect, it } from 'vitest';
import { cli, scratchDirectory, writeTrace } from './support/cli.js';

const dir = scratchDirectory('vpci-cli-inputs-');

let files = 0;
/** A file in the scratch directory holding `content`; lines are joined with newlines. */
function file(content: string | Buffer | readonly string[], name = `t${files++}.jsonl`): string {
  return writeTrace(dir, name, content);
}

const HOST = '{"event":"host"}';

/** An `lspci -xxx` dump of 256 bytes: a type-0 header with ids 1b36:0005, zero but for `bytes`. */
function lspciImage(bytes: Record<number, number[]>): string[] {
  const config = new Array<number>(256).fill(0);
  config.splice(0, 4, 0x36, 0x1b, 0x05, 0x00);
  for (const [offset, values] of Object.entries(bytes))
    config.splice(Number(offset), values.length, ...values);
  const lines: string[] = [];
  for (let row = 0; row < 256; row += 16) {
    const hex = config.slice(row, row + 16).map((b) => b.toString(16).padStart(2, '0'));
    lines.push(`${row.toString(16).padStart(2, '0')}: ${hex.join(' ')}`);
  }
  return lines;
}
const DEV =
  '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe000000"}]}';
const BOOT = '{"event":"boot"}';
const WRITE = (fields: string) => `{"event":"write","vcpu":"d0v0",${fields}}`;
const GOOD = [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":"0x04","size":2,"value":2')];

/** A case: the arguments (a trace file's content is put in a file and named last), exit status, message. */
interface Case {
  readonly name: string;
  readonly trace?: string | Buffer | readonly string[];
  readonly args?: readonly string[];
  readonly stdin?: (string | Buffer)[];
  readonly status: 0 | 1 | 2;
  /** What stderr must say (for status 2), or stdout (for 0 and 1). */
  readonly says?: RegExp;
  /** Whether the trace file's name and a line number must lead the message. */
  readonly line?: number;
}

const traceCases: Case[] = [
  // Files that hold no replayable trace.
  { name: 'an empty file', trace: '', status: 2, says: /no events \(it is empty\)/, line: 1 },
  {
    name: 'a file of comments',
    trace: ['# a', '# b'],
    status: 2,
    says: /only blank and comment lines/,
    line: 2,
  },
  { name: 'a file of blank lines', trace: ['', '  ', ''], status: 2, says: /no events/ },
  {
    name: 'a file of binary bytes',
    trace: Buffer.from([0, 1, 2, 255, 254, 10, 7]),
    status: 2,
    says: /not JSON/,
    line: 1,
  },
  {
    name: 'a NUL in a line',
    trace: `${HOST.slice(0, 5)}\u0000${HOST.slice(5)}\n`,
    status: 2,
    says: /not JSON/,
    line: 1,
  },
  {
    name: 'a line that is not JSON',
    trace: [HOST, 'event: device'],
    status: 2,
    says: /not JSON.*expected one JSON object per line/,
    line: 2,
  },
  { name: 'a JSON array line', trace: ['[1,2]'], status: 2, says: /not an object/, line: 1 },
  { name: 'a JSON string line', trace: ['"host"'], status: 2, says: /not an object/, line: 1 },
  { name: 'a JSON null line', trace: ['null'], status: 2, says: /not an object/, line: 1 },
  {
    name: 'a line with no event field',
    trace: ['{"profile":"xen"}'],
    status: 2,
    says: /'event' is missing; expected one of/,
    line: 1,
  },
  {
    name: 'an unknown event',
    trace: ['{"event":"hots"}'],
    status: 2,
    says: /"hots"; expected one of: .*host/,
    line: 1,
  },
  {
    name: 'an event that is not a string',
    trace: ['{"event":7}'],
    status: 2,
    says: /expected one of/,
    line: 1,
  },
  {
    name: 'a truncated JSON line',
    trace: [HOST, '{"event":"device","sbdf":"0000:03:00.0"'],
    status: 2,
    says: /not JSON/,
    line: 2,
  },
  // What JSON.parse lets through.
  {
    name: 'a key given twice',
    trace: ['{"event":"host","profile":"xen","profile":"hardened"}'],
    status: 2,
    says: /key "profile" appears twice/,
    line: 1,
  },
  {
    name: 'a key given twice in a nested object',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x1000","size":"0x2000"}]}',
    ],
    status: 2,
    says: /key "size" appears twice/,
    line: 2,
  },
  {
    // camp4 campaign: the second spelling went unseen and its value won (JSON.parse reads both as
    // "value"); docs/trace-format.md makes "a key given twice in one object" an error.
    name: 'a key given twice, once with an escape',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":"0x04","size":2,"value":2,"valu\\u0065":0')],
    status: 2,
    says: /key "value" appears twice/,
    line: 4,
  },
  {
    name: 'an escaped key given once is fine',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":"0x04","size":2,"\\u0076alue":2')],
    status: 0,
  },
  { name: 'the same key in two objects is fine', trace: GOOD, status: 0 },
  {
    name: '1e400',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":2,"value":1e400')],
    status: 2,
    says: /1e400 is beyond the range of a JSON number/,
    line: 4,
  },
  {
    name: '-1e400',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":2,"value":-1e400')],
    status: 2,
    says: /beyond the range/,
    line: 4,
  },
  {
    name: '2^64 - 1 as a JSON number',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":4096,"addr":18446744073709551615}]}',
    ],
    status: 2,
    says: /18446744073709551615 is beyond 2\^53.*write it as a string/,
    line: 2,
  },
  {
    name: '2^53 + 1 as a JSON number',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":2,"value":9007199254740993')],
    status: 2,
    says: /beyond 2\^53/,
    line: 4,
  },
  {
    name: '2^53 - 1 is still exact',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":2,"value":9007199254740991')],
    status: 2,
    says: /'write.value'/,
    line: 4,
  },
  {
    name: 'a ten-million-digit number',
    trace: [HOST, DEV, BOOT, WRITE(`"sbdf":"03:00.0","reg":4,"size":2,"value":${'9'.repeat(10_000_000)}`)],
    status: 2,
    says: /9{12}…\(10000000 characters\) is beyond 2\^53/,
    line: 4,
  },
  {
    name: 'a value nested 100,000 deep',
    trace: [HOST, `{"event":"boot","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`],
    status: 2,
    says: /nest more than 32 deep/,
    line: 2,
  },
  {
    name: 'a nested object where a number belongs',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":{"a":[1,[2]]},"size":2,"value":2')],
    status: 2,
    says: /'write.reg' is \{"a":\[1,\[2\]\]\}; expected an integer/,
    line: 4,
  },
  {
    name: 'a megabyte-long string value',
    trace: [HOST, DEV, BOOT, WRITE(`"sbdf":"${'x'.repeat(1 << 20)}","reg":4,"size":2,"value":2`)],
    status: 2,
    line: 4,
  },
  {
    name: 'a line beyond 16 MiB',
    trace: [HOST, `{"event":"boot","pad":"${'x'.repeat(17 << 20)}"}`],
    status: 2,
    says: /longer than 16 MiB/,
    line: 2,
  },
  // Line endings and encodings that are fine.
  { name: 'CRLF line endings', trace: `${GOOD.join('\r\n')}\r\n`, status: 0 },
  { name: 'no newline after the last line', trace: GOOD.join('\n'), status: 0 },
  { name: 'a UTF-8 byte order mark', trace: `\ufeff${GOOD.join('\n')}\n`, status: 0 },
  { name: 'comments between events', trace: [HOST, '# the device', DEV, '', BOOT], status: 0 },
  // Fields.
  {
    name: 'an unknown field (a typo)',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":2,"valeu":2')],
    status: 2,
    says: /'write.value' is missing; .*\(the line has 'valeu': a typo\?\)/,
    line: 4,
  },
  {
    name: 'a missing field',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":2')],
    status: 2,
    says: /'write.value' is missing/,
    line: 4,
  },
  {
    name: 'an access size of 3',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":3,"value":2')],
    status: 2,
    says: /'write.size' is 3; expected/,
    line: 4,
  },
  {
    name: 'a register beyond extended config space',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4096,"size":4,"value":2')],
    status: 2,
    says: /'write.reg' is 4096; expected an integer in 0 … 409\d/,
    line: 4,
  },
  {
    name: 'a negative register',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":-4,"size":4,"value":2')],
    status: 2,
    says: /'write.reg' is -4/,
    line: 4,
  },
  {
    name: 'a fractional register',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4.5,"size":4,"value":2')],
    status: 2,
    says: /'write.reg' is 4.5/,
    line: 4,
  },
  {
    name: 'a value wider than its access',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":4,"size":2,"value":"0x10000"')],
    status: 2,
    says: /'write.value'/,
    line: 4,
  },
  {
    name: 'a bad hexadecimal string',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.0","reg":"0xZZ","size":4,"value":2')],
    status: 2,
    says: /'write.reg' is "0xZZ"/,
    line: 4,
  },
  {
    name: 'a malformed SBDF',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"zz:00.0","reg":4,"size":2,"value":2')],
    status: 2,
    says: /zz:00.0/,
    line: 4,
  },
  {
    name: 'an SBDF with function 8',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:00.8","reg":4,"size":2,"value":2')],
    status: 2,
    says: /03:00.8/,
    line: 4,
  },
  {
    name: 'a device that does not exist',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"04:00.0","reg":4,"size":2,"value":2')],
    status: 2,
    says: /'write.sbdf' is "04:00.0", which is not a device on the machine/,
    line: 4,
  },
  {
    name: 'a vCPU that does not exist',
    trace: [HOST, DEV, BOOT, '{"event":"write","vcpu":"d7v0","sbdf":"03:00.0","reg":4,"size":2,"value":2}'],
    status: 2,
    says: /'vcpu' is "d7v0", but domain 7 does not exist; expected one of: d0v0, d0v1/,
    line: 4,
  },
  {
    name: 'a vCPU name that is not one',
    trace: [HOST, DEV, BOOT, '{"event":"write","vcpu":"cpu0","sbdf":"03:00.0","reg":4,"size":2,"value":2}'],
    status: 2,
    says: /cpu0/,
    line: 4,
  },
  {
    name: 'a profile that does not exist',
    trace: ['{"event":"host","profile":"paranoid"}'],
    status: 2,
    says: /'host.profile' is "paranoid"; expected 'xen', 'hardened'/,
    line: 1,
  },
  {
    name: 'a rule set that does not exist',
    trace: ['{"event":"host","rules":"bhyve"}'],
    status: 2,
    says: /'host.rules' is "bhyve"; expected 'xen', 'qemu'/,
    line: 1,
  },
  {
    name: 'a policy switch that does not exist',
    trace: ['{"event":"host","policy":{"refuseEverything":true}}'],
    status: 2,
    says: /refuseEverything/,
    line: 1,
  },
  {
    name: 'a vendor that does not exist',
    trace: ['{"event":"host","vendor":"via"}'],
    status: 2,
    says: /'host.vendor' is "via"/,
    line: 1,
  },
  {
    name: 'an address width beyond 52 bits',
    trace: ['{"event":"host","physAddrBits":57}'],
    status: 2,
    says: /'host.physAddrBits' is 57; expected an integer in 36 … 52/,
    line: 1,
  },
  {
    name: 'a run budget of -1',
    trace: [HOST, DEV, BOOT, '{"event":"run","vcpu":"d0v0","budget":-1}'],
    status: 2,
    says: /'run.budget' is -1/,
    line: 4,
  },
  {
    name: 'an assertion of an unknown kind',
    trace: [HOST, '{"event":"assert","mapz":{}}'],
    status: 2,
    says: /'assert.mapz' is not a field of assert; expected one of: .*maps/,
    line: 2,
  },
  {
    name: 'a host MTRR range that is not a power of two',
    trace: ['{"event":"host","mtrr":{"variable":[{"base":"0x1000","size":"0x3000","type":"UC"}]}}'],
    status: 2,
    says: /'host.mtrr.variable\[0\].size' is 0x3000; expected a power of two of at least 4096 bytes\n/,
    line: 1,
  },
  {
    name: 'a guest MTRR range that is not aligned',
    trace: [
      HOST,
      '{"event":"domain","id":1,"mtrr":{"variable":[{"base":"0x1000","size":"0x2000","type":"UC"}]}}',
    ],
    status: 2,
    says: /'domain.mtrr.variable\[0\].base' is 0x1000; expected a multiple of the size \(0x2000\)/,
    line: 2,
  },
  {
    name: 'too many MSI-X entries (a nested field, named once)',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","msix":{"entries":5000,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":"0x800"}},"bars":[{"type":"mem32","size":"0x1000"}]}',
    ],
    status: 2,
    says: /: 'device.msix.entries' is 5000; expected an integer in 1 … 2048\n$/,
    line: 2,
  },
  // Devices that cannot exist.
  {
    name: 'an I/O BAR larger than 256 bytes',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"io","size":"0x200","addr":"0xc000"}]}',
    ],
    status: 2,
    says: /'device.bars\[0\].size' is 0x200; expected a power of two from 4 bytes to 256 bytes \(an I\/O BAR requests at most 256\)/,
    line: 2,
  },
  {
    name: 'a BAR size that is not a power of two',
    trace: [HOST, '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem32","size":"0x3000"}]}'],
    status: 2,
    says: /'device.bars\[0\].size' is 0x3000; expected a power of two/,
    line: 2,
  },
  {
    name: 'a 64-bit BAR in the last slot',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[null,null,null,null,null,{"type":"mem64","size":"0x1000"}]}',
    ],
    status: 2,
    says: /'device.bars\[5\].type' is "mem64"; expected 'mem32' or 'io': a 64-bit BAR takes two slots, and slot 5 is the last of 6/,
    line: 2,
  },
  {
    name: 'a 64-bit BAR whose upper slot is used',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x1000"},{"type":"mem32","size":"0x1000"}]}',
    ],
    status: 2,
    says: /'device.bars\[1\]' is \{"type":"mem32","size":"0x1000".*; expected null: slot 1 holds the upper half of the 64-bit BAR in slot 0/,
    line: 2,
  },
  {
    name: 'seven BAR slots',
    trace: [HOST, '{"event":"device","sbdf":"0000:03:00.0","bars":[null,null,null,null,null,null,null]}'],
    status: 2,
    says: /'device.bars'.*at most 6/,
    line: 2,
  },
  { name: 'a device added twice', trace: [HOST, DEV, DEV], status: 2, says: /0000:03:00.0/, line: 3 },
  {
    name: 'overlapping e820 entries',
    trace: [
      '{"event":"host","e820":[{"addr":"0x0","size":"0x100000","type":"ram"},{"addr":"0x80000","size":"0x1000","type":"reserved"}]}',
    ],
    status: 2,
    says: /'host.e820\[1\]'.*overlaps 'host.e820\[0\]'/,
    line: 1,
  },
  {
    name: 'an e820 entry of size 0',
    trace: ['{"event":"host","e820":[{"addr":"0x0","size":0,"type":"ram"}]}'],
    status: 2,
    says: /'host.e820\[0\].size' is 0/,
    line: 1,
  },
  {
    name: 'an e820 entry past 2^64',
    trace: ['{"event":"host","e820":[{"addr":"0xffffffffffff0000","size":"0x100000","type":"ram"}]}'],
    status: 2,
    says: /'host.e820\[0\].size' runs past 2\^64; expected addr \+ size <= 2\^64/,
    line: 1,
  },
  {
    name: 'an lspci image whose BAR sizes are neither given nor derivable',
    trace: [
      HOST,
      `{"event":"device","sbdf":"0000:01:00.0","image":${JSON.stringify(lspciImage({ 16: [0x00, 0x00, 0x00, 0xfe] }))}}`,
    ],
    status: 2,
    says: /'device.sizes.bars\[0\]' is missing; expected the size of BAR0, whose register the image shows as 0xfe000000/,
    line: 2,
  },
  {
    name: 'an lspci image that is not hex',
    trace: [HOST, '{"event":"device","sbdf":"0000:01:00.0","image":["00: zz"]}'],
    status: 2,
    says: /'device.image'/,
    line: 2,
  },
  {
    name: 'an lspci image with its BAR sizes',
    trace: [
      HOST,
      `{"event":"device","sbdf":"0000:01:00.0","image":${JSON.stringify(lspciImage({ 4: [0x02], 16: [0x00, 0x00, 0x00, 0xfe] }))},"sizes":{"bars":["0x1000"]}}`,
      BOOT,
      '{"event":"assert","maps":{"domain":0,"gfn":"0xfe000","count":1,"mfn":"0xfe000"}}',
    ],
    status: 0,
  },
  {
    name: 'a bridge image without sizes, decoding at boot',
    trace: [
      HOST,
      `{"event":"device","sbdf":"0000:00:1e.0","image":${JSON.stringify(lspciImage({ 4: [0x07], 14: [0x01], 16: [0x00, 0x00, 0x00, 0xfe], 36: [0xf1, 0xff, 0x01, 0x00] }))}}`,
      BOOT,
    ],
    status: 2,
    says: /'device.sizes.bars\[0\]' is missing; expected the size of BAR0/,
    line: 2,
  },
  // From an independent random-trace campaign: malformed PCI addresses in an access, and a reserved
  // ReBAR size encoding.
  ...['zz:00.0', '03:00', '0000:003:00.0', ' 03:00.0', '0x3:00.0', '10000:03:00.0', ''].map(
    (sbdf): Case => ({
      name: `a write to the malformed PCI address "${sbdf}"`,
      trace: [HOST, DEV, BOOT, WRITE(`"sbdf":"${sbdf}","reg":"0x04","size":2,"value":2`)],
      status: 2,
      says: /'write\.sbdf' is ".*"; expected a PCI address "ssss:bb:dd\.f" or "bb:dd\.f" \(hex\)/,
      line: 4,
    }),
  ),
  {
    name: 'a write to a device number past 1f',
    trace: [HOST, DEV, BOOT, WRITE('"sbdf":"03:20.0","reg":"0x04","size":2,"value":2')],
    status: 2,
    says: /'write\.sbdf' is "03:20\.0"; expected a device number 00 … 1f/,
    line: 4,
  },
  {
    // Xen's rebar_ctrl_write writes the control to the device and sizes the BAR again from it
    // (pci_size_mem_bar); a BAR Size encoding above 43 (2^63 bytes) is reserved by the PCIe spec,
    // which leaves writing it undefined: the device model keeps its size. The size Xen's warning
    // prints, 1ULL << (63 + 20), is undefined in C; the model prints 2^83.
    name: 'a reserved ReBAR size encoding: the BAR keeps its size, and the next valid resize is taken',
    trace: [
      HOST,
      '{"event":"device","sbdf":"0000:03:00.0","bars":[{"type":"mem64","size":"0x100000","addr":"0xc0000000"}],"rebar":[{"bar":0,"sizes":["0x100000","0x200000"]}]}',
      BOOT,
      WRITE('"sbdf":"03:00.0","reg":"0x108","size":4,"value":"0x3f00"'),
      '{"event":"assert","logged":{"kind":"rebar-unsupported","bar":0}}',
      '{"event":"assert","bar":{"sbdf":"0000:03:00.0","index":0,"addr":"0xc0000000","size":"0x100000"}}',
      '{"event":"read","vcpu":"d0v0","sbdf":"03:00.0","reg":"0x108","size":4,"expect":"0x20"}',
      WRITE('"sbdf":"03:00.0","reg":"0x108","size":4,"value":"0x100"'),
      '{"event":"assert","bar":{"sbdf":"0000:03:00.0","index":0,"addr":"0xc0000000","size":"0x200000"}}',
      WRITE('"sbdf":"03:00.0","reg":"0x04","size":2,"value":2'),
      '{"event":"run","vcpu":"d0v0","expect":"done"}',
      '{"event":"assert","maps":{"domain":0,"gfn":"0xc0000","count":"0x200","mfn":"0xc0000"}}',
    ],
    status: 0,
  },
  {
    name: 'a bridge image whose BARs are unused, decoding at boot',
    trace: [
      HOST,
      `{"event":"device","sbdf":"0000:00:1e.0","image":${JSON.stringify(lspciImage({ 4: [0x07], 14: [0x01], 36: [0xf1, 0xff, 0x01, 0x00], 40: [0xff, 0xff, 0xff, 0xff] }))}}`,
      BOOT,
      '{"event":"assert","noViolations":true}',
    ],
    status: 0,
  },
];

describe('vpci-replay answers every malformed or extreme trace', () => {
  it.each(traceCases)(
    '$name',
    async ({ trace, args = [], status, says, line }) => {
      const path = file(trace ?? []);
      const run = await cli([...args, path]);
      expect(run.stderr, 'no stack trace').not.toMatch(/\n\s+at /);
      expect(run.status).toBe(status);
      if (status === 2) {
        const name = path;
        if (line !== undefined) expect(run.stderr).toContain(`${name}:${line}: `);
        if (says !== undefined) expect(run.stderr).toMatch(says);
      } else if (says !== undefined) {
        expect(run.stdout).toMatch(says);
      }
    },
    20_000,
  );
});

describe('vpci-replay answers every malformed argument and input file', () => {
  const good = file(GOOD, 'good.jsonl');

  it('a file that does not exist: which file and why', async () => {
    const run = await cli([join(dir, 'missing.jsonl')]);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      `vpci-replay: cannot read ${join(dir, 'missing.jsonl')}: no such file or directory\n`,
    );
  });

  it('a directory', async () => {
    const sub = join(dir, 'a-directory');
    mkdirSync(sub, { recursive: true });
    const run = await cli([sub]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`${sub} is a directory; expected a trace file`);
  });

  it('/dev/null', async () => {
    const run = await cli(['/dev/null']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('/dev/null:1: the trace has no events (it is empty)');
  });

  it('a gzip-compressed trace, whatever its name', async () => {
    const gz = gzipSync(Buffer.from(`${GOOD.join('\n')}\n`));
    expect((await cli([file(gz, 'trace.jsonl.gz')])).status).toBe(0);
    expect((await cli([file(gz, 'trace-without-suffix.jsonl')])).status).toBe(0);
  });

  it('a corrupt .gz: gzip magic, then garbage', async () => {
    const path = file(
      Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('not really gzip')]),
      'corrupt.jsonl.gz',
    );
    const run = await cli([path]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`^${path}:1: not valid gzip data \\(.*\\); expected a whole gzip-compressed file\n$`),
    );
  });

  it('a truncated .gz', async () => {
    const writes = Array.from({ length: 200 }, () => GOOD[3]!);
    const whole = gzipSync(Buffer.from(`${[...GOOD, ...writes].join('\n')}\n`));
    const run = await cli([file(whole.subarray(0, whole.length - 20), 'truncated.jsonl.gz')]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/not valid gzip data \(the data ends early\)/);
  });

  it('- reads standard input, plain or compressed, in any chunking', async () => {
    const text = `${GOOD.join('\n')}\n`;
    expect((await cli(['-'], [text])).status).toBe(0);
    expect(
      await cli(
        ['-'],
        [...text].map((c) => c),
      ),
    ).toMatchObject({ status: 0 });
    const gz = gzipSync(Buffer.from(text));
    expect((await cli(['-'], [gz.subarray(0, 1), gz.subarray(1)])).status).toBe(0);
  });

  it('empty standard input', async () => {
    const run = await cli(['-'], []);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('standard input:1: the trace has no events');
  });

  it.each([
    [['--frobnicate', 'x.jsonl'], /Unknown option '--frobnicate'/],
    [[], /no trace file given/],
    [['a.jsonl', 'b.jsonl'], /one trace file expected; got 'a.jsonl', 'b.jsonl'/],
    [['--profile', 'paranoid', 'x.jsonl'], /--profile is 'paranoid'; expected xen or hardened/],
    [['--profile=paranoid', 'x.jsonl'], /--profile is 'paranoid'/],
    // The profile's name forgotten: the trace taken as the profile is answered about --profile.
    [['--profile', 'x.jsonl'], /--profile is 'x.jsonl'; expected xen or hardened/],
    [['--rules', 'bhyve', 'x.jsonl'], /--rules is 'bhyve'; expected one of xen, qemu/],
    [['--color', 'sometimes', 'x.jsonl'], /--color is 'sometimes'; expected auto, always or never/],
    [['--svg'], /--svg/],
    [['--image', '03:00.0=x', 'x.jsonl'], /cannot read x|need --qemu/],
    [['--save-trace', 'out.jsonl', 'x.jsonl'], /--image, --qemu-monitor and --save-trace need --qemu/],
    [['--qemu', '--image', 'nonsense', 'x.log'], /--image is 'nonsense'; expected SBDF=FILE/],
    [['--svg', '-', '--html', '-', 'x.jsonl'], /only one output can go to standard output/],
  ] as const)('arguments %j', async (args, says) => {
    const run = await cli([...args]);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(says);
    expect(run.stderr).toContain('vpci-replay --help');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('an --image file that is no lspci dump: the option, the file and what was expected', async () => {
    // camp4 campaign: random bytes given as a dump reached the conversion and stopped it with an
    // internal error (exit 3, a stack trace). The usage text asks for "a config-space dump (lspci
    // -xxx)": 256 or 4096 bytes as hex lines.
    const garbage = file(Buffer.from([0x1f, 0x8b, 0xff, 0x00, 0x41, 0x0a, 0x7a]), 'garbage.img');
    const log = join(__dirname, 'fixtures/qemu/cfgonly-linux.trace.log');
    const run = await cli(['--qemu', '--image', `00:03.0=${garbage}`, log]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`--image 00:03.0=${garbage}: `);
    expect(run.stderr).toMatch(/expected a hex dump of 256 or 4096 bytes/);
    expect(run.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  it('--opt=value and -- as POSIX and GNU tools take them', async () => {
    expect((await cli(['--profile=hardened', good])).status).toBe(0);
    const qemu = await cli(['--rules=qemu', good]);
    expect(qemu.status).toBe(0);
    expect(qemu.stdout).toContain('rules qemu, profile xen');
    const dashed = file(GOOD, '-dashed.jsonl');
    const run = await cli(['--', dashed]);
    expect(run.status).toBe(0);
  });

  it('an output file of - is standard output, in place of the report', async () => {
    const run = await cli(['--svg=-', good]);
    expect(run.status).toBe(0);
    expect(run.stdout.startsWith('<svg')).toBe(true);
    expect(run.stdout).not.toContain('status: ok');
  });

  it('an output that cannot be written', async () => {
    const run = await cli(['--svg', join(dir, 'no-such-dir', 'map.svg'), good]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(
      `--svg ${join(dir, 'no-such-dir', 'map.svg')}: cannot write: no such file or directory`,
    );
  });

  it('--help and --version', async () => {
    const help = await cli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: vpci-replay/);
    const version = await cli(['-V']);
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^vpci-replay \d+\.\d+\.\d+\n$/);
  });

  it('colour only when asked or on a terminal, never with NO_COLOR', async () => {
    const colored = (stdout: string) => stdout.includes('\u001b[');
    let out = '';
    const io = (isTTY: boolean, env: Record<string, string>) => ({
      stdout: { write: (t: string) => (out += t), isTTY },
      stderr: { write: () => true },
      env,
    });
    await replayCli([good], io(false, {}));
    expect(colored(out)).toBe(false);
    out = '';
    await replayCli([good], io(true, {}));
    expect(colored(out)).toBe(true);
    out = '';
    await replayCli([good], io(true, { NO_COLOR: '1' }));
    expect(colored(out)).toBe(false);
    out = '';
    await replayCli(['--color=always', good], io(false, {}));
    expect(colored(out)).toBe(true);
    out = '';
    await replayCli(['--json', good], io(true, {}));
    expect(colored(out)).toBe(false);
  });

  it('a progress bar on stderr only when asked or on a terminal', async () => {
    let err = '';
    const io = (isTTY: boolean) => ({
      stdout: { write: () => true },
      stderr: { write: (t: string) => (err += t), isTTY },
      env: {},
    });
    await replayCli([good], io(false));
    expect(err).toBe('');
    await replayCli(['--progress', good], io(false));
    expect(err).toMatch(/replaying/);
  });
});

describe('--save-trace -', () => {
  it('writes the converted trace to standard output in place of the report', async () => {
    const log = join(__dirname, 'fixtures/qemu/cfgonly-linux.trace.log');
    const saved = await cli(['--qemu', '--save-trace', '-', log]);
    expect(saved.status).toBe(0);
    // A trace: comment lines, then JSON lines from the host line on; no report beside it.
    const lines = saved.stdout
      .trimEnd()
      .split('\n')
      .filter((line) => !line.startsWith('#'));
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'host' });
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    const report = await cli(['--qemu', log]);
    expect(report.stdout).toContain('vpci-replay');
    expect(saved.stdout).not.toContain('vpci-replay');
  });
});
