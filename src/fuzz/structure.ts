/**
 * Finds where a capture keeps its structure: record and block boundaries, and every length field a
 * reader trusts (pcap caplen, pcapng block and option lengths, IPv4 IHL, IPv6 extension lengths, TCP
 * data offset...). The fuzzer aims its mutations at these instead of hoping a random byte lands on one.
 * Written independently of src/capture and src/decode so it does not share their blind spots.
 */

export type FieldKind =
  | 'pcap.magic' | 'pcap.version' | 'pcap.snaplen' | 'pcap.linkType' | 'pcap.timestamp' | 'pcap.caplen' | 'pcap.origLen'
  | 'pcapng.blockType' | 'pcapng.blockLength' | 'pcapng.blockTrailer' | 'pcapng.byteOrder' | 'pcapng.version' | 'pcapng.sectionLength'
  | 'pcapng.linkType' | 'pcapng.optionCode' | 'pcapng.optionLength' | 'pcapng.interfaceId' | 'pcapng.timestamp' | 'pcapng.caplen' | 'pcapng.origLen'
  | 'link.etherType' | 'link.family'
  | 'ipv4.ihl' | 'ipv4.totalLength' | 'ipv4.fragment' | 'ipv4.protocol'
  | 'ipv6.payloadLength' | 'ipv6.nextHeader' | 'ipv6.extLength'
  | 'tcp.dataOffset' | 'tcp.flags' | 'tcp.seq' | 'tcp.ack';

export interface Field {
  kind: FieldKind;
  offset: number;
  /** Bytes; a nibble field is 1 byte with `nibble` set. */
  size: 1 | 2 | 4;
  littleEndian: boolean;
  nibble?: 'high' | 'low';
}

export interface Unit {
  kind: 'file-header' | 'record' | 'block';
  start: number;
  length: number;
  /** A record or a packet block (EPB, SPB, OPB): one frame in the capture. */
  isPacket: boolean;
}

export interface Layout {
  format: 'pcap' | 'pcapng' | null;
  units: Unit[];
  fields: Field[];
  /** Frames in the units found. */
  packets: number;
  /** The structure parsed to the last byte with no damage. */
  clean: boolean;
}

const MAX_CAPLEN = 262_144;
const MAX_BLOCK = 16 * 1024 * 1024;

export function locateStructure(buf: Buffer): Layout {
  const layout: Layout = { format: null, units: [], fields: [], packets: 0, clean: false };
  if (buf.length < 4) return layout;
  const magic = buf.readUInt32LE(0);
  if (magic === 0x0a0d0d0a) locatePcapng(buf, layout);
  else if ([0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34].includes(magic)) locatePcap(buf, layout, true, magic === 0xa1b2cd34);
  else if ([0xd4c3b2a1, 0x4d3cb2a1, 0x34cdb2a1].includes(magic)) locatePcap(buf, layout, false, magic === 0x34cdb2a1);
  return layout;
}

function locatePcap(buf: Buffer, layout: Layout, le: boolean, modified: boolean): void {
  layout.format = 'pcap';
  if (buf.length < 24) return;
  const field = (kind: FieldKind, offset: number, size: 1 | 2 | 4) => layout.fields.push({ kind, offset, size, littleEndian: le });
  field('pcap.magic', 0, 4);
  field('pcap.version', 4, 2);
  field('pcap.version', 6, 2);
  field('pcap.snaplen', 16, 4);
  field('pcap.linkType', 20, 4);
  layout.units.push({ kind: 'file-header', start: 0, length: 24, isPacket: false });
  const linkType = (le ? buf.readUInt32LE(20) : buf.readUInt32BE(20)) & 0xffff;
  const headerBytes = modified ? 24 : 16;
  let at = 24;
  while (at + headerBytes <= buf.length) {
    const caplen = le ? buf.readUInt32LE(at + 8) : buf.readUInt32BE(at + 8);
    if (caplen > MAX_CAPLEN || at + headerBytes + caplen > buf.length) return;
    field('pcap.timestamp', at, 4);
    field('pcap.timestamp', at + 4, 4);
    field('pcap.caplen', at + 8, 4);
    field('pcap.origLen', at + 12, 4);
    layout.units.push({ kind: 'record', start: at, length: headerBytes + caplen, isPacket: true });
    layout.packets++;
    locatePacket(buf, at + headerBytes, at + headerBytes + caplen, linkType, layout.fields);
    at += headerBytes + caplen;
  }
  layout.clean = at === buf.length;
}

