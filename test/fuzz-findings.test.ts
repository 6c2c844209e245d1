/**
 * Traces vpci-fuzz found (shrunk reproducers), kept as regression tests once what they showed was
 * fixed. Each says what went wrong and replays with the scoped and the whole invariant checks.
 */
import { replayText, TraceReplay } from '@vpci/replay';
import { describe, expect, it } from 'vitest';

describe('vpci-fuzz findings', () => {
  it('a leftover BAR rangeset that grows is seen by the scoped check on the line it grows', () => {
    // xen profile: Xen's modify_bars (header.c) leaves a BAR's rangeset filled when it fails (G1). The
    // guest sizes BAR0 (all-ones) and turns decoding on: the set that held c0004-c0007 gains the
    // frames of the probe address, ffffc-fffff, a new rangeset-not-empty violation. The device
    // snapshot recorded only whether the set was empty, so the scoped check skipped the line and
    // saw the violation a line late, when another device shared the page (seed 20261121).
    const trace = [
      '{"event":"host","profile":"xen","hardwareVcpus":1}',
      '{"event":"device","sbdf":"0000:01:02.0","bars":[{"type":"mem32","size":16384,"addr":3221274624}]}',
      '{"event":"boot"}',
      '{"event":"domain","id":1,"vcpus":1}',
      '{"event":"domain","id":2,"vcpus":1}',
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":16,"addr":3221225472}]}',
      '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":16384,"addr":3221241856},{"type":"mem32","size":16,"addr":3221258240}]}',
      '{"event":"assign","sbdf":"0000:01:01.0","domain":1}',
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":20,"size":1,"value":16}',
      // Found as a 4-byte write at reg 1 (0x72 into the command register); Xen's vpci_access_allowed
      // drops a misaligned access, so the trace writes that byte aligned.
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":4,"size":1,"value":114}',
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":16,"size":4,"value":4294967295}',
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":4,"size":2,"value":6}',
      '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":16,"size":4,"value":4294967295}',
    ].join('\n');
    const scoped = replayText(trace, 'grow.jsonl');
    const full = replayText(trace, 'grow.jsonl', { invariantChecks: 'full' });
    expect(scoped.violations).toEqual(full.violations);
    expect(scoped.violations.map((v) => [v.line, v.kind, v.frames])).toEqual([
      [10, 'rangeset-not-empty', '0000:01:01.0:BAR0 { c0004-c0007 }'],
      [12, 'rangeset-not-empty', '0000:01:01.0:BAR0 { c0004-c0007, ffffc-fffff }'],
    ]);
  });

  it('a device unplugged after it was quarantined leaves the host-page listing of the scoped check', () => {
    // Found by the 1,000,000-step campaign (seed 1, case 43045). 01:01.0 goes to a guest and back,
    // which under Xen's default quarantine (deassign_device) leaves it with dom_io; it is then
    // unplugged. The whole check after the unplug looked at no mapping, so it never asked for the
    // machine's listing of devices' host pages, and the next scoped check read the stale listing: a
    // removed device with no domain, and an internal error instead of a replay.
    const trace = [
      '{"event":"host","profile":"hardened","hardwareVcpus":1}',
      '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":16384,"addr":3221225472},{"type":"mem32","size":16,"addr":3221241856}]}',
      '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":16,"addr":3221241872}]}',
      '{"event":"boot"}',
      '{"event":"domain","id":1,"vcpus":1}',
      '{"event":"domain","id":2,"vcpus":1}',
      '{"event":"assign","sbdf":"0000:01:01.0","domain":1}',
      '{"event":"deassign","sbdf":"0000:01:01.0"}',
      '{"event":"assign","sbdf":"0000:01:00.0","domain":1}',
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":4,"size":2,"value":6}',
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":4,"size":2,"value":4}',
      '{"event":"unplug","sbdf":"0000:01:01.0"}',
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":4,"size":2,"value":6}',
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":4,"size":2,"value":4}',
    ].join('\n');
    const scoped = replayText(trace, 'unplugged.jsonl');
    const full = replayText(trace, 'unplugged.jsonl', { invariantChecks: 'full' });
    expect(scoped.error).toBeNull();
    expect(full.error).toBeNull();
    expect(scoped.violations).toEqual(full.violations);
    expect(scoped.violations).toEqual([]); // hardened
  });
  it.each(['xen', 'hardened'])(
    'a p2m run split away from the frames a line wrote is renamed by the scoped check as by the whole (%s)',
    (profile) => {
      // Found by the SR-IOV campaign (xen, seed 3, case 2226). Under xen dom0 resizes 01:01.0's BAR0
      // with ReBAR (rebar.c rebar_ctrl_write, decoding still off), turns decoding on and hands the
      // device to d1 (its mappings stay in dom0's p2m: unexplained, 1,024 pages from 0xc0000 as one
      // extent of two 2 MiB leaves). 01:00.0's BAR0 (page 0xc0000) is then mapped, which shatters the
      // first 2 MiB leaf, and its all-ones probe while mapped is ignored (header.c bar_write, "ignored
      // BAR write while mapped"). The p2m now holds the run as 0xc0001-0xc01ff (4 KiB leaves) and
      // 0xc0200-0xc03ff (a 2 MiB leaf): two extents, so two unexplained pieces, the far one named
      // from 0xc0200 although no frame near it was written. The scoped check looked only at the
      // extents beside page 0xc0000 and missed the far piece's new name.
      const lines = [
        `{"event":"host","profile":"${profile}","hardwareVcpus":1}`,
        '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":32,"addr":3221225472}],"msix":{"entries":1,"table":{"bar":0,"offset":0},"pba":{"bar":0,"offset":16}}}',
        '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":1048576,"addr":3222274048},{"type":"mem32","size":2097152,"addr":3223322624}],"rebar":[{"bar":0,"sizes":[1048576,2097152,4194304,8388608]}]}',
        '{"event":"boot"}',
        '{"event":"domain","id":1,"vcpus":1}',
        '{"event":"domain","id":2,"vcpus":1}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:01.0","reg":264,"size":4,"value":256}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:01.0","reg":4,"size":2,"value":6}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":0,"size":1,"value":0}',
        '{"event":"assign","sbdf":"0000:01:01.0","domain":1}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":4,"size":2,"value":6}',
        '{"event":"write","vcpu":"d0v0","sbdf":"0000:01:00.0","reg":16,"size":4,"value":4294967295}',
      ];
      const scoped = new TraceReplay('split-run.jsonl');
      const full = new TraceReplay('split-run.jsonl', { invariantChecks: 'full' });
      const seen = (replay: TraceReplay) =>
        replay.replayer.violations.map((v) => `${v.line} ${JSON.stringify(v.violation)}`);
      // Compared after every line, as vpci-fuzz does (a replay's final whole check would hide a late one).
      for (const [i, line] of lines.entries()) {
        expect(scoped.feed(line), `line ${i + 1}`).toBe(true);
        expect(full.feed(line), `line ${i + 1}`).toBe(true);
        expect(seen(scoped), `after line ${i + 1}`).toEqual(seen(full));
      }
      const unexplained = scoped.replayer.violations.flatMap(({ line, violation: v }) =>
        v.kind === 'unexplained-mapping' ? [[line, v.domain, v.gfn, v.count]] : [],
      );
      if (profile === 'hardened') expect(scoped.replayer.violations).toEqual([]);
      else
        expect(unexplained).toEqual([
          [10, 0, 0xc0000, 1024],
          [12, 0, 0xc0001, 511],
          [12, 0, 0xc0200, 512],
        ]);
    },
  );
});
