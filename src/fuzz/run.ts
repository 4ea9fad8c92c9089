#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { parseDuration } from '../cli/duration.js';
import { loadPool } from './pool.js';
import { runFuzz, type FuzzSummary } from './runner.js';
import { sweepTruncations } from './truncations.js';

/**
 * `npm run fuzz -- [--seed N] [--count N] [--time-limit 10m]`: mutates real captures and checks that
 * the analyzer never crashes, hangs, runs out of memory or contradicts itself. The same seed, count
 * and seed files give the same inputs; a failing input is rebuilt alone with --first I --count 1.
 */
const whole = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a whole number`);
  return n;
};
const seconds = (value: string) => {
  const s = parseDuration(value);
  if (s === null) throw new InvalidArgumentError(`'${value}' is not a duration (30s, 10m, 1h)`);
  return s;
};

const program = new Command('closewait-fuzz')
  .description('Fuzz the capture reader and analyzer with mutated real captures.')
  .option('--seed <n>', 'random seed (default: from the clock, printed)', whole)
  .option('--count <n>', 'inputs to run (default: 10,000, or unlimited with --time-limit)', whole)
  .option('--first <n>', 'index of the first input (with --count 1: rebuild one failing input)', whole, 0)
  .option('--time-limit <duration>', 'stop starting new inputs after this long (30s, 10m, 1h)', seconds)
  .option('--input-timeout <duration>', 'an input still running after this long is a hang', seconds, 10)
  .option('--max-rss <mb>', 'resident memory (MB) above which an input is a memory failure', whole, 1024)
  .option('--seeds <path>', 'seed capture file or directory (repeatable; default: test/regressions/, fixtures/ and ../shared/corpus)', (v: string, prev: string[] = []) => [...prev, v])
  .option('--out <dir>', 'where failing inputs are written', 'fuzz-failures')
  .option('-j, --jobs <n>', 'worker threads', whole, 1)
  .option('--truncations [max-records]', 'instead: cut every seed with at most this many records (default 1,000) at every record boundary and inside every record')
  .option('--json', 'print the summary as JSON')
  .option('-q, --quiet', 'no progress on stderr')
  .showHelpAfterError();

program.parse();
const flags = program.opts<{
  truncations?: boolean | string; seed?: number; count?: number; first: number; timeLimit?: number; inputTimeout: number; maxRss: number; seeds?: string[]; out: string; jobs: number; json?: boolean; quiet?: boolean;
}>();
if (flags.truncations !== undefined) {
  const maxUnits = typeof flags.truncations === 'string' ? whole(flags.truncations) : 1000;
  const started = Date.now();
  const sweep = await sweepTruncations(loadPool(flags.seeds).seeds, { maxUnits });
  process.stdout.write(`truncations: ${sweep.seeds.toLocaleString('en-US')} clean seeds of up to ${maxUnits.toLocaleString('en-US')} records, ${sweep.cuts.toLocaleString('en-US')} cuts in ${Math.round((Date.now() - started) / 100) / 10} s · ${sweep.failures.length} failures\n`);
  for (const failure of sweep.failures) process.stdout.write(`${failure.seed} cut at ${failure.cut}: ${failure.outcome.problems.join('; ')}\n`);
  process.exit(sweep.failures.length > 0 ? 1 : 0);
}
const seed = flags.seed ?? Date.now() % 2 ** 31;
const count = flags.count ?? (flags.timeLimit !== undefined ? Number.POSITIVE_INFINITY : 10_000);

const line = (s: FuzzSummary) =>
  `seed ${s.seed} · pool ${s.pool} · ${s.inputs.toLocaleString('en-US')} inputs in ${s.seconds} s (${s.inputsPerSecond}/s) · ` +
  `${s.reports.toLocaleString('en-US')} reports, ${s.errors.toLocaleString('en-US')} clear errors · ` +
  `crashes ${s.crashes}, hangs ${s.hangs}, lies ${s.lies}, memory ${s.memory} · oracle checks ${s.oracleChecks.toLocaleString('en-US')} · ` +
  `slowest ${s.slowestMs} ms (input ${s.slowestIndex}) · peak RSS ${s.peakRssMb} MB`;

if (!flags.quiet) process.stderr.write(`closewait-fuzz: seed ${seed}${Number.isFinite(count) ? `, ${count.toLocaleString('en-US')} inputs` : ''}${flags.timeLimit !== undefined ? `, at most ${flags.timeLimit} s` : ''}\n`);
const summary = await runFuzz({
  seed, count, first: flags.first, timeLimitSeconds: flags.timeLimit, inputTimeoutMs: flags.inputTimeout * 1000, maxRssBytes: flags.maxRss * 2 ** 20,
  seedPaths: flags.seeds, outDir: flags.out, jobs: flags.jobs,
  onProgress: flags.quiet ? undefined : (s) => process.stderr.write(`closewait-fuzz: ${line(s)}\n`),
});
if (flags.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
else {
  process.stdout.write(`${line(summary)}\n`);
  for (const failure of summary.failures) {
    process.stdout.write(`${failure.kind} input ${failure.index}: ${failure.steps.join(' ; ')}\n  ${failure.problems.join('\n  ')}\n${failure.file ? `  saved ${failure.file}\n` : ''}`);
  }
  if (Number.isFinite(count) || summary.inputs > 0) process.stdout.write(`reproduce: npm run fuzz -- --seed ${seed} --first ${summary.firstIndex} --count ${summary.inputs}\n`);
}
process.exitCode = summary.failures.length > 0 ? 1 : 0;
