import { spawnSync } from 'node:child_process';
import { gunzipSync, gzipSync } from 'node:zlib';
import { fieldMax, locateStructure, readField, writeField, type Field, type FieldKind, type Layout } from './structure.js';
import type { Random } from './random.js';
import { pcapHeader, sectionHeader } from './build.js';

/** One starting capture: its bytes (gunzipped) and where its structure lies. */
export interface Seed {
  name: string;
  bytes: Buffer;
  gzipped: boolean;
  layout: Layout;
}

export function makeSeed(name: string, raw: Buffer): Seed {
  let bytes = raw;
  let gzipped = false;
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      bytes = gunzipSync(raw);
      gzipped = true;
    } catch {
      bytes = raw; // damaged gzip: mutate it as it is
    }
  }
  return { name, bytes, gzipped, layout: locateStructure(bytes) };
}

/** What a pure truncation of a clean seed must read: exactly the frames before the cut. */
export interface TruncationOracle {
  packets: number;
  /** The cut fell inside a unit: the reader must say so and where that unit starts. */
  cutInside: boolean;
  unitStart: number;
}

export interface Mutant {
  bytes: Buffer;
  /** The steps taken, for the crash file and the reproduction line. */
  steps: string[];
  oracle: TruncationOracle | null;
}

/** Length-like fields: a reader trusts these to find the next thing, so they are hit most often. */
const LENGTH_FIELDS: ReadonlySet<FieldKind> = new Set([
  'pcap.caplen', 'pcap.origLen', 'pcap.snaplen', 'pcapng.blockLength', 'pcapng.blockTrailer', 'pcapng.optionLength', 'pcapng.caplen',
  'pcapng.origLen', 'ipv4.ihl', 'ipv4.totalLength', 'ipv6.payloadLength', 'ipv6.extLength', 'tcp.dataOffset',
]);

type Step = (rng: Random, state: MutationState) => string;

interface MutationState {
  bytes: Buffer;
  layout: Layout | null;
  pool: readonly Seed[];
}

function layoutOf(state: MutationState): Layout {
  state.layout ??= locateStructure(state.bytes);
  return state.layout;
}

function replace(state: MutationState, bytes: Buffer): void {
  state.bytes = bytes;
  state.layout = null;
}

/** Values that sit on the edges readers get wrong, plus ones near what the field held. */
function interestingValue(rng: Random, field: Field, current: number, fileLength: number): number {
  const max = fieldMax(field);
  const edges = [0, 1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 15, 16, 19, 20, 23, 24, 27, 28, 32, 40, 60, 64, 0x7f, 0x80, 0xff, 0x100, 0x5dc, 0xfff, 0x1000, 0x7fff, 0x8000, 0xffff,
    0x10000, 262_144, 262_145, 0x100000, 0x400000, 0x1000000, 0x1000004, 0x7fffffff, 0x80000000, 0xfffffff0, 0xfffffffc, 0xffffffff];
  const near = [current - 1, current + 1, current - 4, current + 4, current - 8, current + 8, current * 2, current >>> 1, max - current, fileLength, fileLength + 4, fileLength - field.offset];
  const value = rng.chance(0.5) ? rng.pick(edges) : rng.chance(0.8) ? rng.pick(near) : rng.u32();
  return ((value % (max + 1)) + (max + 1)) % (max + 1);
}

const setField = (kinds: 'length' | 'any'): Step => (rng, state) => {
  const layout = layoutOf(state);
  const pool = kinds === 'length' ? layout.fields.filter((f) => LENGTH_FIELDS.has(f.kind)) : layout.fields;
  if (pool.length === 0) return bitFlips(rng, state);
  const field = rng.pick(pool);
  const before = readField(state.bytes, field);
  const after = interestingValue(rng, field, before, state.bytes.length);
  const bytes = Buffer.from(state.bytes);
  writeField(bytes, field, after);
  replace(state, bytes);
  return `${field.kind}@${field.offset} ${before}->${after}`;
};

