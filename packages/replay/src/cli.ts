/**
 * `vpci-replay`: replays a trace file and prints its report. `main` takes the arguments and the
 * streams, so tests run it in-process; `bin.ts` is the executable. Exit status: 0 when every assertion
 * and invariant holds, 1 when one fails, 2 for bad input (arguments, a file that cannot be read, a bad
 * trace line).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import {
  formatSbdf,
  type Profile,
  parseHexDump,
  parseSbdf,
  RULE_SET_NAMES,
  type RuleSetName,
} from '@vpci/vpci';
import { SingleBar } from 'cli-progress';
import { createColors } from 'picocolors';
import manifest from '../package.json';
import { CompareReplay, type CompareTarget, comparableNames, compareTargets } from './compare.js';
import { compareHtml, compareText } from './compare-report.js';
import { TraceError } from './fields.js';
import { LineTooLongError, lineBlocks, lineChunks } from './file-lines.js';
import { renderHtml } from './html.js';
import { describeError, type Input, InputError, openInput } from './input.js';
import { renderSvg } from './picture.js';
import { convertQemuLog, type QemuConversion } from './qemu.js';
import { qemuLogText } from './qemu-log.js';
import { parseQemuMonitor, type QemuMonitor } from './qemu-monitor.js';
import { replayQemuConversion } from './qemu-oracle.js';
import type { ReplayOptions } from './replayer.js';
import { type Report, reportJson } from './report.js';
import { TraceReplay } from './run.js';
import { textReport } from './text-report.js';

/** The version `--version` prints: the package's own. */
const VERSION: string = manifest.version;

