import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareNames, expandInputs, expandPattern } from './inputs.js';

/** A classic pcap file header (µs, little-endian, Ethernet) and nothing else: enough to be picked by magic. */
const PCAP_HEADER = Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex');

describe('inputs: patterns expanded by closewait itself', () => {
  let root = '';
  const at = (...parts: string[]) => join(root, ...parts);

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'closewait-inputs-'));
    mkdirSync(at('archive', 'day1'), { recursive: true });
    mkdirSync(at('archive', 'day2', 'late'), { recursive: true });
    mkdirSync(at('archive', '.hidden'), { recursive: true });
    for (const name of ['probe.pcap', 'probe.pcap1', 'probe.pcap2', 'probe.pcap10', 'notes.txt']) writeFileSync(at('archive', 'day1', name), name.endsWith('.txt') ? 'not a capture' : PCAP_HEADER);
    writeFileSync(at('archive', 'day2', 'a.pcap'), PCAP_HEADER);
    writeFileSync(at('archive', 'day2', 'late', 'b.pcap'), PCAP_HEADER);
    writeFileSync(at('archive', '.hidden', 'c.pcap'), PCAP_HEADER);
    writeFileSync(at('archive', 'day1', '.dot.pcap'), PCAP_HEADER);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('* and ? match within a name, sorted (numbers as numbers), never a leading dot', async () => {
    expect(await expandPattern(at('archive', 'day1', 'probe.pcap*'))).toEqual(['probe.pcap', 'probe.pcap1', 'probe.pcap2', 'probe.pcap10'].map((n) => at('archive', 'day1', n)));
    expect(await expandPattern(at('archive', 'day1', 'probe.pcap?'))).toEqual(['probe.pcap1', 'probe.pcap2'].map((n) => at('archive', 'day1', n)));
    expect(await expandPattern(at('archive', 'day1', '*.pcap'))).toEqual([at('archive', 'day1', 'probe.pcap')]);
    expect(await expandPattern(at('archive', 'day1', '.*.pcap'))).toEqual([at('archive', 'day1', '.dot.pcap')]);
  });

  it('[...] classes, ranges and negation', async () => {
    expect(await expandPattern(at('archive', 'day1', 'probe.pcap[12]'))).toEqual(['probe.pcap1', 'probe.pcap2'].map((n) => at('archive', 'day1', n)));
    expect(await expandPattern(at('archive', 'day1', 'probe.pcap[0-1]*'))).toEqual(['probe.pcap1', 'probe.pcap10'].map((n) => at('archive', 'day1', n)));
    expect(await expandPattern(at('archive', 'day1', 'probe.pcap[!1]'))).toEqual([at('archive', 'day1', 'probe.pcap2')]);
  });

  it('wildcards in directory names, and ** for any depth (not into hidden directories)', async () => {
    expect(await expandPattern(at('archive', 'day*', '*.pcap'))).toEqual([at('archive', 'day1', 'probe.pcap'), at('archive', 'day2', 'a.pcap')]);
    expect(await expandPattern(at('archive', '**', '*.pcap'))).toEqual([at('archive', 'day1', 'probe.pcap'), at('archive', 'day2', 'a.pcap'), at('archive', 'day2', 'late', 'b.pcap')]);
  });

  it('regular-expression characters in a pattern are literal', async () => {
    expect(await expandPattern(at('archive', 'day1', 'probe+pcap*'))).toEqual([]);
    expect(await expandPattern(at('archive', 'day1', 'probe.pcap(1)*'))).toEqual([]);
  });

  it('expandInputs: a pattern matching nothing is a problem; a pattern naming directories recurses them by magic', async () => {
    const none = await expandInputs([at('archive', 'nothing*')]);
    expect(none.paths).toEqual([]);
    expect(none.problems).toEqual([`${at('archive', 'nothing*')}: no file matches the pattern`]);
    const dirs = await expandInputs([at('archive', 'day[12]')]);
    expect(dirs.paths).toEqual([...['.dot.pcap', 'probe.pcap', 'probe.pcap1', 'probe.pcap2', 'probe.pcap10'].map((n) => at('archive', 'day1', n)), at('archive', 'day2', 'a.pcap'), at('archive', 'day2', 'late', 'b.pcap')]);
    expect(dirs.problems).toEqual([]);
  });

  it('an existing file whose name holds pattern characters is read as it is', async () => {
    writeFileSync(at('archive', 'odd[1].pcap'), PCAP_HEADER);
    expect((await expandInputs([at('archive', 'odd[1].pcap')])).paths).toEqual([at('archive', 'odd[1].pcap')]);
  });
});

describe('compareNames', () => {
  it('puts a tcpdump -C set, gzip\'d or not, in the order it was written', () => {
    const names = ['dump10.gz', 'dump2.gz', 'dump', 'dump1', 'dump11', 'dump9', 'dump3.gz'];
    expect([...names].sort(compareNames)).toEqual(['dump', 'dump1', 'dump2.gz', 'dump3.gz', 'dump9', 'dump10.gz', 'dump11']);
  });

  it('keeps -G time stamps, leading zeros and plain names in a sensible order', () => {
    expect(['t-20261126-1300.pcap', 't-20261126-0900.pcap', 't-20261125-2300.pcap'].sort(compareNames)).toEqual(['t-20261125-2300.pcap', 't-20261126-0900.pcap', 't-20261126-1300.pcap']);
    expect(['f10', 'f007', 'f8', 'f08'].sort(compareNames)).toEqual(['f007', 'f8', 'f08', 'f10']);
    expect(['b.pcap', 'a.pcap', 'a.pcapng'].sort(compareNames)).toEqual(['a.pcap', 'a.pcapng', 'b.pcap']);
    expect(compareNames('same', 'same')).toBe(0);
  });
});
