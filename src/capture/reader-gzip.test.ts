import { createReadStream, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readCapture, type InputSource, type ReadOptions } from './reader.js';
import type { CaptureRecord } from './record.js';

/** A pcap of `count` records of varied lengths; `noise` makes their bytes incompressible. */
function pcapFile(count: number, noise: boolean): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(1, 20);
  const parts = [header];
  let state = 0x9e3779b9;
  for (let i = 0; i < count; i++) {
    const length = 60 + ((i * 97) % 1400);
    const record = Buffer.alloc(16 + length);
    record.writeUInt32LE(1_700_000_000 + Math.floor(i / 1000), 0);
    record.writeUInt32LE((i % 1000) * 1000, 4);
    record.writeUInt32LE(length, 8);
    record.writeUInt32LE(length, 12);
    for (let b = 0; b < length; b++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      record[16 + b] = noise ? state & 0xff : (i * 31 + b * 7) & 0xff;
    }
    parts.push(record);
  }
  return Buffer.concat(parts);
}

/** Counts that differ when any record's time, length or bytes do. */
async function read(source: InputSource, options: ReadOptions = {}, onRecord?: (count: number) => void) {
  const seen = { records: 0, bytes: 0, checksum: 0 };
  const summary = await readCapture(source, (r: CaptureRecord) => {
    seen.records++;
    seen.bytes += r.caplen;
    let sum = (r.seconds * 31 + r.nanos) | 0;
    for (let i = r.offset; i < r.offset + r.caplen; i += 5) sum = (sum * 33 + r.data[i]!) | 0;
    seen.checksum = (seen.checksum * 7 + sum) | 0;
    onRecord?.(seen.records);
  }, options);
  return { seen, summary };
}

const openFiles = () => readdirSync('/proc/self/fd').length;

describe('gzip\'d files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'closewait-gzip-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, bytes: Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  const small = pcapFile(3_000, false);
  const smallGz = gzipSync(small);
  // Over 3 MiB compressed: more than the reader's read buffers hold at once, so each is reused.
  const large = pcapFile(6_000, true);
  const largeGz = gzipSync(large, { level: 1 });

  it('yield the same records as the plain file, whatever the read size', async () => {
    expect(largeGz.length).toBeGreaterThan(3 * 1024 * 1024);
    for (const [plain, gz, readSizes] of [[small, smallGz, [13, 4096, undefined]], [large, largeGz, [65_536, undefined]]] as const) {
      const want = await read({ path: write('plain.pcap', plain) });
      const gzPath = write('file.pcap.gz', gz);
      for (const chunkBytes of readSizes) {
        const got = await read({ path: gzPath }, { chunkBytes });
        expect(got.seen).toEqual(want.seen);
        expect(got.summary).toEqual({ ...want.summary, path: gzPath, compressed: true, compression: 'gzip' });
      }
    }
  });

  it('cut short: the same records and warning as the same bytes piped in', async () => {
    const cut = largeGz.subarray(0, Math.floor(largeGz.length * 0.7));
    const path = write('cut.pcap.gz', cut);
    const fromFile = await read({ path });
    const fromPipe = await read({ path, stream: createReadStream(path) });
    expect(fromFile.seen).toEqual(fromPipe.seen);
    expect(fromFile.summary).toEqual(fromPipe.summary);
    expect(fromFile.summary.truncated).toBe(true);
    expect(fromFile.seen.records).toBeGreaterThan(3_000);
    expect(fromFile.summary.warnings).toEqual([expect.stringMatching(/^gzip stream ends early or is damaged \(.+\): stopped at byte [\d,]+; kept the [\d,]+ packets before it$/)]);
  });

  it('a wrong checksum at the end keeps the records before the last read and warns', async () => {
    const damaged = Buffer.from(largeGz);
    damaged[damaged.length - 8]! ^= 0xff; // the trailer's CRC-32 of the inflated bytes
    const { seen, summary } = await read({ path: write('bad-crc.pcap.gz', damaged) });
    // zlib finds the mismatch in the step that inflates the end of the file, and drops that step's output.
    expect(seen.records).toBeGreaterThan(6_000 * (1 - (1024 * 1024) / large.length));
    expect(summary.truncated).toBe(true);
    expect(summary.warnings).toEqual([expect.stringMatching(/^gzip stream ends early or is damaged \(incorrect data check\)/)]);
  });

  it('stopping early (aborted, or the sink throws) closes the file', async () => {
    const path = write('stop.pcap.gz', largeGz);
    const before = openFiles();
    const controller = new AbortController();
    const aborted = await read({ path }, { signal: controller.signal }, (count) => {
      if (count === 1_000) controller.abort();
    });
    expect(aborted.summary.truncated).toBe(true);
    expect(aborted.summary.packets).toBeLessThan(6_000);
    expect(aborted.summary.warnings).toEqual([expect.stringMatching(/^interrupted: read [\d,]+ packets before stopping$/)]);
    expect(openFiles()).toBe(before);

    const thrown = read({ path }, {}, (count) => {
      if (count === 1_000) throw new RangeError('enough');
    });
    await expect(thrown).rejects.toThrow('enough');
    expect(openFiles()).toBe(before);
  });

  it('report progress in compressed bytes, up to the file size', async () => {
    const progress: number[] = [];
    await read({ path: write('progress.pcap.gz', largeGz) }, { onProgress: (bytes) => progress.push(bytes) });
    expect(progress.length).toBeGreaterThan(3);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(largeGz.length);
  });
});
