/**
 * `TraceReplay.feedBytes`, what the CLI replays a file with (compact write lines applied from their
 * bytes, other lines decoded), gives the report `feed` gives for the same lines: every example, a
 * trace of many compact writes over several devices, and traces that stop on a bad line.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileLineBlocks, fileLineBytes } from './file-lines.js';
import { reportJson } from './report.js';
import { replayText, TraceReplay } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'vpci-run-'));
afterAll(() => rmSync(dir, { recursive: true }));

/**
 * The JSON report of `text` replayed from a file's bytes, `chunkBytes` at a time, line by line
 * (`feedBytes`), after checking that the blocks of lines (`feedLine`) give the same report.
 */
async function viaBytes(text: string, chunkBytes: number): Promise<string> {
  const file = join(dir, 'trace.jsonl');
  writeFileSync(file, text);
  const replay = new TraceReplay('trace.jsonl');
  replaying: for await (const chunk of fileLineBytes(file, chunkBytes)) {
    for (let i = 0; i < chunk.length; i++)
      if (!replay.feedBytes(chunk.bytes, chunk.starts[i]!, chunk.ends[i]!)) break replaying;
  }
  const viaLines = reportJson(replay.end());
  // The same file read a block of lines at a time, each line found as it is read (`feedLine`, the CLI's way).
  const byBlocks = new TraceReplay('trace.jsonl');
  replaying: for await (const { bytes, from, to } of fileLineBlocks(file, chunkBytes)) {
    for (let at = from; at < to; ) {
      at = byBlocks.feedLine(bytes, at, to);
      if (at < 0) break replaying;
    }
  }
  expect(reportJson(byBlocks.end())).toBe(viaLines);
  return viaLines;
}

const examples = new URL('../../../examples/', import.meta.url);

const HOST = '{"event":"host","profile":"xen"}';
const device = (sbdf: string, bar: number): string =>
  `{"event":"device","sbdf":"${sbdf}","bars":[{"type":"mem32","size":"0x4000","addr":"0x${bar.toString(16)}"}]}`;
const write = (vcpu: string, sbdf: string, reg: number, size: number, value: number): string =>
  `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":${reg},"size":${size},"value":${value}}`;

/** Three hardware-domain devices, one given to a guest, driven and reprogrammed by compact writes. */
function compactTrace(): string[] {
  const lines = [HOST, device('0000:00:02.0', 0xe000_0000), device('00:03.0', 0xe010_0000)];
  lines.push(device('0000:00:04.0', 0xe020_0000), '{"event":"boot"}', '{"event":"domain","id":1}');
  lines.push('{"event":"assign","sbdf":"0000:00:04.0","domain":1}');
  for (let round = 0; round < 20; round++) {
    lines.push(write('d0v0', '0000:00:02.0', 4, 2, round % 2 === 0 ? 0 : 6));
    lines.push(write('d0v0', '0000:00:02.0', 0x10, 4, 0xe000_0000 + (round % 3) * 0x4000));
    lines.push(write('d0v0', '00:03.0', 4, 2, 6), write('d0v0', '00:03.0', 0x3c, 1, round));
    lines.push(write('d1v0', '0000:00:00.0', 4, 2, round % 2 === 0 ? 6 : 0));
    lines.push(`{"event":"write","vcpu":"d0v0","sbdf":"0000:00:02.0","reg":"0x4","size":2,"value":6}`);
    lines.push(`# round ${round}`, '');
  }
  return lines;
}

describe('TraceReplay.feedBytes and feedLine', () => {
  it('reports every example as feed does, at every chunk size', async () => {
    const files = readdirSync(examples).filter((f) => f.endsWith('.jsonl'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = readFileSync(new URL(file, examples), 'utf8');
      const expected = reportJson(replayText(text, 'trace.jsonl'));
      for (const chunkBytes of [97, 1 << 18]) expect(await viaBytes(text, chunkBytes)).toBe(expected);
    }
  });

  it('reports a trace of compact writes as feed does, with CRLF line ends too', async () => {
    const lines = compactTrace();
    // Line ends the byte readers take apart from a compact line's: a space or two `\r` before the
    // newline (the general reader's), a last line without a newline, with or without a `\r`.
    const odd = lines.map((line, i) => (i % 7 === 3 ? `${line} ` : i % 7 === 5 ? `${line}\r` : line));
    for (const text of [
      `${lines.join('\n')}\n`,
      `${lines.join('\r\n')}\r\n`,
      `${odd.join('\r\n')}`,
      `${odd.join('\n')}\r`,
      `\ufeff${lines.join('\n')}`,
    ]) {
      const expected = reportJson(replayText(text, 'trace.jsonl'));
      expect(JSON.parse(expected).error).toBeNull();
      for (const chunkBytes of [1, 13, 1 << 18]) expect(await viaBytes(text, chunkBytes)).toBe(expected);
    }
  });

  it('stops where feed stops, with the same message, on a bad compact write line', async () => {
    const lines = compactTrace();
    for (const bad of [
      write('d0v0', '0000:00:09.0', 4, 2, 6), // no such device
      write('d7v0', '0000:00:02.0', 4, 2, 6), // no such domain
      write('d0v0', 'zz:00.0', 4, 2, 6), // not an address
      write('d1v0', '0000:00:02.0', 4, 2, 6), // not the guest's address
    ]) {
      const text = `${[...lines.slice(0, 12), bad, ...lines.slice(12)].join('\n')}\n`;
      const expected = reportJson(replayText(text, 'trace.jsonl'));
      expect(JSON.parse(expected).error).toMatchObject({ line: 13 });
      expect(await viaBytes(text, 1 << 18)).toBe(expected);
    }
  });
});
