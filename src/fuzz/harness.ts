import { unlink, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { analyze, type AnalyzeOptions } from '../analyze/run.js';
import type { Report } from '../analyze/model.js';
import { renderCsv } from '../report/csv.js';
import { renderHtml } from '../report/html.js';
import { renderJson } from '../report/json.js';
import { renderMarkdown } from '../report/markdown.js';
import { renderText } from '../report/text.js';
import type { Seed, TruncationOracle } from './mutate.js';
import type { Random } from './random.js';
import { locateStructure } from './structure.js';

/**
 * What happened to one input:
 * - report: a report came back (possibly with warnings);
 * - error: the input was refused with one clear line (inputs[0].error);
 * - crash: something threw (analyze or a renderer);
 * - lie: a report came back but contradicts itself, the input's known truth, or a re-read of the same bytes.
 */
export type OutcomeKind = 'report' | 'error' | 'crash' | 'lie';

export interface Outcome {
  kind: OutcomeKind;
  /** For crash and lie: what went wrong, one entry per broken property. */
  problems: string[];
  packets: number;
  warnings: number;
  /** For error: the line the user would see. */
  error: string | null;
  /** A truncation oracle was checked (the answer was known in advance). */
  oracleChecked?: boolean;
}

export interface CheckOptions {
  /** Name the input carries in the report. */
  path?: string;
  oracle?: TruncationOracle | null;
  /** Chunk sizes for the second read; the first read hands over the bytes in one chunk. */
  rng?: Random;
  /** Also read the bytes through chunks of random sizes and require the same report. */
  rechunk?: boolean;
  /** Also write the bytes to this file and read it by path (the file reader, gzip sniffing, first-packet ordering). */
  viaFile?: string;
  /**
   * Also cut the capture in two at a record boundary (the file header repeated) and read the halves as
   * one capture from files named after this path: time ordering, continuity checks, two inputs.
   */
  splitFiles?: string;
  /** Options for every read: small connection caps, port filters and minimum ages take other paths. */
  analyzeOptions?: AnalyzeOptions;
}

/** Streams `bytes` in chunks of the sizes `sizeOf` picks (a fresh Buffer per chunk, as a socket would). */
export function chunkedStream(bytes: Buffer, sizeOf: (remaining: number) => number): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (at >= bytes.length) {
        this.push(null);
        return;
      }
      const size = Math.max(1, Math.min(bytes.length - at, sizeOf(bytes.length - at)));
      this.push(Buffer.from(bytes.subarray(at, at + size)));
      at += size;
    },
  });
}

const baselines = new WeakMap<Seed, Promise<boolean>>();

/**
 * A truncation oracle holds only for a seed the reader takes whole: every frame the structure shows,
 * no warning (a seed with a section version we refuse, say, stops earlier for its own reasons).
 */
export function readsCleanly(seed: Seed): Promise<boolean> {
  let known = baselines.get(seed);
  if (!known) {
    known = analyze([{ path: seed.name, stream: chunkedStream(seed.bytes, (n) => n) }]).then(
      (report) => report.inputs[0]?.error === null && report.warnings.length === 0 && report.summary.packets === seed.layout.packets,
      () => false,
    );
    baselines.set(seed, known);
  }
  return known;
}

