// Hostile and broken captures, built by hand so each one tells exactly one lie, and the CLI's promises
// about them: one clear line, the right exit code, never a stack trace, never a hang.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyze, type AnalyzeOptions } from '../src/analyze/run.js';
import type { Report } from '../src/analyze/model.js';
import {
  enhancedPacket, ethernet, interfaceDescription, ipv4, ipv6, LINK, pcapFile, pcapHeader, pcapngBlock, pcapRecord, sectionHeader, simplePacket,
  tcp, TCP, tcpFrame, type PcapRecord,
} from '../src/fuzz/build.js';
import { synFloodStream } from '../src/fuzz/flood.js';

const CLI = resolve('dist/cli/main.js');
const FLOOD = resolve('dist/fuzz/flood-run.js');
const BIG = 'fixtures/probes-2000.pcap';

const scratchDirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'closewait-adversarial-'));
  scratchDirs.push(dir);
  return dir;
};
afterAll(() => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const analyzeBytes = (bytes: Buffer, options: AnalyzeOptions = {}): Promise<Report> =>
  analyze([{ path: 'hand-built', stream: Readable.from([bytes]) }], options);

/** A connection left in CLOSE_WAIT on the server (10.0.0.2:8080): SYN, SYN-ACK, ACK, client FIN, server ACK. */
function closeWaitFrames(port = 40000): Buffer[] {
  const c = (flags: number, seq: number, ack: number) => tcpFrame('10.0.0.1', '10.0.0.2', { srcPort: port, dstPort: 8080, flags, seq, ack });
  const s = (flags: number, seq: number, ack: number) => tcpFrame('10.0.0.2', '10.0.0.1', { srcPort: 8080, dstPort: port, flags, seq, ack });
  return [c(TCP.SYN, 100, 0), s(TCP.SYN | TCP.ACK, 500, 101), c(TCP.ACK, 101, 501), c(TCP.FIN | TCP.ACK, 101, 501), s(TCP.ACK, 501, 102)];
}

const records = (frames: Buffer[], start = 1_700_000_000): PcapRecord[] => frames.map((data, i) => ({ seconds: start + i, data }));

/** One line, no stack trace, names what was wrong. */
function expectOneLine(text: string): void {
  expect(text).not.toMatch(/\n/);
  expect(text).not.toMatch(/\bat .+:\d+:\d+/);
  expect(text.length).toBeGreaterThan(10);
}

describe('pcap record headers that lie', () => {
  it('caplen 0: an empty frame is counted and skipped as truncated, the rest is read', async () => {
    const file = pcapFile([{ seconds: 1, data: Buffer.alloc(0), origLen: 60 }, ...records(closeWaitFrames())]);
    const report = await analyzeBytes(file);
    expect(report.inputs[0]!.packets).toBe(6);
    expect(report.summary.skipped.truncated).toBe(1);
    expect(report.summary.closeWait).toBe(1);
    // Said, not silent: a packet that could not be read may belong to a connection in the report.
    expect(report.warnings).toEqual([expect.stringMatching(/^1 of 6 packets end before their TCP header does .*may be missing or misread/)]);
  });

  it('caplen 0xFFFFFFFF after good records: keeps them, stops there with the byte offset, allocates nothing', async () => {
    const good = pcapFile(records(closeWaitFrames()));
    const liar = pcapRecord({ seconds: 9, data: Buffer.alloc(40), caplen: 0xffffffff });
    const before = process.memoryUsage().arrayBuffers;
    const report = await analyzeBytes(Buffer.concat([good, liar]));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
    const input = report.inputs[0]!;
    expect(input.packets).toBe(5);
    expect(input.truncated).toBe(true);
    expect(input.error).toBeNull();
    expect(input.warnings).toEqual([
      `record 6 claims 4,294,967,295 captured bytes, more than any snapshot length (262,144) (at byte ${good.length.toLocaleString('en-US')}): stopped at byte ${good.length.toLocaleString('en-US')}; kept the 5 packets before it`,
    ]);
    expect(report.summary.closeWait).toBe(1);
  });

  it('caplen 0xFFFFFFFF in the first record: nothing usable, one line', async () => {
    const report = await analyzeBytes(Buffer.concat([pcapHeader(), pcapRecord({ seconds: 1, data: Buffer.alloc(8), caplen: 0xffffffff })]));
    expect(report.inputs[0]!.error).toBe('record 1 claims 4,294,967,295 captured bytes, more than any snapshot length (262,144) (at byte 24); no packets before it');
  });

  it('caplen larger than the snaplen (but within what libpcap allows): the bytes are there, so the frame is read', async () => {
    const frames = closeWaitFrames();
    const report = await analyzeBytes(pcapFile(records(frames), { snaplen: 40 }));
    expect(report.inputs[0]!.packets).toBe(5);
    expect(report.summary.tcpPackets).toBe(5);
    expect(report.warnings).toEqual([]);
  });

  it('caplen past the end of the file: the file ends inside that record, everything before it is kept', async () => {
    const good = pcapFile(records(closeWaitFrames()));
    const cut = pcapRecord({ seconds: 9, data: Buffer.alloc(10), caplen: 100 });
    const report = await analyzeBytes(Buffer.concat([good, cut]));
    expect(report.inputs[0]!.warnings).toEqual([`file ends inside record 6 (26 of 116 bytes): stopped at byte ${good.length.toLocaleString('en-US')}; kept the 5 packets before it`]);
  });

  it('timestamps going backwards: durations never go negative, the capture spans earliest to latest', async () => {
    const frames = closeWaitFrames();
    const times = [1000, 1001, 1002, 990, 995];
    const report = await analyzeBytes(pcapFile(frames.map((data, i) => ({ seconds: 1_700_000_000 + times[i]!, data }))));
    expect(report.summary.captureStartTime).toBe('2023-11-14T22:29:50.000000Z');
    expect(report.summary.captureEndTime).toBe('2023-11-14T22:30:02.000000Z');
    expect(report.summary.durationSeconds).toBe(12);
    expect(report.findings).toHaveLength(1);
    expect(report.findings[0]!.stuckSeconds).toBeGreaterThanOrEqual(0);
    expect(report.warnings).toEqual(['hand-built: time steps back 1 time (by up to 12 s, first at frame 4): ages and durations around it may be off']);
  });

  it('steps back shorter than a second (capture queues interleaving) are not worth a warning', async () => {
    const frames = closeWaitFrames();
    const fractions = [500_000, 400_000, 600_000, 100_000, 900_000];
    const report = await analyzeBytes(pcapFile(frames.map((data, i) => ({ seconds: 1_700_000_000, fraction: fractions[i], data }))));
    expect(report.warnings).toEqual([]);
  });

  it('a connection that closes at a time before the first packet is closed once, and released once', async () => {
    const c = (flags: number, seq: number, ack: number) => tcpFrame('10.0.0.1', '10.0.0.2', { srcPort: 40000, dstPort: 8080, flags, seq, ack });
    const s = (flags: number, seq: number, ack: number) => tcpFrame('10.0.0.2', '10.0.0.1', { srcPort: 8080, dstPort: 40000, flags, seq, ack });
    const other = tcpFrame('10.0.0.3', '10.0.0.2', { srcPort: 1, dstPort: 8080, flags: TCP.ACK, seq: 1, ack: 1 });
    const frames: PcapRecord[] = [
      { seconds: 1000, data: other },
      // The clock stepped back 100 s: this whole connection lies before the first packet.
      { seconds: 900, data: c(TCP.SYN, 100, 0) },
      { seconds: 900, data: s(TCP.SYN | TCP.ACK, 500, 101) },
      { seconds: 900, data: c(TCP.FIN | TCP.ACK, 101, 501) },
      { seconds: 900, data: s(TCP.FIN | TCP.ACK, 501, 102) },
      { seconds: 901, data: c(TCP.ACK, 102, 502) },
      { seconds: 902, data: c(TCP.ACK, 102, 502) },
      // Long after the linger: the closed connection is released while the capture goes on.
      { seconds: 1300, data: other },
    ];
    const report = await analyzeBytes(pcapFile(frames));
    expect(report.summary.connections).toBe(2);
    expect(report.summary.closed).toBe(1);
    expect(report.summary.openAtEnd).toBe(1);
    expect(report.summary.captureStartTime).toBe('1970-01-01T00:15:00.000000Z');
    expect(report.summary.durationSeconds).toBe(400);
    expect(report.warnings).toEqual(['hand-built: time steps back 1 time (by up to 100 s, first at frame 2): ages and durations around it may be off']);
  });
});

describe('time running backwards throughout', () => {
  it('100,000 connections, each closed 10 µs before the one before it, are read in linear time', async () => {
    const started = performance.now();
    const report = await analyze([{ path: '<backwards>', stream: synFloodStream({ tuples: 100_000, spacingMicros: -10, flags: TCP.RST }) }]);
    // Kept in closing order by walking back through every closed connection, this took ~25 s (quadratic).
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(report.summary.reset).toBe(100_000);
    expect(report.warnings).toEqual([]);
  });
});

describe('pcapng blocks that lie', () => {
  const shb = sectionHeader();
  const idb = interfaceDescription(LINK.ethernet);
  const packets = closeWaitFrames().map((data, i) => enhancedPacket({ timestamp: 1_700_000_000_000_000n + BigInt(i) * 1_000_000n, data }));
  const good = Buffer.concat([shb, idb, ...packets]);
  const at = good.length.toLocaleString('en-US');
  const packetBytes = packets.reduce((sum, p) => sum + p.length, 0);

  it.each([
    ['length 0', pcapngBlock(6, Buffer.alloc(40), { length: 0 }), `pcapng block of type 0x6 has an impossible length 0 (at byte ${(good.length + 4).toLocaleString('en-US')}): stopped at byte ${at}; kept the 5 packets before it`],
    ['length not a multiple of 4', pcapngBlock(6, Buffer.alloc(40), { length: 50 }), `pcapng block of type 0x6 has an impossible length 50 (at byte ${(good.length + 4).toLocaleString('en-US')}): stopped at byte ${at}; kept the 5 packets before it`],
    ['length larger than the file', pcapngBlock(6, Buffer.alloc(40), { length: 1000 }), `file ends inside a pcapng block (${52 + packetBytes} of 1,000 bytes): stopped at byte ${at}; kept the 5 packets before it`],
    ['trailer disagreeing with the header', pcapngBlock(6, Buffer.alloc(40), { trailer: 48 }), `pcapng block length 52 disagrees with its trailer 48 (at byte ${(good.length + 48).toLocaleString('en-US')}): stopped at byte ${at}; kept the 5 packets before it`],
  ])('a block with %s after good ones: those are kept, the warning says where it stopped', async (_name, bad, warning) => {
    const report = await analyzeBytes(Buffer.concat([good, bad, ...packets]));
    expect(report.inputs[0]!.packets).toBe(5);
    expect(report.inputs[0]!.truncated).toBe(true);
    expect(report.inputs[0]!.warnings).toEqual([warning]);
    expect(report.summary.closeWait).toBe(1);
  });

  it('a damaged first block: nothing usable, one line', async () => {
    const report = await analyzeBytes(Buffer.concat([sectionHeader({ length: 13 }), idb]));
    expectOneLine(report.inputs[0]!.error!);
    expect(report.inputs[0]!.error).toMatch(/impossible length 13/);
  });

  it('an EPB naming an interface the section never described: skipped and counted, the rest read', async () => {
    const stray = enhancedPacket({ interfaceId: 7, timestamp: 1n, data: closeWaitFrames()[0]! });
    const report = await analyzeBytes(Buffer.concat([shb, idb, stray, ...packets]));
    expect(report.inputs[0]!.packets).toBe(5);
    expect(report.inputs[0]!.warnings).toEqual(['1 packets named an interface the file never described; skipped']);
    expect(report.summary.closeWait).toBe(1);
  });

  it('a simple packet block before any interface: skipped and counted', async () => {
    const report = await analyzeBytes(Buffer.concat([shb, simplePacket(Buffer.alloc(60)), idb, ...packets]));
    expect(report.inputs[0]!.packets).toBe(5);
    expect(report.inputs[0]!.warnings).toEqual(['1 packets named an interface the file never described; skipped']);
  });

  it('a second section in the other byte order: its interfaces are its own, its packets read', async () => {
    const be = { littleEndian: false };
    const second = [sectionHeader(be), interfaceDescription(LINK.ethernet, be), ...closeWaitFrames(40001).map((data, i) => enhancedPacket({ ...be, timestamp: 1_700_000_010_000_000n + BigInt(i), data }))];
    const report = await analyzeBytes(Buffer.concat([good, ...second]));
    expect(report.inputs[0]!.packets).toBe(10);
    expect(report.warnings).toEqual([]);
    expect(report.summary.closeWait).toBe(2);
  });

  it('an EPB in the second section naming an interface only the first section had: skipped', async () => {
    const report = await analyzeBytes(Buffer.concat([good, sectionHeader(), enhancedPacket({ interfaceId: 0, timestamp: 1n, data: Buffer.alloc(60) })]));
    expect(report.inputs[0]!.packets).toBe(5);
    expect(report.inputs[0]!.warnings).toEqual(['1 packets named an interface the file never described; skipped']);
  });

  it('an interface option whose length runs past its block: stops with the offset', async () => {
    const body = Buffer.alloc(16);
    body.writeUInt16LE(1, 0); // link type
    body.writeUInt16LE(2, 8); // if_name ...
    body.writeUInt16LE(200, 10); // ... claiming 200 bytes
    const report = await analyzeBytes(Buffer.concat([shb, idb, packets[0]!, pcapngBlock(1, body)]));
    expect(report.inputs[0]!.packets).toBe(1);
    expect(report.inputs[0]!.warnings[0]).toMatch(/^pcapng interface option 2 of length 200 runs past its block \(at byte [\d,]+\): stopped at byte [\d,]+; kept the 1 packets before it$/);
  });
});

describe('IP and TCP headers that lie: counted and skipped, never thrown', () => {
  const frame = (ip: Buffer) => ethernet(0x0800, ip);
  const segment = (dataOffset?: number) => tcp({ srcPort: 1, dstPort: 2, flags: TCP.ACK, dataOffset });
  const skippedOf = async (frames: Buffer[]) => (await analyzeBytes(pcapFile(records(frames)))).summary;

  it('IPv4 IHL below 5 is a bad header; IHL past the captured bytes is truncated', async () => {
    const below = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', payload: segment() });
    below[0] = 0x43;
    const past = ipv4({ src: '10.0.0.1', dst: '10.0.0.2', payload: Buffer.alloc(0) });
    past[0] = 0x4f; // 60-byte header in a 20-byte packet
    const summary = await skippedOf([frame(below), frame(past)]);
    expect(summary.skipped.badHeader).toBe(1);
    expect(summary.skipped.truncated).toBe(1);
    expect(summary.tcpPackets).toBe(0);
  });

  it('an IPv4 total length shorter than its header is a bad header', async () => {
    const summary = await skippedOf([frame(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', payload: segment(), totalLength: 12 }))]);
    expect(summary.skipped.badHeader).toBe(1);
  });

  it('TCP data offset below 5, or past the segment, is a bad header', async () => {
    const summary = await skippedOf([
      frame(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', payload: segment(2) })),
      frame(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', payload: segment(0) })),
      frame(ipv4({ src: '10.0.0.1', dst: '10.0.0.2', payload: tcp({ srcPort: 1, dstPort: 2, flags: TCP.ACK }), totalLength: 30 })),
    ]);
    expect(summary.skipped.badHeader).toBe(3);
    expect(summary.connections).toBe(0);
  });

  it('IPv6 extension headers chained without end (each naming another hop-by-hop) stop at a bound', async () => {
    const loop = ipv6({ src: '2001:db8::1', dst: '2001:db8::2', extensions: Array.from({ length: 40 }, () => ({ type: 0, next: 0 })), payload: segment() });
    const summary = await skippedOf([ethernet(0x86dd, loop)]);
    expect(summary.skipped.badHeader).toBe(1);
  });

  it('an IPv6 extension header whose length runs off the end of the packet is skipped, not followed', async () => {
    const offEnd = ipv6({ src: '2001:db8::1', dst: '2001:db8::2', extensions: [{ type: 60, lengthField: 255, bytes: 8 }], payload: segment() });
    const cutShort = ipv6({ src: '2001:db8::1', dst: '2001:db8::2', extensions: [{ type: 43, lengthField: 0, bytes: 4 }], payload: Buffer.alloc(0) });
    const summary = await skippedOf([ethernet(0x86dd, offEnd), ethernet(0x86dd, cutShort)]);
    expect(summary.skipped.badHeader + summary.skipped.truncated).toBe(2);
    expect(summary.tcpPackets).toBe(0);
  });
});

describe('inputs that are not capture files at all', () => {
  it('a zero-length file: one line, no packets', async () => {
    const dir = scratch();
    const path = join(dir, 'empty.pcap');
    writeFileSync(path, '');
    const report = await analyze([path]);
    expect(report.inputs[0]!.error).toBe('empty file: no capture header');
  });

  it('a file header cut short is nothing usable (an error), not an empty report', async () => {
    const pcap = await analyzeBytes(pcapHeader().subarray(0, 10));
    expect(pcap.inputs[0]!.error).toBe('file ends inside the 24-byte pcap file header (10 bytes present)');
    const pcapng = await analyzeBytes(sectionHeader().subarray(0, 20));
    expect(pcapng.inputs[0]!.error).toBe('file ends inside the first pcapng section header (20 bytes present)');
  });

  it('a directory given to analyze() as a file: one line', async () => {
    const report = await analyze([scratch()]);
    expect(report.inputs[0]!.error).toBe('is a directory, not a capture file');
  });

  it('a FIFO (mkfifo) is read once, as it is written, and analysed', async () => {
    const dir = scratch();
    const fifo = join(dir, 'capture.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const capture = pcapFile(records(closeWaitFrames()));
    const writer = createWriteStream(fifo);
    writer.end(capture);
    const report = await withTimeout(analyze([fifo]), 10_000, 'reading the FIFO');
    expect(report.inputs[0]!.packets).toBe(5);
    expect(report.summary.closeWait).toBe(1);
  });
});

describe('a SYN flood of distinct 4-tuples: the analyzer must not repeat the bug it diagnoses', () => {
  it('evicts the idlest connections past --max-connections and says findings may be incomplete', async () => {
    const report = await analyze([{ path: '<flood>', stream: synFloodStream({ tuples: 100_000 }) }], { maxConnections: 5_000 });
    expect(report.summary.packets).toBe(100_000);
    expect(report.summary.connections).toBe(100_000);
    expect(report.summary.evicted).toBe(95_000);
    expect(report.summary.openAtEnd).toBe(5_000);
    expect(report.warnings).toContain('95,000 open connections were evicted because more than 5,000 were open at once: findings may be incomplete (raise --max-connections)');
  });

  it('1,000,000 tuples with --max-connections 50,000 fit in a 160 MB heap (they would need ~1.3 GB kept)', () => {
    requireBuilt();
    const run = spawnSync(process.execPath, ['--max-old-space-size=160', FLOOD, '--tuples', '1000000', '--max-connections', '50000'], { encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as { packets: number; evicted: number; peakRssMb: number; warning: string };
    expect(result.packets).toBe(1_000_000);
    expect(result.evicted).toBe(950_000);
    expect(result.warning).toMatch(/^950,000 open connections were evicted .* findings may be incomplete/);
    expect(result.peakRssMb).toBeLessThan(400);
  }, 150_000);

  it('1,000,000 connections closed at birth with time running backwards (no sweep ever due) fit in the same heap', () => {
    requireBuilt();
    const run = spawnSync(process.execPath, ['--max-old-space-size=160', FLOOD, '--tuples', '1000000', '--max-connections', '50000', '--rst', '--backwards'], { encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as { packets: number; connections: number; evicted: number };
    // Closed connections are released, not evicted: nothing open was lost.
    expect(result).toMatchObject({ packets: 1_000_000, connections: 1_000_000, evicted: 0 });
  }, 150_000);
});

describe('the CLI as a person meets it (spawned)', () => {
  beforeAll(requireBuilt);
  const run = (args: string[], options: { stdout?: number } = {}) =>
    spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'] });

  it('exit 0: a report', () => {
    const result = run(['analyze', 'fixtures/incident.pcap']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/stuck in CLOSE_WAIT/);
  });

  it('--separate in worker threads (--jobs 2) gives the archive one thread gives', () => {
    const inputs = ['fixtures/incident.pcap', 'fixtures/slow-close.pcap', 'fixtures/client-stuck.pcap', 'fixtures/variant-gz.pcap.gz', 'fixtures/two-services.pcap'];
    const archive = (jobs: string) => {
      const result = run(['analyze', '--separate', '--jobs', jobs, '--format', 'json', ...inputs]);
      expect(result.status).toBe(0);
      return { ...JSON.parse(result.stdout), command: null };
    };
    const inThread = archive('1');
    expect(inThread.reports).toHaveLength(inputs.length);
    expect(archive('2')).toEqual(inThread);
  });

  it('--separate in worker threads reports each input\'s progress to the end, and each input as done', async () => {
    const inputs = ['fixtures/incident.pcap', 'fixtures/slow-close.pcap', 'fixtures/variant-gz.pcap.gz', 'fixtures/two-services.pcap'];
    // The built module: workers run only from compiled code.
    const { analyzeSeparately } = (await import(pathToFileURL(resolve('dist/analyze/separate.js')).href)) as typeof import('../src/analyze/separate.js');
    const bytes = new Map<number, number>();
    const packets = new Map<number, number>();
    const done: number[] = [];
    const archive = await analyzeSeparately(inputs, {
      jobs: 2,
      onProgress: (p) => {
        expect(p.path).toBe(inputs[p.input]);
        bytes.set(p.input, p.bytesRead);
        packets.set(p.input, p.packets);
      },
      onInputDone: (_done, _total, _path, input) => done.push(input),
    });
    expect(inputs.map((_, i) => bytes.get(i))).toEqual(inputs.map((path) => statSync(path).size));
    expect(inputs.map((_, i) => packets.get(i))).toEqual(archive.reports.map((r) => r.summary.packets));
    expect(done.sort()).toEqual([0, 1, 2, 3]);
  });

  it('exit 1: findings with --fail-on-findings', () => {
    expect(run(['analyze', '--fail-on-findings', 'fixtures/incident.pcap']).status).toBe(1);
  });

  it('exit 2: a usage error, or no readable input, each in one line', () => {
    const usage = run(['analyze', '--max-connections', 'lots', 'fixtures/incident.pcap']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/'lots' is not a positive whole number/);
    const dir = scratch();
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, 'GET / HTTP/1.1\r\n\r\n');
    const unreadable = run(['analyze', junk, join(dir, 'missing.pcap')]);
    expect(unreadable.status).toBe(2);
    expect(unreadable.stderr.trim().split('\n')).toEqual([
      `closewait: ${join(dir, 'missing.pcap')}: no such file or directory`,
      `closewait: ${junk}: not a pcap or pcapng capture: starts with bytes 47 45 54 20 (at byte 0)`,
    ]);
    expect(unreadable.stdout).toBe('');
  });

  it('--max-connections: past the cap the idlest are evicted, counted in the report and warned about on stderr', () => {
    const result = run(['analyze', '--format', 'json', '--max-connections', '10', 'fixtures/incident.pcap']);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.summary.evicted).toBeGreaterThan(0);
    expect(result.stderr).toContain(`closewait: warning: ${report.summary.evicted.toLocaleString('en-US')} open connections were evicted because more than 10 were open at once: findings may be incomplete (raise --max-connections)`);
  });

  it('some inputs readable, some not: the unreadable are named on stderr, the report covers the rest, exit 0', () => {
    const dir = scratch();
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, Buffer.alloc(100, 0xee));
    const result = run(['analyze', '--format', 'json', junk, 'fixtures/incident.pcap']);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`^closewait: ${junk}: not a pcap or pcapng capture: starts with bytes ee ee ee ee \\(at byte 0\\)\\n`));
    const report = JSON.parse(result.stdout) as Report;
    expect(report.inputs.map((i) => [i.path, i.error === null])).toEqual([['fixtures/incident.pcap', true], [junk, false]]);
    expect(report.summary.closeWait).toBeGreaterThan(0);
  });

  it('a capture cut short: one warning naming the file, the byte offset, what was wrong and what was kept', () => {
    const dir = scratch();
    const frames = closeWaitFrames();
    const whole = pcapFile(records(frames));
    const path = join(dir, 'killed.pcap');
    writeFileSync(path, whole.subarray(0, whole.length - 20));
    const result = run(['analyze', '--format', 'json', path]);
    expect(result.status).toBe(0);
    const lastRecord = whole.length - 16 - frames[4]!.length;
    expect(result.stderr).toBe(`closewait: warning: ${path}: file ends inside record 5 (50 of 70 bytes): stopped at byte ${lastRecord}; kept the 4 packets before it\n`);
  });

  it('no stack trace for bad input, even with --debug', () => {
    const dir = scratch();
    const path = join(dir, 'garbage.pcapng');
    writeFileSync(path, Buffer.concat([sectionHeader(), Buffer.alloc(64, 0xff)]));
    for (const args of [['analyze', path], ['analyze', '--debug', path]]) {
      const result = run(args);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      for (const line of result.stderr.trim().split('\n')) expectOneLine(line);
    }
  });

  it('`closewait analyze big.pcap | head` ends quietly: exit 0, nothing on stderr', () => {
    const result = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" analyze --format json --all ${BIG} 2>"$ERR" | head -c 100 >/dev/null; echo "\${PIPESTATUS[0]}"`], {
      encoding: 'utf8', timeout: 60_000, env: { ...process.env, ERR: join(scratch(), 'stderr.txt') },
    });
    expect(result.stdout.trim()).toBe('0');
  });

  it('a reader that closes early (spawned, stdout destroyed after the first chunk): exit 0, stderr empty', async () => {
    const child = spawn(process.execPath, [CLI, 'analyze', '--format', 'json', BIG], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await withTimeout(new Promise<number | null>((done) => child.on('close', done)), 30_000, 'the CLI after its reader left');
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('--output in a directory that does not exist: one line, exit 2, no partial file', () => {
    const dir = scratch();
    const target = join(dir, 'missing', 'report.json');
    const result = run(['analyze', '--output', target, 'fixtures/incident.pcap']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(`closewait: cannot write the report to ${target}: no such directory\n`);
    expect(existsSync(join(dir, 'missing'))).toBe(false);
  });

  it('--output under a path that is a file: one line, exit 2, nothing left behind', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'plain'), 'x');
    const result = run(['analyze', '--output', join(dir, 'plain', 'report.json'), 'fixtures/incident.pcap']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(`closewait: cannot write the report to ${join(dir, 'plain', 'report.json')}: a part of the path is not a directory\n`);
    expect(readdirSync(dir)).toEqual(['plain']);
  });

  it('--output naming a directory: one line, exit 2, no temporary file left in it', () => {
    const dir = scratch();
    mkdirSync(join(dir, 'reports'));
    const result = run(['analyze', '--output', join(dir, 'reports'), 'fixtures/incident.pcap']);
    expect(result.status).toBe(2);
    expect(result.stderr).toBe(`closewait: cannot write the report to ${join(dir, 'reports')}: is a directory\n`);
    expect(readdirSync(join(dir, 'reports'))).toEqual([]);
  });

  it('stdout on a full disk (/dev/full): one line, exit 2 (a report that was not written is no success)', () => {
    if (!existsSync('/dev/full')) return;
    const full = openSync('/dev/full', 'w');
    try {
      const result = run(['analyze', 'fixtures/incident.pcap'], { stdout: full });
      expect(result.stderr).toBe('closewait: cannot write the report to standard output: no space left on device\n');
      expect(result.status).toBe(2);
    } finally {
      closeSync(full);
    }
  });

  it('--output /dev/stdout into a pipe writes through the link instead of renaming a file over it', () => {
    const result = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" analyze --format json --output /dev/stdout fixtures/incident.pcap | cat; echo "exit \${PIPESTATUS[0]}" >&2`], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('exit 0\n');
    expect((JSON.parse(result.stdout) as Report).schemaVersion).toBe(1);
  });

  it('a FIFO on the command line: read as it is written, exit 0', async () => {
    const dir = scratch();
    const fifo = join(dir, 'live.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const child = spawn(process.execPath, [CLI, 'analyze', '--format', 'json', fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const writer = createWriteStream(fifo);
    const frames = closeWaitFrames();
    // Written in two pieces with a pause, as a live tcpdump would.
    writer.write(pcapFile(records(frames.slice(0, 3))));
    await new Promise((done) => setTimeout(done, 200));
    writer.end(Buffer.concat(records(frames.slice(3), 1_700_000_003).map((r) => pcapRecord(r))));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const code = await new Promise<number | null>((done) => child.on('close', done));
    clearTimeout(timer);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report.inputs[0]!.packets).toBe(5);
    expect(report.summary.closeWait).toBe(1);
  });
});

function requireBuilt(): void {
  if (!existsSync(CLI) || !existsSync(FLOOD)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}
