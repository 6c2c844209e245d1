/**
 * The picture of a replay's memory map, drawn only from the `Report`: for each domain (hardware
 * domain first) a band with its guest-physical column (the domain's view: its devices' BARs at their
 * guest addresses, its p2m extents) and the host-physical column (machine addresses: the same BARs at
 * their host addresses, the e820 map, the machine frames the extents map), joined by a connector from
 * each guest range to the machine range it maps: horizontal for an identity mapping, slanted
 * otherwise. MSI-X table and PBA pages, holes by reason, pages shared between devices and invariant
 * violations are marked, and a legend explains every colour and pattern.
 *
 * The axis. Addresses run from 0 to 2^52 and objects from one page to 64 GiB, so no linear scale
 * works. The axis is broken at every boundary of every object; a stretch that holds something gets a
 * height that grows with the logarithm of its size (one page is as readable as 64 GiB), a stretch that
 * holds nothing is collapsed to a fixed height, its size ("… 3.5 GiB …") in the address lane. Within a
 * stretch the scale is linear, so zooming in (html.ts) ends at single pages. One axis serves every
 * column of every band: the same address is at the same height everywhere, which is what makes
 * non-identity mappings slant and a host page shared by two guests line up across their bands.
 *
 * The texts. Every text is laid out as a box before it is drawn (`PlacedText`, `textBox`: the font's
 * advance, ascent and descent, so the layout needs no browser to measure it), and each has a place
 * where nothing else is drawn: the title, legend and band headers in rows of their own; addresses,
 * gap sizes and frame numbers in the address lane, where the less important give way; the notes on
 * the pages of a slanted mapping in the connector lane, stacked; and the labels in a lane beside each
 * column, in the order of what they name, moved apart as little as keeps them clear and joined to it by
 * a leader line. Lanes are as wide as their longest text (labels past `labelMax` are cut short); a
 * clipped view (the viewer) keeps only the labels that fit in it, the BARs' first. `sceneLayout` gives
 * the boxes, which the tests hold to geometry: no two overlap, each inside the canvas and its view.
 *
 * Two programs use this code. `renderSvg` runs it here. The HTML viewer runs the same functions in
 * the browser: everything below `pictureScript` is written to be self-contained (no imports, no
 * module-level values, only calls to each other), and `pictureScript` returns their source for the
 * page, where they build the same scene from the embedded report and redraw it at any zoom. A test
 * runs that source in an empty context and checks it draws exactly what `renderSvg` draws.
 */
import type { Report, ReportMsix } from './report.js';

type ReportMsixPart = ReportMsix['table'];

/** The picture as one self-contained SVG document: title, legend, the bands at the whole-map view. */
export function renderSvg(report: Report): string {
  const scene = buildScene(report);
  return renderSceneSvg(scene, wholeView(scene), { chrome: true, defs: true, clip: false });
}

/**
 * The source of the picture functions as a classic script defining `PictureEngine` (`buildScene`,
 * `renderSceneSvg`, `legendSvg`, `defsSvg`, …), for the HTML viewer. The names are read from the
 * functions themselves, so a bundler that renames one keeps the script consistent.
 */
export function pictureScript(): string {
  const api = {
    buildScene,
    renderSceneSvg,
    legendSvg,
    defsSvg,
    wholeView,
    mapTopOf,
    maxScaleOf,
    addrAt,
    tOf,
    sceneItems,
    pictureHex,
  };
  const functions = [
    pictureStyle,
    pictureHex,
    pictureSize,
    pictureApproxSize,
    pictureEscape,
    textSize,
    textWidth,
    textHeight,
    pictureText,
    textBox,
    boxesOverlap,
    boxRowSpan,
    overlapsRows,
    addToRows,
    boxInside,
    fitText,
    textSvg,
    pageNote,
    buildScene,
    buildBand,
    frameCover,
    framesCovered,
    mergeExtents,
    buildAxis,
    layoutBands,
    bandGeometry,
    tOf,
    addrAt,
    wholeView,
    mapTopOf,
    maxScaleOf,
    sceneItems,
    renderSceneSvg,
    defsSvg,
    legendEntries,
    legendWidth,
    legendSvg,
    legendSwatch,
    headerTexts,
    drawScene,
    drawMap,
    drawAxis,
    drawBand,
    placeLabels,
    clipPolygonY,
  ];
  const entries = Object.entries(api)
    .map(([key, fn]) => `${key}: ${fn.name}`)
    .join(', ');
  // Tools that keep function names (esbuild's keepNames, as tsx runs it) wrap nested functions in
  // `__name(fn, "name")`; the page has no such helper, so it gets one that changes nothing.
  const shim = 'var __name = function (fn) { return fn; };';
  return `${shim}\n${functions.map((fn) => fn.toString()).join('\n')}\nconst PictureEngine = { ${entries} };\n`;
}

// ---------------------------------------------------------------------------------------------------
// The scene: what is drawn where, in axis units ("t": pixels at the whole-map view). Everything from
// here on must stay self-contained (see the module comment).

/** A stretch `[start, end)` of the address axis, drawn over `[t0, t1)`. */
export interface AxisInterval {
  readonly start: bigint;
  readonly end: bigint;
  readonly t0: number;
  readonly t1: number;
  /** Nothing in any column: collapsed to a fixed height. */
  readonly gap: boolean;
}

/** Where a shape sits in its column: one of the lanes, or over the BAR lane (holes, marks). */
type Lane = 'bar' | 'p2m' | 'e820' | 'over';

/** One rectangle of a column, with the details shown on hover. */
export interface Shape {
  readonly id: string;
  readonly lane: Lane;
  /** The style: a class of `pictureStyle().css` (`bar`, `msix-table`, `hole-e820`, …). */
  readonly kind: string;
  readonly start: bigint;
  readonly end: bigint;
  /** The device colour of a BAR. */
  readonly fill: string | null;
  readonly label: string | null;
  /** `lbl-bar`, `lbl-minor` or `lbl-warn`. */
  readonly labelClass: string;
  readonly details: readonly string[];
  /** Half the lane, for two marks on one page (an MSI-X table and PBA sharing it). */
  readonly part?: 'left' | 'right';
  /**
   * Equal parts the shape is made of, a tick between each two: a VF BAR array of `count` VFs' BARs
   * of `every` bytes each.
   */
  readonly ticks?: { readonly every: bigint; readonly count: number };
}

/** A band from a guest range to the machine range it maps (or would map, for a BAR not mapped). */
export interface Connector {
  readonly id: string;
  /** `c-identity`, `c-offset`, `c-ram`, `c-other` or `c-bar-off`. */
  readonly kind: string;
  readonly guestStart: bigint;
  readonly guestEnd: bigint;
  readonly hostStart: bigint;
  readonly hostEnd: bigint;
  readonly details: readonly string[];
}

/** One domain: its two columns and their connectors, and where the band sits across the picture. */
export interface Band {
  readonly domain: number;
  readonly title: string;
  readonly subtitle: string;
  readonly crashed: boolean;
  readonly guest: Shape[];
  readonly host: Shape[];
  readonly connectors: Connector[];
  x: number;
  guestLabelW: number;
  /** Between the columns: wide enough for the notes on the pages of its slanted mappings. */
  connW: number;
  hostLabelW: number;
  width: number;
}

/** Everything the picture shows, laid out on the axis. */
export interface Scene {
  readonly title: string;
  readonly subtitle: string;
  readonly status: string;
  readonly intervals: readonly AxisInterval[];
  /** Height of the whole axis in t units. */
  readonly height: number;
  readonly width: number;
  readonly axisW: number;
  readonly bands: readonly Band[];
  /** Said instead of the map when there is nothing to draw. */
  readonly notice: string | null;
}

/** The visible window: axis position at the top, pixels per t unit, pixel height of the map area. */
export interface View {
  readonly top: number;
  readonly scale: number;
  readonly height: number;
}

/** How the SVG is drawn: title and legend (`chrome`), pattern definitions, clipping to the view. */
export interface DrawOptions {
  readonly chrome: boolean;
  readonly defs: boolean;
  readonly clip: boolean;
}

/** Sizes, colours and the style sheet of the picture. */
function pictureStyle() {
  const palette = [
    '#59a14f',
    '#edc948',
    '#76b7b2',
    '#ff9da7',
    '#9c755f',
    '#a0cbe8',
    '#b6992d',
    '#d4a6c8',
    '#8cd17d',
    '#f1ce63',
  ];
  // Font sizes by text class (`text`: the rest), in pixels: the style sheet sets them and the layout
  // measures texts by them.
  const fontSize = {
    text: 11,
    title: 16,
    subtitle: 12,
    'band-title': 12,
    'band-sub': 10,
    caption: 10,
    tick: 10,
    pfn: 10,
    pageaddr: 9,
    pfnmap: 9,
    gaplbl: 10,
    'lbl-minor': 10,
    'lbl-warn': 10,
    notice: 13,
  };
  const css = [
    `text{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:${fontSize.text}px;fill:#1a1a1a}`,
    '.title{font-weight:bold}',
    '.subtitle{fill:#444}',
    '.st-ok{fill:#1b7837;font-weight:bold}.st-failed,.st-error{fill:#c0141b;font-weight:bold}',
    '.band-title{font-weight:bold}.band-sub{fill:#555}',
    '.caption{fill:#555;font-style:italic}',
    '.crashed{fill:#c0141b;font-weight:bold}',
    '.halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}',
    '.tick{fill:#333}.pfn{fill:#1f5fa8;font-weight:bold}',
    '.pageaddr{fill:#777}.pfnmap{fill:#5b3a7a}',
    '.gaplbl{fill:#777;font-style:italic}',
    '.axis{stroke:#777;stroke-width:1}.tickline{stroke:#777;stroke-width:1}',
    '.guide{stroke:#e6e6e6;stroke-width:1}.pageline{stroke:#9db7d8;stroke-width:.7}',
    '.gap{fill:#f2f2f2}.gapedge{stroke:#c8c8c8;stroke-width:1;stroke-dasharray:4 3}',
    '.bandsep{stroke:#d0d0d0;stroke-width:1}',
    '.lane{fill:#fafafa;stroke:#e4e4e4;stroke-width:.6}',
    '.bar{stroke:#333;stroke-width:.7}',
    '.bar-off{fill:#fff;stroke:#444;stroke-width:1;stroke-dasharray:3 2}',
    '.bar-ghost{fill:#e9e9e9;stroke:#b0b0b0;stroke-width:.7}',
    '.vf-bar{stroke:#333;stroke-width:.7;fill-opacity:.6}',
    '.vf-bar-off{fill:#fff;fill-opacity:.4;stroke:#444;stroke-width:1;stroke-dasharray:1 2}',
    '.vf-tick{stroke:#222;stroke-width:.6}',
    '.p2m-identity{fill:#2f6db5}.p2m-offset{fill:#8e44ad}.p2m-ram{fill:#1b7837}.p2m-other{fill:#a6761d}',
    '.c-identity{fill:#2f6db5;fill-opacity:.16;stroke:#2f6db5;stroke-opacity:.55;stroke-width:.7}',
    '.c-offset{fill:#8e44ad;fill-opacity:.18;stroke:#8e44ad;stroke-opacity:.7;stroke-width:.8}',
    '.c-ram{fill:#1b7837;fill-opacity:.14;stroke:#1b7837;stroke-opacity:.5;stroke-width:.7}',
    '.c-other{fill:#a6761d;fill-opacity:.14;stroke:#a6761d;stroke-opacity:.5;stroke-width:.7}',
    '.c-bar-off{fill:none;stroke:#777;stroke-width:.8;stroke-dasharray:3 3}',
    '.msix-table{fill:url(#pat-msix-table);stroke:#111;stroke-width:.8}',
    '.msix-pba{fill:url(#pat-msix-pba);stroke:#111;stroke-width:.8}',
    '.hole-e820{fill:url(#pat-hole-e820);stroke:#666;stroke-width:.8}',
    '.hole-shared-page{fill:url(#pat-hole-shared-page);stroke:#a0430a;stroke-width:.8}',
    '.hole-other-bar{fill:url(#pat-hole-other-bar);stroke:#666;stroke-width:.8}',
    '.hole-unmapped{fill:url(#pat-hole-unmapped);stroke:#c0141b;stroke-width:.8}',
    '.shared{fill:#f28e2b;fill-opacity:.45;stroke:#d45f0a;stroke-width:2.2}',
    '.e820-ram{fill:#b8e0b0}.e820-reserved{fill:#9e9e9e}.e820-acpi{fill:#fdd0a2}',
    '.e820-nvs{fill:#c9c3e6}.e820-unusable{fill:#4d4d4d}',
    '.window{fill:#1f5fa8;fill-opacity:.12;stroke:#1f5fa8;stroke-width:1;stroke-dasharray:4 2}',
    '.violation{fill:#d62728;fill-opacity:.12;stroke:#d62728;stroke-width:2}',
    '.violation-gone{fill:none;stroke:#d62728;stroke-width:1.3;stroke-dasharray:2 2}',
    '.vmark{fill:#d62728;stroke:#fff;stroke-width:.8}.vmark-gone{fill:#fff;stroke:#d62728;stroke-width:1.2}',
    '.lbl-bar{fill:#111}.lbl-minor{fill:#666}.lbl-warn{fill:#a0430a;font-weight:bold}',
    '.leader{stroke:#9a9a9a;stroke-width:.7;fill:none}',
    '.legend-box{fill:#fcfcfc;stroke:#ddd}.legend-title{font-weight:bold}',
    '.notice{fill:#555;font-style:italic}',
    '[data-item]{cursor:pointer}',
    ...Object.entries(fontSize)
      .filter(([cls]) => cls !== 'text')
      .map(([cls, px]) => `.${cls}{font-size:${px}px}`),
  ].join('');
  return {
    page: 4096n,
    /** The architectural physical address width of x86: the axis runs to 2^52 at least. */
    axisEnd: 1n << 52n,
    margin: 16,
    fontSize,
    // A text's box, per pixel of font size: the advance of one character and the height above and
    // below the baseline. DejaVu Sans Mono's (0.602, 0.928, 0.236), rounded up for the whole pixels
    // browsers round them to and a pixel of anti-aliasing, so a layout that keeps these boxes apart
    // keeps the drawn texts apart.
    glyphW: 0.61,
    ascent: 0.95,
    descent: 0.28,
    /** Room left of and right of every text box (italic overhang, anti-aliasing). */
    textPad: 1,
    /** Space between two labels stacked in a lane. */
    labelGap: 1,
    /** How far above the map the first address label may reach (the band headers end above it). */
    axisOverhang: 8,
    minH: 18,
    perDoubling: 6,
    gapH: 30,
    barW: 22,
    p2mW: 8,
    e820W: 8,
    laneGap: 3,
    connW: 72,
    bandGap: 24,
    labelMin: 48,
    labelMax: 330,
    headerH: 50,
    titleH: 52,
    legendRowH: 18,
    legendColW: 300,
    /** Pixels per page from which page boundaries are drawn, and from which frames are labelled. */
    pageLineMin: 20,
    pfnMin: 30,
    /** How tall one page is at the deepest zoom. */
    maxPagePx: 160,
    palette,
    css,
  };
}