const bitFlips: Step = (rng, state) => {
  if (state.bytes.length === 0) return 'bit-flip (empty)';
  const bytes = Buffer.from(state.bytes);
  const flips = rng.between(1, 16);
  // Headers matter more than payload: half the flips land in the first 64 bytes or on a unit's start.
  const units = layoutOf(state).units;
  for (let i = 0; i < flips; i++) {
    let at: number;
    if (rng.chance(0.25)) at = rng.below(Math.min(64, bytes.length));
    else if (rng.chance(0.35) && units.length > 0) {
      const unit = rng.pick(units);
      at = Math.min(bytes.length - 1, unit.start + rng.below(Math.min(unit.length, 80)));
    } else at = rng.below(bytes.length);
    bytes[at] = bytes[at]! ^ (1 << rng.below(8));
  }
  replace(state, bytes);
  return `bit-flip x${flips}`;
};

const byteRun: Step = (rng, state) => {
  if (state.bytes.length === 0) return 'byte-run (empty)';
  const bytes = Buffer.from(state.bytes);
  const at = rng.below(bytes.length);
  const length = Math.min(bytes.length - at, rng.pick([1, 2, 4, 8, 16, 64, 256, 4096]));
  const kind = rng.pick(['zero', 'ff', 'random', 'repeat', 'copy'] as const);
  if (kind === 'zero') bytes.fill(0, at, at + length);
  else if (kind === 'ff') bytes.fill(0xff, at, at + length);
  else if (kind === 'random') rng.fill(bytes, at, at + length);
  else if (kind === 'repeat') bytes.fill(rng.below(256), at, at + length);
  else {
    const from = rng.below(bytes.length);
    state.bytes.copy(bytes, at, from, Math.min(from + length, bytes.length));
  }
  replace(state, bytes);
  return `byte-run ${kind} ${length}@${at}`;
};

const insertBytes: Step = (rng, state) => {
  const at = boundaryOrAnywhere(rng, state);
  const extra = Buffer.alloc(rng.pick([1, 2, 3, 4, 8, 12, 16, 100]));
  if (rng.chance(0.5)) rng.fill(extra);
  replace(state, Buffer.concat([state.bytes.subarray(0, at), extra, state.bytes.subarray(at)]));
  return `insert ${extra.length}@${at}`;
};

const deleteBytes: Step = (rng, state) => {
  const at = boundaryOrAnywhere(rng, state);
  const count = Math.min(state.bytes.length - at, rng.pick([1, 2, 3, 4, 8, 12, 16, 100]));
  replace(state, Buffer.concat([state.bytes.subarray(0, at), state.bytes.subarray(at + count)]));
  return `delete ${count}@${at}`;
};

function boundaryOrAnywhere(rng: Random, state: MutationState): number {
  const units = layoutOf(state).units;
  if (units.length > 0 && rng.chance(0.5)) return rng.pick(units).start;
  return rng.below(state.bytes.length + 1);
}

const truncateAtBoundary: Step = (rng, state) => {
  const units = layoutOf(state).units;
  const at = units.length > 0 ? rng.pick([...units.map((u) => u.start), state.bytes.length]) : rng.below(state.bytes.length + 1);
  replace(state, state.bytes.subarray(0, at));
  return `truncate-at-boundary ${at}`;
};

const truncateInside: Step = (rng, state) => {
  const units = layoutOf(state).units;
  let at: number;
  if (units.length > 0) {
    const unit = rng.pick(units);
    // Inside the header most often: that is where "how long is the rest" lives.
    at = unit.start + 1 + (rng.chance(0.5) ? rng.below(Math.min(unit.length - 1, 28)) : rng.below(Math.max(1, unit.length - 1)));
  } else at = rng.below(state.bytes.length + 1);
  replace(state, state.bytes.subarray(0, Math.min(at, state.bytes.length)));
  return `truncate-inside ${at}`;
};

