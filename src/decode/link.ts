import { decodeIp, decodeIpv4, decodeIpv6 } from './ip.js';
import { DecodeStatus, type TcpSegment } from './segment.js';
import { u16 } from './bytes.js';

/** Link-layer header types (tcpdump.org/linktypes.html) that can carry IP. */
export const LINKTYPE = {
  null: 0,
  ethernet: 1,
  ppp: 9,
  raw12: 12,
  raw14: 14,
  pppHdlc: 50,
  raw: 101,
  cHdlc: 104,
  loop: 108,
  linuxSll: 113,
  ipv4: 228,
  ipv6: 229,
  nflog: 239,
  linuxSll2: 276,
} as const;

export const SUPPORTED_LINK_TYPES: readonly number[] = Object.values(LINKTYPE);

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;
const ETHERTYPE_PPPOE_SESSION = 0x8864;
const ETHERTYPE_MPLS = 0x8847;
const ETHERTYPE_MPLS_MULTICAST = 0x8848;
const ETHERNET_HEADER = 14;
const ETHERNET_TYPE = 12;
const VLAN_TAG = 4;
/** Tags stacked deeper than this are crafted; real networks use two at most. */
const MAX_VLAN_TAGS = 8;
/** A type field this small is an IEEE 802.3 length: an LLC header follows. */
const MAX_8023_LENGTH = 1500;
const LLC_SAP_SNAP = 0xaa;
const LLC_CONTROL_UI = 0x03;
/** DSAP, SSAP, control, 3-byte OUI, ethertype. */
const LLC_SNAP_HEADER = 8;

const SLL_HEADER = 16;
const SLL_PROTOCOL = 14;
const SLL2_HEADER = 20;
const SLL2_PROTOCOL = 0;
const NULL_HEADER = 4;
/** BSD address families for IPv6 differ by OS; IPv4 is 2 everywhere. */
const AF_INET = 2;
const AF_INET6 = [10, 24, 28, 30] as const;

const PPP_ADDRESS_CONTROL = 0xff03;
const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;
const PPP_MPLS = 0x0281;
const PPP_MPLS_MULTICAST = 0x0283;
const CHDLC_HEADER = 4;
/** Version/type, code, session id, length; the PPP protocol field follows. */
const PPPOE_HEADER = 6;
const PPPOE_SESSION_DATA = 0x00;

const MPLS_LABEL = 4;
const MPLS_BOTTOM_OF_STACK = 0x100;
/** Label stacks deeper than this are crafted; real ones hold a handful. */
const MAX_MPLS_LABELS = 8;

/** Family, version, resource id; then TLVs whose length and type are in the capturing host's byte order. */
const NFLOG_HEADER = 4;
const NFLOG_TLV_HEADER = 4;
const NFULA_PAYLOAD = 9;
const NFLOG_AF_INET6 = 10;

/** Decodes one frame of the given link type down to its TCP header. */
export function decodeFrame(linkType: number, buf: Buffer, offset: number, caplen: number, out: TcpSegment): DecodeStatus {
  const end = offset + caplen;
  switch (linkType) {
    case LINKTYPE.ethernet:
      return decodeEthernet(buf, offset, end, out);
    case LINKTYPE.linuxSll2:
      return decodeByEthertype(buf, SLL2_PROTOCOL, offset, SLL2_HEADER, end, out);
    case LINKTYPE.linuxSll:
      return decodeByEthertype(buf, SLL_PROTOCOL, offset, SLL_HEADER, end, out);
    case LINKTYPE.raw:
    case LINKTYPE.raw12:
    case LINKTYPE.raw14:
      return decodeIp(buf, offset, end, out);
    case LINKTYPE.ipv4:
      return decodeIpv4(buf, offset, end, out);
    case LINKTYPE.ipv6:
      return decodeIpv6(buf, offset, end, out);
    case LINKTYPE.null:
      return decodeNull(buf, offset, end, out, false);
    case LINKTYPE.loop:
      return decodeNull(buf, offset, end, out, true);
    case LINKTYPE.ppp:
    case LINKTYPE.pppHdlc:
      return decodePpp(buf, offset, end, out);
    case LINKTYPE.cHdlc:
      return decodeByEthertype(buf, 2, offset, CHDLC_HEADER, end, out);
    case LINKTYPE.nflog:
      return decodeNflog(buf, offset, end, out);
    default:
      return DecodeStatus.unsupportedLink;
  }
}