/** Where the CLI reads and writes (the process's streams in `bin.ts`; buffers in tests). */
export interface CliIo {
  /** Where the report goes (a terminal gets colour). */
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean };
  /** Where messages and the progress bar go. */
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  /** What `-` reads; the process's standard input when omitted. */
  readonly stdin?: AsyncIterable<Uint8Array | string>;
  /** The environment (`NO_COLOR`, `FORCE_COLOR`); the process's when omitted. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export const USAGE = `usage: vpci-replay [options] [--] TRACE

Replays TRACE (JSON Lines, docs/trace-format.md; gzip-compressed too; - for standard input) on the
vPCI engine and prints a report.

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
  --rules R           whose BAR rules decide what the writes map (docs/rule-sets.md): xen (default),
                      qemu (QEMU's pci_update_mappings), kvm-vfio or cloud-hypervisor, overriding the
                      trace's host line; with --qemu, qemu must reproduce every one of QEMU's decisions
                      in the log
  --compare LIST      replay TRACE once per rule set of LIST (two or more of ${comparableNames().join(', ')},
                      comma-separated; docs/rule-sets.md) and report each step at which their
                      mappings part or meet again: the line, what each maps, the rule each logged
                      (text; --json: the first rule set's report with a "compare" member; --html
                      FILE: the comparison as a page). Works with --qemu; not with --profile, --svg
  --progress          show a progress bar on stderr (default: when stderr is a terminal)
  --no-progress       never show one
  --color WHEN        colour the text report: auto (on a terminal, unless NO_COLOR is set), always,
                      never
  -h, --help          this text
  -V, --version       the version

Options take their value as --opt VALUE or --opt=VALUE; -- ends the options. A FILE of - is
standard output: that output is written there instead of the report.

exit status: 0 everything holds, 1 an assertion or invariant failed (or, with --qemu, a divergence
from QEMU that no Xen rule explains; under --rules qemu, any divergence), 2 bad input (arguments, a file that cannot be read, a bad trace
line, a QEMU log with no access to replay), 3 an internal error (a bug: please report it)
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
  readonly rules: RuleSetName | undefined;
  readonly compare: readonly CompareTarget[] | undefined;
  readonly progress: boolean | undefined;
  readonly color: 'auto' | 'always' | 'never';
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let args: Arguments | 'help' | 'version';
  try {
    args = parseArguments(argv);
  } catch (error) {
    io.stderr.write(`vpci-replay: ${(error as Error).message}\n(vpci-replay --help lists the options)\n`);
    return 2;
  }
  if (args === 'help' || args === 'version') {
    io.stdout.write(args === 'help' ? USAGE : `vpci-replay ${VERSION}\n`);
    return 0;
  }
  const stdin = io.stdin ?? process.stdin;
  let input: Input;
  try {
    // A trace replay reads each chunk's lines before asking for the next: one buffer for every chunk.
    input = openInput(args.trace, stdin, { reuseChunks: !args.qemu && args.compare === undefined });
  } catch (error) {
    if (!(error instanceof InputError)) throw error;
    io.stderr.write(`vpci-replay: ${error.message}\n`);
    return 2;
  }
  const name = args.trace === '-' ? 'stdin' : basename(args.trace);
  const options = {
    ...(args.profile === undefined ? {} : { profile: args.profile }),
    ...(args.rules === undefined ? {} : { rules: args.rules }),
  };
  const progress = (args.progress ?? io.stderr.isTTY === true) ? new Progress(io.stderr, input) : undefined;
  if (args.compare !== undefined) return runComparison(args, args.compare, input, name, io, progress);
  let replayed: Replayed;
  try {
    replayed = args.qemu
      ? await replayQemuLog(args, input, name, options, io, progress)
      : await replayTrace(input, name, options, progress);
  } catch (error) {
    progress?.stop();
    return reportReplayError(error, input, io);
  }
  progress?.stop();
  const { report, stoppedAt } = replayed;
  const env = io.env ?? process.env;
  const colors = createColors(colorWanted(args.color, io.stdout.isTTY === true, env));
  const outputs: [string, string | undefined, () => string][] = [
    ['--svg', args.svg, () => renderSvg(report)],
    ['--html', args.html, () => renderHtml(report)],
  ];
  const toStdout = outputs.some(([, file]) => file === '-') || args.saveTrace === '-';
  if (!toStdout) io.stdout.write(args.json ? reportJson(report) : textReport(report, { colors }));
  try {
    for (const [option, file, render] of outputs) {
      if (file !== undefined) writeOutput(io, option, file, render());
    }
  } catch (error) {
    return reportOutputError(error, io);
  }
  if (report.error !== null) {
    io.stderr.write(`${input.name}:${stoppedAt}: ${report.error.message}\n`);
    return 2;
  }
  return report.status === 'ok' ? 0 : 1;
}

/**
 * `--compare`: the trace (or the QEMU log, converted) replayed once per rule set, side by side; the
 * comparison printed (text or, with --json, the first rule set's report with a `compare` member) and,
 * with --html, written as a page. Exit status as for one replay, taken over every rule set: 2 for bad
 * input, 1 when any rule set fails an assertion or an invariant it does not declare as a hazard.
 */
async function runComparison(
  args: Arguments,
  targets: readonly CompareTarget[],
  input: Input,
  name: string,
  io: CliIo,
  progress: Progress | undefined,
): Promise<number> {
  let comparison: CompareReplay;
  let sourceLines: readonly number[] | undefined;
  try {
    if (args.qemu) {
      const conversion = await convertQemuInput(args, input, name, io);
      sourceLines = conversion.sourceLines;
      comparison = new CompareReplay(name, targets, (line) => conversion.sourceLines[line - 1] || undefined);
      for (const text of conversion.trace) {
        if (!comparison.feed(text)) break;
        if (comparison.lines % 4096 === 0) progress?.update(comparison.lines);
      }
    } else {
      comparison = new CompareReplay(name, targets);
      try {
        comparing: for await (const chunk of lineChunks(input.bytes)) {
          for (const text of chunk) if (!comparison.feed(text)) break comparing;
          progress?.update(comparison.lines);
        }
      } catch (error) {
        if (error instanceof InputError) error.line ??= comparison.lines + 1;
        throw error;
      }
    }
  } catch (error) {
    progress?.stop();
    return reportReplayError(error, input, io);
  }
  progress?.stop();
  const { reports, compare } = comparison.end();
  const report = { ...reports[0]!, compare };
  const toStdout = args.html === '-' || args.saveTrace === '-';
  if (!toStdout)
    io.stdout.write(args.json ? reportJson(report) : compareText(name, comparison.lines, compare));
  try {
    if (args.html !== undefined)
      writeOutput(io, '--html', args.html, compareHtml(name, comparison.lines, compare));
  } catch (error) {
    return reportOutputError(error, io);
  }
  const stopped = reports.find((r) => r.error !== null);
  if (stopped?.error !== undefined && stopped.error !== null) {
    const line = stopped.error.line;
    const where =
      sourceLines === undefined ? `${line}` : `${sourceLines[line - 1]} (converted trace line ${line})`;
    io.stderr.write(`${input.name}:${where}: ${stopped.error.message}\n`);
    return 2;
  }
  // The trace's assertions speak for one rule set: counted and shown, they fail no comparison.
  const finding = compare.runs.some((run) => run.violations.some((v) => !v.expected && v.hazard === null));
  return finding ? 1 : 0;
}

