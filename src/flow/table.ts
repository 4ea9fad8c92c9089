import { randomBytes } from 'node:crypto';

/**
 * Open-addressing hash table from a connection key (nine 32-bit words: both addresses as IPv6 words
 * and both ports) to a small integer id. Keys live in one typed array, so a lookup touches no objects
 * and allocates nothing. Linear probing with backward-shift deletion keeps lookups short without
 * tombstones, however many connections come and go.
 */
export const KEY_WORDS = 9;
const EMPTY = 0;
const INITIAL_CAPACITY = 1 << 12;

export class ConnectionTable {
  /** Slot -> id + 1 (0 = empty). */
  private slots = new Int32Array(INITIAL_CAPACITY);
  private mask = INITIAL_CAPACITY - 1;
  /** id -> key words, KEY_WORDS per id. */
  private keys = new Uint32Array(INITIAL_CAPACITY * KEY_WORDS);
  /** id -> hash of its key. */
  private hashes = new Uint32Array(INITIAL_CAPACITY);
  private freeIds: number[] = [];
  private nextId = 0;
  private live = 0;

  constructor() {
    // The arrays stored again, so V8 treats them as fields that change (see ConnectionTracker's constructor).
    this.resize(INITIAL_CAPACITY);
    this.growIds(INITIAL_CAPACITY);
  }

  get size(): number {
    return this.live;
  }

  /** Id stored under `key`, or -1. */
  find(key: Uint32Array): number {
    const hash = hashKey(key);
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = this.slots[slot]!;
      if (entry === EMPTY) return -1;
      const id = entry - 1;
      if (this.hashes[id] === hash && this.keyEquals(id, key)) return id;
    }
  }

  /** Stores `key` (which must not be present) and returns its new id. */
  insert(key: Uint32Array): number {
    if ((this.live + 1) * 2 > this.slots.length) this.resize(this.slots.length * 2);
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.nextId++;
    if (id >= this.hashes.length) this.growIds(this.hashes.length * 2);
    const hash = hashKey(key);
    this.hashes[id] = hash;
    this.keys.set(key, id * KEY_WORDS);
    let slot = hash & this.mask;
    while (this.slots[slot] !== EMPTY) slot = (slot + 1) & this.mask;
    this.slots[slot] = id + 1;
    this.live++;
    return id;
  }

  /** Removes the entry with this id; the id may be handed out again by a later insert. */
  remove(id: number): void {
    let slot = this.hashes[id]! & this.mask;
    while (this.slots[slot] !== id + 1) {
      if (this.slots[slot] === EMPTY) return;
      slot = (slot + 1) & this.mask;
    }
    // Backward-shift: pull later entries of the same probe run into the hole.
    let hole = slot;
    for (let next = (hole + 1) & this.mask; this.slots[next] !== EMPTY; next = (next + 1) & this.mask) {
      const home = this.hashes[this.slots[next]! - 1]! & this.mask;
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!between) {
        this.slots[hole] = this.slots[next]!;
        hole = next;
      }
    }
    this.slots[hole] = EMPTY;
    this.freeIds.push(id);
    this.live--;
  }

  /** Copies the key words of `id` into `out`. */
  keyOf(id: number, out: Uint32Array): Uint32Array {
    out.set(this.keys.subarray(id * KEY_WORDS, id * KEY_WORDS + KEY_WORDS));
    return out;
  }

  private keyEquals(id: number, key: Uint32Array): boolean {
    const base = id * KEY_WORDS;
    const keys = this.keys;
    for (let i = 0; i < KEY_WORDS; i++) if (keys[base + i] !== key[i]) return false;
    return true;
  }

  private resize(capacity: number): void {
    const old = this.slots;
    this.slots = new Int32Array(capacity);
    this.mask = capacity - 1;
    for (let i = 0; i < old.length; i++) {
      const entry = old[i]!;
      if (entry === EMPTY) continue;
      let slot = this.hashes[entry - 1]! & this.mask;
      while (this.slots[slot] !== EMPTY) slot = (slot + 1) & this.mask;
      this.slots[slot] = entry;
    }
  }

  private growIds(capacity: number): void {
    const hashes = new Uint32Array(capacity);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const keys = new Uint32Array(capacity * KEY_WORDS);
    keys.set(this.keys);
    this.keys = keys;
  }
}

/**
 * Seeded per process: a capture crafted so that many 4-tuples collide under a known seed would turn
 * every lookup into a long probe. Only probe order depends on it, never what the analysis reports.
 */
const HASH_SEED = randomBytes(4).readUInt32LE(0);

/**
 * Per word a multiply and a shift, then murmur3's finaliser to spread the bits: a third of the work of
 * murmur3's full per-word mixing, which this lookup ran for every packet. The seed keeps the probe
 * order unknowable from outside.
 */
export function hashKey(key: Uint32Array): number {
  let h = HASH_SEED;
  for (let i = 0; i < KEY_WORDS; i++) {
    h = Math.imul(h ^ key[i]!, 0x9e3779b1);
    h ^= h >>> 16;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
