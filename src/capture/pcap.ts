import { FramedParser, formatError } from './framed.js';
import { newCaptureRecord, type CaptureParser, type RecordSink } from './record.js';
import { formatNumber } from '../numbers.js';
import { fileU16, fileU32 } from './bytes.js';

/** Magic numbers as read little-endian from the first four bytes. */
export const PCAP_MAGIC = {
  microsLE: 0xa1b2c3d4,
  nanosLE: 0xa1b23c4d,
  microsBE: 0xd4c3b2a1,
  nanosBE: 0x4d3cb2a1,
  /** Alexey Kuznetsov's patched libpcap: 8 more bytes per record header. */
  modifiedLE: 0xa1b2cd34,
  modifiedBE: 0x34cdb2a1,
} as const;

const FILE_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
const MODIFIED_RECORD_HEADER_BYTES = 24;
/** libpcap refuses records larger than this whatever the snaplen says; so do we. */
export const MAX_PCAP_CAPLEN = 262_144;

// File header field offsets.
const HDR_VERSION_MAJOR = 4;
const HDR_VERSION_MINOR = 6;
const HDR_LINKTYPE = 20;
// Record header field offsets.
const REC_TS_SEC = 0;
const REC_TS_FRACTION = 4;
const REC_CAPLEN = 8;
const REC_ORIGLEN = 12;

/** Low 16 bits: the link type; bits 16-25 are reserved and must be zero; the top bits describe an FCS. */
const LINKTYPE_MASK = 0x0000ffff;
const LINKTYPE_RESERVED_MASK = 0x03ff0000;

export function isPcapMagic(magicLE: number): boolean {
  return Object.values(PCAP_MAGIC).includes(magicLE as never);
}

export class PcapParser extends FramedParser implements CaptureParser {
  readonly format = 'pcap' as const;
  readonly linkTypes: number[] = [];
  fractionDigits = 6;
  private headerRead = false;
  private littleEndian = true;
  private fractionPerSecond = 1e6;
  private nanosPerFraction = 1000;
  private recordHeaderBytes = RECORD_HEADER_BYTES;
  private linkType = 0;
  private readonly record = newCaptureRecord();

  constructor(private readonly sink: RecordSink) {
    super();
  }

  protected get peekBytes(): number {
    return this.headerRead ? this.recordHeaderBytes : FILE_HEADER_BYTES;
  }

  protected unitLength(buf: Buffer, offset: number, unitStart: number): number {
    if (!this.headerRead) return FILE_HEADER_BYTES;
    const caplen = this.u32(buf, offset + REC_CAPLEN);
    if (caplen > MAX_PCAP_CAPLEN) {
      throw formatError(`record ${this.record.frame + 1} claims ${formatNumber(caplen)} captured bytes, more than any snapshot length (${formatNumber(MAX_PCAP_CAPLEN)})`, unitStart);
    }
    return this.recordHeaderBytes + caplen;
  }

  protected unit(buf: Buffer, offset: number, length: number, unitStart: number): void {
    if (!this.headerRead) {
      this.readFileHeader(buf, offset);
      return;
    }
    this.fillRecord(buf, offset, length, unitStart);
    this.sink(this.record);
  }

  /**
   * The record loop without the generic framing's calls per unit: once the file header is read every
   * unit is a record. Same checks, same order, same errors as unitLength() and unit().
   */
  protected override unitsInChunk(chunk: Buffer, start: number): number {
    if (!this.headerRead) return super.unitsInChunk(chunk, start);
    const headerBytes = this.recordHeaderBytes;
    const record = this.record;
    const sink = this.sink;
    const end = chunk.length;
    let pos = start;
    while (end - pos >= headerBytes) {
      const caplen = this.u32(chunk, pos + REC_CAPLEN);
      if (caplen > MAX_PCAP_CAPLEN) this.unitLength(chunk, pos, this.consumed); // throws the usual error
      const length = headerBytes + caplen;
      if (length > end - pos) break;
      this.fillRecord(chunk, pos, length, this.consumed);
      sink(record);
      this.consumed += length;
      pos += length;
    }
    return pos;
  }

  private fillRecord(buf: Buffer, offset: number, length: number, unitStart: number): void {
    const r = this.record;
    const fraction = this.u32(buf, offset + REC_TS_FRACTION);
    // Some writers put a fraction of a whole second or more here; carry it rather than reject the file.
    const carrySeconds = Math.floor(fraction / this.fractionPerSecond);
    r.seconds = this.u32(buf, offset + REC_TS_SEC) + carrySeconds;
    r.nanos = (fraction - carrySeconds * this.fractionPerSecond) * this.nanosPerFraction;
    r.caplen = length - this.recordHeaderBytes;
    r.origLen = this.u32(buf, offset + REC_ORIGLEN);
    r.data = buf;
    r.offset = offset + this.recordHeaderBytes;
    r.linkType = this.linkType;
    r.frame++;
    r.byteOffset = unitStart;
  }

  end(): string | null {
    if (!this.headerRead) {
      const left = this.describeLeftover();
      return `file ends inside the ${FILE_HEADER_BYTES}-byte pcap file header (${left?.present ?? 0} bytes present)`;
    }
    const left = this.describeLeftover();
    if (!left) return null;
    if (left.expected < 0) return `file ends inside the header of record ${this.record.frame + 1} (${left.present} of ${this.recordHeaderBytes} bytes)`;
    return `file ends inside record ${this.record.frame + 1} (${formatNumber(left.present)} of ${formatNumber(left.expected)} bytes)`;
  }

  private readFileHeader(buf: Buffer, offset: number): void {
    const magic = buf.readUInt32LE(offset);
    this.littleEndian = magic === PCAP_MAGIC.microsLE || magic === PCAP_MAGIC.nanosLE || magic === PCAP_MAGIC.modifiedLE;
    if (magic === PCAP_MAGIC.nanosLE || magic === PCAP_MAGIC.nanosBE) {
      this.fractionPerSecond = 1e9;
      this.nanosPerFraction = 1;
      this.fractionDigits = 9;
    }
    if (magic === PCAP_MAGIC.modifiedLE || magic === PCAP_MAGIC.modifiedBE) this.recordHeaderBytes = MODIFIED_RECORD_HEADER_BYTES;
    const major = this.u16(buf, offset + HDR_VERSION_MAJOR);
    const minor = this.u16(buf, offset + HDR_VERSION_MINOR);
    // libpcap's rule: 2.0 through 2.4 are pcap; anything else is not a format we know.
    if (major !== 2 || minor > 4) throw formatError(`unsupported pcap version ${major}.${minor} (only 2.x is defined)`, offset + HDR_VERSION_MAJOR);
    const rawLinkType = this.u32(buf, offset + HDR_LINKTYPE);
    if ((rawLinkType & LINKTYPE_RESERVED_MASK) !== 0) {
      throw formatError(`link-type field 0x${rawLinkType.toString(16).padStart(8, '0')} has reserved bits set`, offset + HDR_LINKTYPE);
    }
    this.linkType = rawLinkType & LINKTYPE_MASK;
    this.linkTypes.push(this.linkType);
    this.headerRead = true;
  }

  private u32(buf: Buffer, at: number): number {
    return fileU32(buf, at, this.littleEndian);
  }

  private u16(buf: Buffer, at: number): number {
    return fileU16(buf, at, this.littleEndian);
  }
}
