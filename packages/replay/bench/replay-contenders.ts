/**
 * The replay bench's contenders (`replay.bench.ts`, whose header says what each one replays and how it
 * is timed), their trace files and their settings: one module, run by the bench in its own process
 * (`--in-process`) and by `replay-contender-child.ts`, the child process the bench starts for one
 * contender at a time. A contender's figures (`Outcome`) are plain data, so that a child can send
 * them to the parent as JSON: the replay's report is reduced to what the bench checks of it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ReplayOptions, TraceReplay } from '@vpci/replay';
import { cpuMs } from '../../../bench/cpu-time.js';
import { type ByteBlock, fileLineBlocks } from '../src/file-lines.js';
import { type DevicePlan, header, line, plan, scaleMachines, writes } from './writes-workload.js';

/** The target is for the full million; `BENCH_WRITES` shortens the run for profiling. */
export const WRITES = Number(process.env.BENCH_WRITES ?? 1_000_000);
/** The scale replays' checks: scoped (the target's), or `off` for the diagnostic (`BENCH_SCALE_CHECKS`). */
export const SCALE_CHECKS = scaleChecks(process.env.BENCH_SCALE_CHECKS ?? 'scoped');
function scaleChecks(value: string): 'scoped' | 'off' {
  if (value === 'scoped' || value === 'off') return value;
  console.error(`BENCH_SCALE_CHECKS is ${JSON.stringify(value)}: expected 'scoped' or 'off'`);
  process.exit(2);
}
export const DEVICES = 64;
/** CPU milliseconds of untimed passes a child makes before its timed one (`replay-contender-child.ts`). */
export const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 2000);
/**
 * The fewest untimed passes a contender makes before its timed one, however long they took: two, so
 * that the timed pass is at least the third. A scoped replay's second pass still cost 1.3-1.5 times
 * its later ones, and its first pass alone took more than `WARMUP_MS` of CPU time on a loaded host,
 * so a warm-up by time alone timed its second pass or its third as the load went (DESIGN.md,
 * "Benchmark figures", branch pair2). One for the scale pair: its pass is long and no ratio divides by it.
 */
export const warmupPasses = (name: Name): number => (name === 'scale' ? 1 : 2);
/**
 * Whole-machine checks after every line are slow by design, and so is a machine of 4,096 devices
 * today: the short runs replay this many writes, each against the 64-device replay of as many.
 */
export const SHORT_WRITES = Math.min(WRITES, Number(process.env.BENCH_SHORT_WRITES ?? 20_000));

const small = plan(DEVICES);
const setupSmall = header(small).length;
// The scale comparison's machines (`scaleMachines`: 64 devices and 4,096 repeating them, line n over
// either the same kind of work) and the larger machine's cycle of lines.
const scale = scaleMachines();
export const scaleSmall = scale.small;
export const scaleLarge = scale.large;
/** Untimed writes before the steady window, and the window's writes: two cycles each. */
export const STEADY_LEAD = 2 * scale.cycle;
export const STEADY_LINES = Math.min(
  2 * scale.cycle,
  Number(process.env.BENCH_STEADY_WRITES ?? 2 * scale.cycle),
);
/** The scale runs' windows, counted after the set-up: the first lines, and the steady ones. */
const scaleWindows = [
  [0, SHORT_WRITES],
  [STEADY_LEAD, STEADY_LEAD + STEADY_LINES],
] as const;

