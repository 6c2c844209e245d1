/**
 * The p2m types Xen records in each guest-frame entry (xen/arch/x86/include/asm/p2m.h, `p2m_type_t`)
 * and the type classes its MMIO paths test.
 */
import { InvalidArgumentError } from './errors.js';

/**
 * The type of a p2m entry. Xen's numeric value follows each name.
 * - `ram_rw` (0): normal guest RAM, read/write. Also what a grant-table or shared-info frame the guest
 *   placed with `XENMEM_add_to_physmap` reads as.
 * - `invalid` (1): nothing mapped.
 * - `ram_logdirty` (2): RAM made read-only for dirty-page tracking.
 * - `ram_ro` (3): read-only RAM; writes are dropped.
 * - `mmio_dm` (4): emulated; accesses go to the device model. An unmapped frame reads back as this.
 * - `mmio_direct` (5): real device MMIO mapped straight through.
 * - `populate_on_demand` (6): placeholder for RAM not allocated yet.
 * - `grant_map_rw` (7): another domain's page mapped read/write through a grant.
 * - `grant_map_ro` (8): another domain's page mapped read-only through a grant.
 * - `ram_paging_out` (9): RAM being paged out.
 * - `ram_paged` (10): RAM paged out.
 * - `ram_paging_in` (11): RAM being paged back in.
 * - `ram_shared` (12): a shared (copy-on-write) page.
 * - `ram_broken` (13): a frame that failed in hardware.
 * - `map_foreign` (14): a page of a foreign domain mapped by a privileged domain.
 * - `ioreq_server` (15): RAM whose writes go to an ioreq server.
 */
export type P2mType =
  | 'ram_rw'
  | 'invalid'
  | 'ram_logdirty'
  | 'ram_ro'
  | 'mmio_dm'
  | 'mmio_direct'
  | 'populate_on_demand'
  | 'grant_map_rw'
  | 'grant_map_ro'
  | 'ram_paging_out'
  | 'ram_paged'
  | 'ram_paging_in'
  | 'ram_shared'
  | 'ram_broken'
  | 'map_foreign'
  | 'ioreq_server';

/** Every p2m type, in Xen's numeric order (the index is Xen's value). */
export const P2M_TYPES: readonly P2mType[] = Object.freeze([
  'ram_rw',
  'invalid',
  'ram_logdirty',
  'ram_ro',
  'mmio_dm',
  'mmio_direct',
  'populate_on_demand',
  'grant_map_rw',
  'grant_map_ro',
  'ram_paging_out',
  'ram_paged',
  'ram_paging_in',
  'ram_shared',
  'ram_broken',
  'map_foreign',
  'ioreq_server',
] as const);

/** True if `value` is a p2m type name. */
export function isP2mType(value: unknown): value is P2mType {
  return typeof value === 'string' && (P2M_TYPES as readonly string[]).includes(value);
}

/** Throws unless `value` is a p2m type name. */
export function checkP2mType(argument: string, value: unknown): asserts value is P2mType {
  if (!isP2mType(value)) {
    throw new InvalidArgumentError(argument, value, 'a p2m type such as "ram_rw" or "mmio_direct"');
  }
}

/** Xen's numeric value of a p2m type (0 … 15). */
export function p2mTypeCode(type: P2mType): number {
  checkP2mType('type', type);
  return P2M_TYPES.indexOf(type);
}

const RAM: ReadonlySet<P2mType> = new Set<P2mType>([
  'ram_rw',
  'ram_logdirty',
  'ram_ro',
  'ram_paging_out',
  'ram_paged',
  'ram_paging_in',
  'ram_shared',
  'ioreq_server',
]);
const HOLE: ReadonlySet<P2mType> = new Set<P2mType>(['mmio_dm', 'invalid', 'ram_paging_in', 'ram_paged']);
const GRANT: ReadonlySet<P2mType> = new Set<P2mType>(['grant_map_rw', 'grant_map_ro']);
const MMIO: ReadonlySet<P2mType> = new Set<P2mType>(['mmio_dm', 'mmio_direct']);
const SPECIAL: ReadonlySet<P2mType> = new Set<P2mType>([
  'grant_map_rw',
  'grant_map_ro',
  'map_foreign',
  'mmio_direct',
]);
const READONLY: ReadonlySet<P2mType> = new Set<P2mType>([
  'ram_logdirty',
  'ram_ro',
  'grant_map_ro',
  'ram_shared',
]);

function member(set: ReadonlySet<P2mType>, type: P2mType): boolean {
  checkP2mType('type', type);
  return set.has(type);
}

/** RAM that maps a real machine frame of the domain (`p2m_is_ram`): the ram_* types and ioreq_server. */
export function isRam(type: P2mType): boolean {
  return member(RAM, type);
}

/**
 * A hole that may be replaced by a new mapping (`p2m_is_hole`): mmio_dm, invalid, ram_paging_in,
 * ram_paged.
 */
export function isHole(type: P2mType): boolean {
  return member(HOLE, type);
}

/** A grant mapping (`p2m_is_grant`): grant_map_rw, grant_map_ro. */
export function isGrant(type: P2mType): boolean {
  return member(GRANT, type);
}

/** MMIO (`p2m_is_mmio`): mmio_dm, mmio_direct. */
export function isMmio(type: P2mType): boolean {
  return member(MMIO, type);
}

/**
 * Made and removed only through dedicated calls (`p2m_is_special`): the grant types, map_foreign and
 * mmio_direct.
 */
export function isSpecial(type: P2mType): boolean {
  return member(SPECIAL, type);
}

/** Populate-on-demand (`p2m_is_pod`). */
export function isPod(type: P2mType): boolean {
  checkP2mType('type', type);
  return type === 'populate_on_demand';
}

/** A foreign mapping (`p2m_is_foreign`). */
export function isForeign(type: P2mType): boolean {
  checkP2mType('type', type);
  return type === 'map_foreign';
}

/** Read-only types, whose leaves never allow writes (`p2m_is_readonly`). */
export function isReadonly(type: P2mType): boolean {
  return member(READONLY, type);
}

/** Any kind of RAM, the domain's own or another's (`p2m_is_any_ram`): RAM, grants and map_foreign. */
export function isAnyRam(type: P2mType): boolean {
  checkP2mType('type', type);
  return RAM.has(type) || GRANT.has(type) || type === 'map_foreign';
}
