import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { analyze, DEFAULT_MAX_CONNECTIONS } from '../analyze/run.js';
import type { Report } from '../analyze/model.js';
import { expandInputs } from '../capture/inputs.js';
import { inputErrorLines } from '../report/format.js';
import { VERSION } from '../version.js';
import { parseDuration } from './duration.js';
import { ProgressLine } from './progress.js';
import type { ArchiveReport } from '../analyze/separate.js';

/**
 * What only some runs need, loaded on first use: a run pays at startup for the one format it writes
 * (the text report alone pulls in chalk), and for --separate's workers only when asked for.
 */
const load = {
  json: () => import('../report/json.js'),
  text: () => import('../report/text.js'),
  markdown: () => import('../report/markdown.js'),
  html: () => import('../report/html.js'),
  csv: () => import('../report/csv.js'),
  archive: () => import('../report/archive.js'),
  separate: () => import('../analyze/separate.js'),
};

/** What the program may touch of the process: injected so tests can run it in-process. */
export interface ProgramIo {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  stdin: Readable;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export const EXIT = { ok: 0, findings: 1, usage: 2 } as const;

const FORMATS = ['text', 'json', 'markdown', 'html', 'csv'] as const;
type Format = (typeof FORMATS)[number];
const FORMAT_BY_EXTENSION: Record<string, Format> = { '.json': 'json', '.txt': 'text', '.md': 'markdown', '.html': 'html', '.htm': 'html', '.csv': 'csv' };

interface AnalyzeFlags {
  port?: number[];
  format?: Format;
  minAge: number;
  all?: boolean;
  top: number;
  output?: string;
  failOnFindings?: boolean;
  maxConnections: number;
  color?: boolean;
  quiet?: boolean;
  separate?: boolean;
  jobs?: number;
}

const EXAMPLES = `
Examples:
  $ closewait analyze capture.pcap
  $ closewait analyze --port 20880 --min-age 30s /var/captures/
  $ tcpdump -i any -U -w - port 20880 | closewait analyze --port 20880 -
  $ closewait analyze --format json --output report.json dump.pcap dump.pcap1 dump.pcap2.gz

Exit codes: 0 done, 1 stuck connections found with --fail-on-findings, 2 usage error or no readable input.`;

/** Runs the CLI on `argv` (without node and script) and resolves to the exit code. */
export async function runProgram(argv: readonly string[], io: ProgramIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command('closewait')
    .description('Find TCP connections stuck half-closed (CLOSE_WAIT) in packet captures.')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('analyze')
    .description('Report connections where the peer sent FIN, it was ACKed, and the other side never closed.')
    .argument('<inputs...>', "capture files (pcap or pcapng; gzip'd, or xz, zstd, bzip2, lz4 through those commands), directories (recursed), or '-' for stdin")
    .option('-p, --port <ports>', 'server port(s), comma-separated: analyse only these, and use them to tell server from client', parsePorts)
    .addOption(new Option('-f, --format <format>', 'output format (default: from --output extension, else text)').choices(FORMATS))
    .option('--min-age <duration>', 'only connections stuck at least this long at capture end (30s, 5m, 1h)', parseAge, 0)
    .option('--top <n>', 'stuck connections listed in the text report', parseCount, 20)
    .option('--all', 'list every stuck connection in the text report')
    .option('-o, --output <file>', 'write the report to a file (atomically) instead of stdout')
    .option('--fail-on-findings', 'exit with 1 when stuck connections are found')
    .option('--max-connections <n>', 'most connections tracked at once; the idlest beyond are evicted and counted', parseCount, DEFAULT_MAX_CONNECTIONS)
    .option('--separate', 'analyse each input as its own capture, with an archive summary (default: all inputs are one capture, read in time order)')
    .option('-j, --jobs <n>', 'worker threads for --separate (default: the number of cores, at most one per GiB of input)', parseCount)
    .option('--no-color', 'no colour in the text report (also: NO_COLOR, or output not a terminal)')
    .option('-q, --quiet', 'no progress or notes on stderr')
    .addHelpText('after', EXAMPLES)
    .action(async (inputs: string[], flags: AnalyzeFlags) => {
      exitCode = await analyzeCommand(inputs, flags, io, argv);
    });
  program.addHelpText('after', EXAMPLES);

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw error;
  }
  return exitCode;
}

