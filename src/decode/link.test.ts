import { describe, expect, it } from 'vitest';
import { decodeFrame, LINKTYPE } from './link.js';
import { DECODE_STATUS_NAMES, DecodeStatus, TCP_FLAG, newTcpSegment, type TcpSegment } from './segment.js';

// Small hand-built frames, layer by layer. Every builder returns plain bytes so a test can cut,
// wrap or corrupt them before decoding.

const SRC_V4 = [192, 0, 2, 1];
const DST_V4 = [198, 51, 100, 7];
const SRC_V6 = [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1];
const DST_V6 = [0x2001, 0xdb8, 0, 0, 0, 0, 0, 2];

interface TcpFields {
  srcPort?: number;
  dstPort?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  window?: number;
  /** 32-bit words of header, 5 without options */
  dataOffsetWords?: number;
  payload?: number;
}

function tcp(fields: TcpFields = {}): Buffer {
  const words = fields.dataOffsetWords ?? 5;
  const headerBytes = Math.max(words, 5) * 4;
  const b = Buffer.alloc(headerBytes + (fields.payload ?? 0), 0x61);
  b.writeUInt16BE(fields.srcPort ?? 40000, 0);
  b.writeUInt16BE(fields.dstPort ?? 80, 2);
  b.writeUInt32BE((fields.seq ?? 1000) >>> 0, 4);
  b.writeUInt32BE((fields.ack ?? 2000) >>> 0, 8);
  b[12] = words << 4;
  b[13] = fields.flags ?? TCP_FLAG.ACK;
  b.writeUInt16BE(fields.window ?? 501, 14);
  b.fill(0, 16, headerBytes); // checksum, urgent pointer, options (NOPs would be 1s; zeros are EOL: fine)
  return b;
}

interface Ipv4Fields {
  protocol?: number;
  /** extra header bytes (options), a multiple of 4 */
  options?: number;
  fragmentOffset?: number;
  moreFragments?: boolean;
  /** overrides the total length field */
  totalLength?: number;
  ihlWords?: number;
}

function ipv4(payload: Buffer, fields: Ipv4Fields = {}): Buffer {
  const headerBytes = 20 + (fields.options ?? 0);
  const b = Buffer.alloc(headerBytes);
  b[0] = 0x40 | (fields.ihlWords ?? headerBytes / 4);
  b.writeUInt16BE(fields.totalLength ?? headerBytes + payload.length, 2);
  b.writeUInt16BE((fields.moreFragments ? 0x2000 : 0) | (fields.fragmentOffset ?? 0), 6);
  b[8] = 64;
  b[9] = fields.protocol ?? 6;
  Buffer.from(SRC_V4).copy(b, 12);
  Buffer.from(DST_V4).copy(b, 16);
  if (fields.options) b.fill(0x01, 20, headerBytes); // NOP options
  return Buffer.concat([b, payload]);
}

/** An extension header: [next header, length field, ...body] padded to `bytes`. */
function extension(next: number, bytes: number, lengthField: number): Buffer {
  const b = Buffer.alloc(bytes);
  b[0] = next;
  b[1] = lengthField;
  return b;
}

function ipv6(payload: Buffer, nextHeader = 6, payloadLength?: number): Buffer {
  const b = Buffer.alloc(40);
  b[0] = 0x60;
  b.writeUInt16BE(payloadLength ?? payload.length, 4);
  b[6] = nextHeader;
  b[7] = 64;
  SRC_V6.forEach((group, i) => b.writeUInt16BE(group, 8 + i * 2));
  DST_V6.forEach((group, i) => b.writeUInt16BE(group, 24 + i * 2));
  return Buffer.concat([b, payload]);
}

const MAC_DST = Buffer.from([0x02, 0, 0, 0, 0, 0x01]);
const MAC_SRC = Buffer.from([0x02, 0, 0, 0, 0, 0x02]);

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function ethernet(payload: Buffer, ethertype: number, tags: number[] = []): Buffer {
  const tagBytes = tags.flatMap((tpid) => [...u16(tpid), 0x00, 0x64]); // TPID, then TCI (VLAN 100)
  return Buffer.concat([MAC_DST, MAC_SRC, Buffer.from(tagBytes), u16(ethertype), payload]);
}

