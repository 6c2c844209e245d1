/**
 * The replay benchmark's workload: a seeded trace of config-space writes over a number of devices
 * (half the hardware domain's, half passed through to four guests). The workload visits the devices in
 * turn: one visit in 16 reprograms the device (decoding off, BAR sizing with all-ones, BAR placement,
 * guests at their own addresses, MSI-X enable, decoding on: 10 writes, two of which map or unmap), the
 * others are a running driver's 4 writes (INTx disable, MSI-X mask, status RW1C, interrupt line).
 * About one write in 70 maps or unmaps. The same seed gives the same trace for a given device count.
 */
import { TraceReplay } from '@vpci/replay';
import { prng } from '../../../bench/prng.js';

/**
 * Guests the passed-through half of `count` devices is spread over: 4, or as many as needed for 32
 * each (a guest's virtual bus 0 has 32 slots).
 */
export function guestsFor(count: number): number {
  return Math.max(4, Math.ceil(count / 2 / 32));
}
/** Chance that a visit to a device reprograms it (two decoding toggles) rather than driving it. */
const REPROGRAM = 1 / 16;

/** How far apart `count` devices' BAR0s are by default: 1 MiB, or 512 MiB shared among them. */
export function spacingFor(count: number): number {
  return Math.min(0x10_0000, 0x2000_0000 / count);
}

/** One device of the workload and where its owner sees it. */
export interface DevicePlan {
  sbdf: string;
  /** The address the owner uses: physical for dom0, virtual for a guest. */
  address: string;
  vcpu: string;
  bar0: number;
  bar0Size: number;
  bar2: bigint;
  bar2Size: bigint;
  owner: number;
  /** BAR0's guest window: the device moves BAR0 among its 8 places there (guests only). */
  window0: number;
  /** BAR0 sizes are at most this, and a guest moves BAR0 by this much. */
  step0: number;
}