/** `0x…`. */
function pictureHex(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/**
 * An exact byte size as people read it: `256 B`, `1 MiB`, `64 GiB` (else the largest exact unit). The
 * text report uses it too; here it is also embedded, by its source, in the HTML page's script.
 */
export function pictureSize(size: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let unit = 0;
  let value = size;
  while (unit < units.length - 1 && value >= 1024n && value % 1024n === 0n) {
    value /= 1024n;
    unit++;
  }
  return `${value} ${units[unit]}`;
}

/** A size rounded for a gap label: `3.5 GiB`, `4032 B`, `1 PiB`. */
function pictureApproxSize(size: bigint): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let unit = 0;
  while (unit < units.length - 1 && size >= 1024n ** BigInt(unit + 1)) unit++;
  const value = Number(size) / 1024 ** unit;
  const text = value >= 100 || Number.isInteger(value) ? String(Math.round(value)) : value.toFixed(1);
  return `${text.replace(/\.0$/, '')} ${units[unit]}`;
}

/** Text for XML and HTML: markup characters escaped, characters XML forbids replaced. */
export function pictureEscape(text: string): string {
  return text
    .replace(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '?')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A rectangle in the picture's units (pixels of the SVG at its own size): `[x0, x1) × [y0, y1)`. */
export interface Box {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

/**
 * One text of the picture: its baseline starts at `(x, y)`, or ends there (`anchor` end), in the font
 * size of its class. The picture draws every text from one of these, so where texts go can be checked
 * on the layout itself (`sceneLayout`), before any browser measures them.
 */
export interface PlacedText {
  readonly text: string;
  /** Its classes (`lbl-bar halo`, …); the first one `pictureStyle().fontSize` has sets its size. */
  readonly cls: string;
  readonly size: number;
  readonly x: number;
  readonly y: number;
  readonly anchor: 'start' | 'end';
  /** The region a clipped view shows it in (the map or the address lane); null: the canvas. */
  readonly clip: Box | null;
  /** The id of the shape a label names (its `data-label`), or null. */
  readonly names: string | null;
  /** A differently styled end, drawn as a `tspan` (the status after the title), or null. */
  readonly tail: { readonly text: string; readonly cls: string } | null;
}

/** The font size of a text of classes `cls` (space-separated). */
function textSize(cls: string): number {
  const S = pictureStyle();
  const sizes: Record<string, number> = S.fontSize;
  for (const c of cls.split(' ')) {
    const size = sizes[c];
    if (size !== undefined) return size;
  }
  return S.fontSize.text;
}

/** The advance width of `text` in a font of `size` pixels (its box adds `textPad` on each side). */
function textWidth(text: string, size: number): number {
  const S = pictureStyle();
  return [...text].length * S.glyphW * size;
}

/** The height of the box of a text in a font of `size` pixels. */
function textHeight(size: number): number {
  const S = pictureStyle();
  return (S.ascent + S.descent) * size;
}

/**
 * A text of class `cls`; `y` is its baseline, or with `centred` the middle of its box. Positions are
 * rounded as the SVG writes them, so the layout is what is drawn.
 */
function pictureText(spec: {
  text: string;
  cls: string;
  x: number;
  y: number;
  centred?: boolean;
  anchor?: 'start' | 'end';
  clip?: Box | null;
  names?: string | null;
  tail?: { text: string; cls: string } | null;
}): PlacedText {
  const S = pictureStyle();
  const size = textSize(spec.cls);
  const y = spec.centred === true ? spec.y + ((S.ascent - S.descent) * size) / 2 : spec.y;
  const round = (v: number): number => Math.round(v * 100) / 100;
  return {
    text: spec.text,
    cls: spec.cls,
    size,
    x: round(spec.x),
    y: round(y),
    anchor: spec.anchor ?? 'start',
    clip: spec.clip ?? null,
    names: spec.names ?? null,
    tail: spec.tail ?? null,
  };
}

/** The box a text covers (see `pictureStyle().glyphW`). */
export function textBox(t: PlacedText): Box {
  const S = pictureStyle();
  const w = textWidth(t.tail === null ? t.text : t.text + t.tail.text, t.size) + 2 * S.textPad;
  const x0 = t.anchor === 'end' ? t.x + S.textPad - w : t.x - S.textPad;
  return { x0, y0: t.y - S.ascent * t.size, x1: x0 + w, y1: t.y + S.descent * t.size };
}

/** Whether two boxes share some area (boxes that only touch do not). */
export function boxesOverlap(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/**
 * Boxes filed by the rows of 64 pixels they reach into (`boxRowSpan`), so that whether a new box overlaps
 * one of them is asked of its neighbours only: two boxes that overlap share a row. The address lane
 * of a picture of thousands of BARs has thousands of labels, and testing each against every label
 * kept before was quadratic.
 */
export type BoxRows = Map<number, Box[]>;

/** The rows of `boxRows` that `box` reaches into, first and last (a text box is a row or two). */
function boxRowSpan(box: Box): [number, number] {
  const rowH = 64;
  return [Math.floor(box.y0 / rowH), Math.floor(box.y1 / rowH)];
}

/** Whether `box` overlaps a box of `rows` (`boxesOverlap`). */
export function overlapsRows(rows: BoxRows, box: Box): boolean {
  const [first, last] = boxRowSpan(box);
  for (let row = first; row <= last; row++) {
    for (const other of rows.get(row) ?? []) if (boxesOverlap(other, box)) return true;
  }
  return false;
}

/** Files `box` in `rows`. */
export function addToRows(rows: BoxRows, box: Box): void {
  const [first, last] = boxRowSpan(box);
  for (let row = first; row <= last; row++) {
    const filed = rows.get(row);
    if (filed === undefined) rows.set(row, [box]);
    else filed.push(box);
  }
}

/** Whether `inner` lies inside `outer`. */
function boxInside(inner: Box, outer: Box): boolean {
  return inner.x0 >= outer.x0 && inner.x1 <= outer.x1 && inner.y0 >= outer.y0 && inner.y1 <= outer.y1;
}

/** `text`, cut short with `…` to fit `width` in a font of `size` pixels. */
function fitText(text: string, width: number, size: number): string {
  const S = pictureStyle();
  const chars = [...text];
  const fit = Math.floor((width - 2 * S.textPad) / (S.glyphW * size));
  return chars.length <= fit ? text : `${chars.slice(0, Math.max(1, fit - 1)).join('')}…`;
}

/** The SVG element of a text. */
function textSvg(t: PlacedText): string {
  const esc = pictureEscape;
  const cls = t.cls === '' ? '' : ` class="${t.cls}"`;
  const anchor = t.anchor === 'end' ? ' text-anchor="end"' : '';
  const names = t.names === null ? '' : ` data-label="${esc(t.names)}"`;
  const tail = t.tail === null ? '' : `<tspan class="${esc(t.tail.cls)}">${esc(t.tail.text)}</tspan>`;
  return `<text${cls} x="${t.x}" y="${t.y}"${anchor}${names}>${esc(t.text)}${tail}</text>`;
}

/** What a page note says: where a guest page maps (`guest`), or which guest page maps a host page. */
function pageNote(side: 'guest' | 'host', frame: bigint): string {
  return side === 'guest' ? `→ mfn ${pictureHex(frame)}` : `gfn ${pictureHex(frame)} ←`;
}

/** The scene of a report: the bands with their shapes, the broken axis, the geometry. */
export function buildScene(report: Report): Scene {
  const S = pictureStyle();
  const m = report.machine;
  const colours = new Map<string, string>();
  report.devices.forEach((device, i) => {
    colours.set(device.sbdf, S.palette[i % S.palette.length]!);
  });
  const domains = [...report.domains].sort(
    (a, b) => (a.kind === 'hardware' ? 0 : 1) - (b.kind === 'hardware' ? 0 : 1) || a.id - b.id,
  );
  const bands = domains.map((domain, i) => buildBand(report, domain, colours, i === 0));
  const ranges: [bigint, bigint][] = [];
  for (const band of bands) {
    for (const shape of [...band.guest, ...band.host]) ranges.push([shape.start, shape.end]);
    for (const c of band.connectors) {
      ranges.push([c.guestStart, c.guestEnd]);
      ranges.push([c.hostStart, c.hostEnd]);
    }
  }
  const intervals = buildAxis(ranges);
  const last = intervals[intervals.length - 1];
  const height = last === undefined ? 0 : last.t1;
  const axisW = Math.round(
    textWidth(pictureHex(intervals.length > 0 ? last!.end : S.axisEnd), S.fontSize.text) + 24,
  );
  // Wide enough for the bands and for three columns of the legend.
  const width = Math.ceil(Math.max(layoutBands(bands, axisW), legendWidth(3) + 2 * S.margin));
  const violations = report.violations.length;
  const expected = report.violations.filter((v) => v.expected === true).length;
  const a = report.assertions;
  const subtitle = [
    m === null ? 'no machine' : `${m.vendor}, IOMMU ${m.iommu ? 'on' : 'off'}`,
    `${report.applied} events from ${report.lines} lines`,
    `assertions ${a.passed}/${a.total} passed`,
    `${violations} violation${violations === 1 ? '' : 's'}${violations > 0 ? ` (${expected} expected)` : ''}`,
    report.error === null ? '' : `stopped at line ${report.error.line}`,
  ]
    .filter((s) => s !== '')
    .join(' · ');
  const notice =
    m === null
      ? 'Nothing to draw: the trace built no machine.'
      : bands.every((b) => b.guest.length === 0 && b.host.length === 0)
        ? 'Nothing mapped and no memory BARs: the whole address space is one gap.'
        : null;
  return {
    title: `${report.trace} — profile ${m === null ? '-' : m.profile} — status `,
    subtitle,
    status: report.status,
    intervals,
    height,
    width,
    axisW,
    bands,
    notice,
  };
}

/** One domain's band: its BARs, extents, e820 entries, marks and violations in both columns. */
function buildBand(
  report: Report,
  domain: Report['domains'][number],
  colours: ReadonlyMap<string, string>,
  labelE820: boolean,
): Band {
  const P = 4096n;
  const hex = pictureHex;
  const size = pictureSize;
  const d = domain.id;
  const guest: Shape[] = [];
  const host: Shape[] = [];
  const connectors: Connector[] = [];
  const ownsDevice = (dev: Report['devices'][number]): boolean =>
    dev.owner === d || (dev.hidden && domain.kind === 'hardware');
  const owned = report.devices.filter(ownsDevice);
  const memoryBars = (dev: Report['devices'][number]) =>
    dev.bars.filter((bar) => bar.type !== 'io' && BigInt(bar.size) > 0n);
  const barName = (bar: { index: number; type: string }): string =>
    bar.type === 'rom' ? 'ROM' : `BAR${bar.index}`;
  const span = (first: bigint, last: bigint): string =>
    first === last ? hex(first) : `${hex(first)}-${hex(last)}`;
  const ownerText = (dev: Report['devices'][number]): string =>
    dev.hidden ? 'dom_xen (hidden, through d0)' : dev.owner === null ? 'none' : `d${dev.owner}`;
  const findBar = (name: string) => {
    const [sbdf, which] = name.split(' ');
    const dev = report.devices.find((x) => x.sbdf === sbdf);
    const bar = dev?.bars.find((b) => barName(b) === which);
    return dev === undefined || bar === undefined ? undefined : { dev, bar };
  };
  const frames = (lo: bigint, end: bigint): [bigint, bigint] => [lo / P, (end + P - 1n) / P - 1n];
  // Secondary labels name other devices as lspci does, without the usual segment 0000.
  const short = (name: string): string => (name.startsWith('0000:') ? name.slice(5) : name);
  // Guest frames covered by this domain's own BARs: extents outside them get a label of their own.
  const barFrames: [bigint, bigint][] = [];
  for (const dev of owned) {
    for (const bar of memoryBars(dev)) {
      if (bar.gfns !== null) barFrames.push([BigInt(bar.gfns[0]), BigInt(bar.gfns[1])]);
    }
  }

  // The host memory map: in every band's host column, so RAM and reserved ranges are in view;
  // labelled in the first band only, as it is the same everywhere.
  (report.machine?.e820 ?? []).forEach((e, i) => {
    const start = BigInt(e.addr);
    const end = start + BigInt(e.size);
    if (end <= start) return;
    host.push({
      id: `d${d}:e820:${i}`,
      lane: 'e820',
      kind: `e820-${e.type}`,
      start,
      end,
      fill: null,
      label: labelE820 ? `e820 ${e.type} ${pictureApproxSize(end - start)}` : null,
      labelClass: 'lbl-minor',
      details: [`e820 ${e.type}: ${hex(start)}-${hex(end - 1n)} (${pictureApproxSize(end - start)})`],
    });
  });

  // The memory windows of this domain's PCI-to-PCI bridges (a QEMU log's), in the host column: the
  // machine addresses each bridge forwards. Never BARs.
  for (const q of report.qemu?.devices ?? []) {
    // A device that left (hot unplug) shares its address with the one there now: not drawn.
    if (q.unplugged !== undefined || !owned.some((dev) => dev.sbdf === q.sbdf)) continue;
    for (const w of q.windows) {
      if (w.kind === 'io' || w.base === null || w.limit === null || BigInt(w.base) > BigInt(w.limit))
        continue;
      const start = BigInt(w.base);
      const end = BigInt(w.limit) + 1n;
      host.push({
        id: `d${d}:window:${q.sbdf}:${w.kind}`,
        lane: 'e820',
        kind: 'window',
        start,
        end,
        fill: null,
        label: `${short(q.sbdf)} ${w.kind} window ${size(end - start)}`,
        labelClass: 'lbl-minor',
        details: [
          `${q.sbdf} (${q.name}) ${w.kind} window: ${hex(start)}-${hex(end - 1n)} (${size(end - start)})`,
          'what the bridge forwards to its secondary bus; not a BAR',
        ],
      });
    }
  }

  // The p2m, as runs of extents that continue each other, in both columns with a connector.
  const barCover = frameCover(barFrames);
  mergeExtents(domain.p2m).forEach((run, i) => {
    const identity = run.gfn === run.mfn;
    const group =
      run.type === 'mmio_direct'
        ? identity
          ? 'identity'
          : 'offset'
        : run.type.startsWith('ram')
          ? 'ram'
          : 'other';
    const count = BigInt(run.count);
    const offset = run.mfn - run.gfn;
    const details = [
      `d${d} p2m ${run.type}: gfn ${span(run.gfn, run.gfn + count - 1n)} -> mfn ${span(run.mfn, run.mfn + count - 1n)}`,
      `${run.count} page${run.count === 1 ? '' : 's'} (${size(count * P)}), leaf order ${run.orders}`,
      identity
        ? 'identity: gfn = mfn'
        : `non-identity: mfn = gfn ${offset < 0n ? '-' : '+'} ${hex(offset < 0n ? -offset : offset)}`,
    ];
    const base = {
      lane: 'p2m' as const,
      kind: `p2m-${group}`,
      fill: null,
      label: null,
      labelClass: '',
      details,
    };
    // Covered by the BARs together (one run often spans several adjacent BARs)?
    const inBar = framesCovered(barCover, run.gfn, run.gfn + count - 1n);
    guest.push({
      ...base,
      id: `d${d}:p2m:${i}:g`,
      start: run.gfn * P,
      end: (run.gfn + count) * P,
      label: inBar ? null : `${run.type} ${size(count * P)}`,
      labelClass: 'lbl-minor',
    });
    host.push({ ...base, id: `d${d}:p2m:${i}:h`, start: run.mfn * P, end: (run.mfn + count) * P });
    connectors.push({
      id: `d${d}:p2m:${i}:c`,
      kind: `c-${group}`,
      guestStart: run.gfn * P,
      guestEnd: (run.gfn + count) * P,
      hostStart: run.mfn * P,
      hostEnd: (run.mfn + count) * P,
      details,
    });
  });

  // Other domains' BARs, greyed in the host column: what else lives in these machine pages.
  const sharedWithOwned = new Set<string>();
  for (const dev of owned)
    for (const bar of memoryBars(dev)) for (const o of bar.sharesPageWith) sharedWithOwned.add(o);
  for (const dev of report.devices) {
    if (ownsDevice(dev)) continue;
    for (const bar of memoryBars(dev)) {
      const start = BigInt(bar.addr);
      const end = start + BigInt(bar.size);
      const name = `${dev.sbdf} ${barName(bar)}`;
      host.push({
        id: `d${d}:ghost:${dev.sbdf}:${bar.index}`,
        lane: 'bar',
        kind: 'bar-ghost',
        start,
        end,
        fill: null,
        label: sharedWithOwned.has(name) ? `${short(name)} (${ownerText(dev)})` : null,
        labelClass: 'lbl-minor',
        details: [
          `${name} ${bar.type} ${size(end - start)}: owner ${ownerText(dev)}`,
          `host ${hex(start)}-${hex(end - 1n)}`,
        ],
      });
    }
  }

  // This domain's BARs in both columns, their holes and their shared pages.
  const sharedSeen = new Set<string>();
  // A VF of a PF this domain owns is drawn as part of the PF's VF BAR arrays (below): its BARs get
  // no shapes or labels of their own there, its holes and MSI-X pages are still marked.
  const ownedSbdfs = new Set(owned.map((dev) => dev.sbdf));
  for (const dev of owned) {
    const fill = colours.get(dev.sbdf) ?? '#cccccc';
    const inArray = dev.physfn !== undefined && ownedSbdfs.has(dev.physfn.sbdf);
    for (const bar of memoryBars(dev)) {
      const name = `${dev.sbdf} ${barName(bar)}`;
      const barSize = BigInt(bar.size);
      const addr = BigInt(bar.addr);
      const guestAddr = bar.guestAddr === null ? null : BigInt(bar.guestAddr);
      // Not mapped is said by the dashed outline (and the details), keeping labels short.
      const label = `${name} ${size(barSize)}${dev.hidden ? ' (hidden)' : ''}`;
      const details = [
        `${name} ${bar.type}${bar.prefetchable ? ' prefetchable' : ''} ${size(barSize)}, ${bar.enabled ? 'mapped' : 'not mapped'}`,
        `owner ${ownerText(dev)}${dev.guestSbdf === null ? '' : `, seen at ${dev.guestSbdf}`}`,
        guestAddr === null
          ? 'guest -'
          : `guest ${hex(guestAddr)}-${hex(guestAddr + barSize - 1n)}  gfn ${bar.gfns === null ? '-' : span(BigInt(bar.gfns[0]), BigInt(bar.gfns[1]))}`,
        `host  ${hex(addr)}-${hex(addr + barSize - 1n)}  mfn ${bar.mfns === null ? '-' : span(BigInt(bar.mfns[0]), BigInt(bar.mfns[1]))}`,
        bar.holes.length === 0
          ? 'holes: none'
          : `holes: ${bar.holes.map((h) => `gfn ${h.gfn}${h.count > 1 ? ` +${h.count}` : ''} ${h.reason}`).join(', ')}`,
        ...(bar.sharesPageWith.length === 0 ? [] : [`shares a page with ${bar.sharesPageWith.join(', ')}`]),
        ...(dev.physfn === undefined ? [] : [`VF ${dev.physfn.vf} of ${dev.physfn.sbdf}`]),
      ];
      const kind = bar.enabled ? 'bar' : 'bar-off';
      const base = {
        lane: 'bar' as const,
        kind,
        fill: bar.enabled ? fill : null,
        label,
        labelClass: 'lbl-bar',
        details,
      };
      if (guestAddr !== null && !inArray) {
        guest.push({
          ...base,
          id: `d${d}:bar:${dev.sbdf}:${bar.index}:g`,
          start: guestAddr,
          end: guestAddr + barSize,
        });
      }
      // At the same address in both columns (the hardware domain), the guest label names both.
      if (!inArray) {
        host.push({
          ...base,
          id: `d${d}:bar:${dev.sbdf}:${bar.index}:h`,
          start: addr,
          end: addr + barSize,
          label: guestAddr === addr ? null : label,
        });
      }
      if (!bar.enabled && guestAddr !== null && !inArray) {
        connectors.push({
          id: `d${d}:bar:${dev.sbdf}:${bar.index}:c`,
          kind: 'c-bar-off',
          guestStart: guestAddr,
          guestEnd: guestAddr + barSize,
          hostStart: addr,
          hostEnd: addr + barSize,
          details,
        });
      }
      const explain: Record<string, string> = {
        e820: 'covered by the host memory map (pci_sanitize_bar_memory)',
        'shared-page': "withheld: the host page holds another domain's BAR (refuseSubpageSharing)",
        'other-bar': 'mapped for another BAR in the same page',
        unmapped: 'not mapped, and nothing explains it',
      };
      bar.holes.forEach((h, i) => {
        // MSI-X holes are drawn from the MSI-X structures below, mapped or not.
        if (h.reason === 'msix-table' || h.reason === 'msix-pba') return;
        const gfn = BigInt(h.gfn);
        guest.push({
          id: `d${d}:hole:${dev.sbdf}:${bar.index}:${i}`,
          lane: 'over',
          kind: `hole-${h.reason}`,
          start: gfn * P,
          end: (gfn + BigInt(h.count)) * P,
          fill: null,
          label: null,
          labelClass: '',
          details: [
            `${name} hole: gfn ${span(gfn, gfn + BigInt(h.count) - 1n)}: ${h.reason}`,
            explain[h.reason] ?? h.reason,
          ],
        });
      });
      for (const otherName of bar.sharesPageWith) {
        const other = findBar(otherName);
        if (other === undefined || bar.mfns === null || other.bar.mfns === null) continue;
        const lo =
          BigInt(bar.mfns[0]) > BigInt(other.bar.mfns[0]) ? BigInt(bar.mfns[0]) : BigInt(other.bar.mfns[0]);
        const hi =
          BigInt(bar.mfns[1]) < BigInt(other.bar.mfns[1]) ? BigInt(bar.mfns[1]) : BigInt(other.bar.mfns[1]);
        if (lo > hi) continue;
        const otherOwner = ownerText(other.dev);
        const sharedDetails = [
          `host page${lo === hi ? '' : 's'} mfn ${span(lo, hi)} shared between devices`,
          `${name} (${ownerText(dev)}) and ${otherName} (${otherOwner})`,
        ];
        const hostKey = `h:${lo}:${hi}`;
        if (!sharedSeen.has(hostKey)) {
          sharedSeen.add(hostKey);
          host.push({
            id: `d${d}:shared:${dev.sbdf}:${bar.index}:${otherName}:h`,
            lane: 'over',
            kind: 'shared',
            start: lo * P,
            end: (hi + 1n) * P,
            fill: null,
            label: `shared with ${short(otherName)} (${otherOwner})`,
            labelClass: 'lbl-warn',
            details: sharedDetails,
          });
        }
        if (bar.gfns !== null) {
          const shift = BigInt(bar.mfns[0]) - BigInt(bar.gfns[0]);
          const guestKey = `g:${lo - shift}:${hi - shift}`;
          if (sharedSeen.has(guestKey)) continue;
          sharedSeen.add(guestKey);
          guest.push({
            id: `d${d}:shared:${dev.sbdf}:${bar.index}:${otherName}:g`,
            lane: 'over',
            kind: 'shared',
            start: (lo - shift) * P,
            end: (hi - shift + 1n) * P,
            fill: null,
            label: null,
            labelClass: '',
            details: [...sharedDetails, `guest gfn ${span(lo - shift, hi - shift)} in d${d}`],
          });
        }
      }
    }
    // MSI-X table and PBA pages: in the guest from the report's guest frames, on the host from the
    // BAR's host address plus the structure's offset.
    const msix = dev.msix;
    // A PBA a QEMU log never showed is put with the table and is no page of its own: not drawn.
    const pbaUnknown = (report.qemu?.devices ?? []).some(
      (q) =>
        q.sbdf === dev.sbdf && q.unplugged === undefined && q.unknown.some((u) => u.what === 'MSI-X PBA'),
    );
    if (msix !== null) {
      const hostStart = (st: ReportMsixPart): bigint | null => {
        const bar = dev.bars.find((b) => b.index === st.bar);
        return bar === undefined || bar.type === 'io' ? null : BigInt(bar.addr) + BigInt(st.offset);
      };
      const t = hostStart(msix.table);
      const b = hostStart(msix.pba);
      const overlap = (lo1: bigint, hi1: bigint, lo2: bigint, hi2: bigint): boolean =>
        lo1 <= hi2 && lo2 <= hi1;
      const guestShared =
        !pbaUnknown &&
        overlap(
          BigInt(msix.table.gfns[0]),
          BigInt(msix.table.gfns[1]),
          BigInt(msix.pba.gfns[0]),
          BigInt(msix.pba.gfns[1]),
        );
      const hostShared =
        !pbaUnknown &&
        t !== null &&
        b !== null &&
        overlap(...frames(t, t + BigInt(msix.table.size)), ...frames(b, b + BigInt(msix.pba.size)));
      const half = (which: 'table' | 'pba', shared: boolean) =>
        shared ? { part: which === 'table' ? ('left' as const) : ('right' as const) } : {};
      for (const [which, s] of [
        ['table', msix.table],
        ['pba', msix.pba],
      ] as const) {
        if (which === 'pba' && pbaUnknown) continue;
        const bar = dev.bars.find((b) => b.index === s.bar);
        const what = which === 'table' ? 'MSI-X table' : 'MSI-X PBA';
        const first = BigInt(s.gfns[0]);
        const last = BigInt(s.gfns[1]);
        const details = [
          `${dev.sbdf} ${what}: BAR${s.bar} + ${s.offset}, ${s.size} bytes (${msix.entries} entries${msix.enabled ? ', enabled' : ''}${msix.masked ? ', masked' : ''})`,
          `guest gfn ${span(first, last)}: kept unmapped so Xen traps accesses`,
        ];
        guest.push({
          id: `d${d}:msix:${dev.sbdf}:${which}:g`,
          lane: 'over',
          kind: `msix-${which}`,
          start: first * P,
          end: (last + 1n) * P,
          fill: null,
          label: inArray ? null : what,
          labelClass: 'lbl-minor',
          details,
          ...half(which, guestShared),
        });
        if (bar !== undefined && bar.type !== 'io') {
          const start = BigInt(bar.addr) + BigInt(s.offset);
          const [hFirst, hLast] = frames(start, start + BigInt(s.size));
          host.push({
            id: `d${d}:msix:${dev.sbdf}:${which}:h`,
            lane: 'over',
            kind: `msix-${which}`,
            start: hFirst * P,
            end: (hLast + 1n) * P,
            fill: null,
            label: null,
            labelClass: '',
            details: [...details, `host mfn ${span(hFirst, hLast)}`],
            ...half(which, hostShared),
          });
        }
      }
    }
  }

  // Each owned PF's VF BAR arrays: one band per VF BAR slot over the NumVFs VFs' BARs, a tick
  // between each two VFs; at the same address in the hardware domain's guest column (its p2m maps
  // VF BARs where they are).
  for (const dev of owned) {
    const sriov = dev.sriov;
    if (sriov === undefined) continue;
    const fill = colours.get(dev.sbdf) ?? '#cccccc';
    const vfText = (v: { index: number; sbdf: string }): string => {
      const vf = report.devices.find((x) => x.sbdf === v.sbdf);
      return `VF ${v.index} ${short(v.sbdf)} (${vf === undefined ? 'none' : ownerText(vf)})`;
    };
    const listed = sriov.vfs.slice(0, 8).map(vfText);
    for (const bar of sriov.vfBars) {
      if (bar.span === null) continue;
      const start = BigInt(bar.span[0]);
      const end = BigInt(bar.span[1]) + 1n;
      const each = BigInt(bar.size);
      const name = `${dev.sbdf} VF BAR${bar.index}`;
      const label = `${name} ${sriov.numVfs} × ${size(each)}`;
      const details = [
        `${name} ${bar.type}${bar.prefetchable ? ' prefetchable' : ''}: ${sriov.numVfs} VF${sriov.numVfs === 1 ? '' : 's'} × ${size(each)} (VF n at ${hex(start)} + n × ${hex(each)})`,
        `host ${hex(start)}-${hex(end - 1n)} (${size(end - start)}), VF MSE ${sriov.vfMemorySpace ? 'on' : 'off'}, VF Enable ${sriov.vfEnable ? 'on' : 'off'}`,
        sriov.vfs.length === 0
          ? 'no VF on the machine'
          : `VFs on the machine: ${listed.join(', ')}${sriov.vfs.length > listed.length ? `, … ${sriov.vfs.length - listed.length} more` : ''}`,
      ];
      const base = {
        lane: 'bar' as const,
        kind: sriov.vfMemorySpace ? 'vf-bar' : 'vf-bar-off',
        start,
        end,
        fill: sriov.vfMemorySpace ? fill : null,
        label,
        labelClass: 'lbl-bar',
        details,
        ticks: { every: each, count: sriov.numVfs },
      };
      if (domain.kind === 'hardware') guest.push({ ...base, id: `d${d}:vfbar:${dev.sbdf}:${bar.index}:g` });
      host.push({
        ...base,
        id: `d${d}:vfbar:${dev.sbdf}:${bar.index}:h`,
        label: domain.kind === 'hardware' ? null : label,
      });
    }
  }

  // Violations where the report locates them: a guest frame, a machine frame, or a BAR.
  report.violations.forEach((v, i) => {
    const kind = v.present === true ? 'violation' : 'violation-gone';
    const details = [
      `violation at line ${String(v.line)}: ${String(v.message)}`,
      `${v.expected === true ? 'expected (declared by the trace)' : 'unexpected'}, ${v.present === true ? 'still present at the end' : 'gone by the end'}`,
    ];
    const count = typeof v.count === 'number' ? BigInt(v.count) : 1n;
    const mark = (column: Shape[], side: string, start: bigint, end: bigint): void => {
      column.push({
        id: `d${d}:violation:${i}:${side}`,
        lane: 'over',
        kind,
        start,
        end,
        fill: null,
        label: null,
        labelClass: '',
        details,
      });
    };
    if (v.domain === d) {
      if (typeof v.gfn === 'string') mark(guest, 'g', BigInt(v.gfn) * P, (BigInt(v.gfn) + count) * P);
      if (typeof v.mfn === 'string') mark(host, 'h', BigInt(v.mfn) * P, (BigInt(v.mfn) + count) * P);
      return;
    }
    if (v.domain === undefined && typeof v.sbdf === 'string' && typeof v.bar === 'number') {
      const dev = owned.find((x) => x.sbdf === v.sbdf);
      const bar = dev?.bars.find((b) => b.index === v.bar);
      if (bar === undefined || bar.type === 'io') return;
      const at = typeof v.guestAddr === 'string' ? v.guestAddr : bar.guestAddr;
      if (at !== null) mark(guest, 'g', BigInt(at), BigInt(at) + BigInt(bar.size));
    }
  });

  const kind = domain.kind === 'hardware' ? 'hardware domain' : 'guest';
  return {
    domain: d,
    title: `d${d} ${kind}${domain.crashed ? ' CRASHED' : ''}`,
    subtitle: `${domain.vcpus} vCPU${domain.vcpus === 1 ? '' : 's'} · ${domain.mappedFrames} frame${domain.mappedFrames === 1 ? '' : 's'} in ${domain.p2m.length} extent${domain.p2m.length === 1 ? '' : 's'}`,
    crashed: domain.crashed,
    guest,
    host,
    connectors,
    x: 0,
    guestLabelW: 0,
    connW: 0,
    hostLabelW: 0,
    width: 0,
  };
}

/**
 * The frames of `ranges` (inclusive `[first, last]` pairs, in any order, overlapping or not) as the
 * fewest disjoint ranges in frame order, two that meet end to start joined: the cover
 * `framesCovered` searches. Sorting once, then a search per question, keeps a band of thousands of
 * BARs and extents at n log n (each extent used to walk the sorted BARs from the lowest).
 */
export function frameCover(ranges: readonly (readonly [bigint, bigint])[]): [bigint, bigint][] {
  const sorted = [...ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const cover: [bigint, bigint][] = [];
  for (const [first, last] of sorted) {
    const prev = cover[cover.length - 1];
    if (prev !== undefined && first <= prev[1] + 1n) {
      if (last > prev[1]) prev[1] = last;
    } else {
      cover.push([first, last]);
    }
  }
  return cover;
}

/** Whether every frame of `[first, last]` lies in `cover` (a `frameCover`), by binary search. */
export function framesCovered(
  cover: readonly (readonly [bigint, bigint])[],
  first: bigint,
  last: bigint,
): boolean {
  // The last range starting at or before `first`: the only one that can hold it (ranges are disjoint
  // and do not meet, so `[first, last]` is covered only by a single one).
  let lo = 0;
  let hi = cover.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cover[mid]![0] <= first) lo = mid + 1;
    else hi = mid;
  }
  const range = cover[lo - 1];
  return range !== undefined && range[1] >= last;
}

/** The p2m extents joined into runs that continue each other (same type, gfn and mfn contiguous). */
function mergeExtents(extents: Report['domains'][number]['p2m']) {
  const runs: { gfn: bigint; mfn: bigint; count: number; type: string; orders: string }[] = [];
  const orderName = (order: number): string =>
    order === 0 ? '4K' : order === 9 ? '2M' : order === 18 ? '1G' : `${order}`;
  for (const e of extents) {
    const gfn = BigInt(e.gfn);
    const mfn = BigInt(e.mfn);
    const prev = runs[runs.length - 1];
    if (
      prev !== undefined &&
      prev.type === e.type &&
      prev.gfn + BigInt(prev.count) === gfn &&
      prev.mfn + BigInt(prev.count) === mfn
    ) {
      prev.count += e.count;
      if (!prev.orders.split('+').includes(orderName(e.order))) prev.orders += `+${orderName(e.order)}`;
    } else {
      runs.push({ gfn, mfn, count: e.count, type: e.type, orders: orderName(e.order) });
    }
  }
  return runs;
}

/**
 * The broken axis over `[0, max(2^52, highest end))`: a stretch between two consecutive boundaries of
 * the ranges is drawn `minH + perDoubling·log2(pages)` tall when a range covers it, `gapH` when none
 * does.
 */
function buildAxis(ranges: readonly (readonly [bigint, bigint])[]): AxisInterval[] {
  const S = pictureStyle();
  let end = S.axisEnd;
  const delta = new Map<bigint, number>([
    [0n, 0],
    [end, 0],
  ]);
  for (const [s, e] of ranges) {
    if (e <= s) continue;
    if (e > end) end = e;
    delta.set(s, (delta.get(s) ?? 0) + 1);
    delta.set(e, (delta.get(e) ?? 0) - 1);
  }
  if (!delta.has(end)) delta.set(end, 0);
  const points = [...delta.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: AxisInterval[] = [];
  let depth = 0;
  let t = 0;
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]!;
    const stop = points[i + 1]!;
    depth += delta.get(start) ?? 0;
    const gap = depth <= 0;
    const prev = out[out.length - 1];
    if (gap && prev?.gap === true) {
      out[out.length - 1] = { ...prev, end: stop };
      continue;
    }
    const pages = Number(stop - start) / Number(S.page);
    const h = gap ? S.gapH : S.minH + S.perDoubling * Math.log2(Math.max(1, pages));
    const t1 = Math.round((t + h) * 100) / 100;
    out.push({ start, end: stop, t0: t, t1, gap });
    t = t1;
  }
  return out;
}

/**
 * Places the bands across the picture: label lanes as wide as their longest label (up to `labelMax`,
 * longer ones are cut short), the connector lane as wide as its longest page note. Returns the width.
 */
function layoutBands(bands: Band[], axisW: number): number {
  const S = pictureStyle();
  const widthOf = (shapes: readonly Shape[]): number => {
    let w = 0;
    for (const s of shapes) {
      if (s.label !== null) w = Math.max(w, textWidth(s.label, textSize(s.labelClass)) + 2 * S.textPad);
    }
    return Math.min(S.labelMax, Math.max(S.labelMin, Math.ceil(w + 18)));
  };
  const notesW = (band: Band): number => {
    let w = 0;
    for (const c of band.connectors) {
      if (c.kind === 'c-bar-off' || c.guestStart === c.hostStart) continue;
      // The longest notes are those of the last pages (the numbers only grow).
      const guestNote = pageNote('guest', (c.hostEnd - 1n) / S.page);
      const hostNote = pageNote('host', (c.guestEnd - 1n) / S.page);
      for (const note of [guestNote, hostNote]) w = Math.max(w, textWidth(note, S.fontSize.pfnmap));
    }
    return w === 0 ? 0 : w + 2 * S.textPad + 8;
  };
  let x = S.margin + axisW;
  for (const band of bands) {
    band.x = x;
    band.guestLabelW = widthOf(band.guest);
    band.connW = Math.max(S.connW, Math.ceil(notesW(band)));
    band.hostLabelW = widthOf(band.host);
    band.width =
      band.guestLabelW +
      S.barW +
      S.laneGap +
      S.p2mW +
      band.connW +
      S.p2mW +
      S.laneGap +
      S.barW +
      S.laneGap +
      S.e820W +
      band.hostLabelW;
    // Wide enough for its own title and subtitle, so they never run into the next band.
    const title =
      Math.max(
        textWidth(band.title, S.fontSize['band-title']),
        textWidth(band.subtitle, S.fontSize['band-sub']),
      ) +
      2 * S.textPad +
      8;
    if (band.width < title) {
      band.hostLabelW += Math.ceil(title - band.width);
      band.width = Math.ceil(title);
    }
    x += band.width + S.bandGap;
  }
  return x - (bands.length > 0 ? S.bandGap : 0) + S.margin;
}

/** The x positions of a band's lanes. */
function bandGeometry(band: Band) {
  const S = pictureStyle();
  const guestBarX = band.x + band.guestLabelW;
  const guestP2mX = guestBarX + S.barW + S.laneGap;
  const connX0 = guestP2mX + S.p2mW;
  const hostP2mX = connX0 + band.connW;
  const hostBarX = hostP2mX + S.p2mW + S.laneGap;
  const hostE820X = hostBarX + S.barW + S.laneGap;
  const hostLabelX = hostE820X + S.e820W;
  return { guestBarX, guestP2mX, connX0, connX1: hostP2mX, hostP2mX, hostBarX, hostE820X, hostLabelX };
}

/** The axis position of an address (the end of the axis for addresses past it). */
export function tOf(intervals: readonly AxisInterval[], addr: bigint): number {
  let lo = 0;
  let hi = intervals.length - 1;
  if (hi < 0) return 0;
  if (addr >= intervals[hi]!.end) return intervals[hi]!.t1;
  if (addr <= 0n) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (intervals[mid]!.start <= addr) lo = mid;
    else hi = mid - 1;
  }
  const iv = intervals[lo]!;
  return iv.t0 + ((iv.t1 - iv.t0) * Number(addr - iv.start)) / Number(iv.end - iv.start);
}

