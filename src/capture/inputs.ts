import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { looksLikeCapture } from './reader.js';
import { COMPRESSION_MAGIC_BYTES, compressionOf } from './compression.js';

/** Most files one directory argument may expand to: a guard against pointing at `/`. */
const MAX_FILES_PER_DIRECTORY = 100_000;

export interface ExpandedInputs {
  /** Files to read, and '-' for stdin. */
  paths: string[];
  /** Arguments that named nothing readable: "path: what". */
  problems: string[];
}

/** Characters that make an argument that names no file a pattern. */
const GLOB_CHARS = /[*?[]/;

/**
 * Turns arguments into capture files: files as given, directories recursed (keeping only files whose
 * first bytes are a capture, plain or compressed, whatever their names), '-' for stdin, and patterns
 * (`*`, `?`, `[...]`, `**`) expanded here: a quoted pattern gets past the shell's limit on the length of
 * a command line, which a rotated archive of thousands of files reaches.
 */
export async function expandInputs(args: readonly string[]): Promise<ExpandedInputs> {
  const result: ExpandedInputs = { paths: [], problems: [] };
  for (const arg of args) {
    if (arg === '-') {
      result.paths.push(arg);
      continue;
    }
    const info = await stat(arg).catch(() => null);
    if (!info && GLOB_CHARS.test(arg)) {
      const matches = await expandPattern(arg);
      if (matches.length === 0) result.problems.push(`${arg}: no file matches the pattern`);
      for (const match of matches) await addPath(match, result);
    } else if (!info) {
      result.problems.push(`${arg}: no such file or directory`);
    } else {
      await addPath(arg, result);
    }
  }
  return result;
}

async function addPath(path: string, result: ExpandedInputs): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (info?.isDirectory()) {
    const before = result.paths.length;
    await walk(path, result, { count: 0 });
    if (result.paths.length === before) result.problems.push(`${path}: directory holds no pcap or pcapng files`);
  } else {
    result.paths.push(path);
  }
}

/**
 * The paths a shell-style pattern names, sorted: `*` and `?` within a name (not matching a leading
 * dot, as in a shell), `[abc]`/`[a-z]`/`[!a]` classes, and `**` as a whole segment for any depth of
 * directories. At most MAX_FILES_PER_DIRECTORY paths.
 */
export async function expandPattern(pattern: string): Promise<string[]> {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((segment) => segment !== '' && segment !== '.');
  let bases = [absolute ? '/' : ''];
  for (const [index, segment] of segments.entries()) {
    const last = index === segments.length - 1;
    const next: string[] = [];
    if (segment === '**') {
      for (const base of bases) await directoriesBelow(base, next);
    } else if (!GLOB_CHARS.test(segment)) {
      for (const base of bases) next.push(joinPath(base, segment));
    } else {
      const matcher = segmentMatcher(segment);
      for (const base of bases) {
        const entries = await readdir(base || '.', { withFileTypes: true }).catch(() => []);
        for (const entry of entries) {
          if (matcher.test(entry.name) && (last || entry.isDirectory())) next.push(joinPath(base, entry.name));
        }
      }
    }
    bases = next.slice(0, MAX_FILES_PER_DIRECTORY);
  }
  const found: string[] = [];
  for (const path of new Set(bases)) if (path && (await stat(path).catch(() => null))) found.push(path);
  return found.sort(compareNames);
}

/**
 * Name order with numbers compared as numbers: tcpdump -C's dump, dump1, dump2 ... dump10 (and their .gz
 * copies) list in the order they were written, as people read them, not dump1, dump10, dump2.
 */
export function compareNames(x: string, y: string): number {
  const xs = x.match(NAME_PARTS) ?? [];
  const ys = y.match(NAME_PARTS) ?? [];
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    const a = xs[i]!;
    const b = ys[i]!;
    if (a === b) continue;
    const numeric = DIGITS.test(a) && DIGITS.test(b);
    if (numeric && a.length !== b.length) {
      // Leading zeros aside, the longer run of digits is the larger number.
      const [na, nb] = [a.replace(/^0+/, ''), b.replace(/^0+/, '')];
      if (na.length !== nb.length) return na.length - nb.length;
      if (na !== nb) return na < nb ? -1 : 1;
      return a.length - b.length;
    }
    return a < b ? -1 : 1;
  }
  return xs.length - ys.length;
}
const NAME_PARTS = /\d+|\D+/g;
const DIGITS = /^\d/;

/** `base` itself and every directory below it (for `**`). */
async function directoriesBelow(base: string, out: string[]): Promise<void> {
  out.push(base);
  const entries = await readdir(base || '.', { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (out.length >= MAX_FILES_PER_DIRECTORY) return;
    if (entry.isDirectory() && !entry.name.startsWith('.')) await directoriesBelow(joinPath(base, entry.name), out);
  }
}

function joinPath(base: string, name: string): string {
  return base === '' ? name : join(base, name);
}

function segmentMatcher(segment: string): RegExp {
  let source = segment.startsWith('.') ? '' : '(?!\\.)';
  for (let i = 0; i < segment.length; i++) {
    const char = segment[i]!;
    const classEnd = char === '[' ? segment.indexOf(']', i + 2) : -1;
    if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else if (classEnd > 0) {
      const body = segment.slice(i + 1, classEnd);
      const negated = body.startsWith('!') || body.startsWith('^');
      source += `[${negated ? '^' : ''}${(negated ? body.slice(1) : body).replace(/[\\\]^]/g, '\\$&')}]`;
      i = classEnd;
    } else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

async function walk(dir: string, result: ExpandedInputs, seen: { count: number }): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => null);
  if (!entries) {
    result.problems.push(`${dir}: cannot list directory`);
    return;
  }
  entries.sort((x, y) => compareNames(x.name, y.name));
  for (const entry of entries) {
    if (seen.count >= MAX_FILES_PER_DIRECTORY) return;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, result, seen);
    else if (entry.isFile() && (await startsLikeCapture(path))) {
      seen.count++;
      result.paths.push(path);
    }
  }
}

async function startsLikeCapture(path: string): Promise<boolean> {
  const head = await fileHead(path, COMPRESSION_MAGIC_BYTES);
  return head !== null && looksLikeCapture(head);
}

/** True when the file starts with the magic number of a compression closewait reads (gzip, xz, ...). */
export async function isCompressedFile(path: string): Promise<boolean> {
  const head = await fileHead(path, COMPRESSION_MAGIC_BYTES);
  return head !== null && compressionOf(head) !== null;
}

/** The first `bytes` bytes of a file (fewer when it is shorter), or null when it cannot be read. */
async function fileHead(path: string, bytes: number): Promise<Buffer | null> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return null;
  try {
    const head = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(head, 0, bytes, 0);
    return head.subarray(0, bytesRead);
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}
