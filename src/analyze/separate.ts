import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { InputSource } from '../capture/reader.js';
import { isCompressedFile } from '../capture/inputs.js';
import { SCHEMA_VERSION, type Report } from './model.js';
import { analyze, type AnalyzeOptions, type InputProgress } from './run.js';
import { VERSION } from '../version.js';
import { formatNumber } from '../numbers.js';
import { missingRotations } from './continuity.js';

/** One line of the archive summary: which input has stuck connections, and where. */
export interface ArchiveEntry {
  input: number;
  path: string;
  readable: boolean;
  packets: number;
  connections: number;
  closeWait: number;
  /** Servers with stuck connections in this input, "ip:port" (IPv6 in brackets). */
  servers: string[];
}

/** `--separate`: each input analysed as its own capture, with a summary across the archive. */
export interface ArchiveReport {
  schemaVersion: typeof SCHEMA_VERSION;
  kind: 'archive';
  tool: { name: 'closewait'; version: string };
  command: string | null;
  summary: { inputs: number; readableInputs: number; inputsWithCloseWait: number; packets: number; connections: number; closeWait: number };
  archive: ArchiveEntry[];
  reports: Report[];
  /** About the archive as a whole (an interrupted run); each input's own warnings are in its report. */
  warnings: string[];
}

export interface SeparateOptions extends Omit<AnalyzeOptions, 'onProgress'> {
  /**
   * Worker threads; 1 analyses in this thread. Default: the machine's cores, but no more than one per
   * GiB of work (see defaultJobs).
   */
  jobs?: number;
  /** As each input is read (`input` is its position in `inputs`), from whichever thread reads it. */
  onProgress?: (progress: InputProgress) => void;
  onInputDone?: (done: number, total: number, path: string, input: number) => void;
}

/** Options a worker can receive (functions and signals do not cross threads). */
type WorkerOptions = Omit<AnalyzeOptions, 'signal' | 'onProgress'>;