/** The address at an axis position (inverse of `tOf`, to the byte). */
function addrAt(intervals: readonly AxisInterval[], t: number): bigint {
  if (intervals.length === 0 || t <= 0) return 0n;
  let lo = 0;
  let hi = intervals.length - 1;
  if (t >= intervals[hi]!.t1) return intervals[hi]!.end;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (intervals[mid]!.t0 <= t) lo = mid;
    else hi = mid - 1;
  }
  const iv = intervals[lo]!;
  const frac = (t - iv.t0) / (iv.t1 - iv.t0);
  return iv.start + BigInt(Math.floor(frac * Number(iv.end - iv.start)));
}

/** The whole map at one pixel per axis unit (the SVG's view). */
export function wholeView(scene: Scene): View {
  return { top: 0, scale: 1, height: scene.height };
}

/** Where the map area starts: below the title and legend (`chrome`) and the band headers. */
export function mapTopOf(scene: Scene, chrome: boolean): number {
  const S = pictureStyle();
  return (chrome ? S.titleH + legendSvg(scene.width - 2 * S.margin).height + 12 : 8) + S.headerH;
}

/** The deepest useful zoom: the most compressed stretch shows a page `maxPagePx` tall. */
export function maxScaleOf(scene: Scene): number {
  const S = pictureStyle();
  let tPerPage = Number.POSITIVE_INFINITY;
  for (const iv of scene.intervals) {
    if (iv.gap || iv.end - iv.start < S.page) continue;
    const t = ((iv.t1 - iv.t0) * Number(S.page)) / Number(iv.end - iv.start);
    if (t < tPerPage) tPerPage = t;
  }
  return Number.isFinite(tPerPage) ? S.maxPagePx / tPerPage : 8;
}

