/**
 * Reading the fields of one trace line: every reader names the field, shows the value it got and says
 * what it expected, so a bad line is reported as `file:line: <what was wrong>, <what was expected>`.
 * Numbers may be JSON integers or strings (`"0x1f"` hexadecimal, `"31"` decimal); 64-bit values are
 * bigints.
 */

/** A trace line that cannot be applied. `line` is 1-based; the caller adds the file name. */
export class TraceError extends Error {
  readonly line: number;

  constructor(line: number, message: string) {
    super(message);
    this.name = 'TraceError';
    this.line = line;
  }
}

/** `value` as a JSON object; a `TraceError` naming `path` when it is not one. */
export function requireObject(line: number, path: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TraceError(line, `${path}: ${show(value)} is not an object; expected { … }`);
  }
  return value as Record<string, unknown>;
}

/** A JSON object of a trace line (or a nested object of one), with the path used in messages. */
export class Fields {
  readonly line: number;
  readonly path: string;
  private readonly values: Record<string, unknown>;
  /** The names asked for so far (a line has a handful: a list is quicker than a set). */
  private readonly read: string[] = [];

  constructor(line: number, path: string, value: unknown) {
    this.line = line;
    this.path = path;
    this.values = requireObject(line, path, value);
  }

  /** Whether the field is present (and not null). */
  has(name: string): boolean {
    return this.values[name] !== undefined && this.values[name] !== null;
  }

  /** `read()` when the field is present, else undefined (the field is marked as read either way). */
  optional<T>(name: string, read: () => T): T | undefined {
    if (this.has(name)) return read();
    this.read.push(name);
    return undefined;
  }

  /** The raw value, marked as read. */
  raw(name: string): unknown {
    this.read.push(name);
    return this.values[name];
  }

  /** Throws when a field is present that no reader asked for (so typos are not ignored). */
  done(): void {
    for (const key in this.values) {
      if (this.read.includes(key)) continue;
      const known = [...new Set(this.read)].sort().join(', ');
      throw this.error(key, `is not a field of ${this.path}; expected one of: ${known || 'none'}`);
    }
  }

  /** An error about field `name`; for a missing one, it names a present field that looks like a typo of it. */
  error(name: string, message: string): TraceError {
    const typo = this.values[name] === undefined ? this.typoOf(name) : undefined;
    const hint = typo === undefined ? '' : ` (the line has '${typo}': a typo?)`;
    return new TraceError(this.line, `${this.field(name)} ${message}${hint}`);
  }

  /** A field of the line that no reader asked for and is one or two edits away from `name`. */
  private typoOf(name: string): string | undefined {
    for (const key in this.values) {
      if (!this.read.includes(key) && key !== name && editDistance(key, name) <= 2) return key;
    }
    return undefined;
  }

  /** A required string from `choices` (or any string when `choices` is omitted). */
  string<T extends string>(name: string, choices?: readonly T[]): T {
    const value = this.raw(name);
    if (typeof value !== 'string' || (choices !== undefined && !choices.includes(value as T))) {
      const expected = choices === undefined ? 'a string' : choices.map((c) => `'${c}'`).join(', ');
      throw this.error(name, `is ${show(value)}; expected ${expected}`);
    }
    return value as T;
  }

  optionalString<T extends string>(name: string, choices?: readonly T[]): T | undefined {
    return this.optional(name, () => this.string(name, choices));
  }

  boolean(name: string): boolean {
    const value = this.raw(name);
    if (typeof value !== 'boolean') throw this.error(name, `is ${show(value)}; expected true or false`);
    return value;
  }

  optionalBoolean(name: string): boolean | undefined {
    return this.optional(name, () => this.boolean(name));
  }

  /** A required integer in `[min, max]`. */
  integer(name: string, min: number, max: number): number {
    const value = this.raw(name);
    // A JSON number, as nearly every line has, is compared as it is; strings go through BigInt.
    if (isIntegerIn(value, min, max)) return value;
    const parsed = parseInteger(value);
    if (parsed === undefined || parsed < BigInt(min) || parsed > BigInt(max)) {
      throw this.error(name, `is ${show(value)}; expected an integer in ${range(min, max)}`);
    }
    return Number(parsed);
  }

  optionalInteger(name: string, min: number, max: number): number | undefined {
    return this.optional(name, () => this.integer(name, min, max));
  }

  /** A required 64-bit value (an address, a size) in `[min, max]`. */
  bigint(name: string, min: bigint, max: bigint): bigint {
    const value = this.raw(name);
    const parsed = parseInteger(value);
    if (parsed === undefined || parsed < min || parsed > max) {
      throw this.error(name, `is ${show(value)}; expected an integer in ${range(min, max)}`);
    }
    return parsed;
  }

  optionalBigint(name: string, min: bigint, max: bigint): bigint | undefined {
    return this.optional(name, () => this.bigint(name, min, max));
  }

  /** A nested object. */
  object(name: string): Fields {
    const value = this.raw(name);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw this.error(name, `is ${show(value)}; expected an object`);
    }
    return new Fields(this.line, `${this.path}.${name}`, value);
  }

  optionalObject(name: string): Fields | undefined {
    return this.optional(name, () => this.object(name));
  }

  /** An array of at most `max` items. */
  array(name: string, max: number): unknown[] {
    const value = this.raw(name);
    if (!Array.isArray(value) || value.length > max) {
      throw this.error(name, `is ${show(value)}; expected an array of at most ${max} items`);
    }
    return value;
  }

  optionalArray(name: string, max: number): unknown[] | undefined {
    return this.optional(name, () => this.array(name, max));
  }

  /** `name` as it appears in messages: `write.reg`, `device.bars[2].size`. */
  field(name: string): string {
    return `'${this.path}.${name}'`;
  }
}

/** A JSON integer or an integer string (`0x…` hexadecimal or decimal) as a bigint, else undefined. */
export function parseInteger(value: unknown): bigint | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : undefined;
  if (typeof value !== 'string') return undefined;
  if (/^0x[0-9a-fA-F]+$/.test(value) || /^(0|[1-9][0-9]*)$/.test(value)) return BigInt(value);
  return undefined;
}

/** Whether `value` is a JSON number that is an integer in `[min, max]` (the common, quick case). */
export function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && min <= value && value <= max;
}

/** `0x…` for messages and reports. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

function range(min: number | bigint, max: number | bigint): string {
  const big = (v: number | bigint): boolean => BigInt(v) > 0xffffn;
  return `${big(min) ? hex(min) : String(min)} … ${big(max) ? hex(max) : String(max)}`;
}

/** A value as the message shows it: JSON, cut short. */
export function show(value: unknown): string {
  if (value === undefined) return 'missing';
  const text =
    typeof value === 'bigint'
      ? hex(value)
      : JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? hex(v) : v));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Levenshtein distance between two short strings (field names). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
