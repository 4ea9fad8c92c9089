import { FramedParser, formatError } from './framed.js';
import { newCaptureRecord, type CaptureParser, type RecordSink } from './record.js';
import { formatNumber } from '../numbers.js';
import { fileI32, fileU16, fileU32 } from './bytes.js';

export const PCAPNG_SHB_MAGIC = 0x0a0d0d0a;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

const BLOCK = {
  sectionHeader: 0x0a0d0d0a,
  interfaceDescription: 0x00000001,
  obsoletePacket: 0x00000002,
  simplePacket: 0x00000003,
  enhancedPacket: 0x00000006,
} as const;

const BLOCK_HEADER_BYTES = 8;
const BLOCK_TRAILER_BYTES = 4;
const MIN_BLOCK_BYTES = BLOCK_HEADER_BYTES + BLOCK_TRAILER_BYTES;
/** A block this large is damage (the largest legal packet plus generous options), never an allocation. */
export const MAX_PCAPNG_BLOCK_BYTES = 16 * 1024 * 1024;

// Section header block body.
const SHB_BYTE_ORDER = 8;
const SHB_MAJOR = 12;
const SHB_MINOR = 14;
// Interface description block body.
const IDB_LINKTYPE = 8;
const IDB_OPTIONS = 16;
const OPT_END = 0;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;
// Enhanced packet block body.
const EPB_INTERFACE = 8;
const EPB_TS_HIGH = 12;
const EPB_TS_LOW = 16;
const EPB_CAPLEN = 20;
const EPB_ORIGLEN = 24;
const EPB_DATA = 28;
// Obsolete packet block body: like the EPB, with a 16-bit interface id and a drop counter.
const OPB_INTERFACE = 8;
// Simple packet block body.
const SPB_ORIGLEN = 8;
const SPB_DATA = 12;

interface Interface {
  linkType: number;
  /** Timestamp units per second (10^6 unless if_tsresol says otherwise). */
  unitsPerSecond: number;
  /** nanoseconds = floor(units within the second * nanosMultiplier / nanosDivisor), exact in doubles */
  nanosMultiplier: number;
  nanosDivisor: number;
  fractionDigits: number;
  offsetSeconds: number;
}

const TWO_POW_32 = 4294967296;
/** Long division of a 64-bit count by bytes stays exact while (divisor - 1) * 256 + 255 < 2^53. */
const MAX_EXACT_BYTEWISE_DIVISOR = 2 ** 45;
/** 10^9 = 5^9 * 2^9: multiplying by 5^9 alone keeps a 2^-N remainder (N <= 32) below 2^53. */
const FIVE_POW_9 = 1_953_125;

/** Byte `index` (0 = most significant) of the 64-bit value high:low. */
function byteOf(high: number, low: number, index: number): number {
  const word = index < 4 ? high : low;
  return (word >>> (24 - 8 * (index & 3))) & 0xff;
}

export class PcapngParser extends FramedParser implements CaptureParser {
  readonly format = 'pcapng' as const;
  readonly linkTypes: number[] = [];
  fractionDigits = 0;
  /** Packets skipped because their block named an interface the section never described. */
  unknownInterfacePackets = 0;
  sections = 0;
  private littleEndian = true;
  private interfaces: Interface[] = [];
  private readonly record = newCaptureRecord();

  constructor(private readonly sink: RecordSink) {
    super();
  }

  protected readonly peekBytes = 12;

  protected unitLength(buf: Buffer, offset: number, unitStart: number): number {
    // Read as little-endian, as the magic numbers are written: the section header's type is the same
    // both ways round, and its byte-order field is what says which way the rest is.
    const type = fileU32(buf, offset, true);
    if (type === BLOCK.sectionHeader) {
      const bom = fileU32(buf, offset + SHB_BYTE_ORDER, true);
      if (bom === BYTE_ORDER_MAGIC) this.littleEndian = true;
      else if (bom === 0x4d3c2b1a) this.littleEndian = false;
      else throw formatError(`pcapng section header has an unknown byte-order magic 0x${bom.toString(16)}`, unitStart + SHB_BYTE_ORDER);
    } else if (this.sections === 0) {
      throw formatError('pcapng file does not start with a section header block', unitStart);
    }
    const length = this.u32(buf, offset + 4);
    if (length < MIN_BLOCK_BYTES || length % 4 !== 0 || length > MAX_PCAPNG_BLOCK_BYTES) {
      throw formatError(`pcapng block of type 0x${this.u32(buf, offset).toString(16)} has an impossible length ${formatNumber(length)}`, unitStart + 4);
    }
    return length;
  }

