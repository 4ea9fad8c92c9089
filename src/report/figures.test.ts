import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyze } from '../analyze/run.js';
import type { Report } from '../analyze/model.js';
import { nothingAnalysed, oneDirectionOnly, title, verdict } from './figures.js';
import { renderText } from './text.js';
import { inputErrorLines } from './format.js';

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

/** A classic little-endian pcap with the records `cut` picks cut to `snaplen` bytes, as tcpdump -s does. */
function withSnaplen(pcap: Buffer, snaplen: number, cut: (frame: number) => boolean): Buffer {
  const parts: Buffer[] = [Buffer.from(pcap.subarray(0, 24))];
  parts[0]!.writeUInt32LE(snaplen, 16);
  let offset = 24;
  for (let frame = 1; offset + 16 <= pcap.length; frame++) {
    const caplen = pcap.readUInt32LE(offset + 8);
    const kept = cut(frame) ? Math.min(caplen, snaplen) : caplen;
    const header = Buffer.from(pcap.subarray(offset, offset + 16));
    header.writeUInt32LE(kept, 8);
    parts.push(header, pcap.subarray(offset + 16, offset + 16 + kept));
    offset += 16 + caplen;
  }
  return Buffer.concat(parts);
}

describe('packets cut short by the snapshot length', () => {
  const analyzeCut = async (cut: (frame: number) => boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'closewait-snaplen-'));
    try {
      const file = join(dir, 'cut.pcap');
      writeFileSync(file, withSnaplen(readFileSync(join(FIXTURES, 'incident.pcap')), 40, cut));
      return await analyze([file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('all of them (tcpdump -s 40): no "no connection stuck", but nothing analysed, and why', async () => {
    const report = await analyzeCut(() => true);
    expect(report.summary.tcpPackets).toBe(0);
    expect(report.warnings).toEqual([
      `${report.summary.packets} of ${report.summary.packets} packets end before their TCP header does (cut short in the capture: a snapshot length below ~96 bytes?): nothing in this capture could be analysed; capture with tcpdump -s 96 or more (the default keeps whole packets)`,
    ]);
    expect(nothingAnalysed(report)).toBe(`none of the ${report.summary.packets} packets could be read as TCP: ${report.summary.packets} cut short before the end of their TCP header (snapshot length)`);
    expect(title(report)).toBe('Nothing analysed: no packet could be read as TCP');
    expect(verdict(report)).toMatch(/^Nothing could be analysed: none of the/);
    expect(renderText(report, { color: false, top: 20 })).toMatch(/^\? nothing analysed: none of the/);
  });

  it('some of them: the report stands, with a warning that says how many', async () => {
    const report = await analyzeCut((frame) => frame % 10 === 0);
    expect(report.summary.tcpPackets).toBeGreaterThan(0);
    expect(report.warnings[0]).toMatch(/^85 of 854 packets end before their TCP header does .*: the connections they belong to may be missing or misread; /);
    expect(nothingAnalysed(report)).toBeNull();
    expect(verdict(report)).not.toMatch(/Nothing/);
  });

  it('a capture of other traffic only is not "nothing analysed": it had no TCP', async () => {
    // The incident's packets relabelled as UDP (IP protocol 17): read, and not TCP.
    const pcap = Buffer.from(readFileSync(join(FIXTURES, 'incident.pcap')));
    for (let offset = 24; offset + 16 <= pcap.length; offset += 16 + pcap.readUInt32LE(offset + 8)) pcap[offset + 16 + 14 + 9] = 17;
    const dir = mkdtempSync(join(tmpdir(), 'closewait-udp-'));
    try {
      writeFileSync(join(dir, 'udp.pcap'), pcap);
      const report = await analyze([join(dir, 'udp.pcap')]);
      expect(report.summary.skipped.notTcp).toBe(report.summary.packets);
      expect(nothingAnalysed(report)).toBeNull();
      expect(report.warnings).toEqual([]);
      // Not an all-clear either: there was nothing that could have been stuck.
      expect(title(report)).toBe('No TCP traffic in the capture');
      expect(renderText(report, { color: false, top: 20 })).toMatch(/^\? no TCP traffic: none of the 854 packets is TCP \(tunnelled traffic/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A classic Ethernet/IPv4 pcap with only the records `keep` picks by TCP destination port. */
function onlyToPort(pcap: Buffer, port: number): Buffer {
  const parts: Buffer[] = [pcap.subarray(0, 24)];
  let offset = 24;
  while (offset + 16 <= pcap.length) {
    const caplen = pcap.readUInt32LE(offset + 8);
    const frame = pcap.subarray(offset + 16, offset + 16 + caplen);
    const tcp = 14 + (frame[14]! & 0x0f) * 4;
    if (frame.readUInt16BE(tcp + 2) === port) parts.push(pcap.subarray(offset, offset + 16 + caplen));
    offset += 16 + caplen;
  }
  return Buffer.concat(parts);
}

describe('a capture of one direction only', () => {
  it("says it cannot answer, rather than 'no connection stuck' (tcpdump 'dst port 20880' of the incident)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'closewait-oneway-'));
    try {
      const file = join(dir, 'inbound.pcap');
      writeFileSync(file, onlyToPort(readFileSync(join(FIXTURES, 'incident.pcap')), 20880));
      const report = await analyze([file]);
      expect(report.summary.closeWait).toBe(0);
      expect(report.summary.oneWay).toBe(report.summary.connections - report.summary.unanswered);
      expect(report.warnings.join('\n')).toMatch(/connections were seen from one side only \(\d+ both ways\): the capture lacks a direction of the traffic \(a filter such as 'dst port 20880'/);
      expect(oneDirectionOnly(report)).toMatch(/were seen from one side only: the capture holds one direction of the traffic/);
      expect(title(report)).toBe('No answer: the capture holds one direction of the traffic');
      expect(renderText(report, { color: false, top: 20 })).toMatch(/^\? no answer: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('both directions: nothing one-way in the real fixtures that hold both', async () => {
    for (const name of ['incident', 'two-services', 'client-stuck', 'slow-close', 'port-reuse']) {
      const report = await analyze([join(FIXTURES, `${name}.pcap`)]);
      expect(report.summary.oneWay, name).toBe(0);
      expect(oneDirectionOnly(report), name).toBeNull();
    }
  });
});

describe('an empty capture', () => {
  it("is 'no TCP traffic: no packets', not an all-clear", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'closewait-empty-'));
    try {
      // tcpdump's file header and nothing else: what a filter that matched nothing leaves.
      writeFileSync(join(dir, 'empty.pcap'), readFileSync(join(FIXTURES, 'incident.pcap')).subarray(0, 24));
      const report = await analyze([join(dir, 'empty.pcap')]);
      expect(report.summary.packets).toBe(0);
      expect(title(report)).toBe('No packets in the capture');
      expect(renderText(report, { color: false, top: 20 })).toMatch(/^\? no TCP traffic: the capture holds no packets/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a --port that matches nothing', () => {
  it("is 'nothing analysed', with the ports the capture does hold", async () => {
    const report = await analyze([join(FIXTURES, 'two-services.pcap')], { ports: [8081] });
    expect(report.summary.connections).toBe(0);
    expect(report.warnings[0]).toMatch(/^none of the [\d,]+ TCP packets was on --port 8081; the capture's busiest ports: (20880|8080) \([\d,]+ packets\), (8080|20880) \([\d,]+ packets\)$/);
    expect(nothingAnalysed(report)).toMatch(/^none of the [\d,]+ TCP packets was on --port 8081/);
    expect(title(report)).toBe('Nothing analysed: no packet on the given --port');
    // A --port that matches: the usual report.
    expect(nothingAnalysed(await analyze([join(FIXTURES, 'two-services.pcap')], { ports: [8080] }))).toBeNull();
  });
});

describe('unreadable inputs in the warnings', () => {
  it('each is named, but an error many share is said once for all but the first two', () => {
    const inputs = [
      ...['a.xz', 'b.xz', 'c.xz', 'd.xz'].map((path) => ({ path, error: 'xz missing' })),
      { path: 'e.pcap', error: 'no such file' },
      { path: 'f.pcap', error: null },
      ...['g.log.gz', 'h.log.gz', 'i.log.gz'].map((path) => ({ path, error: 'not a capture' })),
    ];
    expect(inputErrorLines(inputs)).toEqual([
      'a.xz: xz missing',
      'b.xz: xz missing',
      'and 2 more inputs: xz missing',
      'e.pcap: no such file',
      'g.log.gz: not a capture',
      'h.log.gz: not a capture',
      'i.log.gz: not a capture',
    ]);
  });
});
