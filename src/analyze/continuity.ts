import { basename } from 'node:path';
import type { CaptureTime, InputSummary } from '../capture/reader.js';
import { COMPRESSED_SUFFIX } from '../capture/compression.js';

/** Inputs read as one capture must follow each other in time; these say when they do not. */
export interface Discontinuity {
  kind: 'gap' | 'overlap';
  /** Index (in reading order) of the input after the boundary. */
  input: number;
  seconds: number;
  message: string;
}

/** A gap shorter than this is ordinary silence on the wire, however sparse the traffic. */
const MIN_GAP_SECONDS = 1;
/** Silence this many times the previous file's mean packet interval is a missing file, not a lull. */
const GAP_INTERVALS = 50;

function seconds(t: CaptureTime): number {
  return t.seconds + t.nanos / 1e9;
}

/**
 * Compares the end of one input with the start of the next. A gap means connections may have changed
 * state unseen; an overlap means the files were not consecutive pieces of one capture.
 */
export function checkBoundary(previous: InputSummary, nextFirst: CaptureTime | null, nextPath: string, nextIndex: number): Discontinuity | null {
  if (!previous.firstPacketTime || !previous.lastPacketTime || !nextFirst) return null;
  const end = seconds(previous.lastPacketTime);
  const delta = seconds(nextFirst) - end;
  if (delta < 0) {
    return {
      kind: 'overlap', input: nextIndex, seconds: -delta,
      message:
        `${nextPath} starts ${(-delta).toFixed(3)} s before ${previous.path} ends: the inputs overlap in time, so they are not consecutive pieces ` +
        `of one capture but captures made side by side (each direction on its own interface, two capture points, other hosts?). They are read ` +
        `one after the other, not merged by time: the verdicts hold, times across them may not (mergecap -w merged.pcap ... merges them by time); ` +
        `captures of other hosts are better analysed with --separate`,
    };
  }
  const meanInterval = previous.packets > 1 ? (end - seconds(previous.firstPacketTime)) / (previous.packets - 1) : 0;
  const threshold = Math.max(MIN_GAP_SECONDS, GAP_INTERVALS * meanInterval);
  if (delta <= threshold) return null;
  return {
    kind: 'gap', input: nextIndex, seconds: delta,
    message: `${delta.toFixed(3)} s gap between ${previous.path} and ${nextPath} (a missing file?): connections open across it may have changed state unseen`,
  };
}

/**
 * tcpdump -C names rotated files NAME, NAME1, NAME2, ...: a number missing in the middle of the
 * given set is a file missing from the archive.
 */
export function missingRotations(paths: readonly string[]): string[] {
  const groups = new Map<string, Set<number>>();
  for (const path of paths) {
    const name = basename(path).replace(COMPRESSED_SUFFIX, '');
    const match = /^(.*?)(\d+)$/.exec(name);
    const stem = match ? match[1]! : name;
    if (!groups.has(stem)) groups.set(stem, new Set());
    groups.get(stem)!.add(match ? Number(match[2]) : 0);
  }
  const problems: string[] = [];
  for (const [stem, numbers] of groups) {
    const sorted = [...numbers].sort((x, y) => x - y);
    // Only tcpdump -C numbering (NAME, NAME1, NAME2 ...): large numbers are dates or times (-G).
    if (numbers.size < 2 || sorted[0]! > 1) continue;
    const missing: number[] = [];
    for (let n = sorted[0]!; n < sorted[sorted.length - 1]! && missing.length < 10; n++) if (!numbers.has(n)) missing.push(n);
    if (missing.length > 0) problems.push(`rotated set ${stem}* lacks ${missing.map((n) => (n === 0 ? stem : `${stem}${n}`)).join(', ')}`);
  }
  return problems;
}
