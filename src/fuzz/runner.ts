import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { checkFuzzInput, generateInput } from './campaign.js';
import { describeThrown } from './harness.js';
import { DEFAULT_SEED_DIRS, loadPool, type SeedPool } from './pool.js';
import type { WorkerReply, WorkerSetup } from './worker.js';

export interface FuzzOptions {
  seed: number;
  /** Inputs to run (indexes first..first+count-1); Infinity to run until the time limit. */
  count: number;
  /** First input index: with count 1, rebuilds and checks one input of a run on its own. */
  first?: number;
  timeLimitSeconds?: number;
  /** An input still running after this long is a hang. */
  inputTimeoutMs?: number;
  /** Resident memory above this after an input is a memory failure. */
  maxRssBytes?: number;
  seedPaths?: string[];
  /** Where failing inputs are written (with a .txt saying what broke and how to rebuild it). */
  outDir?: string;
  jobs?: number;
  /**
   * Check inputs in this thread instead of worker threads: what a TypeScript test runner can do.
   * A hang then cannot be stopped, only measured after the fact.
   */
  inThread?: boolean;
  onProgress?: (summary: FuzzSummary) => void;
}

export interface Failure {
  index: number;
  kind: 'crash' | 'lie' | 'hang' | 'memory';
  problems: string[];
  steps: string[];
  file: string | null;
}

export interface FuzzSummary {
  seed: number;
  pool: string;
  seedFiles: number;
  inputs: number;
  firstIndex: number;
  reports: number;
  errors: number;
  crashes: number;
  lies: number;
  hangs: number;
  memory: number;
  oracleChecks: number;
  seconds: number;
  inputsPerSecond: number;
  slowestMs: number;
  slowestIndex: number;
  peakRssMb: number;
  peakHeapMb: number;
  inputTimeoutMs: number;
  maxRssMb: number;
  failures: Failure[];
}

const DEFAULT_INPUT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_RSS = 1024 * 1024 * 1024;
/** Heap one worker may grow to: an input that makes the analyzer allocate without bound fails here, not the machine. */
const WORKER_HEAP_MB = 512;

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const seedPaths = options.seedPaths ?? DEFAULT_SEED_DIRS;
  const pool = loadPool(seedPaths);
  const inputTimeoutMs = options.inputTimeoutMs ?? DEFAULT_INPUT_TIMEOUT_MS;
  const maxRss = options.maxRssBytes ?? DEFAULT_MAX_RSS;
  const first = options.first ?? 0;
  const end = first + options.count;
  const deadline = options.timeLimitSeconds !== undefined ? Date.now() + options.timeLimitSeconds * 1000 : Number.POSITIVE_INFINITY;
  const scratchDir = mkdtempSync(join(tmpdir(), 'closewait-fuzz-'));
  const started = Date.now();
  const summary: FuzzSummary = {
    seed: options.seed, pool: pool.fingerprint, seedFiles: pool.seeds.length, inputs: 0, firstIndex: first, reports: 0, errors: 0, crashes: 0, lies: 0, hangs: 0, memory: 0,
    oracleChecks: 0, seconds: 0, inputsPerSecond: 0, slowestMs: 0, slowestIndex: -1, peakRssMb: 0, peakHeapMb: 0, inputTimeoutMs, maxRssMb: Math.round(maxRss / 2 ** 20), failures: [],
  };
  let next = first;
  const take = (): number | null => (next < end && Date.now() < deadline ? next++ : null);
  let lastProgress = Date.now();

  const record = (reply: Extract<WorkerReply, { type: 'done' }>) => {
    summary.inputs++;
    if (reply.ms > summary.slowestMs) {
      summary.slowestMs = Math.round(reply.ms);
      summary.slowestIndex = reply.index;
    }
    summary.peakRssMb = Math.max(summary.peakRssMb, Math.round(reply.rssBytes / 2 ** 20));
    summary.peakHeapMb = Math.max(summary.peakHeapMb, Math.round(reply.heapBytes / 2 ** 20));
    if (reply.oracle) summary.oracleChecks++;
    if (reply.kind === 'report') summary.reports++;
    else if (reply.kind === 'error') summary.errors++;
    else fail(reply.index, reply.kind === 'crash' ? 'crash' : 'lie', reply.problems);
    if (reply.kind === 'report' || reply.kind === 'error') {
      if (reply.ms > inputTimeoutMs) fail(reply.index, 'hang', [`took ${Math.round(reply.ms)} ms, over the ${inputTimeoutMs} ms bound`]);
      if (reply.rssBytes > maxRss) fail(reply.index, 'memory', [`resident memory ${Math.round(reply.rssBytes / 2 ** 20)} MB after this input, over ${summary.maxRssMb} MB`]);
    }
    if (options.onProgress && Date.now() - lastProgress >= 5000) {
      lastProgress = Date.now();
      options.onProgress(finishSummary(summary, started));
    }
  };
  const fail = (index: number, kind: Failure['kind'], problems: string[]) => {
    if (kind === 'crash') summary.crashes++;
    else if (kind === 'lie') summary.lies++;
    else if (kind === 'hang') summary.hangs++;
    else summary.memory++;
    const input = generateInput(pool, options.seed, index);
    let file: string | null = null;
    if (options.outDir) {
      mkdirSync(options.outDir, { recursive: true });
      file = join(options.outDir, `${kind}-seed${options.seed}-input${index}.bin`);
      writeFileSync(file, input.bytes);
      writeFileSync(`${file}.txt`, [
        `${kind} in input ${index} of seed ${options.seed} (pool ${pool.fingerprint})`,
        `rebuild: npm run fuzz -- --seed ${options.seed} --first ${index} --count 1`,
        `steps: ${input.steps.join(' ; ')}`,
        ...problems.map((p) => `problem: ${p}`),
        '',
      ].join('\n'));
    }
    summary.failures.push({ index, kind, problems, steps: input.steps, file });
  };

  try {
    const workerUrl = new URL('./worker.js', import.meta.url);
    if (options.inThread || !existsSync(fileURLToPath(workerUrl))) await runInThread(pool, options.seed, scratchDir, take, record);
    else {
      const lost = (index: number, kind: Failure['kind'], problems: string[]) => {
        summary.inputs++;
        fail(index, kind, problems);
      };
      await runInWorkers(workerUrl, { seed: options.seed, seedPaths, scratchDir }, Math.max(1, options.jobs ?? 1), inputTimeoutMs, take, record, lost);
    }
  } finally {
    rmSync(scratchDir, { recursive: true, force: true });
  }
  return finishSummary(summary, started);
}

