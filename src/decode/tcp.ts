import { DecodeStatus, type TcpSegment } from './segment.js';
import { u16, u32 } from './bytes.js';

const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
const DATA_OFFSET = 12;
const FLAGS = 13;
const WINDOW = 14;
const MIN_HEADER = 20;
/** Ports, sequence numbers and flags: enough to follow the connection even when the snaplen cut the rest. */
const ESSENTIAL_BYTES = 14;

/**
 * Decodes the TCP header at `offset`. `segmentLength` is the TCP header plus payload as the IP
 * header states it; `end` is where the captured bytes stop.
 */
export function decodeTcp(buf: Buffer, offset: number, end: number, segmentLength: number, out: TcpSegment): DecodeStatus {
  if (end - offset < ESSENTIAL_BYTES) return DecodeStatus.truncated;
  const headerLength = (buf[offset + DATA_OFFSET]! >> 4) * 4;
  if (headerLength < MIN_HEADER || headerLength > segmentLength) return DecodeStatus.badHeader;
  out.srcPort = u16(buf, offset + SRC_PORT);
  out.dstPort = u16(buf, offset + DST_PORT);
  out.seq = u32(buf, offset + SEQ);
  out.ack = u32(buf, offset + ACK);
  out.flags = buf[offset + FLAGS]!;
  out.window = end - offset >= WINDOW + 2 ? u16(buf, offset + WINDOW) : 0;
  out.payloadLength = segmentLength - headerLength;
  return DecodeStatus.ok;
}
