import { checkInput, readsCleanly, type Outcome } from './harness.js';
import type { Seed } from './mutate.js';

export interface TruncationSweep {
  seeds: number;
  cuts: number;
  failures: { seed: string; cut: number; outcome: Outcome }[];
}

/**
 * Every clean seed cut at every record boundary and at points inside every record (its second byte,
 * the end of a record header, its last byte): each copy must read exactly the records before the cut,
 * and say where it stopped when the cut fell inside one. The random fuzzer samples these; this tries all.
 */
export async function sweepTruncations(seeds: readonly Seed[], options: { maxUnits?: number } = {}): Promise<TruncationSweep> {
  const sweep: TruncationSweep = { seeds: 0, cuts: 0, failures: [] };
  for (const seed of seeds) {
    const units = seed.layout.units;
    if (!seed.layout.clean || units.length > (options.maxUnits ?? Number.POSITIVE_INFINITY) || !(await readsCleanly(seed))) continue;
    sweep.seeds++;
    const cuts = new Set<number>([seed.bytes.length]);
    for (const unit of units) {
      cuts.add(unit.start);
      const header = unit.kind === 'block' ? 12 : unit.kind === 'record' ? 16 : unit.length;
      for (const inside of [1, header - 1, header, unit.length - 1]) if (inside > 0 && inside < unit.length) cuts.add(unit.start + inside);
    }
    for (const cut of [...cuts].sort((x, y) => x - y)) {
      const straddling = units.find((u) => u.start < cut && u.start + u.length > cut);
      const packets = units.filter((u) => u.isPacket && u.start + u.length <= cut).length;
      const outcome = await checkInput(seed.bytes.subarray(0, cut), { path: seed.name, oracle: { packets, cutInside: straddling !== undefined, unitStart: straddling?.start ?? cut } });
      sweep.cuts++;
      if (outcome.kind === 'crash' || outcome.kind === 'lie') sweep.failures.push({ seed: seed.name, cut, outcome });
    }
  }
  return sweep;
}
