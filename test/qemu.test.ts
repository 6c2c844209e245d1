/**
 * Real guests: QEMU trace logs captured by scripts/capture-qemu-traces.sh (SeaBIOS alone, and a Debian
 * kernel under SeaBIOS and OVMF; see test/fixtures/qemu/README.md) are converted and replayed as the
 * hardware domain's accesses. The final BAR placement the engine reports must be what QEMU reports in
 * `info pci`, except where Xen ignored a write QEMU applied (an event in the report).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { convertQemuLog, parseInfoPci, replayText } from '@vpci/replay';
import { describe, expect, it } from 'vitest';
import { main as replayCli } from '../packages/replay/src/cli.js';

const fixtures = new URL('./fixtures/qemu/', import.meta.url);
const logs = readdirSync(fixtures)
  .filter((f) => /\.trace\.log(\.gz)?$/.test(f))
  .sort();

function readLog(file: string): string {
  const raw = readFileSync(new URL(file, fixtures));
  return (file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
}

describe('QEMU traces', () => {
  it('are there: SeaBIOS alone, and Linux under SeaBIOS and OVMF', () => {
    for (const name of ['seabios-testdev', 'seabios-linux', 'ovmf-linux']) {
      expect(logs.some((f) => f.startsWith(name))).toBe(true);
    }
  });

  it.each(logs)('%s: the final BAR placement is the one QEMU reports', (file) => {
    const name = file.replace(/\.trace\.log(\.gz)?$/, '');
    const info = new URL(`${name}.info-pci.txt`, fixtures);
    expect(existsSync(info)).toBe(true);
    const converted = convertQemuLog(readLog(file).split('\n'), { name: file });
    const report = replayText(`${converted.trace.join('\n')}\n`, file);
    expect(report.error).toBeNull();
    const ignored = new Set(
      report.events
        .filter((e) => e.kind === 'bar-write-ignored')
        .map((e) => `${String(e.sbdf)} ${String(e.bar)}`),
    );
    const expected = parseInfoPci(readFileSync(info, 'utf8'));
    let compared = 0;
    for (const [sbdf, bars] of expected) {
      const device = report.devices.find((d) => d.sbdf === sbdf);
      expect(device, `${sbdf} in the report`).toBeDefined();
      for (const [index, bar] of bars) {
        if (ignored.has(`${sbdf} ${index}`)) continue;
        const mine = device!.bars.find((b) => b.index === index);
        expect(mine, `${sbdf} BAR${index}`).toBeDefined();
        expect(`${sbdf} BAR${index} ${mine!.addr}`).toBe(`${sbdf} BAR${index} 0x${bar.addr.toString(16)}`);
        expect(mine!.type === 'io').toBe(bar.kind === 'io');
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(5);
    // The guest turned memory decoding on: the engine mapped the BARs, identity, for the hardware domain,
    // with no invariant broken.
    const dom0 = report.domains.find((d) => d.id === 0)!;
    expect(dom0.mappedFrames).toBeGreaterThan(0);
    expect(report.violations).toEqual([]);
    // Under Linux, the NVMe and virtio-net drivers enabled MSI-X: the table and PBA pages are holes.
    if (name.endsWith('linux')) {
      for (const id of ['0x10', '0x1000']) {
        const device = report.devices.find((d) => d.deviceId === id && d.msix !== null);
        expect(device?.msix?.enabled, `MSI-X of device ${id}`).toBe(true);
        const reasons = device!.bars.flatMap((b) => b.holes.map((h) => h.reason));
        expect(reasons).toContain('msix-table');
      }
    }
  });

  it('a malformed log line is reported with the log line, exit 2', async () => {
    const file = new URL('seabios-testdev.trace.log', fixtures).pathname;
    const lines = readLog('seabios-testdev.trace.log').split('\n');
    lines[9] = 'pci_cfg_read mch 00:00.0 @0x0 => 0x8086';
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const bad = join(mkdtempSync(join(tmpdir(), 'vpci-qemu-')), 'bad.log');
    writeFileSync(bad, lines.join('\n'));
    let stderr = '';
    const status = await replayCli(['--qemu', bad], {
      stdout: { write: () => true },
      stderr: { write: (t: string) => (stderr += t), isTTY: false },
    });
    expect(status).toBe(2);
    expect(stderr).toContain(`${bad}:10: a pci_cfg_read line not in QEMU's format`);
    expect(existsSync(file)).toBe(true);
  });
});