/** Every shape and connector by id, with its details and axis extent (hover and zoom-to in the viewer). */
export function sceneItems(scene: Scene) {
  const items: Record<string, { details: readonly string[]; t0: number; t1: number; band: number }> = {};
  for (const band of scene.bands) {
    for (const s of [...band.guest, ...band.host]) {
      items[s.id] = {
        details: s.details,
        t0: tOf(scene.intervals, s.start),
        t1: tOf(scene.intervals, s.end),
        band: band.domain,
      };
    }
    for (const c of band.connectors) {
      const t0 = Math.min(tOf(scene.intervals, c.guestStart), tOf(scene.intervals, c.hostStart));
      const t1 = Math.max(tOf(scene.intervals, c.guestEnd), tOf(scene.intervals, c.hostEnd));
      items[c.id] = { details: c.details, t0, t1, band: band.domain };
    }
  }
  return items;
}

// ---------------------------------------------------------------------------------------------------
// Drawing.

/** The scene as an SVG document at `view`. */
export function renderSceneSvg(scene: Scene, view: View, options: DrawOptions): string {
  return drawScene(scene, view, options).svg;
}

/**
 * Where the scene's texts go at `view`, and the canvas they are drawn on: what the layout is held to
 * (no two texts overlap; each lies inside the canvas and inside the region a clipped view shows it in).
 */