function sll(payload: Buffer, protocol: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0, 0); // packet type: to us
  b.writeUInt16BE(1, 2); // ARPHRD_ETHER
  b.writeUInt16BE(6, 4);
  MAC_SRC.copy(b, 6);
  b.writeUInt16BE(protocol, 14);
  return Buffer.concat([b, payload]);
}

function sll2(payload: Buffer, protocol: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(protocol, 0);
  b.writeUInt32BE(2, 4); // interface index
  b.writeUInt16BE(1, 8); // ARPHRD_ETHER
  b[10] = 4; // outgoing
  b[11] = 6;
  MAC_SRC.copy(b, 12);
  return Buffer.concat([b, payload]);
}

function bsdNull(payload: Buffer, family: number, littleEndian: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (littleEndian) b.writeUInt32LE(family);
  else b.writeUInt32BE(family);
  return Buffer.concat([b, payload]);
}

function decode(linkType: number, frame: Buffer, caplen = frame.length): { status: string; seg: TcpSegment } {
  // Decode from a non-zero offset inside a bigger buffer, as frames sit in a read chunk.
  const chunk = Buffer.concat([Buffer.alloc(7, 0xee), frame, Buffer.alloc(5, 0xee)]);
  const seg = newTcpSegment();
  const status = decodeFrame(linkType, chunk, 7, caplen, seg);
  return { status: DECODE_STATUS_NAMES[status], seg };
}

const v4Words = (octets: number[]) => [0, 0, 0xffff, ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0];
const v6Words = (groups: number[]) => [0, 1, 2, 3].map((i) => ((groups[i * 2]! << 16) | groups[i * 2 + 1]!) >>> 0);

function expectV4Segment(result: { status: string; seg: TcpSegment }, fields: TcpFields = {}) {
  expect(result.status).toBe('ok');
  const { seg } = result;
  expect(seg.family).toBe(4);
  expect([...seg.src]).toEqual(v4Words(SRC_V4));
  expect([...seg.dst]).toEqual(v4Words(DST_V4));
  expect([seg.srcPort, seg.dstPort, seg.seq, seg.ack, seg.flags]).toEqual([
    fields.srcPort ?? 40000, fields.dstPort ?? 80, (fields.seq ?? 1000) >>> 0, (fields.ack ?? 2000) >>> 0, fields.flags ?? TCP_FLAG.ACK,
  ]);
  expect(seg.payloadLength).toBe(fields.payload ?? 0);
}

