/**
 * Opening what the CLI is asked to read: a file, or `-` for standard input, plain or gzip-compressed
 * (told by its first two bytes, 1f 8b, whatever its name). What cannot be read becomes an `InputError`
 * saying which file and why, never a stack trace: a missing file, a directory, a corrupt `.gz`.
 */
import { createReadStream, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { reusedFileChunks } from './file-lines.js';

/**
 * An input that cannot be read. Raised by `openInput`, the message names the file; raised while its
 * bytes are read, it does not (the reader knows the line it had reached).
 */
export class InputError extends Error {
  /** The line the reader had reached, for an error while reading; undefined when opening. */
  line: number | undefined;

  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

/** An opened input: its bytes, decompressed, and how far reading has got. */
export interface Input {
  /** The name in messages: the path, or `standard input`. */
  readonly name: string;
  /** Its size on disk in bytes, when known (a regular file); progress is measured against it. */
  readonly size: number | undefined;
  /** Bytes read from disk (or standard input) so far, before decompression. */
  readonly bytesRead: () => number;
  /** The contents, decompressed; iterating raises `InputError` for unreadable or corrupt data. */
  readonly bytes: AsyncIterable<Uint8Array>;
}

const GZIP_MAGIC = [0x1f, 0x8b] as const;

/** How an input is read. */
export interface InputOptions {
  /**
   * A file's chunks read into one buffer, each overwritten by the next (`reusedFileChunks`): for a
   * reader done with each chunk before it asks for the next, as a trace replay's `lineBlocks` is.
   */
  readonly reuseChunks?: boolean;
}

/** Opens `path` (`-` for `stdin`); throws `InputError` when it is not something that can be read. */
export function openInput(
  path: string,
  stdin: AsyncIterable<Uint8Array | string>,
  options: InputOptions = {},
): Input {
  let size: number | undefined;
  let source: AsyncIterable<Uint8Array | string>;
  let name = path;
  if (path === '-') {
    name = 'standard input';
    source = stdin;
  } else {
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(path);
    } catch (error) {
      throw new InputError(`cannot read ${path}: ${describeError(error)}`);
    }
    if (stat.isDirectory()) throw new InputError(`${path} is a directory; expected a trace file`);
    if (stat.isFile()) size = stat.size;
    source = options.reuseChunks === true ? reusedFileChunks(path) : createReadStream(path);
  }
  let read = 0;
  const counted = async function* (): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of source) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
        read += bytes.length;
        yield bytes;
      }
    } catch (error) {
      throw new InputError(`cannot read further: ${describeError(error)}`);
    }
  };
  return { name, size, bytesRead: () => read, bytes: decompressed(counted()) };
}

/** `bytes` as they are, or gunzipped when they start with gzip's magic number. */
async function* decompressed(bytes: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const iterator = bytes[Symbol.asyncIterator]();
  let first = await iterator.next();
  // The magic number may straddle the first two chunks of a pipe.
  while (!first.done && first.value.length < GZIP_MAGIC.length) {
    // A copy first: the next chunk may be read into the same memory (`reuseChunks`).
    const head = Buffer.from(first.value);
    const next = await iterator.next();
    if (next.done) {
      first = { done: false, value: head };
      break;
    }
    first = { done: false, value: Buffer.concat([head, next.value]) };
  }
  if (first.done) return;
  const rest = async function* (): AsyncGenerator<Uint8Array> {
    yield first.value;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  };
  if (first.value[0] !== GZIP_MAGIC[0] || first.value[1] !== GZIP_MAGIC[1]) {
    yield* rest();
    return;
  }
  const gunzip = createGunzip();
  // Feed the compressed bytes in the background; the gunzip stream is read below.
  const feeding = (async () => {
    try {
      // A copy of each chunk: gunzip reads it later, when the next may be in the same memory.
      for await (const chunk of rest()) if (!gunzip.write(Buffer.from(chunk))) await once(gunzip, 'drain');
      gunzip.end();
    } catch (error) {
      gunzip.destroy(error as Error);
    }
  })();
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw new InputError(
      `not valid gzip data (${describeError(error)}); expected a whole gzip-compressed file`,
    );
  }
  await feeding;
}

function once(emitter: NodeJS.EventEmitter, event: string): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()));
}

/** An I/O error as a person reads it: `ENOENT (no such file or directory)`. */
export function describeError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const known: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'it is a directory',
    Z_DATA_ERROR: 'corrupt data',
    Z_BUF_ERROR: 'the data ends early',
  };
  if (code !== undefined && known[code] !== undefined) return known[code]!;
  return (error as Error).message ?? String(error);
}
