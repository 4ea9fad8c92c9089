import { readCapture } from '../capture/reader.js';
import { decodeFrame } from '../decode/link.js';
import { DecodeStatus, TCP_FLAG, newTcpSegment } from '../decode/segment.js';

/**
 * The traffic shape a benchmark capture is judged by: how big frames are, how many are pure ACKs, how
 * many packets a connection has. The generator counts it while writing; `measureShape` counts the same
 * on any capture, so a synthetic file can be set beside a real-kernel one.
 */
export const FRAME_SIZE_BUCKETS = [
  { label: '<=60', max: 60 },
  { label: '61-66', max: 66 },
  { label: '67-74', max: 74 },
  { label: '75-127', max: 127 },
  { label: '128-255', max: 255 },
  { label: '256-511', max: 511 },
  { label: '512-1023', max: 1023 },
  { label: '1024-1499', max: 1499 },
  { label: '1500-1514', max: 1514 },
  { label: '>1514', max: Number.POSITIVE_INFINITY },
] as const;

export const PACKETS_PER_CONNECTION_BUCKETS = [
  { label: '1-2', max: 2 },
  { label: '3-4', max: 4 },
  { label: '5-8', max: 8 },
  { label: '9-16', max: 16 },
  { label: '17-32', max: 32 },
  { label: '33-64', max: 64 },
  { label: '65-256', max: 256 },
  { label: '257-4096', max: 4096 },
  { label: '>4096', max: Number.POSITIVE_INFINITY },
] as const;

export interface Shape {
  packets: number;
  frameBytes: number;
  /** ACK flag alone, no payload. */
  pureAcks: number;
  /** Segments carrying payload. */
  dataSegments: number;
  connections: number;
  frameSizes: Record<string, number>;
  packetsPerConnection: Record<string, number>;
}

export class ShapeCounter {
  private packets = 0;
  private frameBytes = 0;
  private pureAcks = 0;
  private dataSegments = 0;
  private connections = 0;
  private readonly frameSizes = new Array<number>(FRAME_SIZE_BUCKETS.length).fill(0);
  private readonly perConnection = new Array<number>(PACKETS_PER_CONNECTION_BUCKETS.length).fill(0);

  frame(frameLength: number, tcpFlags: number, payloadLength: number): void {
    this.packets++;
    this.frameBytes += frameLength;
    this.frameSizes[bucketOf(FRAME_SIZE_BUCKETS, frameLength)]!++;
    if (payloadLength > 0) this.dataSegments++;
    else if (tcpFlags === TCP_FLAG.ACK) this.pureAcks++;
  }

  connection(packets: number): void {
    this.connections++;
    this.perConnection[bucketOf(PACKETS_PER_CONNECTION_BUCKETS, packets)]!++;
  }

  result(): Shape {
    return {
      packets: this.packets,
      frameBytes: this.frameBytes,
      pureAcks: this.pureAcks,
      dataSegments: this.dataSegments,
      connections: this.connections,
      frameSizes: Object.fromEntries(FRAME_SIZE_BUCKETS.map((b, i) => [b.label, this.frameSizes[i]!])),
      packetsPerConnection: Object.fromEntries(PACKETS_PER_CONNECTION_BUCKETS.map((b, i) => [b.label, this.perConnection[i]!])),
    };
  }
}

function bucketOf(buckets: readonly { max: number }[], value: number): number {
  for (let i = 0; i < buckets.length; i++) if (value <= buckets[i]!.max) return i;
  return buckets.length - 1;
}

/**
 * Counts the shape of a capture file. A connection is a 4-tuple, split when a SYN with a new ISN
 * arrives on it (port reuse). Meant for small reference captures: it keys connections by string.
 */
export async function measureShape(path: string): Promise<Shape> {
  const counter = new ShapeCounter();
  const segment = newTcpSegment();
  const open = new Map<string, { packets: number; isn: number }>();
  const summary = await readCapture({ path }, (record) => {
    if (decodeFrame(record.linkType, record.data, record.offset, record.caplen, segment) !== DecodeStatus.ok) return;
    counter.frame(record.origLen, segment.flags, segment.payloadLength);
    const a = `${segment.src.join('.')}:${segment.srcPort}`;
    const b = `${segment.dst.join('.')}:${segment.dstPort}`;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    const isSyn = (segment.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK)) === TCP_FLAG.SYN;
    let connection = open.get(key);
    if (connection && isSyn && connection.isn !== segment.seq) {
      counter.connection(connection.packets);
      connection = undefined;
    }
    if (!connection) {
      connection = { packets: 0, isn: isSyn ? segment.seq : -1 };
      open.set(key, connection);
    }
    connection.packets++;
  });
  if (summary.error) throw new Error(`${path}: ${summary.error}`);
  for (const connection of open.values()) counter.connection(connection.packets);
  return counter.result();
}

/** One line per figure, for setting two shapes side by side in a Markdown table. */
export function compareShapes(columns: { name: string; shape: Shape }[]): string {
  const header = `| | ${columns.map((c) => c.name).join(' | ')} |\n|---|${columns.map(() => '---:').join('|')}|\n`;
  const row = (label: string, value: (s: Shape) => string) => `| ${label} | ${columns.map((c) => value(c.shape)).join(' | ')} |\n`;
  const percent = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');
  let text = header;
  text += row('packets', (s) => s.packets.toLocaleString('en-US'));
  text += row('connections', (s) => s.connections.toLocaleString('en-US'));
  text += row('mean frame bytes', (s) => (s.packets ? (s.frameBytes / s.packets).toFixed(0) : '-'));
  text += row('pure ACKs', (s) => percent(s.pureAcks, s.packets));
  text += row('segments with payload', (s) => percent(s.dataSegments, s.packets));
  text += row('packets per connection (mean)', (s) => (s.connections ? (s.packets / s.connections).toFixed(1) : '-'));
  for (const bucket of FRAME_SIZE_BUCKETS) text += row(`frames ${bucket.label} B`, (s) => percent(s.frameSizes[bucket.label] ?? 0, s.packets));
  for (const bucket of PACKETS_PER_CONNECTION_BUCKETS) {
    text += row(`connections with ${bucket.label} packets`, (s) => percent(s.packetsPerConnection[bucket.label] ?? 0, s.connections));
  }
  return text;
}
