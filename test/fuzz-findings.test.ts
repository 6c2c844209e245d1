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
      '{"event":"write","vcpu":"d1v0","sbdf":"0000:00:00.0","reg":1,"size":4,"value":1912602624}',
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
});