/** The heap in use after a GC (`--expose-gc`), array buffers included. */
function heap(): number {
  globalThis.gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** The trace files in `dir`, by the contenders that replay them. */
export interface Traces {
  small: string;
  short: string;
  scaleSmall: string;
  scaleLarge: string;
}
export function traceFiles(dir: string): Traces {
  return {
    small: join(dir, 'writes-64.jsonl'),
    short: join(dir, 'writes-64-short.jsonl'),
    scaleSmall: join(dir, 'writes-64-scale.jsonl'),
    scaleLarge: join(dir, 'writes-4096-scale.jsonl'),
  };
}

/** Writes a trace file (in a function, so the lines are garbage once it is written). */
function writeTrace(file: string, devices: readonly DevicePlan[], count: number): void {
  const parts = header(devices);
  for (const w of writes(devices, count)) parts.push(line(w));
  writeFileSync(file, `${parts.join('\n')}\n`);
}

/** Writes the traces into `dir`: the scale pair's alone with `scaleOnly`. */
export function writeTraces(dir: string, scaleOnly: boolean): Traces {
  const files = traceFiles(dir);
  if (!scaleOnly) {
    writeTrace(files.small, small, WRITES);
    writeTrace(files.short, small, SHORT_WRITES);
  }
  writeTrace(files.scaleSmall, scaleSmall, STEADY_LEAD + STEADY_LINES);
  writeTrace(files.scaleLarge, scaleLarge, STEADY_LEAD + STEADY_LINES);
  return files;
}

/** The same writes made directly on the machine the set-up lines build. */
function direct(): number {
  globalThis.gc?.();
  const setup = new TraceReplay('setup');
  for (const l of header(small)) setup.feed(l);
  const m = setup.replayer.machine!;
  const t0 = cpuMs();
  for (const w of writes(small, WRITES)) {
    const vcpu = m.vcpu(w.device.owner, 0);
    if (vcpu.pending !== undefined) m.finishPending(vcpu);
    m.configWrite(vcpu, w.device.address, w.reg, w.size, w.value);
  }
  return cpuMs() - t0;
}

export interface Replayed {
  /**
   * CPU milliseconds from the first `feed` after the set-up lines to the last line's, less the heap
   * samples: the timed lines only. The end of the replay (every vCPU's pending work finished, the
   * final whole check, the report) is left out: it is made once per trace, and over a short trace
   * of a large machine it would be spread over too few lines to compare per-line costs.
   */
  ms: number;
  /** Per window asked for (`replayFile`'s `windows`): CPU milliseconds and p2m writes. */
  windows: { ms: number; p2mWrites: number }[];
  samples: number[];
  /** The report's status and how many violations it lists. */
  status: string;
  violations: number;
}

/** What the bench checks of a replay's report. */
function ending(replay: TraceReplay): Pick<Replayed, 'status' | 'violations'> {
  const report = replay.end();
  return { status: report.status, violations: report.violations.length };
}

/**
 * Replays `file`; the clock starts after its set-up lines (`setup` of them). `windows` are line
 * ranges `[from, to)` counted after the set-up, each timed on its own too, with the p2m writes made
 * in it (every domain's).
 */
async function replayFile(
  file: string,
  setup: number,
  options: ReplayOptions,
  windows: readonly (readonly [number, number])[] = [],
): Promise<Replayed> {
  globalThis.gc?.();
  const replay = new TraceReplay(file, options);
  const samples: number[] = [];
  const timed = windows.map(() => ({ ms: 0, p2mWrites: 0 }));
  const p2mWrites = (): number =>
    replay.replayer.machine!.domains().reduce((sum, domain) => sum + domain.p2m.writes, 0);
  let t0 = 0;
  let paused = 0;
  for await (const { bytes, from, to } of fileLineBlocks(file)) {
    for (let at = from; at < to; ) {
      at = replay.feedLine(bytes, at, to);
      if (at < 0) throw new Error(`line ${replay.error?.line}: ${replay.error?.message}`);
      if (replay.lines === setup) t0 = cpuMs();
      else if (replay.lines % 100_000 === 0) {
        const p0 = cpuMs();
        samples.push(heap());
        paused += cpuMs() - p0;
      }
      for (let w = 0; w < windows.length; w++) {
        const after = replay.lines - setup;
        if (after === windows[w]![0]) {
          timed[w]!.ms -= cpuMs();
          timed[w]!.p2mWrites -= p2mWrites();
        } else if (after === windows[w]![1]) {
          timed[w]!.ms += cpuMs();
          timed[w]!.p2mWrites += p2mWrites();
        }
      }
    }
  }
  const ms = cpuMs() - t0 - paused;
  return { ms, windows: timed, samples, ...ending(replay) };
}

/** A trace file fed to its replay a block of lines at a time, read a chunk at a time. */
class FileFeeder {
  readonly replay: TraceReplay;
  private readonly blocks: AsyncIterator<ByteBlock>;
  private block: ByteBlock | undefined;
  /** Where the next line of `block` starts. */
  private next = 0;

  constructor(file: string, options?: ReplayOptions) {
    this.replay = new TraceReplay(file, options);
    this.blocks = fileLineBlocks(file)[Symbol.asyncIterator]();
  }

  /** Feeds up to `count` lines, calling `after` after each; false at the end of the file. */
  async feed(count: number, after: () => void): Promise<boolean> {
    for (let fed = 0; fed < count; ) {
      if (this.block === undefined || this.next >= this.block.to) {
        const read = await this.blocks.next();
        if (read.done === true) return false;
        this.block = read.value;
        this.next = this.block.from;
        continue;
      }
      const { bytes, to } = this.block;
      this.next = this.replay.feedLine(bytes, this.next, to);
      if (this.next < 0) throw new Error(`line ${this.replay.error?.line}: ${this.replay.error?.message}`);
      fed++;
      after();
    }
    return true;
  }
}

/** Lines each scale replay is fed in turn with the other (`scalePair`). */
const SCALE_BLOCK = 1000;

export interface ScalePair {
  small: Replayed;
  large: Replayed;
}

/**
 * The two scale replays side by side in time: each one's set-up lines (untimed), then blocks of
 * SCALE_BLOCK lines of one and of the other in turn, so that the same lines over either machine are
 * replayed within moments of each other and share whatever the machine's load did then (and V8
 * optimises the code for both machines' objects at once). Each replay's windows (counted after its
 * set-up: `scaleWindows`) are timed and their p2m writes counted as `replayFile` does.
 */
async function scalePair(files: Traces): Promise<ScalePair> {
  globalThis.gc?.();
  const pair = [
    { file: files.scaleSmall, setup: header(scaleSmall).length },
    { file: files.scaleLarge, setup: header(scaleLarge).length },
  ].map(({ file, setup }) => ({
    feeder: new FileFeeder(file, { invariantChecks: SCALE_CHECKS }),
    setup,
    after: 0,
    timed: scaleWindows.map(() => ({ ms: 0, p2mWrites: 0 })),
  }));
  for (const run of pair) await run.feeder.feed(run.setup, () => {});
  // Each replay's own clock: the CPU time of its blocks only (the other's blocks come in between).
  const ms = [0, 0];
  for (const run of pair) {
    const machine = run.feeder.replay.replayer.machine!;
    for (let w = 0; w < scaleWindows.length; w++)
      if (scaleWindows[w]![0] === 0)
        run.timed[w]!.p2mWrites -= machine.domains().reduce((sum, d) => sum + d.p2m.writes, 0);
  }
  for (let more = true; more; ) {
    more = false;
    for (let k = 0; k < pair.length; k++) {
      const run = pair[k]!;
      const machine = run.feeder.replay.replayer.machine!;
      const p2mWrites = (): number => machine.domains().reduce((sum, d) => sum + d.p2m.writes, 0);
      const b0 = cpuMs();
      const fed = await run.feeder.feed(SCALE_BLOCK, () => {
        run.after++;
        for (let w = 0; w < scaleWindows.length; w++) {
          const [from, to] = scaleWindows[w]!;
          // A window of lines `from + 1 … to` counted after the set-up (one from 0 started above).
          if (run.after === from) {
            run.timed[w]!.ms -= ms[k]! + cpuMs() - b0;
            run.timed[w]!.p2mWrites -= p2mWrites();
          } else if (run.after === to) {
            run.timed[w]!.ms += ms[k]! + cpuMs() - b0;
            run.timed[w]!.p2mWrites += p2mWrites();
          }
        }
      });
      ms[k]! += cpuMs() - b0;
      more ||= fed;
    }
  }
  const [pairSmall, pairLarge] = pair.map((run, k) => ({
    ms: ms[k]!,
    windows: run.timed,
    samples: [],
    ...ending(run.feeder.replay),
  }));
  return { small: pairSmall!, large: pairLarge! };
}

export const CONTENDERS = ['direct', 'scoped', 'unchecked', 'full', 'scopedShort', 'scale'] as const;
export type Name = (typeof CONTENDERS)[number];
/** A contender's figures: direct's CPU milliseconds, a replay's, or the scale pair's. */
export type Outcome = number | Replayed | ScalePair;

/**
 * What a contender's run gives the bench: its outcome and, forked, for a contender with a ratio
 * partner (`RATIO_PARTNERS`), the CPU milliseconds of the partner's pass timed right after it in the
 * same child (`replay-contender-child.ts`).
 */
export interface Measured {
  outcome: Outcome;
  partnerMs?: number;
}

/**
 * Each contender whose ratio to another is a target, and that other: replay / direct and the checks'
 * share against the scoped replay, whole checks against scoped ones over the short trace. Forked, the
 * contender's child warms up with the partner's passes and its own in turn and times a partner's pass
 * right after its own, and the ratio compares those two. Each alone in a child of its own, the two
 * sides ran through code V8 compiled from different feedback: the unchecked replay alone ran no
 * faster than the scoped one alone (checks' shares of 2, 21, 9 % in three runs, against about 30 %
 * line by line and 34-44 % paired), direct alone at 0.9-1.2 M writes/s against 1.8-2.1 M paired
 * (2026-12-07, DESIGN.md "Benchmark figures").
 */
export const RATIO_PARTNERS: Readonly<Partial<Record<Name, Name>>> = {
  direct: 'scoped',
  unchecked: 'scoped',
  full: 'scopedShort',
};

/** Runs contender `name` once over the trace files `files`. */
export function runContender(name: Name, files: Traces): Promise<Outcome> {
  switch (name) {
    case 'direct':
      return Promise.resolve(direct());
    case 'scoped':
      return replayFile(files.small, setupSmall, {});
    case 'unchecked':
      return replayFile(files.small, setupSmall, { invariantChecks: 'off' });
    case 'full':
      return replayFile(files.short, setupSmall, { invariantChecks: 'full' });
    case 'scopedShort':
      return replayFile(files.short, setupSmall, {});
    case 'scale':
      return scalePair(files);
  }
}
