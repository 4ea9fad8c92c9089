import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { Compression } from './compression.js';
import { DecompressorError } from './errors.js';
import { onceDrained } from './drain.js';

/** Most of a failing command's stderr kept: its first line is what the user sees. */
const STDERR_KEPT = 4096;

/**
 * The bytes of `compressed`, decompressed by the compression's own command (`xz -dc`, `zstd -dc`, ...)
 * in a child process: fed through its stdin with backpressure, read from its stdout chunk by chunk, so
 * memory stays a few pipe buffers whatever the size. `onFed` counts the compressed bytes handed over
 * (the progress bar's position). The child is ended, by its PID, when the reader stops early (a
 * capture that ends in damage, Ctrl-C, a peek at the first packet). A missing command, or one that
 * fails, is a DecompressorError saying what to install or what went wrong. `compressed` is not read at
 * all then: a lazy source (a generator that opens its file when first read) holds no descriptor.
 */
export async function* decompressedByCommand(compression: Compression, compressed: AsyncIterable<Buffer>, onFed: (bytes: number) => void): AsyncGenerator<Buffer> {
  const child = spawn(compression.command, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const spawnError = new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
  if (child.pid === undefined) {
    const error = await spawnError;
    const why = error.code === 'ENOENT' ? `the ${compression.command} command is not installed (apt-get install ${compression.package})` : `cannot start ${compression.command} (${error.message})`;
    throw new DecompressorError(compression.command, `${compression.name}-compressed: ${why}; or decompress it first: ${compression.command} -dc FILE | closewait analyze -`, false);
  }
  let stderr = '';
  child.stderr.on('data', (text: Buffer) => {
    if (stderr.length < STDERR_KEPT) stderr += text.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  // EPIPE when the command exits before reading everything (damaged input, or we stopped it).
  child.stdin.on('error', () => undefined);
  const feeding = feed(compressed, child.stdin, onFed);
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    const code = await exited;
    finished = true;
    if (code !== 0) throw new DecompressorError(compression.command, firstLine(stderr) ?? `exited with status ${code ?? 'unknown'}`, true);
  } finally {
    if (!finished && child.exitCode === null && child.signalCode === null) child.kill();
    child.stdin.destroy();
    await feeding;
  }
}

async function feed(compressed: AsyncIterable<Buffer>, stdin: Writable, onFed: (bytes: number) => void): Promise<void> {
  try {
    for await (const chunk of compressed) {
      if (stdin.destroyed) return;
      onFed(chunk.length);
      if (!stdin.write(chunk)) await onceDrained(stdin);
    }
    stdin.end();
  } catch {
    // A read error of the input: the command sees its input end short and says so.
    stdin.end();
  }
}

/** The command's first line of complaint, without its "xz: (stdin): " or "zstd: /*stdin*\ : " prefix. */
export function firstLine(stderr: string): string | null {
  const line = stderr.split('\n').find((l) => l.trim() !== '');
  if (!line) return null;
  return line.replace(/^[\w.-]+:\s*/, '').replace(/^(\(stdin\)|\/\*stdin\*\\|stdin)\s*:\s*/i, '').replace(/[;:.\s]+$/, '').trim();
}
