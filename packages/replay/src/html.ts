/**
 * The replay report as one self-contained HTML page (no network: inline style and script): the
 * memory map of picture.ts in a viewer that zooms from the whole address space down to single 4 KiB
 * pages, a details panel for whatever is hovered or clicked, the legend, and under the picture the
 * BARs, the invariant violations, the assertions (how many held, and the failed ones), Xen's events
 * and the notes.
 *
 * The page carries the report as JSON, and the picture functions themselves (`pictureScript`): the
 * script builds the scene from the report and redraws the SVG at every zoom step, so zooming in is a
 * new drawing (page boundaries and frame numbers appear, labels are placed again), not a scaled
 * bitmap. Without script the page still shows the whole map and every list.
 *
 * Viewer controls: wheel zooms at the pointer (shift+wheel pans), drag pans, the buttons and the keys
 * `+` `-` `0`, arrows and Page Up/Down work when the map has focus; Tab reaches the BAR list, whose
 * buttons zoom to a BAR and show its details.
 */
import {
  buildScene,
  defsSvg,
  pictureEscape as esc,
  legendSvg,
  pictureScript,
  renderSceneSvg,
  type Scene,
  wholeView,
} from './picture.js';
import type { Report, ReportXenCost } from './report.js';
import { sriovFieldsText, vfBarText } from './sriov-report.js';
import { anyRangesetOps, qemuSummary, rangesetOpsText, xenCostText } from './text-report.js';

/** Width of the legend strip under the map: four columns. */
const LEGEND_WIDTH = 1220;

/** The page for `report`. Deterministic: the same report gives the same bytes. */
export function renderHtml(report: Report): string {
  const scene = buildScene(report);
  const legend = legendSvg(LEGEND_WIDTH, false);
  const title = `${scene.title}${scene.status}`;
  const staticMap = renderSceneSvg(scene, wholeView(scene), { chrome: false, defs: false, clip: false });
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(`vpci-replay memory map: ${title}`)}</title>`,
    `<style>${PAGE_CSS}</style>`,
    '</head>',
    '<body>',
    // Patterns and the picture's style sheet, once for both SVGs of the page.
    `<svg width="0" height="0" style="position:absolute" aria-hidden="true" focusable="false">${defsSvg()}</svg>`,
    // The map fills the window above the legend; the lists follow below it.
    '<div class="app">',
    '<header>',
    `<h1>${esc(scene.title)}<span class="status status-${esc(scene.status)}">${esc(scene.status)}</span></h1>`,
    `<p class="sub">${esc(scene.subtitle)}</p>`,
    '</header>',
    '<div class="toolbar" role="toolbar" aria-label="zoom">',
    '<button type="button" id="zoom-in" title="Zoom in (+)" aria-label="Zoom in">+</button>',
    '<button type="button" id="zoom-out" title="Zoom out (-)" aria-label="Zoom out">−</button>',
    '<button type="button" id="zoom-fit" title="Whole map (0)">Whole map</button>',
    '<span id="readout" aria-live="polite"></span>',
    '<span class="hint">wheel: zoom · drag: pan · click: pin details · keys on the map: + − 0 ↑ ↓ PgUp PgDn Esc</span>',
    '</div>',
    '<div class="stage">',
    `<div id="viewer" tabindex="0" role="region" aria-label="${esc(`memory map of ${report.trace}; keys: plus and minus zoom, 0 shows the whole map, arrows and page up/down pan`)}">`,
    staticMap,
    '</div>',
    '<div id="details" role="status" aria-live="polite" hidden></div>',
    '</div>',
    `<div id="legend" aria-label="legend"><svg xmlns="http://www.w3.org/2000/svg" width="${LEGEND_WIDTH}" height="${legend.height + 2}" role="img" aria-label="legend">${legend.svg}</svg></div>`,
    '</div>',
    barSection(scene),
    sriovSection(report),
    listsSection(report),
    `<script type="application/json" id="report-data">${scriptJson(report)}</script>`,
    `<script>${scriptText(`(function () {\n'use strict';\n${pictureScript()}\n${VIEWER_SCRIPT}\n})();`)}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** JSON that cannot end its `<script>` element: `<` (so `</script>`, `<!--`) and line separators escaped. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Script text, checked not to contain what would end or confuse its element. */
