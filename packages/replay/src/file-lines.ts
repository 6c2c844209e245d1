/**
 * The lines of a trace or log, streamed a chunk at a time: each chunk's whole lines come at once, so a
 * replay awaits once per chunk rather than once per line (readline's line-by-line async iteration
 * cost about as much as parsing the lines). A line ends at `\n`, with a `\r` before it dropped; the
 * last line needs no newline. A line longer than `MAX_LINE_CHARS` is refused as it is read (a 64 MiB
 * line would otherwise be held, and re-joined chunk by chunk, before anything could look at it).
 * The lines come as text (`lineChunks`, `lineSpans`) or, for a replay, as bytes (`lineBytes`: no text
 * is decoded for the lines a replay reads from their bytes).
 */
import { isAscii } from 'node:buffer';
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
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

  /**
   * The same error with `lines` more lines before it: `lineBlocks` counts its lines from the first
   * it has not given (it does not count the lines of its blocks), whoever read those adds them.
   */
  after(lines: number): LineTooLongError {
    return new LineTooLongError(this.line + lines);
  }
}

/**
 * Whole lines, each a span of one text: line `i` is `text` from `starts[i]` up to `ends[i]` (its
 * newline, and a `\r` before it, left out). A chunk's lines are spans of the chunk as decoded, so
 * reading them makes no string per line; a line cut by a chunk boundary is joined into a text of its
 * own, given as a `LineSpans` of one line before the rest of the chunk.
 */
export class LineSpans {
  /** The text the lines are spans of. */
  readonly text: string;
  /** Where each line starts in `text`. */
  readonly starts: number[] = [];
  /** Where each line ends in `text` (exclusive). */
  readonly ends: number[] = [];

  constructor(text: string) {
    this.text = text;
  }

  /** How many lines. */
  get length(): number {
    return this.starts.length;
  }

  /** Line `i` as a string of its own. */
  line(i: number): string {
    return this.text.slice(this.starts[i], this.ends[i]);
  }

  /** Adds the line `text[start … end)`, less a `\r` at its end (CRLF). */
  add(start: number, end: number): void {
    this.starts.push(start);
    this.ends.push(end > start && this.text.charCodeAt(end - 1) === 0x0d ? end - 1 : end);
  }
}

/** `text` as a `LineSpans` of one line. */
function oneLine(text: string): LineSpans {
  const spans = new LineSpans(text);
  spans.add(0, text.length);
  return spans;
}

/**
 * How much of a file is read at a time: 256 KiB. Node hands a decoded text of about 1 MiB or more to
 * V8 as an external string, whose characters cost a quarter more to read (measured on the replay
 * benchmark's lines); a smaller chunk is decoded into V8's own heap.
 */
export const CHUNK_BYTES = 1 << 18;

/** The lines of `file`, in order, a chunk of `chunkBytes` (default `CHUNK_BYTES`) at a time. */
export function fileLineChunks(
  file: string,
  chunkBytes = CHUNK_BYTES,
): AsyncGenerator<string[], void, undefined> {
  return lineChunks(createReadStream(file, { highWaterMark: chunkBytes }));
}

/** `fileLineChunks` as spans (`LineSpans`): what a replay reads. */
export function fileLineSpans(
  file: string,
  chunkBytes = CHUNK_BYTES,
): AsyncGenerator<LineSpans, void, undefined> {
  return lineSpans(createReadStream(file, { highWaterMark: chunkBytes }));
}

/** The lines of a stream of UTF-8 bytes (or text), a chunk of lines per chunk read. */
export async function* lineChunks(
  source: AsyncIterable<Uint8Array | string>,
): AsyncGenerator<string[], void, undefined> {
  for await (const spans of lineSpans(source)) {
    const lines: string[] = [];
    for (let i = 0; i < spans.length; i++) lines.push(spans.line(i));
    yield lines;
  }
}

/** `lineChunks` as spans: no string is cut out per line. */
export async function* lineSpans(
  source: AsyncIterable<Uint8Array | string>,
): AsyncGenerator<LineSpans, void, undefined> {
  const decoder = new StringDecoder('utf8');
  // The unfinished line, in pieces: joined once when its newline comes, so a long line costs linear time.
  let pieces: string[] = [];
  let partialLength = 0;
  let lineNumber = 0;
  for await (const chunk of source) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
    let start = 0;
    const spans = new LineSpans(text);
    // The line the previous chunks left unfinished, once this one finishes it.
    let joined: LineSpans | undefined;
    for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n', start)) {
      lineNumber++;
      if (partialLength + newline - start > MAX_LINE_CHARS) throw new LineTooLongError(lineNumber);
      if (pieces.length === 0) spans.add(start, newline);
      else {
        joined = oneLine(pieces.join('') + text.slice(start, newline));
        pieces = [];
        partialLength = 0;
      }
      start = newline + 1;
    }
    if (start < text.length) {
      partialLength += text.length - start;
      if (partialLength > MAX_LINE_CHARS) throw new LineTooLongError(lineNumber + 1);
      pieces.push(text.slice(start));
    }
    // Nothing of a chunk is given before all of it is read: a line too long refuses the chunk whole.
    if (joined !== undefined) yield joined;
    if (spans.length > 0) yield spans;
  }
  const rest = pieces.join('') + decoder.end();
  if (rest !== '') yield oneLine(rest);
}

