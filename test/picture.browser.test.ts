/**
 * The memory map in a real browser (headless Chromium through playwright-core): the page shows the
 * legend and the BAR labels, zooming in with the wheel, the keyboard or the BAR list reaches page
 * granularity (page frame numbers appear, redrawn rather than scaled), and hovering a BAR shows its
 * details. And the texts as drawn, measured by the browser, for every example trace and the stress
 * traces of test/support/picture-traces.ts, in the SVG file and in the page from the whole map down to
 * single pages: no text overlaps another, and each lies inside its SVG and inside the region its view
 * clips it to.
 *
 * The browser comes from the `@sparticuz/chromium` dev dependency, a headless Chromium shipped inside
 * the npm package (unpacked into the temporary directory on first use), so `pnpm install` is all the
 * set-up the test needs. `CHROMIUM_PATH` points it at another Chromium or Chrome binary instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import packagedChromium from '@sparticuz/chromium';
import { renderHtml, renderSvg, replayText } from '@vpci/replay';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleTraces, STRESS_TRACES } from './support/picture-traces.js';

const SEED_004 = readFileSync(new URL('../examples/seed-004-non-identity.jsonl', import.meta.url), 'utf8');
const BIG = [
  '{"event":"host","profile":"xen"}',
  '{"event":"device","sbdf":"0000:05:00.0","command":"0x0002","bars":[{"type":"mem64","size":"0x1000000000","addr":"0x4000000000","prefetchable":true},null,{"type":"mem32","size":"0x1000","addr":"0xf0000000"}]}',
  '{"event":"boot"}',
].join('\n');

let browser: Browser | undefined;

/** The Chromium binary: `CHROMIUM_PATH` when set (it must exist), else the packaged one. */
async function chromiumPath(): Promise<string> {
  const chosen = process.env.CHROMIUM_PATH;
  if (chosen === undefined || chosen === '') return packagedChromium.executablePath();
  if (!existsSync(chosen))
    throw new Error(`CHROMIUM_PATH is ${chosen}, which does not exist; expected a Chromium or Chrome binary`);
  return chosen;
}

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: await chromiumPath(), args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

/** A page showing the HTML of `trace`, its viewer drawn. */
async function open(trace: string, name: string): Promise<Page> {
  const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.setContent(renderHtml(replayText(trace, name)));
  await page.waitForSelector('#viewer[data-ready="true"]', { timeout: 5000 });
  expect(errors).toEqual([]);
  return page;
}

/** Waits for the viewer's next redraw (it draws on an animation frame). */
async function drawn(page: Page): Promise<void> {
  await page.evaluate('new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))');
}

const pfnLabels = (page: Page, text?: RegExp) =>
  page.locator('#viewer text.pfn', text === undefined ? {} : { hasText: text });

/**
 * Wheels up over `selector` (at `at` of its height) until `done` holds or `max` turns have passed;
 * returns the turns taken, or -1.
 */
async function wheelUntil(
  page: Page,
  selector: string,
  at: number,
  max: number,
  done: () => Promise<boolean>,
): Promise<number> {
  for (let turn = 1; turn <= max; turn++) {
    const box = await page.locator(selector).first().boundingBox();
    expect(box, `${selector} is on screen`).not.toBeNull();
    await page.mouse.move(box!.x + box!.width / 2, box!.y + box!.height * at);
    await page.mouse.wheel(0, -400);
    await drawn(page);
    if (await done()) return turn;
  }
  return -1;
}

const somePfn = (page: Page) => async (): Promise<boolean> => (await pfnLabels(page).count()) > 0;

