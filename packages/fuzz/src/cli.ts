/**
 * `vpci-fuzz`: runs a seeded campaign of random traces (campaign.ts) on worker threads, writes each
 * failure's shrunk reproducer, prints a summary; `vpci-fuzz merge` merges the summaries of a
 * campaign's shards. `main` takes the arguments and the streams, so tests run it in-process; `bin.ts`
 * is the executable. Exit status: 0 no failure, 1 a failure found, 2 bad arguments or input.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { POLICY_SWITCHES, type Policy, type Profile } from '@vpci/vpci';
import manifest from '../package.json';
import {
  type CampaignOptions,
  type CaseResult,
  reproducer,
  reproducerName,
  runCase,
  shardCases,
} from './campaign.js';
import {
  type FuzzSummary,
  MergeError,
  mergeSummaries,
  parseSummary,
  summarize,
  summaryJson,
  summaryText,
} from './summary.js';
import { TRACE_FEATURES, type TraceFeature } from './trace-plan.js';

/** The version `--version` prints: the package's own. */
const VERSION: string = manifest.version;

/** Where the CLI writes (the process's streams in `bin.ts`; buffers in tests). */
export interface FuzzCliIo {
  /** Where the summary goes. */
  readonly stdout: { write(text: string): unknown };
  /** Where messages go: each failure as it is found, errors. */
  readonly stderr: { write(text: string): unknown };
}

/** The steps of a campaign given neither `--steps` nor `--time`. */
const DEFAULT_STEPS = 10_000;

export const USAGE = `usage: vpci-fuzz [options]
       vpci-fuzz merge [--json] SUMMARY…

Runs a campaign of random traces on the vPCI engine: each trace is replayed twice in step, with the
scoped invariant checks and with the whole machine checked after every line. A failure is an
exception in the engine, a line the replay refused, the two checks disagreeing, or (under hardened)
any invariant violation. Each failure is shrunk to a minimal trace; with --out, written there as a
reproducer vpci-replay replays.

options:
  --seed N            the campaign's seed (default 1); the same seed runs the same traces
  --profile P         xen or hardened (default hardened)
  --steps N           random steps in the whole campaign (default ${DEFAULT_STEPS} unless --time is given)
  --time SECONDS      stop starting traces after this long (each shard)
  --workers N         worker threads (default 1)
  --shard I/N         run shard I of N (0 ≤ I < N) of the campaign; merge the shards' --json summaries
  --out DIR           write each failure's reproducer to DIR (made if missing)
  --max-steps N       random steps per trace at most (default 60)
  --policy NAME=BOOL  set one switch of the engine's policy over the profile's; may be repeated
  --without F,…       leave these out of the traces: ${TRACE_FEATURES.join(', ')}
  --json              print the summary as JSON (stable: the same campaign gives the same bytes)
  -h, --help          this text
  -V, --version       the version

merge: reads the --json summaries of shards of one campaign and prints the summary of all of them,
as the campaign run unsharded prints it.

Options take their value as --opt VALUE or --opt=VALUE.

exit status: 0 no failure, 1 a failure found, 2 bad arguments or input, 3 an internal error
`;

interface RunArguments {
  readonly command: 'run';
  readonly campaign: CampaignOptions & { readonly maxSteps: number };
  readonly policy: Partial<Policy>;
  readonly without: readonly TraceFeature[];
  readonly steps: number | undefined;
  readonly seconds: number | undefined;
  readonly workers: number;
  readonly shard: number;
  readonly shards: number;
  readonly out: string | undefined;
  readonly json: boolean;
}

interface MergeArguments {
  readonly command: 'merge';
  readonly files: readonly string[];
  readonly json: boolean;
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: readonly string[], io: FuzzCliIo): Promise<number> {
  let args: RunArguments | MergeArguments | 'help' | 'version';
  try {
    args = parseArguments(argv);
  } catch (error) {
    io.stderr.write(`vpci-fuzz: ${(error as Error).message}\n(vpci-fuzz --help lists the options)\n`);
    return 2;
  }
  if (args === 'help' || args === 'version') {
    io.stdout.write(args === 'help' ? USAGE : `vpci-fuzz ${VERSION}\n`);
    return 0;
  }
  if (args.command === 'merge') return merge(args, io);
  if (args.out !== undefined) {
    try {
      mkdirSync(args.out, { recursive: true });
    } catch (error) {
      io.stderr.write(
        `vpci-fuzz: --out ${args.out}: cannot make the directory: ${(error as Error).message}\n`,
      );
      return 2;
    }
  }
  const summary = await campaign(args, io);
  io.stdout.write(args.json ? summaryJson(summary) : summaryText(summary));
  return summary.failures.length === 0 ? 0 : 1;
}

