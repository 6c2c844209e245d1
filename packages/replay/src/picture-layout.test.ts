/**
 * The layout of the memory map's texts, held to geometry: at every view (the SVG file's whole map, and
 * the HTML viewer's clipped views from the whole map down to single pages) no two texts overlap, each
 * lies inside the canvas and inside the region its view clips it to, and no label is left out but for
 * want of room (the SVG file has them all). Over every example trace,
 * the stress traces of test/support/picture-traces.ts and random traces. The boxes are the layout's
 * own (`sceneLayout`, `textBox`); test/picture.browser.test.ts measures the drawn texts in Chromium.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exampleTraces, STRESS_TRACES } from '../../../test/support/picture-traces.js';
import { randomTraces } from '../../../test/support/random-traces.js';
import {
  type Box,
  boxesOverlap,
  buildScene,
  type DrawOptions,
  maxScaleOf,
  type Scene,
  sceneItems,
  sceneLayout,
  textBox,
  type View,
  wholeView,
} from './picture.js';
import { replayText } from './run.js';

const SVG_FILE: DrawOptions = { chrome: true, defs: true, clip: false };
const VIEWER: DrawOptions = { chrome: false, defs: false, clip: true };

/** What is wrong with the layout of `scene` at `view`: overlapping texts, texts outside their bounds. */
function layoutProblems(scene: Scene, view: View, options: DrawOptions): string[] {
  const layout = sceneLayout(scene, view, options);
  const canvas: Box = { x0: 0, y0: 0, x1: layout.width, y1: layout.height };
  const inside = (a: Box, b: Box): boolean => a.x0 >= b.x0 && a.x1 <= b.x1 && a.y0 >= b.y0 && a.y1 <= b.y1;
  const boxes = layout.texts.map(textBox);
  const problems: string[] = [];
  layout.texts.forEach((t, i) => {
    const box = boxes[i]!;
    if (!inside(box, canvas)) problems.push(`"${t.text}" leaves the canvas`);
    if (t.clip !== null && !inside(box, t.clip)) problems.push(`"${t.text}" leaves its clip region`);
    for (let j = i + 1; j < boxes.length; j++) {
      if (boxesOverlap(box, boxes[j]!)) problems.push(`"${t.text}" overlaps "${layout.texts[j]!.text}"`);
    }
  });
  return problems;
}

/**
 * The labelled shapes whose label is not drawn though it must be: every one in the SVG file; in the
 * viewer, every one in view when the labels in view of its column fit in the view at 20 pixels each
 * (more than any label takes), so that leaving labels out is only ever for want of room.
 */
function missingLabels(scene: Scene, view: View, options: DrawOptions): string[] {
  const drawn = new Set(sceneLayout(scene, view, options).texts.map((t) => t.names));
  const items = sceneItems(scene);
  const bottom = view.top + view.height / view.scale;
  const missing: string[] = [];
  for (const band of scene.bands) {
    for (const column of [band.guest, band.host]) {
      const inView = column.filter(
        (s) =>
          s.label !== null && (!options.clip || (items[s.id]!.t1 >= view.top && items[s.id]!.t0 <= bottom)),
      );
      if (options.clip && inView.length * 20 > view.height) continue;
      for (const s of inView) if (!drawn.has(s.id)) missing.push(s.id);
    }
  }
  return missing;
}

/**
 * A view as the viewer shows it in a map `height` tall (html.ts): no further out than the whole map
 * (at most 1.5 pixels per axis unit), no further in than `maxScaleOf`, and not past either end.
 */
function viewerView(scene: Scene, height: number, top: number, scale: number): View {
  const minScale = Math.min(1.5, (height - 12) / Math.max(1, scene.height));
  const s = Math.min(Math.max(scale, minScale), Math.max(maxScaleOf(scene), minScale));
  const span = height / s;
  return {
    top: span >= scene.height ? 0 : Math.min(Math.max(top, 0), scene.height - span),
    scale: s,
    height,
  };
}

