/**
 * Big-endian reads by byte index for the per-packet path. Buffer#readUInt32BE validates its argument
 * and, when V8 does not inline it, returns a boxed number: one heap allocation per field per packet.
 * These are small enough to be inlined every time. Callers check lengths first, as they must anyway.
 */
export function u16(buf: Buffer, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

export function u32(buf: Buffer, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}
