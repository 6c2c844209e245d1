/**
 * The comparison of rule sets (`vpci-replay --compare`) as text and as an HTML page: how each
 * rule set's replay ended (status, assertions, violations with the hazards it declares), then each
 * step at which their mappings part or meet again: the line, per rule set what it maps there and
 * what it mapped before, and the decisions each logged at that line.
 */
import type { CompareMapping, CompareRange, CompareStep, ReportCompare } from './compare-section.js';
import { htmlPageStart } from './html-page.js';
import { pictureEscape as esc } from './picture.js';

/** A mapping in a few words: the machine frame, type and BAR, or "not mapped". */
function mappingText(m: CompareMapping | null): string {
  if (m === null) return 'not mapped';
  return `mfn ${m.mfn} ${m.type}${m.bar === null ? '' : ` (${m.bar})`}`;
}

function pages(count: number): string {
  return `${count} page${count === 1 ? '' : 's'}`;
}

/** Where a step's text came from: the trace line, and the input line when that is another file. */
function stepWhere(step: CompareStep): string {
  return step.source === null ? `line ${step.line}` : `line ${step.line} (log line ${step.source})`;
}

function rangeTitle(step: CompareStep, range: CompareRange): string {
  const bars = range.bars.length === 0 ? '' : ` ${range.bars.join(', ')}`;
  return `d${step.domain} gfn ${range.gfn} (${pages(range.count)})${bars}: ${range.agree ? 'agree again' : 'differ'}`;
}

/** Whether a violation is a declared hazard of its rule set, expected by the trace, or a finding. */
function violationStanding(v: ReportCompare['runs'][number]['violations'][number]): string {
  if (v.hazard !== null) return `declared hazard: ${v.hazard}`;
  return v.expected ? 'expected by the trace' : 'a finding: not a declared hazard';
}

/** How one rule set's replay ended, in one line. */
function runText(run: ReportCompare['runs'][number]): string {
  const hazards = run.violations.filter((v) => v.hazard !== null).length;
  const violations =
    run.violations.length === 0
      ? 'no violation'
      : `${run.violations.length} violation${run.violations.length === 1 ? '' : 's'}` +
        (hazards === 0 ? '' : ` (${hazards} declared hazard${hazards === 1 ? '' : 's'})`);
  return `${run.status}, ${run.assertions.total - run.assertions.failed}/${run.assertions.total} assertions held, ${violations}`;
}