function expectV6Segment(result: { status: string; seg: TcpSegment }, payload = 0) {
  expect(result.status).toBe('ok');
  expect(result.seg.family).toBe(6);
  expect([...result.seg.src]).toEqual(v6Words(SRC_V6));
  expect([...result.seg.dst]).toEqual(v6Words(DST_V6));
  expect(result.seg.payloadLength).toBe(payload);
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;

describe('link layers', () => {
  const segment = { flags: TCP_FLAG.FIN | TCP_FLAG.ACK, seq: 0xfffffff0, payload: 3 };
  const packet = () => ipv4(tcp(segment));

  it('Ethernet II, IPv4 and IPv6', () => {
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(packet(), ETH_IPV4)), segment);
    expectV6Segment(decode(LINKTYPE.ethernet, ethernet(ipv6(tcp({ payload: 9 })), ETH_IPV6)), 9);
  });

  it('802.1Q, QinQ (802.1ad and the old 0x9100) tags', () => {
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(packet(), ETH_IPV4, [0x8100])), segment);
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(packet(), ETH_IPV4, [0x88a8, 0x8100])), segment);
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(packet(), ETH_IPV4, [0x9100, 0x8100])), segment);
    expectV6Segment(decode(LINKTYPE.ethernet, ethernet(ipv6(tcp()), ETH_IPV6, [0x88a8, 0x8100])));
  });

  it('a tag stack deeper than any network uses is a bad header, a cut tag is truncated', () => {
    expect(decode(LINKTYPE.ethernet, ethernet(packet(), ETH_IPV4, Array(9).fill(0x8100))).status).toBe('badHeader');
    const tagged = ethernet(packet(), ETH_IPV4, [0x8100]);
    expect(decode(LINKTYPE.ethernet, tagged, 15).status).toBe('truncated');
    expect(decode(LINKTYPE.ethernet, tagged, 13).status).toBe('truncated');
  });

  it('IEEE 802.3 with LLC/SNAP carrying IPv4; other LLC payloads are not IP', () => {
    const snap = Buffer.from([0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
    const body = Buffer.concat([snap, packet()]);
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(body, body.length)), segment);
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(body, body.length, [0x8100])), segment);
    const stp = Buffer.concat([Buffer.from([0x42, 0x42, 0x03]), Buffer.alloc(40)]);
    expect(decode(LINKTYPE.ethernet, ethernet(stp, stp.length)).status).toBe('notIp');
    const vendorSnap = Buffer.concat([Buffer.from([0xaa, 0xaa, 0x03, 0x00, 0x00, 0x0c, 0x20, 0x00]), Buffer.alloc(40)]);
    expect(decode(LINKTYPE.ethernet, ethernet(vendorSnap, vendorSnap.length)).status).toBe('notIp');
    expect(decode(LINKTYPE.ethernet, ethernet(body, body.length), 14 + 7).status).toBe('truncated');
  });

  it('ARP and other ethertypes are not IP', () => {
    expect(decode(LINKTYPE.ethernet, ethernet(Buffer.alloc(28), 0x0806)).status).toBe('notIp');
  });

  it('Linux cooked capture v1 and v2', () => {
    expectV4Segment(decode(LINKTYPE.linuxSll, sll(packet(), ETH_IPV4)), segment);
    expectV6Segment(decode(LINKTYPE.linuxSll, sll(ipv6(tcp()), ETH_IPV6)));
    expectV4Segment(decode(LINKTYPE.linuxSll2, sll2(packet(), ETH_IPV4)), segment);
    expectV6Segment(decode(LINKTYPE.linuxSll2, sll2(ipv6(tcp()), ETH_IPV6)));
    expect(decode(LINKTYPE.linuxSll, sll(packet(), ETH_IPV4), 15).status).toBe('truncated');
    expect(decode(LINKTYPE.linuxSll2, sll2(packet(), ETH_IPV4), 19).status).toBe('truncated');
    expect(decode(LINKTYPE.linuxSll2, sll2(Buffer.alloc(28), 0x0806)).status).toBe('notIp');
  });

  it('BSD NULL with the family in either byte order (the file does not say which host wrote it)', () => {
    for (const littleEndian of [true, false]) {
      expectV4Segment(decode(LINKTYPE.null, bsdNull(packet(), 2, littleEndian)), segment);
      for (const inet6 of [24, 28, 30]) expectV6Segment(decode(LINKTYPE.null, bsdNull(ipv6(tcp()), inet6, littleEndian)));
      expect(decode(LINKTYPE.null, bsdNull(packet(), 7, littleEndian)).status).toBe('notIp');
    }
    expect(decode(LINKTYPE.null, bsdNull(packet(), 2, true), 3).status).toBe('truncated');
  });

  it('LOOP: the family always in network byte order', () => {
    expectV4Segment(decode(LINKTYPE.loop, bsdNull(packet(), 2, false)), segment);
    expectV6Segment(decode(LINKTYPE.loop, bsdNull(ipv6(tcp()), 24, false)));
    expect(decode(LINKTYPE.loop, bsdNull(packet(), 2, true)).status).toBe('notIp');
  });

  it('raw IP (101, and the 12/14 aliases) by version nibble; 228 only IPv4, 229 only IPv6', () => {
    for (const raw of [LINKTYPE.raw, LINKTYPE.raw12, LINKTYPE.raw14]) {
      expectV4Segment(decode(raw, packet()), segment);
      expectV6Segment(decode(raw, ipv6(tcp())));
    }
    expectV4Segment(decode(LINKTYPE.ipv4, packet()), segment);
    expectV6Segment(decode(LINKTYPE.ipv6, ipv6(tcp())));
    expect(decode(LINKTYPE.ipv4, ipv6(tcp())).status).toBe('badHeader');
    expect(decode(LINKTYPE.ipv6, packet()).status).toBe('badHeader');
    expect(decode(LINKTYPE.raw, Buffer.from([0x50, 0, 0, 0])).status).toBe('notIp');
    expect(decode(LINKTYPE.raw, packet(), 0).status).toBe('truncated');
  });

  it('PPP with and without address/control and with a compressed protocol field; Cisco HDLC', () => {
    expectV4Segment(decode(LINKTYPE.ppp, Buffer.concat([Buffer.from([0xff, 0x03, 0x00, 0x21]), packet()])), segment);
    expectV4Segment(decode(LINKTYPE.pppHdlc, Buffer.concat([Buffer.from([0x00, 0x21]), packet()])), segment);
    expectV4Segment(decode(LINKTYPE.ppp, Buffer.concat([Buffer.from([0x21]), packet()])), segment);
    expectV6Segment(decode(LINKTYPE.ppp, Buffer.concat([Buffer.from([0xff, 0x03, 0x00, 0x57]), ipv6(tcp())])));
    expect(decode(LINKTYPE.ppp, Buffer.from([0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4])).status).toBe('notIp');
    expectV4Segment(decode(LINKTYPE.cHdlc, Buffer.concat([Buffer.from([0x0f, 0x00, 0x08, 0x00]), packet()])), segment);
  });

  it('PPPoE sessions (over VLANs too); discovery packets are not IP', () => {
    const session = (ppp: number, body: Buffer) => Buffer.concat([Buffer.from([0x11, 0x00, 0x0f, 0x07]), u16(body.length + 2), u16(ppp), body]);
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(session(0x0021, packet()), 0x8864)), segment);
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(session(0x0021, packet()), 0x8864, [0x8100, 0x8100])), segment);
    expectV6Segment(decode(LINKTYPE.ethernet, ethernet(session(0x0057, ipv6(tcp())), 0x8864)));
    expect(decode(LINKTYPE.ethernet, ethernet(session(0xc021, Buffer.alloc(10)), 0x8864)).status).toBe('notIp');
    const discovery = Buffer.concat([Buffer.from([0x11, 0x09, 0x00, 0x00, 0x00, 0x04]), Buffer.alloc(4)]);
    expect(decode(LINKTYPE.ethernet, ethernet(discovery, 0x8864)).status).toBe('notIp');
    expect(decode(LINKTYPE.ethernet, ethernet(session(0x0021, packet()), 0x8864), 14 + 7).status).toBe('truncated');
    expectV4Segment(decode(LINKTYPE.linuxSll, sll(session(0x0021, packet()), 0x8864)), segment);
  });

  it('MPLS label stacks over Ethernet and PPP, IP told by its version nibble', () => {
    const label = (bottom: boolean) => Buffer.from([0x01, 0x2c, bottom ? 0x01 : 0x00, 0x40]);
    const stack = (depth: number, body: Buffer) => Buffer.concat([...Array.from({ length: depth }, (_, i) => label(i === depth - 1)), body]);
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(stack(1, packet()), 0x8847)), segment);
    expectV6Segment(decode(LINKTYPE.ethernet, ethernet(stack(3, ipv6(tcp())), 0x8847, [0x8100])));
    expectV4Segment(decode(LINKTYPE.ethernet, ethernet(stack(2, packet()), 0x8848)), segment);
    expectV4Segment(decode(LINKTYPE.ppp, Buffer.concat([Buffer.from([0xff, 0x03, 0x02, 0x81]), stack(1, packet())])), segment);
    // A pseudowire control word (first nibble 0) carries Ethernet, which we do not follow.
    expect(decode(LINKTYPE.ethernet, ethernet(stack(1, Buffer.concat([Buffer.alloc(4), ethernet(packet(), ETH_IPV4)])), 0x8847)).status).toBe('notIp');
    expect(decode(LINKTYPE.ethernet, ethernet(stack(9, packet()), 0x8847)).status).toBe('badHeader');
    expect(decode(LINKTYPE.ethernet, ethernet(Buffer.concat([label(false), label(false)]), 0x8847)).status).toBe('truncated');
  });

  it('NFLOG: the payload TLV, with TLV fields in either byte order', () => {
    const tlv = (littleEndian: boolean, type: number, value: Buffer) => {
      const header = Buffer.alloc(4);
      if (littleEndian) {
        header.writeUInt16LE(value.length + 4, 0);
        header.writeUInt16LE(type, 2);
      } else {
        header.writeUInt16BE(value.length + 4, 0);
        header.writeUInt16BE(type, 2);
      }
      return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
    };
    const nflog = (family: number, littleEndian: boolean, payload: Buffer) =>
      Buffer.concat([Buffer.from([family, 0, 0, 40]), tlv(littleEndian, 1, Buffer.from([0x08, 0x00, 3, 0])), tlv(littleEndian, 10, Buffer.from('prefix\0')), tlv(littleEndian, 9, payload)]);
    for (const littleEndian of [true, false]) {
      const odd = ipv4(tcp({ ...segment, payload: 1 })); // a payload length not a multiple of 4
      expectV4Segment(decode(LINKTYPE.nflog, nflog(2, littleEndian, odd)), { ...segment, payload: 1 });
      expectV6Segment(decode(LINKTYPE.nflog, nflog(10, littleEndian, ipv6(tcp()))));
      expect(decode(LINKTYPE.nflog, nflog(7, littleEndian, packet())).status).toBe('notIp');
    }
    const noPayload = Buffer.concat([Buffer.from([2, 0, 0, 40]), tlv(true, 1, Buffer.alloc(4))]);
    expect(decode(LINKTYPE.nflog, noPayload).status).toBe('truncated');
    const zeroLength = Buffer.concat([Buffer.from([2, 0, 0, 40]), Buffer.from([0, 0, 9, 0]), packet()]);
    expect(decode(LINKTYPE.nflog, zeroLength).status).toBe('badHeader');
  });

  it('a link type we do not decode (802.11, USB, ...) is counted as such', () => {
    expect(decode(105, packet()).status).toBe('unsupportedLink');
    expect(decode(189, packet()).status).toBe('unsupportedLink');
  });
});

