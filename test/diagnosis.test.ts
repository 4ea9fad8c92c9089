import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import type { Report, ServerSummary } from '../src/analyze/model.js';
import { DiagnosisCollector } from '../src/analyze/diagnosis.js';
import { TimeBase } from '../src/analyze/time.js';
import { ConnectionTracker } from '../src/flow/tracker.js';
import { TCP_FLAG, newTcpSegment } from '../src/decode/segment.js';
import { loadTruth, stuckSetFromReport } from './helpers/truth.js';

const FIXTURES = 'fixtures';
const epoch = (rfc3339: string) => {
  const [whole, fraction = ''] = rfc3339.replace('Z', '').split('.');
  return Date.parse(`${whole}Z`) / 1000 + Number(`0.${fraction || '0'}`);
};
const server = (report: Report, port = 20880): ServerSummary => report.servers.find((s) => s.port === port)!;
/** |measured - truth| within `share` of the truth. */
const within = (measured: number, truth: number, share = 0.05) => {
  expect(Math.abs(measured - truth), `measured ${measured}, truth ${truth}`).toBeLessThanOrEqual(Math.abs(truth) * share);
};

/** Runs `body` with a new temporary directory, removed afterwards whatever happens. */
async function inTempDir(prefix: string, body: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface DiagnosisTruth {
  leakModeFrom: number;
  leakModeTo: number;
  onsetEpoch: number;
  leakWindowEpoch: [number, number];
  stuck: number;
  stuckPerMinute: number;
  probe: { client: string; plannedIntervalSeconds: number; connections: number; stuck: number };
  families: Record<'probe' | 'unanswered-request' | 'answered-not-closed', number>;
  unansweredRequestClientBytes: number;
  answeredNotClosedClientBytes: number;
  reconnectsIntoCloseWait: number;
}

describe('diagnosis on a real capture with known truth (fixtures/diagnosis-probe)', async () => {
  const truthFile = loadTruth(join(FIXTURES, 'diagnosis-probe.truth.json'));
  const truth = (JSON.parse(readFileSync(join(FIXTURES, 'diagnosis-probe.truth.json'), 'utf8')) as { diagnosis: DiagnosisTruth }).diagnosis;
  const report = await analyze(truthFile.files.map((f) => join(FIXTURES, f)));
  const s = server(report);
  const start = epoch(report.summary.captureStartTime!);

  it('finds every forgotten socket and nothing else', () => {
    expect(s.closeWait).toBe(truth.stuck);
  });

  it('onset within 5% (of its offset from the capture start)', () => {
    within(epoch(s.onsetTime!) - start, truth.onsetEpoch - start);
  });

  it('leak window within 5%: both ends and its length', () => {
    const [first, last] = s.leakWindow!.map(epoch) as [number, number];
    within(first - start, truth.leakWindowEpoch[0] - start);
    within(last - start, truth.leakWindowEpoch[1] - start);
    within(last - first, truth.leakModeTo - truth.leakModeFrom);
  });

  it('stuck per minute within 5%', () => {
    within(s.stuckPerMinute!, truth.stuckPerMinute);
  });

  it('probe pattern: the client, its interval within 5%, and every probe in the window left a socket', () => {
    expect(report.patterns).toHaveLength(1);
    const pattern = report.patterns[0]!;
    expect(pattern.clients).toEqual([truth.probe.client]);
    within(pattern.intervalSeconds, truth.probe.plannedIntervalSeconds);
    expect(pattern.connections).toBe(truth.probe.connections);
    expect(pattern.stuck).toBe(truth.probe.stuck);
    const item = report.diagnosis.find((d) => d.kind === 'periodic-probe')!;
    expect(item.summary).toMatch(/each probe during the leak window left one socket in CLOSE_WAIT/);
    expect(item.hint).toMatch(/accept\(\)/);
  });

  it('splits probes, unanswered requests and answered-not-closed exactly, with byte counts', () => {
    expect(s.stuckByFamily).toEqual({ ...truth.families, 'client-not-closed': 0 });
    const unanswered = report.diagnosis.find((d) => d.kind === 'unanswered-request')!;
    expect(unanswered.connections).toBe(truth.families['unanswered-request']);
    expect(unanswered.clientBytes).toBe(truth.unansweredRequestClientBytes);
    expect(unanswered.serverBytes).toBe(0);
    const answered = report.diagnosis.find((d) => d.kind === 'answered-not-closed')!;
    expect(answered.clientBytes).toBe(truth.answeredNotClosedClientBytes);
    expect(answered.serverBytes).toBeGreaterThan(0);
  });

  it('reconnects into CLOSE_WAIT as the truth counts them (client ports used again)', () => {
    expect(s.reconnectsIntoCloseWait).toBe(truth.reconnectsIntoCloseWait);
  });

  it('no finding is uncertain and no listen-backlog or slow-close claim is made', () => {
    expect(report.findings.filter((f) => f.uncertain)).toEqual([]);
    expect(report.diagnosis.map((d) => d.kind).sort()).toEqual(['answered-not-closed', 'periodic-probe', 'unanswered-request']);
  });

  it('the timeline climbs from 0 to the stuck count inside the leak window', () => {
    const counts = report.timeline.map((p) => p.closeWait);
    expect(counts.length).toBeLessThanOrEqual(60);
    expect(counts[0]).toBe(0);
    expect(counts[counts.length - 1]).toBe(truth.stuck);
    for (let i = 1; i < counts.length; i++) expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!);
    const firstNonZero = report.timeline.find((p) => p.closeWait > 0)!;
    expect(epoch(firstNonZero.time)).toBeGreaterThanOrEqual(truth.onsetEpoch);
  });
});