/**
 * Whole lines, each a span of one chunk's bytes: line `i` is `bytes` from `starts[i]` up to `ends[i]`
 * (its newline, and a `\r` before it, left out); `lineSpans` as UTF-8 bytes, decoded by whoever needs a
 * line's text. A line cut by a chunk boundary is joined into bytes of its own, given as a `ByteLines`
 * of one line before the rest of the chunk.
 */
export class ByteLines {
  /** The bytes the lines are spans of. */
  readonly bytes: Uint8Array;
  /** Where each line starts in `bytes`. */
  readonly starts: number[] = [];
  /** Where each line ends in `bytes` (exclusive). */
  readonly ends: number[] = [];

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** How many lines. */
  get length(): number {
    return this.starts.length;
  }

  /** Line `i` decoded. */
  line(i: number): string {
    return decodeLine(this.bytes, this.starts[i]!, this.ends[i]!);
  }

  /** Adds the line `bytes[start … end)`, less a `\r` at its end (CRLF). */
  add(start: number, end: number): void {
    this.starts.push(start);
    this.ends.push(end > start && this.bytes[end - 1] === 0x0d ? end - 1 : end);
  }
}

/**
 * A line's UTF-8 bytes as text, as the text readers give it: a byte order mark kept (a replay's
 * reader trims it as white space), a byte that is not UTF-8 read as U+FFFD.
 */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** The text of `bytes[start … end)`. */
export function decodeLine(bytes: Uint8Array, start: number, end: number): string {
  return utf8.decode(bytes.subarray(start, end));
}

/** `fileLineSpans` as bytes (`ByteLines`): what a replay reads. */
export function fileLineBytes(
  file: string,
  chunkBytes = CHUNK_BYTES,
): AsyncGenerator<ByteLines, void, undefined> {
  return lineBytes(createReadStream(file, { highWaterMark: chunkBytes }));
}

/**
 * `lineSpans` as bytes: the lines of a stream of UTF-8 bytes, a `ByteLines` per chunk read (the
 * lines of `lineBlocks`, each cut at its newline). The limit is `MAX_LINE_CHARS` characters as the
 * text readers count them (`lineBlocks`).
 */
