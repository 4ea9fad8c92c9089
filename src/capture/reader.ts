import { open, stat } from 'node:fs/promises';
import { createReadStream, open as openFd } from 'node:fs';
import { createGunzip, type Gunzip } from 'node:zlib';
import { InflateBufferPool } from './inflate-pool.js';
import type { Readable } from 'node:stream';
import { CaptureFormatError, DecompressorError, InputError } from './errors.js';
import { COMPRESSION_MAGIC_BYTES, compressionOf, type Compression, type CompressionName } from './compression.js';
import { decompressedByCommand } from './external.js';
import { onceDrained } from './drain.js';
import { PcapParser, isPcapMagic } from './pcap.js';
import { PcapngParser, PCAPNG_SHB_MAGIC } from './pcapng.js';
import type { CaptureParser, CaptureRecord, RecordSink } from './record.js';
import { formatNumber } from '../numbers.js';

/** Where bytes come from: a path, or an already open stream (stdin) with the name to show for it. */
export interface InputSource {
  path: string;
  stream?: Readable;
}

export interface CaptureTime {
  seconds: number;
  nanos: number;
}

/** What reading one input produced, whatever happened downstream. */
export interface InputSummary {
  path: string;
  format: 'pcap' | 'pcapng' | null;
  compressed: boolean;
  /** How it was compressed (told by its first bytes), or null. */
  compression: CompressionName | null;
  linkTypes: number[];
  packets: number;
  bytes: number;
  firstPacketTime: CaptureTime | null;
  lastPacketTime: CaptureTime | null;
  fractionDigits: number;
  /** Reading stopped before the end of the input (cut short, damaged, or interrupted). */
  truncated: boolean;
  warnings: string[];
  /** Set when nothing usable could be read: the one line to show the user. */
  error: string | null;
}

export interface ReadOptions {
  /**
   * Aborted (Ctrl-C), a file stops at the next chunk and a pipe once it ends or PIPE_GRACE_MS have
   * passed; the summary then says what was read.
   */
  signal?: AbortSignal;
  /** Called after each chunk is parsed, with the bytes read so far from the (possibly compressed) input. */
  onProgress?: (compressedBytesRead: number) => void;
  chunkBytes?: number;
}

/** Bytes needed to tell pcap from pcapng (and a byte order from another). */
const MAGIC_BYTES = 4;
const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
/**
 * Compressed bytes per read of a gzip'd file. Each read is at least one step of zlib in libuv's
 * threadpool, and each step costs a hand-over between threads: on the 1 GiB benchmark, 256 KiB reads
 * took 2.45 s, 1 MiB reads 2.25 s (2.15 s with the reused buffers below). Larger reads gain little
 * more and keep more bytes in flight (4 MiB: +20 MB peak RSS).
 */
const GZIP_READ_BYTES = 1024 * 1024;
/** Read buffers of a gzip'd file, reused: one being read while gunzip holds up to two. */
const GZIP_READ_BUFFERS = 3;
/** gunzip's output buffer: how much it inflates per step at most. */
const GZIP_INFLATE_BYTES = 1024 * 1024;
/** Plain files are read ahead into two buffers of this size: together what one 4 MiB buffer took, and as fast. */
const FILE_CHUNK_BYTES = 2 * 1024 * 1024;

/** True when the first bytes are a capture format we read, plain or compressed (see compression.ts). */
export function looksLikeCapture(head: Buffer): boolean {
  if (compressionOf(head)) return true;
  if (head.length < 4) return false;
  const magic = head.readUInt32LE(0);
  return magic === PCAPNG_SHB_MAGIC || isPcapMagic(magic);
}

/**
 * Reads one capture, calling `sink` for every frame in order. Never throws for bad input: problems
 * come back in the summary, as an `error` when nothing was usable, else as warnings.
 */
