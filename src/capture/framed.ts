import { CaptureFormatError } from './errors.js';

const INITIAL_SCRATCH_BYTES = 256 * 1024;

/**
 * Cuts a byte stream into units (a file header, a record, a block) and hands each unit over whole.
 * Units that lie inside one chunk are handed over in place; a unit split across chunks is copied into
 * a grow-only scratch buffer first. Subclasses say how long the next unit is and what to do with it.
 */
export abstract class FramedParser {
  private scratch = Buffer.alloc(INITIAL_SCRATCH_BYTES);
  private carried = 0;
  /** Stream offset of the next unit: what complete units took so far. */
  protected consumed = 0;

  /**
   * Bytes a subclass needs to see at the start of a unit to know its length. unitLength() is
   * always given at least this many bytes, or every byte left in the stream when fewer remain.
   */
  protected abstract readonly peekBytes: number;

  /** Total length of the unit at `offset`, from its first `peekBytes` bytes. Throws on an impossible length. */
  protected abstract unitLength(buf: Buffer, offset: number, unitStart: number): number;

  /** Handles one complete unit. `unitStart` is its byte offset in the stream. */
  protected abstract unit(buf: Buffer, offset: number, length: number, unitStart: number): void;

  get bytesConsumed(): number {
    return this.consumed;
  }

  /** Bytes of an unfinished unit waiting for the next chunk. */
  protected get bytesCarried(): number {
    return this.carried;
  }

  push(chunk: Buffer): void {
    let pos = this.carried > 0 ? this.completeCarried(chunk) : 0;
    if (this.carried > 0) return;
    pos = this.unitsInChunk(chunk, pos);
    if (pos < chunk.length) this.carry(chunk, pos, chunk.length);
  }

  /**
   * Hands over every whole unit of `chunk` from `pos` on and returns where the first incomplete one
   * starts. This runs once per packet: a subclass may replace it with a loop specialised to its format.
   */
  protected unitsInChunk(chunk: Buffer, pos: number): number {
    // peekBytes changes once the file header is read (24 -> 16 for pcap): ask again for every unit,
    // or a short record right after the header would wait for a chunk that never comes.
    while (chunk.length - pos >= this.peekBytes) {
      const length = this.unitLength(chunk, pos, this.consumed);
      if (length > chunk.length - pos) break;
      this.unit(chunk, pos, length, this.consumed);
      this.consumed += length;
      pos += length;
    }
    return pos;
  }

  /** Called at end of input: describes an unfinished unit, or returns null when the stream ended cleanly. */
  protected describeLeftover(): { expected: number; present: number } | null {
    if (this.carried === 0) return null;
    const present = this.carried;
    const expected = present >= this.peekBytes ? this.unitLength(this.scratch, 0, this.consumed) : -1;
    return { expected, present };
  }

  private completeCarried(chunk: Buffer): number {
    let used = 0;
    if (this.carried < this.peekBytes) {
      const take = Math.min(this.peekBytes - this.carried, chunk.length);
      this.carry(chunk, 0, take);
      used = take;
      if (this.carried < this.peekBytes) return used;
    }
    const length = this.unitLength(this.scratch, 0, this.consumed);
    const take = Math.min(length - this.carried, chunk.length - used);
    this.carry(chunk, used, used + take);
    used += take;
    if (this.carried === length) {
      this.carried = 0;
      this.unit(this.scratch, 0, length, this.consumed);
      this.consumed += length;
    }
    return used;
  }

  private carry(chunk: Buffer, start: number, end: number): void {
    const needed = this.carried + (end - start);
    if (needed > this.scratch.length) {
      const grown = Buffer.alloc(Math.max(needed, this.scratch.length * 2));
      this.scratch.copy(grown, 0, 0, this.carried);
      this.scratch = grown;
    }
    chunk.copy(this.scratch, this.carried, start, end);
    this.carried = needed;
  }
}

export function formatError(what: string, byteOffset: number): CaptureFormatError {
  return new CaptureFormatError(what, byteOffset);
}