export function sceneLayout(
  scene: Scene,
  view: View,
  options: DrawOptions,
): { width: number; height: number; texts: PlacedText[] } {
  const drawn = drawScene(scene, view, options);
  return { width: drawn.width, height: drawn.height, texts: drawn.texts };
}

/**
 * The scene at `view`: the SVG document, its size and every text in it. Clipped (the viewer), the
 * canvas ends at the foot of the view; otherwise it grows to hold labels that run on below the map,
 * and with the title (`chrome`) to hold the title however long the trace's name.
 */
function drawScene(
  scene: Scene,
  view: View,
  options: DrawOptions,
): { svg: string; width: number; height: number; texts: PlacedText[] } {
  const S = pictureStyle();
  const esc = pictureEscape;
  const body: string[] = [];
  const texts: PlacedText[] = [];
  const mapTop = mapTopOf(scene, options.chrome);
  let width = scene.width;
  if (options.chrome) {
    const title = pictureText({
      text: scene.title,
      cls: 'title',
      x: S.margin,
      y: S.margin + 12,
      tail: { text: scene.status, cls: `st-${scene.status}` },
    });
    const subtitle = pictureText({ text: scene.subtitle, cls: 'subtitle', x: S.margin, y: S.margin + 30 });
    for (const t of [title, subtitle]) width = Math.max(width, Math.ceil(textBox(t).x1 + S.margin));
    const legend = legendSvg(scene.width - 2 * S.margin);
    body.push(
      textSvg(title),
      textSvg(subtitle),
      `<g transform="translate(${S.margin},${S.titleH})">${legend.svg}</g>`,
    );
    texts.push(title, subtitle, ...legend.texts.map((t) => ({ ...t, x: t.x + S.margin, y: t.y + S.titleH })));
  }
  const headers = headerTexts(scene, mapTop - S.headerH);
  body.push(`<g class="headers">${headers.map(textSvg).join('')}</g>`);
  texts.push(...headers);
  const map = drawMap(scene, view, mapTop, options.clip);
  body.push(map.svg);
  texts.push(...map.texts);
  let bottom = mapTop + view.height;
  if (!options.clip) {
    for (const t of texts) bottom = Math.max(bottom, textBox(t).y1);
    bottom += S.margin;
  }
  const height = Math.ceil(bottom);
  const name = `${scene.title}${scene.status}`;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(`memory map: ${name}`)}">`,
    `<title>${esc(`memory map: ${name}`)}</title>`,
    `<desc>${esc(scene.subtitle)}</desc>`,
    options.defs ? defsSvg() : '',
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
  ].filter((part) => part !== '');
  return { svg: `${svg.join('\n')}\n`, width, height, texts };
}

