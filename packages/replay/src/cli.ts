/**
 * `vpci-replay`: replays a trace file and prints its report. `main` takes the arguments and the
 * streams, so tests run it in-process; `bin.ts` is the executable. Exit status: 0 when every assertion
 * and invariant holds, 1 when one fails, 2 for bad input (arguments, a file that cannot be read, a bad
 * trace line).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { formatSbdf, type Profile, parseSbdf } from '@vpci/vpci';
import { TraceError } from './fields.js';
import { fileLineChunks } from './file-lines.js';
import { renderHtml } from './html.js';
import { renderSvg } from './picture.js';
import { convertQemuLog } from './qemu.js';
import { reportJson } from './report.js';
import { TraceReplay } from './run.js';
import { textReport } from './text-report.js';

/** Where the CLI writes. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
}

export const USAGE = `usage: vpci-replay [options] TRACE

Replays TRACE (JSON Lines, docs/trace-format.md) on the vPCI engine and prints a report.

options:
  --json              print the report as JSON (stable: the same trace gives the same bytes)
  --qemu              TRACE is a QEMU trace log (-trace pci_cfg_* and memory_region_ops_*; .gz too),
                      replayed as the hardware domain's accesses
  --image SBDF=FILE   with --qemu: a config-space dump (lspci -xxx) for a device the log says too
                      little about; may be repeated
  --save-trace FILE   with --qemu: also write the converted trace (JSON Lines) to FILE
  --svg FILE          write a picture of the guest- and host-physical maps (SVG)
  --html FILE         write the picture as a page that zooms down to single pages
  --profile P         xen or hardened, overriding the trace's host line
  --progress          show a progress bar on stderr (default: when stderr is a terminal)
  --no-progress       never show one
  -h, --help          this text

exit status: 0 everything holds, 1 an assertion or invariant failed, 2 bad input
`;

interface Arguments {
  readonly trace: string;
  readonly json: boolean;
  readonly qemu: boolean;
  readonly images: ReadonlyMap<string, string>;
  readonly saveTrace: string | undefined;
  readonly svg: string | undefined;
  readonly html: string | undefined;
  readonly profile: Profile | undefined;
  readonly progress: boolean | undefined;
}

/** A line to replay and where it came from (the QEMU log's line for a converted trace). */
interface SourcedLine {
  readonly text: string;
  readonly source: number;
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let args: Arguments | 'help';
  try {
    args = parseArguments(argv);
  } catch (error) {
    io.stderr.write(`vpci-replay: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  let total: number;
  try {
    total = statSync(args.trace).size;
  } catch (error) {
    io.stderr.write(`vpci-replay: cannot read ${args.trace}: ${errorCode(error)}\n`);
    return 2;
  }
  // In batches: a file's come a chunk at a time, a converted QEMU log's all at once.
  let batches: Iterable<SourcedLine[]> | AsyncIterable<SourcedLine[]>;
  if (args.qemu) {
    try {
      batches = [qemuLines(args)];
    } catch (error) {
      if (error instanceof OutputError) io.stderr.write(`vpci-replay: ${error.message}\n`);
      else if (error instanceof TraceError)
        io.stderr.write(`${args.trace}:${error.line}: ${error.message}\n`);
      else throw error;
      return 2;
    }
  } else {
    batches = fileLines(args.trace);
  }
  const replay = new TraceReplay(
    basename(args.trace),
    args.profile === undefined ? {} : { profile: args.profile },
  );
  const progress =
    (args.progress ?? io.stderr.isTTY === true) ? new ProgressBar(io.stderr, total) : undefined;
  let failedAt = 0;
  replaying: for await (const batch of batches) {
    for (const line of batch) {
      progress?.advance(line.text.length + 1, replay.lines);
      if (!replay.feed(line.text)) {
        failedAt = line.source;
        break replaying;
      }
    }
  }
  progress?.clear();
  const report = replay.end();
  io.stdout.write(args.json ? reportJson(report) : textReport(report));
  try {
    if (args.svg !== undefined) writeOutput('--svg', args.svg, renderSvg(report));
    if (args.html !== undefined) writeOutput('--html', args.html, renderHtml(report));
  } catch (error) {
    if (!(error instanceof OutputError)) throw error;
    io.stderr.write(`vpci-replay: ${error.message}\n`);
    return 2;
  }
  if (replay.error !== undefined) {
    const where = args.qemu
      ? `${args.trace}:${failedAt} (converted trace line ${replay.error.line})`
      : `${args.trace}:${replay.error.line}`;
    io.stderr.write(`${where}: ${replay.error.message}\n`);
    return 2;
  }
  return report.status === 'ok' ? 0 : 1;
}

/** The lines of a trace file, streamed, with their line numbers. */
async function* fileLines(file: string): AsyncIterable<SourcedLine[]> {
  let n = 0;
  for await (const chunk of fileLineChunks(file)) yield chunk.map((text) => ({ text, source: ++n }));
}

/** A QEMU log converted to a trace (the log is read whole: the devices come from all of it). */
function qemuLines(args: Arguments): SourcedLine[] {
  const raw = readFileSync(args.trace);
  const text = (args.trace.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
  const converted = convertQemuLog(text.split('\n'), { name: basename(args.trace), images: args.images });
  if (args.saveTrace !== undefined)
    writeOutput('--save-trace', args.saveTrace, `${converted.trace.join('\n')}\n`);
  return converted.trace.map((line, i) => ({ text: line, source: converted.sourceLines[i]! }));
}

function parseArguments(argv: readonly string[]): Arguments | 'help' {
  let trace: string | undefined;
  let json = false;
  let qemu = false;
  const images = new Map<string, string>();
  let saveTrace: string | undefined;
  let svg: string | undefined;
  let html: string | undefined;
  let profile: Profile | undefined;
  let progress: boolean | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    switch (arg) {
      case '-h':
      case '--help':
        return 'help';
      case '--json':
        json = true;
        break;
      case '--qemu':
        qemu = true;
        break;
      case '--image': {
        const given = value();
        const match = /^([^=]+)=(.+)$/.exec(given);
        if (match === null) throw new Error(`--image is '${given}'; expected SBDF=FILE`);
        let sbdf: string;
        try {
          sbdf = formatSbdf(parseSbdf(match[1]!));
        } catch (error) {
          throw new Error(`--image ${given}: ${(error as Error).message}`);
        }
        try {
          images.set(sbdf, readFileSync(match[2]!, 'utf8'));
        } catch (error) {
          throw new Error(`--image ${given}: cannot read ${match[2]}: ${errorCode(error)}`);
        }
        break;
      }
      case '--save-trace':
        saveTrace = value();
        break;
      case '--svg':
        svg = value();
        break;
      case '--html':
        html = value();
        break;
      case '--profile': {
        const p = value();
        if (p !== 'xen' && p !== 'hardened') throw new Error(`--profile is '${p}'; expected xen or hardened`);
        profile = p;
        break;
      }
      case '--progress':
        progress = true;
        break;
      case '--no-progress':
        progress = false;
        break;
      default:
        if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
        if (trace !== undefined) throw new Error(`one trace file expected; got ${trace} and ${arg}`);
        trace = arg;
    }
  }
  if (trace === undefined) throw new Error('no trace file given');
  if (!qemu && (images.size > 0 || saveTrace !== undefined))
    throw new Error('--image and --save-trace need --qemu');
  return { trace, json, qemu, images, saveTrace, svg, html, profile, progress };
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/** An output file that could not be written. */
class OutputError extends Error {}

/** Writes a file for an output option, naming the option when it fails. */
function writeOutput(option: string, file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (error) {
    throw new OutputError(`${option} ${file}: cannot write: ${errorCode(error)}`);
  }
}

/** A one-line progress bar on a terminal, redrawn at most ten times a second. */
class ProgressBar {
  private readonly stream: CliIo['stderr'];
  private readonly total: number;
  private done = 0;
  private last = 0;

  constructor(stream: CliIo['stderr'], total: number) {
    this.stream = stream;
    this.total = Math.max(1, total);
  }

  advance(bytes: number, lines: number): void {
    this.done += bytes;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    const fraction = Math.min(1, this.done / this.total);
    const width = 30;
    const filled = Math.round(fraction * width);
    this.stream.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${lines} lines`,
    );
  }

  clear(): void {
    if (this.last !== 0) this.stream.write(`\r${' '.repeat(60)}\r`);
  }
}
