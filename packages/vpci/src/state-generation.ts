/**
 * A count of the changes made to what a whole-machine invariant check reads (invariants.ts), in every
 * machine of the program: the one place every such change is told of. The whole check is a pure
 * function of the machine's state, so while the count stands still it may give its last answer again
 * (`checkInvariants` without a scope). Told of: every p2m write (`P2m.onChange`), every BAR change
 * (`Bar`'s setters), a vPCI state's decoding flag, MSI-X state and withheld pages (set or changed in
 * place), a device's owner and vPCI state, a vCPU's pending work, a BAR, ROM, resizable-BAR or VF BAR
 * register written (`PhysicalDevice`), and a device or domain coming or going (`Machine`). The BARs'
 * sets of frames to map or unmap are counted apart (`barSetChanged`).
 *
 * Each change is told of by what reads it, so that a check may keep the parts of its answer made
 * from what did not change: every part (`stateChanged`), every part but the devices' host pages
 * (`mappingStateChanged`), the host pages only (`hostPagesChanged`), work in flight only
 * (`inFlightStateChanged`). Every kind counts in `stateGeneration()`.
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
/** Of `changes`, those `hostPagesChanged` counted. */
let hostPagesOnly = 0;
/** Of `changes`, those the host pages do not read (`mappingStateChanged`, `inFlightStateChanged`). */
let notOnHostPages = 0;

/** Counts a change that any part of a whole check may read (the host pages among them). */
export function stateChanged(): void {
  changes++;
}

/**
 * Counts a change every part of a whole check may read but the devices' host pages (`hostBarFrames`
 * and their owners: the sharing check's list): a p2m write, a BAR's enabled or half-written flag or
 * its guest address while enabled, a vPCI state's decoding flag, MSI-X state or withheld pages, a
 * vCPU's pending work.
 */
export function mappingStateChanged(): void {
  changes++;
  notOnHostPages++;
}

/**
 * Counts a change a whole check reads only through the devices' host pages (`hostBarFrames`, which
 * the sharing check searches): a BAR register written to the hardware, the BARs decoded again from
 * the registers, a vPCI BAR's host address set while the BAR is not enabled (windows and MSI-X pages
 * are those of enabled BARs, work in flight is read by guest frame). The hardware domain sizing and
 * placing its BARs with decoding off changes nothing else a whole check reads (its guest addresses,
 * identical, count as work in flight).
 */
export function hostPagesChanged(): void {
  changes++;
  hostPagesOnly++;
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
  notOnHostPages++;
}

/** The changes counted so far: the same number means nothing a whole check reads changed. */
export function stateGeneration(): number {
  return changes;
}

/**
 * The changes counted so far less those `inFlightStateChanged` counted: the same number, with no
 * vCPU's work pending now, means nothing a whole check reads changed (a vCPU's pending work is set
 * and dropped through `Vcpu.pending`, counted by `mappingStateChanged`: none now, none then either).
 */
export function stateGenerationWhileIdle(): number {
  return changes - inFlightOnly;
}

/**
 * The changes counted so far that the devices' host pages may read: the same number means every
 * device's host pages and owner are as they were.
 */
export function hostPagesGeneration(): number {
  return changes - notOnHostPages;
}

/**
 * The changes counted so far less those `hostPagesChanged` counted: the same number means nothing a
 * whole check reads changed but the devices' host pages.
 */
export function generationBesideHostPages(): number {
  return changes - hostPagesOnly;
}

/**
 * `generationBesideHostPages()` less the changes `inFlightStateChanged` counted: the same number, with
 * no vCPU's work pending now, means nothing a whole check reads changed but the devices' host pages
 * (as `stateGenerationWhileIdle`).
 */
export function generationBesideHostPagesWhileIdle(): number {
  return changes - hostPagesOnly - inFlightOnly;
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