/** A replay's report, and where it stopped on a bad line (the input's line, as messages give it). */
interface Replayed {
  readonly report: Report;
  readonly stoppedAt: string | undefined;
}

/** Replays a trace, streamed a chunk of lines at a time. */
async function replayTrace(
  input: Input,
  name: string,
  options: ReplayOptions,
  progress: Progress | undefined,
): Promise<Replayed> {
  const replay = new TraceReplay(name, options);
  try {
    replaying: for await (const { bytes, from, to } of lineBlocks(input.bytes)) {
      for (let at = from; at < to; ) {
        at = replay.feedLine(bytes, at, to);
        if (at < 0) break replaying;
      }
      progress?.update(replay.lines);
    }
  } catch (error) {
    // A read error carries no line: it is where the replay had got to.
    if (error instanceof InputError) error.line ??= replay.lines + 1;
    // A line too long is counted from the first line not yet read (every line before it was fed).
    if (error instanceof LineTooLongError) throw error.after(replay.lines);
    throw error;
  }
  const report = replay.end();
  return { report, stoppedAt: report.error === null ? undefined : String(report.error.line) };
}

/**
 * The QEMU log on the input, read whole (the devices come from all of it) and converted to a trace
 * (with the --images and --monitor the user gave); the trace is written to the --save-trace file, or
 * to standard output for `-` (the report is then left out). Shared by one replay and `--compare`.
 */
async function convertQemuInput(
  args: Arguments,
  input: Input,
  name: string,
  io: CliIo,
): Promise<QemuConversion> {
  const conversion = convertQemuLog(qemuLogText(Buffer.concat(await readWhole(input))).split('\n'), {
    name,
    images: args.images,
    ...(args.monitor === undefined ? {} : { monitor: args.monitor }),
  });
  if (args.saveTrace !== undefined)
    writeOutput(io, '--save-trace', args.saveTrace, `${conversion.trace.join('\n')}\n`);
  return conversion;
}

/**
 * Replays a QEMU log: read whole (the devices come from all of it), converted to a trace, and replayed
 * against QEMU's own mapping decisions.
 */
async function replayQemuLog(
  args: Arguments,
  input: Input,
  name: string,
  options: ReplayOptions,
  io: CliIo,
  progress: Progress | undefined,
): Promise<Replayed> {
  const conversion = await convertQemuInput(args, input, name, io);
  const report = replayQemuConversion(conversion, name, options, (_text, i) => {
    if (i % 4096 === 0) progress?.update(i);
  });
  const stoppedAt =
    report.error === null
      ? undefined
      : `${conversion.sourceLines[report.error.line - 1]} (converted trace line ${report.error.line})`;
  return { report, stoppedAt };
}

/** The whole input, as its chunks (a QEMU log is read whole: its devices come from all of it). */
async function readWhole(input: Input): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of input.bytes) chunks.push(chunk);
  } catch (error) {
    if (error instanceof InputError) error.line ??= 1;
    throw error;
  }
  return chunks;
}

