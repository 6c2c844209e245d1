/**
 * Traces whose pictures are hard to lay out, for the layout tests of the memory map (unit and
 * browser): every example trace, and stress cases: many sub-page BARs in one page, six BARs of one
 * device of very different sizes, a 64 GiB BAR beside 4 KiB ones, long SBDFs, labels and trace name
 * (a hidden device, pages shared across domains), a guest with several devices, SR-IOV PFs with 8
 * and 256 VFs (VF BAR arrays), and the empty pictures.
 */
import { readdirSync, readFileSync } from 'node:fs';

const hex = (n: bigint | number): string => `0x${n.toString(16)}`;
const mem32 = (size: number, addr: number) => ({ type: 'mem32', size: hex(size), addr: hex(addr) });
const mem64 = (size: bigint, addr: bigint) => ({
  type: 'mem64',
  size: hex(size),
  addr: hex(addr),
  prefetchable: true,
});
/** A device line; decoding at boot unless `extra` says otherwise. */
const device = (sbdf: string, bars: unknown[], extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ event: 'device', sbdf, command: '0x0002', bars, ...extra });
const lines = (...list: string[]): string => `${list.join('\n')}\n`;

const GiB = 1n << 30n;

/** Four devices of six 128-byte BARs each, packed into one page, decoding in the hardware domain. */
function subPage(): string {
  const devices = [0, 1, 2, 3].map((d) =>
    device(
      `0000:0${d + 1}:00.0`,
      [0, 1, 2, 3, 4, 5].map((b) => mem32(0x80, 0xfe00_0000 + (d * 6 + b) * 0x80)),
    ),
  );
  return lines('{"event":"host","profile":"xen"}', ...devices, '{"event":"boot"}');
}

/** One device with a 16 B, a 4 KiB, a 1 MiB, a 64 GiB and a 256 MiB BAR and a 64 KiB ROM. */
function sixSizes(): string {
  return lines(
    '{"event":"host","profile":"xen"}',
    device(
      '0000:02:00.0',
      [
        mem32(0x10, 0xf000_0000),
        mem32(0x1000, 0xf000_1000),
        mem32(0x10_0000, 0xf010_0000),
        mem64(64n * GiB, 256n * GiB),
        null,
        mem32(0x1000_0000, 0xe000_0000),
      ],
      { rom: { size: '0x10000', addr: '0xf0200000', enabled: false } },
    ),
    '{"event":"boot"}',
  );
}

/** A 64 GiB BAR with 4 KiB BARs right after it and right before it, and more below 4 GiB. */
function hugeBesideSmall(): string {
  return lines(
    '{"event":"host","profile":"xen"}',
    device('0000:05:00.0', [
      mem64(64n * GiB, 256n * GiB),
      null,
      mem64(0x1000n, 320n * GiB),
      null,
      mem64(0x1000n, 320n * GiB + 0x1000n),
      null,
    ]),
    device('0000:06:00.0', [
      mem64(0x1000n, 256n * GiB - 0x1000n),
      null,
      mem32(0x1000, 0xf000_0000),
      mem32(0x1000, 0xf000_1000),
      mem32(0x1000, 0xf000_2000),
    ]),
    '{"event":"boot"}',
  );
}

/**
 * Long labels: SBDFs in high segments, a hidden device's six 32-byte BARs, and a guest's BAR in a
 * page shared with a BAR the hardware domain keeps (both sides get "shared with …" labels).
 */
function longLabels(): string {
  const write = (reg: string, size: number, value: string): string =>
    JSON.stringify({ event: 'write', vcpu: 'd7v0', sbdf: '00:00.0', reg, size, value });
  return lines(
    '{"event":"host","profile":"xen"}',
    device(
      'ffff:ff:1f.7',
      [0, 1, 2, 3, 4, 5].map((b) => mem32(0x20, 0xfd00_0000 + b * 0x20)),
      { hidden: true },
    ),
    device('fffe:fe:1e.0', [mem32(0x20, 0xfe00_0060), mem32(0x1000, 0xfe00_1000)], { command: '0x0000' }),
    device('fffd:fd:1d.0', [mem32(0x20, 0xfe00_0080), mem32(0x1000, 0xfe00_2000)]),
    '{"event":"boot"}',
    '{"event":"domain","id":7}',
    '{"event":"assign","sbdf":"fffe:fe:1e.0","domain":7}',
    write('0x10', 4, '0xd0000060'),
    write('0x14', 4, '0xd0001000'),
    write('0x04', 2, '0x0002'),
    '{"event":"run","vcpu":"d7v0"}',
  );
}

/**
 * A guest with four devices, each with a 1 MiB BAR holding its MSI-X table and PBA pages, a 16 KiB
 * BAR, and a 256-byte BAR in one host page shared by all four (so four guest pages map one machine
 * page), over a host memory map.
 */