export async function readCapture(source: InputSource, sink: RecordSink, options: ReadOptions = {}): Promise<InputSummary> {
  const summary: InputSummary = {
    path: source.path, format: null, compressed: false, compression: null, linkTypes: [], packets: 0, bytes: 0,
    firstPacketTime: null, lastPacketTime: null, fractionDigits: 6, truncated: false, warnings: [], error: null,
  };
  let parser: CaptureParser | null = null;
  const counting: RecordSink = (record: CaptureRecord) => {
    if (summary.packets === 0) summary.firstPacketTime = { seconds: record.seconds, nanos: record.nanos };
    summary.packets++;
    const last = summary.lastPacketTime;
    if (last) {
      last.seconds = record.seconds;
      last.nanos = record.nanos;
    } else summary.lastPacketTime = { seconds: record.seconds, nanos: record.nanos };
    sink(record);
  };

  const input: InputState = { isPipe: Boolean(source.stream), bytesRead: 0 };
  // A pipe may hand over fewer bytes than a magic number at first: gather them (a copy, since file
  // chunks share one buffer) until the format can be told.
  let head: Buffer | null = null;
  try {
    for await (const chunk of decompressedChunks(source, summary, options, input)) {
      let bytes = chunk;
      if (!parser) {
        bytes = head ? Buffer.concat([head, chunk]) : chunk;
        if (bytes.length < MAGIC_BYTES) {
          head = Buffer.from(bytes);
          continue;
        }
        head = null;
        parser = parserFor(bytes, counting);
        summary.format = parser.format;
      }
      parser.push(bytes);
      summary.bytes += bytes.length;
      options.onProgress?.(input.bytesRead);
      if (options.signal?.aborted && !input.isPipe) {
        markInterrupted(summary);
        break;
      }
    }
    if (options.signal?.aborted && !summary.truncated) markInterrupted(summary);
    if (!parser && head && !summary.truncated) parserFor(head, counting); // throws: too short for any capture header
    if (!parser) {
      summary.error = summary.truncated ? 'interrupted before any capture header arrived' : 'empty file: no capture header';
    } else if (!summary.truncated) {
      const leftover = parser.end();
      // Nothing consumed: the file header itself is cut short, so nothing in the input is usable.
      if (leftover && parser.bytesConsumed === 0) summary.error = leftover;
      else if (leftover) markCut(summary, leftover, parser.bytesConsumed);
    }
  } catch (error) {
    // Ctrl-C in a terminal reaches the decompressing command too (it is in our process group): its
    // death then is the stop, not damage in the input.
    if (options.signal?.aborted && (input.isPipe || error instanceof DecompressorError)) {
      markInterrupted(summary);
    } else if (error instanceof CaptureFormatError) {
      if (summary.packets === 0 && !parser?.linkTypes.length) summary.error = error.message;
      else if (summary.packets === 0) summary.error = `${error.message}; no packets before it`;
      else markCut(summary, error.message, parser?.bytesConsumed ?? error.byteOffset);
    } else if (error instanceof InputError) {
      summary.error = error.message.slice(source.path.length + 2);
    } else if (error instanceof DecompressorError) {
      const damaged = `${summary.compression} stream ends early or is damaged (${error.command}: ${error.what})`;
      if (!error.started) summary.error = error.message;
      else if (summary.packets === 0) summary.error = `${damaged}; no packet before it`;
      else markCut(summary, damaged, parser?.bytesConsumed ?? 0);
    } else if (isGzipDamage(error)) {
      summary.compressed = true;
      if (summary.packets === 0) summary.error = `gzip data is damaged: ${(error as Error).message}`;
      else markCut(summary, `gzip stream ends early or is damaged (${(error as Error).message})`, parser?.bytesConsumed ?? 0);
    } else if (isFsError(error)) {
      summary.error = describeFsError(error);
    } else {
      throw error;
    }
  }
  if (parser) {
    summary.linkTypes = [...new Set(parser.linkTypes)];
    summary.fractionDigits = parser.fractionDigits || 6;
    if (parser instanceof PcapngParser && parser.unknownInterfacePackets > 0) {
      summary.warnings.push(`${formatNumber(parser.unknownInterfacePackets)} packets named an interface the file never described; skipped`);
    }
  }
  return summary;
}

function markInterrupted(summary: InputSummary): void {
  summary.truncated = true;
  summary.warnings.push(`interrupted: read ${formatNumber(summary.packets)} packets before stopping`);
}

