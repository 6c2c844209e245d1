/**
 * The memory-map picture (picture.ts) and its HTML page (html.ts), from reports of small traces: the
 * SVG is well-formed XML and self-contained; every BAR is labelled; MSI-X pages, shared pages,
 * violations, gaps and the legend are there; the broken axis keeps a 4 KiB BAR readable next to a
 * 64 GiB one; connectors slant exactly for non-identity mappings; the output is the same for the same
 * report; the script the HTML page runs draws exactly what `renderSvg` draws; and the page embeds the
 * report so that no `</script>` in it can end the script.
 */
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { renderHtml } from './html.js';
import { pictureScript, renderSvg } from './picture.js';
import type { Report } from './report.js';
import { replayText } from './run.js';
import { humanSize } from './text-report.js';

const SEED_004 = readFileSync(
  new URL('../../../examples/seed-004-non-identity.jsonl', import.meta.url),
  'utf8',
);

/** Seed 002, second layout: two guests' 32-byte BAR2s in one host page (XSA-461), under xen. */
const SHARED = [
  '{"event":"host","profile":"xen","e820":[{"addr":"0x0","size":"0xa0000","type":"ram"},{"addr":"0xfed00000","size":"0x1000","type":"reserved"}]}',
  '{"event":"device","sbdf":"0000:01:00.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe800000"},{"type":"io","size":"0x100","addr":"0xc000"},{"type":"mem64","size":"0x20","addr":"0x7050000000","prefetchable":true}]}',
  '{"event":"device","sbdf":"0000:01:01.0","bars":[{"type":"mem32","size":"0x1000","addr":"0xfe801000"},{"type":"io","size":"0x100","addr":"0xc100"},{"type":"mem64","size":"0x20","addr":"0x7050000020","prefetchable":true}]}',
  '{"event":"boot"}',
  '{"event":"domain","id":1}',
  '{"event":"domain","id":2}',
  '{"event":"assign","sbdf":"0000:01:00.0","domain":1,"expect":"ok"}',
  '{"event":"assign","sbdf":"0000:01:01.0","domain":2,"expect":"ok"}',
  '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0xd0000000"}',
  '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x18","size":4,"value":"0xe000000c"}',
  '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x1c","size":4,"value":"0x0"}',
  '{"event":"write","vcpu":"d1v0","sbdf":"00:00.0","reg":"0x04","size":2,"value":"0x0002"}',
  '{"event":"write","vcpu":"d2v0","sbdf":"00:00.0","reg":"0x10","size":4,"value":"0xd0000000"}',
  '{"event":"write","vcpu":"d2v0","sbdf":"00:00.0","reg":"0x18","size":4,"value":"0xe0000020"}',
  '{"event":"write","vcpu":"d2v0","sbdf":"00:00.0","reg":"0x1c","size":4,"value":"0x0"}',
  '{"event":"write","vcpu":"d2v0","sbdf":"00:00.0","reg":"0x04","size":2,"value":"0x0002"}',
  '{"event":"run","vcpu":"d1v0"}',
  '{"event":"run","vcpu":"d2v0"}',
  '{"event":"assert","violation":{"kind":"subpage-shared","domain":1}}',
  '{"event":"assert","violation":{"kind":"subpage-shared","domain":2}}',
].join('\n');

/** A 64 GiB BAR at 256 GiB and a 4 KiB BAR below 4 GiB, decoding at boot in the hardware domain. */
const BIG_AND_SMALL = [
  '{"event":"host","profile":"xen"}',
  '{"event":"device","sbdf":"0000:05:00.0","command":"0x0002","bars":[{"type":"mem64","size":"0x1000000000","addr":"0x4000000000","prefetchable":true},null,{"type":"mem32","size":"0x1000","addr":"0xf0000000"}]}',
  '{"event":"boot"}',
  '{"event":"assert","noViolations":true}',
].join('\n');

const EMPTY = '{"event":"host","profile":"hardened"}\n{"event":"boot"}\n';

const CASES: [string, string][] = [
  ['seed-004-non-identity.jsonl', SEED_004],
  ['shared.jsonl', SHARED],
  ['big.jsonl', BIG_AND_SMALL],
  ['empty.jsonl', EMPTY],
  ['nothing.jsonl', ''],
];

const report = (name: string): Report => replayText(CASES.find(([n]) => n === name)![1], name);

/**
 * Why `text` is not well-formed XML, or null: one root element, tags that nest and match, quoted and
 * unique attributes, no `<` in text or attribute values, only the predefined and numeric entities.
 */
