/**
 * Benchmarks of the p2m map: a 64 GiB BAR mapped and unmapped in 64-chunk calls (2M-aligned and
 * misaligned), the same 64 GiB in 4K leaves mapped again over itself, a 1 TiB BAR (2M-aligned),
 * random lookups among 100,000 extents against a page-keyed `Map` in the same rounds (median of
 * same-round ratios), and populating 2^26 frames; a naive page-by-page Map measured in the same run
 * on a smaller BAR and extrapolated (labelled as such) is the baseline of the mapping figures.
 * Prints PASS/FAIL, always exits 0.
 */
import { prng } from '../../../bench/prng.js';
import { type Gfn, gfn, mapMmio, mfn, P2m, P2mLookup, populateRam, unmapMmio } from '../src/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
function heap(): number {
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
const verdict = (ok: boolean, what: string) => console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);

function drive(call: typeof mapMmio, p2m: P2m, first: number, count: number, firstMfn: number): number {
  let done = 0;
  let calls = 0;
  for (;;) {
    calls++;
    const r = call(p2m, gfn(first + done), count - done, mfn(firstMfn + done));
    if (!r.ok) throw new Error(`unexpected ${r.code}`);
    if (r.done) return calls;
    done += r.progress;
  }
}

const BAR = 2 ** 24; // 64 GiB in 4K frames

// (1) 2M-aligned 64 GiB BAR.
{
  const before = heap();
  const p2m = new P2m();
  const t0 = performance.now();
  const calls = drive(mapMmio, p2m, 2 ** 30, BAR, 2 ** 34);
  const mapped = heap() - before;
  const extents = p2m.extentCount;
  drive(unmapMmio, p2m, 2 ** 30, BAR, 2 ** 34);
  const ms = performance.now() - t0;
  console.log(
    `(1) aligned 64 GiB: map+unmap ${ms.toFixed(1)} ms, ${calls} map calls, ${extents} extent(s), heap delta while mapped ${mib(mapped)}`,
  );
  verdict(ms < 200, `(1) time ${ms.toFixed(1)} ms < 200 ms`);
  verdict(mapped < 10 * 2 ** 20, `(1) heap ${mib(mapped)} < 10 MiB`);
}

// (1b) 2M-aligned 1 TiB BAR: 8192 calls of 64 chunks each way; the work is per call, not per chunk.
// Three runs, judged on the best: the first also pays for compiling the loops, and a loaded machine
// delays that compilation by tens of milliseconds.
{
  const TIB = 2 ** 28; // 1 TiB in 4K frames
  const runs: number[] = [];
  let calls = 0;
  let extents = 0;
  let mapped = 0;
  for (let run = 0; run < 3; run++) {
    const before = heap();
    const p2m = new P2m();
    const t0 = performance.now();
    calls = drive(mapMmio, p2m, 2 ** 30, TIB, 2 ** 34);
    mapped = Math.max(mapped, heap() - before);
    extents = p2m.extentCount;
    drive(unmapMmio, p2m, 2 ** 30, TIB, 2 ** 34);
    runs.push(performance.now() - t0);
  }
  const best = Math.min(...runs);
  console.log(
    `(1b) aligned 1 TiB: map+unmap ${runs.map((ms) => ms.toFixed(1)).join(' / ')} ms (best ${best.toFixed(1)}), ${calls} map calls, ${extents} extent(s), heap delta while mapped ${mib(mapped)}`,
  );
  verdict(best <= 100, `(1b) best time ${best.toFixed(1)} ms <= 100 ms`);
  verdict(extents === 1 && mapped < 10 * 2 ** 20, `(1b) ${extents} extent(s), heap ${mib(mapped)} < 10 MiB`);
}

// (2) misaligned 64 GiB BAR: 4K chunks only.
const misalignedMs = ((): number => {
  const p2m = new P2m();
  const t0 = performance.now();
  const calls = drive(mapMmio, p2m, 2 ** 30 + 1, BAR, 2 ** 34);
  const tMap = performance.now() - t0;
  drive(unmapMmio, p2m, 2 ** 30 + 1, BAR, 2 ** 34);
  const total = performance.now() - t0;
  console.log(
    `(2) misaligned 64 GiB: map ${tMap.toFixed(0)} ms + unmap ${(total - tMap).toFixed(0)} ms = ${total.toFixed(0)} ms, ${calls} map calls`,
  );
  verdict(total < 2000, `(2) time ${total.toFixed(0)} ms < 2000 ms`);
  return total;
})();

