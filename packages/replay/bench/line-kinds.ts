/**
 * The kind of each line of the bench's workload (writes-workload.ts), for the per-kind figures of
 * line-costs.ts and profile-kinds.ts: the write's place in its device's visit (a reprogramming's ten
 * writes or a running driver's four), whose device it is (the hardware domain's or a guest's), and
 * `+finish` when its vCPU has pending work to finish first (the map or unmap a decoding toggle left).
 */
import type { Write } from './writes-workload.js';

const REPROGRAM = ['cmd-off', 'bar0-probe', 'bar0-place', 'bar2lo-probe', 'bar2hi-probe'];
REPROGRAM.push('bar2lo-place', 'bar2hi-place', 'cache-line', 'msix-enable', 'cmd-on');
const RUNNING = ['cmd-keep', 'msix-mask', 'status', 'int-line'];

/**
 * The kinds of `all`, replayed in order after the set-up lines. Which vCPU has work
 * pending follows from the writes alone (a decoding toggle leaves some, the vCPU's next write
 * finishes it), so this walks the writes without replaying them.
 */
export function lineKinds(all: readonly Write[]): string[] {
  const kinds: string[] = [];
  const pending = new Set<number>();
  let visit: { device: Write['device']; index: number; reprogram: boolean } | undefined;
  for (const w of all) {
    if (visit === undefined || visit.device !== w.device || visit.index === (visit.reprogram ? 10 : 4))
      visit = { device: w.device, index: 0, reprogram: w.reg === 0x04 && w.value === 0 };
    const name = (visit.reprogram ? REPROGRAM : RUNNING)[visit.index++]!;
    const finish = pending.delete(w.device.owner);
    kinds.push(`${w.device.owner === 0 ? 'dom0' : 'domU'} ${name}${finish ? ' +finish' : ''}`);
    if (name === 'cmd-off' || name === 'cmd-on') pending.add(w.device.owner);
  }
  return kinds;
}
