import { createReadStream, existsSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runProgram, type ProgramIo } from '../src/cli/program.js';

const INCIDENT = 'fixtures/incident.pcap';

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

async function cli(args: string[], options: { stdin?: Readable; tty?: boolean; env?: NodeJS.ProcessEnv } = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  stdout.isTTY = options.tty ?? false;
  const io: ProgramIo = { stdout, stderr, stdin: options.stdin ?? Readable.from([]), env: options.env ?? {} };
  const code = await runProgram(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const scratchDirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'closewait-cli-'));
  scratchDirs.push(dir);
  return dir;
};
afterAll(() => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const truthOf = (name: string) => JSON.parse(readFileSync(`fixtures/${name}.truth.json`, 'utf8')) as { closeWait: unknown[]; connections: number };

describe('closewait analyze (in-process)', () => {
  it('--help lists the options and examples, exit 0', async () => {
    const { code, stdout } = await cli(['analyze', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--min-age');
    expect(stdout).toContain('Examples:');
    expect(stdout).toContain('Exit codes');
  });

  it('a usage error is exit 2 with a message', async () => {
    const unknown = await cli(['analyze', '--frobnicate', INCIDENT]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option/);
    const badPort = await cli(['analyze', '--port', '70000', INCIDENT]);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/'70000' is not a port/);
    const badAge = await cli(['analyze', '--min-age', 'soon', INCIDENT]);
    expect(badAge.code).toBe(2);
    expect(badAge.stderr).toMatch(/not a duration/);
  });

  it('a missing file is one line and exit 2', async () => {
    const { code, stderr, stdout } = await cli(['analyze', 'no/such.pcap']);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual(['closewait: no/such.pcap: no such file or directory']);
    expect(stdout).toBe('');
  });

  it('a file that is not a capture is one line naming what and where, exit 2', async () => {
    const dir = scratch();
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'this is not a capture\n');
    const { code, stderr } = await cli(['analyze', path]);
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([`closewait: ${path}: not a pcap or pcapng capture: starts with bytes 74 68 69 73 (at byte 0)`]);
  });

  it('reports the incident: verdict, servers, stuck connections; plain text when not a terminal', async () => {
    const { code, stdout, stderr } = await cli(['analyze', INCIDENT]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^✗ \d+ connections? stuck in CLOSE_WAIT on 127\.0\.0\.1:20880/);
    expect(stdout).toContain('Stuck connections');
    expect(stdout).not.toMatch(/\u001b\[/);
    expect(stderr).toBe(''); // no progress line when stderr is not a terminal
  });

  it('colours on a terminal, unless NO_COLOR or --no-color', async () => {
    expect((await cli(['analyze', INCIDENT], { tty: true })).stdout).toMatch(/\u001b\[/);
    expect((await cli(['analyze', INCIDENT], { tty: true, env: { NO_COLOR: '1' } })).stdout).not.toMatch(/\u001b\[/);
    expect((await cli(['analyze', '--no-color', INCIDENT], { tty: true })).stdout).not.toMatch(/\u001b\[/);
  });

  it('--fail-on-findings exits 1 when something is stuck, 0 when nothing is', async () => {
    expect((await cli(['analyze', '--fail-on-findings', INCIDENT])).code).toBe(1);
    expect((await cli(['analyze', '--fail-on-findings', 'fixtures/slow-close.pcap'])).code).toBe(0);
  });

  it('--format json matches the kernel truth for the incident', async () => {
    const { code, stdout } = await cli(['analyze', '--format', 'json', INCIDENT]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    const truth = truthOf('incident');
    expect(report.schemaVersion).toBe(1);
    expect(report.summary.closeWait).toBe(truth.closeWait.length);
    expect(report.summary.connections).toBe(truth.connections);
    expect(report.command).toBe(`closewait analyze --format json ${INCIDENT}`);
  });

  it('--min-age hides younger stuck connections and says so', async () => {
    const { stdout } = await cli(['analyze', '--min-age', '10h', INCIDENT]);
    expect(stdout).toMatch(/no connection stuck for 10 h 0 min or more; \d+ younger ones?/);
  });

  it('--top caps the list and counts the rest; --all lists every one', async () => {
    const top = await cli(['analyze', '--top', '1', INCIDENT]);
    expect(top.stdout).toMatch(/… \d+ more \(use --all or --top N\)/);
    const all = await cli(['analyze', '--all', INCIDENT]);
    expect(all.stdout).not.toContain('use --all');
  });

  it('--output writes atomically, picks the format from the extension, and never overwrites an input', async () => {
    const dir = scratch();
    const out = join(dir, 'report.json');
    const { code, stdout } = await cli(['analyze', '-o', out, INCIDENT]);
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(JSON.parse(readFileSync(out, 'utf8')).schemaVersion).toBe(1);
    expect(readdirSync(dir)).toEqual(['report.json']);
    const refused = await cli(['analyze', '-o', INCIDENT, INCIDENT]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refusing to overwrite input capture/);
  });

  it('reads stdin for "-"', async () => {
    const { code, stdout } = await cli(['analyze', '--format', 'json', '-'], { stdin: createReadStream(INCIDENT) });
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.inputs[0].path).toBe('<stdin>');
    expect(report.summary.closeWait).toBe(truthOf('incident').closeWait.length);
  });

  it('reads gzip from stdin too', async () => {
    const gz = readdirSync('fixtures').find((f) => f.endsWith('.pcap.gz'));
    expect(gz).toBeDefined();
    const { code, stdout } = await cli(['analyze', '--format', 'json', '-'], { stdin: createReadStream(join('fixtures', gz!)) });
    expect(code).toBe(0);
    expect(JSON.parse(stdout).inputs[0].compressed).toBe(true);
  });

  it('some inputs unreadable: named on stderr, the report covers the rest, exit 0', async () => {
    const dir = scratch();
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, Buffer.alloc(100, 0x41));
    const { code, stdout, stderr } = await cli(['analyze', '--format', 'json', INCIDENT, junk]);
    expect(code).toBe(0);
    expect(stderr).toContain(`${junk}: not a pcap or pcapng capture`);
    const report = JSON.parse(stdout);
    expect(report.inputs.map((i: { error: string | null }) => i.error === null)).toEqual([true, false]);
  });

  it('--port restricts the analysis to those server ports', async () => {
    const both = JSON.parse((await cli(['analyze', '--format', 'json', 'fixtures/two-services.pcap'])).stdout);
    const one = JSON.parse((await cli(['analyze', '--format', 'json', '--port', '8080', 'fixtures/two-services.pcap'])).stdout);
    expect(one.summary.connections).toBeLessThan(both.summary.connections);
    expect(one.servers.every((s: { port: number }) => s.port === 8080)).toBe(true);
    expect(one.summary.filteredOut).toBeGreaterThan(0);
  });

  it('--separate gives an archive summary and a report per input', async () => {
    const { code, stdout } = await cli(['analyze', '--separate', '--format', 'json', INCIDENT, 'fixtures/slow-close.pcap']);
    expect(code).toBe(0);
    const archive = JSON.parse(stdout);
    expect(archive.kind).toBe('archive');
    expect(archive.reports).toHaveLength(2);
    expect(archive.summary.inputsWithCloseWait).toBe(1);
    expect(archive.archive.find((e: { path: string }) => e.path === INCIDENT).closeWait).toBe(truthOf('incident').closeWait.length);
  });

  it('--separate still names a file missing from a rotated set', async () => {
    const { code, stdout } = await cli(['analyze', '--separate', '--format', 'json', ...['rotated.pcap', 'rotated.pcap1', 'rotated.pcap3'].map((n) => join('fixtures', n))]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).warnings).toEqual(['rotated set rotated.pcap* lacks rotated.pcap2']);
    const markdown = await cli(['analyze', '--separate', '--format', 'markdown', ...['rotated.pcap', 'rotated.pcap1', 'rotated.pcap3'].map((n) => join('fixtures', n))]);
    expect(markdown.stdout).toMatch(/\*\*Warnings:\*\*\n\n- rotated set rotated\.pcap\* lacks rotated\.pcap2\n/);
  });

  it('a directory argument is recursed for captures, picked by content', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'README'), 'not a capture');
    writeFileSync(join(dir, 'renamed.bin'), readFileSync(INCIDENT));
    const { code, stdout } = await cli(['analyze', '--format', 'json', dir]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).inputs.map((i: { path: string }) => i.path)).toEqual([join(dir, 'renamed.bin')]);
  });

  it('a quoted pattern is expanded by closewait: the rotated set in one argument gives the single capture\'s findings', async () => {
    const dir = scratch();
    for (const name of readdirSync('fixtures').filter((n) => /^rotated\.pcap\d*$/.test(n))) writeFileSync(join(dir, name), readFileSync(join('fixtures', name)));
    const { code, stdout, stderr } = await cli(['analyze', '--format', 'json', join(dir, 'rotated.pcap*')]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.inputs).toHaveLength(5);
    expect(report.summary.closeWait).toBe(truthOf('rotated').closeWait.length);
    const none = await cli(['analyze', join(dir, 'nothing-*.pcap')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`closewait: ${join(dir, 'nothing-*.pcap')}: no file matches the pattern\n`);
  });

  it('interrupted, stdin is read on until the writer (Ctrl-C reached it too) flushes and closes it', async () => {
    const whole = await cli(['analyze', '--format', 'json', INCIDENT]);
    const bytes = readFileSync(INCIDENT);
    const controller = new AbortController();
    const stdin = new PassThrough();
    stdin.write(bytes.subarray(0, 4096));
    const stdout = new Capture();
    const stderr = new Capture();
    const done = runProgram(['analyze', '--format', 'json', '-'], { stdout, stderr, stdin, env: {}, signal: controller.signal });
    setTimeout(() => {
      controller.abort();
      // What tcpdump does on SIGINT: writes what it still buffers, then exits.
      setTimeout(() => stdin.end(bytes.subarray(4096)), 100);
    }, 100);
    expect(await done).toBe(0);
    const report = JSON.parse(stdout.text);
    expect(report.summary.packets).toBe(JSON.parse(whole.stdout).summary.packets);
    expect(report.findings).toEqual(JSON.parse(whole.stdout).findings);
    expect(report.warnings.join('\n')).toMatch(/interrupted/);
  });

  it.skipIf(process.platform === 'win32')('interrupted, a FIFO whose writer stays silent is given up after the grace period', async () => {
    const fifo = join(scratch(), 'live.fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // Writes a capture, then holds the FIFO open without writing (a tcpdump the signal did not reach).
    const hold = `const fs = require('node:fs'); const fd = fs.openSync(process.argv[1], 'w'); fs.writeSync(fd, fs.readFileSync(process.argv[2])); setTimeout(() => {}, 20000);`;
    const writer = spawn(process.execPath, ['-e', hold, fifo, INCIDENT], { stdio: 'ignore' });
    try {
      const controller = new AbortController();
      const stdout = new Capture();
      const done = runProgram(['analyze', '--format', 'json', fifo], { stdout, stderr: new Capture(), stdin: Readable.from([]), env: {}, signal: controller.signal });
      setTimeout(() => controller.abort(), 300);
      expect(await done).toBe(0);
      const report = JSON.parse(stdout.text);
      expect(report.summary.packets).toBeGreaterThan(0);
      expect(report.warnings.join('\n')).toMatch(/interrupted/);
    } finally {
      writer.kill();
    }
  }, 10_000); // the writer holds the FIFO 20 s: a reader waiting for it fails here

  it('an interrupted stdin still yields a report for what was read', async () => {
    const controller = new AbortController();
    const stdin = new PassThrough();
    stdin.write(readFileSync(INCIDENT));
    const stdout = new Capture();
    const stderr = new Capture();
    const done = runProgram(['analyze', '--format', 'json', '-'], { stdout, stderr, stdin, env: {}, signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    expect(await done).toBe(0);
    const report = JSON.parse(stdout.text);
    expect(report.inputs[0].truncated).toBe(true);
    expect(report.warnings.join('\n')).toMatch(/interrupted/);
    expect(report.summary.packets).toBeGreaterThan(0);
  });
});

it('the fixtures this test relies on exist', () => {
  for (const name of [INCIDENT, 'fixtures/slow-close.pcap', 'fixtures/two-services.pcap']) expect(existsSync(name)).toBe(true);
});