// (2b) 64 GiB in 4K leaves (no 2M pages: hap_2mb=0) mapped, then mapped again over itself, as a
// `reset` of a decoding BAR does: every chunk finds its own mapping and writes nothing, so the remap
// should cost what the first map costs (branch `remap`; before it, one lookup per 4K chunk, ~9x).
{
  const p2m = new P2m({ superpages2M: false });
  const t0 = performance.now();
  const calls = drive(mapMmio, p2m, 2 ** 30, BAR, 2 ** 34);
  const mapMs = performance.now() - t0;
  drive(mapMmio, p2m, 2 ** 30, BAR, 2 ** 34);
  const remapMs = performance.now() - t0 - mapMs;
  const ratio = remapMs / mapMs;
  console.log(
    `(2b) 64 GiB in 4K leaves: map ${mapMs.toFixed(0)} ms, map again over itself ${remapMs.toFixed(0)} ms (${ratio.toFixed(2)}x), ${calls} calls each, ${p2m.extentCount} extent(s)`,
  );
  verdict(ratio <= 2, `(2b) the remap takes ${ratio.toFixed(2)}x the first map <= 2x`);
}

// Baseline: a naive page-by-page Map, 1 GiB BAR mapped and unmapped, extrapolated to 64 GiB.
{
  const N = 2 ** 18;
  const before = heap();
  const t0 = performance.now();
  const pages = new Map<number, { mfn: number; type: string }>();
  for (let k = 0; k < N; k++) pages.set(2 ** 30 + k, { mfn: 2 ** 34 + k, type: 'mmio_direct' });
  const bytes = heap() - before;
  for (let k = 0; k < N; k++) pages.delete(2 ** 30 + k);
  const ms = performance.now() - t0;
  const scale = BAR / N;
  console.log(
    `baseline naive Map, 1 GiB measured: ${ms.toFixed(1)} ms, ${mib(bytes)}; EXTRAPOLATED to 64 GiB (x${scale}): ${(ms * scale).toFixed(0)} ms, ${mib(bytes * scale)}`,
  );
  console.log(
    `ratio misaligned extents / extrapolated naive: time ${(misalignedMs / (ms * scale)).toFixed(2)}`,
  );
}

