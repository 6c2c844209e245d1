/**
 * A whole replay: lines in, one report out. Lines are fed one at a time (a file is streamed, never
 * held whole); the first bad line stops the replay before it is applied, and the report keeps
 * everything before it.
 */
import { TraceError } from './fields.js';
import { Replayer, type ReplayOptions } from './replayer.js';
import { buildReport, type Report } from './report.js';
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

  constructor(name: string, options: ReplayOptions = {}) {
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
