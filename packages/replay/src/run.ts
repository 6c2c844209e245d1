/**
 * A whole replay: lines in, one report out. Lines are fed one at a time (a file is streamed, never
 * held whole); the first bad line stops the replay before it is applied, and the report keeps
 * everything before it.
 */
import { AddressTexts, CompactWrite, compactLineEnd, readCompactWrite } from './compact-bytes.js';
import { TraceError } from './fields.js';
import { decodeLine } from './file-lines.js';
import { Replayer, type ReplayOptions } from './replayer.js';
import { buildReport, type Report } from './report.js';
import { keepShapes } from './shape-keeper.js';
import { compactWrite, parseGeneralLine } from './trace.js';

/** A replay in progress. */
export class TraceReplay {
  /** The replayer the lines go to: its machine, events, notes and failures. */
  readonly replayer: Replayer;
  /** The trace's name in the report and in error messages (a file name). */
  readonly name: string;
  /** Lines read so far. */
  lines = 0;
  /** The error that stopped the replay. */
  error: TraceError | undefined;
  /** The compact write line `feedBytes` read last (reused: no object per line). */
  private readonly write = new CompactWrite();
  /** The texts of the addresses `feedBytes` met. */
  private readonly addressTexts = new AddressTexts();

  constructor(name: string, options: ReplayOptions = {}) {
    // The second replay of the process makes the replay that keeps every later one's object shapes.
    keepShapes((keeperOptions) => new TraceReplay('shape keeper', keeperOptions));
    this.name = name;
    this.replayer = new Replayer(options);
  }

  /** Parses and applies the next line; false once the replay has stopped on an error. */
  feed(text: string): boolean {
    return this.feedSpan(text, 0, text.length);
  }

  /**
   * `feed` for the line `text[start … end)`: a line of a chunk read from a file (`LineSpans`), read
   * where it stands; only a line that is not a compact write is cut out of the chunk.
   */
  feedSpan(text: string, start: number, end: number): boolean {
    if (this.error !== undefined) return false;
    this.lines++;
    try {
      const event =
        compactWrite(text, start, end) ??
        parseGeneralLine(start === 0 && end === text.length ? text : text.slice(start, end), this.lines);
      if (event !== undefined) this.replayer.apply(event, this.lines);
      return true;
    } catch (error) {
      if (!(error instanceof TraceError)) throw error;
      this.error = error;
      return false;
    }
  }

  /**
   * `feed` for the line `bytes[start … end)` of UTF-8 bytes (`ByteLines`): a compact write line
   * (`readCompactWrite`) is applied from its bytes, with no text and no event object made for it; any
   * other line is decoded and fed as text.
   */
  feedBytes(bytes: Uint8Array, start: number, end: number): boolean {
    if (this.error !== undefined) return false;
    if (!readCompactWrite(bytes, start, end, this.write)) return this.feed(decodeLine(bytes, start, end));
    return this.applyCompact(bytes);
  }

  /**
   * `feedBytes` for the line that starts at `from` of the lines `bytes[from … to)` (a `ByteBlock`,
   * what the CLI reads): a compact write line is read and its end found in one pass over its bytes
   * (`compactLineEnd`); any other line is found by its newline, decoded and fed as text. Returns
   * where the next line starts (`to` after the last line), or -1 once the replay has stopped on an
   * error.
   */
  feedLine(bytes: Uint8Array, from: number, to: number): number {
    if (this.error !== undefined) return -1;
    const next = compactLineEnd(bytes, from, to, this.write);
    if (next >= 0) return this.applyCompact(bytes) ? next : -1;
    let end = bytes.indexOf(0x0a, from);
    if (end < 0 || end >= to) end = to;
    const after = end === to ? to : end + 1;
    // A line ends at its newline, with a `\r` before it dropped (CRLF), as `lineBytes` cuts it.
    if (end > from && bytes[end - 1] === 0x0d) end--;
    return this.feed(decodeLine(bytes, from, end)) ? after : -1;
  }

  /**
   * Applies the compact write line `this.write` holds, read from `bytes`: with no look-up when its
   * key's slot keeps what the line names on the machine (`Replayer.applyKeptWrite`), else found and
   * kept there (`Replayer.applyKeyedWrite`). The address's text is needed only then, and for the
   * checked path's event.
   */
  private applyCompact(bytes: Uint8Array): boolean {
    const write = this.write;
    const line = ++this.lines;
    try {
      const slot = write.key;
      const kept =
        slot < 0
          ? undefined
          : this.replayer.applyKeptWrite(write.keys, slot, write.reg, write.size, write.value, line);
      if (kept === true) return true;
      const sbdf = this.addressTexts.textOf(bytes, write);
      if (kept === false)
        this.replayer.applyCheckedWrite(
          write.domain,
          write.vcpu,
          sbdf,
          write.reg,
          write.size,
          write.value,
          line,
        );
      else
        this.replayer.applyKeyedWrite(
          write.domain,
          write.vcpu,
          sbdf,
          write.reg,
          write.size,
          write.value,
          line,
          slot < 0 ? undefined : write.keys,
          slot,
        );
      return true;
    } catch (error) {
      if (!(error instanceof TraceError)) throw error;
      this.error = error;
      return false;
    }
  }

  /**
   * Ends the trace (pending work is finished unless the replay stopped on an error) and reports. A
   * trace without a single event ends in an error.
   */
  end(): Report {
    if (this.error === undefined && this.replayer.applied === 0) {
      // Nothing to replay is bad input, not a clean run: an empty file, /dev/null, comments only.
      this.error = new TraceError(
        Math.max(1, this.lines),
        `the trace has no events (${this.lines === 0 ? 'it is empty' : 'only blank and comment lines'}); expected JSON Lines starting with {"event":"host"} or {"event":"device",…}`,
      );
    }
    if (this.error === undefined) this.replayer.finish(this.lines);
    return buildReport(
      this.replayer,
      this.name,
      this.lines,
      this.error === undefined ? undefined : { line: this.error.line, message: this.error.message },
    );
  }
}

/** Replays a whole trace held in a string (tests, small traces). */
export function replayText(text: string, name = 'trace', options: ReplayOptions = {}): Report {
  const replay = new TraceReplay(name, options);
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop(); // the newline ending the last line starts no new one
  for (const line of lines) if (!replay.feed(line)) break;
  return replay.end();
}
