import { formatNumber } from '../numbers.js';

/**
 * Errors a person can act on: each names the input, the byte offset and what was wrong.
 * `name` is a literal so callers can switch on it without instanceof across module copies.
 */
export class CaptureFormatError extends Error {
  override readonly name = 'CaptureFormatError' as const;
  constructor(
    readonly what: string,
    readonly byteOffset: number,
  ) {
    super(`${what} (at byte ${formatNumber(byteOffset)})`);
  }
}

/** The input could not be opened or read at all (missing file, directory, permission). */
export class InputError extends Error {
  override readonly name = 'InputError' as const;
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(`${path}: ${what}`);
  }
}

/**
 * A decompressing command (xz, zstd, ...) could not be started (`what` says what to install), or
 * failed (`what` is the first line it wrote to stderr).
 */
export class DecompressorError extends Error {
  override readonly name = 'DecompressorError' as const;
  constructor(
    readonly command: string,
    readonly what: string,
    readonly started: boolean,
  ) {
    super(started ? `${command}: ${what}` : what);
  }
}
