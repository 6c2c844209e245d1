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
 * Each change is told of with the parts of a whole check that read it (`READ_BY`), each part counted
 * on its own, so that a check may keep each part of its answer while what that part reads stands.
 *
 * It is not the scoped checks' change detection (the replayer's device snapshots, `Bar.changes`,
 * `BarWriteLog`, `P2m.writes`): the reference the scoped checks are compared with must not lean on
 * what it tests. Every machine shares the count, so a change in one makes the others check afresh:
 * more work, never a stale answer. test/whole-check-reuse.property.test.ts compares every reused
 * answer with a fresh one.
 */

/** The parts of a whole check a change may be read by, as bits (`stateChanged`'s `readBy`). */
export const READ_BY = {
  /**
   * Every device's host pages (`hostBarFrames`) and owner, which the sharing check searches: BAR
   * registers, the BARs decoded from them, vPCI BARs' host addresses and sizes.
   */
  hostPages: 1,
  /**
   * Each domain's windows and MSI-X pages (`wholeLayout`): its devices' enabled BARs, their guest
   * and host frames, their MSI-X structures.
   */
  windows: 2,
  /**
   * The rest: the p2ms, pending work, decoding flags, withheld pages, the BARs' flags the BAR loop
   * reads, which devices and domains there are and whose they are. (The guest frames of the BARs of
   * devices with work pending, which the mapping checks leave alone, are compared as they are:
   * `wholeDomains`.)
   */
  rest: 4,
} as const;

/**
 * The parts that read a BAR's enabled flag (a VF's kept packed included): its domain's windows and
 * MSI-X pages, and the BAR loop (`probe-mapped`), among the rest.
 */
export const ENABLED_FLAG = READ_BY.windows | READ_BY.rest;

/**
 * No part: a change a whole check reads only as work in flight (a BAR's guest address set while it
 * is not enabled), which it compares as it is rather than counts.
 */
export const NO_PART = 0;

/** Every part: a change anything a whole check reads may depend on. */
export const EVERY_PART = READ_BY.hostPages | READ_BY.windows | READ_BY.rest;

let changes = 0;
/** Per part (by its bit's place), the changes told of as read by it. */
const partChanges = [0, 0, 0];

/** Counts a change to state a whole check reads, read by the parts `readBy` (bits of `READ_BY`). */
export function stateChanged(readBy: number = EVERY_PART): void {
  changes++;
  if ((readBy & READ_BY.hostPages) !== 0) partChanges[0]!++;
  if ((readBy & READ_BY.windows) !== 0) partChanges[1]!++;
  if ((readBy & READ_BY.rest) !== 0) partChanges[2]!++;
}

/** The changes counted so far: the same number means nothing a whole check reads changed. */
export function stateGeneration(): number {
  return changes;
}

/**
 * The changes told of as read by any of `parts` (bits of `READ_BY`), counted so far: the same number
 * means nothing those parts read changed (each part's count only grows, so their sum stands only
 * while each does).
 */
export function partsGeneration(parts: number): number {
  let sum = 0;
  if ((parts & READ_BY.hostPages) !== 0) sum += partChanges[0]!;
  if ((parts & READ_BY.windows) !== 0) sum += partChanges[1]!;
  if ((parts & READ_BY.rest) !== 0) sum += partChanges[2]!;
  return sum;
}

/** Changes to the BARs' sets of frames to map or unmap (bar-set.ts), counted apart. */
let barSetChanges = 0;

/**
 * Counts a change to a BAR's set of frames (`BarSet`): read by a whole check's BAR loop
 * (`rangeset-not-empty`) only, which gives its last answer again while this count and what else it
 * reads stand.
 */
export function barSetChanged(): void {
  barSetChanges++;
}

/** The changes to BARs' sets counted so far. */
export function barSetGeneration(): number {
  return barSetChanges;
}