const reshuffleUnits: Step = (rng, state) => {
  const units = layoutOf(state).units;
  if (units.length < 2) return byteRun(rng, state);
  const pieces = units.map((u) => state.bytes.subarray(u.start, u.start + u.length));
  const last = units[units.length - 1]!;
  const tail = state.bytes.subarray(last.start + last.length);
  const i = rng.below(pieces.length);
  const j = rng.below(pieces.length);
  const kind = rng.pick(['duplicate', 'delete', 'swap', 'move', 'reverse', 'repeat-many'] as const);
  if (kind === 'duplicate') pieces.splice(j, 0, pieces[i]!);
  else if (kind === 'delete') pieces.splice(i, 1);
  else if (kind === 'swap') [pieces[i], pieces[j]] = [pieces[j]!, pieces[i]!];
  else if (kind === 'move') pieces.splice(j, 0, ...pieces.splice(i, 1));
  else if (kind === 'reverse') pieces.reverse();
  else pieces.splice(j, 0, ...Array<Buffer>(rng.between(2, 50)).fill(pieces[i]!));
  replace(state, Buffer.concat([...pieces, tail]));
  return `units ${kind} ${i} ${j}`;
};

const splice: Step = (rng, state) => {
  const other = rng.pick(state.pool);
  const otherUnits = other.layout.units;
  const units = layoutOf(state).units;
  const cut = units.length > 0 ? rng.pick(units).start : rng.below(state.bytes.length + 1);
  const from = otherUnits.length > 0 && rng.chance(0.8) ? rng.pick(otherUnits).start : rng.below(other.bytes.length + 1);
  const length = Math.min(other.bytes.length - from, rng.chance(0.5) ? 64 * 1024 : rng.below(4096) + 1);
  const insert = other.bytes.subarray(from, from + length);
  const keepTail = rng.chance(0.5);
  replace(state, Buffer.concat([state.bytes.subarray(0, cut), insert, keepTail ? state.bytes.subarray(cut) : Buffer.alloc(0)]));
  return `splice ${other.name}[${from}+${length}] at ${cut}${keepTail ? '' : ' (tail dropped)'}`;
};

/** The body of one format behind the header of another, or the other byte order. */
const headerSwap: Step = (rng, state) => {
  const layout = layoutOf(state);
  const headerLength = layout.units[0]?.length ?? Math.min(24, state.bytes.length);
  const body = state.bytes.subarray(headerLength);
  const le = rng.chance(0.5);
  const headers: [string, Buffer][] = [
    ['pcap-le-us', pcapHeader({ littleEndian: true, linkType: rng.pick([1, 101, 113, 276, 0, 228, 229, 147]) })],
    ['pcap-be-ns', pcapHeader({ littleEndian: false, nanos: true, linkType: 1 })],
    ['pcap-modified', (() => {
      const h = pcapHeader({ littleEndian: le });
      if (le) h.writeUInt32LE(0xa1b2cd34, 0);
      else h.writeUInt32BE(0xa1b2cd34, 0);
      return h;
    })()],
    ['pcapng-shb', sectionHeader({ littleEndian: le })],
    ['pcap-version-9.9', pcapHeader({ versionMajor: 9, versionMinor: 9 })],
    ['pcapng-shb-version-2.0', sectionHeader({ littleEndian: le, major: 2 })],
  ];
  const donor = state.pool.find((s) => s.layout.format !== layout.format && s.layout.units.length > 0 && rng.chance(0.2));
  if (donor) headers.push([`header-of-${donor.name}`, donor.bytes.subarray(0, donor.layout.units[0]!.length)]);
  const [name, header] = rng.pick(headers);
  replace(state, Buffer.concat([header, body]));
  return `header-swap ${name}`;
};

