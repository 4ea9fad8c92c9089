import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CaptureFormatError } from './errors.js';
import { MAX_PCAP_CAPLEN, PcapParser } from './pcap.js';
import { readCapture } from './reader.js';
import type { CaptureRecord } from './record.js';

interface PcapOptions {
  littleEndian?: boolean;
  nanos?: boolean;
  modified?: boolean;
  linkType?: number;
  major?: number;
  minor?: number;
}

interface RecordSpec {
  seconds: number;
  fraction: number;
  data: Buffer;
  origLen?: number;
  /** overrides the caplen field */
  caplen?: number;
}

/** Builds a pcap file in memory, field by field, in the requested byte order. */
function pcapFile(records: RecordSpec[], options: PcapOptions = {}): Buffer {
  const le = options.littleEndian ?? true;
  const u32 = (b: Buffer, at: number, v: number) => (le ? b.writeUInt32LE(v >>> 0, at) : b.writeUInt32BE(v >>> 0, at));
  const u16 = (b: Buffer, at: number, v: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const header = Buffer.alloc(24);
  const magic = options.modified ? 0xa1b2cd34 : options.nanos ? 0xa1b23c4d : 0xa1b2c3d4;
  u32(header, 0, magic);
  u16(header, 4, options.major ?? 2);
  u16(header, 6, options.minor ?? 4);
  u32(header, 16, 262144);
  u32(header, 20, options.linkType ?? 1);
  const recordHeaderBytes = options.modified ? 24 : 16;
  const parts: Buffer[] = [header];
  for (const r of records) {
    const h = Buffer.alloc(recordHeaderBytes, 0x5a); // the modified format's extra fields: filler
    u32(h, 0, r.seconds);
    u32(h, 4, r.fraction);
    u32(h, 8, r.caplen ?? r.data.length);
    u32(h, 12, r.origLen ?? r.data.length);
    parts.push(h, r.data);
  }
  return Buffer.concat(parts);
}

const frame = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff));

const RECORDS: RecordSpec[] = [
  { seconds: 1_700_000_000, fraction: 123_456, data: frame(60, 1), origLen: 60 },
  { seconds: 1_700_000_001, fraction: 999_999, data: frame(3, 2), origLen: 1514 },
  { seconds: 1_700_000_002, fraction: 0, data: frame(0, 3), origLen: 0 },
  { seconds: 0xfffffffe, fraction: 1, data: frame(200, 4), origLen: 200 },
];

interface Seen {
  frame: number;
  seconds: number;
  nanos: number;
  caplen: number;
  origLen: number;
  linkType: number;
  byteOffset: number;
  bytes: string;
}

function snapshot(r: CaptureRecord): Seen {
  return {
    frame: r.frame, seconds: r.seconds, nanos: r.nanos, caplen: r.caplen, origLen: r.origLen, linkType: r.linkType, byteOffset: r.byteOffset,
    bytes: r.data.subarray(r.offset, r.offset + r.caplen).toString('hex'),
  };
}

function parse(chunks: Buffer[]): { seen: Seen[]; leftover: string | null; parser: PcapParser } {
  const seen: Seen[] = [];
  const parser = new PcapParser((r) => seen.push(snapshot(r)));
  for (const chunk of chunks) parser.push(chunk);
  return { seen, leftover: parser.end(), parser };
}

function expectedRecords(specs: RecordSpec[], nanosPerUnit: number, headerBytes = 16, linkType = 1): Seen[] {
  let offset = 24;
  return specs.map((spec, i) => {
    const seen = {
      frame: i + 1, seconds: spec.seconds, nanos: spec.fraction * nanosPerUnit, caplen: spec.data.length, origLen: spec.origLen ?? spec.data.length,
      linkType, byteOffset: offset, bytes: spec.data.toString('hex'),
    };
    offset += headerBytes + spec.data.length;
    return seen;
  });
}

function catchError(work: () => unknown): CaptureFormatError {
  try {
    work();
  } catch (error) {
    if (error instanceof CaptureFormatError) return error;
    throw error;
  }
  throw new Error('expected a CaptureFormatError');
}