function decodeEthernet(buf: Buffer, offset: number, end: number, out: TcpSegment): DecodeStatus {
  if (end - offset < ETHERNET_HEADER) return DecodeStatus.truncated;
  let typeAt = offset + ETHERNET_TYPE;
  let type = u16(buf, typeAt);
  for (let tags = 0; type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_OLD; tags++) {
    if (tags === MAX_VLAN_TAGS) return DecodeStatus.badHeader;
    typeAt += VLAN_TAG;
    if (typeAt + 2 > end) return DecodeStatus.truncated;
    type = u16(buf, typeAt);
  }
  if (type <= MAX_8023_LENGTH) return decodeLlcSnap(buf, typeAt + 2, end, out);
  return decodeEthertype(type, buf, typeAt + 2, end, out);
}

/** IEEE 802.3 frame (a length where the type would be): IP rides in an LLC/SNAP header carrying an ethertype. */
function decodeLlcSnap(buf: Buffer, at: number, end: number, out: TcpSegment): DecodeStatus {
  if (end - at < LLC_SNAP_HEADER) return DecodeStatus.truncated;
  const isSnap = buf[at] === LLC_SAP_SNAP && buf[at + 1] === LLC_SAP_SNAP && buf[at + 2] === LLC_CONTROL_UI;
  // A non-zero OUI names a vendor's protocol ids, not ethertypes.
  if (!isSnap || buf[at + 3] !== 0 || buf[at + 4] !== 0 || buf[at + 5] !== 0) return DecodeStatus.notIp;
  return decodeEthertype(buf.readUInt16BE(at + 6), buf, at + LLC_SNAP_HEADER, end, out);
}

function decodeByEthertype(buf: Buffer, typeOffset: number, offset: number, headerLength: number, end: number, out: TcpSegment): DecodeStatus {
  if (end - offset < headerLength) return DecodeStatus.truncated;
  return decodeEthertype(buf.readUInt16BE(offset + typeOffset), buf, offset + headerLength, end, out);
}

function decodeEthertype(type: number, buf: Buffer, at: number, end: number, out: TcpSegment): DecodeStatus {
  switch (type) {
    case ETHERTYPE_IPV4:
      return decodeIpv4(buf, at, end, out);
    case ETHERTYPE_IPV6:
      return decodeIpv6(buf, at, end, out);
    case ETHERTYPE_PPPOE_SESSION:
      return decodePppoe(buf, at, end, out);
    case ETHERTYPE_MPLS:
    case ETHERTYPE_MPLS_MULTICAST:
      return decodeMpls(buf, at, end, out);
    default:
      return DecodeStatus.notIp;
  }
}

/** PPPoE session stage (DSL access links): a 6-byte header, then a PPP protocol field. */
function decodePppoe(buf: Buffer, at: number, end: number, out: TcpSegment): DecodeStatus {
  if (end - at < PPPOE_HEADER + 2) return DecodeStatus.truncated;
  if (buf[at + 1] !== PPPOE_SESSION_DATA) return DecodeStatus.notIp;
  return decodePppProtocol(buf.readUInt16BE(at + PPPOE_HEADER), buf, at + PPPOE_HEADER + 2, end, out);
}

/** An MPLS label stack: IP follows the entry with the bottom-of-stack bit, told apart by its version nibble. */
function decodeMpls(buf: Buffer, at: number, end: number, out: TcpSegment): DecodeStatus {
  for (let labels = 1; ; labels++) {
    if (end - at < MPLS_LABEL) return DecodeStatus.truncated;
    const bottom = (buf.readUInt32BE(at) & MPLS_BOTTOM_OF_STACK) !== 0;
    at += MPLS_LABEL;
    if (bottom) break;
    if (labels === MAX_MPLS_LABELS) return DecodeStatus.badHeader;
  }
  // Anything but IPv4/IPv6 here (a pseudowire control word, Ethernet over MPLS) is not followed.
  return decodeIp(buf, at, end, out);
}

