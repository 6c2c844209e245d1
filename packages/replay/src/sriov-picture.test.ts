/**
 * SR-IOV in the picture and the HTML page: each VF BAR slot of a PF is one band over the range the PF
 * decodes for its NumVFs VFs (VF n's BAR at VF BAR + n × size, PCIe 9.3.3.14), with a tick at each
 * boundary between two VFs (drawn while they are at least 3 pixels apart, so a PF with thousands of
 * VFs costs what the view's height costs), and the page lists each PF with its VF BARs and VFs.
 */
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { STRESS_TRACES } from '../../../test/support/picture-traces.js';
import { renderHtml } from './html.js';
import {
  buildScene,
  pictureScript,
  renderSceneSvg,
  renderSvg,
  type Scene,
  tOf,
  type View,
  wholeView,
} from './picture.js';
import { replayText } from './run.js';
import { textReport } from './text-report.js';

const trace = (name: string): string => STRESS_TRACES.find(([n]) => n === name)![1];
const ticksIn = (svg: string, id: string): number[] => {
  const item = new RegExp(`<g data-item="${id}">([\\s\\S]*?)</g>`).exec(svg)?.[1] ?? '';
  return [...item.matchAll(/<line class="vf-tick" x1="[^"]*" y1="([^"]*)"/g)].map((m) => Number(m[1]));
};

describe('VF BAR arrays in the picture', () => {
  it('draws one band per VF BAR slot with NumVFs - 1 ticks at the VF boundaries (8 VFs)', () => {
    const report = replayText(trace('stress-sriov-8-vfs.jsonl'), 'pf8');
    const scene = buildScene(report);
    const shapes = scene.bands[0]!.host.filter((s) => s.kind === 'vf-bar');
    expect(shapes.map((s) => [s.start, s.end])).toEqual([
      [0xe090_0000n, 0xe090_0000n + 8n * 0x4000n],
      [0xe092_0000n, 0xe092_0000n + 8n * 0x4000n],
    ]);
    const svg = renderSvg(report);
    const ticks = ticksIn(svg, 'd0:vfbar:0000:01:00.0:0:h');
    expect(ticks.length).toBe(7);
    // Each tick where VF n's BAR starts: the axis position of 0xe0900000 + n × 16 KiB.
    const view = wholeView(scene);
    const top = Number(
      /data-item="d0:vfbar:0000:01:00.0:0:h"><rect class="vf-bar" x="[^"]*" y="([^"]*)"/.exec(svg)![1],
    );
    const at = (addr: bigint) =>
      top + (tOf(scene.intervals, addr) - tOf(scene.intervals, 0xe090_0000n)) * view.scale;
    ticks.forEach((y, i) => {
      expect(y).toBeCloseTo(at(0xe090_0000n + BigInt(i + 1) * 0x4000n), 1);
    });
    // The hardware domain sees its VF BARs where they are: the guest column has the same band.
    expect(scene.bands[0]!.guest.some((s) => s.id === 'd0:vfbar:0000:01:00.0:3:g')).toBe(true);
  });

  it('keeps the ticks of 256 VFs at least 3 pixels apart, and draws each one when zoomed in', () => {
    const report = replayText(trace('stress-sriov-256-vfs.jsonl'), 'pf256');
    const scene: Scene = buildScene(report);
    const whole = ticksIn(renderSvg(report), 'd0:vfbar:0000:81:00.0:0:h');
    expect(whole.length).toBeGreaterThan(0);
    expect(whole.length).toBeLessThan(255);
    for (let i = 1; i < whole.length; i++) expect(whole[i]! - whole[i - 1]!).toBeGreaterThanOrEqual(3);
    // Zoomed so the array's 16 MiB fill 2,560 pixels: 10 pixels per VF, every tick drawn.
    const t0 = tOf(scene.intervals, 0x38_0010_0000n);
    const t1 = tOf(scene.intervals, 0x38_0110_0000n);
    const view: View = { top: t0, scale: 2560 / (t1 - t0), height: 2560 };
    const zoomed = ticksIn(
      renderSceneSvg(scene, view, { chrome: false, defs: false, clip: true }),
      'd0:vfbar:0000:81:00.0:0:h',
    );
    expect(zoomed.length).toBe(255);
  });

  it('lists each PF with its capability and VF BARs in the HTML page, and the arrays among the BARs', () => {
    const html = renderHtml(replayText(trace('stress-sriov-8-vfs.jsonl'), 'pf8'));
    expect(html).toContain('SR-IOV physical functions and their VFs');
    expect(html).toContain('SR-IOV at 0x100: TotalVFs 8, InitialVFs 8, NumVFs 8, VF Enable on, VF MSE on');
    expect(html).toContain(
      'VF BAR3 mem64 16 KiB each, VF 0 at 0xe0920000, NumVFs span 0xe0920000-0xe093ffff',
    );
    expect(html).toContain('0000:01:00.0 VF BAR0 mem32: 8 VFs × 16 KiB');
  });

  it('draws a VF BAR array whose VF MSE is off as an outline, without the device colour', () => {
    const text = trace('stress-sriov-8-vfs.jsonl').replace('"vfMemorySpace":true', '"vfMemorySpace":false');
    const scene = buildScene(replayText(text, 'pf8-off'));
    const shape = scene.bands[0]!.host.find((s) => s.id === 'd0:vfbar:0000:01:00.0:0:h')!;
    expect(shape.kind).toBe('vf-bar-off');
    expect(shape.fill).toBeNull();
  });

  it('draws the VFs the engine brings up: under their PF in its domain, as devices in their guests', () => {
    // examples/issue18-sriov-xen.jsonl: PF 81:00.0 with 8 VFs at 81:(0x10+n).0, VFs 0-1 given to d1,
    // VFs 2-3 to d2, VFs 4-7 left with dom0; VF MSE off at the end.
    const text = readFileSync(new URL('../../../examples/issue18-sriov-xen.jsonl', import.meta.url), 'utf8');
    const report = replayText(text, 'issue18-sriov-xen.jsonl');
    const scene = buildScene(report);
    const [d0, d1, d2] = scene.bands;
    // dom0: one array for VF BAR0 (8 × 16 KiB at 0xfa000000), no shape of its own for VFs 4-7.
    expect(d0!.host.filter((s) => s.kind === 'vf-bar-off').map((s) => [s.start, s.end])).toEqual([
      [0xfa00_0000n, 0xfa02_0000n],
    ]);
    expect(d0!.host.some((s) => s.id.startsWith('d0:bar:0000:81:1'))).toBe(false);
    // Each guest: its two VFs' BAR0s, labelled, their details naming the PF.
    expect(d1!.guest.filter((s) => s.kind === 'bar').map((s) => s.label)).toEqual([
      '0000:81:10.0 BAR0 16 KiB',
      '0000:81:11.0 BAR0 16 KiB',
    ]);
    expect(d2!.guest.find((s) => s.label === '0000:81:13.0 BAR0 16 KiB')?.details).toContain(
      'VF 3 of 0000:81:00.0',
    );
    // The text report lists the VFs under the PF with their owners.
    const lines = textReport(report).split('\n');
    const at = lines.findIndex((l) => l.includes('8 VFs on the machine:'));
    expect(lines.slice(at + 1, at + 9).map((l) => l.trim())).toEqual([
      'VF 0 0000:81:10.0, owner d1',
      'VF 1 0000:81:11.0, owner d1',
      'VF 2 0000:81:12.0, owner d2',
      'VF 3 0000:81:13.0, owner d2',
      'VF 4 0000:81:14.0, owner d0',
      'VF 5 0000:81:15.0, owner d0',
      'VF 6 0000:81:16.0, owner d0',
      'VF 7 0000:81:17.0, owner d0',
    ]);
  });

  it.each(['stress-sriov-8-vfs.jsonl', 'stress-sriov-256-vfs.jsonl'])(
    "%s: the HTML page's script, run alone, draws exactly what renderSvg draws (ticks included)",
    (name) => {
      const report = replayText(trace(name), name);
      const svg = runInNewContext(
        `${pictureScript()}\nconst scene = PictureEngine.buildScene(JSON.parse(json));\n` +
          'PictureEngine.renderSceneSvg(scene, PictureEngine.wholeView(scene), { chrome: true, defs: true, clip: false });',
        { json: JSON.stringify(report) },
      ) as string;
      expect(svg).toContain('class="vf-tick"');
      expect(svg).toBe(renderSvg(report));
    },
  );

  it('lists the first 16 VFs under their PF in the text report and counts the rest', () => {
    // VF Enable with NumVFs 20 brings up 20 VFs at 02:00.1 … 02:02.4 (First VF Offset 1, stride 1).
    const text = [
      '{"event":"host","profile":"xen"}',
      '{"event":"device","sbdf":"0000:02:00.0","sriov":{"totalVfs":20,"numVfs":20,"firstVfOffset":1,"vfStride":1,' +
        '"vfBars":[{"type":"mem32","size":"0x1000","addr":"0xd0000000"}]}}',
      '{"event":"boot"}',
      '{"event":"write","vcpu":"d0v0","sbdf":"02:00.0","reg":"0x108","size":2,"value":"0x1"}',
    ].join('\n');
    const report = replayText(text, 'pf20');
    expect(report.error).toBeNull();
    expect(report.devices[0]!.sriov?.vfs.length).toBe(20);
    const lines = textReport(report).split('\n');
    const at = lines.findIndex((l) => l.includes('20 VFs on the machine:'));
    expect(lines[at + 1]!.trim()).toBe('VF 0 0000:02:00.1, owner d0');
    expect(lines[at + 16]!.trim()).toBe('VF 15 0000:02:02.0, owner d0');
    expect(lines[at + 17]!.trim()).toBe('… 4 more VFs (see --json)');
    expect(lines.some((l) => l.includes('0000:02:02.4 [ffff:ffff] VF 19 of 0000:02:00.0'))).toBe(true);
  });
});
