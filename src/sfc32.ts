/**
 * sfc32, a small fast generator with 128 bits of state: the one step shared by the seeded generators
 * of the benchmark and the fuzzer (Math.random cannot be seeded). Each seeds it its own way.
 */
export class Sfc32 {
  protected a = 0;
  protected b = 0;
  protected c = 0;
  protected d = 0;

  protected seedState(a: number, b: number, c: number, d: number, warmUp: number): void {
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
    for (let i = 0; i < warmUp; i++) this.u32();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
}

/** splitmix32's output function: spreads a 32-bit state into a well-mixed word. */
export function mix32(state: number): number {
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