describe('pcap parser', () => {
  it('reads microsecond and nanosecond files in both byte orders', () => {
    for (const littleEndian of [true, false]) {
      const micro = parse([pcapFile(RECORDS, { littleEndian })]);
      expect(micro.leftover).toBeNull();
      expect(micro.seen).toEqual(expectedRecords(RECORDS, 1000));
      expect(micro.parser.fractionDigits).toBe(6);

      const nanoRecords = RECORDS.map((r) => ({ ...r, fraction: r.fraction * 1000 + 789 }));
      const nano = parse([pcapFile(nanoRecords, { littleEndian, nanos: true })]);
      expect(nano.seen).toEqual(expectedRecords(nanoRecords, 1));
      expect(nano.parser.fractionDigits).toBe(9);
      expect(nano.parser.linkTypes).toEqual([1]);
    }
  });

  it('reads Kuznetsov\'s modified format (24-byte record headers)', () => {
    for (const littleEndian of [true, false]) {
      const { seen, leftover } = parse([pcapFile(RECORDS, { littleEndian, modified: true })]);
      expect(leftover).toBeNull();
      expect(seen).toEqual(expectedRecords(RECORDS, 1000, 24));
    }
  });

  it('gives the same records however the bytes are split: one byte per push, and every two-chunk split', () => {
    const file = pcapFile(RECORDS);
    const want = expectedRecords(RECORDS, 1000);
    const byteByByte = parse([...file].map((byte) => Buffer.from([byte])));
    expect(byteByByte.leftover).toBeNull();
    expect(byteByByte.seen).toEqual(want);
    for (let cut = 0; cut <= file.length; cut++) {
      const { seen, leftover } = parse([file.subarray(0, cut), file.subarray(cut)]);
      expect(leftover, `cut at ${cut}`).toBeNull();
      expect(seen, `cut at ${cut}`).toEqual(want);
    }
  });

  it('a record shorter than the file header, right after it in the same chunk, is not held back', () => {
    const tiny = [{ seconds: 5, fraction: 6, data: frame(4, 9) }];
    const { seen, leftover } = parse([pcapFile(tiny)]);
    expect(leftover).toBeNull();
    expect(seen).toEqual(expectedRecords(tiny, 1000));
  });

  it('a fraction of a second >= 1 s (fuzzed or buggy writers) is carried into the seconds', () => {
    const { seen } = parse([pcapFile([{ seconds: 10, fraction: 2_500_000, data: frame(1, 0) }])]);
    expect([seen[0]!.seconds, seen[0]!.nanos]).toEqual([12, 500_000_000]);
    const nano = parse([pcapFile([{ seconds: 10, fraction: 1_000_000_001, data: frame(1, 0) }], { nanos: true })]);
    expect([nano.seen[0]!.seconds, nano.seen[0]!.nanos]).toEqual([11, 1]);
  });

  it('masks the FCS bits of the link-type field and refuses the reserved ones', () => {
    const fcs = parse([pcapFile([RECORDS[0]!], { linkType: 0x30000001 })]);
    expect(fcs.seen[0]!.linkType).toBe(1);
    const reserved = catchError(() => parse([pcapFile([], { linkType: 0x00300001 })]));
    expect(reserved.message).toBe('link-type field 0x00300001 has reserved bits set (at byte 20)');
  });

  it('refuses versions other than 2.0-2.4', () => {
    expect(catchError(() => parse([pcapFile([], { major: 1 })])).message).toBe('unsupported pcap version 1.4 (only 2.x is defined) (at byte 4)');
    expect(catchError(() => parse([pcapFile([], { minor: 5 })])).message).toMatch(/^unsupported pcap version 2\.5/);
    expect(parse([pcapFile([], { minor: 2 })]).leftover).toBeNull();
  });

  it('a caplen over the cap is refused at its record header, before anything is allocated', () => {
    const records = [RECORDS[0]!, { seconds: 1, fraction: 0, data: frame(10, 0), caplen: MAX_PCAP_CAPLEN + 1 }];
    const file = pcapFile(records);
    const seen: number[] = [];
    const parser = new PcapParser((r) => seen.push(r.frame));
    const error = catchError(() => parser.push(file));
    expect(seen).toEqual([1]);
    expect(error.byteOffset).toBe(24 + 16 + 60);
    expect(error.message).toBe('record 2 claims 262,145 captured bytes, more than any snapshot length (262,144) (at byte 100)');
    // Exactly the cap is fine.
    const atCap = parse([pcapFile([{ seconds: 1, fraction: 0, data: Buffer.alloc(MAX_PCAP_CAPLEN) }])]);
    expect(atCap.seen[0]!.caplen).toBe(MAX_PCAP_CAPLEN);
  });

  it('a file cut inside a record or its header says so at end()', () => {
    const file = pcapFile(RECORDS.slice(0, 2));
    expect(parse([file.subarray(0, file.length - 1)]).leftover).toBe('file ends inside record 2 (18 of 19 bytes)');
    expect(parse([file.subarray(0, 24 + 76 + 5)]).leftover).toBe('file ends inside the header of record 2 (5 of 16 bytes)');
    expect(parse([file.subarray(0, 10)]).leftover).toBe('file ends inside the 24-byte pcap file header (10 bytes present)');
    const cut = parse([file.subarray(0, file.length - 1)]);
    expect(cut.seen).toHaveLength(1);
  });
});

