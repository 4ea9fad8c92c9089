/**
 * The figures every human-facing report shows, worded once so the terminal, Markdown, HTML and CSV
 * reports say the same thing with the same numbers (a test holds them to it).
 */
import type { DiagnosisItem, Finding, FindingFamily, Report, ServerSummary } from '../analyze/model.js';
import { timelineByServer } from '../analyze/timeline.js';
import { clock, duration, endpoint, inputErrorLines, plural } from './format.js';
import { formatNumber } from '../numbers.js';

export const FAMILY_LABEL: Record<FindingFamily, string> = {
  probe: 'probe (no payload)',
  'unanswered-request': 'unanswered request',
  'answered-not-closed': 'answered, not closed',
  'client-not-closed': 'client never closed',
};

export const DIAGNOSIS_LABEL: Record<DiagnosisItem['kind'], string> = {
  'periodic-probe': 'Periodic probe',
  probe: 'Payload-free connections',
  'unanswered-request': 'Unanswered requests',
  'answered-not-closed': 'Answered, never closed',
  'client-not-closed': 'Client side stuck',
  'reconnect-into-close-wait': 'Reconnects into CLOSE_WAIT',
  'listen-backlog': 'Listen backlog',
  'slow-close': 'Slow closes',
  'client-slow-close': 'Slow client closes',
};

/** Stuck connections per minute: whole numbers from 100 up, else one decimal. */
export function rate(perMinute: number | null): string {
  if (perMinute === null) return '-';
  return perMinute >= 100 ? formatNumber(Math.round(perMinute)) : (Math.round(perMinute * 10) / 10).toString();
}

/** Seconds between two RFC 3339 times of the report. */
export function secondsBetween(from: string, to: string): number {
  return (parseTime(to) - parseTime(from)) / 1e9;
}

/** Nanoseconds since the epoch (as a double: sub-microsecond detail is lost, which display never needs). */
export function parseTime(rfc3339: string): number {
  const match = /^(.*?)(?:\.(\d{1,9}))?Z$/.exec(rfc3339);
  if (!match) return Number.NaN;
  return Date.parse(`${match[1]}Z`) * 1e6 + Number((match[2] ?? '').padEnd(9, '0'));
}

/**
 * Why packets gave no TCP to analyse, when that is a failure to read them rather than a capture
 * without TCP: then "no connection stuck" would be no answer at all.
 */
export function nothingAnalysed(report: Report): string | null {
  const { summary } = report;
  if (summary.ports && summary.connections === 0 && summary.filteredOut > 0) {
    return `none of the ${plural(summary.filteredOut, 'TCP packet')} was on --port ${summary.ports.join(', ')} (the warnings name the capture's busiest ports)`;
  }
  const { truncated, unsupportedLink, badHeader } = summary.skipped;
  if (summary.tcpPackets > 0 || summary.packets === 0 || truncated + unsupportedLink + badHeader === 0) return null;
  const why = [
    truncated > 0 ? `${formatNumber(truncated)} cut short before the end of their TCP header (snapshot length)` : '',
    unsupportedLink > 0 ? `${formatNumber(unsupportedLink)} of a link type closewait does not decode` : '',
    badHeader > 0 ? `${formatNumber(badHeader)} with damaged headers` : '',
  ].filter(Boolean);
  return `none of the ${plural(summary.packets, 'packet')} could be read as TCP: ${why.join(', ')}`;
}

/** No packets, or none of them TCP (and none skipped for a reason of its own): nothing here to be stuck. */
export function noTcpTraffic(report: Report): string | null {
  const { summary } = report;
  if (summary.tcpPackets > 0 || nothingAnalysed(report) || !report.inputs.some((i) => !i.error)) return null;
  if (summary.packets === 0) return 'the capture holds no packets (a filter that matched nothing, the wrong interface?)';
  return `none of the ${plural(summary.packets, 'packet')} is TCP (tunnelled traffic, VXLAN or GRE, is not decoded: capture inside the tunnel)`;
}

