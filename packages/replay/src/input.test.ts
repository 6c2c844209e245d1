/**
 * `openInput` with `reuseChunks` (one buffer for every chunk of a file, as the CLI's trace replay
 * reads): the bytes come out as the file holds them, plain or gzip-compressed over many chunks
 * (gunzip reads its chunks later, so they are copied), and a file of one byte too.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CHUNK_BYTES } from './file-lines.js';
import { openInput } from './input.js';

const dir = mkdtempSync(join(tmpdir(), 'vpci-input-'));
afterAll(() => rmSync(dir, { recursive: true }));

/** Standard input, never read here. */
async function* noStdin(): AsyncGenerator<Uint8Array> {}

/** The bytes `openInput` gives for `file`, each chunk copied as it comes (the next may reuse its memory). */
async function bytesOf(file: string, reuseChunks: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of openInput(file, noStdin(), { reuseChunks }).bytes)
    chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe('openInput, chunks read into one buffer', () => {
  // Lines of random hex: gzip cannot shrink them below several chunks.
  const text = Buffer.from(
    Array.from({ length: 8 * (CHUNK_BYTES >> 7) }, () => `# ${randomBytes(48).toString('hex')}`).join('\n'),
  );

  it('gives a plain file as it is, over several chunks', async () => {
    const file = join(dir, 'plain.jsonl');
    writeFileSync(file, text);
    expect(text.length).toBeGreaterThan(3 * CHUNK_BYTES);
    expect((await bytesOf(file, true)).equals(text)).toBe(true);
  });

  it('gives a gzip-compressed file decompressed, over several compressed chunks', async () => {
    const file = join(dir, 'trace.jsonl.gz');
    const compressed = gzipSync(text);
    expect(compressed.length).toBeGreaterThan(2 * CHUNK_BYTES);
    writeFileSync(file, compressed);
    expect((await bytesOf(file, true)).equals(text)).toBe(true);
    expect((await bytesOf(file, false)).equals(text)).toBe(true);
  });

  it('gives a file of one byte', async () => {
    const file = join(dir, 'one.jsonl');
    writeFileSync(file, '\n');
    expect((await bytesOf(file, true)).toString()).toBe('\n');
  });
});
