/**
 * Replaying a trace on a `Machine`: each `TraceEvent` is checked against the machine's state first (a
 * device, domain or vCPU that does not exist is a `TraceError` and nothing changes), then applied.
 * The replayer keeps what the report needs: the engine's events with the line that caused them, the
 * assertions and their failures, and every invariant violation seen, with where it first appeared.
 *
 * A vCPU always finishes its deferred map/unmap before it runs guest code again (Xen keeps it out of
 * the guest until `vpci_process_pending` returns false), so an access from a vCPU with work pending
 * first completes that work, and so does the end of the trace.
 */
import {
  addEntries,
  gfn,
  InvalidArgumentError,
  MTRR_VCNT,
  MtrrState,
  type MtrrType,
  mfn,
  NUM_FIXED_RANGES,
  type P2m,
  populateRam,
  variableRange,
} from '@vpci/p2m';
import {
  checkInvariants,
  type DeviceChange,
  DeviceSnapshot,
  type Domain,
  describeEvent,
  describeGuestVpci,
  enabledBarMeeting,
  type FrameRange,
  formatSbdf,
  Machine,
  type MmioPath,
  mappingDomain,
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_BRIDGE,
  type PciDevice,
  PhysicalDevice,
  type Profile,
  parseSbdf,
  type RuleSetName,
  type Sbdf,
  type Vcpu,
  type Violation,
  type VpciEvent,
  writeReachesDevice,
} from '@vpci/vpci';
import { hex, show, TraceError } from './fields.js';
import { holdInOrder } from './scope-set.js';
import { imageSriovNote } from './sriov-report.js';
import type { TraceAssertion, TraceEvent, TraceMtrr, TraceVcpu } from './trace.js';
import { ViolationIdentities } from './violation-identity.js';
import type { WriteTargets } from './write-target.js';

/** An engine event and the trace line whose application logged it. */
export interface LoggedEvent {
  /** The 1-based trace line. */
  readonly line: number;
  /** The engine event. */
  readonly event: VpciEvent;
}

/** A violation of the engine's invariants, as first seen. */
export interface SeenViolation {
  /** The violation. */
  readonly violation: Violation;
  /** Line after which it was first found. */
  readonly line: number;
  /** Still present after the last line. */
  present: boolean;
  /** Declared by a `violation` assertion (a known hole the trace shows on purpose). */
  expected: boolean;
}

/** A failed assertion: the line, what was checked and what was found. */
export interface AssertionFailure {
  /** The 1-based line of the assertion. */
  readonly line: number;
  /** What was checked, as the report prints it. */
  readonly assertion: string;
  /** The value the trace expected. */
  readonly expected: string;
  /** The value found. */
  readonly actual: string;
}

/** A replay note: an outcome worth showing that is neither an engine event nor an assertion. */
export interface ReplayNote {
  /** The 1-based trace line. */
  readonly line: number;
  /** The note, one sentence. */
  readonly text: string;
}

/** How a replay is set up beyond what the trace says. */
export interface ReplayOptions {
  /** Overrides the trace's profile (`host.profile`). */
  readonly profile?: Profile;
  /** Overrides the trace's rule set (`host.rules`; `xen` when neither says). */
  readonly rules?: RuleSetName;
  /**
   * How invariants are checked after a config access or `run` line: `scoped` (default) looks only at
   * what the line's devices may have changed; `full` checks the whole machine every time (slower; the
   * tests use it to show both find the same violations); `off` checks nothing (what the benchmark
   * measures the checks' cost against; the report then shows no violation).
   */
  readonly invariantChecks?: 'scoped' | 'full' | 'off';
}

/** Replays trace events one at a time. */
export class Replayer {
  /** The machine; made by the `host` line, or with defaults by the first line that needs it. */
  machine: Machine | undefined;
  /** Engine events, each with the line that logged it. */
  readonly events: LoggedEvent[] = [];
  /** Notes on outcomes that are neither events nor assertions. */
  readonly notes: ReplayNote[] = [];
  /** Failed assertions, in trace order. */
  readonly failures: AssertionFailure[] = [];
  /** `mmio` lines replayed, by who answered them (`MmioPath`). */
  readonly mmioPaths = new Map<MmioPath, number>();
  /** Assertions checked so far, passed or failed. */
  assertions = 0;
  /** Lines applied so far (comments excluded). */
  applied = 0;
  private readonly options: ReplayOptions;
  /** Every violation seen, by its identity (`ViolationIdentities`). */
  private readonly seen = new Map<object | string, SeenViolation>();
  private readonly identities = new ViolationIdentities();
  private readonly expectedPatterns: Record<string, unknown>[] = [];
  private readonly addresses = new Map<string, { sbdf: Sbdf; name: string }>();
  /** The last address `address` answered, and its spelling (two fields: no object per change). */
  private lastAddressText: string | undefined;
  private lastAddressFound: { sbdf: Sbdf; name: string } | undefined;
  /**
   * The vCPU of the last inert write (`applyInertWrite`), its domain's id and its index: the next
   * one is most often from the same vCPU. Forgotten by every other line, which may add or remove
   * domains (an inert write does neither).
   */
  private inertVcpu: Vcpu | undefined;
  private inertDomainId = -1;
  private inertVcpuIndex = -1;
  /** Whether every line gets a whole check (`invariantChecks: 'full'`): no write is inert then. */
  private readonly wholeChecks: boolean;
  /** Whether the note on x86 guest vPCI was made (`noteGuestVpci`). */
  private guestVpciNoted = false;
  /** The touched devices of the line being applied, as they were before it (reused line to line). */
  private readonly snapshots: DeviceSnapshot[] = [];
  /**
   * Lines that took the checked path so far (`applyChecked`), and per snapshot the count at the line
   * whose check last compared it (`DeviceSnapshot.change`): a snapshot compared by the last such line
   * holds what the device was at its end, and only inert writes (which change nothing a snapshot
   * records of any device) came since, so the next line that snapshots the same device there keeps
   * that record (`takeSnapshot`).
   */
  private checkedPath = 0;
  private readonly comparedAt: number[] = [];
  /** What the line changed of each snapshotted device, and a scoped check's devices and guest frames (reused). */
  private readonly changes: DeviceChange[] = [];
  private readonly scopeDevices = new Set<PciDevice>();
  /**
   * Devices a line changed where no check could find anything new, so none ran
   * (`DeviceSnapshot.hostChangeFindsNothing`): named to the next scoped check, which brings what the
   * checks remember of them up to date (`InvariantScope.devices`: every device changed since the last
   * check). Each once, in the order first named.
   */
  private readonly unchecked: PciDevice[] = [];
  /**
   * Which lists a device is in, by the count of lists begun: `unchecked` (begun again each time it is
   * emptied) and the scope being built (`beginScope`). A search of a list for the device would grow
   * with the devices named, which a run of quiet lines over a large machine makes thousands.
   */
  private readonly inUnchecked = new WeakMap<PciDevice, number>();
  private uncheckedLists = 0;
  private readonly inScope = new WeakMap<PciDevice, number>();
  private scopeLists = 0;
  private readonly scopeFrames = new Map<Domain, FrameRange[]>();
  /**
   * The devices and domains of the scope being built, then of the last check (`settleScope` makes
   * `scopeDevices` and `scopeFrames` hold them), each once in the order first named.
   */
  private scopeDeviceList: PciDevice[] = [];
  private lastDeviceList: PciDevice[] = [];
  private scopeDomains: Domain[] = [];
  private lastDomains: Domain[] = [];
  /** Each domain's list of guest frames for the scopes, emptied in place when a scope takes it. */
  private readonly frameLists = new WeakMap<Domain, FrameRange[]>();
  /** The scope's host frames (reused, emptied when a scope begins). */
  private readonly scopeHostFrames: FrameRange[] = [];