/** Style sheet and the hatch patterns (once per document). */
export function defsSvg(): string {
  const S = pictureStyle();
  // Transparent between the lines: a mark over a BAR lets the BAR's colour show through (the
  // p2m lane beside it says whether the page is mapped).
  const hatch = (id: string, fg: string, paths: string, w = 6): string =>
    `<pattern id="${id}" width="${w}" height="${w}" patternUnits="userSpaceOnUse"><path d="${paths}" stroke="${fg}" stroke-width="1.2" fill="none"/></pattern>`;
  return [
    '<defs>',
    `<style>${S.css}</style>`,
    hatch('pat-msix-table', '#111111', 'M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2'),
    hatch('pat-msix-pba', '#111111', 'M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2 M-1,5 l2,2 M0,0 l6,6 M5,-1 l2,2'),
    hatch('pat-hole-e820', '#555555', 'M0,1.5 h6 M0,4.5 h6'),
    hatch('pat-hole-shared-page', '#e8711a', 'M-1,5 l2,2 M0,0 l6,6 M5,-1 l2,2'),
    hatch('pat-hole-other-bar', '#555555', 'M1.5,0 v6 M4.5,0 v6'),
    '<pattern id="pat-hole-unmapped" width="6" height="6" patternUnits="userSpaceOnUse"><circle cx="3" cy="3" r="1.5" fill="#d62728"/></pattern>',
    '</defs>',
  ].join('');
}

/** What the legend explains, in order: the swatch kind and the text. */
function legendEntries(): [string, string][] {
  return [
    ['bar', 'BAR, mapped (one colour per device)'],
    ['bar-off', 'BAR, not mapped in its owner'],
    ['bar-ghost', "another domain's BAR (host column)"],
    ['vf-bar', 'VF BAR array of a PF, a tick per VF'],
    ['c-identity', 'p2m mmio_direct, identity (gfn = mfn)'],
    ['c-offset', 'p2m mmio_direct, non-identity (slanted)'],
    ['c-ram', 'p2m RAM (ram_rw, ram_ro, …)'],
    ['c-other', 'p2m other types (grant, mmio_dm, …)'],
    ['c-bar-off', 'BAR not mapped: guest and host place'],
    ['msix-table', 'MSI-X table page (trapped by Xen)'],
    ['msix-pba', 'MSI-X PBA page (trapped by Xen)'],
    ['shared', 'page shared with another device'],
    ['hole-shared-page', 'hole: shared page withheld'],
    ['hole-e820', 'hole: covered by the e820 map'],
    ['hole-other-bar', 'hole: mapped for another BAR'],
    ['hole-unmapped', 'hole: unexplained (see violations)'],
    ['violation', 'invariant violation (hover: message)'],
    ['violation-gone', 'violation seen earlier, gone by the end'],
    ['e820-ram', 'e820 RAM'],
    ['e820-reserved', 'e820 reserved'],
    ['e820-acpi', 'e820 ACPI / NVS'],
    ['e820-unusable', 'e820 unusable'],
    ['window', "a bridge's memory window (QEMU logs)"],
    ['gap', 'collapsed stretch with nothing in it'],
    ['pfn', 'page frames (when zoomed in)'],
  ];
}

/** How wide a legend of `columns` columns is: the last one as wide as the longest entry. */
function legendWidth(columns: number): number {
  const S = pictureStyle();
  let widest = 0;
  for (const [, text] of legendEntries()) widest = Math.max(widest, textWidth(text, S.fontSize.text));
  return 8 + (columns - 1) * S.legendColW + 34 + widest + 2 * S.textPad + 8;
}

/**
 * The legend as an SVG fragment at most `width` wide (as many columns as fit, at least one), with its
 * height and its texts (in the fragment's coordinates).
 */
export function legendSvg(
  width: number,
  titled = true,
): { svg: string; height: number; texts: PlacedText[] } {
  const S = pictureStyle();
  const entries = legendEntries();
  let columns = 1;
  while (columns < entries.length && legendWidth(columns + 1) <= width) columns++;
  const rows = Math.ceil(entries.length / columns);
  const head = titled ? 22 : 6;
  const height = rows * S.legendRowH + head + 4;
  const texts: PlacedText[] = titled
    ? [pictureText({ text: 'Legend', cls: 'legend-title', x: 8, y: 15 })]
    : [];
  const swatches: string[] = [];
  entries.forEach(([kind, text], i) => {
    const x = 8 + Math.floor(i / rows) * S.legendColW;
    const y = head + (i % rows) * S.legendRowH;
    swatches.push(`<g transform="translate(${x},${y})">${legendSwatch(kind)}</g>`);
    // The sample of a frame number is a text, laid out with the others.
    if (kind === 'pfn') texts.push(pictureText({ text: 'pfn', cls: 'pfn', x, y: y + 10 }));
    texts.push(pictureText({ text, cls: '', x: x + 34, y: y + 11 }));
  });
  const boxW = Math.ceil(legendWidth(columns));
  return {
    svg: `<g class="legend"><rect class="legend-box" x="0" y="0" width="${boxW}" height="${height}" rx="4"/>${swatches.join('')}${texts.map(textSvg).join('')}</g>`,
    height,
    texts,
  };
}

/** A 28×14 sample of one legend kind. */
function legendSwatch(kind: string): string {
  const S = pictureStyle();
  switch (kind) {
    case 'bar':
      return [0, 1, 2]
        .map((i) => `<rect class="bar" x="${i * 9}" y="1" width="9" height="12" fill="${S.palette[i]}"/>`)
        .join('');
    case 'c-identity':
    case 'c-offset':
    case 'c-ram':
    case 'c-other': {
      const slant = kind === 'c-offset' ? 6 : 0;
      const lane = `p2m-${kind.slice(2)}`;
      return `<rect class="${lane}" x="0" y="2" width="3" height="6"/><polygon class="${kind}" points="3,2 25,${2 + slant} 25,${8 + slant} 3,8"/><rect class="${lane}" x="25" y="${2 + slant}" width="3" height="6"/>`;
    }
    case 'c-bar-off':
      return '<polygon class="c-bar-off" points="1,2 27,6 27,12 1,8"/>';
    case 'vf-bar':
      return `<rect class="vf-bar" x="1" y="1" width="26" height="12" fill="${S.palette[0]}"/>${[4, 7, 10].map((y) => `<line class="vf-tick" x1="1" y1="${y}" x2="27" y2="${y}"/>`).join('')}`;
    case 'violation':
      return '<rect class="violation" x="8" y="2" width="18" height="10"/><path class="vmark" d="M0,2 L7,7 L0,12 Z"/>';
    case 'violation-gone':
      return '<rect class="violation-gone" x="8" y="2" width="18" height="10"/><path class="vmark-gone" d="M0.5,2.5 L6.5,7 L0.5,11.5 Z"/>';
    case 'gap':
      return '<rect class="gap" x="0" y="0" width="28" height="14"/><line class="gapedge" x1="0" y1="0.5" x2="28" y2="0.5"/><line class="gapedge" x1="0" y1="13.5" x2="28" y2="13.5"/>';
    case 'pfn':
      // With the text "pfn" over it (legendSvg lays that out with the other texts).
      return '<line class="pageline" x1="0" y1="3" x2="28" y2="3"/><line class="pageline" x1="0" y1="11" x2="28" y2="11"/>';
    default:
      return `<rect class="${kind}" x="1" y="1" width="26" height="12"/>`;
  }
}

/** Band titles and column captions, `y` at the top of their rows (three rows, `headerH` tall). */
function headerTexts(scene: Scene, y: number): PlacedText[] {
  const S = pictureStyle();
  const out = [pictureText({ text: 'address', cls: 'caption', x: S.margin, y: y + 39 })];
  for (const band of scene.bands) {
    const g = bandGeometry(band);
    out.push(
      pictureText({
        text: band.title,
        cls: band.crashed ? 'band-title crashed' : 'band-title',
        x: band.x,
        y: y + 13,
      }),
      pictureText({ text: band.subtitle, cls: 'band-sub', x: band.x, y: y + 26 }),
      pictureText({ text: 'guest-physical', cls: 'caption', x: g.connX0 - 4, y: y + 39, anchor: 'end' }),
      pictureText({ text: 'host-physical', cls: 'caption', x: g.hostP2mX + 4, y: y + 39 }),
    );
  }
  return out;
}

