/**
 * Builders for hand-made captures: packets (Ethernet, IPv4, IPv6 with extension headers, TCP) and the
 * files around them (pcap in both byte orders and resolutions, pcapng blocks). Every length field can
 * be overridden, so a test or the fuzzer can say exactly which lie a file tells.
 */

export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;
export const ETHERTYPE = { ipv4: 0x0800, ipv6: 0x86dd, vlan: 0x8100 } as const;
export const LINK = { ethernet: 1, raw: 101, linuxSll: 113, ipv4: 228, ipv6: 229 } as const;

export interface TcpSpec {
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  payload?: Buffer | number;
  /** Header length in 32-bit words as written (normally 5; options are zero-filled to fit). */
  dataOffset?: number;
}

export function tcp(spec: TcpSpec): Buffer {
  const payload = typeof spec.payload === 'number' ? Buffer.alloc(spec.payload, 0x61) : (spec.payload ?? Buffer.alloc(0));
  const dataOffset = spec.dataOffset ?? 5;
  const headerBytes = Math.max(20, dataOffset * 4);
  const buf = Buffer.alloc(headerBytes + payload.length);
  buf.writeUInt16BE(spec.srcPort, 0);
  buf.writeUInt16BE(spec.dstPort, 2);
  buf.writeUInt32BE((spec.seq ?? 0) >>> 0, 4);
  buf.writeUInt32BE((spec.ack ?? 0) >>> 0, 8);
  buf[12] = (dataOffset & 0x0f) << 4;
  buf[13] = spec.flags;
  buf.writeUInt16BE(spec.window ?? 65535, 14);
  payload.copy(buf, headerBytes);
  return buf;
}

export interface Ipv4Spec {
  src: string;
  dst: string;
  payload: Buffer;
  protocol?: number;
  /** Header length in 32-bit words as written (normally 5; the header is zero-padded to fit). */
  ihl?: number;
  totalLength?: number;
  fragmentOffset?: number;
}

export function ipv4(spec: Ipv4Spec): Buffer {
  const ihl = spec.ihl ?? 5;
  const headerBytes = Math.max(20, ihl * 4);
  const buf = Buffer.alloc(headerBytes + spec.payload.length);
  buf[0] = 0x40 | (ihl & 0x0f);
  buf.writeUInt16BE(spec.totalLength ?? (headerBytes + spec.payload.length) & 0xffff, 2);
  buf.writeUInt16BE(spec.fragmentOffset ?? 0x4000, 6);
  buf[8] = 64;
  buf[9] = spec.protocol ?? 6;
  ipv4Bytes(spec.src).copy(buf, 12);
  ipv4Bytes(spec.dst).copy(buf, 16);
  spec.payload.copy(buf, headerBytes);
  return buf;
}

export interface Ipv6Extension {
  /** Protocol number of this extension header (0 hop-by-hop, 43 routing, 44 fragment, 60 destination). */
  type: number;
  /** The header's length byte as written (units of 8 bytes beyond the first 8; ignored for fragment). */
  lengthField?: number;
  /** What the header's "next header" byte says; by default the following header's type (or TCP). */
  next?: number;
  /** Bytes actually present for this header; by default what the length byte says. */
  bytes?: number;
}

export interface Ipv6Spec {
  src: string;
  dst: string;
  payload: Buffer;
  extensions?: Ipv6Extension[];
  nextHeader?: number;
  payloadLength?: number;
}

