/**
 * Capture times are carried as nanoseconds since a base second (a double, exact for 104 days) and
 * written as RFC 3339 with as many fraction digits as the capture has.
 */
export class TimeBase {
  constructor(
    readonly baseSeconds: number,
    readonly fractionDigits: number,
  ) {}

  relative(seconds: number, nanos: number): number {
    return (seconds - this.baseSeconds) * 1e9 + nanos;
  }

  format(relativeNanos: number): string {
    const wholeFromBase = Math.floor(relativeNanos / 1e9);
    const nanos = relativeNanos - wholeFromBase * 1e9;
    return formatRfc3339(this.baseSeconds + wholeFromBase, nanos, this.fractionDigits);
  }
}

/** What a time that RFC 3339 cannot write (beyond year 9999, or not a number) is written as. */
export const INVALID_TIME = 'invalid-time';

export function formatRfc3339(seconds: number, nanos: number, fractionDigits: number): string {
  const date = new Date(seconds * 1000);
  // RFC 3339 years have four digits: a pcapng timestamp past 9999 (damage) has no honest spelling.
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 0 || date.getUTCFullYear() > 9999) return INVALID_TIME;
  const whole = date.toISOString().slice(0, 19);
  if (fractionDigits <= 0) return `${whole}Z`;
  const fraction = String(Math.min(999_999_999, Math.max(0, Math.round(nanos)))).padStart(9, '0').slice(0, Math.min(9, fractionDigits));
  return `${whole}.${fraction}Z`;
}
