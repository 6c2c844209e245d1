/**
 * One trace replayed under several rule sets side by side (`vpci-replay --compare`): every line goes
 * to one replay per rule set, and after each line whose p2m writes changed a domain in any of them,
 * that domain's mappings are compared across the rule sets. A step is recorded where, over some guest
 * frames, at least one rule set's mapping changed at that line and the rule sets do not all map them
 * alike (they part), or did not before and do now (they meet again). Each step gives the line, per
 * rule set what it maps there (and what it mapped before), whose BAR those frames are, and the
 * decisions each rule set logged at that line: the rule that made the difference.
 *
 * Work per line is bounded by what the line wrote, not by the map: a domain is compared only when its
 * p2m was written, and only over the guest frames written since it was last compared in any replay
 * (each p2m tells the frames of its writes, `P2m.watchWrites`), by a sweep over the boundaries of the
 * extents there in every replay (before and after the line). Frames no replay wrote are mapped as
 * they were in every replay, so no step lies there: the steps are those of a sweep over the whole
 * lists. A domain seen for the first time (or whose p2m is another object) is compared whole.
 */
import type { Gfn, Mfn, P2m, P2mExtent } from '@vpci/p2m';
import { describeEvent, type Machine, mappingDomain, RULE_SET_NAMES, ruleSetFor } from '@vpci/vpci';
import type { CompareMapping, CompareRun, CompareStep, ReportCompare } from './compare-section.js';
import { hex } from './fields.js';
import type { LoggedEvent, ReplayOptions } from './replayer.js';
import type { Report } from './report.js';
import { TraceReplay } from './run.js';

/** One rule set of a comparison: its name and how a replay under it is set up. */
export interface CompareTarget {
  /** The name the report gives it (`xen`, `hardened`, …). */
  readonly name: string;
  /** The replay's options (the rule set or profile it runs under). */
  readonly options: ReplayOptions;
  /**
   * The rule set's declared known hazards: a violation kind the rule set allows by design (as Xen's
   * gaps are declared), mapped to the hazard's one-line name. A violation of such a kind is reported
   * with that name; any other is a finding.
   */
  readonly hazards?: ReadonlyMap<string, string>;
}

/**
 * The names `--compare` accepts, each with how a replay under it is set up: the Xen rule set's two
 * profiles, `xen` and `hardened`, then every other rule set (`RULE_SET_NAMES`) under the `xen`
 * profile, whose switches only Xen's rules consult.
 */
const COMPARABLE: ReadonlyMap<string, ReplayOptions> = new Map<string, ReplayOptions>([
  ['xen', { profile: 'xen', rules: 'xen' }],
  ['hardened', { profile: 'hardened', rules: 'xen' }],
  ...RULE_SET_NAMES.filter((name) => name !== 'xen').map((name): [string, ReplayOptions] => [
    name,
    { profile: 'xen', rules: name },
  ]),
]);

/** The names `--compare` accepts. */
export function comparableNames(): string[] {
  return [...COMPARABLE.keys()];
}

/**
 * The rule sets of a `--compare` value: two or more names, comma-separated, each once. Throws an
 * error naming the option, the value and the accepted names.
 */
export function compareTargets(value: string): CompareTarget[] {
  const accepted = `two or more of ${comparableNames().join(', ')}, comma-separated`;
  const names = value.split(',').map((n) => n.trim());
  for (const name of names) {
    if (name === '') throw new Error(`--compare is '${value}': an empty name; expected ${accepted}`);
    if (!COMPARABLE.has(name)) {
      throw new Error(`--compare is '${value}': '${name}' is not a rule set; expected ${accepted}`);
    }
  }
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined)
    throw new Error(`--compare is '${value}': '${twice}' is named twice; expected ${accepted}`);
  if (names.length < 2) throw new Error(`--compare is '${value}': one rule set; expected ${accepted}`);
  return names.map((name) => {
    const options = COMPARABLE.get(name)!;
    const hazards = ruleSetFor(options.rules).hazards;
    return { name, options, hazards: new Map(hazards.map((h) => [h.violation, h.why])) };
  });
}

