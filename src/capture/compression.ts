/**
 * Compressed inputs, told by their first bytes, never by their names. gzip is inflated in this process
 * (zlib); the others go through their own command (xz, zstd, bzip2, lz4), which runs on another core
 * as it would in `xz -dc dump.xz | closewait analyze -`: Node has no decoder for them, and a decoder in
 * JavaScript would be a dependency slower than the tools every distribution ships.
 */
export type CompressionName = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'lz4';

export interface Compression {
  name: CompressionName;
  magic: readonly number[];
  /** The command that decompresses standard input to standard output, and the Debian package that has it. */
  command: string;
  package: string;
}

export const COMPRESSIONS: readonly Compression[] = [
  { name: 'gzip', magic: [0x1f, 0x8b], command: 'gzip', package: 'gzip' },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], command: 'xz', package: 'xz-utils' },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], command: 'zstd', package: 'zstd' },
  // "BZh" and the block size digit: without the digit, a text file starting "BZh" would pass.
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], command: 'bzip2', package: 'bzip2' },
  { name: 'lz4', magic: [0x04, 0x22, 0x4d, 0x18], command: 'lz4', package: 'lz4' },
];

/** Bytes enough to tell every compression above. */
export const COMPRESSION_MAGIC_BYTES = 6;

/** The compression the first bytes announce, or null. */
export function compressionOf(head: Buffer): Compression | null {
  for (const compression of COMPRESSIONS) {
    if (head.length < compression.magic.length) continue;
    if (!compression.magic.every((byte, i) => head[i] === byte)) continue;
    if (compression.name === 'bzip2' && !(head.length > 3 && head[3]! >= 0x31 && head[3]! <= 0x39)) continue;
    return compression;
  }
  return null;
}

/** A rotated file compressed afterwards (tcpdump -z, logrotate, by hand) keeps its place: NAME3.gz or NAME3.xz is NAME3. */
export const COMPRESSED_SUFFIX = /\.(gz|xz|zst|bz2|lz4)$/i;