function xmlProblem(text: string): string | null {
  const entity = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)/;
  const open = /<([A-Za-z_:][-\w:.]*)((?:\s+[A-Za-z_:][-\w:.]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/y;
  const close = /<\/([A-Za-z_:][-\w:.]*)\s*>/y;
  const attribute = /([A-Za-z_:][-\w:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;
  const stack: string[] = [];
  let roots = 0;
  let i = text.startsWith('<?xml') ? text.indexOf('?>') + 2 : 0;
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = text.slice(i, lt < 0 ? text.length : lt);
    if (stack.length === 0 && chunk.trim() !== '') return `text outside the root at ${i}`;
    if (entity.test(chunk)) return `bad & in text at ${i}`;
    if (lt < 0) break;
    if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt);
      if (end < 0) return 'unclosed comment';
      i = end + 3;
      continue;
    }
    close.lastIndex = lt;
    const c = close.exec(text);
    if (c !== null) {
      const top = stack.pop();
      if (top !== c[1]) return `</${c[1]}> at ${lt} closes <${top ?? 'nothing'}>`;
      i = close.lastIndex;
      continue;
    }
    open.lastIndex = lt;
    const o = open.exec(text);
    if (o === null) return `bad tag at ${lt}: ${text.slice(lt, lt + 40)}`;
    const names = new Set<string>();
    for (const a of o[2]!.matchAll(attribute)) {
      if (names.has(a[1]!)) return `attribute ${a[1]} twice at ${lt}`;
      names.add(a[1]!);
      if (entity.test(a[2] ?? a[3] ?? '')) return `bad & in attribute ${a[1]} at ${lt}`;
    }
    if (stack.length === 0 && ++roots > 1) return `second root element at ${lt}`;
    if (o[3] !== '/') stack.push(o[1]!);
    i = open.lastIndex;
  }
  if (stack.length > 0) return `unclosed <${stack.at(-1)}>`;
  return roots === 1 ? null : 'no root element';
}