/**
 * When no connection is stuck but most were seen from one side only, the capture cannot show CLOSE_WAIT
 * (the stuck side's ACK of its peer's FIN is in the missing direction): no all-clear then.
 */
export function oneDirectionOnly(report: Report): string | null {
  const { summary } = report;
  if (summary.closeWait > 0 || summary.oneWay < 10 || summary.oneWay * 2 < summary.connections) return null;
  return `${formatNumber(summary.oneWay)} of ${plural(summary.connections, 'connection')} were seen from one side only: the capture holds one direction of the traffic, where CLOSE_WAIT cannot show`;
}

/** Short title for a ticket. */
export function title(report: Report): string {
  if (nothingAnalysed(report)) return report.summary.tcpPackets > 0 ? 'Nothing analysed: no packet on the given --port' : 'Nothing analysed: no packet could be read as TCP';
  if (oneDirectionOnly(report)) return 'No answer: the capture holds one direction of the traffic';
  if (noTcpTraffic(report)) return report.summary.packets === 0 ? 'No packets in the capture' : 'No TCP traffic in the capture';
  const stuck = stuckServers(report);
  if (stuck.length === 0) return report.summary.closeWaitAnyAge > 0 ? 'No connection stuck in CLOSE_WAIT long enough to report' : 'No connection stuck in CLOSE_WAIT';
  const where = stuck.slice(0, 2).map(endpoint).join(', ') + (stuck.length > 2 ? ` and ${plural(stuck.length - 2, 'more server')}` : '');
  return `${plural(report.summary.closeWait, 'connection')} stuck in CLOSE_WAIT on ${where}`;
}