/** Runs the analyzer on `bytes` as a stream source and checks every property a hostile input must not break. */
export async function checkInput(bytes: Buffer, options: CheckOptions = {}): Promise<Outcome> {
  // Warnings name the input: the stream reads carry the file's name so all reads must agree word for word.
  const path = options.viaFile ?? options.path ?? 'fuzz-input';
  const outcome: Outcome = { kind: 'report', problems: [], packets: 0, warnings: 0, error: null };
  let report: Report;
  try {
    report = await analyze([{ path, stream: chunkedStream(bytes, (n) => n) }], options.analyzeOptions);
  } catch (error) {
    return { ...outcome, kind: 'crash', problems: [`analyze threw: ${describeThrown(error)}`] };
  }
  const input = report.inputs[0];
  outcome.packets = report.summary.packets;
  outcome.warnings = report.warnings.length;
  outcome.error = input?.error ?? null;
  if (outcome.error !== null) outcome.kind = 'error';

  renderAll(report, outcome.problems);
  if (outcome.problems.length > 0) return { ...outcome, kind: 'crash' };
  checkConsistency(report, outcome.problems);
  if (options.oracle) checkOracle(report, options.oracle, outcome.problems);

  if (options.rechunk && options.rng) {
    const rng = options.rng;
    const style = rng.pick(['tiny', 'random', 'odd'] as const);
    const sizeOf = style === 'tiny' ? () => rng.between(1, 7) : style === 'odd' ? () => rng.pick([1, 3, 11, 13, 17, 4093]) : (n: number) => rng.between(1, Math.max(1, Math.min(n, 70_000)));
    try {
      const again = await analyze([{ path, stream: chunkedStream(bytes, sizeOf) }], options.analyzeOptions);
      const first = renderJson(report);
      const second = renderJson(again);
      // zlib drops what it inflated from a write that ends in an error (and xz or zstd flush what they
      // decoded as their own reads went), so how much of a damaged compressed stream is salvaged depends
      // on where its chunks happened to end: only whole streams must agree.
      const gzipDamaged = [report, again].some((r) => /gzip|stream ends early or is damaged/.test(`${r.inputs[0]?.error ?? ''} ${r.warnings.join(' ')}`));
      if (first !== second && !gzipDamaged) outcome.problems.push(`report differs when the same bytes arrive in ${style} chunks: ${firstDifference(first, second)}`);
    } catch (error) {
      return { ...outcome, kind: 'crash', problems: [`analyze threw on re-chunked input (${style}): ${describeThrown(error)}`] };
    }
  }
  if (options.viaFile) {
    try {
      await writeFile(options.viaFile, bytes);
      const fromFile = await analyze([options.viaFile], options.analyzeOptions);
      const viaStream = renderJson(report);
      const viaPath = renderJson(fromFile);
      if (viaStream !== viaPath) outcome.problems.push(`report differs when the bytes are read from a file: ${firstDifference(viaStream, viaPath)}`);
    } catch (error) {
      return { ...outcome, kind: 'crash', problems: [`analyze threw reading the input from a file: ${describeThrown(error)}`] };
    } finally {
      await unlink(options.viaFile).catch(() => undefined);
    }
  }
  if (options.splitFiles) {
    const layout = locateStructure(bytes);
    if (layout.units.length >= 3) {
      const header = layout.units[0]!;
      const cut = layout.units[1 + Math.floor(layout.units.length / 2) - 1]!.start;
      const halves = [bytes.subarray(0, cut), Buffer.concat([bytes.subarray(header.start, header.start + header.length), bytes.subarray(cut)])];
      const paths = halves.map((_, i) => `${options.splitFiles}${i === 0 ? '' : i}`);
      try {
        await Promise.all(halves.map((half, i) => writeFile(paths[i]!, half)));
        // Named in reverse: reading them in time order is the analyzer's job, not the arguments'.
        const split = await analyze([...paths].reverse(), options.analyzeOptions);
        renderAll(split, outcome.problems);
        checkConsistency(split, outcome.problems, 2);
      } catch (error) {
        return { ...outcome, kind: 'crash', problems: [`analyze threw reading the capture cut in two files: ${describeThrown(error)}`] };
      } finally {
        await Promise.all(paths.map((p) => unlink(p).catch(() => undefined)));
      }
    }
  }
  if (outcome.problems.length > 0) outcome.kind = 'lie';
  return outcome;
}

function renderAll(report: Report, problems: string[]): void {
  const renderers: [string, () => string][] = [
    ['json', () => renderJson(report)],
    ['text', () => renderText(report, { color: false, top: 20 })],
    ['markdown', () => renderMarkdown(report, { top: 20 })],
    ['html', () => renderHtml(report, { top: 20 })],
    ['csv', () => renderCsv(report)],
  ];
  for (const [name, render] of renderers) {
    try {
      const out = render();
      if (typeof out !== 'string' || out.length === 0) problems.push(`${name} renderer returned nothing`);
      else if (/\bNaN\b|\bundefined\b|\[object Object\]/.test(out)) problems.push(`${name} output shows ${/\bNaN\b|\bundefined\b|\[object Object\]/.exec(out)![0]}`);
    } catch (error) {
      problems.push(`${name} renderer threw: ${describeThrown(error)}`);
    }
  }
}

