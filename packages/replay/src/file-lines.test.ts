import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileLineChunks, fileLineSpans } from './file-lines.js';

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
});
