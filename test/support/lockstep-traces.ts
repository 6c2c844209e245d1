/**
 * Random traces written line by line against the machine they are replayed on, using every kind of
 * line docs/trace-format.md describes: hidden and hot-plugged devices, ReBAR, ROMs, MSI-X, e820
 * entries of every type over the BARs, the hardware domain writing any device's registers (a guest's
 * too), guests writing their devices at their virtual addresses, raw writes of any size at any offset
 * of the header and the MSI-X capability, preempted and dropped work, faults, iomem
 * permissions, RAM and other p2m entries over BAR frames, assignment, de-assignment, unplugging and
 * plugging back in; devices marked read-only at boot (`pci_ro_device`), devices whose vPCI set-up
 * fails at boot or on hot plug (@vpci/fuzz's `setupFailingImage`: an MSI-X capability Xen can neither
 * set up nor hide), phantom functions, and IOMMU faults by requester ID, which fail a hot plug
 * (`iommu_add_device`), an assignment or a de-assignment (`assign_device`, `deassign_device`).
 *
 * A trace is a list of `Choice`s (small random numbers); `LockstepTrace` turns each into one trace
 * line by looking at the replayed machine (which guest has which device at which virtual address,
 * which vCPU has work pending), so the lines are valid where a blind generator's would stop at the
 * first access to a device a guest was refused. Each line is fed to every replay of the trace at once.
 */
import { setupFailingImage } from '@vpci/fuzz';
import type { TraceReplay } from '@vpci/replay';
import type { Machine, PciDevice } from '@vpci/vpci';
import fc from 'fast-check';

/** One step's random numbers; what they mean depends on `kind` and on the machine. */
export interface Choice {
  readonly kind: number;
  readonly a: number;
  readonly b: number;
  readonly c: number;
}

/** A device of the trace: BARs (log2 sizes, 64-bit or not), and what else it has. */
export interface LockstepDevice {
  readonly bars: readonly { readonly log2: number; readonly mem64: boolean }[];
  readonly msix: boolean;
  readonly rom: boolean;
  readonly rebar: boolean;
  readonly hidden: boolean;
  readonly decoding: boolean;
  /** Hot-plugged after boot rather than present at boot. */
  readonly hotplug: boolean;
  /**
   * Marked read-only while Xen boots (`pci_ro_device`, `"readOnly":true`, which implies hidden): only
   * for a device present at boot (`pci_ro_device` is `__init`); plugged back in, its line does not say
   * so again (Xen's `ro_map` keeps the address marked).
   */
  readonly readOnly: boolean;
  /**
   * Its vPCI set-up fails (`vpci_assign_device`): written as @vpci/fuzz's `setupFailingImage`, its BARs
   * 32-bit, decoding on, no ROM, MSI-X or ReBAR of its own.
   */
  readonly setupFails: boolean;
  /** One phantom function (`"phantomFunctions":1`: requester ID function 4), not with `setupFails`. */
  readonly phantom: boolean;
}

export interface LockstepPlan {
  readonly devices: readonly LockstepDevice[];
  /** Host pages of the device window (from 0xc0000000) that e820 entries cover, and their types. */
  readonly e820: readonly { readonly page: number; readonly type: E820Type }[];
  readonly choices: readonly Choice[];
}