/** The viewer's views of `scene` in a map `height` tall: the whole map, then each item zoomed to. */
function viewerViews(scene: Scene, height: number): View[] {
  const views = [viewerView(scene, height, 0, 0)];
  const deepest = Math.max(maxScaleOf(scene), viewerView(scene, height, 0, 0).scale);
  for (const item of Object.values(sceneItems(scene))) {
    const centre = (item.t0 + item.t1) / 2;
    const scale = (height * 0.4) / Math.max(item.t1 - item.t0, 1e-9);
    // As the BAR list's buttons zoom (the item 40% of the view), and to the deepest zoom at its start.
    views.push(
      viewerView(scene, height, centre - height / 2 / scale, scale),
      viewerView(scene, height, item.t0 - height / 2 / deepest, deepest),
    );
  }
  return views;
}

const CASES = [...exampleTraces(), ...STRESS_TRACES];

describe('the layout check itself', () => {
  it('sees overlapping texts and texts outside the canvas', () => {
    expect(boxesOverlap({ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 9, y0: 9, x1: 20, y1: 20 })).toBe(true);
    // Boxes that only touch do not overlap.
    expect(boxesOverlap({ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 10, y0: 0, x1: 20, y1: 10 })).toBe(false);
    expect(boxesOverlap({ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 0, y0: 10, x1: 10, y1: 20 })).toBe(false);
  });
});

describe('the layout of the memory map', () => {
  it.each(CASES.map(([name]) => name))(
    '%s: the SVG file: every label drawn, no text overlaps another or leaves the canvas',
    (name) => {
      const scene = buildScene(replayText(CASES.find(([n]) => n === name)![1], name));
      expect(layoutProblems(scene, wholeView(scene), SVG_FILE)).toEqual([]);
      expect(missingLabels(scene, wholeView(scene), SVG_FILE)).toEqual([]);
    },
  );

  it.each(CASES.map(([name]) => name))(
    '%s: the viewer, from the whole map to single pages: labels drawn where they fit, none overlapping or outside',
    (name) => {
      const scene = buildScene(replayText(CASES.find(([n]) => n === name)![1], name));
      for (const height of [300, 700]) {
        for (const view of viewerViews(scene, height)) {
          expect(layoutProblems(scene, view, VIEWER), `view ${JSON.stringify(view)}`).toEqual([]);
          expect(missingLabels(scene, view, VIEWER), `view ${JSON.stringify(view)}`).toEqual([]);
        }
      }
    },
  );
});

describe('the layout of the memory map of random traces', () => {
  it('labels drawn where they fit, no text overlapping another or outside, in the SVG file and the viewer', () => {
    // A view: how tall the map is, how far in (0 the whole map, 1 the deepest zoom, logarithmically;
    // often the deepest, where pages carry notes) and where: somewhere in one of the scene's items.
    const view = fc.record({
      height: fc.integer({ min: 120, max: 1200 }),
      zoom: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
      item: fc.nat(),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    fc.assert(
      fc.property(
        randomTraces({ profile: 'xen' }),
        fc.array(view, { minLength: 1, maxLength: 4 }),
        (t, views) => {
          const scene = buildScene(replayText(t.text, 't.jsonl'));
          expect(layoutProblems(scene, wholeView(scene), SVG_FILE)).toEqual([]);
          expect(missingLabels(scene, wholeView(scene), SVG_FILE)).toEqual([]);
          const items = Object.values(sceneItems(scene));
          for (const { height, zoom, item, at } of views) {
            const whole = viewerView(scene, height, 0, 0).scale;
            const scale = whole * (Math.max(maxScaleOf(scene), whole) / whole) ** zoom;
            const around = items[item % Math.max(1, items.length)] ?? { t0: 0, t1: scene.height };
            const centre = around.t0 + at * (around.t1 - around.t0);
            const v = viewerView(scene, height, centre - height / 2 / scale, scale);
            expect(layoutProblems(scene, v, VIEWER), `view ${JSON.stringify(v)}`).toEqual([]);
            expect(missingLabels(scene, v, VIEWER), `view ${JSON.stringify(v)}`).toEqual([]);
          }
        },
      ),
    );
  });
});
