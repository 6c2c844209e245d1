/**
 * A small replay kept for the life of the process, so that a replay's optimised code outlives the
 * replay. V8 gives the instances of a class the map that the constructor's stores reach from the
 * class's initial map, and that map (with the field types recorded on it) is held only by objects
 * that have it: the transition from the initial map is weak. When a replay dies in a full GC while no
 * other replay is alive (a library user's next replay, or the bench's, made after a full GC), the
 * maps of every class of the reader, the replayer and the engine die with it, and V8 throws away the
 * optimised code that checks them and compiles it again for the next replay: 100–250 ms of CPU a
 * replay on V8's threads (DESIGN.md, "Benchmark figures", branch `recompile`). A replay of a short
 * trace, made when the second replay is and never dropped, holds an instance of each class a replay's
 * set-up and write lines make, so the maps and field types are the same for every later replay.
 */
import type { ReplayOptions } from './replayer.js';

/** What the keeper needs of a replay (`TraceReplay`, which this module does not import). */
export interface ByteLineReplay {
  /** `TraceReplay.feedLine`: where the next line starts, or -1 on an error. */
  feedLine(bytes: Uint8Array, from: number, to: number): number;
  /** The error that stopped the replay. */
  readonly error: { readonly message: string } | undefined;
}

/** A config write line of the keeper's trace. */
const write = (vcpu: string, sbdf: string, reg: number, size: number, value: number): string =>
  `{"event":"write","vcpu":"${vcpu}","sbdf":"${sbdf}","reg":${reg},"size":${size},"value":${value}}`;

/**
 * A device at each owner (the hardware domain's at its physical address, a guest's at its virtual
 * one), each reprogrammed (decoding off, its BARs sized and placed, MSI-X enabled, decoding on: an
 * unmap and a map) and then driven twice (INTx, MSI-X mask, status, interrupt line: inert writes,
 * the second time through the kept key slots), as the replay bench's workload and a boot's trace.
 */
function keeperTrace(): string {
  const lines = [
    '{"event":"host","profile":"xen"}',
    ...['0000:01:00.0', '0000:01:01.0'].map(
      (sbdf, i) =>
        `{"event":"device","sbdf":"${sbdf}","bars":[{"type":"mem32","size":"0x20000","addr":"0x${(0xc000_0000 + i * 0x10_0000).toString(16)}"},null,{"type":"mem64","size":"0x80000","addr":"0x${(0x40 + i).toString(16)}80000000","prefetchable":true}],"msix":{"entries":16,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":2048}}}`,
    ),
    '{"event":"boot"}',
    '{"event":"domain","id":1}',
    '{"event":"assign","sbdf":"0000:01:01.0","domain":1}',
  ];
  const owners = [
    { vcpu: 'd0v0', sbdf: '0000:01:00.0', bar0: 0xc000_0000, bar2High: 0x40 },
    { vcpu: 'd1v0', sbdf: '0000:00:00.0', bar0: 0xd000_0000, bar2High: 0x1041 },
  ];
  for (const { vcpu, sbdf, bar0, bar2High } of owners)
    lines.push(
      write(vcpu, sbdf, 0x04, 2, 0x0000),
      write(vcpu, sbdf, 0x10, 4, 0xffff_ffff),
      write(vcpu, sbdf, 0x10, 4, bar0),
      write(vcpu, sbdf, 0x18, 4, 0xffff_ffff),
      write(vcpu, sbdf, 0x1c, 4, 0xffff_ffff),
      write(vcpu, sbdf, 0x18, 4, 0x8000_0000),
      write(vcpu, sbdf, 0x1c, 4, bar2High),
      write(vcpu, sbdf, 0x0c, 1, 0x10),
      write(vcpu, sbdf, 0x42, 2, 0x8000),
      write(vcpu, sbdf, 0x04, 2, 0x0006),
    );
  for (let visit = 0; visit < 2; visit++)
    for (const { vcpu, sbdf } of owners)
      lines.push(
        write(vcpu, sbdf, 0x04, 2, 0x0406),
        write(vcpu, sbdf, 0x42, 2, 0xc000),
        write(vcpu, sbdf, 0x06, 2, 0xf900),
        write(vcpu, sbdf, 0x3c, 1, 0x0b),
      );
  return `${lines.join('\n')}\n`;
}

/** Replays made in the process, the keeper included. */
let replaysMade = 0;
/** The keeper (never read: it is kept only for its objects' maps). */
let keeper: ByteLineReplay | undefined;

/**
 * Called by every new replay: the second of the process makes the keeper with `make` (whose replay
 * calls this again, as the third). Not the first: a process that replays one trace (the CLI) has no
 * later replay to keep code for, and making the keeper cost it about 30 ms of CPU time. The
 * keeper's checks are the default scoped ones: an unchecked replay's objects have the same shapes
 * (an unchecked keeper as well changed no count of a pass's deoptimisations or compilations), and a
 * replay with whole checks lost no code either. The trace is fed from a `Buffer`, as a file's blocks
 * are (`fileLineBlocks`), so the byte reader meets the same kind of array. Throws if the trace
 * fails: a change of the trace format this module missed.
 */
export function keepShapes(make: (options: ReplayOptions) => ByteLineReplay): void {
  if (++replaysMade !== 2) return;
  keeper = make({ invariantChecks: 'scoped' });
  const bytes = Buffer.from(keeperTrace());
  for (let at = 0; at < bytes.length; ) {
    at = keeper.feedLine(bytes, at, bytes.length);
    if (at < 0) throw new Error(`the shape keeper's trace failed: ${keeper.error?.message}`);
  }
}