describe('the HTML memory map in Chromium', () => {
  it('shows the title, the legend and every BAR label', async () => {
    const page = await open(SEED_004, 'seed-004-non-identity.jsonl');
    expect(await page.locator('h1').textContent()).toContain(
      'seed-004-non-identity.jsonl — profile xen — status',
    );
    for (const entry of [
      'MSI-X table page (trapped by Xen)',
      'page shared with another device',
      'e820 RAM',
    ]) {
      expect(await page.locator('#legend text', { hasText: entry }).isVisible()).toBe(true);
    }
    for (const label of ['0000:03:00.0 BAR0 1 MiB', '0000:03:00.0 BAR2 256 B']) {
      // In both columns: the guest's view and the machine's.
      const labels = page.locator('#viewer text[data-label]', { hasText: label });
      expect(await labels.count()).toBe(2);
      expect(await labels.first().isVisible()).toBe(true);
    }
    expect(await page.locator('#events').textContent()).toContain(
      'offset mismatch: 0xe0100200 vs 0xfd000100',
    );
    await page.close();
  });

  it('zooms with the wheel from the whole map down to pages with their frame numbers', async () => {
    const page = await open(SEED_004, 'seed-004-non-identity.jsonl');
    expect(await pfnLabels(page).count()).toBe(0);
    const before = await page.locator('#readout').textContent();
    // Into BAR0's 252 mapped pages (below its MSI-X pages), until they show boundaries and numbers.
    const inBar0 = async (): Promise<boolean> =>
      (await page.locator('#viewer line.pageline').count()) > 1 &&
      (await pfnLabels(page, /^pfn 0xe00[0-9a-f]{2}$/).count()) > 0;
    const turns = await wheelUntil(page, '[data-item="d1:bar:0000:03:00.0:0:g"] rect', 0.6, 15, inBar0);
    expect(turns).toBeGreaterThan(0);
    expect(await page.locator('#readout').textContent()).not.toBe(before);
    const pfns = await pfnLabels(page).allTextContents();
    expect(pfns.length).toBeGreaterThan(0);
    // Frame numbers of whatever is in view: the axis is shared, guest and host pages alike.
    for (const text of pfns) expect(text).toMatch(/^pfn 0x[0-9a-f]{5}$/);
    // Redrawn, not scaled: the page boundaries are new lines, the text keeps its size, and each
    // guest page says which machine frame it maps.
    expect(await page.locator('#viewer line.pageline').count()).toBeGreaterThan(1);
    expect(await page.evaluate("getComputedStyle(document.querySelector('#viewer text.pfn')).fontSize")).toBe(
      '10px',
    );
    expect(
      await page.locator('#viewer text.pfnmap', { hasText: /^→ mfn 0xf[de]0[0-9a-f]{2}$/ }).count(),
    ).toBeGreaterThan(0);
    // Back out with the button.
    await page.click('#zoom-fit');
    await drawn(page);
    expect(await pfnLabels(page).count()).toBe(0);
    await page.close();
  });

  it('reaches single pages inside a 64 GiB BAR', async () => {
    const page = await open(BIG, 'big.jsonl');
    const turns = await wheelUntil(
      page,
      '[data-item="d0:bar:0000:05:00.0:0:g"] rect',
      0.5,
      30,
      somePfn(page),
    );
    expect(turns).toBeGreaterThan(0);
    for (const text of await pfnLabels(page).allTextContents()) expect(text).toMatch(/^pfn 0x4[0-9a-f]{6}$/);
    await page.close();
  });

  it('is keyboard driven: a BAR button zooms to it, + and - on the map zoom', async () => {
    const page = await open(SEED_004, 'seed-004-non-identity.jsonl');
    await page.focus('button[data-zoom="d1:bar:0000:03:00.0:0:g"]');
    await page.keyboard.press('Enter');
    await drawn(page);
    expect(await page.locator('#details').textContent()).toContain('0000:03:00.0 BAR0 mem64 1 MiB, mapped');
    await page.focus('#viewer');
    for (let i = 0; i < 12 && (await pfnLabels(page).count()) === 0; i++) {
      await page.keyboard.press('+');
      await drawn(page);
    }
    expect(await pfnLabels(page).count()).toBeGreaterThan(0);
    await page.keyboard.press('0');
    await drawn(page);
    expect(await pfnLabels(page).count()).toBe(0);
    await page.close();
  });

  it('shows a BAR’s details when hovered', async () => {
    const page = await open(SEED_004, 'seed-004-non-identity.jsonl');
    await page.hover('[data-item="d1:bar:0000:03:00.0:2:g"] rect');
    const details = await page.locator('#details').textContent();
    expect(details).toContain('0000:03:00.0 BAR2 mem32 256 B, mapped');
    expect(details).toContain('owner d1, seen at 0000:00:00.0');
    expect(details).toContain('guest 0xe0100100-0xe01001ff');
    expect(details).toContain('host  0xfd000100-0xfd0001ff');
    // And a mapping's: the guest frames, the machine frames and the offset between them.
    await page.hover('[data-item="d1:p2m:1:g"] rect');
    expect(await page.locator('#details').textContent()).toContain(
      'd1 p2m mmio_direct: gfn 0xe0004-0xe00ff -> mfn 0xfe004-0xfe0ff',
    );
    await page.close();
  });
});