/** The comparison as text, ending with a newline. */
export function compareText(trace: string, lines: number, compare: ReportCompare): string {
  const width = Math.max(...compare.ruleSets.map((n) => n.length));
  const pad = (name: string): string => name.padEnd(width);
  const out: string[] = [
    `vpci-replay --compare ${trace}: ${lines} trace line${lines === 1 ? '' : 's'} under ${compare.ruleSets.join(', ')}`,
  ];
  for (const run of compare.runs) {
    out.push(`  ${pad(run.ruleSet)}  ${runText(run)}`);
    for (const v of run.violations) {
      out.push(`  ${' '.repeat(width)}    line ${v.line}: ${v.kind}: ${v.message} (${violationStanding(v)})`);
    }
  }
  out.push('');
  if (compare.stepsFound === 0) {
    out.push('The rule sets map every frame alike at every step.');
    return `${out.join('\n')}\n`;
  }
  const listed = compare.steps.length;
  out.push(
    `${compare.stepsFound} step${compare.stepsFound === 1 ? '' : 's'} where the mappings part or meet again` +
      (listed < compare.stepsFound ? ` (the first ${listed} listed; --json has the same ${listed})` : '') +
      ':',
  );
  for (const step of compare.steps) {
    out.push('', `${stepWhere(step)}: ${step.text}`);
    for (const range of step.ranges) {
      out.push(`  ${rangeTitle(step, range)}`);
      for (const name of compare.ruleSets) {
        const now = range.mapped[name] ?? null;
        const was = range.before[name] ?? null;
        const change = mappingText(was) === mappingText(now) ? 'unchanged' : `was ${mappingText(was)}`;
        out.push(`    ${pad(name)}  ${mappingText(now)}; ${change}`);
      }
    }
    out.push('  rules:');
    for (const name of compare.ruleSets) {
      const said = step.rules[name] ?? [];
      if (said.length === 0) out.push(`    ${pad(name)}  (no event)`);
      for (const [i, rule] of said.entries())
        out.push(`    ${i === 0 ? pad(name) : ' '.repeat(width)}  ${rule}`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The comparison as one self-contained HTML page (no script): a table per step. */
export function compareHtml(trace: string, lines: number, compare: ReportCompare): string {
  const head = compare.ruleSets.map((n) => `<th>${esc(n)}</th>`).join('');
  const runs = compare.runs
    .map(
      (run) =>
        `<tr><th>${esc(run.ruleSet)}</th><td class="status-${esc(run.status)}">${esc(runText(run))}</td><td>${run.violations
          .map(
            (v) =>
              `line ${v.line}: ${esc(v.kind)}: ${esc(v.message)} <em>(${esc(violationStanding(v))})</em>`,
          )
          .join('<br>')}</td></tr>`,
    )
    .join('');
  const steps = compare.steps.map((step) => {
    const rows = step.ranges
      .map((range) => {
        const cells = compare.ruleSets
          .map((n) => {
            const now = range.mapped[n] ?? null;
            const was = range.before[n] ?? null;
            const moved = mappingText(now) !== mappingText(was);
            return `<td class="${moved ? 'moved' : ''}">${esc(mappingText(now))}${moved ? `<br><small>was ${esc(mappingText(was))}</small>` : ''}</td>`;
          })
          .join('');
        return `<tr class="${range.agree ? 'agree' : 'differ'}"><th class="mono">${esc(rangeTitle(step, range))}</th>${cells}</tr>`;
      })
      .join('');
    const rules = compare.ruleSets
      .map((n) => {
        const said = step.rules[n] ?? [];
        return `<td>${said.length === 0 ? '<span class="muted">no event</span>' : said.map(esc).join('<br>')}</td>`;
      })
      .join('');
    return [
      `<section><h3>${esc(stepWhere(step))}</h3><p class="mono">${esc(step.text)}</p>`,
      `<table><thead><tr><th>frames</th>${head}</tr></thead><tbody>${rows}<tr class="rules"><th>rules</th>${rules}</tr></tbody></table></section>`,
    ].join('\n');
  });
  const title = `vpci-replay --compare ${trace}: ${compare.ruleSets.join(', ')}`;
  return [
    ...htmlPageStart(title, PAGE_CSS),
    `<h1>${esc(title)}</h1>`,
    `<p>${lines} trace line${lines === 1 ? '' : 's'}; ${compare.stepsFound} step${compare.stepsFound === 1 ? '' : 's'} where the mappings part or meet again${compare.steps.length < compare.stepsFound ? ` (the first ${compare.steps.length} shown)` : ''}.</p>`,
    `<table><thead><tr><th>rule set</th><th>ended</th><th>violations</th></tr></thead><tbody>${runs}</tbody></table>`,
    compare.stepsFound === 0 ? '<p>The rule sets map every frame alike at every step.</p>' : steps.join('\n'),
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

const PAGE_CSS = [
  'body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}',
  'table{border-collapse:collapse;margin:.5em 0}',
  'th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}',
  '.mono{font-family:ui-monospace,monospace;font-size:12px}',
  'tr.differ th{background:#fdecea}',
  'tr.agree th{background:#e8f5e9}',
  'td.moved{background:#fff8e1}',
  '.muted{color:#888}',
  '.status-ok{color:#1b5e20}',
  '.status-failed,.status-error{color:#b71c1c}',
].join('');