describe('IPv4', () => {
  it('skips options by the header length', () => {
    for (const options of [4, 12, 40]) expectV4Segment(decode(LINKTYPE.raw, ipv4(tcp({ payload: 5 }), { options })), { payload: 5 });
  });

  it('takes the payload length from the IP header, not from what the snaplen kept', () => {
    const full = ipv4(tcp({ payload: 1400 }));
    expectV4Segment(decode(LINKTYPE.raw, full, 20 + 20), { payload: 1400 });
  });

  it('a zero total length (segmentation offload) falls back to the captured length', () => {
    expectV4Segment(decode(LINKTYPE.raw, ipv4(tcp({ payload: 100 }), { totalLength: 0 })), { payload: 100 });
  });

  it('a non-first fragment is skipped; a first fragment with the whole TCP header is decoded', () => {
    expect(decode(LINKTYPE.raw, ipv4(tcp(), { fragmentOffset: 185 })).status).toBe('fragment');
    expect(decode(LINKTYPE.raw, ipv4(tcp(), { fragmentOffset: 1, moreFragments: true })).status).toBe('fragment');
    expectV4Segment(decode(LINKTYPE.raw, ipv4(tcp({ payload: 8 }), { moreFragments: true })), { payload: 8 });
  });

  it('not TCP, bad header lengths, cut headers', () => {
    expect(decode(LINKTYPE.raw, ipv4(Buffer.alloc(8), { protocol: 17 })).status).toBe('notTcp');
    expect(decode(LINKTYPE.raw, ipv4(tcp(), { ihlWords: 4 })).status).toBe('badHeader');
    expect(decode(LINKTYPE.raw, ipv4(tcp(), { totalLength: 19 })).status).toBe('badHeader');
    expect(decode(LINKTYPE.raw, ipv4(tcp()), 19).status).toBe('truncated');
    expect(decode(LINKTYPE.raw, ipv4(tcp(), { options: 20 }), 30).status).toBe('truncated');
  });
});