/** Runs this shard's cases and summarises them. */
async function campaign(args: RunArguments, io: FuzzCliIo): Promise<FuzzSummary> {
  const deadline = args.seconds === undefined ? Number.POSITIVE_INFINITY : Date.now() + args.seconds * 1000;
  const cases = shardCases(args.campaign, args.steps, args.shard, args.shards);
  const results: CaseResult[] = [];
  const reproducers = new Map<number, string>();
  const take = (result: CaseResult): void => {
    results.push(result);
    if (result.failure === undefined) return;
    let written = '';
    if (args.out !== undefined) {
      const name = reproducerName(args.campaign.seed, result.index);
      writeFileSync(join(args.out, name), reproducer(args.campaign, result));
      reproducers.set(result.index, name);
      written = ` → ${join(args.out, name)}`;
    }
    const f = result.failure;
    io.stderr.write(`case ${result.index}: ${f.kind}: ${f.message}${written}\n`);
  };
  let complete: boolean;
  if (args.workers === 1) complete = runHere(args.campaign, cases, deadline, take);
  else complete = await runOnWorkers(args, cases, deadline, take);
  return summarize(
    {
      seed: args.campaign.seed,
      profile: args.campaign.profile,
      policy: args.policy,
      maxSteps: args.campaign.maxSteps,
      without: args.without,
      budget: { steps: args.steps ?? null, seconds: args.seconds ?? null },
      shards: args.shards,
    },
    args.shard,
    complete,
    results,
    reproducers,
  );
}

type Cases = Iterator<{ index: number; steps: number }, void, undefined>;

/** Runs the cases on this thread; false when the deadline stopped it first. */
function runHere(
  options: CampaignOptions,
  cases: Cases,
  deadline: number,
  take: (result: CaseResult) => void,
): boolean {
  for (let next = cases.next(); !next.done; next = cases.next()) {
    if (Date.now() >= deadline) return false;
    take(runCase(options, next.value.index));
  }
  return true;
}

/** Runs the cases on `args.workers` worker threads, one case at a time each; false when the deadline stopped it. */
function runOnWorkers(
  args: RunArguments,
  cases: Cases,
  deadline: number,
  take: (result: CaseResult) => void,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let complete = true;
    let failed = false;
    let live = args.workers;
    const workers: Worker[] = [];
    // A worker gets the next case when it is done with one; with none left (or no time), it ends.
    const feed = (worker: Worker): void => {
      if (failed) return;
      if (Date.now() >= deadline) complete = false;
      const next = complete ? cases.next() : undefined;
      if (next === undefined || next.done) void worker.terminate();
      else worker.postMessage(next.value.index);
    };
    for (let i = 0; i < args.workers; i++) {
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: args.campaign });
      workers.push(worker);
      worker.on('message', (result: CaseResult) => {
        take(result);
        feed(worker);
      });
      worker.on('error', (error) => {
        failed = true;
        for (const w of workers) void w.terminate();
        reject(error);
      });
      worker.on('exit', () => {
        live--;
        if (live === 0 && !failed) resolve(complete);
      });
      feed(worker);
    }
  });
}

/** `vpci-fuzz merge`. */
function merge(args: MergeArguments, io: FuzzCliIo): number {
  let merged: FuzzSummary;
  try {
    const summaries = args.files.map((file) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (error) {
        throw new MergeError(`${file}: cannot read: ${(error as Error).message}`);
      }
      return { name: file, summary: parseSummary(file, text) };
    });
    merged = mergeSummaries(summaries);
  } catch (error) {
    if (!(error instanceof MergeError)) throw error;
    io.stderr.write(`vpci-fuzz merge: ${error.message}\n`);
    return 2;
  }
  io.stdout.write(args.json ? summaryJson(merged) : summaryText(merged));
  return merged.failures.length === 0 ? 0 : 1;
}

