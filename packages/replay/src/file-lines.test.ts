import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  fileLineBlocks,
  fileLineBytes,
  fileLineChunks,
  fileLineSpans,
  LineTooLongError,
  lineBlocks,
  lineBytes,
  MAX_LINE_CHARS,
} from './file-lines.js';

const dir = mkdtempSync(join(tmpdir(), 'vpci-lines-'));
afterAll(() => rmSync(dir, { recursive: true }));

async function linesOf(text: string | Buffer, chunkBytes?: number): Promise<string[][]> {
  const file = join(dir, 'trace.jsonl');
  writeFileSync(file, text);
  const chunks: string[][] = [];
  for await (const chunk of fileLineChunks(file, chunkBytes)) chunks.push(chunk);
  return chunks;
}

describe('fileLineChunks', () => {
  it('gives every line once, in order, across chunk boundaries that cut lines', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => `{"event":"write","n":${i}}`);
    const chunks = await linesOf(`${lines.join('\n')}\n`, 7);
    expect(chunks.flat()).toEqual(lines);
    expect(chunks.length).toBeGreaterThan(1);
  });

  it('drops the carriage return of CRLF line ends and keeps a last line without a newline', async () => {
    expect((await linesOf('a\r\nb\r\nc')).flat()).toEqual(['a', 'b', 'c']);
    expect((await linesOf('a\n\nb\n')).flat()).toEqual(['a', '', 'b']);
  });

  it('gives nothing for an empty file', async () => {
    expect(await linesOf('')).toEqual([]);
  });

  it('does not split a multibyte character cut by a chunk boundary', async () => {
    const line = `{"comment":"${'é€'.repeat(20)}"}`;
    expect((await linesOf(Buffer.from(`${line}\n${line}\n`), 5)).flat()).toEqual([line, line]);
  });

  it('gives as spans the lines it gives as strings, at every chunk size', async () => {
    const text = 'a\r\n{"event":"boot"}\n\nlast\r';
    const file = join(dir, 'spans.jsonl');
    writeFileSync(file, text);
    for (const chunkBytes of [3, 7, 1 << 20]) {
      const lines: string[] = [];
      for await (const spans of fileLineSpans(file, chunkBytes)) {
        for (let i = 0; i < spans.length; i++) lines.push(spans.line(i));
      }
      expect(lines).toEqual(['a', '{"event":"boot"}', '', 'last']);
    }
  });

  it('gives as bytes the lines it gives as text, at every chunk size', async () => {
    const text = '\ufeff{"a":1}\r\né€\n\n{"event":"boot"}\r\n€€€\nlast\r';
    const file = join(dir, 'bytes.jsonl');
    writeFileSync(file, text);
    const asText = (await linesOf(text)).flat();
    for (const chunkBytes of [1, 2, 3, 7, 1 << 20]) {
      const lines: string[] = [];
      for await (const chunk of fileLineBytes(file, chunkBytes)) {
        for (let i = 0; i < chunk.length; i++) lines.push(chunk.line(i));
      }
      expect(lines).toEqual(asText);
    }
  });
});

/** The lines `lineBytes` reads from `chunks`, or the line its `LineTooLongError` names. */
async function byteLinesOf(chunks: readonly Uint8Array[]): Promise<number[] | { tooLong: number }> {
  async function* source(): AsyncGenerator<Uint8Array> {
    yield* chunks;
  }
  const lengths: number[] = [];
  try {
    for await (const lines of lineBytes(source())) {
      for (let i = 0; i < lines.length; i++) lengths.push(lines.ends[i]! - lines.starts[i]!);
    }
  } catch (error) {
    if (error instanceof LineTooLongError) return { tooLong: error.line };
    throw error;
  }
  return lengths;
}

describe('lineBytes, a stream that reuses its memory', () => {
  it('keeps its own copy of a line cut by a chunk boundary', async () => {
    const text = Buffer.from('{"event":"boot"}\nsecond line\n\nthird, the last');
    async function* reused(): AsyncGenerator<Uint8Array> {
      const memory = Buffer.alloc(5);
      for (let at = 0; at < text.length; at += 5) {
        const piece = text.subarray(at, at + 5);
        memory.fill(0x78);
        memory.set(piece);
        yield memory.subarray(0, piece.length);
      }
    }
    const lines: string[] = [];
    for await (const chunk of lineBytes(reused()))
      for (let i = 0; i < chunk.length; i++) lines.push(chunk.line(i));
    expect(lines).toEqual(['{"event":"boot"}', 'second line', '', 'third, the last']);
  });
});