export function ipv6(spec: Ipv6Spec): Buffer {
  const extensions = spec.extensions ?? [];
  const parts: Buffer[] = [];
  extensions.forEach((ext, i) => {
    const lengthField = ext.lengthField ?? 0;
    const bytes = ext.bytes ?? (ext.type === 44 ? 8 : (lengthField + 1) * 8);
    const header = Buffer.alloc(bytes);
    if (bytes > 0) header[0] = ext.next ?? extensions[i + 1]?.type ?? 6;
    if (bytes > 1 && ext.type !== 44) header[1] = lengthField;
    parts.push(header);
  });
  parts.push(spec.payload);
  const body = Buffer.concat(parts);
  const buf = Buffer.alloc(40 + body.length);
  buf.writeUInt32BE(0x60000000, 0);
  buf.writeUInt16BE(spec.payloadLength ?? body.length & 0xffff, 4);
  buf[6] = spec.nextHeader ?? extensions[0]?.type ?? 6;
  buf[7] = 64;
  ipv6Bytes(spec.src).copy(buf, 8);
  ipv6Bytes(spec.dst).copy(buf, 24);
  body.copy(buf, 40);
  return buf;
}

export function ethernet(etherType: number, payload: Buffer): Buffer {
  const buf = Buffer.alloc(14 + payload.length);
  buf.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
  buf.writeUInt16BE(etherType, 12);
  payload.copy(buf, 14);
  return buf;
}

/** An Ethernet frame carrying IPv4 + TCP: the common case in tests. */
export function tcpFrame(src: string, dst: string, segment: TcpSpec): Buffer {
  return ethernet(ETHERTYPE.ipv4, ipv4({ src, dst, payload: tcp(segment) }));
}

export function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