/**
 * Linux NFLOG (iptables/nftables "log" targets): TLVs after a 4-byte header, the packet in the
 * payload TLV. TLV fields are in the capturing host's byte order, which the file does not record:
 * the first TLV's length says which order makes sense.
 */
function decodeNflog(buf: Buffer, offset: number, end: number, out: TcpSegment): DecodeStatus {
  if (end - offset < NFLOG_HEADER + NFLOG_TLV_HEADER) return DecodeStatus.truncated;
  const family = buf[offset]!;
  const first = offset + NFLOG_HEADER;
  const fitsLE = nflogLengthFits(buf.readUInt16LE(first), first, end);
  const littleEndian = fitsLE || !nflogLengthFits(buf.readUInt16BE(first), first, end);
  let at = first;
  while (end - at >= NFLOG_TLV_HEADER) {
    const length = littleEndian ? buf.readUInt16LE(at) : buf.readUInt16BE(at);
    const type = littleEndian ? buf.readUInt16LE(at + 2) : buf.readUInt16BE(at + 2);
    if (length < NFLOG_TLV_HEADER) return DecodeStatus.badHeader;
    if (type === NFULA_PAYLOAD) {
      const payloadEnd = Math.min(end, at + length);
      if (family === AF_INET) return decodeIpv4(buf, at + NFLOG_TLV_HEADER, payloadEnd, out);
      if (family === NFLOG_AF_INET6) return decodeIpv6(buf, at + NFLOG_TLV_HEADER, payloadEnd, out);
      return DecodeStatus.notIp;
    }
    at += (length + 3) & ~3;
  }
  return DecodeStatus.truncated;
}

function nflogLengthFits(length: number, at: number, end: number): boolean {
  return length >= NFLOG_TLV_HEADER && at + length <= end;
}

function decodeNull(buf: Buffer, offset: number, end: number, out: TcpSegment, networkOrder: boolean): DecodeStatus {
  if (end - offset < NULL_HEADER) return DecodeStatus.truncated;
  // NULL stores the family in the capturing host's byte order, which the file does not record: try both.
  const family = networkOrder ? buf.readUInt32BE(offset) : Math.min(buf.readUInt32LE(offset), buf.readUInt32BE(offset));
  if (family === AF_INET) return decodeIpv4(buf, offset + NULL_HEADER, end, out);
  if ((AF_INET6 as readonly number[]).includes(family)) return decodeIpv6(buf, offset + NULL_HEADER, end, out);
  return DecodeStatus.notIp;
}

function decodePpp(buf: Buffer, offset: number, end: number, out: TcpSegment): DecodeStatus {
  let at = offset;
  if (end - at >= 2 && buf.readUInt16BE(at) === PPP_ADDRESS_CONTROL) at += 2;
  if (end - at < 1) return DecodeStatus.truncated;
  // Protocol field compression: an odd first byte is a one-byte protocol.
  let protocol: number;
  if (buf[at]! & 1) {
    protocol = buf[at]!;
    at += 1;
  } else {
    if (end - at < 2) return DecodeStatus.truncated;
    protocol = buf.readUInt16BE(at);
    at += 2;
  }
  return decodePppProtocol(protocol, buf, at, end, out);
}

function decodePppProtocol(protocol: number, buf: Buffer, at: number, end: number, out: TcpSegment): DecodeStatus {
  switch (protocol) {
    case PPP_IPV4:
      return decodeIpv4(buf, at, end, out);
    case PPP_IPV6:
      return decodeIpv6(buf, at, end, out);
    case PPP_MPLS:
    case PPP_MPLS_MULTICAST:
      return decodeMpls(buf, at, end, out);
    default:
      return DecodeStatus.notIp;
  }
}