function locatePcapng(buf: Buffer, layout: Layout): void {
  layout.format = 'pcapng';
  let le = true;
  let linkTypes: number[] = [];
  let at = 0;
  while (at + 12 <= buf.length) {
    const typeLE = buf.readUInt32LE(at);
    if (typeLE === 0x0a0d0d0a) {
      const bom = buf.readUInt32LE(at + 8);
      if (bom === 0x1a2b3c4d) le = true;
      else if (bom === 0x4d3c2b1a) le = false;
      else return;
      linkTypes = [];
    }
    const u32 = (offset: number) => (le ? buf.readUInt32LE(offset) : buf.readUInt32BE(offset));
    const u16 = (offset: number) => (le ? buf.readUInt16LE(offset) : buf.readUInt16BE(offset));
    const field = (kind: FieldKind, offset: number, size: 1 | 2 | 4) => layout.fields.push({ kind, offset, size, littleEndian: le });
    const type = u32(at);
    const length = u32(at + 4);
    if (length < 12 || length % 4 !== 0 || length > MAX_BLOCK || at + length > buf.length) return;
    if (u32(at + length - 4) !== length) return;
    field('pcapng.blockType', at, 4);
    field('pcapng.blockLength', at + 4, 4);
    field('pcapng.blockTrailer', at + length - 4, 4);
    const bodyEnd = at + length - 4;
    let isPacket = false;
    if (type === 0x0a0d0d0a && length >= 28) {
      field('pcapng.byteOrder', at + 8, 4);
      field('pcapng.version', at + 12, 2);
      field('pcapng.version', at + 14, 2);
      field('pcapng.sectionLength', at + 16, 4);
      field('pcapng.sectionLength', at + 20, 4);
      locateOptions(at + 24, bodyEnd, u16, field);
    } else if (type === 1 && length >= 20) {
      field('pcapng.linkType', at + 8, 2);
      linkTypes.push(u16(at + 8));
      locateOptions(at + 16, bodyEnd, u16, field);
    } else if ((type === 6 || type === 2) && length >= 32) {
      isPacket = true;
      field('pcapng.interfaceId', at + 8, type === 6 ? 4 : 2);
      field('pcapng.timestamp', at + 12, 4);
      field('pcapng.timestamp', at + 16, 4);
      field('pcapng.caplen', at + 20, 4);
      field('pcapng.origLen', at + 24, 4);
      const caplen = u32(at + 20);
      const interfaceId = type === 6 ? u32(at + 8) : u16(at + 8);
      if (at + 28 + caplen <= bodyEnd) {
        const linkType = linkTypes[interfaceId];
        if (linkType !== undefined) locatePacket(buf, at + 28, at + 28 + caplen, linkType, layout.fields);
        locateOptions(at + 28 + ((caplen + 3) & ~3), bodyEnd, u16, field);
      }
    } else if (type === 3 && length >= 16) {
      isPacket = true;
      field('pcapng.origLen', at + 8, 4);
      const linkType = linkTypes[0];
      if (linkType !== undefined) locatePacket(buf, at + 12, Math.min(bodyEnd, at + 12 + u32(at + 8)), linkType, layout.fields);
    }
    layout.units.push({ kind: 'block', start: at, length, isPacket });
    if (isPacket) layout.packets++;
    at += length;
  }
  layout.clean = at === buf.length && layout.units.length > 0;
}

function locateOptions(
  start: number,
  end: number,
  u16: (offset: number) => number,
  field: (kind: FieldKind, offset: number, size: 1 | 2 | 4) => void,
): void {
  let at = start;
  while (at + 4 <= end) {
    field('pcapng.optionCode', at, 2);
    field('pcapng.optionLength', at + 2, 2);
    if (u16(at) === 0) return;
    at += 4 + ((u16(at + 2) + 3) & ~3);
  }
}