export function ipv6Bytes(address: string): Buffer {
  const [head = '', tail] = address.split('::');
  const words = (part: string) => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const front = words(head);
  const back = tail === undefined ? [] : words(tail);
  const all = [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
  const buf = Buffer.alloc(16);
  all.forEach((word, i) => buf.writeUInt16BE(word, i * 2));
  return buf;
}

// ---- pcap ----

export interface PcapOptions {
  linkType?: number;
  littleEndian?: boolean;
  nanos?: boolean;
  snaplen?: number;
  versionMajor?: number;
  versionMinor?: number;
}

export interface PcapRecord {
  seconds: number;
  /** Microseconds (or nanoseconds in a nanosecond file). */
  fraction?: number;
  data: Buffer;
  /** caplen as written; by default the data's length. */
  caplen?: number;
  origLen?: number;
}

export function pcapHeader(options: PcapOptions = {}): Buffer {
  const le = options.littleEndian ?? true;
  const buf = Buffer.alloc(24);
  const magic = options.nanos ? 0xa1b23c4d : 0xa1b2c3d4;
  if (le) buf.writeUInt32LE(magic, 0);
  else buf.writeUInt32BE(magic, 0);
  u16(buf, 4, options.versionMajor ?? 2, le);
  u16(buf, 6, options.versionMinor ?? 4, le);
  u32(buf, 16, options.snaplen ?? 262144, le);
  u32(buf, 20, options.linkType ?? LINK.ethernet, le);
  return buf;
}

export function pcapRecord(record: PcapRecord, options: PcapOptions = {}): Buffer {
  const le = options.littleEndian ?? true;
  const header = Buffer.alloc(16);
  u32(header, 0, record.seconds, le);
  u32(header, 4, record.fraction ?? 0, le);
  u32(header, 8, record.caplen ?? record.data.length, le);
  u32(header, 12, record.origLen ?? record.data.length, le);
  return Buffer.concat([header, record.data]);
}

export function pcapFile(records: readonly PcapRecord[], options: PcapOptions = {}): Buffer {
  return Buffer.concat([pcapHeader(options), ...records.map((r) => pcapRecord(r, options))]);
}

// ---- pcapng ----

export interface BlockOptions {
  littleEndian?: boolean;
  /** Total length as written in the header; by default the true length. */
  length?: number;
  /** Total length as written in the trailer; by default the header's. */
  trailer?: number;
}

/** One pcapng block: type, length, body padded to 4 bytes, length again. */
export function pcapngBlock(type: number, body: Buffer, options: BlockOptions = {}): Buffer {
  const le = options.littleEndian ?? true;
  const padded = Buffer.alloc((body.length + 3) & ~3);
  body.copy(padded);
  const total = 12 + padded.length;
  const buf = Buffer.alloc(total);
  u32(buf, 0, type, le);
  u32(buf, 4, options.length ?? total, le);
  padded.copy(buf, 8);
  u32(buf, total - 4, options.trailer ?? options.length ?? total, le);
  return buf;
}

export function sectionHeader(options: BlockOptions & { major?: number; minor?: number } = {}): Buffer {
  const le = options.littleEndian ?? true;
  const body = Buffer.alloc(16);
  u32(body, 0, 0x1a2b3c4d, le);
  u16(body, 4, options.major ?? 1, le);
  u16(body, 6, options.minor ?? 0, le);
  body.writeInt32LE(-1, 8);
  body.writeInt32LE(-1, 12);
  return pcapngBlock(0x0a0d0d0a, body, options);
}

export interface PcapngOption {
  code: number;
  value: Buffer;
  /** Length as written; by default the value's length. */
  length?: number;
}

export function pcapngOptions(options: readonly PcapngOption[], littleEndian = true): Buffer {
  const parts = options.map((option) => {
    const buf = Buffer.alloc(4 + ((option.value.length + 3) & ~3));
    u16(buf, 0, option.code, littleEndian);
    u16(buf, 2, option.length ?? option.value.length, littleEndian);
    option.value.copy(buf, 4);
    return buf;
  });
  return Buffer.concat([...parts, Buffer.alloc(4)]); // opt_endofopt
}

export function interfaceDescription(linkType: number, options: BlockOptions & { snaplen?: number; tsresol?: number; extraOptions?: PcapngOption[] } = {}): Buffer {
  const le = options.littleEndian ?? true;
  const fixed = Buffer.alloc(8);
  u16(fixed, 0, linkType, le);
  u32(fixed, 4, options.snaplen ?? 262144, le);
  const opts: PcapngOption[] = [...(options.extraOptions ?? [])];
  if (options.tsresol !== undefined) opts.push({ code: 9, value: Buffer.from([options.tsresol]) });
  return pcapngBlock(1, opts.length ? Buffer.concat([fixed, pcapngOptions(opts, le)]) : fixed, options);
}

export interface EnhancedPacket extends BlockOptions {
  interfaceId?: number;
  /** Timestamp in interface units (µs by default). */
  timestamp: bigint;
  data: Buffer;
  caplen?: number;
  origLen?: number;
}

export function enhancedPacket(packet: EnhancedPacket): Buffer {
  const le = packet.littleEndian ?? true;
  const fixed = Buffer.alloc(20);
  u32(fixed, 0, packet.interfaceId ?? 0, le);
  u32(fixed, 4, Number((packet.timestamp >> 32n) & 0xffffffffn), le);
  u32(fixed, 8, Number(packet.timestamp & 0xffffffffn), le);
  u32(fixed, 12, packet.caplen ?? packet.data.length, le);
  u32(fixed, 16, packet.origLen ?? packet.data.length, le);
  return pcapngBlock(6, Buffer.concat([fixed, packet.data]), packet);
}

export function simplePacket(data: Buffer, options: BlockOptions & { origLen?: number } = {}): Buffer {
  const fixed = Buffer.alloc(4);
  u32(fixed, 0, options.origLen ?? data.length, options.littleEndian ?? true);
  return pcapngBlock(3, Buffer.concat([fixed, data]), options);
}

function u16(buf: Buffer, at: number, value: number, le: boolean): void {
  if (le) buf.writeUInt16LE(value & 0xffff, at);
  else buf.writeUInt16BE(value & 0xffff, at);
}

function u32(buf: Buffer, at: number, value: number, le: boolean): void {
  if (le) buf.writeUInt32LE(value >>> 0, at);
  else buf.writeUInt32BE(value >>> 0, at);
}
