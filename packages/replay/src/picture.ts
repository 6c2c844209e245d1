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
 * holds nothing is collapsed to a fixed height labelled with its size ("… 3.5 GiB …"). Within a
 * stretch the scale is linear, so zooming in (html.ts) ends at single pages. One axis serves every
 * column of every band: the same address is at the same height everywhere, which is what makes
 * non-identity mappings slant and a host page shared by two guests line up across their bands.
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
    buildScene,
    buildBand,
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
    legendSvg,
    legendSwatch,
    headerSvg,
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
  const css = [
    'text{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:11px;fill:#1a1a1a}',
    '.title{font-size:16px;font-weight:bold}',
    '.subtitle{font-size:12px;fill:#444}',
    '.st-ok{fill:#1b7837;font-weight:bold}.st-failed,.st-error{fill:#c0141b;font-weight:bold}',
    '.band-title{font-size:12px;font-weight:bold}.band-sub{fill:#555;font-size:10px}',
    '.caption{fill:#555;font-size:10px;font-style:italic}',
    '.crashed{fill:#c0141b;font-weight:bold}',
    '.halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}',
    '.tick{font-size:10px;fill:#333}.pfn{font-size:10px;fill:#1f5fa8;font-weight:bold}',
    '.pageaddr{font-size:9px;fill:#777}.pfnmap{font-size:9px;fill:#5b3a7a}',
    '.gaplbl{font-size:10px;fill:#777;font-style:italic}',
    '.axis{stroke:#777;stroke-width:1}.tickline{stroke:#777;stroke-width:1}',
    '.guide{stroke:#e6e6e6;stroke-width:1}.pageline{stroke:#9db7d8;stroke-width:.7}',
    '.gap{fill:#f2f2f2}.gapedge{stroke:#c8c8c8;stroke-width:1;stroke-dasharray:4 3}',
    '.bandsep{stroke:#d0d0d0;stroke-width:1}',
    '.lane{fill:#fafafa;stroke:#e4e4e4;stroke-width:.6}',
    '.bar{stroke:#333;stroke-width:.7}',
    '.bar-off{fill:#fff;stroke:#444;stroke-width:1;stroke-dasharray:3 2}',
    '.bar-ghost{fill:#e9e9e9;stroke:#b0b0b0;stroke-width:.7}',
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
    '.lbl-bar{fill:#111}.lbl-minor{fill:#666;font-size:10px}.lbl-warn{fill:#a0430a;font-weight:bold;font-size:10px}',
    '.leader{stroke:#9a9a9a;stroke-width:.7;fill:none}',
    '.legend-box{fill:#fcfcfc;stroke:#ddd}',
    '.notice{font-size:13px;fill:#555;font-style:italic}',
    '[data-item]{cursor:pointer}',
  ].join('');
  return {
    page: 4096n,
    /** The architectural physical address width of x86: the axis runs to 2^52 at least. */
    axisEnd: 1n << 52n,
    margin: 16,
    charW: 6.65,
    lineH: 13,
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
    headerH: 44,
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

/** An exact byte size as people read it: `256 B`, `1 MiB`, `64 GiB` (else the largest exact unit). */
function pictureSize(size: bigint): string {
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
  const axisW = Math.round(pictureHex(intervals.length > 0 ? last!.end : S.axisEnd).length * S.charW + 24);
  const width = layoutBands(bands, axisW);
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
    if (!owned.some((dev) => dev.sbdf === q.sbdf)) continue;
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
    let next = run.gfn;
    for (const [lo, hi] of [...barFrames].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      if (lo > next) break;
      if (hi >= next) next = hi + 1n;
    }
    const inBar = next > run.gfn + count - 1n;
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
  for (const dev of owned) {
    const fill = colours.get(dev.sbdf) ?? '#cccccc';
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
      if (guestAddr !== null) {
        guest.push({
          ...base,
          id: `d${d}:bar:${dev.sbdf}:${bar.index}:g`,
          start: guestAddr,
          end: guestAddr + barSize,
        });
      }
      // At the same address in both columns (the hardware domain), the guest label names both.
      host.push({
        ...base,
        id: `d${d}:bar:${dev.sbdf}:${bar.index}:h`,
        start: addr,
        end: addr + barSize,
        label: guestAddr === addr ? null : label,
      });
      if (!bar.enabled && guestAddr !== null) {
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
      (q) => q.sbdf === dev.sbdf && q.unknown.some((u) => u.what === 'MSI-X PBA'),
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
          label: what,
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
    hostLabelW: 0,
    width: 0,
  };
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

/** Places the bands across the picture; label lanes are as wide as their longest label. Returns the width. */
function layoutBands(bands: Band[], axisW: number): number {
  const S = pictureStyle();
  const widthOf = (shapes: readonly Shape[]): number => {
    let chars = 0;
    for (const s of shapes) if (s.label !== null && s.label.length > chars) chars = s.label.length;
    return Math.min(S.labelMax, Math.max(S.labelMin, Math.ceil(chars * S.charW + 18)));
  };
  let x = S.margin + axisW;
  for (const band of bands) {
    band.x = x;
    band.guestLabelW = widthOf(band.guest);
    band.hostLabelW = widthOf(band.host);
    band.width =
      band.guestLabelW +
      S.barW +
      S.laneGap +
      S.p2mW +
      S.connW +
      S.p2mW +
      S.laneGap +
      S.barW +
      S.laneGap +
      S.e820W +
      band.hostLabelW;
    // Wide enough for its own title and subtitle, so they never run into the next band.
    const title = Math.max(band.title.length * 7.4, band.subtitle.length * 6.1) + 8;
    if (band.width < title) {
      band.hostLabelW += Math.ceil(title - band.width);
      band.width = Math.ceil(title);
    }
    x += band.width + S.bandGap;
  }
  return Math.ceil(
    Math.max(x - (bands.length > 0 ? S.bandGap : 0) + S.margin, 3 * S.legendColW + 2 * S.margin),
  );
}

/** The x positions of a band's lanes. */
function bandGeometry(band: Band) {
  const S = pictureStyle();
  const guestBarX = band.x + band.guestLabelW;
  const guestP2mX = guestBarX + S.barW + S.laneGap;
  const connX0 = guestP2mX + S.p2mW;
  const hostP2mX = connX0 + S.connW;
  const hostBarX = hostP2mX + S.p2mW + S.laneGap;
  const hostE820X = hostBarX + S.barW + S.laneGap;
  const hostLabelX = hostE820X + S.e820W;
  return { guestBarX, guestP2mX, connX0, connX1: hostP2mX, hostP2mX, hostBarX, hostE820X, hostLabelX };
}

/** The axis position of an address (the end of the axis for addresses past it). */
function tOf(intervals: readonly AxisInterval[], addr: bigint): number {
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
function maxScaleOf(scene: Scene): number {
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
function sceneItems(scene: Scene) {
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
  const S = pictureStyle();
  const esc = pictureEscape;
  const out: string[] = [];
  const mapTop = mapTopOf(scene, options.chrome);
  const map = drawMap(scene, view, mapTop, options.clip);
  let height = mapTop + view.height + (options.chrome ? S.margin : 0);
  if (!options.clip && map.bottom + S.margin > height) height = map.bottom + S.margin;
  height = Math.ceil(height);
  const name = `${scene.title}${scene.status}`;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${height}" viewBox="0 0 ${scene.width} ${height}" role="img" aria-label="${esc(`memory map: ${name}`)}">`,
    `<title>${esc(`memory map: ${name}`)}</title>`,
    `<desc>${esc(scene.subtitle)}</desc>`,
  );
  if (options.defs) out.push(defsSvg());
  out.push(`<rect x="0" y="0" width="${scene.width}" height="${height}" fill="#ffffff"/>`);
  if (options.chrome) {
    out.push(
      `<text class="title" x="${S.margin}" y="${S.margin + 12}">${esc(scene.title)}<tspan class="st-${esc(scene.status)}">${esc(scene.status)}</tspan></text>`,
      `<text class="subtitle" x="${S.margin}" y="${S.margin + 30}">${esc(scene.subtitle)}</text>`,
    );
    const legend = legendSvg(scene.width - 2 * S.margin);
    out.push(`<g transform="translate(${S.margin},${S.titleH})">${legend.svg}</g>`);
  }
  out.push(headerSvg(scene, mapTop - S.headerH));
  out.push(map.svg);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
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

/** The legend as an SVG fragment `width` wide (as many columns as fit), with its height. */
export function legendSvg(width: number, titled = true): { svg: string; height: number } {
  const S = pictureStyle();
  const esc = pictureEscape;
  const entries = legendEntries();
  const columns = Math.max(1, Math.floor(width / S.legendColW));
  const rows = Math.ceil(entries.length / columns);
  const head = titled ? 22 : 6;
  const height = rows * S.legendRowH + head + 4;
  const out: string[] = [
    `<g class="legend"><rect class="legend-box" x="0" y="0" width="${Math.min(width, columns * S.legendColW + 10)}" height="${height}" rx="4"/>`,
    titled ? '<text x="8" y="15" font-weight="bold">Legend</text>' : '',
  ];
  entries.forEach(([kind, text], i) => {
    const col = Math.floor(i / rows);
    const row = i % rows;
    const x = 8 + col * S.legendColW;
    const y = head + row * S.legendRowH;
    out.push(
      `<g transform="translate(${x},${y})">${legendSwatch(kind)}<text x="34" y="11">${esc(text)}</text></g>`,
    );
  });
  out.push('</g>');
  return { svg: out.join(''), height };
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
    case 'violation':
      return '<rect class="violation" x="8" y="2" width="18" height="10"/><path class="vmark" d="M0,2 L7,7 L0,12 Z"/>';
    case 'violation-gone':
      return '<rect class="violation-gone" x="8" y="2" width="18" height="10"/><path class="vmark-gone" d="M0.5,2.5 L6.5,7 L0.5,11.5 Z"/>';
    case 'gap':
      return '<rect class="gap" x="0" y="0" width="28" height="14"/><line class="gapedge" x1="0" y1="0.5" x2="28" y2="0.5"/><line class="gapedge" x1="0" y1="13.5" x2="28" y2="13.5"/>';
    case 'pfn':
      return '<line class="pageline" x1="0" y1="3" x2="28" y2="3"/><line class="pageline" x1="0" y1="11" x2="28" y2="11"/><text class="pfn" x="0" y="10" font-size="7">pfn</text>';
    default:
      return `<rect class="${kind}" x="1" y="1" width="26" height="12"/>`;
  }
}

/** Band titles and column captions, `y` at their top. */
function headerSvg(scene: Scene, y: number): string {
  const S = pictureStyle();
  const esc = pictureEscape;
  const out: string[] = [`<g class="headers">`];
  out.push(`<text class="caption" x="${S.margin}" y="${y + 38}">address</text>`);
  for (const band of scene.bands) {
    const g = bandGeometry(band);
    const cls = band.crashed ? 'band-title crashed' : 'band-title';
    out.push(
      `<text class="${cls}" x="${band.x}" y="${y + 13}">${esc(band.title)}</text>`,
      `<text class="band-sub" x="${band.x}" y="${y + 25}">${esc(band.subtitle)}</text>`,
      `<text class="caption" x="${g.connX0 - 4}" y="${y + 38}" text-anchor="end">guest-physical</text>`,
      `<text class="caption" x="${g.hostP2mX + 4}" y="${y + 38}">host-physical</text>`,
    );
  }
  out.push('</g>');
  return out.join('');
}

/** The map area at `view`: axis, gaps, page grid, bands. Returns the lowest y a label reached. */
function drawMap(scene: Scene, view: View, mapTop: number, clip: boolean): { svg: string; bottom: number } {
  const S = pictureStyle();
  const out: string[] = [];
  const yMin = mapTop;
  const yMax = mapTop + view.height;
  const y = (t: number): number => mapTop + (t - view.top) * view.scale;
  const tTop = view.top;
  const tBottom = view.top + view.height / view.scale;
  const x0 = S.margin + scene.axisW;
  const x1 = scene.width - S.margin;
  const f = (v: number): string => (Math.round(v * 100) / 100).toString();
  // The axis labels may reach a little past the map (the first and last address sit on its edges).
  if (clip) {
    out.push(
      `<clipPath id="map-clip"><rect x="0" y="${f(yMin)}" width="${scene.width}" height="${f(view.height)}"/></clipPath>`,
      `<clipPath id="axis-clip"><rect x="0" y="${f(yMin - 8)}" width="${scene.width}" height="${f(view.height + 16)}"/></clipPath>`,
      '<g clip-path="url(#map-clip)">',
    );
  } else {
    out.push('<g>');
  }
  let bottom = yMax;
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
  const axis = drawAxis(scene, view, mapTop);
  out.push(axis.grid);
  for (const band of scene.bands) {
    const drawn = drawBand(scene, band, view, mapTop, clip);
    out.push(drawn.svg);
    if (drawn.bottom > bottom) bottom = drawn.bottom;
  }
  if (clip) out.push('</g>', '<g clip-path="url(#axis-clip)">');
  out.push(axis.labels);
  if (scene.notice !== null) {
    out.push(
      `<text class="notice halo" x="${x0 + 20}" y="${f(yMin + 20)}">${pictureEscape(scene.notice)}</text>`,
    );
  }
  out.push('</g>');
  return { svg: out.join('\n'), bottom };
}

/**
 * The address axis: hex addresses at the stretch boundaries, gap sizes (inside the gap's stripe), and
 * when zoomed in far enough the page boundaries with their frame numbers. Axis labels that would
 * overlap a more important one are left out (boundaries first, then frame numbers, page addresses).
 */
function drawAxis(scene: Scene, view: View, mapTop: number): { grid: string; labels: string } {
  const S = pictureStyle();
  const esc = pictureEscape;
  const hex = pictureHex;
  const f = (v: number): string => (Math.round(v * 100) / 100).toString();
  const y = (t: number): number => mapTop + (t - view.top) * view.scale;
  const yMin = mapTop;
  const yMax = mapTop + view.height;
  const ax = S.margin + scene.axisW - 6;
  const x1 = scene.width - S.margin;
  const grid: string[] = [`<line class="axis" x1="${ax}" y1="${f(yMin)}" x2="${ax}" y2="${f(yMax)}"/>`];
  const candidates: { y: number; text: string; cls: string; prio: number }[] = [];
  const visible = (v: number): boolean => v >= yMin - 1 && v <= yMax + 1;
  const tTop = view.top;
  const tBottom = view.top + view.height / view.scale;
  const pfns = new Map<bigint, { y: number; h: number }>();
  const gapLabels: string[] = [];
  scene.intervals.forEach((iv, i) => {
    if (iv.t1 < tTop || iv.t0 > tBottom) return;
    const a = y(iv.t0);
    const b = y(iv.t1);
    if (visible(a)) candidates.push({ y: a, text: hex(iv.start), cls: 'tick', prio: 1 });
    if (i === scene.intervals.length - 1 && visible(b))
      candidates.push({ y: b, text: hex(iv.end), cls: 'tick', prio: 1 });
    if (iv.gap) {
      // The size of a collapsed stretch goes inside its stripe, clear of the address ticks.
      const top = Math.max(a, yMin);
      const bottom = Math.min(b, yMax);
      if (bottom - top >= 11) {
        gapLabels.push(
          `<text class="gaplbl halo" x="${ax + 14}" y="${f((top + bottom) / 2 + 3.5)}">${esc(`… ${pictureApproxSize(iv.end - iv.start)} …`)}</text>`,
        );
      }
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
          candidates.push({ y: py, text: hex(base), cls: 'pageaddr', prio: 3 });
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
  for (const [p, at] of pfns) candidates.push({ y: at.y, text: `pfn ${hex(p)}`, cls: 'pfn', prio: 2 });
  // Keep the more important labels where they collide: boundaries, frame numbers, page addresses.
  const accepted: { y: number; text: string; cls: string }[] = [];
  const order = candidates
    .map((_c, i) => i)
    .sort((p, q) => candidates[p]!.prio - candidates[q]!.prio || p - q);
  for (const i of order) {
    const c = candidates[i]!;
    if (accepted.some((a) => Math.abs(a.y - c.y) < S.lineH - 1)) continue;
    accepted.push(c);
  }
  accepted.sort((p, q) => p.y - q.y);
  const labels: string[] = [...gapLabels];
  for (const c of accepted) {
    if (c.cls === 'tick')
      grid.push(`<line class="tickline" x1="${ax - 5}" y1="${f(c.y)}" x2="${ax}" y2="${f(c.y)}"/>`);
    labels.push(
      `<text class="${c.cls} halo" x="${ax - 8}" y="${f(c.y + 3.5)}" text-anchor="end">${esc(c.text)}</text>`,
    );
  }
  return { grid: grid.join('\n'), labels: labels.join('\n') };
}

/** One band at `view`: lanes, connectors, shapes, marks and labels with leader lines. */
function drawBand(
  scene: Scene,
  band: Band,
  view: View,
  mapTop: number,
  clip: boolean,
): { svg: string; bottom: number } {
  const S = pictureStyle();
  const esc = pictureEscape;
  const g = bandGeometry(band);
  const f = (v: number): string => (Math.round(v * 100) / 100).toString();
  const yMin = mapTop;
  const yMax = mapTop + view.height;
  const yOf = (addr: bigint): number => mapTop + (tOf(scene.intervals, addr) - view.top) * view.scale;
  const out: string[] = [];
  let bottom = yMax;
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
  // Zoomed in to pages: each visible page of a mapping says where it goes, beside the column it is
  // in, since the other end of a slanted connector is usually out of view.
  const pageNotes = (from: bigint, to: bigint, other: bigint, side: 'guest' | 'host'): void => {
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
      const target = pictureHex(other / S.page + k);
      out.push(
        side === 'guest'
          ? `<text class="pfnmap halo" x="${f(g.connX0 + 4)}" y="${f((pa + pb) / 2 + 3.5)}">→ mfn ${target}</text>`
          : `<text class="pfnmap halo" x="${f(g.connX1 - 4)}" y="${f((pa + pb) / 2 + 3.5)}" text-anchor="end">gfn ${target} ←</text>`,
      );
    }
  };
  for (const c of band.connectors) {
    if (c.kind === 'c-bar-off') continue;
    pageNotes(c.guestStart, c.guestEnd, c.hostStart, 'guest');
    pageNotes(c.hostStart, c.hostEnd, c.guestStart, 'host');
  }
  const labels: { side: 'guest' | 'host'; y: number; edge: number; text: string; cls: string; id: string }[] =
    [];
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
        labels.push({ side, y: (visA + visB) / 2, edge, text: s.label, cls: s.labelClass, id: s.id });
      }
    }
  };
  drawColumn(band.guest, 'guest');
  drawColumn(band.host, 'host');
  // Labels: in their lane beside the column, pushed apart so none overlap, with a leader line to
  // what they name when they had to move.
  for (const side of ['guest', 'host'] as const) {
    const list = labels.filter((l) => l.side === side);
    const placed = placeLabels(
      list.map((l) => l.y),
      S.lineH,
      yMin + S.lineH / 2,
      // Unclipped (the SVG file), labels may run on below the map; the document grows to hold them.
      clip ? yMax - S.lineH / 2 : Number.POSITIVE_INFINITY,
    );
    const maxChars = Math.floor(((side === 'guest' ? band.guestLabelW : band.hostLabelW) - 18) / S.charW);
    list.forEach((l, i) => {
      const ly = placed[i]!;
      if (ly > bottom) bottom = ly + S.lineH;
      const text = l.text.length > maxChars ? `${l.text.slice(0, Math.max(1, maxChars - 1))}…` : l.text;
      if (side === 'guest') {
        const tx = g.guestBarX - 16;
        out.push(
          `<path class="leader" d="M${f(tx + 2)},${f(ly)} L${f(l.edge - 3)},${f(l.y)} L${f(l.edge)},${f(l.y)}"/>`,
          `<text class="${l.cls} halo" x="${f(tx)}" y="${f(ly + 3.5)}" text-anchor="end" data-label="${esc(l.id)}">${esc(text)}</text>`,
        );
      } else {
        const tx = g.hostLabelX + 16;
        out.push(
          `<path class="leader" d="M${f(l.edge)},${f(l.y)} L${f(l.edge + 3)},${f(l.y)} L${f(tx - 2)},${f(ly)}"/>`,
          `<text class="${l.cls} halo" x="${f(tx)}" y="${f(ly + 3.5)}" data-label="${esc(l.id)}">${esc(text)}</text>`,
        );
      }
    });
  }
  return { svg: out.join('\n'), bottom };
}

/**
 * Label centres near the wanted ones, at least `lineH` apart and in order, within `[top, bottom]`
 * when they fit (pushed down from `top`, then back up from `bottom`).
 */
function placeLabels(wanted: readonly number[], lineH: number, top: number, bottom: number): number[] {
  const order = wanted.map((_w, i) => i).sort((p, q) => wanted[p]! - wanted[q]! || p - q);
  const pos = new Array<number>(wanted.length).fill(0);
  let prev = Number.NEGATIVE_INFINITY;
  for (const i of order) {
    const y = Math.max(wanted[i]!, top, prev + lineH);
    pos[i] = y;
    prev = y;
  }
  let next = Number.POSITIVE_INFINITY;
  for (let k = order.length - 1; k >= 0; k--) {
    const i = order[k]!;
    const limit = Math.min(bottom, next - lineH);
    if (pos[i]! > limit) pos[i] = Math.max(limit, top + k * lineH);
    next = pos[i]!;
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