describe('diagnosis on the other real-kernel fixtures', () => {
  const load = async (name: string) => analyze(loadTruth(join(FIXTURES, `${name}.truth.json`)).files.map((f) => join(FIXTURES, f)));

  it('incident: the probe loop and the unanswered requests, as the truth lists them', async () => {
    const truth = loadTruth(join(FIXTURES, 'incident.truth.json'));
    const report = await load('incident');
    const byPeer = (prefix: string) => truth.closeWait.filter((c) => c.peer.startsWith(prefix)).length;
    expect(server(report).stuckByFamily.probe).toBe(byPeer('127.0.0.2:'));
    expect(server(report).stuckByFamily['unanswered-request']).toBe(byPeer('127.0.0.3:') + byPeer('127.0.0.4:'));
    const pattern = report.patterns[0]!;
    expect(pattern.clients).toEqual(['127.0.0.2']);
    within(pattern.intervalSeconds, 0.05, 0.1);
  });

  it('half-close-sending: streams still flowing, or held by a closed window, are not stuck; answers written after the FIN get the end-of-input hint', async () => {
    const truth = loadTruth(join(FIXTURES, 'half-close-sending.truth.json'));
    const report = await load('half-close-sending');
    expect(report.summary.stillSending).toBe(truth.closeWaitStillSending!.length);
    // .3 streams on; .6 was answered with more than it reads: its closed receive window holds the rest.
    expect(report.stillSending.map((f) => [f.client.ip, f.bytesAfterPeerFin > 0, f.peerWindowClosed]).sort()).toEqual([
      ...Array(3).fill(['127.0.0.3', true, false]),
      ...Array(2).fill(['127.0.0.6', true, true]),
    ]);
    expect(server(report).stillSending).toBe(truth.closeWaitStillSending!.length);
    const answered = report.diagnosis.find((d) => d.kind === 'answered-not-closed')!;
    expect(answered.connections).toBe(3);
    expect(answered.summary).toMatch(/sent after the client's FIN/);
    expect(answered.hint).toMatch(/end-of-input/);
    expect(report.findings.filter((f) => f.client.ip === '127.0.0.4').every((f) => f.bytesAfterPeerFin > 0 && f.lastDataTime !== null)).toBe(true);
    expect(report.findings.filter((f) => f.client.ip === '127.0.0.2').every((f) => f.bytesAfterPeerFin === 0 && f.lastDataTime === null)).toBe(true);
  });

  it('client-stuck: the client side family, with its own hint', async () => {
    const report = await load('client-stuck');
    const item = report.diagnosis.find((d) => d.kind === 'client-not-closed')!;
    expect(item.connections).toBe(5);
    expect(item.hint).toMatch(/pool/);
    expect(report.findings.every((f) => f.family === 'client-not-closed')).toBe(true);
  });

  it('slow-close: p50/p95/max between 1 and 2 s, and a slow-close item without stuck connections', async () => {
    const report = await load('slow-close');
    const close = server(report).slowClose!;
    expect(close.count).toBe(18);
    expect(close.p50Seconds).toBeGreaterThanOrEqual(1);
    expect(close.maxSeconds).toBeLessThan(2.1);
    expect(close.p95Seconds).toBeLessThanOrEqual(close.maxSeconds);
    expect(report.diagnosis.map((d) => d.kind)).toEqual(['slow-close']);
  });

  it('client-slow-close: clients closing 1-2 s after the server\'s FIN are timed, the other way round from slow-close', async () => {
    const report = await load('client-slow-close');
    expect(report.findings).toEqual([]);
    const s = server(report);
    expect(s.clientSlowClose!.count).toBe(12);
    expect(s.clientSlowClose!.p50Seconds).toBeGreaterThanOrEqual(1);
    expect(s.clientSlowClose!.p95Seconds).toBeLessThan(2.2);
    expect(s.clientSlowClose!.maxSeconds).toBeGreaterThanOrEqual(1.9);
    // The probes close first, and the server at once: fast server closes, and no slow-close item for them.
    expect(s.slowClose!.p95Seconds).toBeLessThan(0.1);
    expect(report.diagnosis.map((d) => d.kind)).toEqual(['client-slow-close']);
    expect(report.diagnosis[0]!.summary).toMatch(/^clients of 127\.0\.0\.1:20880 were slow to close after the server's FIN: p50 1(\.\d+)? s, p95 [12](\.\d+)? s, max [12](\.\d+)? s over 12 closes\.$/);
  });

  it('port-reuse: the SYN that hit a CLOSE_WAIT tuple is a finding of its own', async () => {
    const report = await load('port-reuse');
    expect(server(report).reconnectsIntoCloseWait).toBe(1);
    const item = report.diagnosis.find((d) => d.kind === 'reconnect-into-close-wait')!;
    expect(item.summary).toMatch(/127\.0\.0\.6:40002/);
    expect(item.hint).toMatch(/connect delays/);
  });

  it('port-reuse with the CLOSE_WAIT connection cut from the capture: the challenge ACK tells of it, and the new connection is clean', async () => {
    await inTempDir('closewait-unseen-', async (dir) => {
      // Frames 21-25: 127.0.0.6:40002's first connection, left in CLOSE_WAIT. As if the capture began after.
      const file = join(dir, 'port-reuse-late.pcap');
      writeFileSync(file, withoutFrames(readFileSync(join(FIXTURES, 'port-reuse.pcap')), [21, 22, 23, 24, 25]));
      const report = await analyze([file]);
      const full = await load('port-reuse');
      expect(report.findings.map((f) => `${f.client.ip}:${f.client.port}`)).toEqual(full.findings.map((f) => `${f.client.ip}:${f.client.port}`));
      expect(report.summary.connections).toBe(full.summary.connections - 1);
      // The RST ended the earlier connection, not the one the SYN opened: that one closed cleanly.
      expect(report.summary.reset).toBe(full.summary.reset - 1);
      expect(report.summary.closed).toBe(full.summary.closed);
      const s = server(report);
      expect(s.unansweredSyns).toBe(0);
      expect(s.reconnectsIntoCloseWait).toBe(0);
      expect(report.diagnosis.find((d) => d.kind === 'listen-backlog')).toBeUndefined();
      const item = report.diagnosis.find((d) => d.kind === 'reconnect-into-close-wait')!;
      expect(item.summary).toMatch(/^1 new SYN to 127\.0\.0\.1:20880 got a challenge ACK for an earlier connection on the same 4-tuple that the capture never saw: .*127\.0\.0\.6:40002/);
      expect(item.uncertain).toMatch(/not in the capture/);
    });
  });

  it('mid-stream: a finding without handshake stays marked uncertain in its family item', async () => {
    const report = await load('mid-stream');
    const client = report.diagnosis.find((d) => d.kind === 'client-not-closed');
    expect(client?.uncertain ?? '').toMatch(/mid-connection/);
  });

  it('listen-backlog (a real listener that never accepts): the overflow comes first and the stuck sockets are not blamed on accept()', async () => {
    const truth = JSON.parse(readFileSync(join(FIXTURES, 'listen-backlog.truth.json'), 'utf8')) as { diagnosis: { queuedNeverAccepted: number; clientsNeverConnected: number; listener: { recvQ: number } } };
    const report = await load('listen-backlog');
    const s = server(report, 20881);
    expect(s.closeWait).toBe(truth.diagnosis.queuedNeverAccepted);
    expect(s.unansweredSyns).toBeGreaterThanOrEqual(truth.diagnosis.clientsNeverConnected);
    expect(s.stuckPerMinute).toBeNull();
    expect(report.diagnosis[0]!.kind).toBe('listen-backlog');
    expect(report.diagnosis[0]!.summary).toContain(`(${truth.diagnosis.clientsNeverConnected} connections never got a SYN-ACK at all)`);
    expect(report.diagnosis[0]!.summary).toContain('while the stuck connections were opened and closed');
    expect(report.diagnosis[0]!.hint).toContain("ss -lnt 'sport = :20881'");
    const stuckItem = report.diagnosis.find((d) => d.kind === 'probe')!;
    expect(stuckItem.connections).toBe(truth.diagnosis.queuedNeverAccepted);
    expect(stuckItem.hint).toMatch(/never accepted/);
    expect(stuckItem.hint).not.toMatch(/Netty/);
  });

  it('healthy traffic gives no diagnosis', async () => {
    const report = await load('two-services');
    expect(report.diagnosis.filter((d) => d.server.port === 8080)).toEqual([]);
    expect(server(report, 8080).onsetTime).toBeNull();
    expect(server(report, 8080).leakWindow).toBeNull();
  });
});

describe('listen backlog on scripted exchanges', () => {
  const { SYN, ACK } = TCP_FLAG;
  /** `gapAfter`: the inputs have a gap in time after this many steps (a rotated file missing there). */
  function play(steps: [from: 'c' | 's', flags: number, seq: number, ack: number, atMs: number, clientPort: number][], endMs: number, gapAfter = -1) {
    const collector = new DiagnosisCollector();
    const tracker = new ConnectionTracker({ maxConnections: 100, lingerNanos: 120e9, onRelease: (c) => collector.observe(c, Number.POSITIVE_INFINITY) });
    const seg = newTcpSegment();
    steps.forEach(([from, flags, seq, ack, atMs, port], index) => {
      const client = [0, 0, 0xffff, 0x7f000002];
      const serverAddress = [0, 0, 0xffff, 0x7f000001];
      seg.src.set(from === 'c' ? client : serverAddress);
      seg.dst.set(from === 'c' ? serverAddress : client);
      seg.srcPort = from === 'c' ? port : 20880;
      seg.dstPort = from === 'c' ? 20880 : port;
      seg.flags = flags;
      seg.seq = seq;
      seg.ack = ack;
      seg.payloadLength = 0;
      tracker.onSegment(seg, atMs * 1e6, 0, index + 1);
      if (index + 1 === gapAfter) tracker.markLiveSpansGap();
    });
    const tallies = new Map<string, { ip: string; port: number; connections: number; closeWait: number; closeWaitServerSide: number; closeWaitClientSide: number; reset: number; closed: number; openAtEnd: number; stillSending: number; unanswered: number; oldestStuckSeconds: null }>();
    for (const connection of tracker.live()) {
      tracker.roles.resolve(connection);
      collector.observe(connection, endMs * 1e6);
      tallies.set('s', { ip: '127.0.0.1', port: 20880, connections: 0, closeWait: 0, closeWaitServerSide: 0, closeWaitClientSide: 0, reset: 0, closed: 0, openAtEnd: 0, stillSending: 0, unanswered: 0, oldestStuckSeconds: null });
    }
    return collector.finish({ findings: [], servers: [...tallies.values()], time: new TimeBase(1_700_000_000, 6), captureStart: 0, captureEnd: endMs * 1e6 });
  }

  it('retransmitted SYNs and SYN-ACKs are counted and explained, with the ss check', () => {
    const result = play(
      [
        ['c', SYN, 100, 0, 0, 40001], // never answered, retransmitted twice
        ['c', SYN, 100, 0, 1000, 40001],
        ['c', SYN, 100, 0, 3000, 40001],
        ['c', SYN, 200, 0, 10, 40002], // answered, the final ACK dropped: SYN-ACK sent again
        ['s', SYN | ACK, 900, 201, 11, 40002],
        ['c', ACK, 201, 901, 12, 40002],
        ['s', SYN | ACK, 900, 201, 1011, 40002],
      ],
      5000,
    );
    expect(result.servers[0]).toMatchObject({ unansweredSyns: 3, synAckRetransmits: 1 });
    const item = result.diagnosis.find((d) => d.kind === 'listen-backlog')!;
    expect(item.summary).toBe(
      '3 client SYNs to 127.0.0.1:20880 got no answer (1 connection never got a SYN-ACK at all) and 1 SYN-ACK from 127.0.0.1:20880 was sent again: ' +
        'the listener was not taking new connections, the sign of a full accept queue (the application not calling accept() fast enough).',
    );
    expect(item.hint).toMatch(/ss -lnt 'sport = :20880'/);
    expect(item.uncertain).toBeNull();
  });

  it('a SYN just before a gap in the inputs is not called unanswered: its answer may be in what is missing', () => {
    const steps: Parameters<typeof play>[0] = [
      ['c', SYN, 100, 0, 1000, 40001], // the last packet before the gap
      ['c', SYN, 300, 0, 9000, 40003],
      ['s', SYN | ACK, 700, 301, 9001, 40003],
      ['c', ACK, 301, 701, 9002, 40003],
    ];
    const acrossGap = play(steps, 10_000, 1);
    expect(acrossGap.servers[0]).toMatchObject({ unansweredSyns: 0 });
    expect(acrossGap.diagnosis.find((d) => d.kind === 'listen-backlog')).toBeUndefined();
    // Without the gap the same SYN did go unanswered.
    expect(play(steps, 10_000).servers[0]).toMatchObject({ unansweredSyns: 1 });
  });

  it('a SYN at the very end of the capture is not called unanswered', () => {
    const result = play([['c', SYN, 100, 0, 4900, 40001]], 5000);
    expect(result.servers[0]).toMatchObject({ unansweredSyns: 0, synAckRetransmits: 0 });
    expect(result.diagnosis).toEqual([]);
  });
});

/** A classic pcap without some of its records (1-based frame numbers): packets the capture lost. */
function withoutFrames(pcap: Buffer, drop: readonly number[]): Buffer {
  const parts = [pcap.subarray(0, 24)];
  let offset = 24;
  for (let frame = 1; offset + 16 <= pcap.length; frame++) {
    const length = 16 + pcap.readUInt32LE(offset + 8);
    if (!drop.includes(frame)) parts.push(pcap.subarray(offset, offset + length));
    offset += length;
  }
  return Buffer.concat(parts);
}

describe('every packet captured twice (tcpdump -i any on a host with bridges)', () => {
  it('finds the same, and does not call the doubled SYNs a listener that stopped answering', async () => {
    const pcap = readFileSync(join(FIXTURES, 'incident.pcap'));
    const parts: Buffer[] = [pcap.subarray(0, 24)];
    for (let offset = 24; offset + 16 <= pcap.length; ) {
      const record = pcap.subarray(offset, offset + 16 + pcap.readUInt32LE(offset + 8));
      const twin = Buffer.from(record);
      // 5 µs later, as the bridge sees what the veth saw (no record here is within 5 µs of a second's end).
      twin.writeUInt32LE(twin.readUInt32LE(4) + 5, 4);
      parts.push(record, twin);
      offset += record.length;
    }
    await inTempDir('closewait-twice-', async (dir) => {
      writeFileSync(join(dir, 'twice.pcap'), Buffer.concat(parts));
      const report = await analyze([join(dir, 'twice.pcap')]);
      const original = await analyze([join(FIXTURES, 'incident.pcap')]);
      expect(stuckSetFromReport(report)).toEqual(stuckSetFromReport(original));
      expect(server(report)).toMatchObject({ unansweredSyns: 0, synAckRetransmits: 0 });
      expect(report.diagnosis.map((d) => d.kind)).toEqual(original.diagnosis.map((d) => d.kind));
    });
  });
});

describe('the ACK of a FIN captured before the FIN (reordered, as -i any over several CPUs does)', () => {
  it('still acknowledges it: same findings, none uncertain', async () => {
    const original = await analyze([join(FIXTURES, 'incident.pcap')]);
    const pcap = readFileSync(join(FIXTURES, 'incident.pcap'));
    const records: Buffer[] = [];
    for (let offset = 24; offset + 16 <= pcap.length; ) {
      const length = 16 + pcap.readUInt32LE(offset + 8);
      records.push(Buffer.from(pcap.subarray(offset, offset + length)));
      offset += length;
    }
    let swapped = 0;
    for (const finding of original.findings) {
      const fin = finding.evidence.peerFin.frame - 1;
      const ack = finding.evidence.peerFinAck.frame - 1;
      if (ack !== fin + 1) continue;
      // The ACK first, with the FIN's timestamp; the FIN after it, with the ACK's.
      const [finRecord, ackRecord] = [records[fin]!, records[ack]!];
      const finStamp = Buffer.from(finRecord.subarray(0, 8));
      ackRecord.copy(finRecord, 0, 0, 8);
      finStamp.copy(ackRecord, 0);
      records[fin] = ackRecord;
      records[ack] = finRecord;
      swapped++;
    }
    expect(swapped).toBeGreaterThan(10);
    await inTempDir('closewait-reordered-', async (dir) => {
      writeFileSync(join(dir, 'reordered.pcap'), Buffer.concat([pcap.subarray(0, 24), ...records]));
      const report = await analyze([join(dir, 'reordered.pcap')]);
      expect(stuckSetFromReport(report)).toEqual(stuckSetFromReport(original));
      expect(report.findings.filter((f) => f.uncertain)).toEqual([]);
    });
  });
});

describe("the ACK of a FIN the capture lost", () => {
  it('is inferred from the FIN never being sent again, and the finding says so', async () => {
    await inTempDir('closewait-lost-ack-', async (dir) => {
      const original = await analyze([join(FIXTURES, 'incident.pcap')]);
      // The stuck sockets' kernels ACKed each FIN in a packet of its own: drop those, as a busy tcpdump drops packets.
      const lost = original.findings.map((f) => f.evidence.peerFinAck.frame).filter((frame, i) => frame !== original.findings[i]!.evidence.peerFin.frame);
      expect(lost.length).toBe(original.findings.length);
      const file = join(dir, 'lost-acks.pcap');
      writeFileSync(file, withoutFrames(readFileSync(join(FIXTURES, 'incident.pcap')), lost));
      const report = await analyze([file]);
      const key = (f: { client: { ip: string; port: number } }) => `${f.client.ip}:${f.client.port}`;
      expect(report.findings.map(key).sort()).toEqual(original.findings.map(key).sort());
      for (const finding of report.findings) {
        expect(finding.uncertain).toMatch(/the ACK of the peer's FIN is not in the capture: inferred because the FIN was never sent again/);
        expect(finding.evidence.peerFinAck).toEqual(finding.evidence.peerFin);
      }
    });
  });

  it('is not inferred in a capture of one direction (the stuck side never seen)', async () => {
    // The incident's client side alone: every FIN looks unacknowledged, and nothing may be called stuck.
    const pcap = readFileSync(join(FIXTURES, 'incident.pcap'));
    const parts: Buffer[] = [pcap.subarray(0, 24)];
    for (let offset = 24; offset + 16 <= pcap.length; ) {
      const length = 16 + pcap.readUInt32LE(offset + 8);
      const ipHeader = (pcap[offset + 16 + 14]! & 0x0f) * 4;
      if (pcap.readUInt16BE(offset + 16 + 14 + ipHeader + 2) === 20880) parts.push(pcap.subarray(offset, offset + length));
      offset += length;
    }
    await inTempDir('closewait-one-way-', async (dir) => {
      writeFileSync(join(dir, 'inbound.pcap'), Buffer.concat(parts));
      const report = await analyze([join(dir, 'inbound.pcap')]);
      expect(report.findings).toEqual([]);
    });
  });
});

describe("the stuck side's FIN the capture lost, after the peer's", () => {
  it('is inferred from the peer acknowledging it: a lossy capture of clean closes shows nothing stuck', async () => {
    // slow-close: the server closes 1-2 s after the client's FIN, in a packet of its own. Drop every FIN
    // the server sent, as a busy tcpdump drops packets: the client's last ACK still acknowledges each.
    const pcap = readFileSync(join(FIXTURES, 'slow-close.pcap'));
    const serverFins: number[] = [];
    for (let offset = 24, frame = 1; offset + 16 <= pcap.length; frame++) {
      const length = 16 + pcap.readUInt32LE(offset + 8);
      const tcp = offset + 16 + 14 + (pcap[offset + 16 + 14]! & 0x0f) * 4;
      if (pcap.readUInt16BE(tcp) === 20880 && pcap[tcp + 13]! & 0x01) serverFins.push(frame);
      offset += length;
    }
    expect(serverFins.length).toBeGreaterThanOrEqual(18);
    await inTempDir('closewait-lost-fins-', async (dir) => {
      writeFileSync(join(dir, 'lossy.pcap'), withoutFrames(pcap, serverFins));
      const report = await analyze([join(dir, 'lossy.pcap')]);
      expect(report.findings).toEqual([]);
      const lossless = await analyze([join(FIXTURES, 'slow-close.pcap')]);
      expect(report.summary.closed).toBe(lossless.summary.closed);
      // And the loss itself is said, once for the capture.
      expect(report.warnings).toEqual([expect.stringMatching(/^1[0-9] of 18 connections lack packets the other side acknowledged: the capture lost packets/)]);
      expect(lossless.warnings).toEqual([]);
    });
  });
});

describe('a FIN the capture lost', () => {
  it('is inferred from the ACK that acknowledged it, and the finding says so', async () => {
    await inTempDir('closewait-lost-fin-', async (dir) => {
      const original = await analyze([join(FIXTURES, 'incident.pcap')]);
      const victim = original.findings[0]!;
      const file = join(dir, 'lost-fin.pcap');
      writeFileSync(file, withoutFrames(readFileSync(join(FIXTURES, 'incident.pcap')), [victim.evidence.peerFin.frame]));
      const report = await analyze([file]);
      expect(report.findings).toHaveLength(original.findings.length);
      const inferred = report.findings.find((f) => f.client.port === victim.client.port)!;
      expect(inferred.uncertain).toMatch(/FIN is not in the capture: it is inferred from the ACK number/);
      // The ACK (one frame later in the original, now at the FIN's number) stands in for the FIN.
      expect(inferred.evidence.peerFin.frame).toBe(victim.evidence.peerFinAck.frame - 1);
      expect(inferred.peerFinTime).toBe(victim.peerFinAckTime);
      expect(inferred.family).toBe(victim.family);
      expect(report.findings.filter((f) => f.uncertain)).toHaveLength(1);
    });
  });
});
