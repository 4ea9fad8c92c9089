import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { Report } from '../src/analyze/model.js';
import { analyze } from '../src/analyze/run.js';
import { analyzeSeparately, type ArchiveReport } from '../src/analyze/separate.js';
import { runProgram } from '../src/cli/program.js';
import { renderJson } from '../src/report/json.js';
import { loadTruth } from './helpers/truth.js';

/**
 * schema/report.schema.json documents `--format json`, schema/archive.schema.json the archive of
 * `--separate --format json` (whose reports are single reports). Consumers get open schemas (fields
 * may be added); here every object is closed, so a field the output has and the schema does not
 * document fails the test.
 */
const reportSchema = JSON.parse(readFileSync('schema/report.schema.json', 'utf8')) as Record<string, unknown>;
const archiveSchema = JSON.parse(readFileSync('schema/archive.schema.json', 'utf8')) as Record<string, unknown>;

/** Closes every object schema; one that extends a $ref is left as it is, the schema it refers to is closed itself. */
function closed(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(closed);
  if (!node || typeof node !== 'object') return node;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) copy[key] = key === 'properties' ? Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, closed(v)])) : closed(value);
  if ('properties' in copy && !('additionalProperties' in copy) && !('$ref' in copy)) copy.additionalProperties = false;
  return copy;
}

// Compiling the report schema registers it under its $id, where the archive schema's references find it: consumers load both the same way.
const openAjv = new Ajv2020({ allErrors: true, strict: true });
const validateOpen = openAjv.compile(reportSchema);
const validateArchiveOpen = openAjv.compile(archiveSchema);
const closedAjv = new Ajv2020({ allErrors: true, strict: true });
const validateClosed = closedAjv.compile(closed(reportSchema) as object);
const validateArchiveClosed = closedAjv.compile(closed(archiveSchema) as object);

const FIXTURES = 'fixtures';
const truths = readdirSync(FIXTURES)
  .filter((name) => name.endsWith('.truth.json'))
  .map((name) => loadTruth(join(FIXTURES, name)));

