/**
 * The lines of a trace or log, streamed a chunk at a time: each chunk's whole lines come at once, so a
 * replay awaits once per chunk rather than once per line (readline's line-by-line async iteration
 * cost about as much as parsing the lines). A line ends at `\n`, with a `\r` before it dropped; the
 * last line needs no newline. A line longer than `MAX_LINE_CHARS` is refused as it is read (a 64 MiB
 * line would otherwise be held, and re-joined chunk by chunk, before anything could look at it).
 */
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** The longest line read: 16 MiB of text, far beyond any event (an `lspci -xxxx` image is ~20 KiB). */
export const MAX_LINE_CHARS = 16 << 20;

/** A line longer than `MAX_LINE_CHARS`; `line` is 1-based. */
export class LineTooLongError extends Error {
  readonly line: number;

  constructor(line: number) {
    super(
      `the line is longer than ${MAX_LINE_CHARS / (1 << 20)} MiB; expected one event or log entry per line`,
    );
    this.name = 'LineTooLongError';
    this.line = line;
  }
}

/** The lines of `file`, in order, a chunk of `chunkBytes` (default 1 MiB) at a time. */
export function fileLineChunks(
  file: string,
  chunkBytes = 1 << 20,
): AsyncGenerator<string[], void, undefined> {
  return lineChunks(createReadStream(file, { highWaterMark: chunkBytes }));
}

/** The lines of a stream of UTF-8 bytes (or text), a chunk of lines per chunk read. */
export async function* lineChunks(
  source: AsyncIterable<Uint8Array | string>,
): AsyncGenerator<string[], void, undefined> {
  const decoder = new StringDecoder('utf8');
  // The unfinished line, in pieces: joined once when its newline comes, so a long line costs linear time.
  let pieces: string[] = [];
  let partialLength = 0;
  let lineNumber = 0;
  for await (const chunk of source) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    let start = 0;
    const lines: string[] = [];
    for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n', start)) {
      const tail = text.slice(start, newline);
      lineNumber++;
      if (partialLength + tail.length > MAX_LINE_CHARS) throw new LineTooLongError(lineNumber);
      const line = pieces.length === 0 ? tail : pieces.join('') + tail;
      pieces = [];
      partialLength = 0;
      lines.push(line.charCodeAt(line.length - 1) === 0x0d /* \r */ ? line.slice(0, -1) : line);
      start = newline + 1;
    }
    if (start < text.length) {
      partialLength += text.length - start;
      if (partialLength > MAX_LINE_CHARS) throw new LineTooLongError(lineNumber + 1);
      pieces.push(text.slice(start));
    }
    if (lines.length > 0) yield lines;
  }
  const rest = pieces.join('') + decoder.end();
  if (rest !== '') yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}