/** Steps listed in full; beyond them only counted (a report stays readable, and bounded). */
export const MAX_COMPARE_STEPS = 1000;

/** Characters of a trace line a step quotes. */
const TEXT_CLIP = 200;

/** One rule set's replay and what the comparison remembers of it between lines. */
interface Run {
  readonly target: CompareTarget;
  readonly replay: TraceReplay;
  /** Per domain id, the p2m write count last seen. */
  readonly writes: Map<number, number>;
  /**
   * Per domain id, its mappings as last compared: extents in gfn order, possibly cut where a
   * compared window ended (the sweep reads mappings, not extents).
   */
  readonly extents: Map<number, P2mExtent[]>;
  /** Per domain id, the p2m whose writes `written` records. */
  readonly watched: Map<number, P2m>;
  /** Per domain id, the guest frames written since it was last compared (`first, last` pairs). */
  readonly written: Map<number, number[]>;
  /** Per domain id, the events already looked at when it was last compared. */
  readonly eventsSeen: Map<number, number>;
  /** The last event naming each BAR (`"<sbdf> BAR<n>"`), and how many events that has looked at. */
  readonly lastDecision: Map<string, LoggedEvent>;
  decisionsSeen: number;
}

/** A comparison in progress: lines in, one report per rule set and the comparison out. */
export class CompareReplay {
  private readonly runs: Run[];
  private readonly steps: CompareStep[] = [];
  private stepsFound = 0;
  private readonly sourceOf: ((line: number) => number | undefined) | undefined;
  /** Lines fed so far. */
  lines = 0;

  /**
   * A comparison of `targets` (two or more, names unique) over the trace `name`. `sourceOf` maps a
   * trace line to the input line it came from (a QEMU log's), for the steps.
   */
  constructor(
    name: string,
    targets: readonly CompareTarget[],
    sourceOf?: (line: number) => number | undefined,
  ) {
    this.runs = targets.map((target) => ({
      target,
      replay: new TraceReplay(name, target.options),
      writes: new Map(),
      extents: new Map(),
      watched: new Map(),
      written: new Map(),
      eventsSeen: new Map(),
      lastDecision: new Map(),
      decisionsSeen: 0,
    }));
    this.sourceOf = sourceOf;
  }

  /** The first rule set's replay (its report is the one the comparison extends). */
  get first(): TraceReplay {
    return this.runs[0]!.replay;
  }

  /** Feeds the next line to every replay; false once one of them stopped on an error. */
  feed(text: string): boolean {
    this.lines++;
    let going = true;
    for (const run of this.runs) if (!run.replay.feed(text)) going = false;
    if (!going) return false;
    this.afterLine(this.lines, text);
    return true;
  }

  /** Ends every replay: one report per rule set, in the order given, and the comparison. */
  end(): { readonly reports: readonly Report[]; readonly compare: ReportCompare } {
    const reports = this.runs.map((run) => run.replay.end());
    // The end of the trace finishes pending work: one more step, at the last line.
    if (reports.every((r) => r.error === null)) this.afterLine(this.lines, '(end of trace)');
    return {
      reports,
      compare: {
        ruleSets: this.runs.map((run) => run.target.name),
        runs: this.runs.map((run, i) => compareRun(run.target, reports[i]!)),
        stepsFound: this.stepsFound,
        steps: this.steps,
      },
    };
  }

  /** Compares every domain whose p2m any replay wrote at `line`. */
  private afterLine(line: number, text: string): void {
    const changed = new Set<number>();
    for (const run of this.runs) {
      const machine = run.replay.replayer.machine;
      if (machine === undefined) continue;
      for (const domain of machine.domains()) {
        if (domain.isPseudo) continue;
        if (run.writes.get(domain.id) !== domain.p2m.writes) changed.add(domain.id);
      }
    }
    for (const id of [...changed].sort((a, b) => a - b)) this.compareDomain(line, text, id);
  }