function finishSummary(summary: FuzzSummary, started: number): FuzzSummary {
  summary.seconds = Math.round((Date.now() - started) / 100) / 10;
  summary.inputsPerSecond = Math.round(summary.inputs / Math.max(summary.seconds, 0.1));
  return summary;
}

type Done = Extract<WorkerReply, { type: 'done' }>;

async function runInThread(pool: SeedPool, seed: number, scratchDir: string, take: () => number | null, record: (reply: Done) => void): Promise<void> {
  const scratchFile = join(scratchDir, 'via-file.bin');
  for (let index = take(); index !== null; index = take()) {
    const input = generateInput(pool, seed, index);
    const started = performance.now();
    let reply: Done;
    try {
      const outcome = await checkFuzzInput(input, scratchFile);
      const memory = process.memoryUsage();
      reply = { type: 'done', index, kind: outcome.kind, problems: outcome.problems, packets: outcome.packets, ms: performance.now() - started, rssBytes: memory.rss, heapBytes: memory.heapUsed, external: memory.external, oracle: outcome.oracleChecked === true };
    } catch (error) {
      reply = { type: 'done', index, kind: 'crash', problems: [`harness threw: ${describeThrown(error)}`], packets: 0, ms: performance.now() - started, rssBytes: 0, heapBytes: 0, external: 0, oracle: false };
    }
    record(reply);
  }
}

/** Lanes of one worker each: a worker that does not answer in time is terminated (a hang) and replaced. */
async function runInWorkers(
  workerUrl: URL,
  setup: Omit<WorkerSetup, 'workerId'>,
  jobs: number,
  inputTimeoutMs: number,
  take: () => number | null,
  record: (reply: Done) => void,
  lost: (index: number, kind: Failure['kind'], problems: string[]) => void,
): Promise<void> {
  const lane = async (workerId: number) => {
    let worker: Worker | null = null;
    const start = async (): Promise<Worker> => {
      const created = new Worker(workerUrl, { workerData: { ...setup, workerId }, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } });
      await new Promise<void>((resolve, reject) => {
        created.once('message', (reply: WorkerReply) => (reply.type === 'ready' ? resolve() : reject(new Error('worker did not start'))));
        created.once('error', reject);
      });
      return created;
    };
    try {
      for (let index = take(); index !== null; index = take()) {
        worker ??= await start();
        const running = worker;
        const answer = await new Promise<Done | { type: 'timeout' } | { type: 'died'; error: unknown; exitCode: number | null }>((resolve) => {
          const timer = setTimeout(() => resolve({ type: 'timeout' }), inputTimeoutMs);
          const cleanup = () => {
            clearTimeout(timer);
            running.removeAllListeners('message');
            running.removeAllListeners('error');
            running.removeAllListeners('exit');
          };
          running.on('message', (reply: WorkerReply) => {
            if (reply.type !== 'done') return;
            cleanup();
            resolve(reply);
          });
          running.on('error', (error) => {
            cleanup();
            resolve({ type: 'died', error, exitCode: null });
          });
          running.on('exit', (exitCode) => {
            cleanup();
            resolve({ type: 'died', error: null, exitCode });
          });
          running.postMessage({ index });
        });
        if (answer.type === 'done') {
          record(answer);
          if (answer.kind === 'crash' && answer.problems.some((p) => p.startsWith('uncaught:'))) {
            await running.terminate();
            worker = null;
          }
          continue;
        }
        await running.terminate();
        worker = null;
        if (answer.type === 'timeout') {
          lost(index, 'hang', [`no answer within ${inputTimeoutMs} ms`]);
        } else {
          const outOfMemory = (answer.error as { code?: string } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
          lost(index, outOfMemory ? 'memory' : 'crash', [outOfMemory ? `worker ran out of its ${WORKER_HEAP_MB} MB heap` : `worker died: ${answer.error ? describeThrown(answer.error) : `exit code ${answer.exitCode}`}`]);
        }
      }
    } finally {
      await worker?.terminate();
    }
  };
  await Promise.all(Array.from({ length: jobs }, (_, id) => lane(id)));
}