describe('IP in IP and IPsec AH', () => {
  it('follows IPv4 and IPv6 carried in IPv4 or IPv6 to the inner connection', () => {
    expectV4Segment(decode(LINKTYPE.raw, ipv4(ipv4(tcp({ payload: 2 })), { protocol: 4 })), { payload: 2 });
    expectV6Segment(decode(LINKTYPE.raw, ipv4(ipv6(tcp({ payload: 2 })), { protocol: 41 })), 2);
    expectV4Segment(decode(LINKTYPE.raw, ipv6(ipv4(tcp({ payload: 2 })), 4)), { payload: 2 });
    expectV6Segment(decode(LINKTYPE.raw, ipv6(Buffer.concat([extension(41, 8, 0), ipv6(tcp())]), 0)));
  });

  it('ignores bytes after the outer packet (Ethernet padding) when decoding the inner one', () => {
    const inner = ipv4(tcp(), { totalLength: 40 });
    const padded = Buffer.concat([ipv4(inner, { protocol: 4 }), Buffer.alloc(6)]);
    expectV4Segment(decode(LINKTYPE.raw, padded));
  });

  it('stops after four nested tunnels', () => {
    let packet = ipv4(tcp());
    for (let i = 0; i < 4; i++) packet = ipv4(packet, { protocol: 4 });
    expectV4Segment(decode(LINKTYPE.raw, packet));
    expect(decode(LINKTYPE.raw, ipv4(packet, { protocol: 4 })).status).toBe('badHeader');
  });

  it('walks an AH header in IPv4 (transport and tunnel mode); ESP stays opaque', () => {
    const ah = (next: number) => Buffer.concat([Buffer.from([next, 4, 0, 0]), Buffer.alloc(20, 0xab)]); // (4 + 2) * 4 = 24 bytes
    expectV4Segment(decode(LINKTYPE.raw, ipv4(Buffer.concat([ah(6), tcp({ payload: 3 })]), { protocol: 51 })), { payload: 3 });
    expectV4Segment(decode(LINKTYPE.raw, ipv4(Buffer.concat([ah(4), ipv4(tcp())]), { protocol: 51 })));
    expect(decode(LINKTYPE.raw, ipv4(Buffer.concat([ah(17), Buffer.alloc(8)]), { protocol: 51 })).status).toBe('notTcp');
    expect(decode(LINKTYPE.raw, ipv4(ah(6), { protocol: 51, totalLength: 30 })).status).toBe('badHeader');
    expect(decode(LINKTYPE.raw, ipv4(Buffer.alloc(40), { protocol: 50 })).status).toBe('notTcp');
  });
});

