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

export function formatRfc3339(seconds: number, nanos: number, fractionDigits: number): string {
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return 'invalid-time';
  const whole = date.toISOString().slice(0, 19);
  if (fractionDigits <= 0) return `${whole}Z`;
  const fraction = String(Math.min(999_999_999, Math.max(0, Math.round(nanos)))).padStart(9, '0').slice(0, Math.min(9, fractionDigits));
  return `${whole}.${fraction}Z`;
}
