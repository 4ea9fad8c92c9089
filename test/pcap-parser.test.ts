import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCapture } from '../src/capture/reader.js';
import { corpusAvailable, corpusPath, loadManifest } from './helpers/corpus.js';

/**
 * Cross-check of our pcap reader against an independent one: pcap-parser 0.2.1 (a devDependency
 * only; it reads classic microsecond pcap in either byte order and nothing else). For every such
 * file in the public corpus and in fixtures/, both readers must give the same records: count,
 * timestamps, caplen, origlen and bytes (compared as one digest per record).
 */
const require = createRequire(import.meta.url);
const pcapParser = require('pcap-parser') as { parse(input: NodeJS.ReadableStream): NodeJS.EventEmitter };

const MICROS_MAGIC_LE = 'd4c3b2a1';
const MICROS_MAGIC_BE = 'a1b2c3d4';

interface Reading {
  /** One line per record: "seconds.micros caplen origlen md5(bytes)". */
  records: string[];
  /** pcap-parser: a record header arrived but its data never did (it says nothing about it). */
  headerWithoutData: boolean;
  error: string | null;
}

const digest = (bytes: Buffer) => createHash('md5').update(bytes).digest('base64');

/** A fraction of a second >= 1 s (fuzzed files) is carried into the seconds, as our reader does. */
const stamp = (seconds: number, micros: number) => `${seconds + Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;

function readWithPcapParser(path: string): Promise<Reading> {
  return new Promise((resolve) => {
    const reading: Reading = { records: [], headerWithoutData: false, error: null };
    let header: { timestampSeconds: number; timestampMicroseconds: number; capturedLength: number; originalLength: number } | null = null;
    const parser = pcapParser.parse(createReadStream(path));
    parser.on('packetHeader', (h: typeof header) => {
      header = h;
    });
    parser.on('packetData', (data: Buffer) => {
      const h = header!;
      reading.records.push(`${stamp(h.timestampSeconds, h.timestampMicroseconds)} ${h.capturedLength} ${h.originalLength} ${digest(data)}`);
      header = null;
    });
    parser.on('error', (error: Error) => {
      reading.error = error.message;
    });
    parser.on('end', () => {
      reading.headerWithoutData = header !== null;
      resolve(reading);
    });
  });
}

async function readWithOurs(path: string) {
  const records: string[] = [];
  const summary = await readCapture({ path }, (r) => {
    if (r.nanos % 1000 !== 0) throw new Error(`frame ${r.frame}: a microsecond file gave ${r.nanos} ns`);
    const micros = r.nanos / 1000;
    records.push(`${stamp(r.seconds, micros)} ${r.caplen} ${r.origLen} ${digest(r.data.subarray(r.offset, r.offset + r.caplen))}`);
  });
  return { records, summary };
}

function firstDifference(ours: string[], theirs: string[]): string | null {
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    if (ours[i] !== theirs[i]) return `record ${i + 1}: ours ${ours[i] ?? '(none)'}, pcap-parser ${theirs[i] ?? '(none)'}`;
  }
  return null;
}

/**
 * Files whose header we refuse and pcap-parser reads (its version check only fails when the major
 * AND the minor differ from 2.4, and it never looks at the link-type field). We follow libpcap.
 */
const HEADER_REJECTED_BY_US: Record<string, string> = {
  'libpcap/pcap-invalid-version-1.pcap': 'pcap version 1.4: libpcap rejects it too (only 2.x is pcap)',
  'libpcap/pcap-invalid-version-2.pcap': 'pcap version 2.5: libpcap accepts only 2.0-2.4',
  'libpcap/linktype-reserved-field-not-zero.pcap': 'reserved bits 16-25 of the link-type field are set: libpcap rejects the file',
};

const magicOf = (path: string) => readFileSync(path).subarray(0, 4).toString('hex');

const corpusFiles = corpusAvailable
  ? loadManifest()
      .filter((row) => /^pcap (LE|BE) us$/.test(row.format))
      .map((row) => ({ name: row.path, path: corpusPath(row.path) }))
  : [];
const fixtureFiles = existsSync('fixtures')
  ? readdirSync('fixtures')
      .filter((name) => name.endsWith('.pcap'))
      .map((name) => ({ name: `fixtures/${name}`, path: join('fixtures', name) }))
      .filter((file) => [MICROS_MAGIC_LE, MICROS_MAGIC_BE].includes(magicOf(file.path)))
  : [];
const files = [...corpusFiles, ...fixtureFiles];

describe.skipIf(files.length === 0)('our pcap reader agrees with pcap-parser', () => {
  it('covers the classic microsecond pcap files in both byte orders', () => {
    expect(corpusFiles.length).toBeGreaterThan(600);
    const magics = new Set(files.map((file) => magicOf(file.path)));
    expect([...magics].sort()).toEqual([MICROS_MAGIC_BE, MICROS_MAGIC_LE]);
  });

  it.each(files.map((file) => [file.name, file.path] as const))('%s', async (name, path) => {
    const [ours, theirs] = await Promise.all([readWithOurs(path), readWithPcapParser(path)]);
    const rejected = HEADER_REJECTED_BY_US[name];
    if (rejected) {
      expect(ours.summary.error, rejected).toMatch(/\(at byte \d+\)$/);
      expect(ours.records).toEqual([]);
      expect(theirs.error).toBeNull();
      return;
    }
    expect(theirs.error).toBeNull();
    expect(ours.summary.error).toBeNull();
    expect(firstDifference(ours.records, theirs.records)).toBeNull();
    // Where the file ends inside a record, or a record claims more bytes than any snapshot length,
    // pcap-parser silently drops that record (it waits for data that never comes); we report it.
    if (theirs.headerWithoutData) {
      expect(ours.summary.truncated).toBe(true);
      expect(ours.summary.warnings.join('\n')).toMatch(/stopped at byte [\d,]+; kept the [\d,]+ packets before it/);
    }
    if (ours.summary.truncated) expect(ours.summary.warnings).toHaveLength(1);
  });

  it('pcap-parser really does drop a cut-short last record without a word, where we warn', async () => {
    const cut = files.find((file) => file.name === 'dpkt/truncated_dns_2.pcap');
    if (!cut) return;
    const [ours, theirs] = await Promise.all([readWithOurs(cut.path), readWithPcapParser(cut.path)]);
    expect(theirs.error).toBeNull();
    expect(ours.records).toEqual(theirs.records);
    expect(ours.summary.truncated).toBe(true);
    expect(ours.summary.warnings[0]).toMatch(/^file ends inside the header of record 2 \(7 of 16 bytes\): stopped at byte 240/);
  });
});
