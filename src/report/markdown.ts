import type { Report } from '../analyze/model.js';
import { clock, duration, plural } from './format.js';
import {
  DIAGNOSIS_LABEL,
  FINDING_HEADER,
  SERVER_HEADER,
  STILL_SENDING_HEADER,
  baseName,
  findingCells,
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
import { endpoint } from './format.js';
import { formatNumber } from '../numbers.js';

export interface MarkdownOptions {
  /** Most stuck connections listed; the rest are counted. Default 20. */
  top?: number;
}

/** Charts drawn; further servers are in the table under them. */
const MAX_CHARTS = 3;

/**
 * A ticket-ready incident note (GitHub / GitLab flavoured Markdown): title, verdict, servers, the
 * diagnosis with hints, the timeline (a Mermaid chart with a plain table under it for trackers that
 * do not draw Mermaid), the top stuck connections with evidence, inputs, warnings and the command.
 */
export function renderMarkdown(report: Report, options: MarkdownOptions = {}): string {
  const top = options.top ?? 20;
  const { summary } = report;
  const out: string[] = [];
  out.push(`# ${escapeText(title(report))}`, '');
  out.push(`**Verdict:** ${escapeText(verdict(report))}`, '');
  if (summary.captureStartTime) {
    const readable = report.inputs.filter((i) => !i.error).length;
    out.push(`Capture: ${clock(summary.captureStartTime)} → ${clock(summary.captureEndTime)} (${duration(summary.durationSeconds)}), ${plural(readable, 'input')}` +
      `${summary.ports ? `, ports ${summary.ports.join(', ')}` : ''}${summary.minAgeSeconds > 0 ? `, stuck at least ${duration(summary.minAgeSeconds)}` : ''}.`, '');
  }

  const servers = shownServers(report);
  if (servers.length > 0) {
    out.push('## Servers', '');
    out.push(...table(SERVER_HEADER, servers.map(serverCells), [false, true, true, true, true, false, true, true, true, true, true, true, true]));
    if (report.servers.length > servers.length) out.push('', `… ${plural(report.servers.length - servers.length, 'more server')} without stuck connections.`);
    const stories = servers.map(serverStory).filter((s): s is string => s !== null);
    if (stories.length > 0) out.push('', ...stories.map((s) => `- ${escapeText(s)}`));
    out.push('');
  }

  if (report.diagnosis.length > 0) {
    out.push('## Diagnosis', '');
    for (const item of report.diagnosis) {
      out.push(`### ${DIAGNOSIS_LABEL[item.kind]} on ${endpoint(item.server)}`, '');
      out.push(escapeText(item.summary), '');
      if (item.uncertain) out.push(`> **Uncertain:** ${escapeText(item.uncertain)}`, '');
      if (item.hint) out.push(`**Hint:** ${escapeText(item.hint)}`, '');
    }
  }

  const series = timelineSeries(report);
  if (series.length > 0) {
    out.push('## Timeline: open CLOSE_WAIT connections', '');
    for (const s of series.slice(0, MAX_CHARTS)) out.push(...mermaidChart(s), '');
    const rows = timelineChangeRows(series);
    out.push(`Open CLOSE_WAIT at the end of each step where a count changed (${series[0]!.counts.length} steps over the capture):`, '');
    out.push(...table(['time (UTC)', 's since start', ...series.map((s) => s.label)], rows.map((r) => [r.time.slice(11, -1), String(r.offset), ...r.counts.map(String)]), [false, true, ...series.map(() => true)]), '');
  }

  if (report.findings.length > 0) {
    const shown = report.findings.slice(0, top);
    out.push(`## Stuck connections (${shown.length === report.findings.length ? `all ${report.findings.length}` : `${shown.length} of ${report.findings.length}`}, longest stuck first)`, '');
    // Line by line: with --all there can be more lines than push(...lines) takes arguments.
    const rows = table(FINDING_HEADER, shown.map((f, i) => {
      const cells = findingCells(f, i, report);
      if (f.uncertain) cells[1] = `${cells[1]} (uncertain)`;
      return cells;
    }), [true, false, false, false, false, true, false, false]);
    for (const row of rows) out.push(row);
    if (shown.some((f) => f.uncertain)) {
      out.push('', 'Uncertain:', '');
      shown.forEach((f, i) => {
        if (f.uncertain) out.push(`- #${i + 1} ${endpoint(f.client)}: ${escapeText(f.uncertain)}`);
      });
    }
    if (report.findings.length > shown.length) out.push('', `… ${formatNumber(report.findings.length - shown.length)} more in the JSON or CSV report.`);
    out.push('');
  }

  if (report.stillSending.length > 0) {
    const shown = report.stillSending.slice(0, top);
    out.push(`## Half-closed, still in use (${shown.length === report.stillSending.length ? `all ${report.stillSending.length}` : `${shown.length} of ${report.stillSending.length}`}; in CLOSE_WAIT, not stuck)`, '');
    for (const row of table(STILL_SENDING_HEADER, shown.map(stillSendingCells), [false, false, false, true, true, false, false])) out.push(row);
    if (report.stillSending.length > shown.length) out.push('', `… ${formatNumber(report.stillSending.length - shown.length)} more in the JSON report.`);
    out.push('');
  }

  out.push('## Inputs', '');
  const inputRows = table(['file', 'format', 'packets', 'first packet', 'last packet', 'state'], report.inputs.map((i) => [
    baseName(i.path),
    i.format ? `${i.format}${i.compression ? ` (${i.compression})` : ''}` : '-',
    formatNumber(i.packets),
    i.firstPacketTime ? clock(i.firstPacketTime) : '-',
    i.lastPacketTime ? clock(i.lastPacketTime) : '-',
    i.error ? `unreadable: ${i.error}` : i.truncated ? 'truncated' : 'complete',
  ]), [false, false, true, false, false, false]);
  for (const row of inputRows) out.push(row);
  out.push('');

  const warnings = problems(report);
  if (warnings.length > 0) {
    out.push('## Warnings', '');
    for (const warning of warnings) out.push(`- ${escapeText(warning)}`);
    out.push('');
  }

  out.push('## Command', '');
  out.push('```sh', report.command ?? '# (not run from the command line)', '```', '');
  out.push(`<sub>${report.tool.name} ${report.tool.version}, report schema ${report.schemaVersion}</sub>`, '');
  return out.join('\n');
}

/** A Mermaid xychart (GitHub and GitLab draw it) of one server's open CLOSE_WAIT count. */
function mermaidChart(series: TimelineSeries): string[] {
  const last = series.offsets[series.offsets.length - 1] ?? 0;
  const max = Math.max(1, ...series.counts);
  return [
    '```mermaid',
    'xychart-beta',
    `    title "Open CLOSE_WAIT on ${series.label}"`,
    `    x-axis "seconds since capture start" 0 --> ${last}`,
    `    y-axis "connections" 0 --> ${max}`,
    `    line [${series.counts.join(', ')}]`,
    '```',
  ];
}

/** A GitHub table; `numeric` right-aligns a column. */
function table(header: string[], rows: string[][], numeric: boolean[]): string[] {
  const line = (cells: string[]) => `| ${cells.map(escapeCell).join(' | ')} |`;
  return [line(header), `|${header.map((_, i) => (numeric[i] ? ' ---: ' : ' --- ')).join('|')}|`, ...rows.map(line)];
}

function escapeCell(text: string): string {
  return escapeText(text).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** Keeps text from turning into markup by accident (code spans in backticks stay code). */
function escapeText(text: string): string {
  return text.replace(/[<>]/g, (c) => (c === '<' ? '&lt;' : '&gt;')).replace(/(^|\s)([*_])/g, '$1\\$2');
}