/** The `<g data-item="id">` elements' first shape, as attributes. */
function shapeOf(svg: string, id: string): Record<string, string> {
  const at = svg.indexOf(`data-item="${id}"`);
  expect(at, `no item ${id}`).toBeGreaterThan(0);
  const tag = /<(rect|polygon)\s([^>]*)\/>/.exec(svg.slice(at))!;
  return Object.fromEntries([...tag[2]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

/** Pixel heights of the rects of an item (its shapes are drawn once per column). */
function heightOf(svg: string, id: string): number {
  return Number(shapeOf(svg, id).height);
}

describe('the XML check itself', () => {
  it('accepts well-formed documents and names what is wrong with others', () => {
    expect(xmlProblem('<a x="1"><b/>t &amp; &#60;<c y=\'2\'></c></a>')).toBeNull();
    expect(xmlProblem('<a><b></a></b>')).toMatch(/closes/);
    expect(xmlProblem('<a>x & y</a>')).toMatch(/bad &/);
    expect(xmlProblem('<a x="1" x="2"/>')).toMatch(/twice/);
    expect(xmlProblem('<a/><b/>')).toMatch(/second root/);
    expect(xmlProblem('<a>')).toMatch(/unclosed/);
    expect(xmlProblem('<a x=1/>')).toMatch(/bad tag/);
  });
});

describe('renderSvg', () => {
  it.each(CASES.map(([name]) => name))('%s: well-formed, self-contained, titled, with the legend', (name) => {
    const r = report(name);
    const svg = renderSvg(r);
    expect(xmlProblem(svg)).toBeNull();
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    // Self-contained: nothing fetched (no external references, fonts, scripts or images).
    expect(svg).not.toMatch(/<script|<image|@import|@font-face|href=|url\((?!#)/);
    expect(svg).toContain(`${name} — profile ${r.machine?.profile ?? '-'} — status `);
    expect(svg).toContain(`>${r.status}</tspan>`);
    for (const text of [
      'Legend',
      'BAR, mapped (one colour per device)',
      'BAR, not mapped in its owner',
      'MSI-X table page (trapped by Xen)',
      'MSI-X PBA page (trapped by Xen)',
      'page shared with another device',
      'hole: shared page withheld',
      'hole: covered by the e820 map',
      'hole: mapped for another BAR',
      'hole: unexplained (see violations)',
      'invariant violation (hover: message)',
      'p2m mmio_direct, non-identity (slanted)',
      'e820 RAM',
      'collapsed stretch with nothing in it',
    ]) {
      expect(svg).toContain(text);
    }
    // Every pattern the style sheet uses is defined.
    for (const [, id] of svg.matchAll(/url\(#([\w-]+)\)/g)) expect(svg).toContain(`id="${id}"`);
  });

  it.each(CASES.map(([name]) => name))(
    '%s: every memory BAR is labelled with its SBDF, slot and size',
    (name) => {
      const r = report(name);
      const svg = renderSvg(r);
      for (const device of r.devices) {
        for (const bar of device.bars) {
          if (bar.type === 'io') continue;
          expect(svg).toContain(`${device.sbdf} BAR${bar.index} ${humanSize(BigInt(bar.size))}`);
        }
      }
    },
  );

  it.each(CASES.map(([name]) => name))('%s: the same report gives the same bytes', (name) => {
    const first = renderSvg(report(name));
    expect(renderSvg(report(name))).toBe(first);
    // Drawn from the report's data alone: its JSON gives the same picture.
    expect(renderSvg(JSON.parse(JSON.stringify(report(name))) as Report)).toBe(first);
  });

  it('seed 004: MSI-X table and PBA pages in both columns, slanted connectors, the violation, the axis', () => {
    const svg = renderSvg(report('seed-004-non-identity.jsonl'));
    expect(svg).toContain('0000:03:00.0 BAR0 1 MiB');
    expect(svg).toContain('0000:03:00.0 BAR2 256 B');
    for (const which of ['table', 'pba']) {
      for (const side of ['g', 'h']) {
        expect(shapeOf(svg, `d1:msix:0000:03:00.0:${which}:${side}`).class).toBe(`msix-${which}`);
      }
    }
    expect(svg).toContain('fill:url(#pat-msix-table)');
    // Guest frames e0000-e0001 map fe000-fe001: the connector's guest end is higher than its host end.
    const connector = shapeOf(svg, 'd1:p2m:0:c');
    expect(connector.class).toBe('c-offset');
    const [g0, h0] = connector.points!.split(' ').map((p) => Number(p.split(',')[1]));
    expect(h0! - g0!).toBeGreaterThan(100);
    // The refused BAR2 left BAR0's rangeset filled (gone by the end): a dashed red mark with the message.
    expect(shapeOf(svg, 'd1:violation:0:g').class).toBe('violation-gone');
    expect(svg).toMatch(/<title>violation at line 17: 0000:03:00.0 BAR0: rangeset not empty/);
    // Broken axis: collapsed gaps labelled with their size, hex ticks at the objects' edges.
    expect(svg).toContain('… 3.5 GiB …');
    for (const tick of ['0xe0000000', '0xe0002000', '0xe0100000', '0xfd000000', '0xfe000000', '0xfe100000']) {
      expect(svg).toContain(`>${tick}</text>`);
    }
    // Band order: the hardware domain first.
    expect(svg.indexOf('d0 hardware domain')).toBeLessThan(svg.indexOf('d1 guest'));
    expect(svg.indexOf('d0 hardware domain')).toBeGreaterThan(0);
  });

  it('seed 002: the shared host page is marked in both guests, in guest and host columns', () => {
    const r = report('shared.jsonl');
    const svg = renderSvg(r);
    for (const [d, sbdf, other] of [
      [1, '0000:01:00.0', '0000:01:01.0 BAR2'],
      [2, '0000:01:01.0', '0000:01:00.0 BAR2'],
    ] as const) {
      for (const side of ['g', 'h'])
        expect(shapeOf(svg, `d${d}:shared:${sbdf}:2:${other}:${side}`).class).toBe('shared');
      expect(svg).toContain(`shared with ${other.slice(5)} (d${d === 1 ? 2 : 1})`);
    }
    expect(svg).toContain('host page mfn 0x7050000 shared between devices');
    // The sub-page violations: red marks in the guest column (gfn e0000) and the host column.
    expect(shapeOf(svg, 'd1:violation:0:g').class).toBe('violation');
    expect(shapeOf(svg, 'd1:violation:0:h').class).toBe('violation');
    expect(svg).toContain('which holds a BAR of 0000:01:01.0 of d2');
    // Each guest sees the other's BAR greyed in its host column; the e820 map is in every band.
    expect(shapeOf(svg, 'd1:ghost:0000:01:01.0:2').class).toBe('bar-ghost');
    expect(shapeOf(svg, 'd2:e820:1').class).toBe('e820-reserved');
    expect(svg).toContain('e820 ram 640 KiB');
  });

  it('a 64 GiB BAR above 4 GiB and a 4 KiB BAR below it: both readable on one axis', () => {
    const svg = renderSvg(report('big.jsonl'));
    const small = heightOf(svg, 'd0:bar:0000:05:00.0:2:g');
    const big = heightOf(svg, 'd0:bar:0000:05:00.0:0:g');
    expect(small).toBeGreaterThanOrEqual(16);
    expect(big).toBeGreaterThan(small);
    expect(big).toBeLessThan(400); // logarithmic: 2^24 pages is not 2^24 times taller
    expect(svg).toContain('0000:05:00.0 BAR0 64 GiB');
    expect(svg).toContain('0000:05:00.0 BAR2 4 KiB');
    for (const tick of ['0xf0000000', '0xf0001000', '0x4000000000', '0x5000000000', '0x10000000000000']) {
      expect(svg).toContain(`>${tick}</text>`);
    }
    expect(svg).toContain('… 252 GiB …');
    // Identity mappings: horizontal connectors (both ends at the same height).
    const points = shapeOf(svg, 'd0:p2m:1:c')
      .points!.split(' ')
      .map((p) => p.split(',').map(Number));
    expect(shapeOf(svg, 'd0:p2m:1:c').class).toBe('c-identity');
    expect(points[0]![1]).toBeCloseTo(points[1]![1]!, 5);
    // No page frame numbers at the whole-map view.
    expect(svg).not.toContain('class="pfn halo"');
  });

  it('an empty machine: one band, one gap over the whole address space, a notice', () => {
    const svg = renderSvg(report('empty.jsonl'));
    expect(svg).toContain('d0 hardware domain');
    expect(svg).toContain('… 4 PiB …');
    expect(svg).toContain('Nothing mapped and no memory BARs');
    expect(svg).toContain('profile hardened');
    const none = renderSvg(report('nothing.jsonl'));
    expect(none).toContain('Nothing to draw: the trace built no machine.');
  });

  it('escapes what the report says', () => {
    const svg = renderSvg(replayText(EMPTY, 'a<b>&"c\'.jsonl'));
    expect(xmlProblem(svg)).toBeNull();
    expect(svg).toContain('a&lt;b&gt;&amp;&quot;c&#39;.jsonl');
  });
});

describe('the picture script of the HTML page', () => {
  it.each(CASES.map(([name]) => name))('%s: run alone, it draws exactly what renderSvg draws', (name) => {
    const r = report(name);
    // An empty context: the script must define everything it uses.
    const svg = runInNewContext(
      `${pictureScript()}\nconst scene = PictureEngine.buildScene(JSON.parse(json));\n` +
        'PictureEngine.renderSceneSvg(scene, PictureEngine.wholeView(scene), { chrome: true, defs: true, clip: false });',
      { json: JSON.stringify(r) },
    ) as string;
    expect(svg).toBe(renderSvg(r));
  });
});

describe('renderHtml', () => {
  it.each(CASES.map(([name]) => name))('%s: one self-contained page, the same bytes each time', (name) => {
    const html = renderHtml(report(name));
    expect(renderHtml(report(name))).toBe(html);
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script[^>]*\ssrc=|<link|@import|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect(html.match(/<script/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(html).toContain('id="legend"');
    expect(html).toContain('MSI-X table page (trapped by Xen)');
  });

  it('embeds the report as JSON that no </script> in it can end', () => {
    const name = '</script><script>alert(1)</script>.jsonl';
    const r = replayText(SEED_004, name);
    const html = renderHtml(r);
    expect(html.match(/<script/gi)).toHaveLength(2);
    const json = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(html)![1]!;
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(r)));
  });

  it('lists the BARs, events, violations and assertions under the picture', () => {
    const html = renderHtml(report('seed-004-non-identity.jsonl'));
    expect(html).toContain('data-zoom="d1:bar:0000:03:00.0:0:g"');
    expect(html).toContain(
      'line 17: 0000:03:00.0: can&#39;t map BAR2 - offset mismatch: 0xe0100200 vs 0xfd000100',
    );
    expect(html).toContain('line 17: 0000:03:00.0 BAR0: rangeset not empty with nothing pending');
    // The assertions' heading counts the assertions, passed and failed (the 18 of seed 004 all hold);
    // only the failed ones are listed under it.
    const heading = (page: string): string => /<h2 id="failures-title">([^<]*)<\/h2>/.exec(page)![1]!;
    expect(heading(html)).toBe('Assertions: 18 passed, 0 failed');
    expect(html).toContain('<p class="muted">Every assertion held.</p>');
    const failed = renderHtml(
      replayText(
        `${BIG_AND_SMALL}\n{"event":"assert","maps":{"domain":0,"gfn":"0xf0000","mfn":"0x1"}}\n`,
        'f.jsonl',
      ),
    );
    // BIG_AND_SMALL's noViolations holds; the maps assertion on line 5 does not.
    expect(heading(failed)).toBe('Assertions: 1 passed, 1 failed');
    expect(failed.match(/<ol id="failures">(.*?)<\/ol>/)![1]!.match(/<li/g)).toHaveLength(1);
    expect(failed).toMatch(/<li class="bad">line 5: maps/);
    expect(failed).toContain('status-failed');
  });
});
