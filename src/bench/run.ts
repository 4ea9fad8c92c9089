import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createGzip } from 'node:zlib';
import type { Report } from '../analyze/model.js';
import { GENERATOR_VERSION, generateCapture, parseSize, truthPathFor, type GeneratorTruth } from './generate.js';
import { captureReal } from './real-capture.js';
import { compareShapes, type Shape } from './shape.js';

/**
 * `npm run bench`: closewait against `tcpdump -r F -w /dev/null` (libpcap merely reading the file) and,
 * when installed, tshark and tcptrace, on the same synthetic capture, in one run, in alternating order,
 * for several rounds. Every closewait run is checked against the generator's truth: a fast wrong answer
 * fails the benchmark. Figures are ratios to tcpdump measured in the same round, because the machine
 * is shared and absolute times drift. Results go between markers in BENCHMARKS.md.
 */
interface BenchOptions {
  sizeBytes: number;
  rounds: number;
  seed: number;
  outDir: string;
  report: string;
  gzip: boolean;
  scaling: boolean;
  others: boolean;
  real: boolean;
  profile: boolean;
  /** Time --separate over four inputs with --jobs 1 and --jobs 2. */
  jobs: boolean;
  quick: boolean;
  /** Other builds (a dist/ directory each) to time beside this one, e.g. before an optimisation. */
  compare: string[];
}

interface Tool {
  name: string;
  /** What the row is: shown in the report. */
  what: string;
  command: string[];
  input: string;
  inputBytes: number;
  packets: number;
  /** Set for closewait runs: the answer must match this truth. */
  truth?: GeneratorTruth;
  /** The output is a --separate archive: each of its reports must match the truth. */
  archive?: boolean;
  /** Not a one-job run over the capture: no ratio to tcpdump's time. */
  noRatio?: boolean;
}

interface Measurement {
  seconds: number;
  peakRssKb: number;
}

const here = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(here, '../cli/main.js');
const MEASURE_TIMEOUT_MS = 10 * 60 * 1000;
const BEGIN_MARK = '<!-- bench:begin (written by npm run bench; edit outside the markers) -->';
const END_MARK = '<!-- bench:end -->';
const RSS_TARGET_MB = 150;

