import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import type { Report } from '../src/analyze/model.js';
import { CSV_COLUMNS, parseCsv, quote, renderCsv } from '../src/report/csv.js';
import { escape, renderHtml } from '../src/report/html.js';
import { renderJson } from '../src/report/json.js';
import { renderMarkdown } from '../src/report/markdown.js';
import { renderText } from '../src/report/text.js';
import { rate, serverCells, stillSendingCells, stillSendingNote, timelineSeries } from '../src/report/figures.js';
import { renderMarkdown as libraryMarkdown, renderHtml as libraryHtml, renderCsv as libraryCsv, analyze as libraryAnalyze } from '../src/index.js';
import { loadTruth } from './helpers/truth.js';

const FIXTURES = 'fixtures';
const load = (name: string, options: { minAgeSeconds?: number } = {}) =>
  analyze(loadTruth(join(FIXTURES, `${name}.truth.json`)).files.map((f) => join(FIXTURES, f)), { ...options, command: `closewait analyze fixtures/${name}.pcap` });

/** The figures a person reads: every one must be in every human-facing format. */
function figures(report: Report): string[] {
  const out: string[] = [];
  for (const s of report.servers.filter((x) => x.closeWait > 0 || x.slowClose)) {
    out.push(...serverCells(s));
    if (s.stuckPerMinute !== null) out.push(`${rate(s.stuckPerMinute)} stuck per minute`);
  }
  for (const item of report.diagnosis) out.push(item.summary);
  const sending = stillSendingNote(report);
  if (sending) out.push(sending);
  for (const f of report.stillSending) out.push(...stillSendingCells(f));
  return out;
}

const SCENARIOS = ['diagnosis-probe', 'incident', 'two-services', 'client-stuck', 'slow-close', 'port-reuse', 'mid-stream', 'half-close-sending'];

describe.each(SCENARIOS)('%s: every format tells the same figures', async (name) => {
  const report = await load(name);
  const json = JSON.parse(renderJson(report)) as Report;
  const text = renderText(report, { color: false, top: 20 });
  const markdown = renderMarkdown(report);
  const html = renderHtml(report);
  const csv = parseCsv(renderCsv(report));

  it('text, Markdown and HTML show each server figure and diagnosis sentence', () => {
    for (const figure of figures(report)) {
      expect(text).toContain(figure);
      expect(markdown).toContain(figure.replace(/\|/g, '\\|'));
      expect(html).toContain(escape(figure));
    }
  });

  it('CSV has one row per finding, in order, agreeing with JSON field for field', () => {
    const [header, ...rows] = csv;
    expect(header).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(json.summary.closeWait);
    expect(rows).toHaveLength(json.findings.length);
    const column = (row: string[], name: (typeof CSV_COLUMNS)[number]) => row[CSV_COLUMNS.indexOf(name)]!;
    rows.forEach((row, i) => {
      const f = json.findings[i]!;
      expect([column(row, 'family'), column(row, 'stuckSide'), column(row, 'serverIp'), column(row, 'serverPort'), column(row, 'clientIp'), column(row, 'clientPort')]).toEqual([
        f.family, f.stuckSide, f.server.ip, String(f.server.port), f.client.ip, String(f.client.port),
      ]);
      expect(Number(column(row, 'stuckSeconds'))).toBe(f.stuckSeconds);
      expect(Number(column(row, 'clientBytes'))).toBe(f.clientBytes);
      expect(Number(column(row, 'peerFinFrame'))).toBe(f.evidence.peerFin.frame);
      expect(column(row, 'uncertain')).toBe(f.uncertain ?? '');
    });
    for (const server of json.servers) {
      for (const [family, count] of Object.entries(server.stuckByFamily)) {
        const inCsv = rows.filter((r) => column(r, 'serverIp') === server.ip && column(r, 'serverPort') === String(server.port) && column(r, 'family') === family).length;
        expect([server.port, family, inCsv]).toEqual([server.port, family, count]);
      }
    }
  });

  it('the text verdict line and the per-family diagnosis counts agree with JSON', () => {
    if (json.summary.closeWait > 0) expect(text.split('\n')[0]).toContain(`${json.summary.closeWait.toLocaleString('en-US')} connection`);
    for (const item of json.diagnosis) {
      if (['probe', 'unanswered-request', 'answered-not-closed', 'client-not-closed'].includes(item.kind)) {
        const server = json.servers.find((s) => s.ip === item.server.ip && s.port === item.server.port)!;
        expect(item.connections).toBe(server.stuckByFamily[item.kind as keyof typeof server.stuckByFamily]);
      }
    }
    const patterned = json.diagnosis.filter((d) => d.kind === 'periodic-probe').reduce((n, d) => n + d.connections, 0);
    const loose = json.diagnosis.filter((d) => d.kind === 'probe').reduce((n, d) => n + d.connections, 0);
    expect(patterned + loose).toBe(json.servers.reduce((n, s) => n + s.stuckByFamily.probe, 0));
  });

  it('the timeline: the sparkline, the Mermaid line and the SVG all end at the stuck count', () => {
    for (const series of timelineSeries(report)) {
      const last = series.counts[series.counts.length - 1]!;
      const server = report.servers.find((s) => `${s.ip}:${s.port}` === series.label || `[${s.ip}]:${s.port}` === series.label)!;
      expect(last).toBe(server.closeWait);
      expect(text).toMatch(new RegExp(`${series.label.replace(/[.[\]]/g, '\\$&')} +▕.*▏ ${last}\\n`));
      expect(markdown).toContain(`    line [${series.counts.join(', ')}]`);
      expect(html).toContain(`data-server="${escape(series.label)}"`);
    }
  });
});

