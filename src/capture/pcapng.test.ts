import { describe, expect, it } from 'vitest';
import { CaptureFormatError } from './errors.js';
import { PcapngParser } from './pcapng.js';
import { readCapture } from './reader.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes pcapng blocks in one byte order; a file may mix writers (one per section). */
class Writer {
  constructor(readonly littleEndian: boolean) {}

  u16(value: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.littleEndian) b.writeUInt16LE(value);
    else b.writeUInt16BE(value);
    return b;
  }

  u32(value: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.littleEndian) b.writeUInt32LE(value >>> 0);
    else b.writeUInt32BE(value >>> 0);
    return b;
  }

  /** A block: type, total length, body padded to 4 bytes, total length again. */
  block(type: number, body: Buffer, lengthOverride?: number, trailerOverride?: number): Buffer {
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    const length = 12 + padded.length;
    return Buffer.concat([this.u32(type), this.u32(lengthOverride ?? length), padded, this.u32(trailerOverride ?? lengthOverride ?? length)]);
  }

  option(code: number, value: Buffer): Buffer {
    const padded = Buffer.concat([value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
    return Buffer.concat([this.u16(code), this.u16(value.length), padded]);
  }

  endOfOptions(): Buffer {
    return Buffer.alloc(4);
  }

  shb(major = 1, minor = 0): Buffer {
    const sectionLength = Buffer.alloc(8, 0xff); // -1: not given
    return this.block(0x0a0d0d0a, Buffer.concat([this.u32(0x1a2b3c4d), this.u16(major), this.u16(minor), sectionLength]));
  }

  idb(linkType: number, options: Buffer[] = []): Buffer {
    const opts = options.length ? Buffer.concat([...options, this.endOfOptions()]) : Buffer.alloc(0);
    return this.block(1, Buffer.concat([this.u16(linkType), this.u16(0), this.u32(262144), opts]));
  }

  tsresol(value: number): Buffer {
    return this.option(9, Buffer.from([value]));
  }

  tsoffset(seconds: number): Buffer {
    const high = Math.floor(seconds / 2 ** 32);
    const low = seconds - high * 2 ** 32;
    return this.option(14, this.littleEndian ? Buffer.concat([this.u32(low), this.u32(high)]) : Buffer.concat([this.u32(high), this.u32(low)]));
  }

  epb(interfaceId: number, timestamp: bigint, data: Buffer, origLen = data.length, caplenOverride?: number): Buffer {
    const high = Number(timestamp >> 32n);
    const low = Number(timestamp & 0xffffffffn);
    const comment = this.option(1, Buffer.from('a packet comment'));
    return this.block(6, Buffer.concat([this.u32(interfaceId), this.u32(high), this.u32(low), this.u32(caplenOverride ?? data.length), this.u32(origLen), data, Buffer.alloc((4 - (data.length % 4)) % 4), comment, this.endOfOptions()]));
  }

  opb(interfaceId: number, timestamp: bigint, data: Buffer, origLen = data.length): Buffer {
    const high = Number(timestamp >> 32n);
    const low = Number(timestamp & 0xffffffffn);
    return this.block(2, Buffer.concat([this.u16(interfaceId), this.u16(3), this.u32(high), this.u32(low), this.u32(data.length), this.u32(origLen), data]));
  }

  spb(origLen: number, data: Buffer): Buffer {
    return this.block(3, Buffer.concat([this.u32(origLen), data]));
  }
}

const LE = new Writer(true);
const BE = new Writer(false);

const frame = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 13 + seed) & 0xff));

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