function markCut(summary: InputSummary, what: string, byteOffset: number): void {
  summary.truncated = true;
  summary.warnings.push(
    `${what}: stopped at byte ${formatNumber(byteOffset)}; kept the ${formatNumber(summary.packets)} packets before it`,
  );
}

function parserFor(head: Buffer, sink: RecordSink): CaptureParser {
  if (head.length < MAGIC_BYTES) throw new CaptureFormatError(`file is only ${head.length} bytes, too short for a capture header`, 0);
  const magic = head.readUInt32LE(0);
  if (magic === PCAPNG_SHB_MAGIC) return new PcapngParser(sink);
  if (isPcapMagic(magic)) return new PcapParser(sink);
  const shown = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new CaptureFormatError(`not a pcap or pcapng capture: starts with bytes ${shown}`, 0);
}

/** What the chunk readers tell readCapture about the input as they go. */
interface InputState {
  /** A pipe (stdin, a FIFO): when interrupted it is read on a little (streamChunks); a file stops at the next chunk. */
  isPipe: boolean;
  /** Bytes read from the input so far: compressed bytes when it is gzip'd. */
  bytesRead: number;
}

/** Yields the input's bytes, decompressed when its first bytes say how it was compressed. */
async function* decompressedChunks(source: InputSource, summary: InputSummary, options: ReadOptions, input: InputState): AsyncGenerator<Buffer> {
  if (source.stream) {
    yield* streamChunks(source.stream, summary, options, input);
    return;
  }
  const info = await stat(source.path).catch((error: unknown) => {
    throw new InputError(source.path, describeFsError(error));
  });
  if (info.isDirectory()) throw new InputError(source.path, 'is a directory, not a capture file');
  // A FIFO or a device (mkfifo, <(zcat ...), /dev/stdin) can be read once only: no peeking at its head.
  if (!info.isFile()) {
    input.isPipe = true;
    const stream = info.isFIFO() ? await openFifo(source.path) : createReadStream(source.path, { highWaterMark: options.chunkBytes ?? DEFAULT_CHUNK_BYTES });
    yield* streamChunks(stream, summary, options, input);
    return;
  }
  const compression = compressionOf(await readHead(source.path));
  if (compression) markCompressed(summary, compression);
  if (compression?.name === 'gzip') {
    yield* gzipFileChunks(source.path, options, input);
  } else if (compression) {
    yield* commandChunks(compression, fileBytes(source.path, options.chunkBytes ?? GZIP_READ_BYTES), input);
  } else {
    yield* fileChunks(source.path, options, input);
  }
}

/**
 * A FIFO read as a socket is: without waiting in a thread-pool read() that nothing interrupts until the
 * writer writes again, so a stop (Ctrl-C) can end the read. The open itself waits for a writer, as
 * opening a FIFO does.
 */
async function openFifo(path: string): Promise<Readable> {
  const fd = await new Promise<number>((resolve, reject) => openFd(path, 'r', (error, opened) => (error ? reject(error) : resolve(opened))));
  const { Socket } = await import('node:net');
  return new Socket({ fd, readable: true, writable: false });
}

async function readHead(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(COMPRESSION_MAGIC_BYTES);
    const { bytesRead } = await handle.read(head, 0, COMPRESSION_MAGIC_BYTES, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Plain files are read into two reused buffers in turn: while the parser works through one chunk, the
 * next is already being read, so the disk and the parser run at the same time. A buffer is free again
 * once the parser has returned from it (it copies what it keeps across chunks).
 */
async function* fileChunks(path: string, options: ReadOptions, input: InputState): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  const size = options.chunkBytes ?? FILE_CHUNK_BYTES;
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)] as const;
  let filling = 0;
  const readInto = (buffer: Buffer) => {
    const read = handle.read(buffer, 0, size, null);
    // Awaited below; until then a failure must not count as an unhandled rejection.
    read.catch(() => undefined);
    return read;
  };
  let pending: ReturnType<typeof readInto> | null = readInto(buffers[0]);
  let total = 0;
  try {
    for (;;) {
      const { bytesRead } = await pending;
      pending = null;
      if (bytesRead === 0) return;
      const current = buffers[filling]!;
      filling ^= 1;
      pending = readInto(buffers[filling]!);
      total += bytesRead;
      input.bytesRead = total;
      yield current.subarray(0, bytesRead);
    }
  } finally {
    if (pending) await pending.catch(() => undefined);
    await handle.close();
  }
}

