/**
 * The lines of a trace file, streamed a chunk at a time: each chunk's whole lines come at once, so a
 * replay awaits once per chunk rather than once per line (readline's line-by-line async iteration
 * cost about as much as parsing the lines). A line ends at `\n`, with a `\r` before it dropped; the
 * last line needs no newline.
 */
import { createReadStream } from 'node:fs';

/** The lines of `file`, in order, a chunk of `chunkBytes` (default 1 MiB) at a time. */
export async function* fileLineChunks(
  file: string,
  chunkBytes = 1 << 20,
): AsyncGenerator<string[], void, undefined> {
  let partial = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: chunkBytes })) {
    const text = partial + (chunk as string);
    const lines = text.split('\n');
    partial = lines.pop()!;
    for (let i = 0; i < lines.length; i++) if (lines[i]!.endsWith('\r')) lines[i] = lines[i]!.slice(0, -1);
    if (lines.length > 0) yield lines;
  }
  if (partial !== '') yield [partial.endsWith('\r') ? partial.slice(0, -1) : partial];
}
