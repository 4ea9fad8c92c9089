import { checkInput, readsCleanly, type Outcome } from './harness.js';
import { mutate, type Mutant, type Seed } from './mutate.js';
import type { SeedPool } from './pool.js';
import { Random } from './random.js';

export interface FuzzInput extends Mutant {
  index: number;
  seed: Seed;
  /** Generator for what the harness decides at random (chunk sizes): derived from the same seed and index. */
  rng: Random;
  rechunk: boolean;
  viaFile: boolean;
}

/**
 * Input `index` of run `seed` over `pool`: a pure function of the three, so any input of any run can
 * be rebuilt on its own (`--seed S --only I`) without replaying the ones before it.
 */
export function generateInput(pool: SeedPool, seed: number, index: number): FuzzInput {
  const rng = new Random(seed, index);
  const base = rng.pick(pool.seeds);
  const mutant = mutate(rng, base, pool.seeds);
  return { ...mutant, index, seed: base, rng, rechunk: rng.chance(0.5), viaFile: rng.chance(0.02) };
}

/** Checks one generated input: the truncation oracle only where the seed itself reads cleanly. */
export async function checkFuzzInput(input: FuzzInput, scratchFile: string): Promise<Outcome> {
  const oracle = input.oracle && (await readsCleanly(input.seed)) ? input.oracle : null;
  const outcome = await checkInput(input.bytes, { oracle, rng: input.rng, rechunk: input.rechunk, viaFile: input.viaFile ? scratchFile : undefined });
  return { ...outcome, oracleChecked: oracle !== null };
}