  /**
   * Each rule set's events since domain `id` was last compared that name one of `devices` (or the
   * domain): the decisions behind its mapping, including those of a deferred map made at an earlier
   * line. A BAR of `bars` none of those names gets the last decision its rule set logged about it,
   * however early (a rule set that trapped a BAR at its command write parts from one that maps it
   * only when another's deferred map completes). An event of an earlier line says its line.
   */
  private rulesFor(
    line: number,
    id: number,
    devices: ReadonlySet<string>,
    bars: ReadonlySet<string>,
  ): Record<string, string[]> {
    const rules: Record<string, string[]> = {};
    for (const run of this.runs) {
      const events: readonly LoggedEvent[] = run.replay.replayer.events;
      for (; run.decisionsSeen < events.length; run.decisionsSeen++) {
        const { line: at, event } = events[run.decisionsSeen]!;
        if ('sbdf' in event && 'bar' in event && typeof event.bar === 'number')
          run.lastDecision.set(barName(event.sbdf, event.bar), { line: at, event });
      }
      const said: string[] = [];
      const named = new Set<string>();
      const say = (at: number, event: LoggedEvent['event']): void => {
        said.push(`${at === line ? '' : `line ${at}: `}${event.kind}: ${describeEvent(event)}`);
        if ('sbdf' in event && 'bar' in event && typeof event.bar === 'number')
          named.add(barName(event.sbdf, event.bar));
      };
      for (let i = run.eventsSeen.get(id) ?? 0; i < events.length; i++) {
        const { line: at, event } = events[i]!;
        const about =
          ('sbdf' in event && devices.has(event.sbdf)) ||
          (!('sbdf' in event) && 'domain' in event && event.domain === id);
        if (about) say(at, event);
      }
      for (const bar of [...bars].sort()) {
        const last = run.lastDecision.get(bar);
        if (last !== undefined && !named.has(bar)) say(last.line, last.event);
      }
      run.eventsSeen.set(id, events.length);
      rules[run.target.name] = said;
    }
    return rules;
  }

  /**
   * Where domain `id`'s mappings (`p2ms`: each replay's p2m of it) changed since it was last compared,
   * in any replay, and the rule sets part or meet again (`partingSegments`): over the frames written
   * since, or over everything when a replay's p2m of the domain is not the one watched. The remembered mappings are brought up to
   * date there, and every replay's p2m of the domain watched from now on.
   */
  private domainSegments(id: number, p2ms: readonly (P2m | undefined)[]): Segment[] {
    const whole = this.runs.some((run, i) => p2ms[i] === undefined || run.watched.get(id) !== p2ms[i]);
    if (whole) {
      const before = this.runs.map((run) => run.extents.get(id) ?? []);
      const after = p2ms.map((p2m) => (p2m === undefined ? [] : [...p2m.extents()]));
      this.runs.forEach((run, i) => {
        run.extents.set(id, after[i]!);
        this.watch(run, id, p2ms[i]);
      });
      return partingSegments(before, after);
    }
    const segments = writtenPartingSegments(
      this.runs.map((run) => run.extents.get(id)!),
      p2ms.map((p2m) => (first, last) => p2m!.extentsIn(first as Gfn, last as Gfn)),
      this.runs.map((run) => run.written.get(id)!),
    );
    for (const run of this.runs) run.written.set(id, []);
    return segments;
  }

  /** Records in `run.written` the frames each write of `p2m` (domain `id`'s, if any) touches from now on. */
  private watch(run: Run, id: number, p2m: P2m | undefined): void {
    run.watched.get(id)?.watchWrites(undefined);
    run.written.set(id, []);
    if (p2m === undefined) {
      run.watched.delete(id);
      return;
    }
    run.watched.set(id, p2m);
    p2m.watchWrites((first, last) => addRange(run.written.get(id)!, first, last));
  }

