/**
 * The enabled-BAR index `modifyBars` searches (packages/vpci/src/enabled-bars.ts) held to the walk it
 * stands for, on a machine as it stands: test/check-indexes.property.test.ts after every line of
 * random traces, test/sriov-index.property.test.ts after every SR-IOV step.
 */

import type { Machine } from '@vpci/vpci';
import { expect } from 'vitest';

const json = (value: unknown): string =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));

/**
 * The enabled BARs the index gives `modifyBars` for every domain, over all frames and over each BAR's
 * own, against the walk of Xen's `modify_bars` Step C: the domain's devices in `pdev_list` order,
 * the device that joined last first (Xen links devices in with `list_add`; then dom_xen's for the
 * hardware domain, the same way), each device's enabled BARs by slot.
 */
export function checkEnabledBars(machine: Machine): void {
  const index = machine.enabledBars!;
  for (const domain of machine.domains()) {
    if (domain.isPseudo) continue;
    const walk: { name: string; first: number; last: number }[] = [];
    for (const list of domain.isHardware
      ? [domain.pdevList(), machine.domXen.pdevList()]
      : [domain.pdevList()]) {
      for (const device of list) {
        for (const bar of device.vpci?.bars ?? []) {
          if (!bar.enabled) continue;
          const [first, last] = bar.guestFrames();
          walk.push({ name: `${device.name}/${bar.index}`, first, last });
        }
      }
    }
    const queries: [number, number][][] = [
      [[0, 2 ** 53]],
      ...walk.map((b): [number, number][] => [[b.first, b.last]]),
    ];
    for (const ranges of queries) {
      const expected = walk
        .filter((b) => ranges.some(([first, last]) => b.first <= last && first <= b.last))
        .map((b) => b.name);
      const found = index
        .enabledMeeting(machine, domain, ranges)
        .map((e) => `${e.device.name}/${e.bar.index}`);
      expect(found, `d${domain.id} ${json(ranges)}`).toEqual(expected);
    }
    // Asked by a device (modifyBars' Step C does, with its BARs' sets): its last answer is given
    // again while no BAR of the domain moved; asked after every line, so an answer kept from an
    // earlier line is held to the walk of the machine as it stands now.
    for (const list of domain.isHardware
      ? [domain.pdevList(), machine.domXen.pdevList()]
      : [domain.pdevList()]) {
      for (const asker of list) {
        const ranges = (asker.vpci?.bars ?? [])
          .filter((bar) => bar.size > 0n)
          .map((bar): [number, number] => [bar.guestFrames()[0], bar.guestFrames()[1]]);
        const expected = walk
          .filter((b) => ranges.some(([first, last]) => b.first <= last && first <= b.last))
          .map((b) => b.name);
        const found = index
          .enabledMeeting(machine, domain, ranges, asker)
          .map((e) => `${e.device.name}/${e.bar.index}`);
        expect(found, `d${domain.id} asked by ${asker.name} ${json(ranges)}`).toEqual(expected);
      }
    }
    // Xen's count of `rangeset_overlaps_range` calls: every enabled BAR the walk meets, and those
    // up to a BAR's place when modify_bars fails part-way (dormant entries of disabled BARs not).
    expect(index.enabledCount(machine, domain), `d${domain.id} count`).toBe(walk.length);
    const all = index.enabledMeeting(machine, domain, [[0, 2 ** 53]]);
    for (const [at, entry] of all.entries())
      expect(
        index.enabledUpTo(machine, domain, entry.order, () => true),
        `d${domain.id} up to ${at}`,
      ).toBe(at + 1);
  }
}
