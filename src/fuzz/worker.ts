import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { checkFuzzInput, generateInput } from './campaign.js';
import { describeThrown } from './harness.js';
import { loadPool } from './pool.js';

/** Runs fuzz inputs for run.ts, one per message; the main thread times each one and kills a hung worker. */
export interface WorkerSetup {
  seed: number;
  seedPaths: string[];
  scratchDir: string;
  workerId: number;
}

export type WorkerReply =
  | { type: 'ready'; fingerprint: string }
  | { type: 'done'; index: number; kind: string; problems: string[]; packets: number; ms: number; rssBytes: number; heapBytes: number; external: number; oracle: boolean };

const setup = workerData as WorkerSetup;
const pool = loadPool(setup.seedPaths);
const scratchFile = join(setup.scratchDir, `via-file-${setup.workerId}.bin`);
let current = -1;
const post = (reply: WorkerReply) => parentPort!.postMessage(reply);

// Anything thrown outside the analyzer's promise chain (a stream 'error' nobody listens to) lands
// here: it is a crash of the input being checked, whatever the analyzer returned.
const crashed = (error: unknown) => {
  post({ type: 'done', index: current, kind: 'crash', problems: [`uncaught: ${describeThrown(error)}`], packets: 0, ms: 0, rssBytes: 0, heapBytes: 0, external: 0, oracle: false });
  process.exit(70);
};
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);

parentPort!.on('message', (message: { index: number }) => {
  current = message.index;
  const input = generateInput(pool, setup.seed, message.index);
  const started = performance.now();
  void checkFuzzInput(input, scratchFile).then((outcome) => {
    const memory = process.memoryUsage();
    post({
      type: 'done', index: message.index, kind: outcome.kind, problems: outcome.problems, packets: outcome.packets, ms: performance.now() - started,
      rssBytes: memory.rss, heapBytes: memory.heapUsed, external: memory.external + memory.arrayBuffers, oracle: outcome.oracleChecked === true,
    });
  }, crashed);
});
post({ type: 'ready', fingerprint: pool.fingerprint });
