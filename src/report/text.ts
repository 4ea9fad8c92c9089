import { Chalk } from 'chalk';
import type { Finding, Report } from '../analyze/model.js';
import { clock, duration, endpoint, plural, table } from './format.js';
import {
  FAMILY_LABEL,
  SERVER_HEADER,
  STILL_SENDING_HEADER,
  noTcpTraffic,
  nothingAnalysed,
  oneDirectionOnly,
  problems as allProblems,
  serverCells,
  serverStory,
  shownServers,
  sparkline,
  stillSendingCells,
  stillSendingNote,
  timelineSeries,
  timeOfDay,
} from './figures.js';
import { formatNumber } from '../numbers.js';

export interface TextOptions {
  color: boolean;
  /** Most stuck connections listed; the rest are counted. */
  top: number;
}

const ANSI = /\u001b\[[0-9;]*m/g;
const visible = (s: string) => s.replace(ANSI, '').length;

/** The terminal report: a verdict line, servers, the stuck connections, then warnings. */
export function renderText(report: Report, options: TextOptions): string {
  const c = new Chalk({ level: options.color ? 1 : 0 });
  const { summary } = report;
  const lines: string[] = [];

  const readable = report.inputs.filter((i) => !i.error);
  const what = `${plural(summary.connections, 'TCP connection')} in ${plural(summary.packets, 'packet')} from ${plural(readable.length, 'input')}`;
  if (summary.closeWait > 0) {
    const serverStuck = report.servers.filter((s) => s.closeWait > 0);
    const where = serverStuck.slice(0, 3).map((s) => endpoint(s)).join(', ') + (serverStuck.length > 3 ? ', …' : '');
    lines.push(c.bold.red(`✗ ${plural(summary.closeWait, 'connection')} stuck in CLOSE_WAIT`) + ` on ${where} (${what})`);
  } else if (nothingAnalysed(report)) {
    lines.push(c.bold.yellow('? nothing analysed') + `: ${nothingAnalysed(report)}`);
  } else if (noTcpTraffic(report)) {
    lines.push(c.bold.yellow('? no TCP traffic') + `: ${noTcpTraffic(report)}`);
  } else if (oneDirectionOnly(report)) {
    lines.push(c.bold.yellow('? no answer') + `: ${oneDirectionOnly(report)}; capture both directions`);
  } else if (summary.closeWaitAnyAge > 0) {
    lines.push(c.bold.yellow(`! no connection stuck for ${duration(summary.minAgeSeconds)} or more`) + `; ${plural(summary.closeWaitAnyAge, 'younger one')} (${what})`);
  } else {
    lines.push(c.bold.green('✓ no connection stuck in CLOSE_WAIT') + ` (${what})`);
  }
  const sending = stillSendingNote(report);
  if (sending) lines.push(`${c.cyan('~')} ${sending}`);
  if (summary.captureStartTime) {
    lines.push(c.dim(`capture ${clock(summary.captureStartTime)} → ${clock(summary.captureEndTime)} (${duration(summary.durationSeconds)})`));
  }

  const servers = shownServers(report);
  if (servers.length > 0) {
    lines.push('', c.bold('Servers'));
    const rows = servers.map((s) => {
      const cells = serverCells(s);
      if (s.closeWait > 0) cells[2] = c.red(cells[2]!);
      return cells;
    });
    table(SERVER_HEADER, rows, visible).forEach((l, i) => lines.push(i === 0 ? c.dim(l) : l));
    if (report.servers.length > servers.length) lines.push(c.dim(`… ${plural(report.servers.length - servers.length, 'more server')} without stuck connections`));
    for (const s of servers) {
      const story = serverStory(s);
      if (story) lines.push(story);
    }
  }

  if (report.diagnosis.length > 0) {
    lines.push('', c.bold('Diagnosis'));
    for (const item of report.diagnosis) {
      lines.push(`${c.bold('•')} ${item.summary}`);
      if (item.uncertain) lines.push(c.yellow(`  ? uncertain: ${item.uncertain}`));
      if (item.hint) lines.push(c.dim(`  → ${item.hint}`));
    }
  }

  const series = timelineSeries(report);
  if (series.length > 0) {
    lines.push('', c.bold('Open CLOSE_WAIT over the capture') + c.dim(` (${series[0]!.counts.length} steps of ${duration(stepSeconds(series[0]!.offsets))})`));
    const width = Math.max(...series.map((s) => s.label.length));
    for (const s of series) {
      lines.push(`${s.label.padEnd(width)}  ▕${c.red(sparkline(s.counts))}▏ ${s.counts[s.counts.length - 1]}`);
    }
    lines.push(c.dim(`${' '.repeat(width)}   ${timeOfDay(series[0]!.times[0]!)} → ${timeOfDay(series[0]!.times[series[0]!.times.length - 1]!)}`));
  }

  if (report.findings.length > 0) {
    lines.push('', c.bold('Stuck connections') + c.dim(' (longest stuck first)'));
    const shown = report.findings.slice(0, options.top);
    const rows = shown.map((f) => findingRow(f, report, c));
    // Line by line: with --all there can be more lines than push(...lines) takes arguments.
    table(['stuck side', 'family', 'server', 'client', 'stuck for', 'peer FIN at', 'evidence (input:frame)'], rows, visible).forEach((l, i) => lines.push(i === 0 ? c.dim(l) : l));
    if (report.findings.length > shown.length) lines.push(c.dim(`… ${formatNumber(report.findings.length - shown.length)} more (use --all or --top N)`));
  }

  if (report.stillSending.length > 0) {
    lines.push('', c.bold('Half-closed, still in use') + c.dim(' (in CLOSE_WAIT, not stuck; longest first)'));
    const shown = report.stillSending.slice(0, options.top);
    table(STILL_SENDING_HEADER, shown.map(stillSendingCells), visible).forEach((l, i) => lines.push(i === 0 ? c.dim(l) : l));
    if (report.stillSending.length > shown.length) lines.push(c.dim(`… ${formatNumber(report.stillSending.length - shown.length)} more (use --all or --top N)`));
  }

  const problems = allProblems(report);
  if (problems.length > 0) {
    lines.push('', c.bold.yellow('Warnings'));
    for (const p of problems) lines.push(c.yellow(`! ${p}`));
  }
  return `${lines.join('\n')}\n`;
}

function findingRow(f: Finding, report: Report, c: InstanceType<typeof Chalk>): string[] {
  const inputName = (index: number) => (report.inputs.length > 1 ? `${index}:` : '');
  const uncertain = f.uncertain ? c.yellow(' ?') : '';
  return [
    (f.stuckSide === 'server' ? c.red('server') : c.magenta('client')) + uncertain,
    FAMILY_LABEL[f.family],
    endpoint(f.server),
    endpoint(f.client),
    duration(f.stuckSeconds),
    clock(f.peerFinTime),
    `FIN ${inputName(f.evidence.peerFin.input)}#${f.evidence.peerFin.frame}, ACK ${inputName(f.evidence.peerFinAck.input)}#${f.evidence.peerFinAck.frame}`,
  ];
}

/** Width of one timeline step, from the offsets of its bucket ends. */
function stepSeconds(offsets: readonly number[]): number {
  return offsets.length > 1 ? offsets[1]! - offsets[0]! : offsets[0] ?? 0;
}