describe('readCapture on pcap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'closewait-pcap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, bytes: Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };

  async function read(source: string | Readable, chunkBytes?: number) {
    const seen: Seen[] = [];
    const summary = await readCapture(typeof source === 'string' ? { path: source } : { path: '-', stream: source }, (r) => seen.push(snapshot(r)), { chunkBytes });
    return { seen, summary };
  }

  it('reads plain, gzip\'d and streamed files alike, in chunks of any size', async () => {
    const file = pcapFile(RECORDS, { nanos: true, littleEndian: false });
    const want = expectedRecords(RECORDS, 1);
    for (const chunkBytes of [1, 7, 24, 100, 1 << 20]) {
      const plain = await read(write('plain.pcap', file), chunkBytes);
      expect(plain.seen).toEqual(want);
      expect(plain.summary).toMatchObject({ format: 'pcap', compressed: false, packets: 4, truncated: false, warnings: [], error: null, fractionDigits: 9 });
    }
    const gz = await read(write('file.pcap.gz', gzipSync(file)));
    expect(gz.seen).toEqual(want);
    expect(gz.summary.compressed).toBe(true);
    const streamed = await read(Readable.from([...file].map((byte) => Buffer.from([byte]))));
    expect(streamed.seen).toEqual(want);
    expect(streamed.summary.error).toBeNull();
  });

  it('keeps the records before a cut-short last record and warns with the byte offset', async () => {
    const file = pcapFile(RECORDS);
    const { seen, summary } = await read(write('cut.pcap', file.subarray(0, file.length - 10)));
    expect(seen).toHaveLength(3);
    expect(summary.truncated).toBe(true);
    expect(summary.error).toBeNull();
    expect(summary.warnings).toEqual(['file ends inside record 4 (206 of 216 bytes): stopped at byte 135; kept the 3 packets before it']);
  });

  it('keeps the records before an impossible caplen and warns', async () => {
    const file = pcapFile([RECORDS[0]!, { seconds: 1, fraction: 0, data: frame(8, 0), caplen: 0xffffffff }]);
    const { seen, summary } = await read(write('huge.pcap', file));
    expect(seen).toHaveLength(1);
    expect(summary.truncated).toBe(true);
    expect(summary.warnings[0]).toMatch(/^record 2 claims 4,294,967,295 captured bytes, more than any snapshot length \(262,144\) \(at byte 100\): stopped at byte 100; kept the 1 packets before it$/);
  });

  it('nothing usable: one line naming what is wrong and where', async () => {
    const cases: [Buffer, string][] = [
      [Buffer.alloc(0), 'empty file: no capture header'],
      [Buffer.from('GET / HTTP/1.1\r\n'), 'not a pcap or pcapng capture: starts with bytes 47 45 54 20 (at byte 0)'],
      [pcapFile([], { major: 3 }), 'unsupported pcap version 3.4 (only 2.x is defined) (at byte 4)'],
      [pcapFile([]).subarray(0, 20), ''],
    ];
    for (const [bytes, message] of cases) {
      const { summary } = await read(write('bad.pcap', bytes));
      if (message) expect(summary.error).toBe(message);
      else {
        // A file header cut short: nothing read, and the warning says where it stopped.
        expect(summary.packets).toBe(0);
        expect(`${summary.error ?? ''}${summary.warnings.join('')}`).toMatch(/file ends inside the 24-byte pcap file header \(20 bytes present\)/);
      }
    }
  });

  it('a gzip file cut short keeps the records it could inflate and says the stream ended early', async () => {
    const many = Array.from({ length: 400 }, (_, i) => ({ seconds: 1000 + i, fraction: i, data: frame(200, i) }));
    const gz = gzipSync(pcapFile(many));
    const { seen, summary } = await read(write('cut.pcap.gz', gz.subarray(0, Math.floor(gz.length * 0.6))));
    expect(summary.compressed).toBe(true);
    expect(summary.error).toBeNull();
    expect(summary.truncated).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(400);
    expect(seen.map((r) => r.seconds)).toEqual(many.slice(0, seen.length).map((r) => r.seconds));
    expect(summary.warnings).toHaveLength(1);
    expect(summary.warnings[0]).toMatch(/^gzip stream ends early or is damaged \(.+\): stopped at byte [\d,]+; kept the [\d,]+ packets before it$/);
  });

  it('a gzip file whose data is damaged from the start is one clear error', async () => {
    const gz = gzipSync(pcapFile(RECORDS));
    gz.fill(0xff, 10, 30);
    const { summary } = await read(write('bad.pcap.gz', gz));
    expect(summary.packets).toBe(0);
    expect(summary.error).toMatch(/^gzip data is damaged: /);
  });

  it('a stream whose first chunks are shorter than a magic number is still recognised', async () => {
    const file = pcapFile(RECORDS);
    const { seen, summary } = await read(Readable.from([file.subarray(0, 1), file.subarray(1, 3), file.subarray(3)]));
    expect(summary.error).toBeNull();
    expect(seen).toHaveLength(4);
  });
});