const OPTIONS = {
  json: { type: 'boolean' },
  qemu: { type: 'boolean' },
  image: { type: 'string', multiple: true },
  'qemu-monitor': { type: 'string' },
  'save-trace': { type: 'string' },
  svg: { type: 'string' },
  html: { type: 'string' },
  profile: { type: 'string' },
  rules: { type: 'string' },
  compare: { type: 'string' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  color: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

function parseArguments(argv: readonly string[]): Arguments | 'help' | 'version' {
  const { values, positionals, tokens } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
    tokens: true,
  });
  if (values.help === true) return 'help';
  if (values.version === true) return 'version';
  // Checked before the trace file, so that `--profile trace.jsonl` (the profile's name forgotten) is
  // answered about --profile, not as a missing trace.
  const profile = values.profile;
  if (profile !== undefined && profile !== 'xen' && profile !== 'hardened') {
    throw new Error(`--profile is '${profile}'; expected xen or hardened`);
  }
  if (positionals.length === 0)
    throw new Error('no trace file given; expected TRACE (a file, or - for standard input)');
  if (positionals.length > 1) {
    throw new Error(`one trace file expected; got ${positionals.map((p) => `'${p}'`).join(', ')}`);
  }
  const qemu = values.qemu === true;
  const images = new Map<string, string>();
  for (const given of values.image ?? []) {
    const match = /^([^=]+)=(.+)$/.exec(given);
    if (match === null) throw new Error(`--image is '${given}'; expected SBDF=FILE`);
    let sbdf: string;
    try {
      sbdf = formatSbdf(parseSbdf(match[1]!));
    } catch (error) {
      throw new Error(`--image ${given}: ${(error as Error).message}`);
    }
    let image: string;
    try {
      image = readFileSync(match[2]!, 'utf8');
    } catch (error) {
      throw new Error(`--image ${given}: cannot read ${match[2]}: ${describeError(error)}`);
    }
    try {
      // Read here, so that a file that is no dump is bad input naming the option, not an internal
      // error when the conversion reaches the device.
      parseHexDump(image);
    } catch (error) {
      throw new Error(`--image ${given}: ${(error as Error).message}`);
    }
    images.set(sbdf, image);
  }
  const monitor = values['qemu-monitor'] === undefined ? undefined : readMonitor(values['qemu-monitor']);
  const saveTrace = values['save-trace'];
  if (!qemu && (images.size > 0 || saveTrace !== undefined || monitor !== undefined)) {
    throw new Error('--image, --qemu-monitor and --save-trace need --qemu');
  }
  const rules = values.rules;
  if (rules !== undefined && !(RULE_SET_NAMES as readonly string[]).includes(rules)) {
    throw new Error(`--rules is '${rules}'; expected one of ${RULE_SET_NAMES.join(', ')}`);
  }
  const compare = values.compare === undefined ? undefined : compareTargets(values.compare);
  if (compare !== undefined && (profile !== undefined || rules !== undefined)) {
    const option = profile !== undefined ? '--profile' : '--rules';
    throw new Error(`${option} cannot be combined with --compare (each rule set of --compare sets its own)`);
  }
  if (compare !== undefined && values.svg !== undefined) {
    throw new Error(
      '--svg cannot be combined with --compare (a picture shows one replay; --html writes the comparison)',
    );
  }
  const color = values.color ?? 'auto';
  if (color !== 'auto' && color !== 'always' && color !== 'never') {
    throw new Error(`--color is '${color}'; expected auto, always or never`);
  }
  const toStdout = [values.svg, values.html, saveTrace].filter((file) => file === '-').length;
  if (toStdout > 1) throw new Error('only one output can go to standard output (-)');
  // --progress and --no-progress: the last one given wins.
  const last = tokens
    .filter((t) => t.kind === 'option' && (t.name === 'progress' || t.name === 'no-progress'))
    .at(-1);
  const progress = last === undefined ? undefined : last.kind === 'option' && last.name === 'progress';
  return {
    trace: positionals[0]!,
    json: values.json === true,
    qemu,
    images,
    monitor,
    saveTrace,
    svg: values.svg,
    html: values.html,
    profile,
    rules: rules as RuleSetName | undefined,
    compare,
    progress,
    color,
  };
}