async function analyzeCommand(args: string[], flags: AnalyzeFlags, io: ProgramIo, argv: readonly string[]): Promise<number> {
  const format: Format = flags.format ?? (flags.output ? FORMAT_BY_EXTENSION[extname(flags.output).toLowerCase()] ?? 'text' : 'text');
  const expanded = await expandInputs(args);
  if (flags.output && expanded.paths.some((p) => p !== '-' && resolve(p) === resolve(flags.output!))) {
    io.stderr.write(`closewait: refusing to overwrite input capture ${flags.output} with the report\n`);
    return EXIT.usage;
  }
  if (expanded.paths.filter((p) => p === '-').length > 1) {
    io.stderr.write("closewait: '-' (stdin) can be given only once\n");
    return EXIT.usage;
  }
  for (const problem of expanded.problems) io.stderr.write(`closewait: ${problem}\n`);
  if (expanded.paths.length === 0) return EXIT.usage;

  const sources = expanded.paths.map((path) => (path === '-' ? { path: '<stdin>', stream: io.stdin } : { path }));
  const common = {
    ports: flags.port,
    minAgeSeconds: flags.minAge,
    maxConnections: flags.maxConnections,
    signal: io.signal,
    command: ['closewait', ...argv].map(shellQuote).join(' '),
  };
  const color = !flags.output && flags.color !== false && io.stdout.isTTY === true && !io.env.NO_COLOR;
  const renderOptions = { color, top: flags.all ? Number.POSITIVE_INFINITY : flags.top };
  const progress = !flags.quiet && io.stderr.isTTY ? new ProgressLine(io.stderr, await totalBytes(expanded.paths)) : null;
  if (flags.separate) {
    const { analyzeSeparately } = await load.separate();
    const archive = await analyzeSeparately(sources, {
      ...common,
      jobs: flags.jobs,
      // Each input is its own analysis, so its own job for the progress line.
      onProgress: progress ? (p) => progress.update(p, p.input) : undefined,
      onInputDone: progress ? (_done, _total, _path, input) => progress.jobDone(input) : undefined,
    });
    progress?.finish();
    const inputs = archive.reports.flatMap((r) => r.inputs);
    for (const line of inputErrorLines(inputs)) io.stderr.write(`closewait: ${line}\n`);
    if (!flags.quiet) for (const warning of [...archive.reports.flatMap((r) => r.warnings), ...archive.warnings]) io.stderr.write(`closewait: warning: ${warning}\n`);
    if (inputs.every((i) => i.error)) return EXIT.usage;
    if (!(await emit(await renderArchive(archive, format, renderOptions), flags, io))) return EXIT.usage;
    return flags.failOnFindings && archive.summary.closeWait > 0 ? EXIT.findings : EXIT.ok;
  }
  const report = await analyze(sources, { ...common, onProgress: progress ? (p) => progress.update(p) : undefined });
  progress?.finish();

  const unreadable = report.inputs.filter((i) => i.error);
  for (const line of inputErrorLines(unreadable)) io.stderr.write(`closewait: ${line}\n`);
  // A text report on the terminal shows its warnings itself; anywhere else stderr must carry them.
  const reportShowsWarnings = format === 'text' && !flags.output && io.stdout.isTTY === true;
  if (!flags.quiet && !reportShowsWarnings) for (const warning of report.warnings) io.stderr.write(`closewait: warning: ${warning}\n`);
  if (unreadable.length === report.inputs.length) return EXIT.usage;

  if (!(await emit(await render(report, format, renderOptions), flags, io))) return EXIT.usage;
  if (flags.failOnFindings && report.findings.length > 0) return EXIT.findings;
  return EXIT.ok;
}

