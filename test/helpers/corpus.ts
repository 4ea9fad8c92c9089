// Helpers for the third-party capture corpus in ../shared/corpus (see its README.md):
// MANIFEST.tsv (one row per capture) and expected.tsv (tshark 4.0 reference figures).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readCapture, type InputSummary } from '../../src/capture/reader.js';
import type { CaptureRecord } from '../../src/capture/record.js';
import { decodeFrame } from '../../src/decode/link.js';
import { DecodeStatus, TCP_FLAG, newTcpSegment } from '../../src/decode/segment.js';
import { formatAddress, formatEndpoint } from '../../src/flow/address.js';
import type { Connection } from '../../src/flow/connection.js';
import { ConnectionTracker } from '../../src/flow/tracker.js';

export const CORPUS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared/corpus');
export const corpusAvailable = existsSync(join(CORPUS_DIR, 'MANIFEST.tsv'));

export interface ManifestRow {
  path: string;
  /** e.g. "pcap LE us", "pcapng mixed us", "pcap LE us modified(Kuznetsov)" */
  format: string;
  linkType: string;
  /** capinfos' packet count, or 'unreadable' when tshark stops with an error */
  packets: number | 'unreadable';
  tcpPackets: number;
  note: string;
}

export interface ExpectedRow {
  path: string;
  tcpStreams: number;
  finPackets: number;
  rstPackets: number;
  /** "src:port>dst:port" of the FIN sender, in tshark's stream order */
  halfClosed: string[];
  caveats: string[];
}

function readTsv(name: string): Record<string, string>[] {
  const [header, ...lines] = readFileSync(join(CORPUS_DIR, name), 'utf8').split('\n').filter((line) => line.length > 0);
  const columns = header!.split('\t');
  return lines.map((line) => {
    const cells = line.split('\t');
    return Object.fromEntries(columns.map((column, i) => [column, cells[i] ?? '']));
  });
}

export function loadManifest(): ManifestRow[] {
  return readTsv('MANIFEST.tsv').map((row) => ({
    path: row.path!,
    format: row.format!,
    linkType: row.link_type!,
    packets: row.packets === 'unreadable' ? 'unreadable' : Number(row.packets),
    tcpPackets: Number(row.tcp_packets),
    note: row.note!,
  }));
}

export function loadExpected(): Map<string, ExpectedRow> {
  const list = (cell: string) => (cell === '-' || cell === '' ? [] : cell.split(/[;,]/));
  return new Map(
    readTsv('expected.tsv').map((row) => [
      row.path!,
      {
        path: row.path!,
        tcpStreams: Number(row.tcp_streams),
        finPackets: Number(row.fin_packets),
        rstPackets: Number(row.rst_packets),
        halfClosed: row.half_closed === '-' ? [] : row.half_closed!.split(';'),
        caveats: list(row.caveats!),
      },
    ]),
  );
}

export const corpusPath = (relative: string) => join(CORPUS_DIR, relative);

/** What the lower stages (reader, decoder, tracker) make of one capture, in tshark's terms. */
export interface TcpView {
  summary: InputSummary;
  tcpPackets: number;
  finPackets: number;
  rstPackets: number;
  /** Every connection the tracker saw, released or still live, in order of birth. */
  connections: Connection[];
  /**
   * tshark's half-closed rule applied to our connections: exactly one side sent FIN and the other
   * sent neither FIN nor RST (acknowledged or not). "finSender>peer", in order of birth.
   */
  halfClosed: string[];
}

/** Same settings as analyze() uses by default. */
const MAX_CONNECTIONS = 1_000_000;
const LINGER_NANOS = 120e9;

export async function tcpView(path: string): Promise<TcpView> {
  const born: Connection[] = [];
  const released = new Set<Connection>();
  const tracker = new ConnectionTracker({
    maxConnections: MAX_CONNECTIONS,
    lingerNanos: LINGER_NANOS,
    // One instance is reused for every release: keep copies.
    onRelease: (connection) => released.add(connection.clone()),
  });
  const segment = newTcpSegment();
  let baseSeconds: number | null = null;
  let tcpPackets = 0;
  let finPackets = 0;
  let rstPackets = 0;
  const onRecord = (record: CaptureRecord) => {
    baseSeconds ??= record.seconds;
    if (decodeFrame(record.linkType, record.data, record.offset, record.caplen, segment) !== DecodeStatus.ok) return;
    tcpPackets++;
    if (segment.flags & TCP_FLAG.FIN) finPackets++;
    if (segment.flags & TCP_FLAG.RST) rstPackets++;
    tracker.onSegment(segment, (record.seconds - baseSeconds) * 1e9 + record.nanos, 0, record.frame);
  };
  const summary = await readCapture({ path }, onRecord);
  for (const connection of released) born.push(connection);
  for (const connection of tracker.live()) born.push(connection);
  born.sort((x, y) => x.serial - y.serial);
  return { summary, tcpPackets, finPackets, rstPackets, connections: born, halfClosed: born.flatMap(halfClosedKey) };
}

export function endpointText(connection: Connection, side: 0 | 1): string {
  return side === 0
    ? formatEndpoint(formatAddress(connection.addressA, connection.family), connection.portA)
    : formatEndpoint(formatAddress(connection.addressB, connection.family), connection.portB);
}

function halfClosedKey(connection: Connection): string[] {
  const { a, b } = connection;
  if (a.finSeen && !b.finSeen && !b.rstSeen) return [`${endpointText(connection, 0)}>${endpointText(connection, 1)}`];
  if (b.finSeen && !a.finSeen && !a.rstSeen) return [`${endpointText(connection, 1)}>${endpointText(connection, 0)}`];
  return [];
}

/** Runs `work` with a deadline: a hang becomes a failure naming the file instead of a stuck suite. */
export async function withinSeconds<T>(seconds: number, what: string, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${seconds} s`)), seconds * 1000);
  });
  try {
    return await Promise.race([work(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