function guestDevices(): string {
  const host =
    '{"event":"host","profile":"xen","e820":[{"addr":"0x0","size":"0x9f000","type":"ram"},' +
    '{"addr":"0x100000","size":"0x7ff00000","type":"ram"},{"addr":"0xfec00000","size":"0x1000","type":"reserved"}]}';
  const sbdfs = [3, 4, 5, 6].map((bus) => `0000:0${bus}:00.0`);
  const devices = sbdfs.map((sbdf, d) =>
    device(
      sbdf,
      [
        { ...mem64(0x10_0000n, BigInt(0xfa00_0000 + d * 0x20_0000)), prefetchable: false },
        null,
        mem32(0x4000, 0xf900_0000 + d * 0x1_0000),
        mem32(0x100, 0xf800_0000 + d * 0x100),
      ],
      {
        command: '0x0000',
        msix: { entries: 16, table: { bar: 0, offset: '0x2000' }, pba: { bar: 0, offset: '0x3000' } },
      },
    ),
  );
  const writes = sbdfs.flatMap((_sbdf, d) => {
    const write = (reg: string, size: number, value: number): string =>
      JSON.stringify({ event: 'write', vcpu: 'd1v0', sbdf: `00:0${d}.0`, reg, size, value: hex(value) });
    // Each guest address keeps the host page offset of the BAR, as Xen requires.
    return [
      write('0x10', 4, 0xe000_0000 + d * 0x20_0000),
      write('0x14', 4, 0),
      write('0x18', 4, 0xe100_0000 + d * 0x1_0000),
      write('0x1c', 4, 0xe200_0000 + d * 0x1000 + d * 0x100),
      write('0x04', 2, 0x0002),
    ];
  });
  return lines(
    host,
    ...devices,
    '{"event":"boot"}',
    '{"event":"domain","id":1}',
    ...sbdfs.map((sbdf) => JSON.stringify({ event: 'assign', sbdf, domain: 1 })),
    ...writes,
    '{"event":"run","vcpu":"d1v0"}',
  );
}

/**
 * SR-IOV physical functions with their VF BAR arrays enabled (VF Enable and VF MSE as firmware left
 * them): one of 8 VFs with a 16 KiB 32-bit VF BAR0 and a 16 KiB 64-bit VF BAR3, beside its own BARs,
 * and one of 256 VFs with 64 KiB 64-bit VF BARs (16 MiB per array: 256 ticks) next to a 4 KiB BAR.
 */
function sriovPfs(vfs: 8 | 256): string {
  const pf =
    vfs === 8
      ? device('0000:01:00.0', [mem32(0x2_0000, 0xe080_0000), null, null, mem32(0x4000, 0xe084_0000)], {
          sriov: {
            totalVfs: 8,
            numVfs: 8,
            firstVfOffset: 0x180,
            vfStride: 2,
            vfDeviceId: '0x10ca',
            vfEnable: true,
            vfMemorySpace: true,
            vfBars: [
              { type: 'mem32', size: '0x4000', addr: '0xe0900000' },
              null,
              null,
              { type: 'mem64', size: '0x4000', addr: '0xe0920000' },
            ],
          },
        })
      : device('0000:81:00.0', [mem64(0x1000n, 0x38_0000_0000n)], {
          sriov: {
            totalVfs: 256,
            numVfs: 256,
            firstVfOffset: 1,
            vfStride: 1,
            vfEnable: true,
            vfMemorySpace: true,
            vfBars: [
              { type: 'mem64', size: '0x10000', addr: '0x3800100000', prefetchable: true },
              null,
              { type: 'mem64', size: '0x10000', addr: '0x3801100000', prefetchable: true },
            ],
          },
        });
  return lines('{"event":"host","profile":"xen"}', pf, '{"event":"boot"}');
}

/** The stress traces by file name. */
export const STRESS_TRACES: readonly (readonly [string, string])[] = [
  ['stress-subpage.jsonl', subPage()],
  ['stress-six-sizes.jsonl', sixSizes()],
  ['stress-huge-beside-small.jsonl', hugeBesideSmall()],
  // The name is the title's: wider than the legend and the bands together.
  [
    'stress-long-labels-of-devices-in-high-segments-sharing-pages-across-domains-and-a-trace-name-wider-than-its-picture.jsonl',
    longLabels(),
  ],
  ['stress-guest-devices.jsonl', guestDevices()],
  ['stress-sriov-8-vfs.jsonl', sriovPfs(8)],
  ['stress-sriov-256-vfs.jsonl', sriovPfs(256)],
  ['empty.jsonl', lines('{"event":"host","profile":"hardened"}', '{"event":"boot"}')],
  ['no-machine.jsonl', ''],
];

/** Every example trace (examples/*.jsonl) by file name. */
export function exampleTraces(): [string, string][] {
  const dir = new URL('../../examples/', import.meta.url);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.jsonl'))
    .sort()
    .map((file) => [file, readFileSync(new URL(file, dir), 'utf8')]);
}
