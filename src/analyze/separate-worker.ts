import { parentPort } from 'node:worker_threads';
import { analyze, type AnalyzeOptions } from './run.js';

/** Analyses one input per message for analyzeSeparately(); a 'stop' message interrupts the current one. */
let controller = new AbortController();

parentPort?.on('message', (message: { type: 'analyze'; path: string; options: AnalyzeOptions } | { type: 'stop' }) => {
  if (message.type === 'stop') {
    controller.abort();
    return;
  }
  controller = new AbortController();
  analyze([message.path], { ...message.options, signal: controller.signal }).then(
    (report) => parentPort?.postMessage({ type: 'report', report }),
    (error: unknown) => parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
  );
});