/** A message is one line a person can read: no stack, no newline, not empty, not absurdly long. */
function checkLine(what: string, line: string, problems: string[]): void {
  if (line.length === 0) problems.push(`${what} is empty`);
  if (/[\r\n]/.test(line)) problems.push(`${what} spans lines: ${JSON.stringify(line.slice(0, 200))}`);
  if (/\n\s+at |\bat .*\(.*:\d+:\d+\)/.test(line)) problems.push(`${what} carries a stack trace`);
  if (line.length > 400) problems.push(`${what} is ${line.length} characters long`);
  if (/\bNaN\b|\bundefined\b|\[object /.test(line)) problems.push(`${what} shows a placeholder: ${JSON.stringify(line.slice(0, 200))}`);
}

function checkConsistency(report: Report, problems: string[], inputs = 1): void {
  const { summary } = report;
  if (report.inputs.length !== inputs) problems.push(`${report.inputs.length} inputs reported for ${inputs}`);
  for (const input of report.inputs) {
    if (input.error !== null) {
      checkLine('the error', input.error, problems);
      if (input.packets !== 0) problems.push(`an error (${input.error}) after ${input.packets} packets: should be a warning`);
    }
    if (input.truncated && input.warnings.length === 0 && input.error === null) problems.push('input marked truncated without a warning saying where');
    if (input.packets === 0 && (input.firstPacketTime !== null || input.lastPacketTime !== null)) problems.push('packet times for an input without packets');
  }
  for (const warning of report.warnings) checkLine('a warning', warning, problems);
  const packets = report.inputs.reduce((sum, input) => sum + input.packets, 0);
  if (packets !== summary.packets) problems.push(`inputs' packets ${packets} != summary.packets ${summary.packets}`);
  const skipped = Object.values(summary.skipped).reduce((sum, n) => sum + n, 0);
  if (summary.tcpPackets + skipped !== summary.packets) problems.push(`tcpPackets ${summary.tcpPackets} + skipped ${skipped} != packets ${summary.packets}`);
  if (summary.closeWait !== report.findings.length) problems.push(`summary.closeWait ${summary.closeWait} != ${report.findings.length} findings`);
  if (summary.closeWaitServerSide + summary.closeWaitClientSide !== summary.closeWait) problems.push('server-side + client-side CLOSE_WAIT != closeWait');
  if (summary.connections > summary.tcpPackets) problems.push(`${summary.connections} connections from ${summary.tcpPackets} TCP packets`);
  if (summary.reset + summary.closed + summary.openAtEnd + summary.unanswered + summary.closeWaitAnyAge > summary.connections) {
    problems.push(`reset ${summary.reset} + closed ${summary.closed} + open ${summary.openAtEnd} + unanswered ${summary.unanswered} + CLOSE_WAIT ${summary.closeWaitAnyAge} > ${summary.connections} connections`);
  }
  if (summary.closeWaitAnyAge < summary.closeWait) problems.push(`closeWaitAnyAge ${summary.closeWaitAnyAge} < closeWait ${summary.closeWait}`);
  if (summary.stillSending > summary.openAtEnd || summary.stillSending !== report.stillSending.length) {
    problems.push(`stillSending ${summary.stillSending} (listed ${report.stillSending.length}) is not a part of openAtEnd ${summary.openAtEnd}`);
  }
  for (const finding of report.findings) {
    if (!(finding.stuckSeconds >= 0) || !Number.isFinite(finding.stuckSeconds)) problems.push(`finding stuck for ${finding.stuckSeconds} s`);
    for (const ref of [finding.evidence.firstPacket, finding.evidence.peerFin, finding.evidence.peerFinAck, finding.evidence.lastPacket]) {
      // Frame numbers count every packet block, read or skipped (an unknown interface), as Wireshark does.
      if (!(ref.input >= 0 && ref.input < inputs) || !(ref.frame >= 1)) problems.push(`evidence names frame ${ref.frame} of input ${ref.input}`);
    }
  }
  const bad = nonFiniteNumber(report, 'report');
  if (bad) problems.push(`non-finite number at ${bad}`);
}

function checkOracle(report: Report, oracle: TruncationOracle, problems: string[]): void {
  const input = report.inputs[0]!;
  if (input.packets !== oracle.packets) problems.push(`truncated copy of a clean capture: read ${input.packets} packets, the cut leaves exactly ${oracle.packets}`);
  if (!oracle.cutInside) {
    if (input.truncated) problems.push(`cut on a record boundary, yet reported as truncated: ${input.warnings.join(' | ')}`);
    return;
  }
  if (input.error !== null) {
    if (oracle.packets > 0) problems.push(`cut inside a record after ${oracle.packets} packets, yet refused: ${input.error}`);
    return;
  }
  if (!input.truncated) problems.push('cut inside a record, yet not reported as truncated');
  const at = `byte ${oracle.unitStart.toLocaleString('en-US')}`;
  if (!input.warnings.some((w) => w.includes(at))) problems.push(`cut inside the record at ${at}, but no warning names it: ${input.warnings.join(' | ')}`);
}

function nonFiniteNumber(value: unknown, where: string): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : where;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nonFiniteNumber(value[i], `${where}[${i}]`);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const found = nonFiniteNumber(inner, `${where}.${key}`);
      if (found) return found;
    }
  }
  return null;
}

function firstDifference(x: string, y: string): string {
  let i = 0;
  while (i < x.length && x[i] === y[i]) i++;
  return `${JSON.stringify(x.slice(Math.max(0, i - 60), i + 60))} vs ${JSON.stringify(y.slice(Math.max(0, i - 60), i + 60))}`;
}

export function describeThrown(error: unknown): string {
  if (error instanceof Error) {
    const frame = error.stack?.split('\n').find((line) => line.includes('/src/') || line.includes('/dist/'))?.trim();
    return `${error.name}: ${error.message}${frame ? ` (${frame})` : ''}`;
  }
  return String(error);
}