const OPTIONS = {
  seed: { type: 'string' },
  profile: { type: 'string' },
  steps: { type: 'string' },
  time: { type: 'string' },
  workers: { type: 'string' },
  shard: { type: 'string' },
  out: { type: 'string' },
  'max-steps': { type: 'string' },
  policy: { type: 'string', multiple: true },
  without: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/** A whole number in `min … max` from option `name`'s text. */
function integer(name: string, text: string | undefined, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new Error(`--${name} is '${text}'; expected a whole number in ${min} … ${max}`);
  return value;
}

function parseArguments(argv: readonly string[]): RunArguments | MergeArguments | 'help' | 'version' {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help === true) return 'help';
  if (values.version === true) return 'version';
  const json = values.json === true;
  if (positionals[0] === 'merge') {
    const others = Object.keys(values).filter((name) => name !== 'json');
    if (others.length > 0) throw new Error(`merge takes only --json; got --${others.join(', --')}`);
    if (positionals.length < 2)
      throw new Error('merge: no summary given; expected one or more --json summary files');
    return { command: 'merge', files: positionals.slice(1), json };
  }
  if (positionals.length > 0)
    throw new Error(`unexpected argument '${positionals[0]}'; expected options, or the command merge`);
  const profile = values.profile ?? 'hardened';
  if (profile !== 'xen' && profile !== 'hardened')
    throw new Error(`--profile is '${profile}'; expected xen or hardened`);
  const seed = integer('seed', values.seed, 0, 0xffff_ffff, 1);
  const steps =
    values.steps === undefined ? undefined : integer('steps', values.steps, 1, Number.MAX_SAFE_INTEGER, 0);
  let seconds: number | undefined;
  if (values.time !== undefined) {
    seconds = /^\d+(\.\d+)?$/.test(values.time) ? Number(values.time) : Number.NaN;
    if (!(seconds > 0) || !Number.isFinite(seconds))
      throw new Error(`--time is '${values.time}'; expected a number of seconds above 0`);
  }
  const workers = integer('workers', values.workers, 1, 256, 1);
  const maxSteps = integer('max-steps', values['max-steps'], 1, 10_000, 60);
  let shard = 0;
  let shards = 1;
  if (values.shard !== undefined) {
    const match = /^(\d+)\/(\d+)$/.exec(values.shard);
    shard = match === null ? Number.NaN : Number(match[1]);
    shards = match === null ? Number.NaN : Number(match[2]);
    if (!(shards >= 1 && shards <= 1_000_000 && shard < shards))
      throw new Error(`--shard is '${values.shard}'; expected I/N with 0 ≤ I < N, such as 0/4`);
  }
  const policy: Record<string, boolean> = {};
  for (const given of values.policy ?? []) {
    const match = /^([A-Za-z]+)=(true|false)$/.exec(given);
    if (match === null) throw new Error(`--policy is '${given}'; expected NAME=true or NAME=false`);
    if (!POLICY_SWITCHES.includes(match[1] as keyof Policy))
      throw new Error(`--policy names '${match[1]}'; expected one of ${POLICY_SWITCHES.join(', ')}`);
    policy[match[1]!] = match[2] === 'true';
  }
  const without = new Set<TraceFeature>();
  for (const given of (values.without ?? []).flatMap((list) => list.split(','))) {
    if (!TRACE_FEATURES.includes(given as TraceFeature))
      throw new Error(`--without names '${given}'; expected some of ${TRACE_FEATURES.join(', ')}`);
    without.add(given as TraceFeature);
  }
  const withoutList = TRACE_FEATURES.filter((feature) => without.has(feature));
  const out = values.out;
  if (out === '') throw new Error("--out is ''; expected a directory");
  return {
    command: 'run',
    campaign: {
      seed,
      profile: profile as Profile,
      maxSteps,
      ...(Object.keys(policy).length === 0 ? {} : { policy }),
      ...(withoutList.length === 0 ? {} : { without: withoutList }),
    },
    policy,
    without: withoutList,
    steps: steps ?? (seconds === undefined ? DEFAULT_STEPS : undefined),
    seconds,
    workers,
    shard,
    shards,
    out,
    json,
  };
}