  protected unit(buf: Buffer, offset: number, length: number, unitStart: number): void {
    const trailer = this.u32(buf, offset + length - BLOCK_TRAILER_BYTES);
    if (trailer !== length) {
      throw formatError(`pcapng block length ${length} disagrees with its trailer ${trailer}`, unitStart + length - BLOCK_TRAILER_BYTES);
    }
    switch (this.u32(buf, offset)) {
      case BLOCK.sectionHeader:
        return this.sectionHeader(buf, offset, length, unitStart);
      case BLOCK.interfaceDescription:
        return this.interfaceDescription(buf, offset, length, unitStart);
      case BLOCK.enhancedPacket:
        return this.packet(buf, offset, length, unitStart, length >= EPB_DATA ? this.u32(buf, offset + EPB_INTERFACE) : 0, EPB_DATA);
      case BLOCK.obsoletePacket:
        return this.packet(buf, offset, length, unitStart, length >= EPB_DATA ? this.u16(buf, offset + OPB_INTERFACE) : 0, EPB_DATA);
      case BLOCK.simplePacket:
        return this.simplePacket(buf, offset, length, unitStart);
      default:
        return; // Name resolution, statistics, custom and unknown blocks: skipped by their length.
    }
  }

  end(): string | null {
    const left = this.describeLeftover();
    if (this.sections === 0) return `file ends inside the first pcapng section header (${left?.present ?? 0} bytes present)`;
    if (!left) return null;
    if (left.expected < 0) return `file ends inside a block header (${left.present} of 12 bytes)`;
    return `file ends inside a pcapng block (${formatNumber(left.present)} of ${formatNumber(left.expected)} bytes)`;
  }

  private sectionHeader(buf: Buffer, offset: number, length: number, unitStart: number): void {
    if (length < 28) throw formatError(`pcapng section header is ${length} bytes, shorter than its fixed fields`, unitStart);
    const major = this.u16(buf, offset + SHB_MAJOR);
    const minor = this.u16(buf, offset + SHB_MINOR);
    // 1.0 is the format; 1.2 was written by some old tools and is read the same way.
    if (major !== 1 || (minor !== 0 && minor !== 2)) {
      throw formatError(`unsupported pcapng section version ${major}.${minor}`, unitStart + SHB_MAJOR);
    }
    this.sections++;
    this.interfaces = []; // Interface ids are numbered per section.
  }

  private interfaceDescription(buf: Buffer, offset: number, length: number, unitStart: number): void {
    if (length < IDB_OPTIONS + BLOCK_TRAILER_BYTES) throw formatError(`pcapng interface block is ${length} bytes, shorter than its fixed fields`, unitStart);
    const iface: Interface = { linkType: this.u16(buf, offset + IDB_LINKTYPE), unitsPerSecond: 1e6, nanosMultiplier: 1000, nanosDivisor: 1, fractionDigits: 6, offsetSeconds: 0 };
    const end = offset + length - BLOCK_TRAILER_BYTES;
    let at = offset + IDB_OPTIONS;
    while (at + 4 <= end) {
      const code = this.u16(buf, at);
      const optionLength = this.u16(buf, at + 2);
      if (code === OPT_END) break;
      if (at + 4 + optionLength > end) throw formatError(`pcapng interface option ${code} of length ${optionLength} runs past its block`, unitStart + (at - offset));
      if (code === OPT_IF_TSRESOL && optionLength >= 1) this.setResolution(iface, buf[at + 4]!);
      if (code === OPT_IF_TSOFFSET && optionLength >= 8) iface.offsetSeconds = this.i32(buf, at + (this.littleEndian ? 8 : 4)) * TWO_POW_32 + this.u32(buf, at + (this.littleEndian ? 4 : 8));
      at += 4 + ((optionLength + 3) & ~3);
    }
    this.interfaces.push(iface);
    this.linkTypes.push(iface.linkType);
    this.fractionDigits = Math.max(this.fractionDigits, iface.fractionDigits);
  }

