import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { analyze } from '../analyze/run.js';
import type { Report } from '../analyze/model.js';
import { title, verdict } from './figures.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures');

/** The incident's report with a second server that has `stuck` connections stuck too. */
async function withSecondServer(stuck: number): Promise<Report> {
  const report = await analyze([join(FIXTURES, 'incident.pcap')]);
  const first = report.servers.find((s) => s.closeWait > 0)!;
  report.servers.push({ ...first, port: first.port + 1, closeWait: stuck, closeWaitServerSide: stuck, closeWaitClientSide: 0 });
  report.summary.closeWait += stuck;
  report.summary.closeWaitServerSide += stuck;
  return report;
}

describe('verdict', () => {
  it('counts the other servers\' stuck connections in plain English', async () => {
    const many = await withSecondServer(40);
    expect(verdict(many)).toMatch(/, and 40 more on 1 other server:/);
    expect(title(many)).toMatch(/stuck in CLOSE_WAIT on .+, .+$/);
    const one = await withSecondServer(1);
    expect(verdict(one)).toMatch(/, and 1 more on 1 other server:/);
  });
});