/**
 * A gzip'd file, inflated while the parser works: compressed bytes are read into a few reused buffers
 * and handed to gunzip, each buffer free again once gunzip has consumed it. Reusing them, rather than a
 * read stream's new buffer per read, leaves less garbage for the collector and less work for this thread.
 */
async function* gzipFileChunks(path: string, options: ReadOptions, input: InputState): AsyncGenerator<Buffer> {
  const readBytes = options.chunkBytes ?? GZIP_READ_BYTES;
  const handle = await open(path, 'r');
  const gunzip = createGunzip({ chunkSize: GZIP_INFLATE_BYTES });
  const free = Array.from({ length: GZIP_READ_BUFFERS }, () => Buffer.allocUnsafe(readBytes));
  let bufferFreed: (() => void) | null = null;
  const wakeFeeder = () => {
    bufferFreed?.();
    bufferFreed = null;
  };
  let compressedBytes = 0;
  const buffersFree = async (count: number) => {
    while (free.length < count && !gunzip.destroyed) await new Promise<void>((resolve) => (bufferFreed = resolve));
  };
  // Writes are bounded by the free buffers, not by gunzip's write() backpressure: with two queued,
  // gunzip starts on the next as soon as it is done with one, without waiting for this thread.
  const feed = async () => {
    for (;;) {
      await buffersFree(1);
      if (gunzip.destroyed) return;
      const buffer = free.pop()!;
      const { bytesRead } = await handle.read(buffer, 0, readBytes, null);
      if (gunzip.destroyed) return;
      if (bytesRead === 0) {
        free.push(buffer);
        // A write still queued when the input ends is inflated as the last one, and when that fails (a
        // file cut short) zlib drops its output: end only once every write has been inflated.
        await buffersFree(GZIP_READ_BUFFERS);
        gunzip.end();
        return;
      }
      compressedBytes += bytesRead;
      gunzip.write(buffer.subarray(0, bytesRead), () => {
        free.push(buffer);
        wakeFeeder();
      });
    }
  };
  const feeding = feed().catch((error: unknown) => {
    gunzip.destroy(error as Error);
  });
  try {
    yield* inflated(gunzip, () => {
      input.bytesRead = compressedBytes;
    });
  } finally {
    gunzip.destroy();
    wakeFeeder();
    await feeding;
    await handle.close();
  }
}

/** The input through its compression's command (compressed bytes counted as they are handed over). */
async function* commandChunks(compression: Compression, compressed: AsyncIterable<Buffer>, input: InputState): AsyncGenerator<Buffer> {
  let fed = 0;
  for await (const chunk of decompressedByCommand(compression, compressed, (bytes) => (fed += bytes))) {
    input.bytesRead = fed;
    yield chunk;
  }
}

function markCompressed(summary: InputSummary, compression: Compression): void {
  summary.compressed = true;
  summary.compression = compression.name;
}

/** A file's bytes, opened only when first read (a command that cannot start never reads them). */
async function* fileBytes(path: string, chunkBytes: number): AsyncGenerator<Buffer> {
  const stream = createReadStream(path, { highWaterMark: chunkBytes });
  try {
    yield* stream as AsyncIterable<Buffer>;
  } finally {
    stream.destroy();
  }
}

async function* prepend(first: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield first;
  yield* rest;
}

/**
 * Ctrl-C in a shell reaches every process of the pipeline: tcpdump, on its way out, writes the packets it
 * still buffers (all of them, at a few packets a second) and closes the pipe. So an interrupted pipe is
 * read on until it ends, for this long at most: a writer that was not interrupted (or is silent) does
 * not hold the report back longer.
 */