function parseArgs(argv: string[]): BenchOptions {
  const quick = argv.includes('--quick');
  const options: BenchOptions = {
    sizeBytes: parseSize(quick ? '64M' : '1G'),
    rounds: quick ? 2 : 5,
    seed: 1,
    outDir: 'bench-out',
    report: quick ? join('bench-out', 'BENCHMARKS-quick.md') : 'BENCHMARKS.md',
    gzip: true,
    scaling: true,
    others: true,
    real: !quick,
    profile: false,
    jobs: true,
    quick,
    compare: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === '--quick') continue;
    else if (arg === '--size') options.sizeBytes = parseSize(value());
    else if (arg === '--rounds') options.rounds = Math.max(1, Number.parseInt(value(), 10));
    else if (arg === '--seed') options.seed = Number.parseInt(value(), 10);
    else if (arg === '--out-dir') options.outDir = value();
    else if (arg === '--report') options.report = value();
    else if (arg === '--no-gzip') options.gzip = false;
    else if (arg === '--no-scaling') options.scaling = false;
    else if (arg === '--no-others') options.others = false;
    else if (arg === '--no-real') options.real = false;
    else if (arg === '--real') options.real = true;
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--no-jobs') options.jobs = false;
    else if (arg === '--compare') options.compare.push(value());
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(
        'usage: npm run bench -- [--quick] [--size 1G] [--rounds 5] [--seed 1] [--out-dir bench-out] [--report BENCHMARKS.md]\n' +
          '                      [--no-gzip] [--no-scaling] [--no-jobs] [--no-others] [--no-real|--real] [--profile] [--compare OTHER_DIST_DIR]...\n',
      );
      process.exit(0);
    } else throw new Error(`unknown option ${arg} (see --help)`);
  }
  if (!Number.isInteger(options.seed)) throw new Error('--seed must be an integer');
  return options;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  mkdirSync(options.outDir, { recursive: true });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const loadBefore = loadavg();

  const base = ensureCapture(options, options.sizeBytes, log);
  const doubled = options.scaling ? ensureCapture(options, options.sizeBytes * 2, log) : null;
  const gzipped = options.gzip ? await ensureGzip(base.path, log) : null;

  const tools: Tool[] = [];
  const closewait = (name: string, what: string, input: string, truth: GeneratorTruth): Tool => ({
    name, what, command: [process.execPath, CLI, 'analyze', '--format', 'json', input], input, inputBytes: statSync(input).size, packets: truth.file.packets, truth,
  });
  const reference = (name: string, what: string, command: string[]): Tool => ({
    name, what, command, input: base.path, inputBytes: base.truth.file.bytes, packets: base.truth.file.packets,
  });
  tools.push(closewait('closewait', 'closewait analyze --format json', base.path, base.truth));
  for (const dist of options.compare) {
    const cli = resolve(dist, 'cli/main.js');
    if (!existsSync(cli)) throw new Error(`--compare ${dist}: no cli/main.js there`);
    tools.push({ ...closewait(`closewait ${dist}`, `closewait built in ${dist}`, base.path, base.truth), command: [process.execPath, cli, 'analyze', '--format', 'json', base.path] });
  }
  tools.push(reference('tcpdump', 'tcpdump -r F -w /dev/null (libpcap reading the file)', ['tcpdump', '-r', base.path, '-w', '/dev/null']));
  if (gzipped) tools.push(closewait('closewait .gz', 'closewait on the gzip -6 copy', gzipped, base.truth));
  if (doubled) tools.push(closewait('closewait 2x', 'closewait on the file twice as long (same live connections)', doubled.path, doubled.truth));
  if (options.jobs) {
    const inputs = jobsInputs(options.outDir, base.path);
    for (const jobs of [1, 2]) {
      tools.push({
        name: `closewait jobs ${jobs}`,
        what: `closewait --separate --jobs ${jobs}, four inputs (links to the capture)`,
        command: [process.execPath, CLI, 'analyze', '--format', 'json', '--separate', '--jobs', String(jobs), ...inputs],
        input: base.path, inputBytes: 4 * base.truth.file.bytes, packets: 4 * base.truth.file.packets, truth: base.truth, archive: true, noRatio: true,
      });
    }
  }
  if (options.others && has('tshark')) tools.push(reference('tshark', 'tshark -q -z conv,tcp', ['tshark', '-r', base.path, '-q', '-z', 'conv,tcp']));
  if (options.others && has('tcptrace')) tools.push(reference('tcptrace', 'tcptrace -n (per-connection summary)', ['tcptrace', '-n', base.path]));

  log(`warming the page cache (${[base.path, doubled?.path, gzipped].filter(Boolean).join(', ')})`);
  for (const path of [base.path, doubled?.path, gzipped]) if (path) await drain(path);

  const results = new Map<string, Measurement[]>(tools.map((t) => [t.name, []]));
  const failures: string[] = [];
  for (let round = 0; round < options.rounds; round++) {
    // Rotate the order each round so no tool always runs first (cold CPU caches) or right after tshark.
    const order = tools.map((_, i) => tools[(i + round) % tools.length]!);
    for (const tool of order) {
      const { measurement, stdout } = await measure(tool.command, tool.truth !== undefined);
      results.get(tool.name)!.push(measurement);
      log(`round ${round + 1}/${options.rounds} ${tool.name.padEnd(14)} ${measurement.seconds.toFixed(3)} s  ${(measurement.peakRssKb / 1024).toFixed(0)} MB`);
      if (tool.truth) {
        const problems = tool.archive ? verifyArchive(stdout, tool.truth) : verify(stdout, tool.truth);
        if (problems.length) failures.push(`${tool.name}, round ${round + 1}: ${problems.join('; ')}`);
      }
    }
  }

  let profileText: string | null = null;
  if (options.profile) profileText = await profile(base.path, options.outDir, log);

  let shapes: string | null = null;
  if (options.real) shapes = await realComparison(options, base.truth.shape, log);

  const text = renderResults({ options, tools, results, base: base.truth, doubled: doubled?.truth ?? null, failures, loadBefore, loadAfter: loadavg(), shapes, profileText });
  writeReport(options.report, text);
  process.stdout.write(text);
  log(`results written to ${options.report}`);
  if (failures.length) {
    log(`closewait disagreed with the truth:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

/** The cached capture for this size and seed, generated when missing or made by another generator version. */
function ensureCapture(options: BenchOptions, sizeBytes: number, log: (line: string) => void): { path: string; truth: GeneratorTruth } {
  const path = join(options.outDir, `synthetic-${sizeLabel(sizeBytes)}-seed${options.seed}-v${GENERATOR_VERSION}.pcap`);
  const truthPath = truthPathFor(path);
  if (existsSync(path) && existsSync(truthPath)) {
    const truth = JSON.parse(readFileSync(truthPath, 'utf8')) as GeneratorTruth;
    if (truth.generator.version === GENERATOR_VERSION && truth.generator.sizeBytes === sizeBytes && statSync(path).size === truth.file.bytes) {
      log(`reusing ${path}`);
      return { path, truth };
    }
  }
  log(`generating ${path} (${sizeLabel(sizeBytes)}, seed ${options.seed})`);
  const truth = generateCapture({ sizeBytes, seed: options.seed, out: path });
  return { path, truth };
}

async function ensureGzip(path: string, log: (line: string) => void): Promise<string> {
  const gz = `${path}.gz`;
  if (existsSync(gz) && statSync(gz).mtimeMs >= statSync(path).mtimeMs) {
    log(`reusing ${gz}`);
    return gz;
  }
  log(`compressing ${path} (gzip -6, as logrotate would)`);
  const partial = `${gz}.partial`;
  await pipeline(createReadStream(path), createGzip({ level: 6 }), createWriteStream(partial));
  renameSync(partial, gz);
  return gz;
}

async function drain(path: string): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 8 << 20 })) void chunk;
}

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const timeBinary = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

/**
 * Runs a command to its end: wall time from here, peak RSS from GNU time (or, without it, VmHWM
 * polled from /proc, which misses at most the last few milliseconds of growth).
 */
async function measure(command: string[], keepStdout: boolean): Promise<{ measurement: Measurement; stdout: string }> {
  const rssFile = join(process.env.TMPDIR ?? '/tmp', `closewait-bench-rss-${process.pid}`);
  const argv = timeBinary ? [timeBinary, '-f', '%M', '-o', rssFile, ...command] : command;
  const started = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', keepStdout ? 'pipe' : 'ignore', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk));
  let polledKb = 0;
  const poller = timeBinary
    ? null
    : setInterval(() => {
        try {
          const match = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (match) polledKb = Math.max(polledKb, Number(match[1]));
        } catch {
          // The process has just ended.
        }
      }, 5);
  const timer = setTimeout(() => child.kill('SIGKILL'), MEASURE_TIMEOUT_MS);
  const code = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', (exitCode) => done(exitCode));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearTimeout(timer);
  if (poller) clearInterval(poller);
  // closewait exits 0 (or 1 with --fail-on-findings); the references exit 0.
  if (code !== 0) throw new Error(`${command.join(' ')} exited with ${code}: ${Buffer.concat(err).toString().trim().slice(0, 500)}`);
  let peakRssKb = polledKb;
  if (timeBinary) {
    peakRssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
    rmSync(rssFile, { force: true });
  }
  return { measurement: { seconds, peakRssKb }, stdout: Buffer.concat(out).toString() };
}

/** Four names for the same capture (hard links: one copy on disk and in the page cache), for the --jobs rows. */
function jobsInputs(outDir: string, capture: string): string[] {
  return [1, 2, 3, 4].map((n) => {
    const link = join(outDir, `jobs-input-${n}.pcap`);
    rmSync(link, { force: true });
    linkSync(capture, link);
    return link;
  });
}

/** Differences between a --separate archive's reports and the truth each should match. */
function verifyArchive(json: string, truth: GeneratorTruth): string[] {
  let reports: Report[];
  try {
    reports = (JSON.parse(json) as { reports: Report[] }).reports;
  } catch {
    return ['output is not JSON'];
  }
  if (reports.length !== 4) return [`${reports.length} reports in the archive, not 4`];
  return reports.flatMap((report, i) => verify(JSON.stringify(report), truth).map((problem) => `input ${i + 1}: ${problem}`));
}

/** Differences between a closewait JSON report and the generator's truth; empty when exact. */
export function verify(json: string, truth: GeneratorTruth): string[] {
  let report: Report;
  try {
    report = JSON.parse(json) as Report;
  } catch {
    return ['output is not JSON'];
  }
  const problems: string[] = [];
  const s = report.summary;
  const pairs: [string, number, number][] = [
    ['packets', s.packets, truth.file.packets],
    ['connections', s.connections, truth.connections],
    ['closeWait', s.closeWait, truth.closeWait],
    ['closeWaitServerSide', s.closeWaitServerSide, truth.closeWaitServerSide],
    ['closeWaitClientSide', s.closeWaitClientSide, truth.closeWaitClientSide],
    ['reset', s.reset, truth.reset],
    ['closed', s.closed, truth.closed],
    ['openAtEnd', s.openAtEnd, truth.openAtEnd],
    ['stillSending', s.stillSending, truth.stillSending],
    ['unanswered', s.unanswered, truth.unanswered],
  ];
  for (const [name, got, want] of pairs) if (got !== want) problems.push(`${name} ${got}, truth ${want}`);
  const found = new Set(report.findings.map((f) => `${f.server.ip}:${f.server.port}>${f.client.ip}:${f.client.port} ${f.stuckSide}`));
  const expected = truth.stuck.map((t) => `${t.server}>${t.client} ${t.stuckSide}`);
  const missing = expected.filter((key) => !found.has(key));
  const extra = found.size - (expected.length - missing.length);
  if (missing.length || extra) problems.push(`stuck set: ${missing.length} missing (${missing.slice(0, 3).join(', ')}), ${extra} not in the truth`);
  return problems;
}

async function profile(path: string, outDir: string, log: (line: string) => void): Promise<string> {
  const dir = resolve(outDir, 'profile');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log('profiling closewait (node --cpu-prof)');
  await measure([process.execPath, '--cpu-prof', `--cpu-prof-dir=${dir}`, CLI, 'analyze', '--format', 'json', path], true);
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'))!;
  return `CPU profile (self time): ${relative(process.cwd(), join(dir, file))}\n\n${topFunctions(JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile)}`;
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

function topFunctions(profileData: CpuProfile, count = 15): string {
  const frames = new Map(profileData.nodes.map((n) => [n.id, n.callFrame]));
  const selfTime = new Map<string, number>();
  let total = 0;
  profileData.samples.forEach((id, i) => {
    const frame = frames.get(id)!;
    const name = `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    const delta = profileData.timeDeltas[i] ?? 0;
    selfTime.set(name, (selfTime.get(name) ?? 0) + delta);
    total += delta;
  });
  const lines = [...selfTime].sort((x, y) => y[1] - x[1]).slice(0, count);
  return `| self ms | share | function |\n|---:|---:|---|\n${lines.map(([name, us]) => `| ${(us / 1000).toFixed(0)} | ${((100 * us) / total).toFixed(1)}% | \`${name.trim()}\` |`).join('\n')}\n`;
}

async function realComparison(options: BenchOptions, benchShape: Shape, log: (line: string) => void): Promise<string | null> {
  if (process.getuid?.() !== 0 || !has('unshare') || !has('tcpdump') || !has('ip')) {
    log('skipping the real-kernel comparison (needs root, unshare, ip, tcpdump)');
    return null;
  }
  log('capturing real-kernel loopback traffic for the shape comparison');
  const connections = 1500;
  const real = await captureReal({ out: join(options.outDir, 'real-loopback.pcap'), connections, seed: options.seed });
  const comparable = generateCapture({ sizeBytes: 16 << 20, seed: options.seed, out: join(options.outDir, 'synthetic-comparable.pcap'), comparableToReal: true });
  return compareShapes([
    { name: `real kernel (${connections} connections)`, shape: real },
    { name: 'generator, same subset', shape: comparable.shape },
    { name: 'benchmark capture', shape: benchShape },
  ]);
}

interface RenderInput {
  options: BenchOptions;
  tools: Tool[];
  results: Map<string, Measurement[]>;
  base: GeneratorTruth;
  doubled: GeneratorTruth | null;
  failures: string[];
  loadBefore: number[];
  loadAfter: number[];
  shapes: string | null;
  profileText: string | null;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median over rounds of a/b measured in the same round. */
function roundRatio(a: Measurement[], b: Measurement[], field: keyof Measurement = 'seconds'): number {
  return median(a.map((m, i) => m[field] / b[i]![field]));
}

function renderResults(input: RenderInput): string {
  const { options, tools, results, base, doubled, failures } = input;
  const tcpdump = results.get('tcpdump')!;
  const cw = results.get('closewait')!;
  const mb = (kb: number) => (kb / 1024).toFixed(0);
  const cpu = cpus()[0]?.model ?? 'unknown';
  const version = (command: string, args: string[], pattern: RegExp) => {
    const result = spawnSync(command, args, { encoding: 'utf8' });
    return pattern.exec(`${result.stdout ?? ''}${result.stderr ?? ''}`)?.[0] ?? command;
  };
  let text = '';
  text += `Run: \`npm run bench${process.argv.slice(2).length ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${options.rounds} rounds, tools in rotating order.\n\n`;
  text += `Machine: ${availableParallelism()} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node ${process.version}; `;
  const versions = [version('tcpdump', ['--version'], /tcpdump version \S+/), version('tcpdump', ['--version'], /libpcap version \S+/)];
  if (has('tshark')) versions.push(version('tshark', ['--version'], /TShark \(Wireshark\) \S+/));
  if (has('tcptrace')) versions.push(version('tcptrace', ['-v'], /tcptrace -- version \S+/));
  text += `${versions.join(', ')}. `;
  text += `Load average before/after: ${input.loadBefore.map((x) => x.toFixed(2)).join(' ')} / ${input.loadAfter.map((x) => x.toFixed(2)).join(' ')}.\n\n`;
  text += `Capture: ${describeCapture(base)}`;
  if (doubled) text += ` Doubled: ${describeCapture(doubled)}`;
  text += '\n\n';
  text += failures.length ? `**closewait disagreed with the truth:** ${failures.join('; ')}\n\n` : `closewait's answer matched the truth exactly in every run (counts and stuck set).\n\n`;

  text += '| tool | input | median s | min–max s | MB/s | packets/s | peak RSS MB | time vs tcpdump (same round, median) |\n|---|---|---:|---:|---:|---:|---:|---:|\n';
  for (const tool of tools) {
    const runs = results.get(tool.name)!;
    const seconds = median(runs.map((r) => r.seconds));
    const input = tool.input.endsWith('.gz') ? `.gz, ${(tool.inputBytes / 1e6).toFixed(0)} MB` : `${(tool.inputBytes / 1e6).toFixed(0)} MB`;
    const decompressedBytes = tool.truth ? tool.truth.file.bytes : tool.inputBytes;
    const ratio = tool.name === 'tcpdump' ? '1.00' : tool.name === 'closewait 2x' || tool.noRatio ? '-' : roundRatio(runs, tcpdump).toFixed(2);
    text += `| ${tool.what} | ${input} | ${seconds.toFixed(3)} | ${Math.min(...runs.map((r) => r.seconds)).toFixed(3)}–${Math.max(...runs.map((r) => r.seconds)).toFixed(3)} | ${(decompressedBytes / 1e6 / seconds).toFixed(0)} | ${(tool.packets / seconds / 1e6).toFixed(2)} M | ${mb(median(runs.map((r) => r.peakRssKb)))} | ${ratio} |\n`;
  }
  text += '\nMB/s and packets/s count the uncompressed capture.\n\n';

  const ratio = roundRatio(cw, tcpdump);
  const rss = median(cw.map((r) => r.peakRssKb));
  const rows: string[] = [];
  rows.push(`| analysis time vs tcpdump's read time | ≤ 1.00× | ${ratio.toFixed(2)}× | ${ratio <= 1 ? 'met' : 'not met'} |`);
  rows.push(`| peak RSS | ≤ ${RSS_TARGET_MB} MB | ${mb(rss)} MB | ${rss / 1024 <= RSS_TARGET_MB ? 'met' : 'not met'} |`);
  if (doubled) {
    const rss2 = median(results.get('closewait 2x')!.map((r) => r.peakRssKb));
    const growth = (rss2 - rss) / rss;
    const time2 = roundRatio(results.get('closewait 2x')!, cw);
    const live = (truth: GeneratorTruth) => (truth.openAtEnd + truth.closeWait).toLocaleString('en-US');
    rows.push(
      `| peak RSS when the file doubles (live connections at the end: ${live(base)} → ${live(doubled)}) | ≤ +10% | ${mb(rss)} → ${mb(rss2)} MB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)}%; time ×${time2.toFixed(2)}) | ${growth <= 0.1 ? 'met' : 'not met'} |`,
    );
  }
  if (results.has('closewait .gz')) {
    const gz = roundRatio(results.get('closewait .gz')!, cw);
    rows.push(`| gzip'd input vs uncompressed | ≤ 1.50× | ${gz.toFixed(2)}× | ${gz <= 1.5 ? 'met' : 'not met'} |`);
  }
  if (results.has('tshark')) {
    const faster = roundRatio(results.get('tshark')!, cw);
    rows.push(`| faster than tshark -z conv,tcp | ≥ 30× | ${faster.toFixed(1)}× | ${faster >= 30 ? 'met' : 'not met'} |`);
  }
  if (results.has('closewait jobs 1') && results.has('closewait jobs 2')) {
    const speedup = roundRatio(results.get('closewait jobs 1')!, results.get('closewait jobs 2')!);
    rows.push(`| --separate over four inputs: --jobs 2 vs --jobs 1 | ≥ 1.70× faster | ${speedup.toFixed(2)}× | ${speedup >= 1.7 ? 'met' : 'not met'} |`);
  }
  text += `| target (${sizeLabel(options.sizeBytes)}; one job unless said) | goal | measured | |\n|---|---|---|---|\n${rows.join('\n')}\n`;
  if (doubled) {
    // The second half of the doubled file costs what closewait spends per byte once running: start-up,
    // the JIT's warm-up and the report are paid once per run and drop out of the difference.
    const twice = results.get('closewait 2x')!;
    const marginal = median(twice.map((m, i) => (m.seconds - cw[i]!.seconds) / tcpdump[i]!.seconds));
    text += `\nOnce running: the doubled file's extra ${sizeLabel(options.sizeBytes)} takes ${marginal.toFixed(2)}× tcpdump's time for ${sizeLabel(options.sizeBytes)} (median over rounds of (2× file − 1× file) / tcpdump, same round); the rest of the one-file figure is paid once per run (Node's start-up, the JIT's warm-up, the report).\n`;
  }
  if (input.profileText) text += `\n${input.profileText}`;
  if (input.shapes) {
    text += '\nTraffic shape, synthetic against a real-kernel capture of the same application traffic (Linux sockets on a namespace loopback, MTU 1500, offloads off):\n\n';
    text += input.shapes;
  }
  return text;
}

