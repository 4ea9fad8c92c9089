import { mix32, Sfc32 } from '../sfc32.js';

/**
 * A small seeded generator (sfc32, seeded through splitmix32) so a fuzz run is a pure function of its
 * seed: input number i of seed S is the same bytes on every machine and every run.
 */
export class Random extends Sfc32 {
  constructor(...seedWords: number[]) {
    super();
    let state = 0x9e3779b9;
    for (const word of seedWords) state = splitmix32(state ^ (word >>> 0)) ^ Math.imul(state, 0x85ebca6b);
    const a = splitmix32(state);
    const b = splitmix32(a ^ 0x6a09e667);
    this.seedState(a, b, splitmix32(b ^ 0xbb67ae85), 1, 12);
  }

  /** An integer in [0, n). */
  below(n: number): number {
    if (n <= 0) return 0;
    return n <= 0x100000000 ? Math.floor((this.u32() / 0x100000000) * n) : Math.floor((this.u32() * 0x100000000 + this.u32()) / 2 ** 64 * n);
  }

  /** An integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.below(high - low + 1);
  }

  chance(probability: number): boolean {
    return this.u32() / 0x100000000 < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.below(items.length)]!;
  }

  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let roll = this.below(total);
    for (const [weight, value] of choices) {
      if (roll < weight) return value;
      roll -= weight;
    }
    return choices[choices.length - 1]![1];
  }

  fill(buf: Buffer, start = 0, end = buf.length): void {
    for (let i = start; i < end; i++) buf[i] = this.u32() & 0xff;
  }
}

function splitmix32(x: number): number {
  return mix32((x + 0x9e3779b9) | 0);
}

/** FNV-1a over a string: a stable 32-bit fingerprint for names and seed lists. */
export function fingerprint(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