/** The map area at `view`: axis, gaps, page grid, bands, the notice; and the texts it draws. */
function drawMap(
  scene: Scene,
  view: View,
  mapTop: number,
  clip: boolean,
): { svg: string; texts: PlacedText[] } {
  const S = pictureStyle();
  const out: string[] = [];
  const texts: PlacedText[] = [];
  const yMin = mapTop;
  const yMax = mapTop + view.height;
  const y = (t: number): number => mapTop + (t - view.top) * view.scale;
  const tTop = view.top;
  const tBottom = view.top + view.height / view.scale;
  const x0 = S.margin + scene.axisW;
  const x1 = scene.width - S.margin;
  const f = (v: number): string => (Math.round(v * 100) / 100).toString();
  // Clipped, the bands show in the map's window; the address labels also a little above it (the
  // first address sits on its top edge).
  const region: Box | null = clip ? { x0: 0, y0: yMin, x1: scene.width, y1: yMax } : null;
  if (clip) {
    out.push(
      `<clipPath id="map-clip"><rect x="0" y="${f(yMin)}" width="${scene.width}" height="${f(view.height)}"/></clipPath>`,
      `<clipPath id="axis-clip"><rect x="0" y="${f(yMin - S.axisOverhang)}" width="${scene.width}" height="${f(view.height + S.axisOverhang)}"/></clipPath>`,
      '<g clip-path="url(#map-clip)">',
    );
  } else {
    out.push('<g>');
  }
  // Collapsed stretches across the whole width, and faint guides at every boundary.
  for (const iv of scene.intervals) {
    if (iv.t1 < tTop || iv.t0 > tBottom) continue;
    if (iv.gap) {
      const a = Math.max(yMin - 2, y(iv.t0));
      const b = Math.min(yMax + 2, y(iv.t1));
      out.push(
        `<rect class="gap" x="${x0}" y="${f(a)}" width="${f(x1 - x0)}" height="${f(Math.max(0, b - a))}"/>`,
        `<line class="gapedge" x1="${x0}" y1="${f(y(iv.t0))}" x2="${f(x1)}" y2="${f(y(iv.t0))}"/>`,
        `<line class="gapedge" x1="${x0}" y1="${f(y(iv.t1))}" x2="${f(x1)}" y2="${f(y(iv.t1))}"/>`,
      );
    } else if (iv.t0 >= tTop) {
      out.push(`<line class="guide" x1="${x0}" y1="${f(y(iv.t0))}" x2="${f(x1)}" y2="${f(y(iv.t0))}"/>`);
    }
  }
  const axis = drawAxis(scene, view, mapTop, clip);
  out.push(axis.grid);
  for (const band of scene.bands) {
    const drawn = drawBand(scene, band, view, mapTop, region);
    out.push(drawn.svg);
    texts.push(...drawn.texts);
  }
  if (scene.notice !== null) {
    // Only ever drawn over an empty map: one collapsed stretch, whose size is in the address lane.
    const notice = pictureText({
      text: scene.notice,
      cls: 'notice halo',
      x: x0 + 20,
      y: (Math.max(yMin, y(0)) + Math.min(yMax, y(scene.height))) / 2,
      centred: true,
      clip: region,
    });
    out.push(textSvg(notice));
    texts.push(notice);
  }
  if (clip) out.push('</g>', '<g clip-path="url(#axis-clip)">');
  out.push(...axis.texts.map(textSvg));
  out.push('</g>');
  texts.push(...axis.texts);
  return { svg: out.join('\n'), texts };
}

/**
 * The address lane left of the axis line: hex addresses at the stretch boundaries, the size of each
 * collapsed stretch between the addresses at its ends, and when zoomed in far enough the page
 * boundaries with their frame numbers. A label that would overlap a more important one, or leave the
 * lane, is left out (boundaries first, then gap sizes, frame numbers, page addresses).
 */
function drawAxis(
  scene: Scene,
  view: View,
  mapTop: number,
  clip: boolean,
): { grid: string; texts: PlacedText[] } {
  const S = pictureStyle();
  const hex = pictureHex;
  const f = (v: number): string => (Math.round(v * 100) / 100).toString();
  const y = (t: number): number => mapTop + (t - view.top) * view.scale;
  const yMin = mapTop;
  const yMax = mapTop + view.height;
  const ax = S.margin + scene.axisW - 6;
  const x1 = scene.width - S.margin;
  const grid: string[] = [`<line class="axis" x1="${ax}" y1="${f(yMin)}" x2="${ax}" y2="${f(yMax)}"/>`];
  // The lane reaches a little above the map (the headers end higher) and, unclipped, on below it.
  const lane: Box = {
    x0: 0,
    y0: yMin - S.axisOverhang,
    x1: ax,
    y1: clip ? yMax : Number.POSITIVE_INFINITY,
  };
  const candidates: { y: number; text: string; cls: string; prio: number; within: Box }[] = [];
  const visible = (v: number): boolean => v >= yMin - 1 && v <= yMax + 1;
  const tTop = view.top;
  const tBottom = view.top + view.height / view.scale;
  const pfns = new Map<bigint, { y: number; h: number }>();
  scene.intervals.forEach((iv, i) => {
    if (iv.t1 < tTop || iv.t0 > tBottom) return;
    const a = y(iv.t0);
    const b = y(iv.t1);
    if (visible(a)) candidates.push({ y: a, text: hex(iv.start), cls: 'tick', prio: 1, within: lane });
    if (i === scene.intervals.length - 1 && visible(b))
      candidates.push({ y: b, text: hex(iv.end), cls: 'tick', prio: 1, within: lane });
    if (iv.gap) {
      // The size of a collapsed stretch, level with its visible part.
      const top = Math.max(a, yMin);
      const bottom = Math.min(b, yMax);
      candidates.push({
        y: (top + bottom) / 2,
        text: `… ${pictureApproxSize(iv.end - iv.start)} …`,
        cls: 'gaplbl',
        prio: 2,
        within: { ...lane, y0: top, y1: bottom },
      });
      return;
    }
    // The pages of a drawn stretch once they are tall enough to tell apart: lines at the page
    // boundaries inside it, and each page's frame number where enough of the page is in view. The
    // frame number goes by how much of the page is visible, so a page that is cut into sub-page
    // stretches (several small BARs) is still labelled once, and none is at the whole-map view.
    const len = Number(iv.end - iv.start);
    const pagePx = ((b - a) * Number(S.page)) / len;
    const visA = Math.max(a, yMin);
    const visB = Math.min(b, yMax);
    if (visB <= visA) return;
    const addrA = iv.start + BigInt(Math.max(0, Math.floor(((visA - a) / (b - a)) * len)));
    let addrB = iv.start + BigInt(Math.ceil(((visB - a) / (b - a)) * len));
    if (addrB > iv.end) addrB = iv.end;
    const firstPage = addrA / S.page;
    const lastPage = (addrB - 1n) / S.page;
    if (lastPage - firstPage > 400n) return;
    const yOfAddr = (addr: bigint): number => a + ((b - a) * Number(addr - iv.start)) / len;
    for (let p = firstPage; p <= lastPage; p++) {
      const base = p * S.page;
      if (base > iv.start && pagePx >= S.pageLineMin) {
        const py = yOfAddr(base);
        grid.push(`<line class="pageline" x1="${ax - 10}" y1="${f(py)}" x2="${f(x1)}" y2="${f(py)}"/>`);
        if (pagePx >= S.pfnMin && visible(py))
          candidates.push({ y: py, text: hex(base), cls: 'pageaddr', prio: 4, within: lane });
      }
      let pageEnd = base + S.page;
      if (pageEnd > iv.end) pageEnd = iv.end; // bigints: no Math.min
      let from = base;
      if (from < iv.start) from = iv.start; // bigints: no Math.max
      const ya = Math.max(yOfAddr(from), yMin);
      const yb = Math.min(yOfAddr(pageEnd), yMax);
      if (yb - ya < S.pfnMin) continue;
      const seen = pfns.get(p);
      if (seen === undefined || yb - ya > seen.h) pfns.set(p, { y: (ya + yb) / 2, h: yb - ya });
    }
  });
  for (const [p, at] of pfns)
    candidates.push({ y: at.y, text: `pfn ${hex(p)}`, cls: 'pfn', prio: 3, within: lane });
  // Keep the more important labels where they collide.
  const accepted: { t: PlacedText; box: Box; tick: boolean; y: number }[] = [];
  const acceptedRows: BoxRows = new Map();
  const order = candidates
    .map((_c, i) => i)
    .sort((p, q) => candidates[p]!.prio - candidates[q]!.prio || p - q);
  for (const i of order) {
    const c = candidates[i]!;
    const t = pictureText({
      text: c.text,
      cls: `${c.cls} halo`,
      x: ax - 8,
      y: c.y,
      centred: true,
      anchor: 'end',
      clip: clip ? lane : null,
    });
    const box = textBox(t);
    if (!boxInside(box, c.within) || overlapsRows(acceptedRows, box)) continue;
    addToRows(acceptedRows, box);
    accepted.push({ t, box, tick: c.cls === 'tick', y: c.y });
  }
  accepted.sort((p, q) => p.y - q.y);
  for (const a of accepted) {
    if (a.tick) grid.push(`<line class="tickline" x1="${ax - 5}" y1="${f(a.y)}" x2="${ax}" y2="${f(a.y)}"/>`);
  }
  return { grid: grid.join('\n'), texts: accepted.map((a) => a.t) };
}

/**
 * One band at `view`: lanes, connectors, shapes, marks, the notes on zoomed-in pages, and the labels
 * in their lanes beside the columns with leader lines to what they name. Clipped to `region` (the
 * viewer), the labels that do not fit in it are left out, the BARs' last.
 */
