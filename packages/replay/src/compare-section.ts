/**
 * The comparison of rule sets as report data (`vpci-replay --compare`; docs/trace-format.md, "The
 * comparison report"): the `compare` member of the report. Types only, so that the report and the
 * comparison that fills it can both name them.
 */
/** What a rule set maps a run of guest frames to: its first machine frame and p2m type, or nothing. */
export interface CompareMapping {
  /** Machine frame of the first guest frame of the run, hexadecimal. */
  readonly mfn: string;
  /** The p2m type, such as `mmio_direct`. */
  readonly type: string;
  /** The BAR those machine frames belong to (`"<sbdf> BAR<n>"` or `"<sbdf> ROM"`), or null. */
  readonly bar: string | null;
}

/** A run of guest frames of one domain over which the rule sets part or meet again. */
export interface CompareRange {
  /** First guest frame, hexadecimal. */
  readonly gfn: string;
  /** Frames in the run. */
  readonly count: number;
  /** Whether every rule set now maps the run alike (they met again at this step). */
  readonly agree: boolean;
  /** The BARs whose guest frames hold the run in any of the replays (`"<sbdf> BAR<n>"`). */
  readonly bars: readonly string[];
  /** Per rule set, what the run is mapped to after the line (null: not mapped). */
  readonly mapped: Readonly<Record<string, CompareMapping | null>>;
  /** Per rule set, what it was mapped to before the line. */
  readonly before: Readonly<Record<string, CompareMapping | null>>;
}

/** A trace line after which the rule sets' mappings of a domain part or meet again. */
export interface CompareStep {
  /** The 1-based trace line. */
  readonly line: number;
  /** The line of the input it came from when that is not the trace (a QEMU log's line), else null. */
  readonly source: number | null;
  /** The trace line's text, clipped to 200 characters. */
  readonly text: string;
  /** The domain whose p2m the runs are in. */
  readonly domain: number;
  /** The runs of guest frames, in frame order. */
  readonly ranges: readonly CompareRange[];
  /**
   * Per rule set, the decisions it logged about the devices of the ranges since the domain was last
   * compared (its events, as `kind: sentence`; one of an earlier line, such as the command write of a
   * map deferred to this `run` line, starts with `line N: `): the rule that made the difference.
   * Empty for a rule set that logged nothing.
   */
  readonly rules: Readonly<Record<string, readonly string[]>>;
}

/** How one rule set's replay ended. */
export interface CompareRun {
  /** The rule set. */
  readonly ruleSet: string;
  /** Its report's status (`Report.status`). */
  readonly status: 'ok' | 'failed' | 'error';
  /** Assertions checked and failed under it. */
  readonly assertions: { readonly total: number; readonly failed: number };
  /**
   * Its invariant violations, each with the known hazard that declares it (null: a finding, not a
   * declared hazard).
   */
  readonly violations: readonly {
    readonly line: number;
    readonly kind: string;
    readonly present: boolean;
    /** Declared by the trace (a `violation` assertion): shown on purpose. */
    readonly expected: boolean;
    readonly hazard: string | null;
    readonly message: string;
  }[];
}

/** The comparison: the `compare` member of the report (`vpci-replay --compare … --json`). */
export interface ReportCompare {
  /** The rule sets, in the order given. */
  readonly ruleSets: readonly string[];
  /** How each replay ended, in that order. */
  readonly runs: readonly CompareRun[];
  /** Steps found in all. */
  readonly stepsFound: number;
  /** The first `MAX_COMPARE_STEPS` (compare.ts) of them, in line order. */
  readonly steps: readonly CompareStep[];
}