  constructor(options: ReplayOptions = {}) {
    this.options = options;
    this.wholeChecks = options.invariantChecks === 'full';
  }

  /** Every violation seen so far, in the order first found. */
  get violations(): SeenViolation[] {
    return [...this.seen.values()];
  }

  /** Whether every assertion held and every violation seen was expected. */
  get ok(): boolean {
    return this.failures.length === 0 && this.violations.every((v) => v.expected);
  }

  /**
   * Applies one event of line `line`. Throws `TraceError` (nothing applied) for an event that names
   * something that does not exist or comes out of order.
   */
  apply(event: TraceEvent, line: number): void {
    if (
      event.event === 'write' &&
      event.via !== 'ecam' &&
      this.machine?.systemActive === true &&
      this.applyInertWrite(
        event.vcpu.domain,
        event.vcpu.vcpu,
        event.sbdf,
        event.reg,
        event.size,
        event.value,
        line,
      )
    )
      return;
    this.applyChecked(event, line);
  }

  /**
   * `apply` for the CF8/CFC `write` of `value` (`size` bytes at `reg`) by vCPU `vcpu` of domain
   * `domain` to the device at `sbdf`, from a compact write line's fields (`TraceReplay.feedBytes`):
   * an inert write is made without an event object; any other becomes the `write` event it is.
   */
  applyWrite(
    domain: number,
    vcpu: number,
    sbdf: string,
    reg: number,
    size: 1 | 2 | 4,
    value: number,
    line: number,
  ): void {
    this.applyKeyedWrite(domain, vcpu, sbdf, reg, size, value, line, undefined, -1);
  }

  /**
   * `applyWrite` for a line of a key kept in `slot` of `targets` (`TraceReplay`'s reader,
   * write-target.ts) whose slot keeps no target that stands (`applyKeptWrite` said so): what the
   * line's look-ups find is kept there, and a line of the same key is made from it with none.
   * @internal
   */
  applyKeyedWrite(
    domain: number,
    vcpu: number,
    sbdf: string,
    reg: number,
    size: 1 | 2 | 4,
    value: number,
    line: number,
    targets: WriteTargets | undefined,
    slot: number,
  ): void {
    if (
      this.machine?.systemActive === true &&
      this.applyInertWrite(domain, vcpu, sbdf, reg, size, value, line, targets, slot)
    )
      return;
    this.applyCheckedWrite(domain, vcpu, sbdf, reg, size, value, line);
  }

  /**
   * The write of a line whose key's slot of `targets` keeps the vCPU, address and device its
   * look-ups found, while the machine's access targets stand as they were then
   * (`Machine.accessTargetsVersion`): made with no look-up when it is inert and the vCPU has nothing
   * pending (true). False, with nothing done, when it is not (the line then takes the checked path,
   * `applyCheckedWrite`, with no second attempt); undefined, with nothing done, when the slot keeps
   * no target that stands (`applyKeyedWrite`). No target is kept under whole checks
   * (`applyInertWrite` keeps none), nor before boot, so neither is asked here.
   * @internal
   */
  applyKeptWrite(
    targets: WriteTargets,
    slot: number,
    reg: number,
    size: number,
    value: number,
    line: number,
  ): boolean | undefined {
    const machine = this.machine;
    if (machine === undefined || targets.targetVersion(slot) !== machine.accessTargetsVersion)
      return undefined;
    // The vCPU, address and device are set with the version.
    const kept = targets.targetVcpu(slot);
    return (
      kept.pending === undefined &&
      this.inertWriteTo(kept, targets.targetDevice(slot), targets.targetSbdf(slot), reg, size, value, line)
    );
  }

  /**
   * The `write` event of a CF8/CFC write's fields, past the inert writes (`applyChecked`).
   * @internal
   */
  applyCheckedWrite(
    domain: number,
    vcpu: number,
    sbdf: string,
    reg: number,
    size: 1 | 2 | 4,
    value: number,
    line: number,
  ): void {
    this.applyChecked({ event: 'write', vcpu: { domain, vcpu }, sbdf, reg, size, value }, line);
  }

  /** `apply` past the inert writes: the event checked, applied, and what it may have changed checked. */
  private applyChecked(event: TraceEvent, line: number): void {
    this.inertVcpu = undefined;
    this.checkedPath++;
    if (event.event === 'host') {
      if (this.machine !== undefined) {
        throw new TraceError(line, "'host' after the machine was set up; expected it as the first event");
      }
    } else {
      this.machine ??= new Machine({
        ...(this.options.profile === undefined ? {} : { profile: this.options.profile }),
        ...(this.options.rules === undefined ? {} : { rules: this.options.rules }),
      });
    }
    let touched: ReturnType<Replayer['snapshotTouched']>;
    try {
      touched = this.snapshotTouched(event, line);
      this.dispatch(event, line);
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw new TraceError(line, inTraceTerms(error, event.event));
      throw error;
    }
    this.applied++;
    this.collectEvents(line);
    if (this.options.invariantChecks === 'off') return;
    // A read changes nothing, unless its vCPU first finished work it had pending on a device: then
    // `touched` counts that device, or is undefined (an SR-IOV PF's work) for a whole check.
    if (
      event.event === 'assert' ||
      event.event === 'fault' ||
      event.event === 'iomem' ||
      ((event.event === 'read' || (event.event === 'mmio' && event.value === undefined)) && touched === 0)
    )
      return;
    if (this.options.invariantChecks === 'full') {
      this.record(line, checkInvariants(this.machine!));
      return;
    }
    // Lines that change nothing an invariant reads, in a trace's set-up: a new guest (an empty p2m,
    // no device), and a device added before boot (no vPCI state until boot, and before boot nothing
    // maps MMIO: vPCI alone does, and `populate` maps RAM). A whole check after each made the set-up
    // of a machine of N devices cost N whole checks, N² in all (the boot line's whole check sees them).
    if (event.event === 'domain' || (event.event === 'device' && !this.machine!.systemActive)) return;
    if (event.event === 'device' && touched === 0) {
      this.checkPlugged(line, 'spec' in event ? String(event.spec.sbdf) : event.sbdf);
      return;
    }
    if (touched === undefined) this.checkWhole(line);
    else this.checkScoped(line, touched);
  }

  /** The end of the trace: every vCPU finishes its pending work; a last invariant check. */
  finish(line: number): void {
    const machine = this.machine;
    if (machine === undefined) return;
    // Domain by domain, vCPU by vCPU (the record's order), as Xen's vCPUs would each return to guest.
    const pending = machine.pendingVcpus;
    for (let vcpu = pending.after(undefined); vcpu !== undefined; vcpu = pending.after(vcpu)) {
      machine.finishPending(vcpu);
      this.notes.push({ line, text: `end of trace: ${vcpu.name} finished its pending work` });
    }
    this.collectEvents(line);
    if (this.options.invariantChecks === 'off') return;
    const final = this.checkWhole(line);
    const current = new Set(final.map((violation) => this.identities.of(violation)));
    for (const [key, seen] of this.seen) seen.present = current.has(key);
  }

