import type { Report } from '../analyze/model.js';
import { clock, duration, endpoint, plural } from './format.js';
import {
  DIAGNOSIS_LABEL,
  FINDING_HEADER,
  SERVER_HEADER,
  STILL_SENDING_HEADER,
  baseName,
  findingCells,
  noTcpTraffic,
  nothingAnalysed,
  oneDirectionOnly,
  problems,
  serverCells,
  serverStory,
  shownServers,
  stillSendingCells,
  timelineChangeRows,
  timelineSeries,
  title,
  verdict,
  type TimelineSeries,
} from './figures.js';
import { formatNumber } from '../numbers.js';

export interface HtmlOptions {
  /** Most stuck connections listed; the rest are counted. Default 50. */
  top?: number;
}

const PALETTE = ['#c62828', '#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#ad1457', '#4e342e'];

/**
 * One self-contained HTML page (no scripts, fonts, images or other files): the Markdown report's
 * content with the timeline as an inline SVG chart. Readable on a phone (tables scroll sideways)
 * and printed (no colours needed to read it).
 */
export function renderHtml(report: Report, options: HtmlOptions = {}): string {
  return page(title(report), reportBody(report, options.top ?? 50));
}

/** Several reports (`--separate`) in one page, each in its own section, after an optional summary. */
export function renderHtmlReports(reports: readonly Report[], heading: string, summaryRows: string[][] = [], summaryHeader: string[] = []): string {
  const parts = [`<h1>${escape(heading)}</h1>`];
  if (summaryRows.length > 0) parts.push(htmlTable(summaryHeader, summaryRows, summaryHeader.map((_, i) => i > 0 && i < 4)));
  for (const report of reports) parts.push(`<section class="report">${reportBody(report, 50, 2)}</section>`);
  return page(heading, parts.join('\n'));
}

