/**
 * `vpci-replay`: replays a trace file and prints its report. `main` takes the arguments and the
 * streams, so tests run it in-process; `bin.ts` is the executable. Exit status: 0 when every assertion
 * and invariant holds, 1 when one fails, 2 for bad input (arguments, a file that cannot be read, a bad
 * trace line).
 */
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Profile } from '../policy.js';
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
  --profile P         xen or hardened, overriding the trace's host line
  --progress          show a progress bar on stderr (default: when stderr is a terminal)
  --no-progress       never show one
  -h, --help          this text

exit status: 0 everything holds, 1 an assertion or invariant failed, 2 bad input
`;

interface Arguments {
  readonly trace: string;
  readonly json: boolean;
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
    io.stderr.write(
      `vpci-replay: cannot read ${args.trace}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
    );
    return 2;
  }
  const replay = new TraceReplay(
    basename(args.trace),
    args.profile === undefined ? {} : { profile: args.profile },
  );
  const progress =
    (args.progress ?? io.stderr.isTTY === true) ? new ProgressBar(io.stderr, total) : undefined;
  const lines = createInterface({ input: createReadStream(args.trace), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    progress?.advance(line.length + 1, replay.lines);
    if (!replay.feed(line)) break;
  }
  lines.close();
  progress?.clear();
  const report = replay.end();
  io.stdout.write(args.json ? reportJson(report) : textReport(report));
  if (replay.error !== undefined) {
    io.stderr.write(`${args.trace}:${replay.error.line}: ${replay.error.message}\n`);
    return 2;
  }
  return report.status === 'ok' ? 0 : 1;
}

function parseArguments(argv: readonly string[]): Arguments | 'help' {
  let trace: string | undefined;
  let json = false;
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
  return { trace, json, profile, progress };
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