interface MeasuredBox {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

/** A text as the browser drew it, in its SVG's units, with the SVG's canvas and the text's clip. */
interface MeasuredText {
  readonly svg: number;
  readonly text: string;
  readonly box: MeasuredBox;
  readonly canvas: MeasuredBox;
  readonly clip: MeasuredBox | null;
}

/**
 * Every text of the SVGs `selector` finds, measured by the browser: its bounding box (the font's
 * ascent to descent over its advance) taken into its SVG's units, the SVG's viewBox (or its size),
 * and the rectangle of the clip path of the group it is drawn in, if any.
 */
const MEASURE_TEXTS = `(selector) => {
  const out = [];
  document.querySelectorAll(selector).forEach((svg, index) => {
    const toUser = svg.getScreenCTM().inverse();
    const at = (x, y) => new DOMPoint(x, y).matrixTransform(toUser);
    const vb = svg.viewBox.baseVal;
    const canvas = vb !== null && vb.width > 0
      ? { x0: vb.x, y0: vb.y, x1: vb.x + vb.width, y1: vb.y + vb.height }
      : { x0: 0, y0: 0, x1: svg.width.baseVal.value, y1: svg.height.baseVal.value };
    for (const text of svg.querySelectorAll('text')) {
      const r = text.getBoundingClientRect();
      const a = at(r.left, r.top);
      const b = at(r.right, r.bottom);
      const holder = text.closest('[clip-path]');
      let clip = null;
      if (holder !== null) {
        const id = /#([^)]+)/.exec(holder.getAttribute('clip-path'))[1];
        const rect = svg.querySelector('#' + CSS.escape(id) + ' rect');
        const n = (name) => Number(rect.getAttribute(name));
        clip = { x0: n('x'), y0: n('y'), x1: n('x') + n('width'), y1: n('y') + n('height') };
      }
      out.push({ svg: index, text: text.textContent, box: { x0: a.x, y0: a.y, x1: b.x, y1: b.y }, canvas, clip });
    }
  });
  return out;
}`;

/** Float noise of the browser's transforms, in SVG units: less than this is not an overlap. */
const EPSILON = 0.01;

/** What is wrong with the measured texts: overlaps within one SVG, texts outside their bounds. */
function drawnProblems(texts: readonly MeasuredText[]): string[] {
  const inside = (a: MeasuredBox, b: MeasuredBox): boolean =>
    a.x0 >= b.x0 - EPSILON && a.x1 <= b.x1 + EPSILON && a.y0 >= b.y0 - EPSILON && a.y1 <= b.y1 + EPSILON;
  const overlap = (a: MeasuredBox, b: MeasuredBox): boolean =>
    Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0) > EPSILON &&
    Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0) > EPSILON;
  const problems: string[] = [];
  texts.forEach((t, i) => {
    if (!inside(t.box, t.canvas)) problems.push(`"${t.text}" leaves its SVG`);
    if (t.clip !== null && !inside(t.box, t.clip)) problems.push(`"${t.text}" leaves its clip region`);
    for (const u of texts.slice(i + 1)) {
      if (u.svg === t.svg && overlap(t.box, u.box)) problems.push(`"${t.text}" overlaps "${u.text}"`);
    }
  });
  return problems;
}

const measure = (page: Page, selector: string): Promise<MeasuredText[]> =>
  page.evaluate(`(${MEASURE_TEXTS})(${JSON.stringify(selector)})`) as Promise<MeasuredText[]>;

describe('the texts of the memory map as Chromium draws them', () => {
  const cases = [...exampleTraces(), ...STRESS_TRACES];

  it.each(cases.map(([name]) => name))('%s: the SVG file: no overlaps, nothing outside', async (name) => {
    const report = replayText(cases.find(([n]) => n === name)![1], name);
    const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
    await page.setContent(`<!DOCTYPE html><html><body style="margin:0">${renderSvg(report)}</body></html>`);
    const texts = await measure(page, 'body > svg');
    expect(texts.length).toBeGreaterThan(20);
    expect(drawnProblems(texts)).toEqual([]);
    await page.close();
  });

  it.each(cases.map(([name]) => name))(
    '%s: the page, from the whole map to single pages: no overlaps, nothing outside',
    async (name) => {
      const page = await open(cases.find(([n]) => n === name)![1], name);
      const check = async (state: string): Promise<void> => {
        const texts = await measure(page, '#viewer svg, #legend svg');
        expect(drawnProblems(texts), state).toEqual([]);
      };
      await check('whole map');
      await page.focus('#viewer');
      for (let i = 1; i <= 6; i++) {
        await page.keyboard.press('+');
        await drawn(page);
        if (i % 3 === 0) await check(`whole map, + ${i} times`);
      }
      // Each BAR as its button shows it, then zoomed in further, down to its pages.
      const buttons = await page
        .locator('button[data-zoom]')
        .evaluateAll((list) => list.map((b) => b.getAttribute('data-zoom')));
      for (const id of buttons.slice(0, 4)) {
        await page.click(`button[data-zoom="${id}"]`);
        await drawn(page);
        await check(`${id} shown`);
        await page.focus('#viewer');
        for (let i = 1; i <= 8; i++) await page.keyboard.press('+');
        await drawn(page);
        await check(`${id}, + 8 times`);
      }
      await page.close();
    },
  );
});