function reportBody(report: Report, top: number, depth = 1): string {
  const h = (level: number, text: string, attrs = '') => `<h${level + depth - 1}${attrs}>${text}</h${level + depth - 1}>`;
  const { summary } = report;
  const out: string[] = [];
  const state = summary.closeWait > 0 ? 'bad' : summary.closeWaitAnyAge > 0 || nothingAnalysed(report) || oneDirectionOnly(report) || noTcpTraffic(report) ? 'warn' : 'good';
  out.push(`<header>${h(1, escape(title(report)))}<p class="verdict ${state}">${escape(verdict(report))}</p>`);
  if (summary.captureStartTime) {
    out.push(`<p class="meta">Capture ${escape(clock(summary.captureStartTime))} → ${escape(clock(summary.captureEndTime))} (${escape(duration(summary.durationSeconds))}), ` +
      `${escape(plural(report.inputs.filter((i) => !i.error).length, 'input'))}${summary.ports ? `, ports ${summary.ports.join(', ')}` : ''}.</p>`);
  }
  out.push('</header>');

  const servers = shownServers(report);
  if (servers.length > 0) {
    out.push(`<section>${h(2, 'Servers')}`);
    out.push(htmlTable(SERVER_HEADER, servers.map(serverCells), SERVER_HEADER.map((_, i) => i > 0 && i !== 5), (row) => (Number(row[2]) > 0 ? [2] : [])));
    if (report.servers.length > servers.length) out.push(`<p class="meta">… ${escape(plural(report.servers.length - servers.length, 'more server'))} without stuck connections.</p>`);
    const stories = servers.map(serverStory).filter((s): s is string => s !== null);
    if (stories.length > 0) out.push(`<ul class="stories">${stories.map((s) => `<li>${escape(s)}</li>`).join('')}</ul>`);
    out.push('</section>');
  }

  if (report.diagnosis.length > 0) {
    out.push(`<section>${h(2, 'Diagnosis')}`);
    for (const item of report.diagnosis) {
      out.push(`<article class="item ${item.kind}">${h(3, `${escape(DIAGNOSIS_LABEL[item.kind])} <span class="where">on ${escape(endpoint(item.server))}</span>`)}`);
      out.push(`<p>${prose(item.summary)}</p>`);
      if (item.uncertain) out.push(`<p class="uncertain"><strong>Uncertain:</strong> ${prose(item.uncertain)}</p>`);
      if (item.hint) out.push(`<p class="hint"><strong>Hint:</strong> ${prose(item.hint)}</p>`);
      out.push('</article>');
    }
    out.push('</section>');
  }

  const series = timelineSeries(report);
  if (series.length > 0) {
    out.push(`<section>${h(2, 'Timeline: open CLOSE_WAIT connections')}`);
    out.push(`<figure>${chart(series)}<figcaption>${legend(series)}Open CLOSE_WAIT connections at the end of each of ${series[0]!.counts.length} steps over the capture.</figcaption></figure>`);
    const rows = timelineChangeRows(series);
    out.push(`<details><summary>Timeline as a table (steps where a count changed)</summary>${htmlTable(
      ['time (UTC)', 's since start', ...series.map((s) => s.label)],
      rows.map((r) => [r.time.slice(11, -1), String(r.offset), ...r.counts.map(String)]),
      [false, true, ...series.map(() => true)],
    )}</details>`);
    out.push('</section>');
  }

  if (report.findings.length > 0) {
    const shown = report.findings.slice(0, top);
    out.push(`<section>${h(2, `Stuck connections <span class="meta">(${shown.length === report.findings.length ? `all ${report.findings.length}` : `${shown.length} of ${report.findings.length}`}, longest stuck first)</span>`)}`);
    out.push(htmlTable(FINDING_HEADER, shown.map((f, i) => {
      const cells = findingCells(f, i, report);
      if (f.uncertain) cells[1] = `${cells[1]} (uncertain: ${f.uncertain})`;
      return cells;
    }), [true, false, false, false, false, true, false, false]));
    if (report.findings.length > shown.length) out.push(`<p class="meta">… ${formatNumber(report.findings.length - shown.length)} more in the JSON or CSV report.</p>`);
    out.push('</section>');
  }

  if (report.stillSending.length > 0) {
    const shown = report.stillSending.slice(0, top);
    out.push(`<section>${h(2, `Half-closed, still in use <span class="meta">(${shown.length === report.stillSending.length ? `all ${report.stillSending.length}` : `${shown.length} of ${report.stillSending.length}`}; in CLOSE_WAIT, not stuck)</span>`)}`);
    out.push(htmlTable(STILL_SENDING_HEADER, shown.map(stillSendingCells), [false, false, false, true, true, false, false]));
    if (report.stillSending.length > shown.length) out.push(`<p class="meta">… ${formatNumber(report.stillSending.length - shown.length)} more in the JSON report.</p>`);
    out.push('</section>');
  }

  out.push(`<section>${h(2, 'Inputs')}`);
  out.push(htmlTable(['file', 'format', 'packets', 'first packet', 'last packet', 'state'], report.inputs.map((i) => [
    baseName(i.path),
    i.format ? `${i.format}${i.compression ? ` (${i.compression})` : ''}` : '-',
    formatNumber(i.packets),
    i.firstPacketTime ? clock(i.firstPacketTime) : '-',
    i.lastPacketTime ? clock(i.lastPacketTime) : '-',
    i.error ? `unreadable: ${i.error}` : i.truncated ? 'truncated' : 'complete',
  ]), [false, false, true, false, false, false]));
  out.push('</section>');

  const warnings = problems(report);
  if (warnings.length > 0) out.push(`<section>${h(2, 'Warnings')}<ul class="warnings">${warnings.map((w) => `<li>${escape(w)}</li>`).join('')}</ul></section>`);
  if (report.command) out.push(`<section>${h(2, 'Command')}<pre><code>${escape(report.command)}</code></pre></section>`);
  out.push(`<footer>${escape(report.tool.name)} ${escape(report.tool.version)}, report schema ${report.schemaVersion}</footer>`);
  return out.join('\n');
}

/** A step chart of each server's open CLOSE_WAIT count over the capture, as inline SVG. */
function chart(series: readonly TimelineSeries[]): string {
  const width = 720;
  const height = 260;
  const left = 52;
  const right = 16;
  const topPad = 14;
  const bottom = 44;
  const plotW = width - left - right;
  const plotH = height - topPad - bottom;
  const end = Math.max(...series.map((s) => s.offsets[s.offsets.length - 1] ?? 0));
  const start = 0;
  const max = niceMax(Math.max(1, ...series.flatMap((s) => s.counts)));
  const x = (seconds: number) => left + (end > start ? ((seconds - start) / (end - start)) * plotW : plotW);
  const y = (count: number) => topPad + plotH - (count / max) * plotH;
  const parts: string[] = [];
  parts.push(`<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">`);
  parts.push(`<title id="chart-title">Open CLOSE_WAIT connections over the capture: ${series.map((s) => `${escape(s.label)} up to ${Math.max(...s.counts)}`).join(', ')}</title>`);
  for (const tick of [0, max / 2, max]) {
    parts.push(`<line class="grid" x1="${left}" x2="${width - right}" y1="${fixed(y(tick))}" y2="${fixed(y(tick))}"/>`);
    parts.push(`<text class="tick" x="${left - 6}" y="${fixed(y(tick) + 4)}" text-anchor="end">${Number.isInteger(tick) ? tick : tick.toFixed(1)}</text>`);
  }
  for (const tick of [start, (start + end) / 2, end]) {
    parts.push(`<text class="tick" x="${fixed(x(tick))}" y="${height - bottom + 20}" text-anchor="middle">${escape(duration(tick))}</text>`);
  }
  parts.push(`<text class="axis" x="${left + plotW / 2}" y="${height - 6}" text-anchor="middle">time since capture start</text>`);
  parts.push(`<line class="axis-line" x1="${left}" x2="${left}" y1="${topPad}" y2="${topPad + plotH}"/>`);
  parts.push(`<line class="axis-line" x1="${left}" x2="${width - right}" y1="${topPad + plotH}" y2="${topPad + plotH}"/>`);
  series.forEach((s, index) => {
    // A step line: each count holds from its bucket's start to its end.
    let d = `M${fixed(x(start))},${fixed(y(0))}`;
    let previousEnd = start;
    s.counts.forEach((count, i) => {
      d += ` L${fixed(x(previousEnd))},${fixed(y(count))} L${fixed(x(s.offsets[i]!))},${fixed(y(count))}`;
      previousEnd = s.offsets[i]!;
    });
    parts.push(`<path class="series" data-server="${escape(s.label)}" d="${d}" stroke="${PALETTE[index % PALETTE.length]}"/>`);
  });
  parts.push('</svg>');
  return parts.join('');
}

