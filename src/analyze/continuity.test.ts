import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { analyze } from './run.js';
import { missingRotations } from './continuity.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures');

describe('missingRotations', () => {
  it('takes gzip\'d members of a tcpdump -C set for the files they were', () => {
    expect(missingRotations(['a/dump', 'a/dump1', 'a/dump2.gz', 'a/dump3', 'a/dump4.GZ', 'a/dump10.gz', 'a/dump5', 'a/dump6', 'a/dump7', 'a/dump8.gz', 'a/dump9'])).toEqual([]);
    expect(missingRotations(['x/cap.pcap.gz', 'x/cap.pcap1.gz', 'x/cap.pcap2'])).toEqual([]);
  });

  it('takes members compressed with xz, zstd, bzip2 or lz4 for the files they were', () => {
    expect(missingRotations(['dump', 'dump1.xz', 'dump2.zst', 'dump3.bz2', 'dump4.lz4', 'dump5.gz'])).toEqual([]);
    expect(missingRotations(['dump', 'dump1.xz', 'dump3.zst'])).toEqual(['rotated set dump* lacks dump2']);
  });

  it('names a missing member whatever the others are compressed with', () => {
    expect(missingRotations(['dump', 'dump1.gz', 'dump3.gz', 'dump4'])).toEqual(['rotated set dump* lacks dump2']);
    expect(missingRotations(['cap.pcap1.gz', 'cap.pcap3'])).toEqual(['rotated set cap.pcap* lacks cap.pcap2']);
    expect(missingRotations(['cap.pcap1', 'cap.pcap2.gz'])).toEqual([]);
  });

  it('the first file, without a number, counts as number 0', () => {
    expect(missingRotations(['dump.gz', 'dump2'])).toEqual(['rotated set dump* lacks dump1']);
    expect(missingRotations(['dump1', 'dump2', 'dump3'])).toEqual([]);
  });

  it('leaves time-stamped (-G) names and unrelated files alone', () => {
    expect(missingRotations(['trace-20261126120000.pcap', 'trace-20261126130000.pcap'])).toEqual([]);
    expect(missingRotations(['dump-1700000000', 'dump-1700003600.gz'])).toEqual([]);
    expect(missingRotations(['a.pcap', 'b.pcap.gz', 'c.pcapng'])).toEqual([]);
  });

  it('lists at most ten missing numbers', () => {
    expect(missingRotations(['d', 'd40'])[0]).toBe('rotated set d* lacks d1, d2, d3, d4, d5, d6, d7, d8, d9, d10');
  });
});

describe('inputs that overlap in time', () => {
  it('are named, with what they are likely to be and what to do', async () => {
    // The same capture twice: as from two capture points of one exchange.
    const incident = join(FIXTURES, 'incident.pcap');
    const report = await analyze([incident, incident]);
    expect(report.warnings.join('\n')).toMatch(/starts [\d.]+ s before .*incident\.pcap ends: the inputs overlap in time, so they are not consecutive pieces of one capture .*mergecap .*--separate/);
    expect(report.summary.closeWait).toBe(26);
  });

  it('each direction in a file of its own (asymmetric routing, two interfaces): the same findings as the capture of both', async () => {
    const plain = await analyze([join(FIXTURES, 'incident.pcap')]);
    const [toServer, fromServer] = splitByDirection(join(FIXTURES, 'incident.pcap'), 20880);
    const report = await analyze([toServer, fromServer]);
    rmSync(dirname(toServer), { recursive: true, force: true });
    expect(report.summary.closeWait).toBe(plain.summary.closeWait);
    expect(report.summary.connections).toBe(plain.summary.connections);
    expect(report.summary.oneWay).toBe(0);
  });
});

/**
 * A little-endian, Ethernet/IPv4 pcap cut in two: the packets to `port`, and the rest, each a pcap
 * of its own in a new directory (as tcpdump 'dst port N' and 'src port N' would write them).
 */
function splitByDirection(path: string, port: number): [string, string] {
  const bytes = readFileSync(path);
  const parts: Buffer[][] = [[bytes.subarray(0, 24)], [bytes.subarray(0, 24)]];
  for (let at = 24; at + 16 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at + 8);
    const ip = at + 16 + 14;
    const dstPort = bytes.readUInt16BE(ip + (bytes[ip]! & 0x0f) * 4 + 2);
    parts[dstPort === port ? 0 : 1]!.push(bytes.subarray(at, at + 16 + length));
    at += 16 + length;
  }
  const dir = mkdtempSync(join(tmpdir(), 'closewait-directions-'));
  return parts.map((records, i) => {
    const out = join(dir, i === 0 ? 'to-server.pcap' : 'from-server.pcap');
    writeFileSync(out, Buffer.concat(records));
    return out;
  }) as [string, string];
}