/** QEMU's monitor output from `file`; an error when it holds neither `info pci` nor `info mtree`. */
function readMonitor(file: string): QemuMonitor {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`--qemu-monitor ${file}: cannot read: ${describeError(error)}`);
  }
  const monitor = parseQemuMonitor(text);
  if (monitor.devices.size === 0 && monitor.msixTables.length === 0 && monitor.msixPbas.length === 0) {
    throw new Error(
      `--qemu-monitor ${file}: no "info pci" or "info mtree" output in it; expected what QEMU's monitor prints for those commands`,
    );
  }
  return monitor;
}

/** Whether the text report is coloured: `always`/`never`, or on a terminal unless `NO_COLOR` is set. */
function colorWanted(
  when: Arguments['color'],
  terminal: boolean,
  env: Readonly<Record<string, string | undefined>>,
): boolean {
  if (when !== 'auto') return when === 'always';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  return terminal;
}

/** An output file that could not be written. */
class OutputError extends Error {}

/**
 * Reports an error raised while reading or replaying the input (one replay or `--compare`): a bad
 * input line as `file:line: message`, an unwritable output file under the program's name; exit
 * status 2. Anything else is a bug and is rethrown rather than reported as bad input.
 */
function reportReplayError(error: unknown, input: Input, io: CliIo): 2 {
  if (error instanceof OutputError) io.stderr.write(`vpci-replay: ${error.message}\n`);
  else if (error instanceof InputError || error instanceof TraceError || error instanceof LineTooLongError) {
    io.stderr.write(`${input.name}:${error.line}: ${error.message}\n`);
  } else throw error;
  return 2;
}

/** Reports an output file (--svg, --html, …) that could not be written: exit status 2; anything else is rethrown. */
function reportOutputError(error: unknown, io: CliIo): 2 {
  if (!(error instanceof OutputError)) throw error;
  io.stderr.write(`vpci-replay: ${error.message}\n`);
  return 2;
}

/** Writes an output option's text to its file, or to standard output for `-`. */
function writeOutput(io: CliIo, option: string, file: string, text: string): void {
  if (file === '-') io.stdout.write(text);
  else writeFileOrThrow(option, file, text);
}

/** Writes a file for an output option, naming the option when it fails. */
function writeFileOrThrow(option: string, file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (error) {
    throw new OutputError(`${option} ${file}: cannot write: ${describeError(error)}`);
  }
}

/** A progress bar on stderr (cli-progress): bytes read of the input, lines replayed, rate and ETA. */
class Progress {
  private readonly bar: SingleBar;
  private readonly input: Input;

  constructor(stream: CliIo['stderr'], input: Input) {
    this.input = input;
    const sized = input.size !== undefined && input.size > 0;
    this.bar = new SingleBar({
      stream: stream as unknown as NodeJS.WritableStream,
      format: sized
        ? 'replaying [{bar}] {percentage}% | {lines} lines | {rate} lines/s | ETA {eta_formatted}'
        : 'replaying {lines} lines | {rate} lines/s',
      hideCursor: false,
      clearOnComplete: true,
      fps: 10,
      etaBuffer: 50,
      noTTYOutput: stream.isTTY !== true,
      notTTYSchedule: 2000,
    });
    this.started = Date.now();
    this.bar.start(sized ? input.size! : 1, 0, { lines: 0, rate: 0 });
  }

  private readonly started: number;

  update(lines: number): void {
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    this.bar.update(Math.min(this.input.bytesRead(), this.input.size ?? 0), {
      lines: lines.toLocaleString('en-US'),
      rate: Math.round(lines / seconds).toLocaleString('en-US'),
    });
  }

  stop(): void {
    this.bar.stop();
  }
}
