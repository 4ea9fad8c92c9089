// The fuzzer: that it aims where it claims (length fields found by parsing), that its checks catch what
// they are for, that a run is reproducible, a short bounded run over the real seeds, and the regressions.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import {
  enhancedPacket, ethernet, interfaceDescription, ipv4, ipv6, LINK, pcapFile, pcapngOptions, sectionHeader, tcp, tcpFrame, TCP,
} from '../src/fuzz/build.js';
import { generateInput } from '../src/fuzz/campaign.js';
import { checkInput, chunkedStream } from '../src/fuzz/harness.js';
import { loadPool, syntheticSeeds } from '../src/fuzz/pool.js';
import { Random } from '../src/fuzz/random.js';
import { runFuzz } from '../src/fuzz/runner.js';
import { sweepTruncations } from '../src/fuzz/truncations.js';
import { locateStructure, readField, writeField, type Field } from '../src/fuzz/structure.js';

const REGRESSIONS = 'test/regressions';
const FUZZ_CLI = resolve('dist/fuzz/run.js');
const scratchDirs: string[] = [];
afterAll(() => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const fieldsOf = (fields: Field[], kind: Field['kind']) => fields.filter((f) => f.kind === kind).map((f) => f.offset);

describe('structure: the fields the fuzzer aims at are found by parsing', () => {
  const segment = tcp({ srcPort: 1, dstPort: 2, flags: TCP.SYN, dataOffset: 6 });
  const v4 = ethernet(0x0800, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', ihl: 6, payload: segment }));
  const v6 = ethernet(0x86dd, ipv6({ src: '2001:db8::1', dst: '2001:db8::2', extensions: [{ type: 0, lengthField: 1 }, { type: 44 }, { type: 60 }], payload: segment }));

  it('pcap: record boundaries, caplen, IPv4 IHL and total length, TCP data offset, IPv6 extension lengths', () => {
    const file = pcapFile([{ seconds: 1, data: v4 }, { seconds: 2, data: v6 }]);
    const layout = locateStructure(file);
    const second = 24 + 16 + v4.length;
    expect(layout).toMatchObject({ format: 'pcap', packets: 2, clean: true });
    expect(layout.units.map((u) => [u.start, u.length])).toEqual([[0, 24], [24, 16 + v4.length], [second, 16 + v6.length]]);
    expect(fieldsOf(layout.fields, 'pcap.caplen')).toEqual([24 + 8, second + 8]);
    expect(fieldsOf(layout.fields, 'ipv4.ihl')).toEqual([24 + 16 + 14]);
    expect(fieldsOf(layout.fields, 'ipv4.totalLength')).toEqual([24 + 16 + 14 + 2]);
    const v6Start = second + 16 + 14;
    expect(fieldsOf(layout.fields, 'ipv6.extLength')).toEqual([v6Start + 40 + 1, v6Start + 40 + 16 + 8 + 1]);
    expect(fieldsOf(layout.fields, 'tcp.dataOffset')).toEqual([24 + 16 + 14 + 24 + 12, v6Start + 40 + 32 + 12]);
    const ihl = layout.fields.find((f) => f.kind === 'ipv4.ihl')!;
    expect(readField(file, ihl)).toBe(6);
  });

  it('pcapng, both byte orders: block lengths and trailers, option lengths, EPB caplen, and the packets inside', () => {
    const padding = (4 - (v4.length % 4)) % 4;
    for (const littleEndian of [true, false]) {
      const blocks = [
        sectionHeader({ littleEndian }),
        interfaceDescription(LINK.ethernet, { littleEndian, tsresol: 9 }),
        // Options follow the packet data padded to 4 bytes.
        enhancedPacket({ littleEndian, timestamp: 5n, data: Buffer.concat([v4, Buffer.alloc(padding), pcapngOptions([{ code: 1, value: Buffer.from('hi') }], littleEndian)]), caplen: v4.length }),
      ];
      const file = Buffer.concat(blocks);
      const layout = locateStructure(file);
      const epb = blocks[0]!.length + blocks[1]!.length;
      expect(layout).toMatchObject({ format: 'pcapng', packets: 1, clean: true });
      expect(fieldsOf(layout.fields, 'pcapng.blockLength')).toEqual([4, blocks[0]!.length + 4, epb + 4]);
      expect(fieldsOf(layout.fields, 'pcapng.blockTrailer')).toEqual([blocks[0]!.length - 4, epb - 4, file.length - 4]);
      expect(fieldsOf(layout.fields, 'pcapng.caplen')).toEqual([epb + 20]);
      // if_tsresol and opt_endofopt in the IDB; opt_comment and opt_endofopt after the EPB's data.
      const epbOptions = epb + 28 + v4.length + padding;
      expect(fieldsOf(layout.fields, 'pcapng.optionLength')).toEqual([blocks[0]!.length + 16 + 2, blocks[0]!.length + 24 + 2, epbOptions + 2, epbOptions + 8 + 2]);
      expect(fieldsOf(layout.fields, 'ipv4.ihl')).toEqual([epb + 28 + 14]);
      const length = layout.fields.find((f) => f.kind === 'pcapng.blockLength' && f.offset === epb + 4)!;
      expect(readField(file, length)).toBe(blocks[2]!.length);
    }
  });

  it('writeField changes exactly the field (nibbles keep their other half)', () => {
    const file = pcapFile([{ seconds: 1, data: v4 }]);
    const layout = locateStructure(file);
    const ihl = layout.fields.find((f) => f.kind === 'ipv4.ihl')!;
    const copy = Buffer.from(file);
    writeField(copy, ihl, 3);
    expect(copy[ihl.offset]).toBe(0x43);
    expect(Buffer.compare(copy.subarray(0, ihl.offset), file.subarray(0, ihl.offset))).toBe(0);
    expect(Buffer.compare(copy.subarray(ihl.offset + 1), file.subarray(ihl.offset + 1))).toBe(0);
  });
});

describe('the checks catch what they are for', () => {
  const closeWait = pcapFile(
    [
      tcpFrame('10.0.0.1', '10.0.0.2', { srcPort: 4000, dstPort: 80, flags: TCP.SYN, seq: 1 }),
      tcpFrame('10.0.0.2', '10.0.0.1', { srcPort: 80, dstPort: 4000, flags: TCP.SYN | TCP.ACK, seq: 9, ack: 2 }),
      tcpFrame('10.0.0.1', '10.0.0.2', { srcPort: 4000, dstPort: 80, flags: TCP.FIN | TCP.ACK, seq: 2, ack: 10 }),
      tcpFrame('10.0.0.2', '10.0.0.1', { srcPort: 80, dstPort: 4000, flags: TCP.ACK, seq: 10, ack: 3 }),
    ].map((data, i) => ({ seconds: 100 + i, data })),
  );

  it('a truncation oracle that the reader disagrees with is reported as a lie', async () => {
    expect((await checkInput(closeWait, { oracle: { packets: 4, cutInside: false, unitStart: closeWait.length } })).kind).toBe('report');
    const wrong = await checkInput(closeWait, { oracle: { packets: 3, cutInside: false, unitStart: 0 } });
    expect(wrong.kind).toBe('lie');
    expect(wrong.problems).toEqual(['truncated copy of a clean capture: read 4 packets, the cut leaves exactly 3']);
    const cut = closeWait.subarray(0, closeWait.length - 5);
    const start = closeWait.length - 16 - 54;
    expect((await checkInput(cut, { oracle: { packets: 3, cutInside: true, unitStart: start } })).kind).toBe('report');
    const elsewhere = await checkInput(cut, { oracle: { packets: 3, cutInside: true, unitStart: start - 1 } });
    expect(elsewhere.problems[0]).toMatch(new RegExp(`^cut inside the record at byte ${start - 1}, but no warning names it`));
  });

  it('a clear error comes back as an error outcome, with the line the user sees', async () => {
    const outcome = await checkInput(Buffer.from('not a capture at all'));
    expect(outcome).toMatchObject({ kind: 'error', problems: [], error: 'not a pcap or pcapng capture: starts with bytes 6e 6f 74 20 (at byte 0)' });
  });

  it('the same bytes in chunks of any size give the same report (what the re-chunk check relies on)', async () => {
    const rng = new Random(3);
    const whole = await analyze([{ path: 'x', stream: chunkedStream(closeWait, (n) => n) }]);
    for (const size of [1, 2, 3, 15, 16, 17, 23, 24, 25]) {
      const chunked = await analyze([{ path: 'x', stream: chunkedStream(closeWait, () => size) }]);
      expect(chunked).toEqual(whole);
    }
    expect((await checkInput(closeWait, { rechunk: true, rng })).kind).toBe('report');
  });
});

describe('truncation at every record boundary and inside every record', () => {
  it('every clean seed of up to 10 records, cut at each point, reads exactly the records before the cut', async () => {
    const sweep = await sweepTruncations(loadPool().seeds, { maxUnits: 10 });
    expect(sweep.failures.map((f) => `${f.seed} cut at ${f.cut}: ${f.outcome.problems.join('; ')}`)).toEqual([]);
    expect(sweep.seeds).toBeGreaterThan(6);
    expect(sweep.cuts).toBeGreaterThan(sweep.seeds * 5);
  }, 60_000);
});

describe('reproducible runs', () => {
  it('input i of seed s is the same bytes every time, and differs between seeds', () => {
    const pool = { seeds: syntheticSeeds(), fingerprint: 'synthetic', sources: [] };
    for (let index = 0; index < 50; index++) {
      const first = generateInput(pool, 42, index);
      const again = generateInput(pool, 42, index);
      expect(again.bytes.equals(first.bytes)).toBe(true);
      expect(again.steps).toEqual(first.steps);
    }
    const differing = Array.from({ length: 50 }, (_, i) => !generateInput(pool, 42, i).bytes.equals(generateInput(pool, 43, i).bytes)).filter(Boolean).length;
    expect(differing).toBeGreaterThan(40);
  });

  it('the seed pool is the same list every time it is loaded, and says so in its fingerprint', () => {
    const first = loadPool();
    const again = loadPool();
    expect(again.fingerprint).toBe(first.fingerprint);
    expect(first.seeds.length).toBeGreaterThan(6);
  });
});

describe('a bounded fuzz run over fixtures, corpus and synthetic seeds', () => {
  it('every seed as it is (corpus, fixtures, regressions) gives a report or one clear error line, the same in any chunks', async () => {
    const pool = loadPool();
    const rng = new Random(11);
    const broken: string[] = [];
    let errors = 0;
    for (const seed of pool.seeds) {
      const outcome = await checkInput(seed.bytes, { path: seed.name, rechunk: true, rng });
      if (outcome.kind === 'crash' || outcome.kind === 'lie') broken.push(`${seed.name}: ${outcome.problems.join('; ')}`);
      if (outcome.kind === 'error') errors++;
    }
    expect(broken).toEqual([]);
    expect(errors).toBeGreaterThan(0); // the corpus holds deliberately unreadable files
  }, 60_000);

  it('6,000 inputs of seed 20261126: no crash, hang, lie or memory failure', async () => {
    const summary = await runFuzz({ seed: 20261126, count: 6000, inThread: true, timeLimitSeconds: 25, inputTimeoutMs: 5000 });
    expect(summary.failures).toEqual([]);
    expect(summary.inputs).toBeGreaterThan(1000);
    expect(summary.reports).toBeGreaterThan(0);
    expect(summary.errors).toBeGreaterThan(0);
    expect(summary.oracleChecks).toBeGreaterThan(0);
    expect(summary.crashes + summary.hangs + summary.lies + summary.memory).toBe(0);
  }, 60_000);

  it('npm run fuzz (worker threads, hang watchdog): a summary, and exit 1 with the input saved when an input is too slow', () => {
    if (!existsSync(FUZZ_CLI)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
    const out = mkdtempSync(join(tmpdir(), 'closewait-fuzz-test-'));
    scratchDirs.push(out);
    const ok = spawnSync(process.execPath, [FUZZ_CLI, '--seed', '5', '--count', '200', '--json', '--quiet', '--out', out], { encoding: 'utf8', timeout: 60_000 });
    expect(ok.status).toBe(0);
    const summary = JSON.parse(ok.stdout) as { inputs: number; crashes: number; hangs: number; failures: unknown[] };
    expect(summary).toMatchObject({ inputs: 200, crashes: 0, hangs: 0, failures: [] });
    // A bound no input can meet: every input is a "hang", its worker killed and replaced, the input kept.
    const slow = spawnSync(process.execPath, [FUZZ_CLI, '--seed', '5', '--count', '2', '--input-timeout', '1ms', '--quiet', '--out', out], { encoding: 'utf8', timeout: 60_000 });
    expect(slow.status).toBe(1);
    expect(slow.stdout).toMatch(/crashes 0, hangs 2,/);
    expect(readdirSync(out).sort()).toEqual(['hang-seed5-input0.bin', 'hang-seed5-input0.bin.txt', 'hang-seed5-input1.bin', 'hang-seed5-input1.bin.txt']);
    expect(readFileSync(join(out, 'hang-seed5-input1.bin.txt'), 'utf8')).toContain('rebuild: npm run fuzz -- --seed 5 --first 1 --count 1');
  }, 120_000);
});

describe('regressions: inputs that once broke the analyzer', () => {
  const expected = JSON.parse(readFileSync(join(REGRESSIONS, 'expected.json'), 'utf8')) as Record<string, { packets: number; error: string | null; closeWait: number; warnings: string[] }>;
  const files = readdirSync(REGRESSIONS).filter((name) => !name.endsWith('.json') && !name.endsWith('.md'));

  it('every file is listed in expected.json, and every entry has its file', () => {
    expect(files.sort()).toEqual(Object.keys(expected).sort());
  });

  it.each(files)('%s: passes every fuzz check and says what expected.json says', async (name) => {
    const bytes = readFileSync(join(REGRESSIONS, name));
    const outcome = await checkInput(bytes, { rechunk: true, rng: new Random(7), oracle: null });
    expect(outcome.problems).toEqual([]);
    const report = await analyze([{ path: name, stream: Readable.from([bytes]) }]);
    const want = expected[name]!;
    expect(report.summary.packets).toBe(want.packets);
    expect(report.inputs[0]!.error).toBe(want.error);
    expect(report.summary.closeWait).toBe(want.closeWait);
    expect(report.warnings).toEqual(want.warnings.map((w) => `${name}: ${w}`));
  });

  it('they are seeds of every fuzz run (past crashers are the best place to look for the next)', () => {
    const names = loadPool().seeds.map((seed) => seed.name);
    for (const name of files) expect(names).toContain(name);
  });
});
