/**
 * Header fields by byte index, in the file's byte order. Buffer#readUInt32LE validates its argument on
 * every call and this runs several times a record; these are small enough for V8 to inline. Callers
 * read only within a unit the framing has checked is whole.
 */
export function fileU32(buf: Buffer, at: number, littleEndian: boolean): number {
  return littleEndian
    ? (buf[at]! | (buf[at + 1]! << 8) | (buf[at + 2]! << 16) | (buf[at + 3]! << 24)) >>> 0
    : ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

export function fileI32(buf: Buffer, at: number, littleEndian: boolean): number {
  return fileU32(buf, at, littleEndian) | 0;
}

export function fileU16(buf: Buffer, at: number, littleEndian: boolean): number {
  return littleEndian ? buf[at]! | (buf[at + 1]! << 8) : (buf[at]! << 8) | buf[at + 1]!;
}