/** Follows the link and IP headers of one frame as far as its bytes go, noting each length field. */
function locatePacket(buf: Buffer, start: number, end: number, linkType: number, fields: Field[]): void {
  const be = (kind: FieldKind, offset: number, size: 1 | 2 | 4, nibble?: 'high' | 'low') => {
    if (offset + size <= end) fields.push({ kind, offset, size, littleEndian: false, nibble });
  };
  let at = start;
  let etherType = -1;
  switch (linkType) {
    case 1: {
      if (end - at < 14) return;
      let typeAt = at + 12;
      for (let tags = 0; tags < 4 && typeAt + 2 <= end && [0x8100, 0x88a8, 0x9100].includes(buf.readUInt16BE(typeAt)); tags++) typeAt += 4;
      if (typeAt + 2 > end) return;
      be('link.etherType', typeAt, 2);
      etherType = buf.readUInt16BE(typeAt);
      at = typeAt + 2;
      break;
    }
    case 113:
      if (end - at < 16) return;
      be('link.etherType', at + 14, 2);
      etherType = buf.readUInt16BE(at + 14);
      at += 16;
      break;
    case 276:
      if (end - at < 20) return;
      be('link.etherType', at, 2);
      etherType = buf.readUInt16BE(at);
      at += 20;
      break;
    case 0:
    case 108:
      if (end - at < 4) return;
      fields.push({ kind: 'link.family', offset: at, size: 4, littleEndian: linkType === 0 });
      at += 4;
      break;
    case 101:
    case 12:
    case 14:
    case 228:
    case 229:
      break;
    default:
      return;
  }
  if (etherType !== -1 && etherType !== 0x0800 && etherType !== 0x86dd) return;
  if (at >= end) return;
  const version = buf[at]! >> 4;
  if (version === 4) locateIpv4(buf, at, end, be);
  else if (version === 6) locateIpv6(buf, at, end, be);
}

type Note = (kind: FieldKind, offset: number, size: 1 | 2 | 4, nibble?: 'high' | 'low') => void;

function locateIpv4(buf: Buffer, at: number, end: number, note: Note): void {
  if (end - at < 20) return;
  note('ipv4.ihl', at, 1, 'low');
  note('ipv4.totalLength', at + 2, 2);
  note('ipv4.fragment', at + 6, 2);
  note('ipv4.protocol', at + 9, 1);
  const ihl = (buf[at]! & 0x0f) * 4;
  if (buf[at + 9] === 6 && ihl >= 20) locateTcp(at + ihl, end, note);
}

function locateIpv6(buf: Buffer, at: number, end: number, note: Note): void {
  if (end - at < 40) return;
  note('ipv6.payloadLength', at + 4, 2);
  note('ipv6.nextHeader', at + 6, 1);
  let next = buf[at + 6]!;
  let cursor = at + 40;
  for (let hops = 0; hops < 16 && next !== 6; hops++) {
    if (end - cursor < 8) return;
    let length: number;
    if (next === 44) length = 8;
    else if (next === 51) length = (buf[cursor + 1]! + 2) * 4;
    else if ([0, 43, 60, 135, 139, 140].includes(next)) length = (buf[cursor + 1]! + 1) * 8;
    else return;
    note('ipv6.nextHeader', cursor, 1);
    if (next !== 44) note('ipv6.extLength', cursor + 1, 1);
    next = buf[cursor]!;
    cursor += length;
  }
  if (next === 6) locateTcp(cursor, end, note);
}

function locateTcp(at: number, end: number, note: Note): void {
  if (end - at < 14) return;
  note('tcp.seq', at + 4, 4);
  note('tcp.ack', at + 8, 4);
  note('tcp.dataOffset', at + 12, 1, 'high');
  note('tcp.flags', at + 13, 1);
}

export function readField(buf: Buffer, field: Field): number {
  if (field.nibble === 'high') return buf[field.offset]! >> 4;
  if (field.nibble === 'low') return buf[field.offset]! & 0x0f;
  if (field.size === 1) return buf[field.offset]!;
  if (field.size === 2) return field.littleEndian ? buf.readUInt16LE(field.offset) : buf.readUInt16BE(field.offset);
  return field.littleEndian ? buf.readUInt32LE(field.offset) : buf.readUInt32BE(field.offset);
}

/** Writes `value` (wrapped to the field's width) into the field. */
export function writeField(buf: Buffer, field: Field, value: number): void {
  if (field.nibble === 'high') buf[field.offset] = (buf[field.offset]! & 0x0f) | ((value & 0x0f) << 4);
  else if (field.nibble === 'low') buf[field.offset] = (buf[field.offset]! & 0xf0) | (value & 0x0f);
  else if (field.size === 1) buf[field.offset] = value & 0xff;
  else if (field.size === 2) {
    if (field.littleEndian) buf.writeUInt16LE(value & 0xffff, field.offset);
    else buf.writeUInt16BE(value & 0xffff, field.offset);
  } else if (field.littleEndian) buf.writeUInt32LE(value >>> 0, field.offset);
  else buf.writeUInt32BE(value >>> 0, field.offset);
}

/** Largest value the field holds. */
export function fieldMax(field: Field): number {
  return field.nibble ? 0x0f : field.size === 1 ? 0xff : field.size === 2 ? 0xffff : 0xffffffff;
}
