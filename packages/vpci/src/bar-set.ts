/**
 * A BAR's set of guest frames still to map or unmap (`Bar.mem`, Xen's `bar->mem`): a `RangeSet` that
 * counts every change made through it (`barSetChanged`, state-generation.ts), and its making, so that
 * a whole check may give its last answer on the BARs' sets (`rangeset-not-empty`) again while the
 * count stands. Every set a BAR holds is made here (header.ts, sriov.ts, vf-bars.ts), and the engine
 * changes one only through these methods (`limit` changes no frame; a plain set's `swap` with a
 * `BarSet` would change it uncounted: the engine swaps no BAR's set).
 */
import type { Gfn } from '@vpci/p2m';
import {
  type ClaimResult,
  type ConsumeResult,
  type ConsumeStep,
  type Errno,
  RangeSet,
  type RangeSetOptions,
  type Result,
} from '@vpci/rangeset';
import { barSetChanged } from './state-generation.js';

export class BarSet extends RangeSet<Gfn> {
  constructor(options: RangeSetOptions) {
    super(options);
    // Put in a BAR in place of the set it held (or none).
    barSetChanged();
  }

  override addRange(start: Gfn, end: Gfn): Result<'ENOMEM'> {
    barSetChanged();
    return super.addRange(start, end);
  }

  override removeRange(start: Gfn, end: Gfn): Result<'ENOMEM'> {
    barSetChanged();
    return super.removeRange(start, end);
  }

  override addSingleton(value: Gfn): Result<'ENOMEM'> {
    barSetChanged();
    return super.addSingleton(value);
  }

  override removeSingleton(value: Gfn): Result<'ENOMEM'> {
    barSetChanged();
    return super.removeSingleton(value);
  }

  override claimRange(size: number): ClaimResult<Gfn> {
    barSetChanged();
    return super.claimRange(size);
  }

  override purge(): void {
    barSetChanged();
    super.purge();
  }

  override swap(other: RangeSet<Gfn>): void {
    barSetChanged();
    super.swap(other);
  }

  override merge(other: RangeSet<Gfn>): Result<'ENOMEM'> {
    barSetChanged();
    return super.merge(other);
  }

  override subtract(other: RangeSet<Gfn>): Result<'ENOMEM'> {
    barSetChanged();
    return super.subtract(other);
  }

  override consumeRanges<C extends Errno = never>(
    callback: (start: Gfn, end: Gfn) => ConsumeStep<C>,
  ): ConsumeResult<C> {
    barSetChanged();
    return super.consumeRanges(callback);
  }
}
