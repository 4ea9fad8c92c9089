import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { looksLikeCapture } from './reader.js';

/** Most files one directory argument may expand to: a guard against pointing at `/`. */
const MAX_FILES_PER_DIRECTORY = 100_000;

export interface ExpandedInputs {
  /** Files to read, and '-' for stdin. */
  paths: string[];
  /** Arguments that named nothing readable: "path: what". */
  problems: string[];
}

/**
 * Turns arguments into capture files: files as given, directories recursed (keeping only files whose
 * first bytes are a capture, plain or gzip'd, whatever their names), '-' for stdin.
 */
export async function expandInputs(args: readonly string[]): Promise<ExpandedInputs> {
  const result: ExpandedInputs = { paths: [], problems: [] };
  for (const arg of args) {
    if (arg === '-') {
      result.paths.push(arg);
      continue;
    }
    const info = await stat(arg).catch(() => null);
    if (!info) {
      result.problems.push(`${arg}: no such file or directory`);
    } else if (info.isDirectory()) {
      const before = result.paths.length;
      await walk(arg, result, { count: 0 });
      if (result.paths.length === before) result.problems.push(`${arg}: directory holds no pcap or pcapng files`);
    } else {
      result.paths.push(arg);
    }
  }
  return result;
}

async function walk(dir: string, result: ExpandedInputs, seen: { count: number }): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => null);
  if (!entries) {
    result.problems.push(`${dir}: cannot list directory`);
    return;
  }
  entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
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
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return false;
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return looksLikeCapture(head.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}