function parse(chunks: Buffer[]) {
  const seen: Seen[] = [];
  const parser = new PcapngParser((r) =>
    seen.push({
      frame: r.frame, seconds: r.seconds, nanos: r.nanos, caplen: r.caplen, origLen: r.origLen, linkType: r.linkType, byteOffset: r.byteOffset,
      bytes: r.data.subarray(r.offset, r.offset + r.caplen).toString('hex'),
    }),
  );
  for (const chunk of chunks) parser.push(chunk);
  return { seen, leftover: parser.end(), parser };
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

const times = (seen: Seen[]) => seen.map((s) => [s.seconds, s.nanos]);

describe('pcapng parser', () => {
  it('reads a section in either byte order: SHB, IDB, EPB with options', () => {
    for (const w of [LE, BE]) {
      const shb = w.shb();
      const idb = w.idb(1);
      const file = Buffer.concat([shb, idb, w.epb(0, 1_700_000_000_123_456n, frame(61, 1), 1514), w.epb(0, 1_700_000_001_000_000n, frame(4, 2))]);
      const { seen, leftover, parser } = parse([file]);
      expect(leftover).toBeNull();
      expect(seen[0]).toEqual({
        frame: 1, seconds: 1_700_000_000, nanos: 123_456_000, caplen: 61, origLen: 1514, linkType: 1, byteOffset: shb.length + idb.length, bytes: frame(61, 1).toString('hex'),
      });
      expect(seen[1]).toMatchObject({ frame: 2, seconds: 1_700_000_001, nanos: 0, caplen: 4, origLen: 4 });
      expect(parser.linkTypes).toEqual([1]);
      expect(parser.fractionDigits).toBe(6);
      expect(parser.sections).toBe(1);
    }
  });

  it('if_tsresol: 10^-9, 2^-N, the µs default, and if_tsoffset', () => {
    const file = Buffer.concat([
      LE.shb(),
      LE.idb(1),
      LE.idb(1, [LE.tsresol(9)]),
      LE.idb(101, [LE.tsresol(0x80 | 8)]),
      LE.idb(1, [LE.tsresol(0x80 | 30)]),
      LE.idb(1, [LE.tsresol(3), LE.tsoffset(1_600_000_000)]),
      LE.idb(1, [LE.tsoffset(-1000)]),
      LE.epb(0, 5_000_001n, frame(1, 0)),
      LE.epb(1, 5_000_000_001n, frame(1, 0)),
      LE.epb(2, 5n * 256n + 64n, frame(1, 0)), // 5.25 s
      LE.epb(3, 7n * 2n ** 30n + 2n ** 29n + 1n, frame(1, 0)), // 7.5 s + 2^-30 s (0.93 ns)
      LE.epb(4, 2_500n, frame(1, 0)), // milliseconds, plus the offset
      LE.epb(5, 1_700_000_000_000_007n, frame(1, 0)), // if_tsoffset is signed
    ]);
    const { seen, parser } = parse([file]);
    expect(times(seen)).toEqual([
      [5, 1_000],
      [5, 1],
      [5, 250_000_000],
      [7, 500_000_000],
      [1_600_000_002, 500_000_000],
      [1_699_999_000, 7_000],
    ]);
    expect(seen.map((s) => s.linkType)).toEqual([1, 1, 101, 1, 1, 1]);
    expect(parser.fractionDigits).toBe(9);
  });

  it('64-bit nanosecond timestamps come out exact, beyond 2^53 too', () => {
    const stamps = [
      1_700_000_000_123_456_789n,
      2n ** 53n + 1n, // the first integer a double cannot hold
      9_000_000_000_999_999_999n, // year 2255
      2n ** 64n - 1n,
    ];
    const file = Buffer.concat([LE.shb(), LE.idb(1, [LE.tsresol(9)]), ...stamps.map((ts) => LE.epb(0, ts, frame(1, 0)))]);
    const { seen } = parse([file]);
    expect(times(seen)).toEqual(stamps.map((ts) => [Number(ts / 1_000_000_000n), Number(ts % 1_000_000_000n)]));
  });

  it('other resolutions stay exact to the nanosecond: 2^-32, 10^-7, 10^-12', () => {
    const file = Buffer.concat([
      LE.shb(),
      LE.idb(1, [LE.tsresol(0x80 | 32)]),
      LE.idb(1, [LE.tsresol(7)]),
      LE.idb(1, [LE.tsresol(12)]),
      LE.epb(0, 1_700_000_000n * 2n ** 32n + 3_000_000_000n, frame(1, 0)),
      LE.epb(1, 17_000_000_001_234_567n, frame(1, 0)),
      LE.epb(2, 12_345_678_901_234_567_891n, frame(1, 0)), // 64 bits of picoseconds reach only 213 days
      LE.epb(2, 12_345_678_901_234_568_990n, frame(1, 0)), // as a double: ...569_216 ps, the next nanosecond
      LE.epb(0, 2n ** 64n - 1n, frame(1, 0)),
    ]);
    const { seen } = parse([file]);
    // 3e9 / 2^32 s = 0.698491930961608886... s
    expect(times(seen)).toEqual([
      [1_700_000_000, 698_491_930],
      [1_700_000_000, 123_456_700],
      [12_345_678, 901_234_567],
      [12_345_678, 901_234_568],
      [4_294_967_295, 999_999_999], // (2^64 - 1) / 2^32 s
    ]);
  });

  it('a new section starts interface numbering afresh; a packet naming a missing interface is skipped and counted', () => {
    const file = Buffer.concat([
      LE.shb(),
      LE.idb(1),
      LE.idb(113),
      LE.epb(1, 1_000_000n, frame(20, 1)),
      BE.shb(),
      BE.idb(101),
      BE.epb(1, 2_000_000n, frame(20, 2)), // interface 1 belonged to the first section
      BE.epb(0, 3_000_000n, frame(20, 3)),
      BE.epb(7, 4_000_000n, frame(20, 4)),
    ]);
    const { seen, parser, leftover } = parse([file]);
    expect(leftover).toBeNull();
    expect(seen.map((s) => [s.frame, s.linkType, s.seconds])).toEqual([
      [1, 113, 1],
      [3, 101, 3],
    ]);
    expect(parser.unknownInterfacePackets).toBe(2);
    expect(parser.sections).toBe(2);
    expect(parser.linkTypes).toEqual([1, 113, 101]);
  });

  it('simple packet blocks use interface 0, keep the previous time and take caplen from the block', () => {
    const file = Buffer.concat([LE.shb(), LE.idb(1), LE.epb(0, 9_000_001n, frame(8, 0)), LE.spb(1514, frame(64, 5)), LE.spb(3, frame(3, 6))]);
    const { seen } = parse([file]);
    expect(seen.slice(1).map((s) => [s.frame, s.seconds, s.nanos, s.caplen, s.origLen, s.bytes])).toEqual([
      [2, 9, 1_000, 64, 1514, frame(64, 5).toString('hex')],
      [3, 9, 1_000, 3, 3, frame(3, 6).toString('hex')],
    ]);
  });

  it('a simple packet block with no interface in its section is skipped and counted', () => {
    const { seen, parser } = parse([Buffer.concat([LE.shb(), LE.spb(10, frame(10, 0))])]);
    expect(seen).toEqual([]);
    expect(parser.unknownInterfacePackets).toBe(1);
  });

  it('obsolete packet blocks (16-bit interface id and a drop count)', () => {
    for (const w of [LE, BE]) {
      const { seen } = parse([Buffer.concat([w.shb(), w.idb(1), w.idb(12), w.opb(1, 3_000_004n, frame(30, 7), 60)])]);
      expect(seen).toEqual([expect.objectContaining({ frame: 1, linkType: 12, seconds: 3, nanos: 4_000, caplen: 30, origLen: 60, bytes: frame(30, 7).toString('hex') })]);
    }
  });

  it('skips name resolution, statistics, custom and unknown blocks by their length', () => {
    const file = Buffer.concat([
      LE.shb(),
      LE.block(4, Buffer.alloc(20, 1)), // NRB
      LE.idb(1),
      LE.block(5, Buffer.alloc(12, 2)), // ISB
      LE.block(0x00000bad, Buffer.alloc(40, 3)), // custom
      LE.block(0x12345678, Buffer.alloc(0)),
      LE.epb(0, 1_000_000n, frame(10, 1)),
    ]);
    const { seen, leftover } = parse([file]);
    expect(leftover).toBeNull();
    expect(seen.map((s) => s.frame)).toEqual([1]);
  });

  it('gives the same records however the bytes are split', () => {
    const file = Buffer.concat([LE.shb(), LE.idb(1, [LE.tsresol(9)]), LE.epb(0, 1n, frame(17, 1)), BE.shb(), BE.idb(113), BE.epb(0, 2_000_000n, frame(40, 2)), BE.spb(40, frame(40, 3))]);
    const whole = parse([file]);
    expect(whole.seen).toHaveLength(3);
    const byteByByte = parse([...file].map((byte) => Buffer.from([byte])));
    expect(byteByByte.leftover).toBeNull();
    expect(byteByByte.seen).toEqual(whole.seen);
    for (let cut = 0; cut <= file.length; cut += 3) {
      const split = parse([file.subarray(0, cut), file.subarray(cut)]);
      expect(split.seen, `cut at ${cut}`).toEqual(whole.seen);
    }
  });

  describe('damage', () => {
    const good = Buffer.concat([LE.shb(), LE.idb(1), LE.epb(0, 1_000_000n, frame(10, 1))]);

    it.each([
      ['shorter than 12 bytes', LE.block(0x00000bad, Buffer.alloc(0), 8), /block of type 0xbad has an impossible length 8 \(at byte 120\)/],
      ['not a multiple of 4', LE.block(0x00000bad, Buffer.alloc(8), 18), /impossible length 18 \(at byte 120\)/],
      ['over the cap', LE.block(6, Buffer.alloc(8), 0x7ffffff0), /impossible length 2,147,483,632 \(at byte 120\)/],
      ['a trailer that disagrees', LE.block(0x00000bad, Buffer.alloc(8), 20, 24), /block length 20 disagrees with its trailer 24 \(at byte 132\)/],
      ['an EPB claiming more bytes than it holds', LE.epb(0, 1n, frame(8, 0), 8, 40), /packet block claims 40 captured bytes in a 64-byte block \(at byte 136\)/],
      ['an SHB of another version', LE.shb(2, 0), /unsupported pcapng section version 2\.0 \(at byte 128\)/],
      ['an SHB with an unknown byte-order magic', Buffer.concat([LE.u32(0x0a0d0d0a), LE.u32(28), LE.u32(0x11223344), Buffer.alloc(16)]), /unknown byte-order magic 0x11223344 \(at byte 124\)/],
      ['an interface option running past its block', LE.block(1, Buffer.concat([LE.u16(1), LE.u16(0), LE.u32(0), LE.u16(9), LE.u16(40)])), /interface option 9 of length 40 runs past its block \(at byte 132\)/],
      ['a simple packet block too short for its length field', LE.block(3, Buffer.alloc(0)), /simple packet block is 12 bytes/],
    ])('after good blocks: %s stops reading with the byte offset', (_name, damage, message) => {
      const seen: number[] = [];
      const parser = new PcapngParser((r) => seen.push(r.frame));
      const error = catchError(() => parser.push(Buffer.concat([good, damage, LE.epb(0, 2n, frame(10, 2))])));
      expect(error.message).toMatch(message);
      expect(seen).toEqual([1]);
    });

    it('a file that does not start with a section header', () => {
      expect(catchError(() => parse([LE.idb(1)])).message).toBe('pcapng file does not start with a section header block (at byte 0)');
    });

    it('cut short: inside a block, inside a block header, inside the first section header', () => {
      expect(parse([good.subarray(0, good.length - 1)]).leftover).toBe('file ends inside a pcapng block (67 of 68 bytes)');
      expect(parse([good.subarray(0, 28 + 20 + 5)]).leftover).toBe('file ends inside a block header (5 of 12 bytes)');
      expect(parse([good.subarray(0, 20)]).leftover).toBe('file ends inside the first pcapng section header (20 bytes present)');
    });
  });
});

describe('readCapture on pcapng', () => {
  it('reports the format, link types and fraction digits, and keeps packets before damage', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'closewait-pcapng-'));
    const path = join(dir, 'cut.pcapng');
    const file = Buffer.concat([LE.shb(), LE.idb(1, [LE.tsresol(9)]), LE.idb(113), LE.epb(0, 1n, frame(10, 1)), LE.epb(1, 2n, frame(10, 2)), LE.epb(7, 3n, frame(10, 3))]);
    writeFileSync(path, Buffer.concat([file, LE.block(0x00000bad, Buffer.alloc(8), 20, 24)]));
    const frames: number[] = [];
    const summary = await readCapture({ path }, (r) => frames.push(r.frame));
    rmSync(dir, { recursive: true, force: true });
    expect(frames).toEqual([1, 2]);
    expect(summary).toMatchObject({ format: 'pcapng', linkTypes: [1, 113], packets: 2, fractionDigits: 9, truncated: true, error: null });
    expect(summary.warnings).toEqual([
      `pcapng block length 20 disagrees with its trailer 24 (at byte ${file.length + 16}): stopped at byte ${file.length}; kept the 2 packets before it`,
      '1 packets named an interface the file never described; skipped',
    ]);
  });
});