  /**
   * A write that the register dispatch shows can change nothing an invariant reads
   * (`Machine.configWriteIfInert`, which decides as `writeMayChangeDevice` does: most of a running
   * driver's writes), from a vCPU with no pending work: made without snapshots and without a check.
   * False, with nothing done, for any other write (it then takes the general path, which also
   * reports what it names wrongly); always false when every line gets a whole check. The vCPU,
   * address and device found are kept in `slot` of `targets` (a line's key's), and taken from it while the
   * machine's access targets stand (`Machine.accessTargetsVersion`): they are what the look-ups would
   * find again.
   */
  private applyInertWrite(
    domain: number,
    vcpuIndex: number,
    sbdf: string,
    reg: number,
    size: number,
    value: number,
    line: number,
    targets?: WriteTargets,
    slot = -1,
  ): boolean {
    // (An ECAM write, up to 8 bytes split by Xen, always takes the checked path: `apply` does not
    // offer it.)
    if (this.wholeChecks) return false;
    if (targets !== undefined) {
      const kept = this.applyKeptWrite(targets, slot, reg, size, value, line);
      if (kept !== undefined) return kept;
    }
    let vcpu = this.inertVcpu;
    if (vcpu === undefined || domain !== this.inertDomainId || vcpuIndex !== this.inertVcpuIndex) {
      vcpu = this.findVcpu(domain, vcpuIndex);
      if (vcpu === undefined) return false;
      this.inertVcpu = vcpu;
      this.inertDomainId = domain;
      this.inertVcpuIndex = vcpuIndex;
    }
    if (vcpu.pending !== undefined) return false;
    let address: Sbdf;
    try {
      // A malformed address is the engine's argument error, reported in the trace's terms.
      address = this.address(sbdf).sbdf;
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw new TraceError(line, inTraceTerms(error, 'write'));
      throw error;
    }
    // What `configWriteIfInert` would look up (no side effect, nothing thrown: the vCPU is this
    // machine's, the address parsed), found here so that the line's key keeps it.
    const device = this.targetAt(vcpu, address);
    if (targets !== undefined && device !== undefined)
      targets.keepTarget(slot, vcpu, address, device, this.machine!.accessTargetsVersion);
    return this.inertWriteTo(vcpu, device, address, reg, size, value, line);
  }

  /**
   * The write of `vcpu` (found, without pending work) to `device`, what its domain sees at
   * `address`, made when it is inert (`Machine.configWriteIfInertTo`): false, with nothing done,
   * when it is not.
   */
  private inertWriteTo(
    vcpu: Vcpu,
    device: PciDevice | undefined,
    address: Sbdf,
    reg: number,
    size: number,
    value: number,
    line: number,
  ): boolean {
    try {
      if (!this.machine!.configWriteIfInertTo(vcpu, device, address, reg, size, value)) return false;
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw new TraceError(line, inTraceTerms(error, 'write'));
      throw error;
    }
    this.applied++;
    this.collectEvents(line);
    return true;
  }

  /**
   * Once per replay, at the first device given to a guest with vPCI on x86: a note that this
   * anticipates x86 domU vPCI support (Xen staging has none), and whether the trace asked for it
   * (`x86GuestVpci`) or it was assumed (a trace without `arch`).
   */
  private noteGuestVpci(line: number): void {
    const { reason } = this.machine!.guestVpci;
    if (this.guestVpciNoted || (reason !== 'x86-assumed' && reason !== 'x86-switch')) return;
    this.guestVpciNoted = true;
    this.notes.push({ line, text: describeGuestVpci(this.machine!.guestVpci) });
  }

  // ---- events --------------------------------------------------------------------------------