describe('lineBlocks, the lines not cut apart', () => {
  it('holds the lines lineBytes gives, each ended by a newline but the last, at every chunk size', async () => {
    const text = '\ufeff{"a":1}\r\né€\n\n{"event":"boot"}\r\n€€€\r\r\nlast\r';
    const file = join(dir, 'blocks.jsonl');
    writeFileSync(file, text);
    const expected: string[] = [];
    for await (const chunk of fileLineBytes(file))
      for (let i = 0; i < chunk.length; i++) expected.push(chunk.line(i));
    expect(expected).toHaveLength(6);
    for (const chunkBytes of [1, 2, 3, 7, 1 << 20]) {
      const lines: string[] = [];
      for await (const { bytes, from, to } of fileLineBlocks(file, chunkBytes)) {
        expect(to).toBeGreaterThan(from);
        // Cut as the replay's reader cuts them: at each newline, one `\r` before it dropped.
        for (const piece of new TextDecoder('utf-8', { ignoreBOM: true })
          .decode(bytes.subarray(from, to))
          .split('\n'))
          lines.push(piece.endsWith('\r') ? piece.slice(0, -1) : piece);
        // A block's lines end with its newline (the empty piece after it is no line), but the input's last.
        if (bytes[to - 1] === 0x0a) expect(lines.pop()).toBe('');
      }
      expect(lines).toEqual(expected);
    }
  });

  it('counts a line too long from the first line it has not given, in a chunk of many lines too', async () => {
    const long = `${'x'.repeat(MAX_LINE_CHARS + 1)}`;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('{}\n');
      yield Buffer.from(`a\nb\n${long}\nc\n`);
    }
    const given: number[] = [];
    const error = await (async () => {
      for await (const block of lineBlocks(chunks())) given.push(block.to - block.from);
    })().catch((e: unknown) => e);
    // The first chunk's block is given; the second is refused whole, at its third line.
    expect(given).toEqual([3]);
    expect(error).toBeInstanceOf(LineTooLongError);
    expect((error as LineTooLongError).line).toBe(3);
    expect((error as LineTooLongError).after(1).line).toBe(4);
    // A line unfinished past the limit after two lines of the same chunk: the third.
    expect(await byteLinesOf([Buffer.from(`a\nb\n${long}`)])).toEqual({ tooLong: 3 });
    expect(await byteLinesOf([Buffer.from('{}\n'), Buffer.from(`a\nb\n${long}\nc\n`)])).toEqual({
      tooLong: 4,
    });
  });
});

describe('lineBytes, the longest line', () => {
  const bytes = (text: string): Uint8Array => Buffer.from(text);

  it('refuses an ASCII line of more than MAX_LINE_CHARS bytes, in one chunk or many, naming it', async () => {
    const long = bytes(`${'x'.repeat(MAX_LINE_CHARS + 1)}\n`);
    expect(await byteLinesOf([bytes('{}\n'), long])).toEqual({ tooLong: 2 });
    const pieces = [bytes('{}\n')];
    for (let at = 0; at < long.length; at += 1 << 20) pieces.push(long.subarray(at, at + (1 << 20)));
    expect(await byteLinesOf(pieces)).toEqual({ tooLong: 2 });
    expect(await byteLinesOf([bytes('{}\n'), bytes('x'.repeat(MAX_LINE_CHARS))])).toEqual([
      2,
      MAX_LINE_CHARS,
    ]);
  });

  it('counts characters, not bytes, as the text readers do: two-byte characters up to the limit pass', async () => {
    // MAX_LINE_CHARS / 2 + 1 characters of two bytes each: more bytes than the limit, fewer characters.
    const wide = bytes('é'.repeat(MAX_LINE_CHARS / 2 + 1));
    const pieces = [];
    for (let at = 0; at < wide.length; at += 1 << 20) pieces.push(wide.subarray(at, at + (1 << 20)));
    expect(await byteLinesOf([...pieces, bytes('\n{}')])).toEqual([wide.length, 2]);
    expect(await byteLinesOf([wide])).toEqual([wide.length]);
    // One character more than the limit (in three-byte characters) is refused.
    const over = bytes('€'.repeat(MAX_LINE_CHARS + 1));
    expect(await byteLinesOf([over.subarray(0, 1 << 24), over.subarray(1 << 24), bytes('\n')])).toEqual({
      tooLong: 1,
    });
  });
});