function drawBand(
  scene: Scene,
  band: Band,
  view: View,
  mapTop: number,
  region: Box | null,
): { svg: string; texts: PlacedText[] } {
  const S = pictureStyle();
  const esc = pictureEscape;
  const g = bandGeometry(band);
  const f = (v: number): string => (Math.round(v * 100) / 100).toString();
  const yMin = mapTop;
  const yMax = mapTop + view.height;
  const yOf = (addr: bigint): number => mapTop + (tOf(scene.intervals, addr) - view.top) * view.scale;
  const out: string[] = [];
  const texts: PlacedText[] = [];
  const put = (t: PlacedText): void => {
    texts.push(t);
    out.push(textSvg(t));
  };
  const laneTop = Math.max(yMin, mapTop - view.top * view.scale);
  const laneBottom = Math.min(yMax, mapTop + (scene.height - view.top) * view.scale);
  if (band.x > S.margin + scene.axisW) {
    out.push(
      `<line class="bandsep" x1="${f(band.x - S.bandGap / 2)}" y1="${f(yMin)}" x2="${f(band.x - S.bandGap / 2)}" y2="${f(yMax)}"/>`,
    );
  }
  for (const [x, w] of [
    [g.guestBarX, S.barW],
    [g.guestP2mX, S.p2mW],
    [g.hostP2mX, S.p2mW],
    [g.hostBarX, S.barW],
    [g.hostE820X, S.e820W],
  ] as const) {
    out.push(
      `<rect class="lane" x="${f(x)}" y="${f(laneTop)}" width="${w}" height="${f(Math.max(0, laneBottom - laneTop))}"/>`,
    );
  }
  const item = (id: string, details: readonly string[], body: string): string =>
    `<g data-item="${esc(id)}">${body}<title>${esc(details.join('\n'))}</title></g>`;
  // Connectors first, so the columns are drawn over their ends.
  for (const c of band.connectors) {
    const pts = clipPolygonY(
      [
        [g.connX0, yOf(c.guestStart)],
        [g.connX1, yOf(c.hostStart)],
        [g.connX1, yOf(c.hostEnd)],
        [g.connX0, yOf(c.guestEnd)],
      ],
      yMin - 4,
      yMax + 4,
    );
    if (pts.length < 3) continue;
    out.push(
      item(
        c.id,
        c.details,
        `<polygon class="${c.kind}" points="${pts.map(([px, py]) => `${f(px)},${f(py)}`).join(' ')}"/>`,
      ),
    );
  }
  // Zoomed in to pages: each visible page of a slanted mapping says where it goes, beside the column
  // it is in, since the other end is usually out of view (an identity mapping's is level with it).
  // Guest page n and host page n are level too, so the notes of page number n are stacked in its
  // stretch of the connector lane, as many as fit, the guest's first.
  const notes = new Map<
    bigint,
    { ya: number; yb: number; lines: { text: string; side: 'guest' | 'host' }[] }
  >();
  const collectNotes = (from: bigint, to: bigint, other: bigint, side: 'guest' | 'host'): void => {
    const ya = yOf(from);
    const yb = yOf(to);
    if (yb < yMin || ya > yMax) return;
    const pages = (to - from) / S.page;
    if (pages <= 0n || (yb - ya) / Number(pages) < S.pfnMin) return;
    const len = Number(to - from);
    const top = Math.max(ya, yMin);
    const bottom = Math.min(yb, yMax);
    const first = BigInt(Math.floor(((top - ya) / (yb - ya)) * len)) / S.page;
    const last = BigInt(Math.ceil(((bottom - ya) / (yb - ya)) * len)) / S.page;
    for (let k = first; k <= last && k < pages && k - first < 200n; k++) {
      const pa = Math.max(yOf(from + k * S.page), yMin);
      const pb = Math.min(yOf(from + (k + 1n) * S.page), yMax);
      if (pb - pa < S.pfnMin) continue;
      const page = from / S.page + k;
      const note = notes.get(page) ?? { ya: pa, yb: pb, lines: [] };
      note.lines.push({ text: pageNote(side, other / S.page + k), side });
      notes.set(page, note);
    }
  };
  for (const c of band.connectors) {
    if (c.kind === 'c-bar-off' || c.guestStart === c.hostStart) continue;
    collectNotes(c.guestStart, c.guestEnd, c.hostStart, 'guest');
    collectNotes(c.hostStart, c.hostEnd, c.guestStart, 'host');
  }
  const noteH = textHeight(S.fontSize.pfnmap) + S.labelGap;
  for (const note of notes.values()) {
    const lines = [
      ...note.lines.filter((l) => l.side === 'guest'),
      ...note.lines.filter((l) => l.side === 'host'),
    ];
    const fit = Math.floor((note.yb - note.ya) / noteH);
    const shown =
      lines.length <= fit
        ? lines
        : [...lines.slice(0, fit - 1), { text: `+${lines.length - fit + 1} more`, side: 'host' as const }];
    const top = (note.ya + note.yb) / 2 - (shown.length * noteH) / 2;
    shown.forEach((line, k) => {
      put(
        pictureText({
          text: line.text,
          cls: 'pfnmap halo',
          x: line.side === 'guest' ? g.connX0 + 4 : g.connX1 - 4,
          y: top + (k + 0.5) * noteH,
          centred: true,
          anchor: line.side === 'guest' ? 'start' : 'end',
          clip: region,
        }),
      );
    });
  }
  const labels: {
    side: 'guest' | 'host';
    y: number;
    edge: number;
    text: string;
    cls: string;
    id: string;
    span: number;
  }[] = [];
  const drawColumn = (shapes: readonly Shape[], side: 'guest' | 'host'): void => {
    const barX = side === 'guest' ? g.guestBarX : g.hostBarX;
    const laneX: Record<string, [number, number]> = {
      bar: [barX, S.barW],
      over: [barX, S.barW],
      p2m: [side === 'guest' ? g.guestP2mX : g.hostP2mX, S.p2mW],
      e820: [g.hostE820X, S.e820W],
    };
    // Lanes underneath, then BARs, then the marks over them.
    const rank = (s: Shape): number =>
      s.lane === 'e820' || s.lane === 'p2m'
        ? 0
        : s.kind === 'bar-ghost'
          ? 1
          : s.lane === 'bar'
            ? 2
            : s.kind.startsWith('violation')
              ? 5
              : s.kind === 'shared'
                ? 4
                : 3;
    const ordered = shapes.map((_s, i) => i).sort((p, q) => rank(shapes[p]!) - rank(shapes[q]!) || p - q);
    for (const i of ordered) {
      const s = shapes[i]!;
      const ya = yOf(s.start);
      const yb = yOf(s.end);
      if (yb < yMin || ya > yMax) continue;
      const a = Math.max(ya, yMin - 4);
      let b = Math.min(yb, yMax + 4);
      if (b - a < 1.5) b = a + 1.5;
      const [lx, lw] = laneX[s.lane]!;
      const violation = s.kind.startsWith('violation');
      const inset = s.lane === 'over' && !violation ? 2 : 0;
      const grow = violation ? 3 : 0;
      const fill = s.fill === null ? '' : ` fill="${s.fill}"`;
      let rx = lx + inset - grow;
      let rw = lw - 2 * inset + 2 * grow;
      if (s.part !== undefined) {
        rw /= 2;
        if (s.part === 'right') rx += rw;
      }
      let body = `<rect class="${s.kind}" x="${f(rx)}" y="${f(a)}" width="${f(rw)}" height="${f(b - a)}"${fill}/>`;
      if (s.ticks !== undefined && s.ticks.count > 1) {
        // The ticks in view, at least 3 pixels apart: a stride over the VFs when they are denser,
        // so the work is bounded by the view's height, not by the number of VFs.
        const every = s.ticks.every;
        const top = addrAt(scene.intervals, view.top + (Math.max(ya, yMin) - mapTop) / view.scale);
        const bottom = addrAt(scene.intervals, view.top + (Math.min(yb, yMax) - mapTop) / view.scale);
        const first = Math.max(1, Number((top - s.start) / every));
        const last = Math.min(s.ticks.count - 1, Number((bottom - s.start) / every) + 1);
        const step = Math.max(
          1,
          Math.ceil((last - first + 1) / Math.max(1, (Math.min(yb, yMax) - Math.max(ya, yMin)) / 3)),
        );
        let previous = Number.NEGATIVE_INFINITY;
        for (let k = Math.ceil(first / step) * step; k <= last; k += step) {
          const y = yOf(s.start + BigInt(k) * every);
          if (y < yMin || y > yMax || y - previous < 3) continue;
          previous = y;
          body += `<line class="vf-tick" x1="${f(rx)}" y1="${f(y)}" x2="${f(rx + rw)}" y2="${f(y)}"/>`;
        }
      }
      if (violation) {
        // A pointer on the outer side of the column, so a one-page violation is seen at a glance.
        const my = (Math.max(a, yMin) + Math.min(b, yMax)) / 2;
        const cls = s.kind === 'violation' ? 'vmark' : 'vmark-gone';
        body +=
          side === 'guest'
            ? `<path class="${cls}" d="M${f(lx - 13)},${f(my - 6)} L${f(lx - 4)},${f(my)} L${f(lx - 13)},${f(my + 6)} Z"/>`
            : `<path class="${cls}" d="M${f(g.hostE820X + S.e820W + 12)},${f(my - 6)} L${f(g.hostE820X + S.e820W + 3)},${f(my)} L${f(g.hostE820X + S.e820W + 12)},${f(my + 6)} Z"/>`;
      }
      out.push(item(s.id, s.details, body));
      if (s.label !== null) {
        const visA = Math.max(ya, yMin);
        const visB = Math.min(yb, yMax);
        const edge = side === 'guest' ? lx : lx + lw;
        labels.push({
          side,
          y: (visA + visB) / 2,
          edge,
          text: s.label,
          cls: s.labelClass,
          id: s.id,
          span: visB - visA,
        });
      }
    }
  };
  drawColumn(band.guest, 'guest');
  drawColumn(band.host, 'host');
  // Labels: in their lane beside the column, in the order of what they name, moved apart as little
  // as keeps them clear of each other (a leader line joins each to what it names), cut short to the
  // lane's width. Clipped, the labels that fit in the view are kept: BARs' and warnings first, then
  // those of the taller shapes. Unclipped (the SVG file) all are drawn, running on below the map
  // when they do not fit beside it, and the document grows to hold them.
  for (const side of ['guest', 'host'] as const) {
    const laneW = side === 'guest' ? band.guestLabelW : band.hostLabelW;
    const list = labels
      .filter((l) => l.side === side)
      .map((l) => ({ ...l, text: fitText(l.text, laneW - 18, textSize(l.cls)) }));
    const heights = list.map((l) => textHeight(textSize(l.cls)) + S.labelGap);
    let keep = list.map((_l, i) => i);
    let bottom = yMax;
    if (region === null) {
      let total = 0;
      for (const h of heights) total += h;
      bottom = Math.max(yMax, yMin + total);
    } else {
      const minor = (i: number): number => (list[i]!.cls === 'lbl-minor' ? 1 : 0);
      let used = 0;
      keep = keep
        .sort((p, q) => minor(p) - minor(q) || list[q]!.span - list[p]!.span || p - q)
        .filter((i) => {
          if (used + heights[i]! > yMax - yMin) return false;
          used += heights[i]!;
          return true;
        })
        .sort((p, q) => p - q);
    }
    const placed = placeLabels(
      keep.map((i) => list[i]!.y),
      keep.map((i) => heights[i]!),
      yMin,
      bottom,
    );
    keep.forEach((i, k) => {
      const l = list[i]!;
      const ly = placed[k]!;
      const guest = side === 'guest';
      const tx = guest ? g.guestBarX - 16 : g.hostLabelX + 16;
      out.push(
        guest
          ? `<path class="leader" d="M${f(tx + 2)},${f(ly)} L${f(l.edge - 3)},${f(l.y)} L${f(l.edge)},${f(l.y)}"/>`
          : `<path class="leader" d="M${f(l.edge)},${f(l.y)} L${f(l.edge + 3)},${f(l.y)} L${f(tx - 2)},${f(ly)}"/>`,
      );
      put(
        pictureText({
          text: l.text,
          cls: `${l.cls} halo`,
          x: tx,
          y: ly,
          centred: true,
          anchor: guest ? 'end' : 'start',
          clip: region,
          names: l.id,
        }),
      );
    });
  }
  return { svg: out.join('\n'), texts };
}

/**
 * Centres for labels `heights` tall that want to be centred at `wanted`: in the same order, stacked
 * without overlap, inside `[top, bottom]` when they fit there, and otherwise as near where they want to
 * be as that allows. Labels that would overlap form a run stacked edge to edge, placed where its
 * labels want it on average (the least-squares place) and then moved inside the bounds; a run that
 * comes to overlap the run above joins it.
 */
function placeLabels(
  wanted: readonly number[],
  heights: readonly number[],
  top: number,
  bottom: number,
): number[] {
  const order = wanted.map((_w, i) => i).sort((p, q) => wanted[p]! - wanted[q]! || p - q);
  // A run: its first label's place in `order`, how many labels, its height, the sum of where each of
  // its labels would put the run's top, and where the run's top is.
  const runs: { first: number; count: number; height: number; want: number; top: number }[] = [];
  const settle = (run: { count: number; height: number; want: number }): number =>
    Math.max(top, Math.min(run.want / run.count, bottom - run.height));
  order.forEach((i, k) => {
    const run = { first: k, count: 1, height: heights[i]!, want: wanted[i]! - heights[i]! / 2, top: 0 };
    run.top = settle(run);
    runs.push(run);
    for (let n = runs.length; n > 1; n = runs.length) {
      const prev = runs[n - 2]!;
      const last = runs[n - 1]!;
      if (prev.top + prev.height <= last.top) break;
      prev.want += last.want - last.count * prev.height;
      prev.count += last.count;
      prev.height += last.height;
      prev.top = settle(prev);
      runs.pop();
    }
  });
  const pos = new Array<number>(wanted.length).fill(0);
  for (const run of runs) {
    let y = run.top;
    for (let k = run.first; k < run.first + run.count; k++) {
      const i = order[k]!;
      pos[i] = y + heights[i]! / 2;
      y += heights[i]!;
    }
  }
  return pos;
}

/** A polygon clipped to the horizontal band `yMin ≤ y ≤ yMax` (Sutherland–Hodgman, two edges). */
function clipPolygonY(
  points: readonly (readonly [number, number])[],
  yMin: number,
  yMax: number,
): [number, number][] {
  const clip = (
    pts: readonly (readonly [number, number])[],
    inside: (y: number) => boolean,
    edge: number,
  ) => {
    const res: [number, number][] = [];
    for (let i = 0; i < pts.length; i++) {
      const [ax, ay] = pts[i]!;
      const [bx, by] = pts[(i + 1) % pts.length]!;
      const ain = inside(ay);
      const bin = inside(by);
      if (ain) res.push([ax, ay]);
      if (ain !== bin) res.push([ax + ((bx - ax) * (edge - ay)) / (by - ay), edge]);
    }
    return res;
  };
  return clip(
    clip(points, (v) => v >= yMin, yMin),
    (v) => v <= yMax,
    yMax,
  );
}