/** One sentence: what happened, where, when, how fast, and that it lasted to the end. */
export function verdict(report: Report): string {
  const { summary } = report;
  const what = `${plural(summary.connections, 'TCP connection')} in ${plural(summary.packets, 'packet')}`;
  const unread = nothingAnalysed(report);
  if (unread) return `Nothing could be analysed: ${unread}.`;
  const oneWay = oneDirectionOnly(report);
  if (oneWay) return `No answer: ${oneWay}; capture both directions.`;
  const noTcp = noTcpTraffic(report);
  if (noTcp) return `No TCP traffic: ${noTcp}.`;
  const sending = stillSendingNote(report);
  const andSending = sending ? ` ${capitalised(sending)}.` : '';
  if (summary.closeWait === 0) {
    if (summary.closeWaitAnyAge > 0) return `No connection was stuck for ${duration(summary.minAgeSeconds)} or more; ${plural(summary.closeWaitAnyAge, 'younger one')} (${what}).${andSending}`;
    return `No connection was stuck in CLOSE_WAIT (${what}).${andSending}`;
  }
  const stuck = stuckServers(report);
  const top = stuck[0]!;
  const sides =
    summary.closeWaitClientSide === 0 ? 'the server side never closed after the client\'s FIN'
    : summary.closeWaitServerSide === 0 ? 'the client side never closed after the server\'s FIN'
    : `${formatNumber(summary.closeWaitServerSide)} stuck on the server side, ${formatNumber(summary.closeWaitClientSide)} on the client side`;
  const window = top.leakWindow ? ` between ${clock(top.leakWindow[0])} and ${clock(top.leakWindow[1])}` : '';
  const pace = top.stuckPerMinute !== null ? ` (${rate(top.stuckPerMinute)} per minute)` : '';
  const others = stuck.length > 1 ? `, and ${plural(summary.closeWait - top.closeWait, 'more', 'more')} on ${plural(stuck.length - 1, 'other server')}` : '';
  return `${plural(top.closeWait, 'connection')} to ${endpoint(top)} got stuck in CLOSE_WAIT${window}${pace}${others}: ${sides}, and they were still open when the capture ended (${what}).${andSending}`;
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Connections in CLOSE_WAIT that are not stuck (still sending when the capture ended), said once so
 * no report counts them as stuck nor leaves them out unexplained; null when there are none.
 */
export function stillSendingNote(report: Report): string | null {
  const sending = report.stillSending;
  if (sending.length === 0) return null;
  const servers = [...new Set(sending.map((f) => endpoint(f.server)))];
  const where = servers.slice(0, 2).join(', ') + (servers.length > 2 ? ` and ${plural(servers.length - 2, 'more server')}` : '');
  const peers = sending.every((f) => f.stuckSide === 'server') ? 'the client' : sending.every((f) => f.stuckSide === 'client') ? 'the server' : 'the peer';
  const blocked = sending.filter((f) => f.peerWindowClosed).length;
  const answered = sending.length - blocked;
  const subject = (n: number) => (n === sending.length ? (n === 1 ? 'it is' : 'they are') : n === 1 ? '1 is' : `${formatNumber(n)} are`);
  const states = [
    answered > 0 ? `${subject(answered)} still being answered (new data in the last 5 s, or at the side's own pace)` : '',
    blocked > 0 ? `${subject(blocked)} waiting on ${peers}, whose receive window is closed: it stopped reading, and the answer (with any FIN behind it) cannot be sent` : '',
  ].filter(Boolean);
  return (
    `${plural(sending.length, 'connection')} on ${where} ${sending.length === 1 ? 'is' : 'are'} in CLOSE_WAIT but not stuck: ` +
    `${peers} half-closed (shutdown), and ${states.join('; ')}`
  );
}

export const STILL_SENDING_HEADER = ['side', 'server', 'client', 'in CLOSE_WAIT for', 'sent after the FIN', 'last data at', 'peer window'];

export function stillSendingCells(f: Finding): string[] {
  return [
    f.stuckSide,
    endpoint(f.server),
    endpoint(f.client),
    duration(f.stuckSeconds),
    plural(f.bytesAfterPeerFin, 'byte'),
    f.lastDataTime ? timeOfDay(f.lastDataTime) : '-',
    f.peerWindowClosed ? 'closed (not reading)' : 'open',
  ];
}

export function stuckServers(report: Report): ServerSummary[] {
  return report.servers.filter((s) => s.closeWait > 0);
}

/** Servers worth a row: every one with stuck connections or slow closes, or all when there are few. */
export function shownServers(report: Report): ServerSummary[] {
  return report.servers.filter((s) => s.closeWait > 0 || report.servers.length <= 10 || (s.slowClose?.p95Seconds ?? 0) >= 1).slice(0, 20);
}

export const SERVER_HEADER = ['server', 'conns', 'CLOSE_WAIT', 'server-side', 'client-side', 'onset', 'leak window', 'stuck/min', 'oldest', 'close p50/p95/max', 'closed', 'reset', 'open'];

export function serverCells(s: ServerSummary): string[] {
  return [
    endpoint(s),
    formatNumber(s.connections),
    formatNumber(s.closeWait),
    s.closeWaitServerSide > 0 ? formatNumber(s.closeWaitServerSide) : '-',
    s.closeWaitClientSide > 0 ? formatNumber(s.closeWaitClientSide) : '-',
    s.onsetTime ? timeOfDay(s.onsetTime) : '-',
    s.leakWindow && s.leakWindow[0] !== s.leakWindow[1] ? duration(secondsBetween(s.leakWindow[0], s.leakWindow[1])) : '-',
    rate(s.stuckPerMinute),
    s.oldestStuckSeconds === null ? '-' : duration(s.oldestStuckSeconds),
    s.slowClose ? `${closeTime(s.slowClose.p50Seconds)} / ${closeTime(s.slowClose.p95Seconds)} / ${closeTime(s.slowClose.maxSeconds)}` : '-',
    formatNumber(s.closed),
    formatNumber(s.reset),
    formatNumber(s.openAtEnd),
  ];
}

/** Close times are often far below a millisecond: show them in µs or ms there. */
export function closeTime(seconds: number): string {
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)} µs`;
  if (seconds < 1) return `${Math.round(seconds * 1e4) / 10} ms`;
  return duration(seconds);
}

/** "18:15:48.088039" from an RFC 3339 time (the date is in the capture line). */
export function timeOfDay(rfc3339: string): string {
  return rfc3339.slice(11).replace('Z', '');
}

/** One line per server: onset, window, pace, oldest. */
export function serverStory(s: ServerSummary): string | null {
  if (!s.onsetTime) return null;
  const parts = [`onset ${clock(s.onsetTime)}`];
  if (s.leakWindow && s.leakWindow[0] !== s.leakWindow[1]) parts.push(`leak window ${duration(secondsBetween(s.leakWindow[0], s.leakWindow[1]))} (${timeOfDay(s.leakWindow[0])} → ${timeOfDay(s.leakWindow[1])})`);
  if (s.stuckPerMinute !== null) parts.push(`${rate(s.stuckPerMinute)} stuck per minute`);
  if (s.oldestStuckSeconds !== null) parts.push(`oldest stuck ${duration(s.oldestStuckSeconds)}${s.oldestStuckClient ? ` (client ${endpoint(s.oldestStuckClient)})` : ''}`);
  return `${endpoint(s)}: ${parts.join(', ')}`;
}

export const FINDING_HEADER = ['#', 'stuck side', 'family', 'server', 'client', 'stuck for', 'peer FIN at', 'evidence'];

export function findingCells(f: Finding, index: number, report: Report): string[] {
  return [String(index + 1), f.stuckSide, FAMILY_LABEL[f.family], endpoint(f.server), endpoint(f.client), duration(f.stuckSeconds), timeOfDay(f.peerFinTime), evidence(f, report)];
}

/** Where to look in the capture: file, frame numbers and the FIN's time. */
export function evidence(f: Finding, report: Report): string {
  const file = (input: number) => baseName(report.inputs[input]?.path ?? `input ${input}`);
  const fin = f.evidence.peerFin;
  const ack = f.evidence.peerFinAck;
  const ackWhere = ack.input === fin.input ? `#${ack.frame}` : `${file(ack.input)} #${ack.frame}`;
  return `${file(fin.input)}: FIN #${fin.frame}, ACK ${ackWhere}`;
}

