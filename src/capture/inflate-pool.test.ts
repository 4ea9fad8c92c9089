import { createHash } from 'node:crypto';
import { createGunzip, gzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { InflateBufferPool } from './inflate-pool.js';
import { Random } from '../bench/random.js';

const CHUNK = 64 * 1024;

/** ~6 MB that inflates at different paces: incompressible runs between long repetitive ones. */
function mixedPayload(): Buffer {
  const random = new Random(7);
  const parts: Buffer[] = [];
  for (let i = 0; i < 24; i++) {
    const noise = Buffer.alloc(100_000 + (i % 5) * 37_000);
    for (let j = 0; j < noise.length; j += 4) noise.writeUInt32LE(random.uint32(), j);
    parts.push(noise, Buffer.from(`GET /status/${i} HTTP/1.1\r\nHost: svc\r\n\r\n`.repeat(2_000 + i * 311)));
  }
  return Buffer.concat(parts);
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('InflateBufferPool', () => {
  it('reuses gunzip output buffers without overwriting a chunk before it is parsed', async () => {
    const original = mixedPayload();
    const gunzip = createGunzip({ chunkSize: CHUNK });
    const pool = new InflateBufferPool(gunzip);
    gunzip.end(gzipSync(original));
    const whole = createHash('sha256');
    let chunks = 0;
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      const seen = sha(chunk);
      // A slow parse: gunzip runs ahead meanwhile. Were the chunk's buffer handed back too early, its
      // bytes would change under us here.
      if (chunks % 3 === 0) await sleep(1);
      else await new Promise((resolve) => setImmediate(resolve));
      expect(sha(chunk)).toBe(seen);
      whole.update(chunk);
      pool.parsed(chunk);
      chunks++;
    }
    expect(whole.digest('hex')).toBe(sha(original));
    expect(chunks).toBeGreaterThan(original.length / CHUNK);
    // Without the pool gunzip takes a new buffer per CHUNK of output (~95 here).
    expect(pool.size).toBeLessThanOrEqual(4);
  });

  it('keeps a buffer whose chunks are parsed out of step with gunzip until all its bytes are', async () => {
    const original = mixedPayload();
    const gunzip = createGunzip({ chunkSize: CHUNK });
    const pool = new InflateBufferPool(gunzip);
    gunzip.end(gzipSync(original));
    // Hold up to three chunks unparsed, then release the oldest: several full buffers are out at once.
    const held: { chunk: Buffer; seen: string }[] = [];
    const whole = createHash('sha256');
    const release = () => {
      const oldest = held.shift()!;
      expect(sha(oldest.chunk)).toBe(oldest.seen);
      whole.update(oldest.chunk);
      pool.parsed(oldest.chunk);
    };
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      held.push({ chunk, seen: sha(chunk) });
      if (held.length > 3) release();
      await new Promise((resolve) => setImmediate(resolve));
    }
    while (held.length > 0) release();
    expect(whole.digest('hex')).toBe(sha(original));
    expect(pool.size).toBeLessThanOrEqual(6);
  });

  it('leaves a stream without the internal field alone', () => {
    const stream = {} as ConstructorParameters<typeof InflateBufferPool>[0];
    const pool = new InflateBufferPool(stream);
    pool.parsed(Buffer.alloc(10));
    expect(Object.keys(stream)).toEqual([]);
  });
});
