import { Readable } from 'node:stream';
import { pcapHeader, TCP, tcpFrame } from './build.js';

export interface SynFloodOptions {
  /** Distinct 4-tuples, one SYN each. */
  tuples: number;
  /** Capture time between packets, in microseconds; negative runs the clock backwards. */
  spacingMicros?: number;
  /** TCP flags of every packet (SYN by default; RST makes each a connection closed at birth). */
  flags?: number;
  /** SYNs per chunk handed to the reader. */
  packetsPerChunk?: number;
  startSeconds?: number;
}

const SERVER = '192.0.2.1';
const SERVER_PORT = 80;
const PORTS_PER_ADDRESS = 60_000;

/**
 * A pcap of `tuples` SYNs from distinct (address, port) pairs to one server, made on the fly: the
 * bytes of a 10-million-tuple flood (700 MB) never exist at once, only one chunk at a time.
 * Each SYN is a copy of one template frame with its time, source address, port and ISN patched in.
 */
export function synFloodStream(options: SynFloodOptions): Readable {
  const spacing = options.spacingMicros ?? 1;
  const perChunk = options.packetsPerChunk ?? 4096;
  const startSeconds = options.startSeconds ?? 1_700_000_000;
  const frame = tcpFrame('10.0.0.0', SERVER, { srcPort: 1024, dstPort: SERVER_PORT, flags: options.flags ?? TCP.SYN, seq: 0 });
  const recordBytes = 16 + frame.length;
  const template = Buffer.alloc(recordBytes);
  template.writeUInt32LE(frame.length, 8);
  template.writeUInt32LE(frame.length, 12);
  frame.copy(template, 16);
  // Offsets inside a record: Ethernet 14 bytes, then IPv4 (source at 12), then TCP (port 0, seq 4).
  const SRC_IP = 16 + 14 + 12;
  const SRC_PORT = 16 + 14 + 20;
  const SEQ = SRC_PORT + 4;
  let sent = 0;
  let headerSent = false;
  return new Readable({
    highWaterMark: 2,
    objectMode: false,
    read() {
      if (!headerSent) {
        headerSent = true;
        this.push(pcapHeader({ snaplen: 65535 }));
        return;
      }
      if (sent >= options.tuples) {
        this.push(null);
        return;
      }
      const count = Math.min(perChunk, options.tuples - sent);
      const chunk = Buffer.allocUnsafe(count * recordBytes);
      for (let i = 0; i < count; i++, sent++) {
        const at = i * recordBytes;
        template.copy(chunk, at);
        const micros = sent * spacing;
        chunk.writeUInt32LE(startSeconds + Math.floor(micros / 1e6), at);
        chunk.writeUInt32LE(((micros % 1e6) + 1e6) % 1e6, at + 4);
        // 10.0.0.0/8 gives 16 M addresses × 60,000 ports: every tuple distinct.
        chunk.writeUInt32BE((0x0a000000 | Math.floor(sent / PORTS_PER_ADDRESS)) >>> 0, at + SRC_IP);
        chunk.writeUInt16BE(1024 + (sent % PORTS_PER_ADDRESS), at + SRC_PORT);
        chunk.writeUInt32BE((sent * 2654435761) >>> 0, at + SEQ);
      }
      this.push(chunk);
    },
  });
}
