/**
 * One captured frame as the readers hand it downstream. A reader owns a single instance and
 * overwrites it for every frame: it is valid only until the callback returns.
 */
export interface CaptureRecord {
  /** Buffer holding the frame; may be the read chunk itself or the reader's scratch buffer. */
  data: Buffer;
  /** Offset of the frame's first byte in `data`. */
  offset: number;
  /** Bytes of the frame present in the capture. */
  caplen: number;
  /** Length of the frame on the wire. */
  origLen: number;
  /** Link-layer header type (LINKTYPE_*), reserved upper bits masked off. */
  linkType: number;
  /** Whole seconds since the Unix epoch. */
  seconds: number;
  /** Nanoseconds within the second, 0..999,999,999. */
  nanos: number;
  /** 1-based frame number within this input, as Wireshark numbers them. */
  frame: number;
  /** Byte offset of the record (its header) in the decompressed input. */
  byteOffset: number;
}

export function newCaptureRecord(): CaptureRecord {
  return { data: Buffer.alloc(0), offset: 0, caplen: 0, origLen: 0, linkType: 0, seconds: 0, nanos: 0, frame: 0, byteOffset: 0 };
}

export type RecordSink = (record: CaptureRecord) => void;

/** A push parser: feed it chunks in order, then call end(). Records arrive synchronously through the sink. */
export interface CaptureParser {
  readonly format: 'pcap' | 'pcapng';
  push(chunk: Buffer): void;
  /** Signals end of input. Returns a description of trailing bytes that did not form a record, or null. */
  end(): string | null;
  /** Link types seen so far (pcap: one; pcapng: one per interface). */
  readonly linkTypes: number[];
  /** Digits of sub-second precision the capture carries (6 for µs, 9 for ns, ...). */
  readonly fractionDigits: number;
  /** Bytes consumed by complete records and headers. */
  readonly bytesConsumed: number;
}

/** Largest frame we accept. Real snaplens top out at 262,144; anything above is damage, never an allocation. */
export const MAX_RECORD_BYTES = 1 << 20;
/** Largest pcapng block we accept (an EPB carries at most MAX_RECORD_BYTES plus options). */
export const MAX_BLOCK_BYTES = 4 << 20;
