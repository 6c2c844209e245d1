/**
 * A violation's identity, for telling a new one from one already seen: two violations are the same
 * when their JSON (bigints written as hex) is the same string. A scoped check reports every shared
 * page of a merged extent that meets its scope (a hardware domain mapping thousands of BARs as one
 * extent, each BAR assigned to a guest: every such line reports them all again), and making each one's
 * JSON string at every line was half of a replay's time (issue 16, `guests`). The identity is found
 * instead by walking a tree of maps, field name then value, one level per field, to a token that
 * stands for the JSON string: no string is made.
 */

import type { Violation } from '@vpci/vpci';
import { hex } from './fields.js';

/**
 * A level of the tree: the violations whose earlier fields are the path to it, by their next field.
 * Violations of one kind have the same fields in the same order, so a level nearly always meets one
 * field name (`name`, then one map lookup per field); another name has a map of its own (`others`).
 */
interface Level {
  /** The first field name met here, and the next levels by that field's value as JSON writes it. */
  name: string | undefined;
  readonly values: Map<unknown, Level>;
  /** Any other field names met here, each with its own levels by value. */
  others: Map<string, Map<unknown, Level>> | undefined;
  /** The token of the violations whose fields end here. */
  token: object | undefined;
}

function newLevel(): Level {
  return { name: undefined, values: new Map(), others: undefined, token: undefined };
}

/**
 * The identities of the violations one replay met. `of` gives the same token for two violations
 * exactly when `JSON.stringify` (bigints as hex) gives the same string for them.
 */
export class ViolationIdentities {
  private readonly root = newLevel();

  /** The violation's token (an object), or its JSON string where a field holds an object. */
  of(violation: Violation): object | string {
    let level = this.root;
    // Own enumerable fields in JSON's order: a violation is an object literal (no inherited ones).
    for (const name in violation) {
      const value = asJsonWrites((violation as unknown as Record<string, unknown>)[name]);
      if (value === OMITTED) continue;
      if (value === NESTED) return jsonOf(violation);
      const values = valuesFor(level, name);
      let next = values.get(value);
      if (next === undefined) {
        next = newLevel();
        values.set(value, next);
      }
      level = next;
    }
    level.token ??= {};
    return level.token;
  }
}

/** The next levels of `level` by the value of field `name`. */
function valuesFor(level: Level, name: string): Map<unknown, Level> {
  level.name ??= name;
  if (level.name === name) return level.values;
  level.others ??= new Map();
  let values = level.others.get(name);
  if (values === undefined) {
    values = new Map();
    level.others.set(name, values);
  }
  return values;
}

/** A field JSON leaves out (undefined, a function, a symbol). */
const OMITTED = Symbol('omitted');
/** A field holding an object or array: the violation is told by its JSON string. */
const NESTED = Symbol('nested');

/**
 * A field's value as a key equal, under `Map`'s SameValueZero, for two values exactly when JSON writes
 * them alike: a bigint as its hex string (as `jsonOf` writes it), a number JSON cannot write as null
 * (0 and -0 are one key, as JSON writes both `0`).
 */
function asJsonWrites(value: unknown): unknown {
  switch (typeof value) {
    case 'undefined':
    case 'function':
    case 'symbol':
      return OMITTED;
    case 'bigint':
      return hex(value);
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'object':
      return value === null ? null : NESTED;
    default:
      return value;
  }
}

/** The violation's JSON, bigints as hex (as a trace writes them). */
function jsonOf(violation: Violation): string {
  return JSON.stringify(violation, (_key, value) => (typeof value === 'bigint' ? hex(value) : value));
}