export const PIPE_GRACE_MS = 1000;

async function* streamChunks(stream: Readable, summary: InputSummary, options: ReadOptions, input: InputState): AsyncGenerator<Buffer> {
  let grace: NodeJS.Timeout | undefined;
  const stopSoon = () => {
    grace = setTimeout(() => stream.destroy(), PIPE_GRACE_MS);
  };
  if (options.signal?.aborted) stopSoon();
  else options.signal?.addEventListener('abort', stopSoon, { once: true });
  try {
    yield* pipeChunks(stream, summary, input);
  } finally {
    clearTimeout(grace);
    options.signal?.removeEventListener('abort', stopSoon);
  }
}

async function* pipeChunks(stream: Readable, summary: InputSummary, input: InputState): AsyncGenerator<Buffer> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: Buffer = Buffer.alloc(0);
  // A magic number is up to six bytes: a short first chunk must not hide it.
  while (first.length < COMPRESSION_MAGIC_BYTES) {
    const next = await iterator.next();
    if (next.done) break;
    first = first.length === 0 ? next.value : Buffer.concat([first, next.value]);
  }
  if (first.length === 0) return;
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => iterator };
  let compressedBytes = first.length;
  const compression = compressionOf(first);
  if (compression) markCompressed(summary, compression);
  if (compression && compression.name !== 'gzip') {
    yield* commandChunks(compression, prepend(first, rest), input);
    return;
  }
  if (compression) {
    const gunzip = createGunzip({ chunkSize: GZIP_INFLATE_BYTES });
    void pump(first, rest, gunzip, (bytes) => {
      compressedBytes += bytes;
    });
    yield* inflated(gunzip, () => {
      input.bytesRead = compressedBytes;
    });
    return;
  }
  input.bytesRead = compressedBytes;
  yield first;
  for await (const chunk of rest) {
    compressedBytes += chunk.length;
    input.bytesRead = compressedBytes;
    yield chunk;
  }
}

/**
 * gunzip's output chunk by chunk, its buffers handed back to gunzip once parsed (InflateBufferPool):
 * the consumer asks for the next chunk only when it is done with the one before.
 */
async function* inflated(gunzip: Gunzip, beforeEach: () => void): AsyncGenerator<Buffer> {
  const pool = new InflateBufferPool(gunzip);
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    beforeEach();
    yield chunk;
    pool.parsed(chunk);
  }
}

/** Feeds compressed chunks into gunzip with backpressure; errors surface on the gunzip stream. */
async function pump(head: Buffer, rest: AsyncIterable<Buffer>, gunzip: Gunzip, onRead: (bytes: number) => void): Promise<void> {
  try {
    if (!gunzip.write(head)) await onceDrained(gunzip);
    for await (const chunk of rest) {
      if (gunzip.destroyed) return;
      onRead(chunk.length);
      if (!gunzip.write(chunk)) await onceDrained(gunzip);
    }
    gunzip.end();
  } catch (error) {
    gunzip.destroy(error as Error);
  }
}


function isGzipDamage(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

function isFsError(error: unknown): error is NodeJS.ErrnoException {
  return typeof (error as { code?: unknown } | null)?.code === 'string' && typeof (error as { syscall?: unknown }).syscall === 'string';
}

function describeFsError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, not a capture file';
    default:
      return `cannot read (${e.code ?? 'error'}: ${e.message})`;
  }
}

class FirstRecordSeen extends Error {}

/** Time of the first packet, or null when the input has none (or cannot be read). */
export async function firstPacketTime(source: InputSource): Promise<CaptureTime | null> {
  let first: CaptureTime | null = null;
  // Peeking would consume a FIFO's bytes before the real read: its time stays unknown.
  if (!source.stream && !(await stat(source.path).catch(() => null))?.isFile()) return null;
  try {
    await readCapture(source, (record) => {
      first = { seconds: record.seconds, nanos: record.nanos };
      throw new FirstRecordSeen();
    }, { chunkBytes: 64 * 1024 });
  } catch (error) {
    if (!(error instanceof FirstRecordSeen)) throw error;
  }
  return first;
}
