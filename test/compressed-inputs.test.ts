import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import { compressionOf } from '../src/capture/compression.js';
import { firstLine } from '../src/capture/external.js';
import { loadTruth, stuckSetFromReport } from './helpers/truth.js';

/**
 * Archives compressed otherwise than gzip (logrotate's compresscmd, tcpdump -z xz): read through the
 * system's own xz, zstd, bzip2 and lz4 (.ci/run installs them), told by their first bytes.
 */
const CLI = resolve('dist/cli/main.js');
const CODECS = [
  { name: 'xz', suffix: 'xz', compress: ['xz', '-c'] },
  { name: 'zstd', suffix: 'zst', compress: ['zstd', '-q', '-c'] },
  { name: 'bzip2', suffix: 'bz2', compress: ['bzip2', '-c'] },
  { name: 'lz4', suffix: 'lz4', compress: ['lz4', '-q', '-c'] },
] as const;

const scratch = mkdtempSync(join(tmpdir(), 'closewait-compressed-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function compress(codec: (typeof CODECS)[number], bytes: Buffer): Buffer {
  const [command, ...args] = codec.compress;
  const run = spawnSync(command, args, { input: bytes, maxBuffer: 1 << 28 });
  if (run.error || run.status !== 0) throw new Error(`${command} is needed for these tests (apt-get install xz-utils zstd bzip2 lz4): ${run.error?.message ?? run.stderr}`);
  return run.stdout;
}

function written(name: string, bytes: Buffer): string {
  const path = join(scratch, name);
  writeFileSync(path, bytes);
  return path;
}

const incident = readFileSync('fixtures/incident.pcap');

describe.each(CODECS)('a capture compressed with $name', (codec) => {
  it('gives the same report as the plain capture, and says how it was compressed', async () => {
    const plain = await analyze(['fixtures/incident.pcap']);
    const path = written(`incident.pcap.${codec.suffix}`, compress(codec, incident));
    const report = await analyze([path]);
    expect(report.inputs[0]).toMatchObject({ compressed: true, compression: codec.name, error: null, truncated: false, packets: plain.inputs[0]!.packets });
    expect(stuckSetFromReport(report)).toEqual(stuckSetFromReport(plain));
    expect(report.summary).toEqual(plain.summary);
    expect(report.warnings).toEqual([]);
  });

  it('cut in half: a report for what was read with a warning, or one line when nothing could be', async () => {
    const compressed = compress(codec, readFileSync('fixtures/probes-2000.pcap'));
    const path = written(`probes-cut.pcap.${codec.suffix}`, compressed.subarray(0, compressed.length >> 1));
    const report = await analyze([path]);
    const input = report.inputs[0]!;
    const damaged = new RegExp(`${codec.name} stream ends early or is damaged \\(${codec.name}: .+\\)`);
    if (input.packets > 0) {
      expect(input.truncated).toBe(true);
      expect(input.warnings.join('\n')).toMatch(damaged);
      expect(input.warnings.join('\n')).toMatch(/kept the [\d,]+ packets before it/);
    } else {
      // bzip2 and lz4 write nothing before a whole block (900 KB, 4 MB) is in.
      expect(input.error).toMatch(damaged);
      expect(input.error).toMatch(/no packet before it$/);
    }
  });
});

describe('compressed inputs', () => {
  it('xz and zstd write out what they decoded before the cut: packets are kept', async () => {
    for (const codec of CODECS.filter((c) => c.name === 'xz' || c.name === 'zstd')) {
      const compressed = compress(codec, readFileSync('fixtures/probes-2000.pcap'));
      const report = await analyze([written(`probes-half.pcap.${codec.suffix}`, compressed.subarray(0, compressed.length >> 1))]);
      expect([codec.name, report.inputs[0]!.packets > 1000]).toEqual([codec.name, true]);
    }
  });

  it('a rotated set compressed four ways, in a directory, is the capture it was cut from', async () => {
    const truth = loadTruth('fixtures/rotated.truth.json');
    const dir = join(scratch, 'rotated');
    mkdirSync(dir);
    truth.files.forEach((file, index) => {
      const bytes = readFileSync(join('fixtures', file));
      const codec = index === 0 ? null : CODECS[(index - 1) % CODECS.length]!;
      writeFileSync(join(dir, codec ? `${file}.${codec.suffix}` : file), codec ? compress(codec, bytes) : bytes);
    });
    const fromDir = await analyze(readdirSync(dir).reverse().map((f) => join(dir, f)));
    const plain = await analyze(truth.files.map((f) => join('fixtures', f)));
    expect(stuckSetFromReport(fromDir)).toEqual(stuckSetFromReport(plain));
    expect(fromDir.summary.connections).toBe(truth.connections);
    // NAME1.xz is NAME1: no member is missing, and the files follow each other in time.
    expect(fromDir.warnings).toEqual([]);
    expect(fromDir.inputs.map((i) => i.compression)).toEqual([null, 'xz', 'zstd', 'bzip2', 'lz4']);
  });

  it('a directory keeps compressed captures by their first bytes, not their names', () => {
    const dir = join(scratch, 'by-magic');
    mkdirSync(dir);
    writeFileSync(join(dir, 'capture-without-suffix'), compress(CODECS[1], incident));
    writeFileSync(join(dir, 'notes.txt'), 'not a capture\n');
    const run = spawnSync(process.execPath, [CLI, 'analyze', '--format', 'json', dir], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as { inputs: { path: string; compression: string }[]; summary: { closeWait: number } };
    expect(report.inputs.map((i) => [i.path.endsWith('capture-without-suffix'), i.compression])).toEqual([[true, 'zstd']]);
    expect(report.summary.closeWait).toBe(loadTruth('fixtures/incident.truth.json').closeWait.length);
  });

  it('from a pipe: zstd -c capture | closewait analyze -', () => {
    const run = spawnSync(process.execPath, [CLI, 'analyze', '--format', 'json', '-'], { input: compress(CODECS[1], incident), encoding: 'utf8' });
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout) as { inputs: { compression: string }[]; summary: { closeWait: number } };
    expect(report.inputs[0]!.compression).toBe('zstd');
    expect(report.summary.closeWait).toBe(loadTruth('fixtures/incident.truth.json').closeWait.length);
  });

  it('the command missing: one line naming it, its package, and the way round it; exit 2', () => {
    const path = written('incident-missing.pcap.xz', compress(CODECS[0], incident));
    const emptyBin = join(scratch, 'empty-bin');
    mkdirSync(emptyBin);
    const run = spawnSync(process.execPath, [CLI, 'analyze', path], { encoding: 'utf8', env: { PATH: emptyBin } });
    expect(run.status).toBe(2);
    const why = 'xz-compressed: the xz command is not installed (apt-get install xz-utils); or decompress it first: xz -dc FILE | closewait analyze -';
    expect(run.stderr.trim()).toBe(`closewait: ${path}: ${why}`);
    // A directory of them: said once for all but the first two.
    const dir = join(scratch, 'all-xz');
    mkdirSync(dir);
    for (let i = 1; i <= 6; i++) writeFileSync(join(dir, `dump${i}.xz`), readFileSync(path));
    const many = spawnSync(process.execPath, [CLI, 'analyze', dir], { encoding: 'utf8', env: { PATH: emptyBin } });
    expect(many.stderr.trim().split('\n')).toEqual([`closewait: ${join(dir, 'dump1.xz')}: ${why}`, `closewait: ${join(dir, 'dump2.xz')}: ${why}`, `closewait: and 4 more inputs: ${why}`]);
  });

  it('the command missing: no input is left open, however many there are', async () => {
    const path = written('incident-fd.pcap.xz', compress(CODECS[0], incident));
    const openFiles = () => readdirSync('/proc/self/fd').length;
    const path0 = process.env.PATH;
    process.env.PATH = join(scratch, 'no-such-bin');
    try {
      await analyze([path]);
      const before = openFiles();
      const report = await analyze(Array.from({ length: 40 }, () => path));
      expect(report.inputs.every((input) => /the xz command is not installed/.test(input.error ?? ''))).toBe(true);
      expect(openFiles()).toBeLessThanOrEqual(before + 2);
    } finally {
      process.env.PATH = path0;
    }
  });

  it('Ctrl-C, which reaches the command too, is an interruption, not damage', async () => {
    // A stand-in for xz: writes the first half of a capture, then waits to be stopped, as xz would
    // while the terminal's SIGINT is on its way to both processes.
    const bin = join(scratch, 'slow-bin');
    mkdirSync(bin);
    const half = written('half.pcap', readFileSync('fixtures/probes-2000.pcap').subarray(0, 500_000));
    const pidFile = join(scratch, 'slow-xz.pid');
    writeFileSync(join(bin, 'xz'), `#!/bin/sh\necho $$ > ${pidFile}\ncat ${half}\nexec sleep 20\n`, { mode: 0o755 });
    const path = written('slow.pcap.xz', compress(CODECS[0], incident));
    const path0 = process.env.PATH;
    process.env.PATH = `${bin}:${path0}`;
    const stop = new AbortController();
    try {
      const reading = analyze([path], { signal: stop.signal });
      const deadline = Date.now() + 5000;
      while (!existsSync(pidFile) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 200));
      stop.abort();
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGINT');
      const input = (await reading).inputs[0]!;
      expect(input.packets).toBeGreaterThan(1000);
      expect(input.truncated).toBe(true);
      expect(input.warnings).toEqual([`interrupted: read ${input.packets.toLocaleString('en-US')} packets before stopping`]);
    } finally {
      process.env.PATH = path0;
    }
  });

  it('something else compressed: the usual "not a capture" line', async () => {
    const report = await analyze([written('notes.txt.xz', compress(CODECS[0], Buffer.from('hello, not a capture\n'.repeat(100))))]);
    expect(report.inputs[0]!.error).toBe('not a pcap or pcapng capture: starts with bytes 68 65 6c 6c (at byte 0)');
  });

  it('magic numbers: each compression by its first bytes; "BZh" without a block size is text', () => {
    for (const codec of CODECS) expect(compressionOf(compress(codec, incident))?.name).toBe(codec.name);
    expect(compressionOf(Buffer.from('BZh is how this line starts'))).toBeNull();
    expect(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0]))?.name).toBe('gzip');
    expect(compressionOf(Buffer.from([0xd4, 0xc3, 0xb2, 0xa1]))).toBeNull();
  });

  it("the commands' complaints lose their stdin prefixes", () => {
    expect(firstLine('xz: (stdin): Unexpected end of input\n')).toBe('Unexpected end of input');
    expect(firstLine('zstd: /*stdin*\\ : Read error (39) : premature end \n')).toBe('Read error (39) : premature end');
    expect(firstLine('\nbzip2: Compressed file ends unexpectedly;\n\tperhaps it is corrupted?\n')).toBe('Compressed file ends unexpectedly');
    expect(firstLine('Error 68 : Unfinished stream\n')).toBe('Error 68 : Unfinished stream');
    expect(firstLine('')).toBeNull();
  });
});