  private dispatch(event: TraceEvent, line: number): void {
    const machine = this.machine;
    switch (event.event) {
      case 'host': {
        // The host has as many variable pairs as its MTRRcap.VCNT announces: at least a domU's 8,
        // and as many as the trace gives; dom0's copy has the same count (hvm_vcpu_cacheattr_init).
        const hostMtrr =
          event.mtrr === undefined
            ? undefined
            : mtrrState(event.mtrr, line, 'host.mtrr', Math.max(MTRR_VCNT, event.mtrr.variable.length));
        const hostVcnt = hostMtrr?.variableCount ?? MTRR_VCNT;
        this.machine = new Machine({
          // A trace without `arch` predates it: the engine then assumes x86 guest vPCI, as before.
          ...(event.arch === undefined ? {} : { arch: event.arch }),
          ...(event.x86GuestVpci === undefined ? {} : { x86GuestVpci: event.x86GuestVpci }),
          ...(event.arch === 'arm' ? { hostBridges: event.hostBridges ?? [] } : {}),
          profile: this.options.profile ?? event.profile,
          rules: this.options.rules ?? event.rules ?? 'xen',
          policy: event.policy,
          ...(event.arch === 'arm' ? {} : { vendor: event.vendor }),
          iommu: event.iommu,
          physAddrBits: event.physAddrBits,
          hardwareVcpus: event.hardwareVcpus,
          quarantine: event.quarantine ?? true,
          e820: event.e820,
          ...(hostMtrr === undefined ? {} : { hostMtrr }),
          ...(event.hardwareMtrr === undefined
            ? {}
            : { hardwareMtrr: mtrrState(event.hardwareMtrr, line, 'host.hardwareMtrr', hostVcnt) }),
          // HAP or shadow paging and 2M leaves are x86's choices (Arm's p2m has its own blocks).
          ...(event.arch === 'arm'
            ? {}
            : { hardwareP2m: { hap: event.hardwareHap ?? true }, superpages2M: event.hap2mb ?? true }),
        });
        return;
      }
      case 'device': {
        const m = machine!;
        const sbdf = 'spec' in event ? String(event.spec.sbdf) : event.sbdf;
        // A look-up by address: walking every device here made a trace's set-up quadratic.
        if (m.findDevice(parseSbdf(sbdf)) !== undefined) {
          throw new TraceError(
            line,
            `'device.sbdf' ${sbdf} is already on the machine; expected a free address`,
          );
        }
        const hw =
          'spec' in event
            ? PhysicalDevice.fromSpec(event.spec)
            : PhysicalDevice.fromImage(sbdf, event.image, {
                bars: event.sizes.bars,
                ...(event.sizes.rom === undefined ? {} : { rom: event.sizes.rom }),
                ...(event.sizes.vfBars === undefined ? {} : { vfBars: event.sizes.vfBars }),
              });
        if (!('spec' in event)) {
          requireImageSizes(hw, line);
          const sriov = imageSriovNote(hw.toString(), hw);
          if (sriov !== undefined) this.notes.push({ line, text: sriov });
        }
        m.addDevice(hw, { hidden: event.hidden, readOnly: event.readOnly === true });
        return;
      }
      case 'boot':
        if (machine!.systemActive) throw new TraceError(line, "a second 'boot'; expected one per trace");
        machine!.boot();
        return;
      case 'domain':
        if (machine!.domains().some((d) => d.id === event.id)) {
          throw new TraceError(line, `'domain.id' ${event.id} exists already; expected a new domain id`);
        }
        if (machine!.arch === 'arm' && (event.hap === false || event.mtrr !== undefined)) {
          const field = event.hap === false ? 'hap' : 'mtrr';
          throw new TraceError(
            line,
            `'domain.${field}' is x86's (shadow paging, MTRRs); expected none with arch 'arm'`,
          );
        }
        machine!.createGuest({
          id: event.id,
          vcpus: event.vcpus,
          ...(event.mtrr === undefined ? {} : { mtrr: mtrrState(event.mtrr, line, 'domain.mtrr') }),
          p2m: { hap: event.hap ?? true },
          ...(event.iommu === undefined ? {} : { iommu: event.iommu }),
        });
        return;
      case 'iomem': {
        this.domainOf(event.domain, line, 'iomem.domain');
        if (event.permit) machine!.permitIomem(event.domain, mfn(event.first), mfn(event.last));
        else machine!.denyIomem(event.domain, mfn(event.first), mfn(event.last));
        return;
      }
      case 'assign':
      case 'deassign': {
        this.requireBoot(event.event, line);
        this.deviceOf(event.sbdf, line, `${event.event}.sbdf`);
        if (event.event === 'assign') {
          const target = this.domainOf(event.domain, line, 'assign.domain');
          if (target.kind !== 'guest')
            throw new TraceError(
              line,
              `'assign.domain' ${event.domain} is not a guest; expected a domain made by a 'domain' line`,
            );
        }
        const result =
          event.event === 'assign'
            ? machine!.assignDevice(event.sbdf, event.domain)
            : machine!.deassignDevice(event.sbdf);
        if (event.event === 'assign' && result.ok) this.noteGuestVpci(line);
        this.outcome(line, `${event.event} ${event.sbdf}`, result, event.expect);
        return;
      }
      case 'quarantine':
      case 'reset': {
        this.requireBoot(event.event, line);
        this.deviceOf(event.sbdf, line, `${event.event}.sbdf`);
        const result =
          event.event === 'quarantine'
            ? machine!.quarantineDevice(event.sbdf)
            : machine!.resetDevice(event.sbdf);
        this.outcome(line, `${event.event} ${event.sbdf}`, result, event.expect);
        return;
      }
      case 'release': {
        this.requireBoot('release', line);
        const owner = this.domainOf(event.domain, line, 'release.domain');
        if (owner.kind !== 'guest')
          throw new TraceError(
            line,
            `'release.domain' ${event.domain} is not a guest; expected a domain made by a 'domain' line`,
          );
        this.outcome(line, `release d${event.domain}`, machine!.releaseDevices(event.domain), event.expect);
        return;
      }
      case 'mmcfg':
        this.requireBoot('mmcfg', line);
        machine!.mmcfgReserved(event.segment, event.startBus, event.endBus, event.reserved);
        return;
      case 'unplug': {
        this.deviceOf(event.sbdf, line, 'unplug.sbdf');
        const result = machine!.removeDevice(event.sbdf);
        if (!result.ok) this.notes.push({ line, text: `unplug ${event.sbdf}: ${result.code}` });
        if (event.expect !== undefined)
          this.check(line, `unplug ${event.sbdf}`, event.expect, result.ok ? 'ok' : result.code);
        return;
      }
      case 'read': {
        const vcpu = this.accessVcpu(event.vcpu, event.event, line);
        const sbdf = this.address(event.sbdf).sbdf;
        const value =
          event.via === 'ecam'
            ? machine!.ecamRead(vcpu, sbdf, event.reg, event.size)
            : machine!.configRead(vcpu, sbdf, event.reg, event.size);
        if (event.expect !== undefined) {
          this.check(
            line,
            `read ${event.sbdf} @${hex(event.reg)}/${event.size}${event.via === 'ecam' ? ' (ecam)' : ''}`,
            hex(event.expect),
            hex(value),
          );
        }
        return;
      }
      case 'write': {
        const vcpu = this.accessVcpu(event.vcpu, event.event, line);
        this.requireTarget(vcpu, event.sbdf, line);
        const sbdf = this.address(event.sbdf).sbdf;
        if (event.via === 'ecam') machine!.ecamWrite(vcpu, sbdf, event.reg, event.size, event.value);
        else machine!.configWrite(vcpu, sbdf, event.reg, event.size, event.value);
        return;
      }
      case 'mmio': {
        const vcpu = this.accessVcpu(event.vcpu, event.event, line);
        const result =
          event.value === undefined
            ? machine!.mmioRead(vcpu, event.addr, event.size)
            : machine!.mmioWrite(vcpu, event.addr, event.size, event.value);
        this.mmioPaths.set(result.path, (this.mmioPaths.get(result.path) ?? 0) + 1);
        const what = `mmio ${event.value === undefined ? 'read' : 'write'} ${hex(event.addr)}/${event.size}`;
        if (event.via !== undefined) this.check(line, `${what} via`, event.via, result.path);
        if (event.expect !== undefined) {
          this.check(
            line,
            what,
            hex(event.expect),
            result.value === undefined ? 'not modelled (memory)' : hex(result.value),
          );
        }
        return;
      }
      case 'run': {
        this.requireBoot('run', line);
        const vcpu = this.vcpuOf(event.vcpu, line);
        const result =
          event.budget === undefined
            ? machine!.finishPending(vcpu)
            : machine!.processPending(vcpu, event.budget);
        if (event.expect !== undefined) this.check(line, `run ${vcpu.name}`, event.expect, result.status);
        return;
      }
      case 'fault':
        if ('requester' in event)
          machine!.iommuFaults.failNext(this.address(event.requester).sbdf, event.code);
        else this.domainOf(event.domain, line, 'fault.domain').p2m.failNext(event.after);
        return;
      case 'populate': {
        const domain = this.domainOf(event.domain, line, 'populate.domain');
        if (this.refusedOverBar(domain, event.gfn, event.count, 'populate', line)) {
          if (event.expect !== undefined) this.check(line, `populate d${domain.id}`, event.expect, 'EPERM');
          return;
        }
        const result = populateRam(
          domain.p2m,
          gfn(event.gfn),
          event.count,
          mfn(event.mfn),
          'ram_rw',
          event.refuseClobber ? 'refuseClobber' : 'report',
        );
        const outcome = result.ok ? 'ok' : result.code;
        if (result.ok && result.orphaned.length > 0) {
          const frames = result.orphaned
            .map(([s, e]) => (s === e ? hex(s) : `${hex(s)}-${hex(e)}`))
            .join(', ');
          this.notes.push({ line, text: `populate d${domain.id}: pages at ${frames} replaced (orphaned)` });
        } else if (!result.ok) {
          this.notes.push({ line, text: `populate d${domain.id}: ${result.code}` });
        }
        if (event.expect !== undefined) this.check(line, `populate d${domain.id}`, event.expect, outcome);
        return;
      }
      case 'p2m': {
        const domain = this.domainOf(event.domain, line, 'p2m.domain');
        if (this.refusedOverBar(domain, event.gfn, event.count, 'p2m', line)) return;
        const added = addEntries(domain.p2m, gfn(event.gfn), event.count, mfn(event.mfn), event.type);
        const done = added.ok ? event.count : added.done;
        if (!added.ok) {
          const over =
            added.code === 'EPERM' ? ` over ${domain.p2m.lookup(added.gfn).type} (the domain crashed)` : '';
          this.notes.push({
            line,
            text: `p2m d${domain.id}: write of ${hex(added.gfn)}${over} failed: ${added.code}`,
          });
        }
        if (event.special && done > 0)
          machine!.specialPages.addRange(mfn(event.mfn), mfn(event.mfn + done - 1));
        return;
      }
      case 'assert':
        this.assert(event.assertion, line);
        return;
    }
  }

