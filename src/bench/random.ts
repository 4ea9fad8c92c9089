import { mix32, Sfc32 } from '../sfc32.js';

/**
 * A small seeded generator (sfc32, seeded through splitmix32) so a benchmark capture is the same
 * bytes on every machine for the same seed. Math.random cannot be seeded.
 */
export class Random extends Sfc32 {
  constructor(seed: number) {
    super();
    let state = seed >>> 0;
    const splitmix = (): number => {
      state = (state + 0x9e3779b9) | 0;
      return mix32(state);
    };
    this.seedState(splitmix(), splitmix(), splitmix(), splitmix(), 16);
  }

  uint32(): number {
    return this.u32();
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  /** Exponentially distributed with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.next());
  }

  /** Log-normal with the given median; sigma is the spread of the underlying normal. */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Standard normal (Box-Muller; one of the pair is enough here). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Index picked with probability proportional to its weight. */
  weighted(weights: readonly number[], total: number): number {
    let x = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
}
