import type { AnalyzeOptions } from '../analyze/run.js';
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
  splitFiles: boolean;
  analyzeOptions: AnalyzeOptions;
}

/**
 * Input `index` of run `seed` over `pool`: a pure function of the three, so any input of any run can
 * be rebuilt on its own (`--seed S --only I`) without replaying the ones before it.
 */
export function generateInput(pool: SeedPool, seed: number, index: number): FuzzInput {
  const rng = new Random(seed, index);
  const base = rng.pick(pool.seeds);
  const mutant = mutate(rng, base, pool.seeds);
  const analyzeOptions: AnalyzeOptions = {};
  // Now and then the paths a flag takes: eviction at a tiny cap, a port filter, a minimum age.
  if (rng.chance(0.1)) analyzeOptions.maxConnections = rng.between(1, 8);
  if (rng.chance(0.1)) analyzeOptions.ports = [rng.pick([80, 443, 8080, 20880, rng.between(1, 65535)])];
  if (rng.chance(0.05)) analyzeOptions.minAgeSeconds = rng.pick([0.5, 1, 30, 3600]);
  if (rng.chance(0.05)) analyzeOptions.lingerSeconds = rng.pick([0, 1, 10]);
  return { ...mutant, index, seed: base, rng, rechunk: rng.chance(0.5), viaFile: rng.chance(0.02), splitFiles: rng.chance(0.02), analyzeOptions };
}

/** Checks one generated input: the truncation oracle only where the seed itself reads cleanly. */
export async function checkFuzzInput(input: FuzzInput, scratchFile: string): Promise<Outcome> {
  const oracle = input.oracle && (await readsCleanly(input.seed)) ? input.oracle : null;
  const outcome = await checkInput(input.bytes, {
    oracle, rng: input.rng, rechunk: input.rechunk, viaFile: input.viaFile ? scratchFile : undefined,
    splitFiles: input.splitFiles ? `${scratchFile}.split.pcap` : undefined, analyzeOptions: input.analyzeOptions,
  });
  return { ...outcome, oracleChecked: oracle !== null };
}