// (3) 1,000,000 random lookups among 100,000 extents: the allocation-free `lookupInto` against a
// page-keyed `Map` (one entry per mapped frame) in the same rounds; `lookup` (an object per call) for
// information. Seven rounds, each timing every contender once on the same queries (CPU time, a
// different one first each round); the figure is the median of the seven same-round ratios, with
// their min and max.
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const spread = (xs: number[]) =>
  `median ${median(xs).toFixed(2)}x (min ${Math.min(...xs).toFixed(2)}x, max ${Math.max(...xs).toFixed(2)}x, ${xs.length} rounds)`;
{
  const p2m = new P2m();
  const EXTENTS = 100_000;
  // extents of 1–8 frames with a gap of 1–8 frames between them, alternating types so none merge
  let g = 0;
  const rand = prng(12345);
  for (let i = 0; i < EXTENTS; i++) {
    const len = 1 + Math.floor(rand() * 8);
    for (let k = 0; k < len; k++)
      p2m.setEntry(gfn(g + k), 0, mfn(0x100000 + i * 16 + k), i % 2 ? 'mmio_direct' : 'ram_rw');
    g += len + 1 + Math.floor(rand() * 8);
  }
  // Queries are made (and checked) by gfn() here, outside the timed loop, which only casts them back.
  const queries = new Float64Array(1_000_000);
  for (let q = 0; q < queries.length; q++) queries[q] = gfn(Math.floor(rand() * g));
  const naive = new Map<number, number>();
  for (const e of p2m.extents()) for (let k = 0; k < e.count; k++) naive.set(e.gfn + k, e.mfn + k);
  const into = new P2mLookup();
  // Each loop sums the machine frames it finds (holes count -1), so the three must agree.
  const viaInto = (): number => {
    let sum = 0;
    for (let q = 0; q < queries.length; q++) {
      p2m.lookupInto(queries[q] as Gfn, into);
      sum += into.mfn;
    }
    return sum;
  };
  const viaLookup = (): number => {
    let sum = 0;
    for (let q = 0; q < queries.length; q++) sum += p2m.lookup(queries[q] as Gfn).mfn ?? -1;
    return sum;
  };
  const viaMap = (): number => {
    let sum = 0;
    for (let q = 0; q < queries.length; q++) sum += naive.get(queries[q]!) ?? -1;
    return sum;
  };
  // CPU time of the process (the collector runs on the main thread: --single-threaded-gc), so a
  // round on the shared host counts its own work rather than the scheduler's.
  const timed = (fn: () => number): [number, number] => {
    const c0 = process.cpuUsage();
    const sum = fn();
    const c = process.cpuUsage(c0);
    return [(c.user + c.system) / 1e3, sum];
  };
  for (const fn of [viaInto, viaLookup, viaMap]) fn(); // warm-up, untimed
  const intoMs: number[] = [];
  const lookupMs: number[] = [];
  const mapMs: number[] = [];
  for (let round = 0; round < 7; round++) {
    gc?.();
    // A different contender first in each round.
    const order = [viaInto, viaLookup, viaMap];
    const out = new Map<() => number, [number, number]>();
    for (let j = 0; j < 3; j++) {
      const fn = order[(j + round) % 3]!;
      out.set(fn, timed(fn));
    }
    const [a, sa] = out.get(viaInto)!;
    const [b, sb] = out.get(viaLookup)!;
    const [c, sc] = out.get(viaMap)!;
    if (sa !== sc || sb !== sc) throw new Error(`(3) lookups disagree: ${sa}, ${sb}, map ${sc}`);
    intoMs.push(a);
    lookupMs.push(b);
    mapMs.push(c);
  }
  const intoRatios = intoMs.map((ms, r) => ms / mapMs[r]!);
  const lookupRatios = lookupMs.map((ms, r) => ms / mapMs[r]!);
  const ms3 = (xs: number[]) => xs.map((x) => x.toFixed(0)).join('/');
  console.log(
    `(3) 1e6 lookups among ${p2m.extentCount} extents (naive Map of ${naive.size} pages), ms per round: ` +
      `lookupInto ${ms3(intoMs)}, lookup ${ms3(lookupMs)}, Map ${ms3(mapMs)}`,
  );
  console.log(
    `(3) lookupInto / Map: ${spread(intoRatios)}; lookup / Map (allocates): ${spread(lookupRatios)}`,
  );
  verdict(
    median(intoRatios) <= 2,
    `(3) lookupInto <= 2x the page-keyed Map: ${median(intoRatios).toFixed(2)}x`,
  );
  const best = Math.min(...intoMs);
  verdict(best < 300, `(3) lookupInto best CPU time ${best.toFixed(1)} ms < 300 ms`);
}