/** Flip the byte order of a pcapng section (only its magic), or make time run backwards. */
const semanticTwist: Step = (rng, state) => {
  const layout = layoutOf(state);
  const bytes = Buffer.from(state.bytes);
  const stamps = layout.fields.filter((f) => f.kind === 'pcap.timestamp' || f.kind === 'pcapng.timestamp');
  const orders = layout.fields.filter((f) => f.kind === 'pcapng.byteOrder' || f.kind === 'pcap.magic');
  if (orders.length > 0 && rng.chance(0.3)) {
    const field = rng.pick(orders);
    bytes.writeUInt32BE(bytes.readUInt32LE(field.offset), field.offset);
    replace(state, bytes);
    return `byte-order-flip@${field.offset}`;
  }
  if (stamps.length === 0) return bitFlips(rng, state);
  const count = rng.between(1, Math.min(stamps.length, 20));
  for (let i = 0; i < count; i++) {
    const field = rng.pick(stamps);
    writeField(bytes, field, rng.pick([0, 1, 0x7fffffff, 0xffffffff, readField(bytes, field) - 3600, rng.u32()]));
  }
  replace(state, bytes);
  return `timestamps x${count}`;
};

const STEPS: readonly (readonly [number, Step])[] = [
  [14, setField('length')],
  [8, setField('any')],
  [10, bitFlips],
  [6, byteRun],
  [4, insertBytes],
  [4, deleteBytes],
  [7, truncateAtBoundary],
  [7, truncateInside],
  [8, reshuffleUnits],
  [5, splice],
  [3, headerSwap],
  [4, semanticTwist],
];

/** Derives one mutant from a seed: one step most of the time, a stack of up to five otherwise. */
export function mutate(rng: Random, seed: Seed, pool: readonly Seed[]): Mutant {
  const state: MutationState = { bytes: seed.bytes, layout: seed.layout, pool };
  const steps: string[] = [`seed ${seed.name}`];
  // A lone truncation of a clean seed has a known answer: check the reader gives exactly that.
  if (seed.layout.clean && rng.chance(0.12)) {
    const inside = rng.chance(0.5);
    steps.push(inside ? truncateInside(rng, state) : truncateAtBoundary(rng, state));
    const cut = state.bytes.length;
    const before = seed.layout.units.filter((u) => u.start + u.length <= cut);
    const straddling = seed.layout.units.find((u) => u.start < cut && u.start + u.length > cut);
    const oracle = { packets: before.filter((u) => u.isPacket).length, cutInside: straddling !== undefined, unitStart: straddling?.start ?? cut };
    return finish(rng, seed, state, steps, oracle);
  }
  const stack = rng.chance(0.6) ? 1 : rng.between(2, 5);
  for (let i = 0; i < stack; i++) steps.push(rng.weighted(STEPS)(rng, state));
  return finish(rng, seed, state, steps, null);
}

/** Compressions read through a command (capture/external.ts), for a mutant now and then. */
const COMMAND_COMPRESSIONS = ['xz', 'zstd'] as const;

function finish(rng: Random, seed: Seed, state: MutationState, steps: string[], oracle: TruncationOracle | null): Mutant {
  let bytes = state.bytes;
  // Gzip'd seeds stay gzip'd mostly; now and then any mutant is compressed, or its stream damaged.
  let compressed: string | null = null;
  if ((seed.gzipped && rng.chance(0.8)) || rng.chance(0.03)) {
    bytes = gzipSync(bytes, { level: 1 });
    compressed = 'gzip';
  } else if (rng.chance(0.01)) {
    const command = COMMAND_COMPRESSIONS[rng.below(COMMAND_COMPRESSIONS.length)]!;
    const run = spawnSync(command, ['-1', '-c'], { input: bytes, maxBuffer: 1 << 28 });
    if (run.status === 0) {
      bytes = run.stdout;
      compressed = command;
    }
  }
  if (compressed) {
    steps.push(compressed);
    if (rng.chance(0.25)) {
      oracle = null;
      const damaged = Buffer.from(bytes);
      if (rng.chance(0.5) && damaged.length > 10) {
        bytes = damaged.subarray(0, rng.between(2, damaged.length - 1));
        steps.push(`${compressed}-truncate ${bytes.length}`);
      } else {
        const at = rng.between(Math.min(10, damaged.length - 1), damaged.length - 1);
        damaged[at] = damaged[at]! ^ (1 << rng.below(8));
        bytes = damaged;
        steps.push(`${compressed}-bit-flip@${at}`);
      }
    }
  }
  return { bytes: bytes === seed.bytes ? Buffer.from(bytes) : bytes, steps, oracle };
}