function describeCapture(truth: GeneratorTruth): string {
  return (
    `${(truth.file.bytes / 1e6).toFixed(0)} MB, ${truth.file.packets.toLocaleString('en-US')} packets, ${truth.connections.toLocaleString('en-US')} connections ` +
    `over ${(truth.file.captureSeconds / 60).toFixed(0)} min, ${truth.closeWait} stuck (${truth.closeWaitServerSide} server side, ${truth.closeWaitClientSide} client side), ` +
    `${truth.reset.toLocaleString('en-US')} reset, ${truth.openAtEnd.toLocaleString('en-US')} open and ${truth.unanswered} attempts given up at the end, ` +
    `${truth.events.leaksClosed.toLocaleString('en-US')} leaks closed at last, ${truth.events.tupleReuses.toLocaleString('en-US')} 4-tuple reuses, ` +
    `${((100 * truth.shape.pureAcks) / truth.shape.packets).toFixed(0)}% pure ACKs (seed ${truth.generator.seed}, generator v${truth.generator.version}).`
  );
}

/** Replaces the text between the markers, keeping what people wrote around them. */
function writeReport(path: string, results: string): void {
  const block = `${BEGIN_MARK}\n${results}${END_MARK}\n`;
  let text = existsSync(path) ? readFileSync(path, 'utf8') : `# Benchmarks\n\n${block}`;
  const begin = text.indexOf(BEGIN_MARK);
  const end = text.indexOf(END_MARK);
  if (begin >= 0 && end > begin) text = `${text.slice(0, begin)}${block}${text.slice(end + END_MARK.length + 1)}`;
  else if (!text.includes(block)) text = `${text.trimEnd()}\n\n${block}`;
  mkdirSync(dirname(resolve(path)), { recursive: true });
  writeFileSync(path, text);
}

function sizeLabel(bytes: number): string {
  for (const [unit, factor] of [['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]] as const) if (bytes % factor === 0) return `${bytes / factor}${unit}`;
  return `${bytes}B`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    process.exitCode = 2;
  });
}