  // ---- assertions ----------------------------------------------------------------------------

  private assert(assertion: TraceAssertion, line: number): void {
    const machine = this.machine!;
    switch (assertion.kind) {
      case 'maps': {
        const domain = this.domainOf(assertion.domain, line, 'assert.maps.domain');
        const what = `d${domain.id} gfn ${hex(assertion.gfn)}${assertion.count > 1 ? ` +${assertion.count}` : ''}`;
        const want = `${assertion.mfn === undefined ? 'no frame' : `mfn ${hex(assertion.mfn)}`}${assertion.type === undefined ? '' : ` ${assertion.type}`}${assertion.order === undefined ? '' : ` order ${assertion.order}`}`;
        const at = firstMismatch(domain.p2m, assertion);
        if (at === undefined) {
          this.pass();
          return;
        }
        const entry = domain.p2m.lookup(gfn(at));
        const got = `gfn ${hex(at)}: ${entry.mfn === undefined ? `no frame (${entry.type})` : `mfn ${hex(entry.mfn)} ${entry.type}${assertion.order === undefined ? '' : ` order ${entry.order}`}`}`;
        this.fail(line, `maps ${what}`, want, got);
        return;
      }
      case 'memoryType': {
        const domain = this.domainOf(assertion.domain, line, 'assert.memoryType.domain');
        const found = machine.memoryType(domain.id, assertion.gfn, assertion.pat);
        const what = `memoryType d${domain.id} gfn ${hex(assertion.gfn)} pat ${assertion.pat}`;
        const want = `${assertion.expect}${assertion.ipat === undefined ? '' : ` ipat ${assertion.ipat}`}`;
        if (!found.mapped) {
          this.fail(line, what, want, found.why);
          return;
        }
        const got = `${found.type}${assertion.ipat === undefined ? '' : ` ipat ${found.ipat}`} (${found.why})`;
        if (
          found.type === assertion.expect &&
          (assertion.ipat === undefined || assertion.ipat === found.ipat)
        )
          this.pass();
        else this.fail(line, what, want, got);
        return;
      }
      case 'logged':
      case 'notLogged': {
        const from = assertion.from ?? 1;
        const to = assertion.to ?? line;
        const hit = this.events.find(
          (logged) =>
            logged.line >= from &&
            logged.line <= to &&
            matches(logged.event as unknown as Record<string, unknown>, assertion.pattern),
        );
        const window =
          assertion.from === undefined && assertion.to === undefined ? 'so far' : `on lines ${from} … ${to}`;
        const pattern = JSON.stringify(assertion.pattern);
        if (assertion.kind === 'logged') {
          if (hit !== undefined) this.pass();
          else this.fail(line, 'logged', pattern, `no such event ${window}`);
        } else if (hit === undefined) this.pass();
        else this.fail(line, `notLogged ${window}`, pattern, `line ${hit.line}: ${describeEvent(hit.event)}`);
        return;
      }
      case 'violation': {
        const now = checkInvariants(machine);
        const hit = now.some((v) => matches(v as unknown as Record<string, unknown>, assertion.pattern));
        this.expectedPatterns.push(assertion.pattern as Record<string, unknown>);
        for (const seen of this.seen.values()) seen.expected ||= this.isExpected(seen.violation);
        if (hit) this.pass();
        else
          this.fail(
            line,
            'violation',
            JSON.stringify(assertion.pattern),
            `${now.length} violations, none matching`,
          );
        return;
      }
      case 'noViolations': {
        const now = checkInvariants(machine).filter((v) => !this.isExpected(v));
        if (now.length === 0) this.pass();
        else this.fail(line, 'noViolations', 'none', `${now.length}: ${now.map((v) => v.kind).join(', ')}`);
        return;
      }
      case 'bar': {
        const device = this.deviceOf(assertion.sbdf, line, 'assert.bar.sbdf');
        const bar = device.vpci?.bars[assertion.bar];
        const what = `bar ${device.name} BAR${assertion.bar}`;
        if (bar === undefined) {
          this.fail(line, what, 'a BAR handled by vPCI', 'the device has no vPCI state');
          return;
        }
        const checks: [string, unknown, unknown][] = [
          ['addr', assertion.addr, bar.addr],
          ['guestAddr', assertion.guestAddr, bar.guestAddr],
          ['size', assertion.size, bar.size],
          ['enabled', assertion.enabled, bar.enabled],
        ];
        for (const [name, want, got] of checks) {
          if (want === undefined || want === got) continue;
          const show = (v: unknown): string => (typeof v === 'bigint' ? hex(v) : String(v));
          this.fail(line, `${what} ${name}`, show(want), show(got));
          return;
        }
        this.pass();
        return;
      }
      case 'crashed': {
        const domain = this.domainOf(assertion.domain, line, 'assert.crashed.domain');
        this.check(line, `crashed d${domain.id}`, String(assertion.expect), String(domain.crashed));
        return;
      }
    }
  }

  /** A toolstack operation's outcome: a note when it failed, checked against `expect` when given. */
  private outcome(line: number, what: string, result: { ok: boolean; code?: string }, expect?: string): void {
    const got = result.ok ? 'ok' : String(result.code);
    if (!result.ok) this.notes.push({ line, text: `${what}: ${got}` });
    if (expect !== undefined) this.check(line, what, expect, got);
  }

  private check(line: number, what: string, want: string, got: string): void {
    if (want === got) this.pass();
    else this.fail(line, what, want, got);
  }

  private pass(): void {
    this.assertions++;
  }

  private fail(line: number, assertion: string, expected: string, actual: string): void {
    this.assertions++;
    this.failures.push({ line, assertion, expected, actual });
  }

  // ---- bookkeeping ---------------------------------------------------------------------------

  /**
   * Hardened (`protectBarFrames`): guest memory written from outside vPCI into the guest frames of an
   * enabled BAR of the domain is refused whole, with a note. Xen writes it (`p2m_add_page` refuses
   * only special entries): RAM then fills the BAR's MSI-X or other holes.
   */
  private refusedOverBar(domain: Domain, first: number, count: number, what: string, line: number): boolean {
    const machine = this.machine!;
    if (!machine.policy.protectBarFrames || count < 1) return false;
    const met = enabledBarMeeting(machine, domain, first, first + count - 1);
    if (met === undefined) return false;
    this.notes.push({
      line,
      text: `${what} d${domain.id}: EPERM: the frames meet ${met.sbdf} ${met.bar === 6 ? 'ROM' : `BAR${met.bar}`}, which d${domain.id} maps (protectBarFrames)`,
    });
    return true;
  }

  private collectEvents(line: number): void {
    const log = this.machine?.events;
    if (log === undefined || log.length === 0) return;
    for (const event of log) this.events.push({ line, event });
    log.length = 0;
  }

