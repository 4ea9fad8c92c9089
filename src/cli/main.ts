#!/usr/bin/env node
import { runProgram } from './program.js';

/** The only place that touches the process: argv, the standard streams, signals and the exit code. */
const controller = new AbortController();
const stop = () => {
  if (controller.signal.aborted) process.exit(130); // a second Ctrl-C: give up at once
  controller.abort();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

const debug = process.argv.includes('--debug');
const argv = process.argv.slice(2).filter((arg) => arg !== '--debug');
try {
  process.exitCode = await runProgram(argv, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, signal: controller.signal });
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`closewait: internal error: ${message}\n`);
  if (debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  else process.stderr.write('closewait: run again with --debug for details, and please report it\n');
  process.exitCode = 3;
}