  private setResolution(iface: Interface, tsresol: number): void {
    const exponent = tsresol & 0x7f;
    if (tsresol & 0x80) {
      const bits = Math.min(exponent, 62);
      iface.unitsPerSecond = 2 ** bits;
      iface.fractionDigits = Math.min(9, Math.ceil(bits * Math.log10(2)));
      // Dividing by a power of two is exact; only the product must stay below 2^53.
      iface.nanosMultiplier = bits <= 9 ? 1e9 : FIVE_POW_9;
      iface.nanosDivisor = bits <= 9 ? iface.unitsPerSecond : 2 ** (bits - 9);
    } else {
      const digits = Math.min(exponent, 18);
      iface.unitsPerSecond = 10 ** digits;
      iface.fractionDigits = Math.min(9, digits);
      iface.nanosMultiplier = digits <= 9 ? 10 ** (9 - digits) : 1;
      iface.nanosDivisor = digits <= 9 ? 1 : 10 ** (digits - 9);
    }
  }

  private packet(buf: Buffer, offset: number, length: number, unitStart: number, interfaceId: number, dataAt: number): void {
    if (length < dataAt + BLOCK_TRAILER_BYTES) throw formatError(`pcapng packet block is ${length} bytes, shorter than its fixed fields`, unitStart);
    const room = length - dataAt - BLOCK_TRAILER_BYTES;
    const caplen = this.u32(buf, offset + EPB_CAPLEN);
    if (room < 0 || caplen > room) {
      throw formatError(`pcapng packet block claims ${formatNumber(caplen)} captured bytes in a ${length}-byte block`, unitStart + EPB_CAPLEN);
    }
    const iface = this.interfaces[interfaceId];
    const r = this.record;
    r.frame++;
    if (!iface) {
      this.unknownInterfacePackets++;
      return;
    }
    this.setTime(iface, this.u32(buf, offset + EPB_TS_HIGH), this.u32(buf, offset + EPB_TS_LOW));
    this.emit(buf, offset + dataAt, caplen, this.u32(buf, offset + EPB_ORIGLEN), iface, unitStart);
  }

  private simplePacket(buf: Buffer, offset: number, length: number, unitStart: number): void {
    if (length < SPB_DATA + BLOCK_TRAILER_BYTES) throw formatError(`pcapng simple packet block is ${length} bytes, shorter than its fixed fields`, unitStart);
    const iface = this.interfaces[0];
    this.record.frame++;
    if (!iface) {
      this.unknownInterfacePackets++;
      return;
    }
    const origLen = this.u32(buf, offset + SPB_ORIGLEN);
    const caplen = Math.min(origLen, length - SPB_DATA - BLOCK_TRAILER_BYTES);
    // A simple packet block has no timestamp: it keeps the previous packet's time.
    this.emit(buf, offset + SPB_DATA, caplen, origLen, iface, unitStart);
  }

  private emit(buf: Buffer, dataOffset: number, caplen: number, origLen: number, iface: Interface, unitStart: number): void {
    const r = this.record;
    r.data = buf;
    r.offset = dataOffset;
    r.caplen = caplen;
    r.origLen = origLen;
    r.linkType = iface.linkType;
    r.byteOffset = unitStart;
    this.sink(r);
  }

  /** Splits a 64-bit count of interface units into seconds and nanoseconds without losing precision. */
  private setTime(iface: Interface, high: number, low: number): void {
    const perSecond = iface.unitsPerSecond;
    let seconds: number;
    let remainder: number;
    if (high < 0x200000) {
      const units = high * TWO_POW_32 + low; // below 2^53: exact, and so is the floor of the quotient
      seconds = Math.floor(units / perSecond);
      remainder = units - seconds * perSecond;
    } else if (perSecond <= MAX_EXACT_BYTEWISE_DIVISOR) {
      // Long division, a byte at a time, keeps every intermediate below 2^53.
      seconds = 0;
      remainder = 0;
      for (let i = 0; i < 8; i++) {
        const value = remainder * 256 + byteOf(high, low, i);
        const q = Math.floor(value / perSecond);
        remainder = value - q * perSecond;
        seconds = seconds * 256 + q;
      }
    } else {
      // Femtoseconds and finer: nothing real writes them; the nearest double will do.
      const units = high * TWO_POW_32 + low;
      seconds = Math.floor(units / perSecond);
      remainder = Math.max(0, units - seconds * perSecond);
    }
    this.record.seconds = seconds + iface.offsetSeconds;
    this.record.nanos = Math.min(999_999_999, Math.floor((remainder * iface.nanosMultiplier) / iface.nanosDivisor));
  }

  private u32(buf: Buffer, at: number): number {
    return fileU32(buf, at, this.littleEndian);
  }

  private i32(buf: Buffer, at: number): number {
    return fileI32(buf, at, this.littleEndian);
  }

  private u16(buf: Buffer, at: number): number {
    return fileU16(buf, at, this.littleEndian);
  }
}
