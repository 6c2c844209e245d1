/**
 * `vpci-replay`: replays a trace file and prints its report. `main` takes the arguments and the
 * streams, so tests run it in-process; `bin.ts` is the executable. Exit status: 0 when every assertion
 * and invariant holds, 1 when one fails (or a replayed QEMU log diverges from QEMU's decisions where
 * no Xen rule explains it), 2 for bad input (arguments, a file that cannot be read, a bad trace line,
 * a QEMU log with no access to replay).
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { formatSbdf, type Profile, parseSbdf } from '@vpci/vpci';
import { TraceError } from './fields.js';
import { fileLineChunks } from './file-lines.js';
import { renderHtml } from './html.js';
import { renderSvg } from './picture.js';
import { convertQemuLog, type QemuConversion } from './qemu.js';
import { qemuLogText } from './qemu-log.js';
import { parseQemuMonitor, type QemuMonitor } from './qemu-monitor.js';
import { replayQemuConversion } from './qemu-oracle.js';
import { type Report, reportJson } from './report.js';
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
  --qemu              TRACE is a QEMU trace log (-trace 'pci_cfg_*', best with pci_update_mappings_* and
                      memory_region_ops_*; plain or gzip), replayed as the hardware domain's accesses and
                      compared with QEMU's own mapping decisions (docs/qemu-logs.md)
  --image SBDF=FILE   with --qemu: a config-space dump (lspci -xxx) for a device the log says too
                      little about; may be repeated
  --qemu-monitor FILE with --qemu: QEMU's monitor output of "info pci" and "info mtree" (ids, BAR
                      sizes, MSI-X table and PBA) for what the log never showed
  --save-trace FILE   with --qemu: also write the converted trace (JSON Lines) to FILE
  --svg FILE          write a picture of the guest- and host-physical maps (SVG)
  --html FILE         write the picture as a page that zooms down to single pages
  --profile P         xen or hardened, overriding the trace's host line
  --progress          show a progress bar on stderr (default: when stderr is a terminal)
  --no-progress       never show one
  -h, --help          this text

exit status: 0 everything holds, 1 an assertion or invariant failed (or, with --qemu, a divergence
from QEMU that no Xen rule explains), 2 bad input
`;

interface Arguments {
  readonly trace: string;
  readonly json: boolean;
  readonly qemu: boolean;
  readonly images: ReadonlyMap<string, string>;
  readonly monitor: QemuMonitor | undefined;
  readonly saveTrace: string | undefined;
  readonly svg: string | undefined;
  readonly html: string | undefined;
  readonly profile: Profile | undefined;
  readonly progress: boolean | undefined;
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
  const options = args.profile === undefined ? {} : { profile: args.profile };
  const name = basename(args.trace);
  let report: Report;
  /** Where the replay stopped on a bad line, as the file's line (and the converted trace's). */
  let stoppedAt: string | undefined;
  if (args.qemu) {
    let conversion: QemuConversion;
    try {
      conversion = convertQemuFile(args);
    } catch (error) {
      if (error instanceof OutputError) io.stderr.write(`vpci-replay: ${error.message}\n`);
      else if (error instanceof TraceError)
        io.stderr.write(`${args.trace}:${error.line}: ${error.message}\n`);
      else throw error;
      return 2;
    }
    const progress = progressBar(
      args,
      io,
      conversion.trace.reduce((n, line) => n + line.length + 1, 0),
    );
    report = replayQemuConversion(conversion, name, options, (text, i) =>
      progress?.advance(text.length + 1, i),
    );
    progress?.clear();
    if (report.error !== null) {
      stoppedAt = `${args.trace}:${conversion.sourceLines[report.error.line - 1]} (converted trace line ${report.error.line})`;
    }
  } else {
    const replay = new TraceReplay(name, options);
    const progress = progressBar(args, io, total);
    replaying: for await (const chunk of fileLineChunks(args.trace)) {
      for (const text of chunk) {
        progress?.advance(text.length + 1, replay.lines);
        if (!replay.feed(text)) break replaying;
      }
    }
    progress?.clear();
    report = replay.end();
    if (report.error !== null) stoppedAt = `${args.trace}:${report.error.line}`;
  }
  io.stdout.write(args.json ? reportJson(report) : textReport(report));
  try {
    if (args.svg !== undefined) writeOutput('--svg', args.svg, renderSvg(report));
    if (args.html !== undefined) writeOutput('--html', args.html, renderHtml(report));
  } catch (error) {
    if (!(error instanceof OutputError)) throw error;
    io.stderr.write(`vpci-replay: ${error.message}\n`);
    return 2;
  }
  if (report.error !== null) {
    io.stderr.write(`${stoppedAt}: ${report.error.message}\n`);
    return 2;
  }
  return report.status === 'ok' ? 0 : 1;
}

/** A progress bar when asked for (default: when stderr is a terminal). */
function progressBar(args: Arguments, io: CliIo, total: number): ProgressBar | undefined {
  return (args.progress ?? io.stderr.isTTY === true) ? new ProgressBar(io.stderr, total) : undefined;
}

/** A QEMU log converted to a trace (the log is read whole: the devices come from all of it). */
function convertQemuFile(args: Arguments): QemuConversion {
  const text = qemuLogText(readFileSync(args.trace));
  const converted = convertQemuLog(text.split('\n'), {
    name: basename(args.trace),
    images: args.images,
    ...(args.monitor === undefined ? {} : { monitor: args.monitor }),
  });
  if (args.saveTrace !== undefined)
    writeOutput('--save-trace', args.saveTrace, `${converted.trace.join('\n')}\n`);
  return converted;
}

function parseArguments(argv: readonly string[]): Arguments | 'help' {
  let trace: string | undefined;
  let json = false;
  let qemu = false;
  const images = new Map<string, string>();
  let monitor: QemuMonitor | undefined;
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
      case '--qemu-monitor': {
        const file = value();
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (error) {
          throw new Error(`--qemu-monitor ${file}: cannot read: ${errorCode(error)}`);
        }
        monitor = parseQemuMonitor(text);
        if (monitor.devices.size === 0 && monitor.msixTables.length === 0 && monitor.msixPbas.length === 0)
          throw new Error(
            `--qemu-monitor ${file}: no "info pci" or "info mtree" output in it; expected what QEMU's monitor prints for those commands`,
          );
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
  if (!qemu && (images.size > 0 || saveTrace !== undefined || monitor !== undefined))
    throw new Error('--image, --qemu-monitor and --save-trace need --qemu');
  return { trace, json, qemu, images, monitor, saveTrace, svg, html, profile, progress };
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