export function baseName(path: string): string {
  const cut = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return cut >= 0 ? path.slice(cut + 1) : path;
}

export interface TimelineSeries {
  label: string;
  /** Seconds from the capture start to each bucket's end. */
  offsets: number[];
  times: string[];
  counts: number[];
}

export function timelineSeries(report: Report): TimelineSeries[] {
  const start = report.summary.captureStartTime;
  return timelineByServer(report.timeline).map((s) => ({
    label: endpoint(s.server),
    times: s.times,
    offsets: s.times.map((t) => (start ? Math.round(secondsBetween(start, t) * 1000) / 1000 : 0)),
    counts: s.counts,
  }));
}

/** Rows of the timeline where any count changes (plus the first and last): exact, and short. */
export function timelineChangeRows(series: readonly TimelineSeries[]): { time: string; offset: number; counts: number[] }[] {
  if (series.length === 0) return [];
  const first = series[0]!;
  const rows: { time: string; offset: number; counts: number[] }[] = [];
  for (let i = 0; i < first.times.length; i++) {
    const counts = series.map((s) => s.counts[i]!);
    const changed = i === 0 || i === first.times.length - 1 || series.some((s) => s.counts[i] !== s.counts[i - 1]);
    if (changed) rows.push({ time: first.times[i]!, offset: first.offsets[i]!, counts });
  }
  return rows;
}

const BARS = '▁▂▃▄▅▆▇█';

/** A sparkline of counts, scaled to the largest; zero stays the lowest bar. */
export function sparkline(counts: readonly number[]): string {
  const max = Math.max(1, ...counts);
  return counts.map((n) => (n === 0 ? ' ' : BARS[Math.min(BARS.length - 1, Math.ceil((n / max) * BARS.length) - 1)]!)).join('');
}

/** Every problem with the inputs, then the analysis warnings. */
export function problems(report: Report): string[] {
  return [...inputErrorLines(report.inputs), ...report.warnings];
}