/** Writes the report; on failure says so in one line and returns false (a report that was not written is no success). */
async function emit(rendered: string, flags: AnalyzeFlags, io: ProgramIo): Promise<boolean> {
  try {
    if (flags.output) await writeAtomically(flags.output, rendered);
    else await writeOut(io.stdout, rendered);
    return true;
  } catch (error) {
    io.stderr.write(`closewait: cannot write the report to ${flags.output ?? 'standard output'}: ${describeWriteError(error)}\n`);
    return false;
  }
}

function describeWriteError(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on device';
    case 'EDQUOT':
      return 'disk quota exceeded';
    case 'EISDIR':
      return 'is a directory';
    default:
      return e.code ? `${e.code} (${e.message})` : String(e.message ?? error);
  }
}

/** Sizes of the files to read, for the progress line (stdin counts as unknown: 0). */
async function totalBytes(paths: readonly string[]): Promise<number> {
  let total = 0;
  for (const path of paths) if (path !== '-') total += (await stat(path).catch(() => null))?.size ?? 0;
  return total;
}

/** --separate: the archive summary first, then each input's own report. */
async function renderArchive(archive: ArchiveReport, format: Format, options: { color: boolean; top: number }): Promise<string> {
  if (format === 'json') return `${JSON.stringify(archive, null, 2)}\n`;
  if (format === 'csv') return (await load.csv()).renderCsvRows(archive.reports);
  if (format === 'html') {
    const header = ['input', 'packets', 'connections', 'CLOSE_WAIT', 'servers with stuck connections'];
    const rows = archive.archive.map((e) => [e.path, String(e.packets), String(e.connections), e.readable ? String(e.closeWait) : 'unreadable', e.servers.join(', ') || '-']);
    return (await load.html()).renderHtmlReports(archive.reports, `closewait archive summary: ${archive.summary.inputsWithCloseWait} of ${archive.summary.inputs} inputs with connections stuck in CLOSE_WAIT`, rows, header);
  }
  const sections = await Promise.all(archive.reports.map((report) => render(report, format, options)));
  return [(await load.archive()).renderArchiveSummary(archive, format), ...sections].join('\n');
}

async function render(report: Report, format: Format, options: { color: boolean; top: number }): Promise<string> {
  switch (format) {
    case 'json':
      return (await load.json()).renderJson(report);
    case 'text':
      return (await load.text()).renderText(report, options);
    case 'markdown':
      return (await load.markdown()).renderMarkdown(report, { top: options.top });
    case 'html':
      return (await load.html()).renderHtml(report, { top: options.top });
    case 'csv':
      return (await load.csv()).renderCsv(report);
  }
}

/**
 * Writes to a temporary file beside the target, then renames: readers never see half a report.
 * A target that is not a regular file (/dev/stdout, a FIFO, a device) is written in place: renaming
 * over it would replace the device with a file. A symbolic link keeps pointing where it did.
 */
export async function writeAtomically(target: string, content: string): Promise<void> {
  // stat follows links, /dev/stdout -> /proc/self/fd/1 -> a pipe included (realpath cannot resolve a pipe).
  const existing = await stat(target).catch(() => null);
  if (existing && !existing.isFile()) {
    await writeFile(target, content);
    return;
  }
  const path = existing ? await realpath(target) : target;
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await writeFile(temporary, content, { flag: 'wx' });
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

/** Resolves once written; a reader that went away (`| head`) is not an error, a full disk is. */
function writeOut(stream: Writable, content: string): Promise<void> {
  return new Promise((resolveWrite, rejectWrite) => {
    const done = (error?: Error | null) => {
      if (error && (error as NodeJS.ErrnoException).code !== 'EPIPE') rejectWrite(error);
      else resolveWrite();
    };
    stream.once('error', done);
    stream.write(content, done);
  });
}

function parsePorts(value: string, previous: number[] | undefined): number[] {
  const ports = value.split(',').map((part) => {
    const port = Number(part.trim());
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`'${part}' is not a port (1-65535)`);
    return port;
  });
  return [...(previous ?? []), ...ports];
}

function parseAge(value: string): number {
  const seconds = parseDuration(value);
  if (seconds === null) throw new InvalidArgumentError(`'${value}' is not a duration (e.g. 30s, 5m, 1h)`);
  return seconds;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive whole number`);
  return n;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

