/**
 * Numbers as `toLocaleString('en-US')` writes them (1,234,567.891: groups of three, at most three
 * decimals, halves rounded away from zero), without it: its first call loads ICU's locale data, ~10 ms of
 * a run that is otherwise over in well under a second on a small capture.
 */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  if (!Number.isFinite(value)) return `${sign}∞`;
  const [whole, fraction] = roundToThousandths(Math.abs(value));
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction ? `${sign}${grouped}.${fraction}` : `${sign}${grouped}`;
}

/** Whole and fraction digits, rounded on the shortest decimal spelling of the number as ICU does. */
function roundToThousandths(magnitude: number): [string, string] {
  if (magnitude >= 1e21) return [BigInt(magnitude).toString(), ''];
  if (magnitude < 0.0005) return ['0', ''];
  const text = magnitude < 1e-6 ? magnitude.toFixed(12) : String(magnitude);
  const [whole = '0', fraction = ''] = text.split('.');
  if (fraction.length <= 3) return [whole, fraction.replace(/0+$/, '')];
  let digits = whole + fraction.slice(0, 3);
  if (fraction[3]! >= '5') digits = (BigInt(digits) + 1n).toString().padStart(digits.length, '0');
  return [digits.slice(0, -3).replace(/^0+(?=\d)/, '') || '0', digits.slice(-3).replace(/0+$/, '')];
}
