import { describe, expect, it } from 'vitest';
import { formatNumber } from './numbers.js';
import { mix32 } from './sfc32.js';

describe('formatNumber', () => {
  const samples = [0, -0, 1, 12, 999, 1000, 1234, 12345, 123456, 1234567, 1e9, 2 ** 32, 2 ** 53, 1e20, 0.5, 0.1234, 0.0004, 0.0005, 1.0005, 999.9999, 1234.5678, 42.5, -1, -1234.5, -0.0004, 1.5e-7, 7.25, 60.001, 2.0005, 999.9995, 0.9995, 1e21, 1.5e22, -999999.9996];
  it.each(samples)('writes %s as toLocaleString("en-US") does', (value) => {
    expect(formatNumber(value)).toBe(value.toLocaleString('en-US'));
  });

  it('agrees with toLocaleString("en-US") on 20,000 seeded values of every magnitude', () => {
    let state = 0x5eed;
    const random = () => (state = mix32(state)) / 2 ** 32;
    for (let i = 0; i < 20_000; i++) {
      const magnitude = 10 ** Math.floor(random() * 16 - 4);
      const value = (random() - 0.3) * magnitude;
      const integer = Math.round(value);
      expect(formatNumber(value)).toBe(value.toLocaleString('en-US'));
      expect(formatNumber(integer)).toBe(integer.toLocaleString('en-US'));
    }
  });
});