describe('IPv6 extension headers', () => {
  const HOP = 0;
  const ROUTING = 43;
  const FRAGMENT = 44;
  const DESTINATION = 60;
  const AH = 51;

  it('walks hop-by-hop, routing, destination options and AH to TCP, subtracting each from the payload', () => {
    const chain = Buffer.concat([extension(ROUTING, 8, 0), extension(DESTINATION, 24, 2), extension(AH, 16, 1), extension(6, 24, 4), tcp({ payload: 7 })]);
    // AH counts its length in 4-byte units minus 2: 4 -> 24 bytes.
    expectV6Segment(decode(LINKTYPE.raw, ipv6(chain, HOP)), 7);
  });

  it('a fragment header with offset 0 is walked through; a later fragment is skipped', () => {
    const first = Buffer.concat([Buffer.from([6, 0, 0x00, 0x01, 0, 0, 0, 42]), tcp({ payload: 4 })]);
    expectV6Segment(decode(LINKTYPE.raw, ipv6(first, FRAGMENT)), 4);
    const later = Buffer.concat([Buffer.from([6, 0, 0x05, 0x28, 0, 0, 0, 42]), Buffer.alloc(24)]);
    expect(decode(LINKTYPE.raw, ipv6(later, FRAGMENT)).status).toBe('fragment');
  });

  it('stops on a chain longer than any real one (a loop of hop-by-hop headers)', () => {
    const loop = Buffer.concat([...Array(20).fill(0).map(() => extension(HOP, 8, 0)), tcp()]);
    expect(decode(LINKTYPE.raw, ipv6(loop, HOP)).status).toBe('badHeader');
    const sixteen = Buffer.concat([...Array(15).fill(0).map(() => extension(HOP, 8, 0)), extension(6, 8, 0), tcp()]);
    expectV6Segment(decode(LINKTYPE.raw, ipv6(sixteen, HOP)));
  });

  it('an extension longer than the payload length is a bad header; one past the captured bytes is truncated', () => {
    const overrun = Buffer.concat([extension(6, 8, 200), tcp()]);
    expect(decode(LINKTYPE.raw, ipv6(overrun, HOP)).status).toBe('badHeader');
    const inside = Buffer.concat([extension(6, 16, 1), tcp()]);
    const packet = ipv6(inside, HOP, inside.length);
    expect(decode(LINKTYPE.raw, packet, 40 + 12).status).toBe('truncated');
    expect(decode(LINKTYPE.raw, packet, 40 + 4).status).toBe('truncated');
  });

  it('no next header, ICMPv6 and UDP are not TCP; a jumbo/offload payload length of 0 uses the captured length', () => {
    expect(decode(LINKTYPE.raw, ipv6(Buffer.alloc(8), 59)).status).toBe('notTcp');
    expect(decode(LINKTYPE.raw, ipv6(Buffer.alloc(8), 58)).status).toBe('notTcp');
    expect(decode(LINKTYPE.raw, ipv6(Buffer.concat([extension(17, 8, 0), Buffer.alloc(8)]), HOP)).status).toBe('notTcp');
    expectV6Segment(decode(LINKTYPE.raw, ipv6(tcp({ payload: 30 }), 6, 0)), 30);
  });
});