function scriptText(text: string): string {
  if (/<\/script|<!--/i.test(text)) throw new Error('picture script contains </script or <!--');
  return text;
}

/** Every memory BAR of the picture, with a button that zooms to it (the keyboard way in). */
function barSection(scene: Scene): string {
  const rows: string[] = [];
  for (const band of scene.bands) {
    const guestIds = new Set(band.guest.map((s) => s.id));
    for (const shape of [...band.guest, ...band.host]) {
      if (shape.lane !== 'bar' || shape.kind === 'bar-ghost') continue;
      // A BAR is listed once, at its guest-side shape when it has one.
      if (shape.id.endsWith(':h') && guestIds.has(`${shape.id.slice(0, -2)}:g`)) continue;
      const [first = '', ...rest] = shape.details;
      rows.push(
        `<tr><td>d${band.domain}</td><td>${esc(first)}</td><td class="mono">${rest.map(esc).join('<br>')}</td>` +
          `<td><button type="button" data-zoom="${esc(shape.id)}">Show</button></td></tr>`,
      );
    }
  }
  return [
    '<section aria-labelledby="bars-title">',
    '<h2 id="bars-title">BARs</h2>',
    rows.length === 0
      ? '<p class="muted">No memory BARs.</p>'
      : `<table><thead><tr><th>domain</th><th>BAR</th><th>where</th><th></th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
    '</section>',
  ].join('\n');
}

/**
 * Each SR-IOV physical function with its capability, its VF BAR arrays and its VFs on the machine
 * (with their owners) under it; nothing when the report has none.
 */
function sriovSection(report: Report): string {
  const pfs = report.devices.filter((d) => d.sriov !== undefined);
  if (pfs.length === 0) return '';
  const owners = new Map(report.devices.map((d) => [d.sbdf, d.owner]));
  const rows = pfs.map((pf) => {
    const sriov = pf.sriov!;
    const vfs = sriov.vfs.map((vf) => {
      const owner = owners.get(vf.sbdf);
      return `VF ${vf.index} ${vf.sbdf} (${owner === null || owner === undefined ? 'no owner' : `d${owner}`})`;
    });
    return (
      `<tr><td class="mono">${esc(pf.sbdf)}</td><td class="mono">${esc(`SR-IOV at ${sriov.pos}: ${sriovFieldsText(sriov)}`)}` +
      `${sriov.vfBars.map((bar) => `<br>${esc(vfBarText(bar))}`).join('')}</td>` +
      `<td class="mono">${vfs.length === 0 ? '<span class="muted">none</span>' : vfs.map(esc).join('<br>')}</td></tr>`
    );
  });
  return [
    '<section aria-labelledby="sriov-title">',
    '<h2 id="sriov-title">SR-IOV physical functions and their VFs</h2>',
    `<table><thead><tr><th>PF</th><th>capability, VF BARs</th><th>VFs on the machine</th></tr></thead><tbody>${rows.join('')}</tbody></table>`,
    '</section>',
  ].join('\n');
}

/** A `Xen's MMIO work` item's rangeset part (`; rangesets: …`), empty for a report without it. */
function rangesetItem(cost: ReportXenCost): string {
  return cost.rangesets === undefined ? '' : `; rangesets: ${esc(rangesetOpsText(cost.rangesets))}`;
}

/** The error that stopped the replay, violations, assertions, events and notes. */
function listsSection(report: Report): string {
  const out: string[] = [];
  /** A section listing `items`; its heading says how many unless `counted` is false. */
  const list = (id: string, title: string, items: string[], empty: string, counted = true): void => {
    out.push(
      `<section aria-labelledby="${id}-title"><h2 id="${id}-title">${esc(title)}${counted ? ` (${items.length})` : ''}</h2>`,
      items.length === 0 ? `<p class="muted">${esc(empty)}</p>` : `<ol id="${id}">${items.join('')}</ol>`,
      '</section>',
    );
  };
  if (report.error !== null) {
    out.push(
      `<section><h2>Stopped</h2><p class="bad">line ${report.error.line}: ${esc(report.error.message)}</p></section>`,
    );
  }
  if (report.qemu !== undefined) {
    const d = report.qemu.decisions;
    out.push(
      `<section aria-labelledby="qemu-title"><h2 id="qemu-title">QEMU log</h2>`,
      `<p class="mono">${qemuSummary(report.qemu)
        .map((line) => esc(line.trim()))
        .join('<br>')}</p>`,
      '</section>',
    );
    list(
      'divergences',
      `Divergences from QEMU's mapping decisions — ${d.unexplained} unexplained`,
      report.qemu.divergences.map(
        (v) =>
          `<li class="${v.explained ? '' : 'bad'}">line ${v.line}: ${esc(v.message)}` +
          (v.explained
            ? ` <span class="tag">explained: ${esc(String(v.rule))}</span>`
            : ' <span class="tag bad">unexplained</span>') +
          (v.decisions.length === 0 ? '' : ` <span class="tag">QEMU: line ${v.decisions.join(', ')}</span>`) +
          '</li>',
      ),
      d.compared
        ? 'None: every BAR is where QEMU had it.'
        : 'Nothing compared: the log has no mapping decisions.',
    );
  }
  list(
    'violations',
    'Invariant violations',
    report.violations.map(
      (v) =>
        `<li class="${v.expected === true ? '' : 'bad'}">line ${esc(String(v.line))}: ${esc(String(v.message))}` +
        `${v.expected === true ? ' <span class="tag">expected</span>' : ' <span class="tag bad">unexpected</span>'}` +
        `${v.present === true ? '' : ' <span class="tag">gone by the end</span>'}</li>`,
    ),
    'None.',
  );
  // The assertions that held are only counted (the report keeps no list of them); the failed ones
  // are listed, so the heading counts both, as the text report does.
  const a = report.assertions;
  list(
    'failures',
    `Assertions: ${a.passed} passed, ${a.failed} failed`,
    a.failures.map(
      (f) =>
        `<li class="bad">line ${f.line}: ${esc(f.assertion)}: expected ${esc(f.expected)}, got ${esc(f.actual)}</li>`,
    ),
    a.total === 0 ? 'The trace has no assertions.' : 'Every assertion held.',
    false,
  );
  // Xen's own work, per domain and per device that vPCI mapped or unmapped (the text report's lines).
  list(
    'xen-cost',
    "Xen's MMIO work",
    [
      ...report.domains.map(
        (d) => `<li>d${d.id}: ${esc(xenCostText(d.xenCost))}${rangesetItem(d.xenCost)}</li>`,
      ),
      ...report.devices
        .filter(
          (d) =>
            d.xenCost.mapMmioRegions + d.xenCost.unmapMmioRegions > 0 || anyRangesetOps(d.xenCost.rangesets),
        )
        .map(
          (d) =>
            `<li>${esc(d.sbdf)}: ${esc(xenCostText(d.xenCost))}, ${d.xenCost.continuations} continuations${rangesetItem(d.xenCost)}</li>`,
        ),
    ],
    'None.',
    false,
  );
  list(
    'events',
    'Events',
    report.events.map((e) => `<li>line ${esc(String(e.line))}: ${esc(String(e.message))}</li>`),
    'None.',
  );
  list(
    'notes',
    'Notes',
    report.notes.map((n) => `<li>line ${n.line}: ${esc(n.text)}</li>`),
    'None.',
  );
  return out.join('\n');
}

const PAGE_CSS = [
  'body{margin:0;font:13px/1.4 "DejaVu Sans",system-ui,sans-serif;color:#1a1a1a;background:#fff}',
  'header{padding:8px 16px 4px;border-bottom:1px solid #ddd}',
  'h1{font:bold 16px "DejaVu Sans Mono",Menlo,Consolas,monospace;margin:0}',
  'h2{font-size:14px;margin:10px 0 6px}',
  '.status{margin-left:.3em}.status-ok{color:#1b7837}.status-failed,.status-error{color:#c0141b}',
  '.sub{margin:2px 0 0;color:#444;font:12px "DejaVu Sans Mono",Menlo,Consolas,monospace}',
  '.toolbar{display:flex;gap:6px;align-items:center;padding:5px 16px;border-bottom:1px solid #eee}',
  '.toolbar button{font:inherit;min-width:2.2em;padding:2px 10px;border:1px solid #aaa;border-radius:4px;background:#f6f6f6;cursor:pointer}',
  '.toolbar button:hover{background:#ececec}',
  'button:focus-visible,#viewer:focus-visible{outline:2px solid #1f5fa8;outline-offset:-2px}',
  '#readout{font:12px "DejaVu Sans Mono",Menlo,Consolas,monospace;color:#222;margin-left:8px}',
  '.hint{margin-left:auto;color:#777;font-size:12px}',
  '.app{display:flex;flex-direction:column;height:100vh;min-height:480px}',
  '.stage{position:relative;flex:1;min-height:240px}',
  '#viewer{position:absolute;inset:0;overflow:auto}',
  '.js #viewer{overflow-y:hidden;touch-action:none;user-select:none;cursor:grab}',
  '.js #viewer.dragging{cursor:grabbing}',
  '#details{position:absolute;top:6px;right:18px;max-width:460px;font:11px/1.5 "DejaVu Sans Mono",Menlo,Consolas,monospace;background:rgba(255,255,255,.96);border:1px solid #bbb;border-radius:4px;box-shadow:0 2px 8px rgba(0,0,0,.18);padding:6px 10px;white-space:pre-wrap;word-break:break-word}',
  '#details[hidden]{display:none}',
  '#details .head{font-weight:bold}',
  '#legend{border-top:1px solid #ddd;padding:4px 16px 2px;overflow-x:auto;flex:none}',
  '.muted{color:#777;font-family:"DejaVu Sans",system-ui,sans-serif}',
  '.pinned>rect,.pinned>polygon{stroke:#1f5fa8!important;stroke-width:2.5px!important;stroke-opacity:1!important}',
  'section{padding:2px 16px 8px}',
  'table{border-collapse:collapse;font-size:12px}',
  'th,td{border-bottom:1px solid #eee;padding:3px 8px;text-align:left;vertical-align:top}',
  '.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:11px}',
  'ol{margin:0;padding-left:2em;font:12px/1.5 "DejaVu Sans Mono",Menlo,Consolas,monospace}',
  '.bad{color:#c0141b}.tag{font-size:11px;border:1px solid #ccc;border-radius:3px;padding:0 4px;color:#555}',
  '.tag.bad{border-color:#c0141b;color:#c0141b}',
].join('\n');

/**
 * The viewer, run after the picture functions (`PictureEngine`). Plain ES2020 without template
 * literals, so it can sit in a TypeScript string.
 */
const VIEWER_SCRIPT = String.raw`
var E = PictureEngine;
var report = JSON.parse(document.getElementById('report-data').textContent);
var scene = E.buildScene(report);
var items = E.sceneItems(scene);
var viewer = document.getElementById('viewer');
var detailsEl = document.getElementById('details');
var readout = document.getElementById('readout');
var mapTop = E.mapTopOf(scene, false);
var maxScale = E.maxScaleOf(scene);
var options = { chrome: false, defs: false, clip: true };
var view = null;
var minScale = 1;
var pinned = null;
var shown = null;
var frame = 0;
var drag = null;
// Wider than the window: drawn smaller to fit (not below 0.72), else scrolled sideways.
var fit = 1;
document.documentElement.classList.add('js');

function computeFit() { fit = scene.width > viewer.clientWidth ? Math.max(0.72, viewer.clientWidth / scene.width) : 1; }
function mapHeight() { return Math.max(120, viewer.clientHeight / fit - mapTop - 2); }
// Whole map in view with room for the last address; not blown up past 1.5x, so the first view
// never starts at page granularity.
function fitScale(h) { return Math.min(1.5, (h - 12) / Math.max(1, scene.height)); }
function clampView(v) {
  var scale = Math.min(Math.max(v.scale, minScale), Math.max(maxScale, minScale));
  var span = v.height / scale;
  var top = span >= scene.height ? 0 : Math.min(Math.max(v.top, 0), scene.height - span);
  return { top: top, scale: scale, height: v.height };
}
function render() {
  frame = 0;
  viewer.innerHTML = E.renderSceneSvg(scene, view, options);
  if (fit !== 1) {
    var svg = viewer.firstElementChild;
    svg.setAttribute('width', String(Math.floor(scene.width * fit)));
    svg.setAttribute('height', String(Math.floor((mapTop + view.height) * fit)));
  }
  var span = view.height / view.scale;
  var a = E.addrAt(scene.intervals, view.top);
  var b = E.addrAt(scene.intervals, Math.min(scene.height, view.top + span));
  var zoom = view.scale / minScale;
  readout.textContent = 'zoom ×' + (zoom < 100 ? zoom.toFixed(1) : zoom.toExponential(1)) + ' · ' +
    E.pictureHex(a) + ' – ' + E.pictureHex(b);
  viewer.setAttribute('data-scale', String(view.scale));
  if (pinned !== null) {
    var el = viewer.querySelectorAll('[data-item="' + CSS.escape(pinned) + '"]');
    for (var i = 0; i < el.length; i++) el[i].classList.add('pinned');
  }
}
function schedule() { if (frame === 0) frame = requestAnimationFrame(render); }
function zoomAt(factor, py) {
  var t = view.top + py / view.scale;
  var scale = Math.min(Math.max(view.scale * factor, minScale), Math.max(maxScale, minScale));
  view = clampView({ top: t - py / scale, scale: scale, height: view.height });
  schedule();
}
function pan(dt) { view = clampView({ top: view.top + dt, scale: view.scale, height: view.height }); schedule(); }
function whole() { view = clampView({ top: 0, scale: minScale, height: view.height }); schedule(); }
function mapY(clientY) {
  var y = (clientY - viewer.getBoundingClientRect().top) / fit - mapTop;
  return Math.min(Math.max(y, 0), view.height);
}
function show(id) {
  var item = items[id];
  if (item === undefined) return;
  shown = id;
  var head = document.createElement('div');
  head.className = 'head';
  head.textContent = item.details[0];
  var body = document.createElement('div');
  body.textContent = item.details.slice(1).join('\n');
  detailsEl.replaceChildren(head, body);
  detailsEl.hidden = false;
}
function clearDetails() {
  shown = null;
  detailsEl.hidden = true;
  detailsEl.replaceChildren();
}
function itemAt(target) {
  var el = target && target.closest ? target.closest('[data-item]') : null;
  return el === null ? null : el.getAttribute('data-item');
}
function zoomTo(id) {
  var item = items[id];
  if (item === undefined) return;
  var span = Math.max(item.t1 - item.t0, 1e-9);
  var scale = Math.min(Math.max((view.height * 0.4) / span, minScale), Math.max(maxScale, minScale));
  view = clampView({ top: (item.t0 + item.t1) / 2 - view.height / 2 / scale, scale: scale, height: view.height });
  pinned = id;
  show(id);
  schedule();
}

viewer.addEventListener('wheel', function (e) {
  e.preventDefault();
  var unit = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? view.height : 1;
  if (Math.abs(e.deltaX) > Math.abs(e.deltaY)) { viewer.scrollLeft += e.deltaX * unit; return; }
  var dy = e.deltaY * unit;
  if (e.shiftKey) { pan(dy / view.scale); return; }
  zoomAt(Math.exp(-dy * 0.0025), mapY(e.clientY));
}, { passive: false });
viewer.addEventListener('pointerdown', function (e) {
  if (e.button !== 0) return;
  drag = { x: e.clientX, y: e.clientY, top: view.top, left: viewer.scrollLeft, moved: false, id: e.pointerId };
});
viewer.addEventListener('pointermove', function (e) {
  if (drag !== null) {
    var dx = e.clientX - drag.x;
    var dy = e.clientY - drag.y;
    if (!drag.moved && Math.abs(dx) + Math.abs(dy) > 4) {
      drag.moved = true;
      viewer.classList.add('dragging');
      viewer.setPointerCapture(drag.id);
    }
    if (drag.moved) {
      view = clampView({ top: drag.top - dy / fit / view.scale, scale: view.scale, height: view.height });
      viewer.scrollLeft = drag.left - dx;
      schedule();
    }
    return;
  }
  if (pinned !== null) return;
  var id = itemAt(e.target);
  if (id !== null) { if (id !== shown) show(id); }
  else if (shown !== null) clearDetails();
});
function endDrag(e) {
  var d = drag;
  drag = null;
  viewer.classList.remove('dragging');
  if (d === null || d.moved) return;
  // A click: pin what is under the pointer (or unpin).
  var id = itemAt(document.elementFromPoint(e.clientX, e.clientY));
  pinned = id === null || id === pinned ? null : id;
  if (pinned !== null) show(pinned); else if (id === null) clearDetails();
  schedule();
}
viewer.addEventListener('pointerup', endDrag);
viewer.addEventListener('pointercancel', function () { drag = null; viewer.classList.remove('dragging'); });
viewer.addEventListener('pointerleave', function () { if (drag === null && pinned === null) clearDetails(); });
viewer.addEventListener('keydown', function (e) {
  var span = view.height / view.scale;
  switch (e.key) {
    case '+': case '=': zoomAt(2, view.height / 2); break;
    case '-': case '_': zoomAt(0.5, view.height / 2); break;
    case '0': case 'Home': whole(); break;
    case 'ArrowDown': pan(span * 0.1); break;
    case 'ArrowUp': pan(-span * 0.1); break;
    case 'PageDown': pan(span * 0.9); break;
    case 'PageUp': pan(-span * 0.9); break;
    case 'Escape': pinned = null; clearDetails(); schedule(); break;
    default: return;
  }
  e.preventDefault();
});
document.getElementById('zoom-in').addEventListener('click', function () { zoomAt(2, view.height / 2); });
document.getElementById('zoom-out').addEventListener('click', function () { zoomAt(0.5, view.height / 2); });
document.getElementById('zoom-fit').addEventListener('click', whole);
var buttons = document.querySelectorAll('button[data-zoom]');
for (var i = 0; i < buttons.length; i++) {
  buttons[i].addEventListener('click', function (e) { zoomTo(e.currentTarget.getAttribute('data-zoom')); });
}
window.addEventListener('resize', function () {
  computeFit();
  var h = mapHeight();
  var atWhole = view.scale <= minScale * 1.000001;
  minScale = fitScale(h);
  view = clampView(atWhole ? { top: 0, scale: minScale, height: h } : { top: view.top, scale: view.scale, height: h });
  schedule();
});

computeFit();
minScale = fitScale(mapHeight());
view = { top: 0, scale: minScale, height: mapHeight() };
render();
viewer.setAttribute('data-ready', 'true');
`;