  /**
   * Snapshots the devices a config access or `run` line can change: the one whose pending work the
   * vCPU finishes first and the device written. Returns how many (the first of `snapshots`), or
   * undefined for other lines (they get a whole check, or none).
   */
  private snapshotTouched(event: TraceEvent, line: number): number | undefined {
    const machine = this.machine;
    // Without checks nothing compares the snapshots (`apply` returns before the check).
    if (machine?.systemActive !== true || this.options.invariantChecks === 'off') return undefined;
    if (
      event.event === 'assign' ||
      event.event === 'deassign' ||
      event.event === 'quarantine' ||
      event.event === 'reset'
    )
      return this.snapshotMoved(event.sbdf);
    // A device hot-plugged while no vCPU has work pending: all the line can change is the new
    // device (its set-up maps its BARs, and works only on the toolstack's vCPU), `checkPlugged`.
    if (event.event === 'device') return machine.pendingVcpus.size === 0 ? 0 : undefined;
    const access =
      event.event === 'write' || event.event === 'read' || event.event === 'mmio' || event.event === 'run';
    if (!access) return undefined;
    const vcpu = this.vcpuOf(event.vcpu, line);
    const pending = vcpu.pending?.device;
    // An SR-IOV PF's line can add or remove its VFs or change their mappings (VF Enable, VF MSE, a
    // whole-range VF BAR operation): not one device's business, so it gets a whole check.
    if (pending?.hw.sriov !== undefined) return undefined;
    const target = event.event === 'write' ? this.targetOf(vcpu, event.sbdf) : undefined;
    if (target?.hw.sriov !== undefined) return undefined;
    let count = 0;
    if (pending !== undefined) this.takeSnapshot(count++, pending);
    if (event.event === 'write') {
      // Finishing the work changes of another device only their domain's p2m, on the frames of the
      // device the work was on (in the scope of its check): a write that itself changes nothing
      // (a running driver's, made first thing after a decoding toggle) leaves the target out.
      if (
        target !== undefined &&
        target !== pending &&
        (pending === undefined ||
          event.via === 'ecam' ||
          writeReachesDevice(machine, vcpu, target, event.reg, event.size, event.value))
      )
        this.takeSnapshot(count++, target);
    }
    return count;
  }

  /**
   * Snapshot `i` of `device` before the line: what the last checked line's check compared of the same
   * device in the same place, when that is what it still is (`checkedPath`, `DeviceSnapshot.takeAgain`:
   * a reprogramming's lines write one device line after line), else recorded afresh.
   */
  private takeSnapshot(i: number, device: PciDevice): void {
    const machine = this.machine!;
    const snapshot = this.snapshot(i);
    if (
      snapshot.device === device &&
      this.comparedAt[i] === this.checkedPath - 1 &&
      snapshot.takeAgain(machine)
    )
      return;
    snapshot.take(machine, device);
  }

  /**
   * Snapshots the one device an `assign`, `deassign`, `quarantine` or `reset` line moves or sets up
   * again, when that is all the line can change: no vCPU has work pending (else the line may finish
   * it first, on any device: `settleBeforeMove`, the toolstack's vCPU in `assignVpci`). Returns 1, or
   * undefined (a whole check) when work is pending, the device is an SR-IOV PF (its VFs go with it)
   * or there is no such device (the line then fails).
   */
  private snapshotMoved(sbdf: string): number | undefined {
    const machine = this.machine!;
    if (machine.pendingVcpus.size > 0) return undefined;
    let device: PciDevice | undefined;
    try {
      device = machine.findDevice(sbdf);
    } catch {
      return undefined; // A malformed address: the line fails, and says so (`deviceOf`).
    }
    if (device === undefined || device.hw.sriov !== undefined || device.physfn !== undefined)
      return undefined;
    this.snapshot(0).take(machine, device);
    return 1;
  }

  private snapshot(i: number): DeviceSnapshot {
    this.snapshots[i] ??= new DeviceSnapshot();
    return this.snapshots[i];
  }

  /**
   * Checks what the line's `count` snapshotted devices may have changed, and nothing when nothing a
   * check can find anything new in moved (most config writes: sizing a BAR that is not mapped, other
   * registers; a decoding toggle that only made work pending, `DeviceChange`). A device whose BARs
   * changed only where they are not mapped (the hardware domain sizing or placing a BAR with
   * decoding off) is checked by its own checks and its host pages only, and not at all when its sets
   * are empty and nothing is mapped on those pages (`hostChangeFindsNothing`; it is then named to the
   * next check); a device left with nothing mapped or to map where nothing else is (an unmap
   * finished, `leftUnmappedFindsNothing`) likewise; any other change, over its guest frames too. A device that changed owner (an `assign` line's) is looked at in the domain it
   * left and the one it joined, and its host pages in every domain (the sharing check: whose pages
   * they are changed).
   */
  private checkScoped(line: number, count: number): void {
    const machine = this.machine!;
    const before = this.snapshots;
    const changes = this.changes;
    let checked = false;
    for (let i = 0; i < count; i++) {
      const snapshot = before[i]!;
      const moved = snapshot.owner !== snapshot.device!.domain?.id;
      changes[i] = moved ? 'frames' : snapshot.change(machine);
      if (!moved) this.comparedAt[i] = this.checkedPath;
      if (changes[i] === 'host' || changes[i] === 'frames') checked = true;
    }
    if (!checked) return;
    const devices = this.scopeDevices;
    // Sizing or placing BARs that are not mapped, with nothing mapped on their host pages then or
    // now and no frame left in their sets (most of a reprogramming's lines), or finishing an unmap
    // that left the device with nothing mapped where nothing else is, or a map that left it mapped
    // as its BARs ask where no one else is (the lines that finish pending work): nothing to find. A
    // map's answer brings the checks' indexes up to date for the devices named since, as the check
    // made otherwise would.
    let quiet = true;
    // Bit i: the ith device answered by `leftMappedFindsNothing`.
    let mappedAnswers = 0;
    for (let i = 0; i < count && quiet; i++) {
      const change = changes[i];
      const snapshot = before[i]!;
      if (change !== 'frames') quiet = change !== 'host' || snapshot.hostChangeFindsNothing(machine);
      else if (!snapshot.leftUnmappedFindsNothing(machine)) {
        quiet = snapshot.leftMappedFindsNothing(machine, this.unchecked, i + 1 < count);
        if (quiet) mappedAnswers |= 1 << i;
      }
    }
    if (quiet) {
      // A map's answer brought what the checks remember up to date for the devices named since and
      // its own, as a check would: none of them needs naming to the next check.
      if (mappedAnswers !== 0) this.emptyUnchecked();
      for (let i = 0; i < count; i++) {
        const device = before[i]!.device!;
        if ((changes[i] !== 'host' && changes[i] !== 'frames') || (mappedAnswers & (1 << i)) !== 0) continue;
        if (this.inUnchecked.get(device) === this.uncheckedLists) continue;
        this.inUnchecked.set(device, this.uncheckedLists);
        this.unchecked.push(device);
      }
      return;
    }
    const frames = this.scopeFrames;
    this.beginScope();
    const hostFrames = this.scopeHostFrames;
    for (let i = 0; i < count; i++) {
      const snapshot = before[i]!;
      const { device, domain } = snapshot;
      this.addToScope(device!);
      if (changes[i] !== 'frames') {
        snapshot.scopeFrames(machine, undefined, hostFrames);
        continue;
      }
      // Its frames then where the line found it, and now where it left it: the same domain unless it
      // changed owner.
      snapshot.scopeFrames(
        machine,
        this.scopeFramesIn(domain),
        hostFrames,
        this.scopeFramesIn(mappingDomain(machine, device!)),
      );
    }
    this.settleScope();
    this.record(line, checkInvariants(machine, { devices, frames, hostFrames }));
  }