describe('TCP header', () => {
  it('a data offset below 5 words, or beyond the segment, is a bad header', () => {
    for (const words of [0, 1, 4]) expect(decode(LINKTYPE.raw, ipv4(tcp({ dataOffsetWords: words }))).status).toBe('badHeader');
    const claimsOptions = tcp();
    claimsOptions[12] = 8 << 4; // 32-byte header in a 20-byte segment
    expect(decode(LINKTYPE.raw, ipv4(claimsOptions)).status).toBe('badHeader');
  });

  it('reads options-bearing headers and counts only the payload', () => {
    expectV4Segment(decode(LINKTYPE.raw, ipv4(tcp({ dataOffsetWords: 15, payload: 11 }))), { payload: 11 });
  });

  it('a header cut by the snaplen still yields ports, sequence numbers and flags from its first 14 bytes', () => {
    const fields = { flags: TCP_FLAG.FIN | TCP_FLAG.ACK, seq: 123456789, ack: 987654321, window: 4242, payload: 100 };
    const packet = ipv4(tcp(fields));
    for (const kept of [14, 15]) {
      const result = decode(LINKTYPE.raw, packet, 20 + kept);
      expectV4Segment(result, fields);
      expect(result.seg.window).toBe(0);
    }
    const withWindow = decode(LINKTYPE.raw, packet, 20 + 16);
    expectV4Segment(withWindow, fields);
    expect(withWindow.seg.window).toBe(4242);
    expect(decode(LINKTYPE.raw, packet, 20 + 13).status).toBe('truncated');
  });

  it('all flag bits come through', () => {
    expectV4Segment(decode(LINKTYPE.raw, ipv4(tcp({ flags: 0xff }))), { flags: 0xff });
  });
});

describe('decoding never reads outside the frame', () => {
  it('every cut of every kind of frame is decoded or refused, never thrown', () => {
    const frames: [number, Buffer][] = [
      [LINKTYPE.ethernet, ethernet(ipv4(tcp({ payload: 2 }), { options: 8 }), ETH_IPV4, [0x88a8, 0x8100])],
      [LINKTYPE.ethernet, ethernet(ipv6(Buffer.concat([extension(44, 8, 0), tcp()]), 0), ETH_IPV6)],
      [LINKTYPE.linuxSll2, sll2(ipv4(tcp()), ETH_IPV4)],
      [LINKTYPE.null, bsdNull(ipv6(tcp()), 30, true)],
      [LINKTYPE.ppp, Buffer.concat([Buffer.from([0xff, 0x03, 0x00, 0x21]), ipv4(tcp())])],
      [LINKTYPE.ethernet, ethernet(Buffer.concat([Buffer.from([0x11, 0, 0, 1, 0, 42, 0x00, 0x21]), ipv4(ipv4(tcp()), { protocol: 4 })]), 0x8864)],
      [LINKTYPE.ethernet, ethernet(Buffer.concat([Buffer.from([0, 0, 0, 64, 0, 0, 1, 64]), ipv6(tcp())]), 0x8847)],
      [LINKTYPE.nflog, Buffer.concat([Buffer.from([2, 0, 0, 1, 44, 0, 9, 0]), ipv4(tcp())])],
      [LINKTYPE.raw, ipv4(Buffer.concat([Buffer.from([6, 4, 0, 0]), Buffer.alloc(20), tcp()]), { protocol: 51 })],
    ];
    for (const [linkType, frame] of frames) {
      for (let caplen = 0; caplen <= frame.length; caplen++) {
        // Decode from the end of an exact-size buffer: reading past caplen would throw RangeError.
        const exact = Buffer.from(frame.subarray(0, caplen));
        const status = decodeFrame(linkType, exact, 0, caplen, newTcpSegment());
        expect(Object.values(DecodeStatus)).toContain(status);
      }
    }
  });
});