// (4) populate 2^26 guest frames (256 GiB of RAM) with contiguous machine frames: into an empty map,
// again over the RAM just populated (other machine frames: every frame orphaned, one range), and into
// an empty map with a trace's `fault` armed past the last write. The work is per extent, never per
// frame; the target is 50 ms for each. Best of three runs.
{
  const FRAMES = 2 ** 26;
  const best3 = (setup: () => P2m, run: (p2m: P2m) => void): { ms: number; extents: number } => {
    let ms = Number.POSITIVE_INFINITY;
    let extents = 0;
    for (let r = 0; r < 3; r++) {
      const p2m = setup();
      const t0 = performance.now();
      run(p2m);
      ms = Math.min(ms, performance.now() - t0);
      extents = p2m.extentCount;
    }
    return { ms, extents };
  };
  const populate = (p2m: P2m, base: number) => {
    const r = populateRam(p2m, gfn(0x100000), FRAMES, mfn(base));
    if (!r.ok) throw new Error(`(4) populate failed: ${r.code}`);
  };
  const fresh = best3(
    () => new P2m(),
    (p2m) => populate(p2m, 2 ** 30),
  );
  const over = best3(
    () => {
      const p2m = new P2m();
      populate(p2m, 2 ** 30);
      return p2m;
    },
    (p2m) => populate(p2m, 2 ** 31),
  );
  const armed = best3(
    () => {
      const p2m = new P2m();
      p2m.failNext(FRAMES + 1);
      return p2m;
    },
    (p2m) => populate(p2m, 2 ** 30),
  );
  for (const [label, m] of [
    ['into an empty map', fresh],
    ['over populated RAM', over],
    ['with a fault armed past the end', armed],
  ] as const) {
    console.log(`(4) populate 2^26 frames ${label}: ${m.ms.toFixed(2)} ms, ${m.extents} extent(s)`);
    verdict(
      m.ms <= 50 && m.extents === 1,
      `(4) populate 2^26 frames ${label}: ${m.ms.toFixed(2)} ms <= 50 ms`,
    );
  }
}

// (5) A write's cost does not grow with the map (issue 16: cost grows with what a line touches, not
// with the machine). Two maps of one-frame extents with one-frame holes between them, alternating
// types so that none merge: 4,000 extents (about the hardware domain's at 4,096 devices) and 100,000.
// Each round maps then unmaps one frame in 200,000 holes drawn at random, in each map, a different
// map first in each round; every pair leaves the map as it was. The ratio is the large map's CPU time
// over the small one's, median of 7 same-round ratios; the target is at most 1.25×. With the extents
// in one sorted list (before the chunked store) a write shifted the arrays after it: this row at the
// commit before it (7ba891c), 2026-12-07 00:50 UTC, gave 1.28 µs per write at 4,000 extents and 36.5 µs
// at 100,000, 29.1× (21.9–31.0×): FAIL.
{
  const PAIRS = 200_000;
  const build = (extents: number) => {
    const p2m = new P2m();
    const first = 0x100000;
    for (let i = 0; i < extents; i++)
      p2m.setEntry(gfn(first + 2 * i), 0, mfn(0x1000_0000 + 16 * i), i % 2 ? 'mmio_direct' : 'ram_rw');
    const rand = prng(5);
    const holes = new Float64Array(PAIRS);
    for (let i = 0; i < PAIRS; i++) holes[i] = first + 2 * Math.floor(rand() * extents) + 1;
    return { p2m, holes, extents };
  };
  const small = build(4_000);
  const large = build(100_000);
  const churn = ({ p2m, holes, extents }: ReturnType<typeof build>): number => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < PAIRS; i++) {
      const at = gfn(holes[i]!);
      const machine = mfn(0x9000_0000 + i);
      if (!mapMmio(p2m, at, 1, machine).ok || !unmapMmio(p2m, at, 1, machine).ok)
        throw new Error(`(5) a map or unmap of one frame failed at ${holes[i]}`);
    }
    if (p2m.extentCount !== extents)
      throw new Error(`(5) ${p2m.extentCount} extents after the round, expected ${extents}`);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1e3;
  };
  churn(small); // warm-up, untimed
  churn(large);
  const smallMs: number[] = [];
  const largeMs: number[] = [];
  for (let round = 0; round < 7; round++) {
    gc?.();
    if (round % 2 === 0) {
      smallMs.push(churn(small));
      largeMs.push(churn(large));
    } else {
      largeMs.push(churn(large));
      smallMs.push(churn(small));
    }
  }
  const ratios = largeMs.map((ms, r) => ms / smallMs[r]!);
  const perWrite = (ms: number) => `${((ms * 1000) / (2 * PAIRS)).toFixed(3)} µs`;
  console.log(
    `(5) one-frame map+unmap in random holes: ${perWrite(median(smallMs))} per write among 4,000 extents, ` +
      `${perWrite(median(largeMs))} among 100,000; 100,000 / 4,000: ${spread(ratios)}`,
  );
  verdict(
    median(ratios) <= 1.25,
    `(5) a write among 100,000 extents <= 1.25x one among 4,000: ${median(ratios).toFixed(2)}x`,
  );
}