  /** Compares domain `id` after `line` against its extents before; records a step where they part. */
  private compareDomain(line: number, text: string, id: number): void {
    // Each replay's p2m of the domain (`domains()` would copy the list per replay and search it).
    const p2ms = this.runs.map((run) => run.replay.replayer.machine?.findDomain(id)?.p2m);
    this.runs.forEach((run, i) => {
      if (p2ms[i] !== undefined) run.writes.set(id, p2ms[i].writes);
    });
    const segments = this.domainSegments(id, p2ms);
    if (segments.length === 0) {
      for (const run of this.runs) run.eventsSeen.set(id, run.replay.replayer.events.length);
      return;
    }
    this.stepsFound++;
    if (this.steps.length >= MAX_COMPARE_STEPS) return;
    const names = this.runs.map((run) => run.target.name);
    const machines = this.runs.map((run) => run.replay.replayer.machine);
    const mapping = (i: number, m: Mapped | null, gfn: number): CompareMapping | null =>
      m === null
        ? null
        : { mfn: hex(gfn + m.delta), type: m.type, bar: barOfMachineFrame(machines[i], id, gfn + m.delta) };
    const ranges = segments.map((s) => ({
      gfn: hex(s.first),
      count: s.last - s.first + 1,
      agree: s.after.every((m) => sameMapping(m, s.after[0]!)),
      bars: barsOverGuestFrames(machines, id, s.first, s.last),
      mapped: Object.fromEntries(names.map((n, i) => [n, mapping(i, s.after[i]!, s.first)])),
      before: Object.fromEntries(names.map((n, i) => [n, mapping(i, s.before[i]!, s.first)])),
    }));
    const devices = new Set<string>();
    const bars = new Set<string>();
    for (const range of ranges) {
      for (const bar of range.bars) bars.add(bar);
      for (const m of [...Object.values(range.mapped), ...Object.values(range.before)]) {
        if (m?.bar != null) bars.add(m.bar);
      }
    }
    for (const bar of bars) devices.add(bar.split(' ')[0]!);
    this.steps.push({
      line,
      source: this.sourceOf?.(line) ?? null,
      text: text.length > TEXT_CLIP ? `${text.slice(0, TEXT_CLIP)}…` : text,
      domain: id,
      ranges,
      rules: this.rulesFor(line, id, devices, bars),
    });
  }
}

/** How a replay ended, with its violations named by the hazards its rule set declares. */
function compareRun(target: CompareTarget, report: Report): CompareRun {
  return {
    ruleSet: target.name,
    status: report.status,
    assertions: { total: report.assertions.total, failed: report.assertions.failed },
    violations: report.violations.map((v) => {
      const kind = String(v.kind);
      return {
        line: Number(v.line),
        kind,
        present: v.present === true,
        expected: v.expected === true,
        hazard: target.hazards?.get(kind) ?? null,
        message: String(v.message),
      };
    }),
  };
}

/** A frame's mapping as the sweep compares it: the p2m type and `mfn - gfn` (runs that continue agree). */
interface Mapped {
  readonly type: string;
  readonly delta: number;
}

/** A run of guest frames uniform in every replay, before and after the line. */
interface Segment {
  first: number;
  last: number;
  readonly before: (Mapped | null)[];
  readonly after: (Mapped | null)[];
}

function sameMapping(a: Mapped | null, b: Mapped | null): boolean {
  return a === null || b === null ? a === b : a.type === b.type && a.delta === b.delta;
}

function allAlike(list: readonly (Mapped | null)[]): boolean {
  return list.every((m) => sameMapping(m, list[0]!));
}

/**
 * The runs of guest frames where some replay's mapping changed (`before` → `after`) and the replays
 * do not all agree after it, or did not before: where the rule sets part, or meet again. Adjacent
 * runs alike in every replay are merged. A sweep over every extent boundary of every list.
 */
