import { parentPort } from 'node:worker_threads';
import { analyze, type AnalyzeOptions } from './run.js';

/** Analyses one input per message for analyzeSeparately(); a 'stop' message interrupts the current one. */
let controller = new AbortController();

parentPort?.on('message', (message: { type: 'analyze'; path: string; options: AnalyzeOptions; progress: boolean } | { type: 'stop' }) => {
  if (message.type === 'stop') {
    controller.abort();
    return;
  }
  controller = new AbortController();
  const onProgress = message.progress
    ? (progress: { bytesRead: number; packets: number }) => parentPort?.postMessage({ type: 'progress', bytesRead: progress.bytesRead, packets: progress.packets })
    : undefined;
  analyze([message.path], { ...message.options, signal: controller.signal, onProgress }).then(
    (report) => parentPort?.postMessage({ type: 'report', report }),
    (error: unknown) => parentPort?.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) }),
  );
});
