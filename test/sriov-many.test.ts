/**
 * An SR-IOV PF with as many VFs as TotalVFs can say (0xffff, PCIe 9.3.3.6: a 16-bit field): VF
 * Enable, VF MSE on and off, VF Enable off and the PF's removal do work in proportion to the VFs.
 * The work is counted (test/support/work-counter.ts: every block of the packages entered), never
 * timed: per VF, 65,535 VFs may cost at most twice what 1,024 do (a log factor: 16 / 10 bits),
 * where work growing with the square of the VFs (a walk over every device per VF, as the engine had)
 * would cost 64 times as much.
 *
 * Routing IDs (PCIe 9.3.3.10–11): VF n of the PF at 01:00.0 (routing ID 0x100) with First VF Offset
 * 1 and VF Stride 1 is at 0x101 + n, so VFs 0 … 0xfefe (65,279 of them) fit below 0xffff and the
 * last 256 of 65,535 fall past bus 255: a `vf-not-added` event says so, with their count.
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants, Machine, type Profile } from '../packages/vpci/src/index.js';
import { WorkCounter } from './support/work-counter.js';

const CTRL = 0x108;
const VFE = 0x1;
const MSE = 0x8;

interface Work {
  readonly enable: number;
  readonly map: number;
  readonly unmap: number;
  readonly disable: number;
  readonly removePf: number;
}

/** The work of each step for a PF asking for `numVfs` VFs of one 16 KiB 64-bit VF BAR. */
async function workFor(counter: WorkCounter, profile: Profile, numVfs: number): Promise<Work> {
  const machine = new Machine({ profile });
  machine.addDevice({
    sbdf: '0000:01:00.0',
    sriov: {
      totalVfs: 0xffff,
      numVfs,
      firstVfOffset: 1,
      vfStride: 1,
      vfBars: [{ type: 'mem64', size: 0x4000n, addr: 0x40_0000_0000n }, null],
    },
  });
  machine.boot();
  const vcpu = machine.hardwareDomain.vcpus[0]!;
  const control = (value: number) => () => {
    machine.configWrite(vcpu, '01:00.0', CTRL, 2, value);
    machine.finishPending(vcpu);
  };
  const vfs = Math.min(numVfs, 0xffff - 0x100);
  const enable = await counter.count(control(VFE));
  expect(machine.devices().length).toBe(1 + vfs);
  const map = await counter.count(control(VFE | MSE));
  if (profile === 'hardened') {
    // One range for all the VFs: every VF's BAR mapped, identity, in dom0's p2m.
    const frames = [...machine.hardwareDomain.p2m.extents()].reduce((sum, e) => sum + e.count, 0);
    expect(frames).toBe(vfs * 4);
    expect(checkInvariants(machine)).toEqual([]);
  }
  const unmap = await counter.count(control(VFE));
  const disable = await counter.count(control(0));
  expect(machine.devices().length).toBe(1);
  control(VFE | MSE)();
  const removePf = await counter.count(() => {
    expect(machine.removeDevice('01:00.0')).toEqual({ ok: true });
  });
  expect(machine.devices()).toEqual([]);
  return { enable, map, unmap, disable, removePf };
}

describe('65,535 VFs: enable, map, unmap, disable and PF removal bounded by the VFs', () => {
  // The xen profile at 16,384 VFs (its per-VF loop is the same code at any count), to keep the
  // suite's time down: the counter slows the engine several times.
  for (const [profile, numVfs] of [
    ['hardened', 0xffff],
    ['xen', 16_384],
  ] as const) {
    it(`${profile}: ${numVfs} VFs, per VF at most twice the work of 1,024 VFs`, async () => {
      const counter = new WorkCounter();
      await counter.start();
      try {
        const small = await workFor(counter, profile, 1024);
        const large = await workFor(counter, profile, numVfs);
        const vfsLarge = Math.min(numVfs, 0xffff - 0x100);
        for (const step of ['enable', 'map', 'unmap', 'disable', 'removePf'] as const) {
          const perVfSmall = small[step] / 1024;
          const perVfLarge = large[step] / vfsLarge;
          expect(
            perVfLarge,
            `${step}: ${large[step]} blocks for ${vfsLarge} VFs, ${small[step]} for 1,024`,
          ).toBeLessThanOrEqual(2 * perVfSmall);
        }
      } finally {
        await counter.stop();
      }
    }, 600_000);
  }
});