export function partingSegments(
  before: readonly (readonly P2mExtent[])[],
  after: readonly (readonly P2mExtent[])[],
): Segment[] {
  const lists = [...before, ...after];
  const bounds = new Set<number>();
  for (const list of lists) {
    for (const e of list) {
      bounds.add(e.gfn);
      bounds.add(e.gfn + e.count);
    }
  }
  const points = [...bounds].sort((a, b) => a - b);
  const cursors = lists.map(() => 0);
  const n = before.length;
  const out: Segment[] = [];
  for (let p = 0; p + 1 < points.length; p++) {
    const first = points[p]!;
    const last = points[p + 1]! - 1;
    const at = lists.map((list, k) => {
      let i = cursors[k]!;
      while (i < list.length && list[i]!.gfn + list[i]!.count <= first) i++;
      cursors[k] = i;
      const e = list[i];
      return e !== undefined && e.gfn <= first ? { type: e.type, delta: e.mfn - e.gfn } : null;
    });
    const was = at.slice(0, n);
    const now = at.slice(n);
    const moved = was.some((m, i) => !sameMapping(m, now[i]!));
    if (!moved || (allAlike(now) && allAlike(was))) continue;
    const previous = out.at(-1);
    if (
      previous !== undefined &&
      previous.last + 1 === first &&
      previous.before.every((m, i) => sameMapping(m, was[i]!)) &&
      previous.after.every((m, i) => sameMapping(m, now[i]!))
    ) {
      previous.last = last;
    } else out.push({ first, last, before: was, after: now });
  }
  return out;
}

/** Adds the frames `[first, last]` to `ranges` (`first, last` pairs), joined with the last pair if they touch it. */
function addRange(ranges: number[], first: number, last: number): void {
  if (last < first) return;
  const n = ranges.length;
  if (n > 0 && first <= ranges[n - 1]! + 1 && last >= ranges[n - 2]! - 1) {
    ranges[n - 2] = Math.min(ranges[n - 2]!, first);
    ranges[n - 1] = Math.max(ranges[n - 1]!, last);
  } else ranges.push(first, last);
}

/**
 * `partingSegments(before, after)` where `after` differs from `before` only over the frames `written`
 * (per replay, `first, last` pairs in any order): the sweep over those frames alone. `before` holds
 * the lists (extents in gfn order) and is brought to `after` there; `extentsIn` gives, per replay, the
 * extents after meeting a range of frames (whole or cut).
 */
export function writtenPartingSegments(
  before: readonly P2mExtent[][],
  extentsIn: readonly ((first: number, last: number) => readonly P2mExtent[])[],
  written: readonly (readonly number[])[],
): Segment[] {
  const segments: Segment[] = [];
  for (const [first, last] of writtenWindows(written)) {
    const was = before.map((list) => clipped(list, first, last));
    const now = extentsIn.map((list) => clipped(list(first, last), first, last));
    for (const segment of partingSegments(was, now)) segments.push(segment);
    for (let i = 0; i < before.length; i++) replaceWindow(before[i]!, first, last, now[i]!);
  }
  return segments;
}

/**
 * The frames of every replay's `first, last` pairs as windows in frame order, any two that overlap or
 * touch joined: frames between two windows were written by no replay, so no step found in one window
 * continues into the next (the steps of the windows together are those of one whole sweep).
 */
function writtenWindows(lists: readonly (readonly number[])[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const list of lists) for (let k = 0; k < list.length; k += 2) ranges.push([list[k]!, list[k + 1]!]);
  ranges.sort((a, b) => a[0] - b[0]);
  const windows: [number, number][] = [];
  for (const [first, last] of ranges) {
    const previous = windows.at(-1);
    if (previous !== undefined && first <= previous[1] + 1) previous[1] = Math.max(previous[1], last);
    else windows.push([first, last]);
  }
  return windows;
}