describe('Markdown is a complete incident note', async () => {
  const report = await load('incident');
  const markdown = renderMarkdown(report, { top: 5 });

  it('has the sections a ticket needs, in order', () => {
    const headings = markdown.split('\n').filter((l) => l.startsWith('## ')).map((l) => l.replace(/ \(.*/, ''));
    expect(headings).toEqual(['## Servers', '## Diagnosis', '## Timeline: open CLOSE_WAIT connections', '## Stuck connections', '## Inputs', '## Command']);
    expect(markdown.split('\n')[0]).toBe('# 26 connections stuck in CLOSE_WAIT on 127.0.0.1:20880');
    expect(markdown).toMatch(/\*\*Verdict:\*\* 26 connections to 127\.0\.0\.1:20880 got stuck in CLOSE_WAIT between .* \(1,356 per minute\)/);
    expect(markdown).toContain('```mermaid\nxychart-beta\n');
    expect(markdown).toContain('```sh\nclosewait analyze fixtures/incident.pcap\n```');
    expect(markdown).toContain('| 1 | server | probe (no payload) | 127.0.0.1:20880 | 127.0.0.2:36207 |');
    expect(markdown).toContain('incident.pcap: FIN #361, ACK #362');
    expect(markdown).toContain('… 21 more in the JSON or CSV report.');
  });

  it('every table row has as many cells as its header', () => {
    const lines = markdown.split('\n');
    let width = 0;
    for (const line of lines) {
      if (!line.startsWith('|')) {
        width = 0;
        continue;
      }
      const cells = line.replace(/\\\|/g, '').split('|').length - 2;
      if (width === 0) width = cells;
      expect(cells).toBe(width);
    }
  });

  it('a healthy capture says so, without empty sections', async () => {
    const healthy = renderMarkdown(await load('slow-close'));
    expect(healthy.split('\n')[0]).toBe('# No connection stuck in CLOSE_WAIT');
    expect(healthy).not.toContain('## Stuck connections');
    expect(healthy).not.toContain('## Timeline');
    expect(healthy).toContain('### Slow closes on 127.0.0.1:20880');
  });
});

describe('CSV follows RFC 4180', () => {
  it('quotes commas, quotes and line breaks, doubles quotes, leaves null empty', () => {
    expect(quote('plain')).toBe('plain');
    expect(quote('a, b')).toBe('"a, b"');
    expect(quote('say "hi"')).toBe('"say ""hi"""');
    expect(quote('two\nlines')).toBe('"two\nlines"');
    expect(quote(null)).toBe('');
    expect(quote(12.5)).toBe('12.5');
    expect(parseCsv('a,"b,c","d""e"\r\n"x\ny",,z\r\n')).toEqual([['a', 'b,c', 'd"e'], ['x\ny', '', 'z']]);
  });

  it('rows end with CRLF and uncertain reasons with commas survive a round trip', async () => {
    const report = await load('mid-stream');
    const csv = renderCsv(report);
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(csv.split('\r\n').length - 1).toBe(report.findings.length + 1);
    const uncertain = report.findings.find((f) => f.uncertain?.includes(','))!;
    expect(uncertain).toBeDefined();
    const rows = parseCsv(csv);
    expect(rows.some((row) => row[CSV_COLUMNS.indexOf('uncertain')] === uncertain.uncertain)).toBe(true);
  });

  it('a capture without findings is a header row only', async () => {
    expect(renderCsv(await load('slow-close'))).toBe(`${CSV_COLUMNS.join(',')}\r\n`);
  });
});

describe('library entry point', () => {
  it('exports analyze and the renderers for bots', async () => {
    const report = await libraryAnalyze([join(FIXTURES, 'incident.pcap')]);
    expect(libraryMarkdown(report)).toContain('# 26 connections stuck in CLOSE_WAIT');
    expect(libraryHtml(report)).toMatch(/^<!doctype html>/);
    expect(libraryCsv(report).split('\r\n')).toHaveLength(28);
  });
});
