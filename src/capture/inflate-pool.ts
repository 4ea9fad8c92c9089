import type { Gunzip } from 'node:zlib';

/**
 * Node's gunzip inflates into an output buffer of `chunkSize` bytes and, each time one is full, takes a
 * new one (`Buffer.allocUnsafe`), leaving the full ones to the garbage collector. Over a GiB that is a
 * thousand dead 1 MiB buffers, freed only when V8 next collects: 30 to 40 MB more peak RSS for a .gz than
 * for the same capture uncompressed (measured on the real-kernel scale captures: 141-151 MB against
 * 106-111 MB). This hands gunzip full buffers back once every chunk cut from them has been parsed.
 *
 * It rests on one internal of node:zlib, the `_outBuffer` field that holds the current output buffer. If
 * a Node version stops using that field, the accessor is never called and gunzip allocates as before:
 * slower to free, never wrong.
 */
export class InflateBufferPool {
  private current: Buffer;
  /** Full buffers whose chunks are all parsed: ready for gunzip again. */
  private readonly free: Buffer[] = [];
  /** Full buffers with chunks still unparsed, and how many of their bytes have been parsed. */
  private readonly retired = new Map<ArrayBufferLike, { buffer: Buffer; parsed: number }>();
  /** Bytes parsed of the current buffer, carried over when it is retired. */
  private parsedOfCurrent = 0;
  /** Buffers gunzip allocated that this pool kept (the rest it reused). */
  allocated = 1;

  constructor(gunzip: Gunzip) {
    const internal = gunzip as unknown as { _outBuffer?: Buffer };
    if (!Buffer.isBuffer(internal._outBuffer)) {
      this.current = Buffer.alloc(0);
      return;
    }
    this.current = internal._outBuffer;
    Object.defineProperty(gunzip, '_outBuffer', {
      configurable: true,
      enumerable: true,
      get: () => this.current,
      set: (fresh: Buffer) => {
        this.current = this.replacement(fresh);
      },
    });
  }

  /** Buffers kept by the pool in all: its peak, since none are dropped. */
  get size(): number {
    return this.allocated;
  }

  /** Call once `chunk`, a piece of gunzip's output, has been parsed and is no longer referenced. */
  parsed(chunk: Buffer): void {
    if (chunk.buffer === this.current.buffer) {
      this.parsedOfCurrent += chunk.length;
      return;
    }
    const entry = this.retired.get(chunk.buffer);
    if (!entry) return;
    entry.parsed += chunk.length;
    if (entry.parsed >= entry.buffer.length) {
      this.retired.delete(chunk.buffer);
      this.free.push(entry.buffer);
    }
  }

  /**
   * gunzip replaces its output buffer only when the current one is full, so the one leaving is whole and
   * can go back to gunzip once all its bytes are parsed.
   */
  private replacement(fresh: Buffer): Buffer {
    const leaving = this.current;
    if (this.parsedOfCurrent >= leaving.length) this.free.push(leaving);
    else this.retired.set(leaving.buffer, { buffer: leaving, parsed: this.parsedOfCurrent });
    this.parsedOfCurrent = 0;
    const reused = this.free.length > 0 && this.free[this.free.length - 1]!.length === fresh.length ? this.free.pop()! : undefined;
    if (reused) return reused;
    this.allocated++;
    return fresh;
  }
}