export async function analyzeSeparately(inputs: readonly (string | InputSource)[], options: SeparateOptions = {}): Promise<ArchiveReport> {
  const sources = inputs.map((input) => (typeof input === 'string' ? { path: input } : input));
  const { jobs: requestedJobs, onInputDone, onProgress, signal, ...rest } = options;
  const workerOptions: WorkerOptions = { ...rest, command: undefined };
  const reports: Report[] = new Array(sources.length);
  const workerUrl = new URL('./separate-worker.js', import.meta.url);
  // Under a TypeScript test runner the compiled worker does not exist: analyse in this thread then.
  const canUseWorkers = existsSync(fileURLToPath(workerUrl));
  const jobs = Math.max(1, Math.min(requestedJobs ?? (await defaultJobs(sources)), sources.length));
  let next = 0;
  let done = 0;

  const lane = async (worker: Worker | null) => {
    for (;;) {
      const index = next++;
      if (index >= sources.length || signal?.aborted) return;
      const source = sources[index]!;
      const progress = onProgress && ((read: { bytesRead: number; packets: number }) => onProgress({ input: index, path: source.path, bytesRead: read.bytesRead, packets: read.packets }));
      const report =
        worker && !source.stream ? await analyzeInWorker(worker, source.path, workerOptions, progress) : await analyze([source], { ...workerOptions, signal, onProgress: progress });
      // No inputs: stopped (Ctrl-C) before it began reading its one, so it was not read, rather than unreadable.
      if (report.inputs.length > 0) reports[index] = report;
      onInputDone?.(++done, sources.length, source.path, index);
    }
  };

  const workers = canUseWorkers && jobs > 1 ? Array.from({ length: jobs }, () => new Worker(workerUrl)) : [];
  const stopWorkers = () => workers.forEach((worker) => worker.postMessage({ type: 'stop' }));
  signal?.addEventListener('abort', stopWorkers, { once: true });
  try {
    await Promise.all(workers.length > 0 ? workers.map((worker) => lane(worker)) : [lane(null)]);
  } finally {
    signal?.removeEventListener('abort', stopWorkers);
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
  const finished = reports.filter((report): report is Report => report !== undefined);
  const unread = sources.length - finished.length;
  const warnings = unread > 0 ? [`interrupted: ${formatNumber(unread)} of ${formatNumber(sources.length)} inputs not read; the archive covers only the ${formatNumber(finished.length)} read before the stop`] : [];
  // Each input stands alone here, but a file missing from a rotated set is still a hole in the archive.
  warnings.push(...missingRotations(sources.map((source) => source.path)));
  return archiveReport(finished, options.command ?? null, warnings);
}

/** Work one worker should have before starting it pays: measured on 2 cores, below. */
const WORK_PER_JOB_BYTES = 2 ** 30;
/** A compressed byte costs about three plain ones (inflating 1 GiB of gzip takes ~3x analysing it). */
const COMPRESSED_WORK_FACTOR = 3;

/**
 * Each worker thread loads the analyzer and warms up its own JIT (~150 ms) while one thread already
 * keeps 1.4 cores busy; on 2 cores two workers lost to one thread below a GiB or two of input (4 x 128 MiB:
 * 0.62 vs 0.51 s; 4 x 64 MiB gzip'd: 0.88 vs 0.84 s) and won above (4 x 1 GiB: 1.57 vs 1.85 s; 2 x 1 GiB
 * gzip'd: 3.8 vs 5.3 s). So by default: the machine's cores, at most one per GiB of work.
 */
async function defaultJobs(sources: readonly InputSource[]): Promise<number> {
  let work = 0;
  for (const source of sources) {
    if (source.stream) continue;
    const info = await stat(source.path).catch(() => null);
    if (info?.isFile()) work += info.size * ((await isCompressedFile(source.path)) ? COMPRESSED_WORK_FACTOR : 1);
  }
  return Math.max(1, Math.min(availableParallelism(), Math.floor(work / WORK_PER_JOB_BYTES)));
}

type WorkerMessage = { type: 'progress'; bytesRead: number; packets: number } | { type: 'report'; report: Report } | { type: 'error'; message: string };

function analyzeInWorker(worker: Worker, path: string, options: WorkerOptions, onProgress?: (read: { bytesRead: number; packets: number }) => void): Promise<Report> {
  return new Promise((resolve, reject) => {
    const settle = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    const onMessage = (message: WorkerMessage) => {
      if (message.type === 'progress') {
        onProgress?.(message);
        return;
      }
      settle();
      if (message.type === 'report') resolve(message.report);
      else reject(new Error(message.message));
    };
    const onError = (error: Error) => {
      settle();
      reject(error);
    };
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.postMessage({ type: 'analyze', path, options, progress: onProgress !== undefined });
  });
}

export function archiveReport(reports: Report[], command: string | null, warnings: string[] = []): ArchiveReport {
  const archive: ArchiveEntry[] = reports.map((report, input) => ({
    input,
    path: report.inputs[0]?.path ?? '?',
    readable: report.inputs.some((i) => !i.error),
    packets: report.summary.packets,
    connections: report.summary.connections,
    closeWait: report.summary.closeWait,
    servers: report.servers.filter((s) => s.closeWait > 0).map((s) => (s.ip.includes(':') ? `[${s.ip}]:${s.port}` : `${s.ip}:${s.port}`)),
  }));
  const sum = (pick: (entry: ArchiveEntry) => number) => archive.reduce((total, entry) => total + pick(entry), 0);
  return {
    schemaVersion: SCHEMA_VERSION,
    kind: 'archive',
    tool: { name: 'closewait', version: VERSION },
    command,
    summary: {
      inputs: archive.length,
      readableInputs: archive.filter((e) => e.readable).length,
      inputsWithCloseWait: archive.filter((e) => e.closeWait > 0).length,
      packets: sum((e) => e.packets),
      connections: sum((e) => e.connections),
      closeWait: sum((e) => e.closeWait),
    },
    archive,
    reports,
    warnings,
  };
}
