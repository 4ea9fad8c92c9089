/** TCP flag bits as they sit in the header's flags byte. */
export const TCP_FLAG = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

/**
 * The fields of one TCP segment that the analysis needs, decoded in place. Addresses are four
 * 32-bit words each: IPv6 as it is, IPv4 as the IPv4-mapped IPv6 address (::ffff:a.b.c.d), so one
 * connection key serves both families. Reused for every packet.
 */
export interface TcpSegment {
  family: 4 | 6;
  src: Uint32Array;
  dst: Uint32Array;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  /** Payload bytes the segment carried on the wire (from the IP length, not from what was captured). */
  payloadLength: number;
}

export function newTcpSegment(): TcpSegment {
  return { family: 4, src: new Uint32Array(4), dst: new Uint32Array(4), srcPort: 0, dstPort: 0, seq: 0, ack: 0, flags: 0, window: 0, payloadLength: 0 };
}

/** Why a frame did not yield a TCP segment. Each is counted, never thrown. */
export const DecodeStatus = {
  ok: 0,
  unsupportedLink: 1,
  notIp: 2,
  notTcp: 3,
  fragment: 4,
  truncated: 5,
  badHeader: 6,
} as const;
export type DecodeStatus = (typeof DecodeStatus)[keyof typeof DecodeStatus];

export const DECODE_STATUS_NAMES = ['ok', 'unsupportedLink', 'notIp', 'notTcp', 'fragment', 'truncated', 'badHeader'] as const;
