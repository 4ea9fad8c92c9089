import { formatNumber } from '../numbers.js';

/** Small helpers shared by the human-facing renderers. */

export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${formatNumber(count)} ${count === 1 ? singular : pluralForm}`;
}

/** 0.5 s, 42 s, 3 min 20 s, 2 h 5 min, 3 d 4 h. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 1) return `${(Math.round(seconds * 1000) / 1000).toString()} s`;
  if (seconds < 60) return `${(Math.round(seconds * 10) / 10).toString()} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function endpoint(ref: { ip: string; port: number }): string {
  return ref.ip.includes(':') ? `[${ref.ip}]:${ref.port}` : `${ref.ip}:${ref.port}`;
}

/** Pads cells to column widths; the first column left-aligned, numbers right-aligned. */
export function table(header: string[], rows: string[][], visibleLength: (s: string) => number = (s) => s.length): string[] {
  // A reduce, not Math.max(...rows): with --all the rows can outnumber what a call takes as arguments.
  const widths = header.map((h, i) => rows.reduce((widest, r) => Math.max(widest, visibleLength(r[i] ?? '')), visibleLength(h)));
  const pad = (cell: string, i: number) => {
    const fill = ' '.repeat(widths[i]! - visibleLength(cell));
    return /^[\d.,%\s-]+$/.test(cell) && i > 0 ? fill + cell : cell + fill;
  };
  return [header, ...rows].map((row) => row.map(pad).join('  ').trimEnd());
}

/** Shortest readable form of a capture time for a person: the clock time with the capture's fraction. */
export function clock(rfc3339: string | null): string {
  if (!rfc3339) return '-';
  return rfc3339.replace('T', ' ').replace('Z', ' UTC');
}

/** Inputs named one by one with the same error, at most; past that, the first two and a count. */
const SAME_ERROR_LISTED = 3;

/**
 * "path: error" for each unreadable input, but an error many inputs share (a missing xz in a directory
 * of .xz files, a directory of other compressed logs) is said once for all but the first two.
 */
export function inputErrorLines(inputs: readonly { path: string; error: string | null }[]): string[] {
  const pathsByError = new Map<string, string[]>();
  for (const input of inputs) {
    if (!input.error) continue;
    const paths = pathsByError.get(input.error) ?? [];
    paths.push(input.path);
    pathsByError.set(input.error, paths);
  }
  const lines: string[] = [];
  for (const [error, paths] of pathsByError) {
    const listed = paths.length > SAME_ERROR_LISTED ? paths.slice(0, 2) : paths;
    for (const path of listed) lines.push(`${path}: ${error}`);
    if (listed.length < paths.length) lines.push(`and ${plural(paths.length - listed.length, 'more input')}: ${error}`);
  }
  return lines;
}
