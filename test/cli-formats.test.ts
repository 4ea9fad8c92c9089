import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { runProgram, type ProgramIo } from '../src/cli/program.js';
import { CSV_COLUMNS, parseCsv } from '../src/report/csv.js';

class Capture extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

async function cli(args: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  const io: ProgramIo = { stdout, stderr, stdin: Readable.from([]), env: {} };
  const code = await runProgram(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const dir = mkdtempSync(join(tmpdir(), 'closewait-formats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--format markdown | html | csv', () => {
  it('markdown on stdout carries the exact command', async () => {
    const { code, stdout } = await cli(['analyze', '--format', 'markdown', '--top', '3', 'fixtures/incident.pcap']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^# 26 connections stuck in CLOSE_WAIT on 127\.0\.0\.1:20880\n/);
    expect(stdout).toContain('## Stuck connections (3 of 26, longest stuck first)');
    expect(stdout).toContain('```sh\nclosewait analyze --format markdown --top 3 fixtures/incident.pcap\n```');
  });

  it.each([
    ['report.md', /^# 26 connections/],
    ['report.html', /^<!doctype html>/],
    ['report.htm', /^<!doctype html>/],
    ['report.csv', new RegExp(`^${CSV_COLUMNS.join(',')}\\r\\n`)],
  ])('the format follows the --output extension: %s', async (name, start) => {
    const output = join(dir, name);
    const { code } = await cli(['analyze', '--output', output, 'fixtures/incident.pcap']);
    expect(code).toBe(0);
    expect(readFileSync(output, 'utf8')).toMatch(start);
  });

  it('--separate --format csv: one header, the rows of every input', async () => {
    const { code, stdout } = await cli(['analyze', '--separate', '--jobs', '1', '--format', 'csv', 'fixtures/incident.pcap', 'fixtures/client-stuck.pcap']);
    expect(code).toBe(0);
    const rows = parseCsv(stdout);
    expect(rows.filter((r) => r[0] === 'kind')).toHaveLength(1);
    expect(rows).toHaveLength(1 + 26 + 5);
  });

  it('--separate --format html: one page with a section per input', async () => {
    const { code, stdout } = await cli(['analyze', '--separate', '--jobs', '1', '--format', 'html', 'fixtures/incident.pcap', 'fixtures/client-stuck.pcap']);
    expect(code).toBe(0);
    expect(stdout.match(/<!doctype html>/g)).toHaveLength(1);
    expect(stdout.match(/<section class="report">/g)).toHaveLength(2);
    expect(stdout).toContain('2 of 2 inputs with connections stuck in CLOSE_WAIT');
  });

  it('an unknown format is a usage error', async () => {
    const { code, stderr } = await cli(['analyze', '--format', 'pdf', 'fixtures/incident.pcap']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/markdown, html, csv/);
  });
});
