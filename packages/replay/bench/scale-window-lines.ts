/**
 * What scale-window.sh counted, a line (not a test): the self cost of each function over the window
 * (instructions, data references, D1 misses, LL misses), divided by the window's lines, and the sum by
 * kind (`kindOf`: V8 compiling, the collector, builtins, the rest of node and libc, and the JIT code of
 * the engine itself). Given two runs (the 64-device machine's, then the 4,096-device one's), prints
 * what the second costs more a line, function by function, sorted by LL misses.
 * `node --import tsx bench/scale-window-lines.ts <window lines> <out> [<out of the larger machine>] [rows=30]`
 */
import { readFileSync } from 'node:fs';

/** The events scale-window.sh has callgrind count, in its order, and the four printed. */
const EVENTS = ['Ir', 'Dr', 'Dw', 'I1mr', 'D1mr', 'D1mw', 'ILmr', 'DLmr', 'DLmw'];
type Cost = [ir: number, refs: number, d1: number, ll: number];

/** JIT code's name from V8's perf map (`JS:*name file:line:column`, without the tier mark and file). */
function jitName(entry: string): string {
  return entry.replace(/^JS:[*~^+]?/, '').replace(/ file:\/\/\/\S*\/([^/\s]+:\d+:\d+)$/, ' $1');
}

/** Self cost by function of one `callgrind.out.2` (`--dump-instr=yes`: a cost line per instruction). */
function selfCosts(out: string): Map<string, Cost> {
  const map = readFileSync(`${out}/perf.map`, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [start, size, ...name] = l.split(' ');
      return {
        start: Number.parseInt(start!, 16),
        end: Number.parseInt(start!, 16) + Number.parseInt(size!, 16),
        name: jitName(name.join(' ')),
      };
    })
    .sort((a, b) => a.start - b.start);
  const jit = (address: number): string => {
    let low = 0;
    let high = map.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (map[middle]!.start <= address) low = middle + 1;
      else high = middle;
    }
    const entry = map[low - 1];
    return entry !== undefined && address < entry.end ? entry.name : '(JIT code not in the map)';
  };
  const names = new Map<string, string>();
  const costs = new Map<string, Cost>();
  let fn = '';
  let position = 0;
  let inclusive = false;
  for (const l of readFileSync(`${out}/callgrind.out.2`, 'utf8').split('\n')) {
    const named = /^c?fn=\((\d+)\)(?: (.*))?$/.exec(l);
    if (named !== null) {
      if (named[2] !== undefined) names.set(named[1]!, named[2]);
      if (l.startsWith('fn=')) fn = names.get(named[1]!)!;
      continue;
    }
    if (l.startsWith('calls=')) inclusive = true; // the next cost line is the call's inclusive cost
    if (!/^[0-9+\-*]/.test(l)) continue;
    const [at, ...values] = l.split(' ');
    if (at!.startsWith('+')) position += Number(at!.slice(1));
    else if (at!.startsWith('-')) position -= Number(at!.slice(1));
    else if (at !== '*') position = Number(at);
    if (inclusive) {
      inclusive = false;
      continue;
    }
    const name = fn.startsWith('0x') ? jit(position) : fn;
    const v = EVENTS.map((_, i) => Number(values[i] ?? 0));
    const cost = costs.get(name) ?? [0, 0, 0, 0];
    cost[0] += v[0]!;
    cost[1] += v[1]! + v[2]!;
    cost[2] += v[4]! + v[5]!;
    cost[3] += v[7]! + v[8]!;
    costs.set(name, cost);
  }
  return costs;
}

function kindOf(name: string): string {
  if (/compiler::|Zone|[Tt]urbo|[Mm]aglev|Compil|Optimiz|SourcePosition|_Rb_tree/.test(name))
    return 'V8 compiling';
  if (/Scaveng|Heap|MarkCompact|Marking|Sweep|Evacuat|MemoryChunk|Remembered|SlotSet|memcpy/.test(name))
    return 'collector (and memcpy)';
  if (name.startsWith('Builtins_')) return 'builtins';
  // C++ names have a namespace (JIT code's have none); libc's start with underscores.
  if (/\b(v8|node|std)::|^(__|_int_|0x)/.test(name) || name === '') return 'node, libc';
  return 'JIT code';
}

const [lines, out, ...rest] = process.argv.slice(2);
// The last argument is the rows' count when it is a number, so that a single run can take one too.
const rows = rest.length > 0 && /^\d+$/.test(rest.at(-1)!) ? rest.pop()! : '30';
const larger = rest[0];
if (lines === undefined || out === undefined)
  throw new Error('usage: scale-window-lines.ts <window lines> <out> [<larger out>] [rows]');
const n = Number(lines);
const print = (label: string, c: Cost): void =>
  console.log(
    `${label.slice(0, 60).padEnd(60)} Ir ${(c[0] / n).toFixed(0).padStart(7)} Drefs ${(c[1] / n).toFixed(0).padStart(6)} D1 ${(c[2] / n).toFixed(1).padStart(6)} LL ${(c[3] / n).toFixed(1).padStart(5)}`,
  );
const add = (a: Cost, b: Cost, sign = 1): Cost => [
  a[0] + sign * b[0],
  a[1] + sign * b[1],
  a[2] + sign * b[2],
  a[3] + sign * b[3],
];
let costs = selfCosts(out);
if (larger !== undefined) {
  const big = selfCosts(larger);
  const names = new Set([...costs.keys(), ...big.keys()]);
  const none: Cost = [0, 0, 0, 0];
  costs = new Map([...names].map((k) => [k, add(big.get(k) ?? none, costs.get(k) ?? none, -1)]));
  console.log(`${larger} over ${out}, a line:`);
}
const kinds = new Map<string, Cost>();
let all: Cost = [0, 0, 0, 0];
for (const [name, cost] of costs) {
  kinds.set(kindOf(name), add(kinds.get(kindOf(name)) ?? [0, 0, 0, 0], cost));
  all = add(all, cost);
}
print('all', all);
for (const [kind, cost] of [...kinds].sort()) print(`  ${kind}`, cost);
console.log('JIT code and builtins by function, by LL misses:');
for (const [name, cost] of [...costs]
  .filter(([name]) => kindOf(name) === 'JIT code' || kindOf(name) === 'builtins')
  .sort((a, b) => b[1][3] - a[1][3])
  .slice(0, Number(rows)))
  print(`  ${name}`, cost);
