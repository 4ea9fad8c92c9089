#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { analyze } from '../analyze/run.js';
import { TCP } from './build.js';
import { synFloodStream } from './flood.js';

/**
 * `node dist/fuzz/flood-run.js --tuples 10000000 --max-connections 1000000`: feeds a SYN flood of
 * distinct 4-tuples to the analyzer as a stream and prints time, peak resident memory and what the
 * report says about eviction.
 */
const whole = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive whole number`);
  return n;
};
const flags = new Command('closewait-flood')
  .option('--tuples <n>', 'distinct 4-tuples (one SYN each)', whole, 10_000_000)
  .option('--max-connections <n>', 'the analyzer\'s cap on tracked connections', whole)
  .option('--rst', 'each packet a RST (a connection closed at birth) instead of a SYN')
  .option('--backwards', 'each packet 10 µs earlier than the one before it')
  .parse()
  .opts<{ tuples: number; maxConnections?: number; rst?: boolean; backwards?: boolean }>();

const startRss = process.memoryUsage().rss;
const started = performance.now();
const report = await analyze([{ path: '<syn-flood>', stream: synFloodStream({ tuples: flags.tuples, flags: flags.rst ? TCP.RST : TCP.SYN, spacingMicros: flags.backwards ? -10 : 1 }) }], { maxConnections: flags.maxConnections });
const seconds = (performance.now() - started) / 1000;
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
process.stdout.write(`${JSON.stringify({
  tuples: flags.tuples,
  maxConnections: flags.maxConnections ?? 'default',
  packets: report.summary.packets,
  connections: report.summary.connections,
  evicted: report.summary.evicted,
  openAtEnd: report.summary.openAtEnd,
  unanswered: report.summary.unanswered,
  seconds: Math.round(seconds * 10) / 10,
  packetsPerSecond: Math.round(report.summary.packets / seconds),
  startRssMb: mb(startRss),
  // The kernel's high-water mark: the reading loop gives a sampling timer no chance to run.
  peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  warning: report.warnings.find((w) => w.includes('evicted')) ?? null,
}, null, 2)}\n`);
