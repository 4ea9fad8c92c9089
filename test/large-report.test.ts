import { describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import { DiagnosisCollector } from '../src/analyze/diagnosis.js';
import type { Finding, Report } from '../src/analyze/model.js';
import { rfc3339Parts } from '../src/analyze/diagnosis.js';
import { TimeBase } from '../src/analyze/time.js';
import { renderCsv } from '../src/report/csv.js';
import { renderHtml } from '../src/report/html.js';
import { renderJson } from '../src/report/json.js';
import { renderMarkdown } from '../src/report/markdown.js';
import { renderText } from '../src/report/text.js';

/**
 * A leak that runs for days leaves hundreds of thousands of stuck sockets on one server: more than a
 * function call can take as spread arguments (V8 throws past ~150,000), and more than a quadratic loop
 * gets through. Every stage after the tracker must cope, in all report formats with --all.
 */
const STUCK = 250_000;

async function largeReport(): Promise<Report> {
  const report = await analyze(['fixtures/incident.pcap']);
  const model = report.findings[0]!;
  const base = rfc3339Parts(model.peerFinTime)[0];
  const findings: Finding[] = Array.from({ length: STUCK }, (_, i) => ({
    ...model,
    client: { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 40_000 + (i % 20_000) },
    peerFinTime: new Date((base + i) * 1000).toISOString().replace('.000Z', `.${String(i % 1000).padStart(3, '0')}000Z`),
    stuckSeconds: STUCK - i,
    uncertain: i % 1000 === 0 ? 'capture started mid-connection' : null,
  }));
  return { ...report, findings, summary: { ...report.summary, closeWait: STUCK } };
}

describe(`a report with ${STUCK.toLocaleString('en-US')} stuck connections on one server`, () => {
  it('is diagnosed, and rendered in every format with every connection listed', async () => {
    const report = await largeReport();
    const time = new TimeBase(rfc3339Parts(report.findings[0]!.peerFinTime)[0] - 86_400, 6);
    const server = { ...report.servers[0]!, closeWait: STUCK };
    const diagnosed = new DiagnosisCollector().finish({ findings: report.findings, servers: [server], time, captureStart: 0, captureEnd: (86_400 + STUCK) * 1e9 });
    expect(diagnosed.servers[0]!.stuckByFamily.probe + diagnosed.servers[0]!.stuckByFamily['unanswered-request'] + diagnosed.servers[0]!.stuckByFamily['answered-not-closed']).toBe(STUCK);
    expect(diagnosed.diagnosis.length).toBeGreaterThan(0);

    const last = report.findings[STUCK - 1]!.client;
    expect(renderText(report, { color: false, top: Number.POSITIVE_INFINITY })).toContain(`${last.ip}:${last.port}`);
    expect(renderMarkdown(report, { top: Number.POSITIVE_INFINITY })).toContain(`${last.ip}:${last.port}`);
    expect(renderHtml(report, { top: Number.POSITIVE_INFINITY })).toContain(last.ip);
    expect(renderCsv(report).split('\n').length).toBeGreaterThan(STUCK);
    expect(JSON.parse(renderJson(report)).findings).toHaveLength(STUCK);
  }, 60_000);
});
