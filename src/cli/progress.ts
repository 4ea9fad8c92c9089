import type { Writable } from 'node:stream';
import type { InputProgress } from '../analyze/run.js';

const REDRAW_EVERY_MS = 200;
const BAR_WIDTH = 20;
/** Characters of the file name kept before the bar is dropped to make room. */
const MIN_PATH_ROOM = 24;
/** Below this share read, an estimate of the time left is mostly start-up noise. */
const MIN_SHARE_FOR_ETA = 0.01;
const DEFAULT_COLUMNS = 80;


function megabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function duration(seconds: number): string {
  if (seconds < 1) return '< 1 s';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * One self-overwriting line on stderr: bytes read of the total, packets per second, time left and the
 * file being read. For a terminal only: the caller gives piped stderr none. A job is one analysis: one
 * capture read input after input is one job; --separate runs one per input, several at once in workers.
 * Bytes are kept per input, packets per job, and the line names the file updated last and how many
 * others are being read.
 */
export class ProgressLine {
  private readonly started: number;
  private lastDraw: number;
  private drawn = false;
  private readonly bytesByInput = new Map<number, number>();
  private readonly packetsByJob = new Map<number, number>();
  /** Jobs reading now. */
  private readonly running = new Set<number>();

  constructor(
    /** columns: the terminal's width; 0 or missing when it does not say (a pty without a size). */
    private readonly stream: Writable & { columns?: number },
    /** Bytes of all inputs (compressed size for gzip'd ones, as bytesRead counts); 0 when unknown (stdin). */
    private readonly totalBytes: number,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    // Nothing for the first moment: a run that short needs no progress line.
    this.lastDraw = this.started;
  }

  update(progress: InputProgress, job = 0): void {
    this.bytesByInput.set(progress.input, progress.bytesRead);
    this.packetsByJob.set(job, progress.packets);
    this.running.add(job);
    const time = this.now();
    if (time - this.lastDraw < REDRAW_EVERY_MS) return;
    this.lastDraw = time;
    this.draw(progress.path, time);
  }

  jobDone(job: number): void {
    this.running.delete(job);
  }

  finish(): void {
    if (this.drawn) this.stream.write('\r\u001b[K');
    this.drawn = false;
  }

  private draw(path: string, time: number): void {
    let read = 0;
    for (const bytes of this.bytesByInput.values()) read += bytes;
    let packets = 0;
    for (const count of this.packetsByJob.values()) packets += count;
    const elapsed = Math.max(0.001, (time - this.started) / 1000);
    const rate = `${(packets / elapsed / 1e6).toFixed(2)} M pkt/s`;
    const where = this.running.size > 1 ? `${path} (+${this.running.size - 1} more)` : path;
    const width = (this.stream.columns || DEFAULT_COLUMNS) - 1;
    let line: string;
    if (this.totalBytes > 0) {
      const share = Math.min(1, read / this.totalBytes);
      const filled = Math.round(share * BAR_WIDTH);
      const left = share >= MIN_SHARE_FOR_ETA ? `${duration(elapsed / share - elapsed)} left` : 'estimating';
      const figures = `${(share * 100).toFixed(0).padStart(3)}% · ${megabytes(read)} of ${megabytes(this.totalBytes)} · ${rate} · ${left} · `;
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] `;
      // The file name matters more than the bar: on a narrow terminal the bar goes first.
      line = bar.length + figures.length + Math.min(where.length, MIN_PATH_ROOM) <= width ? fit(bar + figures, where, width) : fit(figures, where, width);
    } else {
      // A pipe: no size to measure against, so no bar and no time left; what was read, and for how long.
      line = fit(`${megabytes(read)} · ${rate} · ${duration(elapsed)} · `, where, width);
    }
    this.stream.write(`\r\u001b[K${line}`);
    this.drawn = true;
  }
}

/** The line cut to the terminal's width, from the path's start: a wrapped line would not be overwritten. */
function fit(head: string, path: string, width: number): string {
  const room = width - head.length;
  if (room >= path.length) return head + path;
  if (room >= 8) return `${head}…${path.slice(-(room - 1))}`;
  return (head + path).slice(0, Math.max(0, width));
}