  /**
   * Checks after a device hot-plugged while no vCPU had work pending (`snapshotTouched`): over the
   * new device, its guest frames in the domain it maps into and its host pages (where its BARs meet
   * other devices' pages and other domains' mappings), as after an `assign` line. A whole check
   * when it joined with no owner (refused as shared, hardened) or is an SR-IOV PF (its VFs are not
   * one device's business), as for its other lines.
   */
  private checkPlugged(line: number, sbdf: string): void {
    const machine = this.machine!;
    const device = machine.findDevice(sbdf);
    if (device === undefined || device.domain === undefined || device.hw.sriov !== undefined) {
      this.checkWhole(line);
      return;
    }
    const snapshot = this.snapshot(0);
    snapshot.take(machine, device);
    this.beginScope();
    this.addToScope(device);
    const hostFrames = this.scopeHostFrames;
    snapshot.scopeFrames(machine, this.scopeFramesIn(snapshot.domain), hostFrames);
    this.settleScope();
    this.record(
      line,
      checkInvariants(machine, { devices: this.scopeDevices, frames: this.scopeFrames, hostFrames }),
    );
  }

  /**
   * Starts the scope of a new scoped check, naming in it the devices left unchecked since the last
   * check (`unchecked`): a scope must hold every device changed since.
   */
  private beginScope(): void {
    const devices = this.lastDeviceList;
    this.lastDeviceList = this.scopeDeviceList;
    this.scopeDeviceList = devices;
    devices.length = 0;
    const domains = this.lastDomains;
    this.lastDomains = this.scopeDomains;
    this.scopeDomains = domains;
    domains.length = 0;
    this.scopeHostFrames.length = 0;
    this.scopeLists++;
    const unchecked = this.unchecked;
    for (let i = 0; i < unchecked.length; i++) this.addToScope(unchecked[i]!);
    this.emptyUnchecked();
  }

  /** Empties `unchecked` (a new list as far as `inUnchecked` tells). */
  private emptyUnchecked(): void {
    this.unchecked.length = 0;
    this.uncheckedLists++;
  }

  /** Names `device` in the scope being built. */
  private addToScope(device: PciDevice): void {
    if (this.inScope.get(device) === this.scopeLists) return;
    this.inScope.set(device, this.scopeLists);
    this.scopeDeviceList.push(device);
  }

  /**
   * Makes `scopeDevices` and `scopeFrames` hold the scope built, changed from the last one's rather
   * than emptied (a `Set` or `Map` cleared, or left empty by a delete, is a new table, and a scoped
   * check follows one line in fifty): the new entries put in before the old ones are taken out.
   */
  private settleScope(): void {
    holdInOrder(this.scopeDevices, this.scopeDeviceList, this.lastDeviceList);
    // The order of the frames' domains is not read (a check takes them by id).
    const domains = this.scopeDomains;
    for (let i = 0; i < domains.length; i++)
      this.scopeFrames.set(domains[i]!, this.frameLists.get(domains[i]!)!);
    const lastDomains = this.lastDomains;
    for (let i = 0; i < lastDomains.length; i++)
      if (!domains.includes(lastDomains[i]!)) this.scopeFrames.delete(lastDomains[i]!);
  }

  /**
   * A whole check after `line`, recorded; it looks at every device, so none is left for the next
   * scoped check to name (a device named later might have left the machine since).
   */
  private checkWhole(line: number): Violation[] {
    this.emptyUnchecked();
    const violations = checkInvariants(this.machine!);
    this.record(line, violations);
    return violations;
  }

  /** The list of `domain`'s guest frames in the scope being built (none without a domain). */
  private scopeFramesIn(domain: Domain | undefined): FrameRange[] | undefined {
    if (domain === undefined) return undefined;
    let list = this.frameLists.get(domain);
    if (list === undefined) {
      list = [];
      this.frameLists.set(domain, list);
    }
    if (!this.scopeDomains.includes(domain)) {
      this.scopeDomains.push(domain);
      list.length = 0;
    }
    return list;
  }

  /** Adds the violations not seen before, as first seen after `line`. */
  private record(line: number, violations: Violation[]): void {
    for (const violation of violations) {
      const key = this.identities.of(violation);
      if (!this.seen.has(key)) {
        this.seen.set(key, { violation, line, present: true, expected: this.isExpected(violation) });
      }
    }
  }

  private isExpected(violation: Violation): boolean {
    return this.expectedPatterns.some((p) => matches(violation as unknown as Record<string, unknown>, p));
  }

  // ---- lookups that fail with the line -------------------------------------------------------

  private requireBoot(what: string, line: number): void {
    if (!this.machine!.systemActive) {
      throw new TraceError(
        line,
        `'${what}' before 'boot'; expected a boot line first (it builds the hardware domain)`,
      );
    }
  }

  private domainOf(id: number, line: number, field: string): Domain {
    const domain = this.machine!.findDomain(id);
    if (domain === undefined || domain.isPseudo) {
      const ids = this.machine!.domains()
        .filter((d) => !d.isPseudo)
        .map((d) => d.id);
      throw new TraceError(line, `'${field}' ${id} is not a domain; expected one of ${ids.join(', ')}`);
    }
    return domain;
  }

  /** The vCPU a trace names, or undefined (`vcpuOf` says why). */
  private findVcpu(domainId: number, vcpu: number): Vcpu | undefined {
    const domain = this.machine!.findDomain(domainId);
    return domain === undefined || domain.kind === 'dom_xen' ? undefined : domain.vcpus[vcpu];
  }

  private vcpuOf(ref: TraceVcpu, line: number): Vcpu {
    const found = this.findVcpu(ref.domain, ref.vcpu);
    if (found !== undefined) return found;
    const name = `d${ref.domain}v${ref.vcpu}`;
    const domain = this.machine!.findDomain(ref.domain);
    if (domain === undefined || domain.isPseudo) {
      const vcpus = this.machine!.domains()
        .filter((d) => !d.isPseudo)
        .flatMap((d) => d.vcpus.map((_, i) => `d${d.id}v${i}`));
      throw new TraceError(
        line,
        `'vcpu' is "${name}", but domain ${ref.domain} does not exist; expected one of: ${vcpus.join(', ') || 'none (no domain yet)'}`,
      );
    }
    const vcpu = domain.vcpus[ref.vcpu];
    if (vcpu === undefined) {
      throw new TraceError(
        line,
        `'vcpu' d${ref.domain}v${ref.vcpu} does not exist; expected d${ref.domain}v0 … d${ref.domain}v${domain.vcpus.length - 1}`,
      );
    }
    return vcpu;
  }

  private deviceOf(sbdf: string, line: number, field: string) {
    try {
      return this.machine!.device(sbdf);
    } catch {
      const known = this.machine!.devices().map((d) => d.name);
      throw new TraceError(
        line,
        `'${field}' is "${sbdf}", which is not a device on the machine; expected one of: ${known.join(', ') || 'none (no device yet)'}`,
      );
    }
  }

