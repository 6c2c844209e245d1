/**
 * The picture of a replayed QEMU log (test/fixtures/qemu/pc-linux: two PCI-to-PCI bridges, NVMe and
 * virtio-net with MSI-X): a bridge's memory windows are drawn in the host column and never as BARs,
 * and a PBA the log never showed gets no page of its own.
 */
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { pictureScript, renderSvg } from './picture.js';
import { convertQemuLog } from './qemu.js';
import { qemuLogText } from './qemu-log.js';
import { replayQemuConversion } from './qemu-oracle.js';
import { reportJson } from './report.js';

const log = new URL('../../../test/fixtures/qemu/pc-linux.trace.log.gz', import.meta.url);
const report = replayQemuConversion(convertQemuLog(qemuLogText(readFileSync(log)).split('\n')), 'pc-linux');

describe('the picture of a QEMU log', () => {
  it('draws the bridges’ memory windows in the host column, and no BAR2-5 of theirs', () => {
    const svg = renderSvg(report);
    for (const bridge of ['0000:00:05.0', '0000:01:02.0']) {
      for (const kind of ['memory', 'prefetchable'])
        expect(svg).toContain(`data-item="d0:window:${bridge}:${kind}"`);
      for (const bar of [2, 3, 4, 5]) expect(svg).not.toContain(`d0:bar:${bridge}:${bar}:`);
    }
    expect(svg).toContain('memory window (QEMU logs)');
  });

  it('marks the MSI-X table page, and no page for a PBA nobody read', () => {
    const svg = renderSvg(report);
    expect(svg).toContain('data-item="d0:msix:0000:00:06.0:table:h"');
    expect(svg).not.toContain('d0:msix:0000:00:06.0:pba');
  });

  it('is what the HTML page’s picture script draws, run alone', () => {
    const alone = runInNewContext(
      `${pictureScript()}\nconst scene = PictureEngine.buildScene(JSON.parse(json));\n` +
        'PictureEngine.renderSceneSvg(scene, PictureEngine.wholeView(scene), { chrome: true, defs: true, clip: false });',
      { json: reportJson(report) },
    ) as string;
    expect(alone).toBe(renderSvg(report));
  });
});
