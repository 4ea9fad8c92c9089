import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import type { Report } from '../src/analyze/model.js';
import { canonicalEndpoint, loadTruth, stuckSetFromReport, stuckSidesFromReport, stuckSidesFromTruth, type Truth } from './helpers/truth.js';

/**
 * Every real-kernel fixture, analysed with and without --port, must give exactly the kernel's view:
 * the CLOSE_WAIT sockets `ss` listed (less those the capture cannot show, plus those the wire cannot
 * tell apart, which must then be marked uncertain) and the number of connections.
 */
const FIXTURES = 'fixtures';
const truths = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.truth.json'))
  .map((name) => loadTruth(join(FIXTURES, name)));

const pair = (p: { stuck: string; peer: string }) => `${canonicalEndpoint(p.stuck)}>${canonicalEndpoint(p.peer)}`;

function expectedStuckSet(truth: Truth): string[] {
  const invisible = new Set([...(truth.closeWaitNotObservable ?? []), ...(truth.closeWaitStillSending ?? [])].map(pair));
  const visible = truth.closeWait.map(pair).filter((p) => !invisible.has(p));
  return [...visible, ...(truth.closeWaitLookalikes ?? []).map(pair)].sort();
}

const paths = (truth: Truth) => truth.files.map((file) => join(FIXTURES, file));

describe.each(truths.map((truth) => [truth.scenario, truth] as const))('fixture %s', (_name, truth) => {
  for (const withPorts of [false, true]) {
    it(`matches the kernel's CLOSE_WAIT set and connection count ${withPorts ? 'with' : 'without'} --port`, async () => {
      const report = await analyze(paths(truth), withPorts ? { ports: truth.servicePorts } : {});
      expect(report.inputs.every((input) => input.error === null)).toBe(true);
      expect(stuckSetFromReport(report)).toEqual(expectedStuckSet(truth));
      expect(stuckSetFromReport({ findings: report.stillSending })).toEqual((truth.closeWaitStillSending ?? []).map(pair).sort());
      expect(report.summary.connections).toBe(truth.connections);
      const sides = stuckSidesFromReport(report);
      for (const [key, side] of Object.entries(stuckSidesFromTruth(truth))) if (key in sides) expect([key, sides[key]]).toEqual([key, side]);
      const lookalikes = new Set((truth.closeWaitLookalikes ?? []).map(pair));
      for (const finding of report.findings) {
        const key = stuckSetFromReport({ findings: [finding] })[0]!;
        if (lookalikes.has(key)) expect(finding.uncertain).toMatch(/mid-connection/);
      }
    });
  }
});

describe('fixture formats', () => {
  it('the truncated variant keeps what it read and says where it stopped', async () => {
    const truth = truths.find((t) => t.scenario === 'variant-truncated')!;
    const report = await analyze(paths(truth));
    expect(report.inputs[0]!.truncated).toBe(true);
    expect(report.warnings.join('\n')).toMatch(new RegExp(`stopped at byte [\\d,]+; kept the [\\d,]+ packets before it`));
  });

  it('every variant of one capture gives the same findings', async () => {
    const variants = truths.filter((t) => t.scenario.startsWith('variant-'));
    expect(variants.length).toBeGreaterThanOrEqual(5);
    const sets = await Promise.all(variants.map(async (t) => stuckSetFromReport(await analyze(paths(t)))));
    for (const set of sets) expect(set).toEqual(sets[0]);
  });

  it('nanosecond inputs keep nanoseconds in the report', async () => {
    const truth = truths.find((t) => t.scenario === 'variant-ns')!;
    const report = await analyze(paths(truth));
    expect(report.findings[0]!.peerFinTime).toMatch(/\.\d{9}Z$/);
    const micro = await analyze(paths(truths.find((t) => t.scenario === 'incident')!));
    expect(micro.findings[0]!.peerFinTime).toMatch(/\.\d{6}Z$/);
  });

  it('the -i any capture (Linux SLL2) decodes', async () => {
    const report = await analyze(paths(truths.find((t) => t.scenario === 'any')!));
    expect(report.inputs[0]!.linkTypes).toEqual([276]);
  });
});

describe('a rotated set is one capture', () => {
  const truth = truths.find((t) => t.scenario === 'rotated')!;
  const stuck = (report: Report) => stuckSetFromReport(report);

  it('in any argument order', async () => {
    const forward = await analyze(paths(truth));
    const reversed = await analyze([...paths(truth)].reverse());
    expect(stuck(reversed)).toEqual(stuck(forward));
    expect(reversed.inputs.map((i) => i.path)).toEqual(paths(truth));
    expect(forward.warnings).toEqual([]);
  });

  /** The rotated files in a new directory, every other one gzip'd (NAME1.gz, NAME3.gz), less those left out. */
  const partlyGzipped = (leaveOut: number[] = []): string => {
    const dir = mkdtempSync(join(tmpdir(), 'closewait-rotated-'));
    truth.files.forEach((file, index) => {
      if (leaveOut.includes(index)) return;
      if (index % 2 === 1) writeFileSync(join(dir, `${file}.gz`), gzipSync(readFileSync(join(FIXTURES, file))));
      else copyFileSync(join(FIXTURES, file), join(dir, file));
    });
    return dir;
  };

  it('partly gzip\'d in a directory, same findings as the single capture they were cut from', async () => {
    const dir = partlyGzipped();
    const report = await analyze([...readdirSync(dir)].sort().map((f) => join(dir, f)));
    rmSync(dir, { recursive: true, force: true });
    expect(stuck(report)).toEqual(expectedStuckSet(truth));
    expect(report.summary.connections).toBe(truth.connections);
    expect(report.inputs.filter((i) => i.compressed)).toHaveLength(2);
    // NAME1.gz is NAME1: no member of the set is missing.
    expect(report.warnings).toEqual([]);
  });

  it('partly gzip\'d with the middle file removed: the gap and the missing member are named', async () => {
    const dir = partlyGzipped([2]);
    const report = await analyze([...readdirSync(dir)].sort().map((f) => join(dir, f)));
    rmSync(dir, { recursive: true, force: true });
    expect(report.warnings.join('\n')).toMatch(/gap between .*rotated\.pcap1\.gz and .*rotated\.pcap3\.gz/);
    expect(report.warnings.join('\n')).toMatch(/rotated set rotated\.pcap\* lacks rotated\.pcap2$/m);
    expect(report.findings.some((f) => f.uncertain?.includes('gap'))).toBe(true);
  });

  it('a file removed from the middle is flagged, and findings across the gap are uncertain', async () => {
    const withoutMiddle = paths(truth).filter((_p, index) => index !== 2);
    const report = await analyze(withoutMiddle);
    expect(report.warnings.join('\n')).toMatch(/gap between .*rotated\.pcap1 and .*rotated\.pcap3/);
    expect(report.warnings.join('\n')).toMatch(/rotated set rotated\.pcap\* lacks rotated\.pcap2/);
    expect(report.findings.some((f) => f.uncertain?.includes('gap'))).toBe(true);
  });
});
