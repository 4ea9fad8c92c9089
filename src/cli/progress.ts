import type { Writable } from 'node:stream';

const REDRAW_EVERY_MS = 200;
const BAR_WIDTH = 24;

function megabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * One self-overwriting line on stderr: bytes read of the total, packets per second, time left and the
 * current file. Only for a terminal: piped stderr gets nothing.
 */
export class ProgressLine {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;
  private finishedInputsBytes = 0;
  private currentInput = -1;
  private currentBytes = 0;

  constructor(
    private readonly stream: Writable,
    private readonly totalBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  update(progress: { input: number; path: string; bytesRead: number; packets: number }): void {
    if (progress.input !== this.currentInput) {
      this.finishedInputsBytes += this.currentBytes;
      this.currentInput = progress.input;
    }
    this.currentBytes = progress.bytesRead;
    const time = this.now();
    if (time - this.lastDraw < REDRAW_EVERY_MS) return;
    this.lastDraw = time;
    this.draw(progress.path, progress.packets, time);
  }

  finish(): void {
    if (this.drawn) this.stream.write('\r\u001b[K');
  }

  private draw(path: string, packets: number, time: number): void {
    const read = this.finishedInputsBytes + this.currentBytes;
    const share = this.totalBytes > 0 ? Math.min(1, read / this.totalBytes) : 0;
    const elapsed = Math.max(0.001, (time - this.started) / 1000);
    const filled = Math.round(share * BAR_WIDTH);
    const eta = share > 0.01 ? `${Math.max(0, Math.round(elapsed / share - elapsed))} s left` : '';
    const rate = `${(packets / elapsed / 1e6).toFixed(2)} M pkt/s`;
    const name = path.length > 40 ? `…${path.slice(-39)}` : path;
    const line = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ${megabytes(read)}/${megabytes(this.totalBytes)} · ${rate} · ${eta} · ${name}`;
    this.stream.write(`\r\u001b[K${line}`);
    this.drawn = true;
  }
}