/** `true` once in `1 + against` draws. */
const sometimes = (against: number): fc.Arbitrary<boolean> =>
  fc.oneof({ weight: against, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

const device: fc.Arbitrary<LockstepDevice> = fc
  .record({
    bars: fc.array(
      fc.record({
        log2: fc.oneof(fc.integer({ min: 8, max: 13 }), fc.constant(20)),
        mem64: fc.boolean(),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    msix: fc.boolean(),
    rom: fc.boolean(),
    rebar: fc.boolean(),
    hidden: fc.oneof(
      { weight: 5, arbitrary: fc.constant(false) },
      { weight: 1, arbitrary: fc.constant(true) },
    ),
    decoding: fc.boolean(),
    hotplug: sometimes(3),
    readOnly: sometimes(12),
    setupFails: sometimes(8),
    phantom: sometimes(5),
  })
  // `pci_ro_device` runs while Xen boots only: a read-only device is one present at boot.
  .map((d) => (d.readOnly ? { ...d, hotplug: false } : d));

/** How many values a choice's `kind` takes (see `LockstepTrace.lineFor` for what each range means). */
const CHOICE_KINDS = 110;

const choice: fc.Arbitrary<Choice> = fc.record({
  kind: fc.nat(CHOICE_KINDS - 1),
  a: fc.nat(255),
  b: fc.nat(255),
  c: fc.nat(0xffff),
});

/** The e820 types an entry over a BAR's page may have (docs/trace-format.md, `host.e820`). */
type E820Type = 'reserved' | 'ram' | 'acpi' | 'nvs' | 'unusable';

/** A plan: 2–4 devices, an e820 map of 0–2 pages among theirs, and up to `maxSteps` steps. */
export function lockstepPlan(maxSteps: number): fc.Arbitrary<LockstepPlan> {
  return fc.record({
    devices: fc.array(device, { minLength: 2, maxLength: 4 }),
    e820: fc.uniqueArray(
      fc.record({
        page: fc.nat(24),
        type: fc.oneof(
          { weight: 3, arbitrary: fc.constant('reserved' as const) },
          fc.constantFrom('ram' as const, 'acpi' as const, 'nvs' as const, 'unusable' as const),
        ),
      }),
      { maxLength: 2, selector: (entry) => entry.page },
    ),
    choices: fc.array(choice, { minLength: Math.floor(maxSteps / 2), maxLength: maxSteps }),
  });
}

const WINDOW = 0xc000_0000;
/** The errors an injected IOMMU fault returns (a `fault` line's `code`). */
const IOMMU_CODES = ['ENOMEM', 'EPERM', 'ENODEV', 'EBUSY'] as const;
const hex = (value: number | bigint): string => `"0x${value.toString(16)}"`;
const sbdfOf = (i: number): string => `0000:01:${i.toString(16).padStart(2, '0')}.0`;

/** Where a device's BARs and ROM are on the host, placed when it first appears. */
interface Placement {
  readonly bars: readonly { size: number; addr: number; mem64: boolean }[];
  readonly rom: number | undefined;
}

/**
 * A device's BARs placed from `next` by natural alignment (sub-page BARs share pages), then its ROM.
 * A device whose set-up fails has 32-bit BARs (its image's) and no ROM.
 */
function place(plan: LockstepDevice, at: { next: number }): Placement {
  const bars = plan.bars.map(({ log2, mem64 }) => {
    const size = 2 ** log2;
    const addr = Math.ceil(at.next / size) * size;
    at.next = addr + size;
    return { size, addr, mem64: mem64 && !plan.setupFails };
  });
  let rom: number | undefined;
  if (plan.rom && !plan.setupFails) {
    rom = Math.ceil(at.next / 0x800) * 0x800;
    at.next = rom + 0x800;
  }
  return { bars, rom };
}

/**
 * The device line of plan `i` at `where`; `readOnly` only on its first line at boot (Xen's `ro_map`
 * keeps the mark when it is plugged back in).
 */
function deviceLine(plan: LockstepDevice, i: number, where: Placement, readOnly: boolean): string {
  const marks: string[] = [];
  if (plan.phantom && !plan.setupFails) marks.push('"phantomFunctions":1');
  if (readOnly) marks.push('"readOnly":true');
  else if (plan.hidden) marks.push('"hidden":true');
  const tail = marks.map((e) => `,${e}`).join('');
  if (plan.setupFails) {
    const image = setupFailingImage(where.bars.map((bar) => bar.addr));
    const sizes = where.bars.map((bar) => hex(bar.size)).join(',');
    return `{"event":"device","sbdf":"${sbdfOf(i)}","image":${JSON.stringify(image)},"sizes":{"bars":[${sizes}]}${tail}}`;
  }
  const slots: string[] = [];
  for (const bar of where.bars) {
    slots.push(`{"type":"${bar.mem64 ? 'mem64' : 'mem32'}","size":${hex(bar.size)},"addr":${hex(bar.addr)}}`);
    if (bar.mem64) slots.push('null');
  }
  const first = where.bars[0]!;
  const extra: string[] = [];
  if (plan.msix && first.size >= 0x100)
    extra.push('"msix":{"entries":2,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":"0x80"}}');
  if (where.rom !== undefined) extra.push(`"rom":{"size":"0x800","addr":${hex(where.rom)}}`);
  if (plan.rebar && first.size === 2 ** 20)
    extra.push('"rebar":[{"bar":0,"sizes":["0x100000","0x200000","0x400000"]}]');
  if (plan.decoding) extra.push('"command":"0x2"');
  return `{"event":"device","sbdf":"${sbdfOf(i)}","bars":[${slots.join(',')}]${extra.map((e) => `,${e}`).join('')}${tail}}`;
}

/** Replays of one trace fed the same lines; the first replay's machine decides the next line. */
export class LockstepTrace {
  readonly lines: string[] = [];
  readonly replays: TraceReplay[];
  /** Each device's host addresses, from its first line on (plugged back in, it is where it was). */
  private readonly placements = new Map<number, Placement>();

  constructor(replays: TraceReplay[]) {
    this.replays = replays;
  }

  /** Feeds `line` to every replay; false once the first has stopped on an error. */
  feed(line: string): boolean {
    this.lines.push(line);
    let fed = true;
    for (const replay of this.replays) fed = replay.feed(line) && fed;
    return fed;
  }

  private get machine(): Machine {
    return this.replays[0]!.replayer.machine!;
  }

  /** The header lines: host, devices present at boot, boot, two guests. */
  start(plan: LockstepPlan, profile: 'xen' | 'hardened'): { next: number } {
    const e820 = plan.e820.map(
      ({ page, type }) => `{"addr":${hex(WINDOW + page * 0x1000)},"size":"0x1000","type":"${type}"}`,
    );
    this.feed(`{"event":"host","profile":"${profile}","e820":[${e820.join(',')}]}`);
    const at = { next: WINDOW };
    plan.devices.forEach((d, i) => {
      if (!d.hotplug) this.feed(deviceLine(d, i, this.placed(plan, i, at), d.readOnly));
    });
    this.feed('{"event":"boot"}');
    this.feed('{"event":"domain","id":1,"vcpus":2}');
    this.feed('{"event":"domain","id":2,"vcpus":2}');
    return at;
  }

  /** The line for one choice, or undefined when it means nothing on this machine now. */
  lineFor(plan: LockstepPlan, c: Choice, at: { next: number }): string | undefined {
    const machine = this.machine;
    const devices = machine.devices();
    const pick = <T>(list: readonly T[], n: number): T | undefined =>
      list.length === 0 ? undefined : list[n % list.length];
    const k = c.kind;
    if (k < 30) return this.write(c, pick(devices, c.a), true);
    if (k < 50) {
      const guest = machine.domain(1 + (c.a % 2));
      return this.write(c, pick(guest.devices, c.b), false);
    }
    if (k < 62) {
      const vcpus = machine.domains().flatMap((d) => d.vcpus.filter((v) => v.pending !== undefined));
      const vcpu = pick(vcpus, c.a);
      if (vcpu === undefined) return undefined;
      const budget = c.b % 3 === 0 ? '' : `,"budget":${1 + (c.c % 300)}`;
      return `{"event":"run","vcpu":"${vcpu.name}"${budget}}`;
    }
    if (k < 70) {
      const d = pick(devices, c.a);
      return d === undefined ? undefined : `{"event":"assign","sbdf":"${d.name}","domain":${1 + (c.b % 2)}}`;
    }
    if (k < 75) {
      const d = pick(devices, c.a);
      return d === undefined ? undefined : `{"event":"deassign","sbdf":"${d.name}"}`;
    }
    if (k < 78) {
      const d = pick(devices, c.a);
      return d === undefined ? undefined : `{"event":"unplug","sbdf":"${d.name}"}`;
    }
    if (k < 82) {
      // A device not on the machine: a hot-plugged one's first plug, or one unplugged coming back.
      const absent = plan.devices.flatMap((_d, n) =>
        machine.findDevice(sbdfOf(n)) === undefined ? [n] : [],
      );
      const i = pick(absent, c.a);
      return i === undefined ? undefined : deviceLine(plan.devices[i]!, i, this.placed(plan, i, at), false);
    }
    if (k < 89) {
      // RAM or another p2m entry where a BAR may be mapped later, on a frame nothing maps now and
      // no enabled BAR covers (over a mapped BAR it would be the trace clobbering vPCI's work, which
      // no policy can prevent: F1 in docs/xen-gaps.md).
      const domain = k < 86 ? 1 + (c.a % 2) : c.a % 3;
      const count = k < 86 ? 1 + (c.a % 4) : 1;
      const gfn = (c.b % 2 === 0 ? 0xe0000 : 0xc0000) + (c.c % 32);
      if (!this.free(domain, gfn, count)) return undefined;
      return k < 86
        ? `{"event":"populate","domain":${domain},"gfn":${hex(gfn)},"count":${count},"mfn":${hex(0x100000 + c.c)}}`
        : `{"event":"p2m","domain":${domain},"gfn":${hex(gfn)},"mfn":${hex(0x200000 + c.c)},"count":1,"type":"ram_rw"}`;
    }
    if (k < 93) return `{"event":"fault","domain":${c.a % 3},"after":${1 + (c.b % 6)}}`;
    if (k < 96) {
      const domain = c.a % 3;
      const first = 0xc0000 + (c.c % 32);
      return `{"event":"iomem","domain":${domain},"permit":${c.b % 2 === 0},"first":${hex(first)},"last":${hex(first + (c.b % 4))}}`;
    }
    if (k >= 105) {
      // Any value of 1, 2 or 4 bytes at any offset below 0x50 (the header and the MSI-X capability),
      // misaligned ones included (Xen drops them), by the hardware domain or by the device's owner.
      const hardware = c.a % 2 === 0;
      const candidates = hardware ? devices : [1, 2].flatMap((id) => machine.domain(id).devices);
      return this.write(c, pick(candidates, c.a >> 1), hardware, true);
    }
    if (k >= 100) {
      // The next IOMMU context set-up of a device's requester ID, or of its phantom function's, fails
      // (on its hot plug: iommu_add_device; on its assignment or de-assignment: assign_device,
      // deassign_device), whether or not the device is on the machine now.
      const i = c.a % plan.devices.length;
      const phantom = plan.devices[i]!.phantom && c.b % 2 === 0;
      const requester = `${sbdfOf(i).slice(0, -1)}${phantom ? 4 : 0}`;
      return `{"event":"fault","requester":"${requester}","code":"${IOMMU_CODES[c.c % IOMMU_CODES.length]}"}`;
    }
    const d = pick(devices, c.a);
    if (d === undefined) return undefined;
    const vcpu = `d0v${c.b % 2}`;
    return `{"event":"read","vcpu":"${vcpu}","sbdf":"${d.name.slice(5)}","reg":"0x4","size":2}`;
  }

  /** Where device `i` is on the host: placed from `at` the first time it is asked for. */
  private placed(plan: LockstepPlan, i: number, at: { next: number }): Placement {
    let where = this.placements.get(i);
    if (where === undefined) {
      where = place(plan.devices[i]!, at);
      this.placements.set(i, where);
    }
    return where;
  }

  /** Whether guest frames `[gfn, gfn + count)` of domain `id` hold nothing and no enabled BAR's. */
  private free(id: number, gfn: number, count: number): boolean {
    const machine = this.machine;
    const domain = machine.domain(id);
    for (let f = gfn; f < gfn + count; f++)
      if (domain.p2m.lookup(f as never).type !== 'invalid') return false;
    const devices = id === 0 ? [...domain.devices, ...machine.domXen.devices] : domain.devices;
    for (const device of devices)
      for (const bar of device.vpci?.bars ?? []) {
        const [first, last] = bar.guestFrames();
        if ((bar.enabled || !(bar.mem?.isEmpty() ?? true)) && first < gfn + count && gfn <= last)
          return false;
      }
    return true;
  }

  /** A config write by the hardware domain (to any device) or by a guest (to one of its own). */
  private write(
    c: Choice,
    device: PciDevice | undefined,
    hardware: boolean,
    raw = false,
  ): string | undefined {
    if (device === undefined) return undefined;
    let vcpu: string;
    let sbdf: string;
    if (hardware) {
      vcpu = `d0v${c.b % 2}`;
      sbdf = device.name.slice(5);
    } else {
      const guestSbdf = device.vpci?.guestSbdf;
      if (guestSbdf === undefined || device.domain === undefined) return undefined;
      vcpu = `d${device.domain.id}v${c.b % 2}`;
      sbdf = `00:${guestSbdf.dev.toString(16).padStart(2, '0')}.0`;
    }
    const what = c.c % 16;
    let reg: number;
    let size = 4;
    let value: number;
    if (raw) {
      size = [1, 2, 4][c.b % 3]!;
      reg = Math.min((c.c >> 4) % 0x50, 0x50 - size);
      const mask = size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1;
      value = [0, mask, 0x6 & mask, ((c.c << 16) | (c.a << 8) | c.b) & mask][c.c % 4]!;
    } else if (what < 5) {
      [reg, size, value] = [4, 2, what % 2 === 0 ? 0x6 : 0x4];
    } else if (what < 11) {
      // A BAR register (either half of a 64-bit BAR): a probe, its own place, a guest place, a shift,
      // or the page of another BAR of the window.
      reg = 0x10 + 4 * (c.a % 4);
      const placements = [
        0xffff_ffff,
        WINDOW + (c.c >> 4) * 0x100,
        0xe000_0000 + ((c.c >> 4) % 64) * 0x100,
        0,
        WINDOW + ((c.c >> 4) % 32) * 0x1000 + 0x800,
      ];
      value = placements[(c.c >> 8) % placements.length]!;
    } else if (what < 13) {
      [reg, value] = [0x30, (WINDOW + ((c.c >> 4) % 32) * 0x1000 + (c.c % 2)) >>> 0];
    } else if (what < 15) {
      // ReBAR control of BAR0: 1, 2 or 4 MiB, or now and then a reserved encoding.
      [reg, value] = [0x108, (c.c >> 4) % 7 === 0 ? 0x3f00 : ((c.c >> 4) % 3) << 8];
    } else {
      // MSI-X control: enable, mask.
      [reg, size, value] = [0x42, 2, (c.c >> 4) % 2 === 0 ? 0x8000 : 0xc000];
    }
    return `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":"0x${reg.toString(16)}","size":${size},"value":${hex(value >>> 0)}}`;
  }
}
