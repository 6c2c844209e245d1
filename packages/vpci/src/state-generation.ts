/**
 * A count of the changes made to what a whole-machine invariant check reads (invariants.ts), in every
 * machine of the program: the one place every such change is told of. The whole check is a pure
 * function of the machine's state, so while the count stands still it may give its last answer again
 * (`checkInvariants` without a scope). Told of: every p2m write (`P2m.onChange`), every BAR change
 * (`Bar`'s setters; a guest address set while the BAR is not enabled by `inFlightStateChanged`), a
 * vPCI state's decoding flag, MSI-X state and withheld pages (set or changed in place), a device's
 * owner and vPCI state, a vCPU's pending work, a BAR, ROM, resizable-BAR or VF BAR register written
 * (`PhysicalDevice`), and a device or domain coming or going (`Machine`). The BARs' sets of frames
 * to map or unmap are counted apart (`barSetChanged`).
 *
 * It is not the scoped checks' change detection (the replayer's device snapshots, `Bar.changes`,
 * `BarWriteLog`, `P2m.writes`): the reference the scoped checks are compared with must not lean on
 * what it tests. Every machine shares the count, so a change in one makes the others check afresh:
 * more work, never a stale answer. test/whole-check-reuse.property.test.ts compares every reused
 * answer with a fresh one.
 */

let changes = 0;
/** Of `changes`, those `inFlightStateChanged` counted. */
let inFlightOnly = 0;

/** Counts a change to state a whole check reads. */
export function stateChanged(): void {
  changes++;
}

/**
 * Counts a change a whole check reads only while some vCPU has work pending: a BAR's guest address
 * set while the BAR is not enabled (a guest placing a BAR with decoding off). Windows and MSI-X pages
 * are those of enabled BARs and the host pages are the BARs' host addresses; only the frames of a
 * device with work pending (`checkDomains`' in-flight frames) are read from every BAR.
 */
export function inFlightStateChanged(): void {
  changes++;
  inFlightOnly++;
}

/** The changes counted so far: the same number means nothing a whole check reads changed. */
export function stateGeneration(): number {
  return changes;
}

/**
 * The changes counted so far less those `inFlightStateChanged` counted: the same number, with no
 * vCPU's work pending now, means nothing a whole check reads changed (a vCPU's pending work is set
 * and dropped through `Vcpu.pending`, counted by `stateChanged`: none now, none then either).
 */
export function stateGenerationWhileIdle(): number {
  return changes - inFlightOnly;
}

/** Changes to the BARs' sets of frames to map or unmap (bar-set.ts), counted apart. */
let barSetChanges = 0;

/**
 * Counts a change to a BAR's set of frames (`BarSet`): read by a whole check's BAR loop
 * (`rangeset-not-empty`) only, which gives its last answer again while this count and
 * `stateGeneration()` stand.
 */
export function barSetChanged(): void {
  barSetChanges++;
}

/** The changes to BARs' sets counted so far. */
export function barSetGeneration(): number {
  return barSetChanges;
}