/** The place in `list` (extents in gfn order) of the first extent that ends at or after frame `first`. */
function firstEndingFrom(list: readonly P2mExtent[], first: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.gfn + list[mid]!.count <= first) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Extent `e` cut to the frames `[first, last]` (which it meets): the same mapping over fewer frames. */
function cut(e: P2mExtent, first: number, last: number): P2mExtent {
  const start = Math.max(e.gfn, first);
  const end = Math.min(e.gfn + e.count - 1, last);
  if (start === e.gfn && end === e.gfn + e.count - 1) return e;
  return { ...e, gfn: start as Gfn, mfn: (e.mfn + (start - e.gfn)) as Mfn, count: end - start + 1 };
}

/** The mappings of `list` (extents in gfn order) over the frames `[first, last]`, cut to them. */
function clipped(list: readonly P2mExtent[], first: number, last: number): P2mExtent[] {
  const out: P2mExtent[] = [];
  for (let i = firstEndingFrom(list, first); i < list.length && list[i]!.gfn <= last; i++)
    out.push(cut(list[i]!, first, last));
  return out;
}

/** Replaces the mappings of `list` (extents in gfn order) over the frames `[first, last]` by `inside`. */
function replaceWindow(list: P2mExtent[], first: number, last: number, inside: readonly P2mExtent[]): void {
  const lo = firstEndingFrom(list, first);
  let hi = lo;
  while (hi < list.length && list[hi]!.gfn <= last) hi++;
  const pieces: P2mExtent[] = [];
  if (lo < hi && list[lo]!.gfn < first) pieces.push(cut(list[lo]!, list[lo]!.gfn, first - 1));
  for (const e of inside) pieces.push(e);
  const end = hi > lo ? list[hi - 1]!.gfn + list[hi - 1]!.count - 1 : last;
  if (end > last) pieces.push(cut(list[hi - 1]!, last + 1, end));
  // Spliced in chunks: a splice takes the pieces as arguments, of which there is a limit.
  list.splice(lo, hi - lo, ...pieces.slice(0, SPLICE_CHUNK));
  for (let k = SPLICE_CHUNK; k < pieces.length; k += SPLICE_CHUNK)
    list.splice(lo + k, 0, ...pieces.slice(k, k + SPLICE_CHUNK));
}

/** Most extents one splice of `replaceWindow` inserts (well below the engines' argument limits). */
const SPLICE_CHUNK = 10_000;

/**
 * `"<sbdf> BAR<n>"` (or `ROM`) of a BAR whose host frames hold machine frame `mfn`, preferring a
 * device that maps into domain `id` (sub-page BARs of several devices share a host page); or null.
 */
function barOfMachineFrame(machine: Machine | undefined, id: number, mfn: number): string | null {
  if (machine === undefined) return null;
  let other: string | null = null;
  for (const device of machine.devices()) {
    for (const bar of device.vpci?.bars ?? []) {
      if (!bar.mappable || bar.size === 0n) continue;
      const [first, last] = bar.hostFrames();
      if (mfn < first || mfn > last) continue;
      if (mappingDomain(machine, device)?.id === id) return barName(device.name, bar.index);
      other ??= barName(device.name, bar.index);
    }
  }
  return other;
}

/** The BARs, in any of the replays, whose guest frames in domain `id` meet `[first, last]`. */
function barsOverGuestFrames(
  machines: readonly (Machine | undefined)[],
  id: number,
  first: number,
  last: number,
): string[] {
  const found = new Set<string>();
  for (const machine of machines) {
    if (machine === undefined) continue;
    for (const device of machine.devices()) {
      if (mappingDomain(machine, device)?.id !== id) continue;
      for (const bar of device.vpci?.bars ?? []) {
        if (!bar.mappable || bar.size === 0n) continue;
        const [start, end] = bar.guestFrames();
        if (start <= last && end >= first) found.add(barName(device.name, bar.index));
      }
    }
  }
  return [...found].sort();
}

function barName(sbdf: string, index: number): string {
  return index === 6 ? `${sbdf} ROM` : `${sbdf} BAR${index}`;
}