function legend(series: readonly TimelineSeries[]): string {
  return `<span class="legend">${series.map((s, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${escape(s.label)}</span>`).join('')}</span>`;
}

function niceMax(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function fixed(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

function htmlTable(header: string[], rows: string[][], numeric: boolean[], highlight: (row: string[]) => number[] = () => []): string {
  const cell = (tag: 'th' | 'td', text: string, i: number, marked = false) =>
    `<${tag}${numeric[i] || marked ? ` class="${[numeric[i] ? 'num' : '', marked ? 'hot' : ''].filter(Boolean).join(' ')}"` : ''}>${escape(text)}</${tag}>`;
  const head = `<thead><tr>${header.map((h, i) => cell('th', h, i)).join('')}</tr></thead>`;
  const body = `<tbody>${rows.map((row) => {
    const hot = highlight(row);
    return `<tr>${row.map((c, i) => cell('td', c, i, hot.includes(i))).join('')}</tr>`;
  }).join('')}</tbody>`;
  return `<div class="scroll"><table>${head}${body}</table></div>`;
}

/** Text with `code spans` shown as code. */
function prose(text: string): string {
  return text.split('`').map((part, i) => (i % 2 === 1 ? `<code>${escape(part)}</code>` : escape(part))).join('');
}

export function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function page(heading: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escape(heading)}</title>
<style>
:root { color-scheme: light; --fg: #1b1b1b; --muted: #5f6368; --line: #d0d4d9; --bad: #b71c1c; --warn: #8a5300; --good: #1b5e20; --tint: #f5f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.45rem; line-height: 1.25; margin: 0.4em 0; }
h2 { font-size: 1.15rem; margin: 1.6em 0 0.5em; padding-bottom: 0.2em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 0 0 0.3em; }
.verdict { font-size: 1.05rem; padding: 10px 12px; border-left: 5px solid; background: var(--tint); margin: 0.5em 0; }
.verdict.bad { border-color: var(--bad); } .verdict.warn { border-color: var(--warn); } .verdict.good { border-color: var(--good); }
.meta, footer, .where { color: var(--muted); font-weight: normal; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; font-size: 0.88rem; min-width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; vertical-align: top; }
th { background: var(--tint); font-weight: 600; white-space: normal; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.hot { color: var(--bad); font-weight: 700; }
.item { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 10px 0; break-inside: avoid; }
.item p { margin: 0.3em 0; }
.hint { color: #263238; }
.uncertain { color: var(--warn); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
code { background: var(--tint); padding: 0 3px; border-radius: 3px; }
pre { background: var(--tint); padding: 10px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
figure { margin: 0; }
svg.chart { width: 100%; height: auto; max-height: 320px; display: block; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis-line { stroke: var(--muted); stroke-width: 1; }
svg .tick, svg .axis { fill: var(--muted); font-size: 15px; font-family: inherit; }
svg .series { fill: none; stroke-width: 3; stroke-linejoin: round; }
figcaption { color: var(--muted); font-size: 0.85rem; }
.legend span { margin-right: 12px; white-space: nowrap; } .legend i { display: inline-block; width: 12px; height: 4px; margin-right: 4px; vertical-align: middle; }
details { margin-top: 8px; } summary { cursor: pointer; color: var(--muted); }
ul { padding-left: 1.2em; }
footer { margin: 2em 0 1em; font-size: 0.8rem; }
section.report { border-top: 3px solid var(--line); margin-top: 2em; }
@media (max-width: 600px) { body { font-size: 14px; } main { padding: 10px; } h1 { font-size: 1.2rem; } }
@media print {
  main { max-width: none; padding: 0; }
  .scroll { overflow: visible; }
  th, td { white-space: normal; }
  h2 { break-after: avoid; }
  svg .series { stroke-width: 2; }
}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}
