/**
 * Traces vpci-fuzz found (shrunk reproducers), kept as regression tests once what they showed was
 * fixed. Each says what went wrong and replays with the scoped and the whole invariant checks.
 */
import { replayText } from '@vpci/replay';
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
});
