/**
 * The checks `JSON.parse` does not make, run over a trace line's text before it is parsed: JSON lets an
 * object repeat a key (the last one silently wins, so a typo such as `"size"` given twice would go
 * unseen), carries numbers as doubles (`18446744073709551615` becomes `18446744073709552000`, `1e400`
 * becomes `Infinity` and prints as `null`), and nests without bound (a value nested 100,000 deep
 * overflows every recursive reader after it). One pass over the characters, outside strings, finds
 * all three; the text is assumed to be JSON otherwise (`JSON.parse` still judges that).
 */

/** How deep objects and arrays may nest in one line: a trace line's deepest field is 4 levels down. */
export const MAX_JSON_DEPTH = 32;

/**
 * What is wrong with a line's JSON, in the trace's words; undefined when nothing is. `parsed` is what
 * `JSON.parse` made of `text`: for the common flat line (no nested object or array) it settles the
 * question without the character scan, which costs about half a `JSON.parse`.
 */
export function strictJsonProblem(text: string, parsed?: unknown): string | undefined {
  if (parsed !== undefined && flatLineIsClean(text, parsed)) return undefined;
  return scanProblem(text);
}

/**
 * Whether a line with no nested object or array certainly has none of the problems: as many `":` in
 * the text as keys in the object (a repeated key would leave fewer keys; a string holding `":` makes
 * the counts differ, and the scan then decides), and every number exact (an integer beyond 2^53 or a
 * number beyond a double's range parses to an unsafe or infinite value).
 */
function flatLineIsClean(text: string, parsed: unknown): boolean {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return false;
  if (text.indexOf('{', 1) >= 0 || text.indexOf('[') >= 0) return false;
  let keys = 0;
  for (const key in parsed) {
    keys++;
    const value = (parsed as Record<string, unknown>)[key];
    if (
      typeof value === 'number' &&
      !(Number.isSafeInteger(value) || (Number.isFinite(value) && !Number.isInteger(value)))
    )
      return false;
  }
  let colons = 0;
  for (let i = text.indexOf('":'); i >= 0; i = text.indexOf('":', i + 2)) colons++;
  return colons === keys;
}

/** The character scan: one pass outside strings for repeated keys, inexact numbers and depth. */
function scanProblem(text: string): string | undefined {
  // Per open object, the keys seen so far (undefined for an array). A key with an escape is compared
  // as JSON.parse reads it: `"a"` and `"\u0061"` are one key given twice, of which the last would win.
  const keys: (string[] | undefined)[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (end < 0) return undefined; // unterminated: JSON.parse reports it
      if (expectKey) {
        const key = keyText(text, i, end);
        const seen = keys[keys.length - 1]!;
        if (seen.includes(key)) return `the key "${key}" appears twice in one object; expected each key once`;
        seen.push(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (keys.length === MAX_JSON_DEPTH) {
        return `objects and arrays nest more than ${MAX_JSON_DEPTH} deep; expected a trace line's fields`;
      }
      keys.push(c === 0x7b ? [] : undefined);
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      keys.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = keys.length > 0 && keys[keys.length - 1] !== undefined;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const end = numberEnd(text, i);
      const problem = numberProblem(text.slice(i, end));
      if (problem !== undefined) return problem;
      i = end - 1;
    }
  }
  return undefined;
}

/** The key whose quotes are at `start` and `end`, its escapes read (the line parsed: they are valid). */
function keyText(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end);
  return raw.includes('\\') ? (JSON.parse(text.slice(start, end + 1)) as string) : raw;
}

/** The index of the quote closing the string that opens at `start`, or -1. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i++;
    else if (c === 0x22) return i;
  }
  return -1;
}

/** The index just past the number token that starts at `start`. */
function numberEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    // digits, '.', 'e', 'E', '+', '-'
    if ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d) i++;
    else break;
  }
  return i;
}

/** Integers JSON numbers carry exactly: up to 2^53 − 1 in magnitude. */
const SAFE_DIGITS = String(Number.MAX_SAFE_INTEGER).length;

/** Why a JSON number token cannot be taken as written, or undefined. */
function numberProblem(token: string): string | undefined {
  const shown = token.length > 24 ? `${token.slice(0, 12)}…(${token.length} characters)` : token;
  const integer = /^-?[0-9]+$/.test(token);
  if (integer) {
    const digits = token.startsWith('-') ? token.length - 1 : token.length;
    if (digits < SAFE_DIGITS) return undefined;
    if (digits === SAFE_DIGITS && Number.isSafeInteger(Number(token))) return undefined;
    return `the number ${shown} is beyond 2^53, where JSON numbers lose digits; write it as a string ("0x…" or decimal)`;
  }
  if (!Number.isFinite(Number(token))) {
    return `the number ${shown} is beyond the range of a JSON number; expected a finite number, or a string`;
  }
  return undefined;
}
