import { DecodeStatus, type TcpSegment } from './segment.js';
import { decodeTcp } from './tcp.js';
import { u16, u32 } from './bytes.js';

const IPPROTO_TCP = 6;
/** IP in IP: IPv4 (RFC 2003) or IPv6 (RFC 2473, 6in4/6rd) carried straight in an IP payload. */
const IPPROTO_IPIP = 4;
const IPPROTO_IPV6 = 41;
/** IPsec Authentication Header: authenticated, not encrypted, so what it carries can be read. */
const IPPROTO_AH = 51;
/** Tunnels nested deeper than this are crafted: stop rather than follow them. */
const MAX_TUNNEL_DEPTH = 4;
const IPV4_MIN_HEADER = 20;
const IPV4_TOTAL_LENGTH = 2;
const IPV4_FRAGMENT = 6;
const IPV4_PROTOCOL = 9;
const IPV4_SRC = 12;
const IPV4_DST = 16;
const IPV4_FRAGMENT_OFFSET_MASK = 0x1fff;
const V4_MAPPED_PREFIX = 0x0000ffff;

const IPV6_HEADER = 40;
const IPV6_PAYLOAD_LENGTH = 4;
const IPV6_NEXT_HEADER = 6;
const IPV6_SRC = 8;
const IPV6_DST = 24;
const EXT = { hopByHop: 0, routing: 43, fragment: 44, destination: 60, authentication: 51, mobility: 135, hip: 139, shim6: 140 } as const;
/** A chain longer than this is crafted, not real: stop rather than walk it. */
const MAX_EXTENSION_HEADERS = 16;

/** Decodes the IP packet at `offset` (version from its first nibble). `end` is the end of captured bytes. */
export function decodeIp(buf: Buffer, offset: number, end: number, out: TcpSegment, tunnelDepth = 0): DecodeStatus {
  if (offset >= end) return DecodeStatus.truncated;
  const version = buf[offset]! >> 4;
  if (version === 4) return decodeIpv4(buf, offset, end, out, tunnelDepth);
  if (version === 6) return decodeIpv6(buf, offset, end, out, tunnelDepth);
  return DecodeStatus.notIp;
}

export function decodeIpv4(buf: Buffer, offset: number, end: number, out: TcpSegment, tunnelDepth = 0): DecodeStatus {
  if (end - offset < IPV4_MIN_HEADER) return DecodeStatus.truncated;
  const headerLength = (buf[offset]! & 0x0f) * 4;
  if (buf[offset]! >> 4 !== 4 || headerLength < IPV4_MIN_HEADER) return DecodeStatus.badHeader;
  let protocol = buf[offset + IPV4_PROTOCOL]!;
  if (!carriesTcp(protocol) && protocol !== IPPROTO_AH) return DecodeStatus.notTcp;
  if ((u16(buf, offset + IPV4_FRAGMENT) & IPV4_FRAGMENT_OFFSET_MASK) !== 0) return DecodeStatus.fragment;
  if (end - offset < headerLength) return DecodeStatus.truncated;
  let totalLength = u16(buf, offset + IPV4_TOTAL_LENGTH);
  // Segmentation offload writes 0 here; the captured length is then the best we have.
  if (totalLength === 0) totalLength = end - offset;
  if (totalLength < headerLength) return DecodeStatus.badHeader;
  let at = offset + headerLength;
  let remaining = totalLength - headerLength;
  if (protocol === IPPROTO_AH) {
    if (end - at < 8) return DecodeStatus.truncated;
    const ahLength = (buf[at + 1]! + 2) * 4;
    protocol = buf[at]!;
    at += ahLength;
    remaining -= ahLength;
    if (remaining < 0) return DecodeStatus.badHeader;
    if (!carriesTcp(protocol)) return DecodeStatus.notTcp;
  }
  if (protocol !== IPPROTO_TCP) return decodeTunnel(protocol, buf, at, Math.min(end, at + remaining), out, tunnelDepth);
  out.family = 4;
  setMapped(out.src, u32(buf, offset + IPV4_SRC));
  setMapped(out.dst, u32(buf, offset + IPV4_DST));
  return decodeTcp(buf, at, end, remaining, out);
}

export function decodeIpv6(buf: Buffer, offset: number, end: number, out: TcpSegment, tunnelDepth = 0): DecodeStatus {
  if (end - offset < IPV6_HEADER) return DecodeStatus.truncated;
  if (buf[offset]! >> 4 !== 6) return DecodeStatus.badHeader;
  let payloadLength = u16(buf, offset + IPV6_PAYLOAD_LENGTH);
  if (payloadLength === 0) payloadLength = end - offset - IPV6_HEADER; // jumbogram or offload
  let next = buf[offset + IPV6_NEXT_HEADER]!;
  let at = offset + IPV6_HEADER;
  for (let hops = 0; next !== IPPROTO_TCP; hops++) {
    if (hops === MAX_EXTENSION_HEADERS) return DecodeStatus.badHeader;
    if (next === IPPROTO_IPIP || next === IPPROTO_IPV6) return decodeTunnel(next, buf, at, Math.min(end, at + payloadLength), out, tunnelDepth);
    if (end - at < 8) return isExtension(next) ? DecodeStatus.truncated : DecodeStatus.notTcp;
    let length: number;
    switch (next) {
      case EXT.fragment:
        if ((buf.readUInt16BE(at + 2) & 0xfff8) !== 0) return DecodeStatus.fragment;
        length = 8;
        break;
      case EXT.authentication:
        length = (buf[at + 1]! + 2) * 4;
        break;
      case EXT.hopByHop:
      case EXT.routing:
      case EXT.destination:
      case EXT.mobility:
      case EXT.hip:
      case EXT.shim6:
        length = (buf[at + 1]! + 1) * 8;
        break;
      default:
        return DecodeStatus.notTcp;
    }
    next = buf[at]!;
    at += length;
    payloadLength -= length;
    if (payloadLength < 0) return DecodeStatus.badHeader;
  }
  out.family = 6;
  readWords(buf, offset + IPV6_SRC, out.src);
  readWords(buf, offset + IPV6_DST, out.dst);
  return decodeTcp(buf, at, end, payloadLength, out);
}

/** The inner packet of an IP-in-IP tunnel: the connection is the inner one, as the hosts see it. */
function decodeTunnel(protocol: number, buf: Buffer, at: number, end: number, out: TcpSegment, tunnelDepth: number): DecodeStatus {
  if (tunnelDepth === MAX_TUNNEL_DEPTH) return DecodeStatus.badHeader;
  return protocol === IPPROTO_IPIP ? decodeIpv4(buf, at, end, out, tunnelDepth + 1) : decodeIpv6(buf, at, end, out, tunnelDepth + 1);
}

function carriesTcp(protocol: number): boolean {
  return protocol === IPPROTO_TCP || protocol === IPPROTO_IPIP || protocol === IPPROTO_IPV6;
}

function isExtension(next: number): boolean {
  return next === EXT.hopByHop || next === EXT.routing || next === EXT.fragment || next === EXT.destination || next === EXT.authentication || next === EXT.mobility || next === EXT.hip || next === EXT.shim6;
}

function setMapped(words: Uint32Array, ipv4: number): void {
  words[0] = 0;
  words[1] = 0;
  words[2] = V4_MAPPED_PREFIX;
  words[3] = ipv4;
}

function readWords(buf: Buffer, at: number, words: Uint32Array): void {
  words[0] = u32(buf, at);
  words[1] = u32(buf, at + 4);
  words[2] = u32(buf, at + 8);
  words[3] = u32(buf, at + 12);
}
