import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import { generateCapture, truthPathFor, type GeneratorTruth } from '../src/bench/generate.js';

/**
 * The benchmark's synthetic capture is only worth timing if closewait gets it exactly right: the
 * generator's truth (taken from the packets it wrote) and the analysis must agree on every count
 * and on the stuck set. A slow rate stretches 6 MB over 22 minutes, so the rare paths (a port reused
 * into a stuck connection, FIN_WAIT_2 timeouts, a leaked socket closed at last) happen too.
 */
const dir = mkdtempSync(join(tmpdir(), 'closewait-bench-generator-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SIZE = 6 * 1024 * 1024;
// Seed 10 happens to hold three ports reused into stuck connections, two leaks closed and three attempts given up
// (rare events) besides everything else.
const options = { sizeBytes: SIZE, seed: 10, connectionsPerSecond: 0.5 };

describe('benchmark capture generator', () => {
  const out = join(dir, 'first.pcap');
  const truth: GeneratorTruth = generateCapture({ ...options, out });

  it('writes a capture of the asked size, with its truth beside it', () => {
    expect(truth.file.bytes).toBeGreaterThanOrEqual(SIZE);
    expect(truth.file.bytes).toBeLessThan(SIZE + 2000);
    expect(readFileSync(out).length).toBe(truth.file.bytes);
    expect(JSON.parse(readFileSync(truthPathFor(out), 'utf8'))).toEqual(truth);
  });

  it('holds every kind of connection the benchmark promises', () => {
    expect(truth.closeWaitServerSide).toBeGreaterThan(0);
    expect(truth.closeWaitClientSide).toBeGreaterThan(0);
    expect(truth.reset).toBeGreaterThan(0);
    expect(truth.closed).toBeGreaterThan(0);
    expect(truth.openAtEnd).toBeGreaterThan(0);
    expect(truth.unanswered).toBeGreaterThan(0);
    expect(truth.events.tupleReuses).toBeGreaterThan(0);
    expect(truth.events.challengeAckReuses).toBeGreaterThan(0);
    expect(truth.events.leaksClosed).toBeGreaterThan(0);
    expect(truth.events.midstreamAtStart).toBeGreaterThan(0);
    const { shape } = truth;
    expect(shape.frameSizes['<=60']).toBeGreaterThan(0);
    expect(shape.frameSizes['1500-1514']).toBeGreaterThan(0);
    expect(shape.pureAcks / shape.packets).toBeGreaterThan(0.3);
  });

  it('analyze() reproduces the truth exactly: counts and the stuck set', async () => {
    const report = await analyze([out]);
    const { summary } = report;
    expect(report.warnings).toEqual([]);
    expect(summary.packets).toBe(truth.file.packets);
    expect(summary.tcpPackets).toBe(truth.file.packets);
    expect({
      connections: summary.connections,
      closeWait: summary.closeWait,
      closeWaitServerSide: summary.closeWaitServerSide,
      closeWaitClientSide: summary.closeWaitClientSide,
      reset: summary.reset,
      closed: summary.closed,
      openAtEnd: summary.openAtEnd,
      stillSending: summary.stillSending,
      unanswered: summary.unanswered,
    }).toEqual({
      connections: truth.connections,
      closeWait: truth.closeWait,
      closeWaitServerSide: truth.closeWaitServerSide,
      closeWaitClientSide: truth.closeWaitClientSide,
      reset: truth.reset,
      closed: truth.closed,
      openAtEnd: truth.openAtEnd,
      stillSending: truth.stillSending,
      unanswered: truth.unanswered,
    });
    const found = report.findings.map((f) => `${f.server.ip}:${f.server.port}>${f.client.ip}:${f.client.port} ${f.stuckSide}`).sort();
    const expected = truth.stuck.map((s) => `${s.server}>${s.client} ${s.stuckSide}`).sort();
    expect(found).toEqual(expected);
  });

  it('writes the same bytes for the same seed, other bytes for another', () => {
    const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
    const again = join(dir, 'again.pcap');
    const other = join(dir, 'other-seed.pcap');
    generateCapture({ ...options, out: again });
    generateCapture({ ...options, seed: options.seed + 1, out: other });
    expect(digest(again)).toBe(digest(out));
    expect(digest(other)).not.toBe(digest(out));
  });
});