/** One config write of the workload. */
export interface Write {
  device: DevicePlan;
  reg: number;
  size: 1 | 2 | 4;
  value: number;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * `count` devices: BAR0 (4 KiB … 512 KiB, MSI-X table and PBA in it) below 4 GiB, BAR2 (64 KiB … 256
 * MiB, 64-bit) above. Up to 64 devices BAR0s are 1 MiB apart; more share 512 MiB of 32-bit space
 * (`options.spacing` apart; BAR0 sizes are at most that). The first half of the devices are the
 * hardware domain's, the others the guests' in turn; with `options.period` the devices repeat in
 * blocks of that many, each device taking the sizes and the kind of owner (the hardware domain's or
 * a guest's) of its place in the first block. The scale comparison plans both machines with the
 * larger one's spacing and the larger one with the smaller one's count as its period: the workload
 * visits devices in turn and draws the kind of each visit in the same order whatever the count, so
 * the n-th visit over either machine is the same kind of work on BARs of the same sizes, for the same
 * kind of owner. A guest first maps a BAR where the host has it (its vPCI address until the guest
 * moves it), so where the guests' devices are spread among the hardware domain's (a period), their
 * windows (`options.windowBase`, else the host BAR0s' base) must be clear of the host BAR0s: a
 * window over a BAR the guest still maps where the host has it is Xen's `wrong-mfn` hole.
 * Each BAR2 sits in the middle of a 4 GiB block of its own: while the hardware domain sizes it, its
 * vPCI address is `high:fffffff0` (Xen keeps `bar->addr` as written), and the size from there reaches
 * into the next block's first half, where no BAR is (were one there, that is a page of another
 * domain's device and the trace would show `subpage-shared` on purpose).
 */
export function plan(
  count: number,
  options: { readonly spacing?: number; readonly period?: number; readonly windowBase?: number } = {},
): DevicePlan[] {
  const spacing = options.spacing ?? spacingFor(count);
  const windowBase = options.windowBase ?? 0xc000_0000;
  const period = options.period ?? count;
  const random = prng(0x5eed);
  const devices: DevicePlan[] = [];
  const slots = new Map<number, number>();
  const guests = guestsFor(count);
  let guestDevices = 0;
  for (let i = 0; i < count; i++) {
    const first = i < period ? undefined : devices[i % period];
    const bar0Size = first?.bar0Size ?? Math.min(spacing, 2 ** (12 + Math.floor(random() * 8))); // 4 KiB … 512 KiB
    const bar2Size = first?.bar2Size ?? 2n ** BigInt(16 + Math.floor(random() * 13)); // 64 KiB … 256 MiB
    const owner = i % period < period / 2 ? 0 : 1 + (guestDevices++ % guests);
    const slot = slots.get(owner) ?? 0;
    slots.set(owner, slot + 1);
    const sbdf = `0000:${hex2(1 + (i >> 5))}:${hex2(i & 31)}.0`;
    devices.push({
      sbdf,
      address: owner === 0 ? sbdf : `0000:${hex2(slot >> 5)}:${hex2(slot & 31)}.0`,
      vcpu: `d${owner}v0`,
      bar0: 0xc000_0000 + i * spacing,
      bar0Size,
      bar2: 0x40_8000_0000n + BigInt(i) * 0x1_0000_0000n,
      bar2Size,
      owner,
      // Each guest device has a window of 8 places of its own, so a guest never puts two of its BARs
      // over each other (a guest bug whose outcome is Xen's `wrong-mfn` hole, refuseOverlappingBars).
      window0: windowBase + slot * 8 * spacing,
      step0: spacing,
    });
  }
  return devices;
}

/** The set-up lines: host, devices (MSI-X in BAR0), boot, guests, assignment. */
export function header(devices: readonly DevicePlan[]): string[] {
  const lines = ['{"event":"host","profile":"xen"}'];
  for (const d of devices) {
    lines.push(
      JSON.stringify({
        event: 'device',
        sbdf: d.sbdf,
        bars: [
          { type: 'mem32', size: `0x${d.bar0Size.toString(16)}`, addr: `0x${d.bar0.toString(16)}` },
          null,
          {
            type: 'mem64',
            size: `0x${d.bar2Size.toString(16)}`,
            addr: `0x${d.bar2.toString(16)}`,
            prefetchable: true,
          },
        ],
        msix: { entries: 16, table: { bar: 0, offset: 0 }, pba: { bar: 0, offset: 0x800 } },
      }),
    );
  }
  lines.push('{"event":"boot"}');
  for (let g = 1; g <= guestsFor(devices.length); g++) lines.push(`{"event":"domain","id":${g}}`);
  for (const d of devices)
    if (d.owner !== 0) lines.push(`{"event":"assign","sbdf":"${d.sbdf}","domain":${d.owner}}`);
  return lines;
}

/** The writes, cycle after cycle over the devices, `count` of them. */
export function* writes(devices: readonly DevicePlan[], count: number): Generator<Write> {
  const random = prng(0xc0ffee);
  // Counted as yielded: a visit's writes are made together, and the last visit may be cut short.
  let yielded = 0;
  const emit = (device: DevicePlan, reg: number, size: 1 | 2 | 4, value: number): Write => ({
    device,
    reg,
    size,
    value,
  });
  for (let cycle = 0; ; cycle++) {
    for (const d of devices) {
      // Guests move BAR0 within its window every cycle (same page offset as the host's); dom0 keeps it.
      const guest0 = d.owner === 0 ? d.bar0 : d.window0 + (cycle % 8) * d.step0;
      const guest2 = d.owner === 0 ? d.bar2 : d.bar2 + 0x1000_0000_0000n;
      // Now and then the device is reprogrammed (firmware, a driver reload, a guest moving a BAR):
      // decoding off, BARs sized and placed, MSI-X set up, decoding on. Otherwise its driver makes the
      // config writes of a running device: INTx disable, MSI-X mask, error status (RW1C), interrupt line.
      const cycleWrites: Write[] =
        random() < REPROGRAM
          ? [
              emit(d, 0x04, 2, 0x0000),
              emit(d, 0x10, 4, 0xffff_ffff),
              emit(d, 0x10, 4, guest0 >>> 0),
              emit(d, 0x18, 4, 0xffff_ffff),
              emit(d, 0x1c, 4, 0xffff_ffff),
              emit(d, 0x18, 4, Number(guest2 & 0xffff_ffffn)),
              emit(d, 0x1c, 4, Number(guest2 >> 32n)),
              emit(d, 0x0c, 1, Math.floor(random() * 256)), // cache line size
              emit(d, 0x40 + 2, 2, 0x8000), // MSI-X enable
              emit(d, 0x04, 2, 0x0006),
            ]
          : [
              emit(d, 0x04, 2, random() < 0.5 ? 0x0406 : 0x0006), // INTx disable on or off, decoding kept
              emit(d, 0x40 + 2, 2, random() < 0.5 ? 0xc000 : 0x8000), // MSI-X function mask on or off
              emit(d, 0x06, 2, 0xf900), // clear error bits in the status register (RW1C)
              emit(d, 0x3c, 1, Math.floor(random() * 16)), // interrupt line
            ];
      for (const w of cycleWrites) {
        yield w;
        if (++yielded >= count) return;
      }
    }
  }
}

/**
 * Writes of the workload's first cycle over `devices`: up to the first write of the second visit to
 * the first device, so every device has been visited (and its decoding turned on) once.
 */
export function firstCycle(devices: readonly DevicePlan[]): number {
  let count = 0;
  let lastVisited = false;
  for (const w of writes(devices, Number.MAX_SAFE_INTEGER)) {
    if (w.device === devices.at(-1)) lastVisited = true;
    else if (lastVisited) return count;
    count++;
  }
  return count;
}

/**
 * The scale comparison's two machines (the replay bench's scale row and its tools): 64 devices, and
 * 4,096 repeating them in periods of 64 at the same BAR spacing, so that line n over either is the
 * same kind of work; the guests' windows lie below the host BAR0s (0xc0000000 on), where over 4,096
 * devices the guests' devices' host BARs are everywhere. `cycle`: the larger machine's first cycle of
 * writes (`firstCycle`); the same count over the smaller machine is 64 cycles of it.
 */
export function scaleMachines(): { small: DevicePlan[]; large: DevicePlan[]; cycle: number } {
  const spacing = { spacing: spacingFor(4096), windowBase: 0xa000_0000 };
  const small = plan(64, spacing);
  const large = plan(4096, { ...spacing, period: 64 });
  return { small, large, cycle: firstCycle(large) };
}

/**
 * One of the scale row's machines (`scaleMachines`: `devices` 64 or 4,096) set up in a new replay of
 * `Replay` (a build's `TraceReplay`, loaded by the tools that count one build under cachegrind), with
 * its lines made before the replay starts: the lead (its first two cycles of writes, where the bench's
 * steady window starts) then `lines` more. Throws when a set-up line fails.
 */
export function scaleReplay(
  Replay: typeof TraceReplay,
  devices: 64 | 4096,
  lines: number,
  checks: 'scoped' | 'off' = 'scoped',
): { replay: TraceReplay; texts: string[]; lead: number } {
  const { small, large, cycle } = scaleMachines();
  const planned = devices === 64 ? small : large;
  const lead = 2 * cycle;
  const texts = [...writes(planned, lead + lines)].map(line);
  const replay = new Replay(`scale-${devices}`, { invariantChecks: checks });
  for (const text of header(planned)) if (!replay.feed(text)) throw new Error(`${replay.error?.message}`);
  return { replay, texts, lead };
}

/** A write as a trace line. */
export function line(w: Write): string {
  return `{"event":"write","vcpu":"${w.device.vcpu}","sbdf":"${w.device.address}","reg":${w.reg},"size":${w.size},"value":${w.value}}`;
}

/**
 * `writes` as the bytes of a trace file, cut into blocks of whole lines of at most `chunkBytes` bytes
 * each, as `fileLineBlocks` gives a file's: for the tools that feed a replay's byte reader in one
 * process without a file.
 */
export function lineBlocksOf(writes: Iterable<Write>, chunkBytes: number): Buffer[] {
  const blocks: Buffer[] = [];
  let parts: string[] = [];
  let size = 0;
  for (const w of writes) {
    const text = `${line(w)}\n`;
    if (size + text.length > chunkBytes) {
      blocks.push(Buffer.from(parts.join('')));
      parts = [];
      size = 0;
    }
    parts.push(text);
    size += text.length;
  }
  blocks.push(Buffer.from(parts.join('')));
  return blocks;
}

/**
 * Two replays of `devices`' set-up lines side by side, one with scoped checks and one with none
 * (`invariantChecks: 'off'`), for the tools that time the checks' share line by line or block by
 * block in one process.
 */
export function scopedAndUnchecked(devices: readonly DevicePlan[]): {
  scoped: TraceReplay;
  unchecked: TraceReplay;
} {
  const scoped = new TraceReplay('scoped');
  const unchecked = new TraceReplay('unchecked', { invariantChecks: 'off' });
  for (const text of header(devices)) {
    scoped.feed(text);
    unchecked.feed(text);
  }
  return { scoped, unchecked };
}

/** What `feedBothTimed` measured of one line: each replay's time, in the clock's unit. */
export interface LineTimes {
  scoped: number;
  unchecked: number;
}

/**
 * Feeds `text` to both replays one after the other, each timed by `now`, into `times`. Which goes
 * first is drawn line by line (`draw`, uniform in [0, 1)), so neither always meets the other's cache
 * misses on the same kinds of line. (Alternating by line parity did that: a running driver's visit
 * is four lines and a reprogramming ten, so each kind kept its parity, and the replay going second,
 * right after the other's line, paid about 0.2 µs: on the MSI-X mask and interrupt line writes that
 * was the scoped one, a cost the checks do not have, on the INTx and status writes the unchecked one.)
 */
export function feedBothTimed(
  replays: { scoped: TraceReplay; unchecked: TraceReplay },
  text: string,
  draw: () => number,
  now: () => number,
  times: LineTimes,
): void {
  const [first, second] =
    draw() < 0.5 ? [replays.scoped, replays.unchecked] : [replays.unchecked, replays.scoped];
  const t0 = now();
  first.feed(text);
  const t1 = now();
  second.feed(text);
  const t2 = now();
  if (first === replays.scoped) {
    times.scoped = t1 - t0;
    times.unchecked = t2 - t1;
  } else {
    times.unchecked = t1 - t0;
    times.scoped = t2 - t1;
  }
}