  /**
   * A trace's PCI address, parsed once per distinct spelling (a trace names the same few devices
   * millions of times).
   */
  private address(text: string): { sbdf: Sbdf; name: string } {
    // A device's lines come in runs (a driver's writes, a BAR's sizing): the last address is
    // compared first, a few characters, where a look-up in the map hashes the line's new string.
    if (text === this.lastAddressText) return this.lastAddressFound!;
    let found = this.addresses.get(text);
    if (found === undefined) {
      const sbdf = parseSbdf(text);
      found = { sbdf, name: formatSbdf(sbdf) };
      this.addresses.set(text, found);
    }
    this.lastAddressText = text;
    this.lastAddressFound = found;
    return found;
  }

  /** The vCPU of an access, with its pending work finished first (it could not run otherwise). */
  private accessVcpu(ref: TraceVcpu, what: string, line: number): Vcpu {
    this.requireBoot(what, line);
    const vcpu = this.vcpuOf(ref, line);
    if (vcpu.pending !== undefined) this.machine!.finishPending(vcpu);
    return vcpu;
  }

  /** The device a vCPU's domain sees at `text` (a guest's addresses are virtual). */
  private targetOf(vcpu: Vcpu, text: string): PciDevice | undefined {
    return this.targetAt(vcpu, this.address(text).sbdf);
  }

  private targetAt(vcpu: Vcpu, sbdf: Sbdf): PciDevice | undefined {
    return vcpu.domain.isHardware
      ? this.machine!.findDevice(sbdf)
      : this.machine!.findGuestDevice(vcpu.domain, sbdf);
  }

  /** A write must reach a device the domain can see (reads of empty slots are how buses are scanned). */
  private requireTarget(vcpu: Vcpu, sbdf: string, line: number): void {
    const exists = this.targetOf(vcpu, sbdf) !== undefined;
    if (!exists && !vcpu.domain.isHardware && !this.machine!.guestVpci.enabled) {
      throw new TraceError(
        line,
        `'write.sbdf' is "${sbdf}", but d${vcpu.domain.id} has no vPCI (x86: Xen gives guests none); expected "x86GuestVpci": true on the host line to anticipate it`,
      );
    }
    if (!exists) {
      throw new TraceError(
        line,
        `'write.sbdf' is "${sbdf}", which is not a device ${vcpu.domain.isHardware ? 'on the machine' : `of d${vcpu.domain.id} (guest addresses: ${vcpu.domain.devices.map((d) => (d.vpci?.guestSbdf ? formatSbdf(d.vpci.guestSbdf) : '?')).join(', ') || 'none'})`}; expected an existing device`,
      );
    }
  }
}

/**
 * An image holds where each BAR is, never how large it is: a BAR slot the image shows in use (its
 * register is not zero, and it is not the upper half of a 64-bit BAR) needs its size in `sizes.bars`,
 * or the replay would invent one.
 */
function requireImageSizes(hw: PhysicalDevice, line: number): void {
  const slots = (hw.read(PCI_HEADER_TYPE, 1) & 0x7f) === PCI_HEADER_TYPE_BRIDGE ? 2 : 6;
  for (let i = 0; i < slots; i++) {
    const register = hw.read(PCI_BASE_ADDRESS_0 + 4 * i, 4);
    const upperHalf =
      i > 0 &&
      (hw.read(PCI_BASE_ADDRESS_0 + 4 * (i - 1), 4) & 0x7) === PCI_BASE_ADDRESS_MEM_TYPE_64 &&
      hw.barSize(i - 1) > 0n;
    if (register !== 0 && !upperHalf && hw.barSize(i) === 0n) {
      throw new TraceError(
        line,
        `'device.sizes.bars[${i}]' is missing; expected the size of BAR${i}, whose register the image shows as ${hex(register >>> 0)} (an image holds BAR addresses, not sizes)`,
      );
    }
    if (hw.barSize(i) > 0n && (register & 0x7) === PCI_BASE_ADDRESS_MEM_TYPE_64) i++;
  }
}

/**
 * An engine's argument error in the trace's words: the engine names its own parameters (`spec.bars[0].size`,
 * `sizes.bars[1]`, `sbdf`), which become the trace line's fields (`'device.bars[0].size'`), and shows
 * values as the trace writes them (hexadecimal, not `12288n`).
 */
function inTraceTerms(error: InvalidArgumentError, event: string): string {
  const field = error.argument === 'spec' ? event : `${event}.${error.argument.replace(/^spec\./, '')}`;
  return `'${field}' is ${show(error.received)}; expected ${error.expected}`;
}

/**
 * The first frame of a `maps` assertion where the p2m differs from it, or undefined: walked extent by
 * extent, so asserting 2^40 frames costs what the extents there cost. A hole reads as mmio_dm; it
 * holds when no mfn is wanted. An extent holds when its machine frames continue the wanted ones (and,
 * when an order is wanted, its leaves have that order).
 */
function firstMismatch(p2m: P2m, want: TraceAssertion & { kind: 'maps' }): number | undefined {
  const last = want.gfn + want.count - 1;
  const holeOk = want.mfn === undefined && (want.type === undefined || want.type === 'mmio_dm');
  let at = want.gfn;
  for (const extent of p2m.extentsIn(gfn(want.gfn), gfn(last))) {
    if (extent.gfn > at) {
      if (!holeOk) return at;
      at = extent.gfn;
    }
    const continues = want.mfn !== undefined && extent.mfn - extent.gfn === want.mfn - want.gfn;
    if (!continues || (want.type !== undefined && extent.type !== want.type)) return at;
    if (want.order !== undefined && extent.order !== want.order) return at;
    at = extent.gfn + extent.count;
  }
  return at <= last && !holeOk ? at : undefined;
}

/** Whether `object` has every field of `pattern`; numbers, bigints and hex strings compare by value. */
function matches(object: Record<string, unknown>, pattern: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([key, want]) => sameValue(object[key], want));
}

function sameValue(got: unknown, want: unknown): boolean {
  const asBig = (v: unknown): bigint | undefined => {
    if (typeof v === 'bigint') return v;
    if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
    if (typeof v === 'string' && /^0x[0-9a-fA-F]+$/.test(v)) return BigInt(v);
    return undefined;
  };
  const a = asBig(got);
  const b = asBig(want);
  if (a !== undefined && b !== undefined) return a === b;
  return got === want;
}

/**
 * An `MtrrState` from a trace's MTRR layout with `variableCount` pairs (a domU's 8 by default); a bad
 * range is reported with its field.
 */
function mtrrState(layout: TraceMtrr, line: number, path: string, variableCount = MTRR_VCNT): MtrrState {
  try {
    return new MtrrState({
      variableCount,
      enabled: layout.enabled,
      fixedEnabled: layout.fixedEnabled,
      defaultType: layout.defaultType,
      fixedRanges:
        typeof layout.fixed === 'string'
          ? new Array<MtrrType>(NUM_FIXED_RANGES).fill(layout.fixed)
          : layout.fixed,
      variableRanges: layout.variable.map((v, i) => {
        try {
          return variableRange(v.base, v.size, v.type);
        } catch (error) {
          if (error instanceof InvalidArgumentError) {
            throw new TraceError(line, inTraceTerms(error, `${path}.variable[${i}]`));
          }
          throw error;
        }
      }),
    });
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new TraceError(line, inTraceTerms(error, path));
    throw error;
  }
}