describe('the JSON report matches schema/report.schema.json', () => {
  it.each(truths.map((t) => [t.scenario, t] as const))('fixture %s', async (_name, truth) => {
    const report = JSON.parse(renderJson(await analyze(truth.files.map((f) => join(FIXTURES, f)), { ports: truth.servicePorts, command: 'closewait analyze test' })));
    expect(validateClosed(report), JSON.stringify(validateClosed.errors?.slice(0, 5))).toBe(true);
    expect(validateOpen(report)).toBe(true);
  });

  it('an unreadable input and an empty report still match', async () => {
    const report = JSON.parse(renderJson(await analyze(['package.json'])));
    expect(validateClosed(report), JSON.stringify(validateClosed.errors?.slice(0, 5))).toBe(true);
  });

  it('the schema rejects what breaks the contract', async () => {
    const report = JSON.parse(renderJson(await analyze([join(FIXTURES, 'incident.pcap')])));
    expect(validateOpen(report)).toBe(true);
    const broken = structuredClone(report);
    broken.findings[0].family = 'leak';
    expect(validateOpen(broken)).toBe(false);
    const renamed = structuredClone(report);
    delete renamed.servers[0].onsetTime;
    expect(validateOpen(renamed)).toBe(false);
    const extra = structuredClone(report);
    extra.servers[0].somethingNew = 1;
    expect(validateOpen(extra)).toBe(true);
    expect(validateClosed(extra)).toBe(false);
  });
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

/** `closewait <args>` in this process (so --jobs above 1 analyses in this thread: the TypeScript sources have no compiled worker). */
async function cli(args: string[], stdin: Readable = Readable.from([])) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runProgram(args, { stdout, stderr, stdin, env: {} });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const scratch = mkdtempSync(join(tmpdir(), 'closewait-schema-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
/** Nothing of it is a capture: its report has an error and no packets. */
const GARBAGE = join(scratch, 'garbage.pcap');
writeFileSync(GARBAGE, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 151 + 7) & 0xff)));
/** rotated.pcap cut inside a record: the records before the cut are kept, the input is marked truncated. */
const TRUNCATED = join(scratch, 'truncated.pcap');
writeFileSync(TRUNCATED, readFileSync(join(FIXTURES, 'rotated.pcap')).subarray(0, 5000));
const ROTATED = readdirSync(FIXTURES)
  .filter((name) => /^rotated\.pcap\d*$/.test(name))
  .sort()
  .map((name) => join(FIXTURES, name));
const MIXED = [join(FIXTURES, 'rotated.pcap'), GARBAGE, TRUNCATED, join(FIXTURES, 'ipv6.pcap'), join(FIXTURES, 'variant-gz.pcap.gz')];

/** The schema, closed and open, and what its descriptions promise about how the parts agree. */
function expectValidArchive(archive: ArchiveReport): void {
  expect(validateArchiveClosed(archive), JSON.stringify(validateArchiveClosed.errors?.slice(0, 5))).toBe(true);
  expect(validateArchiveOpen(archive)).toBe(true);
  const { summary, reports } = archive;
  expect(archive.archive).toHaveLength(reports.length);
  expect(summary.inputs).toBe(reports.length);
  archive.archive.forEach((entry, index) => {
    const report = reports[index]!;
    const readable = report.inputs[0]!.error === null;
    expect(entry).toEqual({
      input: index,
      path: report.inputs[0]!.path,
      readable,
      packets: report.summary.packets,
      connections: report.summary.connections,
      closeWait: report.summary.closeWait,
      servers: report.servers.filter((s) => s.closeWait > 0).map((s) => (s.ip.includes(':') ? `[${s.ip}]:${s.port}` : `${s.ip}:${s.port}`)),
    });
    if (!readable) expect([entry.packets, entry.connections, entry.closeWait]).toEqual([0, 0, 0]);
    expect(report.command).toBeNull();
  });
  const total = (pick: (entry: ArchiveReport['archive'][number]) => number) => archive.archive.reduce((sum, entry) => sum + pick(entry), 0);
  expect(summary).toEqual({
    inputs: reports.length,
    readableInputs: archive.archive.filter((e) => e.readable).length,
    inputsWithCloseWait: archive.archive.filter((e) => e.closeWait > 0).length,
    packets: total((e) => e.packets),
    connections: total((e) => e.connections),
    closeWait: total((e) => e.closeWait),
  });
}

describe('the --separate JSON matches schema/archive.schema.json', () => {
  it('a rotated set, one input at a time (--jobs 1)', async () => {
    const { code, stdout } = await cli(['analyze', '--separate', '--format', 'json', '--jobs', '1', ...ROTATED]);
    expect(code).toBe(0);
    const archive = JSON.parse(stdout) as ArchiveReport;
    expectValidArchive(archive);
    expect(archive.summary).toMatchObject({ inputs: ROTATED.length, readableInputs: ROTATED.length });
    expect(archive.summary.closeWait).toBeGreaterThan(0);
    expect(archive.warnings).toEqual([]);
  });

  it('a directory of every fixture (--jobs 2)', async () => {
    const { code, stdout } = await cli(['analyze', '--separate', '--format', 'json', '--jobs', '2', FIXTURES]);
    expect(code).toBe(0);
    const archive = JSON.parse(stdout) as ArchiveReport;
    expectValidArchive(archive);
    expect(archive.summary.inputs).toBe(readdirSync(FIXTURES).filter((n) => /\.(pcap\d*|pcapng|gz)$/.test(n)).length);
    expect(archive.archive.some((e) => e.servers.some((s) => s.startsWith('[')))).toBe(true);
  });

  it('unreadable, truncated, gzip\'d and stdin inputs side by side, each with its own report', async () => {
    const { code, stdout } = await cli(['analyze', '--separate', '--format', 'json', '--port', '20880', ...MIXED, '-'], Readable.from([readFileSync(join(FIXTURES, 'incident.pcap'))]));
    expect(code).toBe(0);
    const archive = JSON.parse(stdout) as ArchiveReport;
    expectValidArchive(archive);
    expect(archive.archive.map((e) => [e.path, e.readable])).toEqual([...MIXED.map((path) => [path, path !== GARBAGE]), ['<stdin>', true]]);
    expect(archive.reports[1]!.inputs[0]!.error).toMatch(/not a pcap or pcapng capture/);
    expect(archive.reports[2]!.inputs[0]!.truncated).toBe(true);
    expect(archive.reports[2]!.warnings).toHaveLength(1);
    expect(archive.reports.every((r) => r.summary.ports?.join() === '20880')).toBe(true);
  });

  it('worker threads (--jobs 2, the built CLI) write the same contract', () => {
    const cliPath = resolve('dist/cli/main.js');
    if (!existsSync(cliPath)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const run = spawnSync(process.execPath, [cliPath, 'analyze', '--separate', '--format', 'json', '--jobs', '2', ...MIXED], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const archive = JSON.parse(run.stdout) as ArchiveReport;
    expectValidArchive(archive);
    expect(archive.archive.map((e) => e.path)).toEqual(MIXED);
  });

  it('an interrupted run says so and covers the inputs read before the stop', async () => {
    const controller = new AbortController();
    const archive = await analyzeSeparately(ROTATED, { jobs: 1, signal: controller.signal, onInputDone: (done) => done === 2 && controller.abort() });
    expect(archive.reports).toHaveLength(2);
    expect(archive.archive.map((e) => e.path)).toEqual(ROTATED.slice(0, 2));
    expect(archive.warnings).toEqual([`interrupted: ${ROTATED.length - 2} of ${ROTATED.length} inputs not read; the archive covers only the 2 read before the stop`]);
    expectValidArchive(JSON.parse(JSON.stringify(archive)) as ArchiveReport);
  });

  it('an input stopped before it began to be read counts as not read, not as an unreadable input without a path', async () => {
    const controller = new AbortController();
    // The first input is taken at once; the stop comes while it is being opened, before its reading starts.
    const running = analyzeSeparately(ROTATED.slice(0, 2), { jobs: 1, signal: controller.signal });
    controller.abort();
    const archive = await running;
    expect(archive.reports).toEqual([]);
    expect(archive.warnings).toEqual(['interrupted: 2 of 2 inputs not read; the archive covers only the 0 read before the stop']);
    expectValidArchive(JSON.parse(JSON.stringify(archive)) as ArchiveReport);
  });

  it('the schema rejects a missing or mistyped field, in the archive and in the reports inside', async () => {
    const archive = JSON.parse(JSON.stringify(await analyzeSeparately([join(FIXTURES, 'incident.pcap'), GARBAGE], { jobs: 1 }))) as Record<string, any>;
    expect(validateArchiveOpen(archive)).toBe(true);
    const breaks: [string, (a: Record<string, any>) => void][] = [
      ['no kind', (a) => delete a.kind],
      ['a single report\'s kind', (a) => (a.kind = 'report')],
      ['summary.inputs a string', (a) => (a.summary.inputs = '2')],
      ['no summary.readableInputs', (a) => delete a.summary.readableInputs],
      ['no archive entry servers', (a) => delete a.archive[0].servers],
      ['readable not a boolean', (a) => (a.archive[1].readable = 'no')],
      ['a negative count', (a) => (a.archive[0].closeWait = -1)],
      ['a server without its port', (a) => (a.archive[0].servers = ['127.0.0.1'])],
      ['an IPv6 server without brackets', (a) => (a.archive[0].servers = ['::1:20880'])],
      ['no warnings', (a) => delete a.warnings],
      ['reports not an array', (a) => (a.reports = {})],
      ['a report without findings', (a) => delete a.reports[0].findings],
      ['a report with a mistyped finding', (a) => (a.reports[0].findings[0].stuckSeconds = '2.4')],
      ['a report of two inputs', (a) => a.reports[0].inputs.push(a.reports[1].inputs[0])],
    ];
    for (const [what, breakIt] of breaks) {
      const broken = structuredClone(archive);
      breakIt(broken);
      expect(validateArchiveOpen(broken), what).toBe(false);
      expect(validateArchiveClosed(broken), what).toBe(false);
    }
    const extra = structuredClone(archive);
    extra.archive[0].somethingNew = 1;
    expect(validateArchiveOpen(extra)).toBe(true);
    expect(validateArchiveClosed(extra)).toBe(false);
    const extraInReport = structuredClone(archive);
    extraInReport.reports[0].summary.somethingNew = 1;
    expect(validateArchiveOpen(extraInReport)).toBe(true);
    expect(validateArchiveClosed(extraInReport)).toBe(false);
  });

  it('a single report is not an archive, nor an archive a single report', async () => {
    const report: Report = await analyze([join(FIXTURES, 'incident.pcap')]);
    const archive = await analyzeSeparately([join(FIXTURES, 'incident.pcap')], { jobs: 1 });
    expect(validateArchiveOpen(JSON.parse(renderJson(report)))).toBe(false);
    expect(validateOpen(JSON.parse(JSON.stringify(archive)))).toBe(false);
  });
});