export async function* lineBytes(
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<ByteLines, void, undefined> {
  let given = 0;
  try {
    for await (const block of lineBlocks(source)) {
      const { bytes, from, to } = block;
      const lines = new ByteLines(bytes);
      for (let at = from; at < to; ) {
        const end = lineEnd(bytes, at, to);
        lines.add(at, end);
        at = end + 1;
      }
      given += lines.length;
      yield lines;
    }
  } catch (error) {
    if (error instanceof LineTooLongError) throw error.after(given);
    throw error;
  }
}

/** Where the line starting at `from` of `bytes[from … to)` ends: its newline, or `to`. */
function lineEnd(bytes: Uint8Array, from: number, to: number): number {
  const newline = bytes.indexOf(0x0a, from);
  return newline < 0 || newline >= to ? to : newline;
}

/**
 * Whole lines of a stream's bytes, not cut apart: `bytes[from … to)` holds one line or more, each
 * ended by a newline (`\n`, a `\r` before it not part of the line) but the input's last, which may
 * have none. A replay finds each line's end as it reads the line (`TraceReplay.feedLine`), so the
 * bytes are gone over once, not once to split them into lines and again to read them.
 */
export class ByteBlock {
  /** The bytes the lines are in (a `Buffer`: its `indexOf` is a native search). */
  readonly bytes: Uint8Array;
  /** Where the first line starts. */
  readonly from: number;
  /** Where the last one ends: past its newline, or at the end of the input's last line. */
  readonly to: number;

  constructor(bytes: Uint8Array, from: number, to: number) {
    this.bytes = bytes;
    this.from = from;
    this.to = to;
  }
}

/**
 * `lineBlocks` of a file, read a chunk of `chunkBytes` (default `CHUNK_BYTES`) at a time into one
 * buffer (`reusedFileChunks`): a block's bytes are overwritten once the next block is asked for.
 */
export function fileLineBlocks(
  file: string,
  chunkBytes = CHUNK_BYTES,
): AsyncGenerator<ByteBlock, void, undefined> {
  return lineBlocks(reusedFileChunks(file, chunkBytes));
}

/**
 * The bytes of `file`, a chunk of up to `chunkBytes` at a time, each read into the same buffer and
 * synchronously: a chunk is overwritten by the next, so whoever reads them is done with one before
 * asking for the next (`lineBlocks` is: it copies the start of a line that the next chunk finishes).
 * A read stream's chunks, each read by a worker thread while the replay waited for it, made the
 * unchecked replay of the bench about a tenth slower per line (1.49-1.54 against 1.35-1.37 times the
 * direct calls, same process; a stream's fresh buffer per chunk was not the cost, its wait was). The
 * event loop gets a turn every 50 ms (a progress display's timers run), not after every chunk.
 */
export async function* reusedFileChunks(
  file: string,
  chunkBytes = CHUNK_BYTES,
): AsyncGenerator<Uint8Array, void, undefined> {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(chunkBytes);
    let turn = Date.now();
    for (;;) {
      const bytesRead = readSync(fd, buffer, 0, chunkBytes, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
      if (Date.now() - turn >= EVENT_LOOP_TURN_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        turn = Date.now();
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** How long `reusedFileChunks` reads before the event loop gets a turn. */
const EVENT_LOOP_TURN_MS = 50;

/**
 * The lines of a stream of UTF-8 bytes as `ByteBlock`s: a chunk's whole lines as one block, a line
 * cut by a chunk boundary joined into bytes of its own, given as a block before the rest of the
 * chunk. Nothing of a chunk is given before all of it is read, so a line too long refuses the chunk
 * whole. The limit is `MAX_LINE_CHARS` characters as the text readers count them (UTF-16 code units):
 * a line of ASCII is refused as soon as it has more bytes; one with other characters has fewer
 * characters than bytes, so it is decoded to be measured once it ends (or refused as read beyond three
 * bytes a character, which no UTF-8 text has). A line within one chunk can be too long only in a
 * chunk longer than the limit: only such a chunk is split into lines here. The `LineTooLongError`
 * counts its line from the first line not yet given (`LineTooLongError.after`).
 */
export async function* lineBlocks(
  source: AsyncIterable<Uint8Array>,
): AsyncGenerator<ByteBlock, void, undefined> {
  // The unfinished line, in pieces: joined once when its newline comes, so a long line costs linear time.
  let pieces: Uint8Array[] = [];
  let partialBytes = 0;
  let partialAscii = true;
  for await (const chunk of source) {
    // A Buffer, whatever the stream's chunks are: its `indexOf` is a native search (a Uint8Array's
    // went byte by byte, slower than the rest of the reading), and the reader's code then sees one
    // kind of array, the same as for a line joined from pieces.
    const bytes = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    // Lines of this chunk before where `start` is, for the error's line number.
    let before = 0;
    // The line the previous chunks left unfinished, once this one finishes it.
    let joined: ByteBlock | undefined;
    const first = bytes.indexOf(0x0a);
    if (first >= 0 && pieces.length > 0) {
      pieces.push(bytes.subarray(0, first));
      const line = Buffer.concat(pieces, partialBytes + first);
      if (line.length > MAX_LINE_CHARS) refuseIfLong(line, partialAscii, 1);
      joined = new ByteBlock(line, 0, line.length);
      pieces = [];
      partialBytes = 0;
      partialAscii = true;
      start = first + 1;
      before = 1;
    }
    // Past the chunk's last newline: the start of a line the next chunks finish.
    const end = first < 0 ? 0 : bytes.lastIndexOf(0x0a) + 1;
    if (end - start > MAX_LINE_CHARS) {
      for (let at = start; at < end; before++) {
        const newline = lineEnd(bytes, at, end);
        if (newline - at > MAX_LINE_CHARS) refuseIfLong(bytes.subarray(at, newline), false, before + 1);
        at = newline + 1;
      }
    }
    if (end < bytes.length) {
      const rest = bytes.subarray(end);
      partialBytes += rest.length;
      partialAscii &&= isAscii(rest);
      if (partialBytes > (partialAscii ? MAX_LINE_CHARS : 3 * MAX_LINE_CHARS)) {
        // The lines before it in this chunk are counted only here (a chunk longer than the limit).
        throw new LineTooLongError(end > start ? linesIn(bytes, start, end) + before + 1 : before + 1);
      }
      // A copy: a stream may hand over its chunks' memory again.
      pieces.push(Buffer.from(rest));
    }
    if (joined !== undefined) yield joined;
    if (end > start) yield new ByteBlock(bytes, start, end);
  }
  if (partialBytes > 0) {
    const line = Buffer.concat(pieces, partialBytes);
    if (line.length > MAX_LINE_CHARS) refuseIfLong(line, partialAscii, 1);
    yield new ByteBlock(line, 0, line.length);
  }
}

/** How many lines `bytes[from … to)` holds, each ended by a newline. */
function linesIn(bytes: Uint8Array, from: number, to: number): number {
  let count = 0;
  for (let at = from; at < to; at = lineEnd(bytes, at, to) + 1) count++;
  return count;
}

/**
 * Throws `LineTooLongError` for line `lineNumber`, of more than `MAX_LINE_CHARS` bytes, unless it is
 * not ASCII (`ascii` says so, or it is checked here) and decodes to no more than that many characters.
 */
function refuseIfLong(line: Uint8Array, ascii: boolean, lineNumber: number): void {
  if (ascii || isAscii(line) || decodeLine(line, 0, line.length).length > MAX_LINE_CHARS)
    throw new LineTooLongError(lineNumber);
}
