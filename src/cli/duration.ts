const UNITS: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400 };

/** "30s", "5m", "1.5h", "250ms" or a bare number of seconds; null when it is none of these. */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  if (!match) return null;
  const unit = (match[2] ?? '').toLowerCase();
  const factor = unit === '' ? 1 : UNITS[unit];
  return factor === undefined ? null : Number(match[1]) * factor;
}
